/* Consistency checks of a collection (vdb-check, and restore before anything is visible). */
#ifndef VDB_SNAPSHOT_CHECK_H
#define VDB_SNAPSHOT_CHECK_H

#include <stdint.h>

#include "vdb_admin.h"

/* The CRC32C of bytes [off, off + len) of the file `name` ("<collection>/seg-<n>.vdb")
 * as the caller wrote them: restore computes these while it extracts, from the very bytes
 * it passes to write(), so that checking the result need not read every section again. */
typedef struct vdb_known_crc {
	const char *name;
	uint64_t off, len;
	uint32_t crc;
} vdb_known_crc;

typedef struct vdb_known_crcs {
	vdb_known_crc *v;
	size_t n, cap;
} vdb_known_crcs;

/* Checks collection name of db, reporting each problem (and, when sound, one summary line)
 * through report. Adds the problems found to *problems; *live receives the live record
 * count when the collection could be loaded. A file the current version does not name is
 * a note, or a problem when `strict` (a restored database holds nothing else). Live rows
 * a graph leaves unreachable (builds before every row was linked in could) are a problem
 * --repair fixes, but only a note when `strict`: an archive is restored as it was made.
 * With `rebuild`, *rebuild receives a malloc'd array of the *nrebuild segment numbers whose
 * damage is confined to derived sections (what vdb_rebuild_segments repairs).
 * With `known` (or NULL), a section whose file and range it lists is judged by that CRC
 * instead of being read again.
 * VDB_ENOENT when the collection does not exist. */
vdb_status vdb_check_collection(const char *db, const char *name, int strict,
				const vdb_known_crcs *known, vdb_check_report report, void *ctx,
				uint64_t *problems, uint64_t *live, uint64_t **rebuild,
				size_t *nrebuild, vdb_error *err);

#endif
