/* Quantized codes: a compact copy of a segment's vectors that graph searches walk instead of
 * the float32 originals (which then only rescore the best candidates), so the part of a
 * collection a search touches at random is a quarter (int8) or a thirty-second (binary) of
 * its vectors.
 *
 * Learned per segment from its own rows, when it is written:
 *   int8    per dimension, lo and step from the 0.1% and 99.9% quantiles of a sample of the
 *           rows (robust to outliers; values beyond them are clamped): x ~ lo + step * c,
 *           c in 0..255;
 *   binary  per dimension, the mean (centre): a bit per dimension, set when x > centre, and
 *           per row alpha = |x - centre|^2 / sum |x - centre|, which makes
 *           dot(q, centre + alpha * (+1 | -1 per bit)) an unbiased estimate of dot(q, x)
 *           (the estimator of RaBitQ, Gao & Long 2024).
 * Cosine collections quantize x / |x|, so a code needs no norm.
 *
 * Distances are asymmetric: the query stays (nearly) exact. It is prepared once per query
 * and segment into 16-bit integers, small enough that a dot product with the codes cannot
 * overflow 32 bits; the kernels then compute exact integer sums, so every compiled version
 * gives the same bits as the portable one.
 *
 * Section layout (kind VDB_SEC_CODES):
 *   0   u32 kind (1 int8, 2 binary)  4 u32 metric  8 u32 dim  12 u32 row stride
 *   16  u64 rows  24 u32 parameter floats (P)  28 u32 0
 *   32  P float32 parameters (int8: lo[dim], step[dim]; binary: centre[dim]), then zeros to
 *       a multiple of 64
 *   rows * stride codes; a row is
 *       int8:   dim bytes, zeros to a multiple of 4, and for l2 a float32 |x~|^2
 *       binary: ceil(dim / 8) bytes (bit d of byte d / 8, lowest first), zeros to a
 *               multiple of 8, float32 alpha, float32 |x|^2 (l2; exact: the signs say
 *               too little of x for |x~|^2 to be close) or 0 */
#ifndef VDB_INDEX_CODES_H
#define VDB_INDEX_CODES_H

#include <stddef.h>
#include <stdint.h>

#include "../util/buf.h"
#include "vdb.h"

#define VDB_CODES_HEAD 32u

/* A segment's codes, as mapped (all pointers into the section). */
typedef struct vdb_codes {
	vdb_quantize kind;
	vdb_metric metric;
	uint32_t dim, stride;
	uint64_t rows;
	const float *lo, *step; /* int8 */
	const float *centre;    /* binary */
	const unsigned char *data; /* rows * stride */
} vdb_codes;

/* A query prepared for one segment's codes: est(row) = base + scale * sum, where sum is the
 * kernel's integer sum (binary: alpha * (2 sum - qsum)), approximates dot(query, x). */
typedef struct vdb_code_query {
	const vdb_codes *codes;
	int16_t *q; /* vdb_code_query_len(dim) values */
	float base, scale;
	int32_t qsum;
	float qq;       /* l2: |q|^2 */
	float inv_norm; /* cosine: 1 / |q| */
} vdb_code_query;

/* Bytes a row of codes takes. */
uint32_t vdb_codes_stride(vdb_quantize kind, vdb_metric metric, uint32_t dim);
/* Bytes of the section for `rows` rows. */
uint64_t vdb_codes_section_size(vdb_quantize kind, vdb_metric metric, uint32_t dim,
				uint64_t rows);

/* Learns the parameters from `n` sample vectors (row-major, n >= 1; `sample` is reordered)
 * and appends the section's head and parameters to out. */
vdb_status vdb_codes_train(vdb_quantize kind, vdb_metric metric, uint32_t dim, uint64_t rows,
			   float *sample, size_t n, vdb_buf *out, vdb_error *err);
/* Encodes vectors as rows of codes (stride bytes each) with the parameters of a section
 * whose head vdb_codes_train wrote (params: its parameters, which must outlive e). */
typedef struct vdb_codes_encoder {
	vdb_quantize kind;
	vdb_metric metric;
	uint32_t dim, stride;
	const float *params;
	float *scale, *tmp; /* owned */
} vdb_codes_encoder;
vdb_status vdb_codes_encoder_init(vdb_codes_encoder *e, vdb_quantize kind, vdb_metric metric,
				  uint32_t dim, const float *params, vdb_error *err);
void vdb_codes_encode(const vdb_codes_encoder *e, const float *x, unsigned char *row);
void vdb_codes_encoder_free(vdb_codes_encoder *e);

/* Checks a section (its length, head and parameters) and fills c with pointers into it:
 * head is a copy of its first head_len bytes (at least vdb_codes_head_max(dim) when the
 * section is that long), sec the section as mapped. VDB_ECORRUPT names file. */
size_t vdb_codes_head_max(uint32_t dim);
vdb_status vdb_codes_open(const unsigned char *head, size_t head_len, const unsigned char *sec,
			  uint64_t len, uint32_t dim, uint64_t rows, vdb_codes *c, const char *file,
			  vdb_error *err);

/* Prepares q (qq = |q|^2, qnorm = |q|) for c's codes; cq->q must have room for
 * vdb_code_query_len(dim) values: dim rounded up to 64 values (|q| <= VDB_CODE_QMAX, zeros
 * past dim), then the same number of int16 slots holding their bytes for the kernels that
 * multiply bytes (vdb_code_query_split). */
#define VDB_CODE_QMAX 16383
size_t vdb_code_query_len(uint32_t dim);
/* Writes the bytes of q's values after them: hi[d] = floor(q[d] / 128), lo[d] = q[d] mod
 * 128, so q[d] = 128 hi[d] + lo[d] (both fit in int8 as |q[d]| <= VDB_CODE_QMAX). */
void vdb_code_query_split(int16_t *q, uint32_t dim);
void vdb_code_query_prepare(vdb_code_query *cq, const vdb_codes *c, const float *q, double qq,
			    double qnorm);

/* The kernels: sum over d < n of c[d] * q[d] (int8), and of q[d] for the set bits of b
 * (binary); q as prepared (vdb_code_query_len(n) values, split). */
int32_t vdb_codes_dot_u8(const uint8_t *c, const int16_t *q, size_t n);
int32_t vdb_codes_sum_bits(const uint8_t *b, const int16_t *q, size_t n);

typedef struct vdb_code_kernels {
	const char *name;
	int32_t (*dot_u8)(const uint8_t *c, const int16_t *q, size_t n);
	int32_t (*sum_bits)(const uint8_t *b, const int16_t *q, size_t n);
} vdb_code_kernels;
/* Every version this CPU can run, the portable one first; returns how many (1 to 4). */
size_t vdb_code_kernel_versions(vdb_code_kernels out[4]);

/* The graph distance (lower is better, on the scale of vdb_hnsw_distance) of a row. */
static inline __attribute__((always_inline)) float vdb_code_distance(const vdb_code_query *cq,
								      uint64_t row)
{
	const vdb_codes *c = cq->codes;
	const unsigned char *r = c->data + row * c->stride;
	float est, term = 0;
	if (c->kind == VDB_QUANTIZE_INT8) {
		est = cq->base + cq->scale * (float)vdb_codes_dot_u8(r, cq->q, c->dim);
		if (c->metric == VDB_METRIC_L2)
			__builtin_memcpy(&term, r + c->stride - 4, 4);
	} else {
		float alpha;
		__builtin_memcpy(&alpha, r + c->stride - 8, 4);
		__builtin_memcpy(&term, r + c->stride - 4, 4);
		int32_t s = vdb_codes_sum_bits(r, cq->q, c->dim);
		est = cq->base + alpha * cq->scale * (float)(2 * (int64_t)s - cq->qsum);
	}
	switch (c->metric) {
	case VDB_METRIC_L2: return cq->qq - 2 * est + term;
	case VDB_METRIC_DOT: return -est;
	default: return -est * cq->inv_norm;
	}
}

#endif
