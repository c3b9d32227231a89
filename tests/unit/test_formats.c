/* Unit tests of the migration formats: .npy headers, vector readers and writers, zstd
 * streams, CSV reading and writing, and the one-per-line id and payload forms. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "formats/npy.h"
#include "vdb_admin.h"

/* An input stream over a temporary file holding data[0..n). */
static FILE *tmp_files[16];
static int ntmp;

static vdb_istream *stream_of(const void *data, size_t n)
{
	FILE *f = tmpfile();
	cr_assert(f);
	cr_assert_eq(fwrite(data, 1, n, f), n);
	fflush(f);
	rewind(f);
	cr_assert(ntmp < 16);
	tmp_files[ntmp++] = f;
	vdb_istream *s;
	vdb_error err;
	cr_assert_eq(vdb_istream_open(fileno(f), NULL, &s, &err), VDB_OK, "%s", err.message);
	return s;
}

/* A stream over a pipe holding data (small enough for the pipe's buffer), its writing end
 * closed: a stream whose size is not known in advance. */
static vdb_istream *pipe_of(const void *data, size_t n)
{
	int fds[2];
	cr_assert_eq(pipe(fds), 0);
	cr_assert_eq(write(fds[1], data, n), (ssize_t)n);
	close(fds[1]);
	vdb_istream *s;
	vdb_error err;
	cr_assert_eq(vdb_istream_open(fds[0], NULL, &s, &err), VDB_OK, "%s", err.message);
	return s; /* fds[0] is left open for the test's lifetime */
}

static void close_tmp(void)
{
	while (ntmp)
		fclose(tmp_files[--ntmp]);
}

TestSuite(formats, .fini = close_tmp);

static vdb_status header(const char *text, npy_info *info, vdb_error *err)
{
	memset(info, 0, sizeof *info);
	return npy_parse_header(text, strlen(text), info, err);
}

Test(formats, npy_headers_accepted)
{
	npy_info i;
	vdb_error err;
	cr_assert_eq(header("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 128), }   \n",
			    &i, &err),
		     VDB_OK, "%s", err.message);
	cr_assert(i.itemsize == 4 && !i.big_endian && !i.fortran_order && i.rows == 3 &&
		  i.cols == 128);
	cr_assert_eq(header("{\"shape\":(0,7),\"fortran_order\":True,\"descr\":\">f8\"}", &i, &err),
		     VDB_OK, "%s", err.message);
	cr_assert(i.itemsize == 8 && i.big_endian && i.fortran_order && i.rows == 0 && i.cols == 7);
	cr_assert_eq(header("{'descr': '<f2', 'fortran_order': False, 'shape': (2L, 3L), "
			    "'extra': [1, (2, 'x')]}",
			    &i, &err),
		     VDB_OK, "%s", err.message);
	cr_assert(i.itemsize == 2 && i.rows == 2 && i.cols == 3);
}

Test(formats, npy_headers_refused)
{
	static const struct {
		const char *text, *msg;
	} cases[] = {
		{"{'descr': '|O', 'fortran_order': False, 'shape': (3, 4), }", "Python objects"},
		{"{'descr': '<i8', 'fortran_order': False, 'shape': (3, 4), }",
		 "unsupported .npy dtype '<i8' (expected float16, float32 or float64)"},
		{"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (3,), }",
		 "structured array"},
		{"{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }",
		 "1 dimension; expected 2 (rows, dim): reshape"},
		{"{'descr': '<f4', 'fortran_order': False, 'shape': (), }", "0 dimensions"},
		{"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 3), }", "3 dimensions"},
		{"{'descr': '<f4', 'shape': (1, 2), }", "lacks 'fortran_order'"},
		{"{'descr': '<f4', 'fortran_order': maybe, 'shape': (1, 2), }", "bad 'fortran_order'"},
		{"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999, 2), }",
		 "too large"},
		{"['descr']", "not a dict"},
		{"{'descr': '<f4' 'x'}", "bad dict"},
	};
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		npy_info i;
		vdb_error err;
		cr_assert_eq(header(cases[k].text, &i, &err), VDB_EDATA, "%s", cases[k].text);
		cr_expect(strstr(err.message, cases[k].msg), "%s: got %s", cases[k].text, err.message);
	}
	npy_info i;
	unsigned lb;
	vdb_error err;
	cr_assert_eq(npy_check_prefix((const unsigned char *)"\x93NUMPY\x02\x00", 8, &i, &lb, &err),
		     VDB_OK);
	cr_assert_eq(lb, 4);
	cr_assert_eq(npy_check_prefix((const unsigned char *)"\x93NUMPY\x00\x00", 8, &i, &lb, &err),
		     VDB_EDATA);
	cr_assert(strstr(err.message, "version 0.0"));
	cr_assert_eq(npy_check_prefix((const unsigned char *)"\x93NUMP", 5, &i, &lb, &err), VDB_EDATA);
}

Test(formats, npy_written_header_parses_back_aligned)
{
	for (uint64_t rows = 0; rows < 3000000000ull; rows = rows * 10 + 7) {
		vdb_buf b = VDB_BUF_INIT;
		cr_assert_eq(npy_write_header(&b, rows, 768), 0);
		cr_assert_eq(b.len % 64, 0, "data starts aligned");
		cr_assert_eq((size_t)(unsigned char)b.data[8] | (size_t)(unsigned char)b.data[9] << 8,
			     b.len - 10);
		cr_assert_eq(b.data[b.len - 1], '\n');
		npy_info i;
		vdb_error err;
		cr_assert_eq(npy_parse_header(b.data + 10, b.len - 10, &i, &err), VDB_OK, "%s",
			     err.message);
		cr_assert(i.rows == rows && i.cols == 768 && i.itemsize == 4 && !i.fortran_order);
		vdb_buf_free(&b);
	}
}

/* Reads every row of a vector file image; returns the status of the first failure. */
static vdb_status read_rows_in(vdb_istream *s, vdb_vec_format f, uint32_t dim, float *out,
			       size_t *rows, vdb_error *err)
{
	vdb_vec_reader *r = NULL;
	vdb_status st = vdb_vec_reader_open(s, f, dim, &r, err);
	*rows = 0;
	while (!st) {
		const float *v;
		int has;
		if ((st = vdb_vec_reader_next(r, &v, &has, err)) || !has)
			break;
		memcpy(out + *rows * dim, v, dim * sizeof(float));
		++*rows;
	}
	vdb_vec_reader_close(r);
	vdb_istream_close(s);
	return st;
}

/* Reads every row of data as a regular file. */
static vdb_status read_rows(const void *data, size_t n, vdb_vec_format f, uint32_t dim,
			    float *out, size_t *rows, vdb_error *err)
{
	return read_rows_in(stream_of(data, n), f, dim, out, rows, err);
}

/* A small .npy image: header for (rows, 2) of descr, then the given bytes. */
static size_t npy_image(char *out, const char *descr, int fortran, unsigned rows,
			const void *data, size_t n)
{
	char dict[128];
	int len = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': %s, 'shape': (%u, 2), }",
			   descr, fortran ? "True" : "False", rows);
	memcpy(out, "\x93NUMPY\x01\x00", 8);
	out[8] = (char)len;
	out[9] = 0;
	memcpy(out + 10, dict, (size_t)len);
	memcpy(out + 10 + len, data, n);
	return 10 + (size_t)len + n;
}

Test(formats, npy_conversions)
{
	char img[512];
	float got[16];
	size_t rows;
	vdb_error err;
	/* float16: 1, -2, smallest subnormal, 65504 */
	const unsigned char half[] = {0x00, 0x3c, 0x00, 0xc0, 0x01, 0x00, 0xff, 0x7b};
	size_t n = npy_image(img, "<f2", 0, 2, half, sizeof half);
	cr_assert_eq(read_rows(img, n, VDB_VEC_NPY, 2, got, &rows, &err), VDB_OK, "%s", err.message);
	cr_assert(rows == 2 && got[0] == 1 && got[1] == -2 && got[2] == ldexpf(1, -24) &&
		  got[3] == 65504);
	/* big-endian float64, Fortran order: column 0 = (1.5, 3), column 1 = (-0.25, 1e-3) */
	const unsigned char be[] = {0x3f, 0xf8, 0, 0, 0, 0, 0, 0, 0x40, 0x08, 0, 0, 0, 0, 0, 0,
				    0xbf, 0xd0, 0, 0, 0, 0, 0, 0, 0x3f, 0x50, 0x62, 0x4d, 0xd2, 0xf1,
				    0xa9, 0xfc};
	n = npy_image(img, ">f8", 1, 2, be, sizeof be);
	cr_assert_eq(read_rows(img, n, VDB_VEC_NPY, 2, got, &rows, &err), VDB_OK, "%s", err.message);
	cr_assert(rows == 2 && got[0] == 1.5f && got[1] == -0.25f && got[2] == 3.0f &&
		  got[3] == (float)1e-3);
	/* float64 beyond float32, and a value that rounds down to FLT_MAX (accepted) */
	double d[4] = {1, 2, 3.40282350e38, 3.5e38};
	n = npy_image(img, "<f8", 0, 2, d, sizeof d);
	cr_assert_eq(read_rows(img, n, VDB_VEC_NPY, 2, got, &rows, &err), VDB_EDATA);
	cr_assert_eq(rows, 1);
	cr_assert_str_eq(err.message, "row 1, column 1: 3.5e+38 is outside the float32 range");
	cr_assert_eq(got[0], 1);
}

Test(formats, vecs_rows_and_errors)
{
	unsigned char img[256];
	size_t n = 0;
	for (int r = 0; r < 3; r++) {
		int32_t d = r == 2 ? 3 : 2;
		memcpy(img + n, &d, 4);
		float v[3] = {(float)r, -(float)r, 9};
		memcpy(img + n + 4, v, 4 * (size_t)d);
		n += 4 + 4 * (size_t)d;
	}
	float got[16];
	size_t rows;
	vdb_error err;
	/* A stream: the rows before the bad one are handed out. */
	cr_assert_eq(read_rows_in(pipe_of(img, n), VDB_VEC_FVECS, 2, got, &rows, &err), VDB_EDATA);
	cr_assert_eq(rows, 2);
	cr_assert_str_eq(err.message, "row 2: dimension is 3; the collection's is 2");
	cr_assert(got[2] == 1 && got[3] == -1);
	cr_assert_eq(read_rows_in(pipe_of(img, 12 + 5), VDB_VEC_FVECS, 2, got, &rows, &err),
		     VDB_EDATA);
	cr_assert_str_eq(err.message, "row 1 is truncated: the file ends after 5 of its 12 bytes");
	/* A regular file: its size (not whole rows) refuses it at open, naming the cause. */
	cr_assert_eq(read_rows(img, n, VDB_VEC_FVECS, 2, got, &rows, &err), VDB_EDATA);
	cr_assert_eq(rows, 0);
	cr_assert_str_eq(err.message, "row 2: dimension is 3; the collection's is 2");
	cr_assert_eq(read_rows(img, 12 + 5, VDB_VEC_FVECS, 2, got, &rows, &err), VDB_EDATA);
	cr_assert_eq(rows, 0);
	cr_assert_str_eq(err.message,
			 "truncated: the file holds 1 row of 12 bytes (dimension 2) and 5 bytes");
	unsigned char b[] = {2, 0, 0, 0, 255, 7};
	cr_assert_eq(read_rows(b, sizeof b, VDB_VEC_BVECS, 2, got, &rows, &err), VDB_OK);
	cr_assert(rows == 1 && got[0] == 255 && got[1] == 7);
	cr_assert_eq(read_rows(b, 0, VDB_VEC_BVECS, 2, got, &rows, &err), VDB_OK);
	cr_assert_eq(rows, 0);
}

/* Reads every row through vdb_vec_reader_block, at most max per call; *calls: the calls
 * that gave rows, *stride: the last one's. Returns the status of the first failure. */
static vdb_status read_blocks(vdb_istream *s, vdb_vec_format f, uint32_t dim, size_t max,
			      float *out, size_t *rows, size_t *stride, int *calls, vdb_error *err)
{
	vdb_vec_reader *r = NULL;
	vdb_status st = vdb_vec_reader_open(s, f, dim, &r, err);
	*rows = 0;
	*calls = 0;
	while (!st) {
		const float *v;
		size_t got, step;
		st = vdb_vec_reader_block(r, max, &v, &step, &got, err);
		cr_assert_leq(got, max);
		for (size_t i = 0; i < got; i++)
			memcpy(out + (*rows + i) * dim, v + i * step, dim * sizeof(float));
		*rows += got;
		if (!got)
			break;
		*calls += 1;
		*stride = step;
	}
	vdb_vec_reader_close(r);
	vdb_istream_close(s);
	return st;
}

/* A .npy image of (rows, 2) '<f4' whose data starts 64-byte aligned, as numpy.save writes. */
static size_t npy_aligned(char *out, unsigned rows, const float *data, size_t nfloats)
{
	char dict[128];
	int len = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%u, 2), }",
			   rows);
	while ((10 + len + 1) % 64)
		dict[len++] = ' ';
	dict[len++] = '\n';
	memcpy(out, "\x93NUMPY\x01\x00", 8);
	out[8] = (char)len;
	out[9] = 0;
	memcpy(out + 10, dict, (size_t)len);
	memcpy(out + 10 + len, data, nfloats * sizeof(float));
	return 10 + (size_t)len + nfloats * sizeof(float);
}

Test(formats, vec_reader_blocks_mapped_and_read)
{
	float v[40], got[64];
	for (int i = 0; i < 40; i++)
		v[i] = (float)i - 7.5f;
	char img[1024];
	size_t rows, stride;
	int calls;
	vdb_error err;
	/* A plain file: mapped, in blocks of at most 3 rows, the last one short. */
	size_t n = npy_aligned(img, 20, v, 40);
	cr_assert_eq(read_blocks(stream_of(img, n), VDB_VEC_NPY, 2, 3, got, &rows, &stride, &calls,
				 &err), VDB_OK, "%s", err.message);
	cr_assert(rows == 20 && stride == 2 && calls == 7);
	cr_assert_arr_eq(got, v, sizeof v);
	/* The same through a pipe is read (and a pipe's block may be short). */
	int fds[2];
	cr_assert_eq(pipe(fds), 0);
	cr_assert_eq(write(fds[1], img, n), (ssize_t)n);
	close(fds[1]);
	vdb_istream *ps;
	cr_assert_eq(vdb_istream_open(fds[0], NULL, &ps, &err), VDB_OK);
	cr_assert_eq(read_blocks(ps, VDB_VEC_NPY, 2, 8, got, &rows, &stride, &calls, &err), VDB_OK);
	close(fds[0]);
	cr_assert(rows == 20 && stride == 2);
	cr_assert_arr_eq(got, v, sizeof v);
	/* .fvecs, mapped in place: each row is dim + 1 floats after the previous. */
	unsigned char fv[20 * 12];
	for (int r = 0; r < 20; r++) {
		int32_t d = 2;
		memcpy(fv + r * 12, &d, 4);
		memcpy(fv + r * 12 + 4, v + 2 * r, 8);
	}
	cr_assert_eq(read_blocks(stream_of(fv, sizeof fv), VDB_VEC_FVECS, 2, 16, got, &rows, &stride,
				 &calls, &err), VDB_OK, "%s", err.message);
	cr_assert(rows == 20 && stride == 3 && calls == 2);
	cr_assert_arr_eq(got, v, sizeof v);
	/* Errors name the row; the rows before it are handed out. */
	v[11] = NAN;
	n = npy_aligned(img, 20, v, 40);
	cr_assert_eq(read_blocks(stream_of(img, n), VDB_VEC_NPY, 2, 16, got, &rows, &stride, &calls,
				 &err), VDB_EDATA);
	cr_assert_eq(rows, 5);
	cr_assert_str_eq(err.message, "row 5, column 1: NaN is not a valid vector value");
	v[11] = 3;
	int32_t bad = 3;
	memcpy(fv + 13 * 12, &bad, 4);
	cr_assert_eq(read_blocks(stream_of(fv, sizeof fv), VDB_VEC_FVECS, 2, 4, got, &rows, &stride,
				 &calls, &err), VDB_EDATA);
	cr_assert_eq(rows, 13);
	cr_assert_str_eq(err.message, "row 13: dimension is 3; the collection's is 2");
	/* A stream cut inside a row: the whole rows, then the truncation. */
	n = npy_aligned(img, 20, v, 40);
	cr_assert_eq(read_blocks(pipe_of(img, n - 5), VDB_VEC_NPY, 2, 64, got, &rows, &stride,
				 &calls, &err), VDB_EDATA);
	cr_assert_eq(rows, 19);
	cr_assert_str_eq(err.message, "row 19 is truncated: the file ends after 3 of its 8 bytes");
	/* Fewer rows than the header declares, and more. */
	n = npy_aligned(img, 21, v, 40);
	cr_assert_eq(read_blocks(pipe_of(img, n), VDB_VEC_NPY, 2, 64, got, &rows, &stride, &calls,
				 &err), VDB_EDATA);
	cr_assert_eq(rows, 20);
	cr_assert_str_eq(err.message, "the file ends at row 20; the .npy header declares 21 rows");
	n = npy_aligned(img, 19, v, 40);
	cr_assert_eq(read_blocks(pipe_of(img, n), VDB_VEC_NPY, 2, 64, got, &rows, &stride, &calls,
				 &err), VDB_EDATA);
	cr_assert_eq(rows, 19);
	cr_assert_str_eq(err.message, "data follows the 19 rows the .npy header declares");
	/* The same as regular files: refused at open, before any row. */
	n = npy_aligned(img, 20, v, 40);
	cr_assert_eq(read_blocks(stream_of(img, n - 5), VDB_VEC_NPY, 2, 64, got, &rows, &stride,
				 &calls, &err), VDB_EDATA);
	cr_assert_eq(rows, 0);
	cr_assert_str_eq(err.message, "truncated: the header declares 20 rows of 8 bytes, the file "
				      "holds 19 and 3 bytes");
	n = npy_aligned(img, 19, v, 40);
	cr_assert_eq(read_blocks(stream_of(img, n), VDB_VEC_NPY, 2, 64, got, &rows, &stride, &calls,
				 &err), VDB_EDATA);
	cr_assert_eq(rows, 0);
	cr_assert_str_eq(err.message, "8 bytes follow the 19 rows the .npy header declares");
	/* A header whose length leaves the data unaligned for float32 is read, not mapped. */
	n = npy_image(img, "<f4", 0, 20, v, sizeof v);
	cr_assert_eq(read_blocks(stream_of(img, n), VDB_VEC_NPY, 2, 7, got, &rows, &stride, &calls,
				 &err), VDB_OK, "%s", err.message);
	cr_assert(rows == 20 && stride == 2 && calls == 3);
	cr_assert_arr_eq(got, v, sizeof v);
}

static char *slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *buf = malloc(1 << 20);
	*n = fread(buf, 1, 1 << 20, f);
	fclose(f);
	return buf;
}

Test(formats, vec_writer_and_atomic_ostream)
{
	char path[] = "/tmp/vdb-formats-XXXXXX";
	cr_assert(mkdtemp(path));
	char file[128];
	snprintf(file, sizeof file, "%s/out.npy", path);
	vdb_error err;
	vdb_ostream *o;
	vdb_vec_writer *w;
	float v[3] = {1, -0.0f, 3};
	/* Not finished: the file never appears. */
	cr_assert_eq(vdb_ostream_open(file, 0, &o, &err), VDB_OK, "%s", err.message);
	cr_assert_eq(vdb_vec_writer_open(o, VDB_VEC_NPY, 3, 2, &w, &err), VDB_OK);
	cr_assert_eq(vdb_vec_writer_put(w, v, &err), VDB_OK);
	cr_assert_eq(vdb_vec_writer_finish(w, &err), VDB_EINTERNAL, "one row short");
	vdb_vec_writer_close(w);
	vdb_ostream_close(o);
	cr_assert_eq(access(file, F_OK), -1);
	char cmd[200];
	snprintf(cmd, sizeof cmd, "test -z \"$(ls -A %s)\"", path);
	cr_assert_eq(system(cmd), 0, "no temporary file left");
	/* Finished: header, then the rows, read back by the reader. */
	cr_assert_eq(vdb_ostream_open(file, 0, &o, &err), VDB_OK);
	cr_assert_eq(vdb_vec_writer_open(o, VDB_VEC_NPY, 3, 2, &w, &err), VDB_OK);
	cr_assert_eq(vdb_vec_writer_put(w, v, &err), VDB_OK);
	cr_assert_eq(vdb_vec_writer_put(w, v, &err), VDB_OK);
	cr_assert_eq(vdb_vec_writer_put(w, v, &err), VDB_EINTERNAL, "more rows than declared");
	cr_assert_eq(vdb_vec_writer_finish(w, &err), VDB_OK);
	cr_assert_eq(vdb_ostream_finish(o, &err), VDB_OK, "%s", err.message);
	vdb_vec_writer_close(w);
	vdb_ostream_close(o);
	size_t n;
	char *data = slurp(file, &n);
	cr_assert(data && n > 24 && (n - 24) % 64 == 0, "%zu bytes", n);
	float got[6];
	size_t rows;
	cr_assert_eq(read_rows(data, n, VDB_VEC_NPY, 3, got, &rows, &err), VDB_OK, "%s", err.message);
	cr_assert(rows == 2 && got[4] == 0 && signbit(got[4]) && got[5] == 3);
	free(data);
	/* Compressed: one zstd frame that decompresses to the fvecs rows. */
	snprintf(file, sizeof file, "%s/out.fvecs.zst", path);
	cr_assert_eq(vdb_ostream_open(file, 3, &o, &err), VDB_OK);
	cr_assert_eq(vdb_vec_writer_open(o, VDB_VEC_FVECS, 3, 0, &w, &err), VDB_OK);
	for (int i = 0; i < 1000; i++)
		cr_assert_eq(vdb_vec_writer_put(w, v, &err), VDB_OK);
	cr_assert_eq(vdb_ostream_finish(o, &err), VDB_OK);
	vdb_vec_writer_close(w);
	vdb_ostream_close(o);
	data = slurp(file, &n);
	cr_assert_eq(ZSTD_getFrameContentSize(data, n), ZSTD_CONTENTSIZE_UNKNOWN);
	char *raw = malloc(16000);
	size_t m = ZSTD_decompress(raw, 16000, data, n);
	cr_assert_eq(m, 16000, "%s", ZSTD_isError(m) ? ZSTD_getErrorName(m) : "short");
	cr_assert_eq(memcmp(raw + 16 * 999 + 4, v, 12), 0);
	free(raw);
	free(data);
	cr_assert_eq(vdb_ostream_open("/nonexistent-dir/x", 0, &o, &err), VDB_EIO);
	cr_assert(strstr(err.message, "create /nonexistent-dir/x.tmp-"));
	snprintf(cmd, sizeof cmd, "rm -rf %s", path);
	cr_assert_eq(system(cmd), 0);
}

Test(formats, zstd_input_frames_truncation_and_plain_passthrough)
{
	char plain[5000];
	for (size_t i = 0; i < sizeof plain; i++)
		plain[i] = (char)('a' + i % 23);
	size_t cap = ZSTD_compressBound(sizeof plain);
	char *z = malloc(2 * cap);
	size_t n1 = ZSTD_compress(z, cap, plain, sizeof plain, 1);
	size_t n2 = ZSTD_compress(z + n1, cap, plain, 100, 19);
	cr_assert(!ZSTD_isError(n1) && !ZSTD_isError(n2));
	vdb_istream *s = stream_of(z, n1 + n2);
	cr_assert(vdb_istream_compressed(s));
	char out[6000];
	size_t got;
	vdb_error err;
	cr_assert_eq(vdb_istream_read_full(s, out, sizeof out, &got, &err), VDB_OK, "%s",
		     err.message);
	cr_assert_eq(got, sizeof plain + 100, "concatenated frames are one stream");
	cr_assert_eq(memcmp(out, plain, sizeof plain), 0);
	cr_assert_eq(memcmp(out + sizeof plain, plain, 100), 0);
	cr_assert_eq(vdb_istream_raw_bytes(s), n1 + n2);
	vdb_istream_close(s);
	s = stream_of(z, n1 - 3);
	cr_assert_eq(vdb_istream_read_full(s, out, sizeof out, &got, &err), VDB_EDATA);
	cr_assert_str_eq(err.message, "zstd: the compressed data is truncated");
	vdb_istream_close(s);
	/* Shorter than the magic, and plain text: passed through untouched. */
	s = stream_of("ab", 2);
	cr_assert(!vdb_istream_compressed(s));
	cr_assert_eq(vdb_istream_read_full(s, out, sizeof out, &got, &err), VDB_OK);
	cr_assert(got == 2 && !memcmp(out, "ab", 2));
	vdb_istream_close(s);
	free(z);
}

/* All records of a CSV text, as exported JSON lines, or the first error. */
static vdb_status csv_records(const char *text, const vdb_csv_options *o, vdb_text *out,
			      vdb_error *err)
{
	vdb_istream *s = stream_of(text, strlen(text));
	vdb_csv_reader *r = NULL;
	vdb_status st = vdb_csv_reader_open(s, 2, o, &r, err);
	while (!st) {
		vdb_record rec;
		int has;
		if ((st = vdb_csv_reader_next(r, &rec, &has, err)) || !has)
			break;
		cr_assert_eq(vdb_jsonl_append_record(out, &rec, 2), VDB_OK);
	}
	cr_assert_eq(vdb_text_append(out, "", 1), VDB_OK);
	out->len--; /* NUL-terminated for the string comparisons */
	vdb_csv_reader_close(r);
	vdb_istream_close(s);
	return st;
}

Test(formats, csv_reading)
{
	vdb_text t = {0};
	vdb_error err;
	cr_assert_eq(csv_records("id,vector,a,b\r\n"
				 "7,\"[1, 2]\",\"x, \"\"y\"\"\",-1.5e3\r\n"
				 "\n"
				 "doc,\"[3,4]\",\"two\nlines\",01\n"
				 "\"\"\"8\"\"\",\"[5,6]\",,",
				 NULL, &t, &err),
		     VDB_OK, "%s", err.message);
	cr_assert_str_eq(t.data, "{\"id\":7,\"vector\":[1,2],\"payload\":{\"a\":\"x, \\\"y\\\"\",\"b\":-1.5e3}}\n"
				 "{\"id\":\"doc\",\"vector\":[3,4],\"payload\":{\"a\":\"two\\nlines\",\"b\":\"01\"}}\n"
				 "{\"id\":\"8\",\"vector\":[5,6]}\n");
	vdb_text_free(&t);
	vdb_csv_options o;
	vdb_csv_options_init(&o);
	o.id_column = "k";
	o.vector_columns = "3,y";
	t = (vdb_text){0};
	cr_assert_eq(csv_records("k,note,x,y\n1,n,0.5,-0\n", &o, &t, &err), VDB_OK, "%s",
		     err.message);
	cr_assert_str_eq(t.data, "{\"id\":1,\"vector\":[0.5,-0],\"payload\":{\"note\":\"n\"}}\n");
	vdb_text_free(&t);
	/* A leading byte-order mark (Excel's "CSV UTF-8") is not part of the first name. */
	t = (vdb_text){0};
	cr_assert_eq(csv_records("\xEF\xBB\xBFid,vector\n3,\"[1,2]\"\n", NULL, &t, &err), VDB_OK,
		     "%s", err.message);
	cr_assert_str_eq(t.data, "{\"id\":3,\"vector\":[1,2]}\n");
	vdb_text_free(&t);
	static const struct {
		const char *text, *msg;
	} bad[] = {
		{"id,vector\n1,[1,2]\n", "line 2: 3 fields; the header has 2"},
		{"id,vector\n1,\"[1,2]\"x\n", "line 2: field 2: characters after the closing quote"},
		{"id,vector\n1,\"[1,2]\r2\n", "line 2: a quoted field is not closed"},
		{"id,vector\n1,[1 2]\r3\n", "line 2: a carriage return not followed by a line feed"},
		{"id,vector\n1,\"[1,true]\"\n", "line 2: vector[1] is not a number"},
		{"id,vector\n1,\"[1,2]\"\n\xff,\"[1,2]\"\n", "line 3: a string id must be 1 to 256"},
		{"id,vector,p\n1,\"[1,2]\",\xc3\n", "line 2: column \"p\": invalid UTF-8"},
		{"vector\n", "line 1: the header has no column \"id\" (--id-column)"},
		{"id,id\n", "line 1: the header names column \"id\" twice"},
	};
	for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
		t = (vdb_text){0};
		cr_assert_eq(csv_records(bad[k].text, NULL, &t, &err), VDB_EDATA, "%s", bad[k].text);
		cr_expect(strstr(err.message, bad[k].msg), "%s: got %s", bad[k].text, err.message);
		vdb_text_free(&t);
	}
}

Test(formats, csv_writer_json_payload_column)
{
	/* By default the payload is one column of JSON text, read back exactly. */
	vdb_csv_writer *w;
	vdb_error err;
	cr_assert_eq(vdb_csv_writer_new(2, 0, &w, &err), VDB_OK);
	const char *p1 = "{\"s\":\"42\",\"e\":\"\",\"t\":[true,null],\"q\":\"a,\\\"b\\\"\\nc\"}";
	cr_assert_eq(vdb_csv_writer_add_keys(w, p1, strlen(p1), &err), VDB_OK);
	vdb_text t = {0};
	cr_assert_eq(vdb_csv_writer_header(w, &t, &err), VDB_OK);
	float v[2] = {0.1f, -3};
	vdb_record recs[2] = {{{0, 5, NULL, 0}, v, p1, strlen(p1)}, {{1, 0, "42", 2}, v, NULL, 0}};
	for (int i = 0; i < 2; i++)
		cr_assert_eq(vdb_csv_writer_record(w, &t, &recs[i], &err), VDB_OK, "%s", err.message);
	cr_assert_eq(vdb_text_append(&t, "", 1), VDB_OK);
	cr_assert_str_eq(t.data, "id,vector,payload\r\n"
				 "5,\"[0.1,-3]\",\"{\"\"s\"\":\"\"42\"\",\"\"e\"\":\"\"\"\",\"\"t\"\":[true,null],"
				 "\"\"q\"\":\"\"a,\\\"\"b\\\"\"\\nc\"\"}\"\r\n"
				 "\"\"\"42\"\"\",\"[0.1,-3]\",\r\n");
	vdb_text back = {0};
	cr_assert_eq(csv_records(t.data, NULL, &back, &err), VDB_OK, "%s", err.message);
	cr_assert_str_eq(back.data, "{\"id\":5,\"vector\":[0.1,-3],\"payload\":{\"s\":\"42\",\"e\":\"\","
				    "\"t\":[true,null],\"q\":\"a,\\\"b\\\"\\nc\"}}\n"
				    "{\"id\":\"42\",\"vector\":[0.1,-3]}\n");
	vdb_text_free(&back);
	vdb_text_free(&t);
	vdb_csv_writer_free(w);
}

Test(formats, csv_writer_reads_back)
{
	vdb_csv_writer *w;
	vdb_error err;
	cr_assert_eq(vdb_csv_writer_new(2, 0, &w, &err), VDB_OK);
	vdb_csv_writer_set_payload_columns(w, 1);
	const char *p1 = "{\"name\":\"a,\\\"b\\\"\\nc\",\"n\":12.50}";
	const char *p2 = "{\"flag\":true,\"n\":1,\"deep\":{\"x\":[1]}}";
	cr_assert_eq(vdb_csv_writer_add_keys(w, p1, strlen(p1), &err), VDB_OK);
	cr_assert_eq(vdb_csv_writer_add_keys(w, NULL, 0, &err), VDB_OK);
	cr_assert_eq(vdb_csv_writer_add_keys(w, p2, strlen(p2), &err), VDB_OK);
	vdb_text t = {0};
	cr_assert_eq(vdb_csv_writer_header(w, &t, &err), VDB_OK);
	float v[2] = {0.1f, -3};
	vdb_record recs[3] = {{{0, 5, NULL, 0}, v, p1, strlen(p1)},
			      {{1, 0, "42", 2}, v, NULL, 0},
			      {{1, 0, "x,y", 3}, v, p2, strlen(p2)}};
	for (int i = 0; i < 3; i++)
		cr_assert_eq(vdb_csv_writer_record(w, &t, &recs[i], &err), VDB_OK, "%s", err.message);
	cr_assert_eq(vdb_text_append(&t, "", 1), VDB_OK);
	cr_assert_str_eq(t.data, "id,vector,name,n,flag,deep\r\n"
				 "5,\"[0.1,-3]\",\"a,\"\"b\"\"\nc\",12.50,,\r\n"
				 "\"\"\"42\"\"\",\"[0.1,-3]\",,,,\r\n"
				 "\"x,y\",\"[0.1,-3]\",,1,true,\"{\"\"x\"\":[1]}\"\r\n");
	vdb_text back = {0};
	cr_assert_eq(csv_records(t.data, NULL, &back, &err), VDB_OK, "%s", err.message);
	cr_assert_str_eq(back.data,
			 "{\"id\":5,\"vector\":[0.1,-3],\"payload\":{\"name\":\"a,\\\"b\\\"\\nc\",\"n\":12.50}}\n"
			 "{\"id\":\"42\",\"vector\":[0.1,-3]}\n"
			 "{\"id\":\"x,y\",\"vector\":[0.1,-3],\"payload\":{\"n\":1,\"flag\":\"true\","
			 "\"deep\":\"{\\\"x\\\":[1]}\"}}\n");
	vdb_text_free(&back);
	vdb_text_free(&t);
	vdb_csv_writer_free(w);
	/* A key named like a column of ours moves that column to a free name; NUL is refused
	 * with the record's id. */
	cr_assert_eq(vdb_csv_writer_new(2, 0, &w, &err), VDB_OK);
	vdb_csv_writer_set_payload_columns(w, 1);
	const char *clash = "{\"vector\":1,\"_vector\":2}";
	vdb_record rc = {{1, 0, "k\n1", 3}, v, clash, strlen(clash)};
	cr_assert_eq(vdb_csv_writer_add(w, &rc, &err), VDB_OK, "%s", err.message);
	t = (vdb_text){0};
	cr_assert_eq(vdb_csv_writer_header(w, &t, &err), VDB_OK);
	cr_assert_eq(vdb_csv_writer_record(w, &t, &rc, &err), VDB_OK);
	cr_assert_eq(vdb_text_append(&t, "", 1), VDB_OK);
	cr_assert_str_eq(t.data, "id,__vector,vector,_vector\r\n\"k\n1\",\"[0.1,-3]\",1,2\r\n");
	const char *idcol, *veccol;
	vdb_csv_writer_columns(w, &idcol, &veccol);
	cr_assert_str_eq(idcol, "id");
	cr_assert_str_eq(veccol, "__vector");
	vdb_text_free(&t);
	const char *nul = "{\"s\":\"a\\u0000b\"}";
	vdb_record rn = {{0, 77, NULL, 0}, v, nul, strlen(nul)};
	cr_assert_eq(vdb_csv_writer_add(w, &rn, &err), VDB_EDATA);
	cr_assert_str_eq(err.message, "record 77: a payload string holds a NUL byte: not "
				      "representable in CSV (use JSON lines)");
	vdb_record rid = {{1, 0, "a\0b", 3}, v, NULL, 0};
	cr_assert_eq(vdb_csv_writer_add(w, &rid, &err), VDB_EDATA);
	cr_assert_str_eq(err.message, "record \"a\\u0000b\": the id holds a NUL byte: not "
				      "representable in CSV (use JSON lines)");
	vdb_csv_writer_free(w);
	/* Numeric vector columns: v0..v<dim-1>; "v2", "v01" and "vx" are ordinary keys. */
	cr_assert_eq(vdb_csv_writer_new(2, 1, &w, &err), VDB_OK);
	vdb_csv_writer_set_payload_columns(w, 1);
	const char *p3 = "{\"v2\":1,\"v01\":2,\"vx\":3}";
	cr_assert_eq(vdb_csv_writer_add_keys(w, p3, strlen(p3), &err), VDB_OK, "%s", err.message);
	t = (vdb_text){0};
	cr_assert_eq(vdb_csv_writer_header(w, &t, &err), VDB_OK);
	vdb_record r3 = {{0, 9, NULL, 0}, v, p3, strlen(p3)};
	cr_assert_eq(vdb_csv_writer_record(w, &t, &r3, &err), VDB_OK);
	cr_assert_eq(vdb_text_append(&t, "", 1), VDB_OK);
	cr_assert_str_eq(t.data, "id,v0,v1,v2,v01,vx\r\n9,0.1,-3,1,2,3\r\n");
	vdb_csv_options o;
	vdb_csv_options_init(&o);
	o.vector_columns = "2-3";
	back = (vdb_text){0};
	cr_assert_eq(csv_records(t.data, &o, &back, &err), VDB_OK, "%s", err.message);
	cr_assert_str_eq(back.data, "{\"id\":9,\"vector\":[0.1,-3],\"payload\":{\"v2\":1,\"v01\":2,"
				    "\"vx\":3}}\n");
	vdb_text_free(&back);
	vdb_text_free(&t);
	vdb_csv_writer_free(w);
}

Test(formats, id_words_round_trip)
{
	static const char *strings[] = {"doc-1", "42", "\"q\"", "é x", "0", "\"", "a\"b"};
	for (size_t k = 0; k < sizeof strings / sizeof strings[0]; k++) {
		vdb_id id = {1, 0, strings[k], strlen(strings[k])}, back;
		vdb_text t = {0};
		vdb_error err;
		cr_assert_eq(vdb_id_append_text(&t, &id, &err), VDB_OK, "%s", strings[k]);
		cr_assert_eq(vdb_text_append(&t, "", 1), VDB_OK);
		cr_assert_eq(vdb_id_parse_text(t.data, &back, &err), VDB_OK, "%s: %s", t.data,
			     err.message);
		cr_assert_eq(vdb_id_compare(&id, &back), 0, "%s came back as %s", strings[k], t.data);
		vdb_text_free(&t);
	}
	vdb_id num = {0, UINT64_MAX, NULL, 0}, nl = {1, 0, "a\nb", 3}, bs = {1, 0, "1\\2", 3};
	vdb_text t = {0};
	vdb_error err;
	cr_assert_eq(vdb_id_append_text(&t, &num, &err), VDB_OK);
	cr_assert_eq(t.len, 20);
	cr_assert_eq(vdb_id_append_text(&t, &nl, &err), VDB_EDATA);
	cr_assert(strstr(err.message, "line break"));
	cr_assert_eq(vdb_id_append_text(&t, &bs, &err), VDB_OK, "not all digits: no quotes needed");
	vdb_text_free(&t);
}

Test(formats, payload_lines)
{
	vdb_jsonl_parser *p;
	vdb_error err;
	cr_assert_eq(vdb_jsonl_parser_new(2, &p, &err), VDB_OK);
	const char *pl;
	size_t n;
	cr_assert_eq(vdb_jsonl_parse_payload(p, " { \"a\" : 1.50 } ", 16, &pl, &n, &err), VDB_OK);
	cr_assert(n == 10 && !memcmp(pl, "{\"a\":1.50}", 10));
	cr_assert_eq(vdb_jsonl_parse_payload(p, "null", 4, &pl, &n, &err), VDB_OK);
	cr_assert_null(pl);
	cr_assert_eq(vdb_jsonl_parse_payload(p, "nullx", 5, &pl, &n, &err), VDB_EDATA);
	cr_assert_eq(vdb_jsonl_parse_payload(p, "[1]", 3, &pl, &n, &err), VDB_EDATA);
	cr_assert_str_eq(err.message, "a payload must be a JSON object or null");
	cr_assert_eq(vdb_jsonl_parse_payload(p, "{\"a\":1,\"a\":2}", 13, &pl, &n, &err), VDB_EDATA);
	cr_assert(strstr(err.message, "duplicate key"));
	vdb_jsonl_parser_free(p);
}
