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

#include "../util/buf.h"
#include "../util/error.h"
#include "../util/numfmt.h"
#include "json.h"
#include "jsonl.h"
#include "vdb.h"
#include "vdb_config.h"

_Static_assert(sizeof(vdb_text) == sizeof(vdb_buf), "vdb_text mirrors vdb_buf");

struct vdb_jsonl_parser {
	uint32_t dim;
	float *vec;
	vdb_buf key;
	vdb_buf idstr;
	vdb_buf payload;
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
	vdb_buf_free(&p->payload);
	free(p);
}

static vdb_status syntax(vdb_error *err, const vj_reader *r)
{
	return vdb_err(err, VDB_EDATA, "invalid JSON at column %zu: %s", r->err_off + 1, r->err);
}

/* One pass over the common number shapes (at most 19 significant digits, decimal exponent
 * within +-22 after moving the point): the value is m * 10^e with m < 2^53, computed in
 * double with one correctly rounded operation on exact operands, then rounded to float.
 * That second rounding is wrong only when the double lies exactly halfway between two
 * floats (its low 29 mantissa bits are 1 followed by zeros); then, and for anything else
 * (long mantissas, big exponents, any grammar error), returns 0 and the caller takes the
 * general path: vj_number for the grammar and its messages, vdb_parse_float for the value.
 * On success *next is just past the number, which is followed by a delimiter. */
static int fast_number(const char *s, const char *end, float *out, const char **next)
{
	static const double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
				       1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
				       1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
	const char *p = s;
	int neg = p < end && *p == '-';
	p += neg;
	if (p >= end || *p < '0' || *p > '9')
		return 0;
	uint64_t m = 0;
	int digits = 0, exp10 = 0;
	if (*p == '0') {
		p++;
		if (p < end && *p >= '0' && *p <= '9')
			return 0; /* leading zero: the general path reports it */
	} else {
		for (; p < end && *p >= '0' && *p <= '9'; p++, digits++)
			m = m * 10 + (uint64_t)(*p - '0');
	}
	if (p < end && *p == '.') {
		p++;
		if (p >= end || *p < '0' || *p > '9')
			return 0;
		for (; p < end && *p >= '0' && *p <= '9'; p++) {
			if (m || *p != '0')
				digits++;
			m = m * 10 + (uint64_t)(*p - '0');
			exp10--;
		}
	}
	if (digits > 19)
		return 0;
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
	if (m > (1ull << 53) || exp10 < -22 || exp10 > 22)
		return 0;
	double d = exp10 < 0 ? (double)m / pow10[-exp10] : (double)m * pow10[exp10];
	uint64_t bits;
	memcpy(&bits, &d, sizeof bits);
	if (m && (bits & 0x1fffffffull) == 0x10000000ull)
		return 0;
	if (d > 3.4028234663852886e38 || (m && d < 1.1754943508222875e-38))
		return 0; /* overflow or subnormal: the general path decides */
	float f = (float)d;
	*out = neg ? -f : f;
	*next = p;
	return 1;
}

static vdb_status parse_vector(vdb_jsonl_parser *p, vj_reader *r, float *vec, const char *field,
			       vdb_error *err)
{
	if (vj_peek(r) != '[')
		return vdb_err(err, VDB_EDATA, "\"%s\" must be an array of %" PRIu32 " numbers", field,
			       p->dim);
	r->p++;
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

enum { F_ID = 1, F_VECTOR = 2, F_PAYLOAD = 4, F_DELETE = 8 };

static int field_of(const vdb_buf *key)
{
	static const struct {
		const char *name;
		int flag;
	} fields[] = {{"id", F_ID}, {"vector", F_VECTOR}, {"payload", F_PAYLOAD}, {"delete", F_DELETE}};
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
			} else if (f == F_PAYLOAD) {
				if (vj_peek(&r) != '{') {
					if (vj_value(&r, NULL))
						return syntax(err, &r);
					return vdb_err(err, VDB_EDATA, "\"payload\" must be a JSON object");
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

vdb_status vdb_jsonl_parse_query(vdb_jsonl_parser *p, const char *line, size_t len,
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
			int f = p->key.len == 6 && !memcmp(p->key.data, "vector", 6) ? 1
				: p->key.len == 1 && p->key.data[0] == 'k'	     ? 2
										     : 0;
			if (!f)
				return vdb_err(err, VDB_EDATA,
					       "unknown field \"%s\" (a query has \"vector\" and \"k\")",
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
			const char *tok;
			size_t tl;
			if (vj_peek(&r) == '"' || vj_number(&r, &tok, &tl))
				return vj_value(&r, NULL) ? syntax(err, &r)
				       : vdb_err(err, VDB_EDATA, "\"k\" must be an integer from 1 to %d",
						 VDB_K_MAX);
			uint64_t v = 0;
			int ok = tl <= 7;
			for (size_t i = 0; ok && i < tl; i++) {
				ok = tok[i] >= '0' && tok[i] <= '9';
				v = v * 10 + (uint64_t)(tok[i] - '0');
			}
			if (!ok || v < 1 || v > VDB_K_MAX)
				return vdb_err(err, VDB_EDATA, "\"k\" must be an integer from 1 to %d",
					       VDB_K_MAX);
			kk = (size_t)v;
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

vdb_status vdb_id_parse_arg(const char *text, vdb_id *out, vdb_error *err)
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

vdb_status vdb_id_append_arg(vdb_text *t, const vdb_id *id, vdb_error *err)
{
	if (!id->is_string)
		return vdb_jsonl_append_id(t, id) ? vdb_err_nomem(err) : VDB_OK;
	if (memchr(id->str, '\n', id->len) || memchr(id->str, '\r', id->len))
		return vdb_err(err, VDB_EDATA, "string id holds a line break: not representable one "
					       "per line (use JSON lines)");
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

const char *vdb_version(void)
{
	return VDB_VERSION;
}
