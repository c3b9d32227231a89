/* Exact search over a loaded collection version: every live row of every segment and of
 * the log tail. */
#ifndef VDB_INDEX_FLAT_H
#define VDB_INDEX_FLAT_H

#include "../storage/state.h"
#include "vdb.h"

vdb_status vdb_flat_search(vdb_state *s, const float *q, size_t k, vdb_hit *hits, size_t *n,
			   vdb_error *err);
/* The id behind (src, row) of a hit or candidate. */
vdb_status vdb_state_row_id(const vdb_state *s, uint32_t src, uint64_t row, vdb_id *out,
			    vdb_error *err);

#endif
