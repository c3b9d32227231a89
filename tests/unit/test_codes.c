/* Unit tests of quantized codes: every compiled kernel against the portable one and an
 * independent reference (exact integers, so bit for bit), reads that stop at the row's end,
 * what training learns (quantiles that ignore outliers, centres), how close the estimated
 * distances are to the true ones, and the checks that refuse a damaged section. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "index/codes.h"
#include "util/buf.h"
#include "vdb.h"

static uint64_t rng_state;

static double rnd(void)
{
	rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
	return (double)(rng_state >> 11) / 9007199254740992.0;
}

static double gauss(void)
{
	double u = rnd() + 1e-12, v = rnd();
	return sqrt(-2 * log(u)) * cos(2 * M_PI * v);
}

/* n bytes placed so that the byte after them is the first of an inaccessible page: a
 * kernel reading past the row's end faults. */
static unsigned char *at_page_end(size_t n, void **map, size_t *maplen)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	*maplen = ((n + page - 1) / page + 1) * page;
	*map = mmap(NULL, *maplen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(*map, MAP_FAILED);
	unsigned char *guard = (unsigned char *)*map + *maplen - page;
	cr_assert_eq(mprotect(guard, page, PROT_NONE), 0);
	return guard - n;
}

Test(codes, every_cpu_version_gives_the_exact_integer_sums)
{
	vdb_code_kernels v[4];
	size_t nv = vdb_code_kernel_versions(v);
	cr_assert_geq(nv, 1);
	cr_assert_str_eq(v[0].name, "portable");
	for (size_t k = 0; k < nv; k++)
		fprintf(stderr, "code kernels: testing the %s version\n", v[k].name);
	rng_state = 23;
	size_t dims[] = {1, 5, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 384, 768, 1000, 1536, 4096};
	for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++) {
		size_t n = dims[di], qlen = vdb_code_query_len((uint32_t)n);
		cr_assert_geq(qlen, 2 * n);
		cr_assert_eq(qlen % 128, 0);
		/* The largest query values the preparation may produce at this dimension. */
		double bound = 2147483647.0 / ((double)n * 255);
		int qmax = bound < VDB_CODE_QMAX ? (int)bound : VDB_CODE_QMAX;
		int16_t *q = calloc(qlen, sizeof *q);
		void *map;
		size_t maplen;
		size_t bits_len = ((n + 7) / 8 + 7) & ~(size_t)7; /* padded, as a row stores them */
		unsigned char *c = at_page_end(n, &map, &maplen);
		void *bmap;
		size_t bmaplen;
		unsigned char *b = at_page_end(bits_len, &bmap, &bmaplen);
		for (int rep = 0; rep < 30; rep++) {
			int extreme = rep < 3; /* every value at its bound: the sums' worst case */
			for (size_t i = 0; i < n; i++) {
				q[i] = (int16_t)(extreme ? (rep == 1 ? -qmax : qmax)
							 : (int)lrint((rnd() * 2 - 1) * qmax));
				c[i] = (unsigned char)(extreme ? 255 : (int)(rnd() * 256));
			}
			vdb_code_query_split(q, (uint32_t)n);
			memset(b, 0, bits_len);
			for (size_t i = 0; i < n; i++)
				if (extreme || rnd() < 0.5)
					b[i / 8] |= (unsigned char)(1u << (i % 8));
			int64_t ref_dot = 0, ref_bits = 0;
			for (size_t i = 0; i < n; i++) {
				ref_dot += (int64_t)c[i] * q[i];
				ref_bits += (b[i / 8] >> (i % 8) & 1) ? q[i] : 0;
			}
			for (size_t k = 0; k < nv; k++) {
				cr_assert_eq(v[k].dot_u8(c, q, n), ref_dot, "%s dot_u8, dim %zu", v[k].name, n);
				cr_assert_eq(v[k].sum_bits(b, q, n), ref_bits, "%s sum_bits, dim %zu",
					     v[k].name, n);
			}
			cr_assert_eq(vdb_codes_dot_u8(c, q, n), ref_dot);
			cr_assert_eq(vdb_codes_sum_bits(b, q, n), ref_bits);
		}
		munmap(map, maplen);
		munmap(bmap, bmaplen);
		free(q);
	}
}

/* Trains on rows x[0..n) (kept: training reorders a copy), opens the section and encodes
 * every row into codes[]. */
static vdb_buf train_and_open(vdb_quantize kind, vdb_metric metric, uint32_t dim, const float *x,
			      size_t n, vdb_codes *c)
{
	float *copy = malloc(n * dim * sizeof *copy);
	memcpy(copy, x, n * dim * sizeof *copy);
	vdb_buf sec = VDB_BUF_INIT;
	vdb_error err;
	cr_assert_eq(vdb_codes_train(kind, metric, dim, n, copy, n, &sec, &err), VDB_OK);
	free(copy);
	size_t head = sec.len;
	uint32_t stride = vdb_codes_stride(kind, metric, dim);
	unsigned char *row = malloc(stride);
	float *params = malloc(sec.len);
	memcpy(params, sec.data + VDB_CODES_HEAD, sec.len - VDB_CODES_HEAD);
	vdb_codes_encoder enc;
	cr_assert_eq(vdb_codes_encoder_init(&enc, kind, metric, dim, params, &err), VDB_OK);
	for (size_t i = 0; i < n; i++) {
		vdb_codes_encode(&enc, x + i * dim, row);
		cr_assert_eq(vdb_buf_append(&sec, row, stride), 0);
	}
	vdb_codes_encoder_free(&enc);
	free(params);
	free(row);
	cr_assert_eq(sec.len, vdb_codes_section_size(kind, metric, dim, n));
	cr_assert_eq(vdb_codes_open((const unsigned char *)sec.data, head, (const unsigned char *)sec.data, sec.len, dim, n, c, "seg", &err),
		     VDB_OK, "%s", err.message);
	return sec;
}

Test(codes, int8_learns_quantiles_that_ignore_outliers)
{
	enum { N = 4000, DIM = 8 };
	static float x[N * DIM];
	rng_state = 5;
	for (size_t i = 0; i < N * DIM; i++)
		x[i] = (float)rnd(); /* uniform in [0, 1) */
	for (size_t i = 0; i < 3; i++)
		x[(i * 997) * DIM + 2] = 1e6f; /* three wild values in dimension 2 */
	vdb_codes c;
	vdb_buf sec = train_and_open(VDB_QUANTIZE_INT8, VDB_METRIC_L2, DIM, x, N, &c);
	for (uint32_t d = 0; d < DIM; d++) {
		/* 0.1% of 4000 is 4 values at each end: the outliers are past the quantile. */
		cr_assert_lt(c.lo[d], 0.01f, "dim %u", d);
		cr_assert_gt(c.lo[d] + 255 * c.step[d], 0.99f, "dim %u", d);
		cr_assert_lt(c.lo[d] + 255 * c.step[d], 1.0f, "dim %u", d);
	}
	/* Every value inside the range decodes to within half a step; outliers clamp to 255. */
	for (size_t i = 0; i < N; i++)
		for (uint32_t d = 0; d < DIM; d++) {
			float v = x[i * DIM + d];
			uint8_t code = c.data[i * c.stride + d];
			float back = c.lo[d] + c.step[d] * code;
			if (v >= c.lo[d] && v <= c.lo[d] + 255 * c.step[d])
				cr_assert_leq(fabsf(back - v), c.step[d] * 0.5f + 1e-6f);
			else if (v > 1)
				cr_assert_eq(code, 255);
		}
	vdb_buf_free(&sec);
}

/* Clustered, unit-length data as embeddings have. */
static float *embeddings(size_t n, uint32_t dim, uint64_t seed)
{
	float *x = malloc(n * dim * sizeof *x);
	static float centres[8][1536];
	rng_state = 99;
	for (int k = 0; k < 8; k++)
		for (uint32_t d = 0; d < dim; d++)
			centres[k][d] = (float)gauss();
	rng_state = seed;
	for (size_t i = 0; i < n; i++) {
		int k = (int)(rnd() * 8);
		double nn = 0;
		for (uint32_t d = 0; d < dim; d++) {
			x[i * dim + d] = centres[k][d] + (float)gauss();
			nn += (double)x[i * dim + d] * x[i * dim + d];
		}
		for (uint32_t d = 0; d < dim; d++)
			x[i * dim + d] = (float)(x[i * dim + d] / sqrt(nn));
	}
	return x;
}

static double true_distance(vdb_metric m, const float *q, const float *x, uint32_t dim)
{
	double dot = 0, l2 = 0, qq = 0, xx = 0;
	for (uint32_t d = 0; d < dim; d++) {
		dot += (double)q[d] * x[d];
		l2 += ((double)q[d] - x[d]) * ((double)q[d] - x[d]);
		qq += (double)q[d] * q[d];
		xx += (double)x[d] * x[d];
	}
	return m == VDB_METRIC_L2 ? l2 : m == VDB_METRIC_DOT ? -dot : -dot / sqrt(qq * xx);
}

/* The estimated distances stay close to the true ones on average (values clamped at the
 * quantiles can be far off: rescoring is there for them), and rank like them: of the 10
 * rows the codes rank best, most are among the true best 30 (which is what oversampling
 * rescores). */
static void check_estimates(vdb_quantize kind, uint32_t dim, double max_err, double min_hit)
{
	enum { N = 2000, NQ = 20 };
	float *x = embeddings(N, dim, 1), *qs = embeddings(NQ, dim, 2);
	vdb_metric metrics[] = {VDB_METRIC_L2, VDB_METRIC_COSINE, VDB_METRIC_DOT};
	for (int mi = 0; mi < 3; mi++) {
		vdb_metric m = metrics[mi];
		vdb_codes c;
		vdb_buf sec = train_and_open(kind, m, dim, x, N, &c);
		int16_t *qbuf = malloc(vdb_code_query_len(dim) * sizeof *qbuf);
		double worst = 0, sum = 0, hits = 0;
		for (int qi = 0; qi < NQ; qi++) {
			const float *q = qs + (size_t)qi * dim;
			double qq = 0;
			for (uint32_t d = 0; d < dim; d++)
				qq += (double)q[d] * q[d];
			vdb_code_query cq = {.q = qbuf};
			vdb_code_query_prepare(&cq, &c, q, qq, sqrt(qq));
			static double est[N], tru[N];
			for (size_t i = 0; i < N; i++) {
				est[i] = vdb_code_distance(&cq, i);
				tru[i] = true_distance(m, q, x + i * dim, dim);
				sum += fabs(est[i] - tru[i]);
				if (fabs(est[i] - tru[i]) > worst)
					worst = fabs(est[i] - tru[i]);
			}
			/* The true rank of each of the codes' best 10. */
			for (int t = 0; t < 10; t++) {
				size_t best = 0;
				for (size_t i = 1; i < N; i++)
					if (est[i] < est[best])
						best = i;
				size_t better = 0;
				for (size_t i = 0; i < N; i++)
					better += tru[i] < tru[best];
				hits += better < 30;
				est[best] = INFINITY;
			}
		}
		double mean = sum / (N * NQ);
		fprintf(stderr, "%s %s, %u dims: distance error %.5f on average, %.4f at most; %.0f%% "
				"of the best 10 in the true best 30\n",
			vdb_quantize_name(kind), vdb_metric_name(m), dim, mean, worst,
			hits / (NQ * 10) * 100);
		cr_assert_lt(mean, max_err, "%s %s", vdb_quantize_name(kind), vdb_metric_name(m));
		cr_assert_geq(hits / (NQ * 10), min_hit, "%s %s", vdb_quantize_name(kind),
			      vdb_metric_name(m));
		free(qbuf);
		vdb_buf_free(&sec);
	}
	free(x);
	free(qs);
}

Test(codes, int8_estimates_are_close_and_rank_like_the_true_distances)
{
	check_estimates(VDB_QUANTIZE_INT8, 128, 0.005, 0.95);
}

Test(codes, binary_estimates_rank_like_the_true_distances)
{
	check_estimates(VDB_QUANTIZE_BINARY, 512, 0.2, 0.5);
}

Test(codes, a_damaged_section_is_refused)
{
	enum { N = 100, DIM = 16 };
	float *x = embeddings(N, DIM, 3);
	vdb_codes c;
	vdb_error err;
	vdb_buf sec = train_and_open(VDB_QUANTIZE_INT8, VDB_METRIC_L2, DIM, x, N, &c);
	size_t head = VDB_CODES_HEAD + 8 * DIM;
	/* Wrong dimension or rows for the segment, a length that does not match. */
	cr_assert_eq(vdb_codes_open((const unsigned char *)sec.data, head, (const unsigned char *)sec.data, sec.len, DIM + 1, N, &c, "s", &err),
		     VDB_ECORRUPT);
	cr_assert_eq(vdb_codes_open((const unsigned char *)sec.data, head, (const unsigned char *)sec.data, sec.len, DIM, N + 1, &c, "s", &err),
		     VDB_ECORRUPT);
	cr_assert_eq(vdb_codes_open((const unsigned char *)sec.data, head, (const unsigned char *)sec.data, sec.len - 1, DIM, N, &c, "s", &err),
		     VDB_ECORRUPT);
	cr_assert_eq(vdb_codes_open((const unsigned char *)sec.data, 16, (const unsigned char *)sec.data, sec.len, DIM, N, &c, "s", &err),
		     VDB_ECORRUPT);
	cr_assert(strstr(err.message, "s: damaged codes"), "%s", err.message);
	/* Parameters that would make every distance NaN, or a negative step. */
	float bad[] = {NAN, INFINITY, -1.0f};
	for (int i = 0; i < 3; i++) {
		unsigned char copy[VDB_CODES_HEAD + 8 * DIM];
		memcpy(copy, sec.data, sizeof copy);
		size_t at = VDB_CODES_HEAD + 4 * (i == 2 ? DIM + 3 : 5);
		memcpy(copy + at, &bad[i], 4);
		cr_assert_eq(vdb_codes_open(copy, sizeof copy, (const unsigned char *)sec.data, sec.len, DIM, N, &c, "s", &err),
			     VDB_ECORRUPT, "value %d", i);
	}
	/* An unknown kind. */
	unsigned char copy[VDB_CODES_HEAD + 8 * DIM];
	memcpy(copy, sec.data, sizeof copy);
	copy[0] = 7;
	cr_assert_eq(vdb_codes_open(copy, sizeof copy, (const unsigned char *)sec.data, sec.len, DIM, N, &c, "s", &err),
		     VDB_ECORRUPT);
	vdb_buf_free(&sec);
	free(x);
}
