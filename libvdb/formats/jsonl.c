/* JSON lines: the ingest record format, query lines, and exact output.
 *
 * Records are parsed in one pass with the strict scanner (json.c): the vector's numbers go
 * straight through the correctly rounded float parser (numfmt.c), the payload is validated
 * and kept minified with its numbers as written (so big integers and decimals survive
 * byte for byte), and integer ids are read from their digits, not through a double, so
 * every uint64 id is exact. Messages name the field and, for syntax errors, the column. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "../util/buf.h"
#include "../util/error.h"
#include "../util/numfmt.h"
#include "json.h"
#include "jsonl.h"
#include "vdb_io.h"
#include "vdb_config.h"

_Static_assert(sizeof(vdb_text) == sizeof(vdb_buf), "vdb_text mirrors vdb_buf");

struct vdb_jsonl_parser {
	uint32_t dim;
	float *vec;
	vdb_buf key;
	vdb_buf idstr;
	vdb_buf payload;
	vdb_buf filter; /* the last query's "filter" (minified), when has_filter */
	int has_filter;
	size_t ef;         /* the last query's "ef", or 0 */
	double oversample; /* the last query's "oversample", or 0 */
	vdb_buf tag;       /* the last query's "tag" (minified), when has_tag */
	int has_tag;
};

vdb_status vdb_jsonl_parser_new(uint32_t dim, vdb_jsonl_parser **out, vdb_error *err)
{
	vdb_jsonl_parser *p = calloc(1, sizeof *p);
	if (!p || !(p->vec = malloc((dim ? dim : 1) * sizeof(float)))) {
		free(p);
		return vdb_err_nomem(err);
	}
	p->dim = dim;
	*out = p;
	return VDB_OK;
}

void vdb_jsonl_parser_free(vdb_jsonl_parser *p)
{
	if (!p)
		return;
	free(p->vec);
	vdb_buf_free(&p->key);
	vdb_buf_free(&p->idstr);
	vdb_buf_free(&p->tag);
	vdb_buf_free(&p->payload);
	vdb_buf_free(&p->filter);
	free(p);
}

static vdb_status syntax(vdb_error *err, const vj_reader *r)
{
	return vdb_err(err, VDB_EDATA, "invalid JSON at column %zu: %s", r->err_off + 1, r->err);
}

/* One pass over the common number shapes (at most 19 significant digits, decimal exponent
 * within +-22 after moving the point): the value is m * 10^e with m < 2^53, computed in
 * double as m times the double nearest 10^e -- no division, which would dominate the
 * parse -- and then rounded to float. The product is within 2 ulps (of double) of the
 * exact value, so rounding it to float can only go wrong when it lies within 2 ulps of a
 * point halfway between two floats (low 29 mantissa bits near 1 followed by zeros); then,
 * and for anything else (long mantissas, big exponents, any grammar error), returns 0 and
 * the caller takes the general path: vj_number for the grammar and its messages,
 * vdb_parse_float for the value. On success *next is just past the number, which is
 * followed by a delimiter. */
/* Digits eight at a time (SWAR), so the number's length costs no mispredicted branch per
 * digit. Little-endian loads: the first character is the lowest byte. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define FAST_SWAR 1
static inline uint64_t load8(const char *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof v);
	return v;
}

/* How many of the 8 bytes, from the first, are ASCII digits. A byte below '0' borrows from
 * the bytes after it, and a byte far above '9' carries into them: neither matters, as only
 * the flags before the first non-digit are used. */
static inline unsigned digit_run(uint64_t v)
{
	uint64_t x = v - 0x3030303030303030ull;
	uint64_t t = (x | (x + 0x7676767676767676ull)) & 0x8080808080808080ull;
	return t ? (unsigned)__builtin_ctzll(t) >> 3 : 8;
}

/* The value of the first n (1..8) digits of v: the others are shifted out, and the
 * shifted-in zero bytes act as leading zeros. */
static inline uint64_t digits_value(uint64_t v, unsigned n)
{
	v = (v & 0x0f0f0f0f0f0f0f0full) << (8 * (8 - n));
	v = (v * 2561) >> 8 & 0x00ff00ff00ff00ffull;
	v = (v * 6553601) >> 16 & 0x0000ffff0000ffffull;
	return (v * 42949672960001ull) >> 32;
}
#endif

/* Scans the digits at *pp into *m (as m * 10^count + digits), advancing *pp; returns how
 * many digits were read, or -1 when there are more than `room` of them. */
static inline int scan_digits(const char **pp, const char *end, uint64_t *m, int room)
{
	static const uint64_t pow10u[] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000,
					  100000000};
	const char *p = *pp;
	int count = 0;
#ifdef FAST_SWAR
	while (end - p >= 8) {
		uint64_t v = load8(p);
		unsigned n = digit_run(v);
		if (n == 0)
			break;
		if ((count += (int)n) > room)
			return -1;
		*m = *m * pow10u[n] + digits_value(v, n);
		p += n;
		if (n < 8) {
			*pp = p;
			return count;
		}
	}
#endif
	for (; p < end && *p >= '0' && *p <= '9'; p++) {
		if (++count > room)
			return -1;
		*m = *m * 10 + (uint64_t)(*p - '0');
	}
	*pp = p;
	return count;
}

/* m * 10^exp10, negated when neg, as a correctly rounded float -- or 0 when this quick
 * computation cannot promise that and the general parser must decide.
 * Why it can promise: d below is m * 10^exp10 within 2 double ulps (the power of ten's own
 * rounding, and the product's), or 3 when m is above 2^53 and its conversion rounds too
 * (Python prints 17 significant digits). Rounding d to float is then correct unless d lies
 * within that many ulps of a point halfway between two floats, which is tested; the
 * general parser decides those. */
static inline int decimal_to_float(uint64_t m, int exp10, int neg, float *out)
{
	static const double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
				       1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
				       1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
	static const double inv10[] = {1e0,   1e-1,  1e-2,  1e-3,  1e-4,  1e-5,  1e-6,  1e-7,
				       1e-8,  1e-9,  1e-10, 1e-11, 1e-12, 1e-13, 1e-14, 1e-15,
				       1e-16, 1e-17, 1e-18, 1e-19, 1e-20, 1e-21, 1e-22};
	if (exp10 < -22 || exp10 > 22)
		return 0;
	double d = (double)m * (exp10 < 0 ? inv10[-exp10] : pow10[exp10]);
	uint64_t bits;
	memcpy(&bits, &d, sizeof bits);
	/* Near a float midpoint (zero's low bits are not), overflow, or a subnormal result.
	 * Zeros are common in vectors, so the tests are combined without branches (| and &,
	 * not ||) into one branch that is almost never taken. */
	uint64_t slack = 3 + (m >> 53 != 0); /* ulps of d around a midpoint left to the parser */
	if (((bits & 0x1fffffffull) - (0x10000000ull - slack) <= 2 * slack) |
	    (d > 3.4028234663852886e38) |
	    ((d < 1.1754943508222875e-38) & (m != 0)))
		return 0;
	float f = (float)d;
	*out = neg ? -f : f;
	return 1;
}

static int fast_number(const char *s, const char *end, float *out, const char **next)
{
	const char *p = s;
	int neg = p < end && *p == '-';
	p += neg;
	if (p >= end || *p < '0' || *p > '9')
		return 0;
	/* At most 19 digits in all (leading zeros included), so m cannot overflow. */
	uint64_t m = 0;
	int digits = scan_digits(&p, end, &m, 19), exp10 = 0;
	/* Too long, or a leading zero: the general path decides and reports (without a
	 * branch on the zero, as in decimal_to_float). */
	if ((digits < 0) | ((s[neg] == '0') & (digits > 1)))
		return 0;
	if (p < end && *p == '.') {
		p++;
		/* Zeros after "0." only move the point (|x| < 0.01 is common in unit vectors,
		 * and Python prints 17 significant digits after them): not counted as digits. */
		int lead = 0;
		if (m == 0)
			while (p < end && *p == '0')
				p++, lead++;
		int frac = scan_digits(&p, end, &m, 19 - digits);
		if (frac < 0 || frac + lead == 0)
			return 0;
		exp10 = -(frac + lead);
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		p++;
		int eneg = p < end && (*p == '-' || *p == '+') ? *p++ == '-' : 0, e = 0, ed = 0;
		for (; p < end && *p >= '0' && *p <= '9'; p++, ed++)
			if (ed < 4)
				e = e * 10 + (*p - '0');
		if (ed == 0 || ed > 4)
			return 0;
		exp10 += eneg ? -e : e;
	}
	if (p < end && *p != ',' && *p != ']' && *p != ' ' && *p != '\t' && *p != '\r' &&
	    *p != '\n')
		return 0;
	if (!decimal_to_float(m, exp10, neg, out))
		return 0;
	*next = p;
	return 1;
}

static inline int is_json_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

#if defined(__SSE2__) && defined(FAST_SWAR)
/* The token [b, e) as [-]DIGITS[.DIGITS] with at most 8 digits before the point, 19 in all
 * and 24 bytes, checked and converted without a per-character loop: the shape of almost
 * every number an embedding is written in (float32's shortest forms have up to 9
 * significant digits; Python prints float64 ones with up to 17). Reads up to 34 bytes from
 * b (the caller checks there are). Returns 0 for anything else. */
static inline int short_decimal(const char *b, const char *e, float *out)
{
	int neg = *b == '-';
	b += neg;
	long len = e - b;
	if (len < 1 || len > 24)
		return 0;
	uint32_t digit = 0, dot = 0, zero = 0;
	for (int half = 0; half < 2; half++) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(b + 16 * half));
		__m128i t = _mm_sub_epi8(v, _mm_set1_epi8('0'));
		digit |= (uint32_t)_mm_movemask_epi8(
				 _mm_cmpeq_epi8(_mm_min_epu8(t, _mm_set1_epi8(9)), t))
			 << (16 * half);
		dot |= (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('.')))
		       << (16 * half);
		zero |= (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(t, _mm_setzero_si128()))
			<< (16 * half);
	}
	uint32_t want = (uint32_t)((1ull << len) - 1);
	dot &= want;
	if (((digit | dot) & want) != want || (dot & (dot - 1)))
		return 0; /* a character that is neither, or two points */
	int ilen = dot ? __builtin_ctz(dot) : (int)len, flen = dot ? (int)len - ilen - 1 : 0;
	/* After "0.", zeros only move the point: they add nothing to m (see fast_number). */
	int lead = 0;
	if ((ilen == 1) & (*b == '0') & (flen > 0)) {
		lead = __builtin_ctz(~(zero >> 2));
		lead = lead < flen ? lead : flen;
	}
	if ((ilen < 1) | (ilen > 8) | (dot && flen < 1) | (ilen + flen - lead > 19) |
	    ((*b == '0') & (ilen > 1)))
		return 0; /* no digits before or after the point, too long, or a leading zero */
	static const uint64_t pow10u[] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000,
					  100000000};
	uint64_t m = digits_value(load8(b), (unsigned)ilen);
	/* The fraction in groups of up to 8 digits; 19 digits in all keep m below 10^19. */
	for (int done = 0; done < flen; done += 8) {
		int g = flen - done > 8 ? 8 : flen - done;
		m = m * pow10u[g] + digits_value(load8(b + ilen + 1 + done), (unsigned)g);
	}
	return decimal_to_float(m, -flen, neg, out);
}
#endif

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* 1 when [b, e) is exactly one JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int is_json_number(const char *b, const char *e)
{
	const char *p = b + (b < e && *b == '-'), *d;
	if (p < e && *p == '0')
		p++;
	else if (p < e && *p >= '1' && *p <= '9')
		while (p < e && is_digit(*p))
			p++;
	else
		return 0;
	if (p < e && *p == '.') {
		for (d = ++p; p < e && is_digit(*p); p++)
			;
		if (p == d)
			return 0;
	}
	if (p < e && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < e && (*p == '+' || *p == '-'))
			p++;
		for (d = p; p < e && is_digit(*p); p++)
			;
		if (p == d)
			return 0;
	}
	return p == e;
}

/* One element of a vector array: the bytes [b, e) between two separators must be a number
 * with optional whitespace around it. fast_number may read up to lim (the end of the
 * text); the number it finds ends at a delimiter, so at e or before. A number neither quick
 * path takes (more than 19 digits, as Python's repr of 0.00123... has; near a rounding
 * midpoint) goes to the general conversion here, so that one such number does not send the
 * whole vector to the slower loop. */
static inline int vector_element(const char *b, const char *e, const char *lim, float *out)
{
	while (b < e && is_json_space(*b))
		b++;
	while (e > b && is_json_space(e[-1]))
		e--;
#if defined(__SSE2__) && defined(FAST_SWAR)
	if (lim - b >= 34 && short_decimal(b, e, out))
		return 1;
#endif
	const char *next;
	if (fast_number(b, lim, out, &next)) {
		while (next < e && is_json_space(*next))
			next++;
		if (next == e)
			return 1;
	}
	/* Out of float32's range: 0, and the loop reports it with its position. */
	return is_json_number(b, e) && vdb_parse_float(b, (size_t)(e - b), out) == 0;
}

/* The whole vector in one pass when it is the common case: exactly dim plain numbers.
 * The separators are found first, sixteen bytes at a time, so that each number is parsed
 * from a known start: the numbers are independent work the CPU overlaps, instead of a
 * chain in which each one's end is needed to find the next. s is just past '['; on success
 * *after is just past ']'. Anything else (wrong count, other values, long numbers) returns
 * 0 and the general loop parses and reports from s. */
static int vector_in_one_pass(const char *s, const char *end, float *vec, size_t dim,
			      const char **after)
{
	const char *close = memchr(s, ']', (size_t)(end - s));
	if (!close)
		return 0;
	size_t n = 0;
	const char *field = s;
	for (const char *blk = s; blk < close; blk += 16) {
		uint32_t mask = 0;
#ifdef __SSE2__
		if (close - blk >= 16) {
			__m128i v = _mm_loadu_si128((const __m128i *)(const void *)blk);
			mask = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(',')));
		} else
#endif
			for (int i = 0; i < 16 && blk + i < close; i++)
				mask |= (uint32_t)(blk[i] == ',') << i;
		while (mask) {
			const char *comma = blk + __builtin_ctz(mask);
			mask &= mask - 1;
			if (n >= dim || !vector_element(field, comma, end, &vec[n]))
				return 0;
			n++;
			field = comma + 1;
		}
	}
	if (n + 1 != dim || !vector_element(field, close, end, &vec[n]))
		return 0;
	*after = close + 1;
	return 1;
}

static vdb_status parse_vector(vdb_jsonl_parser *p, vj_reader *r, float *vec, const char *field,
			       vdb_error *err)
{
	if (vj_peek(r) != '[')
		return vdb_err(err, VDB_EDATA, "\"%s\" must be an array of %" PRIu32 " numbers", field,
			       p->dim);
	r->p++;
	const char *close;
	if (vector_in_one_pass(r->p, r->end, vec, p->dim, &close)) {
		r->p = close;
		return VDB_OK;
	}
	size_t n = 0;
	if (vj_peek(r) == ']') {
		r->p++;
		return vdb_err(err, VDB_EDATA, "expected %" PRIu32 " numbers in \"%s\", got 0", p->dim,
			       field);
	}
	for (;;) {
		/* Inline skip of the usual single space (", " separators); vj_peek does the rest. */
		if (r->p < r->end && *r->p == ' ')
			r->p++;
		int c = r->p < r->end && *r->p != ' ' && *r->p != '\t' && *r->p != '\n' &&
				*r->p != '\r'
			? (unsigned char)*r->p
			: vj_peek(r);
		if (c != '-' && (c < '0' || c > '9')) {
			if (c == '"' || c == '{' || c == '[' || c == 't' || c == 'f' || c == 'n')
				return vdb_err(err, VDB_EDATA, "%s[%zu] is not a number", field, n);
			vj_number(r, NULL, NULL);
			return syntax(err, r);
		}
		const char *tok, *after;
		size_t len;
		float f;
		if (n < p->dim && fast_number(r->p, r->end, &f, &after)) {
			vec[n++] = f;
			r->p = after;
			if (after < r->end && *after == ',') { /* the common case, without vj_peek */
				r->p++;
				continue;
			}
			goto delimiter;
		}
		if (vj_number(r, &tok, &len))
			return syntax(err, r);
		if (n < p->dim) {
			if (vdb_parse_float(tok, len, &f))
				return vdb_err(err, VDB_EDATA, "%s[%zu] = %.*s is outside the float32 range",
					       field, n, (int)(len > 40 ? 40 : len), tok);
			vec[n] = f;
		}
		n++;
	delimiter:
		c = vj_peek(r);
		if (c == ',') {
			r->p++;
			continue;
		}
		if (c == ']') {
			r->p++;
			break;
		}
		vj_expect(r, ']');
		return syntax(err, r);
	}
	if (n != p->dim)
		return vdb_err(err, VDB_EDATA, "expected %" PRIu32 " numbers in \"%s\", got %zu", p->dim,
			       field, n);
	return VDB_OK;
}

static vdb_status parse_id(vdb_jsonl_parser *p, vj_reader *r, vdb_id *id, vdb_error *err)
{
	int c = vj_peek(r);
	if (c == '"') {
		p->idstr.len = 0;
		if (vj_string(r, &p->idstr))
			return syntax(err, r);
		if (p->idstr.len == 0)
			return vdb_err(err, VDB_EDATA, "\"id\" must not be an empty string");
		if (p->idstr.len > VDB_ID_MAX_BYTES)
			return vdb_err(err, VDB_EDATA, "\"id\" is %zu bytes, more than %d", p->idstr.len,
				       VDB_ID_MAX_BYTES);
		*id = (vdb_id){1, 0, p->idstr.data, p->idstr.len};
		return VDB_OK;
	}
	if (c != '-' && (c < '0' || c > '9')) {
		if (vj_value(r, NULL))
			return syntax(err, r);
		return vdb_err(err, VDB_EDATA, "\"id\" must be a non-negative integer or a string");
	}
	const char *tok;
	size_t len;
	if (vj_number(r, &tok, &len))
		return syntax(err, r);
	if (tok[0] == '-')
		return vdb_err(err, VDB_EDATA, "\"id\" must not be negative (got %.*s)",
			       (int)(len > 40 ? 40 : len), tok);
	uint64_t v = 0;
	for (size_t i = 0; i < len; i++) {
		if (tok[i] < '0' || tok[i] > '9')
			return vdb_err(err, VDB_EDATA, "\"id\" must be an integer (got %.*s)",
				       (int)(len > 40 ? 40 : len), tok);
		unsigned d = (unsigned)(tok[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return vdb_err(err, VDB_EDATA, "\"id\" %.*s is larger than %" PRIu64,
				       (int)(len > 40 ? 40 : len), tok, UINT64_MAX);
		v = v * 10 + d;
	}
	*id = (vdb_id){0, v, NULL, 0};
	return VDB_OK;
}

enum { F_ID = 1, F_VECTOR = 2, F_PAYLOAD = 4, F_DELETE = 8, F_DELETE_WHERE = 16 };

static int field_of(const vdb_buf *key)
{
	static const struct {
		const char *name;
		int flag;
	} fields[] = {{"id", F_ID},	    {"vector", F_VECTOR},
		      {"payload", F_PAYLOAD}, {"delete", F_DELETE},
		      {"delete_where", F_DELETE_WHERE}};
	for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
		if (key->len == strlen(fields[i].name) && !memcmp(key->data, fields[i].name, key->len))
			return fields[i].flag;
	return 0;
}

/* Quotes a key for a message, shortened and with control bytes replaced. */
static const char *shown(const vdb_buf *key, char *out, size_t cap)
{
	size_t n = key->len < cap - 4 ? key->len : cap - 4, j = 0;
	for (size_t i = 0; i < n; i++)
		out[j++] = (unsigned char)key->data[i] < 0x20 ? '?' : key->data[i];
	if (n < key->len)
		out[j++] = '.', out[j++] = '.', out[j++] = '.';
	out[j] = '\0';
	return out;
}

static vdb_status check_line(const char *line, size_t len, vdb_error *err)
{
	size_t bad = vj_utf8_valid_prefix(line, len);
	if (bad != len)
		return vdb_err(err, VDB_EDATA, "invalid UTF-8 at column %zu", bad + 1);
	return VDB_OK;
}

/* Checks the line's UTF-8 and starts reading it. */
static vdb_status begin(vj_reader *r, const char *line, size_t len, vdb_error *err)
{
	vdb_status st = check_line(line, len, err);
	if (!st)
		vj_init(r, line, len);
	return st;
}

vdb_status vdb_jsonl_parse_record(vdb_jsonl_parser *p, const char *line, size_t len,
				  vdb_record_kind *kind, vdb_record *rec, vdb_error *err)
{
	vj_reader r;
	vdb_status st = begin(&r, line, len, err);
	if (st)
		return st;
	if (vj_peek(&r) != '{') {
		if (vj_value(&r, NULL))
			return syntax(err, &r);
		return vdb_err(err, VDB_EDATA, "a record must be a JSON object");
	}
	r.p++;
	int seen = 0, del = 0;
	vdb_id id = {0};
	char kb[72];
	p->payload.len = 0;
	if (vj_peek(&r) == '}')
		r.p++;
	else
		for (;;) {
			p->key.len = 0;
			if (vj_peek(&r) != '"') {
				vj_string(&r, NULL);
				return syntax(err, &r);
			}
			if (vj_string(&r, &p->key) || vj_expect(&r, ':'))
				return syntax(err, &r);
			int f = field_of(&p->key);
			if (!f)
				return vdb_err(err, VDB_EDATA, "unknown field \"%s\"",
					       shown(&p->key, kb, sizeof kb));
			if (seen & f)
				return vdb_err(err, VDB_EDATA, "duplicate key \"%s\"",
					       shown(&p->key, kb, sizeof kb));
			seen |= f;
			if (f == F_ID) {
				st = parse_id(p, &r, &id, err);
			} else if (f == F_VECTOR) {
				st = parse_vector(p, &r, p->vec, "vector", err);
			} else if (f == F_PAYLOAD || f == F_DELETE_WHERE) {
				/* A delete_where's filter is kept where a payload would be. */
				if (vj_peek(&r) != '{') {
					if (vj_value(&r, NULL))
						return syntax(err, &r);
					return vdb_err(err, VDB_EDATA, "\"%s\" must be a JSON object",
						       f == F_PAYLOAD ? "payload" : "delete_where");
				}
				if (vj_value(&r, &p->payload))
					return syntax(err, &r);
			} else {
				vj_peek(&r);
				const char *tok = r.p;
				if (vj_value(&r, NULL))
					return syntax(err, &r);
				del = r.p - tok == 4 && !memcmp(tok, "true", 4);
				if (!del)
					return vdb_err(err, VDB_EDATA, "\"delete\" must be true");
			}
			if (st)
				return st;
			int c = vj_peek(&r);
			if (c == ',') {
				r.p++;
				continue;
			}
			if (vj_expect(&r, '}'))
				return syntax(err, &r);
			break;
		}
	if (vj_end(&r))
		return syntax(err, &r);
	if (seen & F_DELETE_WHERE) {
		if (seen != F_DELETE_WHERE)
			return vdb_err(err, VDB_EDATA, "a delete_where record takes no other field");
		*kind = VDB_RECORD_DELETE_WHERE;
		*rec = (vdb_record){{0}, NULL, p->payload.data, p->payload.len};
		return VDB_OK;
	}
	if (!(seen & F_ID))
		return vdb_err(err, VDB_EDATA, "missing \"id\"");
	if (del) {
		if (seen & (F_VECTOR | F_PAYLOAD))
			return vdb_err(err, VDB_EDATA,
				       "a delete record takes only \"id\" and \"delete\"");
		*kind = VDB_RECORD_DELETE;
		*rec = (vdb_record){id, NULL, NULL, 0};
		return VDB_OK;
	}
	if (!(seen & F_VECTOR))
		return vdb_err(err, VDB_EDATA, "missing \"vector\"");
	*kind = VDB_RECORD_UPSERT;
	*rec = (vdb_record){id, p->vec, seen & F_PAYLOAD ? p->payload.data : NULL,
			    seen & F_PAYLOAD ? p->payload.len : 0};
	return VDB_OK;
}

static vdb_status parse_query(vdb_jsonl_parser *p, const char *line, size_t len,
			      const float **vector, size_t *k, vdb_error *err)
{
	vj_reader r;
	vdb_status st = begin(&r, line, len, err);
	if (st)
		return st;
	int c = vj_peek(&r);
	size_t kk = *k;
	if (c == '[') {
		if ((st = parse_vector(p, &r, p->vec, "vector", err)))
			return st;
	} else if (c == '{') {
		r.p++;
		int seen = 0;
		char kb[72];
		while (vj_peek(&r) != '}') {
			p->key.len = 0;
			if (seen && vj_expect(&r, ','))
				return syntax(err, &r);
			if (vj_peek(&r) != '"') {
				vj_string(&r, NULL);
				return syntax(err, &r);
			}
			if (vj_string(&r, &p->key) || vj_expect(&r, ':'))
				return syntax(err, &r);
			int f = p->key.len == 6 && !memcmp(p->key.data, "vector", 6)	   ? 1
				: p->key.len == 1 && p->key.data[0] == 'k'		   ? 2
				: p->key.len == 6 && !memcmp(p->key.data, "filter", 6)	   ? 4
				: p->key.len == 2 && !memcmp(p->key.data, "ef", 2)	   ? 8
				: p->key.len == 10 && !memcmp(p->key.data, "oversample", 10) ? 16
				: p->key.len == 3 && !memcmp(p->key.data, "tag", 3)	   ? 32
											   : 0;
			if (!f)
				return vdb_err(err, VDB_EDATA,
					       "unknown field \"%s\" (a query has \"vector\", \"k\", "
					       "\"filter\", \"ef\", \"oversample\" and \"tag\")",
					       shown(&p->key, kb, sizeof kb));
			if (seen & f)
				return vdb_err(err, VDB_EDATA, "duplicate key \"%s\"",
					       shown(&p->key, kb, sizeof kb));
			seen |= f;
			if (f == 1) {
				if ((st = parse_vector(p, &r, p->vec, "vector", err)))
					return st;
				continue;
			}
			if (f == 32) {
				if (vj_value(&r, &p->tag)) {
					p->tag.len = 0;
					return syntax(err, &r);
				}
				p->has_tag = 1;
				continue;
			}
			if (f == 4) {
				if (vj_peek(&r) != '{')
					return vj_value(&r, NULL) ? syntax(err, &r)
					       : vdb_err(err, VDB_EDATA, "\"filter\" must be a JSON object");
				if (vj_value(&r, &p->filter))
					return syntax(err, &r);
				p->has_filter = 1;
				continue;
			}
			const char *tok;
			size_t tl;
			if (f == 16) {
				float v = 0;
				if (vj_peek(&r) == '"' || vj_number(&r, &tok, &tl)) {
					if (vj_value(&r, NULL))
						return syntax(err, &r);
				} else if (vdb_parse_float(tok, tl, &v)) {
					v = 0;
				}
				if (!(v >= 1) || v > VDB_OVERSAMPLE_MAX)
					return vdb_err(err, VDB_EDATA,
						       "\"oversample\" must be a number from 1 to %d",
						       VDB_OVERSAMPLE_MAX);
				p->oversample = v;
				continue;
			}
			const char *name = f == 2 ? "k" : "ef";
			if (vj_peek(&r) == '"' || vj_number(&r, &tok, &tl))
				return vj_value(&r, NULL) ? syntax(err, &r)
				       : vdb_err(err, VDB_EDATA, "\"%s\" must be an integer from 1 to %d",
						 name, VDB_K_MAX);
			uint64_t v = 0;
			int ok = tl <= 7;
			for (size_t i = 0; ok && i < tl; i++) {
				ok = tok[i] >= '0' && tok[i] <= '9';
				v = v * 10 + (uint64_t)(tok[i] - '0');
			}
			if (!ok || v < 1 || v > VDB_K_MAX)
				return vdb_err(err, VDB_EDATA, "\"%s\" must be an integer from 1 to %d",
					       name, VDB_K_MAX);
			if (f == 2)
				kk = (size_t)v;
			else
				p->ef = (size_t)v;
		}
		r.p++;
		if (!(seen & 1))
			return vdb_err(err, VDB_EDATA, "missing \"vector\"");
	} else {
		if (vj_value(&r, NULL))
			return syntax(err, &r);
		return vdb_err(err, VDB_EDATA,
			       "a query must be an array of numbers or an object with \"vector\"");
	}
	if (vj_end(&r))
		return syntax(err, &r);
	*vector = p->vec;
	*k = kk;
	return VDB_OK;
}

/* The "tag" of a line that failed to parse, when it can still be read: the line is a JSON
 * object whose "tag" key comes before anything malformed (a query of the wrong dimension
 * or with a bad filter still has its tag echoed). */
static void salvage_tag(vdb_jsonl_parser *p, const char *line, size_t len)
{
	vj_reader r;
	vdb_error ignored;
	if (begin(&r, line, len, &ignored) || vj_peek(&r) != '{')
		return;
	r.p++;
	for (int first = 1; vj_peek(&r) != '}'; first = 0) {
		p->key.len = 0;
		if ((!first && vj_expect(&r, ',')) || vj_peek(&r) != '"' || vj_string(&r, &p->key) ||
		    vj_expect(&r, ':'))
			return;
		if (p->key.len == 3 && !memcmp(p->key.data, "tag", 3)) {
			p->tag.len = 0;
			if (vj_value(&r, &p->tag))
				p->tag.len = 0;
			else
				p->has_tag = 1;
			return;
		}
		if (vj_value(&r, NULL))
			return;
	}
}

vdb_status vdb_jsonl_parse_query(vdb_jsonl_parser *p, const char *line, size_t len,
				 const float **vector, size_t *k, vdb_error *err)
{
	p->has_filter = 0;
	p->filter.len = 0;
	p->ef = 0;
	p->oversample = 0;
	p->has_tag = 0;
	p->tag.len = 0;
	vdb_status st = parse_query(p, line, len, vector, k, err);
	if (st && !p->has_tag)
		salvage_tag(p, line, len);
	return st;
}

const char *vdb_jsonl_query_tag(const vdb_jsonl_parser *p, size_t *len)
{
	*len = p->tag.len;
	return p->has_tag ? p->tag.data : NULL;
}

vdb_status vdb_jsonl_append_failure(vdb_text *t, const char *tag, size_t tag_len,
				    uint64_t lineno, const char *message)
{
	vdb_buf *b = (vdb_buf *)t;
	char num[32];
	snprintf(num, sizeof num, "\"line\":%" PRIu64 ",\"error\":", lineno);
	int bad = vdb_buf_puts(b, "{");
	if (tag)
		bad = bad || vdb_buf_puts(b, "\"tag\":") || vdb_buf_append(b, tag, tag_len) ||
		      vdb_buf_puts(b, ",");
	bad = bad || vdb_buf_puts(b, num) || vj_write_string(b, message, strlen(message)) ||
	      vdb_buf_puts(b, "}\n");
	return bad ? VDB_ENOMEM : VDB_OK;
}

void vdb_jsonl_query_params(const vdb_jsonl_parser *p, size_t *ef, double *oversample)
{
	*ef = p->ef;
	*oversample = p->oversample;
}

const char *vdb_jsonl_query_filter(const vdb_jsonl_parser *p, size_t *len)
{
	*len = p->filter.len;
	return p->has_filter ? p->filter.data : NULL;
}

vdb_status vdb_id_parse_text(const char *text, vdb_id *out, vdb_error *err)
{
	size_t n = strlen(text);
	if (n == 0)
		return vdb_err(err, VDB_EINVAL, "an id must not be empty");
	size_t digits = strspn(text, "0123456789");
	if (digits == n) {
		uint64_t v = 0;
		for (size_t i = 0; i < n; i++) {
			unsigned d = (unsigned)(text[i] - '0');
			if (v > (UINT64_MAX - d) / 10)
				return vdb_err(err, VDB_EINVAL, "integer id %s is larger than %" PRIu64,
					       text, UINT64_MAX);
			v = v * 10 + d;
		}
		*out = (vdb_id){0, v, NULL, 0};
		return VDB_OK;
	}
	if (n >= 2 && text[0] == '"' && text[n - 1] == '"') {
		if (memchr(text + 1, '\\', n - 2))
			return vdb_err(err, VDB_EINVAL,
				       "escapes are not supported in a quoted id; give the id's bytes");
		text++;
		n -= 2;
	}
	if (n == 0 || n > VDB_ID_MAX_BYTES || vj_utf8_valid_prefix(text, n) != n)
		return vdb_err(err, VDB_EINVAL, "a string id must be 1 to %d bytes of UTF-8",
			       VDB_ID_MAX_BYTES);
	*out = (vdb_id){1, 0, text, n};
	return VDB_OK;
}

/* ---- output ---- */

void vdb_text_free(vdb_text *t)
{
	if (t)
		vdb_buf_free((vdb_buf *)t);
}

vdb_status vdb_text_append(vdb_text *t, const char *s, size_t n)
{
	return vdb_buf_append((vdb_buf *)t, s, n) ? VDB_ENOMEM : VDB_OK;
}

vdb_status vdb_jsonl_append_float(vdb_text *t, float f)
{
	char tmp[VDB_FLOAT_FMT_MAX];
	size_t n = vdb_fmt_float(f, tmp);
	return vdb_buf_append((vdb_buf *)t, tmp, n) ? VDB_ENOMEM : VDB_OK;
}

vdb_status vdb_jsonl_append_vector(vdb_text *t, const float *v, uint32_t dim)
{
	vdb_buf *b = (vdb_buf *)t;
	if (vdb_buf_reserve(b, (size_t)dim * VDB_FLOAT_FMT_MAX + 2))
		return VDB_ENOMEM;
	b->data[b->len++] = '[';
	for (uint32_t i = 0; i < dim; i++) {
		if (i)
			b->data[b->len++] = ',';
		b->len += vdb_fmt_float(v[i], b->data + b->len);
	}
	b->data[b->len++] = ']';
	return VDB_OK;
}

vdb_status vdb_jsonl_append_id(vdb_text *t, const vdb_id *id)
{
	vdb_buf *b = (vdb_buf *)t;
	if (id->is_string)
		return vj_write_string(b, id->str, id->len) ? VDB_ENOMEM : VDB_OK;
	char digits[20];
	size_t n = 0;
	uint64_t v = id->num;
	do {
		digits[sizeof digits - ++n] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	return vdb_buf_append(b, digits + sizeof digits - n, n) ? VDB_ENOMEM : VDB_OK;
}

vdb_status vdb_jsonl_append_record(vdb_text *t, const vdb_record *rec, uint32_t dim)
{
	vdb_buf *b = (vdb_buf *)t;
	if (vdb_buf_puts(b, "{\"id\":") || vdb_jsonl_append_id(t, &rec->id) ||
	    vdb_buf_puts(b, ",\"vector\":") || vdb_jsonl_append_vector(t, rec->vector, dim))
		return VDB_ENOMEM;
	if (rec->payload && (vdb_buf_puts(b, ",\"payload\":") ||
			     vdb_buf_append(b, rec->payload, rec->payload_len)))
		return VDB_ENOMEM;
	return vdb_buf_puts(b, "}\n") ? VDB_ENOMEM : VDB_OK;
}

vdb_status vdb_jsonl_parse_payload(vdb_jsonl_parser *p, const char *line, size_t len,
				   const char **payload, size_t *payload_len, vdb_error *err)
{
	vj_reader r;
	vdb_status st = begin(&r, line, len, err);
	if (st)
		return st;
	int c = vj_peek(&r);
	p->payload.len = 0;
	if (c != '{') {
		const char *tok = r.p;
		if (vj_value(&r, NULL) || vj_end(&r))
			return syntax(err, &r);
		if (r.p - tok >= 4 && !memcmp(tok, "null", 4)) {
			*payload = NULL;
			*payload_len = 0;
			return VDB_OK;
		}
		return vdb_err(err, VDB_EDATA, "a payload must be a JSON object or null");
	}
	if (vj_value(&r, &p->payload) || vj_end(&r))
		return syntax(err, &r);
	*payload = p->payload.data;
	*payload_len = p->payload.len;
	return VDB_OK;
}

vdb_status jsonl_parse_vector_text(vdb_jsonl_parser *p, const char *s, size_t len,
				   const char *field, const float **vec, vdb_error *err)
{
	vj_reader r;
	vdb_status st = begin(&r, s, len, err);
	if (st)
		return st;
	if ((st = parse_vector(p, &r, p->vec, field, err)))
		return st;
	if (vj_end(&r))
		return syntax(err, &r);
	*vec = p->vec;
	return VDB_OK;
}

vdb_status vdb_id_append_text(vdb_text *t, const vdb_id *id, vdb_error *err)
{
	if (id->is_string && (memchr(id->str, '\n', id->len) || memchr(id->str, '\r', id->len)))
		return vdb_err(err, VDB_EDATA, "string id holds a line break: not representable one "
					       "per line (use JSON lines)");
	return jsonl_append_id_field(t, id, err);
}

vdb_status jsonl_append_id_field(vdb_text *t, const vdb_id *id, vdb_error *err)
{
	if (!id->is_string)
		return vdb_jsonl_append_id(t, id) ? vdb_err_nomem(err) : VDB_OK;
	/* Bare text reads back as the same id unless it is all digits (an integer) or quoted
	 * already (the quotes would be taken off). */
	size_t nd = 0;
	while (nd < id->len && id->str[nd] >= '0' && id->str[nd] <= '9')
		nd++;
	int digits = nd == id->len;
	int quoted = id->len >= 2 && id->str[0] == '"' && id->str[id->len - 1] == '"';
	vdb_buf *b = (vdb_buf *)t;
	if (!digits && !quoted)
		return vdb_buf_append(b, id->str, id->len) ? vdb_err_nomem(err) : VDB_OK;
	if (memchr(id->str, '\\', id->len))
		return vdb_err(err, VDB_EDATA, "string id %.*s needs quotes and holds a backslash: "
					       "not representable one per line (use JSON lines)",
			       (int)(id->len > 40 ? 40 : id->len), id->str);
	if (vdb_buf_putc(b, '"') || vdb_buf_append(b, id->str, id->len) || vdb_buf_putc(b, '"'))
		return vdb_err_nomem(err);
	return VDB_OK;
}

