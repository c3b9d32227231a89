/* Top-k heap: the root is the worst kept candidate, so a new one is compared once. */
#include "topk.h"

#include <stdlib.h>

static int worse(vdb_topk *t, const vdb_cand *a, const vdb_cand *b)
{
	if (a->dist != b->dist)
		return a->dist > b->dist;
	return t->idcmp(t->ctx, a, b) > 0;
}

static void sift_down(vdb_topk *t, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < t->n && worse(t, &t->h[l], &t->h[m]))
			m = l;
		if (r < t->n && worse(t, &t->h[r], &t->h[m]))
			m = r;
		if (m == i)
			return;
		vdb_cand tmp = t->h[i];
		t->h[i] = t->h[m];
		t->h[m] = tmp;
		i = m;
	}
}

void vdb_topk_push(vdb_topk *t, vdb_cand c)
{
	if (t->n < t->k) {
		size_t i = t->n++;
		t->h[i] = c;
		while (i && worse(t, &t->h[i], &t->h[(i - 1) / 2])) {
			vdb_cand tmp = t->h[i];
			t->h[i] = t->h[(i - 1) / 2];
			t->h[(i - 1) / 2] = tmp;
			i = (i - 1) / 2;
		}
		return;
	}
	if (!worse(t, &t->h[0], &c))
		return;
	t->h[0] = c;
	sift_down(t, 0);
}

size_t vdb_topk_sort(vdb_topk *t)
{
	/* Heap sort: repeatedly move the worst to the end. */
	size_t n = t->n;
	while (t->n > 1) {
		vdb_cand tmp = t->h[0];
		t->h[0] = t->h[t->n - 1];
		t->h[t->n - 1] = tmp;
		t->n--;
		sift_down(t, 0);
	}
	t->n = n;
	return n;
}
