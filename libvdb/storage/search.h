/* Search over a loaded collection version: every live row of every segment and of the log
 * tail, through segment graphs or exact scans. */
#ifndef VDB_STORAGE_SEARCH_H
#define VDB_STORAGE_SEARCH_H

#include "../index/hnsw.h"
#include "selection.h"
#include "state.h"
#include "vdb.h"

/* Searches one loaded version: graphs where segments have them (unless o->exact), exact
 * scans elsewhere, merged into one top-k. With a selection (o->filter's, computed by the
 * caller), only its rows are returned: segments with few of them are scanned over those
 * rows alone, the others searched through the graph with the rest skipped. */
vdb_status vdb_state_search(vdb_state *s, vdb_hnsw_scratch *scratch, const float *q, size_t k,
			    const vdb_search_options *o, const vdb_selection *sel, vdb_hit *hits,
			    size_t *n, vdb_error *err);
/* Searches several queries with one set of options: as vdb_state_search on each, but
 * segments that are scanned are read once for the batch, a cache-sized block of rows at a
 * time. queries[i] has dim floats and asks for ks[i] results, written to hits[i]; ns[i]
 * gets their count. Every query is checked before any is searched: on a bad query (or a
 * failure reading results) *failed is its index, else nq. */
vdb_status vdb_state_search_batch(vdb_state *s, vdb_hnsw_scratch *scratch, size_t nq,
				  const float *const *queries, const size_t *ks,
				  const vdb_search_options *o, const vdb_selection *sel,
				  vdb_hit *const *hits, size_t *ns, size_t *failed, vdb_error *err);

#endif
