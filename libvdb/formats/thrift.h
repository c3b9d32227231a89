/* The Thrift compact protocol, the subset Parquet's footer and page headers use: structs of
 * integer, binary, bool, list and struct fields (no maps are written; maps, sets and doubles
 * are skipped when read).
 *
 * Writing appends to a vdb_buf; the first allocation failure makes the writer `failed` and
 * every later call a no-op, so a caller checks once at the end.
 *
 * Reading never trusts the bytes: every length and count is checked against what is left
 * before it is used, nesting is bounded, and the first error is kept (tc_reader.err) with
 * every later call failing. */
#ifndef VDB_FORMATS_THRIFT_H
#define VDB_FORMATS_THRIFT_H

#include <stddef.h>
#include <stdint.h>

#include "../util/buf.h"

enum {
	TC_STOP = 0,
	TC_TRUE = 1,
	TC_FALSE = 2,
	TC_BYTE = 3,
	TC_I16 = 4,
	TC_I32 = 5,
	TC_I64 = 6,
	TC_DOUBLE = 7,
	TC_BINARY = 8,
	TC_LIST = 9,
	TC_SET = 10,
	TC_MAP = 11,
	TC_STRUCT = 12,
};

#define TC_MAX_DEPTH 32

/* Unsigned LEB128 varints, which Parquet's encodings use too: appends v (0, or -1 out of
 * memory); reads one from *p (before end) and advances *p (0, or -1 when the bytes end or
 * it runs past 64 bits). */
int tc_put_uvarint(vdb_buf *b, uint64_t v);
int tc_get_uvarint(const uint8_t **p, const uint8_t *end, uint64_t *v);

typedef struct tc_writer {
	vdb_buf *b;
	int16_t last[TC_MAX_DEPTH]; /* the last field id written, per open struct */
	int depth;
	int failed;
} tc_writer;

void tc_writer_init(tc_writer *w, vdb_buf *b);
/* A struct inside a list (no field header), or the outermost one. */
void tc_struct_begin(tc_writer *w);
void tc_struct_end(tc_writer *w); /* the stop byte */
/* A struct-valued field: its header, then tc_struct_begin. */
void tc_field_struct(tc_writer *w, int16_t id);
void tc_field_i32(tc_writer *w, int16_t id, int32_t v);
void tc_field_i64(tc_writer *w, int16_t id, int64_t v);
void tc_field_bool(tc_writer *w, int16_t id, int v);
void tc_field_byte(tc_writer *w, int16_t id, int8_t v);
void tc_field_binary(tc_writer *w, int16_t id, const void *p, size_t n);
void tc_field_string(tc_writer *w, int16_t id, const char *s);
/* A list field's header; the n elements follow (tc_elem_* or tc_struct_begin). */
void tc_field_list(tc_writer *w, int16_t id, uint8_t elem_type, uint32_t n);
void tc_elem_i32(tc_writer *w, int32_t v);
void tc_elem_binary(tc_writer *w, const void *p, size_t n);
void tc_elem_string(tc_writer *w, const char *s);

typedef struct tc_reader {
	const uint8_t *start, *p, *end;
	int depth;
	char err[96]; /* "" while all is well */
} tc_reader;

void tc_reader_init(tc_reader *r, const void *p, size_t n);
/* Bytes read so far. */
size_t tc_reader_offset(const tc_reader *r);

/* The next field of the struct being read: 1 with *id and *type, 0 at its stop byte, -1 on
 * damage. `last` is the struct's previous field id (start at 0). A bool field's value is in
 * its type (TC_TRUE / TC_FALSE). */
int tc_next_field(tc_reader *r, int16_t *last, int16_t *id, uint8_t *type);
/* Enters / leaves a struct (for the depth bound); tc_struct_leave always returns 0. */
int tc_struct_enter(tc_reader *r);
void tc_struct_leave(tc_reader *r);
/* Values of a field (or list element) of the given wire type; -1 when the type is not one
 * the value can be read from, or the bytes end. */
int tc_read_i32(tc_reader *r, uint8_t type, int32_t *v);
int tc_read_i64(tc_reader *r, uint8_t type, int64_t *v);
int tc_read_bool(tc_reader *r, uint8_t type, int *v); /* a field's (in its type) */
int tc_read_binary(tc_reader *r, uint8_t type, const uint8_t **p, uint32_t *n);
/* A list's header: element type and count (at most the bytes left: every element takes at
 * least one). */
int tc_read_list(tc_reader *r, uint8_t type, uint8_t *elem_type, uint32_t *n);
/* Skips a value of the given type (nested values included, depth bounded). */
int tc_skip(tc_reader *r, uint8_t type);
/* Records an error found by the caller ("bad encoding 99"); -1. */
int tc_fail(tc_reader *r, const char *why);

#endif
