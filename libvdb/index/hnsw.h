/* HNSW (hierarchical navigable small world) graphs: built once per sealed segment, stored in
 * the segment in the form they are searched in, and searched through the file mapping. */
#ifndef VDB_INDEX_HNSW_H
#define VDB_INDEX_HNSW_H

#include <stddef.h>
#include <stdint.h>

#include "../util/buf.h"
#include "codes.h"
#include "topk.h"
#include "vdb.h"

/* Segments with fewer rows than this are searched exactly (a graph would not pay off). */
#define VDB_HNSW_MIN_ROWS 1024
#define VDB_HNSW_MAX_LEVEL 16
#define VDB_HNSW_DEFAULT_M VDB_DEFAULT_M
#define VDB_HNSW_DEFAULT_EF_CONSTRUCTION VDB_DEFAULT_EF_CONSTRUCTION
#define VDB_HNSW_DEFAULT_EF VDB_DEFAULT_EF

/* The graph as stored (and as built): all arrays of u32.
 *   l0:     rows * (m0 + 1): per node its level-0 neighbour count, then m0 slots
 *   nodes:  rows: offset of the node's upper-level lists in `upper`, or UINT32_MAX
 *   upper:  per upper node: its level L, then for levels 1..L: count and m slots */
typedef struct vdb_hnsw_graph {
	uint32_t m, m0, max_level;
	uint64_t entry, rows;
	const uint32_t *l0;
	const uint32_t *nodes;
	const uint32_t *upper;
	uint64_t upper_len; /* in u32 */
} vdb_hnsw_graph;

/* What distances are computed on: row-major vectors and, for cosine, their norms; or, for a
 * search of a quantized segment, the codes with a query prepared for them. */
typedef struct vdb_hnsw_space {
	vdb_metric metric;
	uint32_t dim;
	const float *vectors;
	const float *norms; /* rows norms (cosine); may be NULL for other metrics */
	const vdb_code_query *codes; /* searches only: walk these instead of the vectors */
} vdb_hnsw_space;

typedef struct vdb_hnsw_build_params {
	uint32_t m, ef_construction, threads;
	uint64_t seed;
	/* Optional: called now and then from the calling thread with the rows inserted. */
	void (*progress)(void *ctx, uint64_t done, uint64_t total);
	void *progress_ctx;
	/* Optional: a graph over some of the rows to start from (a merge's largest input):
	 * reuse_map[i] is the row of its node i, or VDB_HNSW_NO_ROW for a row not kept. Its
	 * nodes keep their levels and links (links to rows not kept are dropped; every node is
	 * made reachable again at the end), and only the other rows are inserted. Used when its
	 * m is the build's; ids out of range (damage) are dropped, never followed. */
	const vdb_hnsw_graph *reuse;
	const uint32_t *reuse_map;
} vdb_hnsw_build_params;

#define VDB_HNSW_NO_ROW UINT32_MAX

/* Builds the graph of `rows` vectors with `threads` threads; on success *meta, *l0, *nodes
 * and *upper hold the serialized sections (meta: see hnsw.c). */
vdb_status vdb_hnsw_build(const vdb_hnsw_space *sp, uint64_t rows, const vdb_hnsw_build_params *p,
			  vdb_buf *meta, vdb_buf *l0, vdb_buf *nodes, vdb_buf *upper,
			  vdb_error *err);

/* Checks the meta section and section sizes of a stored graph, filling g. */
vdb_status vdb_hnsw_open(const void *meta, uint64_t meta_len, const void *l0, uint64_t l0_len,
			 const void *nodes, uint64_t nodes_len, const void *upper,
			 uint64_t upper_len, uint64_t rows, vdb_hnsw_graph *g, const char *file,
			 vdb_error *err);

/* Marks in reached[0..rows) (zeroed by the caller) the nodes reachable at level 0 from the
 * entry point: the only ones a search can return. Builds leave every node reachable.
 * Errors: VDB_ECORRUPT (a damaged list, naming file), VDB_ENOMEM. */
vdb_status vdb_hnsw_reached(const vdb_hnsw_graph *g, uint8_t *reached, const char *file,
			    vdb_error *err);

/* Per-view search scratch, reused across queries: visited marks (generation-tagged) sized
 * for the largest graph, one buffer for a graph search's heaps and sorted output, and the
 * merged top-k of a whole search. */
typedef struct vdb_hnsw_scratch {
	uint16_t *visited; /* 2 bytes a row, so the marks stay in cache */
	uint64_t visited_len;
	uint16_t tag;
	void *cand;
	size_t cand_cap; /* bytes */
	vdb_cand *topk;
	size_t topk_cap;
	int16_t *codeq; /* a query prepared for a segment's codes */
	size_t codeq_cap;
	/* Rescoring of quantized searches: nanoseconds a vector took lately (a moving
	 * average), and whether the vectors are being read from disk, so that each query asks
	 * for all its candidates' pages at once (see search.c). */
	float rescore_ns;
	int rescore_from_disk;
} vdb_hnsw_scratch;

void vdb_hnsw_scratch_free(vdb_hnsw_scratch *s);

/* Searches g for the `ef` nearest live rows to q (dead rows, per the bitmap, are traversed
 * but not returned). *out points to up to ef candidates (src 0, row, distance as in
 * vdb_hnsw_distance, or the codes' estimate of it when sp->codes is set), best first,
 * valid until the next search with s; *n is how many. */
vdb_status vdb_hnsw_search(const vdb_hnsw_graph *g, const vdb_hnsw_space *sp, const float *q,
			   float qnorm, const uint64_t *dead, size_t ef, vdb_hnsw_scratch *s,
			   vdb_cand **out, size_t *n, const char *file, vdb_error *err);

/* The distance used by graphs (lower is better): squared L2, -dot, or -cosine. */
float vdb_hnsw_distance(const vdb_hnsw_space *sp, const float *q, float qnorm, uint64_t row);

#endif
