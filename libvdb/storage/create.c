/* Creating databases and collections.
 *
 * A database is a directory holding the marker file VDB and one directory per collection.
 * A collection is built completely in a hidden temporary directory beside its final place
 * (CONFIG, MANIFEST, an empty log, LOCK; all fsynced) and renamed into place: either the
 * whole collection appears or nothing does, and of two concurrent creators exactly one
 * wins (rename onto a non-empty directory fails). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../util/error.h"
#include "../util/io.h"
#include "../index/hnsw.h"
#include "format.h"
#include "manifest.h"
#include "state.h"
#include "vdb.h"
#include "wal.h"

#define DEFAULT_SEAL_BYTES (64ull << 20)

void vdb_collection_config_init(vdb_collection_config *cfg)
{
	cfg->dim = 0;
	cfg->metric = VDB_METRIC_L2;
	cfg->seal_bytes = DEFAULT_SEAL_BYTES;
	cfg->index = VDB_INDEX_HNSW;
	cfg->m = VDB_HNSW_DEFAULT_M;
	cfg->ef_construction = VDB_HNSW_DEFAULT_EF_CONSTRUCTION;
	cfg->n_index_fields = 0;
	memset(cfg->index_fields, 0, sizeof cfg->index_fields);
}

const char *vdb_field_type_name(vdb_field_type t)
{
	return t == VDB_FIELD_KEYWORD ? "keyword" : t == VDB_FIELD_INT ? "int"
					: t == VDB_FIELD_FLOAT ? "float" : "?";
}

int vdb_field_type_parse(const char *name, vdb_field_type *out)
{
	if (!strcmp(name, "keyword"))
		*out = VDB_FIELD_KEYWORD;
	else if (!strcmp(name, "int"))
		*out = VDB_FIELD_INT;
	else if (!strcmp(name, "float"))
		*out = VDB_FIELD_FLOAT;
	else
		return -1;
	return 0;
}

/* A field path as filters write it: dot-separated non-empty parts of printable text. */
static int field_path_valid(const char *p)
{
	size_t n = strnlen(p, VDB_FIELD_PATH_MAX);
	if (n == 0 || n == VDB_FIELD_PATH_MAX || p[0] == '.' || p[n - 1] == '.' || strstr(p, ".."))
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
			return 0;
	return 1;
}

const char *vdb_index_name(vdb_index_type t)
{
	return t == VDB_INDEX_HNSW ? "hnsw" : t == VDB_INDEX_FLAT ? "flat" : "?";
}

int vdb_index_parse(const char *name, vdb_index_type *out)
{
	if (!strcmp(name, "hnsw"))
		*out = VDB_INDEX_HNSW;
	else if (!strcmp(name, "flat"))
		*out = VDB_INDEX_FLAT;
	else
		return -1;
	return 0;
}

/* Range checks shared by create and the config reader. */
const char *vdb_config_problem(const vdb_collection_config *cfg)
{
	if (cfg->dim < 1 || cfg->dim > VDB_DIM_MAX)
		return "dimension must be 1 to 65536";
	if (cfg->metric < VDB_METRIC_L2 || cfg->metric > VDB_METRIC_DOT)
		return "unknown metric";
	if (cfg->seal_bytes < 4096 || cfg->seal_bytes > (1ull << 40))
		return "seal threshold must be 4 KiB to 1 TiB";
	if (cfg->index != VDB_INDEX_HNSW && cfg->index != VDB_INDEX_FLAT)
		return "unknown index type";
	if (cfg->index == VDB_INDEX_HNSW && (cfg->m < 2 || cfg->m > 64))
		return "m must be 2 to 64";
	if (cfg->index == VDB_INDEX_HNSW &&
	    (cfg->ef_construction < cfg->m || cfg->ef_construction > 4096))
		return "ef_construction must be m to 4096";
	if (cfg->n_index_fields > VDB_INDEX_FIELDS_MAX)
		return "at most 4 payload indexes";
	for (uint32_t i = 0; i < cfg->n_index_fields; i++) {
		const vdb_index_field *f = &cfg->index_fields[i];
		if (!field_path_valid(f->path))
			return "an index field path must be 1-127 bytes of dot-separated non-empty "
			       "parts";
		if (f->type < VDB_FIELD_KEYWORD || f->type > VDB_FIELD_FLOAT)
			return "unknown index field type";
		for (uint32_t j = 0; j < i; j++)
			if (!strcmp(cfg->index_fields[j].path, f->path))
				return "a field is indexed twice";
	}
	return NULL;
}

const char *vdb_metric_name(vdb_metric m)
{
	switch (m) {
	case VDB_METRIC_L2: return "l2";
	case VDB_METRIC_COSINE: return "cosine";
	case VDB_METRIC_DOT: return "dot";
	}
	return "?";
}

int vdb_metric_parse(const char *name, vdb_metric *out)
{
	static const vdb_metric all[] = {VDB_METRIC_L2, VDB_METRIC_COSINE, VDB_METRIC_DOT};
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		if (strcmp(name, vdb_metric_name(all[i])) == 0) {
			*out = all[i];
			return 0;
		}
	return -1;
}

int vdb_collection_name_valid(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > VDB_NAME_MAX || name[0] == '.' || strcmp(name, VDB_DIR_MARKER) == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '-'))
			return 0;
	}
	return 1;
}

/* Checks that db is a vdb database directory. */
vdb_status vdb_db_check(const char *db, vdb_error *err)
{
	char path[4096], *data;
	size_t len;
	const char *body;
	struct stat st;
	if (stat(db, &st) < 0)
		return vdb_err_sys(err, VDB_OK, "%s", db);
	if (!S_ISDIR(st.st_mode))
		return vdb_err(err, VDB_ENOENT, "%s: not a directory", db);
	if (vdb_path(path, sizeof path, db, VDB_DIR_MARKER))
		return vdb_err(err, VDB_EINVAL, "path too long: %s", db);
	vdb_status s = vdb_read_file(path, 4096, &data, &len, err);
	if (s == VDB_ENOENT)
		return vdb_err(err, VDB_ENOENT, "%s: not a vdb database (no %s file)", db,
			       VDB_DIR_MARKER);
	if (s)
		return s;
	s = vdb_checked_decode(path, "directory", VDB_DIR_FORMAT, data, len, &body, err);
	free(data);
	return s;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(a, b);
}

vdb_status vdb_db_collections(const char *db, vdb_coll_name **names, size_t *n, vdb_error *err)
{
	vdb_status s = vdb_db_check(db, err);
	if (s)
		return s;
	DIR *d = opendir(db);
	if (!d)
		return vdb_err_sys(err, VDB_OK, "open directory %s", db);
	vdb_coll_name *out = NULL;
	size_t cnt = 0, cap = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		char path[4096];
		struct stat st;
		if (!vdb_collection_name_valid(e->d_name) ||
		    snprintf(path, sizeof path, "%s/%s/%s", db, e->d_name, VDB_CONFIG_FILE) >=
			    (int)sizeof path ||
		    lstat(path, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		if (cnt == cap) {
			cap = cap ? cap * 2 : 8;
			vdb_coll_name *g = realloc(out, cap * sizeof *out);
			if (!g) {
				free(out);
				closedir(d);
				return vdb_err_nomem(err);
			}
			out = g;
		}
		memcpy(out[cnt++], e->d_name, strlen(e->d_name) + 1); /* valid: at most 64 bytes */
	}
	closedir(d);
	if (cnt)
		qsort(out, cnt, sizeof *out, cmp_names);
	*names = out;
	*n = cnt;
	return VDB_OK;
}

/* What concurrent vdb-create processes may be writing into a new database right now (the
 * marker's temp file, collections being built): those are not a foreign database. */
static int creating(const char *name)
{
	return !strncmp(name, VDB_DIR_MARKER ".tmp-", sizeof VDB_DIR_MARKER + 4) ||
	       !strncmp(name, ".tmp-create-", 12);
}

/* .tmp-create-NAME-PID: a collection a vdb-create was building (NAME may hold '-'). */
static int match_create_tmp(const char *name, void *ctx, long *pid)
{
	(void)ctx;
	const char *dash = strrchr(name, '-');
	if (strncmp(name, ".tmp-create-", 12) || dash < name + 12)
		return 0;
	return (*pid = vdb_parse_pid(dash + 1, '\0', NULL)) > 0;
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
