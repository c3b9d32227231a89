/* vdb-ingest's Parquet reader (parquet.h): the files DuckDB, Arrow (pyarrow, Polars), Spark
 * and vdb-export write.
 *
 * Opening reads the footer and checks it whole before any row is read: the schema's shape,
 * which column is the id, the vector and the payload, that every column chunk lies inside
 * the file, and that its type and compression are ones read here. Rows are then assembled
 * one at a time from one cursor per column, each reading its chunk page by page with
 * pread: memory is a page or two per column, whatever the file's size.
 *
 * Columns:
 *   id       INT32/INT64 (signed or not; negative values are refused) or a UTF-8
 *            BYTE_ARRAY; absent: the row number
 *   vector   a list (three-level LIST, two-level, or a repeated field) of FLOAT or DOUBLE
 *            (rounded to float32 as vdb-ingest rounds .npy float64)
 *   payload  a JSON text column whose objects are the payloads
 *   others   become payload keys: numbers, booleans, strings, dates (YYYY-MM-DD),
 *            timestamps (ISO 8601, Z when UTC-adjusted), JSON values, lists of these as
 *            arrays; nulls are left out. Structs, maps, lists of lists, DECIMAL and the
 *            other annotations are refused at open, naming the column. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../util/error.h"
#include "../util/numfmt.h"
#include "json.h"
#include "parquet.h"

#define MAX_FOOTER (64u << 20)
#define MAX_PAGE_BYTES (1u << 30)
/* DuckDB writes a row group's list elements as one page: 122,880 rows of 1536-d vectors
 * are 189 million values. */
#define MAX_PAGE_VALUES (1u << 28)
#define MAX_SCHEMA_DEPTH 32
#define FIRST_HEADER_READ 256
#define MAX_HEADER (16u << 20)

enum { R_ID, R_VECTOR, R_PAYLOAD, R_FIELD };

typedef pq_slice slice;

/* A payload member a column gave a row: text[start..end), from leaf `leaf`. */
typedef struct span {
	size_t start, end, leaf;
} span;

/* One leaf column the rows are read from, with its cursor. */
typedef struct leaf {
	char *name; /* the top-level field's name, NUL-terminated */
	size_t name_len;
	int role;
	uint32_t col; /* its column chunk's place in a row group */
	int ptype;
	int32_t type_length;
	pq_kind kind;
	int int_bits, int_signed, time_unit, utc;
	int max_def, max_rep;
	int def_list;  /* lists: the definition level at which a list has an element */
	int optional_list; /* lists: a level below def_list - 1 is a null list, not an empty one */
	/* The chunk being read. */
	int64_t pos, end, values_left;
	int codec;
	/* The dictionary, as decoded values. */
	uint8_t *dict_bytes;
	void *dict;
	uint32_t dict_n;
	/* The page being read. */
	uint8_t *raw, *page;
	size_t raw_cap, page_cap;
	uint8_t *def, *rep; /* levels: a schema nests at most MAX_SCHEMA_DEPTH deep */
	size_t lv_cap;
	uint32_t n, i; /* level entries, and the next one */
	/* The vector's page: entries [reg_start, reg_end) are whole rows of dim values, no
	 * nulls (a page may begin with the end of a row, and end with part of one). */
	uint32_t reg_start, reg_end;
	void *vals;
	size_t vals_cap;
	const uint8_t *in_page; /* the vector's PLAIN values, read in place (else vals) */
	uint32_t nvals, vi;
	vdb_buf built; /* DELTA_BYTE_ARRAY values, rebuilt */
} leaf;

struct vdb_parquet_reader {
	int fd;
	uint64_t size;
	uint32_t dim;
	uint8_t *footer;
	pq_file_meta m;
	leaf *leaves;
	size_t nleaves;
	uint32_t ncolumns;     /* leaves in the schema */
	int id_leaf, vec_leaf; /* -1: none */
	uint32_t group;        /* the row group being read */
	int64_t group_left;    /* its rows not yet read */
	uint64_t row, next_row;
	float *vec;
	vdb_buf idbuf, keybuf, payload, text, assembled;
	span *spans;
	vdb_jsonl_parser *jp;
	uint8_t *hdr;
	size_t hdr_cap;
	/* dim bytes of 1: a regular vector row's repetition levels after its first; and of the
	 * vector column's maximum definition level. */
	uint8_t *ones, *full_def;
	char why[160];
};

/* ---- reading bytes ---- */

static vdb_status read_at(vdb_parquet_reader *r, void *buf, size_t n, int64_t off,
			  vdb_error *err)
{
	size_t done = 0;
	while (done < n) {
		ssize_t k = pread(r->fd, (char *)buf + done, n - done, (off_t)(off + (int64_t)done));
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return vdb_err_sys(err, VDB_EIO, "read");
		if (k == 0)
			return vdb_err(err, VDB_EDATA, "the file ends early (was it truncated while "
				       "being read?)");
		done += (size_t)k;
	}
	return VDB_OK;
}

static int grow(void **p, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	size_t c = *cap ? *cap : 64;
	while (c < need)
		c = c > SIZE_MAX / 2 ? need : c * 2;
	void *q = realloc(*p, c);
	if (!q)
		return -1;
	*p = q;
	*cap = c;
	return 0;
}

/* ---- the schema ---- */

static size_t value_size(int ptype)
{
	switch (ptype) {
	case PQ_FLOAT: return sizeof(float);
	case PQ_DOUBLE: return sizeof(double);
	case PQ_BYTE_ARRAY:
	case PQ_FIXED_LEN_BYTE_ARRAY: return sizeof(slice);
	default: return sizeof(int64_t); /* BOOLEAN, INT32, INT64, INT96 */
	}
}

/* A top-level field's shape. */
typedef struct field {
	uint32_t el;           /* its schema element */
	uint32_t leaf_el;      /* its single leaf's element */
	uint32_t first_leaf;   /* its first leaf's column number */
	uint32_t nleaves;
	int max_def, max_rep, def_list, optional_list;
	const char *unsupported; /* why it cannot be read, or NULL */
} field;

static char *name_of(const pq_schema_el *e)
{
	char *s = malloc(e->name_len + 1);
	if (s) {
		memcpy(s, e->name, e->name_len);
		s[e->name_len] = '\0';
	}
	return s;
}

/* Counts the leaves under element *i (advancing *i past them); -1 when the tree does not
 * add up. */
static int64_t count_leaves(const pq_file_meta *m, uint32_t *i, int depth)
{
	if (*i >= m->nschema || depth > MAX_SCHEMA_DEPTH)
		return -1;
	const pq_schema_el *e = &m->schema[(*i)++];
	if (!e->num_children)
		return 1;
	int64_t total = 0;
	for (int32_t c = 0; c < e->num_children; c++) {
		int64_t k = count_leaves(m, i, depth + 1);
		if (k < 0)
			return -1;
		total += k;
	}
	return total;
}

/* The shape of the top-level field at element `at`: a plain column, or a list of a plain
 * element (three-level LIST, two-level LIST, or a repeated primitive). */
static void shape(const pq_file_meta *m, uint32_t at, field *f)
{
	const pq_schema_el *e = &m->schema[at];
	int def = e->repetition != PQ_REQUIRED, rep = e->repetition == PQ_REPEATED;
	f->el = at;
	f->unsupported = NULL;
	if (!e->num_children) {
		f->leaf_el = at;
		f->max_def = def;
		f->max_rep = rep;
		f->def_list = def;
		f->optional_list = 0;
		return;
	}
	if (e->kind == PQ_K_MAP) {
		f->unsupported = "MAP columns are not supported";
		return;
	}
	if (e->kind != PQ_K_LIST || rep) {
		f->unsupported = "nested (STRUCT) columns are not supported";
		return;
	}
	const pq_schema_el *c = &m->schema[at + 1];
	if (e->num_children != 1 || c->repetition != PQ_REPEATED) {
		f->unsupported = "a LIST whose child is not one repeated field";
		return;
	}
	f->optional_list = def;
	f->def_list = def + 1;
	f->max_rep = 1;
	if (!c->num_children) { /* two-level: repeated primitive */
		f->leaf_el = at + 1;
		f->max_def = def + 1;
		return;
	}
	const pq_schema_el *g = &m->schema[at + 2];
	if (c->num_children != 1 || g->num_children) {
		f->unsupported = "lists of lists or of structs are not supported";
		return;
	}
	f->leaf_el = at + 2;
	f->max_def = def + 1 + (g->repetition != PQ_REQUIRED);
	if (g->repetition == PQ_REPEATED)
		f->unsupported = "lists of lists are not supported";
}

static const char *kind_problem(const pq_schema_el *e)
{
	static char buf[96];
	if (e->kind == PQ_K_OTHER) {
		snprintf(buf, sizeof buf, "%s values are not supported", e->other);
		return buf;
	}
	if (e->type == PQ_FIXED_LEN_BYTE_ARRAY)
		return "FIXED_LEN_BYTE_ARRAY values are not supported";
	if (e->type == PQ_BYTE_ARRAY && e->kind != PQ_K_NONE && e->kind != PQ_K_STRING &&
	    e->kind != PQ_K_JSON)
		return "this BYTE_ARRAY annotation is not supported";
	return NULL;
}

static vdb_status column_error(vdb_error *err, const pq_schema_el *e, const char *why)
{
	return vdb_err(err, VDB_EDATA, "column '%.*s': %s", (int)(e->name_len > 200 ? 200 :
		       e->name_len), e->name, why);
}

static int named(const pq_schema_el *e, const char *s)
{
	return s && strlen(s) == e->name_len && !memcmp(e->name, s, e->name_len);
}

static vdb_status add_leaf(vdb_parquet_reader *r, const field *f, int role, vdb_error *err)
{
	const pq_schema_el *top = &r->m.schema[f->el], *e = &r->m.schema[f->leaf_el];
	leaf *l = &r->leaves[r->nleaves];
	memset(l, 0, sizeof *l);
	if (!(l->name = name_of(top)))
		return vdb_err_nomem(err);
	r->nleaves++;
	l->name_len = top->name_len;
	l->role = role;
	l->col = f->first_leaf;
	l->ptype = e->type;
	l->type_length = e->type_length;
	l->kind = e->kind;
	l->int_bits = e->int_bits;
	l->int_signed = e->int_signed;
	l->time_unit = e->time_unit;
	l->utc = e->utc;
	if (e->type == PQ_INT96) { /* Spark's and Impala's timestamps, in UTC */
		l->kind = PQ_K_TIMESTAMP;
		l->time_unit = 2;
		l->utc = 1;
	}
	l->max_def = f->max_def;
	l->max_rep = f->max_rep;
	l->def_list = f->def_list;
	l->optional_list = f->optional_list;
	return VDB_OK;
}

/* Decides the role of every top-level field and checks that each can be read. */
static vdb_status map_columns(vdb_parquet_reader *r, const vdb_csv_options *o, vdb_error *err)
{
	const pq_file_meta *m = &r->m;
	const pq_schema_el *root = &m->schema[0];
	uint32_t nfields = (uint32_t)root->num_children;
	if (!nfields)
		return vdb_err(err, VDB_EDATA, "the schema has no columns");
	field *fs = calloc(nfields, sizeof *fs);
	if (!fs)
		return vdb_err_nomem(err);
	vdb_status st = VDB_OK;
	uint32_t at = 1, leaves = 0;
	for (uint32_t k = 0; k < nfields; k++) {
		uint32_t start = at;
		int64_t n = count_leaves(m, &at, 1);
		if (n < 0) {
			st = vdb_err(err, VDB_EDATA, "the schema's tree does not add up");
			goto done;
		}
		fs[k].first_leaf = leaves;
		fs[k].nleaves = (uint32_t)n;
		leaves += (uint32_t)n;
		shape(m, start, &fs[k]);
	}
	if (at != m->nschema) {
		st = vdb_err(err, VDB_EDATA, "the schema has elements outside its tree");
		goto done;
	}
	r->ncolumns = leaves;
	/* The vector: by name, else the only list of FLOAT or DOUBLE. */
	int vec = -1, id = -1, pl = -1, candidates = 0;
	const char *vname = o->vector_column && *o->vector_column ? o->vector_column : "vector";
	for (uint32_t k = 0; k < nfields; k++) {
		const pq_schema_el *e = &m->schema[fs[k].el];
		if (named(e, vname))
			vec = (int)k;
		if (named(e, o->id_column))
			id = (int)k;
		if (o->payload_column && *o->payload_column && named(e, o->payload_column))
			pl = (int)k;
	}
	if (vec < 0 && strcmp(vname, "vector")) {
		st = vdb_err(err, VDB_EDATA, "no column is named '%s' (the vector column)", vname);
		goto done;
	}
	if (vec < 0) {
		for (uint32_t k = 0; k < nfields; k++) {
			const pq_schema_el *leaf_el = &m->schema[fs[k].leaf_el];
			if (!fs[k].unsupported && fs[k].max_rep == 1 &&
			    (leaf_el->type == PQ_FLOAT || leaf_el->type == PQ_DOUBLE)) {
				vec = (int)k;
				candidates++;
			}
		}
		if (candidates != 1) {
			st = vdb_err(err, VDB_EDATA, candidates
				? "no column is named '%s' and several are lists of numbers: name the "
				  "vector column (--vector-column)"
				: "no column is named '%s' and none is a list of FLOAT or DOUBLE: name "
				  "the vector column (--vector-column)", vname);
			goto done;
		}
	}
	if (vec == id || vec == pl || (id >= 0 && id == pl)) {
		st = vdb_err(err, VDB_EDATA, "one column cannot be two of id, vector and payload");
		goto done;
	}
	if (!(r->leaves = calloc(nfields, sizeof *r->leaves))) {
		st = vdb_err_nomem(err);
		goto done;
	}
	for (uint32_t k = 0; k < nfields && !st; k++) {
		field *f = &fs[k];
		const pq_schema_el *top = &m->schema[f->el], *e = &m->schema[f->leaf_el];
		int role = (int)k == vec ? R_VECTOR : (int)k == id ? R_ID : (int)k == pl ? R_PAYLOAD
										     : R_FIELD;
		if (f->unsupported)
			st = column_error(err, top, f->unsupported);
		else if (role == R_VECTOR && (f->max_rep != 1 || (e->type != PQ_FLOAT &&
								  e->type != PQ_DOUBLE)))
			st = column_error(err, top, f->max_rep != 1 ? "the vector column is not a list"
				: "the vector's elements are not FLOAT or DOUBLE");
		else if (role == R_ID && (f->max_rep || (e->type != PQ_INT32 &&
				e->type != PQ_INT64 && e->type != PQ_BYTE_ARRAY &&
				e->type != PQ_FLOAT && e->type != PQ_DOUBLE) ||
				(e->kind != PQ_K_NONE && e->kind != PQ_K_INT && e->kind != PQ_K_STRING)))
			st = column_error(err, top, "ids are integers (INT32, INT64, or whole FLOAT or "
					  "DOUBLE numbers) or strings");
		else if (role == R_PAYLOAD && (f->max_rep || e->type != PQ_BYTE_ARRAY ||
					       (e->kind != PQ_K_NONE && e->kind != PQ_K_STRING &&
						e->kind != PQ_K_JSON)))
			st = column_error(err, top, "the payload column holds JSON text (strings)");
		else if (kind_problem(e) && role != R_VECTOR)
			st = column_error(err, top, kind_problem(e));
		if (!st)
			st = add_leaf(r, f, role, err);
		if (!st && role == R_ID)
			r->id_leaf = (int)r->nleaves - 1;
		if (!st && role == R_VECTOR)
			r->vec_leaf = (int)r->nleaves - 1;
	}
done:
	free(fs);
	return st;
}

/* Every chunk of every read column lies in the file, with a type and codec read here. */
static vdb_status check_chunks(vdb_parquet_reader *r, int64_t data_end, vdb_error *err)
{
	for (uint32_t g = 0; g < r->m.ngroups; g++) {
		const pq_row_group *rg = &r->m.groups[g];
		if (rg->ncols != r->ncolumns)
			return vdb_err(err, VDB_EDATA, "row group %u has %u columns, the schema %u", g,
				       rg->ncols, r->ncolumns);
		for (size_t k = 0; k < r->nleaves; k++) {
			const leaf *l = &r->leaves[k];
			const pq_chunk *c = &rg->cols[l->col];
			int64_t start = c->data_page_offset;
			if (c->dictionary_page_offset > 0 && c->dictionary_page_offset < start)
				start = c->dictionary_page_offset;
			if (c->type != l->ptype)
				return vdb_err(err, VDB_EDATA, "column '%s': row group %u stores %s values, "
					       "the schema says %s", l->name, g, pq_type_name(c->type),
					       pq_type_name(l->ptype));
			if (start < 4 || c->total_compressed > data_end - start)
				return vdb_err(err, VDB_EDATA, "column '%s': row group %u lies outside the "
					       "file (offset %" PRId64 ", %" PRId64 " bytes)", l->name,
					       g, start, c->total_compressed);
			char why[96];
			uint8_t probe = 0;
			if (c->codec != PQ_UNCOMPRESSED &&
			    pq_decompress(c->codec, &probe, 0, &probe, 0, why, sizeof why) == -2)
				return vdb_err(err, VDB_EDATA, "column '%s': %s", l->name, why);
			if (l->max_rep == 0 && c->num_values < rg->num_rows)
				return vdb_err(err, VDB_EDATA, "column '%s': row group %u holds fewer values "
					       "than rows", l->name, g);
		}
	}
	return VDB_OK;
}

static void start_group(vdb_parquet_reader *r)
{
	const pq_row_group *rg = &r->m.groups[r->group];
	r->group_left = rg->num_rows;
	for (size_t k = 0; k < r->nleaves; k++) {
		leaf *l = &r->leaves[k];
		const pq_chunk *c = &rg->cols[l->col];
		l->pos = c->data_page_offset;
		if (c->dictionary_page_offset > 0 && c->dictionary_page_offset < l->pos)
			l->pos = c->dictionary_page_offset;
		l->end = l->pos + c->total_compressed;
		l->values_left = c->num_values;
		l->codec = c->codec;
		free(l->dict);
		free(l->dict_bytes);
		l->dict = NULL;
		l->dict_bytes = NULL;
		l->dict_n = 0;
		l->n = l->i = 0;
		l->nvals = l->vi = 0;
	}
}

vdb_status vdb_parquet_reader_open(int fd, uint64_t size, uint32_t dim, const vdb_csv_options *o,
				   vdb_parquet_reader **out, vdb_error *err)
{
	vdb_csv_options defaults;
	if (!o) {
		vdb_csv_options_init(&defaults);
		o = &defaults;
	}
	vdb_parquet_reader *r = calloc(1, sizeof *r);
	if (!r)
		return vdb_err_nomem(err);
	r->fd = fd;
	r->size = size;
	r->dim = dim;
	r->id_leaf = r->vec_leaf = -1;
	uint8_t tail[8], head[4];
	vdb_status st;
	if (size < 12) {
		st = vdb_err(err, VDB_EDATA, "not a Parquet file (%" PRIu64 " bytes is too short)",
			     size);
		goto fail;
	}
	if ((st = read_at(r, head, 4, 0, err)) || (st = read_at(r, tail, 8, (int64_t)size - 8, err)))
		goto fail;
	if (!memcmp(tail + 4, "PARE", 4)) {
		st = vdb_err(err, VDB_EDATA, "encrypted Parquet files are not supported");
		goto fail;
	}
	if (memcmp(head, "PAR1", 4) || memcmp(tail + 4, "PAR1", 4)) {
		st = vdb_err(err, VDB_EDATA, memcmp(head, "PAR1", 4)
			? "not a Parquet file (it does not start with PAR1)"
			: "the file does not end with PAR1: it is truncated or not Parquet");
		goto fail;
	}
	uint32_t flen = (uint32_t)tail[0] | (uint32_t)tail[1] << 8 | (uint32_t)tail[2] << 16 |
			(uint32_t)tail[3] << 24;
	if ((uint64_t)flen > size - 12) {
		st = vdb_err(err, VDB_EDATA, "the footer's length (%u bytes) is more than the file "
			     "holds: it is truncated or damaged", flen);
		goto fail;
	}
	if (flen > MAX_FOOTER) {
		st = vdb_err(err, VDB_EDATA, "the footer is %u bytes: more than the %u vdb reads",
			     flen, MAX_FOOTER);
		goto fail;
	}
	int64_t data_end = (int64_t)(size - 8 - flen);
	if (!(r->footer = malloc(flen ? flen : 1))) {
		st = vdb_err_nomem(err);
		goto fail;
	}
	if ((st = read_at(r, r->footer, flen, data_end, err)))
		goto fail;
	char why[96];
	if (pq_meta_parse(r->footer, flen, &r->m, why, sizeof why)) {
		st = vdb_err(err, VDB_EDATA, "damaged footer: %s", why);
		goto fail;
	}
	if (r->m.schema[0].num_children <= 0) {
		st = vdb_err(err, VDB_EDATA, "the schema has no columns");
		goto fail;
	}
	if ((st = map_columns(r, o, err)) || (st = check_chunks(r, data_end, err)))
		goto fail;
	if (!(r->vec = malloc((size_t)dim * sizeof(float))) ||
	    !(r->spans = malloc((r->nleaves + 1) * sizeof *r->spans)) ||
	    vdb_jsonl_parser_new(dim, &r->jp, err)) {
		st = vdb_err_nomem(err);
		goto fail;
	}
	r->group = 0;
	if (r->m.ngroups)
		start_group(r);
	*out = r;
	return VDB_OK;
fail:
	vdb_parquet_reader_close(r);
	return st;
}

uint64_t vdb_parquet_reader_row(const vdb_parquet_reader *r)
{
	return r->row;
}

int vdb_parquet_reader_has_ids(const vdb_parquet_reader *r)
{
	return r->id_leaf >= 0;
}

uint64_t vdb_parquet_reader_rows(const vdb_parquet_reader *r)
{
	return (uint64_t)r->m.num_rows;
}

void vdb_parquet_reader_close(vdb_parquet_reader *r)
{
	if (!r)
		return;
	for (size_t k = 0; r->leaves && k < r->nleaves; k++) {
		leaf *l = &r->leaves[k];
		free(l->name);
		free(l->dict);
		free(l->dict_bytes);
		free(l->raw);
		free(l->page);
		free(l->def);
		free(l->rep);
		free(l->vals);
		vdb_buf_free(&l->built);
	}
	free(r->leaves);
	pq_meta_free(&r->m);
	free(r->footer);
	free(r->vec);
	free(r->hdr);
	free(r->ones);
	free(r->full_def);
	vdb_buf_free(&r->idbuf);
	vdb_buf_free(&r->keybuf);
	vdb_buf_free(&r->payload);
	vdb_buf_free(&r->text);
	vdb_buf_free(&r->assembled);
	free(r->spans);
	vdb_jsonl_parser_free(r->jp);
	free(r);
}

/* ---- decoding pages ---- */

static vdb_status page_bad(vdb_parquet_reader *r, const leaf *l, const char *why,
			   vdb_error *err)
{
	return vdb_err(err, VDB_EDATA, "row %" PRIu64 ": column '%s' (row group %u): %s", r->next_row,
		       l->name, r->group, why);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int bit_width(uint32_t max)
{
	int w = 0;
	while (max >> w)
		w++;
	return w;
}

/* PLAIN values: n of the leaf's type from p[0..len) into out; *used bytes. */
static int plain(const leaf *l, const uint8_t *p, size_t len, uint32_t n, void *out, size_t *used)
{
	size_t o = 0;
	switch (l->ptype) {
	case PQ_BOOLEAN:
		if ((size_t)n > len * 8)
			return -1;
		for (uint32_t i = 0; i < n; i++)
			((int64_t *)out)[i] = p[i >> 3] >> (i & 7) & 1;
		o = ((size_t)n + 7) / 8;
		break;
	case PQ_INT32:
		if ((size_t)n * 4 > len)
			return -1;
		for (uint32_t i = 0; i < n; i++)
			((int64_t *)out)[i] = l->int_signed || l->kind != PQ_K_INT
						      ? (int64_t)(int32_t)le32(p + 4 * i)
						      : (int64_t)le32(p + 4 * i);
		o = (size_t)n * 4;
		break;
	case PQ_INT64:
	case PQ_DOUBLE:
		if ((size_t)n * 8 > len)
			return -1;
		memcpy(out, p, (size_t)n * 8);
		o = (size_t)n * 8;
		break;
	case PQ_FLOAT:
		if ((size_t)n * 4 > len)
			return -1;
		memcpy(out, p, (size_t)n * 4);
		o = (size_t)n * 4;
		break;
	case PQ_INT96:
		if ((size_t)n * 12 > len)
			return -1;
		for (uint32_t i = 0; i < n; i++) { /* nanoseconds of the day, then the Julian day */
			int64_t nanos;
			memcpy(&nanos, p + 12 * i, 8);
			int64_t day = (int64_t)le32(p + 12 * i + 8) - 2440588;
			((int64_t *)out)[i] = day * 86400000000000LL + nanos;
		}
		o = (size_t)n * 12;
		break;
	case PQ_BYTE_ARRAY:
		for (uint32_t i = 0; i < n; i++) {
			if (len - o < 4)
				return -1;
			uint32_t k = le32(p + o);
			o += 4;
			if (k > len - o)
				return -1;
			((slice *)out)[i] = (slice){p + o, k};
			o += k;
		}
		break;
	case PQ_FIXED_LEN_BYTE_ARRAY:
		if (l->type_length <= 0 || (size_t)n * (size_t)l->type_length > len)
			return -1;
		for (uint32_t i = 0; i < n; i++)
			((slice *)out)[i] = (slice){p + (size_t)i * (size_t)l->type_length,
						    (size_t)l->type_length};
		o = (size_t)n * (size_t)l->type_length;
		break;
	default:
		return -1;
	}
	*used = o;
	return 0;
}

/* BYTE_STREAM_SPLIT: byte k of value i is at k * n + i. */
static int stream_split(const leaf *l, const uint8_t *p, size_t len, uint32_t n, void *out)
{
	size_t w = l->ptype == PQ_FLOAT || l->ptype == PQ_INT32 ? 4
		   : l->ptype == PQ_DOUBLE || l->ptype == PQ_INT64 ? 8 : 0;
	if (!w || (size_t)n * w > len)
		return -1;
	for (uint32_t i = 0; i < n; i++) {
		uint8_t v[8];
		for (size_t k = 0; k < w; k++)
			v[k] = p[k * n + i];
		if (l->ptype == PQ_INT32) {
			int32_t x;
			memcpy(&x, v, 4);
			((int64_t *)out)[i] = x;
		} else {
			memcpy((uint8_t *)out + i * w, v, w);
		}
	}
	return 0;
}

/* Decodes n non-null values of a data page's value section. */
static vdb_status decode_values(vdb_parquet_reader *r, leaf *l, int encoding, const uint8_t *p,
				size_t len, uint32_t n, vdb_error *err)
{
	size_t vs = value_size(l->ptype), used;
	l->in_page = NULL;
	if (l->role == R_VECTOR && encoding == PQ_PLAIN && (size_t)n * vs <= len) {
		/* FLOAT and DOUBLE are stored as they are read: no copy of the page. */
		l->in_page = p;
		l->nvals = n;
		l->vi = 0;
		return VDB_OK;
	}
	if (grow(&l->vals, &l->vals_cap, ((size_t)n + 1) * vs))
		return vdb_err_nomem(err);
	int bad = 0;
	switch (encoding) {
	case PQ_PLAIN:
		bad = plain(l, p, len, n, l->vals, &used);
		break;
	case PQ_PLAIN_DICTIONARY:
	case PQ_RLE_DICTIONARY: {
		if (!l->dict)
			return page_bad(r, l, "a dictionary-encoded page comes without a dictionary",
					err);
		if (!len && n)
			return page_bad(r, l, "a dictionary-encoded page is empty", err);
		uint32_t *idx = malloc(((size_t)n + 1) * sizeof *idx);
		if (!idx)
			return vdb_err_nomem(err);
		bad = n && (p[0] > 32 || pq_rle_decode(p + 1, len - 1, p[0], n, idx));
		for (uint32_t i = 0; !bad && i < n; i++) {
			if (idx[i] >= l->dict_n)
				bad = 1;
			else
				memcpy((uint8_t *)l->vals + i * vs, (uint8_t *)l->dict + idx[i] * vs, vs);
		}
		free(idx);
		break;
	}
	case PQ_DELTA_BINARY_PACKED:
		if (l->ptype != PQ_INT32 && l->ptype != PQ_INT64)
			return page_bad(r, l, "DELTA_BINARY_PACKED on values that are not integers", err);
		bad = pq_delta_decode(p, len, n, l->vals, &used);
		for (uint32_t i = 0; !bad && l->ptype == PQ_INT32 && i < n; i++) {
			int64_t *v = (int64_t *)l->vals + i;
			*v = l->int_signed || l->kind != PQ_K_INT ? (int64_t)(int32_t)*v
								  : (int64_t)(uint32_t)*v;
		}
		break;
	case PQ_DELTA_LENGTH_BYTE_ARRAY:
	case PQ_DELTA_BYTE_ARRAY:
		if (l->ptype != PQ_BYTE_ARRAY)
			return page_bad(r, l, "a byte-array encoding on values that are not", err);
		bad = encoding == PQ_DELTA_BYTE_ARRAY ? pq_delta_strings(p, len, n, &l->built, l->vals)
						      : pq_delta_lengths(p, len, n, l->vals, &used);
		break;
	case PQ_RLE: {
		if (l->ptype != PQ_BOOLEAN)
			return page_bad(r, l, "RLE-encoded values that are not booleans", err);
		uint32_t *b = malloc(((size_t)n + 1) * sizeof *b);
		if (!b)
			return vdb_err_nomem(err);
		bad = len < 4 || le32(p) > len - 4 || pq_rle_decode(p + 4, le32(p), 1, n, b);
		for (uint32_t i = 0; !bad && i < n; i++)
			((int64_t *)l->vals)[i] = b[i];
		free(b);
		break;
	}
	case PQ_BYTE_STREAM_SPLIT:
		bad = stream_split(l, p, len, n, l->vals);
		break;
	default: {
		char m[96];
		snprintf(m, sizeof m, "the %s encoding is not supported", pq_encoding_name(encoding));
		return page_bad(r, l, m, err);
	}
	}
	if (bad)
		return page_bad(r, l, "damaged values", err);
	l->nvals = n;
	l->vi = 0;
	return VDB_OK;
}

/* Reads the next page header of the leaf's chunk. */
static vdb_status read_header(vdb_parquet_reader *r, leaf *l, pq_page_header *h,
			      vdb_error *err)
{
	size_t want = FIRST_HEADER_READ;
	for (;;) {
		int64_t left = l->end - l->pos;
		size_t n = (int64_t)want < left ? want : (size_t)left;
		if (grow((void **)&r->hdr, &r->hdr_cap, n ? n : 1))
			return vdb_err_nomem(err);
		vdb_status st = read_at(r, r->hdr, n, l->pos, err);
		if (st)
			return st;
		size_t used;
		int rc = pq_page_header_parse(r->hdr, n, h, &used, r->why, sizeof r->why);
		if (rc == 1) {
			l->pos += (int64_t)used;
			return VDB_OK;
		}
		if (rc < 0)
			return page_bad(r, l, r->why, err);
		if ((int64_t)n == left || want >= MAX_HEADER)
			return page_bad(r, l, "a page header runs past the end of its column chunk",
					err);
		want *= 4;
	}
}

/* Decompresses a page's body (of the leaf's codec) into l->page. */
static vdb_status inflate_page(vdb_parquet_reader *r, leaf *l, const uint8_t *src, size_t n,
			       size_t dn, int compressed, vdb_error *err)
{
	if (grow((void **)&l->page, &l->page_cap, dn ? dn : 1))
		return vdb_err_nomem(err);
	int rc = pq_decompress(compressed ? l->codec : PQ_UNCOMPRESSED, src, n, l->page, dn, r->why,
			       sizeof r->why);
	return rc ? page_bad(r, l, r->why, err) : VDB_OK;
}

/* Whether a page's values, decoded (levels, dictionary indices and values), fit in what
 * vdb allows a page: 256 MiB plus 16 times its bytes. Run-length encodings make a few bytes
 * say millions of values: a legitimate page of a constant column stays far below this,
 * while a hostile one cannot make the reader allocate gigabytes. */
static int within_budget(const leaf *l, const pq_page_header *h)
{
	uint64_t per_value = value_size(l->ptype) + 2 + sizeof(uint32_t);
	uint64_t budget = (256ull << 20) + 16ull * (uint64_t)h->uncompressed_size;
	return (uint64_t)h->num_values * per_value <= budget;
}

static vdb_status read_dictionary(vdb_parquet_reader *r, leaf *l, const pq_page_header *h,
				  vdb_error *err)
{
	if (l->dict)
		return page_bad(r, l, "a second dictionary page", err);
	if (h->encoding != PQ_PLAIN && h->encoding != PQ_PLAIN_DICTIONARY)
		return page_bad(r, l, "a dictionary page not PLAIN-encoded", err);
	if ((uint32_t)h->num_values > MAX_PAGE_VALUES || !within_budget(l, h))
		return page_bad(r, l, "a dictionary page holds too many values", err);
	vdb_status st = inflate_page(r, l, l->raw, (size_t)h->compressed_size,
				     (size_t)h->uncompressed_size, 1, err);
	if (st)
		return st;
	/* The dictionary keeps the page's bytes: its strings point into them. */
	l->dict_bytes = l->page;
	l->page = NULL;
	l->page_cap = 0;
	size_t vs = value_size(l->ptype), used;
	if (!(l->dict = malloc(((size_t)h->num_values + 1) * vs)))
		return vdb_err_nomem(err);
	if (plain(l, l->dict_bytes, (size_t)h->uncompressed_size, (uint32_t)h->num_values, l->dict,
		  &used))
		return page_bad(r, l, "a damaged dictionary page", err);
	l->dict_n = (uint32_t)h->num_values;
	return VDB_OK;
}

/* Levels of a page: n values of the hybrid encoding (bit width from max) into out. */
static vdb_status levels(vdb_parquet_reader *r, leaf *l, const uint8_t *p, size_t len,
			 uint32_t max, uint32_t n, uint8_t *out, vdb_error *err)
{
	if (pq_rle_decode_levels(p, len, bit_width(max), n, out))
		return page_bad(r, l, "damaged repetition or definition levels", err);
	/* The bit width bounds the levels already when max is all ones (1, 3, 7, ...). */
	for (uint32_t i = 0; (max & (max + 1)) && i < n; i++)
		if (out[i] > max)
			return page_bad(r, l, "a level above the column's maximum", err);
	return VDB_OK;
}

/* Most vector pages hold whole rows of dim values and nothing else (DuckDB's and others'
 * may begin with the end of a row and stop in the middle of one): from the page's first
 * row start, the run of such rows, which read_row copies a row at once. */
static vdb_status find_regular_rows(vdb_parquet_reader *r, leaf *l, uint32_t n, vdb_error *err)
{
	uint32_t dim = r->dim, s = 0, e;
	l->reg_start = l->reg_end = 0;
	if (!dim)
		return VDB_OK;
	if (!r->full_def) {
		if ((!r->ones && !(r->ones = malloc(dim))) || !(r->full_def = malloc(dim)))
			return vdb_err_nomem(err);
		memset(r->ones, 1, dim);
		memset(r->full_def, l->max_def, dim);
	}
	while (s < n && l->rep[s] != 0)
		s++;
	for (e = s; n - e >= dim && l->rep[e] == 0 && !memcmp(l->rep + e + 1, r->ones, dim - 1) &&
		    !memcmp(l->def + e, r->full_def, dim);)
		e += dim;
	l->reg_start = s;
	l->reg_end = e;
	return VDB_OK;
}

/* Loads the leaf's next data page (after a dictionary page and past index pages). */
static vdb_status next_page(vdb_parquet_reader *r, leaf *l, vdb_error *err)
{
	for (;;) {
		if (l->pos >= l->end)
			return page_bad(r, l, "the column chunk ends before the row group's rows do",
					err);
		pq_page_header h;
		vdb_status st = read_header(r, l, &h, err);
		if (st)
			return st;
		if (h.compressed_size > l->end - l->pos)
			return page_bad(r, l, "a page runs past the end of its column chunk", err);
		if ((uint32_t)h.uncompressed_size > MAX_PAGE_BYTES)
			return page_bad(r, l, "a page is larger than 1 GiB", err);
		if (h.type != PQ_DATA_PAGE && h.type != PQ_DATA_PAGE_V2 &&
		    h.type != PQ_DICTIONARY_PAGE) {
			l->pos += h.compressed_size; /* index pages and kinds to come */
			continue;
		}
		if (grow((void **)&l->raw, &l->raw_cap, (size_t)h.compressed_size + 1))
			return vdb_err_nomem(err);
		if ((st = read_at(r, l->raw, (size_t)h.compressed_size, l->pos, err)))
			return st;
		l->pos += h.compressed_size;
		if (h.type == PQ_DICTIONARY_PAGE) {
			if ((st = read_dictionary(r, l, &h, err)))
				return st;
			continue;
		}
		uint32_t n = (uint32_t)h.num_values;
		if (n > MAX_PAGE_VALUES)
			return page_bad(r, l, "a page holds more than 268,435,456 values", err);
		if (!within_budget(l, &h))
			return page_bad(r, l, "a page claims more values than its size can hold "
					"(decoded, they would take more memory than vdb allows a page)", err);
		if ((int64_t)n > l->values_left)
			return page_bad(r, l, "the pages hold more values than the column chunk says",
					err);
		if ((size_t)n + 1 > l->lv_cap) {
			uint8_t *def = realloc(l->def, ((size_t)n + 1) * sizeof *def);
			if (def)
				l->def = def;
			uint8_t *rep = def ? realloc(l->rep, ((size_t)n + 1) * sizeof *rep) : NULL;
			if (!rep)
				return vdb_err_nomem(err);
			l->rep = rep;
			l->lv_cap = (size_t)n + 1;
		}
		const uint8_t *p;
		size_t len;
		if (h.type == PQ_DATA_PAGE) {
			if ((st = inflate_page(r, l, l->raw, (size_t)h.compressed_size,
					       (size_t)h.uncompressed_size, 1, err)))
				return st;
			p = l->page;
			len = (size_t)h.uncompressed_size;
			for (int which = 0; which < 2; which++) { /* repetition, then definition */
				uint32_t max = which ? (uint32_t)l->max_def : (uint32_t)l->max_rep;
				uint8_t *out = which ? l->def : l->rep;
				int enc = which ? h.def_encoding : h.rep_encoding;
				if (!max) {
					for (uint32_t i = 0; i < n; i++)
						out[i] = 0;
					continue;
				}
				if (enc != PQ_RLE)
					return page_bad(r, l, "levels not RLE-encoded (BIT_PACKED levels "
							"are not supported)", err);
				if (len < 4 || le32(p) > len - 4)
					return page_bad(r, l, "damaged levels", err);
				if ((st = levels(r, l, p + 4, le32(p), max, n, out, err)))
					return st;
				len -= 4 + (size_t)le32(p);
				p += 4 + le32(p);
			}
		} else {
			size_t lv = (size_t)h.rep_bytes + (size_t)h.def_bytes;
			if (lv > (size_t)h.compressed_size || lv > (size_t)h.uncompressed_size)
				return page_bad(r, l, "the levels are larger than the page", err);
			if (l->max_rep ? levels(r, l, l->raw, (size_t)h.rep_bytes, (uint32_t)l->max_rep,
						n, l->rep, err)
				       : (memset(l->rep, 0, (size_t)n * sizeof *l->rep), VDB_OK))
				return err->code;
			if (l->max_def ? levels(r, l, l->raw + h.rep_bytes, (size_t)h.def_bytes,
						(uint32_t)l->max_def, n, l->def, err)
				       : (memset(l->def, 0, (size_t)n * sizeof *l->def), VDB_OK))
				return err->code;
			if ((st = inflate_page(r, l, l->raw + lv, (size_t)h.compressed_size - lv,
					       (size_t)h.uncompressed_size - lv, h.is_compressed, err)))
				return st;
			p = l->page;
			len = (size_t)h.uncompressed_size - lv;
		}
		uint32_t present = 0;
		for (uint32_t i = 0; i < n; i++)
			present += l->def[i] == (uint32_t)l->max_def;
		if ((st = decode_values(r, l, h.encoding, p, len, present, err)))
			return st;
		if (l->role == R_VECTOR && (st = find_regular_rows(r, l, n, err)))
			return st;
		l->values_left -= n;
		l->n = n;
		l->i = 0;
		if (n)
			return VDB_OK;
	}
}

/* Makes sure the leaf has a level entry to look at (loading pages as needed); *none set
 * when its chunk has no more values. */
static vdb_status have_entry(vdb_parquet_reader *r, leaf *l, int *none, vdb_error *err)
{
	*none = 0;
	while (l->i >= l->n) {
		if (l->values_left <= 0) {
			*none = 1;
			return VDB_OK;
		}
		vdb_status st = next_page(r, l, err);
		if (st)
			return st;
	}
	return VDB_OK;
}

/* ---- rows ---- */

/* Appends a value (i of the leaf's decoded values) as JSON; *skip set for values JSON
 * cannot hold (NaN, infinities), which are left out like nulls. */
static vdb_status json_value(vdb_parquet_reader *r, leaf *l, uint32_t i, vdb_buf *b, int *skip,
			     vdb_error *err)
{
	char tmp[64];
	int n = -1;
	*skip = 0;
	switch (l->ptype) {
	case PQ_FLOAT:
	case PQ_DOUBLE: {
		double d = l->ptype == PQ_FLOAT ? ((float *)l->vals)[i] : ((double *)l->vals)[i];
		if (!isfinite(d)) {
			*skip = 1;
			return VDB_OK;
		}
		if (l->ptype == PQ_FLOAT) {
			n = (int)vdb_fmt_float((float)d, tmp);
			break;
		}
		for (int prec = 15; prec <= 17; prec++) {
			n = snprintf(tmp, sizeof tmp, "%.*g", prec, d);
			if (strtod(tmp, NULL) == d)
				break;
		}
		/* JSON numbers need a digit before an exponent or after a point: %g gives it. */
		break;
	}
	case PQ_BOOLEAN:
		n = snprintf(tmp, sizeof tmp, "%s", ((int64_t *)l->vals)[i] ? "true" : "false");
		break;
	case PQ_BYTE_ARRAY:
	case PQ_FIXED_LEN_BYTE_ARRAY: {
		slice s = ((slice *)l->vals)[i];
		if (l->kind == PQ_K_JSON)
			return vdb_buf_append(b, s.p, s.n) ? vdb_err_nomem(err) : VDB_OK;
		if (vj_utf8_valid_prefix((const char *)s.p, s.n) != s.n)
			return vdb_err(err, VDB_EDATA, "row %" PRIu64 ": column '%s': a value is not "
				       "UTF-8 text", r->next_row, l->name);
		return vj_write_string(b, (const char *)s.p, s.n) ? vdb_err_nomem(err) : VDB_OK;
	}
	default: {
		int64_t v = ((int64_t *)l->vals)[i];
		if (l->kind == PQ_K_DATE || l->kind == PQ_K_TIMESTAMP) {
			static const int64_t per_sec[] = {1000, 1000000, 1000000000};
			int64_t secs = v, frac = 0, unit = 1;
			if (l->kind == PQ_K_TIMESTAMP) {
				unit = per_sec[l->time_unit];
				secs = v / unit;
				frac = v % unit;
				if (frac < 0) {
					frac += unit;
					secs--;
				}
			} else {
				if (v < -1000000000 || v > 1000000000) {
					*skip = 0;
					n = snprintf(tmp, sizeof tmp, "%" PRId64, v);
					break;
				}
				secs = v * 86400;
			}
			/* Days to a civil date (Howard Hinnant's algorithm). */
			int64_t days = secs / 86400, sod = secs % 86400;
			if (sod < 0) {
				sod += 86400;
				days--;
			}
			int64_t z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
			int64_t doe = z - era * 146097;
			int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
			int64_t y = yoe + era * 400, doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
			int64_t mp = (5 * doy + 2) / 153, d = doy - (153 * mp + 2) / 5 + 1;
			int64_t m = mp < 10 ? mp + 3 : mp - 9;
			y += m <= 2;
			if (l->kind == PQ_K_DATE) {
				n = snprintf(tmp, sizeof tmp, "\"%04" PRId64 "-%02" PRId64 "-%02" PRId64 "\"",
					     y, m, d);
			} else {
				int w = l->time_unit == 0 ? 3 : l->time_unit == 1 ? 6 : 9;
				n = snprintf(tmp, sizeof tmp, "\"%04" PRId64 "-%02" PRId64 "-%02" PRId64
					     "T%02" PRId64 ":%02" PRId64 ":%02" PRId64, y, m, d,
					     sod / 3600, sod / 60 % 60, sod % 60);
				if (frac)
					n += snprintf(tmp + n, sizeof tmp - (size_t)n, ".%0*" PRId64, w, frac);
				n += snprintf(tmp + n, sizeof tmp - (size_t)n, "%s\"", l->utc ? "Z" : "");
			}
			break;
		}
		if (l->kind == PQ_K_INT && !l->int_signed && l->int_bits == 64)
			n = snprintf(tmp, sizeof tmp, "%" PRIu64, (uint64_t)v);
		else
			n = snprintf(tmp, sizeof tmp, "%" PRId64, v);
	}
	}
	return vdb_buf_append(b, tmp, (size_t)n) ? vdb_err_nomem(err) : VDB_OK;
}

/* Reads one row's entries of a leaf: for a flat column one entry, for a list the entries
 * up to the next row's. For each value fn is called with its index, or UINT32_MAX for a
 * null element. *state: 0 a value or list, 1 null, 2 empty list. */
typedef vdb_status (*value_fn)(vdb_parquet_reader *r, leaf *l, uint32_t vi, uint32_t k,
			       void *ctx, vdb_error *err);

static vdb_status read_row(vdb_parquet_reader *r, leaf *l, value_fn fn, void *ctx, int *state,
			   uint32_t *count, vdb_error *err)
{
	int none;
	*state = 0;
	*count = 0;
	vdb_status st = have_entry(r, l, &none, err);
	if (st)
		return st;
	if (none)
		return page_bad(r, l, "the column has fewer rows than the row group", err);
	if (l->rep[l->i] != 0)
		return page_bad(r, l, "a row does not start at repetition level 0", err);
	*state = 0;
	*count = 0;
	if (!l->max_rep) {
		uint32_t d = l->def[l->i++];
		if (d != (uint32_t)l->max_def) {
			*state = 1;
			return VDB_OK;
		}
		if (l->vi >= l->nvals)
			return page_bad(r, l, "fewer values than levels say", err);
		*count = 1;
		return fn(r, l, l->vi++, 0, ctx, err);
	}
	if (l->i >= l->reg_start && l->i < l->reg_end && (l->i - l->reg_start) % r->dim == 0 &&
	    l->nvals - l->vi >= r->dim) {
		/* A whole row of a regular page (vector_value's work, at once). */
		const uint8_t *src = l->in_page ? l->in_page : (const uint8_t *)l->vals;
		if (l->ptype == PQ_FLOAT) {
			memcpy(r->vec, src + (size_t)l->vi * sizeof(float),
			       (size_t)r->dim * sizeof(float));
		} else {
			src += (size_t)l->vi * sizeof(double);
			for (uint32_t k = 0; k < r->dim; k++) {
				double d;
				memcpy(&d, src + k * sizeof d, sizeof d); /* in place: maybe unaligned */
				r->vec[k] = (float)d;
			}
		}
		l->i += r->dim;
		l->vi += r->dim;
		*count = r->dim;
		/* A row that goes on into the next page has more than dim values. */
		if ((st = have_entry(r, l, &none, err)))
			return st;
		if (none || l->rep[l->i] == 0)
			return VDB_OK;
	}
	for (int first = *count == 0;; first = 0) {
		uint32_t d = l->def[l->i++];
		if (d < (uint32_t)l->def_list) {
			if (!first)
				return page_bad(r, l, "an empty list inside a list", err);
			*state = l->optional_list && d < (uint32_t)l->def_list - 1 ? 1 : 2;
		} else if (d == (uint32_t)l->max_def) {
			if (l->vi >= l->nvals)
				return page_bad(r, l, "fewer values than levels say", err);
			if ((st = fn(r, l, l->vi++, (*count)++, ctx, err)))
				return st;
		} else if ((st = fn(r, l, UINT32_MAX, (*count)++, ctx, err))) {
			return st;
		}
		if ((st = have_entry(r, l, &none, err)))
			return st;
		if (none || l->rep[l->i] == 0)
			return VDB_OK;
		if (*state)
			return page_bad(r, l, "a null or empty list goes on", err);
	}
}

static vdb_status vector_value(vdb_parquet_reader *r, leaf *l, uint32_t vi, uint32_t k,
			       void *ctx, vdb_error *err)
{
	(void)ctx;
	if (k >= r->dim)
		return VDB_OK; /* counted, and refused after the row */
	if (vi == UINT32_MAX)
		return vdb_err(err, VDB_EDATA, "row %" PRIu64 ": vector element %u is null",
			       r->next_row, k);
	const uint8_t *src = l->in_page ? l->in_page : (const uint8_t *)l->vals;
	if (l->ptype == PQ_FLOAT) {
		memcpy(&r->vec[k], src + (size_t)vi * sizeof(float), sizeof(float));
	} else {
		double d;
		memcpy(&d, src + (size_t)vi * sizeof d, sizeof d);
		r->vec[k] = (float)d;
	}
	return VDB_OK;
}

typedef struct id_ctx {
	vdb_id *id;
} id_ctx;

static vdb_status id_value(vdb_parquet_reader *r, leaf *l, uint32_t vi, uint32_t k, void *ctx,
			   vdb_error *err)
{
	vdb_id *id = ((id_ctx *)ctx)->id;
	(void)k;
	if (l->ptype == PQ_BYTE_ARRAY) {
		slice s = ((slice *)l->vals)[vi];
		r->idbuf.len = 0;
		if (vdb_buf_append(&r->idbuf, s.p, s.n))
			return vdb_err_nomem(err);
		*id = (vdb_id){1, 0, r->idbuf.data ? r->idbuf.data : "", s.n};
		return VDB_OK;
	}
	if (l->ptype == PQ_FLOAT || l->ptype == PQ_DOUBLE) {
		/* Whole numbers only (JavaScript and pandas keep integers as doubles): exact up
		 * to 2^53, and never rounded. */
		double d = l->ptype == PQ_FLOAT ? ((float *)l->vals)[vi] : ((double *)l->vals)[vi];
		if (!(d >= 0 && d <= 9007199254740992.0) || d != (double)(uint64_t)d)
			return vdb_err(err, VDB_EDATA, "row %" PRIu64 ": id %.17g is not a whole number "
				       "from 0 to 2^53 (ids are integers from 0, or strings)",
				       r->next_row, d);
		*id = (vdb_id){0, (uint64_t)d, NULL, 0};
		return VDB_OK;
	}
	int64_t v = ((int64_t *)l->vals)[vi];
	int is_unsigned = l->kind == PQ_K_INT && !l->int_signed;
	if (v < 0 && !is_unsigned)
		return vdb_err(err, VDB_EDATA, "row %" PRIu64 ": id %" PRId64 " is negative (ids are "
			       "integers from 0, or strings)", r->next_row, v);
	*id = (vdb_id){0, (uint64_t)v, NULL, 0};
	return VDB_OK;
}

typedef struct json_ctx {
	vdb_buf *b;
} json_ctx;

static vdb_status list_value(vdb_parquet_reader *r, leaf *l, uint32_t vi, uint32_t k, void *ctx,
			     vdb_error *err)
{
	vdb_buf *b = ((json_ctx *)ctx)->b;
	int skip;
	if (vdb_buf_puts(b, k ? "," : "["))
		return vdb_err_nomem(err);
	if (vi == UINT32_MAX)
		return vdb_buf_puts(b, "null") ? vdb_err_nomem(err) : VDB_OK;
	vdb_status st = json_value(r, l, vi, b, &skip, err);
	if (!st && skip && vdb_buf_puts(b, "null"))
		return vdb_err_nomem(err);
	return st;
}

/* The payload column's JSON text, as it is. */
static vdb_status raw_value(vdb_parquet_reader *r, leaf *l, uint32_t vi, uint32_t k, void *ctx,
			    vdb_error *err)
{
	(void)r;
	(void)k;
	slice s = ((slice *)l->vals)[vi];
	return vdb_buf_append(((json_ctx *)ctx)->b, s.p, s.n) ? vdb_err_nomem(err) : VDB_OK;
}

/* A scalar field's value, appended after its key by the row loop. */
static vdb_status scalar_value(vdb_parquet_reader *r, leaf *l, uint32_t vi, uint32_t k,
			       void *ctx, vdb_error *err)
{
	(void)k;
	json_ctx *c = ctx;
	int skip;
	size_t at = c->b->len;
	vdb_status st = json_value(r, l, vi, c->b, &skip, err);
	if (!st && skip)
		c->b->len = at;
	return st;
}

/* Moves to the next row group with rows; 0 when there is none. */
static int next_group(vdb_parquet_reader *r)
{
	while (r->group_left == 0) {
		if (r->group + 1 >= r->m.ngroups)
			return 0;
		r->group++;
		start_group(r);
	}
	return 1;
}

/* The payload object's keys (its text is checked as JSON later), decoded, into r->keybuf
 * as a 4-byte length and the bytes each: read once per row, whatever the columns. */
static int payload_keys(vdb_parquet_reader *r)
{
	vj_reader j;
	vdb_buf key = VDB_BUF_INIT;
	int rc = 0;
	r->keybuf.len = 0;
	vj_init(&j, r->payload.data, r->payload.len);
	if (vj_expect(&j, '{') || vj_peek(&j) == '}')
		return 0;
	for (;;) {
		key.len = 0;
		if (vj_string(&j, &key) || vj_expect(&j, ':') || vj_value(&j, NULL))
			break;
		uint32_t n = (uint32_t)key.len;
		if (vdb_buf_append(&r->keybuf, &n, 4) || vdb_buf_append(&r->keybuf, key.data, key.len)) {
			rc = -1;
			break;
		}
		if (vj_peek(&j) != ',' || vj_expect(&j, ','))
			break;
	}
	vdb_buf_free(&key);
	return rc;
}

static int payload_has_key(const vdb_parquet_reader *r, const char *name, size_t n)
{
	for (size_t at = 0; at + 4 <= r->keybuf.len;) {
		uint32_t len;
		memcpy(&len, r->keybuf.data + at, 4);
		if (len == n && !memcmp(r->keybuf.data + at + 4, name, n))
			return 1;
		at += 4 + (size_t)len;
	}
	return 0;
}

vdb_status vdb_parquet_reader_next(vdb_parquet_reader *r, vdb_record *rec, int *has,
				   vdb_error *err)
{
	*has = 0;
	if (!r->m.ngroups || !next_group(r))
		return VDB_OK;
	vdb_status st;
	memset(rec, 0, sizeof *rec);
	int state, have_payload = 0;
	uint32_t count;
	size_t nspans = 0;
	r->text.len = 0;
	for (size_t k = 0; k < r->nleaves; k++) {
		leaf *l = &r->leaves[k];
		if (l->role == R_VECTOR) {
			if ((st = read_row(r, l, vector_value, NULL, &state, &count, err)))
				return st;
			if (state == 1)
				return vdb_err(err, VDB_EDATA, "row %" PRIu64 ": the vector is null",
					       r->next_row);
			if (count != r->dim)
				return vdb_err(err, VDB_EDATA, "row %" PRIu64 ": the vector has %u "
					       "values, the collection's dimension is %u", r->next_row,
					       count, r->dim);
			rec->vector = r->vec;
		} else if (l->role == R_ID) {
			id_ctx c = {&rec->id};
			if ((st = read_row(r, l, id_value, &c, &state, &count, err)))
				return st;
			if (state)
				return vdb_err(err, VDB_EDATA, "row %" PRIu64 ": the id is null",
					       r->next_row);
		} else if (l->role == R_PAYLOAD) {
			json_ctx c = {&r->payload};
			r->payload.len = 0;
			if ((st = read_row(r, l, raw_value, &c, &state, &count, err)))
				return st;
			have_payload = state == 0;
		} else {
			/* "key":value, back to back in r->text; spans says where each is. */
			size_t at = r->text.len;
			if (vj_write_string(&r->text, l->name, l->name_len) ||
			    vdb_buf_putc(&r->text, ':'))
				return vdb_err_nomem(err);
			size_t vat = r->text.len;
			json_ctx c = {&r->text};
			if ((st = read_row(r, l, l->max_rep ? list_value : scalar_value, &c, &state,
					   &count, err)))
				return st;
			if (l->max_rep && !state && vdb_buf_putc(&r->text, ']'))
				return vdb_err_nomem(err);
			if (state == 2 && vdb_buf_puts(&r->text, "[]"))
				return vdb_err_nomem(err);
			if (state == 1 || r->text.len == vat) {
				r->text.len = at; /* nulls (and NaN) are left out */
			} else {
				r->spans[nspans++] = (span){at, r->text.len, k};
			}
		}
	}
	if (!rec->vector)
		return vdb_err(err, VDB_EINVAL, "no vector column");
	/* The payload: the payload column's object, with the other columns' members added
	 * (a key the object already has keeps the object's value: a file vdb-export wrote
	 * with --payload-columns reads back to the same payloads). */
	vdb_buf *out = &r->assembled;
	out->len = 0;
	if (have_payload) {
		const char *s = r->payload.data;
		size_t n = r->payload.len, a = 0, z = n;
		while (a < n && (s[a] == ' ' || s[a] == '\t' || s[a] == '\n' || s[a] == '\r'))
			a++;
		while (z > a && (s[z - 1] == ' ' || s[z - 1] == '\t' || s[z - 1] == '\n' ||
				 s[z - 1] == '\r'))
			z--;
		if (z - a < 2 || s[a] != '{' || s[z - 1] != '}')
			return vdb_err(err, VDB_EDATA, "row %" PRIu64 ": the payload column's value "
				       "is not a JSON object", r->next_row);
		if (vdb_buf_append(out, s + a, z - a - 1))
			return vdb_err_nomem(err);
	} else if (nspans && vdb_buf_putc(out, '{')) {
		return vdb_err_nomem(err);
	}
	int members = 0;
	for (size_t i = 0; have_payload && !members && i + 1 < out->len; i++)
		members = out->data[i + 1] != ' ' && out->data[i + 1] != '\t' &&
			  out->data[i + 1] != '\n' && out->data[i + 1] != '\r';
	if (have_payload && nspans && payload_keys(r))
		return vdb_err_nomem(err);
	for (size_t i = 0; i < nspans; i++) {
		const leaf *l = &r->leaves[r->spans[i].leaf];
		if (have_payload && payload_has_key(r, l->name, l->name_len))
			continue;
		if ((members && vdb_buf_putc(out, ',')) ||
		    vdb_buf_append(out, r->text.data + r->spans[i].start,
				   r->spans[i].end - r->spans[i].start))
			return vdb_err_nomem(err);
		members = 1;
	}
	if (have_payload || nspans) {
		if (vdb_buf_putc(out, '}'))
			return vdb_err_nomem(err);
		st = vdb_jsonl_parse_payload(r->jp, out->data, out->len, &rec->payload,
					     &rec->payload_len, err);
		if (st) {
			char m[sizeof err->message];
			snprintf(m, sizeof m, "%s", err->message);
			return vdb_err(err, VDB_EDATA, "row %" PRIu64 ": payload: %s", r->next_row, m);
		}
	}
	if (r->id_leaf < 0) /* the caller numbers the rows */
		rec->id = (vdb_id){0, r->next_row, NULL, 0};
	r->row = r->next_row++;
	r->group_left--;
	*has = 1;
	return VDB_OK;
}
