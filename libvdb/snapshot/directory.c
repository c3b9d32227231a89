/* Directories of snapshots: listing them, retention, and cron mode.
 *
 * A listing reads each archive's manifest only (vdb_snapshot_dir_list). Cron mode writes
 * snapshots named by UTC time, vdb-YYYYMMDDTHHMMSSZ.tar.zst, so that name order is time
 * order. Each run writes a full snapshot every full_every-th time and otherwise an
 * incremental on the latest full one (a differential: it depends on that one only, so
 * losing an incremental never breaks another), after checking that base whole.
 *
 * Retention (vdb_snapshot_prune) keeps what the policy selects plus every snapshot a kept
 * one depends on, as read from their manifests; a file is removed only when no kept
 * manifest names it. Removals go newest first: an incremental is always newer than what it
 * depends on, so a prune stopped halfway (killed, or a failing unlink) has removed
 * dependents before their bases, never a base whose dependents remain. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../formats/json.h"
#include "../util/buf.h"
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

/* A cron-mode name, vdb-YYYYMMDDTHHMMSSZ.tar.zst. */
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

/* A file a listing shows: NAME.tar.zst, not hidden, not a temporary. */
static int is_listed_name(const char *n)
{
	size_t len = strlen(n);
	return n[0] != '.' && len > strlen(SUFFIX) && len < 256 &&
	       !strcmp(n + len - strlen(SUFFIX), SUFFIX);
}

/* Seconds since the epoch of "YYYY-MM-DDTHH:MM:SSZ" (a manifest's "created"), or of a
 * cron name's stamp; -1 when it is neither. */
static int64_t parse_stamp(const char *s, int compact)
{
	struct tm tm = {0};
	char z;
	int n = compact ? sscanf(s, "%4d%2d%2dT%2d%2d%2d%c", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
				 &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &z)
			: sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%c", &tm.tm_year, &tm.tm_mon,
				 &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &z);
	if (n != 7 || z != 'Z')
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (int64_t)timegm(&tm);
}

static void set_time(vdb_snapshot_file *f, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	f->seconds = t;
	if (gmtime_r(&tt, &tm))
		strftime(f->time, sizeof f->time, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Fills f from its manifest (or says why it cannot be read). */
static vdb_status read_info(const char *dir, vdb_snapshot_file *f, vdb_error *err)
{
	char path[4096];
	struct stat sb;
	vdb_error why;
	if (vdb_path(path, sizeof path, dir, f->file))
		return vdb_err(err, VDB_EINVAL, "path too long: %s", dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb) < 0) {
		vdb_err_sys(&why, VDB_EIO, "open %s", path);
		snprintf(f->status, sizeof f->status, "unreadable: %s", why.message);
		if (fd >= 0)
			close(fd);
		return VDB_OK;
	}
	f->bytes = (uint64_t)sb.st_size;
	/* Until the manifest says: the name's stamp, else the file's time. */
	int64_t t = is_snapshot_name(f->file) ? parse_stamp(f->file + strlen(PREFIX), 1) : -1;
	set_time(f, t >= 0 ? t : (int64_t)sb.st_mtime);
	vdb_zreader *z;
	vdb_arc_manifest m;
	vdb_status st = VDB_OK;
	if (vdb_zreader_open(fd, path, NULL, &z, &why)) {
		snprintf(f->status, sizeof f->status, "unreadable: %s", why.message);
	} else {
		if ((st = vdb_arc_read_manifest(z, path, &m, &why))) {
			snprintf(f->status, sizeof f->status, "unreadable: %s", why.message);
			st = st == VDB_ENOMEM ? vdb_err_nomem(err) : VDB_OK;
		} else {
			f->readable = 1;
			f->full = m.ndep == 0;
			snprintf(f->id, sizeof f->id, "%s", m.id);
			snprintf(f->base, sizeof f->base, "%s", m.base);
			if ((t = parse_stamp(m.created, 0)) >= 0)
				set_time(f, t);
			f->collections = m.ncoll;
			for (size_t i = 0; i < m.ncoll; i++)
				f->records += m.colls[i].records;
			if (m.ndep && (!(f->deps = calloc(m.ndep, sizeof *f->deps)) ||
				       !(f->dep_ids = calloc(m.ndep, sizeof *f->dep_ids))))
				st = vdb_err_nomem(err);
			for (size_t i = 0; !st && i < m.ndep; i++) {
				snprintf(f->deps[i], sizeof f->deps[0], "%s", m.deps[i].file);
				snprintf(f->dep_ids[i], sizeof f->dep_ids[0], "%s", m.deps[i].id);
				f->ndeps++;
			}
			snprintf(f->status, sizeof f->status, "ok");
			vdb_arc_manifest_free(&m);
		}
		vdb_zreader_free(z);
	}
	close(fd);
	return st;
}

static int cmp_files(const void *a, const void *b)
{
	const vdb_snapshot_file *x = a, *y = b;
	if (x->seconds != y->seconds)
		return x->seconds < y->seconds ? -1 : 1;
	return strcmp(x->file, y->file);
}

static long find_file(const vdb_snapshot_dir *d, const char *name)
{
	for (size_t i = 0; i < d->n; i++)
		if (!strcmp(d->files[i].file, name))
			return (long)i;
	return -1;
}

void vdb_snapshot_dir_free(vdb_snapshot_dir *d)
{
	for (size_t i = 0; d && i < d->n; i++) {
		free(d->files[i].deps);
		free(d->files[i].dep_ids);
	}
	if (d)
		free(d->files);
	if (d)
		memset(d, 0, sizeof *d);
}

vdb_status vdb_snapshot_dir_list(const char *dir, vdb_snapshot_dir *out, vdb_error *err)
{
	memset(out, 0, sizeof *out);
	DIR *dd = opendir(dir);
	if (!dd)
		return vdb_err_sys(err, VDB_OK, "open directory %s", dir);
	size_t cap = 0;
	vdb_status st = VDB_OK;
	struct dirent *e;
	while (!st && (e = readdir(dd))) {
		if (!is_listed_name(e->d_name))
			continue;
		if (out->n == cap) {
			cap = cap ? cap * 2 : 16;
			vdb_snapshot_file *g = realloc(out->files, cap * sizeof *g);
			if (!g) {
				st = vdb_err_nomem(err);
				break;
			}
			out->files = g;
		}
		vdb_snapshot_file *f = &out->files[out->n++];
		memset(f, 0, sizeof *f);
		snprintf(f->file, sizeof f->file, "%s", e->d_name);
	}
	closedir(dd);
	for (size_t i = 0; !st && i < out->n; i++)
		st = read_info(dir, &out->files[i], err);
	if (st) {
		vdb_snapshot_dir_free(out);
		return st;
	}
	if (out->n)
		qsort(out->files, out->n, sizeof *out->files, cmp_files);
	/* A dependency that is not in the directory, or another snapshot under its name: the
	 * snapshot cannot be restored. */
	for (size_t i = 0; i < out->n; i++) {
		vdb_snapshot_file *f = &out->files[i];
		for (size_t k = 0; f->readable && k < f->ndeps; k++) {
			long j = find_file(out, f->deps[k]);
			if (j < 0 || (out->files[j].readable && strcmp(out->files[j].id, f->dep_ids[k]))) {
				snprintf(f->status, sizeof f->status, "base missing: %s%s", f->deps[k],
					 j < 0 ? "" : " (another snapshot has its name)");
				break;
			}
		}
	}
	return VDB_OK;
}

/* The bucket of time t for a policy: its hour, day, ISO week or month. */
static int64_t bucket(int64_t t, int policy)
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (!gmtime_r(&tt, &tm))
		return t;
	switch (policy) {
	case 1: return t / 3600;
	case 2: return t / 86400;
	case 3: {
		char w[16];
		strftime(w, sizeof w, "%G%V", &tm);
		return atoll(w);
	}
	default: return (int64_t)(tm.tm_year + 1900) * 12 + tm.tm_mon;
	}
}

/* Marks what r keeps in d (keep and why), newest first, restic's way: `last` keeps the
 * newest ones; each other policy keeps the newest snapshot of each of its newest buckets.
 * Then every dependency of a kept snapshot, until nothing changes. Returns 0 when some kept
 * snapshot cannot be read (its dependencies are unknown: nothing may be removed). */
static int judge(vdb_snapshot_dir *d, const vdb_retention *r)
{
	static const char *const names[] = {"last", "hourly", "daily", "weekly", "monthly"};
	uint64_t left[5] = {r->last, r->hourly, r->daily, r->weekly, r->monthly};
	int64_t seen[5] = {0};
	int any[5] = {0};
	for (size_t k = d->n; k-- > 0;) {
		vdb_snapshot_file *f = &d->files[k];
		for (int p = 0; p < 5; p++) {
			int64_t b = p ? bucket(f->seconds, p) : (int64_t)k;
			if (!left[p] || (any[p] && seen[p] == b))
				continue;
			seen[p] = b;
			any[p] = 1;
			left[p]--;
			if (!f->keep)
				snprintf(f->why, sizeof f->why, "%s", names[p]);
			f->keep = 1;
		}
	}
	for (int changed = 1; changed;) {
		changed = 0;
		for (size_t i = 0; i < d->n; i++) {
			vdb_snapshot_file *f = &d->files[i];
			for (size_t k = 0; f->keep && k < f->ndeps; k++) {
				long j = find_file(d, f->deps[k]);
				if (j >= 0 && !d->files[j].keep) {
					d->files[j].keep = changed = 1;
					snprintf(d->files[j].why, sizeof d->files[j].why, "base of %s",
						 f->file);
				}
			}
		}
	}
	for (size_t i = 0; i < d->n; i++)
		if (d->files[i].keep && !d->files[i].readable)
			return 0;
	return 1;
}

vdb_status vdb_snapshot_prune(const char *dir, const vdb_retention *r, int dry_run,
			      vdb_snapshot_dir *out, uint64_t *removed, vdb_error *err)
{
	vdb_snapshot_dir d;
	if (removed)
		*removed = 0;
	vdb_status st = vdb_snapshot_dir_list(dir, &d, err);
	if (st)
		return st;
	int policy = r->last || r->hourly || r->daily || r->weekly || r->monthly;
	if (!policy || !judge(&d, r)) {
		/* Nothing may go: every file is kept. */
		for (size_t i = 0; i < d.n; i++)
			if (!d.files[i].keep) {
				d.files[i].keep = 1;
				snprintf(d.files[i].why, sizeof d.files[i].why, "%s",
					 policy ? "a kept snapshot cannot be read" : "no policy");
			}
	}
	int any = 0;
	for (size_t i = d.n; !st && i-- > 0;) {
		char path[4096];
		if (d.files[i].keep || dry_run)
			continue;
		if (vdb_path(path, sizeof path, dir, d.files[i].file)) {
			st = vdb_err(err, VDB_EINVAL, "path too long: %s", dir);
			break;
		}
		if (unlink(path) < 0 && errno != ENOENT) {
			st = vdb_err_sys(err, VDB_EIO, "remove %s", path);
			break;
		}
		any = d.files[i].removed = 1;
		if (removed)
			(*removed)++;
	}
	/* The removals done (all, or up to a failure) are made durable either way. */
	vdb_error e2;
	if (any && vdb_fsync_dir(dir, st ? &e2 : err) && !st)
		st = err ? err->code : VDB_EIO;
	if (out)
		*out = d;
	else
		vdb_snapshot_dir_free(&d);
	return st;
}

static int format_one(vdb_buf *b, const vdb_snapshot_file *f, int json, int judged,
		      int dry_run)
{
	const char *kind = !f->readable ? "unknown" : f->full ? "full" : "incremental";
	const char *action = f->keep ? "keep" : dry_run ? "would remove" : "remove";
	if (!json) {
		int rc = judged && (f->keep ? vdb_buf_printf(b, "keep (%s) ", f->why)
					    : vdb_buf_printf(b, "%s ", action));
		return rc || vdb_buf_printf(b, "%s %s %s %s %" PRIu64 " %" PRIu64 " %" PRIu64 " %s\n",
					    f->time[0] ? f->time : "-", f->file, kind,
					    f->base[0] ? f->base : "-", f->collections, f->records,
					    f->bytes, f->status);
	}
	int rc = vdb_buf_puts(b, "{\"file\":") || vj_write_string(b, f->file, strlen(f->file)) ||
		 vdb_buf_puts(b, ",\"time\":") ||
		 (f->time[0] ? vj_write_string(b, f->time, strlen(f->time))
			     : vdb_buf_puts(b, "null")) ||
		 vdb_buf_printf(b, ",\"kind\":\"%s\",\"base\":", kind) ||
		 (f->base[0] ? vj_write_string(b, f->base, strlen(f->base)) : vdb_buf_puts(b, "null")) ||
		 vdb_buf_printf(b, ",\"collections\":%" PRIu64 ",\"records\":%" PRIu64
				   ",\"bytes\":%" PRIu64 ",\"status\":",
				f->collections, f->records, f->bytes) ||
		 vj_write_string(b, f->status, strlen(f->status));
	if (!rc && judged)
		rc = vdb_buf_printf(b, ",\"action\":\"%s\",\"why\":", action) ||
		     (f->keep ? vj_write_string(b, f->why, strlen(f->why)) : vdb_buf_puts(b, "null"));
	return rc || vdb_buf_puts(b, "}\n");
}

vdb_status vdb_snapshot_dir_format(const vdb_snapshot_dir *d, int json, int judged,
				   int dry_run, vdb_text *out, vdb_error *err)
{
	vdb_buf b = VDB_BUF_INIT;
	int rc = 0;
	for (size_t i = 0; !rc && i < d->n; i++)
		rc = format_one(&b, &d->files[i], json, judged, dry_run);
	if (rc || vdb_text_append(out, b.data ? b.data : "", b.len)) {
		vdb_buf_free(&b);
		return vdb_err_nomem(err);
	}
	vdb_buf_free(&b);
	return VDB_OK;
}

vdb_status vdb_snapshot_dir_verify(const char *dir, const vdb_restore_options *given,
				   vdb_snapshot_dir *out, vdb_error *err)
{
	vdb_restore_options o;
	vdb_restore_options_init(&o);
	if (given && vdb_options_take(&o, sizeof o, given, "vdb_restore_options", err))
		return VDB_EINVAL;
	o.verify_only = 1;
	o.chain_dir = dir;
	vdb_status st = vdb_snapshot_dir_list(dir, out, err), first = VDB_OK;
	for (size_t i = 0; !st && i < out->n; i++) {
		vdb_snapshot_file *f = &out->files[i];
		char path[4096];
		vdb_error why;
		if (vdb_path(path, sizeof path, dir, f->file)) {
			st = vdb_err(err, VDB_EINVAL, "path too long: %s", dir);
			break;
		}
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		vdb_status v = fd < 0 ? vdb_err_sys(&why, VDB_EIO, "open %s", path)
				      : vdb_restore(fd, path, NULL, &o, NULL, &why);
		if (fd >= 0)
			close(fd);
		if (v == VDB_EINTR || v == VDB_ENOMEM) {
			st = v;
			if (err)
				*err = why;
			break;
		}
		if (v)
			snprintf(f->status, sizeof f->status, "%s: %s",
				 v == VDB_ENOENT ? "base missing" : "damaged", why.message);
		else
			snprintf(f->status, sizeof f->status, "ok");
		if (v && !first) {
			first = VDB_ECORRUPT;
			vdb_err(err, VDB_ECORRUPT, "%s: %s", f->file, f->status);
		}
	}
	if (st)
		vdb_snapshot_dir_free(out);
	return st ? st : first;
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

/* The base of the next cron run in d (its index), or -1 for a full snapshot: the latest
 * readable full snapshot of the cron names, unless full_every says a full one is due
 * (counting that one and the readable incrementals after it). A snapshot after it whose
 * manifest cannot be read may be a newer full one, damaged: a full one is written, and
 * r->base_problem says why. */
static long choose_base(const vdb_snapshot_dir *d, vdb_snapshot_rotation *r)
{
	long full = -1, unreadable = -1;
	uint64_t since_full = 0;
	for (size_t i = 0; i < d->n; i++) {
		const vdb_snapshot_file *f = &d->files[i];
		if (!is_snapshot_name(f->file))
			continue;
		if (f->readable && f->full) {
			full = (long)i;
			since_full = 0;
		}
		since_full += f->readable;
		if (!f->readable)
			unreadable = (long)i;
	}
	if (r->full_every <= 1 || full < 0 || since_full >= r->full_every)
		return -1;
	if (unreadable > full) {
		snprintf(r->base_problem, sizeof r->base_problem, "%s",
			 d->files[unreadable].status + strlen("unreadable: "));
		return -1;
	}
	return full;
}

static vdb_status snapshot_into(const char *db, const vdb_snapshot_options *o, const char *dir,
				vdb_snapshot_rotation *r, char *written, size_t cap,
				vdb_snapshot_stats *stats, vdb_error *err)
{
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return vdb_err_sys(err, VDB_EEXIST, "create %s", dir);
	/* Each run writes a new name, so a killed run's temporary is not the next one's. */
	vdb_remove_leftovers(dir, match_snapshot_tmp, NULL);
	vdb_snapshot_dir d;
	vdb_status st = vdb_snapshot_dir_list(dir, &d, err);
	if (st)
		return st;
	long full = choose_base(&d, r);
	vdb_snapshot_options opts = *o;
	char base[4096];
	opts.since = NULL;
	if (full >= 0 && !vdb_path(base, sizeof base, dir, d.files[full].file))
		opts.since = base;
	vdb_snapshot_dir_free(&d);
	/* A damaged base would make every incremental on it unrestorable: checked whole,
	 * and a full snapshot is written instead of building on it. */
	vdb_error why;
	if (opts.since && (st = vdb_snapshot_check_base(base, o->cancel, &why))) {
		if (st == VDB_EINTR || st == VDB_ENOMEM) {
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
	if (vdb_path(path, sizeof path, dir, name))
		return vdb_err(err, VDB_EINVAL, "path too long: %s", dir);
	if ((st = vdb_snapshot_write_file(db, &opts, path, stats, err)))
		return st;
	snprintf(written, cap, "%s", path);
	vdb_retention policy = r->retention;
	if (r->keep)
		policy.last = r->keep;
	if (!policy.last && !policy.hourly && !policy.daily && !policy.weekly && !policy.monthly)
		return VDB_OK;
	vdb_snapshot_dir judged;
	st = vdb_snapshot_prune(dir, &policy, 0, &judged, &r->pruned, err);
	if (!st && r->result)
		*r->result = judged;
	else if (!st)
		vdb_snapshot_dir_free(&judged);
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
