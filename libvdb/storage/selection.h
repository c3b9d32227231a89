/* The rows of one collection version that a filter selects: per segment a bitmap of rows a
 * search must not return (deleted, superseded, or not matching) with the count of the rest,
 * and per log-tail entry a flag. A view keeps the last selection and reuses it while queries
 * carry the same filter text, so a stream of queries with one filter evaluates each payload
 * once, not once per query. */
#ifndef VDB_STORAGE_SELECTION_H
#define VDB_STORAGE_SELECTION_H

#include <stdint.h>

#include "../util/buf.h"
#include "state.h"
#include "vdb.h"

typedef struct vdb_selection {
	int valid;
	vdb_buf key;       /* canonical text of the filter it was computed for */
	size_t nseg;
	uint64_t **skip;   /* per segment: rows not to return; never NULL once valid */
	uint64_t *matches; /* per segment: live matching rows */
	uint8_t *mt;       /* per log-tail entry: 1 when live and matching */
	uint64_t total;    /* live matching records of the whole version */
} vdb_selection;

/* Makes sel hold f's selection over s (recomputed unless it already holds it). Errors:
 * VDB_ECORRUPT (a damaged payload: names the segment and row), VDB_ENOMEM. */
vdb_status vdb_selection_get(vdb_selection *sel, const vdb_state *s, const vdb_filter *f,
			     vdb_error *err);
void vdb_selection_free(vdb_selection *sel);

#endif
