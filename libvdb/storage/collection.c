/* The public read API: a vdb_collection is one loaded version (state.c), searched by the
 * query engine (search.c), read by id, or iterated by a cursor in storage or id order;
 * filters narrow all of them. */
#define _GNU_SOURCE /* qsort_r */
#include <stdlib.h>
#include <string.h>

#include "../index/filter.h"
#include "../util/error.h"
#include "collection.h"
#include "config.h"
#include "ids.h"
#include "search.h"
#include "state.h"
#include "vdb_io.h"

struct vdb_collection {
	vdb_state st;
	vdb_hnsw_scratch scratch; /* reused by every search of this view */
	vdb_selection sel;        /* the last filter's selection, reused while it repeats */
	char db[4096];            /* the database it was opened from, to load newer versions */
	uint64_t generation;      /* versions loaded by vdb_collection_refresh */
};

struct vdb_cursor {
	vdb_collection *c;
	size_t seg;
	uint64_t row;
	size_t mt_i;
	int verified; /* segment `seg` has passed its checksum check */
	const vdb_filter *filter;
	uint64_t *cand; /* the filter's candidate rows in segment `seg` (payload indexes), or NULL */
	/* Id order: where every selected record is, sorted by id, and the next to return. */
	struct rowpos *by_id;
	size_t n_by_id, next_by_id;
};

/* A record's place in the loaded version: a segment and row, or (src == nseg) the log
 * tail's memtable entry `row`. */
typedef struct rowpos {
	uint32_t src;
	uint64_t row;
} rowpos;

vdb_status vdb_collection_open(const char *db, const char *name, vdb_collection **out,
			       vdb_error *err)
{
	vdb_collection *c = calloc(1, sizeof *c);
	if (!c)
		return vdb_err_nomem(err);
	vdb_status st = strlen(db) >= sizeof c->db ? vdb_err(err, VDB_EINVAL, "path too long: %s", db)
						   : vdb_state_load(db, name, &c->st, NULL, err);
	if (st) {
		free(c);
		return st;
	}
	memcpy(c->db, db, strlen(db) + 1);
	*out = c;
	return VDB_OK;
}

int vdb_collection_stale(const vdb_collection *c)
{
	return vdb_state_stale(&c->st);
}

vdb_status vdb_collection_refresh(vdb_collection *c, int *changed, vdb_error *err)
{
	*changed = 0;
	if (!vdb_state_stale(&c->st))
		return VDB_OK;
	vdb_state fresh;
	vdb_status st = vdb_state_load(c->db, c->st.name, &fresh, NULL, err);
	if (st)
		return st;
	if (fresh.cfg.dim != c->st.cfg.dim || fresh.cfg.metric != c->st.cfg.metric) {
		vdb_state_free(&fresh);
		return vdb_err(err, VDB_ENOENT, "collection '%s' was replaced by another (its dimension "
			       "or metric changed): open it again", c->st.name);
	}
	vdb_state_free(&c->st);
	c->st = fresh;
	vdb_selection_free(&c->sel);
	c->generation++;
	*changed = 1;
	return VDB_OK;
}

void vdb_collection_close(vdb_collection *c)
{
	if (!c)
		return;
	vdb_state_free(&c->st);
	vdb_hnsw_scratch_free(&c->scratch);
	vdb_selection_free(&c->sel);
	free(c);
}

void vdb_collection_get_config(const vdb_collection *c, vdb_collection_config *out)
{
	vdb_config_copy_out(&c->st.cfg, out);
}

uint64_t vdb_collection_count(const vdb_collection *c)
{
	return c->st.live;
}

vdb_status vdb_collection_count_where(vdb_collection *c, const vdb_filter *f, uint64_t *out,
				      vdb_error *err)
{
	if (!f || vdb_filter_is_all(f)) {
		*out = c->st.live;
		return VDB_OK;
	}
	vdb_status st = vdb_selection_get(&c->sel, &c->st, f, err);
	if (!st)
		*out = c->sel.total;
	return st;
}

/* The caller's search options (sized: vdb_options_take) in opts; *o is NULL without them. */
static vdb_status take_search_options(const vdb_search_options *given, vdb_search_options *opts,
				      const vdb_search_options **o, vdb_error *err)
{
	*o = NULL;
	if (!given)
		return VDB_OK;
	vdb_search_options_init(opts);
	if (vdb_options_take(opts, sizeof *opts, given, "vdb_search_options", err))
		return VDB_EINVAL;
	*o = opts;
	return VDB_OK;
}

/* A search of st with the scratch and the selection cache of one collection or searcher. */
static vdb_status search_with(vdb_state *st, vdb_hnsw_scratch *scratch, vdb_selection *cache,
			      const float *query, size_t k, const vdb_search_options *given,
			      vdb_hit *hits, size_t *n, vdb_error *err)
{
	vdb_search_options opts;
	const vdb_search_options *o;
	if (take_search_options(given, &opts, &o, err))
		return VDB_EINVAL;
	const vdb_selection *sel = NULL;
	if (o && o->filter && !vdb_filter_is_all(o->filter)) {
		vdb_status s = vdb_selection_get(cache, st, o->filter, err);
		if (s)
			return s;
		sel = cache;
	}
	return vdb_state_search(st, scratch, query, k, o, sel, hits, n, err);
}

vdb_status vdb_search(vdb_collection *c, const float *query, size_t k,
		      const vdb_search_options *o, vdb_hit *hits, size_t *n, vdb_error *err)
{
	return search_with(&c->st, &c->scratch, &c->sel, query, k, o, hits, n, err);
}

/* Each searcher keeps its own selection: threads never share a mutable cache (a filter
 * used by several threads is evaluated once per thread). */
struct vdb_searcher {
	vdb_collection *c;
	vdb_hnsw_scratch scratch;
	vdb_selection sel;
	uint64_t generation; /* of the version sel was computed on */
};

/* A selection belongs to the version it was computed on. */
static void searcher_sync(vdb_searcher *s)
{
	if (s->generation != s->c->generation) {
		vdb_selection_free(&s->sel);
		s->generation = s->c->generation;
	}
}

vdb_status vdb_searcher_new(vdb_collection *c, vdb_searcher **out, vdb_error *err)
{
	vdb_searcher *s = calloc(1, sizeof *s);
	if (!s)
		return vdb_err_nomem(err);
	s->c = c;
	s->generation = c->generation;
	*out = s;
	return VDB_OK;
}

void vdb_searcher_free(vdb_searcher *s)
{
	if (!s)
		return;
	vdb_hnsw_scratch_free(&s->scratch);
	vdb_selection_free(&s->sel);
	free(s);
}

vdb_status vdb_searcher_search(vdb_searcher *s, const float *query, size_t k,
			       const vdb_search_options *o, vdb_hit *hits, size_t *n, vdb_error *err)
{
	searcher_sync(s);
	return search_with(&s->c->st, &s->scratch, &s->sel, query, k, o, hits, n, err);
}

vdb_status vdb_searcher_search_batch(vdb_searcher *s, size_t nq, const float *const *queries,
				     const size_t *ks, const vdb_search_options *given,
				     vdb_hit *const *hits, size_t *ns, size_t *failed,
				     vdb_error *err)
{
	const vdb_selection *sel = NULL;
	*failed = nq;
	searcher_sync(s);
	vdb_search_options opts;
	const vdb_search_options *o;
	if (take_search_options(given, &opts, &o, err))
		return VDB_EINVAL;
	if (o && o->filter && !vdb_filter_is_all(o->filter)) {
		vdb_status st = vdb_selection_get(&s->sel, &s->c->st, o->filter, err);
		if (st)
			return st;
		sel = &s->sel;
	}
	return vdb_state_search_batch(&s->c->st, &s->scratch, nq, queries, ks, o, sel, hits, ns,
				      failed, err);
}

static vdb_status segment_record(const vdb_state *s, size_t g, uint64_t row, vdb_record *out,
				 vdb_error *err)
{
	const vdb_segment *seg = &s->segs[g];
	vdb_record r;
	vdb_status st = vdb_segment_id(seg, row, &r.id, err);
	if (!st)
		st = vdb_segment_payload(seg, row, &r.payload, &r.payload_len, err);
	if (st)
		return st;
	r.vector = seg->vectors + row * s->cfg.dim;
	*out = r;
	return VDB_OK;
}

vdb_status vdb_hit_record(vdb_collection *c, const vdb_hit *hit, vdb_record *out, vdb_error *err)
{
	const vdb_state *s = &c->st;
	if (hit->source < s->man.nseg) {
		if (hit->row >= s->segs[hit->source].rows)
			return vdb_err(err, VDB_EINVAL, "hit does not belong to this collection view");
		return segment_record(s, hit->source, hit->row, out, err);
	}
	if (hit->source != s->man.nseg || hit->row >= s->mt.n)
		return vdb_err(err, VDB_EINVAL, "hit does not belong to this collection view");
	vdb_memtable_entry_record(&s->mt, &s->mt.entries[hit->row], out);
	return VDB_OK;
}

vdb_status vdb_hit_ids(vdb_collection *c, const vdb_hit *hits, size_t n, vdb_id *ids,
		       vdb_error *err)
{
	for (size_t i = 0; i < n; i++) {
		vdb_record r;
		vdb_status st = vdb_hit_record(c, &hits[i], &r, err);
		if (st)
			return st;
		ids[i] = r.id;
	}
	return VDB_OK;
}

vdb_status vdb_get(vdb_collection *c, const vdb_id *id, vdb_record *out, vdb_error *err)
{
	const vdb_state *s = &c->st;
	uint64_t h = vdb_id_hash(id);
	const vdb_mem_entry *e = vdb_memtable_find(&s->mt, id, h);
	if (e && !e->deleted) {
		vdb_memtable_entry_record(&s->mt, e, out);
		return VDB_OK;
	}
	if (!e) {
		for (size_t g = s->man.nseg; g-- > 0;) {
			int64_t row;
			vdb_status st = vdb_segment_find(&s->segs[g], id, h, &row, err);
			if (st)
				return st;
			if (row >= 0 && !vdb_segment_is_dead(&s->segs[g], (uint64_t)row))
				return segment_record(s, g, (uint64_t)row, out, err);
		}
	}
	return vdb_err(err, VDB_ENOENT, "no record with that id");
}

vdb_status vdb_cursor_open_where(vdb_collection *c, const vdb_filter *f, vdb_cursor **out,
				 vdb_error *err)
{
	vdb_cursor *cur = calloc(1, sizeof *cur);
	if (!cur)
		return vdb_err_nomem(err);
	cur->c = c;
	cur->filter = f && !vdb_filter_is_all(f) ? f : NULL;
	*out = cur;
	return VDB_OK;
}

vdb_status vdb_cursor_open(vdb_collection *c, vdb_cursor **out, vdb_error *err)
{
	return vdb_cursor_open_where(c, NULL, out, err);
}

/* Whether the cursor's filter (if any) selects rec; evaluated row by row, so a filtered
 * export stays in constant memory. */
static vdb_status wanted(const vdb_cursor *cur, const vdb_record *rec, const char *where,
			 int *yes, vdb_error *err)
{
	int r = cur->filter ? vdb_filter_eval(cur->filter, rec->payload, rec->payload_len) : 1;
	if (r < 0)
		return vdb_err(err, VDB_ECORRUPT, "%s: damaged payload", where);
	*yes = r;
	return VDB_OK;
}

void vdb_cursor_close(vdb_cursor *cur)
{
	if (cur) {
		free(cur->cand);
		free(cur->by_id);
	}
	free(cur);
}

static vdb_status next_by_id(vdb_cursor *cur, vdb_record *rec, int *has, vdb_error *err);

vdb_status vdb_cursor_next(vdb_cursor *cur, vdb_record *rec, int *has, vdb_error *err)
{
	if (cur->by_id)
		return next_by_id(cur, rec, has, err);
	const vdb_state *s = &cur->c->st;
	while (cur->seg < s->man.nseg) {
		const vdb_segment *seg = &s->segs[cur->seg];
		if (!cur->verified) {
			/* Once per view: a second pass over it (Parquet's export makes two) reads
			 * the same mapped bytes. */
			vdb_status st;
			if (!seg->verified) {
				if ((st = vdb_segment_verify(seg, err)))
					return st;
				vdb_segment_release(seg);
				cur->c->st.segs[cur->seg].verified = 1;
			}
			cur->verified = 1;
			if (cur->filter &&
			    (st = vdb_filter_candidates(cur->filter, seg->pidx, seg->npidx, seg->rows,
							&cur->cand, seg->file, err)))
				return st;
		}
		while (cur->row < seg->rows) {
			uint64_t r = cur->row++;
			if (r % VDB_RELEASE_EVERY == VDB_RELEASE_EVERY - 1)
				vdb_segment_release(seg); /* constant memory over any collection */
			if (vdb_segment_is_dead(seg, r) ||
			    (cur->cand && !(cur->cand[r >> 6] >> (r & 63) & 1)))
				continue;
			int yes = 0;
			vdb_status st = segment_record(s, cur->seg, r, rec, err);
			if (!st)
				st = wanted(cur, rec, seg->file, &yes, err);
			if (st)
				return st;
			if (!yes)
				continue;
			*has = 1;
			return VDB_OK;
		}
		vdb_segment_release(seg);
		free(cur->cand);
		cur->cand = NULL;
		cur->seg++;
		cur->row = 0;
		cur->verified = 0;
	}
	while (cur->mt_i < s->mt.n) {
		const vdb_mem_entry *e = &s->mt.entries[cur->mt_i++];
		if (e->deleted)
			continue;
		int yes = 0;
		vdb_memtable_entry_record(&s->mt, e, rec);
		vdb_status st = wanted(cur, rec, s->dir, &yes, err);
		if (st)
			return st;
		if (!yes)
			continue;
		*has = 1;
		return VDB_OK;
	}
	*has = 0;
	return VDB_OK;
}

const vdb_state *vdb_collection_state(const vdb_collection *c)
{
	return &c->st;
}

/* ---- id order ---- */

typedef struct by_id_ctx {
	const vdb_state *s;
	int failed;
	vdb_error err;
} by_id_ctx;

static int cmp_positions(const void *pa, const void *pb, void *arg)
{
	by_id_ctx *x = arg;
	const rowpos *a = pa, *b = pb;
	vdb_id ia, ib;
	if (vdb_state_row_id(x->s, a->src, a->row, &ia, &x->err) ||
	    vdb_state_row_id(x->s, b->src, b->row, &ib, &x->err)) {
		x->failed = 1; /* a damaged id table: reported after the sort */
		return 0;
	}
	return vdb_id_compare(&ia, &ib);
}

/* Collects where every selected record is with a storage-order pass (which verifies each
 * segment's checksums before its first record, as always), then sorts those places by id:
 * 12-16 bytes a record, ids read in place, not copied. */
static vdb_status collect_by_id(vdb_cursor *cur, vdb_error *err)
{
	const vdb_state *s = &cur->c->st;
	rowpos *pos = NULL; /* cur->by_id stays NULL until the end: it switches the order */
	size_t n = 0, cap = 0;
	vdb_status st;
	for (;;) {
		vdb_record rec;
		int has;
		if ((st = vdb_cursor_next(cur, &rec, &has, err)) || !has)
			break;
		if (n == cap) {
			cap = cap ? cap * 2 : 1024;
			rowpos *p = realloc(pos, cap * sizeof *p);
			if (!p) {
				st = vdb_err_nomem(err);
				break;
			}
			pos = p;
		}
		/* The storage pass has just stepped past this record. */
		pos[n++] = cur->seg < s->man.nseg ? (rowpos){(uint32_t)cur->seg, cur->row - 1}
						  : (rowpos){(uint32_t)s->man.nseg, cur->mt_i - 1};
	}
	by_id_ctx x = {s, 0, {0}};
	if (!st && n)
		qsort_r(pos, n, sizeof *pos, cmp_positions, &x);
	if (!st && x.failed) {
		if (err)
			*err = x.err;
		st = x.err.code;
	}
	if (!st && !pos && !(pos = malloc(sizeof *pos))) /* none: still marks id order */
		st = vdb_err_nomem(err);
	if (st) {
		free(pos);
		return st;
	}
	cur->by_id = pos;
	cur->n_by_id = n;
	return VDB_OK;
}

vdb_status vdb_cursor_open_ordered(vdb_collection *c, const vdb_filter *f, vdb_order order,
				   vdb_cursor **out, vdb_error *err)
{
	if (order != VDB_ORDER_STORAGE && order != VDB_ORDER_ID)
		return vdb_err(err, VDB_EINVAL, "unknown cursor order %d", (int)order);
	vdb_cursor *cur;
	vdb_status st = vdb_cursor_open_where(c, f, &cur, err);
	if (st || order == VDB_ORDER_STORAGE) {
		if (!st)
			*out = cur;
		return st;
	}
	if ((st = collect_by_id(cur, err))) {
		vdb_cursor_close(cur);
		return st;
	}
	*out = cur;
	return VDB_OK;
}

/* The next record in id order: read in place from its segment or the log tail. */
static vdb_status next_by_id(vdb_cursor *cur, vdb_record *rec, int *has, vdb_error *err)
{
	const vdb_state *s = &cur->c->st;
	if (cur->next_by_id == cur->n_by_id) {
		*has = 0;
		return VDB_OK;
	}
	rowpos p = cur->by_id[cur->next_by_id++];
	vdb_status st = VDB_OK;
	if (p.src < s->man.nseg)
		st = segment_record(s, p.src, p.row, rec, err);
	else
		vdb_memtable_entry_record(&s->mt, &s->mt.entries[p.row], rec);
	*has = !st;
	return st;
}

/* ---- result lines ---- */

#define PUT(t, s) (vdb_text_append(t, s, sizeof(s) - 1) != VDB_OK)

vdb_status vdb_jsonl_append_hits(vdb_text *t, vdb_collection *c, const vdb_hit *hits,
				 size_t n, unsigned flags, vdb_error *err)
{
	return vdb_jsonl_append_answer(t, c, NULL, 0, hits, n, flags, err);
}

vdb_status vdb_jsonl_append_answer(vdb_text *t, vdb_collection *c, const char *tag,
				   size_t tag_len, const vdb_hit *hits, size_t n, unsigned flags,
				   vdb_error *err)
{
	uint32_t dim = c->st.cfg.dim;
	int bad = tag ? PUT(t, "{\"tag\":") || vdb_text_append(t, tag, tag_len) != VDB_OK ||
			      PUT(t, ",\"results\":[")
		      : PUT(t, "{\"results\":[");
	for (size_t i = 0; i < n && !bad; i++) {
		vdb_record rec;
		vdb_status st = vdb_hit_record(c, &hits[i], &rec, err);
		if (st)
			return st;
		bad |= (i && PUT(t, ",")) || PUT(t, "{\"id\":") ||
		       vdb_jsonl_append_id(t, &rec.id) != VDB_OK || PUT(t, ",\"score\":") ||
		       vdb_jsonl_append_float(t, hits[i].score) != VDB_OK;
		if (flags & VDB_HITS_PAYLOAD)
			bad |= PUT(t, ",\"payload\":") ||
			       (rec.payload ? vdb_text_append(t, rec.payload, rec.payload_len) != VDB_OK
					    : PUT(t, "null"));
		if (flags & VDB_HITS_VECTOR)
			bad |= PUT(t, ",\"vector\":") ||
			       vdb_jsonl_append_vector(t, rec.vector, dim) != VDB_OK;
		bad |= PUT(t, "}");
	}
	return bad || PUT(t, "]}\n") ? vdb_err_nomem(err) : VDB_OK;
}
