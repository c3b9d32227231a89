/* Strict RFC 8259 JSON scanner: tokens (strings, numbers, literals), UTF-8 validation,
 * whole-value validation with depth and duplicate-key checks, minified copying and JSON
 * string escaping. Everything here is bounds-checked against r->end because ingest lines are
 * slices of a larger read buffer, not NUL-terminated strings. No global mutable state. */
#include "json.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

static inline int is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static inline int is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static inline const char *skip_ws(const char *p, const char *e)
{
	while (p < e && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
		p++;
	return p;
}

/* memcpy keeps unaligned loads well-defined; gcc turns it into a single mov. */
static inline uint64_t load64(const unsigned char *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof v);
	return v;
}

/* ---- errors ---------------------------------------------------------------------------- */

static int fail(vj_reader *r, const char *at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Records only the first error: later failures are usually consequences of it. */
static int fail(vj_reader *r, const char *at, const char *fmt, ...)
{
	if (r->err[0])
		return -1;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->err, sizeof r->err, fmt, ap);
	va_end(ap);
	r->err_off = (size_t)(at - r->start);
	return -1;
}

/* Common mistakes get a hint, since "found '''" alone leaves the user guessing. */
static const char *hint_for(int c)
{
	if (c == '\'')
		return " (strings need double quotes)";
	if (c == '/')
		return " (comments are not allowed)";
	return "";
}

/* "expected WHAT, found X" at p, or "unexpected end of line (expected WHAT)" at the end. */
static int fail_expected(vj_reader *r, const char *p, const char *what)
{
	if (p >= r->end)
		return fail(r, p, "unexpected end of line (expected %s)", what);
	unsigned char c = (unsigned char)*p;
	if (c > 0x20 && c < 0x7f)
		return fail(r, p, "expected %s, found '%c'%s", what, c, hint_for(c));
	return fail(r, p, "expected %s, found byte 0x%02X", what, c);
}

static int fail_oom(vj_reader *r)
{
	return fail(r, r->p, "out of memory");
}

/* ---- UTF-8 ----------------------------------------------------------------------------- */

static inline int is_cont(unsigned char c)
{
	return (c & 0xC0) == 0x80;
}

/* Length of the well-formed sequence starting at the non-ASCII byte p (Unicode Table 3-7: no
 * overlongs, no UTF-16 surrogates, nothing above U+10FFFF), or 0 when it is ill-formed or cut
 * short by the end of the text. The second byte's range is what excludes the bad cases. */
static size_t utf8_seq(const unsigned char *p, const unsigned char *e)
{
	unsigned char c = p[0], lo = 0x80, hi = 0xBF;
	size_t n;
	if (c >= 0xC2 && c <= 0xDF) {
		n = 2;
	} else if (c >= 0xE0 && c <= 0xEF) {
		n = 3;
		lo = c == 0xE0 ? 0xA0 : 0x80; /* E0 80..9F would be overlong */
		hi = c == 0xED ? 0x9F : 0xBF; /* ED A0..BF would be U+D800..DFFF */
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4;
		lo = c == 0xF0 ? 0x90 : 0x80; /* F0 80..8F would be overlong */
		hi = c == 0xF4 ? 0x8F : 0xBF; /* F4 90.. would be above U+10FFFF */
	} else {
		return 0;
	}
	if ((size_t)(e - p) < n || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (!is_cont(p[i]))
			return 0;
	return n;
}

/* Explains why utf8_seq rejected p; only runs on the error path, so clarity beats speed. */
static const char *utf8_why(const unsigned char *p, const unsigned char *e)
{
	unsigned char c = p[0], c1 = e - p > 1 ? p[1] : 0;
	size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
	if (is_cont(c))
		return "unexpected continuation byte";
	if (c == 0xC0 || c == 0xC1 || (c == 0xE0 && c1 < 0xA0 && is_cont(c1)) ||
	    (c == 0xF0 && c1 < 0x90 && is_cont(c1)))
		return "overlong encoding";
	if (c == 0xED && c1 >= 0xA0 && is_cont(c1))
		return "UTF-16 surrogate encoded in UTF-8";
	if (c >= 0xF8)
		return "byte never valid in UTF-8";
	if (c >= 0xF5 || (c == 0xF4 && c1 >= 0x90 && is_cont(c1)))
		return "code point above U+10FFFF";
	for (size_t i = 1; i < n; i++) {
		if (p + i >= e)
			return "sequence truncated by end of line";
		if (!is_cont(p[i]))
			return "missing continuation byte";
	}
	return "ill-formed sequence";
}

static int fail_utf8(vj_reader *r, const unsigned char *p)
{
	return fail(r, (const char *)p, "invalid UTF-8: %s (byte 0x%02X)",
		    utf8_why(p, (const unsigned char *)r->end), p[0]);
}

size_t vj_utf8_valid_prefix(const char *s, size_t len)
{
	if (len == 0)
		return 0;
	const unsigned char *b = (const unsigned char *)s, *p = b, *e = b + len;
	while (p < e) {
		/* Payload text is overwhelmingly ASCII: test 8 bytes per step for any high bit. */
		while (e - p >= 8 && !(load64(p) & HIGHS))
			p += 8;
		if (p == e)
			break;
		if (*p < 0x80) {
			p++;
			continue;
		}
		size_t n = utf8_seq(p, e);
		if (!n)
			break;
		p += n;
	}
	return (size_t)(p - b);
}

/* ---- reader basics --------------------------------------------------------------------- */

void vj_init(vj_reader *r, const char *s, size_t len)
{
	if (!s)
		s = ""; /* NULL + 0 is undefined behaviour; an empty literal is not */
	r->start = r->p = s;
	r->end = s + len;
	r->err[0] = '\0';
	r->err_off = 0;
}

void vj_skip_ws(vj_reader *r)
{
	r->p = skip_ws(r->p, r->end);
}

/* Inlined copy of vj_peek for the value loop, where a call per token is measurable. */
static inline int peek(vj_reader *r)
{
	const char *p = skip_ws(r->p, r->end);
	r->p = p;
	return p < r->end ? (unsigned char)*p : -1;
}

int vj_peek(vj_reader *r)
{
	return peek(r);
}

int vj_expect(vj_reader *r, char c)
{
	if (peek(r) == (unsigned char)c) {
		r->p++;
		return 0;
	}
	char what[8];
	snprintf(what, sizeof what, "'%c'", c);
	return fail_expected(r, r->p, what);
}

int vj_end(vj_reader *r)
{
	if (peek(r) < 0)
		return 0;
	return fail(r, r->p, "trailing characters after the JSON value");
}

/* ---- strings --------------------------------------------------------------------------- */

/* Nonzero when one of the 8 bytes in v needs a closer look inside a string: '"', '\\', a
 * control character or a non-ASCII byte. Exact as a yes/no answer (the per-byte flags above
 * the first hit may be wrong, which is fine since the caller then goes byte by byte). */
static inline uint64_t special8(uint64_t v)
{
	uint64_t q = v ^ (ONES * '"'), b = v ^ (ONES * '\\');
	return (((q - ONES) & ~q) | ((b - ONES) & ~b) | ((v - ONES * 0x20) & ~v) | v) & HIGHS;
}

static inline int plain(unsigned char c)
{
	return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

static const unsigned char *skip_plain(const unsigned char *p, const unsigned char *e)
{
	while (e - p >= 8 && !special8(load64(p)))
		p += 8;
	while (p < e && plain(*p))
		p++;
	return p;
}

static int put_utf8(vdb_buf *out, uint32_t cp)
{
	char u[4];
	size_t n;
	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xC0 | cp >> 6);
		u[1] = (char)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xE0 | cp >> 12);
		u[1] = (char)(0x80 | (cp >> 6 & 0x3F));
		u[2] = (char)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		u[0] = (char)(0xF0 | cp >> 18);
		u[1] = (char)(0x80 | (cp >> 12 & 0x3F));
		u[2] = (char)(0x80 | (cp >> 6 & 0x3F));
		u[3] = (char)(0x80 | (cp & 0x3F));
		n = 4;
	}
	return vdb_buf_append(out, u, n);
}

static int unterminated(vj_reader *r)
{
	return fail(r, r->end, "unexpected end of line inside string (missing closing '\"')");
}

static int hex_val(int c)
{
	if (is_digit(c))
		return c - '0';
	c |= 0x20; /* ASCII lower case */
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Reads the four hex digits of the \u escape whose backslash is at p; -1 on error. */
static long hex4(vj_reader *r, const unsigned char *p)
{
	long v = 0;
	for (int i = 2; i < 6; i++) {
		if (p + i >= (const unsigned char *)r->end)
			return unterminated(r);
		int d = hex_val(p[i]);
		if (d < 0)
			return fail_expected(r, (const char *)p + i, "4 hex digits after '\\u'");
		v = v << 4 | d;
	}
	return v;
}

/* Decodes the \u escape at p (a surrogate pair takes two escapes); returns the byte after it,
 * or NULL on error. */
static const unsigned char *escape_u(vj_reader *r, const unsigned char *p, vdb_buf *out)
{
	long cp = hex4(r, p);
	const unsigned char *q = p + 6, *e = (const unsigned char *)r->end;
	if (cp < 0)
		return NULL;
	if (cp >= 0xDC00 && cp <= 0xDFFF) {
		fail(r, (const char *)p, "lone low surrogate \\u%04lx in string", cp);
		return NULL;
	}
	if (cp >= 0xD800 && cp <= 0xDBFF) {
		long lo = e - q >= 2 && q[0] == '\\' && q[1] == 'u' ? hex4(r, q) : 0;
		if (lo < 0)
			return NULL;
		if (lo < 0xDC00 || lo > 0xDFFF) {
			fail(r, (const char *)p,
			     "lone high surrogate \\u%04lx in string (no low surrogate next)", cp);
			return NULL;
		}
		cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
		q += 6;
	}
	if (out && put_utf8(out, (uint32_t)cp)) {
		fail_oom(r);
		return NULL;
	}
	return q;
}

/* Decodes the escape whose backslash is at p; returns the byte after it, or NULL on error. */
static const unsigned char *escape(vj_reader *r, const unsigned char *p, vdb_buf *out)
{
	if (p + 1 >= (const unsigned char *)r->end) {
		unterminated(r);
		return NULL;
	}
	char d;
	switch (p[1]) {
	case '"': d = '"'; break;
	case '\\': d = '\\'; break;
	case '/': d = '/'; break;
	case 'b': d = '\b'; break;
	case 'f': d = '\f'; break;
	case 'n': d = '\n'; break;
	case 'r': d = '\r'; break;
	case 't': d = '\t'; break;
	case 'u': return escape_u(r, p, out);
	default:
		if (p[1] > 0x20 && p[1] < 0x7f)
			fail(r, (const char *)p, "invalid escape '\\%c'", p[1]);
		else
			fail(r, (const char *)p, "invalid escape: '\\' followed by byte 0x%02X",
			     p[1]);
		return NULL;
	}
	if (out && vdb_buf_putc(out, d)) {
		fail_oom(r);
		return NULL;
	}
	return p + 2;
}

/* Appends the raw run [a, b) of already-validated bytes to out, if any. */
static int flush(vj_reader *r, vdb_buf *out, const unsigned char *a, const unsigned char *b)
{
	if (out && b > a && vdb_buf_append(out, a, (size_t)(b - a)))
		return fail_oom(r);
	return 0;
}

/* Scans the string whose opening quote is at the cursor, appending decoded bytes to out when
 * non-NULL; leaves the cursor after the closing quote. Plain runs are copied in one go. */
static int scan_string(vj_reader *r, vdb_buf *out)
{
	const unsigned char *p = (const unsigned char *)r->p + 1, *run = p;
	const unsigned char *e = (const unsigned char *)r->end;
	for (;;) {
		p = skip_plain(p, e);
		if (p == e)
			return unterminated(r);
		if (*p == '"')
			break;
		if (*p == '\\') {
			if (flush(r, out, run, p) || !(p = escape(r, p, out)))
				return -1;
			run = p;
		} else if (*p < 0x20) {
			return fail(r, (const char *)p,
				    "raw control character 0x%02X in string (must be escaped)", *p);
		} else {
			size_t n = utf8_seq(p, e);
			if (!n)
				return fail_utf8(r, p);
			p += n;
		}
	}
	if (flush(r, out, run, p))
		return -1;
	r->p = (const char *)p + 1;
	return 0;
}

int vj_string(vj_reader *r, vdb_buf *out)
{
	if (peek(r) != '"')
		return fail_expected(r, r->p, "a string");
	size_t mark = out ? out->len : 0;
	if (scan_string(r, out) == 0)
		return 0;
	if (out)
		out->len = mark;
	return -1;
}

/* Writes the JSON escape for c into esc and returns its length, or 0 when c may appear raw
 * inside a JSON string. */
static size_t escape_for(unsigned char c, char esc[6])
{
	static const char hex[] = "0123456789abcdef";
	char d;
	switch (c) {
	case '"': d = '"'; break;
	case '\\': d = '\\'; break;
	case '\b': d = 'b'; break;
	case '\f': d = 'f'; break;
	case '\n': d = 'n'; break;
	case '\r': d = 'r'; break;
	case '\t': d = 't'; break;
	default:
		if (c >= 0x20)
			return 0;
		memcpy(esc, "\\u00", 4);
		esc[4] = hex[c >> 4];
		esc[5] = hex[c & 15];
		return 6;
	}
	esc[0] = '\\';
	esc[1] = d;
	return 2;
}

int vj_write_string(vdb_buf *out, const char *s, size_t len)
{
	size_t mark = out->len;
	char esc[6];
	if (vdb_buf_reserve(out, len + 2) || vdb_buf_putc(out, '"'))
		return -1;
	size_t run = 0;
	for (size_t i = 0; i < len; i++) {
		size_t n = escape_for((unsigned char)s[i], esc);
		if (!n)
			continue;
		if (vdb_buf_append(out, s + run, i - run) || vdb_buf_append(out, esc, n))
			goto oom;
		run = i + 1;
	}
	if ((len > run && vdb_buf_append(out, s + run, len - run)) || vdb_buf_putc(out, '"'))
		goto oom;
	return 0;
oom:
	out->len = mark;
	return -1;
}

/* ---- numbers --------------------------------------------------------------------------- */

static const char *skip_digits(const char *p, const char *e)
{
	while (p < e && is_digit(*p))
		p++;
	return p;
}

/* The number grammar at the cursor; on success the cursor moves past the token. */
static inline int scan_number(vj_reader *r)
{
	const char *s = r->p, *p = s, *e = r->end;
	if (p < e && *p == '-')
		p++;
	if (p == e || !is_digit(*p))
		return fail_expected(r, p, p > s ? "a digit after '-'" : "a number");
	if (*p == '0') {
		if (++p < e && is_digit(*p))
			return fail(r, p - 1, "number has a leading zero");
	} else {
		p = skip_digits(p, e);
	}
	if (p < e && *p == '.') {
		if (++p == e || !is_digit(*p))
			return fail_expected(r, p, "a digit after '.' in number");
		p = skip_digits(p, e);
	}
	if (p < e && (*p == 'e' || *p == 'E')) {
		if (++p < e && (*p == '+' || *p == '-'))
			p++;
		if (p == e || !is_digit(*p))
			return fail_expected(r, p, "a digit in the exponent of number");
		p = skip_digits(p, e);
	}
	r->p = p;
	return 0;
}

int vj_number(vj_reader *r, const char **tok, size_t *toklen)
{
	vj_skip_ws(r);
	const char *s = r->p;
	if (scan_number(r))
		return -1;
	if (tok)
		*tok = s;
	if (toklen)
		*toklen = (size_t)(r->p - s);
	return 0;
}

/* ---- duplicate keys -------------------------------------------------------------------- */

/* Keys of every object currently open in vj_value. Each object owns an AVL tree over its keys.
 * Nodes and key bytes are stacked in object order, so closing an object only truncates both.
 * A balanced tree rather than a hash table: keys crafted to collide cannot push it past
 * O(log n) per key, and the duplicate is reported where it occurs, before later errors. */
#define NIL UINT32_MAX

typedef struct key_node {
	size_t off;         /* decoded key at bytes.data + off */
	uint32_t len;
	int32_t bal;        /* height(link[1]) - height(link[0]); -1..1 between inserts */
	uint32_t link[2];   /* [0] smaller keys, [1] greater keys; NIL when absent */
} key_node;

typedef struct keyset {
	vdb_buf bytes; /* decoded key bytes */
	vdb_buf nodes; /* key_node[] */
} keyset;

/* Any total order works; comparing lengths first settles most pairs without memcmp. */
static int key_cmp(const char *base, const key_node *a, const key_node *b)
{
	if (a->len != b->len)
		return a->len < b->len ? -1 : 1;
	if (a->len == 0)
		return 0; /* empty keys may have no byte storage at all (data still NULL) */
	return memcmp(base + a->off, base + b->off, a->len);
}

/* Restores balance at y, which is off by 2 after an insert, and returns the subtree's new
 * root (single or double rotation lifting the heavy side; Knuth 6.2.3, as in libavl). */
static uint32_t avl_rotate(key_node *t, uint32_t y)
{
	int d = t[y].bal > 0, s = d ? 1 : -1; /* heavy side and its sign */
	uint32_t x = t[y].link[d], w;
	if (t[x].bal == s) {
		w = x;
		t[y].link[d] = t[x].link[!d];
		t[x].link[!d] = y;
		t[x].bal = t[y].bal = 0;
		return w;
	}
	w = t[x].link[!d];
	t[x].link[!d] = t[w].link[d];
	t[w].link[d] = x;
	t[y].link[d] = t[w].link[!d];
	t[w].link[!d] = y;
	t[x].bal = t[w].bal == -s ? s : 0;
	t[y].bal = t[w].bal == s ? -s : 0;
	t[w].bal = 0;
	return w;
}

/* Inserts node n (already stored, unlinked) into the tree at *root; 1 if an equal key is
 * there already. Iterative, so no recursion on hostile input: balance factors change only
 * below y, the deepest ancestor that was not balanced, and at most y needs a rotation. */
static int avl_insert(const char *base, key_node *t, uint32_t *root, uint32_t n)
{
	if (*root == NIL) {
		*root = n;
		return 0;
	}
	uint32_t *link = root, *ylink = root, y = *root;
	unsigned char dir[64]; /* AVL height < 1.45 log2(2^32) = 47 */
	int k = 0;
	for (uint32_t p = *root; p != NIL; p = *link) {
		int c = key_cmp(base, &t[n], &t[p]);
		if (c == 0)
			return 1;
		if (t[p].bal != 0) {
			ylink = link;
			y = p;
			k = 0;
		}
		dir[k++] = c > 0;
		link = &t[p].link[c > 0];
	}
	*link = n;
	k = 0;
	for (uint32_t p = y; p != n; p = t[p].link[dir[k++]])
		t[p].bal += dir[k] ? 1 : -1;
	if (t[y].bal == 2 || t[y].bal == -2)
		*ylink = avl_rotate(t, y);
	return 0;
}

/* Adds the key decoded at bytes[mark..len) to the tree at *root. 0 when added, 1 when the
 * object already has it (the node is not kept), -1 when out of memory. */
static int keyset_add(keyset *ks, uint32_t *root, size_t mark)
{
	size_t n = ks->nodes.len / sizeof(key_node);
	if (vdb_buf_reserve(&ks->nodes, sizeof(key_node)))
		return -1;
	key_node *t = (key_node *)(void *)ks->nodes.data;
	t[n] = (key_node){mark, (uint32_t)(ks->bytes.len - mark), 0, {NIL, NIL}};
	if (avl_insert(ks->bytes.data, t, root, (uint32_t)n))
		return 1;
	ks->nodes.len += sizeof(key_node);
	return 0;
}

/* Quotes a decoded key for a message: escaped like JSON, cut at a character boundary with
 * "..." when long, so the message stays valid UTF-8 and fits r->err. */
static void quote_key(char *dst, size_t cap, const unsigned char *k, size_t len)
{
	size_t o = 0;
	for (size_t i = 0; i < len;) {
		char esc[6];
		size_t n = escape_for(k[i], esc), take = 1;
		if (!n) {
			take = k[i] < 0x80 ? 1 : k[i] < 0xE0 ? 2 : k[i] < 0xF0 ? 3 : 4;
			take = take > len - i ? len - i : take;
			memcpy(esc, k + i, take);
			n = take;
		}
		if (o + n + 4 > cap) {
			memcpy(dst + o, "...", 3);
			o += 3;
			break;
		}
		memcpy(dst + o, esc, n);
		o += n;
		i += take;
	}
	dst[o] = '\0';
}

/* ---- whole values ---------------------------------------------------------------------- */

/* One open array or object in vj_value's explicit stack (no recursion on hostile nesting). */
typedef struct vj_frame {
	char close;        /* ']' or '}' */
	uint32_t root;     /* this object's key tree */
	size_t nodes_len;  /* keyset sizes when the object opened, restored when it closes */
	size_t bytes_len;
} vj_frame;

typedef struct walker {
	vj_reader *r;
	vdb_buf *min; /* minified copy, or NULL */
	keyset ks;
	int depth;
	vj_frame st[VJ_MAX_DEPTH];
} walker;

/* Tokens are a few bytes each, so the common case (room left) is a copy without a call. */
static inline int emit(walker *w, const char *s, size_t n)
{
	vdb_buf *b = w->min;
	if (!b)
		return 0;
	if (n <= b->cap - b->len) {
		memcpy(b->data + b->len, s, n);
		b->len += n;
		return 0;
	}
	return vdb_buf_append(b, s, n) ? fail_oom(w->r) : 0;
}

/* Parses `"key":` in the innermost object, rejecting a key that object already has. what
 * describes the expected key for the error message. */
static int member_key(walker *w, const char *what)
{
	vj_reader *r = w->r;
	vj_frame *f = &w->st[w->depth - 1];
	if (peek(r) != '"')
		return fail_expected(r, r->p, what);
	const char *q = r->p;
	size_t mark = w->ks.bytes.len;
	if (scan_string(r, &w->ks.bytes) || emit(w, q, (size_t)(r->p - q)))
		return -1;
	size_t klen = w->ks.bytes.len - mark;
	if (klen > UINT32_MAX || w->ks.nodes.len / sizeof(key_node) >= NIL)
		return fail(r, q, "object key too long or too many keys");
	int dup = keyset_add(&w->ks, &f->root, mark);
	if (dup < 0)
		return fail_oom(r);
	if (dup) {
		char shown[100];
		/* Empty keys only ("" twice): the buffer may still be unallocated. */
		const char *key = w->ks.bytes.data ? w->ks.bytes.data + mark : "";
		quote_key(shown, sizeof shown, (const unsigned char *)key, klen);
		return fail(r, q, "duplicate key \"%s\"", shown);
	}
	if (peek(r) != ':')
		return fail_expected(r, r->p, "':' after object key");
	r->p++;
	return emit(w, ":", 1);
}

/* Consumes the closing bracket of the innermost container and forgets its keys. */
static int close_container(walker *w)
{
	vj_frame *f = &w->st[--w->depth];
	w->ks.nodes.len = f->nodes_len;
	w->ks.bytes.len = f->bytes_len;
	w->r->p++;
	return emit(w, &f->close, 1);
}

/* Consumes '[' or '{' at the cursor. 1 when a value must follow (after the first key, for an
 * object), 0 when the container was empty and is closed already, -1 on error. */
static int open_container(walker *w, char c)
{
	vj_reader *r = w->r;
	if (w->depth == VJ_MAX_DEPTH)
		return fail(r, r->p, "nesting deeper than %d levels", VJ_MAX_DEPTH);
	vj_frame *f = &w->st[w->depth++];
	*f = (vj_frame){c == '[' ? ']' : '}', NIL, w->ks.nodes.len, w->ks.bytes.len};
	r->p++;
	if (emit(w, &c, 1))
		return -1;
	if (peek(r) == f->close)
		return close_container(w);
	if (c == '[')
		return 1;
	return member_key(w, "a string key or '}' after '{'") ? -1 : 1;
}

/* Matches true, false or null at the cursor. */
static int literal(vj_reader *r)
{
	static const struct {
		const char *s;
		size_t n;
	} words[] = {{"true", 4}, {"false", 5}, {"null", 4}};
	const char *p = r->p;
	size_t avail = (size_t)(r->end - p);
	for (size_t i = 0; i < sizeof words / sizeof *words; i++) {
		if (avail >= words[i].n && memcmp(p, words[i].s, words[i].n) == 0) {
			r->p += words[i].n;
			return 0;
		}
	}
	if (avail == 0 || !is_alpha(*p))
		return fail_expected(r, p, "a JSON value");
	int n = 0; /* quote the whole bad word: "found 'NaN'" beats "found 'N'" */
	while ((size_t)n < avail && n < 24 && (is_alpha(p[n]) || is_digit(p[n])))
		n++;
	return fail(r, p, "expected a JSON value, found '%.*s'", n, p);
}

/* A string, number or literal at the cursor (c is its first byte), copied as written. */
static int scalar(walker *w, int c)
{
	vj_reader *r = w->r;
	const char *q = r->p;
	if (c == '"') {
		if (scan_string(r, NULL))
			return -1;
	} else if (c == '-' || is_digit(c)) {
		if (scan_number(r))
			return -1;
	} else if (literal(r)) {
		return -1;
	}
	return emit(w, q, (size_t)(r->p - q));
}

/* After a complete value: closes finished containers and consumes the ',' before the next
 * element. 1 when another value must follow, 0 when the outermost value is done. */
static int after_value(walker *w)
{
	vj_reader *r = w->r;
	while (w->depth > 0) {
		char close = w->st[w->depth - 1].close;
		int c = peek(r);
		if (c == ',') {
			r->p++;
			if (emit(w, ",", 1))
				return -1;
			if (close == ']')
				return 1;
			return member_key(w, "a string key after ','") ? -1 : 1;
		}
		if (c != close)
			return fail_expected(r, r->p,
					     close == ']' ? "',' or ']' after array element"
							  : "',' or '}' after object member");
		if (close_container(w))
			return -1;
	}
	return 0;
}

/* The value loop: each turn parses the start of one value, then settles what follows it. */
static int walk(walker *w)
{
	for (;;) {
		int c = peek(w->r), more;
		if (c == '[' || c == '{') {
			more = open_container(w, (char)c);
			if (more < 0)
				return -1;
			if (more)
				continue;
		} else if (scalar(w, c)) {
			return -1;
		}
		more = after_value(w);
		if (more <= 0)
			return more;
	}
}

int vj_value(vj_reader *r, vdb_buf *min)
{
	walker w; /* st[] is filled as containers open; no need to clear 1.5 KB per call */
	w.r = r;
	w.min = min;
	w.depth = 0;
	w.ks = (keyset){VDB_BUF_INIT, VDB_BUF_INIT};
	int rc = walk(&w);
	vdb_buf_free(&w.ks.bytes);
	vdb_buf_free(&w.ks.nodes);
	return rc;
}
