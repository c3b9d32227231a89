/* Checking a snapshot before an incremental is built on it. */
#ifndef VDB_SNAPSHOT_BASE_H
#define VDB_SNAPSHOT_BASE_H

#include "vdb.h"

/* Whether the snapshot at path can be the base of an incremental: every entry it stores is
 * read and checked against its manifest (size and CRC32C), the archive ends where it must,
 * and each snapshot it depends on is in its directory, with the id it records, listing
 * what it takes from it. Reads (and decompresses) the whole archive; the ones it depends
 * on only as far as their manifests. VDB_ENOENT: path or a dependency is missing;
 * VDB_ECORRUPT: damage (the message names the file). */
vdb_status vdb_snapshot_check_base(const char *path, vdb_cancel cancel, vdb_error *err);

#endif
