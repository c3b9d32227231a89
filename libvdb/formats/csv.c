/* CSV (RFC 4180) records in and out.
 *
 * Reading: a byte-level state machine over the input stream splits records into fields:
 * fields are separated by commas, records end in LF or CRLF, a quoted field may hold
 * commas, line breaks and doubled quotes. Blank lines are skipped. The header names the
 * columns; each record becomes an id, a vector (one JSON-array column or N numeric
 * columns) and a payload object built from the other non-empty fields, numbers (by the
 * JSON grammar) as numbers and everything else as strings.
 *
 * Writing: "id,vector,<payload keys>", the keys collected beforehand in order of first
 * appearance, each value under its key's column; fields are quoted when they hold a comma,
 * a quote or a line break; lines end in CRLF as the RFC says. */
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

#define CSV_BUF (1u << 16)
#define CSV_MAX_RECORD (64u << 20) /* bounds the memory one record (or a runaway quote) takes */

enum { ROLE_PAYLOAD = 0, ROLE_ID, ROLE_VECTOR_JSON, ROLE_VECTOR_NUM, ROLE_PAYLOAD_JSON };

typedef struct colname {
	const char *s; /* into the header names */
	size_t n, col;
} colname;

struct vdb_csv_reader {
	vdb_istream *in;
	char *buf;
	size_t start, end;
	int eof;
	uint64_t line, rec_line; /* line at the cursor; line where the record started */
	vdb_buf fields;          /* the current record's field bytes, back to back */
	size_t *off;             /* field i is fields[off[i] .. off[i+1]) */
	size_t nf, offcap;
	size_t ncols;
	vdb_buf names; /* header names as a JSON string literal each, back to back */
	size_t *name_off;
	colname *sorted; /* the columns by name */
	unsigned char *role;
	uint32_t *vec_col; /* ROLE_VECTOR_NUM: column of each vector component */
	size_t id_col, vec_json_col;
	size_t payload_col; /* ROLE_PAYLOAD_JSON's, or SIZE_MAX */
	int numeric; /* the vector is in vec_col columns, not one JSON array */
	uint32_t dim;
	vdb_jsonl_parser *jp;
	float *vec;
	vdb_buf payload, idbuf;
};

void vdb_csv_options_init(vdb_csv_options *o)
{
	o->size = sizeof *o;
	o->id_column = "id";
	o->vector_column = "vector";
	o->vector_columns = NULL;
	o->payload_column = "payload";
}

static int next_byte(vdb_csv_reader *r, vdb_error *err, vdb_status *st)
{
	if (r->start == r->end) {
		if (r->eof)
			return -1;
		size_t got;
		if ((*st = vdb_istream_read(r->in, r->buf, CSV_BUF, &got, err)))
			return -2;
		r->start = 0;
		r->end = got;
		if (!got) {
			r->eof = 1;
			return -1;
		}
	}
	return (unsigned char)r->buf[r->start++];
}

static int end_field(vdb_csv_reader *r)
{
	if (r->nf + 2 > r->offcap) {
		size_t cap = r->offcap ? r->offcap * 2 : 64;
		size_t *o = realloc(r->off, cap * sizeof *o);
		if (!o)
			return -1;
		r->off = o;
		r->offcap = cap;
	}
	r->nf++;
	r->off[r->nf] = r->fields.len;
	return 0;
}

/* Reads one record into fields/off; *has = 0 at the end of the input. */
static vdb_status read_record(vdb_csv_reader *r, int *has, vdb_error *err)
{
	vdb_status st = VDB_OK;
	for (;;) {
		r->fields.len = 0;
		r->nf = 0;
		if (!r->off && end_field(r))
			return vdb_err_nomem(err);
		r->nf = 0;
		r->off[0] = 0;
		r->rec_line = r->line;
		int c = next_byte(r, err, &st);
		if (c == -2)
			return st;
		if (c == -1) {
			*has = 0;
			return VDB_OK;
		}
		int quoted_any = 0;
		for (;;) {
			if (c == '"') {
				quoted_any = 1;
				for (;;) {
					c = next_byte(r, err, &st);
					if (c == -2)
						return st;
					if (c == -1)
						return vdb_err(err, VDB_EDATA,
							       "line %" PRIu64 ": a quoted field is not closed "
							       "before the end of the input", r->rec_line);
					if (c == '"') {
						c = next_byte(r, err, &st);
						if (c == -2)
							return st;
						if (c != '"')
							break;
					} else if (c == '\n') {
						r->line++;
					}
					if (vdb_buf_putc(&r->fields, (char)c))
						return vdb_err_nomem(err);
					if (r->fields.len > CSV_MAX_RECORD)
						return vdb_err(err, VDB_EDATA,
							       "line %" PRIu64 ": record is longer than %u "
							       "bytes (an unclosed quote?)",
							       r->rec_line, CSV_MAX_RECORD);
				}
				if (c != ',' && c != '\n' && c != '\r' && c != -1)
					return vdb_err(err, VDB_EDATA,
						       "line %" PRIu64 ": field %zu: characters after the "
						       "closing quote", r->line, r->nf + 1);
			} else {
				while (c != ',' && c != '\n' && c != '\r' && c != -1) {
					if (c == '"')
						return vdb_err(err, VDB_EDATA,
							       "line %" PRIu64 ": field %zu: a quote inside an "
							       "unquoted field (quote the whole field and "
							       "double the quote)", r->line, r->nf + 1);
					if (vdb_buf_putc(&r->fields, (char)c))
						return vdb_err_nomem(err);
					if (r->fields.len > CSV_MAX_RECORD)
						return vdb_err(err, VDB_EDATA,
							       "line %" PRIu64 ": record is longer than %u bytes",
							       r->rec_line, CSV_MAX_RECORD);
					c = next_byte(r, err, &st);
					if (c == -2)
						return st;
				}
			}
			if (end_field(r))
				return vdb_err_nomem(err);
			if (c == ',') {
				c = next_byte(r, err, &st);
				if (c == -2)
					return st;
				continue;
			}
			if (c == '\r') {
				c = next_byte(r, err, &st);
				if (c == -2)
					return st;
				if (c != '\n' && c != -1)
					return vdb_err(err, VDB_EDATA,
						       "line %" PRIu64 ": a carriage return not followed by "
						       "a line feed", r->line);
			}
			if (c == '\n')
				r->line++;
			break;
		}
		if (r->nf == 1 && r->fields.len == 0 && !quoted_any)
			continue; /* a blank line */
		*has = 1;
		return VDB_OK;
	}
}

static const char *field(const vdb_csv_reader *r, size_t i, size_t *len)
{
	*len = r->off[i + 1] - r->off[i];
	/* Only empty fields so far: the buffer may still be unallocated. */
	return r->fields.data ? r->fields.data + r->off[i] : "";
}

static int cmp_colname(const void *pa, const void *pb)
{
	const colname *a = pa, *b = pb;
	int c = memcmp(a->s, b->s, a->n < b->n ? a->n : b->n);
	return c ? c : (a->n > b->n) - (a->n < b->n);
}

static vdb_status find_column(const vdb_csv_reader *r, const char *name, size_t *col,
			      const char *option, vdb_error *err)
{
	colname key = {name, strlen(name), 0};
	const colname *c = bsearch(&key, r->sorted, r->ncols, sizeof *r->sorted, cmp_colname);
	if (c) {
		*col = c->col;
		return VDB_OK;
	}
	return vdb_err(err, VDB_EDATA, "line %" PRIu64 ": the header has no column \"%s\"%s",
		       r->rec_line, name, option);
}

/* --vector-columns: names, 1-based numbers and ranges "A-B", comma-separated. */
static vdb_status select_vector_columns(vdb_csv_reader *r, const char *spec, vdb_error *err)
{
	size_t n = 0;
	const char *p = spec;
	while (*p) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		char item[512];
		if (len == 0 || len >= sizeof item)
			return vdb_err(err, VDB_EINVAL, "bad --vector-columns list \"%s\"", spec);
		memcpy(item, p, len);
		item[len] = 0;
		unsigned long a, b;
		char dash, extra;
		int k = sscanf(item, "%lu%c%lu%c", &a, &dash, &b, &extra);
		int digits_only = strspn(item, "0123456789-") == len && item[0] != '-';
		if (digits_only && (k == 1 || (k == 3 && dash == '-'))) {
			if (k == 1)
				b = a;
			if (a < 1 || b < a || b > r->ncols)
				return vdb_err(err, VDB_EINVAL,
					       "--vector-columns: column range %s is outside 1-%zu", item,
					       r->ncols);
			for (unsigned long c = a; c <= b; c++) {
				if (n >= r->dim)
					goto count;
				r->vec_col[n++] = (uint32_t)(c - 1);
			}
		} else {
			size_t col;
			vdb_status st = find_column(r, item, &col, " (--vector-columns)", err);
			if (st)
				return st;
			if (n >= r->dim)
				goto count;
			r->vec_col[n++] = (uint32_t)col;
		}
		p += len + (e ? 1 : 0);
		if (e && !*p)
			return vdb_err(err, VDB_EINVAL, "bad --vector-columns list \"%s\"", spec);
	}
	if (n == r->dim)
		return VDB_OK;
count:
	return vdb_err(err, VDB_EINVAL,
		       "--vector-columns selects %s%zu columns; the collection's dimension is %" PRIu32,
		       n >= r->dim ? "more than " : "", n, r->dim);
}

static vdb_status read_header(vdb_csv_reader *r, const vdb_csv_options *o, vdb_error *err)
{
	int has;
	vdb_status st = read_record(r, &has, err);
	if (st)
		return st;
	/* Spreadsheets often start a UTF-8 CSV with a byte-order mark: not part of the name.
	 * It must be in the first field itself (an empty first field is followed in the buffer
	 * by the second field, whose offsets must not move before 0). */
	if (has && r->nf >= 1 && r->off[1] >= 3 && !memcmp(r->fields.data, "\xEF\xBB\xBF", 3)) {
		memmove(r->fields.data, r->fields.data + 3, r->fields.len - 3);
		r->fields.len -= 3;
		for (size_t i = 1; i <= r->nf; i++)
			r->off[i] -= 3;
	}
	if (!has)
		return vdb_err(err, VDB_EDATA, "empty CSV input: no header line");
	r->ncols = r->nf;
	if (!(r->name_off = malloc((r->ncols + 1) * sizeof *r->name_off)) ||
	    !(r->role = calloc(r->ncols, 1)))
		return vdb_err_nomem(err);
	r->name_off[0] = 0;
	for (size_t i = 0; i < r->ncols; i++) {
		size_t n;
		const char *s = field(r, i, &n);
		if (vj_utf8_valid_prefix(s, n) != n)
			return vdb_err(err, VDB_EDATA, "line %" PRIu64 ": column %zu: invalid UTF-8 in "
						       "the header", r->rec_line, i + 1);
		if (vdb_buf_append(&r->names, s, n))
			return vdb_err_nomem(err);
		r->name_off[i + 1] = r->names.len;
	}
	/* Names sorted once: duplicates are neighbours, and lookups are binary searches, so a
	 * header of any width costs O(n log n). */
	if (!(r->sorted = malloc(r->ncols * sizeof *r->sorted)))
		return vdb_err_nomem(err);
	/* All names empty: the buffer may still be unallocated. */
	const char *names = r->names.data ? r->names.data : "";
	for (size_t i = 0; i < r->ncols; i++)
		r->sorted[i] = (colname){names + r->name_off[i],
					 r->name_off[i + 1] - r->name_off[i], i};
	qsort(r->sorted, r->ncols, sizeof *r->sorted, cmp_colname);
	for (size_t i = 1; i < r->ncols; i++)
		if (!cmp_colname(&r->sorted[i - 1], &r->sorted[i]))
			return vdb_err(err, VDB_EDATA,
				       "line %" PRIu64 ": the header names column \"%.*s\" twice",
				       r->rec_line, (int)(r->sorted[i].n > 60 ? 60 : r->sorted[i].n),
				       r->sorted[i].s);
	if ((st = find_column(r, o->id_column, &r->id_col, " (--id-column)", err)))
		return st;
	r->role[r->id_col] = ROLE_ID;
	if (o->vector_columns) {
		r->numeric = 1;
		if ((st = select_vector_columns(r, o->vector_columns, err)))
			return st;
		for (uint32_t i = 0; i < r->dim; i++) {
			if (r->vec_col[i] == r->id_col)
				return vdb_err(err, VDB_EINVAL,
					       "--vector-columns includes the id column");
			r->role[r->vec_col[i]] = ROLE_VECTOR_NUM;
		}
	} else {
		if ((st = find_column(r, o->vector_column, &r->vec_json_col, " (--vector-column)",
				      err)))
			return st;
		if (r->vec_json_col == r->id_col)
			return vdb_err(err, VDB_EINVAL, "the id and vector columns are the same");
		r->role[r->vec_json_col] = ROLE_VECTOR_JSON;
	}
	r->payload_col = SIZE_MAX;
	vdb_error absent;
	if (o->payload_column && *o->payload_column &&
	    !find_column(r, o->payload_column, &r->payload_col, "", &absent)) {
		if (r->role[r->payload_col] != ROLE_PAYLOAD)
			return vdb_err(err, VDB_EINVAL, "the payload column is also the id or vector "
				       "column");
		r->role[r->payload_col] = ROLE_PAYLOAD_JSON;
	}
	return VDB_OK;
}

static vdb_status column_name(const vdb_csv_reader *r, size_t i, char *out, size_t cap);

/* The payload column's object (minified) into r->payload, without its closing brace; an
 * empty cell leaves r->payload empty. */
static vdb_status payload_cell(vdb_csv_reader *r, vdb_error *err)
{
	size_t n;
	const char *s = field(r, r->payload_col, &n);
	vj_reader j;
	vj_init(&j, s, n);
	if (vj_peek(&j) == -1)
		return VDB_OK;
	char name[64];
	column_name(r, r->payload_col, name, sizeof name);
	if (vj_peek(&j) != '{')
		return vdb_err(err, VDB_EDATA, "line %" PRIu64 ": column \"%s\": not a JSON object",
			       r->rec_line, name);
	if (vj_value(&j, &r->payload) || vj_end(&j))
		return vdb_err(err, VDB_EDATA, "line %" PRIu64 ": column \"%s\": %s", r->rec_line,
			       name, j.err);
	r->payload.len--; /* the '}': other columns may follow */
	return VDB_OK;
}

vdb_status vdb_csv_reader_open(vdb_istream *in, uint32_t dim, const vdb_csv_options *given,
			       vdb_csv_reader **out, vdb_error *err)
{
	vdb_csv_options opts;
	const vdb_csv_options *o = &opts;
	vdb_csv_options_init(&opts);
	if (given && vdb_options_take(&opts, sizeof opts, given, "vdb_csv_options", err))
		return VDB_EINVAL;
	vdb_csv_reader *r = calloc(1, sizeof *r);
	if (!r)
		return vdb_err_nomem(err);
	r->in = in;
	r->dim = dim;
	r->line = 1;
	vdb_status st;
	if (!(r->buf = malloc(CSV_BUF)) || !(r->vec = malloc(dim * sizeof(float))) ||
	    !(r->vec_col = malloc(dim * sizeof(uint32_t)))) {
		st = vdb_err_nomem(err);
		goto fail;
	}
	if ((st = vdb_jsonl_parser_new(dim, &r->jp, err)) || (st = read_header(r, o, err)))
		goto fail;
	*out = r;
	return VDB_OK;
fail:
	vdb_csv_reader_close(r);
	return st;
}

/* A JSON number token spanning all of s[0..n). */
static int is_json_number(const char *s, size_t n)
{
	if (n == 0)
		return 0;
	vj_reader jr;
	vj_init(&jr, s, n);
	const char *tok;
	size_t len;
	return s[0] != ' ' && s[0] != '\t' && s[0] != '\n' && s[0] != '\r' &&
	       vj_number(&jr, &tok, &len) == 0 && len == n;
}

static vdb_status with_line(vdb_csv_reader *r, vdb_status st, vdb_error *err)
{
	if (st == VDB_EDATA || st == VDB_EINVAL) {
		vdb_err_prefix(err, "line %" PRIu64, r->rec_line);
		if (err)
			err->code = VDB_EDATA;
		return VDB_EDATA;
	}
	return st;
}

static vdb_status column_name(const vdb_csv_reader *r, size_t i, char *out, size_t cap)
{
	size_t n = r->name_off[i + 1] - r->name_off[i];
	snprintf(out, cap, "%.*s", (int)(n > 60 ? 60 : n), r->names.data + r->name_off[i]);
	return VDB_OK;
}

vdb_status vdb_csv_reader_next(vdb_csv_reader *r, vdb_record *rec, int *has, vdb_error *err)
{
	vdb_status st = read_record(r, has, err);
	if (st || !*has)
		return st;
	if (r->nf != r->ncols)
		return vdb_err(err, VDB_EDATA, "line %" PRIu64 ": %zu fields; the header has %zu",
			       r->rec_line, r->nf, r->ncols);
	size_t n;
	const char *s = field(r, r->id_col, &n);
	r->idbuf.len = 0;
	if (vdb_buf_append(&r->idbuf, s, n) || vdb_buf_putc(&r->idbuf, 0))
		return vdb_err_nomem(err);
	if (memchr(s, 0, n))
		return vdb_err(err, VDB_EDATA, "line %" PRIu64 ": the id holds a NUL byte",
			       r->rec_line);
	if ((st = vdb_id_parse_text(r->idbuf.data, &rec->id, err)))
		return with_line(r, st, err);
	char name[64];
	if (!r->numeric) {
		s = field(r, r->vec_json_col, &n);
		column_name(r, r->vec_json_col, name, sizeof name);
		const float *v;
		if ((st = jsonl_parse_vector_text(r->jp, s, n, name, &v, err)))
			return with_line(r, st, err);
		memcpy(r->vec, v, r->dim * sizeof(float));
	} else {
		for (uint32_t i = 0; i < r->dim; i++) {
			s = field(r, r->vec_col[i], &n);
			while (n && (*s == ' ' || *s == '\t'))
				s++, n--;
			while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
				n--;
			if (!is_json_number(s, n)) {
				column_name(r, r->vec_col[i], name, sizeof name);
				return vdb_err(err, VDB_EDATA, "line %" PRIu64 ": column \"%s\": %s",
					       r->rec_line, name,
					       n ? "not a number" : "empty (a vector needs every value)");
			}
			if (vdb_parse_float(s, n, &r->vec[i])) {
				column_name(r, r->vec_col[i], name, sizeof name);
				return vdb_err(err, VDB_EDATA,
					       "line %" PRIu64 ": column \"%s\": %.*s is outside the "
					       "float32 range", r->rec_line, name, (int)(n > 40 ? 40 : n), s);
			}
		}
	}
	r->payload.len = 0;
	if (r->payload_col != SIZE_MAX && (st = payload_cell(r, err))) {
		r->payload.len = 0;
		return st;
	}
	int from_json = r->payload.len > 0, keys = r->payload.len > 1, /* "{" has no key yet */
	    added = 0;
	for (size_t i = 0; i < r->ncols; i++) {
		if (r->role[i] != ROLE_PAYLOAD)
			continue;
		s = field(r, i, &n);
		if (n == 0)
			continue; /* an empty cell is an absent key */
		if (vj_utf8_valid_prefix(s, n) != n) {
			column_name(r, i, name, sizeof name);
			return vdb_err(err, VDB_EDATA, "line %" PRIu64 ": column \"%s\": invalid UTF-8",
				       r->rec_line, name);
		}
		char sep = !r->payload.len ? '{' : keys ? ',' : 0;
		added = 1;
		keys = 1;
		if ((sep && vdb_buf_putc(&r->payload, sep)) ||
		    vj_write_string(&r->payload, r->names.data + r->name_off[i],
				    r->name_off[i + 1] - r->name_off[i]) ||
		    vdb_buf_putc(&r->payload, ':') ||
		    (is_json_number(s, n) ? vdb_buf_append(&r->payload, s, n)
					  : vj_write_string(&r->payload, s, n)))
			return vdb_err_nomem(err);
	}
	if (r->payload.len && vdb_buf_putc(&r->payload, '}'))
		return vdb_err_nomem(err);
	if (from_json && added) { /* a key may now be there twice */
		vj_reader j;
		vj_init(&j, r->payload.data, r->payload.len);
		if (vj_value(&j, NULL))
			return vdb_err(err, VDB_EDATA, "line %" PRIu64 ": the payload: %s (a column "
				       "and the payload column name the same key)", r->rec_line, j.err);
	}
	rec->vector = r->vec;
	rec->payload = r->payload.len ? r->payload.data : NULL;
	rec->payload_len = r->payload.len;
	return VDB_OK;
}

uint64_t vdb_csv_reader_line(const vdb_csv_reader *r)
{
	return r->rec_line;
}

int vdb_csv_reader_ready(const vdb_csv_reader *r)
{
	return r->eof || memchr(r->buf + r->start, '\n', r->end - r->start) != NULL;
}

void vdb_csv_reader_close(vdb_csv_reader *r)
{
	if (!r)
		return;
	free(r->buf);
	vdb_buf_free(&r->fields);
	free(r->off);
	vdb_buf_free(&r->names);
	free(r->name_off);
	free(r->sorted);
	free(r->role);
	free(r->vec_col);
	free(r->vec);
	vdb_jsonl_parser_free(r->jp);
	vdb_buf_free(&r->payload);
	vdb_buf_free(&r->idbuf);
	free(r);
}

/* ---- writing ---- */

struct vdb_csv_writer {
	uint32_t dim;
	int split; /* the vector in dim columns v0.. instead of one JSON array */
	int flat;  /* a column per payload key instead of the payload's JSON in one */
	vdb_buf keys;     /* decoded key bytes, back to back */
	size_t *key_off;  /* key i is keys[key_off[i] .. key_off[i+1]) */
	size_t nkeys, keycap;
	size_t *table;    /* open addressing: key index + 1, 0 empty */
	size_t tcap;
	const char **val; /* per key: this record's value span */
	size_t *vlen;
	vdb_buf key, tmp;
	/* The columns of the id and the vector: "id" and "vector" (or "v0".."v<dim-1>"), each
	 * preceded by as many '_' as it takes to be no payload key's name (NUL-terminated). */
	vdb_buf id_name, vec_name;
	const vdb_record *rec; /* the record vdb_csv_writer_add is looking at */
};

vdb_status vdb_csv_writer_new(uint32_t dim, int vector_columns, vdb_csv_writer **out,
			      vdb_error *err)
{
	vdb_csv_writer *w = calloc(1, sizeof *w);
	if (!w || !(w->key_off = malloc(sizeof(size_t)))) {
		free(w);
		return vdb_err_nomem(err);
	}
	w->key_off[0] = 0;
	w->keycap = 0;
	w->dim = dim;
	w->split = vector_columns;
	*out = w;
	return VDB_OK;
}

static uint64_t hash(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
	return h;
}

/* Index of the key, or -1; with add, inserts it. */
static long lookup(vdb_csv_writer *w, const char *s, size_t n, int add)
{
	if (add && (w->nkeys + 1) * 2 > w->tcap) {
		size_t cap = w->tcap ? w->tcap * 2 : 64;
		size_t *t = calloc(cap, sizeof *t);
		if (!t)
			return -2;
		for (size_t i = 0; i < w->tcap; i++)
			if (w->table[i]) {
				size_t k = w->table[i] - 1;
				size_t j = hash(w->keys.data + w->key_off[k],
						w->key_off[k + 1] - w->key_off[k]) & (cap - 1);
				while (t[j])
					j = (j + 1) & (cap - 1);
				t[j] = w->table[i];
			}
		free(w->table);
		w->table = t;
		w->tcap = cap;
	}
	if (!w->tcap)
		return -1;
	size_t j = hash(s, n) & (w->tcap - 1);
	while (w->table[j]) {
		size_t k = w->table[j] - 1;
		if (w->key_off[k + 1] - w->key_off[k] == n && !memcmp(w->keys.data + w->key_off[k], s, n))
			return (long)k;
		j = (j + 1) & (w->tcap - 1);
	}
	if (!add)
		return -1;
	if (w->nkeys + 2 > w->keycap) {
		size_t cap = w->keycap ? w->keycap * 2 : 16;
		size_t *o = realloc(w->key_off, cap * sizeof *o);
		if (!o)
			return -2;
		w->key_off = o;
		w->keycap = cap;
	}
	if (vdb_buf_append(&w->keys, s, n))
		return -2;
	w->key_off[w->nkeys + 1] = w->keys.len;
	w->table[j] = ++w->nkeys;
	return (long)(w->nkeys - 1);
}

/* Walks the payload object's top-level members: fn(key, value span) for each. */
static vdb_status members(vdb_csv_writer *w, const char *payload, size_t len,
			  vdb_status (*fn)(vdb_csv_writer *, const char *, size_t, vdb_error *),
			  vdb_error *err)
{
	vj_reader r;
	vj_init(&r, payload, len);
	if (vj_expect(&r, '{'))
		return vdb_err(err, VDB_ECORRUPT, "stored payload is not a JSON object");
	if (vj_peek(&r) == '}')
		return VDB_OK;
	for (;;) {
		w->key.len = 0;
		if (vj_string(&r, &w->key) || vj_expect(&r, ':'))
			return vdb_err(err, VDB_ECORRUPT, "stored payload: %s", r.err);
		vj_peek(&r);
		const char *v = r.p;
		if (vj_value(&r, NULL))
			return vdb_err(err, VDB_ECORRUPT, "stored payload: %s", r.err);
		vdb_status st = fn(w, v, (size_t)(r.p - v), err);
		if (st)
			return st;
		int c = vj_peek(&r);
		if (c == ',') {
			r.p++;
			continue;
		}
		return VDB_OK;
	}
}

/* A record named in a message: its id as JSON (shortened). */
static vdb_status refuse(vdb_csv_writer *w, const char *why, vdb_error *err)
{
	vdb_buf b = VDB_BUF_INIT;
	if (vdb_jsonl_append_id((vdb_text *)&b, &w->rec->id) || vdb_buf_putc(&b, 0)) {
		vdb_buf_free(&b);
		return vdb_err_nomem(err);
	}
	vdb_status st = vdb_err(err, VDB_EDATA, "record %.80s: %s: not representable in CSV (use "
				"JSON lines)", b.data, why);
	vdb_buf_free(&b);
	return st;
}

static vdb_status add_key(vdb_csv_writer *w, const char *v, size_t n, vdb_error *err)
{
	if (memchr(w->key.data, 0, w->key.len))
		return refuse(w, "a payload key holds a NUL byte", err);
	if (w->rec && n && v[0] == '"') { /* a string value: its text must hold no NUL */
		vj_reader r;
		vj_init(&r, v, n);
		w->tmp.len = 0;
		if (vj_string(&r, &w->tmp))
			return vdb_err(err, VDB_ECORRUPT, "stored payload: %s", r.err);
		if (memchr(w->tmp.data, 0, w->tmp.len))
			return refuse(w, "a payload string holds a NUL byte", err);
	}
	return lookup(w, w->key.data, w->key.len, 1) == -2 ? vdb_err_nomem(err) : VDB_OK;
}

vdb_status vdb_csv_writer_add_keys(vdb_csv_writer *w, const char *payload, size_t len,
				   vdb_error *err)
{
	w->rec = NULL;
	return payload && w->flat ? members(w, payload, len, add_key, err) : VDB_OK;
}

void vdb_csv_writer_set_payload_columns(vdb_csv_writer *w, int on)
{
	w->flat = on;
}

vdb_status vdb_csv_writer_add(vdb_csv_writer *w, const vdb_record *rec, vdb_error *err)
{
	w->rec = rec;
	if (rec->id.is_string && memchr(rec->id.str, 0, rec->id.len))
		return refuse(w, "the id holds a NUL byte", err);
	w->tmp.len = 0;
	vdb_status st = jsonl_append_id_field((vdb_text *)&w->tmp, &rec->id, err);
	if (st == VDB_EDATA)
		return refuse(w, err->message, err);
	if (!st && rec->payload && w->flat)
		st = members(w, rec->payload, rec->payload_len, add_key, err);
	w->rec = NULL;
	return st;
}

/* Whether a payload key is named `prefix` followed by a vector column number (< dim, no
 * leading zeros), or, for the JSON-array vector, exactly `name`. */
static int clashes(vdb_csv_writer *w, const char *name, int numbered)
{
	size_t n = strlen(name);
	if (!numbered)
		return lookup(w, name, n, 0) >= 0;
	for (size_t k = 0; k < w->nkeys; k++) {
		const char *s = w->keys.data + w->key_off[k];
		size_t len = w->key_off[k + 1] - w->key_off[k];
		if (len <= n || len > n + 10 || memcmp(s, name, n) || (s[n] == '0' && len > n + 1))
			continue;
		uint64_t col = 0;
		size_t i = n;
		while (i < len && s[i] >= '0' && s[i] <= '9')
			col = col * 10 + (uint64_t)(s[i++] - '0');
		if (i == len && col < w->dim)
			return 1;
	}
	return 0;
}

/* out = base with '_' in front until no payload key takes the name. */
static int column_name_for(vdb_csv_writer *w, vdb_buf *out, const char *base, int numbered)
{
	out->len = 0;
	if (vdb_buf_puts(out, base) || vdb_buf_putc(out, 0))
		return -1;
	while (clashes(w, out->data, numbered)) {
		if (vdb_buf_putc(out, 0))
			return -1;
		memmove(out->data + 1, out->data, out->len - 1);
		out->data[0] = '_';
	}
	return 0;
}

void vdb_csv_writer_columns(const vdb_csv_writer *w, const char **id, const char **vector)
{
	*id = w->id_name.data ? w->id_name.data : "id";
	*vector = w->vec_name.data ? w->vec_name.data : w->split ? "v" : "vector";
}

/* Appends a CSV field, quoted when it holds a comma, a quote or a line break. */
static int put_field(vdb_buf *b, const char *s, size_t n)
{
	int q = 0;
	for (size_t i = 0; i < n && !q; i++)
		q = s[i] == ',' || s[i] == '"' || s[i] == '\n' || s[i] == '\r';
	if (!q)
		return vdb_buf_append(b, s, n);
	if (vdb_buf_putc(b, '"'))
		return -1;
	for (size_t i = 0; i < n; i++)
		if ((s[i] == '"' && vdb_buf_putc(b, '"')) || vdb_buf_putc(b, s[i]))
			return -1;
	return vdb_buf_putc(b, '"');
}

vdb_status vdb_csv_writer_header(vdb_csv_writer *w, vdb_text *t, vdb_error *err)
{
	vdb_buf *b = (vdb_buf *)t;
	if (column_name_for(w, &w->id_name, "id", 0) ||
	    column_name_for(w, &w->vec_name, w->split ? "v" : "vector", w->split) ||
	    put_field(b, w->id_name.data, w->id_name.len - 1))
		return vdb_err_nomem(err);
	if (!w->split && (vdb_buf_putc(b, ',') || put_field(b, w->vec_name.data, w->vec_name.len - 1)))
		return vdb_err_nomem(err);
	for (uint32_t i = 0; w->split && i < w->dim; i++)
		if (vdb_buf_putc(b, ',') || put_field(b, w->vec_name.data, w->vec_name.len - 1) ||
		    vdb_buf_printf(b, "%" PRIu32, i))
			return vdb_err_nomem(err);
	free(w->val);
	free(w->vlen);
	w->val = calloc(w->nkeys + 1, sizeof *w->val);
	w->vlen = calloc(w->nkeys + 1, sizeof *w->vlen);
	if (!w->val || !w->vlen)
		return vdb_err_nomem(err);
	for (size_t k = 0; k < w->nkeys; k++)
		if (vdb_buf_putc(b, ',') ||
		    put_field(b, w->keys.data + w->key_off[k], w->key_off[k + 1] - w->key_off[k]))
			return vdb_err_nomem(err);
	if (!w->flat && vdb_buf_puts(b, ",payload"))
		return vdb_err_nomem(err);
	return vdb_buf_puts(b, "\r\n") ? vdb_err_nomem(err) : VDB_OK;
}

static vdb_status take_value(vdb_csv_writer *w, const char *v, size_t n, vdb_error *err)
{
	long k = lookup(w, w->key.data, w->key.len, 0);
	if (k < 0)
		return vdb_err(err, VDB_EINTERNAL, "payload key not collected before the header");
	w->val[k] = v;
	w->vlen[k] = n;
	return VDB_OK;
}

vdb_status vdb_csv_writer_record(vdb_csv_writer *w, vdb_text *t, const vdb_record *rec,
				 vdb_error *err)
{
	vdb_buf *b = (vdb_buf *)t;
	vdb_status st;
	w->tmp.len = 0;
	if ((st = jsonl_append_id_field((vdb_text *)&w->tmp, &rec->id, err)))
		return st;
	if (put_field(b, w->tmp.data, w->tmp.len))
		return vdb_err_nomem(err);
	if (w->split) {
		for (uint32_t i = 0; i < w->dim; i++)
			if (vdb_buf_putc(b, ',') || vdb_jsonl_append_float(t, rec->vector[i]))
				return vdb_err_nomem(err);
	} else if (vdb_buf_puts(b, ",\"") || vdb_jsonl_append_vector(t, rec->vector, w->dim) ||
		   vdb_buf_putc(b, '"')) {
		return vdb_err_nomem(err);
	}
	if (!w->val && (st = vdb_err(err, VDB_EINTERNAL, "CSV record before the header")))
		return st;
	if (!w->flat) /* the payload's JSON text, as stored; empty without one */
		return vdb_buf_putc(b, ',') ||
			       (rec->payload && put_field(b, rec->payload, rec->payload_len)) ||
			       vdb_buf_puts(b, "\r\n")
			   ? vdb_err_nomem(err)
			   : VDB_OK;
	for (size_t k = 0; k < w->nkeys; k++)
		w->val[k] = NULL;
	if (rec->payload && (st = members(w, rec->payload, rec->payload_len, take_value, err)))
		return st;
	for (size_t k = 0; k < w->nkeys; k++) {
		if (vdb_buf_putc(b, ','))
			return vdb_err_nomem(err);
		const char *v = w->val[k];
		size_t n = w->vlen[k];
		if (!v)
			continue;
		if (v[0] == '"') { /* strings as their text */
			vj_reader r;
			vj_init(&r, v, n);
			w->tmp.len = 0;
			if (vj_string(&r, &w->tmp))
				return vdb_err(err, VDB_ECORRUPT, "stored payload: %s", r.err);
			v = w->tmp.data;
			n = w->tmp.len;
		}
		if (put_field(b, v, n))
			return vdb_err_nomem(err);
	}
	return vdb_buf_puts(b, "\r\n") ? vdb_err_nomem(err) : VDB_OK;
}

void vdb_csv_writer_free(vdb_csv_writer *w)
{
	if (!w)
		return;
	vdb_buf_free(&w->keys);
	free(w->key_off);
	free(w->table);
	free(w->val);
	free(w->vlen);
	vdb_buf_free(&w->key);
	vdb_buf_free(&w->tmp);
	vdb_buf_free(&w->id_name);
	vdb_buf_free(&w->vec_name);
	free(w);
}
