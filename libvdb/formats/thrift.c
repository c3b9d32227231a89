/* The Thrift compact protocol (thrift.h). Integers are zigzag varints, a field header is
 * one byte (id delta << 4 | type) when the id is 1 to 15 above the previous one, else the
 * type byte and the id as a zigzag varint; a list header is one byte (count << 4 | type)
 * for fewer than 15 elements, else 0xF0 | type and the count as a varint. */
#include <stdio.h>
#include <string.h>

#include "thrift.h"

/* ---- writing ---- */

void tc_writer_init(tc_writer *w, vdb_buf *b)
{
	memset(w, 0, sizeof *w);
	w->b = b;
}

static void put_byte(tc_writer *w, uint8_t c)
{
	if (!w->failed && vdb_buf_putc(w->b, (char)c))
		w->failed = 1;
}

int tc_put_uvarint(vdb_buf *b, uint64_t v)
{
	uint8_t tmp[10];
	size_t n = 0;
	do {
		tmp[n] = (uint8_t)(v & 0x7f);
		v >>= 7;
		if (v)
			tmp[n] |= 0x80;
		n++;
	} while (v);
	return vdb_buf_append(b, tmp, n);
}

int tc_get_uvarint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	uint64_t x = 0;
	for (int shift = 0; shift < 64; shift += 7) {
		if (*p >= end)
			return -1;
		uint8_t c = *(*p)++;
		if (shift == 63 && c > 1)
			return -1;
		x |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80)) {
			*v = x;
			return 0;
		}
	}
	return -1;
}

static void put_varint(tc_writer *w, uint64_t v)
{
	if (!w->failed && tc_put_uvarint(w->b, v))
		w->failed = 1;
}

static uint64_t zigzag(int64_t v)
{
	return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static void field_header(tc_writer *w, int16_t id, uint8_t type)
{
	int16_t *last = &w->last[w->depth > 0 ? w->depth - 1 : 0];
	int delta = id - *last;
	if (delta > 0 && delta <= 15) {
		put_byte(w, (uint8_t)(delta << 4 | type));
	} else {
		put_byte(w, type);
		put_varint(w, zigzag(id));
	}
	*last = id;
}

void tc_struct_begin(tc_writer *w)
{
	if (w->depth >= TC_MAX_DEPTH) {
		w->failed = 1;
		return;
	}
	w->last[w->depth++] = 0;
}

void tc_struct_end(tc_writer *w)
{
	put_byte(w, TC_STOP);
	if (w->depth > 0)
		w->depth--;
}

void tc_field_struct(tc_writer *w, int16_t id)
{
	field_header(w, id, TC_STRUCT);
	tc_struct_begin(w);
}

void tc_field_i32(tc_writer *w, int16_t id, int32_t v)
{
	field_header(w, id, TC_I32);
	put_varint(w, zigzag(v));
}

void tc_field_i64(tc_writer *w, int16_t id, int64_t v)
{
	field_header(w, id, TC_I64);
	put_varint(w, zigzag(v));
}

void tc_field_bool(tc_writer *w, int16_t id, int v)
{
	field_header(w, id, v ? TC_TRUE : TC_FALSE);
}

void tc_field_byte(tc_writer *w, int16_t id, int8_t v)
{
	field_header(w, id, TC_BYTE);
	put_byte(w, (uint8_t)v);
}

void tc_elem_binary(tc_writer *w, const void *p, size_t n)
{
	put_varint(w, n);
	if (!w->failed && vdb_buf_append(w->b, p, n))
		w->failed = 1;
}

void tc_field_binary(tc_writer *w, int16_t id, const void *p, size_t n)
{
	field_header(w, id, TC_BINARY);
	tc_elem_binary(w, p, n);
}

void tc_field_string(tc_writer *w, int16_t id, const char *s)
{
	tc_field_binary(w, id, s, strlen(s));
}

void tc_field_list(tc_writer *w, int16_t id, uint8_t elem_type, uint32_t n)
{
	field_header(w, id, TC_LIST);
	if (n < 15) {
		put_byte(w, (uint8_t)(n << 4 | elem_type));
	} else {
		put_byte(w, (uint8_t)(0xf0 | elem_type));
		put_varint(w, n);
	}
}

void tc_elem_i32(tc_writer *w, int32_t v)
{
	put_varint(w, zigzag(v));
}

void tc_elem_string(tc_writer *w, const char *s)
{
	tc_elem_binary(w, s, strlen(s));
}

/* ---- reading ---- */

void tc_reader_init(tc_reader *r, const void *p, size_t n)
{
	memset(r, 0, sizeof *r);
	r->start = r->p = p;
	r->end = r->p + n;
}

size_t tc_reader_offset(const tc_reader *r)
{
	return (size_t)(r->p - r->start);
}

int tc_fail(tc_reader *r, const char *why)
{
	if (!r->err[0])
		snprintf(r->err, sizeof r->err, "%s", why);
	r->p = r->end; /* nothing more is read */
	return -1;
}

static int get_byte(tc_reader *r, uint8_t *c)
{
	if (r->err[0] || r->p >= r->end)
		return tc_fail(r, "the metadata ends early");
	*c = *r->p++;
	return 0;
}

static int get_varint(tc_reader *r, uint64_t *v)
{
	if (r->err[0])
		return -1;
	const uint8_t *p = r->p;
	if (tc_get_uvarint(&p, r->end, v))
		return tc_fail(r, p >= r->end ? "the metadata ends early" : "an integer is too long");
	r->p = p;
	return 0;
}

static int64_t unzigzag(uint64_t v)
{
	return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

int tc_struct_enter(tc_reader *r)
{
	if (++r->depth > TC_MAX_DEPTH)
		return tc_fail(r, "the metadata nests too deep");
	return r->err[0] ? -1 : 0;
}

void tc_struct_leave(tc_reader *r)
{
	r->depth--;
}

int tc_next_field(tc_reader *r, int16_t *last, int16_t *id, uint8_t *type)
{
	uint8_t c;
	if (get_byte(r, &c))
		return -1;
	if (c == TC_STOP)
		return 0;
	*type = c & 0x0f;
	if (*type == TC_STOP || *type > TC_STRUCT)
		return tc_fail(r, "a field has an unknown type");
	if (c >> 4) {
		*id = (int16_t)(*last + (c >> 4));
	} else {
		uint64_t v;
		if (get_varint(r, &v))
			return -1;
		int64_t s = unzigzag(v);
		if (s < INT16_MIN || s > INT16_MAX)
			return tc_fail(r, "a field id is out of range");
		*id = (int16_t)s;
	}
	*last = *id;
	return 1;
}

int tc_read_i64(tc_reader *r, uint8_t type, int64_t *v)
{
	uint64_t u;
	if (type != TC_I64 && type != TC_I32 && type != TC_I16)
		return tc_fail(r, "a field has the wrong type");
	if (get_varint(r, &u))
		return -1;
	*v = unzigzag(u);
	return 0;
}

int tc_read_i32(tc_reader *r, uint8_t type, int32_t *v)
{
	int64_t x;
	if (type == TC_BYTE) {
		uint8_t c;
		if (get_byte(r, &c))
			return -1;
		*v = (int8_t)c;
		return 0;
	}
	if (type == TC_I64)
		return tc_fail(r, "a field has the wrong type");
	if (tc_read_i64(r, type, &x))
		return -1;
	if (x < INT32_MIN || x > INT32_MAX)
		return tc_fail(r, "a 32-bit field is out of range");
	*v = (int32_t)x;
	return 0;
}

int tc_read_bool(tc_reader *r, uint8_t type, int *v)
{
	if (type != TC_TRUE && type != TC_FALSE)
		return tc_fail(r, "a field has the wrong type");
	*v = type == TC_TRUE;
	return r->err[0] ? -1 : 0;
}

int tc_read_binary(tc_reader *r, uint8_t type, const uint8_t **p, uint32_t *n)
{
	uint64_t len;
	if (type != TC_BINARY)
		return tc_fail(r, "a field has the wrong type");
	if (get_varint(r, &len))
		return -1;
	if (len > (uint64_t)(r->end - r->p))
		return tc_fail(r, "a string runs past the end of the metadata");
	*p = r->p;
	*n = (uint32_t)len;
	r->p += len;
	return 0;
}

int tc_read_list(tc_reader *r, uint8_t type, uint8_t *elem_type, uint32_t *n)
{
	uint8_t c;
	if (type != TC_LIST && type != TC_SET)
		return tc_fail(r, "a field has the wrong type");
	if (get_byte(r, &c))
		return -1;
	*elem_type = c & 0x0f;
	uint64_t count = c >> 4;
	if (count == 15 && get_varint(r, &count))
		return -1;
	if (*elem_type == TC_STOP || *elem_type > TC_STRUCT)
		return tc_fail(r, "a list has an unknown element type");
	if (count > (uint64_t)(r->end - r->p))
		return tc_fail(r, "a list is longer than the metadata");
	*n = (uint32_t)count;
	return 0;
}

/* Skips one list element or map key/value: a bool takes a byte there. */
static int skip_elem(tc_reader *r, uint8_t type)
{
	uint8_t c;
	if (type == TC_TRUE || type == TC_FALSE)
		return get_byte(r, &c);
	return tc_skip(r, type);
}

int tc_skip(tc_reader *r, uint8_t type)
{
	uint64_t u;
	uint8_t c;
	switch (type) {
	case TC_TRUE:
	case TC_FALSE:
		return r->err[0] ? -1 : 0;
	case TC_BYTE:
		return get_byte(r, &c);
	case TC_I16:
	case TC_I32:
	case TC_I64:
		return get_varint(r, &u);
	case TC_DOUBLE:
		if (r->end - r->p < 8)
			return tc_fail(r, "the metadata ends early");
		r->p += 8;
		return 0;
	case TC_BINARY: {
		const uint8_t *p;
		uint32_t n;
		return tc_read_binary(r, type, &p, &n);
	}
	case TC_LIST:
	case TC_SET: {
		uint8_t et;
		uint32_t n;
		if (tc_read_list(r, type, &et, &n) || tc_struct_enter(r))
			return -1;
		for (uint32_t i = 0; i < n; i++)
			if (skip_elem(r, et))
				return -1;
		tc_struct_leave(r);
		return 0;
	}
	case TC_MAP: {
		if (get_varint(r, &u))
			return -1;
		if (!u)
			return 0;
		if (u > (uint64_t)(r->end - r->p) || get_byte(r, &c) || tc_struct_enter(r))
			return tc_fail(r, "a map is longer than the metadata");
		for (uint64_t i = 0; i < u; i++)
			if (skip_elem(r, c >> 4) || skip_elem(r, c & 0x0f))
				return -1;
		tc_struct_leave(r);
		return 0;
	}
	case TC_STRUCT: {
		int16_t last = 0, id;
		uint8_t t;
		int more;
		if (tc_struct_enter(r))
			return -1;
		while ((more = tc_next_field(r, &last, &id, &t)) == 1)
			if (tc_skip(r, t))
				return -1;
		tc_struct_leave(r);
		return more;
	}
	default:
		return tc_fail(r, "a field has an unknown type");
	}
}
