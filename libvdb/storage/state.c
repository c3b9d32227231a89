/* Loading a consistent version of a collection without taking any lock.
 *
 * Order matters: the MANIFEST is read first, then every file it names is opened. Segment
 * and deletion files are immutable, so once open they cannot change; the log named by the
 * manifest only grows by whole frames (a half-written last frame is ignored). A writer
 * removes files only after a newer manifest stops naming them, so the one race left is that
 * a file vanishes between our manifest read and our open: then we start over with the newer
 * manifest (bounded, so a damaged directory cannot loop us forever). */
#include "state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../util/error.h"
#include "../util/io.h"
#include "config.h"
#include "db.h"
#include "format.h"
#include "ids.h"

#define LOAD_RETRIES 200

void vdb_state_free(vdb_state *s)
{
	if (!s)
		return;
	for (size_t i = 0; s->segs && i < s->man.nseg; i++)
		vdb_segment_close(&s->segs[i]);
	free(s->segs);
	s->segs = NULL;
	vdb_manifest_free(&s->man);
	vdb_memtable_free(&s->mt);
}

static int by_hash(const void *a, const void *b)
{
	uint64_t x = ((const vdb_mem_entry *const *)a)[0]->hash;
	uint64_t y = ((const vdb_mem_entry *const *)b)[0]->hash;
	return x < y ? -1 : x > y;
}

/* Rows of segments superseded by an operation in the log tail are dead for this version.
 * The tail's ids are looked up in ascending hash order, so that each segment's id index is
 * walked forward once (vdb_segment_find_from) rather than searched from scratch per id. */
static vdb_status mask_superseded(vdb_state *s, vdb_error *err)
{
	if (!s->mt.n || !s->man.nseg)
		return VDB_OK;
	const vdb_mem_entry **order = malloc(s->mt.n * sizeof *order);
	uint64_t *from = calloc(s->man.nseg, sizeof *from);
	vdb_status st = VDB_OK;
	if (!order || !from) {
		st = vdb_err_nomem(err);
		goto out;
	}
	for (size_t i = 0; i < s->mt.n; i++)
		order[i] = &s->mt.entries[i];
	qsort(order, s->mt.n, sizeof *order, by_hash);
	for (size_t i = 0; i < s->mt.n && !st; i++) {
		const vdb_mem_entry *e = order[i];
		vdb_id id;
		vdb_memtable_entry_id(&s->mt, e, &id);
		for (size_t k = s->man.nseg; k-- > 0;) {
			vdb_segment *g = &s->segs[k];
			int64_t row;
			if ((st = vdb_segment_find_from(g, &id, e->hash, &from[k], &row, err)))
				break;
			if (row < 0 || vdb_segment_is_dead(g, (uint64_t)row))
				continue;
			if (vdb_segment_mark_dead(g, (uint64_t)row))
				st = vdb_err_nomem(err);
			break; /* an id is live in at most one segment */
		}
	}
out:
	free(order);
	free(from);
	return st;
}

static vdb_status load_segments(vdb_state *s, unsigned flags, vdb_error *err)
{
	s->segs = calloc(s->man.nseg ? s->man.nseg : 1, sizeof *s->segs);
	if (!s->segs)
		return vdb_err_nomem(err);
	for (size_t i = 0; i < s->man.nseg; i++) {
		const vdb_manifest_seg *m = &s->man.segs[i];
		vdb_segment *g = &s->segs[i];
		vdb_status st = vdb_segment_open(s->dir, m->number, s->cfg.dim, m->rows, m->size,
						 m->header_crc, flags, g, err);
		if (st)
			return st;
		if (m->deleted) {
			st = vdb_del_read(s->dir, m->del_file, m->number, m->rows, &g->dead,
					  &g->ndead, err);
			if (st)
				return st;
			if (g->ndead != m->deleted)
				return vdb_err(err, VDB_ECORRUPT, "%s: %llu deletions, the manifest says %llu",
					       m->del_file, (unsigned long long)g->ndead,
					       (unsigned long long)m->deleted);
			g->ndeleted = g->ndead;
			snprintf(g->del_file, sizeof g->del_file, "%s", m->del_file);
		}
	}
	return VDB_OK;
}

static int stamp_file(const char *dir, const char *name, vdb_file_stamp *out)
{
	char path[4200];
	struct stat sb;
	snprintf(path, sizeof path, "%s/%s", dir, name);
	memset(out, 0, sizeof *out);
	if (stat(path, &sb) < 0)
		return -1;
	*out = (vdb_file_stamp){(uint64_t)sb.st_dev, (uint64_t)sb.st_ino, (uint64_t)sb.st_size,
				(int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec};
	return 0;
}

int vdb_state_stale(const vdb_state *s)
{
	vdb_file_stamp m, w;
	char name[64];
	vdb_wal_name(name, sizeof name, s->man.wal);
	return stamp_file(s->dir, VDB_MANIFEST_FILE, &m) || stamp_file(s->dir, name, &w) ||
	       memcmp(&m, &s->manifest_stamp, sizeof m) || w.size != s->wal.size;
}

static vdb_status load_once(vdb_state *s, int *wal_fd, unsigned flags, vdb_error *err)
{
	/* Stamped before it is read: a commit that lands while we load makes the next
	 * vdb_state_stale true, never the other way round. */
	(void)stamp_file(s->dir, VDB_MANIFEST_FILE, &s->manifest_stamp);
	vdb_status st = vdb_manifest_read(s->dir, &s->man, err);
	if (st)
		return st == VDB_ENOENT ? vdb_err(err, VDB_ECORRUPT, "%s: MANIFEST is missing", s->dir)
					: st;
	if ((st = load_segments(s, flags, err)))
		return st;
	char name[64], path[4096];
	vdb_wal_name(name, sizeof name, s->man.wal);
	if (vdb_path(path, sizeof path, s->dir, name))
		return vdb_err(err, VDB_EINVAL, "path too long: %s", s->dir);
	int fd = open(path, (wal_fd ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (fd < 0)
		return vdb_err_sys(err, VDB_OK, "open %s", name);
	vdb_memtable_init(&s->mt, s->cfg.dim);
	st = vdb_wal_replay_fd(fd, name, s->cfg.dim, s->man.wal, s->man.next_seq, &s->mt, &s->wal,
			       err);
	/* Readers hide rows the tail supersedes. The writer keeps only the marks of the
	 * deletion files: sealing derives the new marks from the tail itself. */
	if (!st && !wal_fd && !(flags & VDB_SEG_OPEN_PRIMARY))
		st = mask_superseded(s, err);
	if (st || !wal_fd)
		close(fd);
	else
		*wal_fd = fd;
	if (st)
		return st;
	s->live = s->mt.live;
	for (size_t i = 0; i < s->man.nseg; i++)
		s->live += s->segs[i].rows - s->segs[i].ndead;
	return VDB_OK;
}

vdb_status vdb_state_load(const char *db, const char *name, vdb_state *s, int *wal_fd,
			  vdb_error *err)
{
	return vdb_state_load_flags(db, name, s, wal_fd, 0, err);
}

vdb_status vdb_state_load_flags(const char *db, const char *name, vdb_state *s, int *wal_fd,
				unsigned flags, vdb_error *err)
{
	memset(s, 0, sizeof *s);
	if (!vdb_collection_name_valid(name))
		return vdb_err(err, VDB_EINVAL, "invalid collection name '%s'", name);
	vdb_status st = vdb_db_check(db, err);
	if (st)
		return st;
	snprintf(s->name, sizeof s->name, "%s", name);
	if (vdb_path(s->dir, sizeof s->dir, db, name))
		return vdb_err(err, VDB_EINVAL, "path too long: %s", db);
	st = vdb_config_read(s->dir, &s->cfg, err);
	if (st == VDB_ENOENT)
		return vdb_err_no_collection(err, db, name);
	if (st)
		return st;
	for (int attempt = 0;; attempt++) {
		st = load_once(s, wal_fd, flags, err);
		int raced = st == VDB_ENOENT || (st == VDB_ECORRUPT && s->wal.changed);
		if (!raced || wal_fd || attempt == LOAD_RETRIES)
			break;
		/* A writer replaced a file we were about to open, or rewrote the log's end while
		 * we read it: read the newer version. */
		char dir[4096];
		memcpy(dir, s->dir, sizeof dir);
		vdb_collection_config cfg = s->cfg;
		vdb_state_free(s);
		memset(s, 0, sizeof *s);
		memcpy(s->dir, dir, sizeof dir);
		snprintf(s->name, sizeof s->name, "%s", name);
		s->cfg = cfg;
		struct timespec ts = {0, 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	if (st) {
		if (st == VDB_ENOENT)
			st = vdb_err(err, VDB_ECORRUPT, "%s: a file named by the manifest is missing (%s)",
				     s->dir, err ? err->message : "");
		vdb_state_free(s);
	}
	return st;
}

vdb_status vdb_state_row_id(const vdb_state *s, uint32_t src, uint64_t row, vdb_id *out,
			    vdb_error *err)
{
	if (src < s->man.nseg)
		return vdb_segment_id(&s->segs[src], row, out, err);
	vdb_memtable_entry_id(&s->mt, &s->mt.entries[row], out);
	return VDB_OK;
}
