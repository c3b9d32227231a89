/* Cron mode: a directory of snapshots named by UTC time, vdb-YYYYMMDDTHHMMSSZ.tar.zst, so
 * that name order is time order. Each run writes a full snapshot every full_every-th time
 * and otherwise an incremental on the latest full one (a differential: it depends on that
 * one only, so losing an incremental never breaks another). Pruning keeps the newest `keep`
 * snapshots plus every snapshot a kept one depends on, as read from their manifests; a
 * file is removed only when no kept manifest names it. */
#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../util/error.h"
#include "../util/io.h"
#include "amanifest.h"
#include "base.h"
#include "../util/zstream.h"
#include "vdb_admin.h"

#define PREFIX "vdb-"
#define SUFFIX ".tar.zst"
#define STAMP_LEN 16 /* YYYYMMDDTHHMMSSZ */

void vdb_snapshot_rotation_init(vdb_snapshot_rotation *r)
{
	memset(r, 0, sizeof *r);
	r->size = sizeof *r;
	r->full_every = 7;
}

typedef struct snapfile {
	char name[64];
	int readable;
	char why[sizeof(((vdb_error *)0)->message)]; /* when not readable: why */
	int full;
	char deps[8][VDB_ARC_FILE_MAX + 1]; /* the files it depends on (at most a few) */
	size_t ndeps;
	int keep;
} snapfile;

static int is_snapshot_name(const char *n)
{
	size_t len = strlen(n);
	if (len != strlen(PREFIX) + STAMP_LEN + strlen(SUFFIX) || strncmp(n, PREFIX, 4) ||
	    strcmp(n + len - strlen(SUFFIX), SUFFIX) || n[4 + 8] != 'T' || n[4 + 15] != 'Z')
		return 0;
	for (int i = 0; i < STAMP_LEN; i++)
		if (i != 8 && i != 15 && (n[4 + i] < '0' || n[4 + i] > '9'))
			return 0;
	return 1;
}

static int cmp_files(const void *a, const void *b)
{
	return strcmp(((const snapfile *)a)->name, ((const snapfile *)b)->name);
}

static void read_info(const char *dir, snapfile *f)
{
	char path[4096];
	if (vdb_path(path, sizeof path, dir, f->name))
		return;
	vdb_error err;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		vdb_err_sys(&err, VDB_EIO, "open %s", path);
		snprintf(f->why, sizeof f->why, "%s", err.message);
		return;
	}
	vdb_zreader *z;
	vdb_arc_manifest m;
	snprintf(f->why, sizeof f->why, "%.400s: depends on too many snapshots", path);
	if (vdb_zreader_open(fd, path, NULL, &z, &err)) {
		snprintf(f->why, sizeof f->why, "%s", err.message);
	} else {
		if (vdb_arc_read_manifest(z, path, &m, &err)) {
			snprintf(f->why, sizeof f->why, "%s", err.message);
		} else {
			f->readable = m.ndep <= sizeof f->deps / sizeof f->deps[0];
			f->full = m.ndep == 0;
			for (size_t i = 0; f->readable && i < m.ndep; i++)
				snprintf(f->deps[f->ndeps++], sizeof f->deps[0], "%s", m.deps[i].file);
			vdb_arc_manifest_free(&m);
		}
		vdb_zreader_free(z);
	}
	close(fd);
}

static vdb_status list_dir(const char *dir, snapfile **out, size_t *n, vdb_error *err)
{
	DIR *d = opendir(dir);
	if (!d)
		return vdb_err_sys(err, VDB_EIO, "open directory %s", dir);
	snapfile *files = NULL;
	size_t cnt = 0, cap = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!is_snapshot_name(e->d_name))
			continue;
		if (cnt == cap) {
			cap = cap ? cap * 2 : 16;
			snapfile *g = realloc(files, cap * sizeof *g);
			if (!g) {
				free(files);
				closedir(d);
				return vdb_err_nomem(err);
			}
			files = g;
		}
		memset(&files[cnt], 0, sizeof files[cnt]);
		/* A snapshot name fits (is_snapshot_name). */
		snprintf(files[cnt].name, sizeof files[cnt].name, "%.63s", e->d_name);
		cnt++;
	}
	closedir(d);
	if (cnt)
		qsort(files, cnt, sizeof *files, cmp_files);
	for (size_t i = 0; i < cnt; i++)
		read_info(dir, &files[i]);
	*out = files;
	*n = cnt;
	return VDB_OK;
}

/* A fresh name: the current UTC second, waiting for the next one if it is taken. */
static void next_name(const char *dir, char *name, size_t cap)
{
	for (;;) {
		time_t now = time(NULL);
		struct tm tm;
		char path[4096];
		struct stat sb;
		gmtime_r(&now, &tm);
		strftime(name, cap, PREFIX "%Y%m%dT%H%M%SZ" SUFFIX, &tm);
		if (vdb_path(path, sizeof path, dir, name) || lstat(path, &sb) < 0)
			return;
		struct timespec ts = {0, 100 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
}

static vdb_status prune(const char *dir, snapfile *f, size_t n, vdb_snapshot_rotation *r,
			vdb_error *err)
{
	for (size_t i = n > r->keep ? n - r->keep : 0; i < n; i++) {
		f[i].keep = 1;
		if (!f[i].readable)
			return VDB_OK; /* its dependencies are unknown: remove nothing */
	}
	/* Dependencies of kept snapshots are kept (they are full ones: no further links). */
	for (size_t i = 0; i < n; i++)
		for (size_t d = 0; f[i].keep && d < f[i].ndeps; d++)
			for (size_t k = 0; k < n; k++)
				if (!strcmp(f[k].name, f[i].deps[d]))
					f[k].keep = 1;
	int removed = 0;
	for (size_t i = 0; i < n; i++) {
		char path[4096];
		if (f[i].keep || vdb_path(path, sizeof path, dir, f[i].name))
			continue;
		if (unlink(path) < 0 && errno != ENOENT)
			return vdb_err_sys(err, VDB_EIO, "remove %s", path);
		r->pruned++;
		removed = 1;
	}
	return removed ? vdb_fsync_dir(dir, err) : VDB_OK;
}

/* A snapshot name followed by .tmp-PID: a run killed while writing it left it. */
static int match_snapshot_tmp(const char *name, void *ctx, long *pid)
{
	(void)ctx;
	const char *t = strstr(name, SUFFIX ".tmp-");
	char snap[64];
	size_t n = t ? (size_t)(t - name) + strlen(SUFFIX) : 0;
	if (!t || n >= sizeof snap)
		return 0;
	memcpy(snap, name, n);
	snap[n] = '\0';
	return is_snapshot_name(snap) &&
	       (*pid = vdb_parse_pid(t + strlen(SUFFIX ".tmp-"), '\0', NULL)) > 0;
}

static vdb_status snapshot_into(const char *db, const vdb_snapshot_options *o, const char *dir,
				vdb_snapshot_rotation *r, char *written, size_t cap,
				vdb_snapshot_stats *stats, vdb_error *err)
{
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return vdb_err_sys(err, VDB_EEXIST, "create %s", dir);
	/* Each run writes a new name, so a killed run's temporary is not the next one's. */
	vdb_remove_leftovers(dir, match_snapshot_tmp, NULL);
	snapfile *f = NULL;
	size_t n = 0;
	vdb_status st = list_dir(dir, &f, &n, err);
	if (st)
		return st;
	/* The base: the latest readable full snapshot, unless full_every says a full one is due
	 * (counting that one and the readable incrementals after it). A snapshot after it whose
	 * manifest cannot be read may be a newer full one, damaged: a full one is written. */
	long full = -1, unreadable = -1;
	for (size_t i = 0; i < n; i++) {
		if (f[i].readable && f[i].full)
			full = (long)i;
		if (!f[i].readable)
			unreadable = (long)i;
	}
	if (unreadable > full && r->full_every > 1) {
		snprintf(r->base_problem, sizeof r->base_problem, "%s", f[unreadable].why);
		full = -1;
	}
	uint64_t since_full = 0;
	for (size_t i = full < 0 ? n : (size_t)full; i < n; i++)
		since_full += f[i].readable;
	vdb_snapshot_options opts = *o;
	char base[4096];
	opts.since = NULL;
	if (full >= 0 && r->full_every > 1 && since_full < r->full_every &&
	    !vdb_path(base, sizeof base, dir, f[full].name))
		opts.since = base;
	/* A damaged base would make every incremental on it unrestorable: checked whole,
	 * and a full snapshot is written instead of building on it. */
	vdb_error why;
	if (opts.since && (st = vdb_snapshot_check_base(base, o->cancel, &why))) {
		if (st == VDB_EINTR || st == VDB_ENOMEM) {
			free(f);
			if (err)
				*err = why;
			return st;
		}
		snprintf(r->base_problem, sizeof r->base_problem, "%s", why.message);
		opts.since = NULL;
	}
	r->incremental = opts.since != NULL;
	char name[64], path[4096];
	next_name(dir, name, sizeof name);
	if (vdb_path(path, sizeof path, dir, name)) {
		free(f);
		return vdb_err(err, VDB_EINVAL, "path too long: %s", dir);
	}
	st = vdb_snapshot_write_file(db, &opts, path, stats, err);
	if (!st) {
		snprintf(written, cap, "%s", path);
		if (r->keep) {
			snapfile *g = realloc(f, (n + 1) * sizeof *g);
			if (!g) {
				free(f);
				return vdb_err_nomem(err);
			}
			f = g;
			memset(&f[n], 0, sizeof f[n]);
			snprintf(f[n].name, sizeof f[n].name, "%s", name);
			read_info(dir, &f[n]);
			st = prune(dir, f, n + 1, r, err);
		}
	}
	free(f);
	return st;
}

vdb_status vdb_snapshot_into(const char *db, const vdb_snapshot_options *o, const char *dir,
			     vdb_snapshot_rotation *r, char *written, size_t cap,
			     vdb_snapshot_stats *stats, vdb_error *err)
{
	vdb_snapshot_rotation local;
	vdb_snapshot_rotation_init(&local);
	vdb_status st = vdb_options_take(&local, sizeof local, r, "rotation", err);
	if (st)
		return st;
	st = snapshot_into(db, o, dir, &local, written, cap, stats, err);
	/* The outputs every version of the struct has, and those of the caller's version. */
	r->pruned = local.pruned;
	r->incremental = local.incremental;
	if (r->size >= offsetof(vdb_snapshot_rotation, base_problem) + sizeof r->base_problem)
		memcpy(r->base_problem, local.base_problem, sizeof r->base_problem);
	return st;
}
