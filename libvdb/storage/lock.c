/* Writer lock. flock() locks belong to the open file description, so the kernel releases
 * them when the holder exits or is killed: there are no stale locks to clean up. The file's
 * content ("pid host start-time") is only for diagnostics and is never trusted for
 * correctness. Waiting polls with a short sleep so that a cancel flag (SIGINT) and a
 * timeout are honoured without signals or threads. */
#include "lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../util/error.h"
#include "../util/io.h"
#include "format.h"

long vdb_lock_holder(int fd)
{
	char buf[64] = {0};
	if (vdb_pread_full(fd, buf, sizeof buf - 1, 0) <= 0)
		return 0;
	return strtol(buf, NULL, 10);
}

static void record_holder(int fd)
{
	char host[256] = "?", buf[400];
	gethostname(host, sizeof host - 1);
	int n = snprintf(buf, sizeof buf, "%ld %s %lld\n", (long)getpid(), host, (long long)time(NULL));
	/* Diagnostics only: no fsync, a torn or stale content is harmless. */
	if (ftruncate(fd, 0) == 0 && n > 0)
		(void)!pwrite(fd, buf, (size_t)n, 0);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

vdb_status vdb_lock_acquire(const char *dir, const char *name, const vdb_writer_options *o,
			    int *out, vdb_error *err)
{
	char path[4096];
	if (vdb_path(path, sizeof path, dir, VDB_LOCK_FILE))
		return vdb_err(err, VDB_EINVAL, "path too long: %s", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return vdb_err_sys(err, VDB_OK, "open %s", path);
	double start = now();
	int waited = 0;
	for (;;) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
			/* The lock counts only if its file is still the one at the path:
			 * `vdb-restore --force` swaps a whole database while writers may be
			 * waiting on the old LOCK; they must then lock the new one. */
			struct stat held, now_at;
			if (fstat(fd, &held) == 0 && stat(path, &now_at) == 0 &&
			    held.st_dev == now_at.st_dev && held.st_ino == now_at.st_ino)
				break;
			close(fd);
			if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) < 0)
				return vdb_err_sys(err, VDB_OK, "open %s", path);
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno != EWOULDBLOCK) {
			vdb_err_sys(err, VDB_EIO, "flock %s", path);
			close(fd);
			return VDB_EIO;
		}
		long pid = vdb_lock_holder(fd);
		if (o->wait_seconds == 0 || (o->wait_seconds > 0 && now() - start >= o->wait_seconds)) {
			close(fd);
			if (pid > 0)
				return vdb_err(err, VDB_ELOCKED,
					       "collection '%s' is locked by another writer (pid %ld)",
					       name, pid);
			return vdb_err(err, VDB_ELOCKED,
				       "collection '%s' is locked by another writer", name);
		}
		if (vdb_cancelled(&o->cancel)) {
			close(fd);
			return vdb_err(err, VDB_EINTR, "interrupted while waiting for the lock of '%s'",
				       name);
		}
		if (!waited && o->on_wait)
			o->on_wait(o->on_wait_ctx, pid);
		waited = 1;
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	record_holder(fd);
	*out = fd;
	return VDB_OK;
}
