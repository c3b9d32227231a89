/* Distance kernels. Written with independent accumulators so the compiler vectorises them;
 * the SIMD dispatch of a later revision replaces the bodies, not the interface. */
#ifndef VDB_INDEX_DISTANCE_H
#define VDB_INDEX_DISTANCE_H

#include <stddef.h>

float vdb_dot(const float *a, const float *b, size_t n);
float vdb_l2sq(const float *a, const float *b, size_t n);
/* out[r] = vdb_l2sq(q, x + r * dim, dim) and vdb_dot(...) for r < rows, bit for bit: the
 * rows of an exact scan in one call. */
void vdb_l2sq_rows(const float *q, const float *x, size_t rows, size_t dim, float *out);
void vdb_dot_rows(const float *q, const float *x, size_t rows, size_t dim, float *out);
void vdb_dot_and_norm_rows(const float *q, const float *x, size_t rows, size_t dim, float *dot,
			   float *xx);
/* out[j] = vdb_l2sq(q[j], b, n) for j < 4, bit for bit, loading b once. */
void vdb_l2sq4(const float *const *q, const float *b, size_t n, float *out);
/* dot(q, x) and dot(x, x) in one pass (cosine without stored norms). */
void vdb_dot_and_norm(const float *q, const float *x, size_t n, float *dot, float *xx);

#endif
