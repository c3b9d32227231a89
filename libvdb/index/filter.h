/* Payload filters: the Mongo-style filter language compiled into a tree (filter.c), and the
 * per-segment selections a search, count or cursor computes from one (storage/selection.c). */
#ifndef VDB_INDEX_FILTER_H
#define VDB_INDEX_FILTER_H

#include <stddef.h>
#include <stdint.h>

#include "pindex.h"
#include "vdb.h"

/* Evaluates f against one payload (minified JSON object text; NULL/0 for a record without
 * one, which behaves like {}). 1: matches, 0: does not, -1: the payload is not well-formed
 * JSON (a damaged file: callers report VDB_ECORRUPT naming the row). */
int vdb_filter_eval(const vdb_filter *f, const char *payload, size_t len);

/* The filter's canonical text (its minified JSON): equal texts select equal rows, which is
 * what lets a view reuse the selection it computed for the previous query. */
const char *vdb_filter_text(const vdb_filter *f, size_t *len);

/* 1 when the filter is {} (matches every record): searches skip the selection then. */
int vdb_filter_is_all(const vdb_filter *f);

/* The rows of a segment of `rows` rows that may match f according to its payload indexes:
 * *out is a new bitmap (free() it) holding a superset of the matching rows, or NULL when
 * the indexes cannot narrow f (every row must be evaluated). Errors: VDB_ECORRUPT (an entry
 * names a row outside the segment), VDB_ENOMEM. */
vdb_status vdb_filter_candidates(const vdb_filter *f, const vdb_pindex *ix, size_t nix,
				 uint64_t rows, uint64_t **out, const char *file, vdb_error *err);

#endif
