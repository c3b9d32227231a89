/* Computing a filter's selection over a loaded version: one pass over the payloads of the
 * live rows (see selection.h for what is kept and why). */
#include "selection.h"

#include <stdlib.h>
#include <string.h>

#include "../index/filter.h"
#include "../util/error.h"

void vdb_selection_free(vdb_selection *sel)
{
	if (!sel)
		return;
	for (size_t i = 0; sel->skip && i < sel->nseg; i++)
		free(sel->skip[i]);
	free(sel->skip);
	free(sel->matches);
	free(sel->mt);
	vdb_buf_free(&sel->key);
	memset(sel, 0, sizeof *sel);
}

/* Evaluates f on the live rows of seg that its payload indexes leave as candidates (all of
 * them without usable indexes), clearing the skip bit of each match. */
static vdb_status select_segment(const vdb_segment *seg, const vdb_filter *f, uint64_t *skip,
				 uint64_t *matches, vdb_error *err)
{
	uint64_t *cand, n = 0, words = (seg->rows + 63) / 64;
	vdb_status st = vdb_filter_candidates(f, seg->pidx, seg->npidx, seg->rows, &cand,
					      seg->file, err);
	if (st)
		return st;
	for (uint64_t w = 0; w < words; w++) {
		skip[w] = ~0ull;
		uint64_t todo = cand ? cand[w] : ~0ull;
		if (seg->dead)
			todo &= ~seg->dead[w];
		if (seg->rows - w * 64 < 64)
			todo &= (1ull << (seg->rows - w * 64)) - 1;
		while (todo) {
			uint64_t r = w * 64 + (uint64_t)__builtin_ctzll(todo);
			todo &= todo - 1;
			const char *p;
			size_t len;
			if ((st = vdb_segment_payload(seg, r, &p, &len, err)))
				goto out;
			int keep = vdb_filter_eval(f, p, len);
			if (keep < 0) {
				st = vdb_err(err, VDB_ECORRUPT, "%s: damaged payload in row %llu",
					     seg->file, (unsigned long long)r);
				goto out;
			}
			if (keep) {
				skip[w] &= ~(1ull << (r & 63));
				n++;
			}
		}
	}
	*matches = n;
out:
	free(cand);
	return st;
}

vdb_status vdb_selection_get(vdb_selection *sel, const vdb_state *s, const vdb_filter *f,
			     vdb_error *err)
{
	size_t tl;
	const char *text = vdb_filter_text(f, &tl);
	if (sel->valid && sel->key.len == tl && !memcmp(sel->key.data, text, tl))
		return VDB_OK;
	vdb_selection_free(sel);
	size_t nseg = s->man.nseg;
	sel->nseg = nseg;
	if (!(sel->skip = calloc(nseg ? nseg : 1, sizeof *sel->skip)) ||
	    !(sel->matches = calloc(nseg ? nseg : 1, sizeof *sel->matches)) ||
	    !(sel->mt = calloc(s->mt.n ? s->mt.n : 1, 1)) || vdb_buf_append(&sel->key, text, tl))
		goto nomem;
	for (size_t g = 0; g < nseg; g++) {
		const vdb_segment *seg = &s->segs[g];
		if (!(sel->skip[g] = calloc((seg->rows + 63) / 64 ? (seg->rows + 63) / 64 : 1, 8)))
			goto nomem;
		vdb_status st = select_segment(seg, f, sel->skip[g], &sel->matches[g], err);
		if (st) {
			vdb_selection_free(sel);
			return st;
		}
		sel->total += sel->matches[g];
	}
	for (size_t i = 0; i < s->mt.n; i++) {
		const vdb_mem_entry *e = &s->mt.entries[i];
		if (e->deleted)
			continue;
		int r = vdb_filter_eval(f, e->has_payload ? s->mt.payloads.data + e->payload_off : NULL,
					e->payload_len);
		if (r < 0) {
			vdb_selection_free(sel);
			return vdb_err(err, VDB_ECORRUPT, "%s: damaged payload in the log", s->dir);
		}
		sel->mt[i] = (uint8_t)r;
		sel->total += (uint64_t)r;
	}
	sel->valid = 1;
	return VDB_OK;
nomem:
	vdb_selection_free(sel);
	return vdb_err_nomem(err);
}
