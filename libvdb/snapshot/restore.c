/* Restoring a snapshot: nothing becomes visible before everything is verified.
 *
 *   1. The archive's manifest is read and validated first: it is the list of the only
 *      names that may be written, with their sizes and CRC32Cs (amanifest.c).
 *   2. A fresh directory is made beside TARGET (mkdtemp: ".NAME.restore-PID-XXXXXX", its
 *      flock held until the end; one that a killed restore left is removed). Each tar
 *      entry must be a regular file whose name the manifest lists as stored in this archive,
 *      not seen before, of exactly the listed size; it is written below the temporary
 *      directory only (O_EXCL | O_NOFOLLOW, in directories we created), its CRC compared at
 *      its end, and fsynced. zstd's window is capped and the total output is budgeted from
 *      the manifest, so a small hostile archive cannot exhaust memory or disk.
 *   3. An incremental's other entries come from the snapshots it names, looked up in the
 *      chain directory, each checked against the id recorded for it.
 *   4. The result is checked as vdb-check would (check.c) and its record counts compared
 *      with the manifest's; the directories are fsynced. One difference: the CRC of each
 *      segment section is computed while extracting, from the same buffer that is passed
 *      to write() and whose whole-file CRC matched the manifest, and the check uses it
 *      instead of reading the section back. Reading back would prove nothing more: the
 *      files were just written, so a read is served from the very page-cache pages the
 *      write filled, never from the disk; what reaches the disk is vouched for by write()
 *      returning every byte and by fsync succeeding, in both cases. The check still parses
 *      every header and follows every structure (id index, payload offsets and indexes,
 *      graph, log, record counts) through the files as written, and a section whose range
 *      the stream did not see exactly (a table out of order) is read back as before.
 *   5. rename() makes it TARGET (or, with --force, renameat2(RENAME_EXCHANGE) swaps it with
 *      the old database in one step, while we hold every writer lock of the old one); the
 *      parent is fsynced. Any failure before this removes the temporary directory; a crash
 *      leaves it behind, hidden, and TARGET untouched, until the next restore beside it
 *      finds its process gone and its flock free (vdb_remove_leftovers). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../admin/check.h"
#include "../formats/json.h"
#include "../storage/db.h"
#include "../storage/format.h"
#include "../storage/lock.h"
#include "../storage/segment.h"
#include "../storage/state.h"
#include "../util/crc32c.h"
#include "../util/error.h"
#include "../util/io.h"
#include "amanifest.h"
#include "base.h"
#include "../util/zstream.h"

/* Bytes checksummed then handed to write() at once: small enough to stay in the core's
 * cache between the two. With 1 MiB pieces the copy into the page cache read them back from
 * memory, and on the 2-core bench machine a restore took 360-700 ms of CPU instead of a
 * steady 360-395 ms (scripts/bench-snapshot's 300k rows, 16 runs each). */
#define CHUNK (64u << 10)

void vdb_restore_options_init(vdb_restore_options *o)
{
	memset(o, 0, sizeof *o);
	o->size = sizeof *o;
}

/* Written files whose fsync is still due (see sync_later). */
#define PENDING_MAX 256

typedef struct rst {
	const vdb_restore_options *o;
	int pending[PENDING_MAX];
	char pending_name[PENDING_MAX][VDB_TAR_NAME_MAX + 1];
	size_t npending;
	char tmp[4096]; /* the temporary database (with verify_only, a scratch copy) */
	int tmp_fd;     /* open on it, holding its flock (vdb_hold_tmp); -1 when none */
	vdb_arc_manifest m;
	unsigned char *done; /* per entry of m: extracted and verified */
	vdb_restore_stats stats;
	uint64_t work_done, work_total; /* bytes, for o->progress */
	vdb_known_crcs known; /* section CRCs of the segments written, for verify_tree */
} rst;

/* The CRCs of a segment file's sections, computed from the bytes as they stream past on
 * their way to write(), so that the check of the restored tree need not read them back
 * (see verify_tree). n == 0: not a segment, or a table this does not follow (sections out
 * of order, overlapping or past the end): the check then reads those sections itself. */
typedef struct secsum {
	uint32_t n;
	vdb_section sec[VDB_SEG_MAX_SECTIONS];
	uint32_t crc[VDB_SEG_MAX_SECTIONS];
} secsum;

static int is_segment_name(const char *name)
{
	const char *base = strrchr(name, '/');
	size_t n = strlen(name);
	return base && !strncmp(base + 1, "seg-", 4) && n > 4 && !strcmp(name + n - 4, ".vdb");
}

static int has_prefix_suffix(const char *name, const char *prefix, const char *suffix)
{
	const char *base = strrchr(name, '/');
	base = base ? base + 1 : name;
	size_t n = strlen(base), p = strlen(prefix), s = strlen(suffix);
	return n > p + s && !strncmp(base, prefix, p) && !strcmp(base + n - s, suffix);
}

/* The header of a segment, log or deletion file, checked as soon as its first bytes arrive
 * (head: all of them, or at least the largest header): an entry whose header is damaged,
 * or describes a file of another size than the manifest declares, is refused before
 * anything more of it is written -- a manifest claiming a 2 GiB segment does not get 2 GiB
 * written and fsynced before the checksum at its end says no. */
static vdb_status check_head(const char *what, const vdb_arc_entry *e, const unsigned char *h,
			     size_t len, vdb_error *err)
{
	vdb_section sec[VDB_SEG_MAX_SECTIONS];
	uint32_t n;
	if (is_segment_name(e->name)) {
		if (vdb_segment_table(h, len, sec, &n) ||
		    vdb_le32(h + 124) != vdb_crc32c(vdb_crc32c(0, h, 124), h + VDB_SEG_HEADER_SIZE,
						   (size_t)n * VDB_SEG_SECTION_SIZE))
			return vdb_err(err, VDB_ECORRUPT, "%s: entry '%s': not a segment, or its header "
				       "is damaged", what, e->name);
		if (vdb_le64(h + 40) != e->size)
			return vdb_err(err, VDB_ECORRUPT, "%s: entry '%s': its segment header says %"
				       PRIu64 " bytes, the manifest %" PRIu64, what, e->name,
				       vdb_le64(h + 40), e->size);
	} else if (has_prefix_suffix(e->name, "wal-", ".log")) {
		if (len < VDB_WAL_HEADER_SIZE || memcmp(h, VDB_WAL_MAGIC, 8) ||
		    vdb_le32(h + 28) != vdb_crc32c(0, h, 28))
			return vdb_err(err, VDB_ECORRUPT, "%s: entry '%s': not a log, or its header is "
				       "damaged", what, e->name);
	} else if (has_prefix_suffix(e->name, "del-", ".vdb")) {
		if (len < VDB_DEL_HEADER_SIZE || memcmp(h, VDB_DEL_MAGIC, 8))
			return vdb_err(err, VDB_ECORRUPT, "%s: entry '%s': not a deletion file, or its "
				       "header is damaged", what, e->name);
	}
	return VDB_OK;
}

/* head: the file's first bytes (all of them, or at least the largest header). */
static void secsum_start(secsum *ss, const unsigned char *head, size_t len, uint64_t size)
{
	ss->n = 0;
	uint32_t n;
	if (vdb_segment_table(head, len, ss->sec, &n))
		return;
	uint64_t end = 0;
	for (uint32_t i = 0; i < n; i++) {
		const vdb_section *sec = &ss->sec[i];
		if (sec->off < end || sec->off > size || sec->len > size - sec->off)
			return;
		end = sec->off + sec->len;
		ss->crc[i] = 0;
	}
	ss->n = n;
}

/* Continues the file's CRC over the chunk at file offset pos, and each section's over the
 * part of it that falls in that section, reading each byte once: inside a section only the
 * section's CRC runs, and it is combined into the file's when the section ends
 * (vdb_crc32c_combine costs no pass over the data). */
static uint32_t secsum_chunk(secsum *ss, uint32_t crc, const unsigned char *p, size_t n,
			     uint64_t pos)
{
	uint32_t k = 0;
	while (n) {
		while (k < ss->n && ss->sec[k].off + ss->sec[k].len <= pos)
			k++;
		size_t piece = n;
		if (k < ss->n && ss->sec[k].off <= pos) {
			uint64_t left = ss->sec[k].off + ss->sec[k].len - pos;
			if (left < piece)
				piece = (size_t)left;
			ss->crc[k] = vdb_crc32c(ss->crc[k], p, piece);
			if (piece == left)
				crc = vdb_crc32c_combine(crc, ss->crc[k], ss->sec[k].len);
		} else {
			if (k < ss->n && ss->sec[k].off - pos < piece)
				piece = (size_t)(ss->sec[k].off - pos);
			crc = vdb_crc32c(crc, p, piece);
		}
		p += piece;
		pos += piece;
		n -= piece;
	}
	return crc;
}

/* Records the sections' CRCs of the file just written as `name`. */
static vdb_status secsum_keep(rst *r, const secsum *ss, const char *name, vdb_error *err)
{
	if (r->known.n + ss->n > r->known.cap) {
		size_t cap = r->known.cap ? r->known.cap * 2 : 64;
		while (cap < r->known.n + ss->n)
			cap *= 2;
		vdb_known_crc *v = realloc(r->known.v, cap * sizeof *v);
		if (!v)
			return vdb_err_nomem(err);
		r->known.v = v;
		r->known.cap = cap;
	}
	for (uint32_t i = 0; i < ss->n; i++)
		r->known.v[r->known.n++] =
			(vdb_known_crc){name, ss->sec[i].off, ss->sec[i].len, ss->crc[i]};
	return VDB_OK;
}

static int has_dotdot(const char *name)
{
	for (const char *p = name; (p = strstr(p, "..")); p += 2)
		if ((p == name || p[-1] == '/') && (p[2] == '\0' || p[2] == '/'))
			return 1;
	return 0;
}

/* Judges a tar header against the archive's manifest; returns the entry index or -1. */
static long admit(const vdb_arc_manifest *am, const char *what, const vdb_tar_entry *t,
		  const unsigned char *seen, vdb_error *err)
{
	const char *n = t->name;
	if (n[0] == '/')
		return vdb_err(err, VDB_ECORRUPT, "%s: entry '%s': absolute path", what, n), -1;
	if (has_dotdot(n))
		return vdb_err(err, VDB_ECORRUPT, "%s: entry '%s': '..' in the path", what, n), -1;
	if (t->type != '0' && t->type != '\0')
		return vdb_err(err, VDB_ECORRUPT, "%s: entry '%s': a %s, only regular files are "
			       "allowed", what, n, vdb_tar_type_name(t->type)), -1;
	long k = vdb_arc_find(am, n);
	if (k < 0 || am->entries[k].from >= 0)
		return vdb_err(err, VDB_ECORRUPT, "%s: entry '%s' is not in the manifest", what, n),
		       -1;
	if (seen[k])
		return vdb_err(err, VDB_ECORRUPT, "%s: entry '%s' appears twice", what, n), -1;
	if (t->size != vdb_arc_stored_size(&am->entries[k]))
		return vdb_err(err, VDB_ECORRUPT, "%s: entry '%s' is %" PRIu64 " bytes, the "
			       "manifest says %" PRIu64, what, n, t->size,
			       vdb_arc_stored_size(&am->entries[k])), -1;
	return k;
}

/* Creates tmp/<name> (and tmp/<collection> first when needed): never follows a link.
 * excl == 0: opens it when it exists (a log whose pieces come from several archives). */
static int create_in_tmp(rst *r, const char *name, int excl, vdb_error *err)
{
	char path[4096];
	const char *slash = strchr(name, '/');
	if (slash) {
		if (snprintf(path, sizeof path, "%s/%.*s", r->tmp, (int)(slash - name), name) >=
		    (int)sizeof path)
			return vdb_err(err, VDB_EINVAL, "path too long: %s", r->tmp), -1;
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			return vdb_err_sys(err, VDB_EIO, "create %s", path), -1;
	}
	if (vdb_path(path, sizeof path, r->tmp, name))
		return vdb_err(err, VDB_EINVAL, "path too long: %s", r->tmp), -1;
	int fd = open(path, O_WRONLY | O_CREAT | (excl ? O_EXCL : 0) | O_NOFOLLOW | O_CLOEXEC,
		      0644);
	if (fd < 0)
		vdb_err_sys(err, VDB_EIO, "create %s", path);
	return fd;
}

/* fsyncs and closes every pending file (with err NULL: only closes, after a failure). */
static vdb_status sync_pending(rst *r, vdb_error *err)
{
	vdb_status st = VDB_OK;
	for (size_t i = 0; i < r->npending; i++) {
		/* Durable before the rename that will make it part of TARGET (a scratch copy that
		 * is only checked, then removed, need not be). */
		if (err && !st && !r->o->verify_only && fsync(r->pending[i]) < 0)
			st = vdb_err_sys(err, VDB_EIO, "fsync %s/%s", r->tmp, r->pending_name[i]);
		if (close(r->pending[i]) < 0 && err && !st)
			st = vdb_err_sys(err, VDB_EIO, "close %s/%s", r->tmp, r->pending_name[i]);
	}
	r->npending = 0;
	return st;
}

/* Files are fsynced in groups, not one by one as they are written: writeback of each starts
 * at once (sync_file_range) while the next entries are decompressed, and the fsyncs at the
 * end find most of the work done. The descriptors stay open until their fsync, so a
 * writeback error cannot be missed. */
static vdb_status sync_later(rst *r, int fd, const char *name, vdb_error *err)
{
	if (!r->o->verify_only)
		sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
	r->pending[r->npending] = fd;
	snprintf(r->pending_name[r->npending], sizeof r->pending_name[0], "%s", name);
	if (++r->npending < PENDING_MAX)
		return VDB_OK;
	return sync_pending(r, err);
}

/* Checksums n bytes of an entry found at offset `at` and writes them to fd (or nowhere). */
static vdb_status put(rst *r, int fd, const vdb_arc_entry *e, secsum *ss, uint32_t *crc,
		      const unsigned char *p, size_t n, uint64_t at, uint64_t *started,
		      vdb_error *err)
{
	*crc = secsum_chunk(ss, *crc, p, n, at);
	if (fd >= 0) {
		if (vdb_write_all(fd, p, n) < 0)
			return vdb_err_sys(err, VDB_EIO, "write %s/%s", r->tmp, e->name);
		vdb_start_writeback(fd, started, at + n);
	}
	r->work_done += n;
	if (r->o->progress)
		r->o->progress(r->o->progress_ctx, r->work_done, r->work_total);
	return VDB_OK;
}

/* Copies the content an archive stores of one entry to fd (or nowhere), straight from the
 * decompressor's buffers, and checks its CRC; *ss receives its section CRCs when it is a
 * segment written to fd. A log delta's stored part is written at its offset in the file. */
static vdb_status copy_entry(rst *r, vdb_zreader *z, const char *what, const vdb_arc_entry *e,
			     int fd, secsum *ss, vdb_error *err)
{
	/* The first bytes are gathered whole (they may come in two pieces): a segment's
	 * section table must be known before any section byte is summed. A delta's stored
	 * bytes have no header to check. */
	unsigned char head[VDB_SEG_HEADER_SIZE + VDB_SEG_MAX_SECTIONS * VDB_SEG_SECTION_SIZE];
	uint64_t size = vdb_arc_stored_size(e);
	size_t nhead = e->at ? 0 : size < sizeof head ? (size_t)size : sizeof head;
	int sums = fd >= 0 && !e->at && is_segment_name(e->name);
	uint32_t crc = 0;
	uint64_t pos = 0, end = size + vdb_tar_pad(size), started = 0;
	ss->n = 0;
	if (fd >= 0 && e->at && lseek(fd, (off_t)e->at, SEEK_SET) < 0)
		return vdb_err_sys(err, VDB_EIO, "seek %s/%s", r->tmp, e->name);
	while (pos < end) {
		const void *q;
		size_t got;
		vdb_status st = vdb_zreader_next(z, end - pos < CHUNK ? (size_t)(end - pos) : CHUNK,
						 &q, &got, e->name, err);
		if (st)
			return st;
		if (!got)
			return vdb_err(err, VDB_ECORRUPT, "%s: truncated archive (in entry '%s')",
				       what, e->name);
		const unsigned char *p = q;
		size_t n = pos < size ? (size_t)(size - pos < got ? size - pos : got) : 0;
		size_t k = 0;
		if (pos < nhead) {
			k = nhead - pos < n ? nhead - (size_t)pos : n;
			memcpy(head + pos, p, k);
			if (pos + k == nhead) {
				if ((st = check_head(what, e, head, nhead, err)))
					return st;
				if (sums)
					secsum_start(ss, head, nhead, e->size);
				st = put(r, fd, e, ss, &crc, head, nhead, 0, &started, err);
			}
		}
		if (!st && n > k)
			st = put(r, fd, e, ss, &crc, p + k, n - k, e->at + pos + k, &started, err);
		if (st)
			return st;
		pos += got;
	}
	if (crc != vdb_arc_stored_crc(e))
		return vdb_err(err, VDB_ECORRUPT, "%s: entry '%s': checksum mismatch (damaged archive)",
			       what, e->name);
	return VDB_OK;
}

/* After the end-of-archive block: only zeros (tar's record padding) may follow. */
static vdb_status drain(vdb_zreader *z, const char *what, vdb_error *err)
{
	for (;;) {
		unsigned char b[VDB_TAR_BLOCK];
		size_t got;
		vdb_status st = vdb_zreader_read(z, b, sizeof b, &got, "the end", err);
		if (st)
			return st;
		for (size_t i = 0; i < got; i++)
			if (b[i])
				return vdb_err(err, VDB_ECORRUPT, "%s: data after the end of the archive",
					       what);
		if (got < VDB_TAR_BLOCK)
			return VDB_OK;
	}
}

/* The piece of restored entry w that dependency dep stores as its entry e, if any. */
static vdb_arc_piece *wanted_piece(vdb_arc_entry *w, int dep, const vdb_arc_entry *e)
{
	for (size_t i = 0; i < w->npieces; i++) {
		vdb_arc_piece *p = &w->pieces[i];
		if (p->from == dep && p->at == e->at && p->size == vdb_arc_stored_size(e) &&
		    p->crc == vdb_arc_stored_crc(e))
			return p;
	}
	return NULL;
}

/* Reads the entries of one archive (its manifest am already read). dep < 0: the archive
 * being restored, every entry wanted; else only the entries the restored manifest takes
 * from dependency number dep. */
static vdb_status extract(rst *r, vdb_zreader *z, const char *what, const vdb_arc_manifest *am,
			  int dep, vdb_error *err)
{
	unsigned char *seen = calloc(am->nent + 1, 1);
	if (!seen)
		return vdb_err_nomem(err);
	vdb_status st = VDB_OK;
	const char *last = VDB_ARC_MANIFEST_NAME;
	for (;;) {
		unsigned char h[VDB_TAR_BLOCK];
		size_t got;
		vdb_tar_entry t;
		const char *why;
		if ((st = vdb_zreader_read(z, h, sizeof h, &got, "a tar header", err)))
			break;
		if (got < sizeof h) {
			st = vdb_err(err, VDB_ECORRUPT, "%s: truncated archive (after entry '%s')",
				     what, last);
			break;
		}
		if (vdb_tar_is_zero(h)) {
			st = drain(z, what, err);
			break;
		}
		if (vdb_tar_parse(h, &t, &why)) {
			st = vdb_err(err, VDB_ECORRUPT, "%s: damaged archive after entry '%s': %s",
				     what, last, why);
			break;
		}
		long k = admit(am, what, &t, seen, err);
		if (k < 0) {
			st = VDB_ECORRUPT;
			break;
		}
		seen[k] = 1;
		const vdb_arc_entry *e = &am->entries[k];
		last = e->name;
		long want = dep < 0 ? k : vdb_arc_find(&r->m, e->name);
		vdb_arc_piece *piece = want >= 0 && dep >= 0 ? wanted_piece(&r->m.entries[want], dep, e)
							     : NULL;
		if (want >= 0 && dep >= 0 && !piece &&
		    (r->m.entries[want].from != dep || r->m.entries[want].size != e->size ||
		     r->m.entries[want].crc != e->crc || e->at))
			want = -1;
		int fd = -1;
		if (want >= 0 && r->tmp[0] &&
		    (fd = create_in_tmp(r, e->name, !piece && !r->m.entries[want].at, err)) < 0) {
			st = err->code;
			break;
		}
		secsum ss;
		st = copy_entry(r, z, what, e, fd, &ss, err);
		if (fd >= 0) {
			if (st)
				close(fd);
			else
				st = sync_later(r, fd, e->name, err);
		}
		/* Named as in the restored manifest: a dependency's is freed before the check. */
		if (!st && fd >= 0 && ss.n)
			st = secsum_keep(r, &ss, r->m.entries[want].name, err);
		if (st)
			break;
		if (piece) {
			piece->done = 1;
			r->stats.bytes += piece->size;
		} else if (want >= 0) {
			r->done[want] = 1;
			r->stats.files++;
			r->stats.bytes += vdb_arc_stored_size(e);
		}
	}
	for (size_t i = 0; !st && i < am->nent; i++)
		if (am->entries[i].from < 0 && !seen[i])
			st = vdb_err(err, VDB_ECORRUPT, "%s: entry '%s' is missing (truncated archive?)",
				     what, am->entries[i].name);
	free(seen);
	return st;
}

/* Whether am, the manifest of dependency d of m (read from path), is the snapshot m names
 * and stores everything m takes from it: whole entries and log pieces, by size and CRC. */
static vdb_status dep_holds(vdb_arc_manifest *m, int d, const vdb_arc_manifest *am,
			    const char *path, vdb_error *err)
{
	if (strcmp(am->id, m->deps[d].id))
		return vdb_err(err, VDB_ECORRUPT, "%s: not the snapshot this incremental depends on "
			       "(its id is %s, not %s)", path, am->id, m->deps[d].id);
	for (size_t i = 0; i < m->nent; i++) {
		vdb_arc_entry *e = &m->entries[i];
		long k = e->from == d ? vdb_arc_find(am, e->name) : 0;
		if (k < 0 || (e->from == d && (am->entries[k].from >= 0 || am->entries[k].at ||
					       am->entries[k].crc != e->crc)))
			return vdb_err(err, VDB_ECORRUPT, "%s does not hold entry '%s'", path, e->name);
		for (size_t p = 0; p < e->npieces; p++) {
			if (e->pieces[p].from != d)
				continue;
			k = vdb_arc_find(am, e->name);
			if (k < 0 || am->entries[k].from >= 0 || !wanted_piece(e, d, &am->entries[k]))
				return vdb_err(err, VDB_ECORRUPT, "%s does not hold bytes %" PRIu64 "-%"
					       PRIu64 " of '%s'", path, e->pieces[p].at,
					       e->pieces[p].at + e->pieces[p].size, e->name);
		}
	}
	return VDB_OK;
}

static vdb_status restore_dep(rst *r, const char *chain_dir, int d, vdb_error *err)
{
	const vdb_arc_dep *dep = &r->m.deps[d];
	char path[4096];
	if (vdb_path(path, sizeof path, chain_dir, dep->file))
		return vdb_err(err, VDB_EINVAL, "path too long: %s", chain_dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return vdb_err_sys(err, VDB_ENOENT, "a snapshot this one depends on is missing: "
				   "open %s", path);
	vdb_zreader *z;
	vdb_arc_manifest am;
	vdb_status st = vdb_zreader_open(fd, path, &r->o->cancel, &z, err);
	if (!st) {
		st = vdb_arc_read_manifest(z, path, &am, err);
		if (!st) {
			st = dep_holds(&r->m, d, &am, path, err);
			if (!st)
				st = extract(r, z, path, &am, d, err);
			vdb_arc_manifest_free(&am);
		}
		vdb_zreader_free(z);
	}
	close(fd);
	r->stats.archives++;
	return st;
}

/* A log put together from pieces of several archives: every piece came, and the whole
 * file, read back, has the CRC the manifest records (each piece's own CRC was checked as it
 * was written). */
static vdb_status check_assembled(rst *r, const char *what, const vdb_arc_entry *e,
				  vdb_error *err)
{
	for (size_t p = 0; p < e->npieces; p++)
		if (!e->pieces[p].done)
			return vdb_err(err, VDB_ECORRUPT, "%s: bytes %" PRIu64 "-%" PRIu64 " of '%s' "
				       "(in %s) were not restored", what, e->pieces[p].at,
				       e->pieces[p].at + e->pieces[p].size, e->name,
				       r->m.deps[e->pieces[p].from].file);
	if (!r->tmp[0])
		return VDB_OK;
	char path[4096];
	if (vdb_path(path, sizeof path, r->tmp, e->name))
		return vdb_err(err, VDB_EINVAL, "path too long: %s", r->tmp);
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return vdb_err_sys(err, VDB_EIO, "open %s", path);
	unsigned char buf[CHUNK];
	uint32_t crc = 0;
	uint64_t off = 0;
	vdb_status st = VDB_OK;
	for (;;) {
		ssize_t got = vdb_pread_full(fd, buf, sizeof buf, (off_t)off);
		if (got < 0) {
			st = vdb_err_sys(err, VDB_EIO, "read %s", path);
			break;
		}
		crc = vdb_crc32c(crc, buf, (size_t)got);
		off += (uint64_t)got;
		if ((size_t)got < sizeof buf)
			break;
	}
	close(fd);
	if (!st && (off != e->size || crc != e->crc))
		st = vdb_err(err, VDB_ECORRUPT, "%s: entry '%s': its pieces do not make the file "
			     "the manifest describes (damaged chain)", what, e->name);
	return st;
}

/* --force: TARGET must be a vdb database, and no writer may be at work in it. The locks
 * are held until after the swap, so no writer starts on the old files meanwhile. */
static vdb_status lock_target(const char *target, int **fds, size_t *nfds, vdb_error *err)
{
	vdb_coll_name *names;
	size_t n;
	vdb_error e;
	vdb_status st = vdb_db_collections(target, &names, &n, &e);
	if (st == VDB_EIO || st == VDB_ENOMEM) {
		if (err)
			*err = e;
		return st;
	}
	if (st)
		return vdb_err(err, VDB_EEXIST, "%s is not empty and not a vdb database (%s): not "
			       "replacing it", target, e.message);
	*fds = malloc((n + 1) * sizeof **fds);
	*nfds = 0;
	if (!*fds) {
		free(names);
		return vdb_err_nomem(err);
	}
	for (size_t i = 0; i < n && !st; i++) {
		char dir[4096];
		if (vdb_path(dir, sizeof dir, target, names[i])) {
			st = vdb_err(err, VDB_EINVAL, "path too long: %s", target);
			break;
		}
		vdb_writer_options wo;
		vdb_writer_options_init(&wo);
		wo.wait_seconds = 0;
		int fd;
		st = vdb_lock_acquire(dir, names[i], &wo, &fd, err);
		if (!st)
			(*fds)[(*nfds)++] = fd;
		else if (st == VDB_ELOCKED)
			vdb_err_prefix(err, "%s", target);
	}
	free(names);
	return st;
}

static vdb_status install(rst *r, const char *target, const char *parent, vdb_error *err)
{
	struct stat sb;
	int *locks = NULL;
	size_t nlocks = 0;
	vdb_status st = VDB_OK;
	int exists = lstat(target, &sb) == 0;
	if (exists && (!S_ISDIR(sb.st_mode) || !vdb_dir_is_empty(target, NULL))) {
		if (!r->o->force || !S_ISDIR(sb.st_mode))
			return vdb_err(err, VDB_EEXIST, "%s exists and is not empty (--force replaces a "
				       "database)", target);
		if ((st = lock_target(target, &locks, &nlocks, err)))
			goto out;
		/* One step: TARGET is the old database or the new one, never neither. */
		if (renameat2(AT_FDCWD, r->tmp, AT_FDCWD, target, RENAME_EXCHANGE) < 0) {
			st = vdb_err_sys(err, VDB_EIO, "exchange %s with %s", r->tmp, target);
			goto out;
		}
		/* r->tmp now holds the old database, which the caller removes. */
		st = vdb_fsync_dir(parent, err);
		goto out;
	}
	if (rename(r->tmp, target) < 0) {
		if (errno == EEXIST || errno == ENOTEMPTY)
			st = vdb_err(err, VDB_EEXIST, "%s appeared while restoring: not replacing it",
				     target);
		else
			st = vdb_err_sys(err, VDB_EIO, "rename %s to %s", r->tmp, target);
		goto out;
	}
	r->tmp[0] = '\0';
	st = vdb_fsync_dir(parent, err);
out:
	for (size_t i = 0; i < nlocks; i++)
		close(locks[i]);
	free(locks);
	return st;
}

static void first_problem(void *ctx, int problem, const char *line)
{
	char *out = ctx;
	if (problem && !out[0])
		snprintf(out, 400, "%s", line);
}

/* Every collection must pass the full check, with the record count the manifest gives. */
static vdb_status verify_tree(rst *r, vdb_error *err)
{
	for (size_t i = 0; i < r->m.ncoll; i++) {
		const vdb_arc_coll *c = &r->m.colls[i];
		char first[400] = "";
		uint64_t problems = 0, live = 0;
		vdb_status st = vdb_check_collection(r->tmp, c->name, 1, &r->known, first_problem,
						     first, &problems, &live, NULL, NULL, err);
		if (st)
			return st;
		if (problems)
			return vdb_err(err, VDB_ECORRUPT, "the restored database fails its checks: %s",
				       first);
		if (live != c->records)
			return vdb_err(err, VDB_ECORRUPT, "the restored collection '%s' holds %" PRIu64
				       " records, the manifest says %" PRIu64, c->name, live,
				       c->records);
		r->stats.collections++;
		r->stats.records += live;
		char dir[4096];
		if (r->o->verify_only)
			continue; /* a scratch copy: nothing to make durable */
		if (vdb_path(dir, sizeof dir, r->tmp, c->name))
			return vdb_err(err, VDB_EINVAL, "path too long: %s", r->tmp);
		if ((st = vdb_fsync_dir(dir, err)))
			return st;
	}
	return r->o->verify_only ? VDB_OK : vdb_fsync_dir(r->tmp, err);
}

/* .BASE.restore-PID-XXXXXX, a restore's temporary directory for target BASE (ctx). */
static int match_restore_dir(const char *name, void *ctx, long *pid)
{
	const char *base = ctx, *end;
	size_t n = strlen(base);
	if (name[0] != '.' || strncmp(name + 1, base, n) || strncmp(name + 1 + n, ".restore-", 9))
		return 0;
	*pid = vdb_parse_pid(name + 1 + n + 9, '-', &end);
	return *pid > 0 && *end == '-' && strlen(end + 1) == 6;
}

/* --verify runs every check a restore runs, on a scratch copy: the archive is extracted
 * into o->scratch_dir (else /tmp) as .vdb-verify.restore-PID-XXXXXX, checked as a restored
 * database is, without fsyncs, and removed. So "--verify succeeds" means "a restore would
 * succeed"; the cost is the space of the database while it runs. What a killed verify
 * left there the next one removes. */
static vdb_status make_scratch(rst *r, vdb_error *err)
{
	const char *dir = r->o->scratch_dir && r->o->scratch_dir[0] ? r->o->scratch_dir : "/tmp";
	if (snprintf(r->tmp, sizeof r->tmp, "%s/.vdb-verify.restore-%ld-XXXXXX", dir,
		     (long)getpid()) >= (int)sizeof r->tmp) {
		r->tmp[0] = '\0';
		return vdb_err(err, VDB_EINVAL, "path too long: %s", dir);
	}
	vdb_remove_leftovers(dir, match_restore_dir, (void *)"vdb-verify");
	if (!mkdtemp(r->tmp)) {
		vdb_status st = vdb_err_sys(err, VDB_EIO, "create a scratch directory in %s", dir);
		r->tmp[0] = '\0';
		return st;
	}
	if ((r->tmp_fd = vdb_hold_tmp_dir(r->tmp)) < 0)
		return vdb_err_sys(err, VDB_EIO, "lock %s", r->tmp);
	return VDB_OK;
}

vdb_status vdb_restore(int fd, const char *name, const char *target,
		       const vdb_restore_options *given, vdb_restore_stats *stats, vdb_error *err)
{
	vdb_restore_options opts;
	const vdb_restore_options *o = &opts;
	vdb_restore_options_init(&opts);
	if (given && vdb_options_take(&opts, sizeof opts, given, "vdb_restore_options", err))
		return VDB_EINVAL;
	rst r = {.o = o, .tmp_fd = -1};
	char chain[4096], parent[4096], tgt[4096];
	if (target) {
		/* "db/" is "db": the temporary directory goes beside it, not inside. */
		if (snprintf(tgt, sizeof tgt, "%s", target) >= (int)sizeof tgt)
			return vdb_err(err, VDB_EINVAL, "path too long: %s", target);
		for (size_t n = strlen(tgt); n > 1 && tgt[n - 1] == '/'; n--)
			tgt[n - 1] = '\0';
		target = tgt;
	}
	const char *base = NULL;
	if (o->chain_dir)
		snprintf(chain, sizeof chain, "%s", o->chain_dir);
	else if (!name || !strcmp(name, "-"))
		strcpy(chain, ".");
	else
		vdb_path_split(name, chain, sizeof chain, &base);
	const char *what = name && strcmp(name, "-") ? name : "standard input";
	vdb_zreader *z = NULL;
	vdb_status st = vdb_zreader_open(fd, what, &o->cancel, &z, err);
	if (st)
		return st;
	if ((st = vdb_arc_read_manifest(z, what, &r.m, err)))
		goto out;
	for (size_t i = 0; i < r.m.nent; i++)
		r.work_total += r.m.entries[i].size;
	r.done = calloc(r.m.nent + 1, 1);
	if (!r.done) {
		st = vdb_err_nomem(err);
		goto out;
	}
	if (!o->verify_only) {
		struct stat sb;
		/* A link would be replaced by the database, not followed: name it instead. */
		if (lstat(target, &sb) == 0 && S_ISLNK(sb.st_mode)) {
			st = vdb_err(err, VDB_EEXIST, "%s is a symbolic link (restore to the directory "
				     "it points to, or remove the link)", target);
			goto out;
		}
		if (lstat(target, &sb) == 0 && !o->force &&
		    (!S_ISDIR(sb.st_mode) || !vdb_dir_is_empty(target, NULL))) {
			st = vdb_err(err, VDB_EEXIST, "%s exists and is not empty (--force replaces a "
				     "database)", target);
			goto out;
		}
		vdb_path_split(target, parent, sizeof parent, &base);
		if (!base[0] || !strcmp(base, ".") || !strcmp(base, "..")) {
			st = vdb_err(err, VDB_EINVAL, "invalid restore target '%s'", target);
			goto out;
		}
		if (snprintf(r.tmp, sizeof r.tmp, "%s/.%s.restore-%ld-XXXXXX", parent, base,
			     (long)getpid()) >= (int)sizeof r.tmp) {
			st = vdb_err(err, VDB_EINVAL, "path too long: %s", target);
			goto out;
		}
		/* What a restore to this target killed earlier left goes first. */
		vdb_remove_leftovers(parent, match_restore_dir, (void *)base);
		if (!mkdtemp(r.tmp)) {
			st = vdb_err_sys(err, errno == ENOENT ? VDB_ENOENT : VDB_EIO,
					 "create a directory beside %s", target);
			r.tmp[0] = '\0';
			goto out;
		}
		if ((r.tmp_fd = vdb_hold_tmp_dir(r.tmp)) < 0) {
			st = vdb_err_sys(err, VDB_EIO, "lock %s", r.tmp);
			goto out;
		}
		/* mkdtemp makes it private; the database gets the usual directory mode. */
		if (chmod(r.tmp, 0755) < 0) {
			st = vdb_err_sys(err, VDB_EIO, "chmod %s", r.tmp);
			goto out;
		}
	}
	if (o->verify_only && (st = make_scratch(&r, err)))
		goto out;
	r.stats.archives = 1;
	if ((st = extract(&r, z, what, &r.m, -1, err)))
		goto out;
	for (size_t d = 0; d < r.m.ndep && !st; d++)
		st = restore_dep(&r, chain, (int)d, err);
	for (size_t i = 0; !st && i < r.m.nent; i++)
		if (!r.done[i])
			st = vdb_err(err, VDB_ECORRUPT, "%s: entry '%s' was not restored", what,
				     r.m.entries[i].name);
	if (!st)
		st = sync_pending(&r, err);
	for (size_t i = 0; !st && i < r.m.nent; i++)
		if (r.m.entries[i].at)
			st = check_assembled(&r, what, &r.m.entries[i], err);
	if (st || (st = verify_tree(&r, err)) || o->verify_only)
		goto out;
	st = install(&r, target, parent, err);
out:
	sync_pending(&r, NULL);
	if (r.tmp[0])
		vdb_remove_tree(r.tmp);
	if (r.tmp_fd >= 0)
		close(r.tmp_fd);
	if (!st && stats)
		*stats = r.stats;
	vdb_zreader_free(z);
	vdb_arc_manifest_free(&r.m);
	free(r.done);
	free(r.known.v);
	return st;
}

vdb_status vdb_snapshot_check_base(const char *path, vdb_cancel cancel, vdb_error *err)
{
	vdb_restore_options opts;
	vdb_restore_options_init(&opts);
	opts.cancel = cancel;
	rst r = {.o = &opts, .tmp_fd = -1}; /* no directory: the entries are read, not written */
	char chain[4096];
	const char *base;
	vdb_path_split(path, chain, sizeof chain, &base);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return vdb_err_sys(err, VDB_OK, "open %s", path);
	vdb_zreader *z = NULL;
	vdb_status st = vdb_zreader_open(fd, path, &opts.cancel, &z, err);
	if (!st)
		st = vdb_arc_read_manifest(z, path, &r.m, err);
	if (!st && !(r.done = calloc(r.m.nent + 1, 1)))
		st = vdb_err_nomem(err);
	if (!st)
		st = extract(&r, z, path, &r.m, -1, err);
	vdb_zreader_free(z);
	close(fd);
	/* What it takes from earlier snapshots: they must be there, and list it. */
	for (size_t d = 0; !st && d < r.m.ndep; d++) {
		char dep[4096];
		vdb_arc_manifest am;
		if (vdb_path(dep, sizeof dep, chain, r.m.deps[d].file)) {
			st = vdb_err(err, VDB_EINVAL, "path too long: %s", chain);
			break;
		}
		if ((fd = open(dep, O_RDONLY | O_CLOEXEC)) < 0) {
			st = vdb_err_sys(err, VDB_ENOENT, "a snapshot it depends on is missing: open %s",
					 dep);
			break;
		}
		if (!(st = vdb_zreader_open(fd, dep, &opts.cancel, &z, err))) {
			if (!(st = vdb_arc_read_manifest(z, dep, &am, err))) {
				st = dep_holds(&r.m, (int)d, &am, dep, err);
				vdb_arc_manifest_free(&am);
			}
			vdb_zreader_free(z);
		}
		close(fd);
	}
	vdb_arc_manifest_free(&r.m);
	free(r.done);
	free(r.known.v);
	return st;
}

/* The manifest of the archive read from fd. */
static vdb_status read_listing(int fd, const char *name, vdb_arc_manifest *m, vdb_error *err)
{
	const char *what = name && strcmp(name, "-") ? name : "standard input";
	vdb_zreader *z;
	vdb_status st = vdb_zreader_open(fd, what, NULL, &z, err);
	if (st)
		return st;
	st = vdb_arc_read_manifest(z, what, m, err);
	vdb_zreader_free(z);
	return st;
}

static int put_json_string(vdb_buf *b, const char *s)
{
	return vj_write_string(b, s, strlen(s));
}

/* The manifest as JSON (vdb_snapshot_list_json); non-zero when out of memory. */
static int format_json(vdb_buf *b, const vdb_arc_manifest *m)
{
	int rc = vdb_buf_puts(b, "{\"snapshot\":") || put_json_string(b, m->id) ||
		 vdb_buf_puts(b, ",\"created\":") || put_json_string(b, m->created) ||
		 vdb_buf_puts(b, ",\"vdb\":") || put_json_string(b, m->vdb_version) ||
		 vdb_buf_printf(b, ",\"format\":%u,\"kind\":\"%s\",\"base\":", m->format,
				m->base[0] ? "incremental" : "full") ||
		 (m->base[0] ? put_json_string(b, m->base) : vdb_buf_puts(b, "null")) ||
		 vdb_buf_puts(b, ",\"collections\":[");
	for (size_t i = 0; !rc && i < m->ncoll; i++)
		rc = vdb_buf_puts(b, i ? ",{\"name\":" : "{\"name\":") ||
		     put_json_string(b, m->colls[i].name) ||
		     vdb_buf_printf(b, ",\"records\":%" PRIu64 ",\"segments\":%" PRIu64
				       ",\"config\":%s}",
				    m->colls[i].records, m->colls[i].segments, m->colls[i].config);
	rc = rc || vdb_buf_puts(b, "],\"entries\":[");
	for (size_t i = 0; !rc && i < m->nent; i++) {
		const vdb_arc_entry *e = &m->entries[i];
		rc = vdb_buf_puts(b, i ? ",{\"name\":" : "{\"name\":") ||
		     put_json_string(b, e->name) ||
		     vdb_buf_printf(b, ",\"size\":%" PRIu64 ",\"crc32c\":\"%08" PRIx32 "\",\"in\":",
				    e->size, e->crc) ||
		     (e->from >= 0 ? put_json_string(b, m->deps[e->from].file)
				   : vdb_buf_puts(b, "null"));
		/* A log delta: the bytes stored here, and where the rest is. */
		if (!rc && e->at)
			rc = vdb_buf_printf(b, ",\"stored_from\":%" PRIu64 ",\"pieces\":[", e->at);
		for (size_t p = 0; !rc && e->at && p < e->npieces; p++)
			rc = vdb_buf_printf(b, "%s{\"in\":", p ? "," : "") ||
			     put_json_string(b, m->deps[e->pieces[p].from].file) ||
			     vdb_buf_printf(b, ",\"at\":%" PRIu64 ",\"size\":%" PRIu64 "}",
					    e->pieces[p].at, e->pieces[p].size);
		rc = rc || (e->at && vdb_buf_putc(b, ']')) || vdb_buf_putc(b, '}');
	}
	return rc || vdb_buf_puts(b, "]}\n");
}

/* The manifest as vdb-restore --list prints it; non-zero when out of memory. */
static int format_text(vdb_buf *b, const vdb_arc_manifest *m)
{
	int rc = vdb_buf_printf(b, "snapshot: %s\ncreated: %s\nvdb: %s\nformat: %u\nkind: %s%s\n",
				m->id, m->created, m->vdb_version, m->format,
				m->base[0] ? "incremental on " : "full", m->base);
	for (size_t i = 0; !rc && i < m->ncoll; i++)
		rc = vdb_buf_printf(b, "collection: %s: %" PRIu64 " records, %" PRIu64
				    " segments, config %s\n", m->colls[i].name, m->colls[i].records,
				    m->colls[i].segments, m->colls[i].config);
	for (size_t i = 0; !rc && i < m->nent; i++) {
		const vdb_arc_entry *e = &m->entries[i];
		rc = vdb_buf_printf(b, "%12" PRIu64 " %08" PRIx32 " %s", e->size, e->crc, e->name);
		if (!rc && e->from >= 0)
			rc = vdb_buf_printf(b, " (in %s)", m->deps[e->from].file);
		if (!rc && e->at) /* a log delta: the earlier bytes are in earlier snapshots */
			rc = vdb_buf_printf(b, " (bytes from %" PRIu64 " here, before them in %s%s)",
					    e->at, m->deps[e->pieces[e->npieces - 1].from].file,
					    e->npieces > 1 ? " and earlier" : "");
		if (!rc)
			rc = vdb_buf_putc(b, '\n');
	}
	return rc;
}

/* Reads the manifest of the archive on fd and appends it to out as `format` writes it. */
static vdb_status list_as(int fd, const char *name, vdb_text *out,
			  int (*format)(vdb_buf *, const vdb_arc_manifest *), vdb_error *err)
{
	vdb_arc_manifest m;
	vdb_status st = read_listing(fd, name, &m, err);
	if (st)
		return st;
	vdb_buf b = VDB_BUF_INIT;
	int rc = format(&b, &m);
	vdb_arc_manifest_free(&m);
	if (rc || vdb_text_append(out, b.data, b.len))
		st = vdb_err_nomem(err);
	vdb_buf_free(&b);
	return st;
}

vdb_status vdb_snapshot_list_json(int fd, const char *name, vdb_text *out, vdb_error *err)
{
	return list_as(fd, name, out, format_json, err);
}

vdb_status vdb_snapshot_list(int fd, const char *name, vdb_text *out, vdb_error *err)
{
	return list_as(fd, name, out, format_text, err);
}
