/* The public read API: a vdb_collection is one loaded version (state.c), searched by the
 * index layer, read by id, or iterated by a cursor. */
#include <stdlib.h>
#include <string.h>

#include "../index/flat.h"
#include "../util/error.h"
#include "ids.h"
#include "state.h"

struct vdb_collection {
	vdb_state st;
	vdb_hnsw_scratch scratch; /* reused by every search of this view */
};

struct vdb_cursor {
	vdb_collection *c;
	size_t seg;
	uint64_t row;
	size_t mt_i;
	int verified; /* segment `seg` has passed its checksum check */
};

vdb_status vdb_collection_open(const char *db, const char *name, vdb_collection **out,
			       vdb_error *err)
{
	vdb_collection *c = calloc(1, sizeof *c);
	if (!c)
		return vdb_err_nomem(err);
	vdb_status st = vdb_state_load(db, name, &c->st, NULL, err);
	if (st) {
		free(c);
		return st;
	}
	*out = c;
	return VDB_OK;
}

void vdb_collection_close(vdb_collection *c)
{
	if (!c)
		return;
	vdb_state_free(&c->st);
	vdb_hnsw_scratch_free(&c->scratch);
	free(c);
}

void vdb_collection_get_config(const vdb_collection *c, vdb_collection_config *out)
{
	*out = c->st.cfg;
}

uint64_t vdb_collection_count(const vdb_collection *c)
{
	return c->st.live;
}

vdb_status vdb_search(vdb_collection *c, const float *query, size_t k,
		      const vdb_search_options *o, vdb_hit *hits, size_t *n, vdb_error *err)
{
	return vdb_index_search(&c->st, &c->scratch, query, k, o, hits, n, err);
}

struct vdb_searcher {
	vdb_collection *c;
	vdb_hnsw_scratch scratch;
};

vdb_status vdb_searcher_new(vdb_collection *c, vdb_searcher **out, vdb_error *err)
{
	vdb_searcher *s = calloc(1, sizeof *s);
	if (!s)
		return vdb_err_nomem(err);
	s->c = c;
	*out = s;
	return VDB_OK;
}

void vdb_searcher_free(vdb_searcher *s)
{
	if (!s)
		return;
	vdb_hnsw_scratch_free(&s->scratch);
	free(s);
}

vdb_status vdb_searcher_search(vdb_searcher *s, const float *query, size_t k,
			       const vdb_search_options *o, vdb_hit *hits, size_t *n, vdb_error *err)
{
	return vdb_index_search(&s->c->st, &s->scratch, query, k, o, hits, n, err);
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

vdb_status vdb_cursor_open(vdb_collection *c, vdb_cursor **out, vdb_error *err)
{
	vdb_cursor *cur = calloc(1, sizeof *cur);
	if (!cur)
		return vdb_err_nomem(err);
	cur->c = c;
	*out = cur;
	return VDB_OK;
}

void vdb_cursor_close(vdb_cursor *cur)
{
	free(cur);
}

vdb_status vdb_cursor_next(vdb_cursor *cur, vdb_record *rec, int *has, vdb_error *err)
{
	const vdb_state *s = &cur->c->st;
	while (cur->seg < s->man.nseg) {
		const vdb_segment *seg = &s->segs[cur->seg];
		if (!cur->verified) {
			vdb_status st = vdb_segment_verify(seg, err);
			if (st)
				return st;
			vdb_segment_release(seg);
			cur->verified = 1;
		}
		while (cur->row < seg->rows) {
			uint64_t r = cur->row++;
			if (r % VDB_RELEASE_EVERY == VDB_RELEASE_EVERY - 1)
				vdb_segment_release(seg); /* constant memory over any collection */
			if (vdb_segment_is_dead(seg, r))
				continue;
			vdb_status st = segment_record(s, cur->seg, r, rec, err);
			if (st)
				return st;
			*has = 1;
			return VDB_OK;
		}
		vdb_segment_release(seg);
		cur->seg++;
		cur->row = 0;
		cur->verified = 0;
	}
	while (cur->mt_i < s->mt.n) {
		const vdb_mem_entry *e = &s->mt.entries[cur->mt_i++];
		if (e->deleted)
			continue;
		vdb_memtable_entry_record(&s->mt, e, rec);
		*has = 1;
		return VDB_OK;
	}
	*has = 0;
	return VDB_OK;
}
