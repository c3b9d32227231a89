/* Creating databases and collections (the directory's marker and listing are db.c, CONFIG
 * is config.c).
 *
 * A database is a directory holding the marker file VDB and one directory per collection.
 * A collection is built completely in a hidden temporary directory beside its final place
 * (CONFIG, MANIFEST, an empty log, LOCK; all fsynced) and renamed into place: either the
 * whole collection appears or nothing does, and of two concurrent creators exactly one
 * wins (rename onto a non-empty directory fails). */
#include <errno.h>
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
#include "manifest.h"
#include "state.h"
#include "vdb.h"
#include "wal.h"

/* What concurrent vdb-create processes may be writing into a new database right now (the
 * marker's temp file, collections being built): those are not a foreign database. */
static int creating(const char *name)
{
	return !strncmp(name, VDB_DIR_MARKER ".tmp-", sizeof VDB_DIR_MARKER + 4) ||
	       !strncmp(name, ".tmp-create-", 12) || !strncmp(name, ".drop-", 6);
}

/* .tmp-create-NAME-PID: a collection a vdb-create was building (NAME may hold '-'). */
static vdb_status ensure_db(const char *db, vdb_error *err);

static int match_create_tmp(const char *name, void *ctx, long *pid)
{
	(void)ctx;
	const char *dash = strrchr(name, '-');
	if (strncmp(name, ".tmp-create-", 12) || dash < name + 12)
		return 0;
	return (*pid = vdb_parse_pid(dash + 1, '\0', NULL)) > 0;
}

vdb_status vdb_db_create(const char *db, vdb_error *err)
{
	return ensure_db(db, err);
}

static vdb_status ensure_db(const char *db, vdb_error *err)
{
	if (mkdir(db, 0755) < 0 && errno != EEXIST)
		return vdb_err_sys(err, VDB_EEXIST, "cannot create database directory %s", db);
	vdb_status s = vdb_db_check(db, err);
	if (s != VDB_ENOENT)
		return s; /* an existing database, or a damaged marker */
	struct stat st;
	if (stat(db, &st) < 0 || !S_ISDIR(st.st_mode))
		return vdb_err(err, VDB_EEXIST, "%s exists and is not a directory", db);
	if (!vdb_dir_is_empty(db, creating)) {
		/* A concurrent vdb-create may have finished the marker (and a collection) since
		 * our first look: check again before calling the directory foreign. */
		s = vdb_db_check(db, err);
		if (s != VDB_ENOENT)
			return s;
		return vdb_err(err, VDB_EEXIST, "%s exists and is not a vdb database", db);
	}
	char *file;
	size_t len;
	s = vdb_checked_encode("directory", VDB_DIR_FORMAT, "{\"format\":1}\n", &file, &len, err);
	if (s)
		return s;
	s = vdb_atomic_write(db, VDB_DIR_MARKER, file, len, err);
	free(file);
	if (s)
		return s;
	/* The database directory itself must survive a crash: sync its parent. */
	char parent[4096];
	vdb_path_split(db, parent, sizeof parent, NULL);
	return vdb_fsync_dir(parent, err);
}

static vdb_status fill_collection(const char *tmp, const char *name,
				  const vdb_collection_config *cfg, vdb_error *err)
{
	char *file;
	size_t len;
	vdb_status s = vdb_config_encode(name, cfg, &file, &len, err);
	if (s)
		return s;
	s = vdb_atomic_write(tmp, VDB_CONFIG_FILE, file, len, err);
	free(file);
	if (s)
		return s;
	if ((s = vdb_wal_create(tmp, 1, cfg->dim, err)))
		return s;
	vdb_manifest m = {.generation = 1, .wal = 1, .next_seq = 1, .next_file = 1};
	if ((s = vdb_manifest_write(tmp, &m, err)))
		return s;
	if ((s = vdb_atomic_write(tmp, VDB_LOCK_FILE, "", 0, err)))
		return s;
	return vdb_fsync_dir(tmp, err);
}

vdb_status vdb_collection_create(const char *db, const char *name,
				 const vdb_collection_config *cfg, vdb_error *err)
{
	if (!vdb_collection_name_valid(name))
		return vdb_err(err, VDB_EINVAL,
			       "invalid collection name '%s' (use 1-64 of A-Z a-z 0-9 _ . -, not "
			       "starting with a dot)",
			       name);
	vdb_collection_config given;
	vdb_collection_config_init(&given);
	vdb_status taken = vdb_options_take(&given, sizeof given, cfg, "collection config", err);
	if (taken)
		return taken;
	cfg = &given;
	const char *problem = vdb_config_problem(cfg);
	if (problem)
		return vdb_err(err, VDB_EINVAL, "%s", problem);
	vdb_status s = ensure_db(db, err);
	if (s)
		return s;
	char final[4096], tmp[4096], tmpname[128];
	struct stat st;
	if (vdb_path(final, sizeof final, db, name))
		return vdb_err(err, VDB_EINVAL, "path too long: %s", db);
	if (lstat(final, &st) == 0)
		return vdb_err(err, VDB_EEXIST, "collection '%s' already exists in %s", name, db);
	snprintf(tmpname, sizeof tmpname, ".tmp-create-%s-%ld", name, (long)getpid());
	if (vdb_path(tmp, sizeof tmp, db, tmpname))
		return vdb_err(err, VDB_EINVAL, "path too long: %s", db);
	/* What a vdb-create killed while building a collection here left goes first. */
	vdb_remove_leftovers(db, match_create_tmp, NULL);
	vdb_remove_dropped(db);
	vdb_remove_tree(tmp);
	if (mkdir(tmp, 0755) < 0)
		return vdb_err_sys(err, VDB_EEXIST, "create %s", tmp);
	int held = vdb_hold_tmp_dir(tmp);
	if (held < 0) {
		s = vdb_err_sys(err, VDB_EIO, "lock %s", tmp);
		vdb_remove_tree(tmp);
		return s;
	}
	s = fill_collection(tmp, name, cfg, err);
	if (s) {
		vdb_remove_tree(tmp);
		close(held);
		return s;
	}
	int renamed = rename(tmp, final), e = errno;
	close(held);
	if (renamed < 0) {
		vdb_remove_tree(tmp);
		errno = e;
		if (e == EEXIST || e == ENOTEMPTY || e == ENOTDIR)
			return vdb_err(err, VDB_EEXIST, "collection '%s' already exists in %s", name,
				       db);
		return vdb_err_sys(err, VDB_EEXIST, "rename %s to %s", tmp, final);
	}
	/* The collection exists once the rename is durable. */
	return vdb_fsync_dir(db, err);
}
