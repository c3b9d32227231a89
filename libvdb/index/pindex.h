/* Payload indexes: the values of one payload field in one sealed segment, as a sorted list of
 * (key, row) pairs stored in the segment and searched through its mapping. Filters use them
 * to find a superset of their matching rows (filter.c), which are then evaluated exactly, so
 * a key collision or a value the index does not cover can never change a result.
 *
 * Section content (kind VDB_SEC_PAYLOAD_INDEX, one per indexed field):
 *   u32 type (vdb_field_type), u32 path length, u64 entry count, the path's bytes, zeros to
 *   a multiple of 8, then entry count x {u64 key, u64 row} sorted by key, then row.
 * Keys: keyword: FNV-1a 64 of a string value's decoded bytes; int and float: every number,
 * as its double's bits made order-preserving (so a range of numbers is a range of keys). */
#ifndef VDB_INDEX_PINDEX_H
#define VDB_INDEX_PINDEX_H

#include <stddef.h>
#include <stdint.h>

#include "../util/buf.h"
#include "vdb.h"

typedef struct vdb_pindex {
	vdb_field_type type;
	const char *path; /* into the mapping, not NUL-terminated */
	size_t path_len;
	const unsigned char *entries;
	uint64_t n;
} vdb_pindex;

uint64_t vdb_pindex_string_key(const char *s, size_t len);
uint64_t vdb_pindex_number_key(double d);

/* Collects the entries of one field while a segment is written. */
typedef struct vdb_pindex_builder {
	const vdb_index_field *field;
	vdb_buf entries; /* {u64 key, u64 row} in native order until finish */
	uint64_t row;    /* the row being added */
	int failed;
} vdb_pindex_builder;

/* Adds the values of the field in one row's payload (NULL: none). -1: out of memory or a
 * damaged payload (err says which). */
int vdb_pindex_add(vdb_pindex_builder *b, uint64_t row, const char *payload, size_t len,
		   vdb_error *err);
/* Sorts the entries and writes the section content into out. */
int vdb_pindex_finish(vdb_pindex_builder *b, vdb_buf *out, vdb_error *err);
void vdb_pindex_builder_free(vdb_pindex_builder *b);

/* Checks a section's layout from its first VDB_PINDEX_HEAD_MAX bytes (or all of it, when
 * shorter) read into head, and fills p with pointers into sec, the mapped section (entries
 * are checked when read). */
#define VDB_PINDEX_HEAD_MAX 16
vdb_status vdb_pindex_open(const unsigned char *head, const unsigned char *sec, uint64_t len,
			   vdb_pindex *p, const char *file, vdb_error *err);

/* Sets the bits of the rows whose key is in [lo, hi]. -1 when an entry names a row >= rows
 * (a damaged file). */
int vdb_pindex_range(const vdb_pindex *p, uint64_t lo, uint64_t hi, uint64_t rows,
		     uint64_t *bits);

#endif
