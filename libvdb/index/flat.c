/* Search: exact (brute-force) scans, and the per-segment graph searches merged with them.
 * Distances are computed "lower is better" internally:
 * squared L2, negated dot product, negated cosine similarity. They are turned into the
 * documented scores at the end (L2 distance, dot product, cosine similarity) and re-sorted
 * by (score, id) so that printed ties are always in id order. */
#include "flat.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "../util/error.h"
#include "distance.h"
#include "topk.h"

vdb_status vdb_state_row_id(const vdb_state *s, uint32_t src, uint64_t row, vdb_id *out,
			    vdb_error *err)
{
	if (src < s->man.nseg)
		return vdb_segment_id(&s->segs[src], row, out, err);
	vdb_memtable_entry_id(&s->mt, &s->mt.entries[row], out);
	return VDB_OK;
}

typedef struct idctx {
	const vdb_state *s;
	int failed;
	uint32_t failed_src; /* the segment whose id table was damaged */
} idctx;

static int cand_idcmp(void *ctx, const vdb_cand *a, const vdb_cand *b)
{
	idctx *c = ctx;
	vdb_id x, y;
	if (vdb_state_row_id(c->s, a->src, a->row, &x, NULL)) {
		c->failed = 1;
		c->failed_src = a->src;
		return 0;
	}
	if (vdb_state_row_id(c->s, b->src, b->row, &y, NULL)) {
		c->failed = 1;
		c->failed_src = b->src;
		return 0;
	}
	return vdb_id_compare(&x, &y);
}

/* Rows whose float computation overflowed (values near the float32 limits) or whose norm
 * underflowed are recomputed in double, which cannot overflow for float32 inputs of any
 * dimension vdb accepts. */
static double distance_exact(vdb_metric m, const float *q, double qnorm, const float *x,
			     size_t dim)
{
	double dot = 0, l2 = 0, xx = 0;
	for (size_t i = 0; i < dim; i++) {
		double a = q[i], b = x[i];
		dot += a * b;
		l2 += (a - b) * (a - b);
		xx += b * b;
	}
	if (m == VDB_METRIC_L2)
		return l2;
	if (m == VDB_METRIC_DOT)
		return -dot;
	return xx > 0 ? -dot / (qnorm * sqrt(xx)) : 0.0;
}

static inline double distance(vdb_metric m, const float *q, float qnorm, double qnorm_exact,
			      const float *x, size_t dim)
{
	float d;
	switch (m) {
	case VDB_METRIC_L2:
		d = vdb_l2sq(q, x, dim);
		break;
	case VDB_METRIC_DOT:
		d = -vdb_dot(q, x, dim);
		break;
	default: {
		float dot, xx;
		vdb_dot_and_norm(q, x, dim, &dot, &xx);
		if (!(xx >= FLT_MIN && xx <= FLT_MAX && isfinite(dot) && qnorm > 0 && isfinite(qnorm)))
			return distance_exact(m, q, qnorm_exact, x, dim);
		d = -dot / (qnorm * sqrtf(xx));
	}
	}
	return isfinite(d) ? d : distance_exact(m, q, qnorm_exact, x, dim);
}

/* Scores are float32; one beyond its range (only possible with values near the float32
 * limits) saturates at +-FLT_MAX. */
static float to_score(vdb_metric m, double d)
{
	double s = m == VDB_METRIC_L2 ? sqrt(d) : -d;
	if (m == VDB_METRIC_COSINE)
		s = s > 1 ? 1 : s < -1 ? -1 : s;
	return s > FLT_MAX ? FLT_MAX : s < -FLT_MAX ? -FLT_MAX : (float)s;
}

static int score_before(vdb_metric m, const vdb_hit *a, const vdb_hit *b, const vdb_id *ia,
			const vdb_id *ib)
{
	if (a->score != b->score)
		return m == VDB_METRIC_L2 ? a->score < b->score : a->score > b->score;
	return vdb_id_compare(ia, ib) < 0;
}

void vdb_search_options_init(vdb_search_options *o)
{
	o->ef = 0;
	o->exact = 0;
	o->filter = NULL;
}

/* Scans the rows of a segment not marked in `skip` (its deletion marks, or a filter's
 * selection), a 64-row word at a time so that a selective filter costs little more than
 * its matching rows. */
static void scan_segment(const vdb_segment *seg, const uint64_t *skip, size_t g, vdb_metric m,
			 const float *q, float qnorm, double qnorm_exact, size_t dim, vdb_topk *t)
{
	for (uint64_t w = 0; w * 64 < seg->rows; w++) {
		uint64_t keep = skip ? ~skip[w] : ~0ull;
		if (seg->rows - w * 64 < 64)
			keep &= (1ull << (seg->rows - w * 64)) - 1;
		while (keep) {
			uint64_t r = w * 64 + (uint64_t)__builtin_ctzll(keep);
			keep &= keep - 1;
			double d = distance(m, q, qnorm, qnorm_exact, seg->vectors + r * dim, dim);
			if (vdb_topk_may_enter(t, d))
				vdb_topk_push(t, (vdb_cand){d, (uint32_t)g, r});
		}
	}
}

/* The graph's candidates for one segment, among the rows not in `skip` (`want` of them
 * exist); falls back to a scan when the graph cannot supply min(k, want) of them (e.g. most
 * of its neighbourhood is deleted or filtered out). */
static vdb_status graph_segment(const vdb_segment *seg, const uint64_t *skip, uint64_t want,
				size_t g, const vdb_collection_config *cfg, const float *q,
				float qnorm, double qnorm_exact, size_t k, size_t ef,
				vdb_hnsw_scratch *scratch, vdb_topk *t, vdb_error *err)
{
	vdb_hnsw_space sp = {cfg->metric, cfg->dim, seg->vectors, seg->norms};
	if (cfg->metric == VDB_METRIC_COSINE && !seg->norms)
		return vdb_err(err, VDB_ECORRUPT, "%s: graph without norms", seg->file);
	vdb_cand *c;
	size_t nc;
	/* Skipped rows are traversed but never returned, as for deleted ones. */
	vdb_status st =
		vdb_hnsw_search(&seg->graph, &sp, q, qnorm, skip, ef, scratch, &c, &nc, seg->file, err);
	if (st)
		return st;
	if (nc < (want < k ? want : k)) {
		scan_segment(seg, skip, g, cfg->metric, q, qnorm, qnorm_exact, cfg->dim, t);
		return VDB_OK;
	}
	for (size_t i = 0; i < nc; i++)
		if (vdb_topk_may_enter(t, c[i].dist))
			vdb_topk_push(t, (vdb_cand){c[i].dist, (uint32_t)g, c[i].row});
	return VDB_OK;
}

/* The beam of a filtered graph search. Skipped rows are traversed but not kept, so a beam
 * of ef matching rows explores about ef / s rows at selectivity s; scaled to 2 ef s (at least
 * 32 and k, at most ef) it explores about as much as an unfiltered search of ef, with the
 * same recall in practice (measured on clustered 100k x 128: >= 0.996 at 1-50%). */
static size_t filtered_ef(size_t ef, size_t k, uint64_t want, uint64_t live)
{
	double scaled = ceil(2.0 * (double)ef * (double)want / (double)(live ? live : 1));
	size_t e = scaled < (double)ef ? (size_t)scaled : ef;
	if (e < 32)
		e = 32;
	if (e < k)
		e = k;
	return e < ef ? e : ef;
}

/* A graph pays off over an exact scan of a segment's `want` selected rows when it is
 * expected to compute fewer distances. A graph search computes about m distances per row it
 * passes, and passes about ef * rows / want rows to collect ef matching ones, so the graph
 * wins when want^2 > ef * m * rows. */
static int graph_pays_off(const vdb_segment *seg, uint64_t want, size_t ef)
{
	double w = (double)want;
	return w * w > (double)ef * seg->graph.m * (double)seg->rows;
}

vdb_status vdb_index_search(vdb_state *s, vdb_hnsw_scratch *scratch, const float *q, size_t k,
			    const vdb_search_options *o, const vdb_selection *sel, vdb_hit *hits,
			    size_t *n, vdb_error *err)
{
	size_t dim = s->cfg.dim;
	vdb_metric m = s->cfg.metric;
	vdb_search_options defaults;
	if (!o) {
		vdb_search_options_init(&defaults);
		o = &defaults;
	}
	if (k < 1 || k > VDB_K_MAX)
		return vdb_err(err, VDB_EINVAL, "k must be 1 to %d", VDB_K_MAX);
	/* The squared norm in double, four independent sums (this runs once per query, but a
	 * single chain of dependent additions costs as much as a small graph search's
	 * bookkeeping). x - x is 0 for finite x and NaN otherwise, so one test at the end
	 * finds an infinite or NaN element. */
	double acc[4] = {0, 0, 0, 0}, nonfinite = 0;
	size_t x = 0;
	for (; x + 4 <= dim; x += 4)
		for (size_t j = 0; j < 4; j++) {
			acc[j] += (double)q[x + j] * q[x + j];
			nonfinite += q[x + j] - q[x + j];
		}
	for (; x < dim; x++) {
		acc[0] += (double)q[x] * q[x];
		nonfinite += q[x] - q[x];
	}
	if (nonfinite != 0) /* NaN compares unequal too */
		for (x = 0; x < dim; x++)
			if (!isfinite(q[x]))
				return vdb_err(err, VDB_EDATA, "query vector[%zu] is not finite", x);
	double qq = (acc[0] + acc[1]) + (acc[2] + acc[3]);
	if (m == VDB_METRIC_COSINE && !(qq > 0))
		return vdb_err(err, VDB_EDATA, "a zero query vector has no cosine similarity");
	idctx ctx = {s, 0, 0};
	if (scratch->topk_cap < k) {
		free(scratch->topk);
		scratch->topk = malloc(k * sizeof(vdb_cand));
		scratch->topk_cap = scratch->topk ? k : 0;
		if (!scratch->topk)
			return vdb_err_nomem(err);
	}
	vdb_topk t = {scratch->topk, 0, k, cand_idcmp, &ctx};
	double qnorm_exact = sqrt(qq);
	float qnorm = (float)qnorm_exact; /* inf or 0 when out of float range: exact path */
	size_t ef = o->ef ? o->ef : VDB_HNSW_DEFAULT_EF;
	if (ef < k)
		ef = k;
	for (size_t g = 0; g < s->man.nseg; g++) {
		const vdb_segment *seg = &s->segs[g];
		const uint64_t *skip = sel ? sel->skip[g] : seg->dead;
		uint64_t want = sel ? sel->matches[g] : seg->rows - seg->ndead;
		if (!want)
			continue;
		size_t efg = sel ? filtered_ef(ef, k, want, seg->rows - seg->ndead) : ef;
		if (seg->has_graph && !o->exact && isfinite(qnorm) && qnorm > 0 &&
		    (!sel || graph_pays_off(seg, want, efg))) {
			vdb_status st = graph_segment(seg, skip, want, g, &s->cfg, q, qnorm,
						      qnorm_exact, k, efg, scratch, &t, err);
			if (st)
				return st;
		} else {
			scan_segment(seg, skip, g, m, q, qnorm, qnorm_exact, dim, &t);
		}
	}
	for (size_t i = 0; i < s->mt.n; i++) {
		const vdb_mem_entry *e = &s->mt.entries[i];
		if (e->deleted || (sel && !sel->mt[i]))
			continue;
		double d = distance(m, q, qnorm, qnorm_exact, s->mt.vectors + e->vec, dim);
		if (vdb_topk_may_enter(&t, d))
			vdb_topk_push(&t, (vdb_cand){d, (uint32_t)s->man.nseg, i});
	}
	size_t got = vdb_topk_sort(&t);
	for (size_t i = 0; i < got; i++)
		hits[i] = (vdb_hit){to_score(m, t.h[i].dist), t.h[i].src, t.h[i].row};
	/* Insertion sort by (score, id): the conversion to scores can merge distinct distances. */
	for (size_t i = 1; i < got; i++) {
		vdb_hit h = hits[i];
		vdb_id hid, pid;
		size_t j = i;
		while (j > 0) {
			const vdb_hit *p = &hits[j - 1];
			int before;
			if (h.score != p->score) /* ids are only needed for exact ties */
				before = m == VDB_METRIC_L2 ? h.score < p->score : h.score > p->score;
			else if (vdb_state_row_id(s, h.source, h.row, &hid, NULL) ||
				 vdb_state_row_id(s, p->source, p->row, &pid, NULL))
				break; /* a damaged id table is reported when the hit is read */
			else
				before = score_before(m, &h, p, &hid, &pid);
			if (!before)
				break;
			hits[j] = hits[j - 1];
			j--;
		}
		hits[j] = h;
	}
	if (ctx.failed)
		return vdb_err(err, VDB_ECORRUPT, "%s: damaged id table",
			       ctx.failed_src < s->man.nseg ? s->segs[ctx.failed_src].file : s->dir);
	*n = got;
	return VDB_OK;
}
