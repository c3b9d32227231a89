/* The query engine over a loaded collection version: exact (brute-force) scans, and the
 * per-segment graph searches (index/hnsw.c) merged with them.
 * Distances are computed "lower is better" internally:
 * squared L2, negated dot product, negated cosine similarity. They are turned into the
 * documented scores at the end (L2 distance, dot product, cosine similarity) and re-sorted
 * by (score, id) so that printed ties are always in id order. */
#include "search.h"

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "../index/distance.h"
#include "../index/topk.h"
#include "../util/error.h"
#include "../util/io.h"

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

/* The cosine distance from q and x's dot product and x's squared norm. */
static inline double cosine_distance(float dot, float xx, const float *q, float qnorm,
				     double qnorm_exact, const float *x, size_t dim)
{
	if (!(xx >= FLT_MIN && xx <= FLT_MAX && isfinite(dot) && qnorm > 0 && isfinite(qnorm)))
		return distance_exact(VDB_METRIC_COSINE, q, qnorm_exact, x, dim);
	float d = -dot / (qnorm * sqrtf(xx));
	return isfinite(d) ? d : distance_exact(VDB_METRIC_COSINE, q, qnorm_exact, x, dim);
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
		return cosine_distance(dot, xx, q, qnorm, qnorm_exact, x, dim);
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
	o->size = sizeof *o;
	o->ef = 0;
	o->exact = 0;
	o->filter = NULL;
	o->oversample = 0;
	o->threads = 1;
}

/* Scans the rows of a segment not marked in `skip` (its deletion marks, or a filter's
 * selection), a 64-row word at a time so that a selective filter costs little more than
 * its matching rows. */
/* The rows of 64-row word w of a segment that a scan visits: those not in skip (deletion
 * marks or a filter's selection), and none past the last row. */
static inline uint64_t kept_rows(const vdb_segment *seg, const uint64_t *skip, uint64_t w)
{
	uint64_t keep = skip ? ~skip[w] : ~0ull;
	if (seg->rows - w * 64 < 64)
		keep &= (1ull << (seg->rows - w * 64)) - 1;
	return keep;
}

static void scan_rows(const vdb_segment *seg, const uint64_t *skip, size_t g, vdb_metric m,
		      const float *q, float qnorm, double qnorm_exact, size_t dim, uint64_t w0,
		      uint64_t w1, vdb_topk *t)
{
	for (uint64_t w = w0; w < w1 && w * 64 < seg->rows; w++) {
		uint64_t keep = kept_rows(seg, skip, w);
		if (keep == ~0ull) {
			/* A whole word of rows (the common case): 64 distances in one kernel call,
			 * the same values distance() computes one by one. */
			float d64[64], xx[64];
			const float *x = seg->vectors + w * 64 * dim;
			if (m == VDB_METRIC_L2)
				vdb_l2sq_rows(q, x, 64, dim, d64);
			else if (m == VDB_METRIC_DOT)
				vdb_dot_rows(q, x, 64, dim, d64);
			else
				vdb_dot_and_norm_rows(q, x, 64, dim, d64, xx);
			for (uint64_t i = 0; i < 64; i++) {
				double d = m == VDB_METRIC_L2 ? d64[i] : -d64[i];
				if (m == VDB_METRIC_COSINE)
					d = cosine_distance(d64[i], xx[i], q, qnorm, qnorm_exact,
							    x + i * dim, dim);
				else if (!isfinite(d))
					d = distance_exact(m, q, qnorm_exact, x + i * dim, dim);
				if (vdb_topk_may_enter(t, d))
					vdb_topk_push(t, (vdb_cand){d, (uint32_t)g, w * 64 + i});
			}
			continue;
		}
		for (; keep; keep &= keep - 1) {
			uint64_t r = w * 64 + (uint64_t)__builtin_ctzll(keep);
			double d = distance(m, q, qnorm, qnorm_exact, seg->vectors + r * dim, dim);
			if (vdb_topk_may_enter(t, d))
				vdb_topk_push(t, (vdb_cand){d, (uint32_t)g, r});
		}
	}
}

/* One query of a search: its vector, norms, result set and options. */
typedef struct query_state {
	const float *q;
	float qnorm;        /* inf or 0 when out of float range: exact path */
	double qnorm_exact;
	size_t k;
	vdb_topk t;
	idctx ctx;
} query_state;

/* The kernels' sums of row v for queries x[0..n) (dots, or squared L2; xx: the row's
 * squared norm for cosine) as distances, into the result sets t[0..n), as scan_rows would
 * compute them one query at a time. */
static inline void push_sums(vdb_metric m, query_state *const *x, int n, const float *const *q,
			     const float *sums, float xx, const float *v, size_t dim,
			     vdb_topk *const *t, uint32_t src, uint64_t r)
{
	for (int j = 0; j < n; j++) {
		double d;
		if (m == VDB_METRIC_COSINE)
			d = cosine_distance(sums[j], xx, q[j], x[j]->qnorm, x[j]->qnorm_exact, v, dim);
		else if (!isfinite(d = m == VDB_METRIC_L2 ? sums[j] : -sums[j]))
			d = distance_exact(m, q[j], x[j]->qnorm_exact, v, dim);
		if (vdb_topk_may_enter(t[j], d))
			vdb_topk_push(t[j], (vdb_cand){d, src, r});
	}
}

/* scan_rows for four queries at once (vdb_l2sq4, vdb_dot4, vdb_dot_and_norm4: the same
 * distances as one query at a time, bit for bit, each row loaded once for the four), into
 * the result sets t[0..4). */
static inline void push4(vdb_metric m, query_state *const *x, const float *const *q,
			 const float *v, size_t dim, vdb_topk *const *t, uint32_t src, uint64_t r)
{
	float d4[4], xx = 0;
	if (m == VDB_METRIC_L2)
		vdb_l2sq4(q, v, dim, d4);
	else if (m == VDB_METRIC_DOT)
		vdb_dot4(q, v, dim, d4);
	else
		vdb_dot_and_norm4(q, v, dim, d4, &xx);
	push_sums(m, x, 4, q, d4, xx, v, dim, t, src, r);
}

/* push4 for eight queries (vdb_l2sq8, vdb_dot8, vdb_dot_and_norm8 over the queries as
 * vdb_pack8 laid them out in `packed`), of which the first nx are real: a batch's last
 * group is padded with copies of its last query, whose results are not kept. */
static inline void push8(vdb_metric m, query_state *const *x, int nx, const float *packed,
			 const float *const *q, const float *v, size_t dim, vdb_topk *const *t,
			 uint32_t src, uint64_t r)
{
	float d8[8], xx = 0;
	if (m == VDB_METRIC_L2)
		vdb_l2sq8(packed, q, v, dim, d8);
	else if (m == VDB_METRIC_DOT)
		vdb_dot8(packed, q, v, dim, d8);
	else
		vdb_dot_and_norm8(packed, q, v, dim, d8, &xx);
	push_sums(m, x, nx, q, d8, xx, v, dim, t, src, r);
}

static void scan_rows_x8(const vdb_segment *seg, const uint64_t *skip, size_t g, vdb_metric m,
			 query_state *const *x, int nx, const float *packed, vdb_topk *const *t,
			 size_t dim, uint64_t w0, uint64_t w1)
{
	const float *q[8];
	for (int j = 0; j < 8; j++)
		q[j] = x[j]->q; /* padded by group8 */
	for (uint64_t w = w0; w < w1 && w * 64 < seg->rows; w++)
		for (uint64_t keep = kept_rows(seg, skip, w); keep; keep &= keep - 1) {
			uint64_t r = w * 64 + (uint64_t)__builtin_ctzll(keep);
			push8(m, x, nx, packed, q, seg->vectors + r * dim, dim, t, (uint32_t)g, r);
		}
}

static void scan_rows_x4(const vdb_segment *seg, const uint64_t *skip, size_t g, vdb_metric m,
			 query_state *const *x, vdb_topk *const *t, size_t dim, uint64_t w0,
			 uint64_t w1)
{
	const float *q[4] = {x[0]->q, x[1]->q, x[2]->q, x[3]->q};
	for (uint64_t w = w0; w < w1 && w * 64 < seg->rows; w++)
		for (uint64_t keep = kept_rows(seg, skip, w); keep; keep &= keep - 1) {
			uint64_t r = w * 64 + (uint64_t)__builtin_ctzll(keep);
			push4(m, x, q, seg->vectors + r * dim, dim, t, (uint32_t)g, r);
		}
}

static void scan_segment(const vdb_segment *seg, const uint64_t *skip, size_t g, vdb_metric m,
			 const float *q, float qnorm, double qnorm_exact, size_t dim, vdb_topk *t)
{
	scan_rows(seg, skip, g, m, q, qnorm, qnorm_exact, dim, 0, (seg->rows + 63) / 64, t);
}

/* Rescoring reads a few float32 vectors a query, at random. In memory one takes well under
 * a microsecond; read from disk (a collection larger than memory, whose codes and graph
 * stay cached), each is a wait on the device. So the queries of a batch walk a quantized
 * segment's graph first, each keeping its candidates, and are then rescored in rounds: a
 * round asks for the next vectors of every query of the batch at once (process_madvise,
 * 64 ranges a call), and the reads of a whole stream batch overlap (a random 4 KiB read
 * took 57-97 us alone on the test VM, 9-13 us each with 2,000 in flight:
 * scripts/bench-src/random-reads.c). The requests
 * cost system calls, so they are made only while the recent vectors took long: over
 * FROM_DISK_NS each on average, until they take under IN_MEMORY_NS again. */
#define FROM_DISK_NS 4000.0
#define IN_MEMORY_NS 1000.0

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void rescore_timed(vdb_hnsw_scratch *s, double ns)
{
	s->rescore_ns = s->rescore_ns == 0 ? (float)ns : (float)(0.9 * s->rescore_ns + 0.1 * ns);
	if (s->rescore_ns > FROM_DISK_NS)
		s->rescore_from_disk = 1;
	else if (s->rescore_ns < IN_MEMORY_NS)
		s->rescore_from_disk = 0;
}

/* One query's candidates in a quantized segment, in the codes' order, being rescored. */
typedef struct rescore_job {
	query_state *x;
	size_t first, n; /* its candidates: [first, first + n) of the batch's */
	size_t done;     /* rescored so far */
	double err_sum, err_sq; /* of (estimate - exact distance) over those */
	int finished;
} rescore_job;

/* The jobs of one segment waiting to be rescored, and their candidates. */
typedef struct rescore_batch {
	rescore_job *jobs;
	size_t njobs, jobs_cap;
	vdb_cand *c;
	size_t nc, cap;
} rescore_batch;

/* Candidates a batch holds before it is rescored (16 bytes each), unless one query needs
 * more. */
#define RESCORE_BATCH_CANDS 65536

/* The codes' distances are estimates, off by an error that varies from row to row: a
 * candidate is skipped when its estimate, less the mean error of the candidates rescored so
 * far and ERROR_SIGMAS of their standard deviations, is still past the k-th best exact
 * distance; and then so are the rest, which come after it. At least max(k, 8) are rescored
 * first, so that the error is known. Measured on 500,000 x 768 embeddings with int8 codes
 * at ef 48 (2,000 queries): rescoring all 30 candidates gave recall 0.9641; stopping at 4
 * sigmas 0.9633 with 13.8 vectors read a query, at 3 times the largest error seen 0.9640
 * with 20.8. Vectors are taken a step at a time (k, then k / 2 more), so an early stop
 * leaves the rest unread, which matters when each is a disk read. */
#define ERROR_SIGMAS 4.0

static size_t min_rescored(size_t k)
{
	return k > 8 ? k : 8;
}

static double error_bound(const rescore_job *j)
{
	double n = (double)j->done, mean = j->err_sum / n, var = j->err_sq / n - mean * mean;
	return mean + ERROR_SIGMAS * sqrt(var > 0 ? var : 0);
}

static size_t step_end(const rescore_job *j)
{
	size_t k = j->x->k, step = j->done == 0 ? k : k / 2 > 4 ? k / 2 : 4;
	return j->n - j->done > step ? j->done + step : j->n;
}

/* Rescores the next step of job j with the vectors, giving each result the score an exact
 * scan gives; returns how many vectors it read. */
static size_t rescore_step(const vdb_segment *seg, size_t g, const vdb_collection_config *cfg,
			   rescore_job *j, const vdb_cand *c)
{
	const query_state *x = j->x;
	vdb_topk *t = &j->x->t;
	size_t vbytes = (size_t)cfg->dim * sizeof(float), start = j->done, end = step_end(j);
	for (; j->done < end; j->done++) {
		double gd = c[j->done].dist;
		if (j->done >= min_rescored(x->k) && t->n == t->k &&
		    gd - error_bound(j) > t->h[0].dist) {
			j->finished = 1;
			return j->done - start;
		}
		/* The next vector is fetched while this one is scored. */
		if (j->done + 1 < end) {
			const char *next = (const char *)(seg->vectors + c[j->done + 1].row * cfg->dim);
			for (size_t o = 0; o < vbytes; o += 64)
				__builtin_prefetch(next + o);
		}
		double d = distance(cfg->metric, x->q, x->qnorm, x->qnorm_exact,
				    seg->vectors + c[j->done].row * cfg->dim, cfg->dim);
		j->err_sum += gd - d;
		j->err_sq += (gd - d) * (gd - d);
		if (vdb_topk_may_enter(t, d))
			vdb_topk_push(t, (vdb_cand){d, (uint32_t)g, c[j->done].row});
	}
	if (j->done == j->n)
		j->finished = 1;
	return j->done - start;
}

/* Asks for the pages of the vectors every unfinished job reads next. */
static void willneed_round(const vdb_segment *seg, const rescore_batch *b)
{
	const void *addr[VDB_WILLNEED_MAX];
	size_t len[VDB_WILLNEED_MAX], m = 0, vbytes = (size_t)seg->dim * sizeof(float);
	for (size_t i = 0; i < b->njobs; i++) {
		const rescore_job *j = &b->jobs[i];
		if (j->finished)
			continue;
		for (size_t r = j->done, end = step_end(j); r < end; r++) {
			addr[m] = seg->vectors + b->c[j->first + r].row * seg->dim;
			len[m] = vbytes;
			if (++m == VDB_WILLNEED_MAX) {
				vdb_map_willneed(addr, len, m);
				m = 0;
			}
		}
	}
	vdb_map_willneed(addr, len, m);
}

/* Rescores every job of b into its query's result set, and empties b. */
static void rescore_batch_run(const vdb_segment *seg, size_t g, const vdb_collection_config *cfg,
			      rescore_batch *b, vdb_hnsw_scratch *scratch)
{
	double t0 = now_ns();
	size_t read = 0, active;
	do {
		if (scratch->rescore_from_disk || scratch->rescore_ns == 0)
			willneed_round(seg, b);
		active = 0;
		for (size_t i = 0; i < b->njobs; i++) {
			rescore_job *j = &b->jobs[i];
			if (!j->finished) {
				read += rescore_step(seg, g, cfg, j, b->c + j->first);
				active += !j->finished;
			}
		}
	} while (active);
	if (read)
		rescore_timed(scratch, (now_ns() - t0) / (double)read);
	b->njobs = 0;
	b->nc = 0;
}

/* Adds query x's first n candidates c to b (rescoring what b holds first when they would
 * not fit). */
static vdb_status rescore_batch_add(rescore_batch *b, const vdb_segment *seg, size_t g,
				    const vdb_collection_config *cfg, query_state *x,
				    const vdb_cand *c, size_t n, vdb_hnsw_scratch *scratch,
				    vdb_error *err)
{
	if (b->nc + n > b->cap && b->njobs)
		rescore_batch_run(seg, g, cfg, b, scratch);
	if (n > b->cap) {
		size_t cap = n > RESCORE_BATCH_CANDS ? n : RESCORE_BATCH_CANDS;
		vdb_cand *nc = realloc(b->c, cap * sizeof *nc);
		if (!nc)
			return vdb_err_nomem(err);
		b->c = nc;
		b->cap = cap;
	}
	if (b->njobs == b->jobs_cap) {
		size_t cap = b->jobs_cap ? 2 * b->jobs_cap : 64;
		rescore_job *nj = realloc(b->jobs, cap * sizeof *nj);
		if (!nj)
			return vdb_err_nomem(err);
		b->jobs = nj;
		b->jobs_cap = cap;
	}
	memcpy(b->c + b->nc, c, n * sizeof *c);
	b->jobs[b->njobs++] = (rescore_job){x, b->nc, n, 0, 0, 0, n == 0};
	b->nc += n;
	return VDB_OK;
}

/* Walks a segment's graph for query x, among the rows not in `skip` (`want` of them
 * exist): *c (valid until the next walk with scratch) holds *nc candidates, best first.
 * A quantized segment's graph is walked on its codes, and *rescore says how many of the
 * candidates to rescore with the vectors (k * oversample); SIZE_MAX otherwise. */
static vdb_status walk_segment(const vdb_segment *seg, const uint64_t *skip,
			       const vdb_collection_config *cfg, const query_state *x, size_t ef,
			       double oversample, vdb_hnsw_scratch *scratch, vdb_cand **c,
			       size_t *nc, size_t *rescore, vdb_error *err)
{
	vdb_hnsw_space sp = {cfg->metric, cfg->dim, seg->vectors, seg->norms, NULL};
	*rescore = SIZE_MAX;
	if (cfg->metric == VDB_METRIC_COSINE && !seg->norms)
		return vdb_err(err, VDB_ECORRUPT, "%s: graph without norms", seg->file);
	vdb_code_query cq;
	if (seg->has_codes) {
		if (seg->codes.metric != cfg->metric)
			return vdb_err(err, VDB_ECORRUPT, "%s: codes for another metric", seg->file);
		size_t len = vdb_code_query_len(cfg->dim);
		if (scratch->codeq_cap < len) {
			free(scratch->codeq);
			scratch->codeq = malloc(len * sizeof *scratch->codeq);
			scratch->codeq_cap = scratch->codeq ? len : 0;
			if (!scratch->codeq)
				return vdb_err_nomem(err);
		}
		cq.q = scratch->codeq;
		vdb_code_query_prepare(&cq, &seg->codes, x->q, x->qnorm_exact * x->qnorm_exact,
				       x->qnorm_exact);
		sp.codes = &cq;
		double f = oversample > 0 ? oversample
			   : seg->codes.kind == VDB_QUANTIZE_INT8 ? VDB_OVERSAMPLE_INT8
								  : VDB_OVERSAMPLE_BINARY;
		*rescore = (size_t)ceil((double)x->k * f);
		if (ef < *rescore)
			ef = *rescore; /* the beam holds every candidate to rescore */
	}
	/* Skipped rows are traversed but never returned, as for deleted ones. */
	return vdb_hnsw_search(&seg->graph, &sp, x->q, x->qnorm, skip, ef, scratch, c, nc,
			       seg->file, err);
}

/* Merges the candidates c[0..n) of an unquantized segment's graph into x's results. */
static void take_candidates(const vdb_segment *seg, size_t g, const vdb_collection_config *cfg,
			    query_state *x, const vdb_cand *c, size_t n)
{
	vdb_topk *t = &x->t;
	for (size_t i = 0; i < n; i++) {
		/* The graph ranks with its own kernels (and cosine by the stored norms); a result
		 * carries the score an exact scan gives, so a record's score does not depend on
		 * the search path. Candidates come best first: once the graph's distance is past
		 * the k-th best by more than the kernels' rounding, so are the rest. */
		double gd = c[i].dist;
		if (t->n == t->k && gd - fabs(gd) * 1e-4 > t->h[0].dist)
			break;
		double d = distance(cfg->metric, x->q, x->qnorm, x->qnorm_exact,
				    seg->vectors + c[i].row * cfg->dim, cfg->dim);
		if (vdb_topk_may_enter(t, d))
			vdb_topk_push(t, (vdb_cand){d, (uint32_t)g, c[i].row});
	}
}

/* Query x through one segment's graph; falls back to a scan when the graph cannot supply
 * min(k, want) candidates (e.g. most of its neighbourhood is deleted or filtered out). A
 * quantized segment's candidates join b, to be rescored with the batch's others. */
static vdb_status graph_segment(const vdb_segment *seg, const uint64_t *skip, uint64_t want,
				size_t g, const vdb_collection_config *cfg, query_state *x,
				size_t ef, double oversample, vdb_hnsw_scratch *scratch,
				rescore_batch *b, vdb_error *err)
{
	vdb_cand *c;
	size_t nc, rescore;
	vdb_status st = walk_segment(seg, skip, cfg, x, ef, oversample, scratch, &c, &nc, &rescore,
				     err);
	if (st)
		return st;
	if (nc < (want < x->k ? want : x->k)) {
		scan_segment(seg, skip, g, cfg->metric, x->q, x->qnorm, x->qnorm_exact, cfg->dim,
			     &x->t);
		return VDB_OK;
	}
	if (seg->has_codes)
		return rescore_batch_add(b, seg, g, cfg, x, c, nc < rescore ? nc : rescore, scratch,
					 err);
	take_candidates(seg, g, cfg, x, c, nc);
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

/* Checks a query and computes its norm. */
static vdb_status prepare_query(const vdb_state *s, const float *q, size_t k, query_state *qs,
				vdb_error *err)
{
	size_t dim = s->cfg.dim;
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
	if (s->cfg.metric == VDB_METRIC_COSINE && !(qq > 0))
		return vdb_err(err, VDB_EDATA, "a zero query vector has no cosine similarity");
	qs->q = q;
	qs->k = k;
	qs->qnorm_exact = sqrt(qq);
	qs->qnorm = (float)qs->qnorm_exact;
	return VDB_OK;
}

/* Turns a query's result set into hits, best first with ties in id order. */
static vdb_status finish_query(const vdb_state *s, query_state *qs, vdb_hit *hits, size_t *n,
			       vdb_error *err)
{
	vdb_metric m = s->cfg.metric;
	size_t got = vdb_topk_sort(&qs->t);
	for (size_t i = 0; i < got; i++)
		hits[i] = (vdb_hit){to_score(m, qs->t.h[i].dist), qs->t.h[i].src, qs->t.h[i].row};
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
	if (qs->ctx.failed)
		return vdb_err(err, VDB_ECORRUPT, "%s: damaged id table",
			       qs->ctx.failed_src < s->man.nseg ? s->segs[qs->ctx.failed_src].file
								 : s->dir);
	*n = got;
	return VDB_OK;
}

/* Rows scanned at a time for a whole batch of queries: about 256 KiB of vectors, which stay
 * in the core's cache while every query of the batch is compared with them, instead of each
 * query streaming the segment from memory. A multiple of 64 (the skip bitmap's words). */
static uint64_t scan_block_words(size_t dim)
{
	uint64_t rows = (256u << 10) / (dim * sizeof(float));
	return rows < 64 ? 1 : rows / 64;
}

/* ---- exact scans, split among threads ----
 * One thread's share of a segment's exact scan: queries qs[scan[0..nscan)] against 64-row
 * words [w0, w1), into result sets t[0..nscan) (the queries' own for the calling thread's
 * share, private ones for the others, merged at the end: a set of the k best by (distance,
 * id) does not depend on the order candidates arrive in). */
typedef struct scan_part {
	const vdb_state *s;
	size_t g; /* the segment, or nseg for the log tail (then w0, w1 count its entries) */
	const uint64_t *skip;
	const uint8_t *mt_sel; /* the log tail: the filter's selection of entries, or NULL */
	query_state *qs;
	const size_t *scan;
	size_t nscan;
	vdb_topk *const *t;
	uint64_t w0, w1;
} scan_part;

/* Maps the pages of rows [64 w0, 64 w1) in one call, before they are read: a process's
 * first scan of a segment would otherwise take a page fault every 16 pages or so (about
 * 8,000 for 512 MB), each a trip into the kernel. Only where the kernel can (Linux 5.14);
 * elsewhere the scan faults the pages in as before. */
static void populate(const vdb_segment *seg, uint64_t w0, uint64_t w1)
{
#ifdef MADV_POPULATE_READ
	size_t dim = seg->dim, page = 4096;
	uint64_t r1 = w1 * 64 < seg->rows ? w1 * 64 : seg->rows;
	if (w0 * 64 >= r1)
		return;
	uintptr_t a = (uintptr_t)(seg->vectors + w0 * 64 * dim) & ~(uintptr_t)(page - 1);
	uintptr_t b = (uintptr_t)(seg->vectors + r1 * dim);
	madvise((void *)a, b - a, MADV_POPULATE_READ);
#else
	(void)seg, (void)w0, (void)w1;
#endif
}

/* A last group of at least this many queries goes through the eight-query kernels, padded;
 * fewer take the four-query and one-query ones. */
#define GROUP8_MIN 5

/* The queries of p from j on, eight of them (padded with copies of the last): returns how
 * many are real. */
static int group8(const scan_part *p, size_t j, query_state **x8)
{
	int nx = p->nscan - j < 8 ? (int)(p->nscan - j) : 8;
	for (int i = 0; i < 8; i++)
		x8[i] = &p->qs[p->scan[j + (i < nx ? i : nx - 1)]];
	return nx;
}

/* A part of the log tail's exact scan: entries [p->w0, p->w1), as a segment's scan does it,
 * a cache-sized block of rows at a time for all the queries, eight queries per pass (the
 * last few four or one at a time). */
static void scan_log_part(const scan_part *p, const float *packed)
{
	const vdb_state *s = p->s;
	size_t dim = s->cfg.dim, block = scan_block_words(dim) * 64, n8 = dim & ~(size_t)7;
	vdb_metric m = s->cfg.metric;
	uint32_t src = (uint32_t)s->man.nseg;
	for (size_t b0 = p->w0; b0 < p->w1; b0 += block) {
		size_t b1 = p->w1 - b0 < block ? p->w1 : b0 + block, j = 0;
		for (; packed && j + GROUP8_MIN <= p->nscan; j += 8) {
			query_state *x8[8];
			const float *q8[8];
			int nx = group8(p, j, x8);
			for (int i = 0; i < 8; i++)
				q8[i] = x8[i]->q;
			for (size_t i = b0; i < b1; i++) {
				const vdb_mem_entry *e = &s->mt.entries[i];
				if (!e->deleted && (!p->mt_sel || p->mt_sel[i]))
					push8(m, x8, nx, packed + j * n8, q8,
					      s->mt.vectors + e->vec, dim, p->t + j, src, i);
			}
		}
		for (; j + 4 <= p->nscan; j += 4) {
			query_state *x4[4] = {&p->qs[p->scan[j]], &p->qs[p->scan[j + 1]],
					      &p->qs[p->scan[j + 2]], &p->qs[p->scan[j + 3]]};
			const float *q4[4] = {x4[0]->q, x4[1]->q, x4[2]->q, x4[3]->q};
			for (size_t i = b0; i < b1; i++) {
				const vdb_mem_entry *e = &s->mt.entries[i];
				if (!e->deleted && (!p->mt_sel || p->mt_sel[i]))
					push4(m, x4, q4, s->mt.vectors + e->vec, dim, p->t + j, src, i);
			}
		}
		for (; j < p->nscan; j++) {
			const query_state *x = &p->qs[p->scan[j]];
			for (size_t i = b0; i < b1; i++) {
				const vdb_mem_entry *e = &s->mt.entries[i];
				if (e->deleted || (p->mt_sel && !p->mt_sel[i]))
					continue;
				double d = distance(m, x->q, x->qnorm, x->qnorm_exact,
						    s->mt.vectors + e->vec, dim);
				if (vdb_topk_may_enter(p->t[j], d))
					vdb_topk_push(p->t[j], (vdb_cand){d, src, i});
			}
		}
	}
}

/* The queries of p in groups of eight, as vdb_pack8 lays each group out (group j / 8 at
 * packed + j * (dim rounded down to 8)), or NULL when there is no group (or no memory: the
 * four-query kernels do the work then). Free with free(). */
static float *pack_queries(const scan_part *p, size_t dim)
{
	size_t groups = (p->nscan + 8 - GROUP8_MIN) / 8, n8 = dim & ~(size_t)7;
	float *packed = groups && n8 ? malloc(groups * 8 * n8 * sizeof *packed) : NULL;
	for (size_t g = 0; packed && g < groups; g++) {
		query_state *x8[8];
		const float *q8[8];
		group8(p, g * 8, x8);
		for (int i = 0; i < 8; i++)
			q8[i] = x8[i]->q;
		vdb_pack8(q8, dim, packed + g * 8 * n8);
	}
	return packed;
}

static void scan_part_run(const scan_part *p)
{
	size_t dim = p->s->cfg.dim, n8 = dim & ~(size_t)7;
	float *packed = pack_queries(p, dim);
	if (p->g == p->s->man.nseg) {
		scan_log_part(p, packed);
		free(packed);
		return;
	}
	const vdb_segment *seg = &p->s->segs[p->g];
	vdb_metric m = p->s->cfg.metric;
	uint64_t step = scan_block_words(dim);
	if (p->skip == seg->dead) /* not a filter's selection, which may need few pages */
		populate(seg, p->w0, p->w1);
	for (uint64_t w = p->w0; w < p->w1; w += step) {
		uint64_t end = p->w1 - w < step ? p->w1 : w + step;
		size_t j = 0;
		for (; packed && j + GROUP8_MIN <= p->nscan; j += 8) {
			query_state *x8[8];
			int nx = group8(p, j, x8);
			scan_rows_x8(seg, p->skip, p->g, m, x8, nx, packed + j * n8, p->t + j, dim,
				     w, end);
		}
		for (; j + 4 <= p->nscan; j += 4) {
			query_state *x4[4] = {&p->qs[p->scan[j]], &p->qs[p->scan[j + 1]],
					      &p->qs[p->scan[j + 2]], &p->qs[p->scan[j + 3]]};
			scan_rows_x4(seg, p->skip, p->g, m, x4, p->t + j, dim, w, end);
		}
		for (; j < p->nscan; j++) {
			query_state *x = &p->qs[p->scan[j]];
			scan_rows(seg, p->skip, p->g, m, x->q, x->qnorm, x->qnorm_exact, dim, w, end,
				  p->t[j]);
		}
	}
	free(packed);
}

static void *scan_part_main(void *arg)
{
	scan_part_run(arg);
	return NULL;
}

/* Each thread of a split scan gets at least this many floats to compare per query batch
 * (about 8 MiB of vectors): below it, starting a thread costs more than it saves. */
#define SCAN_FLOATS_PER_THREAD (2u << 20)
#define SCAN_THREADS_MAX 64

/* Scans segment g (or the log tail, g = nseg, entries selected by mt_sel) exactly for
 * queries qs[scan[0..nscan)], on up to `threads` threads. */
static vdb_status scan_exact(const vdb_state *s, size_t g, const uint64_t *skip,
			     const uint8_t *mt_sel, query_state *qs, const size_t *scan, size_t nscan,
			     unsigned threads, vdb_error *err)
{
	int log_tail = g == s->man.nseg;
	uint64_t rows = log_tail ? s->mt.n : s->segs[g].rows;
	uint64_t words = log_tail ? rows : (rows + 63) / 64; /* the units parts split */
	double work = (double)rows * s->cfg.dim * (double)nscan;
	uint64_t parts = threads > SCAN_THREADS_MAX ? SCAN_THREADS_MAX : threads ? threads : 1;
	if (parts > work / SCAN_FLOATS_PER_THREAD)
		parts = (uint64_t)(work / SCAN_FLOATS_PER_THREAD);
	if (parts > words)
		parts = words;
	/* The result sets each part fills; a stream of small scans (one query at a time)
	 * needs no allocation for them. */
	vdb_topk *t_small[64], **t = t_small;
	size_t nt = nscan * (parts ? parts : 1);
	if (nt > sizeof t_small / sizeof *t_small && !(t = malloc(nt * sizeof *t)))
		return vdb_err_nomem(err);
	for (size_t j = 0; j < nscan; j++)
		t[j] = &qs[scan[j]].t;
	scan_part part[SCAN_THREADS_MAX];
	part[0] = (scan_part){s, g, skip, mt_sel, qs, scan, nscan, t, 0, words};
	if (parts < 2) {
		scan_part_run(&part[0]);
		if (t != t_small)
			free(t);
		return VDB_OK;
	}
	/* The other parts' private result sets: one block of candidates and one id-compare
	 * context per (part, query). */
	size_t kk = 0;
	for (size_t j = 0; j < nscan; j++)
		kk += qs[scan[j]].k;
	vdb_topk *sets = malloc((parts - 1) * nscan * sizeof *sets);
	idctx *ctxs = malloc((parts - 1) * nscan * sizeof *ctxs);
	vdb_cand *cands = malloc((parts - 1) * kk * sizeof *cands);
	if (!sets || !ctxs || !cands) {
		free(sets);
		free(ctxs);
		free(cands);
		if (t != t_small)
			free(t);
		return vdb_err_nomem(err);
	}
	pthread_t tid[SCAN_THREADS_MAX];
	int started[SCAN_THREADS_MAX] = {0};
	vdb_cand *c = cands;
	for (uint64_t p = 1; p < parts; p++) {
		vdb_topk **tp = t + p * nscan;
		for (size_t j = 0; j < nscan; j++) {
			size_t i = (p - 1) * nscan + j;
			ctxs[i] = (idctx){s, 0, 0};
			sets[i] = (vdb_topk){c, 0, qs[scan[j]].k, cand_idcmp, &ctxs[i]};
			c += qs[scan[j]].k;
			tp[j] = &sets[i];
		}
		part[p] = (scan_part){s,    g,  skip, mt_sel,          qs,
				      scan, nscan, tp, words * p / parts, words * (p + 1) / parts};
		started[p] = !pthread_create(&tid[p], NULL, scan_part_main, &part[p]);
	}
	part[0].w1 = words / parts;
	scan_part_run(&part[0]);
	for (uint64_t p = 1; p < parts; p++) {
		if (started[p])
			pthread_join(tid[p], NULL);
		else
			scan_part_run(&part[p]); /* no thread to be had: this one does it */
	}
	for (uint64_t p = 1; p < parts; p++)
		for (size_t j = 0; j < nscan; j++) {
			const vdb_topk *from = t[p * nscan + j];
			query_state *x = &qs[scan[j]];
			const idctx *fc = from->ctx;
			if (fc->failed && !x->ctx.failed)
				x->ctx = *fc;
			for (size_t i = 0; i < from->n; i++)
				if (vdb_topk_may_enter(&x->t, from->h[i].dist))
					vdb_topk_push(&x->t, from->h[i]);
		}
	free(sets);
	free(ctxs);
	free(cands);
	if (t != t_small)
		free(t);
	return VDB_OK;
}

/* Searches queries qs[0..nq) (prepared, with empty result sets) through every segment and
 * the log tail; scan[0..nq) is work space. */
static vdb_status search_prepared(vdb_state *s, vdb_hnsw_scratch *scratch, query_state *qs,
				  size_t nq, size_t *scan, const vdb_search_options *o,
				  const vdb_selection *sel, vdb_error *err)
{
	if (o->oversample != 0 && !(o->oversample >= 1 && o->oversample <= VDB_OVERSAMPLE_MAX))
		return vdb_err(err, VDB_EINVAL, "oversample must be 1 to %d", VDB_OVERSAMPLE_MAX);
	size_t ef0 = o->ef ? o->ef : VDB_HNSW_DEFAULT_EF;
	rescore_batch rb = {0};
	vdb_status st = VDB_OK;
	for (size_t g = 0; !st && g < s->man.nseg; g++) {
		const vdb_segment *seg = &s->segs[g];
		const uint64_t *skip = sel ? sel->skip[g] : seg->dead;
		uint64_t want = sel ? sel->matches[g] : seg->rows - seg->ndead;
		if (!want)
			continue;
		/* Graph searches go one query at a time (a quantized segment's rescoring for the
		 * batch together); the queries left scan together. */
		size_t nscan = 0;
		for (size_t i = 0; !st && i < nq; i++) {
			query_state *x = &qs[i];
			size_t ef = ef0 < x->k ? x->k : ef0;
			size_t efg = sel ? filtered_ef(ef, x->k, want, seg->rows - seg->ndead) : ef;
			if (seg->has_graph && !o->exact && isfinite(x->qnorm) && x->qnorm > 0 &&
			    (!sel || graph_pays_off(seg, want, efg)))
				st = graph_segment(seg, skip, want, g, &s->cfg, x, efg, o->oversample,
						   scratch, &rb, err);
			else
				scan[nscan++] = i;
		}
		if (!st && rb.njobs)
			rescore_batch_run(seg, g, &s->cfg, &rb, scratch);
		if (!st && nscan)
			st = scan_exact(s, g, skip, NULL, qs, scan, nscan, o->threads, err);
	}
	free(rb.jobs);
	free(rb.c);
	if (st || !s->mt.n)
		return st;
	for (size_t i = 0; i < nq; i++)
		scan[i] = i;
	return scan_exact(s, s->man.nseg, NULL, sel ? sel->mt : NULL, qs, scan, nq, o->threads, err);
}

vdb_status vdb_state_search(vdb_state *s, vdb_hnsw_scratch *scratch, const float *q, size_t k,
			    const vdb_search_options *o, const vdb_selection *sel, vdb_hit *hits,
			    size_t *n, vdb_error *err)
{
	vdb_search_options defaults;
	if (!o) {
		vdb_search_options_init(&defaults);
		o = &defaults;
	}
	query_state qs;
	vdb_status st = prepare_query(s, q, k, &qs, err);
	if (st)
		return st;
	if (scratch->topk_cap < k) {
		free(scratch->topk);
		scratch->topk = malloc(k * sizeof(vdb_cand));
		scratch->topk_cap = scratch->topk ? k : 0;
		if (!scratch->topk)
			return vdb_err_nomem(err);
	}
	qs.ctx = (idctx){s, 0, 0};
	qs.t = (vdb_topk){scratch->topk, 0, k, cand_idcmp, &qs.ctx};
	size_t scan;
	st = search_prepared(s, scratch, &qs, 1, &scan, o, sel, err);
	return st ? st : finish_query(s, &qs, hits, n, err);
}

vdb_status vdb_state_search_batch(vdb_state *s, vdb_hnsw_scratch *scratch, size_t nq,
				  const float *const *queries, const size_t *ks,
				  const vdb_search_options *o, const vdb_selection *sel,
				  vdb_hit *const *hits, size_t *ns, size_t *failed, vdb_error *err)
{
	vdb_search_options defaults;
	if (!o) {
		vdb_search_options_init(&defaults);
		o = &defaults;
	}
	size_t total = 0;
	for (size_t i = 0; i < nq; i++)
		total += ks[i] <= VDB_K_MAX ? ks[i] : 0; /* a bad k is refused below */
	query_state *qs = malloc((nq ? nq : 1) * sizeof *qs);
	vdb_cand *cands = malloc((total ? total : 1) * sizeof *cands);
	if (!qs || !cands) {
		free(qs);
		free(cands);
		return vdb_err_nomem(err);
	}
	/* Every query is checked before any is searched. */
	size_t off = 0;
	for (size_t i = 0; i < nq; i++) {
		vdb_status st = prepare_query(s, queries[i], ks[i], &qs[i], err);
		if (st) {
			*failed = i;
			free(qs);
			free(cands);
			return st;
		}
		qs[i].ctx = (idctx){s, 0, 0};
		qs[i].t = (vdb_topk){cands + off, 0, ks[i], cand_idcmp, &qs[i].ctx};
		off += ks[i];
	}
	*failed = nq;
	/* ns doubles as search_prepared's work space until the counts are filled in. */
	vdb_status st = search_prepared(s, scratch, qs, nq, ns, o, sel, err);
	for (size_t i = 0; !st && i < nq; i++)
		if ((st = finish_query(s, &qs[i], hits[i], &ns[i], err)))
			*failed = i;
	free(qs);
	free(cands);
	return st;
}
