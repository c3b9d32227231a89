/* NumPy .npy header reading and writing (format versions 1.0, 2.0 and 3.0).
 *
 * Layout: "\x93NUMPY", major and minor version bytes, the header length (uint16 LE for 1.x,
 * uint32 LE for 2.x and 3.x), then the header: an ASCII (3.x: UTF-8) Python dict literal
 * with the keys 'descr', 'fortran_order' and 'shape', padded with spaces and a newline so
 * that the data starts aligned. The data follows: rows*cols items, C or Fortran order.
 * The dict is parsed by a small literal reader, not evaluated. */
#include "npy.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "../util/error.h"

vdb_status npy_check_prefix(const unsigned char *p, size_t n, npy_info *info, unsigned *len_bytes,
			    vdb_error *err)
{
	if (n < NPY_PREFIX || memcmp(p, "\x93NUMPY", 6))
		return vdb_err(err, VDB_EDATA, "not a NumPy .npy file (no \\x93NUMPY magic)");
	info->major = p[6];
	info->minor = p[7];
	if (info->major < 1 || info->major > 3 || info->minor != 0)
		return vdb_err(err, VDB_EDATA, "unsupported .npy format version %u.%u (1.0-3.0 are)",
			       info->major, info->minor);
	*len_bytes = info->major == 1 ? 2 : 4;
	return VDB_OK;
}

typedef struct lit {
	const char *p, *end;
} lit;

static void ws(lit *l)
{
	while (l->p < l->end && (*l->p == ' ' || *l->p == '\t' || *l->p == '\n' || *l->p == '\r'))
		l->p++;
}

static int eat(lit *l, char c)
{
	ws(l);
	if (l->p < l->end && *l->p == c) {
		l->p++;
		return 1;
	}
	return 0;
}

/* A quoted Python string without escapes (all that numpy writes for these keys). */
static int str(lit *l, const char **s, size_t *n)
{
	ws(l);
	if (l->p >= l->end || (*l->p != '\'' && *l->p != '"'))
		return 0;
	char q = *l->p++;
	const char *b = l->p;
	while (l->p < l->end && *l->p != q) {
		if (*l->p == '\\')
			return 0;
		l->p++;
	}
	if (l->p >= l->end)
		return 0;
	*s = b;
	*n = (size_t)(l->p - b);
	l->p++;
	return 1;
}

static int word(lit *l, const char *w)
{
	ws(l);
	size_t n = strlen(w);
	if ((size_t)(l->end - l->p) >= n && !memcmp(l->p, w, n)) {
		l->p += n;
		return 1;
	}
	return 0;
}

/* Skips any other value (a nested list or tuple, a string, a word) for a useful message. */
static int skip_value(lit *l)
{
	ws(l);
	int depth = 0;
	while (l->p < l->end) {
		char c = *l->p;
		if (c == '\'' || c == '"') {
			const char *s;
			size_t n;
			if (!str(l, &s, &n))
				return 0;
			continue;
		}
		if (c == '[' || c == '(' || c == '{')
			depth++;
		else if (c == ']' || c == ')' || c == '}') {
			if (depth == 0)
				return 1;
			depth--;
		} else if (c == ',' && depth == 0)
			return 1;
		l->p++;
	}
	return depth == 0;
}

static vdb_status parse_descr(const char *s, size_t n, npy_info *info, vdb_error *err)
{
	if (n == 2 && s[0] == '|' && s[1] == 'O')
		return vdb_err(err, VDB_EDATA, ".npy holds Python objects (dtype 'O'); only float "
					       "arrays can be loaded (save with .astype('float32'))");
	/* Without a byte-order character ('f4') numpy reads the native order, as '=' says. */
	char order = n == 2 ? '=' : n ? s[0] : 0;
	const char *t = n == 2 ? s : s + 1;
	if (n < 2 || n > 3 || (order != '<' && order != '>' && order != '=' && order != '|'))
		return vdb_err(err, VDB_EDATA, "unsupported .npy dtype '%.*s'", (int)(n > 32 ? 32 : n), s);
	if (t[0] != 'f' || (t[1] != '2' && t[1] != '4' && t[1] != '8'))
		return vdb_err(err, VDB_EDATA,
			       "unsupported .npy dtype '%.*s' (expected float16, float32 or float64)",
			       (int)(n > 32 ? 32 : n), s);
	info->kind = 'f';
	info->itemsize = (unsigned)(t[1] - '0');
	/* '=' and no order are the native order of the reader (vecs.c is little-endian only). */
	info->big_endian = order == '>';
	return VDB_OK;
}

static vdb_status parse_shape(lit *l, npy_info *info, vdb_error *err)
{
	if (!eat(l, '('))
		return vdb_err(err, VDB_EDATA, ".npy header: 'shape' is not a tuple");
	uint64_t dims[8];
	size_t rank = 0;
	for (;;) {
		if (eat(l, ')'))
			break;
		ws(l);
		if (l->p >= l->end || *l->p < '0' || *l->p > '9')
			return vdb_err(err, VDB_EDATA, ".npy header: bad 'shape'");
		uint64_t v = 0;
		while (l->p < l->end && *l->p >= '0' && *l->p <= '9') {
			unsigned d = (unsigned)(*l->p++ - '0');
			if (v > (UINT64_MAX - d) / 10)
				return vdb_err(err, VDB_EDATA, ".npy header: 'shape' is too large");
			v = v * 10 + d;
		}
		eat(l, 'L'); /* Python 2 longs */
		if (rank < 8)
			dims[rank] = v;
		rank++;
		if (eat(l, ','))
			continue;
		if (eat(l, ')'))
			break;
		return vdb_err(err, VDB_EDATA, ".npy header: bad 'shape'");
	}
	if (rank != 2)
		return vdb_err(err, VDB_EDATA,
			       ".npy array has %zu dimension%s; expected 2 (rows, dim)%s", rank,
			       rank == 1 ? "" : "s",
			       rank == 1 ? ": reshape a single vector with v.reshape(1, -1)" : "");
	info->rows = dims[0];
	info->cols = dims[1];
	return VDB_OK;
}

vdb_status npy_parse_header(const char *text, size_t len, npy_info *info, vdb_error *err)
{
	lit l = {text, text + len};
	enum { DESCR = 1, FORTRAN = 2, SHAPE = 4 };
	int seen = 0;
	if (!eat(&l, '{'))
		return vdb_err(err, VDB_EDATA, ".npy header is not a dict");
	for (;;) {
		if (eat(&l, '}'))
			break;
		const char *k, *v;
		size_t kn, vn;
		if (!str(&l, &k, &kn) || !eat(&l, ':'))
			return vdb_err(err, VDB_EDATA, ".npy header: bad dict");
		vdb_status st;
		if (kn == 5 && !memcmp(k, "descr", 5)) {
			ws(&l);
			if (l.p < l.end && (*l.p == '[' || *l.p == '('))
				return vdb_err(err, VDB_EDATA, ".npy holds a structured array (a "
							       "record dtype); only plain float "
							       "arrays can be loaded");
			if (!str(&l, &v, &vn))
				return vdb_err(err, VDB_EDATA, ".npy header: bad 'descr'");
			if ((st = parse_descr(v, vn, info, err)))
				return st;
			seen |= DESCR;
		} else if (kn == 13 && !memcmp(k, "fortran_order", 13)) {
			if (word(&l, "True"))
				info->fortran_order = 1;
			else if (word(&l, "False"))
				info->fortran_order = 0;
			else
				return vdb_err(err, VDB_EDATA, ".npy header: bad 'fortran_order'");
			seen |= FORTRAN;
		} else if (kn == 5 && !memcmp(k, "shape", 5)) {
			if ((st = parse_shape(&l, info, err)))
				return st;
			seen |= SHAPE;
		} else if (!skip_value(&l)) {
			return vdb_err(err, VDB_EDATA, ".npy header: bad dict");
		}
		if (eat(&l, ','))
			continue;
		if (eat(&l, '}'))
			break;
		return vdb_err(err, VDB_EDATA, ".npy header: bad dict");
	}
	if (seen != (DESCR | FORTRAN | SHAPE))
		return vdb_err(err, VDB_EDATA, ".npy header lacks '%s'",
			       !(seen & DESCR) ? "descr" : !(seen & FORTRAN) ? "fortran_order" : "shape");
	return VDB_OK;
}

int npy_write_header(vdb_buf *out, uint64_t rows, uint64_t cols)
{
	char dict[160];
	int n = snprintf(dict, sizeof dict,
			 "{'descr': '<f4', 'fortran_order': False, 'shape': (%" PRIu64 ", %" PRIu64
			 "), }",
			 rows, cols);
	/* Version 1.0 (a uint16 length) always suffices for this short dict; numpy pads with
	 * spaces and ends with a newline so that the data starts at a multiple of 64 bytes. */
	size_t total = NPY_PREFIX + 2 + (size_t)n + 1;
	size_t pad = (64 - total % 64) % 64;
	size_t hlen = (size_t)n + pad + 1;
	if (vdb_buf_append(out, "\x93NUMPY\x01\x00", 8) || vdb_buf_putc(out, (char)(hlen & 0xff)) ||
	    vdb_buf_putc(out, (char)(hlen >> 8)) || vdb_buf_append(out, dict, (size_t)n) ||
	    vdb_buf_reserve(out, pad + 1))
		return -1;
	memset(out->data + out->len, ' ', pad);
	out->len += pad;
	return vdb_buf_putc(out, '\n');
}
