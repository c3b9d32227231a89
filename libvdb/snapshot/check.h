/* Consistency checks of a collection (vdb-check, and restore before anything is visible). */
#ifndef VDB_SNAPSHOT_CHECK_H
#define VDB_SNAPSHOT_CHECK_H

#include <stdint.h>

#include "vdb.h"

/* Checks collection name of db, reporting each problem (and, when sound, one summary line)
 * through report. Adds the problems found to *problems; *live receives the live record
 * count when the collection could be loaded. A file the current version does not name is
 * a note, or a problem when `strict` (a restored database holds nothing else).
 * With `rebuild`, *rebuild receives a malloc'd array of the *nrebuild segment numbers whose
 * damage is confined to derived sections (what vdb_rebuild_segments repairs).
 * VDB_ENOENT when the collection does not exist. */
vdb_status vdb_check_collection(const char *db, const char *name, int strict,
				vdb_check_report report, void *ctx, uint64_t *problems,
				uint64_t *live, uint64_t **rebuild, size_t *nrebuild,
				vdb_error *err);

#endif
