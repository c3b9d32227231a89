/* Unit tests of payload filters: the language (every operator, dotted paths, arrays, missing
 * fields, escapes, errors that name the path or operator), damaged payloads, and filtered
 * search, count, iteration and delete against brute force, exact and through graphs, over
 * segments, deletions and the log tail. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "formats/payload.h"
#include "index/filter.h"
#include "index/pindex.h"
#include "storage/state.h"
#include "vdb.h"

static int matches(const char *filter, const char *payload)
{
	vdb_filter *f;
	vdb_error err;
	cr_assert_eq(vdb_filter_parse(filter, strlen(filter), &f, &err), VDB_OK, "%s: %s", filter,
		     err.message);
	int r = vdb_filter_eval(f, payload, payload ? strlen(payload) : 0);
	vdb_filter_free(f);
	return r;
}

typedef struct mcase {
	const char *filter, *payload;
	int want;
} mcase;

static void check(const mcase *c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		cr_expect_eq(matches(c[i].filter, c[i].payload), c[i].want, "%s on %s: expected %d",
			     c[i].filter, c[i].payload ? c[i].payload : "(none)", c[i].want);
}

#define CHECK(...)                                                                            \
	do {                                                                                  \
		static const mcase cases_[] = {__VA_ARGS__};                                  \
		check(cases_, sizeof cases_ / sizeof cases_[0]);                              \
	} while (0)

Test(filter, equality_on_strings_numbers_booleans_and_null)
{
	CHECK({"{\"lang\":\"en\"}", "{\"lang\":\"en\"}", 1},
	      {"{\"lang\":\"en\"}", "{\"lang\":\"de\"}", 0},
	      {"{\"lang\":\"en\"}", "{\"lang\":\"eng\"}", 0},
	      {"{\"lang\":\"en\"}", "{\"language\":\"en\"}", 0},
	      {"{\"n\":3}", "{\"n\":3}", 1},
	      {"{\"n\":3}", "{\"n\":3.0}", 1},
	      {"{\"n\":3}", "{\"n\":30e-1}", 1},
	      {"{\"n\":3}", "{\"n\":\"3\"}", 0},
	      {"{\"n\":\"3\"}", "{\"n\":3}", 0},
	      {"{\"n\":-0.5}", "{\"n\":-5e-1}", 1},
	      {"{\"ok\":true}", "{\"ok\":true}", 1},
	      {"{\"ok\":true}", "{\"ok\":false}", 0},
	      {"{\"ok\":true}", "{\"ok\":1}", 0},
	      {"{\"ok\":false}", "{\"ok\":false}", 1},
	      {"{\"x\":null}", "{\"x\":null}", 1},
	      {"{\"x\":null}", "{}", 0},
	      {"{\"x\":{\"$eq\":\"a\"}}", "{\"x\":\"a\"}", 1},
	      {"{\"x\":\"a\"}", "{\"x\":{\"y\":\"a\"}}", 0},
	      {"{\"lang\":\"en\"}", NULL, 0});
}

Test(filter, string_escapes_compare_decoded)
{
	CHECK({"{\"s\":\"a\\\"b\"}", "{\"s\":\"a\\\"b\"}", 1},
	      {"{\"s\":\"a\"}", "{\"s\":\"\\u0061\"}", 1},
	      {"{\"s\":\"\\u00e9\"}", "{\"s\":\"\xc3\xa9\"}", 1},
	      {"{\"\\u0073\":\"x\"}", "{\"s\":\"x\"}", 1},
	      {"{\"s\":\"x\"}", "{\"\\u0073\":\"x\"}", 1},
	      {"{\"s\":{\"$gt\":\"a\"}}", "{\"s\":\"\\u0062\"}", 1},
	      {"{\"s\":{\"$lt\":\"a\"}}", "{\"s\":\"\\u0062\"}", 0});
}

Test(filter, ranges_compare_only_values_of_the_operand_type)
{
	CHECK({"{\"y\":{\"$gte\":2020,\"$lt\":2025}}", "{\"y\":2020}", 1},
	      {"{\"y\":{\"$gte\":2020,\"$lt\":2025}}", "{\"y\":2024.99}", 1},
	      {"{\"y\":{\"$gte\":2020,\"$lt\":2025}}", "{\"y\":2025}", 0},
	      {"{\"y\":{\"$gte\":2020,\"$lt\":2025}}", "{\"y\":2019}", 0},
	      {"{\"y\":{\"$gt\":2020}}", "{\"y\":2020}", 0},
	      {"{\"y\":{\"$lte\":2020}}", "{\"y\":2020}", 1},
	      {"{\"y\":{\"$gt\":2020}}", "{\"y\":\"2021\"}", 0},
	      {"{\"y\":{\"$gt\":-1e300}}", "{\"y\":-1e299}", 1},
	      {"{\"y\":{\"$gt\":1}}", "{\"y\":1e400}", 1},
	      {"{\"d\":{\"$gte\":\"2024-01\"}}", "{\"d\":\"2024-03-01\"}", 1},
	      {"{\"d\":{\"$gte\":\"2024-01\"}}", "{\"d\":\"2023-12-31\"}", 0},
	      {"{\"d\":{\"$lt\":\"b\"}}", "{\"d\":\"ab\"}", 1},
	      {"{\"d\":{\"$lt\":\"ab\"}}", "{\"d\":\"a\"}", 1},
	      {"{\"d\":{\"$gt\":\"a\"}}", "{\"d\":5}", 0},
	      {"{\"y\":{\"$gt\":2020}}", "{}", 0},
	      {"{\"y\":{\"$gt\":2020}}", "{\"y\":null}", 0},
	      {"{\"y\":{\"$gt\":2020}}", "{\"y\":true}", 0});
}

Test(filter, in_nin_ne_and_missing_fields)
{
	CHECK({"{\"t\":{\"$in\":[\"a\",\"b\"]}}", "{\"t\":\"b\"}", 1},
	      {"{\"t\":{\"$in\":[\"a\",\"b\"]}}", "{\"t\":\"c\"}", 0},
	      {"{\"t\":{\"$in\":[1,\"1\",true]}}", "{\"t\":1.0}", 1},
	      {"{\"t\":{\"$in\":[]}}", "{\"t\":1}", 0},
	      {"{\"t\":{\"$in\":[\"a\"]}}", "{}", 0},
	      {"{\"t\":{\"$nin\":[\"a\",\"b\"]}}", "{\"t\":\"c\"}", 1},
	      {"{\"t\":{\"$nin\":[\"a\",\"b\"]}}", "{\"t\":\"a\"}", 0},
	      {"{\"t\":{\"$nin\":[\"a\"]}}", "{}", 1},
	      {"{\"t\":{\"$nin\":[\"a\"]}}", NULL, 1},
	      {"{\"t\":{\"$ne\":\"a\"}}", "{\"t\":\"b\"}", 1},
	      {"{\"t\":{\"$ne\":\"a\"}}", "{\"t\":\"a\"}", 0},
	      {"{\"t\":{\"$ne\":\"a\"}}", "{}", 1},
	      {"{\"t\":{\"$ne\":null}}", "{\"t\":null}", 0},
	      {"{\"t\":{\"$exists\":true}}", "{\"t\":null}", 1},
	      {"{\"t\":{\"$exists\":true}}", "{\"t\":[]}", 1},
	      {"{\"t\":{\"$exists\":true}}", "{\"u\":1}", 0},
	      {"{\"t\":{\"$exists\":false}}", "{\"u\":1}", 1},
	      {"{\"t\":{\"$exists\":false}}", "{\"t\":0}", 0},
	      {"{\"t\":{\"$exists\":false}}", NULL, 1});
}

Test(filter, arrays_match_when_any_element_matches)
{
	CHECK({"{\"tag\":\"a\"}", "{\"tag\":[\"b\",\"a\"]}", 1},
	      {"{\"tag\":\"a\"}", "{\"tag\":[\"b\",\"c\"]}", 0},
	      {"{\"tag\":\"a\"}", "{\"tag\":[]}", 0},
	      {"{\"tag\":{\"$in\":[\"x\",\"c\"]}}", "{\"tag\":[\"b\",\"c\"]}", 1},
	      {"{\"tag\":{\"$nin\":[\"x\",\"c\"]}}", "{\"tag\":[\"b\",\"c\"]}", 0},
	      {"{\"tag\":{\"$ne\":\"c\"}}", "{\"tag\":[\"b\",\"c\"]}", 0},
	      {"{\"tag\":{\"$ne\":\"z\"}}", "{\"tag\":[\"b\",\"c\"]}", 1},
	      {"{\"n\":{\"$gt\":5}}", "{\"n\":[1,2,9]}", 1},
	      {"{\"n\":{\"$gt\":5}}", "{\"n\":[1,2,3]}", 0},
	      {"{\"n\":{\"$gt\":5,\"$lt\":2}}", "{\"n\":[1,9]}", 1}, /* per condition, like Mongo */
	      {"{\"n\":1}", "{\"n\":[[1]]}", 0},
	      {"{\"a.b\":1}", "{\"a\":[{\"b\":2},{\"b\":1}]}", 1},
	      {"{\"a.b\":1}", "{\"a\":[{\"b\":2},3,[{\"b\":1}]]}", 1},
	      {"{\"a.b\":1}", "{\"a\":[{\"b\":2},3]}", 0});
}

Test(filter, dotted_paths)
{
	CHECK({"{\"meta.source\":\"web\"}", "{\"meta\":{\"source\":\"web\"}}", 1},
	      {"{\"meta.source\":\"web\"}", "{\"meta\":{\"source\":\"book\"}}", 0},
	      {"{\"meta.source\":\"web\"}", "{\"meta\":\"web\"}", 0},
	      {"{\"meta.source\":\"web\"}", "{\"meta.source\":\"web\"}", 0},
	      {"{\"a.b.c\":{\"$gte\":1}}", "{\"x\":[1,{\"y\":2}],\"a\":{\"q\":{},\"b\":{\"c\":1}}}", 1},
	      {"{\"a.b\":{\"$exists\":false}}", "{\"a\":{\"c\":1}}", 1},
	      {"{\"a.b\":{\"$exists\":false}}", "{\"a\":{\"b\":{}}}", 0},
	      {"{\"a\":{\"$exists\":true}}", "{\"a\":{\"b\":{}}}", 1});
}

Test(filter, and_or_not_and_implicit_and)
{
	CHECK({"{}", "{\"a\":1}", 1},
	      {"{}", NULL, 1},
	      {"{\"a\":1,\"b\":2}", "{\"a\":1,\"b\":2}", 1},
	      {"{\"a\":1,\"b\":2}", "{\"a\":1,\"b\":3}", 0},
	      {"{\"$and\":[{\"a\":1},{\"b\":2}]}", "{\"a\":1,\"b\":2}", 1},
	      {"{\"$and\":[{\"a\":1},{\"b\":2}]}", "{\"a\":1}", 0},
	      {"{\"$or\":[{\"a\":1},{\"b\":2}]}", "{\"b\":2}", 1},
	      {"{\"$or\":[{\"a\":1},{\"b\":2}]}", "{\"a\":2,\"b\":1}", 0},
	      {"{\"$not\":{\"a\":1}}", "{\"a\":1}", 0},
	      {"{\"$not\":{\"a\":1}}", "{\"a\":2}", 1},
	      {"{\"$not\":{\"a\":1}}", "{}", 1},
	      {"{\"a\":{\"$not\":{\"$gt\":5}}}", "{\"a\":3}", 1},
	      {"{\"a\":{\"$not\":{\"$gt\":5}}}", "{\"a\":7}", 0},
	      {"{\"a\":{\"$not\":{\"$gt\":5}}}", "{}", 1},
	      {"{\"$or\":[{\"$and\":[{\"a\":1},{\"b\":{\"$in\":[2,3]}}]},{\"$not\":{\"c\":{\"$exists\":true}}}]}",
	       "{\"a\":1,\"b\":3,\"c\":0}", 1},
	      {"{\"$or\":[{\"$and\":[{\"a\":1},{\"b\":{\"$in\":[2,3]}}]},{\"$not\":{\"c\":{\"$exists\":true}}}]}",
	       "{\"a\":1,\"b\":4,\"c\":0}", 0},
	      {"{\"$or\":[{\"$and\":[{\"a\":1},{\"b\":{\"$in\":[2,3]}}]},{\"$not\":{\"c\":{\"$exists\":true}}}]}",
	       "{\"a\":1,\"b\":4}", 1},
	      {"{\"lang\":\"en\",\"$or\":[{\"y\":{\"$lt\":2000}},{\"y\":{\"$gt\":2020}}]}",
	       "{\"lang\":\"en\",\"y\":2021}", 1},
	      {"{\"lang\":\"en\",\"$or\":[{\"y\":{\"$lt\":2000}},{\"y\":{\"$gt\":2020}}]}",
	       "{\"lang\":\"en\",\"y\":2010}", 0});
}

Test(filter, whitespace_in_payloads_is_accepted)
{
	CHECK({"{\"a.b\":{\"$in\":[1]}}", " { \"a\" : { \"b\" : [ 2 , 1 ] } } ", 1},
	      {"{\"a.c\":{\"$exists\":true}}", "{ \"a\" :\t{ \"b\" : [ 2 , 1 ] }\n}", 0});
}

static void expect_error(const char *filter, const char *msg)
{
	vdb_filter *f = NULL;
	vdb_error err;
	vdb_status st = vdb_filter_parse(filter, strlen(filter), &f, &err);
	cr_expect_eq(st, VDB_EINVAL, "%s: accepted", filter);
	if (st == VDB_EINVAL)
		cr_expect(strstr(err.message, msg) != NULL, "%s: message \"%s\" lacks \"%s\"", filter,
			  err.message, msg);
	vdb_filter_free(f);
}

Test(filter, errors_name_the_path_or_operator)
{
	expect_error("{\"title\":{\"$regex\":\"x\"}}", "unknown operator \"$regex\" at \"title\"");
	expect_error("{\"$nor\":[]}", "unknown operator \"$nor\"");
	expect_error("{\"tag\":{\"$in\":\"a\"}}", "\"$in\" at \"tag\" needs an array");
	expect_error("{\"tag\":{\"$nin\":[[1]]}}", "\"$nin\" at \"tag\": values must be");
	expect_error("{\"tag\":{\"$in\":[{}]}}", "\"$in\" at \"tag\": values must be");
	expect_error("{\"year\":{\"$gt\":true}}", "\"$gt\" at \"year\" needs a number or a string");
	expect_error("{\"year\":{\"$lte\":null}}", "\"$lte\" at \"year\" needs a number or a string");
	expect_error("{\"a\":{\"$exists\":1}}", "\"$exists\" at \"a\" needs true or false");
	expect_error("{\"a\":{\"$eq\":[1]}}", "\"$eq\" at \"a\" needs a string, number");
	expect_error("{\"a\":[1,2]}", "the value of \"a\" is an array: use {\"$in\"");
	expect_error("{\"a\":{\"b\":1}}", "the value of \"a\" is an object");
	expect_error("{\"a\":{\"$gt\":1,\"b\":1}}", "\"b\" at \"a\": an operator object holds only");
	expect_error("{\"a\":{}}", "the value of \"a\" is an object");
	expect_error("{\"a..b\":1}", "invalid field path \"a..b\" (empty part)");
	expect_error("{\".a\":1}", "invalid field path \".a\"");
	expect_error("{\"a.\":1}", "invalid field path \"a.\"");
	expect_error("{\"\":1}", "invalid field path \"\"");
	expect_error("{\"$and\":[]}", "\"$and\" needs a non-empty array");
	expect_error("{\"$or\":{}}", "\"$or\" needs a non-empty array");
	expect_error("{\"$or\":[{\"a\":1},2]}", "\"$or\": element 2 is not a filter object");
	expect_error("{\"$not\":[]}", "\"$not\" needs a filter object");
	expect_error("{\"a\":{\"$not\":1}}", "\"$not\" at \"a\" needs an object of operators");
	expect_error("{\"$or\":[{\"x\":{\"$foo\":1}}]}", "unknown operator \"$foo\" at \"x\"");
	expect_error("[1]", "must be a JSON object");
	expect_error("\"a\"", "must be a JSON object");
	expect_error("{\"a\":1", "invalid JSON at column");
	expect_error("{\"a\":1,\"a\":2}", "duplicate key");
	expect_error("{\"a\":1} x", "invalid JSON at column");
	expect_error("", "invalid JSON at column 1");
}

Test(filter, nested_too_deeply_is_an_error_not_a_crash)
{
	char buf[4096];
	size_t n = 0;
	for (int i = 0; i < 40; i++)
		n += (size_t)sprintf(buf + n, "{\"$not\":");
	n += (size_t)sprintf(buf + n, "{\"a\":1}");
	for (int i = 0; i < 40; i++)
		buf[n++] = '}';
	buf[n] = '\0';
	/* 41 levels of JSON objects are fine; an even number of negations cancels out */
	cr_expect_eq(matches(buf, "{\"a\":1}"), 1);
	n = 0;
	for (int i = 0; i < 70; i++)
		n += (size_t)sprintf(buf + n, "{\"$not\":");
	n += (size_t)sprintf(buf + n, "{\"a\":1}");
	for (int i = 0; i < 70; i++)
		buf[n++] = '}';
	buf[n] = '\0';
	expect_error(buf, "filter:");
}

Test(filter, damaged_payloads_are_reported_not_trusted)
{
	const char *bad[] = {"{\"a\":", "{\"a\"", "{\"a\":1,", "{\"a\":\"x", "{", "[", "{\"a\" 1}",
			     "{\"a\":1]", "{\"b\":[1,2}", "{\"a\":{\"b\":}}"};
	/* A field that is absent makes the walk read the whole payload. (Damage after the value
	 * that decides the answer is not seen: checksums catch damaged files.) */
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		cr_expect_eq(matches("{\"zz\":{\"$exists\":false}}", bad[i]), -1, "%s", bad[i]);
	vdb_filter *f;
	vdb_error err;
	cr_assert_eq(vdb_filter_parse("{\"a\":1}", 7, &f, &err), VDB_OK);
	int m = 5;
	cr_expect_eq(vdb_filter_match(f, "{\"a\":", 5, &m, &err), VDB_EDATA);
	cr_expect_eq(m, 5, "output written on failure");
	cr_expect_eq(vdb_filter_match(f, "{\"a\":1}", 7, &m, &err), VDB_OK);
	cr_expect_eq(m, 1);
	vdb_filter_free(f);
}

Test(filter, canonical_text_ignores_whitespace)
{
	vdb_filter *a, *b;
	vdb_error err;
	const char *loose = "{ \"a\" : { \"$in\" : [ 1 , 2 ] } }";
	cr_assert_eq(vdb_filter_parse(loose, strlen(loose), &a, &err), VDB_OK, "%s", err.message);
	const char *tight = "{\"a\":{\"$in\":[1,2]}}";
	cr_assert_eq(vdb_filter_parse(tight, strlen(tight), &b, &err), VDB_OK);
	size_t la, lb;
	const char *ta = vdb_filter_text(a, &la), *tb = vdb_filter_text(b, &lb);
	cr_expect(la == lb && !memcmp(ta, tb, la));
	cr_expect_eq(vdb_filter_eval(a, "{ \"a\" : [ 3 , 2 ] }", 19), 1);
	vdb_filter_free(a);
	vdb_filter_free(b);
	vdb_filter_free(NULL);
}

/* ---- filtered search, count, iteration and delete ---------------------------------------- */

static char tmpdir[256];
static char db[300];

static void setup(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/vdb-unit-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
	snprintf(db, sizeof db, "%s/db", tmpdir);
}

static void teardown(void)
{
	char cmd[400];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	cr_assert_eq(system(cmd), 0);
}

static uint64_t rng;

static double rnd(void)
{
	rng = rng * 6364136223846793005ull + 1442695040888963407ull;
	return (double)(rng >> 11) / 9007199254740992.0;
}

#define DIM 8
#define ROWS 6000

/* Rows 0..ROWS-1 with payload {"g": row % 1000, "tags": [...]}; every 7th row has none. */
static float vecs[ROWS][DIM];

static void payload_of(uint64_t row, char *buf, size_t cap)
{
	snprintf(buf, cap, "{\"g\":%llu,\"tags\":[\"t%llu\",\"u%llu\"]}",
		 (unsigned long long)(row % 1000), (unsigned long long)(row % 3),
		 (unsigned long long)(row % 5));
}

static void fill(uint64_t seal)
{
	vdb_collection_config cfg;
	vdb_collection_config_init(&cfg);
	cfg.dim = DIM;
	cfg.seal_bytes = seal;
	vdb_error err;
	cr_assert_eq(vdb_collection_create(db, "default", &cfg, &err), VDB_OK, "%s", err.message);
	vdb_writer *w;
	cr_assert_eq(vdb_writer_open(db, "default", NULL, &w, &err), VDB_OK, "%s", err.message);
	rng = 42;
	for (uint64_t r = 0; r < ROWS; r++) {
		for (int d = 0; d < DIM; d++)
			vecs[r][d] = (float)rnd();
		char p[128];
		payload_of(r, p, sizeof p);
		vdb_id id = {0, r, NULL, 0};
		cr_assert_eq(vdb_writer_upsert(w, &id, vecs[r], r % 7 ? p : NULL, r % 7 ? strlen(p) : 0,
					       &err), VDB_OK, "%s", err.message);
		if (r % 500 == 499)
			cr_assert_eq(vdb_writer_commit(w, &err), VDB_OK, "%s", err.message);
	}
	cr_assert_eq(vdb_writer_commit(w, &err), VDB_OK, "%s", err.message);
	/* Delete every 11th row: deletions must stay invisible to filtered reads too. */
	for (uint64_t r = 0; r < ROWS; r += 11) {
		vdb_id id = {0, r, NULL, 0};
		cr_assert_eq(vdb_writer_delete(w, &id, &err), VDB_OK);
	}
	cr_assert_eq(vdb_writer_commit(w, &err), VDB_OK, "%s", err.message);
	vdb_writer_close(w);
}

static int row_matches(uint64_t r, int which)
{
	if (r % 11 == 0)
		return 0;
	if (r % 7 == 0)
		return which == 3; /* no payload: only the $exists:false filter */
	switch (which) {
	case 0: return r % 1000 < 500;                /* 50% */
	case 1: return r % 1000 < 10;                 /* 1% */
	case 2: return r % 1000 == 3 && r % 3 == 0;   /* compound, rare */
	default: return 0;
	}
}

static const char *filters[] = {
	"{\"g\":{\"$lt\":500}}",
	"{\"g\":{\"$in\":[0,1,2,3,4,5,6,7,8,9]}}",
	"{\"g\":3,\"tags\":\"t0\"}",
	"{\"g\":{\"$exists\":false}}",
};

static void brute(const float *q, int which, size_t k, uint64_t *out, size_t *n)
{
	double best[64];
	size_t m = 0;
	for (uint64_t r = 0; r < ROWS; r++) {
		if (!row_matches(r, which))
			continue;
		double d = 0;
		for (int i = 0; i < DIM; i++)
			d += ((double)q[i] - vecs[r][i]) * ((double)q[i] - vecs[r][i]);
		size_t j = m < k ? m++ : k;
		if (j == k && d >= best[k - 1])
			continue;
		if (j == k)
			j = k - 1;
		while (j > 0 && best[j - 1] > d) {
			best[j] = best[j - 1];
			out[j] = out[j - 1];
			j--;
		}
		best[j] = d;
		out[j] = r;
	}
	*n = m;
}

static void check_search(int exact, size_t ef, double min_recall)
{
	vdb_collection *c;
	vdb_error err;
	cr_assert_eq(vdb_collection_open(db, "default", &c, &err), VDB_OK, "%s", err.message);
	for (int which = 0; which < 4; which++) {
		vdb_filter *f;
		cr_assert_eq(vdb_filter_parse(filters[which], strlen(filters[which]), &f, &err), VDB_OK);
		uint64_t want = 0, got;
		for (uint64_t r = 0; r < ROWS; r++)
			want += (uint64_t)row_matches(r, which);
		cr_assert_eq(vdb_collection_count_where(c, f, &got, &err), VDB_OK, "%s", err.message);
		cr_expect_eq(got, want, "count of %s: %llu, expected %llu", filters[which],
			     (unsigned long long)got, (unsigned long long)want);
		size_t hit = 0, total = 0;
		for (int qi = 0; qi < 20; qi++) {
			float q[DIM];
			for (int d = 0; d < DIM; d++)
				q[d] = (float)rnd();
			vdb_search_options o;
			vdb_search_options_init(&o);
			o.exact = exact;
			o.ef = ef;
			o.filter = f;
			vdb_hit hits[10];
			size_t n;
			uint64_t truth[10];
			size_t tn;
			brute(q, which, 10, truth, &tn);
			cr_assert_eq(vdb_search(c, q, 10, &o, hits, &n, &err), VDB_OK, "%s", err.message);
			cr_expect_eq(n, tn < 10 ? tn : 10, "%s: %zu results, %zu match", filters[which], n,
				     tn);
			for (size_t i = 0; i < n; i++) {
				vdb_record rec;
				cr_assert_eq(vdb_hit_record(c, &hits[i], &rec, &err), VDB_OK);
				cr_expect(row_matches(rec.id.num, which), "%s returned row %llu",
					  filters[which], (unsigned long long)rec.id.num);
				for (size_t j = 0; j < (tn < 10 ? tn : 10); j++)
					hit += truth[j] == rec.id.num;
			}
			total += tn < 10 ? tn : 10;
		}
		if (total)
			cr_expect_geq((double)hit / total, min_recall, "%s: recall %.3f", filters[which],
				      (double)hit / total);
		vdb_filter_free(f);
	}
	vdb_collection_close(c);
}

Test(filtered, exact_search_and_count_over_segments_deletions_and_log, .init = setup,
     .fini = teardown)
{
	fill(64 << 10);
	check_search(1, 0, 1.0);
}

Test(filtered, graph_search_returns_k_matching_results, .init = setup, .fini = teardown)
{
	/* Segments of about 2,500 rows, with graphs. With ef 16 the 50% filter goes through the
	 * graphs (cost model in storage/search.c: 1,250^2 > 16 * 16 * 2,500), the 1% one is scanned. */
	fill(256 << 10);
	vdb_writer *w;
	vdb_error err;
	uint64_t segs, live;
	cr_assert_eq(vdb_writer_open(db, "default", NULL, &w, &err), VDB_OK, "%s", err.message);
	cr_assert_eq(vdb_writer_stats(w, &segs, &live), VDB_OK);
	cr_assert(segs >= 1 && segs <= 3, "%llu segments", (unsigned long long)segs);
	vdb_writer_close(w);
	check_search(0, 16, 0.9);
	check_search(0, 0, 0.95);
}

Test(filtered, cursor_and_delete_where, .init = setup, .fini = teardown)
{
	fill(64 << 10);
	vdb_error err;
	vdb_filter *f;
	cr_assert_eq(vdb_filter_parse(filters[0], strlen(filters[0]), &f, &err), VDB_OK);
	vdb_collection *c;
	cr_assert_eq(vdb_collection_open(db, "default", &c, &err), VDB_OK);
	vdb_cursor *cur;
	cr_assert_eq(vdb_cursor_open_where(c, f, &cur, &err), VDB_OK);
	uint64_t n = 0, want = 0;
	for (uint64_t r = 0; r < ROWS; r++)
		want += (uint64_t)row_matches(r, 0);
	for (;;) {
		vdb_record rec;
		int has;
		cr_assert_eq(vdb_cursor_next(cur, &rec, &has, &err), VDB_OK, "%s", err.message);
		if (!has)
			break;
		cr_expect(row_matches(rec.id.num, 0));
		n++;
	}
	cr_expect_eq(n, want);
	vdb_cursor_close(cur);
	vdb_collection_close(c);

	vdb_writer *w;
	cr_assert_eq(vdb_writer_open(db, "default", NULL, &w, &err), VDB_OK);
	vdb_id id = {0, 1, NULL, 0};
	cr_assert_eq(vdb_writer_delete(w, &id, &err), VDB_OK);
	uint64_t deleted = 0;
	cr_expect_eq(vdb_writer_delete_where(w, f, &deleted, &err), VDB_EINVAL);
	cr_expect(strstr(err.message, "pending batch") != NULL, "%s", err.message);
	vdb_writer_rollback(w);
	cr_assert_eq(vdb_writer_delete_where(w, f, &deleted, &err), VDB_OK, "%s", err.message);
	cr_expect_eq(deleted, want);
	cr_assert_eq(vdb_writer_commit(w, &err), VDB_OK, "%s", err.message);
	vdb_writer_close(w);

	cr_assert_eq(vdb_collection_open(db, "default", &c, &err), VDB_OK);
	uint64_t left;
	cr_assert_eq(vdb_collection_count_where(c, f, &left, &err), VDB_OK);
	cr_expect_eq(left, 0);
	uint64_t live = 0;
	for (uint64_t r = 0; r < ROWS; r++)
		live += r % 11 != 0;
	cr_expect_eq(vdb_collection_count(c), live - want);
	vdb_collection_close(c);
	vdb_filter_free(f);
}

/* ---- payload indexes ------------------------------------------------------------------------ */

static const char *ix_payloads[] = {
	"{\"lang\":\"en\",\"year\":2001,\"score\":0.5,\"tags\":[\"a\",\"b\"]}",
	"{\"lang\":\"\\u00e9\",\"year\":2001.0,\"score\":-0.0,\"tags\":\"a\"}",
	"{\"lang\":\"\xc3\xa9\",\"year\":\"2001\",\"score\":-1e300,\"tags\":[]}",
	"{\"lang\":[\"de\",\"en\"],\"year\":1999,\"score\":1e400,\"m\":{\"y\":3}}",
	"{\"year\":-5,\"score\":0,\"tags\":[[\"a\"]],\"lang\":null}",
	"{\"lang\":\"fr\",\"year\":2030,\"score\":2.5e-308}",
	NULL,
};

static void ix_collection(const char *name, int indexed)
{
	vdb_collection_config cfg;
	vdb_collection_config_init(&cfg);
	cfg.dim = 2;
	if (indexed) {
		const char *paths[] = {"lang", "year", "score", "tags"};
		vdb_field_type types[] = {VDB_FIELD_KEYWORD, VDB_FIELD_INT, VDB_FIELD_FLOAT,
					  VDB_FIELD_KEYWORD};
		for (int i = 0; i < 4; i++) {
			snprintf(cfg.index_fields[i].path, VDB_FIELD_PATH_MAX, "%s", paths[i]);
			cfg.index_fields[i].type = types[i];
		}
		cfg.n_index_fields = 4;
	}
	vdb_error err;
	cr_assert_eq(vdb_collection_create(db, name, &cfg, &err), VDB_OK, "%s", err.message);
	vdb_writer *w;
	cr_assert_eq(vdb_writer_open(db, name, NULL, &w, &err), VDB_OK, "%s", err.message);
	size_t np = sizeof ix_payloads / sizeof ix_payloads[0];
	for (uint64_t r = 0; r < 700; r++) {
		float v[2] = {(float)r, 1};
		vdb_id id = {0, r, NULL, 0};
		const char *p = ix_payloads[r % np];
		cr_assert_eq(vdb_writer_upsert(w, &id, v, p, p ? strlen(p) : 0, &err), VDB_OK, "%s",
			     err.message);
	}
	cr_assert_eq(vdb_writer_commit(w, &err), VDB_OK, "%s", err.message);
	cr_assert_eq(vdb_writer_compact(w, &err), VDB_OK, "%s", err.message);
	vdb_writer_close(w);
}

static const struct {
	const char *filter;
	int narrows; /* the indexes give candidates */
} ix_filters[] = {
	{"{\"lang\":\"en\"}", 1},
	{"{\"lang\":\"\xc3\xa9\"}", 1},
	{"{\"lang\":{\"$in\":[\"de\",\"fr\"]}}", 1},
	{"{\"year\":2001}", 1},
	{"{\"year\":{\"$gte\":2000,\"$lt\":2002}}", 1},
	{"{\"year\":{\"$gt\":2001}}", 1},
	{"{\"year\":{\"$lte\":-5}}", 1},
	{"{\"score\":0}", 1},
	{"{\"score\":{\"$gt\":1e308}}", 1},
	{"{\"score\":{\"$lt\":-1e299}}", 1},
	{"{\"score\":{\"$gt\":0}}", 1},
	{"{\"tags\":\"a\"}", 1},
	{"{\"lang\":\"en\",\"m.y\":3}", 1},
	{"{\"$or\":[{\"lang\":\"fr\"},{\"year\":1999}]}", 1},
	{"{\"$or\":[{\"lang\":\"fr\"},{\"m.y\":3}]}", 0},
	{"{\"year\":\"2001\"}", 0},   /* strings are not in an int index */
	{"{\"lang\":null}", 0},
	{"{\"lang\":{\"$ne\":\"en\"}}", 0},
	{"{\"lang\":{\"$exists\":true}}", 0},
	{"{\"$not\":{\"lang\":\"en\"}}", 0},
	{"{\"lang\":{\"$gt\":\"a\"}}", 0}, /* keyword indexes hold no order */
	{"{\"year\":{\"$in\":[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,"
	 "26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,"
	 "56,57,58,59,60,61,62,63,64,65,66,1999]}}", 1},
	{"{}", 0},
};

Test(pindex, candidates_are_a_superset_and_results_equal_unindexed, .init = setup,
     .fini = teardown)
{
	ix_collection("ix", 1);
	ix_collection("plain", 0);
	vdb_state st;
	vdb_error err;
	cr_assert_eq(vdb_state_load(db, "ix", &st, NULL, &err), VDB_OK, "%s", err.message);
	cr_assert_eq(st.man.nseg, 1);
	const vdb_segment *seg = &st.segs[0];
	cr_assert_eq(seg->npidx, 4);
	vdb_collection *ci, *cp;
	cr_assert_eq(vdb_collection_open(db, "ix", &ci, &err), VDB_OK);
	cr_assert_eq(vdb_collection_open(db, "plain", &cp, &err), VDB_OK);
	for (size_t i = 0; i < sizeof ix_filters / sizeof ix_filters[0]; i++) {
		const char *text = ix_filters[i].filter;
		vdb_filter *f;
		cr_assert_eq(vdb_filter_parse(text, strlen(text), &f, &err), VDB_OK, "%s", text);
		uint64_t *cand;
		cr_assert_eq(vdb_filter_candidates(f, seg->pidx, seg->npidx, seg->rows, &cand,
						   seg->file, &err), VDB_OK, "%s", err.message);
		cr_expect_eq(cand != NULL, ix_filters[i].narrows, "%s", text);
		uint64_t ncand = 0, nmatch = 0;
		for (uint64_t r = 0; r < seg->rows; r++) {
			const char *p;
			size_t len;
			cr_assert_eq(vdb_segment_payload(seg, r, &p, &len, &err), VDB_OK);
			int m = vdb_filter_eval(f, p, len);
			int c = !cand || (cand[r >> 6] >> (r & 63) & 1);
			cr_expect(!m || c, "%s: row %llu matches but is no candidate", text,
				  (unsigned long long)r);
			ncand += (uint64_t)c;
			nmatch += (uint64_t)m;
		}
		if (cand && nmatch)
			cr_expect_lt(ncand, seg->rows, "%s: the index narrows nothing", text);
		uint64_t a, b;
		cr_assert_eq(vdb_collection_count_where(ci, f, &a, &err), VDB_OK, "%s", err.message);
		cr_assert_eq(vdb_collection_count_where(cp, f, &b, &err), VDB_OK, "%s", err.message);
		cr_expect_eq(a, b, "%s: %llu with indexes, %llu without", text, (unsigned long long)a,
			     (unsigned long long)b);
		cr_expect_eq(a, nmatch, "%s", text);
		free(cand);
		vdb_filter_free(f);
	}
	vdb_collection_close(ci);
	vdb_collection_close(cp);
	vdb_state_free(&st);
}

Test(pindex, an_entry_naming_a_row_outside_the_segment_is_corruption)
{
	unsigned char sec[16 + 8 + 16] = {0};
	sec[0] = VDB_FIELD_INT;
	sec[4] = 1;
	sec[8] = 1;
	sec[16] = 'x';
	uint64_t key = vdb_pindex_number_key(3), row = 10;
	memcpy(sec + 24, &key, 8);
	memcpy(sec + 32, &row, 8);
	vdb_pindex p;
	vdb_error err;
	cr_assert_eq(vdb_pindex_open(sec, sec, sizeof sec, &p, "seg-1.vdb", &err), VDB_OK, "%s",
		     err.message);
	vdb_filter *f;
	cr_assert_eq(vdb_filter_parse("{\"x\":3}", 7, &f, &err), VDB_OK);
	uint64_t *cand = NULL;
	cr_expect_eq(vdb_filter_candidates(f, &p, 1, 11, &cand, "seg-1.vdb", &err), VDB_OK);
	cr_expect(cand && cand[0] == 1ull << 10);
	free(cand);
	cr_expect_eq(vdb_filter_candidates(f, &p, 1, 10, &cand, "seg-1.vdb", &err), VDB_ECORRUPT);
	cr_expect(strstr(err.message, "seg-1.vdb: damaged payload index") != NULL, "%s", err.message);
	sec[8] = 2; /* the count no longer matches the size */
	cr_expect_eq(vdb_pindex_open(sec, sec, sizeof sec, &p, "seg-1.vdb", &err), VDB_ECORRUPT);
	vdb_filter_free(f);
}

Test(pindex, number_keys_keep_the_order_of_numbers)
{
	double v[] = {-1e308, -2.5, -1, -1e-300, 0, 1e-300, 1, 2.5, 1e308};
	for (size_t i = 0; i + 1 < sizeof v / sizeof v[0]; i++)
		cr_expect_lt(vdb_pindex_number_key(v[i]), vdb_pindex_number_key(v[i + 1]), "%g", v[i]);
	cr_expect_eq(vdb_pindex_number_key(-0.0), vdb_pindex_number_key(0.0));
}

Test(filter, numbers_parse_exactly_whatever_their_spelling)
{
	struct {
		const char *text;
		double want;
	} c[] = {{"0", 0},	    {"-0", -0.0},	 {"3", 3},	      {"3.0", 3},
		 {"30e-1", 3},	    {"0.1", 0.1},	 {"-2.5E+3", -2500}, {"1e22", 1e22},
		 {"1e23", 1e23},    {"123456789012345678901234567890", 123456789012345678901234567890.0},
		 {"0.30000000000000004", 0.30000000000000004}, {"1e-400", 0},
		 {"9007199254740993", 9007199254740993.0}};
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		double d = -1;
		cr_expect_eq(vdb_json_number(c[i].text, strlen(c[i].text), &d), 0, "%s", c[i].text);
		cr_expect_eq(d, c[i].want, "%s: %.17g", c[i].text, d);
	}
	/* A token longer than any stack buffer, with its exponent at the very end. */
	char longnum[2000];
	memset(longnum, '0', sizeof longnum);
	longnum[0] = '1';
	memcpy(longnum + sizeof longnum - 6, "e-1993", 6); /* 1 and 1993 zeros */
	double d;
	cr_expect_eq(vdb_json_number(longnum, sizeof longnum, &d), 0);
	cr_expect_eq(d, 1.0);
	const char *bad[] = {"", "-", "1.", ".5", "1e", "1x", "--1"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		cr_expect_eq(vdb_json_number(bad[i], strlen(bad[i]), &d), -1, "%s", bad[i]);
}

Test(filter, in_lists_of_any_length)
{
	char f[8192];
	size_t n = (size_t)sprintf(f, "{\"n\":{\"$in\":[");
	for (int i = 0; i < 500; i++)
		n += (size_t)sprintf(f + n, "%s%d", i ? "," : "", i * 2);
	sprintf(f + n, "]}}");
	cr_expect_eq(matches(f, "{\"n\":998}"), 1);
	cr_expect_eq(matches(f, "{\"n\":997}"), 0);
	cr_expect_eq(matches(f, "{\"n\":[1,3,0.0]}"), 1);
}

/* A segment large enough that a 10% filter goes through the graph (60,000 rows: 6,000
 * matches, 6,000^2 > 32 * 16 * 60,000): results are complete, all match, and recall holds. */
Test(filtered, graph_traversal_at_ten_percent, .init = setup, .fini = teardown)
{
	enum { N = 60000, D = 8 };
	static float v[N][D];
	vdb_collection_config cfg;
	vdb_collection_config_init(&cfg);
	cfg.dim = D;
	cfg.ef_construction = 64;
	vdb_error err;
	cr_assert_eq(vdb_collection_create(db, "default", &cfg, &err), VDB_OK, "%s", err.message);
	vdb_writer *w;
	cr_assert_eq(vdb_writer_open(db, "default", NULL, &w, &err), VDB_OK, "%s", err.message);
	rng = 99;
	for (uint64_t r = 0; r < N; r++) {
		for (int d = 0; d < D; d++)
			v[r][d] = (float)rnd();
		char p[32];
		snprintf(p, sizeof p, "{\"g\":%llu}", (unsigned long long)(r % 10));
		vdb_id id = {0, r, NULL, 0};
		cr_assert_eq(vdb_writer_upsert(w, &id, v[r], p, strlen(p), &err), VDB_OK);
		if (r % 5000 == 4999)
			cr_assert_eq(vdb_writer_commit(w, &err), VDB_OK, "%s", err.message);
	}
	cr_assert_eq(vdb_writer_compact(w, &err), VDB_OK, "%s", err.message);
	vdb_writer_close(w);
	vdb_collection *c;
	cr_assert_eq(vdb_collection_open(db, "default", &c, &err), VDB_OK);
	vdb_filter *f;
	cr_assert_eq(vdb_filter_parse("{\"g\":7}", 7, &f, &err), VDB_OK);
	size_t hit = 0, total = 0;
	for (int qi = 0; qi < 30; qi++) {
		float q[D];
		for (int d = 0; d < D; d++)
			q[d] = (float)rnd();
		double best[10];
		uint64_t truth[10];
		size_t m = 0;
		for (uint64_t r = 7; r < N; r += 10) {
			double dd = 0;
			for (int d = 0; d < D; d++)
				dd += ((double)q[d] - v[r][d]) * ((double)q[d] - v[r][d]);
			size_t j = m < 10 ? m++ : 10;
			if (j == 10 && dd >= best[9])
				continue;
			if (j == 10)
				j = 9;
			while (j > 0 && best[j - 1] > dd) {
				best[j] = best[j - 1], truth[j] = truth[j - 1];
				j--;
			}
			best[j] = dd, truth[j] = r;
		}
		vdb_search_options o;
		vdb_search_options_init(&o);
		o.filter = f;
		vdb_hit hits[10];
		size_t n;
		cr_assert_eq(vdb_search(c, q, 10, &o, hits, &n, &err), VDB_OK, "%s", err.message);
		cr_assert_eq(n, 10);
		for (size_t i = 0; i < n; i++) {
			vdb_record rec;
			cr_assert_eq(vdb_hit_record(c, &hits[i], &rec, &err), VDB_OK);
			cr_expect_eq(rec.id.num % 10, 7);
			for (size_t j = 0; j < 10; j++)
				hit += truth[j] == rec.id.num;
		}
		total += 10;
	}
	cr_expect_geq((double)hit / total, 0.95, "recall %.3f", (double)hit / total);
	vdb_filter_free(f);
	vdb_collection_close(c);
}

/* The AND of two compiled filters matches exactly what both match, whatever each holds
 * (ranges, $in with strings holding NUL bytes, negations, {}), and outlives both. */
Test(filter, and_of_compiled_filters)
{
	static const char *const sources[] = {
		"{}", "{\"lang\":\"en\"}", "{\"year\":{\"$gte\":2020,\"$lt\":2025}}",
		"{\"tag\":{\"$in\":[\"a\",\"b\\u0000c\"]}}", "{\"$not\":{\"lang\":\"de\"}}",
		"{\"meta.src\":{\"$exists\":false}}", "{\"$or\":[{\"n\":1},{\"n\":{\"$gt\":5}}]}"};
	static const char *const payloads[] = {
		"{\"lang\":\"en\",\"year\":2021,\"tag\":\"a\"}", "{\"lang\":\"de\",\"year\":2023}",
		"{\"lang\":\"en\",\"tag\":[\"x\",\"b\\u0000c\"],\"n\":7}", "{\"meta\":{\"src\":1}}",
		"{\"year\":2030,\"n\":1}", "{}"};
	size_t nf = sizeof sources / sizeof *sources, np = sizeof payloads / sizeof *payloads;
	vdb_error err;
	for (size_t i = 0; i < nf; i++)
		for (size_t j = 0; j < nf; j++) {
			vdb_filter *a, *b, *ab;
			cr_assert_eq(vdb_filter_parse(sources[i], strlen(sources[i]), &a, &err), VDB_OK,
				     "%s", err.message);
			cr_assert_eq(vdb_filter_parse(sources[j], strlen(sources[j]), &b, &err), VDB_OK);
			cr_assert_eq(vdb_filter_and(a, b, &ab, &err), VDB_OK);
			size_t len;
			const char *text = vdb_filter_text(ab, &len);
			char want[512];
			size_t la, lb;
			const char *ta = vdb_filter_text(a, &la), *tb = vdb_filter_text(b, &lb);
			snprintf(want, sizeof want, "{\"$and\":[%.*s,%.*s]}", (int)la, ta, (int)lb, tb);
			cr_expect_eq(len, strlen(want));
			cr_expect(!memcmp(text, want, len), "%.*s", (int)len, text);
			int both[16];
			for (size_t p = 0; p < np; p++)
				both[p] = vdb_filter_eval(a, payloads[p], strlen(payloads[p])) &&
					  vdb_filter_eval(b, payloads[p], strlen(payloads[p]));
			vdb_filter_free(a); /* the AND owns copies */
			vdb_filter_free(b);
			for (size_t p = 0; p < np; p++)
				cr_expect_eq(vdb_filter_eval(ab, payloads[p], strlen(payloads[p])), both[p],
					     "%s AND %s on %s", sources[i], sources[j], payloads[p]);
			vdb_filter_free(ab);
		}
}
