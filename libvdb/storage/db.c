/* The database directory: a directory holding the marker file VDB (a "checked text" file
 * with the directory's format version) and one directory per collection, named like it. */
#include "db.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../util/error.h"
#include "../util/io.h"
#include "format.h"

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
	const char *body;
	struct stat st;
	if (stat(db, &st) < 0)
		return vdb_err_sys(err, VDB_OK, "%s", db);
	if (!S_ISDIR(st.st_mode))
		return vdb_err(err, VDB_ENOENT, "%s: not a directory", db);
	vdb_status s = vdb_checked_read(db, VDB_DIR_MARKER, "directory", VDB_DIR_FORMAT, 4096, path,
					&data, &body, err);
	if (s == VDB_ENOENT)
		return vdb_err(err, VDB_ENOENT, "%s: not a vdb database (no %s file)", db,
			       VDB_DIR_MARKER);
	if (!s)
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

vdb_status vdb_err_no_collection(vdb_error *err, const char *db, const char *name)
{
	enum { SHOWN = 8 }; /* names listed before "and N more" */
	char have[sizeof err->message] = "";
	vdb_coll_name *names = NULL;
	size_t n = 0, len = 0;
	vdb_error ignored;
	if (vdb_db_collections(db, &names, &n, &ignored) == VDB_OK) {
		len = (size_t)snprintf(have, sizeof have, n ? " (it has:" : " (it has no collection)");
		for (size_t i = 0; i < n && i < SHOWN && len < sizeof have; i++)
			len += (size_t)snprintf(have + len, sizeof have - len, "%s %s", i ? "," : "",
						names[i]);
		if (n > SHOWN && len < sizeof have)
			len += (size_t)snprintf(have + len, sizeof have - len, " and %zu more", n - SHOWN);
		if (n && len < sizeof have)
			snprintf(have + len, sizeof have - len, ")");
	}
	free(names);
	return vdb_err(err, VDB_ENOENT, "collection '%s' does not exist in %s%s", name, db, have);
}
