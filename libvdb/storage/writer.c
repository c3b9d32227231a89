/* The single writer of a collection.
 *
 * Open: take the flock, load the current version, cut a torn last frame off the log (so new
 * frames are never appended after garbage), and remove files a crash left unreferenced.
 *
 * Commit: the pending batch is one log frame, written and fsynced before VDB_OK; only then
 * is it applied to the in-memory tail.
 *
 * Seal, when the log passed the threshold (each step durable before the next):
 *   1. write seg-<n>.vdb from the tail's live upserts (temp, fsync, rename)
 *   2. write a new del-<seg>-<gen>.vdb for each older segment that lost rows
 *   3. create the next, empty log wal-<w+1>.log
 *   4. fsync the directory, then replace MANIFEST atomically: the switch point
 *   5. unlink the old log and the replaced deletion files (invariant: only after the
 *      manifest that stops naming them is durable; open readers keep their copies)
 * A crash before 4 leaves the old manifest, whose files are all intact; the new files are
 * orphans that the next writer removes. A crash after 4 leaves at most stale files.
 *
 * Bulk commit, for a batch at least as large as the seal threshold: logging it would only
 * write every row twice (the log, then the seal that follows at once). The batch is applied
 * to the memtable after the unsealed tail (so the latest operation per id wins, as in the
 * log) and the memtable is sealed at once. The MANIFEST switch of that seal is the commit
 * point: before it the old version, log included, is intact and the new files are orphans. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../formats/json.h"
#include "../util/error.h"
#include "../util/io.h"
#include "config.h"
#include "db.h"
#include "format.h"
#include "ids.h"
#include "lock.h"
#include "state.h"

struct vdb_writer {
	char db[4096];
	char name[VDB_NAME_MAX + 1];
	vdb_state st;
	int lock_fd;
	int wal_fd;
	vdb_buf batch;
	size_t ops;
	/* vdb_writer_upsert_bulk's rows, pending: they become a segment at commit. */
	vdb_memtable bulk;
	size_t bulk_rows, bulk_bytes;
	int failed; /* after an I/O error the on-disk state is unknown until reopened */
	/* vdb_writer_compact's progress; merges of the ingest path do not report. */
	void (*compact_progress)(void *ctx, uint64_t done, uint64_t total);
	void *compact_progress_ctx;
	int compacting;
	unsigned load_flags; /* VDB_SEG_OPEN_PRIMARY: a repairing writer (see vdb_rebuild) */
	/* Deletes of ids with no live record (see count_not_found): the pending batch's
	 * deletes, the ids its operations touched so far, the last commit's count. */
	size_t pending_deletes;
	vdb_memtable touched; /* dim 1: only ids and whether the latest operation deletes */
	uint64_t not_found;
	int dry_run; /* vdb_writer_options.dry_run */
	uint32_t threads; /* vdb_writer_options.threads: for graph builds */
};

void vdb_writer_options_init(vdb_writer_options *o)
{
	memset(o, 0, sizeof *o);
	o->size = sizeof *o;
	o->wait_seconds = -1;
}

void vdb_writer_get_config(const vdb_writer *w, vdb_collection_config *out)
{
	vdb_config_copy_out(&w->st.cfg, out);
}

size_t vdb_writer_pending(const vdb_writer *w)
{
	return w->ops;
}

size_t vdb_writer_pending_bytes(const vdb_writer *w)
{
	return w->batch.len + w->bulk_bytes;
}

static int referenced(const vdb_state *s, const char *name)
{
	char buf[64];
	if (!strcmp(name, VDB_CONFIG_FILE) || !strcmp(name, VDB_MANIFEST_FILE) ||
	    !strcmp(name, VDB_LOCK_FILE))
		return 1;
	vdb_wal_name(buf, sizeof buf, s->man.wal);
	if (!strcmp(name, buf))
		return 1;
	for (size_t i = 0; i < s->man.nseg; i++) {
		vdb_segment_name(buf, sizeof buf, s->man.segs[i].number);
		if (!strcmp(name, buf) || !strcmp(name, s->man.segs[i].del_file))
			return 1;
	}
	return 0;
}

/* Removes what a crashed writer left: temp files and log/segment/deletion files that the
 * current manifest does not name. Other files are left alone. */
static void remove_orphans(const vdb_state *s)
{
	DIR *d = opendir(s->dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		const char *n = e->d_name;
		int ours = !strncmp(n, "seg-", 4) || !strncmp(n, "del-", 4) ||
			   !strncmp(n, "wal-", 4) || strstr(n, ".tmp-");
		char path[4096];
		if (ours && !referenced(s, n) && !vdb_path(path, sizeof path, s->dir, n))
			unlink(path);
	}
	closedir(d);
}

static vdb_status load(vdb_writer *w, vdb_error *err)
{
	/* A dry run reads as a reader does: no lock, nothing opened for writing. */
	return vdb_state_load_flags(w->db, w->name, &w->st, w->dry_run ? NULL : &w->wal_fd,
				    w->load_flags, err);
}

static vdb_status seal(vdb_writer *w, vdb_error *err);
static vdb_status seal_log(vdb_writer *w, int graph, vdb_error *err);
static vdb_status merge_policy(vdb_writer *w, vdb_error *err);

static vdb_status writer_open(const char *db, const char *name, const vdb_writer_options *given,
			      unsigned load_flags, vdb_writer **out, vdb_error *err)
{
	vdb_writer_options opts;
	const vdb_writer_options *o = &opts;
	vdb_writer_options_init(&opts);
	if (given && vdb_options_take(&opts, sizeof opts, given, "vdb_writer_options", err))
		return VDB_EINVAL;
	if (!vdb_collection_name_valid(name))
		return vdb_err(err, VDB_EINVAL, "invalid collection name '%s'", name);
	vdb_status st = vdb_db_check(db, err);
	if (st)
		return st;
	vdb_writer *w = calloc(1, sizeof *w);
	if (!w)
		return vdb_err_nomem(err);
	w->lock_fd = w->wal_fd = -1;
	snprintf(w->db, sizeof w->db, "%s", db);
	char dir[4096];
	if (vdb_path(dir, sizeof dir, db, name)) {
		free(w);
		return vdb_err(err, VDB_EINVAL, "path too long: %s", db);
	}
	if (access(dir, F_OK) < 0) {
		free(w);
		return vdb_err_no_collection(err, db, name);
	}
	w->dry_run = o->dry_run;
	w->threads = o->threads;
	vdb_memtable_init(&w->touched, 1);
	st = w->dry_run ? VDB_OK : vdb_lock_acquire(dir, name, o, &w->lock_fd, err);
	if (st) {
		vdb_writer_close(w);
		return st;
	}
	snprintf(w->name, sizeof w->name, "%s", name);
	w->load_flags = load_flags;
	if ((st = load(w, err)))
		goto fail;
	if (w->dry_run)
		goto opened; /* recovery writes: left to the next real writer */
	if (w->st.wal.torn) {
		/* Cut the torn frame: a new frame appended after garbage would later look like
		 * corruption in the middle of the log. */
		if (ftruncate(w->wal_fd, (off_t)w->st.wal.end) < 0 || fsync(w->wal_fd) < 0) {
			st = vdb_err_sys(err, VDB_EIO, "truncate the torn end of the log in %s",
					 w->st.dir);
			goto fail;
		}
	}
	remove_orphans(&w->st);
	/* A repairing writer leaves the log alone: sealing reads the (maybe damaged) id
	 * indexes; the next ordinary writer seals. */
	if (!load_flags && w->st.wal.end - VDB_WAL_HEADER_SIZE >= w->st.cfg.seal_bytes &&
	    ((st = seal(w, err)) || (st = merge_policy(w, err))))
		goto fail;
opened:
	vdb_wal_batch_reset(&w->batch);
	if (w->batch.len == 0) {
		st = vdb_err_nomem(err);
		goto fail;
	}
	*out = w;
	return VDB_OK;
fail:
	vdb_writer_close(w);
	return st;
}

vdb_status vdb_writer_open(const char *db, const char *name, const vdb_writer_options *o,
			   vdb_writer **out, vdb_error *err)
{
	return writer_open(db, name, o, 0, out, err);
}

void vdb_writer_close(vdb_writer *w)
{
	if (!w)
		return;
	vdb_state_free(&w->st);
	vdb_buf_free(&w->batch);
	vdb_memtable_free(&w->touched);
	vdb_memtable_free(&w->bulk);
	if (w->wal_fd >= 0)
		close(w->wal_fd);
	if (w->lock_fd >= 0)
		close(w->lock_fd); /* releases the flock */
	free(w);
}

static vdb_status check_id(const vdb_id *id, vdb_error *err)
{
	if (!id->is_string)
		return VDB_OK;
	if (id->len == 0 || id->len > VDB_ID_MAX_BYTES)
		return vdb_err(err, VDB_EDATA, "a string id must be 1 to %d bytes", VDB_ID_MAX_BYTES);
	if (vj_utf8_valid_prefix(id->str, id->len) != id->len)
		return vdb_err(err, VDB_EDATA, "a string id must be valid UTF-8");
	return VDB_OK;
}

static vdb_status usable(const vdb_writer *w, vdb_error *err)
{
	if (w->failed)
		return vdb_err(err, VDB_EIO, "the writer failed earlier; reopen the collection");
	return VDB_OK;
}

/* usable, with no pending batch: what compacting and settling need. */
static vdb_status idle(const vdb_writer *w, vdb_error *err)
{
	vdb_status st = usable(w, err);
	if (!st && w->ops)
		st = vdb_err(err, VDB_EINVAL, "commit or roll back the pending batch first");
	return st;
}

/* A vector is storable when every value is finite and, under cosine, not all are zero. One
 * branch-free pass over the bits (all exponent bits set: Inf or NaN) that the compiler
 * vectorises; the column is looked for only when something is wrong. */
static vdb_status check_vector(const vdb_writer *w, const float *vector, vdb_error *err)
{
	uint32_t dim = w->st.cfg.dim, bad = 0, nonzero = 0;
	for (uint32_t i = 0; i < dim; i++) {
		uint32_t b;
		memcpy(&b, &vector[i], 4);
		bad |= (b & 0x7f800000u) == 0x7f800000u;
		nonzero |= b & 0x7fffffffu;
	}
	for (uint32_t i = 0; bad && i < dim; i++)
		if (!isfinite(vector[i]))
			return vdb_err(err, VDB_EDATA, "vector[%" PRIu32 "] is not finite", i);
	if (w->st.cfg.metric == VDB_METRIC_COSINE && !nonzero)
		return vdb_err(err, VDB_EDATA,
			       "a zero vector has no direction (the collection's metric is cosine)");
	return VDB_OK;
}

static vdb_status touch(vdb_writer *w, const vdb_id *id, int deleted, vdb_error *err);

/* What vdb_writer_upsert and vdb_writer_upsert_bulk check. */
static vdb_status check_upsert(const vdb_writer *w, const vdb_id *id, const float *vector,
			       const char *payload, size_t payload_len, vdb_error *err)
{
	vdb_status st = usable(w, err);
	if (st || (st = check_id(id, err)) || (st = check_vector(w, vector, err)))
		return st;
	if (payload) {
		vj_reader r;
		vj_init(&r, payload, payload_len);
		if (payload_len > UINT32_MAX || vj_peek(&r) != '{' || vj_value(&r, NULL) ||
		    vj_end(&r))
			return vdb_err(err, VDB_EDATA, "payload must be a JSON object");
	}
	return VDB_OK;
}

static vdb_status not_with_bulk(const vdb_writer *w, vdb_error *err)
{
	if (w->bulk_rows)
		return vdb_err(err, VDB_EINVAL, "commit the pending bulk rows first");
	return VDB_OK;
}

vdb_status vdb_writer_upsert(vdb_writer *w, const vdb_id *id, const float *vector,
			     const char *payload, size_t payload_len, vdb_error *err)
{
	vdb_status st = not_with_bulk(w, err);
	if (st || (st = check_upsert(w, id, vector, payload, payload_len, err)))
		return st;
	if (vdb_wal_encode_upsert(&w->batch, w->st.cfg.dim, id, vector, payload, payload_len))
		return vdb_err_nomem(err);
	w->ops++;
	return VDB_OK;
}

vdb_status vdb_writer_upsert_bulk(vdb_writer *w, const vdb_id *id, const float *vector,
				  const char *payload, size_t payload_len, vdb_error *err)
{
	vdb_status st = check_upsert(w, id, vector, payload, payload_len, err);
	if (st)
		return st;
	if (w->ops > w->bulk_rows)
		return vdb_err(err, VDB_EINVAL, "commit the pending batch before bulk rows");
	if (w->dry_run) { /* checked; the id is noted for later deletes' counts */
		if ((st = touch(w, id, 0, err)))
			return st;
	} else {
		if (!w->bulk.dim)
			vdb_memtable_init(&w->bulk, w->st.cfg.dim);
		if (vdb_memtable_upsert(&w->bulk, id, vector, payload, payload_len))
			return vdb_err_nomem(err);
	}
	w->ops++;
	w->bulk_rows++;
	w->bulk_bytes += (size_t)w->st.cfg.dim * sizeof(float) + payload_len +
			 (id->is_string ? id->len : 8);
	return VDB_OK;
}

vdb_status vdb_writer_delete(vdb_writer *w, const vdb_id *id, vdb_error *err)
{
	vdb_status st = not_with_bulk(w, err);
	if (st || (st = usable(w, err)) || (st = check_id(id, err)))
		return st;
	if (vdb_wal_encode_delete(&w->batch, id))
		return vdb_err_nomem(err);
	w->ops++;
	w->pending_deletes++;
	return VDB_OK;
}

/* The records to delete are found through a fresh read view: the lock we hold means it is
 * exactly the committed state, with the usual hiding of replaced rows, and it verifies each
 * segment's checksums before trusting its payloads. */
vdb_status vdb_writer_delete_where(vdb_writer *w, const vdb_filter *f, uint64_t *count,
				   vdb_error *err)
{
	vdb_status st = usable(w, err);
	if (st)
		return st;
	if (w->ops)
		return vdb_err(err, VDB_EINVAL, "commit the pending batch before a delete by filter");
	vdb_collection *c;
	vdb_cursor *cur = NULL;
	if ((st = vdb_collection_open(w->db, w->name, &c, err)))
		return st;
	uint64_t n = 0;
	if (!(st = vdb_cursor_open_where(c, f, &cur, err)))
		for (;;) {
			vdb_record rec;
			int has;
			if ((st = vdb_cursor_next(cur, &rec, &has, err)) || !has)
				break;
			if ((st = vdb_writer_delete(w, &rec.id, err)))
				break;
			n++;
		}
	vdb_cursor_close(cur);
	vdb_collection_close(c);
	if (st) {
		vdb_writer_rollback(w);
		return st;
	}
	*count = n;
	return VDB_OK;
}

void vdb_writer_rollback(vdb_writer *w)
{
	vdb_wal_batch_reset(&w->batch);
	w->ops = 0;
	w->pending_deletes = 0;
	vdb_memtable_clear(&w->bulk);
	w->bulk_rows = w->bulk_bytes = 0;
}

uint64_t vdb_writer_last_not_found(const vdb_writer *w)
{
	return w->not_found;
}

/* Whether id has a live record in the committed state: the log's tail decides for the ids
 * it holds, else the newest segment holding the id. */
static vdb_status committed_live(const vdb_state *s, const vdb_id *id, int *live, vdb_error *err)
{
	uint64_t h = vdb_id_hash(id);
	const vdb_mem_entry *e = vdb_memtable_find(&s->mt, id, h);
	*live = e && !e->deleted;
	for (size_t g = s->man.nseg; !e && g-- > 0;) {
		int64_t row;
		vdb_status st = vdb_segment_find(&s->segs[g], id, h, &row, err);
		if (st)
			return st;
		if (row >= 0) {
			*live = !vdb_segment_is_dead(&s->segs[g], (uint64_t)row);
			break;
		}
	}
	return VDB_OK;
}

/* Notes in w->touched that the latest operation on id upserts or deletes it. */
static vdb_status touch(vdb_writer *w, const vdb_id *id, int deleted, vdb_error *err)
{
	static const float one = 1;
	int rc = deleted ? vdb_memtable_delete(&w->touched, id)
			 : vdb_memtable_upsert(&w->touched, id, &one, NULL, 0);
	return rc ? vdb_err_nomem(err) : VDB_OK;
}

/* Counts the pending batch's deletes whose id has no live record at that point -- after the
 * committed state and the batch's own earlier operations (and, in a dry run, those of every
 * earlier batch, which were not applied) -- so that a summary can say "not found". A
 * batch without deletes costs nothing here. */
static vdb_status count_not_found(vdb_writer *w, vdb_error *err)
{
	w->not_found = 0;
	if (!w->dry_run)
		vdb_memtable_clear(&w->touched);
	if (!w->dry_run && !w->pending_deletes)
		return VDB_OK;
	const char *body = w->batch.data + VDB_FRAME_HEADER_SIZE;
	size_t len = w->batch.len - VDB_FRAME_HEADER_SIZE, pos = 0;
	vdb_wal_op op;
	vdb_status st = VDB_OK;
	while (!st && vdb_wal_next_op(body, len, w->st.cfg.dim, &pos, &op) > 0) {
		if (op.op == VDB_OP_DELETE) {
			const vdb_mem_entry *e =
				vdb_memtable_find(&w->touched, &op.id, vdb_id_hash(&op.id));
			int live = e && !e->deleted;
			if (!e && (st = committed_live(&w->st, &op.id, &live, err)))
				break;
			w->not_found += !live;
		}
		st = touch(w, &op.id, op.op == VDB_OP_DELETE, err);
	}
	return st;
}

static vdb_status commit_bulk(vdb_writer *w, vdb_error *err)
{
	vdb_state *s = &w->st;
	char name[64];
	vdb_wal_name(name, sizeof name, s->man.wal);
	vdb_status st = vdb_wal_apply(w->batch.data + VDB_FRAME_HEADER_SIZE,
				      w->batch.len - VDB_FRAME_HEADER_SIZE, s->cfg.dim, &s->mt,
				      name, s->wal.end, err);
	/* A batch this large is a block, as vector files are stored: with its graph. */
	if (!st)
		st = seal_log(w, 1, err);
	vdb_writer_rollback(w);
	/* The memtable may hold part of a batch that is on no disk: only a reopen, which
	 * reloads the last installed version, can continue. */
	if (st) {
		w->failed = 1;
		return st;
	}
	return merge_policy(w, err);
}

static vdb_status seal_block(vdb_writer *w, uint64_t first_id, const float *vectors,
			     size_t stride, size_t n, vdb_error *err);
static vdb_status commit_bulk_rows(vdb_writer *w, vdb_error *err);

#define MERGE_FACTOR 4 /* see merge_policy */

vdb_status vdb_writer_upsert_rows(vdb_writer *w, uint64_t first_id, const float *vectors,
				  size_t stride, size_t n, unsigned flags, size_t *bad,
				  vdb_error *err)
{
	vdb_status st = usable(w, err);
	if (st)
		return st;
	if (w->ops)
		return vdb_err(err, VDB_EINVAL, "commit the pending batch before upserting rows");
	w->not_found = 0;
	if (stride < w->st.cfg.dim)
		return vdb_err(err, VDB_EINVAL, "a row stride of %zu floats is less than the dimension",
			       stride);
	if (n == 0)
		return VDB_OK;
	if (first_id > UINT64_MAX - (n - 1))
		return vdb_err(err, VDB_EINVAL, "the ids of %zu rows from %" PRIu64
			       " go beyond the largest id", n, first_id);
	uint32_t dim = w->st.cfg.dim;
	for (size_t i = 0; i < n; i++)
		if ((st = check_vector(w, vectors + i * stride, err))) {
			if (bad)
				*bad = i;
			return st;
		}
	if (w->dry_run) { /* checked; the ids are noted for later deletes' counts */
		for (size_t i = 0; i < n && !st; i++)
			st = touch(w, &(vdb_id){0, first_id + i, NULL, 0}, 0, err);
		w->not_found = 0;
		return st;
	}
	/* The last rows of a load go straight to a segment too, with its graph: a load leaves
	 * no log tail, which every reader would replay and scan exactly (the merge policy
	 * takes care of small segments). */
	uint64_t bytes = (uint64_t)n * dim * sizeof(float), seal = w->st.cfg.seal_bytes;
	if (bytes >= seal || (flags & VDB_ROWS_LAST))
		return seal_block(w, first_id, vectors, stride, n, err);
	for (size_t i = 0; i < n; i++) {
		vdb_id id = {0, first_id + i, NULL, 0};
		if (vdb_wal_encode_upsert(&w->batch, dim, &id, vectors + i * stride, NULL, 0)) {
			vdb_writer_rollback(w);
			return vdb_err_nomem(err);
		}
		w->ops++;
	}
	return vdb_writer_commit(w, err);
}

vdb_status vdb_writer_commit(vdb_writer *w, vdb_error *err)
{
	vdb_status st = usable(w, err);
	if (st || w->ops == 0)
		return st;
	if ((st = count_not_found(w, err)) || w->dry_run) {
		vdb_writer_rollback(w); /* a dry run validated and counted it: nothing to write */
		return st;
	}
	if (w->bulk_rows)
		return commit_bulk_rows(w, err);
	if (w->batch.len >= w->st.cfg.seal_bytes)
		return commit_bulk(w, err);
	char name[64];
	vdb_wal_name(name, sizeof name, w->st.man.wal);
	vdb_state *s = &w->st;
	st = vdb_wal_append(w->wal_fd, name, s->wal.end, s->wal.next_seq, &w->batch, err);
	if (st) {
		/* Unknown how much reached the disk: refuse further work; reopening recovers. */
		w->failed = st == VDB_EIO;
		if (st != VDB_EIO)
			vdb_writer_rollback(w);
		return st;
	}
	st = vdb_wal_apply(w->batch.data + VDB_FRAME_HEADER_SIZE,
			   w->batch.len - VDB_FRAME_HEADER_SIZE, s->cfg.dim, &s->mt, name,
			   s->wal.end, err);
	s->wal.end += w->batch.len;
	s->wal.next_seq++;
	vdb_writer_rollback(w);
	if (st) {
		w->failed = 1; /* durable but not applied in memory: reopen to continue */
		return st;
	}
	if (s->wal.end - VDB_WAL_HEADER_SIZE >= s->cfg.seal_bytes) {
		if ((st = seal(w, err)))
			return st;
		return merge_policy(w, err);
	}
	return VDB_OK;
}

/* ---- seal ---- */

typedef struct seg_change {
	uint64_t *bits; /* the complete new bitmap (old marks included) */
	uint64_t count;
	int changed;
} seg_change;

typedef struct hash_ref {
	uint64_t hash;
	size_t entry;
} hash_ref;

static int hash_ref_cmp(const void *a, const void *b)
{
	const hash_ref *x = a, *y = b;
	return x->hash < y->hash ? -1 : x->hash > y->hash;
}

/* The ids that a seal brings in (upserted or deleted): older rows with these ids lose. */
typedef struct id_keys {
	size_t n;
	const void *ctx;
	uint64_t (*hash)(const void *ctx, size_t i);
	void (*id)(const void *ctx, size_t i, vdb_id *out);
} id_keys;

static uint64_t mt_key_hash(const void *ctx, size_t i)
{
	return ((const vdb_memtable *)ctx)->entries[i].hash;
}

static void mt_key_id(const void *ctx, size_t i, vdb_id *out)
{
	const vdb_memtable *mt = ctx;
	vdb_memtable_entry_id(mt, &mt->entries[i], out);
}

/* Every entry of the memtable, deletes included. */
static id_keys memtable_keys(const vdb_memtable *mt)
{
	return (id_keys){mt->n, mt, mt_key_hash, mt_key_id};
}

/* The integer ids first..first+n-1 of vdb_writer_upsert_rows. */
static uint64_t row_key_hash(const void *ctx, size_t i)
{
	vdb_id id;
	id = (vdb_id){0, *(const uint64_t *)ctx + i, NULL, 0};
	return vdb_id_hash(&id);
}

static void row_key_id(const void *ctx, size_t i, vdb_id *out)
{
	*out = (vdb_id){0, *(const uint64_t *)ctx + i, NULL, 0};
}

/* Marks, in ch[g], the rows of segment g whose id has an operation in the tail. A merge
 * join: the tail's hashes sorted, against the segment's sorted id index streamed through a
 * fixed buffer with pread. Binary searches through the mapping would fault in the index
 * pages of every segment, making the writer's memory grow with the collection. */
static vdb_status mark_segment(const vdb_state *s, size_t g, const id_keys *keys,
			       const hash_ref *refs, size_t n, seg_change *ch, vdb_error *err)
{
	const vdb_segment *seg = &s->segs[g];
	const vdb_section *idx = NULL;
	for (uint32_t i = 0; i < seg->nsec; i++)
		if (seg->sec[i].kind == VDB_SEC_ID_INDEX)
			idx = &seg->sec[i];
	char path[4096];
	if (!idx || vdb_path(path, sizeof path, s->dir, seg->file))
		return vdb_err(err, VDB_EINTERNAL, "%s: no id index", seg->file);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return vdb_err_sys(err, VDB_OK, "open %s", seg->file);
	enum { CHUNK = 65536 };
	unsigned char *buf = malloc(CHUNK * 16);
	vdb_status st = buf ? VDB_OK : vdb_err_nomem(err);
	size_t k = 0;
	for (uint64_t base = 0; !st && base < seg->rows && k < n; base += CHUNK) {
		size_t cnt = (size_t)(seg->rows - base < CHUNK ? seg->rows - base : CHUNK);
		if (vdb_pread_full(fd, buf, cnt * 16, (off_t)(idx->off + base * 16)) !=
		    (ssize_t)(cnt * 16)) {
			st = vdb_err_sys(err, VDB_EIO, "read %s", seg->file);
			break;
		}
		for (size_t i = 0; i < cnt && k < n; i++) {
			uint64_t h = vdb_le64(buf + i * 16), row = vdb_le64(buf + i * 16 + 8);
			while (k < n && refs[k].hash < h)
				k++;
			for (size_t j = k; j < n && refs[j].hash == h; j++) {
				if (row >= seg->rows) {
					st = vdb_err(err, VDB_ECORRUPT, "%s: damaged id index", seg->file);
					break;
				}
				vdb_id a, b;
				keys->id(keys->ctx, refs[j].entry, &a);
				if ((st = vdb_segment_id(seg, row, &b, err)))
					break;
				if (!vdb_id_equal(&a, &b) || (ch[g].bits[row >> 6] >> (row & 63) & 1))
					continue;
				ch[g].bits[row >> 6] |= 1ull << (row & 63);
				ch[g].count++;
				ch[g].changed = 1;
			}
			if (st)
				break;
		}
	}
	free(buf);
	close(fd);
	return st;
}

static vdb_status collect_deletions(vdb_state *s, const id_keys *keys, seg_change *ch,
				    vdb_error *err)
{
	for (size_t g = 0; g < s->man.nseg; g++) {
		size_t words = (size_t)((s->segs[g].rows + 63) / 64);
		ch[g].bits = calloc(words ? words : 1, 8);
		if (!ch[g].bits)
			return vdb_err_nomem(err);
		if (s->segs[g].dead)
			memcpy(ch[g].bits, s->segs[g].dead, words * 8);
		ch[g].count = s->segs[g].ndead;
	}
	if (!s->man.nseg || !keys->n)
		return VDB_OK;
	hash_ref *refs = malloc(keys->n * sizeof *refs);
	if (!refs)
		return vdb_err_nomem(err);
	for (size_t i = 0; i < keys->n; i++)
		refs[i] = (hash_ref){keys->hash(keys->ctx, i), i};
	qsort(refs, keys->n, sizeof *refs, hash_ref_cmp);
	vdb_status st = VDB_OK;
	for (size_t g = 0; g < s->man.nseg && !st; g++)
		st = mark_segment(s, g, keys, refs, keys->n, ch, err);
	free(refs);
	return st;
}

static void unlink_in(const char *dir, const char *name)
{
	char path[4096];
	if (name[0] && !vdb_path(path, sizeof path, dir, name))
		unlink(path);
}

/* Makes nm the current version: every file it names is made durable in the directory, the
 * MANIFEST is replaced atomically (the switch point), then the files no longer named are
 * removed (invariant: never before the manifest that stops naming them is durable; open
 * readers keep their copies) and the writer reloads the new version. */
static vdb_status install(vdb_writer *w, const vdb_manifest *nm, char (*obsolete)[64],
			  size_t nobs, vdb_error *err)
{
	vdb_state *s = &w->st;
	vdb_status st;
	if ((st = vdb_fsync_dir(s->dir, err)) || (st = vdb_manifest_write(s->dir, nm, err)))
		return st;
	for (size_t i = 0; i < nobs; i++)
		unlink_in(s->dir, obsolete[i]);
	close(w->wal_fd);
	w->wal_fd = -1;
	vdb_state_free(s);
	return load(w, err);
}

/* Installs a new segment written from src, with deletion marks on older rows whose ids are
 * in keys. new_log: the segment holds the log's records, so the next, empty log replaces it;
 * otherwise the log (which must then hold no records) stays. */
static vdb_status seal_rows(vdb_writer *w, const vdb_row_source *src, const id_keys *keys,
			    int new_log, vdb_error *err)
{
	vdb_state *s = &w->st;
	size_t nseg = s->man.nseg;
	seg_change *ch = calloc(nseg + 1, sizeof *ch);
	vdb_manifest nm = s->man;
	nm.segs = calloc(nseg + 1, sizeof *nm.segs);
	/* Each older segment may leave two files (its deletion file, and itself when no row
	 * of it is left), the old log a third. */
	char (*obsolete)[64] = calloc(2 * nseg + 1, sizeof *obsolete);
	vdb_status st;
	if (!ch || !nm.segs || !obsolete) {
		st = vdb_err_nomem(err);
		goto out;
	}
	if ((st = collect_deletions(s, keys, ch, err)))
		goto out;
	uint64_t segno = nm.next_file++, size = 0;
	uint32_t crc = 0;
	uint64_t rows = src->rows;
	vdb_row_source threaded = *src;
	threaded.threads = w->threads;
	if (rows && (st = vdb_segment_write(s->dir, segno, &s->cfg, &threaded, &size, &crc, err)))
		goto out;
	size_t nobs = 0;
	nm.nseg = 0;
	for (size_t g = 0; g < nseg; g++) {
		vdb_manifest_seg ms = s->man.segs[g];
		if (ch[g].changed) {
			snprintf(obsolete[nobs++], 64, "%s", ms.del_file);
			if (ch[g].count == ms.rows) { /* nothing left: drop the segment */
				vdb_segment_name(obsolete[nobs++], 64, ms.number);
				continue;
			}
			vdb_del_name(ms.del_file, sizeof ms.del_file, ms.number, nm.next_file++);
			ms.deleted = ch[g].count;
			st = vdb_del_write(s->dir, ms.del_file, ms.number, ms.rows, ch[g].bits,
					   ch[g].count, err);
			if (st)
				goto out;
		}
		nm.segs[nm.nseg++] = ms;
	}
	if (rows)
		nm.segs[nm.nseg++] = (vdb_manifest_seg){segno, rows, size, crc, 0, ""};
	if (new_log) {
		if ((st = vdb_wal_create(s->dir, nm.wal + 1, s->cfg.dim, err)))
			goto out;
		vdb_wal_name(obsolete[nobs++], 64, nm.wal);
		nm.wal++;
	}
	nm.next_seq = s->wal.next_seq;
	nm.generation++;
	st = install(w, &nm, obsolete, nobs, err);
out:
	if (st && st != VDB_ENOMEM)
		w->failed = 1;
	for (size_t g = 0; ch && g < nseg; g++)
		free(ch[g].bits);
	free(ch);
	free(nm.segs);
	free(obsolete);
	return st;
}

/* Seals the log's records into a segment: without a graph unless `graph` (see
 * merge_policy: a log seal is small, and its rows get a graph when flat segments add up). */
static vdb_status seal_log(vdb_writer *w, int graph, vdb_error *err)
{
	vdb_row_source src;
	vdb_mem_rows mem;
	vdb_mem_rows_init(&src, &mem, &w->st.mt);
	src.no_graph = !graph;
	id_keys keys = memtable_keys(&w->st.mt);
	return seal_rows(w, &src, &keys, 1, err);
}

static vdb_status seal(vdb_writer *w, vdb_error *err)
{
	return seal_log(w, 0, err);
}

/* Rows that become a segment of their own, never logged: the log's records are sealed
 * first (when there are any), then src is installed with deletion marks on older rows of
 * its ids, then the merge policy runs. */
static vdb_status seal_own_segment(vdb_writer *w, const vdb_row_source *src,
				   const id_keys *keys, vdb_error *err)
{
	vdb_status st;
	if (w->st.wal.end > VDB_WAL_HEADER_SIZE && (st = seal(w, err)))
		return st;
	if ((st = seal_rows(w, src, keys, 0, err)))
		return st;
	return merge_policy(w, err);
}

/* vdb_writer_upsert_rows of a block as large as the seal threshold: the log's records are
 * sealed first (when there are any), then the block becomes a segment of its own, written
 * straight from the caller's rows: no log, no memtable copy. Its MANIFEST switch is the
 * commit point; a crash between the two seals loses nothing acknowledged (the first seal
 * holds only committed records) and shows nothing of the block. */
static vdb_status seal_block(vdb_writer *w, uint64_t first_id, const float *vectors,
			     size_t stride, size_t n, vdb_error *err)
{
	vdb_row_source src;
	vdb_block_rows rows;
	vdb_block_rows_init(&src, &rows, vectors, stride, first_id, n);
	id_keys keys = {n, &first_id, row_key_hash, row_key_id};
	return seal_own_segment(w, &src, &keys, err);
}

/* vdb_writer_upsert_bulk's rows at commit: as seal_block, from the bulk memtable (the
 * latest row per id), with its graph. */
static vdb_status commit_bulk_rows(vdb_writer *w, vdb_error *err)
{
	vdb_row_source src;
	vdb_mem_rows mem;
	vdb_mem_rows_init(&src, &mem, &w->bulk);
	id_keys keys = memtable_keys(&w->bulk);
	vdb_status st = seal_own_segment(w, &src, &keys, err);
	vdb_writer_rollback(w);
	return st;
}

/* ---- merging ---- */

/* Replaces segments [first, first + count) by one segment of their live rows, placed where
 * they were, so the storage order of records is kept. Same durability steps as a seal. */
static vdb_status merge_run(vdb_writer *w, size_t first, size_t count, int graph,
			   vdb_error *err)
{
	vdb_state *s = &w->st;
	vdb_manifest nm = s->man;
	nm.segs = calloc(s->man.nseg, sizeof *nm.segs);
	char (*obsolete)[64] = calloc(2 * count, sizeof *obsolete);
	vdb_status st = VDB_OK;
	vdb_seg_rows rows = {0};
	if (!nm.segs || !obsolete) {
		st = vdb_err_nomem(err);
		goto out;
	}
	vdb_row_source src;
	vdb_seg_rows_init(&src, &rows, s->segs + first, count, s->cfg.dim);
	if (w->compacting) {
		src.progress = w->compact_progress;
		src.progress_ctx = w->compact_progress_ctx;
	}
	src.threads = w->threads;
	src.no_graph = !graph;
	if (s->cfg.index == VDB_INDEX_HNSW && graph && vdb_seg_rows_reuse_graph(&src, &rows)) {
		st = vdb_err_nomem(err);
		goto out;
	}
	uint64_t segno = nm.next_file++, size = 0;
	uint32_t crc = 0;
	if (src.rows && (st = vdb_segment_write(s->dir, segno, &s->cfg, &src, &size, &crc, err)))
		goto out;
	nm.nseg = 0;
	for (size_t g = 0; g < s->man.nseg; g++) {
		if (g == first && src.rows)
			nm.segs[nm.nseg++] = (vdb_manifest_seg){segno, src.rows, size, crc, 0, ""};
		if (g >= first && g < first + count) {
			vdb_segment_name(obsolete[2 * (g - first)], 64, s->man.segs[g].number);
			snprintf(obsolete[2 * (g - first) + 1], 64, "%s", s->man.segs[g].del_file);
			continue;
		}
		nm.segs[nm.nseg++] = s->man.segs[g];
	}
	nm.generation++;
	st = install(w, &nm, obsolete, 2 * count, err);
out:
	if (st && st != VDB_ENOMEM)
		w->failed = 1;
	vdb_seg_rows_free(&rows);
	free(nm.segs);
	free(obsolete);
	return st;
}

/* Size tiers: a segment of n live rows is in tier floor(log4 n) (MERGE_FACTOR). */

static unsigned tier(uint64_t rows)
{
	unsigned t = 0;
	while (rows >= MERGE_FACTOR) {
		rows /= MERGE_FACTOR;
		t++;
	}
	return t;
}

/* Seal thresholds of vectors in flat segments (without a graph) at the end of an HNSW
 * collection that make the merge policy give them a graph: what an exact scan of every
 * query may cost before a graph takes over (64 MiB at the default 4 MiB seal threshold,
 * what the log alone held when that threshold was 64 MiB). */
#define FLAT_SEALS_MAX 16

/* The newest segments of an HNSW collection without a graph: how many, and their rows. */
static size_t flat_run(const vdb_state *s, uint64_t *rows)
{
	size_t n = s->man.nseg, f = 0;
	*rows = 0;
	if (s->cfg.index != VDB_INDEX_HNSW)
		return 0;
	while (f < n && !s->segs[n - 1 - f].has_graph) {
		*rows += vdb_segment_live_rows(&s->segs[n - 1 - f]);
		f++;
	}
	return f;
}

/* The automatic merge policy, run after each seal.
 *
 * In an HNSW collection the log's seals are flat: a small seal keeps the log that every
 * reader replays short (docs/format.md), and a graph per small seal would be rebuilt by
 * every merge above it. Once the flat segments at the end hold FLAT_SEALS_MAX seal
 * thresholds of vectors they are merged into one segment with a graph (vdb_writer_settle
 * does it sooner, when a load ends).
 *
 * Then size tiers: while the newest MERGE_FACTOR or more segments are all in the newest
 * one's tier or below, that run is merged into one segment (a tier up), keeping a graph if
 * any of them has one (the largest one's graph is reused). Runs are contiguous, so storage
 * order is kept; every tier holds fewer than MERGE_FACTOR segments, so their number stays
 * logarithmic in the collection's size, and each record is rewritten once per tier it
 * climbs. */
static vdb_status merge_policy(vdb_writer *w, vdb_error *err)
{
	for (;;) {
		size_t n = w->st.man.nseg;
		uint64_t flat_rows;
		size_t f = flat_run(&w->st, &flat_rows);
		if (f && flat_rows >= VDB_HNSW_MIN_ROWS &&
		    flat_rows * w->st.cfg.dim * sizeof(float) >=
			    FLAT_SEALS_MAX * w->st.cfg.seal_bytes) {
			vdb_status st = merge_run(w, n - f, f, 1, err);
			if (st)
				return st;
			continue;
		}
		if (n < MERGE_FACTOR)
			return VDB_OK;
		unsigned t = tier(vdb_segment_live_rows(&w->st.segs[n - 1]));
		size_t first = n - 1;
		while (first > 0 && tier(vdb_segment_live_rows(&w->st.segs[first - 1])) <= t)
			first--;
		if (n - first < MERGE_FACTOR)
			return VDB_OK;
		int graph = 0;
		for (size_t g = first; g < n; g++)
			graph |= w->st.segs[g].has_graph;
		vdb_status st = merge_run(w, first, n - first, graph, err);
		if (st)
			return st;
	}
}

/* Whether a segment's codes are not those the collection's CONFIG asks for now. */
static int codes_stale(const vdb_segment *g, const vdb_collection_config *cfg)
{
	return g->has_codes ? g->codes.kind != cfg->quantize : cfg->quantize != VDB_QUANTIZE_NONE;
}

vdb_status vdb_writer_set_quantize(vdb_writer *w, vdb_quantize q, vdb_error *err)
{
	vdb_status st = idle(w, err);
	if (st || w->st.cfg.quantize == q)
		return st;
	vdb_collection_config c = w->st.cfg;
	c.quantize = q;
	const char *why = vdb_config_problem(&c);
	if (why)
		return vdb_err(err, VDB_EINVAL, "%s", why);
	char *file;
	size_t len;
	if ((st = vdb_config_encode(w->st.name, &c, &file, &len, err)))
		return st;
	/* Replaced atomically: segments written before keep their codes (or none) and stay
	 * valid under either CONFIG; merges and compactions write the new kind. */
	st = vdb_atomic_write(w->st.dir, VDB_CONFIG_FILE, file, len, err);
	free(file);
	if (!st)
		w->st.cfg.quantize = q;
	return st;
}

vdb_status vdb_writer_compact(vdb_writer *w, vdb_error *err)
{
	vdb_status st = idle(w, err);
	if (st)
		return st;
	if (w->st.mt.n && (st = seal(w, err)))
		return st;
	size_t n = w->st.man.nseg;
	int needed = n > 1;
	for (size_t g = 0; g < n && !needed; g++)
		needed = w->st.segs[g].ndead > 0 || codes_stale(&w->st.segs[g], &w->st.cfg) ||
			 (w->st.cfg.index == VDB_INDEX_HNSW && !w->st.segs[g].has_graph &&
			  vdb_segment_live_rows(&w->st.segs[g]) >= VDB_HNSW_MIN_ROWS);
	if (!needed)
		return VDB_OK;
	w->compacting = 1;
	st = merge_run(w, 0, n, 1, err);
	w->compacting = 0;
	return st;
}

/* Rows outside the largest segment worth a merge into one at vdb_writer_settle: 1/SETTLE_SHARE
 * of the largest (and at least a graph's worth). Below that the merge would mostly copy the
 * largest segment; above it, the graph inserts of the other rows cost more than the copy
 * (a row's insert computes hundreds of distances, its copy moves it once). */
#define SETTLE_SHARE 64

vdb_status vdb_writer_settle(vdb_writer *w, vdb_error *err)
{
	vdb_status st = idle(w, err);
	if (st || w->dry_run)
		return st;
	vdb_state *s = &w->st;
	/* s->live is the count at load; the log's own count is kept current. */
	uint64_t largest = 0, all = s->mt.live;
	const vdb_segment *big = NULL;
	for (size_t g = 0; g < s->man.nseg; g++) {
		uint64_t live = vdb_segment_live_rows(&s->segs[g]);
		all += live;
		if (live > largest) {
			largest = live;
			big = &s->segs[g];
		}
	}
	uint64_t others = all - largest, min_rows = VDB_HNSW_MIN_ROWS;
	int hnsw = s->cfg.index == VDB_INDEX_HNSW;
	/* A graph with over a quarter of its rows deleted is not reused by a merge
	 * (vdb_seg_rows_reuse_graph): merging would rebuild everything, vdb-compact's work. */
	int reusable = !big || !big->has_graph || big->ndead <= big->rows / 4;
	if (hnsw && reusable && others >= min_rows && others >= largest / SETTLE_SHARE) {
		/* Everything into one segment: the log straight into a graph when it is all
		 * there is, else through a flat seal into the merge. */
		if (s->mt.n && (st = seal_log(w, !s->man.nseg, err)))
			return st;
		if (s->man.nseg > 1 || (s->man.nseg == 1 && !s->segs[0].has_graph &&
					vdb_segment_live_rows(&s->segs[0]) >= min_rows))
			return merge_run(w, 0, s->man.nseg, 1, err);
		return VDB_OK;
	}
	/* The records of the log and of the flat segments at the end get a graph of their own. */
	uint64_t flat_rows;
	size_t f = flat_run(s, &flat_rows);
	if (hnsw && flat_rows + s->mt.live >= min_rows) {
		if (s->mt.n && (st = seal_log(w, !f, err)))
			return st;
		f = flat_run(s, &flat_rows);
		if (f && (st = merge_run(w, s->man.nseg - f, f, 1, err)))
			return st;
	} else if (s->mt.n >= min_rows && (st = seal(w, err))) {
		return st;
	}
	return merge_policy(w, err);
}

void vdb_writer_set_compact_progress(vdb_writer *w,
				     void (*progress)(void *ctx, uint64_t done, uint64_t total),
				     void *ctx)
{
	w->compact_progress = progress;
	w->compact_progress_ctx = ctx;
}

vdb_status vdb_writer_stats(const vdb_writer *w, uint64_t *segments, uint64_t *live)
{
	*segments = w->st.man.nseg;
	uint64_t n = w->st.mt.live;
	for (size_t g = 0; g < w->st.man.nseg; g++)
		n += vdb_segment_live_rows(&w->st.segs[g]);
	*live = n;
	return VDB_OK;
}

/* ---- repair ---- */

/* Rewrites each listed segment from its primary sections into a new segment file: every row
 * (deleted ones too, so the deletion marks keep their row numbers and move to a new deletion
 * file), with id index, norms, payload indexes and graph computed afresh. One MANIFEST
 * switch installs them all; the old files are removed after it, as after a merge. The
 * writer is opened with only the primary sections mapped, since the derived ones may be
 * what is damaged; it touches nothing else (no seal, no merge). A listed segment that a
 * writer merged away since the caller's check is skipped (its rows were rewritten anyway). */
vdb_status vdb_rebuild_segments(const char *db, const char *name, uint64_t *numbers, size_t *n,
				vdb_error *err)
{
	vdb_writer *w;
	vdb_status st = writer_open(db, name, NULL, VDB_SEG_OPEN_PRIMARY, &w, err);
	if (st)
		return st;
	vdb_state *s = &w->st;
	vdb_manifest nm = s->man;
	nm.segs = calloc(s->man.nseg ? s->man.nseg : 1, sizeof *nm.segs);
	char (*obsolete)[64] = calloc(2 * (s->man.nseg ? s->man.nseg : 1), sizeof *obsolete);
	uint64_t *done_nums = calloc(s->man.nseg ? s->man.nseg : 1, sizeof *done_nums);
	size_t nobs = 0, done = 0;
	if (!nm.segs || !obsolete || !done_nums) {
		st = vdb_err_nomem(err);
		goto out;
	}
	for (size_t g = 0; g < s->man.nseg; g++) {
		vdb_manifest_seg ms = s->man.segs[g];
		int listed = 0;
		for (size_t i = 0; i < *n && !listed; i++)
			listed = numbers[i] == ms.number;
		nm.segs[g] = ms;
		if (!listed)
			continue;
		/* Every row: a copy of the segment without its deletion marks. */
		vdb_segment all = s->segs[g];
		all.dead = NULL;
		all.ndead = 0;
		vdb_row_source src;
		vdb_seg_rows rows;
		vdb_seg_rows_init(&src, &rows, &all, 1, s->cfg.dim);
		vdb_manifest_seg rs = {nm.next_file++, ms.rows, 0, 0, ms.deleted, ""};
		if ((st = vdb_segment_write(s->dir, rs.number, &s->cfg, &src, &rs.size,
					    &rs.header_crc, err)))
			goto out;
		if (ms.deleted) {
			vdb_del_name(rs.del_file, sizeof rs.del_file, rs.number, nm.next_file++);
			if ((st = vdb_del_write(s->dir, rs.del_file, rs.number, rs.rows,
						s->segs[g].dead, s->segs[g].ndeleted, err)))
				goto out;
		}
		vdb_segment_name(obsolete[nobs++], 64, ms.number);
		snprintf(obsolete[nobs++], 64, "%s", ms.del_file);
		nm.segs[g] = rs;
		done_nums[done++] = ms.number;
	}
	memcpy(numbers, done_nums, done * sizeof *numbers);
	*n = done;
	if (done) {
		nm.generation++;
		st = install(w, &nm, obsolete, nobs, err);
	}
out:
	free(nm.segs);
	free(obsolete);
	free(done_nums);
	vdb_writer_close(w);
	return st;
}
