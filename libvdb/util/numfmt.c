/* Owns float32 <-> JSON number text conversion (see numfmt.h): a Schubfach-style shortest
 * round-trip formatter for binary32 built on exact 128-bit integer scaling, and a parser with
 * a double-precision fast path that falls back to strtof only when the fast path cannot prove
 * its answer is correctly rounded. Correctness of both directions is pinned by
 * tests/unit/test_numfmt.c and, over all 2^32 bit patterns, scripts/check-numfmt-exhaustive.c. */
#include "numfmt.h"

#include <assert.h>
#include <errno.h>
#include <float.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------------
 * Formatting.
 *
 * Notation: a positive float is v = c * 2^q (c < 2^24 integer). Every real in the rounding
 * interval [v - lo, v + hi] reads back as v (lo = hi = 2^(q-1), except lo = 2^(q-2) just above
 * a power of two; the ends are included only when c is even, because ties go to even). With
 * cb = 4c, the ends and v are cbl, cb, cbr times 2^(q-2).
 *
 * Pick k so that one unit of 10^k is at most the interval width and ten units exceed it:
 * width / 10^k lies in [1, 10). Then, scaled by 10^-k, the interval contains at least one
 * integer and at most one multiple of 10. If it contains a multiple of 10 that is the unique
 * shortest candidate (after dropping its trailing zeros); otherwise the shortest candidates are
 * the integers in it, and the one closest to v is floor(v) or floor(v) + 1.
 *
 * So all we need are floor(4 * x * 2^(q-2) * 10^-k) for x in {cbl, cb, cbr}, plus whether each
 * is exact: two fraction bits and a "sticky" bit are enough for every comparison below (a
 * non-exact value is ORed with 1 and only ever compared against multiples of 2). These are
 * computed as x * G >> sh, with G = 10^-k * 2^beta in [2^126, 2^127):
 *  - k <= 0: 10^-k = 5^-k * 2^-k is an integer of at most 150 bits whose 5^-k factor has at
 *    most 105 bits, so G is exact and the 192-bit product x * G is exact: floor and sticky are
 *    exact.
 *  - k > 0 (k <= 31): G = ceil(10^-k * 2^beta), so x*G exceeds the exact product by less than
 *    x < 2^26 units of 2^-sh (sh = beta - q is in [123, 126]). The exact value X = N / 5^k is
 *    either an integer or at least 5^-k > 2^-72 away from every integer, i.e. more than
 *    2^(sh-72) >= 2^51 units. So the floor is exact, and the value is an integer iff the
 *    fraction bits above the lowest 32 are all zero.
 * k itself is floor(log10(width)): (q * 1233) >> 12 is floor(q * log10(2)) and
 * (q * 1233 - 523) >> 12 is floor(log10(3/4 * 2^q)) for every q a float can have
 * (-149..104), checked exhaustively when the table was generated.
 * ------------------------------------------------------------------------------------------ */

#define POW10_KMIN (-45)

struct pow10_entry {
	uint64_t hi, lo; /* G = hi * 2^64 + lo */
	int beta;
};

/* G and beta for k = -45..31, generated with exact rational arithmetic (Python fractions). */
static const struct pow10_entry pow10_tab[] = {
	{0x59aedfc10d7279c5u, 0xeed1401645400000u, -23}, /* -45 */
	{0x47bf19673df52e37u, 0xf2410011d1000000u, -20}, /* -44 */
	{0x72cb5bd86321e38cu, 0xb6ce6682e8000000u, -16}, /* -43 */
	{0x5bd5e313828182d6u, 0xf8a51ecf20000000u, -13}, /* -42 */
	{0x4977e8dc68679bdfu, 0x2d50e57280000000u, -10}, /* -41 */
	{0x758ca7c70d7292feu, 0xaee7d58400000000u, -6}, /* -40 */
	{0x5e0a1fd271287598u, 0x8becaad000000000u, -3}, /* -39 */
	{0x4b3b4ca85a86c47au, 0x098a224000000000u, 0}, /* -38 */
	{0x785ee10d5da46d90u, 0x0f436a0000000000u, 4}, /* -37 */
	{0x604be73de4838ad9u, 0xa5cf880000000000u, 7}, /* -36 */
	{0x4d0985cb1d3608aeu, 0x1e3fa00000000000u, 10}, /* -35 */
	{0x7b426fab61f00de3u, 0x6399000000000000u, 14}, /* -34 */
	{0x629b8c891b267182u, 0xb614000000000000u, 17}, /* -33 */
	{0x4ee2d6d415b85aceu, 0xf810000000000000u, 20}, /* -32 */
	{0x7e37be2022c0914bu, 0x2680000000000000u, 24}, /* -31 */
	{0x64f964e68233a76fu, 0x5200000000000000u, 27}, /* -30 */
	{0x50c783eb9b5c85f2u, 0xa800000000000000u, 30}, /* -29 */
	{0x409f9cbc7c4a04c2u, 0x2000000000000000u, 33}, /* -28 */
	{0x6765c793fa10079du, 0x0000000000000000u, 37}, /* -27 */
	{0x52b7d2dcc80cd2e4u, 0x0000000000000000u, 40}, /* -26 */
	{0x422ca8b0a00a4250u, 0x0000000000000000u, 43}, /* -25 */
	{0x69e10de76676d080u, 0x0000000000000000u, 47}, /* -24 */
	{0x54b40b1f852bda00u, 0x0000000000000000u, 50}, /* -23 */
	{0x43c33c1937564800u, 0x0000000000000000u, 53}, /* -22 */
	{0x6c6b935b8bbd4000u, 0x0000000000000000u, 57}, /* -21 */
	{0x56bc75e2d6310000u, 0x0000000000000000u, 60}, /* -20 */
	{0x4563918244f40000u, 0x0000000000000000u, 63}, /* -19 */
	{0x6f05b59d3b200000u, 0x0000000000000000u, 67}, /* -18 */
	{0x58d15e1762800000u, 0x0000000000000000u, 70}, /* -17 */
	{0x470de4df82000000u, 0x0000000000000000u, 73}, /* -16 */
	{0x71afd498d0000000u, 0x0000000000000000u, 77}, /* -15 */
	{0x5af3107a40000000u, 0x0000000000000000u, 80}, /* -14 */
	{0x48c2739500000000u, 0x0000000000000000u, 83}, /* -13 */
	{0x746a528800000000u, 0x0000000000000000u, 87}, /* -12 */
	{0x5d21dba000000000u, 0x0000000000000000u, 90}, /* -11 */
	{0x4a817c8000000000u, 0x0000000000000000u, 93}, /* -10 */
	{0x7735940000000000u, 0x0000000000000000u, 97}, /* -9 */
	{0x5f5e100000000000u, 0x0000000000000000u, 100}, /* -8 */
	{0x4c4b400000000000u, 0x0000000000000000u, 103}, /* -7 */
	{0x7a12000000000000u, 0x0000000000000000u, 107}, /* -6 */
	{0x61a8000000000000u, 0x0000000000000000u, 110}, /* -5 */
	{0x4e20000000000000u, 0x0000000000000000u, 113}, /* -4 */
	{0x7d00000000000000u, 0x0000000000000000u, 117}, /* -3 */
	{0x6400000000000000u, 0x0000000000000000u, 120}, /* -2 */
	{0x5000000000000000u, 0x0000000000000000u, 123}, /* -1 */
	{0x4000000000000000u, 0x0000000000000000u, 126}, /* 0 */
	{0x6666666666666666u, 0x6666666666666667u, 130}, /* 1 */
	{0x51eb851eb851eb85u, 0x1eb851eb851eb852u, 133}, /* 2 */
	{0x4189374bc6a7ef9du, 0xb22d0e5604189375u, 136}, /* 3 */
	{0x68db8bac710cb295u, 0xe9e1b089a0275255u, 140}, /* 4 */
	{0x53e2d6238da3c211u, 0x87e7c06e19b90eaau, 143}, /* 5 */
	{0x431bde82d7b634dau, 0xd31fcd24e160d888u, 146}, /* 6 */
	{0x6b5fca6af2bd215eu, 0x1e99483b02348da7u, 150}, /* 7 */
	{0x55e63b88c230e77eu, 0x7ee106959b5d3e1fu, 153}, /* 8 */
	{0x44b82fa09b5a52cbu, 0x98b405447c4a9819u, 156}, /* 9 */
	{0x6df37f675ef6eadfu, 0x5ab9a2072d44268eu, 160}, /* 10 */
	{0x57f5ff85e592557fu, 0x7bc7b4d28a9ceba5u, 163}, /* 11 */
	{0x465e6604b7a84465u, 0xfc9fc3dba21722eau, 166}, /* 12 */
	{0x709709a125da0709u, 0x9432d2f9035837ddu, 170}, /* 13 */
	{0x5a126e1a84ae6c07u, 0xa9c24260cf79c64bu, 173}, /* 14 */
	{0x480ebe7b9d58566cu, 0x87ce9b80a5fb0509u, 176}, /* 15 */
	{0x734aca5f6226f0adu, 0xa6175f343cc4d4dau, 180}, /* 16 */
	{0x5c3bd5191b525a24u, 0x84df7f5cfd6a43e2u, 183}, /* 17 */
	{0x49c97747490eae83u, 0x9d7f99173121cfe8u, 186}, /* 18 */
	{0x760f253edb4ab0d2u, 0x9598f4f1e8361973u, 190}, /* 19 */
	{0x5e72843249088d75u, 0x447a5d8e535e7ac3u, 193}, /* 20 */
	{0x4b8ed0283a6d3df7u, 0x69fb7e0b75e52f02u, 196}, /* 21 */
	{0x78e480405d7b9658u, 0xa9926345896eb19du, 200}, /* 22 */
	{0x60b6cd004ac94513u, 0xbadb829e078bc14au, 203}, /* 23 */
	{0x4d5f0a66a23a9da9u, 0x6249354b393c9aa2u, 206}, /* 24 */
	{0x7bcb43d769f762a8u, 0x9d41eedec1fa9103u, 210}, /* 25 */
	{0x63090312bb2c4eedu, 0x4a9b257f019540cfu, 213}, /* 26 */
	{0x4f3a68dbc8f03f24u, 0x3baf513267aa9a3fu, 216}, /* 27 */
	{0x7ec3daf941806506u, 0xc5e54eb70c4429ffu, 220}, /* 28 */
	{0x65697bfa9acd1d9fu, 0x04b7722c09d02199u, 223}, /* 29 */
	{0x51212ffbaf0a7e18u, 0xd092c1bcd4a68147u, 226}, /* 30 */
	{0x40e7599625a1fe7au, 0x407567ca43b8676cu, 229}, /* 31 */
};

__extension__ typedef unsigned __int128 u128;

/* floor(x * G / 2^sh), ORed with 1 when inexact. Fraction bits below 2^thr are ignored
 * (thr = 32 when G is rounded, 0 when it is exact; see above). */
static inline uint64_t scale(const struct pow10_entry *g, uint64_t x, int sh, int thr)
{
	u128 lo = (u128)x * g->lo;
	u128 hi = (u128)x * g->hi + (uint64_t)(lo >> 64);
	uint64_t p0 = (uint64_t)lo, p1 = (uint64_t)hi, p2 = (uint64_t)(hi >> 64);
	uint64_t ip = (p2 << (128 - sh)) | (p1 >> (sh - 64));
	return ip | (((p1 << (128 - sh)) | (p0 >> thr)) != 0);
}

/* The 8 decimal digits of x < 10^8 as ASCII, most significant first in memory order
 * (little-endian), computed in a register: split into 4-digit halves, then each half into
 * 2-digit and 1-digit lanes with multiply-shift division (n * 10486 >> 20 == n / 100 for
 * n < 10^4, n * 103 >> 10 == n / 10 for n < 100; lanes never carry into each other). Keeping
 * the digits out of memory avoids store-to-load forwarding stalls in the copies below.
 * Checked against snprintf for all 10^8 inputs when written. */
static inline uint64_t ascii8(uint32_t x)
{
	uint64_t v = x / 10000 | (uint64_t)(x % 10000) << 32;
	uint64_t h = ((v * 10486) >> 20) & 0x0000007f0000007f;
	v = h | (v - h * 100) << 16;
	uint64_t t = ((v * 103) >> 10) & 0x000f000f000f000f;
	v = t | (v - t * 10) << 8;
	return v | 0x3030303030303030;
}

static inline void store8(char *p, uint64_t v)
{
	memcpy(p, &v, sizeof v);
}

/* Lays out d * 10^e (1 <= d < 10^9, no trailing zeros) the way ECMAScript Number::toString
 * does, at p (which has at least VDB_FLOAT_FMT_MAX - 1 bytes). Stores are fixed-size and may
 * spill junk past the end that a later store or the NUL overwrites, or that lies beyond the
 * NUL: variable-length copies compile to branches that mispredict as the digit count varies. */
static char *layout(char *p, uint32_t d, int e)
{
	int nd = 1 + (d >= 10) + (d >= 100) + (d >= 1000) + (d >= 10000) + (d >= 100000) +
		 (d >= 1000000) + (d >= 10000000) + (d >= 100000000);
	uint32_t top = d / 100000000;
	u128 all = (u128)(top + '0') | (u128)ascii8(d - top * 100000000) << 8;
	all >>= 8 * (9 - nd);		     /* the nd significant digits, from byte 0 */
	uint64_t first8 = (uint64_t)all;     /* digits 0..7 */
	uint64_t after1 = (uint64_t)(all >> 8); /* digits 1..8 */
	int n = nd + e;			     /* value = 0.digits * 10^n */
	if (n > -6 && n <= 0) {		     /* "0.000ddd": at most 16 bytes */
		store8(p, 0x3030303030302e30); /* "0.000000" */
		p[2 - n] = (char)first8;
		store8(p + 3 - n, after1);
		return p + 2 - n + nd;
	}
	if (n > 0 && n <= 21) {
		store8(p, first8);
		if (e >= 0) { /* integer: digits and zeros, at most 21 bytes */
			p[8] = (char)(all >> 64);
			memset(p + nd, '0', (size_t)e);
			return p + n;
		}
		store8(p + n + 1, (uint64_t)(all >> (8 * n))); /* point inside: at most 18 bytes */
		p[n] = '.';
		return p + nd + 1;
	}
	p[0] = (char)first8; /* "d.ddde+xx": at most 14 bytes */
	p[1] = '.';
	store8(p + 2, after1);
	p += nd + (nd > 1);
	int x = n - 1;
	*p++ = 'e';
	*p++ = x < 0 ? '-' : '+';
	x = x < 0 ? -x : x;
	if (x >= 10) {
		*p++ = (char)('0' + x / 10);
		x %= 10;
	}
	*p = (char)('0' + x);
	return p + 1;
}

size_t vdb_fmt_float(float f, char *buf)
{
	uint32_t bits;
	memcpy(&bits, &f, sizeof bits);
	uint32_t be = (bits >> 23) & 0xff, fr = bits & 0x7fffff;
	char *p = buf;
	assert(be != 0xff && "vdb_fmt_float: NaN or infinity");
	if (be == 0xff) {
		memcpy(buf, "null", 5);
		return 4;
	}
	*p = '-';
	p += bits >> 31; /* branch-free: signs are random in embeddings */
	if (be == 0 && fr == 0) {
		p[0] = '0';
		p[1] = '\0';
		return (size_t)(p + 1 - buf);
	}

	uint32_t c = be ? fr | (UINT32_C(1) << 23) : fr;
	int q = be ? (int)be - 150 : -149;
	/* Just above a power of two the lower neighbour is twice as close (the smallest normal is
	 * the exception: its lower neighbour is a subnormal with the same spacing). */
	int irregular = fr == 0 && be > 1;
	int k = irregular ? (q * 1233 - 523) >> 12 : (q * 1233) >> 12;
	const struct pow10_entry *g = &pow10_tab[k - POW10_KMIN];
	int sh = g->beta - q, thr = k > 0 ? 32 : 0;
	uint64_t cb = (uint64_t)c << 2;
	uint64_t vb = scale(g, cb, sh, thr);
	uint64_t vbl = scale(g, cb - 2 + (uint64_t)irregular, sh, thr);
	uint64_t vbr = scale(g, cb + 2, sh, thr);
	uint64_t out = c & 1; /* odd c: the interval ends round away, so they are excluded */

	/* Values are in quarter units here; the sticky bit makes "<=" on multiples of 4 exact.
	 * Written as selects rather than branches: on real data these outcomes are random.
	 * Shorter candidate: the interval is narrower than 10 units, so it holds at most one
	 * multiple of 10, and that would be floor(v/10)*10 or the next one. */
	uint64_t s = vb >> 2, t = s + 1, s10 = s / 10;
	uint64_t sp10 = s10 * 10, tp10 = sp10 + 10;
	int upin = vbl + out <= sp10 << 2, wpin = (tp10 << 2) + out <= vbr;
	/* Otherwise floor(v) or floor(v) + 1, whichever is in (the interval is at least one unit
	 * wide, so never neither); if both, the closer to v (4v against 4s + 2), ties to even. */
	int uin = vbl + out <= s << 2, win = (t << 2) + out <= vbr;
	int64_t cmp = (int64_t)vb - (int64_t)((s << 2) + 2);
	int take_s = uin & (!win | (cmp < 0) | ((cmp == 0) & !(s & 1)));
	/* The shorter candidate is taken in units of 10^(k+1), its known trailing zero dropped. */
	uint64_t shorter = upin ^ wpin;
	uint64_t d_short = s10 + 1 - (uint64_t)upin, d_near = t - (uint64_t)take_s;
	uint64_t d = d_near + ((d_short - d_near) & -shorter);
	int e = k + (int)shorter;
	if (d % 10 == 0) { /* rare: ~1 in 10 */
		do {
			d /= 10;
			e++;
		} while (d % 10 == 0);
	}
	p = layout(p, (uint32_t)d, e);
	*p = '\0';
	return (size_t)(p - buf);
}

/* ---------------------------------------------------------------------------------------------
 * Parsing.
 *
 * Fast path: up to 19 significant digits go into m (more are dropped: "truncated"), the value
 * is m * 10^e, and d = m * 10^e or m / 10^-e is computed in double, then rounded to float.
 *
 * Exact case (m <= 2^53, nothing truncated, |e| <= 22): m and 10^|e| are exact doubles, so d is
 * the correctly rounded double of the true value x: d = RN53(x). Rounding d again to float is
 * wrong only if d is a midpoint between adjacent floats: every float and every float midpoint
 * (25 significant bits) is a double, and RN53 is monotone and fixes doubles, so for a midpoint
 * u, x < u implies d <= u and x > u implies d >= u (and d stays between the two floats that
 * enclose x). Hence if d is no midpoint, d lies on the same side of every midpoint as x and
 * RN24(d) = RN24(x); if x is itself a midpoint then d = x and we fall back. For a double in
 * the normal float range the 29 mantissa bits below a float's last bit are then exactly
 * 0x10000000 on a midpoint.
 *
 * Inexact case (longer m, truncated digits, 22 < |e| <= 63): x picks up at most three double
 * roundings (m, 10^|e|, the operation; relative 2^-53 each, 1/(1+b) for the division) plus
 * truncation (relative < 10^-18), so |d - x| < 3.1 * 2^-53 * d < 4 ulp(d). Midpoints in d's
 * binade are the doubles whose low 29 bits are 0x10000000; those outside it are >= 2^27 ulps
 * away. So if d's low 29 bits are more than 8 from 0x10000000, x is on the same side of every
 * midpoint as d and RN24(d) = RN24(x) again.
 *
 * Both cases also require d in [2^-125, 2^127): then x is a normal float magnitude too (the
 * subnormal grid and the overflow threshold never come into play) and (float)d is finite.
 * Everything else goes to strtof.
 * ------------------------------------------------------------------------------------------ */

#if FLT_EVAL_METHOD == 0 /* the proof needs plain double arithmetic (no x87 excess precision) */
static const double pow10_dbl[64] = {
	1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7,
	1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
	1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22, 1e23,
	1e24, 1e25, 1e26, 1e27, 1e28, 1e29, 1e30, 1e31,
	1e32, 1e33, 1e34, 1e35, 1e36, 1e37, 1e38, 1e39,
	1e40, 1e41, 1e42, 1e43, 1e44, 1e45, 1e46, 1e47,
	1e48, 1e49, 1e50, 1e51, 1e52, 1e53, 1e54, 1e55,
	1e56, 1e57, 1e58, 1e59, 1e60, 1e61, 1e62, 1e63,
};

/* Returns 1 and stores the float when the fast path can prove it is correctly rounded. */
static inline int parse_fast(uint64_t m, int64_t e, int exact, float *out)
{
	if (e < -63 || e > 63)
		return 0;
	double d = (double)m;
	d = e < 0 ? d / pow10_dbl[-e] : d * pow10_dbl[e];
	if (!(d >= 0x1p-125 && d < 0x1p127))
		return 0;
	exact = exact && m <= (UINT64_C(1) << 53) && e >= -22 && e <= 22;
	uint64_t bits;
	memcpy(&bits, &d, sizeof bits);
	uint32_t tol = exact ? 0 : 8, low = (uint32_t)bits & 0x1fffffff;
	if (low - (0x10000000 - tol) <= 2 * tol)
		return 0; /* on or near a midpoint between two floats */
	*out = (float)d;
	return 1;
}
#else
static inline int parse_fast(uint64_t m, int64_t e, int exact, float *out)
{
	(void)m, (void)e, (void)exact, (void)out;
	return 0;
}
#endif

/* Significant digits kept for strtof. Every float, every midpoint between adjacent floats and
 * the overflow threshold is N * 2^j with N < 2^25, j >= -150, so it has at most 113 significant
 * decimal digits (2^25 * 5^150 < 10^113). Keeping 125 digits and replacing a nonzero dropped
 * tail by one extra digit '1' therefore moves the value within the open interval between two
 * consecutive 125-digit numbers, which contains no such boundary: strtof rounds it the same way
 * as the full token. */
#define SLOW_DIGITS 125

/* Rewrites the token as "[-]DIGITSe[-]EXP" (no decimal point, so strtof cannot be confused
 * by the process locale), bounded in length whatever the token, and lets strtof round it. */
static int parse_slow(const char *s, size_t len, float *out)
{
	char buf[SLOW_DIGITS + 16];
	size_t i = 0;
	int n = 0, nd = 0, sticky = 0, frac = 0;
	int64_t e = 0;
	if (i < len && s[i] == '-')
		buf[n++] = s[i++];
	for (; i < len; i++) {
		unsigned dg = (unsigned)(unsigned char)s[i] - '0';
		if (s[i] == '.' && !frac) {
			frac = 1;
			continue;
		}
		if (dg > 9)
			break;
		if (nd == 0 && dg == 0) {
			e -= frac; /* leading zero: only a fraction one moves the point */
		} else if (nd < SLOW_DIGITS) {
			buf[n++] = (char)s[i];
			nd++;
			e -= frac;
		} else {
			sticky |= dg != 0;
			e += !frac;
		}
	}
	if (nd == 0) {
		*out = n ? -0.0f : 0.0f;
		return 0;
	}
	if (sticky) {
		buf[n++] = '1';
		e--;
	}
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		int neg = 0;
		int64_t x = 0;
		if (++i < len && (s[i] == '+' || s[i] == '-'))
			neg = s[i++] == '-';
		for (; i < len && (unsigned)(unsigned char)s[i] - '0' <= 9; i++)
			if (x < 1000000000)
				x = x * 10 + (s[i] - '0');
		e += neg ? -x : x;
	}
	/* Beyond +-99999 the result is inf or zero anyway (at most 126 digits). */
	e = e > 99999 ? 99999 : e < -99999 ? -99999 : e;
	buf[n++] = 'e';
	if (e < 0) {
		buf[n++] = '-';
		e = -e;
	}
	char tmp[8];
	int nt = 0;
	do {
		tmp[nt++] = (char)('0' + e % 10);
		e /= 10;
	} while (e);
	while (nt)
		buf[n++] = tmp[--nt];
	buf[n] = '\0';

	int saved = errno;
	float f = strtof(buf, NULL);
	errno = saved;
	if (f > FLT_MAX || f < -FLT_MAX)
		return VDB_NUM_OVERFLOW;
	*out = f;
	return 0;
}

int vdb_parse_float(const char *s, size_t len, float *out)
{
	const char *p = s, *end = s + len;
	int neg = 0, nd = 0, trunc = 0;
	uint64_t m = 0;
	int64_t e = 0;
	unsigned dg;

	if (p < end) { /* branch-free sign: signs are random in embeddings, mispredicts cost */
		neg = *p == '-';
		p += neg;
	}
	for (; p < end && (dg = (unsigned)(unsigned char)*p - '0') <= 9; p++) {
		if (nd < 19) {
			m = m * 10 + dg;
			nd += m != 0; /* leading zeros are not significant */
		} else {
			e++;
			trunc = 1;
		}
	}
	if (p < end && *p == '.') {
		for (p++; p < end && (dg = (unsigned)(unsigned char)*p - '0') <= 9; p++) {
			if (nd < 19) {
				m = m * 10 + dg;
				nd += m != 0;
				e--;
			} else {
				trunc = 1;
			}
		}
	}
	if (p < end && (*p | 0x20) == 'e') {
		int eneg = 0;
		int64_t x = 0;
		if (++p < end && (*p == '+' || *p == '-'))
			eneg = *p++ == '-';
		for (; p < end && (dg = (unsigned)(unsigned char)*p - '0') <= 9; p++)
			if (x < 1000000000)
				x = x * 10 + dg;
		e += eneg ? -x : x;
	}
	if (m == 0) {
		*out = neg ? -0.0f : 0.0f;
		return 0;
	}
	float f;
	if (parse_fast(m, e, !trunc, &f)) {
		uint32_t u;
		memcpy(&u, &f, sizeof u);
		u |= (uint32_t)neg << 31;
		memcpy(out, &u, sizeof u);
		return 0;
	}
	return parse_slow(s, len, out);
}
