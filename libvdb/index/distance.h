/* Distance kernels, compiled for AVX-512, AVX2+FMA and the portable x86-64 baseline; the
 * best the CPU runs is chosen once, when the library is loaded (distance.c). */
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
/* out[j] = vdb_dot(q[j], b, n) for j < 4, bit for bit, loading b once. */
void vdb_dot4(const float *const *q, const float *b, size_t n, float *out);
/* vdb_dot_and_norm(q[j], x, n, &dot[j], xx) for j < 4, bit for bit, loading x once. */
void vdb_dot_and_norm4(const float *const *q, const float *x, size_t n, float *dot, float *xx);
/* The same for eight queries q[0..8), bit for bit: packed holds them as vdb_pack8 lays them
 * out (8 * (n rounded down to a multiple of 8) floats), which the AVX-512 version reads. */
void vdb_pack8(const float *const *q, size_t n, float *packed);
void vdb_l2sq8(const float *packed, const float *const *q, const float *b, size_t n, float *out);
void vdb_dot8(const float *packed, const float *const *q, const float *b, size_t n, float *out);
void vdb_dot_and_norm8(const float *packed, const float *const *q, const float *x, size_t n,
		       float *dot, float *xx);
/* vdb_dot and vdb_l2sq for graph searches and builds, which only rank by them: with
 * AVX-512 they round differently (16-float registers), so scores to report are computed
 * with the kernels above. */
float vdb_dot_graph(const float *a, const float *b, size_t n);
float vdb_l2sq_graph(const float *a, const float *b, size_t n);
/* dot(q, x) and dot(x, x) in one pass (cosine without stored norms). */
void vdb_dot_and_norm(const float *q, const float *x, size_t n, float *dot, float *xx);

/* The kernels of one compiled version. */
typedef struct vdb_kernels {
	const char *name; /* "portable", "avx2" (AVX2 + FMA) or "avx512" */
	float (*dot)(const float *a, const float *b, size_t n);
	float (*l2sq)(const float *a, const float *b, size_t n);
	void (*dot_and_norm)(const float *q, const float *x, size_t n, float *dot, float *xx);
	void (*l2sq4)(const float *const *q, const float *b, size_t n, float *out);
	void (*l2sq_rows)(const float *q, const float *x, size_t rows, size_t dim, float *out);
	void (*dot_rows)(const float *q, const float *x, size_t rows, size_t dim, float *out);
	void (*dot_and_norm_rows)(const float *q, const float *x, size_t rows, size_t dim,
				  float *dot, float *xx);
	void (*dot4)(const float *const *q, const float *b, size_t n, float *out);
	void (*dot_and_norm4)(const float *const *q, const float *x, size_t n, float *dot,
			      float *xx);
	void (*l2sq8)(const float *packed, const float *const *q, const float *b, size_t n,
		      float *out);
	void (*dot8)(const float *packed, const float *const *q, const float *b, size_t n,
		     float *out);
	void (*dot_and_norm8)(const float *packed, const float *const *q, const float *x, size_t n,
			      float *dot, float *xx);
	float (*dot_graph)(const float *a, const float *b, size_t n);
	float (*l2sq_graph)(const float *a, const float *b, size_t n);
} vdb_kernels;

/* Every version this CPU can run, the portable one first; returns how many (1 to 3). The
 * functions above are the best of them, chosen once when the library is loaded. */
size_t vdb_kernel_versions(vdb_kernels out[3]);

#endif
