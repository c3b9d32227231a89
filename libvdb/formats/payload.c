/* Reading values out of a payload (a JSON object's text) without building a tree: the walk
 * along a dotted path that filters evaluate with and payload indexes are built with, and
 * the JSON number and string comparisons both rely on. One walker, so that a filter and
 * the index that answers it always see the same values.
 *
 * Path rules: each part names an object member; an array met on the way is descended into
 * (the path continues in each element); at the end of the path an array gives its scalar
 * elements (nested containers are skipped), an object gives nothing. A presence test stops
 * at the first value found at the path's end, whatever it is. */
#include "payload.h"

#include <locale.h>
#include <stdlib.h>
#include <string.h>

#include "../util/buf.h"
#include "json.h"

typedef struct walker {
	const vdb_payload_part *parts;
	size_t nparts;
	int presence;
	int (*fn)(void *ctx, const char *v, size_t n);
	void *ctx;
} walker;

static inline const char *ws(const char *p, const char *e)
{
	while (p < e && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
		p++;
	return p;
}

/* Past the closing quote of the string starting at p ('"'), or NULL. */
static const char *string_end(const char *p, const char *e)
{
	for (p++; p < e; p++) {
		if (*p == '\\') {
			p++;
			continue;
		}
		if (*p == '"')
			return p + 1;
	}
	return NULL;
}

static const char *scalar_end(const char *p, const char *e)
{
	while (p < e && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\n' &&
	       *p != '\r' && *p != '\t' && *p != ':')
		p++;
	return p;
}

/* Past the value at p, or NULL when it is damaged. */
static const char *skip(const char *p, const char *e, int depth)
{
	p = ws(p, e);
	if (p >= e || depth > VDB_PAYLOAD_MAX_DEPTH)
		return NULL;
	if (*p == '"')
		return string_end(p, e);
	if (*p != '{' && *p != '[') {
		const char *q = scalar_end(p, e);
		return q > p ? q : NULL;
	}
	char close = *p == '{' ? '}' : ']';
	p = ws(p + 1, e);
	if (p < e && *p == close)
		return p + 1;
	for (;;) {
		if (close == '}') {
			p = ws(p, e);
			if (p >= e || *p != '"' || !(p = string_end(p, e)))
				return NULL;
			p = ws(p, e);
			if (p >= e || *p++ != ':')
				return NULL;
		}
		if (!(p = skip(p, e, depth + 1)))
			return NULL;
		p = ws(p, e);
		if (p >= e)
			return NULL;
		if (*p == close)
			return p + 1;
		if (*p++ != ',')
			return NULL;
	}
}

/* Decoded bytes of the JSON string at s[0..n) (with quotes) equal want[0..wlen)? */
int vdb_json_string_equals(const char *s, size_t n, const char *want, size_t wlen)
{
	if (!memchr(s, '\\', n))
		return n - 2 == wlen && !memcmp(s + 1, want, wlen);
	vdb_buf b = VDB_BUF_INIT;
	vj_reader r;
	vj_init(&r, s, n);
	int eq = !vj_string(&r, &b) && b.len == wlen && !memcmp(b.data, want, wlen);
	vdb_buf_free(&b);
	return eq;
}

/* <0, 0, >0 comparing the decoded JSON string s[0..n) with want; *bad on damage. */
int vdb_json_string_compare(const char *s, size_t n, const char *want, size_t wlen, int *bad)
{
	const char *d = s + 1;
	size_t dl = n - 2;
	vdb_buf b = VDB_BUF_INIT;
	if (memchr(s, '\\', n)) {
		vj_reader r;
		vj_init(&r, s, n);
		if (vj_string(&r, &b)) {
			*bad = 1;
			vdb_buf_free(&b);
			return 0;
		}
		d = b.data, dl = b.len;
	}
	int c = memcmp(d, want, dl < wlen ? dl : wlen);
	if (!c)
		c = dl < wlen ? -1 : dl > wlen;
	vdb_buf_free(&b);
	return c;
}

/* Common numbers (at most 19 significant digits, power of ten within +-22, exact in a
 * double before scaling) are converted with one correctly rounded operation; the rest go
 * through strtod, with the decimal point the process locale expects (a program linking
 * libvdb may have called setlocale). Payload and filter numbers take the same path, so
 * equal texts always give equal values. */
int vdb_json_number(const char *s, size_t n, double *out)
{
	static const double p10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
				     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
				     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
	size_t i = 0;
	int neg = i < n && s[i] == '-', exact = 1;
	i += (size_t)neg;
	uint64_t m = 0;
	long e10 = 0;
	size_t start = i;
	for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
		if (m < 1000000000000000000ull)
			m = m * 10 + (uint64_t)(s[i] - '0');
		else
			e10++, exact &= s[i] == '0';
	}
	if (i == start)
		return -1;
	if (i < n && s[i] == '.') {
		size_t f = ++i;
		for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
			if (m < 1000000000000000000ull)
				m = m * 10 + (uint64_t)(s[i] - '0'), e10--;
			else
				exact &= s[i] == '0';
		}
		if (i == f)
			return -1;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		int eneg = i < n && s[i] == '-';
		if (i < n && (s[i] == '-' || s[i] == '+'))
			i++;
		size_t f = i;
		long x = 0;
		for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
			if (x < 100000)
				x = x * 10 + (s[i] - '0');
		if (i == f)
			return -1;
		e10 += eneg ? -x : x;
	}
	if (i != n)
		return -1;
	if (exact && m < (1ull << 53) && e10 >= -22 && e10 <= 22) {
		double d = (double)m;
		d = e10 < 0 ? d / p10[-e10] : d * p10[e10];
		*out = neg ? -d : d;
		return 0;
	}
	char small[64], *buf = n < sizeof small ? small : malloc(n + 1);
	if (!buf)
		return -1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	char *dot = memchr(buf, '.', n);
	if (dot)
		*dot = *localeconv()->decimal_point;
	*out = strtod(buf, NULL);
	if (buf != small)
		free(buf);
	return 0;
}

/* After an array element ending at *p: 1 at the closing ']' (*end is then past it), 0 after
 * the ',' before the next element (*p is then past it), -1 for anything else. */
static int array_step(const char **p, const char *e, const char **end)
{
	const char *q = ws(*p, e);
	if (q >= e)
		return -1;
	if (*q == ']') {
		*end = q + 1;
		return 1;
	}
	if (*q != ',')
		return -1;
	*p = q + 1;
	return 0;
}

/* Does the visitor stop at some value at w's path (from part i on)? The value starts at *pp.
 * 1: yes (*pp is then unspecified); 0: no, and *pp is past the value; -1: damaged (or the
 * visitor said so). */
static int walk(const walker *w, size_t i, const char **pp, const char *e, int depth)
{
	const char *p = ws(*pp, e);
	if (p >= e || depth > VDB_PAYLOAD_MAX_DEPTH)
		return -1;
	if (i == w->nparts) {
		if (w->presence)
			return 1; /* something is there: that is all a presence test asks */
		if (*p == '[') {
			p = ws(p + 1, e);
			if (p < e && *p == ']') {
				*pp = p + 1;
				return 0;
			}
			for (;;) {
				p = ws(p, e);
				const char *q = skip(p, e, depth + 1);
				if (!q)
					return -1;
				if (*p != '{' && *p != '[') {
					int r = w->fn(w->ctx, p, (size_t)(q - p));
					if (r)
						return r;
				}
				p = q;
				int step = array_step(&p, e, pp);
				if (step)
					return step < 0 ? -1 : 0;
			}
		}
		const char *q = skip(p, e, depth);
		if (!q)
			return -1;
		if (*p != '{') {
			int r = w->fn(w->ctx, p, (size_t)(q - p));
			if (r)
				return r;
		}
		*pp = q;
		return 0;
	}
	if (*p == '{') {
		p = ws(p + 1, e);
		if (p < e && *p == '}') {
			*pp = p + 1;
			return 0;
		}
		for (;;) {
			p = ws(p, e);
			const char *k = p, *ke;
			if (p >= e || *p != '"' || !(ke = string_end(p, e)))
				return -1;
			p = ws(ke, e);
			if (p >= e || *p++ != ':')
				return -1;
			if (vdb_json_string_equals(k, (size_t)(ke - k), w->parts[i].s, w->parts[i].len)) {
				int r = walk(w, i + 1, &p, e, depth + 1);
				if (r)
					return r;
			} else if (!(p = skip(p, e, depth + 1))) {
				return -1;
			}
			p = ws(p, e);
			if (p >= e)
				return -1;
			if (*p == '}') {
				*pp = p + 1;
				return 0;
			}
			if (*p++ != ',')
				return -1;
		}
	}
	if (*p == '[') {
		/* A path through an array continues into each of its elements. */
		p = ws(p + 1, e);
		if (p < e && *p == ']') {
			*pp = p + 1;
			return 0;
		}
		for (;;) {
			int r = walk(w, i, &p, e, depth + 1);
			if (r)
				return r;
			int step = array_step(&p, e, pp);
			if (step)
				return step < 0 ? -1 : 0;
		}
	}
	const char *q = skip(p, e, depth);
	if (!q)
		return -1;
	*pp = q;
	return 0;
}

int vdb_payload_walk(const char *payload, size_t len, const vdb_payload_part *parts,
		     size_t nparts, int presence, int (*fn)(void *ctx, const char *v, size_t n),
		     void *ctx)
{
	if (!payload || !len)
		payload = "{}", len = 2;
	walker w = {parts, nparts, presence, fn, ctx};
	const char *p = payload;
	return walk(&w, 0, &p, payload + len, 0);
}

/* Adapts a visitor that never stops the walk. */
typedef struct each {
	void (*fn)(void *ctx, const char *v, size_t n);
	void *ctx;
} each;

static int visit_each(void *ctx, const char *v, size_t n)
{
	const each *x = ctx;
	x->fn(x->ctx, v, n);
	return 0;
}

int vdb_payload_values(const char *payload, size_t len, const char *path, size_t plen,
		       void (*fn)(void *ctx, const char *v, size_t n), void *ctx)
{
	vdb_payload_part parts[VDB_PAYLOAD_MAX_DEPTH];
	size_t n = 0;
	const char *a = path, *e = path + plen;
	for (const char *p = path;; p++) {
		if (p == e || *p == '.') {
			if (p == a || n == VDB_PAYLOAD_MAX_DEPTH)
				return -1;
			parts[n++] = (vdb_payload_part){a, (size_t)(p - a)};
			a = p + 1;
			if (p == e)
				break;
		}
	}
	each x = {fn, ctx};
	return vdb_payload_walk(payload, len, parts, n, 0, visit_each, &x) < 0 ? -1 : 0;
}
