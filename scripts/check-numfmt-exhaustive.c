/* Exhaustive check of libvdb/util/numfmt.c over all 2^32 float bit patterns (not part of the
 * test suite; takes a few minutes on two cores). For every finite float x:
 *  - s = vdb_fmt_float(x) is a JSON number of at most VDB_FLOAT_FMT_MAX - 1 characters,
 *  - vdb_parse_float(s) gives back exactly the bits of x,
 *  - s is shortest: neither (n-1)-digit neighbour of its n digits reads back as x (the
 *    reals reading back as x form an interval, so if any shorter string did, one of these
 *    two would),
 * and for every 16th pattern also against glibc: strtof(s) gives back x, and printf's
 * correctly rounded "%.{n-1}e" has the same n digits (so s is also the closest shortest
 * string) while "%.{n-2}e" does not read back, unless no n-digit printf output reads back
 * (the interval is lopsided around x just above a power of two), which is counted.
 *
 *   gcc -O2 -std=gnu11 -pthread -I libvdb/util libvdb/util/numfmt.c \
 *       scripts/check-numfmt-exhaustive.c -o /tmp/check-numfmt && /tmp/check-numfmt [threads]
 * A sub-range of bit patterns can be given as two more arguments: [first last] (hex).
 */
#include "numfmt.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct job {
	uint64_t start, end;
	uint64_t checked, failures, sampled, lopsided;
};

static uint32_t fbits(float f)
{
	uint32_t u;
	memcpy(&u, &f, sizeof u);
	return u;
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

/* Significant digits of a number string (leading/trailing zeros dropped) and the exponent of
 * its last digit: value = digits * 10^exp. Returns the digit count. */
static int sig_digits(const char *s, char *dig, int *exp)
{
	int n = 0, point = 0, seen_point = 0, e = 0;
	for (; *s && *s != 'e' && *s != 'E'; s++) {
		if (*s == '.') {
			seen_point = 1;
			continue;
		}
		if (*s < '0' || *s > '9')
			continue;
		if (n == 0 && *s == '0') {
			point -= seen_point;
			continue;
		}
		dig[n++] = *s;
		point -= seen_point;
	}
	if (*s)
		e = atoi(s + 1);
	while (n > 1 && dig[n - 1] == '0') {
		n--;
		point++;
	}
	dig[n] = '\0';
	*exp = point + e;
	return n;
}

static int reads_back(const char *s, size_t n, uint32_t want)
{
	float r;
	return vdb_parse_float(s, n, &r) == 0 && fbits(r) == want;
}

/* Writes "[-]<d>e<e>" to t and returns its length (snprintf is too slow for 2^33 calls). */
static size_t put_number(char *t, int neg, uint64_t d, int e)
{
	char tmp[48];
	size_t n = 0, k = 0;
	if (neg)
		t[n++] = '-';
	do
		tmp[k++] = (char)('0' + d % 10);
	while (d /= 10);
	while (k)
		t[n++] = tmp[--k];
	t[n++] = 'e';
	if (e < 0) {
		t[n++] = '-';
		e = -e;
	}
	do
		tmp[k++] = (char)('0' + e % 10);
	while (e /= 10);
	while (k)
		t[n++] = tmp[--k];
	t[n] = '\0';
	return n;
}

static void check_one(struct job *jb, uint32_t u)
{
	float x;
	memcpy(&x, &u, sizeof x);
	char s[VDB_FLOAT_FMT_MAX + 8], dig[32], t[64];
	memset(s, 'X', sizeof s);
	size_t n = vdb_fmt_float(x, s);
	int bad = n >= VDB_FLOAT_FMT_MAX || s[n] != '\0' || strlen(s) != n || !is_json_number(s);
	bad = bad || !reads_back(s, n, u);
	int e, nd = bad ? 0 : sig_digits(s, dig, &e);
	if (!bad && nd > 1) {
		/* (n-1)-digit neighbours: floor(D / 10) and floor(D / 10) + 1, times 10^(e+1). */
		uint64_t d = strtoull(dig, NULL, 10) / 10;
		bad = reads_back(t, put_number(t, (int)(u >> 31), d, e + 1), u) ||
		      reads_back(t, put_number(t, (int)(u >> 31), d + 1, e + 1), u);
	}
	if (!bad && nd > 0 && (u & 15) == 0) {
		/* glibc's printf rounds correctly: "%.{nd-1}e" is the n-digit string closest to x.
		 * It must read back (through strtof too) with our digits, and "%.{nd-2}e" must
		 * not; with the neighbour test above this is the "smallest p" reference. */
		jb->sampled++;
		bad = fbits(strtof(s, NULL)) != u;
		if (nd > 1) {
			snprintf(t, sizeof t, "%.*e", nd - 2, (double)x);
			bad = bad || fbits(strtof(t, NULL)) == u;
		}
		snprintf(t, sizeof t, "%.*e", nd - 1, (double)x);
		if (fbits(strtof(t, NULL)) != u) {
			jb->lopsided++;
		} else {
			char rd[32];
			int re;
			sig_digits(t, rd, &re);
			bad = bad || strcmp(rd, dig) != 0 || re != e;
		}
	}
	if (bad && jb->failures++ < 20)
		fprintf(stderr, "FAIL 0x%08" PRIx32 " (%.9g): \"%s\"\n", u, (double)x, s);
	jb->checked++;
}

static void *run(void *arg)
{
	struct job *jb = arg;
	for (uint64_t u = jb->start; u < jb->end; u++)
		if (((u >> 23) & 0xff) != 0xff)
			check_one(jb, (uint32_t)u);
	return NULL;
}

int main(int argc, char **argv)
{
	int nt = argc > 1 ? atoi(argv[1]) : 2;
	if (nt < 1 || nt > 64)
		nt = 2;
	struct job jobs[64];
	pthread_t th[64];
	uint64_t first = argc > 3 ? strtoull(argv[2], NULL, 16) : 0;
	uint64_t total = argc > 3 ? strtoull(argv[3], NULL, 16) + 1 - first : UINT64_C(1) << 32;
	for (int i = 0; i < nt; i++) {
		/* Contiguous slices: two threads get the positives and the negatives. */
		uint64_t lo = first + total * (uint64_t)i / (uint64_t)nt;
		uint64_t hi = first + total * (uint64_t)(i + 1) / (uint64_t)nt;
		jobs[i] = (struct job){lo, hi, 0, 0, 0, 0};
		pthread_create(&th[i], NULL, run, &jobs[i]);
	}
	uint64_t checked = 0, failures = 0, sampled = 0, lopsided = 0;
	for (int i = 0; i < nt; i++) {
		pthread_join(th[i], NULL);
		checked += jobs[i].checked;
		failures += jobs[i].failures;
		sampled += jobs[i].sampled;
		lopsided += jobs[i].lopsided;
	}
	printf("checked %" PRIu64 " finite floats, %" PRIu64 " compared with printf (%" PRIu64
	       " shorter than any printf precision), %" PRIu64 " failures\n",
	       checked, sampled, lopsided, failures);
	return failures != 0;
}
