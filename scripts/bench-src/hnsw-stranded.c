/* hnsw-stranded: how many rows of parallel HNSW builds are linked far from their neighbours.
 *
 *   cc -O2 -Ilibvdb -Ilibvdb/include -o /tmp/hnsw-stranded scripts/bench-src/hnsw-stranded.c \
 *      build/libvdb/libvdb_core.a -lzstd -lcjson -lm -lpthread
 *   /tmp/hnsw-stranded M BUILDS THREADS
 *
 * Data: 8000 x 16 float32, 40 clusters (centres uniform in [-2, 2), points within +-0.3),
 * xorshift64 seeded 12345; builds with ef_construction 100 and seeds 1..BUILDS. A row is
 * stranded when its nearest level-0 link is farther than its 10th nearest other row: the
 * diagnostic behind the unit test hnsw/parallel_builds_link_every_node_near_its_neighbours,
 * for comparing thread counts and M (one thread is the baseline: small M strands some rows
 * whatever the threads). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "index/distance.h"
#include "index/hnsw.h"

enum { N = 8000, DIM = 16, CLUSTERS = 40, K = 10 };

static uint64_t state = 12345;

static double rnd(void)
{
	state ^= state << 13;
	state ^= state >> 7;
	state ^= state << 17;
	return (double)(state >> 11) / 9007199254740992.0;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: hnsw-stranded M BUILDS THREADS\n");
		return 2;
	}
	uint32_t m = (uint32_t)atoi(argv[1]), threads = (uint32_t)atoi(argv[3]);
	int builds = atoi(argv[2]);
	static float v[N * DIM], tenth[N], centres[CLUSTERS][DIM];
	for (int c = 0; c < CLUSTERS; c++)
		for (int j = 0; j < DIM; j++)
			centres[c][j] = (float)(rnd() * 4 - 2);
	for (int i = 0; i < N; i++) {
		int c = (int)(rnd() * CLUSTERS);
		for (int j = 0; j < DIM; j++)
			v[i * DIM + j] = centres[c][j] + (float)(rnd() - 0.5) * 0.6f;
	}
	for (int i = 0; i < N; i++) {
		float best[K];
		for (int k = 0; k < K; k++)
			best[k] = INFINITY;
		for (int j = 0; j < N; j++) {
			float d = j == i ? INFINITY : vdb_l2sq(v + i * DIM, v + j * DIM, DIM);
			for (int k = 0; k < K; k++)
				if (d < best[k]) {
					memmove(best + k + 1, best + k, (K - 1 - k) * sizeof *best);
					best[k] = d;
					break;
				}
		}
		tenth[i] = best[K - 1];
	}
	vdb_hnsw_space sp = {VDB_METRIC_L2, DIM, v, NULL};
	size_t total = 0;
	for (int r = 0; r < builds; r++) {
		vdb_hnsw_build_params p = {m, 100, threads, (uint64_t)r + 1, NULL, NULL};
		vdb_buf meta = VDB_BUF_INIT, l0 = VDB_BUF_INIT, nodes = VDB_BUF_INIT, up = VDB_BUF_INIT;
		vdb_error err;
		if (vdb_hnsw_build(&sp, N, &p, &meta, &l0, &nodes, &up, &err) != VDB_OK) {
			fprintf(stderr, "hnsw-stranded: %s\n", err.message);
			return 1;
		}
		const uint32_t *lists = (const uint32_t *)l0.data;
		for (int i = 0; i < N; i++) {
			const uint32_t *l = lists + (size_t)i * (2 * m + 1);
			float nearest = INFINITY;
			for (uint32_t k = 1; k <= l[0]; k++)
				nearest = fminf(nearest, vdb_l2sq(v + i * DIM, v + (size_t)l[k] * DIM, DIM));
			total += nearest > tenth[i];
		}
		vdb_buf_free(&meta);
		vdb_buf_free(&l0);
		vdb_buf_free(&nodes);
		vdb_buf_free(&up);
	}
	printf("M %u, %u thread(s): %zu stranded rows in %d builds of %d\n", m, threads, total, builds,
	       N);
	return 0;
}
