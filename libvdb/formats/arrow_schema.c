/* The ARROW:schema footer entry (parquet.h): Arrow writers store the Arrow schema of the
 * columns, as an IPC message in base64, so that Arrow-based readers (pyarrow, Polars, Spark
 * with Arrow) restore what Parquet alone cannot say, here that the vector column is a
 * fixed_size_list<float, dim> and not a plain list.
 *
 * The message is a FlatBuffer (Arrow's Message.fbs / Schema.fbs), built here front to back:
 * each table's vtable just before it, every object a table points to written after it (a
 * FlatBuffer offset is unsigned: it points forward), offsets patched when their target is
 * placed. Only the tables and fields this schema needs are written. */
#include <string.h>

#include "parquet.h"

/* Arrow's numbers: MetadataVersion V5, MessageHeader Schema, Type union members,
 * Precision SINGLE / DOUBLE. */
enum { V5 = 4, HEADER_SCHEMA = 1 };
enum { T_INT = 2, T_FLOATING_POINT = 3, T_UTF8 = 5, T_BOOL = 6, T_FIXED_SIZE_LIST = 16 };
enum { SINGLE = 1, DOUBLE = 2 };

typedef struct slot {
	int size;       /* 0: absent; 1, 2, 4; an offset is 4 with is_offset */
	int is_offset;
	uint32_t value;
} slot;

static int pad(vdb_buf *b, size_t align)
{
	while (b->len % align)
		if (vdb_buf_putc(b, 0))
			return -1;
	return 0;
}

static void put_le(vdb_buf *b, size_t at, uint32_t v, int size)
{
	for (int i = 0; i < size; i++)
		b->data[at + (size_t)i] = (char)(v >> (8 * i));
}

/* A table with its vtable; *pos is where it starts, offs[i] where slot i's offset field is
 * (to patch). -1 on ENOMEM. */
static int table(vdb_buf *b, const slot *s, int n, size_t *pos, size_t *offs)
{
	size_t inline_at[16], size = 4; /* after the soffset */
	for (int i = 0; i < n; i++) {
		if (!s[i].size)
			continue;
		size = (size + (size_t)s[i].size - 1) / (size_t)s[i].size * (size_t)s[i].size;
		inline_at[i] = size;
		size += (size_t)s[i].size;
	}
	size = (size + 3) / 4 * 4;
	size_t vt_len = 4 + 2 * (size_t)n;
	if (pad(b, 2))
		return -1;
	/* The table must start 4-aligned right after its vtable: pad before the vtable. */
	while ((b->len + vt_len) % 4)
		if (vdb_buf_putc(b, 0))
			return -1;
	size_t vt = b->len;
	if (vdb_buf_reserve(b, vt_len + size))
		return -1;
	memset(b->data + vt, 0, vt_len + size);
	b->len += vt_len + size;
	put_le(b, vt, (uint32_t)vt_len, 2);
	put_le(b, vt + 2, (uint32_t)size, 2);
	size_t t = vt + vt_len;
	put_le(b, t, (uint32_t)(t - vt), 4); /* soffset: the vtable is that far before */
	for (int i = 0; i < n; i++) {
		if (!s[i].size)
			continue;
		put_le(b, vt + 4 + 2 * (size_t)i, (uint32_t)inline_at[i], 2);
		if (s[i].is_offset)
			offs[i] = t + inline_at[i];
		else
			put_le(b, t + inline_at[i], s[i].value, s[i].size);
	}
	*pos = t;
	return 0;
}

static void patch(vdb_buf *b, size_t field, size_t target)
{
	put_le(b, field, (uint32_t)(target - field), 4);
}

static int string(vdb_buf *b, const char *s, size_t *pos)
{
	size_t n = strlen(s);
	if (pad(b, 4))
		return -1;
	*pos = b->len;
	return vdb_buf_put_u32(b, (uint32_t)n) || vdb_buf_append(b, s, n + 1) ? -1 : 0;
}

/* A vector of n offsets, to be patched: element i at *pos + 4 + 4 i. */
static int offset_vector(vdb_buf *b, uint32_t n, size_t *pos)
{
	if (pad(b, 4))
		return -1;
	*pos = b->len;
	if (vdb_buf_put_u32(b, n))
		return -1;
	for (uint32_t i = 0; i < n; i++)
		if (vdb_buf_put_u32(b, 0))
			return -1;
	return 0;
}

static int field(vdb_buf *b, const char *name, int nullable, arrow_type type, int32_t list_size,
		 size_t *pos)
{
	static const uint8_t type_of[] = {T_INT, T_INT, T_FLOATING_POINT, T_BOOL, T_UTF8,
					  T_FIXED_SIZE_LIST};
	slot s[6] = {{4, 1, 0}, {1, 0, (uint32_t)nullable}, {1, 0, type_of[type]}, {4, 1, 0},
		     {0, 0, 0}, {4, 1, 0}};
	size_t offs[6], at;
	if (table(b, s, 6, pos, offs) || string(b, name, &at))
		return -1;
	patch(b, offs[0], at);
	/* The type's own table. */
	slot ts[2] = {{0, 0, 0}, {0, 0, 0}};
	int nts = 0;
	switch (type) {
	case ARROW_INT64:
	case ARROW_UINT64:
		ts[0] = (slot){4, 0, 64};
		ts[1] = (slot){1, 0, type == ARROW_INT64};
		nts = 2;
		break;
	case ARROW_DOUBLE:
		ts[0] = (slot){2, 0, DOUBLE};
		nts = 1;
		break;
	case ARROW_FIXED_SIZE_LIST_FLOAT:
		ts[0] = (slot){4, 0, (uint32_t)list_size};
		nts = 1;
		break;
	default:
		break;
	}
	if (table(b, ts, nts, &at, offs + 4))
		return -1;
	patch(b, offs[3], at);
	size_t children, child;
	int list = type == ARROW_FIXED_SIZE_LIST_FLOAT;
	if (offset_vector(b, list ? 1 : 0, &children))
		return -1;
	patch(b, offs[5], children);
	if (!list)
		return 0;
	/* The element: a non-nullable float32 named as Arrow names it. */
	slot es[6] = {{4, 1, 0}, {1, 0, 0}, {1, 0, T_FLOATING_POINT}, {4, 1, 0}, {0, 0, 0},
		      {4, 1, 0}};
	if (table(b, es, 6, &child, offs) || string(b, "element", &at))
		return -1;
	patch(b, children + 4, child);
	patch(b, offs[0], at);
	slot fs[1] = {{2, 0, SINGLE}};
	size_t fp, none;
	if (table(b, fs, 1, &fp, &none))
		return -1;
	patch(b, offs[3], fp);
	if (offset_vector(b, 0, &at))
		return -1;
	patch(b, offs[5], at);
	return 0;
}

static int flatbuffer(vdb_buf *b, const arrow_field *fields, size_t n)
{
	size_t msg, schema, vec, offs[4], soffs[2];
	if (vdb_buf_put_u32(b, 0)) /* the root offset, patched below */
		return -1;
	slot ms[3] = {{2, 0, V5}, {1, 0, HEADER_SCHEMA}, {4, 1, 0}};
	if (table(b, ms, 3, &msg, offs))
		return -1;
	patch(b, 0, msg);
	slot ss[2] = {{0, 0, 0}, {4, 1, 0}}; /* endianness: Little, the default */
	if (table(b, ss, 2, &schema, soffs))
		return -1;
	patch(b, offs[2], schema);
	if (offset_vector(b, (uint32_t)n, &vec))
		return -1;
	patch(b, soffs[1], vec);
	for (size_t i = 0; i < n; i++) {
		size_t f;
		if (field(b, fields[i].name, fields[i].nullable, fields[i].type, fields[i].list_size,
			  &f))
			return -1;
		patch(b, vec + 4 + 4 * i, f);
	}
	return pad(b, 8);
}

int arrow_schema_base64(vdb_buf *out, const arrow_field *fields, size_t n)
{
	static const char abc[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	vdb_buf fb = VDB_BUF_INIT, msg = VDB_BUF_INIT;
	int rc = -1;
	/* The IPC encapsulation: continuation marker, the metadata's length, the metadata. */
	if (flatbuffer(&fb, fields, n) || vdb_buf_put_u32(&msg, 0xffffffffu) ||
	    vdb_buf_put_u32(&msg, (uint32_t)fb.len) || vdb_buf_append(&msg, fb.data, fb.len))
		goto done;
	const uint8_t *p = (const uint8_t *)msg.data;
	for (size_t i = 0; i < msg.len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		size_t left = msg.len - i;
		if (left > 1)
			v |= (uint32_t)p[i + 1] << 8;
		if (left > 2)
			v |= p[i + 2];
		char q[4] = {abc[v >> 18 & 63], abc[v >> 12 & 63], left > 1 ? abc[v >> 6 & 63] : '=',
			     left > 2 ? abc[v & 63] : '='};
		if (vdb_buf_append(out, q, 4))
			goto done;
	}
	rc = 0;
done:
	vdb_buf_free(&fb);
	vdb_buf_free(&msg);
	return rc;
}
