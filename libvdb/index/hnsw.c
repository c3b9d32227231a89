/* HNSW graphs (Malkov & Yashunin, 2018): construction with several threads, the stored form,
 * and search through the segment's mapping.
 *
 * Construction follows the paper and hnswlib: each node gets a random level (geometric, with
 * ml = 1/ln M, from a hash of its row so a build is repeatable for a given order); it is
 * inserted by a greedy descent from the entry point, a beam search with ef_construction at
 * each of its levels, and the neighbour-selection heuristic (keep a candidate only if it is
 * closer to the new node than to every neighbour already kept), with reverse links pruned
 * by the same heuristic when a list is full. Up to m neighbours per upper level, m0 = 2m at
 * level 0. Threads insert different nodes at once; each node's lists are guarded by a
 * spinlock, and the entry point by a mutex held for the rare node that raises the top level.
 * A node being inserted can already receive links from concurrent insertions: its own
 * choice is merged with them, never written over them (that would orphan nodes).
 * The heuristic can still drop a node's last incoming link when it prunes a full list, so
 * after the inserts every node not reachable at level 0 from the entry point is linked in
 * (make_reachable). And exact copies of a neighbour already kept only fill the slots the
 * heuristic leaves: kept first, a group of copies larger than a list would link only to
 * itself and trap searches.
 *
 * Stored form (sections of the segment, all little-endian u32 arrays):
 *   meta  u32 m, u32 m0, u32 max level, u32 0, u64 entry, u64 rows
 *   l0    rows * (m0 + 1): count, then m0 neighbour slots
 *   nodes rows: offset of the node's upper lists in `upper`, or UINT32_MAX if level 0
 *   upper per upper node: level L, then for each level 1..L: count, then m slots
 * Search reads these in place. Every count, neighbour and offset is checked before use, so
 * a damaged graph gives VDB_ECORRUPT, never an out-of-bounds read. */
#include "hnsw.h"

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../util/error.h"
#include "distance.h"

#define META_SIZE 32u
#define NO_UPPER UINT32_MAX

/* ---- distances ---- */

static float finite_or_exact(const vdb_hnsw_space *sp, const float *q, const float *x, float d)
{
	if (isfinite(d))
		return d;
	/* Overflow near the float32 limits: recompute in double and saturate. */
	double dot = 0, l2 = 0, qq = 0, xx = 0;
	for (uint32_t i = 0; i < sp->dim; i++) {
		double a = q[i], b = x[i];
		dot += a * b;
		l2 += (a - b) * (a - b);
		qq += a * a;
		xx += b * b;
	}
	double r = sp->metric == VDB_METRIC_L2 ? l2
		   : sp->metric == VDB_METRIC_DOT ? -dot
		   : (qq > 0 && xx > 0 ? -dot / sqrt(qq * xx) : 0);
	return r > FLT_MAX ? FLT_MAX : r < -FLT_MAX ? -FLT_MAX : (float)r;
}

/* Inlined into every search loop, where the metric test is loop-invariant. */
static inline __attribute__((always_inline)) float distance(const vdb_hnsw_space *sp,
							     const float *q, float qnorm,
							     uint64_t row)
{
	if (sp->codes)
		return vdb_code_distance(sp->codes, row);
	const float *x = sp->vectors + row * sp->dim;
	float d;
	switch (sp->metric) {
	case VDB_METRIC_L2:
		d = vdb_l2sq_graph(q, x, sp->dim);
		break;
	case VDB_METRIC_DOT:
		d = -vdb_dot_graph(q, x, sp->dim);
		break;
	default: {
		float n = sp->norms[row] * qnorm;
		d = n > 0 ? -vdb_dot_graph(q, x, sp->dim) / n : 0.0f;
	}
	}
	return finite_or_exact(sp, q, x, d);
}

float vdb_hnsw_distance(const vdb_hnsw_space *sp, const float *q, float qnorm, uint64_t row)
{
	return distance(sp, q, qnorm, row);
}

static inline float row_distance(const vdb_hnsw_space *sp, uint64_t a, uint64_t b)
{
	const float *qa = sp->vectors + a * sp->dim;
	return distance(sp, qa, sp->norms ? sp->norms[a] : 0, b);
}

typedef struct builder builder;

/* Per-thread search state while building: visited marks (generation-tagged) and a buffer
 * for one copied neighbour list. */
typedef struct search_state {
	uint16_t *visited;
	uint16_t tag;
	uint32_t *buf;
} search_state;

/* Compact heap entries: the search is bound by memory traffic, so 8 bytes, not 24. */
typedef struct qc {
	float d;
	uint32_t id;
} qc;

static inline void qpush(qc *h, size_t *n, qc c, int max)
{
	size_t i = (*n)++;
	while (i) {
		size_t p = (i - 1) / 2;
		if (max ? h[p].d >= c.d : h[p].d <= c.d)
			break;
		h[i] = h[p];
		i = p;
	}
	h[i] = c;
}

static inline qc qpop(qc *h, size_t *n, int max)
{
	qc top = h[0], last = h[--*n];
	size_t i = 0, m = *n;
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, b = i;
		float bd = last.d;
		if (l < m && (max ? h[l].d > bd : h[l].d < bd))
			b = l, bd = h[l].d;
		if (r < m && (max ? h[r].d > bd : h[r].d < bd))
			b = r;
		if (b == i)
			break;
		h[i] = h[b];
		i = b;
	}
	if (m)
		h[i] = last;
	return top;
}

/* ---- the beam search's expansion step, shared by construction and queries ---- */

/* How vectors are prefetched during expansion: whole (up to a limit past which the
 * hardware's stream prefetcher has long taken over), a few neighbours ahead of the
 * distance being computed, about 32 cache lines in flight. Prefetching every neighbour at
 * once measured slower: the core stalls when its miss buffers are full. */
typedef struct prefetch_plan {
	size_t bytes;
	uint32_t ahead;
} prefetch_plan;

static prefetch_plan plan_prefetch(const vdb_hnsw_space *sp)
{
	size_t row = sp->codes ? sp->codes->codes->stride : (size_t)sp->dim * sizeof(float);
	size_t bytes = row < 1024 ? row : 1024;
	uint32_t lines = (uint32_t)((bytes + 63) / 64);
	return (prefetch_plan){bytes, lines >= 16 ? 2 : lines >= 11 ? 3 : 4};
}

/* Where row's vector (or codes) start. */
static inline const void *row_data(const vdb_hnsw_space *sp, uint64_t row)
{
	if (sp->codes)
		return sp->codes->codes->data + row * sp->codes->codes->stride;
	return sp->vectors + row * sp->dim;
}

static inline void prefetch_vector(const void *p, size_t bytes)
{
	for (size_t o = 0; o < bytes; o += 64)
		__builtin_prefetch((const char *)p + o);
}

static inline int is_dead(const uint64_t *dead, uint32_t row)
{
	return dead && (dead[row >> 6] >> (row & 63) & 1);
}

/* The beam's two heaps: candidates to expand (min-heap) and the ef best found (max-heap,
 * live rows only). */
typedef struct beam {
	qc *cand, *res;
	size_t nc, nr, ef;
} beam;

/* Expands one node: computes the distances to its unvisited neighbours nbrs[0..cnt),
 * marking them visited, and offers each to the beam. Returns -1 when a neighbour is not
 * below `rows` (a damaged graph), else 0. */
static inline __attribute__((always_inline)) int expand(const vdb_hnsw_space *sp, const float *q,
							float qnorm, const uint32_t *nbrs,
							uint32_t cnt, uint64_t rows,
							uint16_t *visited, uint16_t tag,
							const uint64_t *dead, prefetch_plan pf,
							beam *bm)
{
	uint32_t fresh[2 * 64 + 1]; /* cnt <= m0 <= 2 * 64 */
	uint32_t nf = 0;
	for (uint32_t i = 0; i < cnt; i++) {
		uint32_t nb = nbrs[i];
		if (nb >= rows)
			return -1;
		/* Branch-free: whether a neighbour was seen is a coin toss to the predictor. */
		fresh[nf] = nb;
		nf += visited[nb] != tag;
		visited[nb] = tag;
	}
	for (uint32_t i = 0; i < nf && i < pf.ahead; i++)
		prefetch_vector(row_data(sp, fresh[i]), pf.bytes);
	for (uint32_t i = 0; i < nf; i++) {
		uint32_t nb = fresh[i];
		if (i + pf.ahead < nf)
			prefetch_vector(row_data(sp, fresh[i + pf.ahead]), pf.bytes);
		float d = distance(sp, q, qnorm, nb);
		if (bm->nr < bm->ef || d < bm->res[0].d) {
			qpush(bm->cand, &bm->nc, (qc){d, nb}, 0);
			if (!is_dead(dead, nb)) {
				qpush(bm->res, &bm->nr, (qc){d, nb}, 1);
				if (bm->nr > bm->ef)
					qpop(bm->res, &bm->nr, 1);
			}
		}
	}
	return 0;
}

/* ---- construction ---- */

struct builder {
	const vdb_hnsw_space *sp;
	uint64_t rows;
	uint32_t m, m0, efc;
	uint32_t *l0;
	uint8_t *level;
	uint32_t **up; /* per node: level * (m + 1), or NULL */
	atomic_flag *locks;
	pthread_mutex_t glock;
	uint64_t entry;
	uint32_t max_level;
	const uint32_t *todo; /* the rows to insert, in order */
	uint64_t ntodo;
	atomic_uint_fast64_t next; /* into todo */
	atomic_int failed;
};

static void lock_node(builder *b, uint64_t n)
{
	while (atomic_flag_test_and_set_explicit(&b->locks[n], memory_order_acquire))
		;
}

static void unlock_node(builder *b, uint64_t n)
{
	atomic_flag_clear_explicit(&b->locks[n], memory_order_release);
}

static uint32_t *list_of(builder *b, uint64_t n, uint32_t level)
{
	return level == 0 ? b->l0 + n * (b->m0 + 1) : b->up[n] + (level - 1) * (b->m + 1);
}

static int same_vector(const vdb_hnsw_space *sp, uint64_t a, uint64_t b)
{
	return !memcmp(sp->vectors + a * sp->dim, sp->vectors + b * sp->dim,
		       sp->dim * sizeof *sp->vectors);
}

/* The heuristic of the paper (Algorithm 4 without extension): take candidates closest
 * first from the min-heap c (n entries, consumed), keeping one only if it is closer to the
 * base than to every one already kept; stop at max. Exact copies of a neighbour kept (as
 * near the base as that neighbour, so the rule keeps them all) come last instead: they
 * fill the slots left. Kept first, copies would fill the lists of a node with many copies
 * and push out every link leaving the group: searches that enter it would be trapped. */
static size_t select_neighbours(builder *b, qc *c, size_t n, size_t max, uint32_t *out)
{
	uint32_t copies[2 * 64 + 1];
	size_t kept = 0, ncopies = 0;
	while (n && kept < max) {
		qc e = qpop(c, &n, 0);
		int good = 1;
		for (size_t j = 0; j < kept && good; j++) {
			float d = row_distance(b->sp, e.id, out[j]);
			if (d < e.d)
				good = 0;
			else if (d == e.d && same_vector(b->sp, e.id, out[j])) {
				good = 0;
				if (ncopies < max)
					copies[ncopies++] = e.id;
			}
		}
		if (good)
			out[kept++] = e.id;
	}
	for (size_t i = 0; i < ncopies && kept < max; i++)
		out[kept++] = copies[i];
	return kept;
}

/* Turns c[0..n) into a min-heap in place. */
static void heapify_min(qc *c, size_t n)
{
	qc *tmp = c;
	size_t m = 0;
	for (size_t i = 0; i < n; i++)
		qpush(tmp, &m, c[i], 0);
}

/* Beam search at one level while building: lists are read under their node's lock. The
 * result max-heap res holds up to ef entries; *nres is its size. */
static void build_layer(builder *b, search_state *st, qc *cand, qc *res, const float *q, float qn,
			uint32_t level, size_t ef, qc seed, size_t *nres)
{
	beam bm = {cand, res, 0, 0, ef};
	prefetch_plan pf = plan_prefetch(b->sp);
	st->visited[seed.id] = st->tag;
	qpush(cand, &bm.nc, seed, 0);
	qpush(res, &bm.nr, seed, 1);
	while (bm.nc) {
		qc c = qpop(cand, &bm.nc, 0);
		if (bm.nr >= ef && c.d > res[0].d)
			break;
		lock_node(b, c.id);
		uint32_t *l = list_of(b, c.id, level), cnt = l[0];
		memcpy(st->buf, l + 1, cnt * sizeof *st->buf);
		unlock_node(b, c.id);
		expand(b->sp, q, qn, st->buf, cnt, b->rows, st->visited, st->tag, NULL, pf, &bm);
	}
	*nres = bm.nr;
}

/* Links q to the heuristic's choice from the candidates w[0..nw) (consumed) and each chosen
 * neighbour back to q, re-selecting a neighbour's list when it is full. */
static void connect(builder *b, qc *scratch, uint64_t q, uint32_t level, qc *w, size_t nw)
{
	uint32_t max = level ? b->m : b->m0;
	uint32_t sel[2 * 64 + 1];
	heapify_min(w, nw);
	size_t ns = select_neighbours(b, w, nw, b->m, sel);
	lock_node(b, q);
	uint32_t *lq = list_of(b, q, level);
	if (lq[0] == 0) {
		lq[0] = (uint32_t)ns;
		memcpy(lq + 1, sel, ns * sizeof *sel);
	} else {
		/* Another thread reached q already and linked itself here: keep those links
		 * (overwriting them would leave that node with one incoming edge fewer, and
		 * nodes with none are unreachable), merged with q's own choice. */
		size_t nc = 0;
		for (uint32_t j = 0; j < lq[0]; j++)
			qpush(scratch, &nc, (qc){row_distance(b->sp, q, lq[1 + j]), lq[1 + j]}, 0);
		for (size_t i = 0; i < ns; i++) {
			int dup = 0;
			for (uint32_t j = 0; j < lq[0] && !dup; j++)
				dup = lq[1 + j] == sel[i];
			if (!dup)
				qpush(scratch, &nc, (qc){row_distance(b->sp, q, sel[i]), sel[i]}, 0);
		}
		if (nc <= max) {
			for (size_t i = 0; i < nc; i++)
				lq[1 + i] = scratch[i].id;
			lq[0] = (uint32_t)nc;
		} else {
			lq[0] = (uint32_t)select_neighbours(b, scratch, nc, max, lq + 1);
		}
	}
	unlock_node(b, q);
	for (size_t i = 0; i < ns; i++) {
		uint64_t n = sel[i];
		lock_node(b, n);
		uint32_t *ln = list_of(b, n, level);
		int present = 0;
		for (uint32_t j = 0; j < ln[0]; j++)
			present |= ln[1 + j] == q;
		if (!present && ln[0] < max) {
			ln[1 + ln[0]++] = (uint32_t)q;
		} else if (!present) {
			/* Full: re-select among the old neighbours and q with the heuristic. */
			size_t nc = 0;
			qpush(scratch, &nc, (qc){row_distance(b->sp, n, q), (uint32_t)q}, 0);
			for (uint32_t j = 0; j < ln[0]; j++)
				qpush(scratch, &nc, (qc){row_distance(b->sp, n, ln[1 + j]), ln[1 + j]}, 0);
			ln[0] = (uint32_t)select_neighbours(b, scratch, nc, max, ln + 1);
		}
		unlock_node(b, n);
	}
}

static uint32_t random_level(uint64_t seed, uint64_t row, uint32_t m)
{
	uint64_t x = seed ^ (row + 0x9e3779b97f4a7c15ull) * 0xbf58476d1ce4e5b9ull;
	x ^= x >> 31;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 29;
	double u = ((double)(x >> 11) + 1.0) / 9007199254740993.0; /* (0, 1] */
	double l = -log(u) / log((double)m);
	return l >= VDB_HNSW_MAX_LEVEL - 1 ? VDB_HNSW_MAX_LEVEL - 1 : (uint32_t)l;
}

/* Per-thread buffers: candidate heap (every node at most once), scratch for re-selections
 * (m0 + 1 and more), and each level's result heap while a node is inserted (ef + 1 entries
 * at found + level * (ef + 2), nfound[level] of them). */
typedef struct build_bufs {
	qc *cand, *scratch, *found;
	size_t nfound[VDB_HNSW_MAX_LEVEL];
} build_bufs;

/* Greedy descent from ep on level top down to level `to` (exclusive): the node closest to
 * q found there. */
static qc descend(builder *b, search_state *st, const float *qv, float qn, uint64_t ep,
		  uint32_t top, uint32_t to)
{
	qc cur = {distance(b->sp, qv, qn, ep), (uint32_t)ep};
	for (uint32_t l = top; l > to; l--) {
		for (int changed = 1; changed;) {
			changed = 0;
			lock_node(b, cur.id);
			uint32_t *list = list_of(b, cur.id, l), cnt = list[0];
			memcpy(st->buf, list + 1, cnt * sizeof *st->buf);
			unlock_node(b, cur.id);
			for (uint32_t i = 0; i < cnt; i++) {
				float d = distance(b->sp, qv, qn, st->buf[i]);
				if (d < cur.d) {
					cur = (qc){d, st->buf[i]};
					changed = 1;
				}
			}
		}
	}
	return cur;
}

/* Searches every level of q top down, then connects q bottom up. Other threads find q at a
 * level only once it is connected there, so by then it has its lists at every level below.
 * Connected top down, q could be found at level 1 and taken as the entry of another node's
 * level-0 search while q's level-0 list was still empty: that search found q alone, and
 * the node was linked to q and nothing else, far from its true neighbours. */
static void insert(builder *b, search_state *st, build_bufs *bb, uint64_t q)
{
	const float *qv = b->sp->vectors + q * b->sp->dim;
	float qn = b->sp->norms ? b->sp->norms[q] : 0;
	uint32_t lq = b->level[q];
	pthread_mutex_lock(&b->glock);
	uint32_t top = b->max_level;
	uint64_t ep = b->entry;
	int raises = lq > top;
	if (!raises)
		pthread_mutex_unlock(&b->glock);
	qc cur = descend(b, st, qv, qn, ep, top, lq);
	/* Levels above the old top have no other node yet: nothing to connect there. */
	uint32_t from = lq < top ? lq : top;
	for (int64_t l = from; l >= 0; l--) {
		st->tag++;
		qc *found = bb->found + (size_t)l * (b->efc + 2);
		build_layer(b, st, bb->cand, found, qv, qn, (uint32_t)l, b->efc, cur,
			    &bb->nfound[l]);
		/* The closest found is the next level's entry. */
		qc best = found[0];
		for (size_t i = 1; i < bb->nfound[l]; i++)
			if (found[i].d < best.d)
				best = found[i];
		cur = best;
	}
	for (uint32_t l = 0; l <= from; l++)
		connect(b, bb->scratch, q, l, bb->found + (size_t)l * (b->efc + 2), bb->nfound[l]);
	if (raises) {
		b->entry = q;
		b->max_level = lq;
		pthread_mutex_unlock(&b->glock);
	}
}

/* One thread's search state and buffers while building; returns -1 when out of memory
 * (what was allocated is freed by thread_bufs_free either way). */
static int thread_bufs_init(builder *b, search_state *st, build_bufs *bb)
{
	*st = (search_state){calloc(b->rows, sizeof(uint16_t)), 0,
			     malloc((b->m0 + 1) * sizeof(uint32_t))};
	*bb = (build_bufs){malloc((b->rows + 1) * sizeof(qc)), malloc((2 * b->m0 + 2) * sizeof(qc)),
			   malloc((size_t)VDB_HNSW_MAX_LEVEL * (b->efc + 2) * sizeof(qc)), {0}};
	return st->visited && st->buf && bb->cand && bb->scratch && bb->found ? 0 : -1;
}

static void thread_bufs_free(search_state *st, build_bufs *bb)
{
	free(st->visited);
	free(st->buf);
	free(bb->cand);
	free(bb->scratch);
	free(bb->found);
}

/* A new visited generation for a search of up to VDB_HNSW_MAX_LEVEL + 1 levels. */
static void next_generation(builder *b, search_state *st)
{
	if (st->tag > UINT16_MAX - VDB_HNSW_MAX_LEVEL - 1) {
		memset(st->visited, 0, b->rows * sizeof *st->visited);
		st->tag = 0;
	}
}

typedef struct worker_arg {
	builder *b;
	const vdb_hnsw_build_params *report; /* the calling thread's: reports progress */
} worker_arg;

static void *worker(void *arg)
{
	builder *b = ((worker_arg *)arg)->b;
	search_state st;
	build_bufs bb;
	if (thread_bufs_init(b, &st, &bb)) {
		atomic_store(&b->failed, 1);
	} else {
		for (;;) {
			uint64_t i = atomic_fetch_add(&b->next, 1);
			if (i >= b->ntodo || atomic_load(&b->failed))
				break;
			next_generation(b, &st);
			insert(b, &st, &bb, b->todo[i]);
			const vdb_hnsw_build_params *r = ((worker_arg *)arg)->report;
			if (r && r->progress && i % 1024 == 0)
				r->progress(r->progress_ctx, b->rows - b->ntodo + i, b->rows);
		}
	}
	thread_bufs_free(&st, &bb);
	return NULL;
}

/* ---- reachability at level 0 ---- */

/* Breadth-first walk of level 0 from `from` (not reached yet): marks in `reached` every
 * node reachable from it and not reached before, appending each to the queue (its first
 * *head entries are done, as the walk leaves them). l0 is laid out as stored (count, then
 * m0 slots). Returns -1 on a count above m0 or a neighbour not below rows (damage). */
static int walk_l0(const uint32_t *l0, uint32_t m0, uint64_t rows, uint64_t from,
		   uint8_t *reached, uint32_t *queue, uint64_t *head, uint64_t *tail)
{
	reached[from] = 1;
	queue[(*tail)++] = (uint32_t)from;
	while (*head < *tail) {
		const uint32_t *l = l0 + (uint64_t)queue[(*head)++] * (m0 + 1);
		if (l[0] > m0)
			return -1;
		for (uint32_t k = 1; k <= l[0]; k++) {
			if (l[k] >= rows)
				return -1;
			if (!reached[l[k]]) {
				reached[l[k]] = 1;
				queue[(*tail)++] = l[k];
			}
		}
	}
	return 0;
}

static int list_has(const uint32_t *l, uint32_t node)
{
	for (uint32_t k = 1; k <= l[0]; k++)
		if (l[k] == node)
			return 1;
	return 0;
}

/* The slot (1-based) of base's link farthest from base; with `among`, only links that list
 * also holds count (0 when there is none). */
static uint32_t farthest_link(builder *b, uint64_t base, const uint32_t *l, const uint32_t *among)
{
	uint32_t best = 0;
	float bd = -FLT_MAX;
	for (uint32_t k = 1; k <= l[0]; k++) {
		if (among && !list_has(among, l[k]))
			continue;
		float d = row_distance(b->sp, base, l[k]);
		if (!best || d > bd)
			best = k, bd = d;
	}
	return best;
}

/* The reached node nearest u: a level-0 search, which from a reached node only ever visits
 * reached nodes (the walk left the reached set closed under links). It starts where the
 * upper levels lead if that node is reached, else at the entry point. */
static uint64_t nearest_reached(builder *b, search_state *st, build_bufs *bb,
				const uint8_t *reached, uint64_t u)
{
	const float *uv = b->sp->vectors + u * b->sp->dim;
	float un = b->sp->norms ? b->sp->norms[u] : 0;
	next_generation(b, st);
	qc start = descend(b, st, uv, un, b->entry, b->max_level, 0);
	if (!reached[start.id])
		start = (qc){distance(b->sp, uv, un, b->entry), (uint32_t)b->entry};
	st->tag++;
	size_t nr;
	build_layer(b, st, bb->cand, bb->found, uv, un, 0, b->efc, start, &nr);
	qc best = bb->found[0];
	for (size_t i = 1; i < nr; i++)
		if (bb->found[i].d < best.d)
			best = bb->found[i];
	return best.id;
}

/* Adds the link r -> u at level 0 (r reached, u not) so that every node reached stays
 * reached: appended if r's list has room; else it takes the place of r's link f farthest
 * from r among those u links to, or failing that of r's farthest link, which u then links
 * to (appended, or in place of u's own farthest). A path through r -> f now goes
 * r -> u -> f, and no path to a reached node went through u's links. */
static void link_unreached(builder *b, uint64_t r, uint64_t u)
{
	uint32_t *lr = list_of(b, r, 0), *lu = list_of(b, u, 0);
	if (lr[0] < b->m0) {
		lr[1 + lr[0]++] = (uint32_t)u;
		return;
	}
	uint32_t k = farthest_link(b, r, lr, lu);
	int shared = k != 0;
	if (!shared)
		k = farthest_link(b, r, lr, NULL);
	uint32_t f = lr[k];
	lr[k] = (uint32_t)u;
	if (shared)
		return;
	if (lu[0] < b->m0)
		lu[1 + lu[0]++] = f;
	else
		lu[farthest_link(b, u, lu, NULL)] = f;
}

/* Makes every node reachable at level 0 from the entry point. Pruning a full list with the
 * heuristic (in connect) can drop a node's only incoming link -- more readily among exact
 * duplicates, and in some interleavings of the threads -- and no search would ever return
 * that node again. A walk from the entry point finds such nodes; each is linked from the
 * reached node nearest to it and the walk goes on from there, so every node is handled at
 * most once. Cost: one walk, O(rows * m0), when nothing is missing (the usual case), plus
 * one search per node linked. Runs alone, after the inserting threads. */
static int make_reachable(builder *b)
{
	uint8_t *reached = calloc(b->rows, 1);
	uint32_t *queue = malloc(b->rows * sizeof *queue);
	search_state st = {0};
	build_bufs bb = {0};
	int rc = -1, ready = 0;
	if (!reached || !queue)
		goto out;
	uint64_t head = 0, tail = 0;
	walk_l0(b->l0, b->m0, b->rows, b->entry, reached, queue, &head, &tail);
	for (uint64_t u = 0; u < b->rows && tail < b->rows; u++) {
		if (reached[u])
			continue;
		if (!ready && thread_bufs_init(b, &st, &bb))
			goto out;
		ready = 1;
		link_unreached(b, nearest_reached(b, &st, &bb, reached, u), u);
		walk_l0(b->l0, b->m0, b->rows, u, reached, queue, &head, &tail);
	}
	rc = 0;
out:
	thread_bufs_free(&st, &bb);
	free(reached);
	free(queue);
	return rc;
}

static vdb_status serialize(builder *b, vdb_buf *meta, vdb_buf *l0, vdb_buf *nodes,
			    vdb_buf *upper, vdb_error *err)
{
	meta->len = l0->len = nodes->len = upper->len = 0;
	int rc = vdb_buf_put_u32(meta, b->m) || vdb_buf_put_u32(meta, b->m0) ||
		 vdb_buf_put_u32(meta, b->max_level) || vdb_buf_put_u32(meta, 0) ||
		 vdb_buf_put_u64(meta, b->entry) || vdb_buf_put_u64(meta, b->rows);
	rc = rc || vdb_buf_append(l0, b->l0, b->rows * (b->m0 + 1) * sizeof(uint32_t));
	for (uint64_t n = 0; n < b->rows && !rc; n++) {
		if (!b->level[n]) {
			rc = vdb_buf_put_u32(nodes, NO_UPPER);
			continue;
		}
		if (upper->len / 4 >= NO_UPPER)
			return vdb_err(err, VDB_EINVAL, "graph too large for one segment");
		rc = vdb_buf_put_u32(nodes, (uint32_t)(upper->len / 4)) ||
		     vdb_buf_put_u32(upper, b->level[n]) ||
		     vdb_buf_append(upper, b->up[n], (size_t)b->level[n] * (b->m + 1) * 4);
	}
	return rc ? vdb_err_nomem(err) : VDB_OK;
}

/* The level of stored node i, or 0 where its upper lists are out of bounds (damage). */
static uint32_t stored_level(const vdb_hnsw_graph *g, uint64_t i, uint32_t *off)
{
	*off = g->nodes[i];
	if (*off == NO_UPPER || *off >= g->upper_len)
		return 0;
	uint32_t lv = g->upper[*off];
	if (lv >= VDB_HNSW_MAX_LEVEL || (uint64_t)*off + 1 + (uint64_t)lv * (g->m + 1) > g->upper_len)
		return 0;
	return lv;
}

/* Copies a stored list of `level` into a builder list: the mapped links of the rows kept,
 * at most max. Above level 0 only links to nodes that reach that level are kept: a damaged
 * graph must not lead the build into lists a node does not have. */
static void copy_links(const uint32_t *src, uint32_t max, uint32_t level,
		       const vdb_hnsw_graph *g, const uint32_t *map, uint64_t rows, uint32_t *dst)
{
	uint32_t cnt = src[0] < max ? src[0] : max, off;
	dst[0] = 0;
	for (uint32_t k = 1; k <= cnt; k++) {
		uint32_t nb = src[k];
		if (nb < g->rows && map[nb] != VDB_HNSW_NO_ROW && map[nb] < rows &&
		    (level == 0 || stored_level(g, nb, &off) >= level))
			dst[1 + dst[0]++] = map[nb];
	}
}

/* Starts the builder from graph g (see vdb_hnsw_build_params.reuse): its kept nodes take
 * their levels and links, and are marked in seeded. Returns how many rows it seeded, or
 * -1 when out of memory. */
static int64_t reuse_graph(builder *b, const vdb_hnsw_graph *g, const uint32_t *map,
			   uint8_t *seeded)
{
	int64_t n = 0;
	uint64_t entry = UINT64_MAX;
	uint32_t e = map[g->entry];
	int kept_entry = e != VDB_HNSW_NO_ROW && e < b->rows;
	for (uint64_t i = 0; i < g->rows; i++) {
		uint32_t r = map[i], off;
		if (r == VDB_HNSW_NO_ROW || r >= b->rows || seeded[r])
			continue;
		uint32_t lv = stored_level(g, i, &off);
		free(b->up[r]);
		b->up[r] = NULL;
		b->level[r] = (uint8_t)lv;
		if (lv && !(b->up[r] = calloc((size_t)lv * (b->m + 1), 4)))
			return -1;
		seeded[r] = 1;
		n++;
		copy_links(g->l0 + i * (g->m0 + 1), b->m0, 0, g, map, b->rows, list_of(b, r, 0));
		for (uint32_t l = 1; l <= lv; l++)
			copy_links(g->upper + off + 1 + (l - 1) * (g->m + 1), b->m, l, g, map,
				   b->rows, list_of(b, r, l));
		/* The stored entry point, or if it was not kept, the highest kept node. */
		if (entry == UINT64_MAX || i == g->entry ||
		    (!kept_entry && lv > b->level[entry]))
			entry = r;
	}
	if (n) {
		b->entry = entry;
		b->max_level = b->level[entry];
	}
	return n;
}

/* Build threads: the caller's wish, else one per CPU (at most 64; one for a small graph). */
static uint32_t thread_count(uint32_t want, uint64_t rows)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	uint32_t t = want ? want : n > 0 ? (uint32_t)n : 1;
	if (t > 64)
		t = 64;
	return rows < 4096 ? 1 : t;
}

vdb_status vdb_hnsw_build(const vdb_hnsw_space *sp, uint64_t rows, const vdb_hnsw_build_params *p,
			  vdb_buf *meta, vdb_buf *l0, vdb_buf *nodes, vdb_buf *upper,
			  vdb_error *err)
{
	if (p->m < 2 || p->m > 64 || rows == 0 || rows >= NO_UPPER)
		return vdb_err(err, VDB_EINVAL, "invalid graph parameters");
	builder b = {.sp = sp, .rows = rows, .m = p->m, .m0 = 2 * p->m,
		     .efc = p->ef_construction < p->m ? p->m : p->ef_construction};
	b.l0 = calloc(rows * (b.m0 + 1), sizeof *b.l0);
	b.level = malloc(rows);
	b.up = calloc(rows, sizeof *b.up);
	b.locks = malloc(rows * sizeof *b.locks);
	vdb_status st = VDB_OK;
	if (!b.l0 || !b.level || !b.up || !b.locks) {
		st = vdb_err_nomem(err);
		goto out;
	}
	for (uint64_t n = 0; n < rows; n++) {
		atomic_flag_clear(&b.locks[n]);
		b.level[n] = (uint8_t)random_level(p->seed, n, b.m);
		if (b.level[n] && !(b.up[n] = calloc((size_t)b.level[n] * (b.m + 1), 4))) {
			st = vdb_err_nomem(err);
			goto out;
		}
	}
	/* The rows to insert: all but the first (the entry point), or all but a reused
	 * graph's. */
	b.entry = 0;
	b.max_level = b.level[0];
	uint8_t *seeded = calloc(rows, 1);
	uint32_t *todo = malloc(rows * sizeof *todo);
	int64_t nseeded = 0;
	if (!seeded || !todo ||
	    (p->reuse && p->reuse->m == b.m &&
	     (nseeded = reuse_graph(&b, p->reuse, p->reuse_map, seeded)) < 0)) {
		free(seeded);
		free(todo);
		st = vdb_err_nomem(err);
		goto out;
	}
	if (!nseeded)
		seeded[0] = 1;
	for (uint64_t n = 0; n < rows; n++)
		if (!seeded[n])
			todo[b.ntodo++] = (uint32_t)n;
	free(seeded);
	b.todo = todo;
	pthread_mutex_init(&b.glock, NULL);
	atomic_init(&b.next, 0);
	atomic_init(&b.failed, 0);
	uint32_t nt = thread_count(p->threads, b.ntodo);
	pthread_t tid[64];
	worker_arg arg = {&b, NULL}, self = {&b, p};
	uint32_t started = 0;
	for (; started + 1 < nt; started++)
		if (pthread_create(&tid[started], NULL, worker, &arg))
			break;
	worker(&self); /* the calling thread works too */
	if (p->progress && !atomic_load(&b.failed))
		p->progress(p->progress_ctx, rows, rows);
	for (uint32_t i = 0; i < started; i++)
		pthread_join(tid[i], NULL);
	pthread_mutex_destroy(&b.glock);
	free(todo);
	if (atomic_load(&b.failed) || make_reachable(&b))
		st = vdb_err_nomem(err);
	else
		st = serialize(&b, meta, l0, nodes, upper, err);
out:
	for (uint64_t n = 0; b.up && n < rows; n++)
		free(b.up[n]);
	free(b.up);
	free(b.l0);
	free(b.level);
	free(b.locks);
	return st;
}

/* ---- the stored graph ---- */

vdb_status vdb_hnsw_open(const void *meta, uint64_t meta_len, const void *l0, uint64_t l0_len,
			 const void *nodes, uint64_t nodes_len, const void *upper,
			 uint64_t upper_len, uint64_t rows, vdb_hnsw_graph *g, const char *file,
			 vdb_error *err)
{
	const unsigned char *m = meta;
	if (meta_len != META_SIZE)
		goto bad;
	uint32_t mm, m0, ml;
	uint64_t entry, r;
	memcpy(&mm, m, 4);
	memcpy(&m0, m + 4, 4);
	memcpy(&ml, m + 8, 4);
	memcpy(&entry, m + 16, 8);
	memcpy(&r, m + 24, 8);
	if (mm < 2 || mm > 64 || m0 != 2 * mm || ml >= VDB_HNSW_MAX_LEVEL || r != rows ||
	    entry >= rows || l0_len != rows * (m0 + 1) * 4 || nodes_len != rows * 4 ||
	    upper_len % 4 || ((uintptr_t)l0 | (uintptr_t)nodes | (uintptr_t)upper) % 4)
		goto bad;
	*g = (vdb_hnsw_graph){mm, m0, ml, entry, rows, l0, nodes, upper, upper_len / 4};
	return VDB_OK;
bad:
	return vdb_err(err, VDB_ECORRUPT, "%s: damaged graph header", file);
}

vdb_status vdb_hnsw_reached(const vdb_hnsw_graph *g, uint8_t *reached, const char *file,
			    vdb_error *err)
{
	uint32_t *queue = malloc(g->rows * sizeof *queue);
	if (!queue)
		return vdb_err_nomem(err);
	uint64_t head = 0, tail = 0;
	int rc = walk_l0(g->l0, g->m0, g->rows, g->entry, reached, queue, &head, &tail);
	free(queue);
	return rc ? vdb_err(err, VDB_ECORRUPT, "%s: damaged graph", file) : VDB_OK;
}

/* ---- query-time search: reads the mapped lists directly ---- */

/* The neighbour list of node at level, or NULL if the graph is damaged there. */
static inline const uint32_t *qlist(const vdb_hnsw_graph *g, uint64_t node, uint32_t level,
				    uint32_t *count)
{
	const uint32_t *l;
	uint32_t max;
	if (level == 0) {
		l = g->l0 + node * (g->m0 + 1);
		max = g->m0;
	} else {
		uint32_t off = g->nodes[node];
		if (off == NO_UPPER || off >= g->upper_len)
			return NULL;
		uint32_t lv = g->upper[off];
		if (lv < level || lv >= VDB_HNSW_MAX_LEVEL ||
		    (uint64_t)off + 1 + (uint64_t)lv * (g->m + 1) > g->upper_len)
			return NULL;
		l = g->upper + off + 1 + (level - 1) * (g->m + 1);
		max = g->m;
	}
	if (l[0] > max)
		return NULL;
	*count = l[0];
	return l + 1;
}

void vdb_hnsw_scratch_free(vdb_hnsw_scratch *s)
{
	free(s->visited);
	free(s->cand);
	free(s->topk);
	free(s->codeq);
	memset(s, 0, sizeof *s);
}

vdb_status vdb_hnsw_search(const vdb_hnsw_graph *g, const vdb_hnsw_space *sp, const float *q,
			   float qnorm, const uint64_t *dead, size_t ef, vdb_hnsw_scratch *s,
			   vdb_cand **out, size_t *n, const char *file, vdb_error *err)
{
	if (s->visited_len < g->rows) {
		free(s->visited);
		s->visited = calloc(g->rows, sizeof *s->visited);
		s->visited_len = s->visited ? g->rows : 0;
		s->tag = 0;
	}
	/* One buffer holds the candidate heap (at most every node once), the result heap
	 * (ef + 1) and the sorted output (ef, as vdb_cand). */
	size_t need = (g->rows + 1) * sizeof(qc) + (ef + 1) * sizeof(qc) + ef * sizeof(vdb_cand);
	if (s->cand_cap < need) {
		free(s->cand);
		s->cand = malloc(need);
		s->cand_cap = s->cand ? need : 0;
	}
	if (!s->visited || !s->cand)
		return vdb_err_nomem(err);
	if (++s->tag == 0) {
		memset(s->visited, 0, s->visited_len * sizeof *s->visited);
		s->tag = 1;
	}
	uint16_t tag = s->tag, *visited = s->visited;
	qc *cand = (qc *)s->cand, *res = cand + g->rows + 1;
	vdb_cand *sorted = (vdb_cand *)(res + ef + 1);
	prefetch_plan pf = plan_prefetch(sp);

	/* Greedy descent through the upper levels. */
	uint32_t cur = (uint32_t)g->entry, cnt;
	float cd = distance(sp, q, qnorm, cur);
	for (uint32_t level = g->max_level; level > 0; level--) {
		for (int changed = 1; changed;) {
			changed = 0;
			const uint32_t *l = qlist(g, cur, level, &cnt);
			if (!l)
				goto bad;
			for (uint32_t i = 0; i < cnt; i++) {
				if (l[i] >= g->rows)
					goto bad;
				float d = distance(sp, q, qnorm, l[i]);
				if (d < cd) {
					cd = d;
					cur = l[i];
					changed = 1;
				}
			}
		}
	}

	/* Beam search at level 0: dead rows are expanded but never kept. */
	beam bm = {cand, res, 0, 0, ef};
	visited[cur] = tag;
	qpush(cand, &bm.nc, (qc){cd, cur}, 0);
	if (!is_dead(dead, cur))
		qpush(res, &bm.nr, (qc){cd, cur}, 1);
	while (bm.nc) {
		qc c = qpop(cand, &bm.nc, 0);
		if (bm.nr >= ef && c.d > res[0].d)
			break;
		/* The next candidate's list is loaded while this one is expanded. */
		if (bm.nc)
			__builtin_prefetch(g->l0 + (size_t)cand[0].id * (g->m0 + 1));
		const uint32_t *l = qlist(g, c.id, 0, &cnt);
		if (!l || expand(sp, q, qnorm, l, cnt, g->rows, visited, tag, dead, pf, &bm))
			goto bad;
	}
	size_t nr = bm.nr;
	/* Best first: pop the max-heap from the back. */
	*n = nr;
	while (nr) {
		qc c = qpop(res, &nr, 1);
		sorted[nr] = (vdb_cand){c.d, 0, c.id};
	}
	*out = sorted;
	return VDB_OK;
bad:
	return vdb_err(err, VDB_ECORRUPT, "%s: damaged graph", file);
}
