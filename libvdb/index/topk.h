/* Bounded top-k selection: a max-heap on (distance, id) keeping the k best candidates.
 * Distances are "lower is better"; ties are broken by id through a callback, which runs
 * only on exact ties. */
#ifndef VDB_INDEX_TOPK_H
#define VDB_INDEX_TOPK_H

#include <stddef.h>
#include <stdint.h>

typedef struct vdb_cand {
	double dist; /* double: a float distance, or the exact recomputation of one that overflowed */
	uint32_t src;
	uint64_t row;
} vdb_cand;

/* Compares the ids behind two candidates (< 0, 0, > 0). */
typedef int (*vdb_cand_idcmp)(void *ctx, const vdb_cand *a, const vdb_cand *b);

typedef struct vdb_topk {
	vdb_cand *h;
	size_t n, k;
	vdb_cand_idcmp idcmp;
	void *ctx;
} vdb_topk;

/* Returns 1 when a candidate at dist would enter the set (a cheap pre-check). */
static inline int vdb_topk_may_enter(const vdb_topk *t, double dist)
{
	return t->n < t->k || dist <= t->h[0].dist;
}
void vdb_topk_push(vdb_topk *t, vdb_cand c);
/* Sorts the kept candidates best first (in place); returns their count. */
size_t vdb_topk_sort(vdb_topk *t);

#endif
