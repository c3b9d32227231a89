/* Distance kernels.
 *
 * Each kernel body is compiled three times: for CPUs with AVX-512, for AVX2+FMA, and for
 * the x86-64 baseline. An ifunc resolver checks the CPU's features once, when the library
 * is loaded, and binds the symbol to the best version, so there is no dispatch state to
 * manage and no per-call cost. The loops keep 32 partial sums (several independent vector
 * registers, so one iteration's adds do not wait for the previous one's) and combine them
 * in a fixed order: results are deterministic for a given CPU, and the versions differ only
 * in rounding (FMA, lane order), within 1e-5 relative of a double-precision reference. */
#include "distance.h"

#include <string.h>
#include "dispatch.h"

/* Eight-lane vectors through GCC's vector extensions: each target compiles them to its
 * best registers (two SSE halves, one AVX register). Four accumulators = 32 partial sums. */
typedef float v8f __attribute__((vector_size(32)));
/* The helpers below are always inlined, so no vector ever crosses a call boundary and the
 * baseline build's "AVX vector return changes the ABI" note does not apply. */
#pragma GCC diagnostic ignored "-Wpsabi"

static inline __attribute__((always_inline)) v8f load8(const float *p)
{
	v8f v;
	memcpy(&v, p, sizeof v);
	return v;
}

static inline __attribute__((always_inline)) float hsum8(v8f s)
{
	return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
}

BODY float vdb_dot_body(const float *a, const float *b, size_t n)
{
	v8f s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};
	size_t i = 0;
	for (; i + 32 <= n; i += 32) {
		s0 += load8(a + i) * load8(b + i);
		s1 += load8(a + i + 8) * load8(b + i + 8);
		s2 += load8(a + i + 16) * load8(b + i + 16);
		s3 += load8(a + i + 24) * load8(b + i + 24);
	}
	for (; i + 8 <= n; i += 8)
		s0 += load8(a + i) * load8(b + i);
	float s = hsum8((s0 + s1) + (s2 + s3));
	for (; i < n; i++)
		s += a[i] * b[i];
	return s;
}

BODY float vdb_l2sq_body(const float *a, const float *b, size_t n)
{
	v8f s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};
	size_t i = 0;
	for (; i + 32 <= n; i += 32) {
		v8f d0 = load8(a + i) - load8(b + i), d1 = load8(a + i + 8) - load8(b + i + 8);
		v8f d2 = load8(a + i + 16) - load8(b + i + 16), d3 = load8(a + i + 24) - load8(b + i + 24);
		s0 += d0 * d0;
		s1 += d1 * d1;
		s2 += d2 * d2;
		s3 += d3 * d3;
	}
	for (; i + 8 <= n; i += 8) {
		v8f d = load8(a + i) - load8(b + i);
		s0 += d * d;
	}
	float s = hsum8((s0 + s1) + (s2 + s3));
	for (; i < n; i++) {
		float d = a[i] - b[i];
		s += d * d;
	}
	return s;
}

BODY void vdb_dot_and_norm_body(const float *q, const float *x, size_t n, float *dot, float *xx)
{
	v8f d0 = {0}, d1 = {0}, n0 = {0}, n1 = {0};
	size_t i = 0;
	for (; i + 16 <= n; i += 16) {
		v8f x0 = load8(x + i), x1 = load8(x + i + 8);
		d0 += load8(q + i) * x0;
		d1 += load8(q + i + 8) * x1;
		n0 += x0 * x0;
		n1 += x1 * x1;
	}
	for (; i + 8 <= n; i += 8) {
		v8f x0 = load8(x + i);
		d0 += load8(q + i) * x0;
		n0 += x0 * x0;
	}
	float d = hsum8(d0 + d1), m = hsum8(n0 + n1);
	for (; i < n; i++) {
		d += q[i] * x[i];
		m += x[i] * x[i];
	}
	*dot = d;
	*xx = m;
}

/* vdb_l2sq of four queries against one vector: the vector is loaded once for the four, and
 * each query's sums are formed exactly as in vdb_l2sq_body (same accumulators, same
 * order), so the results are bit for bit the same as four separate calls. */
BODY void vdb_l2sq4_body(const float *const *q, const float *b, size_t n, float *out)
{
	/* Named accumulators, not an array: all sixteen stay in registers on AVX-512. */
	v8f a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, b0s = {0}, b1s = {0}, b2s = {0}, b3s = {0};
	v8f c0 = {0}, c1 = {0}, c2 = {0}, c3 = {0}, e0 = {0}, e1 = {0}, e2 = {0}, e3 = {0};
	const float *qa = q[0], *qb = q[1], *qc = q[2], *qe = q[3];
	size_t i = 0;
#define L2SQ4_STEP(p, s0, s1, s2, s3)                                                         \
	do {                                                                                  \
		v8f d0 = load8(p + i) - x0, d1 = load8(p + i + 8) - x1;                       \
		v8f d2 = load8(p + i + 16) - x2, d3 = load8(p + i + 24) - x3;                 \
		s0 += d0 * d0;                                                                \
		s1 += d1 * d1;                                                                \
		s2 += d2 * d2;                                                                \
		s3 += d3 * d3;                                                                \
	} while (0)
	for (; i + 32 <= n; i += 32) {
		v8f x0 = load8(b + i), x1 = load8(b + i + 8), x2 = load8(b + i + 16),
		    x3 = load8(b + i + 24);
		L2SQ4_STEP(qa, a0, a1, a2, a3);
		L2SQ4_STEP(qb, b0s, b1s, b2s, b3s);
		L2SQ4_STEP(qc, c0, c1, c2, c3);
		L2SQ4_STEP(qe, e0, e1, e2, e3);
	}
#undef L2SQ4_STEP
	for (; i + 8 <= n; i += 8) {
		v8f x0 = load8(b + i), d;
		d = load8(qa + i) - x0;
		a0 += d * d;
		d = load8(qb + i) - x0;
		b0s += d * d;
		d = load8(qc + i) - x0;
		c0 += d * d;
		d = load8(qe + i) - x0;
		e0 += d * d;
	}
	float t[4] = {hsum8((a0 + a1) + (a2 + a3)), hsum8((b0s + b1s) + (b2s + b3s)),
		      hsum8((c0 + c1) + (c2 + c3)), hsum8((e0 + e1) + (e2 + e3))};
	for (int j = 0; j < 4; j++) {
		for (size_t r = i; r < n; r++) {
			float d = q[j][r] - b[r];
			t[j] += d * d;
		}
		out[j] = t[j];
	}
}

/* vdb_dot of four queries against one vector, formed exactly as in vdb_dot_body (same
 * accumulators, same order): bit for bit four separate calls, the vector loaded once. */
BODY void vdb_dot4_body(const float *const *q, const float *b, size_t n, float *out)
{
	v8f a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, b0s = {0}, b1s = {0}, b2s = {0}, b3s = {0};
	v8f c0 = {0}, c1 = {0}, c2 = {0}, c3 = {0}, e0 = {0}, e1 = {0}, e2 = {0}, e3 = {0};
	const float *qa = q[0], *qb = q[1], *qc = q[2], *qe = q[3];
	size_t i = 0;
#define DOT4_STEP(p, s0, s1, s2, s3)                                                          \
	do {                                                                                  \
		s0 += load8(p + i) * x0;                                                      \
		s1 += load8(p + i + 8) * x1;                                                  \
		s2 += load8(p + i + 16) * x2;                                                 \
		s3 += load8(p + i + 24) * x3;                                                 \
	} while (0)
	for (; i + 32 <= n; i += 32) {
		v8f x0 = load8(b + i), x1 = load8(b + i + 8), x2 = load8(b + i + 16),
		    x3 = load8(b + i + 24);
		DOT4_STEP(qa, a0, a1, a2, a3);
		DOT4_STEP(qb, b0s, b1s, b2s, b3s);
		DOT4_STEP(qc, c0, c1, c2, c3);
		DOT4_STEP(qe, e0, e1, e2, e3);
	}
#undef DOT4_STEP
	for (; i + 8 <= n; i += 8) {
		v8f x0 = load8(b + i);
		a0 += load8(qa + i) * x0;
		b0s += load8(qb + i) * x0;
		c0 += load8(qc + i) * x0;
		e0 += load8(qe + i) * x0;
	}
	float t[4] = {hsum8((a0 + a1) + (a2 + a3)), hsum8((b0s + b1s) + (b2s + b3s)),
		      hsum8((c0 + c1) + (c2 + c3)), hsum8((e0 + e1) + (e2 + e3))};
	for (int j = 0; j < 4; j++) {
		for (size_t r = i; r < n; r++)
			t[j] += q[j][r] * b[r];
		out[j] = t[j];
	}
}

/* vdb_dot_and_norm of four queries against one vector, formed exactly as in
 * vdb_dot_and_norm_body: dot[j] for each query, and the vector's squared norm once. */
BODY void vdb_dot_and_norm4_body(const float *const *q, const float *x, size_t n, float *dot,
				 float *xx)
{
	v8f a0 = {0}, a1 = {0}, b0s = {0}, b1s = {0}, c0 = {0}, c1 = {0}, e0 = {0}, e1 = {0};
	v8f n0 = {0}, n1 = {0};
	const float *qa = q[0], *qb = q[1], *qc = q[2], *qe = q[3];
	size_t i = 0;
	for (; i + 16 <= n; i += 16) {
		v8f x0 = load8(x + i), x1 = load8(x + i + 8);
		a0 += load8(qa + i) * x0;
		a1 += load8(qa + i + 8) * x1;
		b0s += load8(qb + i) * x0;
		b1s += load8(qb + i + 8) * x1;
		c0 += load8(qc + i) * x0;
		c1 += load8(qc + i + 8) * x1;
		e0 += load8(qe + i) * x0;
		e1 += load8(qe + i + 8) * x1;
		n0 += x0 * x0;
		n1 += x1 * x1;
	}
	for (; i + 8 <= n; i += 8) {
		v8f x0 = load8(x + i);
		a0 += load8(qa + i) * x0;
		b0s += load8(qb + i) * x0;
		c0 += load8(qc + i) * x0;
		e0 += load8(qe + i) * x0;
		n0 += x0 * x0;
	}
	/* The tail one sum at a time, each in vdb_dot_and_norm_body's order (a loop across
	 * the four sums could be vectorized without the fused multiply-adds it uses). */
	float d[4] = {hsum8(a0 + a1), hsum8(b0s + b1s), hsum8(c0 + c1), hsum8(e0 + e1)};
	float m = hsum8(n0 + n1);
	for (int j = 0; j < 4; j++) {
		for (size_t r = i; r < n; r++)
			d[j] += q[j][r] * x[r];
		dot[j] = d[j];
	}
	for (size_t r = i; r < n; r++)
		m += x[r] * x[r];
	*xx = m;
}

/* ---- graph search ----
 * A graph search computes a distance per neighbour it meets and keeps only the ranking:
 * the results' scores are computed again by the exact kernels above, so these may round
 * differently. With AVX-512 they use 16-float registers (half the loads of the 8-lane
 * kernels); elsewhere they are the kernels above. */

BODY float vdb_dot_graph_body(const float *a, const float *b, size_t n)
{
	return vdb_dot_body(a, b, n);
}

BODY float vdb_l2sq_graph_body(const float *a, const float *b, size_t n)
{
	return vdb_l2sq_body(a, b, n);
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
AVX512 static inline __attribute__((always_inline)) float vdb_dot_graph_wide(const float *a,
									     const float *b,
									     size_t n)
{
	__m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
	size_t i = 0;
	for (; i + 64 <= n; i += 64) {
		s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
		s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
		s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), s2);
		s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), s3);
	}
	for (; i + 16 <= n; i += 16)
		s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
	if (i < n) { /* the last 1-15 floats, masked */
		__mmask16 m = (__mmask16)((1u << (n - i)) - 1);
		s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i),
				     s1);
	}
	return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

AVX512 static inline __attribute__((always_inline)) float vdb_l2sq_graph_wide(const float *a,
									      const float *b,
									      size_t n)
{
	__m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
	size_t i = 0;
	for (; i + 64 <= n; i += 64) {
		__m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
		__m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
		__m512 d2 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32));
		__m512 d3 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48));
		s0 = _mm512_fmadd_ps(d0, d0, s0);
		s1 = _mm512_fmadd_ps(d1, d1, s1);
		s2 = _mm512_fmadd_ps(d2, d2, s2);
		s3 = _mm512_fmadd_ps(d3, d3, s3);
	}
	for (; i + 16 <= n; i += 16) {
		__m512 d = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
		s0 = _mm512_fmadd_ps(d, d, s0);
	}
	if (i < n) {
		__mmask16 m = (__mmask16)((1u << (n - i)) - 1);
		__m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i));
		s1 = _mm512_fmadd_ps(d, d, s1);
	}
	return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}
#endif

/* ---- eight queries at once ----
 * The exact scan of a batch compares each row with eight queries. Without AVX-512 that is
 * the four-query kernels twice. With it, two queries share a 16-float register: lanes 0-7
 * hold one query's eight floats, lanes 8-15 the other's (vdb_pack8 lays them out so, once
 * per batch), and the row's eight floats are broadcast to both halves. Each half then
 * computes exactly what the 8-lane code computes for its query (the same fused
 * multiply-adds, lane for lane, the same accumulators, the same final sums), so results
 * stay bit for bit those of the one-query kernels, with half the instructions. */

void vdb_pack8(const float *const *q, size_t n, float *packed)
{
	size_t n8 = n & ~(size_t)7;
	for (size_t p = 0; p < 4; p++)
		for (size_t i = 0; i < n8; i += 8) {
			memcpy(packed + p * 2 * n8 + 2 * i, q[2 * p] + i, 8 * sizeof(float));
			memcpy(packed + p * 2 * n8 + 2 * i + 8, q[2 * p + 1] + i, 8 * sizeof(float));
		}
}

BODY void vdb_l2sq8_body(const float *packed, const float *const *q, const float *b, size_t n,
			 float *out)
{
	(void)packed;
	vdb_l2sq4_body(q, b, n, out);
	vdb_l2sq4_body(q + 4, b, n, out + 4);
}

BODY void vdb_dot8_body(const float *packed, const float *const *q, const float *b, size_t n,
			float *out)
{
	(void)packed;
	vdb_dot4_body(q, b, n, out);
	vdb_dot4_body(q + 4, b, n, out + 4);
}

BODY void vdb_dot_and_norm8_body(const float *packed, const float *const *q, const float *x,
				 size_t n, float *dot, float *xx)
{
	(void)packed;
	vdb_dot_and_norm4_body(q, x, n, dot, xx);
	vdb_dot_and_norm4_body(q + 4, x, n, dot + 4, xx);
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
/* The two queries' 8-lane sums of a 16-float register, as hsum8 forms them. */
AVX512 static inline __attribute__((always_inline)) void hsum8_pair(__m512 s, float *lo, float *hi)
{
	float f[16];
	v8f a, b;
	memcpy(f, &s, sizeof f);
	memcpy(&a, f, sizeof a);
	memcpy(&b, f + 8, sizeof b);
	*lo = hsum8(a);
	*hi = hsum8(b);
}

#define BCAST8(p) _mm512_broadcast_f32x8(_mm256_loadu_ps(p))

/* vdb_l2sq_body's loop for the pairs of queries P0..P3 (16 accumulators: 4 per pair). */
AVX512 static inline __attribute__((always_inline)) void vdb_l2sq8_wide(const float *packed,
								 const float *const *q,
								 const float *b, size_t n,
								 float *out)
{
	size_t n8 = n & ~(size_t)7, i = 0;
	const float *p0 = packed, *p1 = packed + 2 * n8, *p2 = packed + 4 * n8,
		    *p3 = packed + 6 * n8;
	__m512 z = _mm512_setzero_ps();
	__m512 a0 = z, a1 = z, a2 = z, a3 = z, b0 = z, b1 = z, b2 = z, b3 = z;
	__m512 c0 = z, c1 = z, c2 = z, c3 = z, e0 = z, e1 = z, e2 = z, e3 = z;
#define L2SQ8_STEP(p, s0, s1, s2, s3)                                                         \
	do {                                                                                  \
		__m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(p + 2 * i), x0);                   \
		__m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(p + 2 * i + 16), x1);              \
		__m512 d2 = _mm512_sub_ps(_mm512_loadu_ps(p + 2 * i + 32), x2);              \
		__m512 d3 = _mm512_sub_ps(_mm512_loadu_ps(p + 2 * i + 48), x3);              \
		s0 = _mm512_fmadd_ps(d0, d0, s0);                                             \
		s1 = _mm512_fmadd_ps(d1, d1, s1);                                             \
		s2 = _mm512_fmadd_ps(d2, d2, s2);                                             \
		s3 = _mm512_fmadd_ps(d3, d3, s3);                                             \
	} while (0)
	for (; i + 32 <= n; i += 32) {
		__m512 x0 = BCAST8(b + i), x1 = BCAST8(b + i + 8), x2 = BCAST8(b + i + 16),
		       x3 = BCAST8(b + i + 24);
		L2SQ8_STEP(p0, a0, a1, a2, a3);
		L2SQ8_STEP(p1, b0, b1, b2, b3);
		L2SQ8_STEP(p2, c0, c1, c2, c3);
		L2SQ8_STEP(p3, e0, e1, e2, e3);
	}
#undef L2SQ8_STEP
	for (; i + 8 <= n; i += 8) {
		__m512 x0 = BCAST8(b + i), d;
		d = _mm512_sub_ps(_mm512_loadu_ps(p0 + 2 * i), x0);
		a0 = _mm512_fmadd_ps(d, d, a0);
		d = _mm512_sub_ps(_mm512_loadu_ps(p1 + 2 * i), x0);
		b0 = _mm512_fmadd_ps(d, d, b0);
		d = _mm512_sub_ps(_mm512_loadu_ps(p2 + 2 * i), x0);
		c0 = _mm512_fmadd_ps(d, d, c0);
		d = _mm512_sub_ps(_mm512_loadu_ps(p3 + 2 * i), x0);
		e0 = _mm512_fmadd_ps(d, d, e0);
	}
	float t[8];
	hsum8_pair(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)), &t[0], &t[1]);
	hsum8_pair(_mm512_add_ps(_mm512_add_ps(b0, b1), _mm512_add_ps(b2, b3)), &t[2], &t[3]);
	hsum8_pair(_mm512_add_ps(_mm512_add_ps(c0, c1), _mm512_add_ps(c2, c3)), &t[4], &t[5]);
	hsum8_pair(_mm512_add_ps(_mm512_add_ps(e0, e1), _mm512_add_ps(e2, e3)), &t[6], &t[7]);
	for (int j = 0; j < 8; j++) {
		for (size_t r = i; r < n; r++) {
			float d = q[j][r] - b[r];
			t[j] += d * d;
		}
		out[j] = t[j];
	}
}

/* vdb_dot_body's loop for the pairs of queries. */
AVX512 static inline __attribute__((always_inline)) void vdb_dot8_wide(const float *packed,
								const float *const *q,
								const float *b, size_t n, float *out)
{
	size_t n8 = n & ~(size_t)7, i = 0;
	const float *p0 = packed, *p1 = packed + 2 * n8, *p2 = packed + 4 * n8,
		    *p3 = packed + 6 * n8;
	__m512 z = _mm512_setzero_ps();
	__m512 a0 = z, a1 = z, a2 = z, a3 = z, b0 = z, b1 = z, b2 = z, b3 = z;
	__m512 c0 = z, c1 = z, c2 = z, c3 = z, e0 = z, e1 = z, e2 = z, e3 = z;
#define DOT8_STEP(p, s0, s1, s2, s3)                                                          \
	do {                                                                                  \
		s0 = _mm512_fmadd_ps(_mm512_loadu_ps(p + 2 * i), x0, s0);                    \
		s1 = _mm512_fmadd_ps(_mm512_loadu_ps(p + 2 * i + 16), x1, s1);               \
		s2 = _mm512_fmadd_ps(_mm512_loadu_ps(p + 2 * i + 32), x2, s2);               \
		s3 = _mm512_fmadd_ps(_mm512_loadu_ps(p + 2 * i + 48), x3, s3);               \
	} while (0)
	for (; i + 32 <= n; i += 32) {
		__m512 x0 = BCAST8(b + i), x1 = BCAST8(b + i + 8), x2 = BCAST8(b + i + 16),
		       x3 = BCAST8(b + i + 24);
		DOT8_STEP(p0, a0, a1, a2, a3);
		DOT8_STEP(p1, b0, b1, b2, b3);
		DOT8_STEP(p2, c0, c1, c2, c3);
		DOT8_STEP(p3, e0, e1, e2, e3);
	}
#undef DOT8_STEP
	for (; i + 8 <= n; i += 8) {
		__m512 x0 = BCAST8(b + i);
		a0 = _mm512_fmadd_ps(_mm512_loadu_ps(p0 + 2 * i), x0, a0);
		b0 = _mm512_fmadd_ps(_mm512_loadu_ps(p1 + 2 * i), x0, b0);
		c0 = _mm512_fmadd_ps(_mm512_loadu_ps(p2 + 2 * i), x0, c0);
		e0 = _mm512_fmadd_ps(_mm512_loadu_ps(p3 + 2 * i), x0, e0);
	}
	float t[8];
	hsum8_pair(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)), &t[0], &t[1]);
	hsum8_pair(_mm512_add_ps(_mm512_add_ps(b0, b1), _mm512_add_ps(b2, b3)), &t[2], &t[3]);
	hsum8_pair(_mm512_add_ps(_mm512_add_ps(c0, c1), _mm512_add_ps(c2, c3)), &t[4], &t[5]);
	hsum8_pair(_mm512_add_ps(_mm512_add_ps(e0, e1), _mm512_add_ps(e2, e3)), &t[6], &t[7]);
	for (int j = 0; j < 8; j++) {
		for (size_t r = i; r < n; r++)
			t[j] += q[j][r] * b[r];
		out[j] = t[j];
	}
}

/* vdb_dot_and_norm_body's loop for the pairs of queries (2 accumulators per pair), the
 * row's norm in 8 lanes once. */
AVX512 static inline __attribute__((always_inline)) void vdb_dot_and_norm8_wide(const float *packed,
									 const float *const *q,
									 const float *x, size_t n,
									 float *dot, float *xx)
{
	size_t n8 = n & ~(size_t)7, i = 0;
	const float *p0 = packed, *p1 = packed + 2 * n8, *p2 = packed + 4 * n8,
		    *p3 = packed + 6 * n8;
	__m512 z = _mm512_setzero_ps();
	__m512 a0 = z, a1 = z, b0 = z, b1 = z, c0 = z, c1 = z, e0 = z, e1 = z;
	v8f n0 = {0}, n1 = {0};
	for (; i + 16 <= n; i += 16) {
		v8f y0 = load8(x + i), y1 = load8(x + i + 8);
		__m512 x0 = _mm512_broadcast_f32x8((__m256)y0), x1 = _mm512_broadcast_f32x8((__m256)y1);
		a0 = _mm512_fmadd_ps(_mm512_loadu_ps(p0 + 2 * i), x0, a0);
		a1 = _mm512_fmadd_ps(_mm512_loadu_ps(p0 + 2 * i + 16), x1, a1);
		b0 = _mm512_fmadd_ps(_mm512_loadu_ps(p1 + 2 * i), x0, b0);
		b1 = _mm512_fmadd_ps(_mm512_loadu_ps(p1 + 2 * i + 16), x1, b1);
		c0 = _mm512_fmadd_ps(_mm512_loadu_ps(p2 + 2 * i), x0, c0);
		c1 = _mm512_fmadd_ps(_mm512_loadu_ps(p2 + 2 * i + 16), x1, c1);
		e0 = _mm512_fmadd_ps(_mm512_loadu_ps(p3 + 2 * i), x0, e0);
		e1 = _mm512_fmadd_ps(_mm512_loadu_ps(p3 + 2 * i + 16), x1, e1);
		n0 += y0 * y0;
		n1 += y1 * y1;
	}
	for (; i + 8 <= n; i += 8) {
		v8f y0 = load8(x + i);
		__m512 x0 = _mm512_broadcast_f32x8((__m256)y0);
		a0 = _mm512_fmadd_ps(_mm512_loadu_ps(p0 + 2 * i), x0, a0);
		b0 = _mm512_fmadd_ps(_mm512_loadu_ps(p1 + 2 * i), x0, b0);
		c0 = _mm512_fmadd_ps(_mm512_loadu_ps(p2 + 2 * i), x0, c0);
		e0 = _mm512_fmadd_ps(_mm512_loadu_ps(p3 + 2 * i), x0, e0);
		n0 += y0 * y0;
	}
	float d[8];
	hsum8_pair(_mm512_add_ps(a0, a1), &d[0], &d[1]);
	hsum8_pair(_mm512_add_ps(b0, b1), &d[2], &d[3]);
	hsum8_pair(_mm512_add_ps(c0, c1), &d[4], &d[5]);
	hsum8_pair(_mm512_add_ps(e0, e1), &d[6], &d[7]);
	float m = hsum8(n0 + n1);
	for (int j = 0; j < 8; j++) {
		for (size_t r = i; r < n; r++)
			d[j] += q[j][r] * x[r];
		dot[j] = d[j];
	}
	for (size_t r = i; r < n; r++)
		m += x[r] * x[r];
	*xx = m;
}
#undef BCAST8
#endif

/* Rows of a scan are prefetched about 8 KiB ahead: the hardware's stream prefetcher stops
 * at each 4 KiB page, and on a freshly mapped segment every page is a new one (measured on
 * 1M x 128: about 16% less CPU time per scan than without; 2 KiB or 16 KiB ahead did
 * worse). A prefetch never faults, so running past the last row is harmless. */
#define SCAN_PREFETCH_ROWS(dim) ((8192 / ((dim) * sizeof(float))) + 1)

static inline __attribute__((always_inline)) void prefetch_row(const float *x, size_t dim)
{
	for (size_t b = 0; b < dim * sizeof(float); b += 64)
		__builtin_prefetch((const char *)x + b);
}

/* A query against n consecutive rows: one call (and one dispatch) for a block of rows in an
 * exact scan, instead of one per row, with each row's sums formed by the single-row body. */
BODY void vdb_l2sq_rows_body(const float *q, const float *x, size_t rows, size_t dim, float *out)
{
	size_t ahead = SCAN_PREFETCH_ROWS(dim);
	for (size_t r = 0; r < rows; r++) {
		prefetch_row(x + (r + ahead) * dim, dim);
		out[r] = vdb_l2sq_body(q, x + r * dim, dim);
	}
}

BODY void vdb_dot_rows_body(const float *q, const float *x, size_t rows, size_t dim, float *out)
{
	size_t ahead = SCAN_PREFETCH_ROWS(dim);
	for (size_t r = 0; r < rows; r++) {
		prefetch_row(x + (r + ahead) * dim, dim);
		out[r] = vdb_dot_body(q, x + r * dim, dim);
	}
}

BODY void vdb_dot_and_norm_rows_body(const float *q, const float *x, size_t rows, size_t dim,
				     float *dot, float *xx)
{
	size_t ahead = SCAN_PREFETCH_ROWS(dim);
	for (size_t r = 0; r < rows; r++) {
		prefetch_row(x + (r + ahead) * dim, dim);
		vdb_dot_and_norm_body(q, x + r * dim, dim, &dot[r], &xx[r]);
	}
}

DISPATCH(float, vdb_dot, (const float *a, const float *b, size_t n), (a, b, n))
DISPATCH(void, vdb_dot_and_norm_rows,
	 (const float *q, const float *x, size_t rows, size_t dim, float *dot, float *xx),
	 (q, x, rows, dim, dot, xx))
DISPATCH(void, vdb_l2sq_rows, (const float *q, const float *x, size_t rows, size_t dim, float *out),
	 (q, x, rows, dim, out))
DISPATCH(void, vdb_dot_rows, (const float *q, const float *x, size_t rows, size_t dim, float *out),
	 (q, x, rows, dim, out))
DISPATCH(void, vdb_l2sq4, (const float *const *q, const float *b, size_t n, float *out),
	 (q, b, n, out))
DISPATCH(void, vdb_dot4, (const float *const *q, const float *b, size_t n, float *out),
	 (q, b, n, out))
DISPATCH(void, vdb_dot_and_norm4,
	 (const float *const *q, const float *x, size_t n, float *dot, float *xx),
	 (q, x, n, dot, xx))
DISPATCH_WIDE(float, vdb_dot_graph, (const float *a, const float *b, size_t n), (a, b, n))
DISPATCH_WIDE(float, vdb_l2sq_graph, (const float *a, const float *b, size_t n), (a, b, n))
DISPATCH_WIDE(void, vdb_l2sq8,
	      (const float *packed, const float *const *q, const float *b, size_t n, float *out),
	      (packed, q, b, n, out))
DISPATCH_WIDE(void, vdb_dot8,
	      (const float *packed, const float *const *q, const float *b, size_t n, float *out),
	      (packed, q, b, n, out))
DISPATCH_WIDE(void, vdb_dot_and_norm8,
	      (const float *packed, const float *const *q, const float *x, size_t n, float *dot,
	       float *xx),
	      (packed, q, x, n, dot, xx))
DISPATCH(float, vdb_l2sq, (const float *a, const float *b, size_t n), (a, b, n))
DISPATCH(void, vdb_dot_and_norm, (const float *q, const float *x, size_t n, float *dot, float *xx),
	 (q, x, n, dot, xx))


/* Every compiled version this CPU can run (the tests hold each to the portable one). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define KERNELS(label, v)                                                                     \
	(vdb_kernels)                                                                         \
	{                                                                                     \
		label, vdb_dot_##v, vdb_l2sq_##v, vdb_dot_and_norm_##v, vdb_l2sq4_##v,        \
		    vdb_l2sq_rows_##v, vdb_dot_rows_##v, vdb_dot_and_norm_rows_##v,           \
		    vdb_dot4_##v, vdb_dot_and_norm4_##v, vdb_l2sq8_##v, vdb_dot8_##v,         \
		    vdb_dot_and_norm8_##v, vdb_dot_graph_##v, vdb_l2sq_graph_##v              \
	}
size_t vdb_kernel_versions(vdb_kernels out[3])
{
	size_t n = 0;
	__builtin_cpu_init();
	out[n++] = KERNELS("portable", base);
	if (cpu_has_avx2())
		out[n++] = KERNELS("avx2", avx2);
	if (cpu_has_avx512())
		out[n++] = KERNELS("avx512", avx512);
	return n;
}
#else
size_t vdb_kernel_versions(vdb_kernels out[3])
{
	out[0] = (vdb_kernels){"portable", vdb_dot, vdb_l2sq, vdb_dot_and_norm, vdb_l2sq4,
			       vdb_l2sq_rows, vdb_dot_rows, vdb_dot_and_norm_rows, vdb_dot4,
			       vdb_dot_and_norm4, vdb_l2sq8, vdb_dot8, vdb_dot_and_norm8,
			       vdb_dot_graph, vdb_l2sq_graph};
	return 1;
}
#endif
