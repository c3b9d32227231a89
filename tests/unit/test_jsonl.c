/* Unit tests of the JSON-lines format: record and query parsing (accepted forms and every
 * rejection with its message), command-line ids, and exact output. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vdb_admin.h"

static vdb_jsonl_parser *p3;

static void setup(void)
{
	vdb_error err;
	cr_assert_eq(vdb_jsonl_parser_new(3, &p3, &err), VDB_OK);
}

static void teardown(void)
{
	vdb_jsonl_parser_free(p3);
}

static vdb_status parse(const char *line, vdb_record_kind *kind, vdb_record *rec, vdb_error *err)
{
	return vdb_jsonl_parse_record(p3, line, strlen(line), kind, rec, err);
}

TestSuite(jsonl, .init = setup, .fini = teardown);

Test(jsonl, accepts_upserts_and_deletes)
{
	vdb_record_kind kind;
	vdb_record r;
	vdb_error err;
	cr_assert_eq(parse(" {\"vector\" : [1, -2.5e0, 3E-1] , \"id\":18446744073709551615,"
			   "\"payload\": { \"a\" : [1, {\"b\":null}], \"n\": 12345678901234567890 } }\r",
			   &kind, &r, &err),
		     VDB_OK, "%s", err.message);
	cr_assert_eq(kind, VDB_RECORD_UPSERT);
	cr_assert_eq(r.id.is_string, 0);
	cr_assert_eq(r.id.num, UINT64_MAX, "every uint64 id is exact");
	cr_assert_eq(r.vector[1], -2.5f);
	cr_assert_eq(r.vector[2], 0.3f);
	cr_assert_eq(r.payload_len, strlen("{\"a\":[1,{\"b\":null}],\"n\":12345678901234567890}"));
	cr_assert_eq(memcmp(r.payload, "{\"a\":[1,{\"b\":null}],\"n\":12345678901234567890}",
			    r.payload_len),
		     0, "payloads are minified with numbers kept as written");
	cr_assert_eq(parse("{\"id\":\"d\\u00e9j\\u00e0\",\"delete\":true}", &kind, &r, &err), VDB_OK);
	cr_assert_eq(kind, VDB_RECORD_DELETE);
	cr_assert_eq(r.id.is_string, 1);
	cr_assert_eq(r.id.len, 6);
	cr_assert_eq(memcmp(r.id.str, "d\xc3\xa9j\xc3\xa0", 6), 0, "escapes are decoded");
	cr_assert_eq(parse("{\"id\":0,\"vector\":[0,0,0]}", &kind, &r, &err), VDB_OK);
	cr_assert_null(r.payload);
}

Test(jsonl, rejects_with_a_message_naming_the_problem)
{
	static const struct {
		const char *line, *msg;
	} cases[] = {
		{"{\"id\":1,\"vector\":[1,2,3]", "invalid JSON at column"},
		{"{\"id\":1,\"vector\":[1,2,3]} x", "trailing characters"},
		{"{\"id\":1,\"id\":2,\"vector\":[1,2,3]}", "duplicate key \"id\""},
		{"{\"id\":1,\"vector\":[1,2,3],\"payload\":{\"a\":1,\"a\":2}}", "duplicate key \"a\""},
		{"{\"id\":1,\"vector\":[1,2,3],\"extra\":1}", "unknown field \"extra\""},
		{"{\"id\":1,\"vector\":\"1,2,3\"}", "\"vector\" must be an array"},
		{"{\"id\":1,\"vector\":[1,2]}", "expected 3 numbers in \"vector\", got 2"},
		{"{\"id\":1,\"vector\":[1,2,3,4]}", "expected 3 numbers in \"vector\", got 4"},
		{"{\"id\":1,\"vector\":[]}", "got 0"},
		{"{\"id\":1,\"vector\":[1,\"2\",3]}", "vector[1] is not a number"},
		{"{\"id\":1,\"vector\":[1,null,3]}", "vector[1] is not a number"},
		{"{\"id\":1,\"vector\":[1,2,1e39]}", "vector[2] = 1e39 is outside the float32 range"},
		{"{\"id\":1,\"vector\":[1,2,-3.5e38]}", "outside the float32 range"},
		{"{\"id\":1,\"vector\":[1,2,NaN]}", "invalid JSON"},
		{"{\"id\":1,\"vector\":[1,2,01]}", "invalid JSON"},
		{"{\"id\":1,\"vector\":[1,-01.5,2]}", "invalid JSON"},
		{"{\"id\":1,\"vector\":[1.,2,3]}", "invalid JSON"},
		{"{\"id\":1,\"vector\":[.5,2,3]}", "invalid JSON"},
		{"{\"id\":1,\"vector\":[1,2.3.4,3]}", "invalid JSON"},
		{"{\"id\":1,\"vector\":[1,- 2,3]}", "invalid JSON"},
		{"{\"id\":1,\"vector\":[1,2 3,4]}", "invalid JSON"},
		{"{\"id\":1,\"vector\":[1,,3]}", "invalid JSON"},
		{"{\"id\":1,\"vector\":[1,2,3,]}", "invalid JSON"},
		{"{\"id\":1,\"vector\":[1,+2,3]}", "invalid JSON"},
		{"{\"id\":1,\"vector\":[1,2,[3]]}", "vector[2] is not a number"},
		{"{\"id\":-1,\"vector\":[1,2,3]}", "must not be negative"},
		{"{\"id\":1.5,\"vector\":[1,2,3]}", "must be an integer (got 1.5)"},
		{"{\"id\":1e3,\"vector\":[1,2,3]}", "must be an integer"},
		{"{\"id\":18446744073709551616,\"vector\":[1,2,3]}", "is larger than"},
		{"{\"id\":\"\",\"vector\":[1,2,3]}", "must not be an empty string"},
		{"{\"id\":true,\"vector\":[1,2,3]}", "non-negative integer or a string"},
		{"{\"id\":1,\"vector\":[1,2,3],\"payload\":[1]}", "\"payload\" must be a JSON object"},
		{"{\"id\":1,\"delete\":false}", "\"delete\" must be true"},
		{"{\"id\":1,\"delete\":true,\"vector\":[1,2,3]}", "takes only \"id\" and \"delete\""},
		{"{\"vector\":[1,2,3]}", "missing \"id\""},
		{"{\"id\":1}", "missing \"vector\""},
		{"[1,2,3]", "a record must be a JSON object"},
		{"{\"id\":\"\xff\",\"vector\":[1,2,3]}", "invalid UTF-8 at column 8"},
		{"{'id':1}", "invalid JSON"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		vdb_record_kind kind;
		vdb_record r;
		vdb_error err;
		cr_assert_eq(parse(cases[i].line, &kind, &r, &err), VDB_EDATA, "accepted: %s",
			     cases[i].line);
		cr_assert(strstr(err.message, cases[i].msg), "%s: got \"%s\", want \"%s\"",
			  cases[i].line, err.message, cases[i].msg);
	}
	/* A 257-byte string id. */
	char line[400];
	memset(line, 0, sizeof line);
	strcpy(line, "{\"id\":\"");
	memset(line + 7, 'x', 257);
	strcat(line, "\",\"vector\":[1,2,3]}");
	vdb_record_kind kind;
	vdb_record r;
	vdb_error err;
	cr_assert_eq(parse(line, &kind, &r, &err), VDB_EDATA);
	cr_assert(strstr(err.message, "more than 256"), "%s", err.message);
}

Test(jsonl, parses_queries)
{
	const float *v;
	size_t k = 10;
	vdb_error err;
	cr_assert_eq(vdb_jsonl_parse_query(p3, "[1,2,3]", 7, &v, &k, &err), VDB_OK);
	cr_assert_eq(k, 10);
	cr_assert_eq(v[2], 3.0f);
	const char *q = "{\"k\": 5, \"vector\": [4,5,6]}";
	cr_assert_eq(vdb_jsonl_parse_query(p3, q, strlen(q), &v, &k, &err), VDB_OK, "%s", err.message);
	cr_assert_eq(k, 5);
	cr_assert_eq(v[0], 4.0f);
	static const struct {
		const char *line, *msg;
	} bad[] = {
		{"{\"vector\":[1,2,3],\"k\":0}", "\"k\" must be an integer from 1"},
		{"{\"vector\":[1,2,3],\"k\":100001}", "\"k\" must be an integer from 1"},
		{"{\"vector\":[1,2,3],\"k\":2.5}", "\"k\" must be an integer"},
		{"{\"vector\":[1,2,3],\"top\":2}", "unknown field \"top\""},
		{"{\"k\":2}", "missing \"vector\""},
		{"[1,2]", "expected 3 numbers"},
		{"\"x\"", "a query must be an array"},
		{"{\"vector\":[1,2,3],\"vector\":[1,2,3]}", "duplicate key"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cr_assert_eq(vdb_jsonl_parse_query(p3, bad[i].line, strlen(bad[i].line), &v, &k, &err),
			     VDB_EDATA, "accepted %s", bad[i].line);
		cr_assert(strstr(err.message, bad[i].msg), "%s: %s", bad[i].line, err.message);
	}
}

Test(jsonl, command_line_ids)
{
	vdb_id id;
	vdb_error err;
	cr_assert_eq(vdb_id_parse_text("42", &id, &err), VDB_OK);
	cr_assert(!id.is_string && id.num == 42);
	cr_assert_eq(vdb_id_parse_text("\"42\"", &id, &err), VDB_OK);
	cr_assert(id.is_string && id.len == 2 && !memcmp(id.str, "42", 2));
	cr_assert_eq(vdb_id_parse_text("doc-7", &id, &err), VDB_OK);
	cr_assert(id.is_string && id.len == 5);
	cr_assert_eq(vdb_id_parse_text("", &id, &err), VDB_EINVAL);
	cr_assert_eq(vdb_id_parse_text("99999999999999999999", &id, &err), VDB_EINVAL);
}

Test(jsonl, prints_records_exactly)
{
	float v[3] = {1.0f, 0.1f, -0.0f};
	vdb_record r = {{1, 0, "a\"b\n", 4}, v, "{\"x\":1}", 7};
	vdb_text t = {0};
	cr_assert_eq(vdb_jsonl_append_record(&t, &r, 3), VDB_OK);
	cr_assert_eq(t.len, strlen("{\"id\":\"a\\\"b\\n\",\"vector\":[1,0.1,-0],\"payload\":{\"x\":1}}\n"));
	cr_assert_eq(memcmp(t.data, "{\"id\":\"a\\\"b\\n\",\"vector\":[1,0.1,-0],\"payload\":{\"x\":1}}\n",
			    t.len),
		     0, "%.*s", (int)t.len, t.data);
	t.len = 0;
	vdb_record big = {{0, UINT64_MAX, NULL, 0}, v, NULL, 0};
	cr_assert_eq(vdb_jsonl_append_record(&t, &big, 3), VDB_OK);
	cr_assert_eq(memcmp(t.data, "{\"id\":18446744073709551615,\"vector\":[1,0.1,-0]}\n", t.len), 0);
	vdb_text_free(&t);
}

#include <math.h>

#include "util/numfmt.h"

/* The one-pass vector number path must give exactly what the general parser gives. */
Test(jsonl, vector_numbers_match_the_general_parser_bit_for_bit)
{
	vdb_jsonl_parser *p1, *p8;
	vdb_error err;
	cr_assert_eq(vdb_jsonl_parser_new(1, &p1, &err), VDB_OK);
	cr_assert_eq(vdb_jsonl_parser_new(8, &p8, &err), VDB_OK);
	uint64_t x = 12345;
	char num[64], line[80];
	for (int i = 0; i < 300000; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		uint64_t r = x >> 11;
		int shape = (int)(r % 6);
		int ndig = 1 + (int)((r >> 3) % 21), frac = (int)((r >> 8) % 24), e = (int)((r >> 13) % 61) - 30;
		char *o = num;
		if (r >> 20 & 1)
			*o++ = '-';
		uint64_t y = x;
		for (int d = 0; d < ndig; d++) {
			y = y * 2862933555777941757ull + 3037000493ull;
			int dig = (int)((y >> 33) % 10);
			*o++ = (char)('0' + (d == 0 && ndig > 1 && dig == 0 ? 1 : dig));
		}
		if (shape >= 1 && frac) {
			*o++ = '.';
			for (int d = 0; d < frac; d++) {
				y = y * 2862933555777941757ull + 3037000493ull;
				*o++ = (char)('0' + (int)((y >> 33) % 10));
			}
		}
		if (shape >= 3)
			o += sprintf(o, "%c%s%d", shape == 4 ? 'E' : 'e', shape == 5 && e >= 0 ? "+" : "", e);
		*o = '\0';
		float want;
		int overflow = vdb_parse_float(num, strlen(num), &want);
		snprintf(line, sizeof line, "[ %s ]", num);
		const float *v;
		size_t k = 1;
		vdb_status st = vdb_jsonl_parse_query(p1, line, strlen(line), &v, &k, &err);
		if (overflow) {
			cr_assert_eq(st, VDB_EDATA, "%s", num);
			continue;
		}
		cr_assert_eq(st, VDB_OK, "%s: %s", num, err.message);
		uint32_t a, b;
		memcpy(&a, &v[0], 4);
		memcpy(&b, &want, 4);
		cr_assert_eq(a, b, "%s: got %a, want %a", num, v[0], want);
		/* The same number eight times in one line: the first ones have the text after
		 * them that the loop-free path for short decimals reads ahead. */
		char line8[8 * 66 + 2], *w = line8;
		*w++ = '[';
		for (int j = 0; j < 8; j++)
			w += sprintf(w, "%s%s", j ? "," : "", num);
		*w++ = ']';
		k = 1;
		cr_assert_eq(vdb_jsonl_parse_query(p8, line8, (size_t)(w - line8), &v, &k, &err),
			     VDB_OK, "%s: %s", num, err.message);
		for (int j = 0; j < 8; j++) {
			memcpy(&a, &v[j], 4);
			cr_assert_eq(a, b, "%s (element %d of 8): got %a, want %a", num, j, v[j], want);
		}
	}
	/* Zeros after "0." and up to 19 significant digits after them (Python prints small
	 * components of unit vectors so: 0.0012345678901234567): the fast paths must not count
	 * the zeros as digits, nor get the value wrong. */
	for (int i = 0; i < 100000; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		int zeros = (int)(x >> 40) % 9, sig = 1 + (int)(x >> 44) % 20;
		char *o = num;
		if (x >> 50 & 1)
			*o++ = '-';
		o += sprintf(o, "0.");
		for (int d = 0; d < zeros; d++)
			*o++ = '0';
		uint64_t y = x;
		for (int d = 0; d < sig; d++) {
			y = y * 2862933555777941757ull + 3037000493ull;
			int dig = (int)((y >> 33) % 10);
			*o++ = (char)('0' + (d == 0 && !dig ? 7 : dig));
		}
		*o = '\0';
		float want;
		cr_assert_eq(vdb_parse_float(num, strlen(num), &want), 0, "%s", num);
		char line8[8 * 66 + 2], *w = line8;
		*w++ = '[';
		for (int j = 0; j < 8; j++)
			w += sprintf(w, "%s%s", j ? "," : "", num);
		*w++ = ']';
		const float *v;
		size_t k = 1;
		snprintf(line, sizeof line, "[%s]", num);
		cr_assert_eq(vdb_jsonl_parse_query(p1, line, strlen(line), &v, &k, &err), VDB_OK,
			     "%s: %s", num, err.message);
		cr_assert_eq(memcmp(&v[0], &want, 4), 0, "%s: got %a, want %a", num, v[0], want);
		k = 1;
		cr_assert_eq(vdb_jsonl_parse_query(p8, line8, (size_t)(w - line8), &v, &k, &err),
			     VDB_OK, "%s: %s", num, err.message);
		for (int j = 0; j < 8; j++)
			cr_assert_eq(memcmp(&v[j], &want, 4), 0, "%s (element %d of 8): got %a, want %a",
				     num, j, v[j], want);
	}
	/* Decimals within a few double ulps of a point halfway between two floats: where the
	 * fast path's product of m and a rounded power of ten could round the wrong way. */
	for (int i = 0; i < 200000; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		uint32_t fb = (uint32_t)(x >> 32) & 0x7f7fffffu; /* finite, not NaN */
		float lo;
		memcpy(&lo, &fb, 4);
		double mid = ((double)lo + (double)nextafterf(lo, INFINITY)) / 2;
		int prec = 15 + (int)(x >> 8 & 3), bump = (int)(x >> 12 & 3) - 1; /* -1, 0, 1, 2 */
		int n = snprintf(num, sizeof num, "%.*e", prec, mid);
		char *e = strchr(num, 'e');
		if (bump && e && e[-1] >= '1' && e[-1] <= '8')
			e[-1] = (char)(e[-1] + (bump > 0 ? 1 : -1));
		float want;
		if (vdb_parse_float(num, (size_t)n, &want))
			continue;
		snprintf(line, sizeof line, "[%s]", num);
		const float *v;
		size_t k = 1;
		cr_assert_eq(vdb_jsonl_parse_query(p1, line, strlen(line), &v, &k, &err), VDB_OK,
			     "%s: %s", num, err.message);
		uint32_t a, b;
		memcpy(&a, &v[0], 4);
		memcpy(&b, &want, 4);
		cr_assert_eq(a, b, "%s: got %a, want %a", num, v[0], want);
	}
	/* Whole vectors, as the one-pass vector path sees them: mixed number shapes and every
	 * kind of JSON whitespace around the separators. */
	vdb_jsonl_parser *p16;
	cr_assert_eq(vdb_jsonl_parser_new(16, &p16, &err), VDB_OK);
	static const char *const seps[] = {",", ", ", " ,", "\t,\n", " , ", ",\r\n  "};
	for (int i = 0; i < 20000; i++) {
		char vec[1024];
		float want[16];
		int o = snprintf(vec, sizeof vec, "%s", i & 1 ? "[" : "[ ");
		for (int j = 0; j < 16; j++) {
			x = x * 6364136223846793005ull + 1442695040888963407ull;
			double val = ((double)(x >> 11) / 9007199254740992.0 - 0.5) *
				     (j % 3 == 0 ? 1e-3 : j % 3 == 1 ? 1.0 : 3e4);
			if ((x >> 3 & 7) == 0)
				val = 0;
			int n;
			switch ((x >> 5) % 7) {
			case 0: n = snprintf(num, sizeof num, "%.0f", val); break;
			case 1: n = snprintf(num, sizeof num, "%.1f", val); break;
			case 2: n = snprintf(num, sizeof num, "%.3f", val); break;
			case 3: n = snprintf(num, sizeof num, "%.8f", val); break;
			case 4: n = snprintf(num, sizeof num, "%.9g", val); break;
			case 5: n = snprintf(num, sizeof num, "%.3e", val); break;
			default: n = snprintf(num, sizeof num, "%.0f.5", val); break;
			}
			cr_assert_eq(vdb_parse_float(num, (size_t)n, &want[j]), 0, "%s", num);
			o += snprintf(vec + o, sizeof vec - (size_t)o, "%s%s", j ? seps[(x >> 9) % 6] : "",
				      num);
		}
		snprintf(vec + o, sizeof vec - (size_t)o, "%s", i & 2 ? "]" : " \t]");
		/* An exact-size heap copy, so that AddressSanitizer sees any read past the end. */
		size_t len = strlen(vec);
		char *heap = malloc(len);
		memcpy(heap, vec, len);
		const float *v;
		size_t k = 1;
		cr_assert_eq(vdb_jsonl_parse_query(p16, heap, len, &v, &k, &err), VDB_OK,
			     "%s: %s", vec, err.message);
		free(heap);
		for (int j = 0; j < 16; j++)
			cr_assert_eq(memcmp(&v[j], &want[j], 4), 0, "%s: [%d] got %a, want %a", vec, j,
				     v[j], want[j]);
	}
	vdb_jsonl_parser_free(p16);
	/* Halfway cases (exactly representable in double, halfway between two floats). */
	const char *halfway[] = {"16777217", "0.500000029802322387695312500", "33554434.0000000",
				 "1.00000005960464477539062500", "-16777219", "8388608.5"};
	for (size_t i = 0; i < sizeof halfway / sizeof halfway[0]; i++) {
		float want;
		cr_assert_eq(vdb_parse_float(halfway[i], strlen(halfway[i]), &want), 0);
		snprintf(line, sizeof line, "[%s]", halfway[i]);
		const float *v;
		size_t k = 1;
		cr_assert_eq(vdb_jsonl_parse_query(p1, line, strlen(line), &v, &k, &err), VDB_OK);
		cr_assert_eq(v[0], want, "%s", halfway[i]);
	}
	vdb_jsonl_parser_free(p1);
	vdb_jsonl_parser_free(p8);
}

Test(version, header_and_library_agree)
{
	char want[32];
	snprintf(want, sizeof want, "%d.%d.%d", VDB_VERSION_MAJOR, VDB_VERSION_MINOR,
		 VDB_VERSION_PATCH);
	cr_expect_str_eq(VDB_VERSION_STRING, want);
	cr_expect_str_eq(vdb_version(), VDB_VERSION_STRING);
	cr_expect_eq(vdb_version_number(), (unsigned)VDB_VERSION_NUMBER);
	cr_expect_eq(VDB_VERSION_NUMBER,
		     VDB_VERSION_MAJOR * 10000 + VDB_VERSION_MINOR * 100 + VDB_VERSION_PATCH);
}
