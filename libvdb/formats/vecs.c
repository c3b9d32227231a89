/* Vector files: NumPy .npy and TEXMEX .fvecs/.bvecs, read as rows of float32 and written
 * from them.
 *
 * Reading is chunked (about 1 MiB of rows per read) and converts in place: little-endian
 * float32 rows (.npy '<f4', .fvecs) are handed out straight from the chunk, others are
 * converted into one row of scratch. Every value is checked to be finite (and, from
 * float64, to fit float32), with the row and column in the message, so a bad file stops
 * exactly at its first bad row. Fortran-order .npy data is column-major: it is read whole,
 * then gathered row by row. */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../util/buf.h"
#include "../util/error.h"
#include "../util/io.h"
#include "../util/stream.h"
#include "npy.h"
#include "vdb.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "vector files are read and written assuming a little-endian host"
#endif

#define CHUNK_BYTES (1u << 20)

struct vdb_vec_reader {
	vdb_istream *in;
	vdb_vec_format fmt;
	uint32_t dim;
	npy_info npy;
	int64_t rows;      /* declared (npy) or -1 */
	uint64_t row;      /* index of the next row */
	size_t rowbytes;   /* bytes of one row in the file */
	unsigned char *chunk;
	size_t nchunk, pos; /* whole rows in the chunk, next one */
	size_t tail;        /* bytes of an incomplete last row at the end of the input */
	int at_end;
	vdb_status late;     /* an input error found after the rows in the chunk */
	vdb_error late_err;
	float *scratch;
	unsigned char *whole; /* Fortran order: all the data */
	/* vdb_vec_reader_block: the mapped window of a file, or the rows read into block */
	void *map;
	size_t maplen;
	float *block;
	size_t blockrows;
};

static uint32_t le32(const unsigned char *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static vdb_status not_finite(vdb_error *err, uint64_t row, size_t col, double v)
{
	return vdb_err(err, VDB_EDATA, "row %" PRIu64 ", column %zu: %s is not a valid vector value",
		       row, col, isnan(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity");
}

static float half_to_float(uint16_t h)
{
	uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
	if (exp == 0x1f)
		bits = sign | 0x7f800000u | (man << 13);
	else if (exp)
		bits = sign | ((exp + 112) << 23) | (man << 13);
	else if (!man)
		bits = sign;
	else { /* subnormal half: normalise */
		int e = -1;
		do {
			man <<= 1;
			e++;
		} while (!(man & 0x400));
		bits = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3ff) << 13);
	}
	float f;
	memcpy(&f, &bits, 4);
	return f;
}

/* One .npy item at p to float32, checked. */
static vdb_status npy_item(const vdb_vec_reader *r, const unsigned char *p, uint64_t row,
			   size_t col, float *out, vdb_error *err)
{
	unsigned char b[8];
	unsigned n = r->npy.itemsize;
	if (r->npy.big_endian)
		for (unsigned i = 0; i < n; i++)
			b[i] = p[n - 1 - i];
	else
		memcpy(b, p, n);
	if (n == 8) {
		double d;
		memcpy(&d, b, 8);
		if (!isfinite(d))
			return not_finite(err, row, col, d);
		float f = (float)d;
		if (isinf(f))
			return vdb_err(err, VDB_EDATA,
				       "row %" PRIu64 ", column %zu: %.17g is outside the float32 range",
				       row, col, d);
		*out = f;
		return VDB_OK;
	}
	float f;
	if (n == 4) {
		memcpy(&f, b, 4);
	} else {
		uint16_t h;
		memcpy(&h, b, 2);
		f = half_to_float(h);
	}
	if (!isfinite(f))
		return not_finite(err, row, col, f);
	*out = f;
	return VDB_OK;
}

static vdb_status check_finite(const float *v, uint32_t dim, uint64_t row, vdb_error *err)
{
	/* One branch-free pass over the bits (all exponent bits set: Inf or NaN), which the
	 * compiler vectorises; the column is looked for only when something is wrong. */
	uint32_t bad = 0;
	for (uint32_t i = 0; i < dim; i++) {
		uint32_t b;
		memcpy(&b, &v[i], 4);
		bad |= (b & 0x7f800000u) == 0x7f800000u;
	}
	for (uint32_t i = 0; bad && i < dim; i++)
		if (!isfinite(v[i]))
			return not_finite(err, row, i, v[i]);
	return VDB_OK;
}

static vdb_status check_file_size(vdb_vec_reader *r, vdb_error *err);
static vdb_status read_fortran_whole(vdb_vec_reader *r, vdb_error *err);

static vdb_status read_npy_header(vdb_vec_reader *r, vdb_error *err)
{
	unsigned char pre[NPY_PREFIX + 4];
	size_t got;
	unsigned lb;
	vdb_status st = vdb_istream_read_full(r->in, pre, NPY_PREFIX, &got, err);
	if (st || (st = npy_check_prefix(pre, got, &r->npy, &lb, err)) ||
	    (st = vdb_istream_read_full(r->in, pre + NPY_PREFIX, lb, &got, err)))
		return st;
	if (got < lb)
		return vdb_err(err, VDB_EDATA, ".npy header is truncated");
	size_t hlen = lb == 2 ? (size_t)pre[8] | (size_t)pre[9] << 8 : le32(pre + 8);
	if (hlen > (64u << 20))
		return vdb_err(err, VDB_EDATA, ".npy header length %zu is implausible", hlen);
	char *h = malloc(hlen ? hlen : 1);
	if (!h)
		return vdb_err_nomem(err);
	st = vdb_istream_read_full(r->in, h, hlen, &got, err);
	if (!st && got < hlen)
		st = vdb_err(err, VDB_EDATA, ".npy header is truncated");
	if (!st)
		st = npy_parse_header(h, hlen, &r->npy, err);
	free(h);
	if (st)
		return st;
	if (r->npy.cols != r->dim)
		return vdb_err(err, VDB_EDATA,
			       ".npy array has %" PRIu64 " columns; the collection's dimension is %" PRIu32,
			       r->npy.cols, r->dim);
	if (r->npy.rows > (uint64_t)INT64_MAX / r->dim / 8)
		return vdb_err(err, VDB_EDATA, ".npy shape (%" PRIu64 ", %" PRIu64 ") is implausible",
			       r->npy.rows, r->npy.cols);
	r->rows = (int64_t)r->npy.rows;
	r->rowbytes = (size_t)r->dim * r->npy.itemsize;
	if ((st = check_file_size(r, err)))
		return st;
	if (!r->npy.fortran_order || r->rows == 0)
		return VDB_OK;
	return read_fortran_whole(r, err);
}

/* The first .fvecs/.bvecs row (in whole rows from off) whose dimension header is not the
 * collection's, or a trailing part of a row that has 4 bytes and says another dimension;
 * UINT64_MAX when there is none (or the file cannot be mapped). */
static uint64_t first_bad_row_header(const vdb_vec_reader *r, int fd, uint64_t off, uint64_t size)
{
	if (size > SIZE_MAX)
		return UINT64_MAX;
	unsigned char *m = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		return UINT64_MAX;
	uint64_t row = 0, found = UINT64_MAX;
	for (uint64_t at = off; at + 4 <= size; at += r->rowbytes, row++)
		if (le32(m + at) != r->dim) {
			found = row;
			break;
		}
	munmap(m, (size_t)size);
	return found;
}

static vdb_status bad_dimension(const vdb_vec_reader *r, uint32_t d, vdb_error *err);

/* A plain regular file's size is known before its first row: a file that cannot hold what
 * its header declares (or, .fvecs/.bvecs, not a whole number of rows) is refused whole,
 * before anything from it is committed and before any header claim is allocated. Streams
 * (pipes, zstd) are checked as they are read: whole rows before the bad one count. */
static vdb_status check_file_size(vdb_vec_reader *r, vdb_error *err)
{
	uint64_t off, size;
	int fd = vdb_istream_file(r->in, &off, &size);
	if (fd < 0 || size < off)
		return VDB_OK;
	uint64_t have = size - off, whole = have / r->rowbytes, part = have % r->rowbytes;
	if (r->fmt == VDB_VEC_NPY) {
		uint64_t rows = (uint64_t)r->rows;
		if (whole < rows)
			return vdb_err(err, VDB_EDATA,
				       "truncated: the header declares %" PRIu64 " rows of %zu bytes, "
				       "the file holds %" PRIu64 " and %" PRIu64 " bytes",
				       rows, r->rowbytes, whole, part);
		if (have > rows * r->rowbytes)
			return vdb_err(err, VDB_EDATA,
				       "%" PRIu64 " bytes follow the %" PRIu64 " rows the .npy header "
				       "declares", have - rows * r->rowbytes, rows);
		return VDB_OK;
	}
	if (!part)
		return VDB_OK;
	/* Not a whole number of rows: either the file is cut, or a row header says another
	 * dimension (0 too). Which one is found by walking the row headers -- only in this
	 * error case -- so that the message names the first bad row. */
	uint64_t row = first_bad_row_header(r, fd, off, size);
	if (row != UINT64_MAX) {
		unsigned char d[4] = {0};
		vdb_pread_full(fd, d, 4, (off_t)(off + row * r->rowbytes));
		vdb_vec_reader at = *r;
		at.row = row;
		return bad_dimension(&at, le32(d), err);
	}
	return vdb_err(err, VDB_EDATA,
		       "truncated: the file holds %" PRIu64 " row%s of %zu bytes (dimension %" PRIu32
		       ") and %" PRIu64 " bytes",
		       whole, whole == 1 ? "" : "s", r->rowbytes, r->dim, part);
}

/* Column-major: the first row needs a value from every column, i.e. all the data. The
 * buffer grows with what arrives (from 64 MiB, doubling), so a header that claims more
 * than the input holds costs no more memory than the input: a short stream is reported as
 * truncated, whatever the claim. */
static vdb_status read_fortran_whole(vdb_vec_reader *r, vdb_error *err)
{
	uint64_t total = r->npy.rows * r->rowbytes;
	if (total > SIZE_MAX / 2)
		return vdb_err(err, VDB_EDATA, ".npy shape (%" PRIu64 ", %" PRIu64 ") is implausible",
			       r->npy.rows, r->npy.cols);
	size_t cap = total < (64u << 20) ? (size_t)total : (64u << 20), have = 0;
	while (have < total) {
		if (have == cap || !r->whole) {
			size_t ncap = !r->whole ? cap : total - cap < cap ? (size_t)total : cap * 2;
			unsigned char *p = realloc(r->whole, ncap);
			if (!p)
				return vdb_err(err, VDB_ENOMEM,
					       "out of memory reading a Fortran-order .npy of %" PRIu64
					       " bytes whole (save it in C order: "
					       "numpy.ascontiguousarray)", total);
			r->whole = p;
			cap = ncap;
		}
		size_t got;
		vdb_status st = vdb_istream_read(r->in, r->whole + have, cap - have, &got, err);
		if (st)
			return st;
		if (!got)
			break;
		have += got;
	}
	if (have < total)
		return vdb_err(err, VDB_EDATA,
			       ".npy data is truncated: %zu of %" PRIu64 " bytes (a Fortran-order array "
			       "is checked whole before its first row)", have, total);
	return VDB_OK;
}

/* Whole rows of about CHUNK_BYTES (at least one row). */
static size_t chunk_bytes(const vdb_vec_reader *r)
{
	return r->rowbytes > CHUNK_BYTES ? r->rowbytes : CHUNK_BYTES / r->rowbytes * r->rowbytes;
}

vdb_status vdb_vec_reader_open(vdb_istream *in, vdb_vec_format f, uint32_t dim,
			       vdb_vec_reader **out, vdb_error *err)
{
	if (f != VDB_VEC_NPY && f != VDB_VEC_FVECS && f != VDB_VEC_BVECS)
		return vdb_err(err, VDB_EINVAL, "unknown vector file format");
	vdb_vec_reader *r = calloc(1, sizeof *r);
	if (!r)
		return vdb_err_nomem(err);
	r->in = in;
	r->fmt = f;
	r->dim = dim;
	r->rows = -1;
	vdb_status st = VDB_OK;
	if (f == VDB_VEC_NPY) {
		st = read_npy_header(r, err);
	} else {
		r->rowbytes = 4 + (size_t)dim * (f == VDB_VEC_FVECS ? 4 : 1);
		st = check_file_size(r, err);
	}
	if (!st && !(r->scratch = malloc((size_t)dim * sizeof(float))))
		st = vdb_err_nomem(err);
	if (!st && !r->whole && !(r->chunk = malloc(chunk_bytes(r))))
		st = vdb_err_nomem(err);
	if (st) {
		vdb_vec_reader_close(r);
		return st;
	}
	*out = r;
	return VDB_OK;
}

int64_t vdb_vec_reader_rows(const vdb_vec_reader *r)
{
	return r->rows;
}

/* After the last row a .npy header declares: nothing may follow. */
static vdb_status check_end(vdb_vec_reader *r, vdb_error *err)
{
	unsigned char c;
	size_t got;
	vdb_status st = vdb_istream_read_full(r->in, &c, 1, &got, err);
	if (!st && got)
		st = vdb_err(err, VDB_EDATA, "data follows the %" PRId64 " rows the .npy header declares",
			     r->rows);
	return st;
}

/* A .fvecs/.bvecs row (the next one, r->row) whose dimension header is not the
 * collection's: said as it is, even when the file is too short for a row of that size. */
static vdb_status bad_dimension(const vdb_vec_reader *r, uint32_t d, vdb_error *err)
{
	if (d == 0)
		return vdb_err(err, VDB_EDATA, "row %" PRIu64 ": dimension 0 (the collection's is %" PRIu32
			       ")", r->row, r->dim);
	return vdb_err(err, VDB_EDATA, "row %" PRIu64 ": dimension is %" PRId32
		       "; the collection's is %" PRIu32, r->row, (int32_t)d, r->dim);
}

/* Reads the next chunk of whole rows; at the end reports truncation, missing or extra rows.
 * Reads return what is there: as soon as one whole row has arrived it is handed out, so a
 * slow producer's rows are not held back until a chunk fills. */
static vdb_status refill(vdb_vec_reader *r, int *has, vdb_error *err)
{
	*has = 0;
	/* The start of an incomplete row, after the rows handed out, moves to the front. */
	size_t have = r->tail;
	if (have && r->nchunk)
		memmove(r->chunk, r->chunk + r->nchunk * r->rowbytes, have);
	r->nchunk = r->pos = 0;
	if (r->at_end) {
		if (r->late) {
			if (err)
				*err = r->late_err;
			return r->late;
		}
		if (r->tail && r->fmt != VDB_VEC_NPY && r->tail >= 4 && le32(r->chunk) != r->dim)
			return bad_dimension(r, le32(r->chunk), err);
		if (r->tail)
			return vdb_err(err, VDB_EDATA,
				       "row %" PRIu64 " is truncated: the file ends after %zu of its %zu "
				       "bytes", r->row, r->tail, r->rowbytes);
		if (r->rows >= 0 && r->row < (uint64_t)r->rows)
			return vdb_err(err, VDB_EDATA,
				       "the file ends at row %" PRIu64 "; the .npy header declares %" PRId64
				       " rows", r->row, r->rows);
		return VDB_OK;
	}
	size_t want = chunk_bytes(r);
	if (r->rows >= 0) {
		uint64_t left = (uint64_t)r->rows - r->row;
		if (left * r->rowbytes < want)
			want = (size_t)(left * r->rowbytes);
	}
	if (want == 0) { /* all declared rows read: nothing may follow */
		r->at_end = 1;
		return check_end(r, err);
	}
	while (have < r->rowbytes) {
		size_t got;
		vdb_status st = vdb_istream_read(r->in, r->chunk + have, want - have, &got,
						 &r->late_err);
		if (st) {
			/* The whole rows before a read error (truncated compressed data) still
			 * count: the error is reported when they have been handed out. */
			r->late = st;
			r->at_end = 1;
			break;
		}
		if (!got) {
			r->at_end = 1;
			break;
		}
		have += got;
	}
	r->nchunk = have / r->rowbytes;
	r->tail = r->late ? 0 : have % r->rowbytes;
	if (!r->nchunk)
		return refill(r, has, err);
	*has = 1;
	return VDB_OK;
}

int vdb_vec_reader_ready(const vdb_vec_reader *r)
{
	return r->whole || r->pos < r->nchunk || r->at_end;
}

vdb_status vdb_vec_reader_next(vdb_vec_reader *r, const float **vec, int *has, vdb_error *err)
{
	vdb_status st;
	if (r->whole) {
		if (r->row == (uint64_t)r->rows) {
			*has = 0;
			return check_end(r, err);
		}
		size_t isz = r->npy.itemsize;
		for (uint32_t c = 0; c < r->dim; c++)
			if ((st = npy_item(r, r->whole + ((uint64_t)c * (uint64_t)r->rows + r->row) * isz,
					   r->row, c, &r->scratch[c], err)))
				return st;
		r->row++;
		*vec = r->scratch;
		*has = 1;
		return VDB_OK;
	}
	if (r->pos == r->nchunk) {
		if ((st = refill(r, has, err)) || !*has)
			return st;
	}
	const unsigned char *p = r->chunk + r->pos * r->rowbytes;
	uint64_t row = r->row;
	const float *v = r->scratch;
	if (r->fmt == VDB_VEC_NPY) {
		if (r->npy.itemsize == 4 && !r->npy.big_endian) {
			v = (const float *)(const void *)p;
			if ((st = check_finite(v, r->dim, row, err)))
				return st;
		} else {
			for (uint32_t c = 0; c < r->dim; c++)
				if ((st = npy_item(r, p + (size_t)c * r->npy.itemsize, row, c,
						   &r->scratch[c], err)))
					return st;
		}
	} else {
		uint32_t d = le32(p);
		if (d != r->dim)
			return bad_dimension(r, d, err);
		if (r->fmt == VDB_VEC_FVECS) {
			v = (const float *)(const void *)(p + 4);
			if ((st = check_finite(v, r->dim, row, err)))
				return st;
		} else {
			for (uint32_t c = 0; c < r->dim; c++)
				r->scratch[c] = p[4 + c];
		}
	}
	r->pos++;
	r->row++;
	*vec = v;
	*has = 1;
	return VDB_OK;
}

/* Up to max rows into dst, as vdb_vec_reader_next gives them; fewer at the end, or when a
 * slow producer has nothing more ready once a row is in. */
static vdb_status read_rows(vdb_vec_reader *r, float *dst, size_t max, size_t *got,
			    vdb_error *err)
{
	size_t n = 0, vbytes = (size_t)r->dim * sizeof(float);
	/* .npy '<f4' in C order: the file's rows are the stored rows, copied a chunk at a time
	 * and checked while they are still in the cache. */
	int plain = r->fmt == VDB_VEC_NPY && !r->whole && r->npy.itemsize == 4 &&
		    !r->npy.big_endian;
	vdb_status st = VDB_OK;
	while (n < max) {
		if (plain && r->pos == r->nchunk) {
			/* Hand over what arrived before waiting on a slow producer. */
			if (n && !r->at_end && !vdb_istream_ready(r->in))
				break;
			int has;
			if ((st = refill(r, &has, err)) || !has)
				break;
		}
		if (!plain) {
			const float *v;
			int has;
			if (n && !vdb_vec_reader_ready(r) && !vdb_istream_ready(r->in))
				break;
			if ((st = vdb_vec_reader_next(r, &v, &has, err)) || !has)
				break;
			memcpy(dst + n * r->dim, v, vbytes);
			n++;
			continue;
		}
		size_t k = r->nchunk - r->pos;
		k = k < max - n ? k : max - n;
		float *d = dst + n * r->dim;
		memcpy(d, r->chunk + r->pos * r->rowbytes, k * vbytes);
		size_t i = 0;
		while (i < k && !(st = check_finite(d + i * r->dim, r->dim, r->row, err))) {
			i++;
			r->row++;
		}
		r->pos += i;
		n += i;
		if (st)
			break;
	}
	*got = n;
	return st;
}

static void unmap(vdb_vec_reader *r)
{
	if (r->map)
		munmap(r->map, r->maplen);
	r->map = NULL;
}

/* The next rows of a plain regular file in place, when they are float32 there (.npy '<f4'
 * in C order, .fvecs) and nothing is buffered: checked as read_rows checks them, without a
 * copy. 0 with *got = 0 when this does not apply (the caller reads instead). Only whole
 * rows the file holds are mapped: a short file is left to the reading path, which reports
 * the truncation after the rows before it. */
static vdb_status map_rows(vdb_vec_reader *r, size_t max, const float **rows, size_t *got,
			   vdb_error *err)
{
	uint64_t off, size;
	int fd;
	*got = 0;
	int f4 = r->fmt == VDB_VEC_FVECS ||
		 (r->fmt == VDB_VEC_NPY && r->npy.itemsize == 4 && !r->npy.big_endian);
	if (!f4 || r->whole || r->pos < r->nchunk || r->tail || r->at_end ||
	    (fd = vdb_istream_file(r->in, &off, &size)) < 0 || size < off)
		return VDB_OK;
	uint64_t k = (size - off) / r->rowbytes;
	if (r->rows >= 0 && (uint64_t)r->rows - r->row < k)
		k = (uint64_t)r->rows - r->row;
	if (k > max)
		k = max;
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE), delta = off % page;
	if (!k || delta + k * r->rowbytes > SIZE_MAX)
		return VDB_OK;
	int flags = MAP_SHARED;
#ifdef MAP_POPULATE
	flags |= MAP_POPULATE; /* one call instead of a fault per few pages */
#endif
	size_t len = (size_t)(delta + k * r->rowbytes);
	void *m = mmap(NULL, len, PROT_READ, flags, fd, (off_t)(off - delta));
	if (m == MAP_FAILED)
		return VDB_OK;
	const unsigned char *p = (const unsigned char *)m + delta;
	size_t skip = r->fmt == VDB_VEC_FVECS ? 4 : 0;
	if ((uintptr_t)(p + skip) % sizeof(float)) { /* odd .npy header length: read instead */
		munmap(m, len);
		return VDB_OK;
	}
	r->map = m;
	r->maplen = len;
	vdb_status st = VDB_OK;
	size_t i = 0;
	for (; i < k; i++, p += r->rowbytes) {
		if (skip && le32(p) != r->dim) {
			st = bad_dimension(r, le32(p), err);
			break;
		}
		if ((st = check_finite((const float *)(const void *)(p + skip), r->dim, r->row, err)))
			break;
		r->row++;
	}
	*rows = (const float *)(const void *)((const unsigned char *)m + delta + skip);
	*got = i;
	vdb_status sk = vdb_istream_skip(r->in, (uint64_t)i * r->rowbytes, err);
	return st ? st : sk;
}

int vdb_vec_reader_maps(vdb_vec_reader *r)
{
	uint64_t off, size;
	int f4 = r->fmt == VDB_VEC_FVECS ||
		 (r->fmt == VDB_VEC_NPY && r->npy.itemsize == 4 && !r->npy.big_endian);
	return f4 && !r->whole && vdb_istream_file(r->in, &off, &size) >= 0;
}

vdb_status vdb_vec_reader_block(vdb_vec_reader *r, size_t max, const float **rows,
				size_t *stride, size_t *got, vdb_error *err)
{
	unmap(r);
	*got = 0;
	*stride = r->fmt == VDB_VEC_FVECS ? (size_t)r->dim + 1 : r->dim;
	if (!max)
		return VDB_OK;
	vdb_status st = map_rows(r, max, rows, got, err);
	if (st || *got)
		return st;
	*stride = r->dim;
	if (r->blockrows < max) {
		float *b = max <= SIZE_MAX / sizeof(float) / r->dim
				   ? realloc(r->block, max * r->dim * sizeof(float))
				   : NULL;
		if (!b)
			return vdb_err_nomem(err);
		r->block = b;
		r->blockrows = max;
	}
	*rows = r->block;
	return read_rows(r, r->block, max, got, err);
}

void vdb_vec_reader_close(vdb_vec_reader *r)
{
	if (!r)
		return;
	unmap(r);
	free(r->block);
	free(r->chunk);
	free(r->whole);
	free(r->scratch);
	free(r);
}

/* ---- writing ---- */

struct vdb_vec_writer {
	vdb_ostream *out;
	vdb_vec_format fmt;
	uint32_t dim;
	uint64_t rows, written;
};

vdb_status vdb_vec_writer_open(vdb_ostream *out, vdb_vec_format f, uint32_t dim, uint64_t rows,
			       vdb_vec_writer **w, vdb_error *err)
{
	if (f != VDB_VEC_NPY && f != VDB_VEC_FVECS)
		return vdb_err(err, VDB_EINVAL, "vectors can be written as .npy or .fvecs only");
	vdb_vec_writer *v = calloc(1, sizeof *v);
	if (!v)
		return vdb_err_nomem(err);
	*v = (vdb_vec_writer){out, f, dim, rows, 0};
	if (f == VDB_VEC_NPY) {
		vdb_buf h = VDB_BUF_INIT;
		vdb_status st = npy_write_header(&h, rows, dim) ? vdb_err_nomem(err)
							       : vdb_ostream_write(out, h.data, h.len, err);
		vdb_buf_free(&h);
		if (st) {
			free(v);
			return st;
		}
	}
	*w = v;
	return VDB_OK;
}

vdb_status vdb_vec_writer_put(vdb_vec_writer *w, const float *vec, vdb_error *err)
{
	vdb_status st;
	if (w->fmt == VDB_VEC_FVECS) {
		int32_t d = (int32_t)w->dim;
		if ((st = vdb_ostream_write(w->out, &d, 4, err)))
			return st;
	} else if (w->written == w->rows) {
		return vdb_err(err, VDB_EINTERNAL, "more rows than the %" PRIu64 " declared", w->rows);
	}
	w->written++;
	return vdb_ostream_write(w->out, vec, (size_t)w->dim * sizeof(float), err);
}

vdb_status vdb_vec_writer_finish(vdb_vec_writer *w, vdb_error *err)
{
	if (w->fmt == VDB_VEC_NPY && w->written != w->rows)
		return vdb_err(err, VDB_EINTERNAL, "wrote %" PRIu64 " rows, declared %" PRIu64,
			       w->written, w->rows);
	return VDB_OK;
}

void vdb_vec_writer_close(vdb_vec_writer *w)
{
	free(w);
}
