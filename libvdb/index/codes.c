/* Quantized codes: learning them, encoding rows, preparing queries and the integer kernels
 * (codes.h has the layout and the arithmetic). */
#include "codes.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../util/bytes.h"
#include "../util/error.h"
#include "dispatch.h"

#define QUANTILE 0.001 /* int8: the share of values clamped at each end of a dimension */

static uint32_t round_up(uint32_t x, uint32_t to)
{
	return (x + to - 1) / to * to;
}

uint32_t vdb_codes_stride(vdb_quantize kind, vdb_metric metric, uint32_t dim)
{
	if (kind == VDB_QUANTIZE_INT8)
		return round_up(dim, 4) + (metric == VDB_METRIC_L2 ? 4 : 0);
	return round_up((dim + 7) / 8, 8) + 8;
}

static uint32_t param_count(vdb_quantize kind, uint32_t dim)
{
	return kind == VDB_QUANTIZE_INT8 ? 2 * dim : dim;
}

static uint64_t head_size(vdb_quantize kind, uint32_t dim)
{
	return round_up(VDB_CODES_HEAD + 4 * param_count(kind, dim), 64);
}

uint64_t vdb_codes_section_size(vdb_quantize kind, vdb_metric metric, uint32_t dim,
				uint64_t rows)
{
	return head_size(kind, dim) + rows * vdb_codes_stride(kind, metric, dim);
}

size_t vdb_codes_head_max(uint32_t dim)
{
	return VDB_CODES_HEAD + 4ull * param_count(VDB_QUANTIZE_INT8, dim);
}

size_t vdb_code_query_len(uint32_t dim)
{
	return 2 * round_up(dim, 64); /* the values, then their bytes (vdb_code_query_split) */
}

void vdb_code_query_split(int16_t *q, uint32_t dim)
{
	size_t pad = round_up(dim, 64);
	int8_t *hi = (int8_t *)(q + pad), *lo = hi + pad;
	for (size_t d = 0; d < pad; d++) {
		hi[d] = (int8_t)(q[d] >> 7); /* arithmetic shift: floor(q / 128) */
		lo[d] = (int8_t)(q[d] & 127);
	}
}

/* ---- learning ---- */

static void swapf(float *a, float *b)
{
	float t = *a;
	*a = *b;
	*b = t;
}

/* The value of rank k (0-based) among v[0..n), reordering v (Wirth's selection). */
static float select_rank(float *v, size_t n, size_t k)
{
	int64_t l = 0, m = (int64_t)n - 1, kk = (int64_t)k;
	while (l < m) {
		float x = v[kk];
		int64_t i = l, j = m;
		do {
			while (v[i] < x)
				i++;
			while (x < v[j])
				j--;
			if (i <= j) {
				swapf(&v[i], &v[j]);
				i++;
				j--;
			}
		} while (i <= j);
		if (j < kk)
			l = i;
		if (kk < i)
			m = j;
	}
	return v[kk];
}

static void normalize(float *x, uint32_t dim)
{
	double nn = 0;
	for (uint32_t d = 0; d < dim; d++)
		nn += (double)x[d] * x[d];
	double inv = nn > 0 ? 1 / sqrt(nn) : 0;
	for (uint32_t d = 0; d < dim; d++)
		x[d] = (float)(x[d] * inv);
}

vdb_status vdb_codes_train(vdb_quantize kind, vdb_metric metric, uint32_t dim, uint64_t rows,
			   float *sample, size_t n, vdb_buf *out, vdb_error *err)
{
	uint32_t np = param_count(kind, dim);
	float *params = calloc(np, sizeof *params), *col = malloc(n * sizeof *col);
	if (!params || !col) {
		free(params);
		free(col);
		return vdb_err_nomem(err);
	}
	if (metric == VDB_METRIC_COSINE)
		for (size_t i = 0; i < n; i++)
			normalize(sample + i * dim, dim);
	for (uint32_t d = 0; d < dim; d++) {
		for (size_t i = 0; i < n; i++)
			col[i] = sample[i * dim + d];
		if (kind == VDB_QUANTIZE_INT8) {
			size_t klo = (size_t)(QUANTILE * (double)(n - 1));
			float lo = select_rank(col, n, klo);
			float hi = select_rank(col, n, n - 1 - klo);
			float step = (hi - lo) / 255.0f;
			params[d] = lo;
			params[dim + d] = isfinite(step) && step > 0 ? step : 0;
		} else {
			double sum = 0;
			for (size_t i = 0; i < n; i++)
				sum += col[i];
			params[d] = (float)(sum / (double)n);
		}
	}
	unsigned char head[VDB_CODES_HEAD] = {0};
	vdb_put32(head, (uint32_t)kind);
	vdb_put32(head + 4, (uint32_t)metric);
	vdb_put32(head + 8, dim);
	vdb_put32(head + 12, vdb_codes_stride(kind, metric, dim));
	vdb_put64(head + 16, rows);
	vdb_put32(head + 24, np);
	static const unsigned char zeros[64];
	uint64_t pad = head_size(kind, dim) - VDB_CODES_HEAD - 4ull * np;
	int bad = vdb_buf_append(out, head, sizeof head) ||
		  vdb_buf_append(out, params, 4ull * np) || vdb_buf_append(out, zeros, pad);
	free(params);
	free(col);
	return bad ? vdb_err_nomem(err) : VDB_OK;
}

vdb_status vdb_codes_encoder_init(vdb_codes_encoder *e, vdb_quantize kind, vdb_metric metric,
				  uint32_t dim, const float *params, vdb_error *err)
{
	*e = (vdb_codes_encoder){kind, metric, dim, vdb_codes_stride(kind, metric, dim), params,
				 NULL, NULL};
	e->scale = malloc(dim * sizeof *e->scale);
	e->tmp = malloc(dim * sizeof *e->tmp);
	if (!e->scale || !e->tmp) {
		vdb_codes_encoder_free(e);
		return vdb_err_nomem(err);
	}
	/* int8: 1 / step, so that encoding multiplies (0 where the step is 0). */
	for (uint32_t d = 0; d < dim; d++)
		e->scale[d] = kind == VDB_QUANTIZE_INT8 && params[dim + d] > 0 ? 1 / params[dim + d] : 0;
	return VDB_OK;
}

void vdb_codes_encoder_free(vdb_codes_encoder *e)
{
	free(e->scale);
	free(e->tmp);
	e->scale = e->tmp = NULL;
}

/* Loops over plain float arrays, which the compiler vectorizes: encoding runs once per row
 * of every segment written, merges included. */
void vdb_codes_encode(const vdb_codes_encoder *e, const float *x, unsigned char *row)
{
	uint32_t dim = e->dim, stride = e->stride;
	float *v = e->tmp;
	memset(row, 0, stride);
	float inv = 1;
	if (e->metric == VDB_METRIC_COSINE) {
		double nn = 0;
		for (uint32_t d = 0; d < dim; d++)
			nn += (double)x[d] * x[d];
		inv = nn > 0 ? (float)(1 / sqrt(nn)) : 0;
	}
	if (e->kind == VDB_QUANTIZE_INT8) {
		const float *lo = e->params, *step = e->params + dim;
		float term = 0;
		for (uint32_t d = 0; d < dim; d++) {
			float t = (x[d] * inv - lo[d]) * e->scale[d] + 0.5f;
			t = t < 0 ? 0 : t > 255 ? 255 : t; /* NaN cannot occur: inputs are finite */
			v[d] = (float)(int)t;
		}
		for (uint32_t d = 0; d < dim; d++) {
			row[d] = (unsigned char)v[d];
			float back = lo[d] + step[d] * v[d];
			term += back * back;
		}
		if (e->metric == VDB_METRIC_L2)
			memcpy(row + stride - 4, &term, 4);
		return;
	}
	/* alpha scales the signs so that dot(q, centre + alpha * signs) estimates dot(q, x)
	 * without bias (RaBitQ's estimator): |x - centre|^2 / sum |x - centre|. */
	const float *centre = e->params;
	float l1 = 0, l2 = 0, norm2 = 0;
	for (uint32_t d = 0; d < dim; d++) {
		float x1 = x[d] * inv, c = x1 - centre[d];
		v[d] = c;
		l1 += fabsf(c);
		l2 += c * c;
		norm2 += x1 * x1;
	}
	for (uint32_t d = 0; d < dim; d++)
		if (v[d] > 0)
			row[d >> 3] |= (unsigned char)(1u << (d & 7));
	float alpha = l1 > 0 ? l2 / l1 : 0;
	/* l2: the row's exact |x|^2 (the estimate's error is then only the dot's). */
	float t = e->metric == VDB_METRIC_L2 ? norm2 : 0;
	if (!isfinite(alpha))
		alpha = 0;
	memcpy(row + stride - 8, &alpha, 4);
	memcpy(row + stride - 4, &t, 4);
}

/* ---- reading ---- */

vdb_status vdb_codes_open(const unsigned char *head, size_t head_len, const unsigned char *sec,
			  uint64_t len, uint32_t dim, uint64_t rows, vdb_codes *c, const char *file,
			  vdb_error *err)
{
	if (head_len < VDB_CODES_HEAD)
		return vdb_err(err, VDB_ECORRUPT, "%s: damaged codes section", file);
	uint32_t kind = vdb_le32(head), metric = vdb_le32(head + 4);
	if ((kind != VDB_QUANTIZE_INT8 && kind != VDB_QUANTIZE_BINARY) ||
	    metric < VDB_METRIC_L2 || metric > VDB_METRIC_DOT || vdb_le32(head + 8) != dim ||
	    vdb_le32(head + 12) != vdb_codes_stride(kind, metric, dim) ||
	    vdb_le64(head + 16) != rows || vdb_le32(head + 24) != param_count(kind, dim) ||
	    len != vdb_codes_section_size(kind, metric, dim, rows) ||
	    head_len < VDB_CODES_HEAD + 4ull * param_count(kind, dim))
		return vdb_err(err, VDB_ECORRUPT, "%s: damaged codes section", file);
	/* Parameters feed every distance: a damaged one must not make them all NaN. */
	for (uint32_t i = 0; i < param_count(kind, dim); i++) {
		float p;
		memcpy(&p, head + VDB_CODES_HEAD + 4ull * i, 4);
		if (!isfinite(p) || (kind == VDB_QUANTIZE_INT8 && i >= dim && p < 0))
			return vdb_err(err, VDB_ECORRUPT, "%s: damaged codes parameters", file);
	}
	*c = (vdb_codes){.kind = kind, .metric = metric, .dim = dim,
			 .stride = vdb_codes_stride(kind, metric, dim), .rows = rows,
			 .data = sec + head_size(kind, dim)};
	const float *params = (const float *)(sec + VDB_CODES_HEAD);
	if (kind == VDB_QUANTIZE_INT8) {
		c->lo = params;
		c->step = params + dim;
	} else {
		c->centre = params;
	}
	return VDB_OK;
}

void vdb_code_query_prepare(vdb_code_query *cq, const vdb_codes *c, const float *q, double qq,
			    double qnorm)
{
	uint32_t dim = c->dim;
	int int8 = c->kind == VDB_QUANTIZE_INT8;
	/* The largest |q| such that dim products with codes (int8: up to 255; binary: 1)
	 * sum within 32 bits, and (VDB_CODE_QMAX) whose split bytes fit in int8. */
	double bound = 2147483647.0 / ((double)dim * (int8 ? 255 : 1));
	double qmax = bound < VDB_CODE_QMAX ? floor(bound) : VDB_CODE_QMAX;
	double base = 0, wmax = 0;
	for (uint32_t d = 0; d < dim; d++) {
		double w = int8 ? (double)q[d] * c->step[d] : q[d];
		base += (double)q[d] * (int8 ? c->lo[d] : c->centre[d]);
		if (fabs(w) > wmax)
			wmax = fabs(w);
	}
	double s = wmax > 0 ? qmax / wmax : 1;
	int64_t qsum = 0;
	for (uint32_t d = 0; d < dim; d++) {
		double w = int8 ? (double)q[d] * c->step[d] : q[d];
		cq->q[d] = (int16_t)lrint(w * s);
		qsum += cq->q[d];
	}
	memset(cq->q + dim, 0, (round_up(dim, 64) - dim) * sizeof *cq->q);
	vdb_code_query_split(cq->q, dim);
	cq->codes = c;
	cq->base = (float)base;
	cq->scale = (float)(1 / s);
	cq->qsum = (int32_t)qsum;
	cq->qq = (float)qq;
	cq->inv_norm = qnorm > 0 ? (float)(1 / qnorm) : 0;
}

/* ---- kernels ---- */

BODY int32_t dot_u8_body(const uint8_t *c, const int16_t *q, size_t n)
{
	int32_t s = 0;
	for (size_t d = 0; d < n; d++)
		s += (int32_t)c[d] * q[d];
	return s;
}

BODY int32_t sum_bits_body(const uint8_t *b, const int16_t *q, size_t n)
{
	int32_t s = 0;
	for (size_t d = 0; d < n; d++)
		s += (b[d >> 3] >> (d & 7) & 1) ? q[d] : 0;
	return s;
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define AVX512VNNI __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx512vnni,avx2,fma")))

AVX2 static inline __attribute__((always_inline)) int32_t hsum256(__m256i v)
{
	__m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
	s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
	s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
	return _mm_cvtsi128_si32(s);
}

AVX2 static int32_t vdb_codes_dot_u8_avx2(const uint8_t *c, const int16_t *q, size_t n)
{
	__m256i a0 = _mm256_setzero_si256(), a1 = _mm256_setzero_si256();
	size_t d = 0;
	for (; d + 32 <= n; d += 32) {
		__m256i c0 = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(c + d)));
		__m256i c1 = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(c + d + 16)));
		a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(c0, _mm256_loadu_si256((const __m256i *)(q + d))));
		a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(c1, _mm256_loadu_si256((const __m256i *)(q + d + 16))));
	}
	int32_t s = hsum256(_mm256_add_epi32(a0, a1));
	for (; d < n; d++)
		s += (int32_t)c[d] * q[d];
	return s;
}

AVX2 static int32_t vdb_codes_sum_bits_avx2(const uint8_t *b, const int16_t *q, size_t n)
{
	const __m256i sel = _mm256_setr_epi16(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048,
					      4096, 8192, 16384, (short)0x8000);
	const __m256i ones = _mm256_set1_epi16(1);
	__m256i acc = _mm256_setzero_si256();
	for (size_t d = 0; d < n; d += 16) { /* bits and q are padded (codes.h) */
		uint16_t m = (uint16_t)(b[d >> 3] | b[(d >> 3) + 1] << 8);
		__m256i set = _mm256_cmpeq_epi16(_mm256_and_si256(_mm256_set1_epi16((short)m), sel), sel);
		__m256i v = _mm256_and_si256(set, _mm256_loadu_si256((const __m256i *)(q + d)));
		acc = _mm256_add_epi32(acc, _mm256_madd_epi16(v, ones));
	}
	return hsum256(acc);
}

/* The AVX-512 bodies, with VNNI's fused multiply-add of word pairs or without it. */
#define DOT_U8_512(madd_add)                                                                  \
	__m512i a0 = _mm512_setzero_si512(), a1 = _mm512_setzero_si512();                     \
	size_t d = 0;                                                                         \
	for (; d + 64 <= n; d += 64) {                                                        \
		__m512i c0 = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)(c + d))); \
		__m512i c1 =                                                                  \
			_mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)(c + d + 32))); \
		a0 = madd_add(a0, c0, _mm512_loadu_si512(q + d));                             \
		a1 = madd_add(a1, c1, _mm512_loadu_si512(q + d + 32));                        \
	}                                                                                     \
	for (; d < n; d += 32) { /* the last 1-63: masked loads never touch bytes past n */   \
		size_t r = n - d;                                                             \
		__mmask32 m = r >= 32 ? 0xffffffffu : (1u << r) - 1;                          \
		__m512i c0 = _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, c + d));         \
		a0 = madd_add(a0, c0, _mm512_loadu_si512(q + d));                             \
	}                                                                                     \
	return _mm512_reduce_add_epi32(_mm512_add_epi32(a0, a1));

#define SUM_BITS_512(madd_add)                                                                \
	const __m512i ones = _mm512_set1_epi16(1);                                            \
	__m512i acc = _mm512_setzero_si512();                                                 \
	for (size_t d = 0; d < n; d += 32) {                                                  \
		uint32_t m;                                                                   \
		memcpy(&m, b + (d >> 3), 4);                                                  \
		acc = madd_add(acc, _mm512_maskz_loadu_epi16(m, q + d), ones);               \
	}                                                                                     \
	return _mm512_reduce_add_epi32(acc);

AVX512 static inline __attribute__((always_inline)) __m512i madd_add(__m512i acc, __m512i a,
								     __m512i b)
{
	return _mm512_add_epi32(acc, _mm512_madd_epi16(a, b));
}

AVX512 static int32_t vdb_codes_dot_u8_avx512(const uint8_t *c, const int16_t *q, size_t n)
{
	DOT_U8_512(madd_add)
}

AVX512 static int32_t vdb_codes_sum_bits_avx512(const uint8_t *b, const int16_t *q, size_t n)
{
	SUM_BITS_512(madd_add)
}

/* VNNI multiplies unsigned by signed bytes, four pairs summed into each 32-bit lane, 64 a
 * step: the codes against the query's high and low bytes (q = 128 hi + lo), which
 * vdb_code_query_split put after its values. Lane sums stay within the bound of the whole
 * sum, so 128 hi + lo is exact per lane. */
AVX512VNNI static int32_t vdb_codes_dot_u8_vnni(const uint8_t *c, const int16_t *q, size_t n)
{
	size_t pad = (n + 63) & ~(size_t)63;
	const int8_t *hi = (const int8_t *)(q + pad), *lo = hi + pad;
	__m512i ah = _mm512_setzero_si512(), al = _mm512_setzero_si512();
	size_t d = 0;
	for (; d + 64 <= n; d += 64) {
		__m512i cv = _mm512_loadu_si512(c + d);
		ah = _mm512_dpbusd_epi32(ah, cv, _mm512_loadu_si512(hi + d));
		al = _mm512_dpbusd_epi32(al, cv, _mm512_loadu_si512(lo + d));
	}
	if (d < n) { /* masked: never a byte past the row */
		__m512i cv = _mm512_maskz_loadu_epi8((1ull << (n - d)) - 1, c + d);
		ah = _mm512_dpbusd_epi32(ah, cv, _mm512_loadu_si512(hi + d));
		al = _mm512_dpbusd_epi32(al, cv, _mm512_loadu_si512(lo + d));
	}
	return _mm512_reduce_add_epi32(_mm512_add_epi32(_mm512_slli_epi32(ah, 7), al));
}

AVX512VNNI static int32_t vdb_codes_sum_bits_vnni(const uint8_t *b, const int16_t *q, size_t n)
{
	SUM_BITS_512(_mm512_dpwssd_epi32)
}

static int32_t vdb_codes_dot_u8_base(const uint8_t *c, const int16_t *q, size_t n)
{
	return dot_u8_body(c, q, n);
}

static int32_t vdb_codes_sum_bits_base(const uint8_t *b, const int16_t *q, size_t n)
{
	return sum_bits_body(b, q, n);
}

static inline __attribute__((always_inline)) NO_SANITIZE int cpu_has_vnni(void)
{
	return cpu_has_avx512() && __builtin_cpu_supports("avx512vnni");
}

DISPATCH_RESOLVER(int32_t, vdb_codes_dot_u8, (const uint8_t *c, const int16_t *q, size_t n),
		  if (cpu_has_vnni()) return vdb_codes_dot_u8_vnni;)
DISPATCH_RESOLVER(int32_t, vdb_codes_sum_bits, (const uint8_t *b, const int16_t *q, size_t n),
		  if (cpu_has_vnni()) return vdb_codes_sum_bits_vnni;)

size_t vdb_code_kernel_versions(vdb_code_kernels out[4])
{
	size_t n = 0;
	__builtin_cpu_init();
	out[n++] = (vdb_code_kernels){"portable", vdb_codes_dot_u8_base, vdb_codes_sum_bits_base};
	if (cpu_has_avx2())
		out[n++] = (vdb_code_kernels){"avx2", vdb_codes_dot_u8_avx2, vdb_codes_sum_bits_avx2};
	if (cpu_has_avx512())
		out[n++] = (vdb_code_kernels){"avx512", vdb_codes_dot_u8_avx512, vdb_codes_sum_bits_avx512};
	if (cpu_has_vnni())
		out[n++] = (vdb_code_kernels){"avx512vnni", vdb_codes_dot_u8_vnni, vdb_codes_sum_bits_vnni};
	return n;
}
#else
int32_t vdb_codes_dot_u8(const uint8_t *c, const int16_t *q, size_t n)
{
	return dot_u8_body(c, q, n);
}

int32_t vdb_codes_sum_bits(const uint8_t *b, const int16_t *q, size_t n)
{
	return sum_bits_body(b, q, n);
}

size_t vdb_code_kernel_versions(vdb_code_kernels out[4])
{
	out[0] = (vdb_code_kernels){"portable", vdb_codes_dot_u8, vdb_codes_sum_bits};
	return 1;
}
#endif
