/* Consistency checks of a collection (vdb-check, and restore before anything is visible). */
#ifndef VDB_SNAPSHOT_CHECK_H
#define VDB_SNAPSHOT_CHECK_H

#include <stdint.h>

#include "vdb.h"

/* Checks collection name of db, reporting each problem (and, when sound, one summary line)
 * through report. Adds the problems found to *problems; *live receives the live record
 * count when the collection could be loaded. VDB_ENOENT when it does not exist. */
vdb_status vdb_check_collection(const char *db, const char *name, vdb_check_report report,
				void *ctx, uint64_t *problems, uint64_t *live, vdb_error *err);

#endif
