/* Unit tests for the strict JSON scanner (libvdb/formats/json.c): JSONTestSuite-style
 * acceptance and rejection, error messages and offsets, duplicate keys, depth, minification,
 * string escaping and the never-read-past-the-end guarantee. Every input is copied into a
 * heap block of exactly its size, so a build with -fsanitize=address turns any overread into
 * a test failure. */
#include <criterion/criterion.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "formats/json.h"

/* A byte string literal with its exact length: raw bytes and embedded NULs are allowed. */
#define LIT(s) {s, sizeof(s) - 1}

typedef struct text {
	const char *s;
	size_t len;
} text;

/* Heap copy of exactly len bytes (no terminator): the byte after it belongs to nobody. */
static char *exact(const char *s, size_t len)
{
	char *c = malloc(len ? len : 1);
	cr_assert_not_null(c);
	memcpy(c, s, len);
	return c;
}

/* Validates s as a whole document (vj_value then vj_end). The reader's pointers dangle
 * afterwards; only err and err_off are meant to be looked at. */
static int doc(const char *s, size_t len, vdb_buf *min, vj_reader *r)
{
	char *c = exact(s, len);
	vj_init(r, c, len);
	int rc = vj_value(r, min);
	if (rc == 0)
		rc = vj_end(r);
	free(c);
	return rc;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- acceptance ------------------------------------------------------------------------ */

static const text accepted[] = {
	LIT("[]"), LIT("{}"), LIT("[[]]"), LIT(" [1] "), LIT("\t\r\n[\n1\r,\t2 ]\n"),
	LIT("{\"a\":[1,2,{\"b\":null}]}"), LIT("\"x\""), LIT("123"), LIT("-0"), LIT("0"),
	LIT("0.5"), LIT("-0.0e-0"), LIT("1e10"), LIT("1E+2"), LIT("-1.25e-3"), LIT("1e05"),
	LIT("123456789012345678901234567890"), LIT("true"), LIT("false"), LIT("null"),
	LIT("\"\\u0000\""), LIT("\"\\ud83d\\ude00\""), LIT("\"\\uD83D\\uDE00\""),
	LIT("\"\\udbff\\udfff\""), LIT("\"\\uFFFF\""), LIT("\"\\/\\\\\\\"\\b\\f\\n\\r\\t\""),
	LIT("\"\xC3\xA9\""), LIT("\"\xE2\x82\xAC\""), LIT("\"\xF0\x9D\x84\x9E\""),
	LIT("\"\xF4\x8F\xBF\xBF\""),                  /* U+10FFFF, the last code point */
	LIT("\"\xEF\xBF\xBF\""), LIT("\"\xED\x9F\xBF\""), /* U+FFFF, U+D7FF */
	LIT("\"\xEE\x80\x80\""), LIT("\"\x7f\""),     /* U+E000, DEL (legal raw) */
	LIT("\"\xC2\x80\""), LIT("\"\xE0\xA0\x80\""), LIT("\"\xF0\x90\x80\x80\""), /* shortest */
	LIT("{\"\":0}"), LIT("[\"\"]"), LIT("[{\"a\":1},{\"a\":2}]"), LIT("{\"a\":{\"a\":1}}"),
	LIT("{\"a\":1,\"b\":{\"a\":2,\"b\":3},\"c\":[{\"a\":4}],\"d\":{}}"),
	LIT("{\"\\u0000\":1,\"\\u0000\\u0000\":2,\"\":3}"), LIT("{\"a\":1,\"A\":2}"),
	LIT("{\"\xC3\xA9\":1,\"e\\u0301\":2}"), /* no Unicode normalisation of keys */
	LIT("[1,[2,[3,[4]]]]"), LIT("[true,false,null,-1,\"s\",{},[]]"),
	LIT("[\"a\\u0000b\"]"), LIT("{ \"a\" : 1 , \"b\" : [ ] }"),
};

Test(json, accepts_valid_documents)
{
	for (size_t i = 0; i < sizeof accepted / sizeof *accepted; i++) {
		vj_reader r;
		int rc = doc(accepted[i].s, accepted[i].len, NULL, &r);
		cr_expect_eq(rc, 0, "case %zu <%.*s> rejected: %s at %zu", i, (int)accepted[i].len,
			     accepted[i].s, r.err, r.err_off);
	}
}

/* ---- rejection: message and offset of the offending byte -------------------------------- */

typedef struct bad {
	const char *s;
	size_t len;
	const char *msg; /* must appear in r.err */
	size_t off;
} bad;

#define BAD(s, msg, off) {s, sizeof(s) - 1, msg, off}

static const bad rejected[] = {
	BAD("[1,]", "expected a JSON value, found ']'", 3),
	BAD("{\"a\":1,}", "expected a string key after ',', found '}'", 7),
	BAD("[1", "unexpected end of line (expected ',' or ']' after array element)", 2),
	BAD("{\"a\":1", "unexpected end of line (expected ',' or '}' after object member)", 6),
	BAD("{'a':1}", "found ''' (strings need double quotes)", 1),
	BAD("['x']", "expected a JSON value, found ''' (strings need double quotes)", 1),
	BAD("[1]//c", "trailing characters after the JSON value", 3),
	BAD("/*c*/[1]", "found '/' (comments are not allowed)", 0),
	BAD("[1/*c*/]", "expected ',' or ']' after array element, found '/'", 2),
	BAD("[01]", "number has a leading zero", 1),
	BAD("[-01]", "number has a leading zero", 2),
	BAD("[00]", "number has a leading zero", 1),
	BAD("[1.]", "expected a digit after '.' in number, found ']'", 3),
	BAD("[1.e5]", "expected a digit after '.' in number, found 'e'", 3),
	BAD("[.5]", "expected a JSON value, found '.'", 1),
	BAD("[+1]", "expected a JSON value, found '+'", 1),
	BAD("[NaN]", "expected a JSON value, found 'NaN'", 1),
	BAD("[Infinity]", "expected a JSON value, found 'Infinity'", 1),
	BAD("[-Infinity]", "expected a digit after '-', found 'I'", 2),
	BAD("[-]", "expected a digit after '-', found ']'", 2),
	BAD("-", "unexpected end of line (expected a digit after '-')", 1),
	BAD("[1e]", "expected a digit in the exponent of number, found ']'", 3),
	BAD("[1e+]", "expected a digit in the exponent of number, found ']'", 4),
	BAD("1E", "unexpected end of line (expected a digit in the exponent", 2),
	BAD("[0x10]", "expected ',' or ']' after array element, found 'x'", 2),
	BAD("[\"\\x\"]", "invalid escape '\\x'", 2),
	BAD("[\"\\a\"]", "invalid escape '\\a'", 2),
	BAD("[\"\\U0041\"]", "invalid escape '\\U'", 2),
	BAD("[\"\\\x01\"]", "invalid escape: '\\' followed by byte 0x01", 2),
	BAD("[\"\\u12\"]", "expected 4 hex digits after '\\u', found '\"'", 6),
	BAD("[\"\\u12g4\"]", "expected 4 hex digits after '\\u', found 'g'", 6),
	BAD("[\"a\tb\"]", "raw control character 0x09 in string", 3),
	BAD("[\"a\nb\"]", "raw control character 0x0A in string", 3),
	BAD("[\"\x1f\"]", "raw control character 0x1F in string", 2),
	BAD("[\"\\ud800\"]", "lone high surrogate \\ud800", 2),
	BAD("[\"\\ud800\\u0041\"]", "lone high surrogate \\ud800", 2),
	BAD("[\"\\ud800x\"]", "lone high surrogate \\ud800", 2),
	BAD("[\"\\ud800\\ud800\"]", "lone high surrogate \\ud800", 2),
	BAD("[\"\\ud800\\u12\"]", "expected 4 hex digits after '\\u', found '\"'", 12),
	BAD("[\"\\udc00\"]", "lone low surrogate \\udc00", 2),
	BAD("[\"\\uDFFF\\ud800\"]", "lone low surrogate \\udfff", 2),
	BAD("[\"\xC0\x80\"]", "invalid UTF-8: overlong encoding (byte 0xC0)", 2),
	BAD("[\"\xC1\xBF\"]", "invalid UTF-8: overlong encoding (byte 0xC1)", 2),
	BAD("[\"\xE0\x80\xAF\"]", "invalid UTF-8: overlong encoding (byte 0xE0)", 2),
	BAD("[\"\xF0\x80\x80\xAF\"]", "invalid UTF-8: overlong encoding (byte 0xF0)", 2),
	BAD("[\"\xED\xA0\x80\"]", "invalid UTF-8: UTF-16 surrogate encoded in UTF-8", 2),
	BAD("[\"ok\xED\xBF\xBF\"]", "invalid UTF-8: UTF-16 surrogate encoded in UTF-8", 4),
	BAD("[\"\xF4\x90\x80\x80\"]", "invalid UTF-8: code point above U+10FFFF", 2),
	BAD("[\"\xF5\x80\x80\x80\"]", "invalid UTF-8: code point above U+10FFFF", 2),
	BAD("[\"\xFF\"]", "invalid UTF-8: byte never valid in UTF-8 (byte 0xFF)", 2),
	BAD("[\"\x80\"]", "invalid UTF-8: unexpected continuation byte (byte 0x80)", 2),
	BAD("[\"a\xE2\x82\"]", "invalid UTF-8: missing continuation byte (byte 0xE2)", 3),
	BAD("[\"\xE2\x28\xA1\"]", "invalid UTF-8: missing continuation byte", 2),
	BAD("\"\xE2\x82", "invalid UTF-8: sequence truncated by end of line", 1),
	BAD("\"\xF0\x9F\x98", "invalid UTF-8: sequence truncated by end of line", 1),
	BAD("\"\xC3", "invalid UTF-8: sequence truncated by end of line", 1),
	BAD("{\"k\xC3\xA9\xC0\":1}", "invalid UTF-8: overlong encoding", 5), /* in a key */
	BAD("\"abc", "unexpected end of line inside string", 4),
	BAD("\"abc\\", "unexpected end of line inside string", 5),
	BAD("\"\\u00", "unexpected end of line inside string", 5),
	BAD("\"\\u0000", "unexpected end of line inside string", 7),
	BAD("[1 2]", "expected ',' or ']' after array element, found '2'", 3),
	BAD("[true false]", "expected ',' or ']' after array element, found 'f'", 6),
	BAD("{\"a\" 1}", "expected ':' after object key, found '1'", 5),
	BAD("{\"a\"", "unexpected end of line (expected ':' after object key)", 4),
	BAD("{\"a\":}", "expected a JSON value, found '}'", 5),
	BAD("{1:2}", "expected a string key or '}' after '{', found '1'", 1),
	BAD("{\"a\":1 \"b\":2}", "expected ',' or '}' after object member, found '\"'", 7),
	BAD("{\"a\":1]", "expected ',' or '}' after object member, found ']'", 6),
	BAD("[1}", "expected ',' or ']' after array element, found '}'", 2),
	BAD("[", "unexpected end of line (expected a JSON value)", 1),
	BAD("]", "expected a JSON value, found ']'", 0),
	BAD("", "unexpected end of line (expected a JSON value)", 0),
	BAD("   ", "unexpected end of line (expected a JSON value)", 3),
	BAD("tru", "expected a JSON value, found 'tru'", 0),
	BAD("True", "expected a JSON value, found 'True'", 0),
	BAD("nul", "expected a JSON value, found 'nul'", 0),
	BAD("truex", "trailing characters after the JSON value", 4),
	BAD("[1]]", "trailing characters after the JSON value", 3),
	BAD("{} {}", "trailing characters after the JSON value", 3),
	BAD("{\"a\":1}x", "trailing characters after the JSON value", 7),
	BAD("[1]\x00", "trailing characters after the JSON value", 3),
	BAD("[,1]", "expected a JSON value, found ','", 1),
	BAD("[1,,2]", "expected a JSON value, found ','", 3),
	BAD("{,}", "expected a string key or '}' after '{', found ','", 1),
	BAD("[1\x00]", "expected ',' or ']' after array element, found byte 0x00", 2),
	BAD("\xEF\xBB\xBF[1]", "expected a JSON value, found byte 0xEF", 0), /* BOM */
	BAD("[\f1]", "expected a JSON value, found byte 0x0C", 1), /* \f is not JSON space */
	BAD("{\"a\":1,\"a\":2}", "duplicate key \"a\"", 7),
};

Test(json, rejects_invalid_documents_with_message_and_offset)
{
	for (size_t i = 0; i < sizeof rejected / sizeof *rejected; i++) {
		const bad *b = &rejected[i];
		vj_reader r;
		int rc = doc(b->s, b->len, NULL, &r);
		cr_expect_eq(rc, -1, "case %zu <%.*s> accepted", i, (int)b->len, b->s);
		cr_expect(strstr(r.err, b->msg) != NULL, "case %zu: got \"%s\", want \"%s\"", i,
			  r.err, b->msg);
		cr_expect_eq(r.err_off, b->off, "case %zu (%s): offset %zu, want %zu", i, r.err,
			     r.err_off, b->off);
	}
}

Test(json, exact_messages_from_the_interface)
{
	vj_reader r;
	doc("[01]", 4, NULL, &r);
	cr_expect_str_eq(r.err, "number has a leading zero");
	doc("[\"\\x\"]", 6, NULL, &r);
	cr_expect_str_eq(r.err, "invalid escape '\\x'");
	doc("{\"lang\":1,\"lang\":2}", 19, NULL, &r);
	cr_expect_str_eq(r.err, "duplicate key \"lang\"");
	cr_expect_eq(r.err_off, 10);
	doc("1 2", 3, NULL, &r);
	cr_expect_str_eq(r.err, "trailing characters after the JSON value");
}

/* ---- UTF-8 ----------------------------------------------------------------------------- */

Test(json, utf8_valid_prefix_reports_the_first_bad_sequence)
{
	static const struct {
		text t;
		size_t want;
	} cases[] = {
		{LIT(""), 0}, {LIT("abc"), 3}, {LIT("a\xC3\xA9z"), 4}, {LIT("\xC0\x80"), 0},
		{LIT("ab\xED\xA0\x80"), 2}, {LIT("\xF4\x90\x80\x80"), 0},
		{LIT("\xF4\x8F\xBF\xBF"), 4},
		{LIT("abc\xE2\x82"), 3}, {LIT("abc\xE2\x82\xAC"), 6}, {LIT("x\x80"), 1},
		{LIT("\xF0\x9F\x98\x80\xF0\x9F\x98"), 4}, {LIT("0123456789abcdef\xFF"), 16},
		{LIT("\xE0\x9F\x80"), 0}, {LIT("\xE0\xA0\x80"), 3}, {LIT("\xC2"), 0},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		char *c = exact(cases[i].t.s, cases[i].t.len);
		cr_expect_eq(vj_utf8_valid_prefix(c, cases[i].t.len), cases[i].want, "case %zu", i);
		free(c);
	}
	cr_expect_eq(vj_utf8_valid_prefix(NULL, 0), 0);
}

/* The ASCII fast path works on 8-byte words: a bad byte must be found at every alignment and
 * position, and a valid tail shorter than a word must not be over-read. */
Test(json, utf8_fast_path_finds_bad_bytes_at_every_position)
{
	for (size_t len = 1; len <= 40; len++) {
		for (size_t at = 0; at < len; at++) {
			char *c = malloc(len);
			memset(c, 'a', len);
			c[at] = (char)0xC0;
			cr_expect_eq(vj_utf8_valid_prefix(c, len), at, "len %zu at %zu", len, at);
			c[at] = (char)0xC3; /* valid 2-byte lead when followed by a continuation */
			if (at + 1 < len) {
				c[at + 1] = (char)0xA9;
				size_t got = vj_utf8_valid_prefix(c, len);
				cr_expect_eq(got, len, "%zu at %zu", len, at);
			} else {
				cr_expect_eq(vj_utf8_valid_prefix(c, len), at, "truncated at end");
			}
			free(c);
		}
	}
}

/* Exhaustive over all 2-byte and 3-byte sequences: the validator must agree with a decode
 * by definition (well-formed iff shortest form and not a surrogate). */
Test(json, utf8_agrees_with_definition_exhaustively)
{
	unsigned char s[3];
	for (unsigned a = 0x80; a < 0x100; a++) {
		for (unsigned b = 0; b < 0x100; b++) {
			s[0] = (unsigned char)a;
			s[1] = (unsigned char)b;
			unsigned cp = (a & 0x1F) << 6 | (b & 0x3F);
			int ok = a >= 0xC0 && a < 0xE0 && (b & 0xC0) == 0x80 && cp >= 0x80;
			int got = vj_utf8_valid_prefix((char *)s, 2) == 2;
			cr_assert_eq(got, ok, "%02x %02x", a, b);
		}
	}
	for (unsigned a = 0xE0; a < 0xF0; a++)
		for (unsigned b = 0; b < 0x100; b++)
			for (unsigned c = 0; c < 0x100; c++) {
				s[0] = (unsigned char)a;
				s[1] = (unsigned char)b;
				s[2] = (unsigned char)c;
				unsigned cp = (a & 0x0F) << 12 | (b & 0x3F) << 6 | (c & 0x3F);
				int ok = (b & 0xC0) == 0x80 && (c & 0xC0) == 0x80 && cp >= 0x800 &&
					 (cp < 0xD800 || cp > 0xDFFF);
				int got = vj_utf8_valid_prefix((char *)s, 3) == 3;
				cr_assert_eq(got, ok, "%02x %02x %02x", a, b, c);
			}
}

/* ---- strings --------------------------------------------------------------------------- */

static int decode(const char *s, size_t len, vdb_buf *out, vj_reader *r)
{
	char *c = exact(s, len);
	vj_init(r, c, len);
	int rc = vj_string(r, out);
	int used = rc ? rc : (int)(r->p - r->start);
	free(c);
	return used;
}

Test(json, string_decodes_escapes_and_surrogate_pairs)
{
	vdb_buf b = VDB_BUF_INIT;
	vj_reader r;
	static const char in[] = "  \"a\\u00e9\\ud83d\\ude00\\n\\\"\\\\\\/\\b\\f\\r\\t"
				 "\\u0000\xC3\xA9\" ,";
	static const char want[] = "a\xC3\xA9\xF0\x9F\x98\x80\n\"\\/\b\f\r\t\0\xC3\xA9";
	int used = decode(in, sizeof in - 1, &b, &r);
	cr_assert_eq(used, (int)sizeof in - 3, "%s", r.err); /* cursor after the closing quote */
	cr_assert_eq(b.len, sizeof want - 1);
	cr_expect(memcmp(b.data, want, b.len) == 0);
	vdb_buf_free(&b);
}

Test(json, string_validates_without_output_and_restores_out_on_error)
{
	vdb_buf b = VDB_BUF_INIT;
	vj_reader r;
	cr_expect_gt(decode("\"x\\u0041\"", 9, NULL, &r), 0);
	vdb_buf_puts(&b, "keep");
	cr_expect_eq(decode("\"abc\\u0041\\q\"", 13, &b, &r), -1);
	cr_expect_str_eq(r.err, "invalid escape '\\q'");
	cr_expect_eq(r.err_off, 10);
	cr_expect_eq(b.len, 4, "partial decode left in out");
	cr_expect_eq(decode("42", 2, &b, &r), -1);
	cr_expect_str_eq(r.err, "expected a string, found '4'");
	vdb_buf_free(&b);
}

/* The string scanner skips 8 plain bytes at a time: whatever needs attention (an escape, the
 * closing quote, a raw control byte, a multibyte character) must be seen at every position of
 * the word, including in the last partial word. */
Test(json, string_special_bytes_are_seen_at_every_position)
{
	char s[40];
	for (size_t len = 2; len <= 26; len++) {
		for (size_t at = 1; at + 1 < len; at++) {
			vdb_buf b = VDB_BUF_INIT;
			vj_reader r;
			memset(s, 'a', len);
			s[0] = s[len - 1] = '"';
			s[at] = '\t';
			cr_expect_eq(decode(s, len, &b, &r), -1, "tab at %zu of %zu", at, len);
			cr_expect_eq(r.err_off, at);
			s[at] = '"';
			cr_expect_eq(decode(s, len, &b, &r), (int)at + 1, "quote at %zu", at);
			cr_expect_eq(b.len, at - 1);
			vdb_buf_reset(&b);
			s[at] = (char)0xFF;
			cr_expect_eq(decode(s, len, &b, &r), -1);
			cr_expect_eq(r.err_off, at);
			if (at + 2 < len) {
				memcpy(s + at, "\\n", 2);
				cr_expect_eq(decode(s, len, &b, &r), (int)len, "%s", r.err);
				cr_expect(b.len == len - 3 && b.data[at - 1] == '\n');
				vdb_buf_reset(&b);
				memcpy(s + at, "\xC3\xA9", 2);
				cr_expect_eq(decode(s, len, &b, &r), (int)len, "%s", r.err);
				cr_expect_eq(b.len, len - 2);
			}
			vdb_buf_free(&b);
		}
	}
}

Test(json, write_string_escapes_exactly)
{
	vdb_buf b = VDB_BUF_INIT;
	static const char in[] = "a\"b\\c\n\t\r\b\f\x01\x1f\x7f \xC3\xA9/\0z";
	cr_assert_eq(vj_write_string(&b, in, sizeof in - 1), 0);
	static const char want[] =
		"\"a\\\"b\\\\c\\n\\t\\r\\b\\f\\u0001\\u001f\x7f \xC3\xA9/\\u0000z\"";
	cr_expect_eq(b.len, sizeof want - 1);
	cr_expect(memcmp(b.data, want, b.len) == 0, "%.*s", (int)b.len, b.data);
	vdb_buf_reset(&b);
	cr_assert_eq(vj_write_string(&b, NULL, 0), 0);
	cr_expect(b.len == 2 && memcmp(b.data, "\"\"", 2) == 0);
	vdb_buf_free(&b);
}

static void round_trip(const char *s, size_t len)
{
	vdb_buf lit = VDB_BUF_INIT, back = VDB_BUF_INIT;
	cr_assert_eq(vj_write_string(&lit, s, len), 0);
	vj_reader r;
	cr_assert_eq(decode(lit.data, lit.len, &back, &r), (int)lit.len, "%s", r.err);
	cr_assert_eq(back.len, len);
	cr_expect(len == 0 || memcmp(back.data, s, len) == 0);
	vdb_buf_free(&lit);
	vdb_buf_free(&back);
}

/* Whatever vj_write_string produces, vj_string must read back to the same bytes. */
Test(json, write_string_round_trips_through_vj_string)
{
	static const char utf8[] = "\xC3\xA9\xE2\x82\xAC\xF4\x8F\xBF\xBF"
				   "\xF0\x9F\x98\x80\xEF\xBF\xBF";
	char all[128 + sizeof utf8];
	for (int i = 0; i < 128; i++) {
		all[i] = (char)i; /* every ASCII byte, NUL and controls included */
		round_trip(all + i, 1);
	}
	memcpy(all + 128, utf8, sizeof utf8 - 1);
	round_trip(all, sizeof all - 1);
	round_trip(utf8, sizeof utf8 - 1);
	round_trip("", 0);
}

/* ---- numbers --------------------------------------------------------------------------- */

Test(json, number_returns_the_exact_span)
{
	static const struct {
		text in;
		const char *tok;
	} cases[] = {
		{LIT(" -12.5e+3,"), "-12.5e+3"}, {LIT("0]"), "0"}, {LIT("-0"), "-0"},
		{LIT("123456789012345678901234567890 "), "123456789012345678901234567890"},
		{LIT("1E-07}"), "1E-07"}, {LIT("0.000"), "0.000"}, {LIT("1x"), "1"},
		{LIT("2.5e3.1"), "2.5e3"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		char *c = exact(cases[i].in.s, cases[i].in.len);
		vj_reader r;
		vj_init(&r, c, cases[i].in.len);
		const char *tok;
		size_t n;
		cr_assert_eq(vj_number(&r, &tok, &n), 0, "case %zu: %s", i, r.err);
		cr_expect_eq(n, strlen(cases[i].tok), "case %zu", i);
		cr_expect(memcmp(tok, cases[i].tok, n) == 0, "case %zu", i);
		cr_expect_eq(r.p, tok + n, "cursor right after the token");
		vj_init(&r, c, cases[i].in.len);
		cr_expect_eq(vj_number(&r, NULL, NULL), 0, "validation only");
		cr_expect_eq(r.p, tok + n);
		free(c);
	}
}

Test(json, number_rejects_non_json_numbers)
{
	static const bad cases[] = {
		BAD("01", "number has a leading zero", 0), BAD("-012", "leading zero", 1),
		BAD("1.", "unexpected end of line (expected a digit after '.' in number)", 2),
		BAD(".5", "expected a number, found '.'", 0), BAD("+1", "found '+'", 0),
		BAD("NaN", "expected a number, found 'N'", 0), BAD("Infinity", "found 'I'", 0),
		BAD("-", "expected a digit after '-'", 1), BAD("--1", "found '-'", 1),
		BAD("1e", "exponent", 2), BAD("1e-", "exponent", 3), BAD("\"1\"", "found '\"'", 0),
		BAD("", "unexpected end of line (expected a number)", 0),
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		char *c = exact(cases[i].s, cases[i].len);
		vj_reader r;
		vj_init(&r, c, cases[i].len);
		const char *tok = NULL;
		size_t n = 99;
		cr_expect_eq(vj_number(&r, &tok, &n), -1, "case %zu accepted", i);
		cr_expect(strstr(r.err, cases[i].msg), "case %zu: %s", i, r.err);
		cr_expect_eq(r.err_off, cases[i].off, "case %zu: %s", i, r.err);
		cr_expect(tok == NULL && n == 99, "outputs untouched on error");
		free(c);
	}
}

/* ---- small primitives and the record-parser use case ------------------------------------ */

Test(json, peek_expect_end_and_first_error_wins)
{
	char *c = exact(" \t{ \r\n", 6);
	vj_reader r;
	vj_init(&r, c, 6);
	cr_expect_eq(vj_peek(&r), '{');
	cr_expect_eq(vj_expect(&r, ':'), -1);
	cr_expect_str_eq(r.err, "expected ':', found '{'");
	cr_expect_eq(r.err_off, 2);
	cr_expect_eq(vj_expect(&r, '{'), 0);
	cr_expect_eq(vj_peek(&r), -1);
	cr_expect_eq(vj_expect(&r, '}'), -1);
	cr_expect_str_eq(r.err, "expected ':', found '{'", "first error must win");
	cr_expect_eq(r.err_off, 2);
	vj_init(&r, c, 6);
	cr_expect_eq(r.err[0], '\0', "vj_init clears the error");
	r.p += 3;
	cr_expect_eq(vj_expect(&r, '}'), -1);
	cr_expect_str_eq(r.err, "unexpected end of line (expected '}')");
	cr_expect_eq(r.err_off, 6);
	vj_init(&r, c, 3);
	cr_expect_eq(vj_end(&r), -1);
	cr_expect_eq(r.err_off, 2);
	vj_init(&r, c, 2);
	cr_expect_eq(vj_end(&r), 0);
	free(c);
	vj_init(&r, NULL, 0);
	cr_expect_eq(vj_peek(&r), -1);
	cr_expect_eq(vj_value(&r, NULL), -1);
}

/* The record parser walks the top level itself and hands the payload to vj_value. */
Test(json, record_walk_with_primitives)
{
	static const char line[] =
		"{\"id\": 42, \"vector\": [0.1, -2e-3], "
		"\"payload\": {\"lang\": \"en\", \"tags\": [\"a\"], \"n\": 1.50}}\n";
	char *c = exact(line, sizeof line - 1);
	vj_reader r;
	vj_init(&r, c, sizeof line - 1);
	vdb_buf key = VDB_BUF_INIT, min = VDB_BUF_INIT;
	const char *tok;
	size_t n;
	int fields = 0;
	cr_assert_eq(vj_expect(&r, '{'), 0);
	do {
		vdb_buf_reset(&key);
		cr_assert_eq(vj_string(&r, &key), 0);
		cr_assert_eq(vj_expect(&r, ':'), 0);
		if (key.len == 2 && memcmp(key.data, "id", 2) == 0) {
			cr_assert_eq(vj_number(&r, &tok, &n), 0);
			cr_expect(n == 2 && memcmp(tok, "42", 2) == 0);
		} else if (key.len == 6 && memcmp(key.data, "vector", 6) == 0) {
			cr_assert_eq(vj_expect(&r, '['), 0);
			do {
				cr_assert_eq(vj_number(&r, &tok, &n), 0);
			} while (vj_peek(&r) == ',' && vj_expect(&r, ',') == 0);
			cr_assert_eq(vj_expect(&r, ']'), 0);
		} else {
			cr_assert_eq(vj_value(&r, &min), 0, "%s", r.err);
		}
		fields++;
	} while (vj_peek(&r) == ',' && vj_expect(&r, ',') == 0);
	cr_assert_eq(vj_expect(&r, '}'), 0);
	cr_assert_eq(vj_end(&r), 0);
	cr_expect_eq(fields, 3);
	static const char want[] = "{\"lang\":\"en\",\"tags\":[\"a\"],\"n\":1.50}";
	cr_expect(min.len == sizeof want - 1 && memcmp(min.data, want, min.len) == 0, "%.*s",
		  (int)min.len, min.data);
	vdb_buf_free(&key);
	vdb_buf_free(&min);
	free(c);
}

/* ---- minification ---------------------------------------------------------------------- */

static void expect_min(const char *in, const char *want)
{
	vdb_buf b = VDB_BUF_INIT;
	vdb_buf_puts(&b, "X"); /* vj_value appends; it must not clobber what is there */
	vj_reader r;
	cr_assert_eq(doc(in, strlen(in), &b, &r), 0, "<%s>: %s", in, r.err);
	cr_expect(b.len == strlen(want) + 1 && b.data[0] == 'X' &&
			  memcmp(b.data + 1, want, b.len - 1) == 0,
		  "<%s> minified to <%.*s>, want <%s>", in, (int)b.len - 1, b.data + 1, want);
	vdb_buf_free(&b);
}

Test(json, minify_drops_whitespace_and_keeps_tokens_as_written)
{
	expect_min(" { \"a\" : [ 1 , 2.50 , -0e+1 , 1E400 ] , \"b\" : \"x\\u0041 y\\/\" ,\n"
		   "\t\"c\":{ } ,\"d\":[ ] , \"e\" : true,\"f\":null , \"g\":false } ",
		   "{\"a\":[1,2.50,-0e+1,1E400],\"b\":\"x\\u0041 y\\/\",\"c\":{},\"d\":[],"
		   "\"e\":true,\"f\":null,\"g\":false}");
	expect_min("  123456789012345678901234567890  ", "123456789012345678901234567890");
	expect_min("\"  spaces  inside  \"", "\"  spaces  inside  \"");
	expect_min("[ [ [ ] ] , { \"\\u0061\" : { } } ]", "[[[]],{\"\\u0061\":{}}]");
	expect_min("\"\xC3\xA9\\u00e9\"", "\"\xC3\xA9\\u00e9\"");
}

/* ---- duplicate keys -------------------------------------------------------------------- */

Test(json, duplicate_keys_are_found_after_decoding_and_per_object)
{
	static const bad cases[] = {
		BAD("{\"a\":1,\"\\u0061\":2}", "duplicate key \"a\"", 7),
		BAD("{\"\\u00e9\":1,\"\xC3\xA9\":2}", "duplicate key \"\xC3\xA9\"", 12),
		BAD("{\"x\":{\"a\":1,\"b\":2,\"a\":3}}", "duplicate key \"a\"", 18),
		BAD("[{\"a\":1},{\"a\":1,\"a\":2}]", "duplicate key \"a\"", 16),
		BAD("{\"a\":{\"a\":{}},\"b\":1,\"a\":2}", "duplicate key \"a\"", 20),
		BAD("{\"\":1,\"\":2}", "duplicate key \"\"", 6),
		BAD("{\"\\u0000\":1,\"\\u0000\":2}", "duplicate key \"\\u0000\"", 12),
		BAD("{\"q\\\"\\n\":1,\"q\\u0022\\u000a\":2}", "duplicate key \"q\\\"\\n\"", 11),
		BAD("{\"\\ud83d\\ude00\":1,\"\xF0\x9F\x98\x80\":2}",
		    "duplicate key \"\xF0\x9F\x98\x80\"", 18),
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		vj_reader r;
		cr_expect_eq(doc(cases[i].s, cases[i].len, NULL, &r), -1, "case %zu accepted", i);
		cr_expect_str_eq(r.err, cases[i].msg, "case %zu", i);
		cr_expect_eq(r.err_off, cases[i].off, "case %zu: %zu", i, r.err_off);
	}
}

/* A duplicate is reported where it occurs, even when the object is broken later on. */
Test(json, duplicate_key_is_reported_before_later_errors)
{
	vj_reader r;
	static const char in[] = "{\"a\":1,\"a\":2,";
	cr_expect_eq(doc(in, sizeof in - 1, NULL, &r), -1);
	cr_expect_str_eq(r.err, "duplicate key \"a\"");
	cr_expect_eq(r.err_off, 7);
}

Test(json, long_duplicate_key_is_shortened_in_the_message)
{
	vdb_buf b = VDB_BUF_INIT;
	char key[256] = "\"";
	for (int i = 0; i < 100; i++)
		strcat(key, "\xC3\xA9"); /* 2-byte characters, to test the cut */
	strcat(key, "\"");
	size_t klen = strlen(key);
	vdb_buf_puts(&b, "{");
	vdb_buf_puts(&b, key);
	vdb_buf_puts(&b, ":1,");
	vdb_buf_puts(&b, key);
	vdb_buf_puts(&b, ":2}");
	vj_reader r;
	cr_assert_eq(doc(b.data, b.len, NULL, &r), -1);
	cr_expect(strncmp(r.err, "duplicate key \"\xC3\xA9", 17) == 0, "%s", r.err);
	size_t n = strlen(r.err);
	cr_expect(n < sizeof r.err - 1 && strcmp(r.err + n - 4, "...\"") == 0, "%s", r.err);
	cr_expect_eq(vj_utf8_valid_prefix(r.err, n), n, "message cut a character in half");
	cr_expect_eq(r.err_off, klen + 4);
	vdb_buf_free(&b);
}

/* An object whose i-th key decodes to "k" + ids[i] (6 digits), spelled with a \u escape at odd
 * i when escaped is set; offs[i] receives the offset of that key's opening quote. */
static void build_object(vdb_buf *b, const uint32_t *ids, size_t n, int escaped, size_t *offs)
{
	vdb_buf_putc(b, '{');
	for (size_t i = 0; i < n; i++) {
		if (i)
			vdb_buf_putc(b, ',');
		if (offs)
			offs[i] = b->len;
		if (escaped && i % 2)
			vdb_buf_printf(b, "\"\\u006b%06u\":%zu", ids[i], i);
		else
			vdb_buf_printf(b, "\"k%06u\":%zu", ids[i], i);
	}
	vdb_buf_putc(b, '}');
}

Test(json, object_with_200000_distinct_keys_is_fast, .timeout = 30)
{
	enum { N = 200000 };
	uint32_t *ids = malloc(N * sizeof *ids);
	for (uint32_t i = 0; i < N; i++)
		ids[i] = i; /* ascending: the worst order for an unbalanced tree */
	vdb_buf b = VDB_BUF_INIT;
	build_object(&b, ids, N, 1, NULL);
	vj_reader r;
	double t0 = now();
	cr_expect_eq(doc(b.data, b.len, NULL, &r), 0, "%s", r.err);
	double dt = now() - t0;
	cr_expect_lt(dt, 2.0, "200k keys took %.3f s", dt);
	vdb_buf_reset(&b);
	for (uint32_t i = 0; i < N; i++)
		ids[i] = N - 1 - i; /* descending */
	build_object(&b, ids, N, 0, NULL);
	cr_expect_eq(doc(b.data, b.len, NULL, &r), 0, "%s", r.err);
	free(ids);
	vdb_buf_free(&b);
}

Test(json, object_with_200000_keys_and_one_duplicate_is_rejected, .timeout = 30)
{
	enum { N = 200000 };
	uint32_t *ids = malloc(N * sizeof *ids);
	size_t *offs = malloc(N * sizeof *offs);
	for (uint32_t i = 0; i < N; i++)
		ids[i] = i;
	ids[N - 1] = 123456; /* the last key repeats an earlier one, spelled with escapes */
	vdb_buf b = VDB_BUF_INIT;
	build_object(&b, ids, N, 1, offs);
	vj_reader r;
	double t0 = now();
	cr_expect_eq(doc(b.data, b.len, NULL, &r), -1);
	cr_expect_lt(now() - t0, 2.0);
	cr_expect_str_eq(r.err, "duplicate key \"k123456\"");
	cr_expect_eq(r.err_off, offs[N - 1]);
	free(ids);
	free(offs);
	vdb_buf_free(&b);
}

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Random insertion orders drive every rotation case of the balanced tree; the first
 * duplicate must be found exactly where a naive scan finds it. */
Test(json, random_objects_agree_with_naive_duplicate_check)
{
	uint64_t seed = 0x9E3779B97F4A7C15ULL;
	uint32_t ids[3000];
	size_t offs[3000];
	static unsigned char seen[100000];
	for (int round = 0; round < 300; round++) {
		size_t n = 1 + rng_next(&seed) % 3000;
		uint32_t range = (uint32_t)(rng_next(&seed) % (round % 3 ? 100000 : n * 20) + 1);
		for (size_t i = 0; i < n; i++)
			ids[i] = (uint32_t)(rng_next(&seed) % range);
		size_t first_dup = n;
		memset(seen, 0, range);
		for (size_t i = 0; i < n && first_dup == n; i++)
			if (seen[ids[i]]++)
				first_dup = i;
		vdb_buf b = VDB_BUF_INIT;
		build_object(&b, ids, n, round % 2, offs);
		vj_reader r;
		int rc = doc(b.data, b.len, NULL, &r);
		if (first_dup == n) {
			cr_assert_eq(rc, 0, "round %d: %s", round, r.err);
		} else {
			cr_assert_eq(rc, -1, "round %d: duplicate missed", round);
			cr_assert_eq(r.err_off, offs[first_dup], "round %d: %s", round, r.err);
		}
		vdb_buf_free(&b);
	}
}

/* ---- depth ----------------------------------------------------------------------------- */

static void nest(vdb_buf *b, int depth, const char *open, const char *close)
{
	vdb_buf_reset(b);
	for (int i = 0; i < depth; i++)
		vdb_buf_puts(b, open);
	vdb_buf_puts(b, "1");
	for (int i = 0; i < depth; i++)
		vdb_buf_puts(b, close);
}

Test(json, depth_limit_is_64_levels)
{
	vdb_buf b = VDB_BUF_INIT;
	vj_reader r;
	nest(&b, VJ_MAX_DEPTH, "[", "]");
	cr_expect_eq(doc(b.data, b.len, NULL, &r), 0, "%s", r.err);
	nest(&b, VJ_MAX_DEPTH + 1, "[", "]");
	cr_expect_eq(doc(b.data, b.len, NULL, &r), -1);
	cr_expect_str_eq(r.err, "nesting deeper than 64 levels");
	cr_expect_eq(r.err_off, 64);
	nest(&b, VJ_MAX_DEPTH, "{\"a\":", "}");
	cr_expect_eq(doc(b.data, b.len, NULL, &r), 0, "%s", r.err);
	nest(&b, VJ_MAX_DEPTH + 1, "{\"a\":", "}");
	cr_expect_eq(doc(b.data, b.len, NULL, &r), -1);
	cr_expect_str_eq(r.err, "nesting deeper than 64 levels");
	cr_expect_eq(r.err_off, 64 * 5);
	nest(&b, 100000, "[", "]"); /* hostile: must fail cleanly, not blow the stack */
	cr_expect_eq(doc(b.data, b.len, NULL, &r), -1);
	cr_expect_eq(r.err_off, 64);
	/* Depth is about nesting, not count: many sibling containers are fine. */
	vdb_buf_reset(&b);
	vdb_buf_putc(&b, '[');
	for (int i = 0; i < 1000; i++)
		vdb_buf_puts(&b, i ? ",[{}]" : "[{}]");
	vdb_buf_putc(&b, ']');
	cr_expect_eq(doc(b.data, b.len, NULL, &r), 0, "%s", r.err);
	vdb_buf_free(&b);
}

/* ---- never reading past the end -------------------------------------------------------- */

static const text corpus[] = {
	LIT("{\"id\":42,\"vector\":[0.1,-2e-3,1E+5],"
	    "\"payload\":{\"lang\":\"en\",\"tags\":[\"a\"]}}"),
	LIT("[true,false,null,-0.5e-7,\"\\ud83d\\ude00\\u00e9\\n\",\"\xF0\x9F\x98\x80\xC3\xA9\"]"),
	LIT("{\"\\u0061\":{\"b\":[[],{}]},\"c\":\"\xE2\x82\xAC\"}"),
	LIT("\"abcdefghijklmnop\\\"\""),
	LIT("-123.456e+789"), LIT("[1 , 2 ]  "),
};

/* Every proper prefix of a valid document ends in the middle of something: each must be
 * rejected (or, for a number, accepted as shorter) without touching the byte after it. */
Test(json, truncated_inputs_never_read_past_the_end)
{
	for (size_t i = 0; i < sizeof corpus / sizeof *corpus; i++) {
		vj_reader r;
		cr_assert_eq(doc(corpus[i].s, corpus[i].len, NULL, &r), 0, "corpus %zu: %s", i,
			     r.err);
		size_t full = corpus[i].len;
		while (full > 0 && corpus[i].s[full - 1] == ' ')
			full--;
		for (size_t len = 0; len < full; len++) {
			int rc = doc(corpus[i].s, len, NULL, &r);
			char last = len ? corpus[i].s[len - 1] : 0;
			int num = corpus[i].s[0] == '-' && len > 1 && last != '.' && last != 'e' &&
				  last != '+';
			cr_expect_eq(rc, num ? 0 : -1, "corpus %zu cut at %zu: %s", i, len, r.err);
			cr_expect_leq(r.err_off, len);
			char *c = exact(corpus[i].s, len);
			vj_init(&r, c, len);
			vj_string(&r, NULL);
			vj_init(&r, c, len);
			const char *tok;
			size_t n;
			vj_number(&r, &tok, &n);
			vj_utf8_valid_prefix(c, len);
			free(c);
		}
	}
}

/* Each string-level primitive on every truncation of tricky escapes and sequences. */
Test(json, truncated_escapes_never_read_past_the_end)
{
	static const text strs[] = {
		LIT("\"\\ud83d\\ude00\""), LIT("\"\\u00e9\""), LIT("\"\xF4\x8F\xBF\xBF\""),
		LIT("\"a\\\\\""), LIT("\"\\ud800\\u"), LIT("\"0123456789\xE2\x82\xAC\""),
	};
	for (size_t i = 0; i < sizeof strs / sizeof *strs; i++)
		for (size_t len = 0; len < strs[i].len; len++) {
			vdb_buf out = VDB_BUF_INIT;
			vj_reader r;
			int rc = decode(strs[i].s, len, &out, &r);
			cr_expect_eq(rc, -1, "str %zu len %zu", i, len);
			cr_expect_leq(r.err_off, len);
			cr_expect_eq(out.len, 0);
			vdb_buf_free(&out);
		}
}
