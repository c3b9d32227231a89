/* Unit tests of the index layer: distance kernels against a double-precision reference,
 * the top-k heap's ordering and tie-breaking, and exact search against brute force for
 * every metric, across segments, deletions and the log tail. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "index/distance.h"
#include "index/topk.h"
#include "vdb.h"

static uint64_t rng_state;

static double rnd(void)
{
	rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
	return (double)(rng_state >> 11) / 9007199254740992.0;
}

Test(distance, kernels_match_double_reference)
{
	rng_state = 7;
	size_t dims[] = {1, 3, 7, 8, 9, 16, 31, 128, 385, 1536};
	for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++) {
		size_t n = dims[d];
		float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
		for (int rep = 0; rep < 50; rep++) {
			double dot = 0, l2 = 0, bb = 0, mag = 0;
			for (size_t i = 0; i < n; i++) {
				a[i] = (float)(rnd() * 2 - 1);
				b[i] = (float)(rnd() * 2 - 1);
				dot += (double)a[i] * b[i];
				l2 += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
				bb += (double)b[i] * b[i];
				mag += fabs((double)a[i] * b[i]);
			}
			float fd, fn;
			vdb_dot_and_norm(a, b, n, &fd, &fn);
			/* Error bound relative to the sum of magnitudes (cancellation-safe). */
			cr_assert_leq(fabs(vdb_dot(a, b, n) - dot), 1e-5 * (mag + 1), "dim %zu", n);
			cr_assert_leq(fabs(fd - dot), 1e-5 * (mag + 1));
			cr_assert_leq(fabs(vdb_l2sq(a, b, n) - l2), 1e-5 * (l2 + 1));
			cr_assert_leq(fabs(fn - bb), 1e-5 * (bb + 1));
			/* The row-block kernels give each row's vdb_l2sq / vdb_dot bit for bit. */
			const float *rows[3] = {a, b, a};
			float block[3 * 1536], l2r[3], dotr[3];
			for (int r = 0; r < 3; r++)
				memcpy(block + r * n, rows[r], n * sizeof(float));
			float cdot[3], cxx[3];
			vdb_l2sq_rows(b, block, 3, n, l2r);
			vdb_dot_rows(b, block, 3, n, dotr);
			vdb_dot_and_norm_rows(b, block, 3, n, cdot, cxx);
			for (int r = 0; r < 3; r++) {
				float l2w = vdb_l2sq(b, rows[r], n), dotw = vdb_dot(b, rows[r], n);
				float cdw, cxw;
				vdb_dot_and_norm(b, rows[r], n, &cdw, &cxw);
				cr_assert_eq(memcmp(&l2r[r], &l2w, sizeof l2w), 0, "dim %zu row %d", n, r);
				cr_assert_eq(memcmp(&dotr[r], &dotw, sizeof dotw), 0, "dim %zu row %d", n,
					     r);
				cr_assert_eq(memcmp(&cdot[r], &cdw, sizeof cdw), 0, "dim %zu row %d", n, r);
				cr_assert_eq(memcmp(&cxx[r], &cxw, sizeof cxw), 0, "dim %zu row %d", n, r);
			}
			/* The four-query kernel gives each query's vdb_l2sq bit for bit. */
			float *qs4[4] = {a, b, a, b}, out[4];
			const float *const *q4 = (const float *const *)qs4;
			vdb_l2sq4(q4, rep & 1 ? a : b, n, out);
			for (int j = 0; j < 4; j++) {
				float want = vdb_l2sq(qs4[j], rep & 1 ? a : b, n);
				cr_assert_eq(memcmp(&out[j], &want, sizeof want), 0, "dim %zu query %d",
					     n, j);
			}
		}
		free(a);
		free(b);
	}
}

/* Every compiled version of the kernels this CPU runs (AVX-512, AVX2+FMA) agrees with the
 * portable one within 1e-5 relative: of the value for squared L2 and norms (sums of
 * non-negative terms), of the sum of the terms' magnitudes for dot products (whose value
 * may cancel to near 0). Each version's row-block and four-query kernels give its
 * single-row results bit for bit. */
Test(distance, every_cpu_version_agrees_with_the_portable_one)
{
	vdb_kernels v[3];
	size_t nv = vdb_kernel_versions(v);
	cr_assert_geq(nv, 1);
	cr_assert_str_eq(v[0].name, "portable");
	for (size_t k = 0; k < nv; k++)
		fprintf(stderr, "distance kernels: testing the %s version\n", v[k].name);
	rng_state = 17;
	size_t dims[] = {1, 5, 8, 15, 16, 33, 100, 128, 768, 1536};
	enum { ROWS = 5 };
	static float q[1536], x[ROWS * 1536];
	for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++) {
		size_t n = dims[d];
		for (int rep = 0; rep < 40; rep++) {
			/* Magnitudes from 1e-3 to 1e3, as embeddings and raw features have. */
			double scale = pow(10, rnd() * 6 - 3);
			for (size_t i = 0; i < n; i++)
				q[i] = (float)((rnd() * 2 - 1) * scale);
			for (size_t i = 0; i < ROWS * n; i++)
				x[i] = (float)((rnd() * 2 - 1) * scale);
			float base_dot[ROWS], base_l2[ROWS], base_xx[ROWS];
			double mag[ROWS];
			for (int r = 0; r < ROWS; r++) {
				const float *xr = x + r * n;
				float dd;
				base_dot[r] = v[0].dot(q, xr, n);
				base_l2[r] = v[0].l2sq(q, xr, n);
				v[0].dot_and_norm(q, xr, n, &dd, &base_xx[r]);
				mag[r] = 0;
				for (size_t i = 0; i < n; i++)
					mag[r] += fabs((double)q[i] * xr[i]);
			}
			for (size_t k = 0; k < nv; k++) {
				float rd[ROWS], rl[ROWS], rdn[ROWS], rxx[ROWS], four[4];
				v[k].dot_rows(q, x, ROWS, n, rd);
				v[k].l2sq_rows(q, x, ROWS, n, rl);
				v[k].dot_and_norm_rows(q, x, ROWS, n, rdn, rxx);
				const float *q4[4] = {x, x + n, q, x + 2 * n};
				v[k].l2sq4(q4, x + 3 * n, n, four);
				for (int j = 0; j < 4; j++) {
					float one = v[k].l2sq(q4[j], x + 3 * n, n);
					cr_assert_eq(memcmp(&four[j], &one, sizeof one), 0, "%s l2sq4, dim %zu",
						     v[k].name, n);
				}
				float dots[4], xx4;
				v[k].dot4(q4, x + 3 * n, n, four);
				v[k].dot_and_norm4(q4, x + 3 * n, n, dots, &xx4);
				for (int j = 0; j < 4; j++) {
					float one = v[k].dot(q4[j], x + 3 * n, n), dn, xx1;
					v[k].dot_and_norm(q4[j], x + 3 * n, n, &dn, &xx1);
					cr_assert_eq(memcmp(&four[j], &one, sizeof one), 0, "%s dot4, dim %zu",
						     v[k].name, n);
					cr_assert_eq(memcmp(&dots[j], &dn, sizeof dn), 0,
						     "%s dot_and_norm4, dim %zu", v[k].name, n);
					cr_assert_eq(memcmp(&xx4, &xx1, sizeof xx1), 0,
						     "%s dot_and_norm4 norm, dim %zu", v[k].name, n);
				}
				/* Eight queries, two of them the same, as vdb_pack8 packs them. */
				const float *q8[8] = {x, x + n, q, x + 2 * n, x + 4 * n, q, x + 3 * n, x};
				float packed[8 * 1536], l8[8], d8[8], dn8[8], xx8;
				vdb_pack8(q8, n, packed);
				v[k].l2sq8(packed, q8, x + 4 * n, n, l8);
				v[k].dot8(packed, q8, x + 4 * n, n, d8);
				v[k].dot_and_norm8(packed, q8, x + 4 * n, n, dn8, &xx8);
				for (int j = 0; j < 8; j++) {
					float l1 = v[k].l2sq(q8[j], x + 4 * n, n);
					float d1 = v[k].dot(q8[j], x + 4 * n, n), dn, xx1;
					v[k].dot_and_norm(q8[j], x + 4 * n, n, &dn, &xx1);
					cr_assert_eq(memcmp(&l8[j], &l1, sizeof l1), 0, "%s l2sq8[%d], dim %zu",
						     v[k].name, j, n);
					cr_assert_eq(memcmp(&d8[j], &d1, sizeof d1), 0, "%s dot8[%d], dim %zu",
						     v[k].name, j, n);
					cr_assert_eq(memcmp(&dn8[j], &dn, sizeof dn), 0,
						     "%s dot_and_norm8[%d], dim %zu", v[k].name, j, n);
					cr_assert_eq(memcmp(&xx8, &xx1, sizeof xx1), 0,
						     "%s dot_and_norm8 norm, dim %zu", v[k].name, n);
				}
				for (int r = 0; r < ROWS; r++) {
					const float *xr = x + r * n;
					float d1 = v[k].dot(q, xr, n), l1 = v[k].l2sq(q, xr, n), dn, xx;
					v[k].dot_and_norm(q, xr, n, &dn, &xx);
					cr_assert_eq(memcmp(&rd[r], &d1, sizeof d1), 0, "%s dot_rows", v[k].name);
					cr_assert_eq(memcmp(&rl[r], &l1, sizeof l1), 0, "%s l2sq_rows", v[k].name);
					cr_assert_eq(memcmp(&rdn[r], &dn, sizeof dn), 0, "%s dot_and_norm_rows",
						     v[k].name);
					cr_assert_eq(memcmp(&rxx[r], &xx, sizeof xx), 0, "%s dot_and_norm_rows",
						     v[k].name);
					cr_assert_leq(fabs((double)d1 - base_dot[r]), 1e-5 * mag[r],
						      "%s dot, dim %zu: %g vs portable %g", v[k].name, n, d1,
						      base_dot[r]);
					cr_assert_leq(fabs((double)dn - base_dot[r]), 1e-5 * mag[r],
						      "%s dot_and_norm, dim %zu", v[k].name, n);
					cr_assert_leq(fabs((double)l1 - base_l2[r]), 1e-5 * base_l2[r],
						      "%s l2sq, dim %zu: %g vs portable %g", v[k].name, n, l1,
						      base_l2[r]);
					cr_assert_leq(fabs((double)xx - base_xx[r]), 1e-5 * base_xx[r],
						      "%s norm, dim %zu", v[k].name, n);
					/* The graph kernels may round otherwise, within the same bounds. */
					float dg = v[k].dot_graph(q, xr, n), lg = v[k].l2sq_graph(q, xr, n);
					cr_assert_leq(fabs((double)dg - base_dot[r]), 1e-5 * mag[r],
						      "%s dot_graph, dim %zu: %g vs portable %g", v[k].name,
						      n, dg, base_dot[r]);
					cr_assert_leq(fabs((double)lg - base_l2[r]), 1e-5 * base_l2[r],
						      "%s l2sq_graph, dim %zu: %g vs portable %g", v[k].name,
						      n, lg, base_l2[r]);
				}
			}
		}
	}
}

static int row_idcmp(void *ctx, const vdb_cand *a, const vdb_cand *b)
{
	(void)ctx;
	return a->row < b->row ? -1 : a->row > b->row;
}

Test(topk, keeps_the_k_best_and_breaks_ties_by_id)
{
	rng_state = 3;
	enum { N = 2000, K = 37 };
	vdb_cand all[N];
	for (int i = 0; i < N; i++)
		all[i] = (vdb_cand){(float)(int)(rnd() * 50), 0, (uint64_t)(N - i)};
	vdb_topk t = {malloc(K * sizeof(vdb_cand)), 0, K, row_idcmp, NULL};
	for (int i = 0; i < N; i++)
		if (vdb_topk_may_enter(&t, all[i].dist))
			vdb_topk_push(&t, all[i]);
	cr_assert_eq(vdb_topk_sort(&t), K);
	/* Reference: full sort by (dist, row). */
	for (int i = 0; i < N; i++)
		for (int j = i + 1; j < N; j++)
			if (all[j].dist < all[i].dist ||
			    (all[j].dist == all[i].dist && all[j].row < all[i].row)) {
				vdb_cand x = all[i];
				all[i] = all[j];
				all[j] = x;
			}
	for (int i = 0; i < K; i++) {
		cr_assert_eq(t.h[i].dist, all[i].dist, "rank %d", i);
		cr_assert_eq(t.h[i].row, all[i].row, "rank %d", i);
	}
	free(t.h);
}

/* ---- exact search through the public API ---- */

typedef struct metric_case {
	vdb_metric metric;
} metric_case;

ParameterizedTestParameters(flat, matches_brute_force)
{
	static metric_case cases[] = {{VDB_METRIC_L2}, {VDB_METRIC_COSINE}, {VDB_METRIC_DOT}};
	return cr_make_param_array(metric_case, cases, 3);
}

static double score_of(vdb_metric m, const float *q, const float *x, size_t dim)
{
	double dot = 0, l2 = 0, qq = 0, xx = 0;
	for (size_t i = 0; i < dim; i++) {
		dot += (double)q[i] * x[i];
		l2 += ((double)q[i] - x[i]) * ((double)q[i] - x[i]);
		qq += (double)q[i] * q[i];
		xx += (double)x[i] * x[i];
	}
	return m == VDB_METRIC_L2 ? sqrt(l2) : m == VDB_METRIC_DOT ? dot : dot / sqrt(qq * xx);
}

ParameterizedTest(metric_case *mc, flat, matches_brute_force)
{
	char dir[] = "/tmp/vdb-flat-XXXXXX", db[64], cmd[128];
	cr_assert_not_null(mkdtemp(dir));
	snprintf(db, sizeof db, "%s/db", dir);
	enum { DIM = 12, N = 3000 };
	vdb_collection_config cfg;
	vdb_collection_config_init(&cfg);
	cfg.dim = DIM;
	cfg.metric = mc->metric;
	cfg.seal_bytes = 32 * 1024; /* several segments plus a log tail */
	vdb_error err;
	cr_assert_eq(vdb_collection_create(db, "default", &cfg, &err), VDB_OK, "%s", err.message);
	vdb_writer *w;
	cr_assert_eq(vdb_writer_open(db, "default", NULL, &w, &err), VDB_OK, "%s", err.message);
	static float vecs[N][DIM];
	static int live[N];
	rng_state = 11 + (uint64_t)mc->metric;
	for (int i = 0; i < N; i++) {
		for (int j = 0; j < DIM; j++)
			vecs[i][j] = (float)(rnd() * 2 - 1);
		vdb_id id = {0, (uint64_t)i, NULL, 0};
		cr_assert_eq(vdb_writer_upsert(w, &id, vecs[i], NULL, 0, &err), VDB_OK);
		live[i] = 1;
		if (i % 100 == 99)
			cr_assert_eq(vdb_writer_commit(w, &err), VDB_OK, "%s", err.message);
	}
	/* Delete every 7th and replace every 11th (some sealed, some in the tail). */
	for (int i = 0; i < N; i += 7) {
		vdb_id id = {0, (uint64_t)i, NULL, 0};
		cr_assert_eq(vdb_writer_delete(w, &id, &err), VDB_OK);
		live[i] = 0;
	}
	for (int i = 3; i < N; i += 11) {
		for (int j = 0; j < DIM; j++)
			vecs[i][j] = (float)(rnd() * 2 - 1);
		vdb_id id = {0, (uint64_t)i, NULL, 0};
		cr_assert_eq(vdb_writer_upsert(w, &id, vecs[i], NULL, 0, &err), VDB_OK);
		live[i] = 1;
	}
	cr_assert_eq(vdb_writer_commit(w, &err), VDB_OK, "%s", err.message);
	vdb_writer_close(w);

	vdb_collection *c;
	cr_assert_eq(vdb_collection_open(db, "default", &c, &err), VDB_OK, "%s", err.message);
	int nlive = 0;
	for (int i = 0; i < N; i++)
		nlive += live[i];
	cr_assert_eq(vdb_collection_count(c), (uint64_t)nlive);
	enum { K = 25 };
	for (int qi = 0; qi < 20; qi++) {
		float q[DIM];
		for (int j = 0; j < DIM; j++)
			q[j] = (float)(rnd() * 2 - 1);
		vdb_hit hits[K];
		size_t n;
		cr_assert_eq(vdb_search(c, q, K, NULL, hits, &n, &err), VDB_OK, "%s", err.message);
		cr_assert_eq(n, K);
		/* Reference ranking in double precision. */
		double best[N];
		int order[N], m = 0;
		for (int i = 0; i < N; i++)
			if (live[i]) {
				best[i] = score_of(mc->metric, q, vecs[i], DIM);
				order[m++] = i;
			}
		int lower = mc->metric == VDB_METRIC_L2;
		for (int a = 0; a < K; a++)
			for (int b = a + 1; b < m; b++)
				if (lower ? best[order[b]] < best[order[a]] : best[order[b]] > best[order[a]]) {
					int t = order[a];
					order[a] = order[b];
					order[b] = t;
				}
		for (int r = 0; r < K; r++) {
			vdb_record rec;
			cr_assert_eq(vdb_hit_record(c, &hits[r], &rec, &err), VDB_OK);
			cr_assert(live[rec.id.num], "deleted id %llu returned",
				  (unsigned long long)rec.id.num);
			cr_assert_eq(memcmp(rec.vector, vecs[rec.id.num], sizeof q), 0,
				     "the latest version of a replaced record");
			cr_assert_float_eq(hits[r].score, best[order[r]], 1e-5,
					   "rank %d: score %f, reference %f", r, hits[r].score,
					   best[order[r]]);
			if (r)
				cr_assert(lower ? hits[r].score >= hits[r - 1].score
						: hits[r].score <= hits[r - 1].score);
		}
	}
	/* A batch gives what the queries give one at a time, exact and through graphs, with
	 * mixed k; a bad query is named by its index and nothing is searched. */
	enum { B = 9 };
	static float bq[B][DIM];
	const float *qp[B];
	size_t ks[B], ns[B], failed;
	static vdb_hit bh[B][60], one[60];
	vdb_hit *hp[B];
	for (int i = 0; i < B; i++) {
		for (int j = 0; j < DIM; j++)
			bq[i][j] = (float)(rnd() * 2 - 1);
		qp[i] = bq[i];
		ks[i] = 1 + (size_t)(i * 7) % 60;
		hp[i] = bh[i];
	}
	vdb_searcher *sr;
	cr_assert_eq(vdb_searcher_new(c, &sr, &err), VDB_OK);
	/* 9 queries: a group of eight for the exact scan and one alone; 6: a group padded. */
	for (int exact = 0; exact < 4; exact++) {
		int nb = exact < 2 ? B : 6;
		vdb_search_options so;
		vdb_search_options_init(&so);
		so.exact = exact % 2;
		cr_assert_eq(vdb_searcher_search_batch(sr, nb, qp, ks, &so, hp, ns, &failed, &err),
			     VDB_OK, "%s", err.message);
		cr_assert_eq(failed, nb);
		for (int i = 0; i < nb; i++) {
			size_t n1;
			cr_assert_eq(vdb_search(c, bq[i], ks[i], &so, one, &n1, &err), VDB_OK);
			cr_assert_eq(ns[i], n1);
			cr_assert_eq(memcmp(bh[i], one, n1 * sizeof *one), 0, "query %d exact %d", i,
				     exact);
		}
	}
	bq[5][3] = NAN;
	ns[0] = 12345;
	cr_assert_eq(vdb_searcher_search_batch(sr, B, qp, ks, NULL, hp, ns, &failed, &err),
		     VDB_EDATA);
	cr_assert_eq(failed, 5);
	cr_assert_str_eq(err.message, "query vector[3] is not finite");
	bq[5][3] = 0;
	ks[2] = 0;
	cr_assert_eq(vdb_searcher_search_batch(sr, B, qp, ks, NULL, hp, ns, &failed, &err),
		     VDB_EINVAL);
	cr_assert_eq(failed, 2);
	vdb_searcher_free(sr);
	/* k larger than the collection returns every live record once. */
	vdb_hit *all = malloc(VDB_K_MAX * sizeof *all);
	float q[DIM] = {0.5f};
	size_t n;
	cr_assert_eq(vdb_search(c, q, VDB_K_MAX, NULL, all, &n, &err), VDB_OK);
	cr_assert_eq(n, (size_t)nlive);
	cr_assert_eq(vdb_search(c, q, 0, NULL, all, &n, &err), VDB_EINVAL);
	free(all);
	vdb_collection_close(c);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

/* An exact scan split among threads (vdb_search_options.threads) gives exactly what one
 * thread gives: same hits, same order, ties broken by id across the parts' boundaries. The
 * segment is large enough to be split (the library splits only scans of more than about
 * 2M floats per thread), has exact duplicates (ties), deleted rows and a filter. */
ParameterizedTestParameters(flat, split_scan_matches_one_thread)
{
	static metric_case cases[] = {{VDB_METRIC_L2}, {VDB_METRIC_COSINE}, {VDB_METRIC_DOT}};
	return cr_make_param_array(metric_case, cases, 3);
}

ParameterizedTest(metric_case *mc, flat, split_scan_matches_one_thread)
{
	char dir[] = "/tmp/vdb-split-XXXXXX", db[64], cmd[128];
	cr_assert_not_null(mkdtemp(dir));
	snprintf(db, sizeof db, "%s/db", dir);
	enum { DIM = 32, N = 200003, DISTINCT = 1500, NQ = 6, K = 40 };
	vdb_collection_config cfg;
	vdb_collection_config_init(&cfg);
	cfg.dim = DIM;
	cfg.metric = mc->metric;
	cfg.index = VDB_INDEX_FLAT;
	vdb_error err;
	cr_assert_eq(vdb_collection_create(db, "default", &cfg, &err), VDB_OK, "%s", err.message);
	vdb_writer *w;
	cr_assert_eq(vdb_writer_open(db, "default", NULL, &w, &err), VDB_OK, "%s", err.message);
	static float distinct[DISTINCT][DIM];
	rng_state = 23 + (uint64_t)mc->metric;
	for (int i = 0; i < DISTINCT; i++)
		for (int j = 0; j < DIM; j++)
			distinct[i][j] = (float)(rnd() * 2 - 1);
	for (int i = 0; i < N; i++) {
		vdb_id id = {0, (uint64_t)(N - i), NULL, 0}; /* ids against storage order */
		char payload[32];
		int len = snprintf(payload, sizeof payload, "{\"odd\":%s}", i % 2 ? "true" : "false");
		cr_assert_eq(vdb_writer_upsert(w, &id, distinct[(i * 7919) % DISTINCT], payload,
					       (size_t)len, &err),
			     VDB_OK);
	}
	cr_assert_eq(vdb_writer_commit(w, &err), VDB_OK, "%s", err.message);
	cr_assert_eq(vdb_writer_compact(w, &err), VDB_OK, "%s", err.message); /* one segment */
	for (int i = 0; i < N; i += 13) { /* deletion marks in it */
		vdb_id id = {0, (uint64_t)(N - i), NULL, 0};
		cr_assert_eq(vdb_writer_delete(w, &id, &err), VDB_OK);
	}
	cr_assert_eq(vdb_writer_commit(w, &err), VDB_OK, "%s", err.message);
	vdb_writer_close(w);

	vdb_collection *c;
	cr_assert_eq(vdb_collection_open(db, "default", &c, &err), VDB_OK, "%s", err.message);
	vdb_filter *odd;
	cr_assert_eq(vdb_filter_parse("{\"odd\":true}", 12, &odd, &err), VDB_OK, "%s",
		     err.message);
	static float q[NQ][DIM];
	const float *qp[NQ];
	size_t ks[NQ], ns[NQ], n1[NQ], failed;
	static vdb_hit h1[NQ][K], hn[NQ][K];
	vdb_hit *pn[NQ];
	for (int i = 0; i < NQ; i++) {
		/* Half the queries sit on a stored vector: k ties at distance 0 for l2. */
		for (int j = 0; j < DIM; j++)
			q[i][j] = i % 2 ? distinct[i][j] : (float)(rnd() * 2 - 1);
		qp[i] = q[i];
		ks[i] = 1 + (size_t)i * (K - 1) / (NQ - 1);
		pn[i] = hn[i];
	}
	vdb_searcher *sr;
	cr_assert_eq(vdb_searcher_new(c, &sr, &err), VDB_OK);
	for (int filtered = 0; filtered < 2; filtered++) {
		vdb_search_options so;
		vdb_search_options_init(&so);
		so.exact = 1;
		so.filter = filtered ? odd : NULL;
		for (unsigned threads = 2; threads <= 5; threads += 3) {
			/* One query at a time, and a batch. */
			for (int i = 0; i < NQ; i++) {
				so.threads = 1;
				cr_assert_eq(vdb_searcher_search(sr, q[i], ks[i], &so, h1[i], &n1[i], &err),
					     VDB_OK, "%s", err.message);
				cr_assert_eq(n1[i], ks[i]);
				so.threads = threads;
				cr_assert_eq(vdb_searcher_search(sr, q[i], ks[i], &so, hn[i], &ns[i], &err),
					     VDB_OK, "%s", err.message);
				cr_assert_eq(ns[i], n1[i]);
				cr_assert_eq(memcmp(h1[i], hn[i], n1[i] * sizeof(vdb_hit)), 0,
					     "query %d, %u threads, filtered %d", i, threads, filtered);
			}
			cr_assert_eq(vdb_searcher_search_batch(sr, NQ, qp, ks, &so, pn, ns, &failed,
							       &err),
				     VDB_OK, "%s", err.message);
			for (int i = 0; i < NQ; i++)
				cr_assert_eq(memcmp(h1[i], hn[i], n1[i] * sizeof(vdb_hit)), 0,
					     "batch query %d, %u threads, filtered %d", i, threads,
					     filtered);
		}
		/* The ties really are broken by id: equal scores come in increasing id. */
		for (int i = 0; i < NQ; i++)
			for (size_t r = 1; r < n1[i]; r++)
				if (h1[i][r].score == h1[i][r - 1].score) {
					vdb_record a, b;
					cr_assert_eq(vdb_hit_record(c, &h1[i][r - 1], &a, &err), VDB_OK);
					cr_assert_eq(vdb_hit_record(c, &h1[i][r], &b, &err), VDB_OK);
					cr_assert_lt(a.id.num, b.id.num);
				}
	}
	vdb_searcher_free(sr);
	vdb_filter_free(odd);
	vdb_collection_close(c);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

Test(flat, values_near_the_float32_limits_give_finite_ordered_scores)
{
	vdb_metric metrics[] = {VDB_METRIC_L2, VDB_METRIC_COSINE, VDB_METRIC_DOT};
	for (int mi = 0; mi < 3; mi++) {
		char dir[] = "/tmp/vdb-limits-XXXXXX", db[64], cmd[128];
		cr_assert_not_null(mkdtemp(dir));
		snprintf(db, sizeof db, "%s/db", dir);
		vdb_collection_config cfg;
		vdb_collection_config_init(&cfg);
		cfg.dim = 3;
		cfg.metric = metrics[mi];
		vdb_error err;
		cr_assert_eq(vdb_collection_create(db, "default", &cfg, &err), VDB_OK);
		vdb_writer *w;
		cr_assert_eq(vdb_writer_open(db, "default", NULL, &w, &err), VDB_OK);
		/* Float accumulation overflows (or the squared norm underflows) on these. */
		float v[4][3] = {{3e38f, -3e38f, 3e38f}, {1e-40f, 0, 0}, {1, 2, 3}, {2e38f, 2e38f, 0}};
		for (uint64_t i = 0; i < 4; i++) {
			vdb_id id = {0, i, NULL, 0};
			cr_assert_eq(vdb_writer_upsert(w, &id, v[i], NULL, 0, &err), VDB_OK, "%s",
				     err.message);
		}
		cr_assert_eq(vdb_writer_commit(w, &err), VDB_OK);
		vdb_writer_close(w);
		vdb_collection *c;
		cr_assert_eq(vdb_collection_open(db, "default", &c, &err), VDB_OK);
		float q[3] = {1e-44f, 0, 0};
		vdb_hit hits[4];
		size_t n;
		cr_assert_eq(vdb_search(c, q, 4, NULL, hits, &n, &err), VDB_OK, "%s", err.message);
		cr_assert_eq(n, 4);
		for (size_t i = 0; i < n; i++)
			cr_assert(isfinite(hits[i].score), "metric %d rank %zu", metrics[mi], i);
		/* A query with an infinite or NaN element is refused, naming the element. */
		float bad[2][3] = {{1, 2, INFINITY}, {NAN, 0, 0}};
		for (int b = 0; b < 2; b++) {
			cr_assert_eq(vdb_search(c, bad[b], 4, NULL, hits, &n, &err), VDB_EDATA);
			cr_assert_str_eq(err.message, b ? "query vector[0] is not finite"
							: "query vector[2] is not finite");
		}
		if (metrics[mi] == VDB_METRIC_COSINE) {
			vdb_record r;
			cr_assert_eq(vdb_hit_record(c, &hits[0], &r, &err), VDB_OK);
			cr_assert_eq(r.id.num, 1, "the tiny vector points exactly along q");
			cr_assert_float_eq(hits[0].score, 1.0f, 1e-6);
		}
		vdb_collection_close(c);
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
		cr_assert_eq(system(cmd), 0);
	}
}

/* ---- HNSW construction ---- */

#include "index/hnsw.h"

static float *clustered_data(uint64_t seed, size_t n, size_t dim)
{
	rng_state = seed;
	enum { CLUSTERS = 40 };
	float centres[CLUSTERS][64];
	for (int c = 0; c < CLUSTERS; c++)
		for (size_t j = 0; j < dim; j++)
			centres[c][j] = (float)(rnd() * 4 - 2);
	float *v = malloc(n * dim * sizeof *v);
	for (size_t i = 0; i < n; i++) {
		int c = (int)(rnd() * CLUSTERS);
		for (size_t j = 0; j < dim; j++)
			v[i * dim + j] = centres[c][j] + (float)(rnd() - 0.5) * 0.6f;
	}
	return v;
}

Test(hnsw, parallel_builds_leave_every_node_reachable_and_search_finds_the_nearest)
{
	enum { N = 6000, DIM = 24, Q = 40 };
	float *v = clustered_data(21, N, DIM), *q = clustered_data(22, Q, DIM);
	vdb_hnsw_space sp = {VDB_METRIC_L2, DIM, v, NULL, NULL};
	for (uint64_t seed = 1; seed <= 4; seed++) {
		/* Two threads: races would show. */
		vdb_hnsw_build_params p = {16, 200, 2, seed, NULL, NULL, NULL, NULL};
		vdb_buf meta = VDB_BUF_INIT, l0 = VDB_BUF_INIT, nodes = VDB_BUF_INIT, up = VDB_BUF_INIT;
		vdb_error err;
		cr_assert_eq(vdb_hnsw_build(&sp, N, &p, &meta, &l0, &nodes, &up, &err), VDB_OK);
		vdb_hnsw_graph g;
		cr_assert_eq(vdb_hnsw_open(meta.data, meta.len, l0.data, l0.len, nodes.data, nodes.len,
					   up.data, up.len, N, &g, "test", &err),
			     VDB_OK, "%s", err.message);
		/* Every node except the entry point has an incoming level-0 link. */
		static int indeg[N];
		memset(indeg, 0, sizeof indeg);
		for (size_t i = 0; i < N; i++) {
			const uint32_t *l = g.l0 + i * (g.m0 + 1);
			cr_assert_leq(l[0], g.m0);
			for (uint32_t k = 0; k < l[0]; k++) {
				cr_assert_lt(l[1 + k], N);
				cr_assert_neq(l[1 + k], i, "no self links");
				indeg[l[1 + k]]++;
			}
		}
		for (size_t i = 0; i < N; i++)
			cr_assert(indeg[i] > 0 || i == g.entry, "seed %llu: node %zu is unreachable",
				  (unsigned long long)seed, i);
		/* A wide beam finds the exact nearest neighbour of every query. */
		vdb_hnsw_scratch s = {0};
		for (int qi = 0; qi < Q; qi++) {
			const float *x = q + (size_t)qi * DIM;
			size_t best = 0;
			for (size_t i = 1; i < N; i++)
				if (vdb_l2sq(x, v + i * DIM, DIM) < vdb_l2sq(x, v + best * DIM, DIM))
					best = i;
			vdb_cand *out;
			size_t n;
			cr_assert_eq(vdb_hnsw_search(&g, &sp, x, 0, NULL, 400, &s, &out, &n, "t", &err), VDB_OK);
			cr_assert_eq(n, 400);
			cr_assert_eq(vdb_l2sq(x, v + out[0].row * DIM, DIM), vdb_l2sq(x, v + best * DIM, DIM),
				     "seed %llu query %d", (unsigned long long)seed, qi);
			for (size_t i = 1; i < n; i++)
				cr_assert_leq(out[i - 1].dist, out[i].dist, "results sorted");
		}
		/* Deleted rows are walked through but never returned. */
		uint64_t dead[(N + 63) / 64];
		memset(dead, 0xff, sizeof dead);
		dead[0] = ~(uint64_t)0x5; /* a set bit is a dead row: only rows 0 and 2 live */
		vdb_cand *out;
		size_t n;
		cr_assert_eq(vdb_hnsw_search(&g, &sp, q, 0, dead, 50, &s, &out, &n, "t", &err), VDB_OK);
		for (size_t i = 0; i < n; i++)
			cr_assert(out[i].row == 0 || out[i].row == 2);
		vdb_hnsw_scratch_free(&s);
		/* A damaged neighbour id is an error, not a read out of bounds. */
		uint32_t *mut = (uint32_t *)l0.data;
		mut[g.entry * (g.m0 + 1) + 1] = N + 5;
		vdb_hnsw_scratch s2 = {0};
		vdb_hnsw_search(&g, &sp, q, 0, NULL, 50, &s2, &out, &n, "seg-x.vdb", &err);
		vdb_hnsw_scratch_free(&s2);
		vdb_buf_free(&meta);
		vdb_buf_free(&l0);
		vdb_buf_free(&nodes);
		vdb_buf_free(&up);
	}
	free(v);
	free(q);
}

/* Hostile data for the neighbour heuristic: 30% of the rows are exact copies of 20 others
 * (groups of about 75, over twice m0), the rest clustered. */
static float *duplicate_heavy_data(uint64_t seed, size_t n, size_t dim)
{
	float *v = clustered_data(seed, n, dim);
	for (size_t i = 20; i < n; i++)
		if (rnd() < 0.3)
			memcpy(v + i * dim, v + (size_t)(rnd() * 20) * dim, dim * sizeof *v);
	return v;
}

static float norm_of(const float *x, size_t dim)
{
	return sqrtf(vdb_dot(x, x, dim));
}

/* A graph built on sp, opened; the caller frees the four buffers in bufs. */
static vdb_hnsw_graph build_graph(const vdb_hnsw_space *sp, uint64_t rows, uint64_t seed,
				  vdb_buf bufs[4])
{
	vdb_hnsw_build_params p = {16, 200, 2, seed, NULL, NULL, NULL, NULL}; /* two threads: races show */
	vdb_error err;
	for (int i = 0; i < 4; i++)
		bufs[i] = (vdb_buf)VDB_BUF_INIT;
	cr_assert_eq(vdb_hnsw_build(sp, rows, &p, &bufs[0], &bufs[1], &bufs[2], &bufs[3], &err),
		     VDB_OK);
	vdb_hnsw_graph g;
	cr_assert_eq(vdb_hnsw_open(bufs[0].data, bufs[0].len, bufs[1].data, bufs[1].len,
				   bufs[2].data, bufs[2].len, bufs[3].data, bufs[3].len, rows, &g,
				   "test", &err),
		     VDB_OK, "%s", err.message);
	return g;
}

Test(hnsw, duplicate_heavy_data_leaves_no_row_unreachable_and_gets_full_recall)
{
	enum { N = 5000, DIM = 16, Q = 60, K = 10, EF = 1000 };
	float *v = duplicate_heavy_data(31, N, DIM), *q = malloc(Q * DIM * sizeof *q);
	/* Queries near rows; half of them copies of rows, tied with whole groups of copies. */
	for (size_t i = 0; i < Q; i++) {
		memcpy(q + i * DIM, v + (size_t)(rnd() * N) * DIM, DIM * sizeof *q);
		for (size_t j = 0; i >= Q / 2 && j < DIM; j++)
			q[i * DIM + j] += (float)(rnd() - 0.5) * 0.2f;
	}
	float *norms = malloc(N * sizeof *norms);
	for (size_t i = 0; i < N; i++)
		norms[i] = norm_of(v + i * DIM, DIM);
	vdb_metric metrics[] = {VDB_METRIC_L2, VDB_METRIC_COSINE};
	for (size_t mi = 0; mi < 2; mi++) {
		vdb_hnsw_space sp = {metrics[mi], DIM, v, metrics[mi] == VDB_METRIC_COSINE ? norms : NULL, NULL};
		for (uint64_t seed = 1; seed <= 3; seed++) {
			vdb_buf bufs[4];
			vdb_hnsw_graph g = build_graph(&sp, N, seed, bufs);
			static uint8_t reached[N];
			memset(reached, 0, sizeof reached);
			vdb_error err;
			cr_assert_eq(vdb_hnsw_reached(&g, reached, "test", &err), VDB_OK);
			for (size_t i = 0; i < N; i++)
				cr_assert(reached[i], "metric %d seed %llu: row %zu is unreachable",
					  (int)metrics[mi], (unsigned long long)seed, i);
			vdb_hnsw_scratch s = {0};
			vdb_cand *out;
			size_t n;
			/* A beam as wide as the graph searches all a search can reach: recall 1.0
			 * (the k best distances are those of brute force; rows tied at the k-th are
			 * interchangeable). A beam of 1000 (a fifth of the graph) loses at most 1%:
			 * a query trapped in a group of copies whose lists hold only copies loses
			 * all 10 (the build is not deterministic, so one near miss is allowed). */
			size_t misses = 0;
			for (size_t qi = 0; qi < Q; qi++) {
				const float *x = q + qi * DIM;
				float qn = norm_of(x, DIM), best[K];
				for (int k = 0; k < K; k++)
					best[k] = INFINITY;
				for (size_t i = 0; i < N; i++) {
					float d = vdb_hnsw_distance(&sp, x, qn, i);
					for (int k = 0; k < K; k++)
						if (d < best[k]) {
							memmove(best + k + 1, best + k, (K - 1 - k) * sizeof *best);
							best[k] = d;
							break;
						}
				}
				cr_assert_eq(vdb_hnsw_search(&g, &sp, x, qn, NULL, N, &s, &out, &n, "t", &err),
					     VDB_OK);
				for (int k = 0; k < K; k++)
					cr_assert_eq(out[k].dist, best[k],
						     "metric %d seed %llu query %zu rank %d: %.9g, not %.9g",
						     (int)metrics[mi], (unsigned long long)seed, qi, k,
						     out[k].dist, best[k]);
				cr_assert_eq(vdb_hnsw_search(&g, &sp, x, qn, NULL, EF, &s, &out, &n, "t", &err),
					     VDB_OK);
				for (int k = 0; k < K; k++)
					misses += out[k].dist != best[k];
			}
			cr_assert_leq(misses, Q * K / 100, "metric %d seed %llu: %zu of %d missed at ef %d",
				      (int)metrics[mi], (unsigned long long)seed, misses, Q * K, EF);
			vdb_hnsw_scratch_free(&s);
			for (int i = 0; i < 4; i++)
				vdb_buf_free(&bufs[i]);
		}
	}
	free(v);
	free(q);
	free(norms);
}

/* A node another thread finds at an upper level must already have its level-0 list: one
 * found with an empty list ends the level-0 search of the node being inserted there, which
 * is then linked to that one node, far from its neighbours, and hard to find (a wide beam
 * missed such a row, the third nearest to its query). Two threads, 8 builds: every node
 * links to one of its 10 nearest (the old top-down linking left about 1.4 per build). */
Test(hnsw, parallel_builds_link_every_node_near_its_neighbours)
{
	enum { N = 8000, DIM = 16, K = 10 };
	float *v = clustered_data(41, N, DIM);
	static float tenth[N]; /* each row's distance to its 10th nearest other row */
	for (size_t i = 0; i < N; i++) {
		float best[K];
		for (int k = 0; k < K; k++)
			best[k] = INFINITY;
		for (size_t j = 0; j < N; j++) {
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
	vdb_hnsw_space sp = {VDB_METRIC_L2, DIM, v, NULL, NULL};
	for (uint64_t seed = 1; seed <= 8; seed++) {
		vdb_buf bufs[4];
		vdb_hnsw_graph g = build_graph(&sp, N, seed, bufs);
		for (size_t i = 0; i < N; i++) {
			const uint32_t *l = g.l0 + i * (g.m0 + 1);
			float nearest = INFINITY;
			for (uint32_t k = 1; k <= l[0]; k++)
				nearest = fminf(nearest, vdb_l2sq(v + i * DIM, v + (size_t)l[k] * DIM, DIM));
			cr_assert_leq(nearest, tenth[i],
				      "seed %llu: row %zu's nearest link (of %u) is at %g, its 10th "
				      "nearest row at %g",
				      (unsigned long long)seed, i, l[0], nearest, tenth[i]);
		}
		for (int i = 0; i < 4; i++)
			vdb_buf_free(&bufs[i]);
	}
	free(v);
}

Test(hnsw, reached_marks_what_a_walk_from_the_entry_finds)
{
	/* 0 -> 1 -> 2, 3 -> 0: node 3 links out but nothing links to it. m = 2, m0 = 4. */
	uint32_t meta[8] = {2, 4, 0, 0, 0, 0, 4, 0};
	uint32_t l0[4 * 5] = {1, 1, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0};
	uint32_t nodes[4] = {UINT32_MAX, UINT32_MAX, UINT32_MAX, UINT32_MAX}, up[1] = {0};
	vdb_hnsw_graph g;
	vdb_error err;
	cr_assert_eq(vdb_hnsw_open(meta, 32, l0, sizeof l0, nodes, sizeof nodes, up, 0, 4, &g,
				   "seg-1.vdb", &err),
		     VDB_OK, "%s", err.message);
	uint8_t reached[4] = {0};
	cr_assert_eq(vdb_hnsw_reached(&g, reached, "seg-1.vdb", &err), VDB_OK);
	cr_assert(reached[0] && reached[1] && reached[2] && !reached[3]);
	l0[5 + 1] = 7; /* a neighbour out of range: damage, named */
	memset(reached, 0, sizeof reached);
	cr_assert_eq(vdb_hnsw_reached(&g, reached, "seg-1.vdb", &err), VDB_ECORRUPT);
	cr_assert(strstr(err.message, "seg-1.vdb"), "%s", err.message);
	l0[5 + 1] = 2;
	l0[5] = 5; /* a count above m0 */
	memset(reached, 0, sizeof reached);
	cr_assert_eq(vdb_hnsw_reached(&g, reached, "seg-1.vdb", &err), VDB_ECORRUPT);
}

Test(hnsw, damaged_graph_header_is_refused)
{
	uint32_t meta[8] = {16, 32, 3, 0, 5, 0, 100, 0};
	uint32_t l0[100 * 33] = {0}, nodes[100] = {0}, up[4] = {0};
	vdb_hnsw_graph g;
	vdb_error err;
	cr_assert_eq(vdb_hnsw_open(meta, 32, l0, sizeof l0, nodes, sizeof nodes, up, sizeof up, 100, &g,
				   "seg-1.vdb", &err),
		     VDB_OK);
	meta[1] = 31; /* m0 must be 2m */
	cr_assert_eq(vdb_hnsw_open(meta, 32, l0, sizeof l0, nodes, sizeof nodes, up, sizeof up, 100, &g,
				   "seg-1.vdb", &err),
		     VDB_ECORRUPT);
	cr_assert(strstr(err.message, "seg-1.vdb"), "%s", err.message);
	meta[1] = 32;
	meta[4] = 100; /* entry out of range */
	cr_assert_eq(vdb_hnsw_open(meta, 32, l0, sizeof l0, nodes, sizeof nodes, up, sizeof up, 100, &g,
				   "seg-1.vdb", &err),
		     VDB_ECORRUPT);
}

/* Recall@10 of graph g over v[0..n) for Q queries at beam ef, against exact L2. */
static double graph_recall(const vdb_hnsw_graph *g, const vdb_hnsw_space *sp, size_t n,
			   const float *q, size_t nq, size_t ef)
{
	enum { K = 10 };
	vdb_hnsw_scratch s = {0};
	size_t hit = 0;
	float *d = malloc(n * sizeof *d);
	for (size_t qi = 0; qi < nq; qi++) {
		const float *x = q + qi * sp->dim;
		for (size_t i = 0; i < n; i++)
			d[i] = vdb_l2sq(x, sp->vectors + i * sp->dim, sp->dim);
		float kth[K];
		for (size_t k = 0; k < K; k++)
			kth[k] = INFINITY;
		for (size_t i = 0; i < n; i++) /* the K smallest, sorted */
			for (size_t k = 0; k < K; k++)
				if (d[i] < kth[k]) {
					memmove(kth + k + 1, kth + k, (K - 1 - k) * sizeof *kth);
					kth[k] = d[i];
					break;
				}
		vdb_cand *out;
		size_t got;
		vdb_error err;
		cr_assert_eq(vdb_hnsw_search(g, sp, x, 0, NULL, ef, &s, &out, &got, "t", &err), VDB_OK);
		for (size_t i = 0; i < K && i < got; i++)
			hit += d[out[i].row] <= kth[K - 1];
	}
	free(d);
	vdb_hnsw_scratch_free(&s);
	return (double)hit / (double)(nq * K);
}

/* A merge's build reuses the graph of its largest input: the kept nodes keep their links,
 * rows of the deleted ones are gone, the new rows are inserted, and the result is as good
 * as a graph built from nothing. */
Test(hnsw, a_build_from_a_reused_graph_matches_a_build_from_nothing)
{
	enum { OLD = 6000, DELETED = 600, NEW = 3000, DIM = 24, Q = 100 };
	/* One distribution: the old rows, the new ones, and held-out queries. */
	float *all = clustered_data(41, OLD + NEW + Q, DIM);
	float *old = all, *more = all + (size_t)OLD * DIM, *q = more + (size_t)NEW * DIM;
	vdb_hnsw_space osp = {VDB_METRIC_L2, DIM, old, NULL, NULL};
	vdb_buf obufs[4];
	vdb_hnsw_graph og = build_graph(&osp, OLD, 1, obufs);
	/* The merged rows: the old ones but every tenth (deleted), then NEW others. */
	size_t rows = OLD - DELETED + NEW;
	float *v = malloc(rows * DIM * sizeof *v);
	static uint32_t map[OLD];
	size_t r = 0;
	for (size_t i = 0; i < OLD; i++) {
		if (DELETED && i % 10 == 3) {
			map[i] = VDB_HNSW_NO_ROW;
			continue;
		}
		map[i] = (uint32_t)r;
		memcpy(v + r++ * DIM, old + i * DIM, DIM * sizeof *v);
	}
	memcpy(v + r * DIM, more, NEW * DIM * sizeof *v);
	cr_assert_eq(r + NEW, rows);
	vdb_hnsw_space sp = {VDB_METRIC_L2, DIM, v, NULL, NULL};
	vdb_hnsw_build_params p = {16, 200, 2, 7, NULL, NULL, &og, map};
	vdb_buf b[4];
	for (int i = 0; i < 4; i++)
		b[i] = (vdb_buf)VDB_BUF_INIT;
	vdb_error err;
	cr_assert_eq(vdb_hnsw_build(&sp, rows, &p, &b[0], &b[1], &b[2], &b[3], &err), VDB_OK);
	vdb_hnsw_graph g;
	cr_assert_eq(vdb_hnsw_open(b[0].data, b[0].len, b[1].data, b[1].len, b[2].data, b[2].len,
				   b[3].data, b[3].len, rows, &g, "test", &err),
		     VDB_OK, "%s", err.message);
	/* A kept node kept its links that do not lead to deleted rows. */
	size_t same = 0, kept = 0;
	for (size_t i = 0; i < OLD; i++) {
		if (map[i] == VDB_HNSW_NO_ROW)
			continue;
		const uint32_t *ol = og.l0 + i * (og.m0 + 1), *nl = g.l0 + map[i] * (g.m0 + 1);
		for (uint32_t k = 1; k <= ol[0]; k++) {
			if (map[ol[k]] == VDB_HNSW_NO_ROW)
				continue;
			kept++;
			for (uint32_t j = 1; j <= nl[0]; j++)
				same += nl[j] == map[ol[k]];
		}
	}
	cr_assert_gt(same, kept * 8 / 10, "%zu of %zu old links kept", same, kept);
	/* Every row reachable; recall as a graph built from nothing gets. */
	static uint8_t reached[OLD - DELETED + NEW];
	memset(reached, 0, sizeof reached);
	cr_assert_eq(vdb_hnsw_reached(&g, reached, "test", &err), VDB_OK);
	for (size_t i = 0; i < rows; i++)
		cr_assert(reached[i], "row %zu is unreachable", i);
	vdb_buf fbufs[4];
	vdb_hnsw_graph fg = build_graph(&sp, rows, 7, fbufs);
	double reused = graph_recall(&g, &sp, rows, q, Q, 10);
	double fresh = graph_recall(&fg, &sp, rows, q, Q, 10);
	cr_assert_geq(reused, fresh - 0.02, "recall %.3f reused, %.3f built from nothing", reused,
		      fresh);
	cr_assert_geq(reused, 0.9, "recall %.3f", reused);
	/* A damaged reused graph (a node's upper levels cut to none, while others still link
	 * to it there) gives a sound graph: such links are dropped, not followed. */
	uint32_t *upper = (uint32_t *)obufs[3].data;
	for (size_t i = 0; i < OLD; i++)
		if (og.nodes[i] != UINT32_MAX) {
			upper[og.nodes[i]] = 0;
			break;
		}
	vdb_buf d[4];
	for (int i = 0; i < 4; i++)
		d[i] = (vdb_buf)VDB_BUF_INIT;
	cr_assert_eq(vdb_hnsw_build(&sp, rows, &p, &d[0], &d[1], &d[2], &d[3], &err), VDB_OK);
	vdb_hnsw_graph dg;
	cr_assert_eq(vdb_hnsw_open(d[0].data, d[0].len, d[1].data, d[1].len, d[2].data, d[2].len,
				   d[3].data, d[3].len, rows, &dg, "test", &err),
		     VDB_OK, "%s", err.message);
	memset(reached, 0, sizeof reached);
	cr_assert_eq(vdb_hnsw_reached(&dg, reached, "test", &err), VDB_OK);
	for (size_t i = 0; i < rows; i++)
		cr_assert(reached[i], "damaged reuse: row %zu is unreachable", i);
	cr_assert_geq(graph_recall(&dg, &sp, rows, q, Q, 10), 0.85);
	for (int i = 0; i < 4; i++)
		vdb_buf_free(&d[i]);
	/* A graph of another m is not reused: the build starts from nothing. */
	vdb_hnsw_build_params p8 = {8, 100, 1, 7, NULL, NULL, &og, map};
	vdb_buf c[4];
	for (int i = 0; i < 4; i++)
		c[i] = (vdb_buf)VDB_BUF_INIT;
	cr_assert_eq(vdb_hnsw_build(&sp, rows, &p8, &c[0], &c[1], &c[2], &c[3], &err), VDB_OK);
	for (int i = 0; i < 4; i++) {
		vdb_buf_free(&obufs[i]);
		vdb_buf_free(&b[i]);
		vdb_buf_free(&fbufs[i]);
		vdb_buf_free(&c[i]);
	}
	free(all);
	free(v);
}
