/* vdb-export's Parquet writer (parquet.h).
 *
 * The file: "PAR1", row groups, the footer (FileMetaData in the Thrift compact protocol),
 * its length, "PAR1". Columns:
 *   id       required INT64 (INTEGER(64, unsigned) when an id is past INT64_MAX), or
 *            required BYTE_ARRAY STRING when any id is a string
 *   vector   required group (LIST) { repeated group list { required float element } }:
 *            the three-level list every reader knows; the ARROW:schema entry marks it
 *            fixed_size_list<float, dim> for Arrow-based readers
 *   payload  optional BYTE_ARRAY JSON (null for a record without a payload)
 *   KEY...   with payload_columns: optional INT64, DOUBLE, BOOLEAN or STRING per top-level
 *            payload key whose values have one type throughout (integers and decimals
 *            together are DOUBLE), null where a record lacks the key or holds null
 * Rows are buffered for one row group (about 64 MiB unless row_group_rows says), then each
 * column is written as data pages (v1, PLAIN values, RLE levels) of about 1 MiB, each
 * compressed on its own, with min/max/null-count statistics in the footer. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "../util/error.h"
#include "json.h"
#include "jsonl.h"
#include "parquet.h"
#include "thrift.h"
#include "vdb_config.h"

#define ROW_GROUP_BYTES (64u << 20)
#define MAX_ROW_GROUP_ROWS (1u << 20)
#define PAGE_BYTES (1u << 20)
#define STAT_MAX 64 /* longer strings get no min/max */
#define MAX_TYPED_COLUMNS 1024

enum { T_NONE, T_STRING, T_INT, T_DOUBLE, T_BOOL, T_MIXED };

/* Min and max of a chunk's values, as the footer stores them (plain encoding). */
typedef struct stats {
	int has, too_long;
	uint8_t min[STAT_MAX], max[STAT_MAX];
	uint32_t min_len, max_len;
	int64_t nulls;
} stats;

/* A column's values for the row group being buffered. */
typedef struct column {
	char *name;            /* top-level name (typed columns: the payload key) */
	size_t name_len;
	int ptype;             /* physical type */
	int kind;              /* T_* for typed payload columns */
	vdb_buf vals;          /* PLAIN-encoded non-null values (booleans: one byte each) */
	vdb_buf defs;          /* optional columns: one byte per row, 1 present */
	int seen_row;          /* put: the row in which this key was last set */
	stats st;
} column;

/* A written column chunk, for the footer. */
typedef struct chunk_info {
	int64_t num_values, uncompressed, compressed, offset;
	stats st;
} chunk_info;

struct vdb_parquet_writer {
	vdb_ostream *out;
	uint64_t pos; /* bytes written */
	uint32_t dim;
	int codec;
	uint64_t group_rows;
	int payload_columns;
	int scanned, put_any;
	/* The scan's findings. */
	uint64_t int_ids, string_ids, big_ids;
	int id_type; /* PQ_INT64 or PQ_BYTE_ARRAY */
	int id_unsigned;
	/* Columns: id, vector, payload, then typed ones. */
	column *cols;
	size_t ncols;
	size_t *index; /* open addressing over typed column names: column number + 1 */
	size_t index_cap;
	int capped;
	/* The row group being buffered. */
	uint64_t rows, total_rows;
	const float **vecs; /* the rows' vectors, where the caller keeps them */
	/* Written row groups: rows and the chunk of each column. */
	chunk_info *chunks;
	int64_t *group_rows_done;
	size_t ngroups, groups_cap;
	vdb_buf page, packed, levels, header;
	void *zctx;
	/* The column chunk being written: its pages so far, and whether full compression
	 * was worth it on its last trial (see write_page). */
	uint32_t chunk_pages;
	int store;
	uint32_t *lv;
	size_t lv_cap;
	int row_no;
};

static uint64_t hash(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
	return h;
}

static column *find(vdb_parquet_writer *w, const char *s, size_t n)
{
	if (!w->index_cap)
		return NULL;
	for (size_t i = hash(s, n) & (w->index_cap - 1);; i = (i + 1) & (w->index_cap - 1)) {
		if (!w->index[i])
			return NULL;
		column *c = &w->cols[w->index[i] - 1];
		if (c->name_len == n && !memcmp(c->name, s, n))
			return c;
	}
}

static int index_put(vdb_parquet_writer *w, size_t col)
{
	if ((w->ncols + 1) * 2 > w->index_cap) {
		size_t cap = w->index_cap ? w->index_cap * 2 : 64;
		size_t *ix = calloc(cap, sizeof *ix);
		if (!ix)
			return -1;
		free(w->index);
		w->index = ix;
		w->index_cap = cap;
		for (size_t c = 3; c < w->ncols; c++)
			if (c != col && index_put(w, c))
				return -1;
	}
	column *c = &w->cols[col];
	size_t i = hash(c->name, c->name_len) & (w->index_cap - 1);
	while (w->index[i])
		i = (i + 1) & (w->index_cap - 1);
	w->index[i] = col + 1;
	return 0;
}

static column *add_column(vdb_parquet_writer *w, const char *name, size_t n)
{
	column *cols = realloc(w->cols, (w->ncols + 1) * sizeof *cols);
	if (!cols)
		return NULL;
	w->cols = cols;
	column *c = &cols[w->ncols];
	memset(c, 0, sizeof *c);
	c->seen_row = -1;
	if (!(c->name = malloc(n + 1)))
		return NULL;
	memcpy(c->name, name, n);
	c->name[n] = '\0';
	c->name_len = n;
	w->ncols++;
	if (w->ncols > 3 && index_put(w, w->ncols - 1))
		return NULL;
	return c;
}

vdb_status vdb_parquet_writer_open(vdb_ostream *out, uint32_t dim, int codec,
				   uint64_t row_group_rows, int payload_columns,
				   vdb_parquet_writer **wp, vdb_error *err)
{
	vdb_parquet_writer *w = calloc(1, sizeof *w);
	if (!w)
		return vdb_err_nomem(err);
	w->out = out;
	w->dim = dim;
	w->codec = codec;
	w->payload_columns = payload_columns;
	uint64_t per_row = (uint64_t)dim * 4 + 64;
	w->group_rows = row_group_rows ? row_group_rows : ROW_GROUP_BYTES / per_row;
	if (!row_group_rows && w->group_rows > MAX_ROW_GROUP_ROWS)
		w->group_rows = MAX_ROW_GROUP_ROWS;
	if (w->group_rows < 1)
		w->group_rows = 1;
	if (!add_column(w, "id", 2) || !add_column(w, "vector", 6) ||
	    !add_column(w, "payload", 7)) {
		vdb_parquet_writer_free(w);
		return vdb_err_nomem(err);
	}
	w->cols[1].ptype = PQ_FLOAT;
	w->cols[2].ptype = PQ_BYTE_ARRAY;
	*wp = w;
	return VDB_OK;
}

/* ---- the scan: id type, typed payload columns ---- */

/* The T_* of a JSON value's text. */
static int value_kind(const char *v, size_t n)
{
	switch (v[0]) {
	case '"': return T_STRING;
	case 't': case 'f': return T_BOOL;
	case 'n': return T_NONE;
	case '{': case '[': return T_MIXED; /* nested values stay in the payload column */
	default: break;
	}
	if (memchr(v, '.', n) || memchr(v, 'e', n) || memchr(v, 'E', n))
		return T_DOUBLE;
	/* An integer beyond int64 is only representable as a double. */
	char tmp[32];
	if (n >= sizeof tmp)
		return T_DOUBLE;
	memcpy(tmp, v, n);
	tmp[n] = '\0';
	errno = 0;
	(void)strtoll(tmp, NULL, 10);
	return errno == ERANGE ? T_DOUBLE : T_INT;
}

/* Calls fn for each top-level member of a stored payload (minified, valid JSON). */
static vdb_status members(vdb_parquet_writer *w, const char *p, size_t n,
			  vdb_status (*fn)(vdb_parquet_writer *, const char *, size_t,
					   const char *, size_t, vdb_error *),
			  vdb_error *err)
{
	vj_reader r;
	vdb_buf key = VDB_BUF_INIT;
	vdb_status st = VDB_OK;
	vj_init(&r, p, n);
	if (vj_expect(&r, '{'))
		goto bad;
	if (vj_peek(&r) == '}')
		goto done;
	for (;;) {
		key.len = 0;
		if (vj_string(&r, &key) || vj_expect(&r, ':'))
			goto bad;
		vj_skip_ws(&r);
		const char *v = r.p;
		if (vj_value(&r, NULL))
			goto bad;
		if ((st = fn(w, key.data ? key.data : "", key.len, v, (size_t)(r.p - v), err)))
			goto done;
		int c = vj_peek(&r);
		if (c == '}')
			break;
		if (vj_expect(&r, ','))
			goto bad;
	}
	goto done;
bad:
	st = vdb_err(err, VDB_ECORRUPT, "stored payload: %s", r.err);
done:
	vdb_buf_free(&key);
	return st;
}

static int reserved_name(const char *k, size_t n)
{
	return (n == 2 && !memcmp(k, "id", 2)) || (n == 6 && !memcmp(k, "vector", 6)) ||
	       (n == 7 && !memcmp(k, "payload", 7));
}

static vdb_status scan_member(vdb_parquet_writer *w, const char *k, size_t kn, const char *v,
			      size_t vn, vdb_error *err)
{
	int kind = value_kind(v, vn);
	column *c = find(w, k, kn);
	if (!c) {
		if (w->ncols - 3 >= MAX_TYPED_COLUMNS) {
			w->capped = 1;
			return VDB_OK;
		}
		if (!(c = add_column(w, k, kn)))
			return vdb_err_nomem(err);
		/* Keys that cannot be columns are kept as mixed: left in the payload only. */
		if (!kn || memchr(k, 0, kn) || reserved_name(k, kn) ||
		    vj_utf8_valid_prefix(k, kn) != kn)
			c->kind = T_MIXED;
	}
	if (c->kind == T_MIXED || kind == T_NONE || kind == c->kind)
		return VDB_OK;
	if (c->kind == T_NONE)
		c->kind = kind;
	else if ((c->kind == T_INT && kind == T_DOUBLE) || (c->kind == T_DOUBLE && kind == T_INT))
		c->kind = T_DOUBLE;
	else
		c->kind = T_MIXED;
	return VDB_OK;
}

vdb_status vdb_parquet_writer_scan(vdb_parquet_writer *w, const vdb_record *rec, vdb_error *err)
{
	if (rec->id.is_string)
		w->string_ids++;
	else if (w->int_ids++, rec->id.num > (uint64_t)INT64_MAX)
		w->big_ids++;
	if (w->payload_columns && rec->payload)
		return members(w, rec->payload, rec->payload_len, scan_member, err);
	return VDB_OK;
}

void vdb_parquet_writer_notes(vdb_parquet_writer *w, void (*fn)(void *ctx, const char *m),
			      void *ctx)
{
	char m[512];
	if (w->int_ids && w->string_ids) {
		snprintf(m, sizeof m, "note: the collection holds both integer (%llu) and string "
			 "(%llu) ids: the id column holds them all as strings",
			 (unsigned long long)w->int_ids, (unsigned long long)w->string_ids);
		fn(ctx, m);
	}
	for (size_t i = 3; w->payload_columns && i < w->ncols; i++) {
		column *c = &w->cols[i];
		const char *why = !c->name_len || memchr(c->name, 0, c->name_len) ||
						  vj_utf8_valid_prefix(c->name, c->name_len) != c->name_len
					  ? "its name cannot be a column name"
				  : reserved_name(c->name, c->name_len) ? "a column of vdb's has that name"
				  : c->kind == T_MIXED ? "its values have more than one type, or nest"
				  : c->kind == T_NONE ? "it is always null"
						      : NULL;
		if (why) {
			snprintf(m, sizeof m, "note: payload key '%.200s' is not a column of its own "
				 "(%s): it stays in the payload column", c->name, why);
			fn(ctx, m);
		}
	}
	if (w->capped) {
		snprintf(m, sizeof m, "note: the payloads have more than %d keys: the others stay "
			 "in the payload column only", MAX_TYPED_COLUMNS);
		fn(ctx, m);
	}
}

/* After the scan: the id column's type, and the typed columns that are kept. */
static vdb_status settle_columns(vdb_parquet_writer *w, vdb_error *err)
{
	w->scanned = 1;
	w->id_type = w->string_ids ? PQ_BYTE_ARRAY : PQ_INT64;
	w->id_unsigned = !w->string_ids && w->big_ids;
	w->cols[0].ptype = w->id_type;
	size_t kept = 3;
	for (size_t i = 3; i < w->ncols; i++) {
		column *c = &w->cols[i];
		if (!w->payload_columns || c->kind == T_MIXED || c->kind == T_NONE) {
			free(c->name);
			continue;
		}
		c->ptype = c->kind == T_STRING ? PQ_BYTE_ARRAY : c->kind == T_INT ? PQ_INT64
			   : c->kind == T_DOUBLE ? PQ_DOUBLE : PQ_BOOLEAN;
		w->cols[kept++] = *c;
	}
	w->ncols = kept;
	free(w->index);
	w->index = NULL;
	w->index_cap = 0;
	for (size_t i = 3; i < w->ncols; i++)
		if (index_put(w, i))
			return vdb_err_nomem(err);
	if (!(w->vecs = malloc((size_t)w->group_rows * sizeof *w->vecs)))
		return vdb_err_nomem(err);
	return VDB_OK;
}

/* ---- buffering rows ---- */

static int cmp_bytes(const void *a, size_t an, const void *b, size_t bn)
{
	int c = memcmp(a, b, an < bn ? an : bn);
	return c ? c : (an > bn) - (an < bn);
}

/* Folds a value (plain bytes; compared as `ptype` orders) into the statistics. */
static void stat_value(stats *s, int ptype, int is_unsigned, const void *v, size_t n)
{
	if (s->too_long)
		return;
	if (n > STAT_MAX) {
		s->too_long = 1;
		return;
	}
	int lt = 0, gt = 0;
	if (s->has) {
		if (ptype == PQ_INT64) {
			int64_t x, lo, hi;
			memcpy(&x, v, 8);
			memcpy(&lo, s->min, 8);
			memcpy(&hi, s->max, 8);
			lt = is_unsigned ? (uint64_t)x < (uint64_t)lo : x < lo;
			gt = is_unsigned ? (uint64_t)x > (uint64_t)hi : x > hi;
		} else if (ptype == PQ_DOUBLE) {
			double x, lo, hi;
			memcpy(&x, v, 8);
			memcpy(&lo, s->min, 8);
			memcpy(&hi, s->max, 8);
			if (isnan(x))
				return;
			lt = x < lo;
			gt = x > hi;
		} else if (ptype == PQ_BOOLEAN) {
			lt = *(const uint8_t *)v < s->min[0];
			gt = *(const uint8_t *)v > s->max[0];
		} else {
			lt = cmp_bytes(v, n, s->min, s->min_len) < 0;
			gt = cmp_bytes(v, n, s->max, s->max_len) > 0;
		}
	}
	if (!s->has || lt) {
		memcpy(s->min, v, n);
		s->min_len = (uint32_t)n;
	}
	if (!s->has || gt) {
		memcpy(s->max, v, n);
		s->max_len = (uint32_t)n;
	}
	s->has = 1;
}

static int put_bytes_value(column *c, const void *p, size_t n)
{
	uint32_t len = (uint32_t)n;
	if (vdb_buf_append(&c->vals, &len, 4) || vdb_buf_append(&c->vals, p, n))
		return -1;
	stat_value(&c->st, PQ_BYTE_ARRAY, 0, p, n);
	return 0;
}

static int put_def(column *c, int present)
{
	if (!present)
		c->st.nulls++;
	return vdb_buf_putc(&c->defs, (char)present);
}

static vdb_status put_member(vdb_parquet_writer *w, const char *k, size_t kn, const char *v,
			     size_t vn, vdb_error *err)
{
	column *c = find(w, k, kn);
	if (!c || c->seen_row == w->row_no || v[0] == 'n')
		return VDB_OK;
	c->seen_row = w->row_no;
	int fail = 0;
	if (c->ptype == PQ_BYTE_ARRAY) {
		vj_reader r;
		vdb_buf s = VDB_BUF_INIT;
		vj_init(&r, v, vn);
		if (vj_string(&r, &s)) {
			vdb_buf_free(&s);
			return vdb_err(err, VDB_ECORRUPT, "stored payload: %s", r.err);
		}
		fail = put_bytes_value(c, s.data ? s.data : "", s.len);
		vdb_buf_free(&s);
	} else if (c->ptype == PQ_BOOLEAN) {
		uint8_t b = v[0] == 't';
		fail = vdb_buf_putc(&c->vals, (char)b);
		stat_value(&c->st, PQ_BOOLEAN, 0, &b, 1);
	} else {
		char tmp[400];
		size_t n = vn < sizeof tmp - 1 ? vn : sizeof tmp - 1;
		memcpy(tmp, v, n);
		tmp[n] = '\0';
		if (c->ptype == PQ_INT64) {
			int64_t x = strtoll(tmp, NULL, 10);
			fail = vdb_buf_append(&c->vals, &x, 8);
			stat_value(&c->st, PQ_INT64, 0, &x, 8);
		} else {
			double x = strtod(tmp, NULL);
			fail = vdb_buf_append(&c->vals, &x, 8);
			stat_value(&c->st, PQ_DOUBLE, 0, &x, 8);
		}
	}
	return fail || put_def(c, 1) ? vdb_err_nomem(err) : VDB_OK;
}

static vdb_status flush_group(vdb_parquet_writer *w, vdb_error *err);

vdb_status vdb_parquet_writer_put(vdb_parquet_writer *w, const vdb_record *rec, vdb_error *err)
{
	vdb_status st;
	if (!w->scanned && (st = settle_columns(w, err)))
		return st;
	w->put_any = 1;
	column *id = &w->cols[0], *pl = &w->cols[2];
	int fail = 0;
	if (w->id_type == PQ_INT64) {
		int64_t x = (int64_t)rec->id.num;
		fail = vdb_buf_append(&id->vals, &x, 8);
		stat_value(&id->st, PQ_INT64, w->id_unsigned, &x, 8);
	} else if (rec->id.is_string) {
		fail = put_bytes_value(id, rec->id.str, rec->id.len);
	} else {
		char tmp[24];
		int n = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)rec->id.num);
		fail = put_bytes_value(id, tmp, (size_t)n);
	}
	w->vecs[w->rows] = rec->vector;
	fail = fail || put_def(pl, rec->payload != NULL);
	if (!fail && rec->payload)
		fail = put_bytes_value(pl, rec->payload, rec->payload_len);
	if (fail)
		return vdb_err_nomem(err);
	if (w->ncols > 3) {
		w->row_no++;
		if (rec->payload && (st = members(w, rec->payload, rec->payload_len, put_member, err)))
			return st;
		for (size_t i = 3; i < w->ncols; i++)
			if (w->cols[i].seen_row != w->row_no && put_def(&w->cols[i], 0))
				return vdb_err_nomem(err);
	}
	if (++w->rows == w->group_rows)
		return flush_group(w, err);
	return VDB_OK;
}

/* ---- writing pages ---- */

static vdb_status emit(vdb_parquet_writer *w, const void *p, size_t n, vdb_error *err)
{
	vdb_status st = vdb_ostream_write(w->out, p, n, err);
	if (!st)
		w->pos += n;
	return st;
}

/* Levels as a v1 page holds them: a 4-byte length, then the hybrid encoding. */
static int put_levels(vdb_parquet_writer *w, vdb_buf *b, const uint32_t *lv, size_t n)
{
	size_t at = b->len;
	if (vdb_buf_put_u32(b, 0) || pq_rle_encode(b, lv, n, 1))
		return -1;
	uint32_t len = (uint32_t)(b->len - at - 4);
	memcpy(b->data + at, &len, 4);
	return 0;
}

static int levels_room(vdb_parquet_writer *w, size_t n)
{
	if (n <= w->lv_cap)
		return 0;
	uint32_t *lv = realloc(w->lv, n * sizeof *lv);
	if (!lv)
		return -1;
	w->lv = lv;
	w->lv_cap = n;
	return 0;
}

/* How often a column chunk's pages get a trial of compression, and what it must save for
 * the pages up to the next trial to be compressed too; the others are stored in zstd's
 * framing as they are. float32 vectors with random low mantissa bits (most embeddings)
 * shrink by about 7% with zstd level 1 (snappy: not at all), at 450 MB/s one way and
 * 900 MB/s back; stored, they cost a copy both ways. Vectors whose bits repeat (converted
 * from bfloat16 or float16, quantized, duplicated), ids and payloads pass the trial. */
#define TRIAL_EVERY 64
#define TRIAL_SAVING 8 /* at least 1/8 of the page */

/* One data page: levels and values in w->page, compressed and written with its header. */
static vdb_status write_page(vdb_parquet_writer *w, chunk_info *ci, int32_t num_values,
			     vdb_error *err)
{
	if (!ci->num_values)
		w->chunk_pages = 0;
	int trial = w->chunk_pages++ % TRIAL_EVERY == 0;
	w->packed.len = 0;
	if (pq_compress(w->codec, !trial && w->store, &w->zctx, w->page.data, w->page.len,
			&w->packed))
		return vdb_err(err, VDB_ENOMEM, "compressing a page failed");
	if (trial)
		w->store = w->packed.len > w->page.len - w->page.len / TRIAL_SAVING;
	if (w->page.len > INT32_MAX || w->packed.len > INT32_MAX)
		return vdb_err(err, VDB_EINVAL, "a page is too large");
	tc_writer t;
	w->header.len = 0;
	tc_writer_init(&t, &w->header);
	tc_struct_begin(&t);
	tc_field_i32(&t, 1, PQ_DATA_PAGE);
	tc_field_i32(&t, 2, (int32_t)w->page.len);
	tc_field_i32(&t, 3, (int32_t)w->packed.len);
	tc_field_struct(&t, 5);
	tc_field_i32(&t, 1, num_values);
	tc_field_i32(&t, 2, PQ_PLAIN);
	tc_field_i32(&t, 3, PQ_RLE);
	tc_field_i32(&t, 4, PQ_RLE);
	tc_struct_end(&t);
	tc_struct_end(&t);
	if (t.failed)
		return vdb_err_nomem(err);
	vdb_status st;
	if (!ci->num_values)
		ci->offset = (int64_t)w->pos;
	if ((st = emit(w, w->header.data, w->header.len, err)) ||
	    (st = emit(w, w->packed.data, w->packed.len, err)))
		return st;
	ci->num_values += num_values;
	ci->uncompressed += (int64_t)(w->header.len + w->page.len);
	ci->compressed += (int64_t)(w->header.len + w->packed.len);
	return VDB_OK;
}

/* An RLE run of the hybrid encoding (bit width 1: the value takes a byte). */
static int put_run(vdb_buf *b, uint64_t count, uint8_t value)
{
	return tc_put_uvarint(b, count << 1) || vdb_buf_putc(b, (char)value);
}

/* The vector column's pages: levels as runs (each row: repetition 0 then dim - 1 ones;
 * definition all 1), written as such rather than encoded value by value. */
static void min_max(const float *v, size_t n, float *lo_out, float *hi_out);

static vdb_status write_vectors(vdb_parquet_writer *w, chunk_info *ci, float *lo, float *hi,
				vdb_error *err)
{
	size_t row_bytes = (size_t)w->dim * 4;
	size_t per_page = PAGE_BYTES / row_bytes ? PAGE_BYTES / row_bytes : 1;
	vdb_status st;
	*lo = *hi = 0;
	for (uint64_t r = 0; r < w->rows; r += per_page) {
		size_t n = w->rows - r < per_page ? (size_t)(w->rows - r) : per_page;
		size_t values = n * w->dim, at;
		int fail = 0;
		w->page.len = 0;
		for (int which = 0; which < 2 && !fail; which++) {
			at = w->page.len;
			fail = vdb_buf_put_u32(&w->page, 0);
			if (which == 1 || w->dim == 1)
				fail = fail || put_run(&w->page, values, (uint8_t)which);
			else
				for (size_t i = 0; i < n && !fail; i++)
					fail = put_run(&w->page, 1, 0) || put_run(&w->page, w->dim - 1, 1);
			uint32_t len = (uint32_t)(w->page.len - at - 4);
			if (!fail)
				memcpy(w->page.data + at, &len, 4);
		}
		if (fail || vdb_buf_reserve(&w->page, values * 4))
			return vdb_err_nomem(err);
		/* The values, and the statistics while they are in the cache. */
		for (size_t i = 0; i < n; i++) {
			const float *v = w->vecs[r + i];
			memcpy(w->page.data + w->page.len, v, (size_t)w->dim * 4);
			w->page.len += (size_t)w->dim * 4;
			float plo, phi;
			min_max(v, w->dim, &plo, &phi);
			int first = r == 0 && i == 0;
			*lo = first || plo < *lo ? plo : *lo;
			*hi = first || phi > *hi ? phi : *hi;
		}
		if ((st = write_page(w, ci, (int32_t)values, err)))
			return st;
	}
	return VDB_OK;
}

/* The PLAIN size of value i starting at p (BYTE_ARRAY: 4 + its length). */
static size_t value_size(int ptype, const uint8_t *p)
{
	if (ptype == PQ_BYTE_ARRAY) {
		uint32_t n;
		memcpy(&n, p, 4);
		return 4 + (size_t)n;
	}
	return ptype == PQ_BOOLEAN ? 1 : 8;
}

/* A flat column: pages of about PAGE_BYTES of values; optional columns carry their
 * definition levels. Booleans are buffered a byte each and bit-packed here. */
static vdb_status write_flat(vdb_parquet_writer *w, column *c, int optional, chunk_info *ci,
			     vdb_error *err)
{
	const uint8_t *v = (const uint8_t *)c->vals.data, *vend = v + c->vals.len;
	const uint8_t *defs = (const uint8_t *)c->defs.data;
	vdb_status st;
	for (uint64_t r = 0; r < w->rows;) {
		uint64_t start = r;
		const uint8_t *vstart = v;
		size_t bytes = 0;
		while (r < w->rows && (bytes < PAGE_BYTES || r == start)) {
			if (!optional || defs[r]) {
				if (v >= vend)
					return vdb_err(err, VDB_EINVAL, "column values out of step");
				size_t s = value_size(c->ptype, v);
				v += s;
				bytes += s;
			}
			r++;
		}
		size_t n = (size_t)(r - start);
		w->page.len = 0;
		if (optional) {
			if (levels_room(w, n))
				return vdb_err_nomem(err);
			for (size_t i = 0; i < n; i++)
				w->lv[i] = defs[start + i];
			if (put_levels(w, &w->page, w->lv, n))
				return vdb_err_nomem(err);
		}
		if (c->ptype == PQ_BOOLEAN) {
			size_t k = (size_t)(v - vstart), at = w->page.len;
			if (vdb_buf_reserve(&w->page, (k + 7) / 8))
				return vdb_err_nomem(err);
			memset(w->page.data + at, 0, (k + 7) / 8);
			for (size_t i = 0; i < k; i++)
				if (vstart[i])
					w->page.data[at + i / 8] |= (char)(1u << (i % 8));
			w->page.len += (k + 7) / 8;
		} else if (vdb_buf_append(&w->page, vstart, (size_t)(v - vstart))) {
			return vdb_err_nomem(err);
		}
		if ((st = write_page(w, ci, (int32_t)n, err)))
			return st;
	}
	return VDB_OK;
}

/* The least and greatest of n > 0 floats (finite: vdb stores no others). With SSE, four
 * lanes at a time (minps is exactly `x < m ? x : m`); the compiler does not vectorize the
 * scalar loop without -O3. */
static void min_max(const float *v, size_t n, float *lo_out, float *hi_out)
{
	float lo = v[0], hi = v[0];
	size_t k = 0;
#if defined(__SSE2__)
	__m128 lo4 = _mm_set1_ps(v[0]), hi4 = lo4;
	for (; k + 4 <= n; k += 4) {
		__m128 x = _mm_loadu_ps(v + k);
		lo4 = _mm_min_ps(x, lo4);
		hi4 = _mm_max_ps(x, hi4);
	}
	float l[4], h[4];
	_mm_storeu_ps(l, lo4);
	_mm_storeu_ps(h, hi4);
	for (int j = 0; j < 4; j++) {
		lo = l[j] < lo ? l[j] : lo;
		hi = h[j] > hi ? h[j] : hi;
	}
#endif
	for (; k < n; k++) {
		lo = v[k] < lo ? v[k] : lo;
		hi = v[k] > hi ? v[k] : hi;
	}
	*lo_out = lo;
	*hi_out = hi;
}

static vdb_status flush_group(vdb_parquet_writer *w, vdb_error *err)
{
	if (!w->rows)
		return VDB_OK;
	if (w->ngroups == w->groups_cap) {
		size_t cap = w->groups_cap ? w->groups_cap * 2 : 16;
		chunk_info *ci = realloc(w->chunks, cap * w->ncols * sizeof *ci);
		if (!ci)
			return vdb_err_nomem(err);
		w->chunks = ci;
		int64_t *gr = realloc(w->group_rows_done, cap * sizeof *gr);
		if (!gr)
			return vdb_err_nomem(err);
		w->group_rows_done = gr;
		w->groups_cap = cap;
	}
	chunk_info *ci = &w->chunks[w->ngroups * w->ncols];
	memset(ci, 0, w->ncols * sizeof *ci);
	vdb_status st = w->pos ? VDB_OK : emit(w, "PAR1", 4, err);
	for (size_t i = 0; i < w->ncols && !st; i++) {
		column *c = &w->cols[i];
		if (i == 1) {
			float lo, hi;
			st = write_vectors(w, &ci[1], &lo, &hi, err);
			/* A zero bound is written as -0 (min) and +0 (max), as the format asks. */
			lo = lo == 0 ? -0.0f : lo;
			hi = hi == 0 ? 0.0f : hi;
			stats *s = &ci[1].st;
			s->has = 1;
			memcpy(s->min, &lo, 4);
			memcpy(s->max, &hi, 4);
			s->min_len = s->max_len = 4;
		} else {
			st = write_flat(w, c, i != 0, &ci[i], err);
			ci[i].st = c->st;
			memset(&c->st, 0, sizeof c->st);
			c->vals.len = c->defs.len = 0;
		}
	}
	if (st)
		return st;
	w->group_rows_done[w->ngroups++] = (int64_t)w->rows;
	w->total_rows += w->rows;
	w->rows = 0;
	return VDB_OK;
}

/* ---- the footer ---- */

/* A SchemaElement. logical: the LogicalType union member's id (0: none; 10, INTEGER,
 * takes int_signed with 64 bits). */
static void write_schema_el(tc_writer *t, const char *name, int type, int repetition,
			    int children, int converted, int logical, int int_signed)
{
	tc_struct_begin(t);
	if (type >= 0)
		tc_field_i32(t, 1, type);
	tc_field_i32(t, 3, repetition);
	tc_field_string(t, 4, name);
	if (children)
		tc_field_i32(t, 5, children);
	if (converted >= 0)
		tc_field_i32(t, 6, converted);
	if (logical) {
		tc_field_struct(t, 10);
		tc_field_struct(t, (int16_t)logical);
		if (logical == 10) {
			tc_field_byte(t, 1, 64);
			tc_field_bool(t, 2, int_signed);
		}
		tc_struct_end(t);
		tc_struct_end(t);
	}
	tc_struct_end(t);
}

static void write_stats(tc_writer *t, const stats *s)
{
	tc_field_struct(t, 12);
	tc_field_i64(t, 3, s->nulls);
	if (s->has && !s->too_long) {
		tc_field_binary(t, 5, s->max, s->max_len);
		tc_field_binary(t, 6, s->min, s->min_len);
	}
	tc_struct_end(t);
}

static vdb_status write_footer(vdb_parquet_writer *w, vdb_error *err)
{
	vdb_buf b = VDB_BUF_INIT, arrow = VDB_BUF_INIT;
	tc_writer tw, *t = &tw;
	tc_writer_init(t, &b);
	tc_struct_begin(t);
	tc_field_i32(t, 1, 1);
	/* The schema, depth first. */
	tc_field_list(t, 2, TC_STRUCT, (uint32_t)(w->ncols + 3));
	write_schema_el(t, "schema", -1, PQ_REQUIRED, (int)w->ncols, -1, 0, 0);
	if (w->id_type == PQ_BYTE_ARRAY) {
		write_schema_el(t, "id", PQ_BYTE_ARRAY, PQ_REQUIRED, 0, PQ_CT_UTF8, 1, 0);
	} else if (w->id_unsigned) {
		write_schema_el(t, "id", PQ_INT64, PQ_REQUIRED, 0, PQ_CT_UINT_64, 10, 0);
	} else {
		write_schema_el(t, "id", PQ_INT64, PQ_REQUIRED, 0, -1, 0, 0);
	}
	write_schema_el(t, "vector", -1, PQ_REQUIRED, 1, PQ_CT_LIST, 3, 0);
	write_schema_el(t, "list", -1, PQ_REPEATED, 1, -1, 0, 0);
	write_schema_el(t, "element", PQ_FLOAT, PQ_REQUIRED, 0, -1, 0, 0);
	write_schema_el(t, "payload", PQ_BYTE_ARRAY, PQ_OPTIONAL, 0, PQ_CT_JSON, 12, 0);
	for (size_t i = 3; i < w->ncols; i++) {
		column *c = &w->cols[i];
		int str = c->ptype == PQ_BYTE_ARRAY;
		write_schema_el(t, c->name, c->ptype, PQ_OPTIONAL, 0, str ? PQ_CT_UTF8 : -1,
				str ? 1 : 0, 0);
	}
	tc_field_i64(t, 3, (int64_t)w->total_rows);
	/* Row groups. */
	tc_field_list(t, 4, TC_STRUCT, (uint32_t)w->ngroups);
	for (size_t g = 0; g < w->ngroups; g++) {
		chunk_info *ci = &w->chunks[g * w->ncols];
		int64_t uncompressed = 0, compressed = 0;
		tc_struct_begin(t);
		tc_field_list(t, 1, TC_STRUCT, (uint32_t)w->ncols);
		for (size_t i = 0; i < w->ncols; i++) {
			column *c = &w->cols[i];
			int vec = i == 1;
			tc_struct_begin(t);
			tc_field_i64(t, 2, ci[i].offset);
			tc_field_struct(t, 3);
			tc_field_i32(t, 1, c->ptype);
			tc_field_list(t, 2, TC_I32, 2);
			tc_elem_i32(t, PQ_PLAIN);
			tc_elem_i32(t, PQ_RLE);
			tc_field_list(t, 3, TC_BINARY, vec ? 3 : 1);
			tc_elem_string(t, c->name);
			if (vec) {
				tc_elem_string(t, "list");
				tc_elem_string(t, "element");
			}
			tc_field_i32(t, 4, w->codec);
			tc_field_i64(t, 5, ci[i].num_values);
			tc_field_i64(t, 6, ci[i].uncompressed);
			tc_field_i64(t, 7, ci[i].compressed);
			tc_field_i64(t, 9, ci[i].offset);
			write_stats(t, &ci[i].st);
			tc_struct_end(t);
			tc_struct_end(t);
			uncompressed += ci[i].uncompressed;
			compressed += ci[i].compressed;
		}
		tc_field_i64(t, 2, uncompressed);
		tc_field_i64(t, 3, w->group_rows_done[g]);
		tc_field_i64(t, 5, ci[0].offset);
		tc_field_i64(t, 6, compressed);
		tc_field_i32(t, 7, (int32_t)g);
		tc_struct_end(t);
	}
	/* ARROW:schema. */
	arrow_field *af = calloc(w->ncols, sizeof *af);
	if (!af)
		goto nomem;
	af[0] = (arrow_field){"id", w->id_type == PQ_BYTE_ARRAY ? ARROW_UTF8
				    : w->id_unsigned ? ARROW_UINT64 : ARROW_INT64, 0, 0};
	af[1] = (arrow_field){"vector", ARROW_FIXED_SIZE_LIST_FLOAT, 0, (int32_t)w->dim};
	af[2] = (arrow_field){"payload", ARROW_UTF8, 1, 0};
	for (size_t i = 3; i < w->ncols; i++) {
		int p = w->cols[i].ptype;
		af[i] = (arrow_field){w->cols[i].name, p == PQ_BYTE_ARRAY ? ARROW_UTF8
					   : p == PQ_INT64 ? ARROW_INT64
					   : p == PQ_DOUBLE ? ARROW_DOUBLE : ARROW_BOOL, 1, 0};
	}
	int afail = arrow_schema_base64(&arrow, af, w->ncols);
	free(af);
	if (afail)
		goto nomem;
	tc_field_list(t, 5, TC_STRUCT, 1);
	tc_struct_begin(t);
	tc_field_string(t, 1, "ARROW:schema");
	tc_field_binary(t, 2, arrow.data, arrow.len);
	tc_struct_end(t);
	tc_field_string(t, 6, "vdb version " VDB_VERSION);
	/* Column orders: every leaf ordered as its type defines. */
	tc_field_list(t, 7, TC_STRUCT, (uint32_t)w->ncols);
	for (size_t i = 0; i < w->ncols; i++) {
		tc_struct_begin(t);
		tc_field_struct(t, 1);
		tc_struct_end(t);
		tc_struct_end(t);
	}
	tc_struct_end(t);
	if (t->failed)
		goto nomem;
	uint32_t len = (uint32_t)b.len;
	vdb_status st = emit(w, b.data, b.len, err);
	if (!st)
		st = emit(w, &len, 4, err);
	if (!st)
		st = emit(w, "PAR1", 4, err);
	vdb_buf_free(&b);
	vdb_buf_free(&arrow);
	return st;
nomem:
	vdb_buf_free(&b);
	vdb_buf_free(&arrow);
	return vdb_err_nomem(err);
}

vdb_status vdb_parquet_writer_finish(vdb_parquet_writer *w, vdb_error *err)
{
	vdb_status st = VDB_OK;
	if (!w->scanned)
		st = settle_columns(w, err);
	if (!st)
		st = flush_group(w, err);
	if (!st && w->pos == 0) /* no rows: a file with the schema and no row group */
		st = emit(w, "PAR1", 4, err);
	if (!st)
		st = write_footer(w, err);
	return st;
}

void vdb_parquet_writer_free(vdb_parquet_writer *w)
{
	if (!w)
		return;
	for (size_t i = 0; i < w->ncols; i++) {
		free(w->cols[i].name);
		vdb_buf_free(&w->cols[i].vals);
		vdb_buf_free(&w->cols[i].defs);
	}
	free(w->cols);
	free(w->index);
	free(w->vecs);
	free(w->chunks);
	free(w->group_rows_done);
	free(w->lv);
	vdb_buf_free(&w->page);
	vdb_buf_free(&w->packed);
	pq_compress_free(w->zctx);
	vdb_buf_free(&w->levels);
	vdb_buf_free(&w->header);
	free(w);
}
