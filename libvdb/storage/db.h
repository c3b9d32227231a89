/* The database directory (db.c): its marker and its collections. */
#ifndef VDB_STORAGE_DB_H
#define VDB_STORAGE_DB_H

#include <stddef.h>

#include "vdb.h"

/* Checks that db is a directory holding a valid vdb marker. Errors: VDB_ENOENT (missing, not
 * a directory, no marker), VDB_ECORRUPT (a damaged marker), VDB_EIO. */
vdb_status vdb_db_check(const char *db, vdb_error *err);

/* The collections of db (directories with a CONFIG file and a valid name), sorted by
 * name, as a malloc'd array. */
typedef char vdb_coll_name[VDB_NAME_MAX + 1];
vdb_status vdb_db_collections(const char *db, vdb_coll_name **names, size_t *n, vdb_error *err);

/* VDB_ENOENT "collection 'name' does not exist in db", naming the collections that do
 * (users forget -c): "(it has: a, b)", "(it has no collection)". */
vdb_status vdb_err_no_collection(vdb_error *err, const char *db, const char *name);

/* Removes what drops that were killed left in db (drop.c). */
void vdb_remove_dropped(const char *db);

#endif
