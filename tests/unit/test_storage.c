/* Unit tests of the storage layer: checksums, ids, the memtable, the write-ahead log's
 * torn-tail and corruption rules, segments, the manifest, and the writer/reader API. */
#define _GNU_SOURCE /* memmem */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/format.h"
#include "storage/ids.h"
#include "storage/manifest.h"
#include "storage/memtable.h"
#include "storage/segment.h"
#include "storage/wal.h"
#include "util/crc32c.h"
#include "vdb_io.h"

static char tmpdir[256];
static char db[300];

static void setup(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/vdb-unit-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
	snprintf(db, sizeof db, "%s/db", tmpdir);
}

static void teardown(void)
{
	char cmd[400];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	cr_assert_eq(system(cmd), 0);
}

static vdb_id int_id(uint64_t v)
{
	return (vdb_id){0, v, NULL, 0};
}

static vdb_id str_id(const char *s)
{
	return (vdb_id){1, 0, s, strlen(s)};
}

static void create_indexed(uint32_t dim, vdb_metric m, uint64_t seal, vdb_index_type index)
{
	vdb_collection_config cfg;
	vdb_collection_config_init(&cfg);
	cfg.dim = dim;
	cfg.metric = m;
	cfg.index = index;
	if (seal)
		cfg.seal_bytes = seal;
	vdb_error err;
	cr_assert_eq(vdb_collection_create(db, "default", &cfg, &err), VDB_OK, "%s", err.message);
}

static void create(uint32_t dim, vdb_metric m, uint64_t seal)
{
	vdb_collection_config cfg;
	vdb_collection_config_init(&cfg);
	create_indexed(dim, m, seal, cfg.index);
}

static vdb_writer *writer(void)
{
	vdb_writer *w;
	vdb_error err;
	cr_assert_eq(vdb_writer_open(db, "default", NULL, &w, &err), VDB_OK, "%s", err.message);
	return w;
}

static uint64_t count(void)
{
	vdb_collection *c;
	vdb_error err;
	cr_assert_eq(vdb_collection_open(db, "default", &c, &err), VDB_OK, "%s", err.message);
	uint64_t n = vdb_collection_count(c);
	vdb_collection_close(c);
	return n;
}

Test(crc32c, known_answers)
{
	cr_assert_eq(vdb_crc32c(0, "123456789", 9), 0xe3069283u);
	cr_assert_eq(vdb_crc32c(0, "", 0), 0u);
	/* Continuation equals one pass, at every split point and alignment. */
	char buf[300];
	for (int i = 0; i < 300; i++)
		buf[i] = (char)(i * 7 + 3);
	uint32_t whole = vdb_crc32c(0, buf + 1, 299);
	for (int k = 0; k <= 299; k++)
		cr_assert_eq(vdb_crc32c(vdb_crc32c(0, buf + 1, (size_t)k), buf + 1 + k, (size_t)(299 - k)),
			     whole);
	/* Combining the parts' CRCs equals one pass, at every split point, including empty
	 * parts; and across a part far longer than any buffer (only its length matters). */
	for (int k = 0; k <= 299; k++)
		cr_assert_eq(vdb_crc32c_combine(vdb_crc32c(0, buf + 1, (size_t)k),
						vdb_crc32c(0, buf + 1 + k, (size_t)(299 - k)),
						(uint64_t)(299 - k)),
			     whole, "split at %d", k);
	size_t big = (3u << 20) + 17;
	char *zeros = calloc(big, 1);
	cr_assert_not_null(zeros);
	uint32_t head = vdb_crc32c(0, buf, 300);
	cr_assert_eq(vdb_crc32c_combine(head, vdb_crc32c(0, zeros, big), big),
		     vdb_crc32c(head, zeros, big));
	free(zeros);
}

/* Bit-at-a-time CRC32C: the definition, against which the fast paths are held. */
static uint32_t crc32c_bitwise(const unsigned char *p, size_t n)
{
	uint32_t c = ~0u;
	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
	}
	return ~c;
}

Test(crc32c, long_buffers_match_the_definition)
{
	/* Lengths around the three-stream blocks (3 x 8 KiB) and several of them, at every
	 * alignment, continued from a non-zero CRC too. */
	size_t lens[] = {24575, 24576, 24577, 3 * 24576 + 13, 300001};
	unsigned char *buf = malloc(300001 + 8);
	cr_assert_not_null(buf);
	uint64_t x = 99;
	for (size_t i = 0; i < 300001 + 8; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		buf[i] = (unsigned char)(x >> 56);
	}
	for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++)
		for (size_t off = 0; off < 8; off++) {
			uint32_t want = crc32c_bitwise(buf + off, lens[l]);
			cr_assert_eq(vdb_crc32c(0, buf + off, lens[l]), want, "length %zu offset %zu",
				     lens[l], off);
			uint32_t head = vdb_crc32c(0, buf + off, 5);
			cr_assert_eq(vdb_crc32c(head, buf + off + 5, lens[l] - 5), want);
		}
	free(buf);
}

Test(ids, order_and_hash)
{
	vdb_id a = int_id(2), b = int_id(10), s = str_id("a"), t = str_id("ab");
	cr_assert_lt(vdb_id_compare(&a, &b), 0);
	cr_assert_lt(vdb_id_compare(&b, &s), 0, "integers order before strings");
	cr_assert_lt(vdb_id_compare(&s, &t), 0);
	cr_assert_eq(vdb_id_compare(&t, &t), 0);
	vdb_id s10 = str_id("10");
	cr_assert_neq(vdb_id_hash(&b), vdb_id_hash(&s10), "10 and \"10\" are different ids");
	cr_assert_eq(vdb_id_hash(&s), vdb_id_hash(&(vdb_id){1, 0, "a", 1}));
}

Test(names, validation)
{
	cr_assert(vdb_collection_name_valid("docs"));
	cr_assert(vdb_collection_name_valid("a.b_c-1"));
	cr_assert(!vdb_collection_name_valid(""));
	cr_assert(!vdb_collection_name_valid(".hidden"));
	cr_assert(!vdb_collection_name_valid("a/b"));
	cr_assert(!vdb_collection_name_valid("VDB"));
	char long_name[70];
	memset(long_name, 'x', 65);
	long_name[65] = 0;
	cr_assert(!vdb_collection_name_valid(long_name));
	long_name[64] = 0;
	cr_assert(vdb_collection_name_valid(long_name));
}

Test(memtable, latest_operation_wins)
{
	vdb_memtable m;
	vdb_memtable_init(&m, 2);
	float v1[2] = {1, 2}, v2[2] = {3, 4};
	vdb_id a = int_id(1), b = str_id("b");
	cr_assert_eq(vdb_memtable_upsert(&m, &a, v1, "{}", 2), 0);
	cr_assert_eq(vdb_memtable_upsert(&m, &b, v1, NULL, 0), 0);
	cr_assert_eq(vdb_memtable_upsert(&m, &a, v2, NULL, 0), 0);
	cr_assert_eq(m.n, 2);
	cr_assert_eq(m.live, 2);
	const vdb_mem_entry *e = vdb_memtable_find(&m, &a, vdb_id_hash(&a));
	cr_assert_not_null(e);
	vdb_record r;
	vdb_memtable_entry_record(&m, e, &r);
	cr_assert_eq(r.vector[0], 3);
	cr_assert_null(r.payload, "a replacement without payload has none");
	cr_assert_eq(vdb_memtable_delete(&m, &b), 0);
	cr_assert_eq(m.live, 1);
	vdb_id c = int_id(99);
	cr_assert_eq(vdb_memtable_delete(&m, &c), 0, "deleting an unknown id records a tombstone");
	cr_assert_eq(m.n, 3);
	cr_assert_eq(m.live, 1);
	/* Many ids: the hash index grows and every id stays findable. */
	for (uint64_t i = 1000; i < 5000; i++) {
		vdb_id x = int_id(i);
		cr_assert_eq(vdb_memtable_upsert(&m, &x, v1, NULL, 0), 0);
	}
	for (uint64_t i = 1000; i < 5000; i++) {
		vdb_id x = int_id(i);
		cr_assert_not_null(vdb_memtable_find(&m, &x, vdb_id_hash(&x)));
	}
	vdb_memtable_free(&m);
}

/* ---- write-ahead log ---- */

/* Writes dir/wal-00000001.log (dim 2) with `frames` frames of `rows` rows each, the last
 * one of `last_rows`, every row with a payload of `payload` bytes (0: none); ends[f] is the
 * offset just past frame f. */
static void wal_with_sized_frames(const char *dir, int frames, int rows, int last_rows,
				  size_t payload, uint64_t *ends)
{
	vdb_error err;
	cr_assert_eq(vdb_wal_create(dir, 1, 2, &err), VDB_OK, "%s", err.message);
	char path[448];
	snprintf(path, sizeof path, "%s/wal-00000001.log", dir);
	int fd = open(path, O_RDWR);
	cr_assert_geq(fd, 0);
	char *pl = malloc(payload + 1);
	memset(pl, 'p', payload);
	uint64_t off = VDB_WAL_HEADER_SIZE;
	vdb_buf b = VDB_BUF_INIT;
	for (int f = 0; f < frames; f++) {
		vdb_wal_batch_reset(&b);
		for (int i = 0; i < (f + 1 < frames ? rows : last_rows); i++) {
			vdb_id id = int_id((uint64_t)(f * 100 + i));
			float v[2] = {(float)f, (float)i};
			cr_assert_eq(vdb_wal_encode_upsert(&b, 2, &id, v, payload ? pl : NULL, payload),
				     0);
		}
		cr_assert_eq(vdb_wal_append(fd, path, off, (uint64_t)(f + 1), &b, &err), VDB_OK);
		off += b.len;
		ends[f] = off;
	}
	vdb_buf_free(&b);
	free(pl);
	close(fd);
}

static void wal_with_frames(const char *dir, int frames, uint64_t *ends)
{
	wal_with_sized_frames(dir, frames, 3, 3, 0, ends);
}

static vdb_status replay(const char *dir, vdb_wal_replay *r, vdb_memtable *m, vdb_error *err)
{
	char path[400];
	snprintf(path, sizeof path, "%s/wal-00000001.log", dir);
	int fd = open(path, O_RDONLY);
	cr_assert_geq(fd, 0);
	vdb_memtable_init(m, 2);
	vdb_status st = vdb_wal_replay_fd(fd, "wal-00000001.log", 2, 1, 1, m, r, err);
	close(fd);
	return st;
}

Test(wal, replays_every_frame, .init = setup, .fini = teardown)
{
	uint64_t ends[3];
	wal_with_frames(tmpdir, 3, ends);
	vdb_wal_replay r;
	vdb_memtable m;
	vdb_error err;
	cr_assert_eq(replay(tmpdir, &r, &m, &err), VDB_OK, "%s", err.message);
	cr_assert_eq(r.frames, 3);
	cr_assert_eq(r.next_seq, 4);
	cr_assert_eq(r.end, ends[2]);
	cr_assert_not(r.torn);
	cr_assert_eq(m.live, 9);
	vdb_memtable_free(&m);
}

Test(wal, torn_tail_at_every_length_is_discarded, .init = setup, .fini = teardown)
{
	uint64_t ends[3];
	wal_with_frames(tmpdir, 3, ends);
	char path[400];
	snprintf(path, sizeof path, "%s/wal-00000001.log", tmpdir);
	for (uint64_t len = ends[1]; len < ends[2]; len++) {
		cr_assert_eq(truncate(path, (off_t)len), 0);
		vdb_wal_replay r;
		vdb_memtable m;
		vdb_error err;
		cr_assert_eq(replay(tmpdir, &r, &m, &err), VDB_OK, "len %llu: %s",
			     (unsigned long long)len, err.message);
		cr_assert_eq(r.frames, 2, "a partial last frame is not applied");
		cr_assert_eq(r.end, ends[1]);
		cr_assert_eq(r.torn, len > ends[1]);
		cr_assert_eq(m.live, 6);
		vdb_memtable_free(&m);
	}
}

Test(wal, zeros_and_garbage_after_the_last_frame_are_a_torn_tail, .init = setup, .fini = teardown)
{
	uint64_t ends[2];
	wal_with_frames(tmpdir, 2, ends);
	char path[400];
	snprintf(path, sizeof path, "%s/wal-00000001.log", tmpdir);
	FILE *f = fopen(path, "ab");
	char junk[5000] = {0};
	memset(junk + 4000, 0x5a, 1000);
	fwrite(junk, 1, sizeof junk, f);
	fclose(f);
	vdb_wal_replay r;
	vdb_memtable m;
	vdb_error err;
	cr_assert_eq(replay(tmpdir, &r, &m, &err), VDB_OK, "%s", err.message);
	cr_assert_eq(r.frames, 2);
	cr_assert(r.torn);
	vdb_memtable_free(&m);
}

Test(wal, corruption_before_a_valid_frame_names_file_and_offset, .init = setup, .fini = teardown)
{
	uint64_t ends[3];
	wal_with_frames(tmpdir, 3, ends);
	char path[400];
	snprintf(path, sizeof path, "%s/wal-00000001.log", tmpdir);
	/* Flip one byte in every position of the first frame: always an error, never a skip. */
	for (uint64_t pos = VDB_WAL_HEADER_SIZE; pos < ends[0]; pos++) {
		int fd = open(path, O_RDWR);
		unsigned char c;
		cr_assert_eq(pread(fd, &c, 1, (off_t)pos), 1);
		c ^= 0x40;
		cr_assert_eq(pwrite(fd, &c, 1, (off_t)pos), 1);
		vdb_wal_replay r;
		vdb_memtable m;
		vdb_error err;
		cr_assert_eq(replay(tmpdir, &r, &m, &err), VDB_ECORRUPT, "byte %llu",
			     (unsigned long long)pos);
		cr_assert(strstr(err.message, "wal-00000001.log"), "%s", err.message);
		cr_assert(strstr(err.message, "offset 32"), "%s", err.message);
		vdb_memtable_free(&m);
		c ^= 0x40;
		cr_assert_eq(pwrite(fd, &c, 1, (off_t)pos), 1);
		close(fd);
	}
}

Test(wal, header_mismatch_is_corruption, .init = setup, .fini = teardown)
{
	uint64_t ends[1];
	wal_with_frames(tmpdir, 1, ends);
	char path[400];
	snprintf(path, sizeof path, "%s/wal-00000001.log", tmpdir);
	int fd = open(path, O_RDONLY);
	vdb_memtable m;
	vdb_memtable_init(&m, 3);
	vdb_wal_replay r;
	vdb_error err;
	cr_assert_eq(vdb_wal_replay_fd(fd, "wal-00000001.log", 3, 1, 1, &m, &r, &err), VDB_ECORRUPT);
	cr_assert_eq(vdb_wal_replay_fd(fd, "wal-00000001.log", 2, 1, 5, &m, &r, &err), VDB_ECORRUPT,
		     "frames must carry the expected sequence numbers");
	cr_assert(strstr(err.message, "sequence"), "%s", err.message);
	close(fd);
	vdb_memtable_free(&m);
}

/* A reader replays while a writer appends: each frame goes in as two write()s, so the
 * reader's stat often ends inside a frame, and by the time it looks past that frame the
 * writer has finished it and started the next. That is a write in progress, never
 * corruption (it once failed CI: "corrupt record ... followed by valid records"). */
enum { LIVE_FRAMES = 400 };

struct live_wal {
	const char *path;
	const unsigned char *bytes; /* the whole finished log */
	const uint64_t *ends;       /* ends[f]: offset just past frame f */
	const unsigned char *torn;  /* if set, each frame's place first holds these torn_len
				     * bytes, a big frame cut short by a crash, and is then cut
				     * back as a writer starting after the crash does */
	uint64_t torn_len;
	int done;
};

static void *append_in_halves(void *arg)
{
	struct live_wal *w = arg;
	int fd = open(w->path, O_WRONLY);
	cr_assert_geq(fd, 0);
	uint64_t off = VDB_WAL_HEADER_SIZE;
	for (int f = 0; f < LIVE_FRAMES; f++) {
		if (w->torn) {
			/* A crash left a big frame torn at off. The next writer cuts it off,
			 * appends frame f and crashes in turn, in the middle of a big one. */
			if (f == 0)
				cr_assert_eq(pwrite(fd, w->torn, w->torn_len, (off_t)off),
					     (ssize_t)w->torn_len);
			cr_assert_eq(ftruncate(fd, (off_t)off), 0);
			uint64_t len = w->ends[f] - off;
			cr_assert_eq(pwrite(fd, w->bytes + off, len, (off_t)off), (ssize_t)len);
			off = w->ends[f];
			cr_assert_eq(pwrite(fd, w->torn, w->torn_len, (off_t)off),
				     (ssize_t)w->torn_len);
			usleep(300);
			continue;
		}
		uint64_t mid = off + (w->ends[f] - off) / 2;
		cr_assert_eq(pwrite(fd, w->bytes + off, mid - off, (off_t)off), (ssize_t)(mid - off));
		usleep(200); /* as a long write() would, between the pages it copies */
		cr_assert_eq(pwrite(fd, w->bytes + mid, w->ends[f] - mid, (off_t)mid),
			     (ssize_t)(w->ends[f] - mid));
		off = w->ends[f];
		usleep(200);
	}
	close(fd);
	__atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Replays while append_in_halves runs; returns how many replays ended at a frame in
 * progress (torn) or, with recovering, found the log rewritten under them (changed). */
static uint64_t replay_while_appending(int recovering)
{
	/* The finished log, built once: frames of 20 rows with 1 KB payloads, and after them
	 * a frame of 80 rows that only the recovering writer uses, cut to 60%. */
	vdb_error err;
	char src[400], live[400];
	snprintf(src, sizeof src, "%s/src", tmpdir);
	cr_assert_eq(mkdir(src, 0755), 0);
	static uint64_t ends[LIVE_FRAMES + 1];
	/* vdb_wal_append's fsyncs make this slow; the bytes are what matter here. */
	wal_with_sized_frames(src, LIVE_FRAMES + 1, 20, 80, 1000, ends);
	snprintf(src, sizeof src, "%s/src/wal-00000001.log", tmpdir);
	int fd = open(src, O_RDONLY);
	cr_assert_geq(fd, 0);
	uint64_t off = ends[LIVE_FRAMES];
	unsigned char *bytes = malloc(off);
	cr_assert_eq(pread(fd, bytes, off, 0), (ssize_t)off);
	close(fd);

	/* The live log starts as the header alone; the writer appends every frame. */
	snprintf(live, sizeof live, "%s/wal-00000001.log", tmpdir);
	fd = open(live, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	cr_assert_eq(write(fd, bytes, VDB_WAL_HEADER_SIZE), VDB_WAL_HEADER_SIZE);
	close(fd);
	uint64_t big = ends[LIVE_FRAMES - 1];
	struct live_wal w = {live, bytes, ends, recovering ? bytes + big : NULL,
			     (ends[LIVE_FRAMES] - big) * 6 / 10, 0};
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, append_in_halves, &w), 0);
	uint64_t replays = 0, met = 0, last_frames = 0;
	while (!__atomic_load_n(&w.done, __ATOMIC_ACQUIRE)) {
		vdb_wal_replay r;
		vdb_memtable m;
		vdb_status st = replay(tmpdir, &r, &m, &err);
		if (recovering && st == VDB_ECORRUPT && r.changed) {
			met++; /* the caller loads again (vdb_state_load does) */
			vdb_memtable_free(&m);
			continue;
		}
		cr_assert_eq(st, VDB_OK, "replay %llu: %s", (unsigned long long)replays,
			     err.message);
		cr_assert_not(r.changed);
		cr_assert_geq(r.frames, last_frames);
		cr_assert_eq(r.end, r.frames ? ends[r.frames - 1] : VDB_WAL_HEADER_SIZE);
		cr_assert_eq(m.live, r.frames * 20);
		vdb_memtable_free(&m);
		last_frames = r.frames;
		met += !recovering && r.torn;
		replays++;
	}
	pthread_join(t, NULL);
	free(bytes);
	cr_log_info("%llu replays, %llu %s", (unsigned long long)replays, (unsigned long long)met,
		    recovering ? "found the log rewritten under them"
			       : "ended in a frame being written");
	return met;
}

Test(wal, a_frame_being_appended_is_a_torn_tail_not_corruption, .init = setup,
     .fini = teardown)
{
	cr_assert_gt(replay_while_appending(0), 0,
		     "no replay met a frame in progress: the test proved nothing");
}

/* A writer starting after a crash cuts the torn frame off and writes over it. A reader
 * that read the old bytes and then the new ones is told the file changed, not just that
 * it is corrupt. The test cannot require the race to happen, only that it is never
 * reported as plain corruption. */
Test(wal, a_log_rewritten_while_read_is_reported_as_changed, .init = setup, .fini = teardown)
{
	replay_while_appending(1);
}

/* ---- segments and manifest ---- */

Test(segment, write_open_find_verify, .init = setup, .fini = teardown)
{
	vdb_memtable m;
	vdb_memtable_init(&m, 4);
	for (uint64_t i = 0; i < 100; i++) {
		float v[4] = {(float)i, 1, 2, 3};
		char s[16];
		snprintf(s, sizeof s, "s%llu", (unsigned long long)i);
		vdb_id id = i % 2 ? int_id(i) : str_id(s);
		cr_assert_eq(vdb_memtable_upsert(&m, &id, v, i % 3 ? NULL : "{\"k\":1}", 7), 0);
	}
	vdb_id gone = int_id(1);
	vdb_memtable_delete(&m, &gone);
	uint64_t size;
	uint32_t crc;
	vdb_error err;
	vdb_collection_config cfg;
	vdb_collection_config_init(&cfg);
	cfg.dim = 4;
	vdb_row_source src;
	vdb_mem_rows mr;
	vdb_mem_rows_init(&src, &mr, &m);
	uint64_t rows = src.rows;
	cr_assert_eq(rows, 99);
	cr_assert_eq(vdb_segment_write(tmpdir, 7, &cfg, &src, &size, &crc, &err), VDB_OK, "%s",
		     err.message);
	vdb_segment s;
	cr_assert_eq(vdb_segment_open(tmpdir, 7, 4, rows, size, crc, 0, &s, &err), VDB_OK, "%s",
		     err.message);
	cr_assert_eq((uintptr_t)s.vectors % 64, 0, "vectors are 64-byte aligned");
	cr_assert_eq(vdb_segment_verify(&s, &err), VDB_OK);
	vdb_id want = str_id("s42");
	int64_t row;
	cr_assert_eq(vdb_segment_find(&s, &want, vdb_id_hash(&want), &row, &err), VDB_OK);
	cr_assert_geq(row, 0);
	cr_assert_eq(s.vectors[row * 4], 42.0f);
	const char *p;
	size_t plen;
	cr_assert_eq(vdb_segment_payload(&s, (uint64_t)row, &p, &plen, &err), VDB_OK);
	cr_assert_eq(plen, 7);
	cr_assert_eq(memcmp(p, "{\"k\":1}", 7), 0);
	cr_assert_eq(vdb_segment_find(&s, &gone, vdb_id_hash(&gone), &row, &err), VDB_OK);
	cr_assert_eq(row, -1, "the deleted id is not in the segment");
	/* Lookups in ascending hash order from a moving start find what a search from scratch
	 * finds, for ids present and absent (0..199: half of them were never written). */
	vdb_id ids[200];
	char names[200][16];
	for (int i = 0; i < 200; i++) {
		snprintf(names[i], sizeof names[i], "s%d", i);
		ids[i] = i % 2 ? int_id((uint64_t)i) : str_id(names[i]);
	}
	for (int i = 1; i < 200; i++) /* insertion sort by hash */
		for (int j = i; j > 0 && vdb_id_hash(&ids[j - 1]) > vdb_id_hash(&ids[j]); j--) {
			vdb_id t = ids[j];
			ids[j] = ids[j - 1];
			ids[j - 1] = t;
		}
	uint64_t from = 0;
	int found = 0;
	for (int i = 0; i < 200; i++) {
		int64_t a, b;
		uint64_t h = vdb_id_hash(&ids[i]);
		cr_assert_eq(vdb_segment_find(&s, &ids[i], h, &a, &err), VDB_OK);
		cr_assert_eq(vdb_segment_find_from(&s, &ids[i], h, &from, &b, &err), VDB_OK);
		cr_assert_eq(a, b, "lookup %d", i);
		found += b >= 0;
	}
	cr_assert_eq(found, 99);
	/* One pass gives the whole file's CRC too, as a plain read of the file would. */
	char segpath[400];
	snprintf(segpath, sizeof segpath, "%s/seg-00000007.vdb", tmpdir);
	unsigned char *whole = malloc(size);
	int sfd = open(segpath, O_RDONLY);
	cr_assert_eq(pread(sfd, whole, size, 0), (ssize_t)size);
	close(sfd);
	uint32_t file_crc = 0;
	cr_assert_eq(vdb_segment_verify_file(&s, &file_crc, &err), VDB_OK, "%s", err.message);
	cr_assert_eq(file_crc, vdb_crc32c(0, whole, size));
	free(whole);
	vdb_segment_close(&s);
	/* The manifest's expectations must match: a wrong header crc or size is refused. */
	cr_assert_eq(vdb_segment_open(tmpdir, 7, 4, rows, size, crc ^ 1, 0, &s, &err), VDB_ECORRUPT);
	cr_assert(strstr(err.message, "seg-00000007.vdb"), "%s", err.message);
	cr_assert_eq(vdb_segment_open(tmpdir, 7, 4, rows, size + 1, crc, 0, &s, &err), VDB_ECORRUPT);
	/* A flipped vector byte is found by verification. */
	char path[400];
	snprintf(path, sizeof path, "%s/seg-00000007.vdb", tmpdir);
	int fd = open(path, O_RDWR);
	unsigned char c = 0x77;
	cr_assert_eq(pwrite(fd, &c, 1, 700), 1); /* inside the vectors, after the table */
	close(fd);
	cr_assert_eq(vdb_segment_open(tmpdir, 7, 4, rows, size, crc, 0, &s, &err), VDB_OK);
	cr_assert_eq(vdb_segment_verify(&s, &err), VDB_ECORRUPT);
	cr_assert(strstr(err.message, "checksum"), "%s", err.message);
	cr_assert_eq(vdb_segment_verify_file(&s, &file_crc, &err), VDB_ECORRUPT);
	cr_assert(strstr(err.message, "checksum mismatch in section 1"), "%s", err.message);
	vdb_segment_close(&s);
	vdb_memtable_free(&m);
}

Test(manifest, round_trip_and_damage, .init = setup, .fini = teardown)
{
	vdb_manifest_seg segs[2] = {{3, 10, 4096, 77, 0, ""}, {5, 20, 8192, 88, 2, "del-00000005-00000006.vdb"}};
	vdb_manifest m = {9, 4, 100, 7, segs, 2}, back;
	vdb_error err;
	cr_assert_eq(vdb_manifest_write(tmpdir, &m, &err), VDB_OK);
	cr_assert_eq(vdb_manifest_read(tmpdir, &back, &err), VDB_OK, "%s", err.message);
	cr_assert_eq(back.generation, 9);
	cr_assert_eq(back.nseg, 2);
	cr_assert_eq(back.segs[1].deleted, 2);
	cr_assert_str_eq(back.segs[1].del_file, "del-00000005-00000006.vdb");
	vdb_manifest_free(&back);
	char path[400];
	snprintf(path, sizeof path, "%s/MANIFEST", tmpdir);
	struct stat st;
	stat(path, &st);
	cr_assert_eq(truncate(path, st.st_size - 3), 0);
	cr_assert_eq(vdb_manifest_read(tmpdir, &back, &err), VDB_ECORRUPT);
	cr_assert(strstr(err.message, "MANIFEST"), "%s", err.message);
	/* A newer format version is refused, naming both versions. */
	FILE *f = fopen(path, "w");
	fputs("vdb-manifest 9 2 00000000\n{}", f);
	fclose(f);
	cr_assert_eq(vdb_manifest_read(tmpdir, &back, &err), VDB_ECORRUPT);
	cr_assert(strstr(err.message, "version 9") && strstr(err.message, "version 1"), "%s",
		  err.message);
}

/* ---- writer and readers through the public API ---- */

Test(writer, commit_is_visible_whole_to_new_readers_only, .init = setup, .fini = teardown)
{
	create(2, VDB_METRIC_L2, 0);
	vdb_collection *before;
	vdb_error err;
	cr_assert_eq(vdb_collection_open(db, "default", &before, &err), VDB_OK);
	vdb_writer *w = writer();
	float v[2] = {1, 2};
	for (uint64_t i = 0; i < 5; i++) {
		vdb_id id = int_id(i);
		cr_assert_eq(vdb_writer_upsert(w, &id, v, NULL, 0, &err), VDB_OK);
	}
	cr_assert_eq(count(), 0, "nothing is visible before commit");
	cr_assert_eq(vdb_writer_commit(w, &err), VDB_OK, "%s", err.message);
	cr_assert_eq(count(), 5);
	cr_assert_eq(vdb_collection_count(before), 0, "an open view does not change");
	vdb_id id = int_id(9);
	cr_assert_eq(vdb_writer_upsert(w, &id, v, NULL, 0, &err), VDB_OK);
	vdb_writer_close(w); /* uncommitted: dropped */
	cr_assert_eq(count(), 5);
	vdb_collection_close(before);
}

Test(writer, rejects_invalid_records, .init = setup, .fini = teardown)
{
	create(2, VDB_METRIC_COSINE, 0);
	vdb_writer *w = writer();
	vdb_error err;
	float zero[2] = {0, 0}, inf[2] = {1, 1.0f / 0.0f}, ok[2] = {1, 0};
	vdb_id id = int_id(1);
	cr_assert_eq(vdb_writer_upsert(w, &id, zero, NULL, 0, &err), VDB_EDATA);
	cr_assert(strstr(err.message, "zero vector"), "%s", err.message);
	cr_assert_eq(vdb_writer_upsert(w, &id, inf, NULL, 0, &err), VDB_EDATA);
	cr_assert_eq(vdb_writer_upsert(w, &id, ok, "[1]", 3, &err), VDB_EDATA);
	cr_assert_eq(vdb_writer_upsert(w, &id, ok, "{\"a\":1,\"a\":2}", 13, &err), VDB_EDATA);
	vdb_id empty = {1, 0, "", 0}, bad_utf8 = {1, 0, "\xff", 1};
	cr_assert_eq(vdb_writer_upsert(w, &empty, ok, NULL, 0, &err), VDB_EDATA);
	cr_assert_eq(vdb_writer_upsert(w, &bad_utf8, ok, NULL, 0, &err), VDB_EDATA);
	cr_assert_eq(vdb_writer_pending(w), 0);
	vdb_writer_close(w);
}

Test(writer, second_writer_is_refused_with_holder_pid, .init = setup, .fini = teardown)
{
	create(2, VDB_METRIC_L2, 0);
	vdb_writer *w = writer(), *w2;
	vdb_writer_options o;
	vdb_writer_options_init(&o);
	o.wait_seconds = 0;
	vdb_error err;
	cr_assert_eq(vdb_writer_open(db, "default", &o, &w2, &err), VDB_ELOCKED);
	char want[64];
	snprintf(want, sizeof want, "pid %ld", (long)getpid());
	cr_assert(strstr(err.message, want), "%s", err.message);
	o.wait_seconds = 0.2;
	cr_assert_eq(vdb_writer_open(db, "default", &o, &w2, &err), VDB_ELOCKED);
	vdb_writer_close(w);
	o.wait_seconds = 0;
	cr_assert_eq(vdb_writer_open(db, "default", &o, &w2, &err), VDB_OK, "released on close");
	vdb_writer_close(w2);
}

Test(writer, seals_keep_every_record_and_apply_deletions, .init = setup, .fini = teardown)
{
	create(3, VDB_METRIC_L2, 4096);
	vdb_writer *w = writer();
	vdb_error err;
	for (uint64_t i = 0; i < 1000; i++) {
		vdb_id id = int_id(i);
		float v[3] = {(float)i, 0, 0};
		cr_assert_eq(vdb_writer_upsert(w, &id, v, NULL, 0, &err), VDB_OK);
		if (i % 10 == 9)
			cr_assert_eq(vdb_writer_commit(w, &err), VDB_OK, "%s", err.message);
	}
	for (uint64_t i = 0; i < 1000; i += 2) {
		vdb_id id = int_id(i);
		cr_assert_eq(vdb_writer_delete(w, &id, &err), VDB_OK);
		if (i % 20 == 18)
			cr_assert_eq(vdb_writer_commit(w, &err), VDB_OK, "%s", err.message);
	}
	cr_assert_eq(vdb_writer_commit(w, &err), VDB_OK);
	vdb_writer_close(w);
	cr_assert_eq(count(), 500);
	vdb_collection *c;
	cr_assert_eq(vdb_collection_open(db, "default", &c, &err), VDB_OK);
	float q[3] = {500, 0, 0};
	vdb_hit hits[3];
	size_t n;
	cr_assert_eq(vdb_search(c, q, 3, NULL, hits, &n, &err), VDB_OK);
	cr_assert_eq(n, 3);
	vdb_record r;
	cr_assert_eq(vdb_hit_record(c, &hits[0], &r, &err), VDB_OK);
	cr_assert(r.id.num == 499 || r.id.num == 501);
	cr_assert_eq(hits[0].score, 1.0f);
	vdb_id even = int_id(500), odd = int_id(501);
	cr_assert_eq(vdb_get(c, &even, &r, &err), VDB_ENOENT);
	cr_assert_eq(vdb_get(c, &odd, &r, &err), VDB_OK);
	cr_assert_eq(r.vector[0], 501.0f);
	vdb_collection_close(c);
	/* Only files the manifest names are left behind. */
	char cmd[512];
	snprintf(cmd, sizeof cmd, "test $(ls '%s/default' | grep -c '^wal-') -eq 1", db);
	cr_assert_eq(system(cmd), 0, "old logs are removed after a seal");
}

/* Bytes of the collection's log(s) beyond their headers: what is logged and not sealed. */
static long long logged_bytes(const char *coll)
{
	char cmd[600];
	snprintf(cmd, sizeof cmd, "cat '%s/%s'/wal-* | wc -c", db, coll);
	FILE *p = popen(cmd, "r");
	cr_assert(p);
	long long n = -1;
	cr_assert_eq(fscanf(p, "%lld", &n), 1);
	pclose(p);
	return n - VDB_WAL_HEADER_SIZE;
}

static void expect_vector(uint64_t id, float first)
{
	vdb_collection *c;
	vdb_error err;
	vdb_record r;
	vdb_id i = int_id(id);
	cr_assert_eq(vdb_collection_open(db, "default", &c, &err), VDB_OK, "%s", err.message);
	cr_assert_eq(vdb_get(c, &i, &r, &err), VDB_OK, "id %llu", (unsigned long long)id);
	cr_assert_eq(r.vector[0], first, "id %llu: %g", (unsigned long long)id, r.vector[0]);
	vdb_collection_close(c);
}

Test(writer, upsert_rows_checks_then_stores_blocks_directly, .init = setup, .fini = teardown)
{
	create(3, VDB_METRIC_L2, 4096); /* 342 rows of 12 bytes reach the threshold */
	vdb_writer *w = writer();
	vdb_error err;
	/* A logged tail: ids 0..9 and a string id. */
	for (uint64_t i = 0; i < 10; i++) {
		vdb_id id = int_id(i);
		float v[3] = {-1, 0, 0};
		cr_assert_eq(vdb_writer_upsert(w, &id, v, "{\"t\":1}", 7, &err), VDB_OK);
	}
	vdb_id s = str_id("s");
	float sv[3] = {-2, 0, 0};
	cr_assert_eq(vdb_writer_upsert(w, &s, sv, NULL, 0, &err), VDB_OK);
	/* Rows need an empty pending batch. */
	enum { N = 400, STRIDE = 4 };
	static float rows[N * STRIDE];
	for (int i = 0; i < N; i++)
		for (int k = 0; k < STRIDE; k++)
			rows[i * STRIDE + k] = k == 3 ? NAN : (float)(i + k); /* padding: never read */
	cr_assert_eq(vdb_writer_upsert_rows(w, 5, rows, STRIDE, N, 0, NULL, &err), VDB_EINVAL);
	cr_assert_str_eq(err.message, "commit the pending batch before upserting rows");
	cr_assert_eq(vdb_writer_commit(w, &err), VDB_OK);
	long long tail = logged_bytes("default");
	cr_assert_gt(tail, 0);
	cr_assert_eq(vdb_writer_upsert_rows(w, 5, rows, 2, N, 0, NULL, &err), VDB_EINVAL);
	cr_assert_eq(vdb_writer_upsert_rows(w, UINT64_MAX - 1, rows, STRIDE, 3, 0, NULL, &err),
		     VDB_EINVAL);
	cr_assert_str_eq(err.message, "the ids of 3 rows from 18446744073709551614 go beyond the "
				      "largest id");
	/* A bad row: its index and column, nothing stored. */
	rows[250 * STRIDE + 1] = INFINITY;
	size_t bad = 0;
	cr_assert_eq(vdb_writer_upsert_rows(w, 5, rows, STRIDE, N, 0, &bad, &err), VDB_EDATA);
	cr_assert_eq(bad, 250);
	cr_assert_str_eq(err.message, "vector[1] is not finite");
	cr_assert_eq(count(), 11);
	cr_assert_eq(logged_bytes("default"), tail);
	rows[250 * STRIDE + 1] = 1;
	/* Over the threshold: the tail is sealed, then the rows become a segment, unlogged. */
	cr_assert_eq(vdb_writer_upsert_rows(w, 5, rows, STRIDE, N, 0, &bad, &err), VDB_OK, "%s",
		     err.message);
	cr_assert_eq(logged_bytes("default"), 0);
	cr_assert_eq(count(), 5 + N + 1);
	expect_vector(4, -1);
	expect_vector(5, 0);
	expect_vector(404, 399);
	/* Below it: logged, unless VDB_ROWS_LAST says no rows follow (a segment then). */
	cr_assert_eq(vdb_writer_upsert_rows(w, 0, rows + 7 * STRIDE, STRIDE, 50, 0, NULL, &err),
		     VDB_OK);
	cr_assert_gt(logged_bytes("default"), 0);
	cr_assert_eq(count(), 5 + N + 1);
	expect_vector(0, 7);
	expect_vector(49, 56);
	expect_vector(50, 45);
	/* Rows over ids in a segment and in the log: the latest wins, once. */
	cr_assert_eq(vdb_writer_upsert_rows(w, 30, rows + 50 * STRIDE, STRIDE, 350, 0, NULL, &err),
		     VDB_OK);
	cr_assert_eq(logged_bytes("default"), 0);
	cr_assert_eq(count(), 5 + N + 1);
	expect_vector(29, 36);
	expect_vector(30, 50);
	expect_vector(379, 399);
	expect_vector(380, 375);
	/* A short last block of an HNSW collection: a segment too, nothing logged. */
	cr_assert_eq(vdb_writer_upsert_rows(w, 1000, rows, STRIDE, 20, VDB_ROWS_LAST, NULL, &err),
		     VDB_OK);
	cr_assert_eq(logged_bytes("default"), 0);
	cr_assert_eq(count(), 5 + N + 1 + 20);
	expect_vector(1019, 19);
	vdb_writer_close(w);
	char cmd[512];
	snprintf(cmd, sizeof cmd, "test -z \"$(ls '%s/default' | grep tmp-)\"", db);
	cr_assert_eq(system(cmd), 0);
}

Test(writer, bulk_rows_become_a_segment_of_their_own, .init = setup, .fini = teardown)
{
	create(3, VDB_METRIC_L2, 1 << 20);
	vdb_writer *w = writer();
	vdb_error err;
	float v[3] = {-1, 0, 0};
	/* A logged tail: ids 0..9, and a string id. */
	for (uint64_t i = 0; i < 10; i++) {
		vdb_id id = int_id(i);
		cr_assert_eq(vdb_writer_upsert(w, &id, v, NULL, 0, &err), VDB_OK);
	}
	vdb_id s = str_id("s");
	cr_assert_eq(vdb_writer_upsert(w, &s, v, NULL, 0, &err), VDB_OK);
	/* Bulk rows and other operations do not share a batch. */
	vdb_id five = int_id(5);
	cr_assert_eq(vdb_writer_upsert_bulk(w, &five, v, NULL, 0, &err), VDB_EINVAL);
	cr_assert_str_eq(err.message, "commit the pending batch before bulk rows");
	cr_assert_eq(vdb_writer_commit(w, &err), VDB_OK);
	cr_assert_gt(logged_bytes("default"), 0);
	/* Checked like any upsert. */
	float inf[3] = {0, INFINITY, 0};
	cr_assert_eq(vdb_writer_upsert_bulk(w, &five, inf, NULL, 0, &err), VDB_EDATA);
	cr_assert_str_eq(err.message, "vector[1] is not finite");
	cr_assert_eq(vdb_writer_upsert_bulk(w, &five, v, "[1]", 3, &err), VDB_EDATA);
	cr_assert_str_eq(err.message, "payload must be a JSON object");
	/* Ids 5..24 (5 twice: the later row wins) and the string id, with payloads. */
	for (uint64_t i = 5; i < 25; i++) {
		vdb_id id = int_id(i);
		float x[3] = {(float)i, 1, 0};
		cr_assert_eq(vdb_writer_upsert_bulk(w, &id, x, "{\"b\":1}", 7, &err), VDB_OK);
	}
	float later[3] = {55, 1, 0};
	cr_assert_eq(vdb_writer_upsert_bulk(w, &five, later, NULL, 0, &err), VDB_OK);
	cr_assert_eq(vdb_writer_upsert_bulk(w, &s, later, NULL, 0, &err), VDB_OK);
	cr_assert_eq(vdb_writer_pending(w), 22);
	cr_assert_eq(vdb_writer_upsert(w, &five, v, NULL, 0, &err), VDB_EINVAL);
	cr_assert_str_eq(err.message, "commit the pending bulk rows first");
	cr_assert_eq(vdb_writer_delete(w, &five, &err), VDB_EINVAL);
	cr_assert_eq(count(), 11); /* nothing visible before the commit */
	cr_assert_eq(vdb_writer_commit(w, &err), VDB_OK, "%s", err.message);
	/* The tail was sealed first, then the rows became a segment: nothing is logged. */
	cr_assert_eq(logged_bytes("default"), 0);
	uint64_t segs = 0, live = 0;
	cr_assert_eq(vdb_writer_stats(w, &segs, &live), VDB_OK);
	cr_assert_eq(segs, 2);
	cr_assert_eq(live, 26);
	expect_vector(4, -1);
	expect_vector(5, 55);
	expect_vector(24, 24);
	/* Rolled back: nothing; and the writer takes ordinary operations again. */
	vdb_id late = int_id(100);
	size_t empty = vdb_writer_pending_bytes(w);
	cr_assert_eq(vdb_writer_upsert_bulk(w, &late, v, NULL, 0, &err), VDB_OK);
	cr_assert_gt(vdb_writer_pending_bytes(w), empty);
	vdb_writer_rollback(w);
	cr_assert_eq(vdb_writer_pending(w), 0);
	cr_assert_eq(vdb_writer_pending_bytes(w), empty);
	cr_assert_eq(vdb_writer_upsert(w, &late, v, NULL, 0, &err), VDB_OK);
	cr_assert_eq(vdb_writer_commit(w, &err), VDB_OK);
	vdb_writer_close(w);
	cr_assert_eq(count(), 27);
}

Test(writer, upsert_rows_last_block_of_a_flat_collection, .init = setup, .fini = teardown)
{
	create_indexed(2, VDB_METRIC_COSINE, 16384, VDB_INDEX_FLAT); /* 2048 rows of 8 bytes */
	vdb_error err;
	vdb_writer *w = writer();
	static float rows[2 * 600];
	for (int i = 0; i < 1200; i++)
		rows[i] = (float)(i / 2 + 1);
	/* Cosine: a zero vector is refused with its row. */
	rows[2 * 300] = rows[2 * 300 + 1] = 0;
	size_t bad = 0;
	cr_assert_eq(vdb_writer_upsert_rows(w, 0, rows, 2, 600, VDB_ROWS_LAST, &bad, &err), VDB_EDATA);
	cr_assert_eq(bad, 300);
	cr_assert_str_eq(err.message, "a zero vector has no direction (the collection's metric is cosine)");
	rows[2 * 300] = 1;
	/* A last block, whatever its size: a segment; not the last: logged. */
	cr_assert_eq(vdb_writer_upsert_rows(w, 0, rows, 2, 600, VDB_ROWS_LAST, NULL, &err), VDB_OK);
	cr_assert_eq(logged_bytes("default"), 0);
	cr_assert_eq(vdb_writer_upsert_rows(w, 600, rows, 2, 200, VDB_ROWS_LAST, NULL, &err), VDB_OK);
	cr_assert_eq(logged_bytes("default"), 0);
	cr_assert_eq(vdb_writer_upsert_rows(w, 800, rows, 2, 300, 0, NULL, &err), VDB_OK);
	cr_assert_gt(logged_bytes("default"), 0);
	vdb_writer_close(w);
	cr_assert_eq(count(), 1100);
	expect_vector(599, 600);
	expect_vector(600, 1);
	expect_vector(1099, 300);
}

/* Rows replacing every row of several segments at once: each of them goes, with its
 * deletion file (the files to remove outnumber the segments). */
Test(writer, upsert_rows_over_whole_segments_drops_them, .init = setup, .fini = teardown)
{
	create_indexed(2, VDB_METRIC_L2, 16384, VDB_INDEX_FLAT);
	vdb_error err;
	vdb_writer *w = writer();
	static float rows[2 * 400];
	for (int i = 0; i < 800; i++)
		rows[i] = (float)i;
	/* Four segments, each smaller than the one before (no merge: see merge_policy), ids
	 * 0..392, and a deletion in each (logged: the block's seal of the log gives each a
	 * deletion file). */
	static const uint64_t first[] = {0, 300, 370, 390}, n[] = {300, 70, 20, 3};
	for (size_t s = 0; s < 4; s++)
		cr_assert_eq(vdb_writer_upsert_rows(w, first[s], rows, 2, n[s], VDB_ROWS_LAST, NULL,
						    &err),
			     VDB_OK, "%s", err.message);
	for (size_t s = 0; s < 4; s++) {
		vdb_id id = int_id(first[s] + 1);
		cr_assert_eq(vdb_writer_delete(w, &id, &err), VDB_OK);
	}
	cr_assert_eq(vdb_writer_commit(w, &err), VDB_OK, "%s", err.message);
	uint64_t segs = 0, live = 0;
	cr_assert_eq(vdb_writer_stats(w, &segs, &live), VDB_OK);
	cr_assert_eq(segs, 4, "%llu segments", (unsigned long long)segs);
	/* One block over ids 0..399: every older row is replaced. */
	for (int i = 0; i < 800; i++)
		rows[i] = (float)(1000 + i);
	cr_assert_eq(vdb_writer_upsert_rows(w, 0, rows, 2, 400, VDB_ROWS_LAST, NULL, &err), VDB_OK,
		     "%s", err.message);
	cr_assert_eq(vdb_writer_stats(w, &segs, &live), VDB_OK);
	cr_assert_eq(segs, 1);
	cr_assert_eq(live, 400);
	vdb_writer_close(w);
	cr_assert_eq(count(), 400);
	expect_vector(7, 1014);
	expect_vector(399, 1798);
	char cmd[512];
	snprintf(cmd, sizeof cmd, "test \"$(ls '%s/default' | grep -c -E '^(seg|del)-')\" -eq 1", db);
	cr_assert_eq(system(cmd), 0, "only the new segment is left");
}

Test(writer, reopen_after_crash_files_removes_orphans, .init = setup, .fini = teardown)
{
	create(2, VDB_METRIC_L2, 0);
	char cmd[600];
	snprintf(cmd, sizeof cmd,
		 "cd '%s/default' && touch seg-00000099.vdb wal-00000007.log MANIFEST.tmp-1 "
		 "del-00000001-00000002.vdb notes.txt",
		 db);
	cr_assert_eq(system(cmd), 0);
	vdb_writer_close(writer());
	snprintf(cmd, sizeof cmd,
		 "cd '%s/default' && test ! -e seg-00000099.vdb && test ! -e wal-00000007.log && "
		 "test ! -e MANIFEST.tmp-1 && test ! -e del-00000001-00000002.vdb && test -e notes.txt",
		 db);
	cr_assert_eq(system(cmd), 0, "orphans removed, foreign files kept");
}

Test(create, refuses_existing_and_foreign_directories, .init = setup, .fini = teardown)
{
	create(2, VDB_METRIC_L2, 0);
	vdb_collection_config cfg;
	vdb_collection_config_init(&cfg);
	cfg.dim = 2;
	vdb_error err;
	cr_assert_eq(vdb_collection_create(db, "default", &cfg, &err), VDB_EEXIST);
	cr_assert(strstr(err.message, "already exists"), "%s", err.message);
	char other[400];
	snprintf(other, sizeof other, "%s/other", tmpdir);
	mkdir(other, 0755);
	char f[450];
	snprintf(f, sizeof f, "%s/file", other);
	fclose(fopen(f, "w"));
	cr_assert_eq(vdb_collection_create(other, "default", &cfg, &err), VDB_EEXIST);
	cr_assert(strstr(err.message, "not a vdb database"), "%s", err.message);
	vdb_collection *c;
	cr_assert_eq(vdb_collection_open(db, "nope", &c, &err), VDB_ENOENT);
	cr_assert(strstr(err.message, "does not exist"), "%s", err.message);
}

/* Records in segments and in the log tail, deleted and replaced ones, integer and string
 * ids: an id-order cursor returns exactly the live (matching) records, in vdb_id_compare
 * order, with their latest vectors; a storage-order cursor the same set. */
Test(cursor, id_order_over_segments_and_log, .init = setup, .fini = teardown)
{
	create(2, VDB_METRIC_L2, 4096); /* small seals: several segments */
	vdb_writer *w = writer();
	vdb_error err;
	char names[300][12];
	for (int i = 0; i < 300; i++) {
		/* Ids in a scrambled order, every third a string. */
		uint64_t n = (uint64_t)(i * 7919) % 1000;
		vdb_id id = int_id(n);
		if (i % 3 == 0) {
			snprintf(names[i], sizeof names[i], "s%03u", (unsigned)n);
			id = str_id(names[i]);
		}
		float v[2] = {(float)i, (float)n};
		const char *payload = i % 2 ? "{\"odd\":true}" : "{\"odd\":false}";
		cr_assert_eq(vdb_writer_upsert(w, &id, v, payload, strlen(payload), &err), VDB_OK);
		if (i % 25 == 24)
			cr_assert_eq(vdb_writer_commit(w, &err), VDB_OK, "%s", err.message);
	}
	/* Deletes and a replacement, still in the log. */
	vdb_id gone = int_id((uint64_t)(1 * 7919) % 1000), again = str_id(names[3]);
	float nv[2] = {-1, -1};
	cr_assert_eq(vdb_writer_delete(w, &gone, &err), VDB_OK);
	cr_assert_eq(vdb_writer_upsert(w, &again, nv, "{\"odd\":true}", 12, &err), VDB_OK);
	cr_assert_eq(vdb_writer_commit(w, &err), VDB_OK, "%s", err.message);
	vdb_writer_close(w);

	vdb_collection *c;
	cr_assert_eq(vdb_collection_open(db, "default", &c, &err), VDB_OK, "%s", err.message);
	vdb_filter *odd;
	cr_assert_eq(vdb_filter_parse("{\"odd\":true}", 12, &odd, &err), VDB_OK);
	for (int filtered = 0; filtered < 2; filtered++) {
		const vdb_filter *f = filtered ? odd : NULL;
		vdb_cursor *by_id, *stored;
		cr_assert_eq(vdb_cursor_open_ordered(c, f, VDB_ORDER_ID, &by_id, &err), VDB_OK,
			     "%s", err.message);
		cr_assert_eq(vdb_cursor_open_ordered(c, f, VDB_ORDER_STORAGE, &stored, &err), VDB_OK);
		size_t n = 0, m = 0;
		vdb_id prev = {0};
		char prev_str[16];
		int has;
		vdb_record rec;
		for (;;) {
			cr_assert_eq(vdb_cursor_next(by_id, &rec, &has, &err), VDB_OK, "%s", err.message);
			if (!has)
				break;
			if (n)
				cr_assert_lt(vdb_id_compare(&prev, &rec.id), 0, "record %zu out of order", n);
			prev = rec.id;
			if (rec.id.is_string) { /* the record's bytes live until the next call */
				memcpy(prev_str, rec.id.str, rec.id.len);
				prev.str = prev_str;
			}
			cr_assert(!(rec.id.is_string == 0 && rec.id.num == gone.num), "a deleted record");
			if (rec.id.is_string && rec.id.len == again.len &&
			    !memcmp(rec.id.str, again.str, again.len))
				cr_assert(rec.vector[0] == -1, "the replaced record's old vector");
			if (filtered)
				cr_assert(memmem(rec.payload, rec.payload_len, "true", 4), "a record the filter excludes");
			n++;
		}
		while (!vdb_cursor_next(stored, &rec, &has, &err) && has)
			m++;
		cr_assert_eq(n, m, "id order returns %zu records, storage order %zu", n, m);
		uint64_t want = 0;
		cr_assert_eq(vdb_collection_count_where(c, f, &want, &err), VDB_OK);
		cr_assert_eq(n, want);
		vdb_cursor_close(by_id);
		vdb_cursor_close(stored);
	}
	vdb_cursor *bad;
	cr_assert_eq(vdb_cursor_open_ordered(c, NULL, (vdb_order)7, &bad, &err), VDB_EINVAL);
	vdb_filter_free(odd);
	vdb_collection_close(c);
}

/* Option structs carry their size: an older caller's smaller struct gets the defaults of
 * the fields it lacks; an uninitialized or newer (larger) one is refused, not misread. */
Test(options, sized_structs, .init = setup, .fini = teardown)
{
	create(2, VDB_METRIC_L2, 0);
	vdb_error err;
	vdb_writer *w;
	vdb_writer_options o;
	vdb_writer_options_init(&o);
	cr_assert_eq(o.size, sizeof o);
	/* A caller built before dry_run and threads existed: whatever lies beyond its size is
	 * not read (here: a dry run the caller never asked for). */
	o.size = offsetof(vdb_writer_options, dry_run);
	o.dry_run = 1;
	cr_assert_eq(vdb_writer_open(db, "default", &o, &w, &err), VDB_OK, "%s", err.message);
	vdb_id id = int_id(1);
	float v[2] = {1, 2};
	cr_assert_eq(vdb_writer_upsert(w, &id, v, NULL, 0, &err), VDB_OK);
	cr_assert_eq(vdb_writer_commit(w, &err), VDB_OK);
	vdb_writer_close(w);
	cr_assert_eq(count(), 1, "the old caller's commit was a real one");
	for (size_t bad = 0; bad < 2; bad++) {
		vdb_writer_options_init(&o);
		o.size = bad ? sizeof o + 8 : 0;
		cr_assert_eq(vdb_writer_open(db, "default", &o, &w, &err), VDB_EINVAL);
		cr_assert(strstr(err.message, "vdb_writer_options: size"), "%s", err.message);
	}
	vdb_collection *c;
	cr_assert_eq(vdb_collection_open(db, "default", &c, &err), VDB_OK);
	vdb_search_options so;
	vdb_search_options_init(&so);
	so.size = 3;
	vdb_hit hits[1];
	size_t n;
	cr_assert_eq(vdb_search(c, v, 1, &so, hits, &n, &err), VDB_EINVAL);
	vdb_search_options_init(&so);
	cr_assert_eq(vdb_search(c, v, 1, &so, hits, &n, &err), VDB_OK, "%s", err.message);
	cr_assert_eq(n, 1);
	vdb_collection_close(c);
}

static int stop_after_three(void *ctx)
{
	return ++*(int *)ctx >= 3;
}

/* Cancellation is a callback: a writer waiting for the lock asks it while it waits and
 * gives up with VDB_EINTR once it says stop. */
Test(options, cancel_callback_stops_a_waiting_writer, .init = setup, .fini = teardown)
{
	create(2, VDB_METRIC_L2, 0);
	vdb_writer *holder = writer(), *w = NULL;
	vdb_writer_options o;
	vdb_writer_options_init(&o); /* waits as long as it takes, unless cancelled */
	int asked = 0;
	o.cancel = (vdb_cancel){stop_after_three, &asked};
	vdb_error err;
	cr_assert_eq(vdb_writer_open(db, "default", &o, &w, &err), VDB_EINTR, "%s", err.message);
	cr_assert_eq(asked, 3);
	cr_assert_null(w);
	vdb_writer_close(holder);
	asked = 0;
	cr_assert_eq(vdb_writer_open(db, "default", &o, &w, &err), VDB_OK, "%s", err.message);
	vdb_writer_close(w);
}

/* Parsers follow the one return convention: a status, and a message naming the word. */
Test(names, parsers_return_a_status_and_a_message)
{
	vdb_error err;
	vdb_metric m;
	vdb_index_type ix;
	vdb_field_type ft;
	cr_assert_eq(vdb_metric_parse("cosine", &m, &err), VDB_OK);
	cr_assert_eq(m, VDB_METRIC_COSINE);
	cr_assert_eq(vdb_metric_parse("L2", &m, &err), VDB_EINVAL);
	cr_assert_str_eq(err.message, "unknown metric 'L2' (expected cosine, l2 or dot)");
	cr_assert_eq(vdb_index_parse("flat", &ix, NULL), VDB_OK);
	cr_assert_eq(ix, VDB_INDEX_FLAT);
	cr_assert_eq(vdb_index_parse("ivf", &ix, &err), VDB_EINVAL);
	cr_assert_str_eq(err.message, "unknown index 'ivf' (expected hnsw or flat)");
	cr_assert_eq(vdb_field_type_parse("int", &ft, &err), VDB_OK);
	cr_assert_eq(ft, VDB_FIELD_INT);
	cr_assert_eq(vdb_field_type_parse("date", &ft, &err), VDB_EINVAL);
	cr_assert_str_eq(err.message, "unknown type 'date' (expected keyword, int or float)");
}

/* A search's result line as vdb-query prints it, through the public API. */
Test(cursor, result_lines, .init = setup, .fini = teardown)
{
	create(2, VDB_METRIC_L2, 0);
	vdb_writer *w = writer();
	vdb_error err;
	vdb_id a = int_id(7), b = str_id("doc\"2");
	float va[2] = {1, 0}, vb[2] = {0, 1};
	cr_assert_eq(vdb_writer_upsert(w, &a, va, "{\"lang\":\"en\"}", 13, &err), VDB_OK);
	cr_assert_eq(vdb_writer_upsert(w, &b, vb, NULL, 0, &err), VDB_OK);
	cr_assert_eq(vdb_writer_commit(w, &err), VDB_OK);
	vdb_writer_close(w);
	vdb_collection *c;
	cr_assert_eq(vdb_collection_open(db, "default", &c, &err), VDB_OK);
	vdb_hit hits[2];
	size_t n;
	float q[2] = {1, 0.5f};
	cr_assert_eq(vdb_search(c, q, 2, NULL, hits, &n, &err), VDB_OK, "%s", err.message);
	vdb_text t = {0};
	cr_assert_eq(vdb_jsonl_append_hits(&t, c, hits, n, 0, &err), VDB_OK);
	cr_assert_eq(vdb_jsonl_append_hits(&t, c, hits, n, VDB_HITS_PAYLOAD | VDB_HITS_VECTOR, &err),
		     VDB_OK);
	cr_assert_eq(vdb_jsonl_append_hits(&t, c, hits, 0, 0, &err), VDB_OK);
	cr_assert_eq(vdb_text_append(&t, "", 1), VDB_OK);
	cr_assert_str_eq(t.data,
			 "{\"results\":[{\"id\":7,\"score\":0.5},{\"id\":\"doc\\\"2\",\"score\":1.118034}]}\n"
			 "{\"results\":[{\"id\":7,\"score\":0.5,\"payload\":{\"lang\":\"en\"},"
			 "\"vector\":[1,0]},{\"id\":\"doc\\\"2\",\"score\":1.118034,\"payload\":null,"
			 "\"vector\":[0,1]}]}\n"
			 "{\"results\":[]}\n");
	vdb_text_free(&t);
	vdb_collection_close(c);
}
