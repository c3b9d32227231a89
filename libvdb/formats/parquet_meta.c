/* The Parquet footer (FileMetaData) and page headers, parsed from the Thrift compact
 * protocol (parquet.h). Only what the reader uses is kept; every other field is skipped.
 * Each element is checked as soon as it is parsed (its required fields are there, its
 * numbers are in range), so a hostile footer fails at its first bad element and memory
 * stays proportional to the well-formed part. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parquet.h"
#include "thrift.h"

#define FIELD_LOOP(r, id, t)                                                                   \
	for (int16_t last_ = 0, id = 0; (more_ = tc_next_field((r), &last_, &id, &(t))) == 1;)

static int bad(tc_reader *r, const char *why)
{
	return tc_fail(r, why);
}

/* An integer or bool field of a struct, by id, and where it goes in the C struct. */
typedef struct int_field {
	int16_t id;
	char kind; /* '4': 32-bit (int or int32_t), '8': int64_t, 'b': bool into an int */
	size_t offset;
} int_field;

/* Another kind of field (a list, a struct): 0, or -1 on damage. */
typedef int (*field_hook)(tc_reader *r, int16_t id, uint8_t type, void *out);

/* Reads a struct whose integer fields spec describes into out, other fields through hook
 * (NULL: skipped); *seen gets bit `id` for each field id below 32 read. 0 or -1. */
static int read_struct(tc_reader *r, const int_field *spec, size_t n, void *out,
		       field_hook hook, unsigned *seen)
{
	uint8_t t;
	int more_;
	*seen = 0;
	if (tc_struct_enter(r))
		return -1;
	FIELD_LOOP(r, id, t)
	{
		size_t k = 0;
		while (k < n && spec[k].id != id)
			k++;
		int rc;
		char *at = k < n ? (char *)out + spec[k].offset : NULL;
		if (k < n && spec[k].kind == '8') {
			int64_t v;
			if (!(rc = tc_read_i64(r, t, &v)))
				memcpy(at, &v, sizeof v);
		} else if (k < n && spec[k].kind == '4') {
			int32_t v;
			if (!(rc = tc_read_i32(r, t, &v)))
				memcpy(at, &v, sizeof v);
		} else if (k < n) {
			int v;
			if (!(rc = tc_read_bool(r, t, &v)))
				memcpy(at, &v, sizeof v);
		} else {
			rc = hook ? hook(r, id, t, out) : tc_skip(r, t);
		}
		if (rc)
			return -1;
		if (id > 0 && id < 32)
			*seen |= 1u << id;
	}
	tc_struct_leave(r);
	return more_ ? -1 : 0;
}

#define FIELD(id, kind, type, member) {id, kind, offsetof(type, member)}
#define N(spec) (sizeof spec / sizeof *spec)

/* TimestampType's unit (2): a union of empty structs, MILLIS (1), MICROS, NANOS. */
static int time_unit_hook(tc_reader *r, int16_t id, uint8_t type, void *out)
{
	unsigned seen;
	if (id != 2 || type != TC_STRUCT)
		return tc_skip(r, type);
	if (read_struct(r, NULL, 0, NULL, NULL, &seen))
		return -1;
	for (int unit = 0; unit < 3; unit++)
		if (seen & 1u << (unit + 1))
			((pq_schema_el *)out)->time_unit = unit;
	return 0;
}

static int parse_timestamp(tc_reader *r, pq_schema_el *e)
{
	static const int_field spec[] = {FIELD(1, 'b', pq_schema_el, utc)};
	unsigned seen;
	return read_struct(r, spec, N(spec), e, time_unit_hook, &seen);
}

static int parse_int_type(tc_reader *r, pq_schema_el *e)
{
	static const int_field spec[] = {FIELD(1, '4', pq_schema_el, int_bits),
					 FIELD(2, 'b', pq_schema_el, int_signed)};
	unsigned seen;
	e->int_bits = 0;
	e->int_signed = 1;
	if (read_struct(r, spec, N(spec), e, NULL, &seen))
		return -1;
	if (e->int_bits != 8 && e->int_bits != 16 && e->int_bits != 32 && e->int_bits != 64)
		return bad(r, "an INTEGER annotation has a bit width other than 8, 16, 32, 64");
	return 0;
}

/* LogicalType: a union; the member set says the kind. */
static int parse_logical(tc_reader *r, pq_schema_el *e)
{
	static const char *const names[] = {
		"", "STRING", "MAP", "LIST", "ENUM", "DECIMAL", "DATE", "TIME", "TIMESTAMP", "",
		"INTEGER", "UNKNOWN", "JSON", "BSON", "UUID", "FLOAT16", "VARIANT", "GEOMETRY",
		"GEOGRAPHY"};
	uint8_t t;
	int more_;
	if (tc_struct_enter(r))
		return -1;
	FIELD_LOOP(r, id, t)
	{
		int rc = 0;
		switch (id) {
		case 1: case 4: e->kind = PQ_K_STRING; break;
		case 2: e->kind = PQ_K_MAP; break;
		case 3: e->kind = PQ_K_LIST; break;
		case 6: e->kind = PQ_K_DATE; break;
		case 12: e->kind = PQ_K_JSON; break;
		case 11: e->kind = PQ_K_NONE; break; /* UNKNOWN: always null */
		case 8:
			e->kind = PQ_K_TIMESTAMP;
			rc = t == TC_STRUCT ? parse_timestamp(r, e) : bad(r, "a TIMESTAMP is not a struct");
			break;
		case 10:
			e->kind = PQ_K_INT;
			rc = t == TC_STRUCT ? parse_int_type(r, e) : bad(r, "an INTEGER is not a struct");
			break;
		default:
			e->kind = PQ_K_OTHER;
			e->other = id > 0 && id < (int)(sizeof names / sizeof *names) && names[id][0]
					   ? names[id] : "an unknown logical type";
		}
		if (rc)
			return -1;
		if (id != 8 && id != 10 && tc_skip(r, t))
			return -1;
	}
	tc_struct_leave(r);
	return more_;
}

/* The older ConvertedType, used when there is no logical type. */
static void take_converted(pq_schema_el *e, int32_t ct)
{
	static const char *const names[] = {
		"UTF8", "MAP", "MAP_KEY_VALUE", "LIST", "ENUM", "DECIMAL", "DATE", "TIME_MILLIS",
		"TIME_MICROS", "TIMESTAMP_MILLIS", "TIMESTAMP_MICROS", "UINT_8", "UINT_16",
		"UINT_32", "UINT_64", "INT_8", "INT_16", "INT_32", "INT_64", "JSON", "BSON",
		"INTERVAL"};
	switch (ct) {
	case PQ_CT_UTF8: case PQ_CT_ENUM: e->kind = PQ_K_STRING; return;
	case PQ_CT_MAP: case PQ_CT_MAP_KEY_VALUE: e->kind = PQ_K_MAP; return;
	case PQ_CT_LIST: e->kind = PQ_K_LIST; return;
	case PQ_CT_DATE: e->kind = PQ_K_DATE; return;
	case PQ_CT_TIMESTAMP_MILLIS: case PQ_CT_TIMESTAMP_MICROS:
		e->kind = PQ_K_TIMESTAMP;
		e->time_unit = ct == PQ_CT_TIMESTAMP_MILLIS ? 0 : 1;
		e->utc = 1; /* what the converted types mean */
		return;
	case PQ_CT_JSON: e->kind = PQ_K_JSON; return;
	default:
		if (ct >= PQ_CT_UINT_8 && ct <= PQ_CT_INT_64) {
			int k = (ct - PQ_CT_UINT_8) % 4;
			e->kind = PQ_K_INT;
			e->int_bits = 8 << k;
			e->int_signed = ct >= PQ_CT_INT_8;
			return;
		}
		e->kind = PQ_K_OTHER;
		e->other = ct >= 0 && ct < (int32_t)(sizeof names / sizeof *names) ? names[ct]
									     : "an unknown converted type";
	}
}

static int parse_schema_el(tc_reader *r, pq_schema_el *e)
{
	uint8_t t;
	int more_;
	int32_t v, converted = -1;
	int has_name = 0, has_logical = 0;
	memset(e, 0, sizeof *e);
	if (tc_struct_enter(r))
		return -1;
	FIELD_LOOP(r, id, t)
	{
		int rc = 0;
		switch (id) {
		case 1:
			if (!(rc = tc_read_i32(r, t, &v))) {
				if (v < PQ_BOOLEAN || v > PQ_FIXED_LEN_BYTE_ARRAY)
					return bad(r, "a column has an unknown physical type");
				e->has_type = 1;
				e->type = v;
			}
			break;
		case 2: rc = tc_read_i32(r, t, &e->type_length); break;
		case 3:
			if (!(rc = tc_read_i32(r, t, &v)) && (v < PQ_REQUIRED || v > PQ_REPEATED))
				return bad(r, "a column has an unknown repetition");
			e->repetition = v;
			break;
		case 4: {
			const uint8_t *p;
			if (!(rc = tc_read_binary(r, t, &p, &e->name_len))) {
				e->name = (const char *)p;
				has_name = 1;
			}
			break;
		}
		case 5:
			if (!(rc = tc_read_i32(r, t, &e->num_children)) && e->num_children < 0)
				return bad(r, "a group has a negative number of children");
			break;
		case 6: rc = tc_read_i32(r, t, &converted); break;
		case 10:
			has_logical = 1;
			rc = t == TC_STRUCT ? parse_logical(r, e) : bad(r, "a logical type is not a struct");
			break;
		default: rc = tc_skip(r, t);
		}
		if (rc)
			return -1;
	}
	tc_struct_leave(r);
	if (more_)
		return -1;
	if (!has_name)
		return bad(r, "a schema element has no name");
	if (!has_logical && converted >= 0)
		take_converted(e, converted);
	if (e->has_type == (e->num_children > 0))
		return bad(r, e->has_type ? "a column has both a type and children"
					  : "a schema element has neither a type nor children");
	return 0;
}

/* ColumnMetaData's path_in_schema (3): only its length is kept. */
static int column_meta_hook(tc_reader *r, int16_t id, uint8_t type, void *out)
{
	uint8_t et;
	uint32_t n;
	if (id != 3)
		return tc_skip(r, type);
	if (tc_read_list(r, type, &et, &n))
		return -1;
	((pq_chunk *)out)->path_len = n;
	for (uint32_t i = 0; i < n; i++)
		if (tc_skip(r, et))
			return -1;
	return 0;
}

static int parse_column_meta(tc_reader *r, pq_chunk *c)
{
	static const int_field spec[] = {
		FIELD(1, '4', pq_chunk, type), FIELD(4, '4', pq_chunk, codec),
		FIELD(5, '8', pq_chunk, num_values), FIELD(6, '8', pq_chunk, total_uncompressed),
		FIELD(7, '8', pq_chunk, total_compressed), FIELD(9, '8', pq_chunk, data_page_offset),
		FIELD(11, '8', pq_chunk, dictionary_page_offset)};
	unsigned seen;
	if (read_struct(r, spec, N(spec), c, column_meta_hook, &seen))
		return -1;
	unsigned need = 1u << 1 | 1u << 3 | 1u << 4 | 1u << 5 | 1u << 7 | 1u << 9;
	if ((seen & need) != need)
		return bad(r, "a column chunk lacks a required field");
	if (!(seen & 1u << 11))
		c->dictionary_page_offset = -1;
	if (c->num_values < 0 || c->total_compressed < 0 || c->data_page_offset < 0 ||
	    (c->dictionary_page_offset < -1))
		return bad(r, "a column chunk has a negative count, size or offset");
	return 0;
}

static int parse_column_chunk(tc_reader *r, pq_chunk *c)
{
	uint8_t t;
	int more_, has_meta = 0;
	if (tc_struct_enter(r))
		return -1;
	FIELD_LOOP(r, id, t)
	{
		int rc;
		if (id == 1 && t == TC_BINARY)
			return bad(r, "column chunks stored in other files are not supported");
		if (id == 3 && t == TC_STRUCT) {
			rc = parse_column_meta(r, c);
			has_meta = 1;
		} else if (id == 8 && t == TC_STRUCT) {
			return bad(r, "encrypted columns are not supported");
		} else {
			rc = tc_skip(r, t);
		}
		if (rc)
			return -1;
	}
	tc_struct_leave(r);
	if (more_)
		return -1;
	if (!has_meta)
		return bad(r, "a column chunk has no metadata in the footer");
	return 0;
}

static int parse_row_group(tc_reader *r, pq_row_group *g)
{
	uint8_t t, et;
	int more_, has_rows = 0, has_cols = 0;
	uint32_t n;
	if (tc_struct_enter(r))
		return -1;
	FIELD_LOOP(r, id, t)
	{
		int rc = 0;
		if (id == 1) {
			if (has_cols)
				return bad(r, "a row group lists its columns twice");
			if (tc_read_list(r, t, &et, &n) || et != TC_STRUCT)
				return bad(r, "a row group's columns are not a list of structs");
			g->cols = calloc(n ? n : 1, sizeof *g->cols);
			if (!g->cols)
				return bad(r, "out of memory");
			g->ncols = n;
			has_cols = 1;
			for (uint32_t i = 0; i < n && !rc; i++)
				rc = parse_column_chunk(r, &g->cols[i]);
		} else if (id == 3) {
			rc = tc_read_i64(r, t, &g->num_rows);
			has_rows = 1;
		} else {
			rc = tc_skip(r, t);
		}
		if (rc)
			return -1;
	}
	tc_struct_leave(r);
	if (more_)
		return -1;
	if (!has_rows || !has_cols || g->num_rows < 0)
		return bad(r, "a row group lacks its row count or columns");
	return 0;
}

void pq_meta_free(pq_file_meta *m)
{
	for (uint32_t i = 0; m->groups && i < m->ngroups; i++)
		free(m->groups[i].cols);
	free(m->groups);
	free(m->schema);
	memset(m, 0, sizeof *m);
}

int pq_meta_parse(const uint8_t *p, size_t n, pq_file_meta *m, char *why, size_t whylen)
{
	tc_reader rd, *r = &rd;
	uint8_t t, et;
	int more_, has_schema = 0, has_rows = 0, has_groups = 0;
	uint32_t cnt;
	memset(m, 0, sizeof *m);
	tc_reader_init(r, p, n);
	if (tc_struct_enter(r))
		goto fail;
	FIELD_LOOP(r, id, t)
	{
		int rc = 0;
		if (id == 2 && !has_schema) {
			if (tc_read_list(r, t, &et, &cnt) || et != TC_STRUCT || !cnt) {
				bad(r, "the schema is not a list of elements");
				goto fail;
			}
			if (!(m->schema = calloc(cnt, sizeof *m->schema))) {
				bad(r, "out of memory");
				goto fail;
			}
			has_schema = 1;
			for (uint32_t i = 0; i < cnt && !rc; i++, m->nschema++)
				rc = parse_schema_el(r, &m->schema[i]);
		} else if (id == 3) {
			rc = tc_read_i64(r, t, &m->num_rows);
			has_rows = 1;
		} else if (id == 4 && !has_groups) {
			if (tc_read_list(r, t, &et, &cnt) || et != TC_STRUCT) {
				bad(r, "the row groups are not a list of structs");
				goto fail;
			}
			if (!(m->groups = calloc(cnt ? cnt : 1, sizeof *m->groups))) {
				bad(r, "out of memory");
				goto fail;
			}
			has_groups = 1;
			m->ngroups = cnt; /* zeroed: whatever parsed is freed on failure */
			for (uint32_t i = 0; i < cnt && !rc; i++)
				rc = parse_row_group(r, &m->groups[i]);
		} else if (id == 8 && t == TC_STRUCT) {
			bad(r, "encrypted files are not supported");
			goto fail;
		} else {
			rc = tc_skip(r, t);
		}
		if (rc)
			goto fail;
	}
	if (more_)
		goto fail;
	if (!has_schema || !has_rows || !has_groups || m->num_rows < 0) {
		bad(r, "the footer lacks the schema, the row count or the row groups");
		goto fail;
	}
	int64_t total = 0;
	for (uint32_t i = 0; i < m->ngroups; i++) {
		if (m->groups[i].num_rows > INT64_MAX - total) {
			bad(r, "the row groups' row counts overflow");
			goto fail;
		}
		total += m->groups[i].num_rows;
	}
	/* The row groups decide, as DuckDB and Arrow read them: an early Rust writer
	 * (parquet-rs 0.3) left the file's own count at 0. Each group's rows are checked
	 * against its column chunks when it is read. */
	m->num_rows = total;
	return 0;
fail:
	snprintf(why, whylen, "%s", rd.err[0] ? rd.err : "damaged metadata");
	pq_meta_free(m);
	return -1;
}

/* ---- page headers ---- */

/* The page header's own headers: DataPageHeader (5), DictionaryPageHeader (7),
 * DataPageHeaderV2 (8), read into the same pq_page_header; which were there goes to the
 * header's `bodies` bits through the caller. */
static int page_body_hook(tc_reader *r, int16_t id, uint8_t type, void *out)
{
	static const int_field v1[] = {
		FIELD(1, '4', pq_page_header, num_values), FIELD(2, '4', pq_page_header, encoding),
		FIELD(3, '4', pq_page_header, def_encoding),
		FIELD(4, '4', pq_page_header, rep_encoding)};
	static const int_field dict[] = {
		FIELD(1, '4', pq_page_header, num_values), FIELD(2, '4', pq_page_header, encoding)};
	static const int_field v2[] = {
		FIELD(1, '4', pq_page_header, num_values), FIELD(2, '4', pq_page_header, num_nulls),
		FIELD(3, '4', pq_page_header, num_rows), FIELD(4, '4', pq_page_header, encoding),
		FIELD(5, '4', pq_page_header, def_bytes), FIELD(6, '4', pq_page_header, rep_bytes),
		FIELD(7, 'b', pq_page_header, is_compressed)};
	pq_page_header *h = out;
	unsigned seen;
	if (type != TC_STRUCT || (id != 5 && id != 7 && id != 8))
		return tc_skip(r, type);
	if (id == 8)
		h->is_compressed = 1; /* the default */
	if (id == 5 ? read_struct(r, v1, N(v1), h, NULL, &seen)
	    : id == 7 ? read_struct(r, dict, N(dict), h, NULL, &seen)
		      : read_struct(r, v2, N(v2), h, NULL, &seen))
		return -1;
	unsigned need = id == 5 ? 0x1e : id == 7 ? 0x6 : 0x7e;
	if ((seen & need) != need)
		return bad(r, "a page's header lacks a required field");
	if (id == 8 && (h->num_nulls < 0 || h->num_rows < 0 || h->def_bytes < 0 || h->rep_bytes < 0))
		return bad(r, "a data page v2 header has a negative count");
	h->bodies |= 1u << id;
	return 0;
}

int pq_page_header_parse(const uint8_t *p, size_t n, pq_page_header *h, size_t *used, char *why,
			 size_t whylen)
{
	static const int_field spec[] = {
		FIELD(1, '4', pq_page_header, type),
		FIELD(2, '4', pq_page_header, uncompressed_size),
		FIELD(3, '4', pq_page_header, compressed_size)};
	tc_reader rd, *r = &rd;
	unsigned seen;
	memset(h, 0, sizeof *h);
	tc_reader_init(r, p, n);
	if (read_struct(r, spec, N(spec), h, page_body_hook, &seen))
		goto fail;
	if ((seen & 0xe) != 0xe || h->uncompressed_size < 0 || h->compressed_size < 0 ||
	    h->num_values < 0) {
		bad(r, "a page header lacks its type or sizes, or has a negative one");
		goto fail;
	}
	if ((h->type == PQ_DATA_PAGE && !(h->bodies & 1u << 5)) ||
	    (h->type == PQ_DICTIONARY_PAGE && !(h->bodies & 1u << 7)) ||
	    (h->type == PQ_DATA_PAGE_V2 && !(h->bodies & 1u << 8))) {
		bad(r, "a page header lacks the header of its kind");
		goto fail;
	}
	*used = tc_reader_offset(r);
	return 1;
fail:
	/* Running out of bytes may only mean the header goes on past what was read. */
	if (!strcmp(rd.err, "the metadata ends early") || !strcmp(rd.err, "a string runs past "
	    "the end of the metadata") || !strcmp(rd.err, "a list is longer than the metadata"))
		return 0;
	snprintf(why, whylen, "%s", rd.err[0] ? rd.err : "damaged page header");
	return -1;
}
