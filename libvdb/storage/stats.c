/* Inspection for vdb-info and library users: the collections of a database and what a
 * collection view holds on disk. Everything here only reads; in particular the writer lock
 * is looked up without taking it (see lock_holder), so inspecting never disturbs a writer. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "../util/error.h"
#include "../util/io.h"
#include "collection.h"
#include "db.h"
#include "format.h"
#include "lock.h"
#include "state.h"

vdb_status vdb_list_collections(const char *db, char ***names, size_t *n, vdb_error *err)
{
	vdb_coll_name *list;
	size_t cnt;
	vdb_status s = vdb_db_collections(db, &list, &cnt, err);
	if (s)
		return s;
	char **out = calloc(cnt + 1, sizeof *out);
	if (!out) {
		free(list);
		return vdb_err_nomem(err);
	}
	for (size_t i = 0; i < cnt; i++)
		if (!(out[i] = strdup(list[i]))) {
			free(list);
			vdb_names_free(out);
			return vdb_err_nomem(err);
		}
	free(list);
	*names = out;
	*n = cnt;
	return VDB_OK;
}

void vdb_names_free(char **names)
{
	if (!names)
		return;
	for (char **p = names; *p; p++)
		free(*p);
	free(names);
}

/* The pid /proc/locks gives for a flock() on the file (dev, ino) (-1 when it cannot tell),
 * 0 when the file is not locked, -2 when the table cannot be read (not Linux, no /proc). Reading the kernel's table is the one way to
 * see a flock() without taking it: a probe with flock(LOCK_NB) would, for an instant, make
 * a writer that does not wait (--no-wait) fail. */
static long proc_locks_holder(dev_t dev, ino_t ino)
{
	FILE *f = fopen("/proc/locks", "re");
	if (!f)
		return -2;
	char line[512];
	long found = 0;
	unsigned maj = major(dev), min = minor(dev);
	while (!found && fgets(line, sizeof line, f)) {
		/* "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF" ("-> " marks a waiter) */
		char type[16], mode[16], rw[16];
		long pid;
		unsigned ma, mi;
		unsigned long long in;
		const char *p = strchr(line, ':');
		if (!p || strstr(line, "->"))
			continue;
		if (sscanf(p + 1, "%15s %15s %15s %ld %x:%x:%llu", type, mode, rw, &pid, &ma, &mi,
			   &in) == 7 &&
		    !strcmp(type, "FLOCK") && ma == maj && mi == min && in == (unsigned long long)ino)
			found = pid > 0 ? pid : -1;
	}
	fclose(f);
	return found;
}

/* The pid of the writer holding the collection's lock: 0 when none, -1 when it is held but
 * the holder did not record its pid. */
static vdb_status lock_holder(const char *dir, long *pid, vdb_error *err)
{
	char path[4096];
	*pid = 0;
	if (vdb_path(path, sizeof path, dir, VDB_LOCK_FILE))
		return vdb_err(err, VDB_EINVAL, "path too long: %s", dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? VDB_OK : vdb_err_sys(err, VDB_EIO, "open %s", path);
	struct stat st;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return vdb_err_sys(err, VDB_EIO, "stat %s", path);
	}
	long held = proc_locks_holder(st.st_dev, st.st_ino);
	if (held == -2) {
		/* No lock table to read: a shared lock conflicts only with a writer's, and the
		 * pid the holder wrote into the file is all there is to tell who it is. */
		held = flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK ? -1 : 0;
		if (!held)
			flock(fd, LOCK_UN);
		if (held) {
			long p = vdb_lock_holder(fd);
			held = p > 0 ? p : -1;
		}
	}
	*pid = held;
	close(fd);
	return VDB_OK;
}

vdb_status vdb_collection_stats_get(const vdb_collection *c, vdb_collection_stats *out,
				    vdb_error *err)
{
	const vdb_state *s = vdb_collection_state(c);
	vdb_collection_stats r;
	memset(&r, 0, sizeof r);
	r.live = s->live;
	r.segments = s->man.nseg;
	r.generation = s->man.generation;
	for (size_t i = 0; i < s->man.nseg; i++) {
		r.segment_rows += s->segs[i].rows;
		r.segment_bytes += s->segs[i].size;
		if (s->segs[i].has_graph)
			r.graphs++;
		if (s->segs[i].has_codes)
			r.coded++;
		r.search_bytes += vdb_segment_search_bytes(&s->segs[i]);
	}
	r.log_records = s->mt.n;
	/* Every upsert the log holds is a stored row until a seal: those replaced or deleted
	 * since count as dead, like the marked rows of segments. */
	uint64_t stored = r.segment_rows + s->mt.upserts;
	r.dead = stored > r.live ? stored - r.live : 0;

	char wal[64];
	vdb_wal_name(wal, sizeof wal, s->man.wal);
	DIR *d = opendir(s->dir);
	if (!d)
		return vdb_err_sys(err, VDB_EIO, "open directory %s", s->dir);
	struct dirent *e;
	while ((e = readdir(d))) {
		struct stat st;
		if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2])))
			continue;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		r.disk_bytes += (uint64_t)st.st_size;
		if (!strcmp(e->d_name, wal))
			r.log_bytes = (uint64_t)st.st_size;
	}
	closedir(d);
	r.search_bytes += r.log_bytes;
	vdb_status rc = lock_holder(s->dir, &r.writer_pid, err);
	if (rc)
		return rc;
	*out = r;
	return VDB_OK;
}
