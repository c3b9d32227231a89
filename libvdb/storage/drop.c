/* Dropping and renaming collections, under the collection's writer lock.
 *
 * Drop: the collection's directory is renamed to a hidden name beside it
 * (.drop-NAME-PID, held by an flock for as long as the drop runs), the database directory
 * is fsynced -- from then on the collection is gone for every later open, as one step --
 * and only then are its files deleted. A drop killed after the rename leaves the hidden
 * directory, which the next drop or create in the database removes (util/io.h, leftovers);
 * killed before it, the collection is whole. Readers that have it open keep answering from
 * their mapped files until they close or refresh (which then fails: it no longer exists).
 *
 * Rename: one rename(2) of the directory that never replaces an existing collection
 * (RENAME_NOREPLACE where the file system has it), then fsync; the CONFIG's informational
 * "name" is rewritten afterwards (the directory's name is the one that counts). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../util/error.h"
#include "../util/io.h"
#include "config.h"
#include "db.h"
#include "format.h"
#include "lock.h"
#include "vdb.h"

#define DROP_PREFIX ".drop-"

/* .drop-NAME-PID: a collection a drop was deleting (NAME may hold '-'). */
static int match_drop(const char *name, void *ctx, long *pid)
{
	(void)ctx;
	const char *dash = strrchr(name, '-');
	size_t n = sizeof DROP_PREFIX - 1;
	if (strncmp(name, DROP_PREFIX, n) || dash < name + n)
		return 0;
	return (*pid = vdb_parse_pid(dash + 1, '\0', NULL)) > 0;
}

void vdb_remove_dropped(const char *db)
{
	vdb_remove_leftovers(db, match_drop, NULL);
}

/* The collection's directory, checked to be one, and its writer lock. */
static vdb_status lock_collection(const char *db, const char *name, const vdb_writer_options *o,
				  char *dir, size_t cap, int *lock_fd, vdb_error *err)
{
	if (!vdb_collection_name_valid(name))
		return vdb_err(err, VDB_EINVAL, "invalid collection name '%s'", name);
	vdb_status st = vdb_db_check(db, err);
	if (st)
		return st;
	char config[4200];
	struct stat sb;
	if (vdb_path(dir, cap, db, name))
		return vdb_err(err, VDB_EINVAL, "path too long: %s", db);
	snprintf(config, sizeof config, "%s/%s", dir, VDB_CONFIG_FILE);
	if (lstat(dir, &sb) < 0 || !S_ISDIR(sb.st_mode) || stat(config, &sb) < 0)
		return vdb_err_no_collection(err, db, name);
	vdb_writer_options defaults;
	vdb_writer_options_init(&defaults);
	return vdb_lock_acquire(dir, name, o ? o : &defaults, lock_fd, err);
}

vdb_status vdb_collection_drop(const char *db, const char *name, const vdb_writer_options *o,
			       vdb_error *err)
{
	char dir[4096], away[4096], awayname[128];
	int lock_fd;
	vdb_status st = lock_collection(db, name, o, dir, sizeof dir, &lock_fd, err);
	if (st)
		return st;
	vdb_remove_dropped(db); /* what drops that were killed left */
	snprintf(awayname, sizeof awayname, DROP_PREFIX "%s-%ld", name, (long)getpid());
	if (vdb_path(away, sizeof away, db, awayname)) {
		close(lock_fd);
		return vdb_err(err, VDB_EINVAL, "path too long: %s", db);
	}
	vdb_remove_tree(away); /* a leftover of this very PID, from a killed earlier process */
	/* Held before the rename, so the hidden directory is never an unheld leftover while
	 * this process deletes it. */
	int held = vdb_hold_tmp_dir(dir);
	if (held < 0) {
		st = vdb_err_sys(err, VDB_EIO, "lock %s", dir);
		close(lock_fd);
		return st;
	}
	if (rename(dir, away) < 0) {
		st = vdb_err_sys(err, VDB_EIO, "rename %s to %s", dir, away);
	} else if (!(st = vdb_fsync_dir(db, err))) {
		vdb_remove_tree(away);
		st = vdb_fsync_dir(db, err);
	}
	close(held);
	close(lock_fd);
	return st;
}

/* rename(2) that fails with EEXIST instead of replacing an existing (empty) directory. */
static int rename_noreplace(const char *from, const char *to)
{
#ifdef RENAME_NOREPLACE
	if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
#endif
	struct stat sb;
	if (lstat(to, &sb) == 0) {
		errno = EEXIST;
		return -1;
	}
	return rename(from, to);
}

vdb_status vdb_collection_rename(const char *db, const char *from, const char *to,
				 const vdb_writer_options *o, vdb_error *err)
{
	if (!vdb_collection_name_valid(to))
		return vdb_err(err, VDB_EINVAL,
			       "invalid collection name '%s' (use 1-64 of A-Z a-z 0-9 _ . -, not "
			       "starting with a dot)",
			       to);
	char dir[4096], target[4096];
	int lock_fd;
	vdb_status st = lock_collection(db, from, o, dir, sizeof dir, &lock_fd, err);
	if (st)
		return st;
	if (vdb_path(target, sizeof target, db, to)) {
		close(lock_fd);
		return vdb_err(err, VDB_EINVAL, "path too long: %s", db);
	}
	if (rename_noreplace(dir, target) < 0) {
		st = errno == EEXIST || errno == ENOTEMPTY
			     ? vdb_err(err, VDB_EEXIST, "collection '%s' already exists in %s", to, db)
			     : vdb_err_sys(err, VDB_EIO, "rename %s to %s", dir, target);
	} else if (!(st = vdb_fsync_dir(db, err))) {
		/* CONFIG's "name" follows (informational: a crash before leaves the old one). */
		vdb_collection_config cfg;
		vdb_collection_config_init(&cfg);
		char *file = NULL;
		size_t len;
		if (!(st = vdb_config_read(target, &cfg, err)) &&
		    !(st = vdb_config_encode(to, &cfg, &file, &len, err)))
			st = vdb_atomic_write(target, VDB_CONFIG_FILE, file, len, err);
		free(file);
	}
	close(lock_fd);
	return st;
}
