/* Tests for libvdb/util/numfmt.c: vdb_parse_float must agree bit for bit with glibc strtof on
 * every input (random printed floats, random decimal strings, midpoints, extremes, very long
 * tokens), and vdb_fmt_float must print the shortest, closest, round-tripping digits in the
 * ECMAScript layout. References are glibc's strtof and its correctly rounded printf; seeds are
 * fixed so failures reproduce. Tokens are parsed from the very end of a page followed by an
 * inaccessible page, so any read past the token faults. */
#include "numfmt.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* ---- helpers ------------------------------------------------------------------------------ */

static uint64_t rng_state;

static void rng_seed(uint64_t seed)
{
	rng_state = seed;
}

static uint64_t rng(void) /* xorshift64* */
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * UINT64_C(2685821657736338717);
}

static uint32_t fbits(float f)
{
	uint32_t u;
	memcpy(&u, &f, sizeof u);
	return u;
}

static float from_bits(uint32_t u)
{
	float f;
	memcpy(&f, &u, sizeof f);
	return f;
}

/* Neighbours of positive finite values and exact powers of two, by bit arithmetic (no libm). */
static float next_up(float x)
{
	return from_bits(fbits(x) + 1);
}

static float next_down(float x)
{
	return from_bits(fbits(x) - 1);
}

static double next_d(double x, int64_t dir) /* dir = +-1 */
{
	uint64_t u;
	memcpy(&u, &x, sizeof u);
	u += (uint64_t)dir;
	memcpy(&x, &u, sizeof x);
	return x;
}

static float pow2f(int e) /* -149 <= e <= 127 */
{
	return from_bits(e >= -126 ? (uint32_t)(e + 127) << 23 : UINT32_C(1) << (e + 149));
}

static float random_finite_float(void)
{
	uint32_t u;
	do
		u = (uint32_t)(rng() >> 32);
	while (((u >> 23) & 0xff) == 0xff);
	return from_bits(u);
}

/* Two pages, the second PROT_NONE: tokens are copied to the end of the first one. */
static char *guard_end;

static void guard_setup(void)
{
	long pg = sysconf(_SC_PAGESIZE);
	char *p = mmap(NULL, (size_t)pg * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);
	cr_assert(p != MAP_FAILED);
	cr_assert(mprotect(p + pg, (size_t)pg, PROT_NONE) == 0);
	guard_end = p + pg;
}

/* Parses s[0..len) placed right before the guard page (or from the heap when longer). */
static int parse_guarded(const char *s, size_t len, float *out)
{
	if (len > 4000) {
		char *h = malloc(len); /* ASan catches over-reads here */
		memcpy(h, s, len);
		int rc = vdb_parse_float(h, len, out);
		free(h);
		return rc;
	}
	memcpy(guard_end - len, s, len);
	return vdb_parse_float(guard_end - len, len, out);
}

/* Failure bookkeeping for big loops: one cr_assert at the end, with the first failure. */
struct fails {
	long n;
	char first[512];
};

static void fail(struct fails *f, const char *what, const char *s)
{
	if (f->n++ == 0)
		snprintf(f->first, sizeof f->first, "%s: \"%.400s\"", what, s);
}

#define ASSERT_NO_FAILS(f, total)                                                             \
	cr_assert((f).n == 0, "%ld of %ld failed; first: %s", (f).n, (long)(total), (f).first)

/* Checks vdb_parse_float(s) against strtof(s) (s is NUL-terminated); returns 0 if equal. */
static int parse_differs(const char *s)
{
	float want = strtof(s, NULL), got = 12345.0f;
	int rc = parse_guarded(s, strlen(s), &got);
	if (isinf(want))
		return rc != VDB_NUM_OVERFLOW || fbits(got) != fbits(12345.0f);
	return rc != 0 || fbits(got) != fbits(want);
}

/* JSON number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int is_json_number(const char *s)
{
	if (*s == '-')
		s++;
	if (*s == '0')
		s++;
	else if (*s >= '1' && *s <= '9')
		while (*s >= '0' && *s <= '9')
			s++;
	else
		return 0;
	if (*s == '.') {
		if (!(*++s >= '0' && *s <= '9'))
			return 0;
		while (*s >= '0' && *s <= '9')
			s++;
	}
	if (*s == 'e' || *s == 'E') {
		s++;
		if (*s == '+' || *s == '-')
			s++;
		if (!(*s >= '0' && *s <= '9'))
			return 0;
		while (*s >= '0' && *s <= '9')
			s++;
	}
	return *s == '\0';
}

/* Significant digits of a number string (no leading/trailing zeros) into dig; *exp is such
 * that value = 0.dig * 10^exp (the ECMAScript "n"). Returns the digit count (0 for zero). */
static int sig_digits(const char *s, char *dig, int *exp)
{
	int nd = 0, intdigits = 0, seen_point = 0, lead = 0;
	for (; *s && *s != 'e' && *s != 'E'; s++) {
		if (*s == '.') {
			seen_point = 1;
			continue;
		}
		if (*s < '0' || *s > '9')
			continue;
		intdigits += !seen_point;
		if (nd == 0 && *s == '0') {
			lead++;
			continue;
		}
		dig[nd++] = *s;
	}
	while (nd > 0 && dig[nd - 1] == '0')
		nd--;
	dig[nd] = '\0';
	*exp = intdigits - lead + (*s ? atoi(s + 1) : 0);
	return nd;
}

/* ECMAScript Number::toString layout, written straight from the spec's steps. */
static void ecma_layout(char *out, int neg, const char *dig, int n)
{
	int k = (int)strlen(dig);
	char *p = out;
	if (neg)
		*p++ = '-';
	if (k <= n && n <= 21)
		p += sprintf(p, "%s%.*s", dig, n - k, "000000000000000000000");
	else if (0 < n && n <= 21)
		p += sprintf(p, "%.*s.%s", n, dig, dig + n);
	else if (-6 < n && n <= 0)
		p += sprintf(p, "0.%.*s%s", -n, "000000", dig);
	else if (k == 1)
		p += sprintf(p, "%se%c%d", dig, n - 1 < 0 ? '-' : '+', abs(n - 1));
	else
		p += sprintf(p, "%c.%se%c%d", dig[0], dig + 1, n - 1 < 0 ? '-' : '+', abs(n - 1));
	*p = '\0';
}

static int reads_back_strtof(const char *s, uint32_t want)
{
	return fbits(strtof(s, NULL)) == want;
}

/* Full check of vdb_fmt_float(x): returns NULL if fine, else what is wrong. With `smallest_p`
 * it also runs the plain reference: the smallest p in 1..9 whose "%.{p-1}e" reads back must
 * equal the digit count. `lopsided` counts floats for which our output is shorter than any
 * correctly rounded printf output that reads back. */
static const char *fmt_problem(float x, char *s, int smallest_p, long *lopsided)
{
	uint32_t u = fbits(x);
	char canary[VDB_FLOAT_FMT_MAX + 8];
	memset(canary, 0x7f, sizeof canary);
	size_t len = vdb_fmt_float(x, canary);
	memcpy(s, canary, VDB_FLOAT_FMT_MAX);
	s[VDB_FLOAT_FMT_MAX] = '\0';
	for (size_t i = VDB_FLOAT_FMT_MAX; i < sizeof canary; i++)
		if (canary[i] != 0x7f)
			return "wrote past VDB_FLOAT_FMT_MAX";
	if (len >= VDB_FLOAT_FMT_MAX || s[len] != '\0' || strlen(s) != len)
		return "bad length or terminator";
	if (!is_json_number(s))
		return "not a JSON number";
	if (!reads_back_strtof(s, u))
		return "strtof does not read it back";
	float r;
	if (vdb_parse_float(s, len, &r) != 0 || fbits(r) != u)
		return "vdb_parse_float does not read it back";
	char dig[32], t[64], rd[32], want[64];
	int n, rn;
	int nd = sig_digits(s, dig, &n);
	if (nd == 0)
		return strcmp(s, u >> 31 ? "-0" : "0") ? "bad zero" : NULL;
	ecma_layout(want, (int)(u >> 31), dig, n);
	if (strcmp(s, want))
		return "layout differs from ECMAScript";
	if (nd > 1) {
		/* Shortest: no (nd-1)-digit string reads back. Those that could are the two
		 * neighbours of our digits on the (nd-1)-digit grid (the set reading back is an
		 * interval around x). */
		long long d = atoll(dig) / 10;
		const char *sg = u >> 31 ? "-" : "";
		snprintf(t, sizeof t, "%s%llde%d", sg, d, n - nd + 1);
		if (reads_back_strtof(t, u))
			return "a shorter string reads back (lower neighbour)";
		snprintf(t, sizeof t, "%s%llde%d", sg, d + 1, n - nd + 1);
		if (reads_back_strtof(t, u))
			return "a shorter string reads back (upper neighbour)";
	}
	/* Closest: glibc's "%.{nd-1}e" is the correctly rounded nd-digit string. If it does not
	 * read back, x sits just above a power of two, where the interval reading back as x is
	 * lopsided: our (shortest, by the test above) digits are on the far side. */
	int lop = 0;
	snprintf(t, sizeof t, "%.*e", nd - 1, (double)x);
	if (reads_back_strtof(t, u)) {
		sig_digits(t, rd, &rn);
		if (strcmp(rd, dig) || rn != n)
			return "not the closest shortest digits (differs from printf)";
	} else {
		lop = 1;
		(*lopsided)++;
		if (fbits(x) & 0x7fffff)
			return "printf's nd digits do not read back, yet x is no power of two";
	}
	if (smallest_p) {
		int p;
		for (p = 1; p <= 9; p++) {
			snprintf(t, sizeof t, "%.*e", p - 1, (double)x);
			if (reads_back_strtof(t, u))
				break;
		}
		if (p != nd && !(lop && p > nd))
			return "digit count differs from the smallest round-tripping precision";
	}
	return NULL;
}

/* ---- parsing ------------------------------------------------------------------------------ */

TestSuite(numfmt, .init = guard_setup);

Test(numfmt, parse_matches_strtof_on_printed_random_floats)
{
	rng_seed(1);
	struct fails f = {0};
	char s[64];
	long total = 0;
	for (int i = 0; i < 100000; i++) {
		float x = random_finite_float();
		for (int p = 1; p <= 10; p++) {
			snprintf(s, sizeof s, "%.*g", p == 10 ? 17 : p, (double)x);
			/* %g may print "inf"-free but non-JSON forms like "1e+10"; both parse. */
			total++;
			if (parse_differs(s))
				fail(&f, "differs from strtof", s);
		}
	}
	ASSERT_NO_FAILS(f, total);
}

/* Random JSON numbers: 1..25 digits, point anywhere, exponent in [-50, 45] in various
 * spellings (sign, case, leading zeros). */
static void random_decimal(char *s)
{
	int nd = 1 + (int)(rng() % 25), il = (int)(rng() % (uint64_t)(nd + 1)), n = 0;
	if (rng() & 1)
		s[n++] = '-';
	if (il == 0) {
		s[n++] = '0';
	} else {
		s[n++] = (char)('1' + rng() % 9);
		for (int i = 1; i < il; i++)
			s[n++] = (char)('0' + rng() % 10);
	}
	if (nd > il) {
		s[n++] = '.';
		for (int i = il; i < nd; i++)
			s[n++] = (char)('0' + rng() % 10);
	}
	uint64_t r = rng();
	if (r & 1) {
		int e = (int)((r >> 8) % 96) - 50;
		s[n++] = r & 2 ? 'e' : 'E';
		if (e < 0 || (r & 4))
			s[n++] = e < 0 ? '-' : '+';
		n += sprintf(s + n, r & 8 ? "%d" : "%03d", abs(e));
	}
	s[n] = '\0';
}

Test(numfmt, parse_matches_strtof_on_random_decimals)
{
	rng_seed(2);
	struct fails f = {0};
	char s[64];
	for (int i = 0; i < 1000000; i++) {
		random_decimal(s);
		if (parse_differs(s))
			fail(&f, "differs from strtof", s);
	}
	ASSERT_NO_FAILS(f, 1000000);
}

/* Midpoints between adjacent floats (ties to even), their neighbouring doubles, and the
 * rounded %.60g forms of the midpoints, over all magnitudes including subnormals. */
Test(numfmt, parse_matches_strtof_on_midpoints)
{
	rng_seed(3);
	struct fails f = {0};
	char s[256];
	long total = 0;
	for (int i = 0; i < 40000; i++) {
		float x = from_bits(fbits(random_finite_float()) & 0x7fffffff);
		if (x == FLT_MAX)
			continue;
		double mid = ((double)x + (double)next_up(x)) / 2; /* exact */
		double probes[3] = {mid, next_d(mid, -1), next_d(mid, 1)};
		for (int j = 0; j < 3; j++) {
			const char *sign = rng() & 1 ? "-" : "";
			snprintf(s, sizeof s, "%s%.150g", sign, probes[j]); /* exact */
			total++;
			if (parse_differs(s))
				fail(&f, "differs from strtof", s);
		}
		snprintf(s, sizeof s, "%.60g", mid);
		total++;
		if (parse_differs(s))
			fail(&f, "differs from strtof", s);
		snprintf(s, sizeof s, "%.17g", mid);
		total++;
		if (parse_differs(s))
			fail(&f, "differs from strtof", s);
	}
	ASSERT_NO_FAILS(f, total);
}

static float parse_ok(const char *s)
{
	float r = 12345.0f;
	int rc = parse_guarded(s, strlen(s), &r);
	cr_assert_eq(rc, 0, "parse(\"%.80s\") returned %d", s, rc);
	cr_assert_eq(fbits(r), fbits(strtof(s, NULL)), "parse(\"%.80s\") = %a, strtof = %a", s,
		     (double)r, (double)strtof(s, NULL));
	return r;
}

static void parse_overflows(const char *s)
{
	float r = 12345.0f;
	int rc = parse_guarded(s, strlen(s), &r);
	cr_assert_eq(rc, VDB_NUM_OVERFLOW, "parse(\"%.80s\") returned %d", s, rc);
	cr_assert_eq(fbits(r), fbits(12345.0f), "overflow wrote the output");
	cr_assert(isinf(strtof(s, NULL)), "strtof(\"%.80s\") does not overflow", s);
}

Test(numfmt, parse_extremes_and_overflow_boundary)
{
	cr_assert_eq(parse_ok("3.4028235e38"), FLT_MAX);
	cr_assert_eq(parse_ok("3.40282346638528859811704183484516925440e+38"), FLT_MAX);
	cr_assert_eq(parse_ok("-3.4028235e+38"), -FLT_MAX);
	/* 2^128 - 2^103 is the midpoint between FLT_MAX and 2^128: ties to even overflow. */
	cr_assert_eq(parse_ok("3.4028235677973366e38"), FLT_MAX);
	cr_assert_eq(parse_ok("340282356779733661637539395458142568447"), FLT_MAX);
	cr_assert_eq(parse_ok("340282356779733661637539395458142568447.999999999999999999"),
		     FLT_MAX);
	parse_overflows("340282356779733661637539395458142568448");
	parse_overflows("3.4028235677973367e38");
	parse_overflows("3.40282356779733661637539395458142568448000000000000000000001e38");
	parse_overflows("1e39");
	parse_overflows("-3.5e38");
	parse_overflows("1e99999999999999999999");
	parse_overflows("-123456789012345678901234567890e10");

	cr_assert_eq(parse_ok("1.17549435e-38"), FLT_MIN);
	cr_assert_eq(parse_ok("1.1754943508222875e-38"), FLT_MIN);
	cr_assert_eq(parse_ok("1e-45"), FLT_TRUE_MIN);
	cr_assert_eq(parse_ok("1.4e-45"), FLT_TRUE_MIN);
	cr_assert_eq(parse_ok("1.401298464324817e-45"), FLT_TRUE_MIN);
	cr_assert_eq(parse_ok("-1.4e-45"), -FLT_TRUE_MIN);
	/* 2^-150 is the midpoint between 0 and the smallest subnormal: ties to even give 0. */
	const char *half = "7.00649232162408535461864791644958065640130970938257885878534141944895"
			   "541342930300743319094181060791015625e-46";
	cr_assert_eq(fbits(parse_ok(half)), 0);
	char above[300];
	snprintf(above, sizeof above, "%.*s1e-46", (int)strcspn(half, "e"), half);
	cr_assert_eq(parse_ok(above), FLT_TRUE_MIN);
	cr_assert_eq(fbits(parse_ok("7e-46")), 0);
	cr_assert_eq(parse_ok("7.1e-46"), FLT_TRUE_MIN);
	cr_assert_eq(parse_ok("1.1754942e-38"), next_down(FLT_MIN)); /* largest subnormal */

	cr_assert_eq(fbits(parse_ok("1e-50")), 0);
	cr_assert_eq(fbits(parse_ok("-1e-50")), fbits(-0.0f));
	cr_assert_eq(fbits(parse_ok("1e-99999999999999999999")), 0);
	cr_assert_eq(fbits(parse_ok("-0")), fbits(-0.0f));
	cr_assert_eq(fbits(parse_ok("0")), 0);
	cr_assert_eq(fbits(parse_ok("0e999")), 0);
	cr_assert_eq(fbits(parse_ok("-0.000E-999")), fbits(-0.0f));
	cr_assert_eq(fbits(parse_ok("0.0e+99999999999999999999")), 0);
}

Test(numfmt, parse_exponent_spellings)
{
	cr_assert_eq(parse_ok("1e0005"), 100000.0f);
	cr_assert_eq(parse_ok("1E+0005"), 100000.0f);
	cr_assert_eq(parse_ok("1e-0005"), 0.00001f);
	cr_assert_eq(parse_ok("1e00000000000000000000000000000000000000001"), 10.0f);
	cr_assert_eq(parse_ok("25e-1"), 2.5f);
	cr_assert_eq(parse_ok("0.5"), 0.5f);
	cr_assert_eq(parse_ok("-12.75E1"), -127.5f);
}

Test(numfmt, parse_long_tokens)
{
	size_t cap = 4096;
	char *s = malloc(cap);
	/* "0." + 300 zeros + "1": 1e-301 underflows to zero; with e301 appended it is 1. */
	int n = sprintf(s, "0.");
	memset(s + n, '0', 300);
	n += 300;
	n += sprintf(s + n, "1");
	cr_assert_eq(fbits(parse_ok(s)), 0);
	sprintf(s + n, "e301");
	cr_assert_eq(parse_ok(s), 1.0f);
	sprintf(s + n, "e+290");
	parse_ok(s);

	/* 800-digit integers: overflow, or brought back into range by an exponent. */
	rng_seed(4);
	for (int iter = 0; iter < 200; iter++) {
		s[0] = (char)('1' + rng() % 9);
		for (int i = 1; i < 800; i++)
			s[i] = (char)('0' + rng() % 10);
		s[800] = '\0';
		parse_overflows(s);
		sprintf(s + 800, "e-%d", 780 + (int)(rng() % 60)); /* 1e20 .. 1e-40 */
		parse_ok(s);
	}
	memset(s, '0', 800);
	s[0] = '1';
	s[800] = '\0';
	parse_overflows(s);
	sprintf(s + 800, "e-799");
	cr_assert_eq(parse_ok(s), 1.0f);

	/* Exact midpoints with 100+ significant digits padded to thousands of digits: only a
	 * nonzero digit far beyond anything strtof needs decides the rounding direction. */
	float lows[] = {FLT_TRUE_MIN, from_bits(0x00123457), from_bits(0x00800001), 1.5f,
			from_bits(0x7f000001)};
	for (size_t i = 0; i < sizeof lows / sizeof lows[0]; i++) {
		float lo = lows[i], hi = next_up(lo);
		double mid = ((double)lo + (double)hi) / 2;
		n = snprintf(s, cap, "%.200f", mid); /* exact, with a decimal point */
		while (s[n - 1] == '0')
			n--;
		memset(s + n, '0', 3000);
		s[n + 3000] = '\0';
		float even = (fbits(lo) & 1) ? hi : lo;
		cr_assert_eq(fbits(parse_ok(s)), fbits(even), "exact midpoint %zu", i);
		s[n + 2999] = '1';
		cr_assert_eq(fbits(parse_ok(s)), fbits(hi), "just above midpoint %zu", i);
		s[n + 3000] = 'e';
		s[n + 3001] = '0';
		s[n + 3002] = '\0';
		cr_assert_eq(fbits(parse_ok(s)), fbits(hi), "just above midpoint %zu, e0", i);
	}
	free(s);
}

Test(numfmt, parse_reads_only_the_token)
{
	/* The token is followed by text that would change the value if read. */
	const char *text = "1.5e10]12345,-0.25e-3}";
	float r;
	cr_assert_eq(vdb_parse_float(text, 3, &r), 0);
	cr_assert_eq(r, 1.5f);
	cr_assert_eq(vdb_parse_float(text, 6, &r), 0);
	cr_assert_eq(r, 1.5e10f);
	cr_assert_eq(vdb_parse_float(text + 7, 2, &r), 0);
	cr_assert_eq(r, 12.0f);
	cr_assert_eq(vdb_parse_float(text + 13, 8, &r), 0);
	cr_assert_eq(r, -0.25e-3f);
	/* Same with a long token that takes the slow path. */
	char buf[200];
	memset(buf, '7', sizeof buf);
	buf[0] = '1';
	cr_assert_eq(vdb_parse_float(buf, 30, &r), 0);
	cr_assert_eq(r, strtof("177777777777777777777777777777", NULL));
	cr_assert_eq(vdb_parse_float(buf, 1, &r), 0);
	cr_assert_eq(r, 1.0f);
}

Test(numfmt, parse_leaves_errno_alone)
{
	const char *inputs[] = {"1e-50", "1e39", "1.4e-45", "123456789012345678901234567890", "1"};
	for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
		float r;
		errno = 4321;
		vdb_parse_float(inputs[i], strlen(inputs[i]), &r);
		cr_assert_eq(errno, 4321, "errno changed by \"%s\"", inputs[i]);
	}
}

Test(numfmt, parse_is_locale_independent)
{
	const char *names[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "fr_FR.utf8", "de_DE"};
	const char *got = NULL;
	for (size_t i = 0; !got && i < sizeof names / sizeof names[0]; i++)
		got = setlocale(LC_NUMERIC, names[i]);
	if (!got)
		cr_skip_test("no locale with a decimal comma is installed");
	const char *inputs[] = {"1.5", "123456789012345678901234.5", "1.5e-45", "0.1"};
	float want[] = {1.5f, 123456789012345678901234.5f, 1.5e-45f, 0.1f};
	for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
		float r;
		cr_assert_eq(vdb_parse_float(inputs[i], strlen(inputs[i]), &r), 0);
		cr_assert_eq(fbits(r), fbits(want[i]), "\"%s\" under %s", inputs[i], got);
	}
	setlocale(LC_NUMERIC, "C");
}

/* ---- formatting --------------------------------------------------------------------------- */

static void fmt_is(float x, const char *want)
{
	char s[VDB_FLOAT_FMT_MAX];
	size_t n = vdb_fmt_float(x, s);
	cr_assert_str_eq(s, want, "fmt(%a)", (double)x);
	cr_assert_eq(n, strlen(want));
}

Test(numfmt, fmt_exact_strings)
{
	fmt_is(1.0f, "1");
	fmt_is(0.1f, "0.1");
	fmt_is(0.0f, "0");
	fmt_is(-0.0f, "-0");
	fmt_is(1e-7f, "1e-7");
	fmt_is(123456.0f, "123456");
	fmt_is(1.5e30f, "1.5e+30");
	fmt_is(FLT_MAX, "3.4028235e+38");
	fmt_is(-FLT_MAX, "-3.4028235e+38");
	fmt_is(FLT_TRUE_MIN, "1e-45");
	fmt_is(FLT_MIN, "1.1754944e-38");
	fmt_is(100.0f, "100");
	fmt_is(0.000001f, "0.000001");
	fmt_is(0.0000015f, "0.0000015");
	fmt_is(1.5e-7f, "1.5e-7");
	fmt_is(16777216.0f, "16777216");
	fmt_is(1e20f, "100000000000000000000");
	fmt_is(1e21f, "1e+21");
	fmt_is(1e22f, "1e+22");
	fmt_is(123.456f, "123.456");
	fmt_is(-2.5f, "-2.5");
	fmt_is(3.14159265f, "3.1415927");
	fmt_is(0.3f, "0.3");
	fmt_is(1e10f, "10000000000");
	fmt_is(-1.2345679e20f, "-123456790000000000000");
	fmt_is(9.999999e-7f, "9.999999e-7");
}

Test(numfmt, fmt_round_trips_shortest_on_random_floats)
{
	rng_seed(5);
	struct fails f = {0};
	char s[VDB_FLOAT_FMT_MAX + 1];
	long lopsided = 0;
	for (int i = 0; i < 1000000; i++) {
		float x = random_finite_float();
		const char *why = fmt_problem(x, s, i < 100000, &lopsided);
		if (why)
			fail(&f, why, s);
	}
	ASSERT_NO_FAILS(f, 1000000);
}

Test(numfmt, fmt_edge_values)
{
	struct fails f = {0};
	char s[VDB_FLOAT_FMT_MAX + 1], t[32];
	long lopsided = 0, total = 0;
	float special[] = {0.0f, -0.0f, FLT_MIN, -FLT_MIN, FLT_MAX, -FLT_MAX, FLT_TRUE_MIN,
			   next_down(FLT_MIN), next_down(FLT_MAX), 2 * FLT_TRUE_MIN,
			   0.1f, 1e-7f, 1e21f, 1e22f, 16777216.0f, 16777215.0f, 8388608.5f};
	for (size_t i = 0; i < sizeof special / sizeof special[0]; i++, total++) {
		const char *why = fmt_problem(special[i], s, 1, &lopsided);
		if (why)
			fail(&f, why, s);
	}
	for (int e = -149; e <= 127; e++) { /* powers of two, both signs, and neighbours */
		float p2 = pow2f(e);
		float v[] = {p2, -p2, next_down(p2), next_up(p2)};
		for (int j = 0; j < 4; j++, total++) {
			const char *why = fmt_problem(v[j], s, 1, &lopsided);
			if (why)
				fail(&f, why, s);
		}
	}
	for (int e = -45; e <= 38; e++, total++) { /* powers of ten print as one digit */
		snprintf(t, sizeof t, "1e%d", e);
		float p10 = strtof(t, NULL);
		const char *why = fmt_problem(p10, s, 1, &lopsided);
		char dig[32];
		int n;
		if (!why && sig_digits(s, dig, &n) != 1)
			why = "power of ten not printed as one digit";
		if (why)
			fail(&f, why, s);
	}
	ASSERT_NO_FAILS(f, total);
}

/* Every integer up to 2^24 is a float whose shortest form is the integer itself. */
Test(numfmt, fmt_integers_up_to_2_pow_24)
{
	struct fails f = {0};
	char s[VDB_FLOAT_FMT_MAX], want[16];
	for (uint32_t i = 0; i <= (UINT32_C(1) << 24); i++) {
		int k = 15;
		uint32_t v = i;
		want[k] = '\0';
		do
			want[--k] = (char)('0' + v % 10);
		while (v /= 10);
		vdb_fmt_float((float)i, s);
		if (strcmp(s, want + k))
			fail(&f, "integer not printed as itself", s);
	}
	ASSERT_NO_FAILS(f, (1L << 24) + 1);
}
