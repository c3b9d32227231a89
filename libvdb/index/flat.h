/* Search over a loaded collection version: every live row of every segment and of the log
 * tail, through segment graphs or exact scans. */
#ifndef VDB_INDEX_FLAT_H
#define VDB_INDEX_FLAT_H

#include "../storage/state.h"
#include "hnsw.h"
#include "selection.h"
#include "vdb.h"

/* Searches one loaded version: graphs where segments have them (unless o->exact), exact
 * scans elsewhere, merged into one top-k. With a selection (o->filter's, computed by the
 * caller), only its rows are returned: segments with few of them are scanned over those
 * rows alone, the others searched through the graph with the rest skipped. */
vdb_status vdb_index_search(vdb_state *s, vdb_hnsw_scratch *scratch, const float *q, size_t k,
			    const vdb_search_options *o, const vdb_selection *sel, vdb_hit *hits,
			    size_t *n, vdb_error *err);
/* The id behind (src, row) of a hit or candidate. */
vdb_status vdb_state_row_id(const vdb_state *s, uint32_t src, uint64_t row, vdb_id *out,
			    vdb_error *err);

#endif
