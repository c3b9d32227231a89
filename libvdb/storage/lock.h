/* The writer lock: flock(LOCK_EX) on the collection's LOCK file. */
#ifndef VDB_STORAGE_LOCK_H
#define VDB_STORAGE_LOCK_H

#include "vdb.h"

/* Acquires the lock of collection directory dir (name is for messages), waiting as o says.
 * On success *fd holds the lock until closed; the file then names this process. */
vdb_status vdb_lock_acquire(const char *dir, const char *name, const vdb_writer_options *o,
			    int *fd, vdb_error *err);
/* The pid recorded by the current holder, or 0 when unknown. */
long vdb_lock_holder(int fd);

#endif
