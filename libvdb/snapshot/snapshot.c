/* Taking a snapshot of a live database.
 *
 * Capture: each collection is loaded as one consistent version exactly as a reader loads
 * it (storage/state.c: the MANIFEST, then every file it names). Segments stay mapped, so
 * they remain readable even if a concurrent merge unlinks them. The log and the deletion
 * files of that version are then opened by name; if one has vanished meanwhile (a seal
 * replaced it), the version is dropped and a newer one captured (bounded retries). Once
 * open, nothing we read can change: segments and deletion files are immutable, and the log
 * is copied only up to the end of its last complete frame, which later appends never touch.
 * The MANIFEST is stored as re-encoded from the captured version (the same bytes the writer
 * wrote), never re-read from disk, where it may already be newer. LOCK is never copied.
 *
 * Write: the archive's manifest comes first and holds every entry's CRC32C, so every stored
 * file is read twice: once to verify it (segment section checksums, combined into the
 * file's CRC in the same pass) and compute its CRC, once to compress it. Both passes read
 * the same open files. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../storage/db.h"
#include "../storage/format.h"
#include "../storage/state.h"
#include "../util/crc32c.h"
#include "../util/error.h"
#include "../util/io.h"
#include "amanifest.h"
#include "base.h"
#include "../util/zstream.h"
#include "vdb_admin.h"
#include "vdb_config.h"

#define CAPTURE_RETRIES 200
#define CHUNK (1u << 20)

void vdb_snapshot_options_init(vdb_snapshot_options *o)
{
	memset(o, 0, sizeof *o);
	o->size = sizeof *o;
	o->level = 3;
}

/* Where an entry's bytes come from: memory (small files, segment mappings) or an fd. */
typedef struct src {
	const unsigned char *mem;
	int fd;
	const vdb_segment *seg;
	char *owned; /* malloc'd content to free */
} src;

typedef struct coll_cap {
	vdb_state st;
	int wal_fd;
	int *del_fds;
} coll_cap;

static void coll_cap_free(coll_cap *c)
{
	if (c->wal_fd >= 0)
		close(c->wal_fd);
	for (size_t i = 0; c->del_fds && i < c->st.man.nseg; i++)
		if (c->del_fds[i] >= 0)
			close(c->del_fds[i]);
	free(c->del_fds);
	vdb_state_free(&c->st);
}

static int open_in(const char *dir, const char *name)
{
	char path[4096];
	if (vdb_path(path, sizeof path, dir, name)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return open(path, O_RDONLY | O_CLOEXEC);
}

/* Opens the log and deletion files of the loaded version: VDB_ENOENT when one vanished. */
static vdb_status open_version_files(coll_cap *c, vdb_error *err)
{
	char name[64];
	vdb_wal_name(name, sizeof name, c->st.man.wal);
	if ((c->wal_fd = open_in(c->st.dir, name)) < 0)
		return vdb_err_sys(err, VDB_OK, "open %s/%s", c->st.name, name);
	c->del_fds = malloc((c->st.man.nseg + 1) * sizeof *c->del_fds);
	if (!c->del_fds)
		return vdb_err_nomem(err);
	for (size_t i = 0; i < c->st.man.nseg; i++)
		c->del_fds[i] = -1;
	for (size_t i = 0; i < c->st.man.nseg; i++) {
		const char *del = c->st.man.segs[i].del_file;
		if (del[0] && (c->del_fds[i] = open_in(c->st.dir, del)) < 0)
			return vdb_err_sys(err, VDB_OK, "open %s/%s", c->st.name, del);
	}
	return VDB_OK;
}

static vdb_status capture(const char *db, const char *name, coll_cap *c, vdb_error *err)
{
	for (int attempt = 0;; attempt++) {
		memset(c, 0, sizeof *c);
		c->wal_fd = -1;
		vdb_status st = vdb_state_load(db, name, &c->st, NULL, err);
		if (st)
			return st;
		st = open_version_files(c, err);
		if (!st)
			return VDB_OK;
		coll_cap_free(c);
		if (st != VDB_ENOENT || attempt == CAPTURE_RETRIES)
			return st == VDB_ENOENT ? vdb_err(err, VDB_ECORRUPT, "%s: a file named by the "
						  "manifest keeps disappearing (%s)", name,
						  err ? err->message : "")
						: st;
		/* A writer sealed between our load and the open: take its newer version. */
		struct timespec ts = {0, 1000 * 1000};
		nanosleep(&ts, NULL);
	}
}

typedef struct snap {
	const char *db;
	const vdb_snapshot_options *o;
	coll_cap *caps;
	size_t ncap;
	vdb_arc_manifest m;
	src *srcs; /* per entry */
	size_t cap_entries;
	char *vdb_marker;
	size_t vdb_marker_len;
	/* For o->progress: every stored byte is read twice (checksummed, then archived), so
	 * the work is counted in half-bytes and reported halved: the total shown is the real
	 * size of what is stored. */
	uint64_t work_done, work_total;
} snap;

static vdb_status add_entry(snap *s, const char *name, uint64_t size, src from, vdb_error *err)
{
	if (s->m.nent == s->cap_entries) {
		size_t cap = s->cap_entries ? s->cap_entries * 2 : 64;
		vdb_arc_entry *e = realloc(s->m.entries, cap * sizeof *e);
		if (e)
			s->m.entries = e;
		src *r = realloc(s->srcs, cap * sizeof *r);
		if (r)
			s->srcs = r;
		if (!e || !r) {
			free(from.owned);
			return vdb_err_nomem(err);
		}
		s->cap_entries = cap;
	}
	vdb_arc_entry *e = &s->m.entries[s->m.nent];
	memset(e, 0, sizeof *e);
	snprintf(e->name, sizeof e->name, "%s", name);
	e->size = size;
	e->from = -1;
	s->srcs[s->m.nent++] = from;
	return VDB_OK;
}

/* "collection/file", which must fit tar's 100-byte name field. */
static vdb_status entry_name(char out[VDB_TAR_NAME_MAX + 1], const char *coll, const char *file,
			     vdb_error *err)
{
	int n = snprintf(out, VDB_TAR_NAME_MAX + 1, "%s/%s", coll, file);
	if (n < 0 || n > (int)VDB_TAR_NAME_MAX)
		return vdb_err(err, VDB_EINVAL, "%s/%s: name too long for a snapshot archive", coll,
			       file);
	return VDB_OK;
}

static vdb_status add_collection(snap *s, coll_cap *c, vdb_error *err)
{
	const vdb_state *st = &c->st;
	char name[VDB_TAR_NAME_MAX + 1], file[64], path[4096], *data;
	size_t len;
	const char *body;
	vdb_status rc;
	/* CONFIG never changes after create: the file on disk is the version's. */
	if (vdb_path(path, sizeof path, st->dir, VDB_CONFIG_FILE))
		return vdb_err(err, VDB_EINVAL, "path too long: %s", st->dir);
	if ((rc = vdb_read_file(path, 1 << 20, &data, &len, err)))
		return rc;
	if ((rc = vdb_checked_decode(path, "config", VDB_CONFIG_FORMAT, data, len, &body, err))) {
		free(data);
		return rc;
	}
	vdb_arc_coll *ac = &s->m.colls[s->m.ncoll];
	snprintf(ac->name, sizeof ac->name, "%s", st->name);
	ac->records = st->live;
	ac->segments = st->man.nseg;
	if (!(ac->config = strdup(body))) {
		free(data);
		return vdb_err_nomem(err);
	}
	s->m.ncoll++;
	if ((rc = entry_name(name, st->name, VDB_CONFIG_FILE, err)) ||
	    (rc = add_entry(s, name, len, (src){(unsigned char *)data, -1, NULL, data}, err)))
		return rc;
	if ((rc = vdb_manifest_encode(&st->man, &data, &len, err)))
		return rc;
	if ((rc = entry_name(name, st->name, VDB_MANIFEST_FILE, err)) ||
	    (rc = add_entry(s, name, len, (src){(unsigned char *)data, -1, NULL, data}, err)))
		return rc;
	for (size_t i = 0; i < st->man.nseg; i++) {
		const vdb_segment *g = &st->segs[i];
		if ((rc = entry_name(name, st->name, g->file, err)) ||
		    (rc = add_entry(s, name, g->size, (src){g->map, -1, g, NULL}, err)))
			return rc;
		s->m.entries[s->m.nent - 1].header_crc = g->header_crc;
		if (c->del_fds[i] >= 0) {
			struct stat sb;
			if (fstat(c->del_fds[i], &sb) < 0)
				return vdb_err_sys(err, VDB_EIO, "stat %s/%s", st->name,
						   st->man.segs[i].del_file);
			if ((rc = entry_name(name, st->name, st->man.segs[i].del_file, err)) ||
			    (rc = add_entry(s, name, (uint64_t)sb.st_size,
					    (src){NULL, c->del_fds[i], NULL, NULL}, err)))
				return rc;
		}
	}
	vdb_wal_name(file, sizeof file, st->man.wal);
	if ((rc = entry_name(name, st->name, file, err)))
		return rc;
	/* Only the committed prefix: a frame being appended right now is not part of it. */
	return add_entry(s, name, st->wal.end, (src){NULL, c->wal_fd, NULL, NULL}, err);
}

/* Calls fn on the entry's bytes from `start` on, in chunks. */
static vdb_status read_entry(snap *s, size_t i, uint64_t start, unsigned char *buf,
			     vdb_status (*fn)(void *ctx, const void *p, size_t n, vdb_error *err),
			     void *ctx, vdb_error *err)
{
	const src *r = &s->srcs[i];
	const vdb_arc_entry *e = &s->m.entries[i];
	for (uint64_t off = start; off < e->size;) {
		if (vdb_cancelled(&s->o->cancel))
			return vdb_err(err, VDB_EINTR, "interrupted");
		size_t n = e->size - off < CHUNK ? (size_t)(e->size - off) : CHUNK;
		const void *p;
		if (r->mem) {
			p = r->mem + off;
		} else {
			ssize_t got = vdb_pread_full(r->fd, buf, n, (off_t)off);
			if (got < 0)
				return vdb_err_sys(err, VDB_EIO, "read %s", e->name);
			if ((size_t)got < n)
				return vdb_err(err, VDB_ECORRUPT, "%s: file is shorter than %" PRIu64
					       " bytes", e->name, e->size);
			p = buf;
		}
		vdb_status st = fn(ctx, p, n, err);
		if (st)
			return st;
		off += n;
		s->work_done += n;
		if (s->o->progress)
			s->o->progress(s->o->progress_ctx, s->work_done / 2, s->work_total / 2);
		/* Pages read through a segment mapping are dropped from this process as we go:
		 * a snapshot's memory must not grow with the database. */
		if (r->seg && off % (64u * CHUNK) == 0)
			vdb_segment_release(r->seg);
	}
	if (r->seg)
		vdb_segment_release(r->seg);
	return VDB_OK;
}

static vdb_status crc_fn(void *ctx, const void *p, size_t n, vdb_error *err)
{
	(void)err;
	uint32_t *crc = ctx;
	*crc = vdb_crc32c(*crc, p, n);
	return VDB_OK;
}

/* A log delta's stored bytes: the CRC of the whole file (continued from its prefix's)
 * and of the stored part alone. */
static vdb_status crc2_fn(void *ctx, const void *p, size_t n, vdb_error *err)
{
	(void)err;
	uint32_t *crc = ctx;
	crc[0] = vdb_crc32c(crc[0], p, n);
	crc[1] = vdb_crc32c(crc[1], p, n);
	return VDB_OK;
}

static int is_log_entry(const char *name)
{
	const char *slash = strrchr(name, '/');
	return slash && !strncmp(slash + 1, "wal-", 4);
}

/* The index of dependency `file` (with id) in the new manifest, added if new. The deps
 * array has room for every file the previous snapshot names and itself. */
static size_t dep_index(snap *s, const char *file, const char *id)
{
	size_t d;
	for (d = 0; d < s->m.ndep; d++)
		if (!strcmp(s->m.deps[d].file, file))
			return d;
	snprintf(s->m.deps[d].file, sizeof s->m.deps[d].file, "%s", file);
	snprintf(s->m.deps[d].id, sizeof s->m.deps[d].id, "%s", id);
	s->m.ndep++;
	return d;
}

/* The previous snapshot stored (or itself took from earlier ones) the log named like e,
 * prev being its entry: when the log captured now begins with exactly those bytes, e
 * becomes a delta, its prefix the previous one's pieces plus the part stored there. The
 * log is append-only between seals, so this holds until the next seal starts a new log
 * under a new name. */
static vdb_status log_delta(snap *s, size_t i, const vdb_arc_manifest *prev,
			    const vdb_arc_entry *pe, const char *prev_file, const char *prev_id,
			    unsigned char *buf, vdb_error *err)
{
	vdb_arc_entry *e = &s->m.entries[i];
	if (pe->from >= 0 || pe->size == 0 || pe->size > e->size ||
	    pe->npieces + 1 > VDB_ARC_MAX_PIECES)
		return VDB_OK;
	uint32_t crc = 0;
	for (uint64_t off = 0; off < pe->size;) {
		size_t n = pe->size - off < CHUNK ? (size_t)(pe->size - off) : CHUNK;
		ssize_t got = vdb_pread_full(s->srcs[i].fd, buf, n, (off_t)off);
		if (got < 0)
			return vdb_err_sys(err, VDB_EIO, "read %s", e->name);
		if ((size_t)got < n)
			return VDB_OK;
		crc = vdb_crc32c(crc, buf, n);
		off += n;
	}
	if (crc != pe->crc)
		return VDB_OK; /* not the same log (a collection dropped and re-created) */
	/* The previous one's stored part may be empty (nothing logged between the two). */
	size_t np = pe->npieces + (pe->size > pe->at);
	vdb_arc_piece *pieces = calloc(np, sizeof *pieces);
	if (!pieces)
		return vdb_err_nomem(err);
	for (size_t k = 0; k < np; k++) {
		size_t d = dep_index(s, k < pe->npieces ? prev->deps[pe->pieces[k].from].file : prev_file,
				     k < pe->npieces ? prev->deps[pe->pieces[k].from].id : prev_id);
		pieces[k] = k < pe->npieces
				    ? pe->pieces[k]
				    : (vdb_arc_piece){0, pe->at, pe->size - pe->at, vdb_arc_stored_crc(pe), 0};
		pieces[k].from = (int)d;
	}
	e->pieces = pieces;
	e->npieces = np;
	e->at = pe->size;
	e->crc = pe->crc; /* the prefix's, continued over the stored bytes (crc2_fn) */
	return VDB_OK;
}

static vdb_status z_fn(void *ctx, const void *p, size_t n, vdb_error *err)
{
	return vdb_zwriter_write(ctx, p, n, err);
}

/* The entries of an earlier snapshot that this one can reference instead of storing:
 * segments with the same name, size and header checksum in a collection whose CONFIG is
 * byte-identical (a collection dropped and re-created reuses segment names), and the part
 * of each log that the earlier one holds (log_delta). */
static vdb_status reference_previous(snap *s, unsigned char *buf, vdb_error *err)
{
	const char *since = s->o->since;
	int fd = open(since, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return vdb_err_sys(err, VDB_OK, "open %s", since);
	vdb_zreader *r;
	vdb_arc_manifest prev;
	vdb_status st = vdb_zreader_open(fd, since, &s->o->cancel, &r, err);
	if (st) {
		close(fd);
		return st;
	}
	st = vdb_arc_read_manifest(r, since, &prev, err);
	vdb_zreader_free(r);
	close(fd);
	if (st)
		return st;
	const char *slash = strrchr(since, '/');
	snprintf(s->m.base, sizeof s->m.base, "%s", slash ? slash + 1 : since);
	s->m.deps = calloc(prev.ndep + 1, sizeof *s->m.deps);
	if (!s->m.deps) {
		vdb_arc_manifest_free(&prev);
		return vdb_err_nomem(err);
	}
	for (size_t i = 0; i < s->m.nent; i++) {
		vdb_arc_entry *e = &s->m.entries[i];
		if (is_log_entry(e->name)) {
			long k = vdb_arc_find(&prev, e->name);
			st = k < 0 ? VDB_OK
				   : log_delta(s, i, &prev, &prev.entries[k], s->m.base, prev.id, buf,
					       err);
			if (st)
				break;
			continue;
		}
		long k = e->header_crc ? vdb_arc_find(&prev, e->name) : -1;
		if (k < 0 || prev.entries[k].size != e->size ||
		    prev.entries[k].header_crc != e->header_crc)
			continue;
		char cfg[VDB_TAR_NAME_MAX + 1];
		snprintf(cfg, sizeof cfg, "%.*s/%s", (int)(strchr(e->name, '/') - e->name), e->name,
			 VDB_CONFIG_FILE);
		long a = vdb_arc_find(&s->m, cfg), b = vdb_arc_find(&prev, cfg);
		if (a < 0 || b < 0 || prev.entries[b].size != s->m.entries[a].size ||
		    prev.entries[b].crc != vdb_crc32c(0, s->srcs[a].mem, s->m.entries[a].size))
			continue;
		/* Where the bytes really are: the previous snapshot, or one it depends on. */
		size_t d = dep_index(s, prev.entries[k].from < 0 ? s->m.base
								 : prev.deps[prev.entries[k].from].file,
				     prev.entries[k].from < 0 ? prev.id
							      : prev.deps[prev.entries[k].from].id);
		e->from = (int)d;
		e->crc = prev.entries[k].crc;
	}
	vdb_arc_manifest_free(&prev);
	return st;
}

static void make_id(char out[33], time_t now)
{
	unsigned char r[16];
	if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
		/* No entropy source: time and pid still tell two snapshots apart. */
		uint64_t a = (uint64_t)now, b = (uint64_t)getpid() << 32 ^ (uint64_t)clock();
		memcpy(r, &a, 8);
		memcpy(r + 8, &b, 8);
	}
	for (int i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", r[i]);
}

static vdb_status write_archive(snap *s, int out_fd, int64_t now, vdb_snapshot_stats *stats,
				unsigned char *buf, vdb_error *err)
{
	char *man;
	size_t man_len;
	vdb_status st = vdb_arc_manifest_encode(&s->m, &man, &man_len, err);
	if (st)
		return st;
	vdb_zwriter *w;
	if ((st = vdb_zwriter_open(out_fd, "the snapshot", s->o->level, s->o->threads, &w, err))) {
		free(man);
		return st;
	}
	static const unsigned char zero[VDB_TAR_BLOCK];
	unsigned char h[VDB_TAR_BLOCK];
	uint64_t total = 0;
	vdb_tar_header(h, VDB_ARC_MANIFEST_NAME, man_len, now);
	st = vdb_zwriter_write(w, h, sizeof h, err);
	if (!st)
		st = vdb_zwriter_write(w, man, man_len, err);
	if (!st)
		st = vdb_zwriter_write(w, zero, vdb_tar_pad(man_len), err);
	total += VDB_TAR_BLOCK + man_len + vdb_tar_pad(man_len);
	free(man);
	for (size_t i = 0; !st && i < s->m.nent; i++) {
		const vdb_arc_entry *e = &s->m.entries[i];
		if (e->from >= 0)
			continue;
		uint64_t size = vdb_arc_stored_size(e);
		vdb_tar_header(h, e->name, size, now);
		st = vdb_zwriter_write(w, h, sizeof h, err);
		if (!st)
			st = read_entry(s, i, e->at, buf, z_fn, w, err);
		if (!st)
			st = vdb_zwriter_write(w, zero, vdb_tar_pad(size), err);
		total += VDB_TAR_BLOCK + size + vdb_tar_pad(size);
	}
	/* Two zero blocks end a tar archive; GNU tar also fills the last 10 KiB record. */
	uint64_t end = 2 * VDB_TAR_BLOCK;
	end += (20 * VDB_TAR_BLOCK - (total + end) % (20 * VDB_TAR_BLOCK)) % (20 * VDB_TAR_BLOCK);
	for (uint64_t k = 0; !st && k < end; k += VDB_TAR_BLOCK)
		st = vdb_zwriter_write(w, zero, VDB_TAR_BLOCK, err);
	if (!st)
		st = vdb_zwriter_finish(w, err);
	stats->bytes_out = vdb_zwriter_bytes_out(w);
	vdb_zwriter_free(w);
	return st;
}

static vdb_status build(snap *s, vdb_error *err)
{
	vdb_status st;
	vdb_coll_name *names = NULL;
	size_t n = 0;
	if (s->o->collections && s->o->ncollections) {
		n = s->o->ncollections;
		names = calloc(n, sizeof *names);
		if (!names)
			return vdb_err_nomem(err);
		for (size_t i = 0; i < n; i++) {
			if (!vdb_collection_name_valid(s->o->collections[i])) {
				free(names);
				return vdb_err(err, VDB_EINVAL, "invalid collection name '%s'",
					       s->o->collections[i]);
			}
			snprintf(names[i], sizeof names[i], "%s", s->o->collections[i]);
			for (size_t k = 0; k < i; k++)
				if (!strcmp(names[k], names[i])) {
					free(names);
					return vdb_err(err, VDB_EINVAL, "collection '%s' named twice",
						       names[i]);
				}
		}
		if ((st = vdb_db_check(s->db, err))) {
			free(names);
			return st;
		}
	} else if ((st = vdb_db_collections(s->db, &names, &n, err))) {
		return st;
	}
	char path[4096];
	if (vdb_path(path, sizeof path, s->db, VDB_DIR_MARKER)) {
		free(names);
		return vdb_err(err, VDB_EINVAL, "path too long: %s", s->db);
	}
	s->caps = calloc(n + 1, sizeof *s->caps);
	s->m.colls = calloc(n + 1, sizeof *s->m.colls);
	if (!s->caps || !s->m.colls) {
		free(names);
		return vdb_err_nomem(err);
	}
	st = vdb_read_file(path, 4096, &s->vdb_marker, &s->vdb_marker_len, err);
	if (!st)
		st = add_entry(s, VDB_DIR_MARKER, s->vdb_marker_len,
			       (src){(unsigned char *)s->vdb_marker, -1, NULL, NULL}, err);
	for (size_t i = 0; !st && i < n; i++) {
		st = capture(s->db, names[i], &s->caps[i], err);
		if (!st) {
			s->ncap++;
			st = add_collection(s, &s->caps[i], err);
		}
	}
	free(names);
	return st;
}

vdb_status vdb_snapshot_write(const char *db, const vdb_snapshot_options *given, int out_fd,
			      vdb_snapshot_stats *stats_out, vdb_error *err)
{
	vdb_snapshot_options opts;
	const vdb_snapshot_options *o = &opts;
	vdb_snapshot_options_init(&opts);
	if (given && vdb_options_take(&opts, sizeof opts, given, "vdb_snapshot_options", err))
		return VDB_EINVAL;
	if (o->level < 1 || o->level > 19 || o->threads < 0 || o->threads > 256)
		return vdb_err(err, VDB_EINVAL, "level must be 1 to 19 and threads 0 to 256");
	snap s = {.db = db, .o = o};
	vdb_snapshot_stats stats = {0};
	unsigned char *buf = malloc(CHUNK);
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(s.m.created, sizeof s.m.created, "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(s.m.vdb_version, sizeof s.m.vdb_version, "%s", VDB_VERSION);
	make_id(s.m.id, now);
	vdb_status st = buf ? VDB_OK : vdb_err_nomem(err);
	if (!st && o->since && (st = vdb_snapshot_check_base(o->since, o->cancel, err)) &&
	    st != VDB_EINTR && st != VDB_ENOMEM && err)
		vdb_err_prefix(err, "%s: cannot be the base of an incremental", o->since);
	if (!st)
		st = build(&s, err);
	/* Verify and checksum every stored file before the manifest that vouches for it. */
	if (!st && o->since)
		st = reference_previous(&s, buf, err);
	for (size_t i = 0; !st && i < s.m.nent; i++)
		if (s.m.entries[i].from < 0) /* checksummed, then archived */
			s.work_total += 2 * vdb_arc_stored_size(&s.m.entries[i]);
	for (size_t i = 0; !st && i < s.m.nent; i++) {
		vdb_arc_entry *e = &s.m.entries[i];
		if (e->from >= 0) {
			stats.referenced++;
			continue;
		}
		if (e->at) {
			uint32_t crc[2] = {e->crc, 0};
			st = read_entry(&s, i, e->at, buf, crc2_fn, crc, err);
			e->crc = crc[0];
			e->tail_crc = crc[1];
			stats.files++;
			stats.bytes_in += vdb_arc_stored_size(e);
			continue;
		}
		e->crc = 0;
		if (s.srcs[i].seg) {
			if (vdb_cancelled(&s.o->cancel)) {
				st = vdb_err(err, VDB_EINTR, "interrupted");
				break;
			}
			st = vdb_segment_verify_file(s.srcs[i].seg, &e->crc, err);
			s.work_done += e->size;
			if (!st && o->progress)
				o->progress(o->progress_ctx, s.work_done / 2, s.work_total / 2);
		} else {
			st = read_entry(&s, i, 0, buf, crc_fn, &e->crc, err);
		}
		stats.files++;
		stats.bytes_in += e->size;
	}
	if (!st)
		st = write_archive(&s, out_fd, (int64_t)now, &stats, buf, err);
	if (!st) {
		stats.collections = s.ncap;
		for (size_t i = 0; i < s.ncap; i++)
			stats.records += s.caps[i].st.live;
		if (stats_out)
			*stats_out = stats;
	}
	for (size_t i = 0; i < s.m.nent; i++)
		free(s.srcs[i].owned);
	free(s.srcs);
	for (size_t i = 0; i < s.ncap; i++)
		coll_cap_free(&s.caps[i]);
	free(s.caps);
	free(s.vdb_marker);
	vdb_arc_manifest_free(&s.m);
	free(buf);
	return st;
}

/* An incremental names its base by file name only, and restore looks the chain up in one
 * directory: the new file must go beside its base. */
static vdb_status same_directory(const char *since, const char *path, const char *given,
				 vdb_error *err)
{
	char a[4096], b[4096];
	const char *base;
	struct stat sa, sb;
	vdb_path_split(since, a, sizeof a, &base);
	vdb_path_split(path, b, sizeof b, &base);
	if (stat(a, &sa) < 0 || stat(b, &sb) < 0 || (sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino))
		return VDB_OK; /* a missing directory is reported where it is opened */
	return vdb_err(err, VDB_EINVAL, "%s: an incremental must be written in the directory of "
		       "the snapshot it depends on (%s), where restore looks for it: keep a chain "
		       "in one directory", given, since);
}

/* The archive written to fd, which is open on a device or FIFO that vdb_output_resolve
 * said to write in place. */
static vdb_status write_in_place(const char *db, const vdb_snapshot_options *o, int fd,
				 const char *path, vdb_snapshot_stats *stats, vdb_error *err)
{
	vdb_status st = vdb_snapshot_write(db, o, fd, stats, err);
	if (close(fd) < 0 && !st)
		st = vdb_err_sys(err, VDB_EIO, "close %s", path);
	return st;
}

vdb_status vdb_snapshot_write_file(const char *db, const vdb_snapshot_options *caller,
				   const char *given, vdb_snapshot_stats *stats, vdb_error *err)
{
	vdb_snapshot_options opts;
	const vdb_snapshot_options *o = &opts;
	vdb_snapshot_options_init(&opts);
	if (caller && vdb_options_take(&opts, sizeof opts, caller, "vdb_snapshot_options", err))
		return VDB_EINVAL;
	int in_place;
	char *path;
	vdb_status st = vdb_output_resolve(given, &in_place, &path, err);
	if (st)
		return st;
	if (in_place >= 0)
		return write_in_place(db, o, in_place, given, stats, err);
	struct stat a, b;
	if (o && o->since && stat(o->since, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev &&
	    a.st_ino == b.st_ino) {
		st = vdb_err(err, VDB_EINVAL, "%s: an incremental cannot replace the snapshot it "
			     "depends on", given);
		goto out;
	}
	if (o && o->since && (st = same_directory(o->since, path, given, err)))
		goto out;
	vdb_tmpfile t;
	if ((st = vdb_tmpfile_create(&t, path, VDB_TMP_OUTPUT, err))) {
		/* No such directory: missing (66); a failing or full disk: I/O (74); else it
		 * cannot be created (73). */
		int e = t.create_errno;
		if (e)
			st = e == ENOENT ? VDB_ENOENT
			     : e == EIO || e == ENOSPC || e == EDQUOT ? VDB_EIO
								   : VDB_EEXIST;
		if (err && e)
			err->code = st;
		goto out;
	}
	st = vdb_snapshot_write(db, o, t.fd, stats, err);
	/* The archive must be durable before its name says it is complete. */
	if (!st)
		st = vdb_tmpfile_commit(&t, 0, err);
	else
		vdb_tmpfile_discard(&t);
out:
	free(path);
	return st;
}
