/* Payload indexes: building the sorted (key, row) list of one field while a segment is
 * written, checking it when the segment is opened, and key-range lookups (see pindex.h). */
#include "pindex.h"

#include <stdlib.h>
#include <string.h>

#include "../formats/json.h"
#include "../formats/payload.h"
#include "../util/bytes.h"
#include "../util/error.h"

#define HEAD 16u

uint64_t vdb_pindex_string_key(const char *s, size_t len)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ull;
	}
	return h;
}

uint64_t vdb_pindex_number_key(double d)
{
	if (d == 0)
		d = 0; /* -0 equals 0 */
	uint64_t b;
	memcpy(&b, &d, sizeof b);
	return b >> 63 ? ~b : b | (1ull << 63);
}

static int put_entry(vdb_pindex_builder *b, uint64_t key)
{
	uint64_t e[2] = {key, b->row};
	if (vdb_buf_append(&b->entries, e, sizeof e)) {
		b->failed = 1;
		return -1;
	}
	return 0;
}

/* One scalar value at the field's path (its JSON text). */
static void on_value(void *ctx, const char *v, size_t n)
{
	vdb_pindex_builder *b = ctx;
	if (b->failed)
		return;
	if (b->field->type == VDB_FIELD_KEYWORD) {
		if (v[0] != '"' || n < 2)
			return;
		if (!memchr(v, '\\', n)) {
			put_entry(b, vdb_pindex_string_key(v + 1, n - 2));
			return;
		}
		vdb_buf s = VDB_BUF_INIT;
		vj_reader r;
		vj_init(&r, v, n);
		if (vj_string(&r, &s))
			b->failed = 1;
		else
			put_entry(b, vdb_pindex_string_key(s.data, s.len));
		vdb_buf_free(&s);
		return;
	}
	double d;
	if ((v[0] == '-' || (v[0] >= '0' && v[0] <= '9')) && vdb_json_number(v, n, &d) == 0)
		put_entry(b, vdb_pindex_number_key(d));
}

int vdb_pindex_add(vdb_pindex_builder *b, uint64_t row, const char *payload, size_t len,
		   vdb_error *err)
{
	if (!payload || !len)
		return 0;
	b->row = row;
	const char *path = b->field->path;
	if (vdb_payload_values(payload, len, path, strlen(path), on_value, b) < 0) {
		vdb_err(err, VDB_ECORRUPT, "damaged payload in row %llu", (unsigned long long)row);
		return -1;
	}
	if (b->failed) {
		vdb_err_nomem(err);
		return -1;
	}
	return 0;
}

static int entry_cmp(const void *a, const void *b)
{
	const uint64_t *x = a, *y = b;
	if (x[0] != y[0])
		return x[0] < y[0] ? -1 : 1;
	return x[1] < y[1] ? -1 : x[1] > y[1];
}

int vdb_pindex_finish(vdb_pindex_builder *b, vdb_buf *out, vdb_error *err)
{
	size_t n = b->entries.len / 16, plen = strlen(b->field->path);
	if (n) /* no row has the field: entries.data is NULL, which qsort must not get */
		qsort(b->entries.data, n, 16, entry_cmp);
	static const char zeros[8];
	unsigned char h[HEAD];
	vdb_put32(h, (uint32_t)b->field->type);
	vdb_put32(h + 4, (uint32_t)plen);
	vdb_put64(h + 8, n);
	out->len = 0;
	if (vdb_buf_append(out, h, HEAD) || vdb_buf_append(out, b->field->path, plen) ||
	    vdb_buf_append(out, zeros, (8 - plen % 8) % 8) || vdb_buf_reserve(out, n * 16))
		return vdb_err_nomem(err), -1;
	const uint64_t *e = (const uint64_t *)b->entries.data;
	for (size_t i = 0; i < 2 * n; i++) {
		unsigned char w[8];
		vdb_put64(w, e[i]);
		vdb_buf_append(out, w, 8); /* reserved above */
	}
	return 0;
}

void vdb_pindex_builder_free(vdb_pindex_builder *b)
{
	vdb_buf_free(&b->entries);
}

vdb_status vdb_pindex_open(const unsigned char *head, const unsigned char *sec, uint64_t len,
			   vdb_pindex *p, const char *file, vdb_error *err)
{
	if (len < HEAD)
		goto bad;
	uint32_t type = vdb_le32(head), plen = vdb_le32(head + 4);
	uint64_t n = vdb_le64(head + 8);
	uint64_t start = HEAD + plen + (8 - plen % 8) % 8;
	if (type < VDB_FIELD_KEYWORD || type > VDB_FIELD_FLOAT || plen == 0 ||
	    plen >= VDB_FIELD_PATH_MAX || start > len || n != (len - start) / 16 ||
	    (len - start) % 16)
		goto bad;
	*p = (vdb_pindex){(vdb_field_type)type, (const char *)sec + HEAD, plen, sec + start, n};
	return VDB_OK;
bad:
	return vdb_err(err, VDB_ECORRUPT, "%s: damaged payload index", file);
}

/* The first entry whose key is >= key. */
static uint64_t lower_bound(const vdb_pindex *p, uint64_t key)
{
	uint64_t lo = 0, hi = p->n;
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		if (vdb_le64(p->entries + mid * 16) < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int vdb_pindex_range(const vdb_pindex *p, uint64_t lo, uint64_t hi, uint64_t rows,
		     uint64_t *bits)
{
	if (lo > hi)
		return 0;
	for (uint64_t i = lower_bound(p, lo); i < p->n; i++) {
		const unsigned char *e = p->entries + i * 16;
		if (vdb_le64(e) > hi)
			break;
		uint64_t row = vdb_le64(e + 8);
		if (row >= rows)
			return -1;
		bits[row >> 6] |= 1ull << (row & 63);
	}
	return 0;
}
