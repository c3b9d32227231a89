/* File primitives: full writes and reads, directory fsync, atomic replacement, and the
 * "checked text" container used for the small JSON files of a database. */
#define _GNU_SOURCE /* sync_file_range */
#include "io.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "crc32c.h"
#include "error.h"

int vdb_write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n) {
		ssize_t w = write(fd, c, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

ssize_t vdb_pread_full(int fd, void *p, size_t n, off_t off)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = pread(fd, (char *)p + got, n - got, off + (off_t)got);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

int vdb_path(char *out, size_t cap, const char *a, const char *b)
{
	int n = snprintf(out, cap, "%s/%s", a, b);
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

void vdb_path_split(const char *path, char *dir, size_t cap, const char **base)
{
	snprintf(dir, cap, "%s", path);
	char *slash = strrchr(dir, '/');
	while (slash && slash > dir && slash[1] == '\0') { /* "a/b/" */
		*slash = '\0';
		slash = strrchr(dir, '/');
	}
	if (base)
		*base = slash ? path + (slash - dir) + 1 : path;
	if (!slash)
		snprintf(dir, cap, ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
}

/* N for /dev/stdout, /dev/stderr, /dev/fd/N and /proc/self/fd/N; -1 for other paths. */
static int own_descriptor(const char *path)
{
	if (!strcmp(path, "/dev/stdout"))
		return STDOUT_FILENO;
	if (!strcmp(path, "/dev/stderr"))
		return STDERR_FILENO;
	const char *p = !strncmp(path, "/dev/fd/", 8)	      ? path + 8
			: !strncmp(path, "/proc/self/fd/", 14) ? path + 14
							       : NULL;
	if (!p || *p < '0' || *p > '9')
		return -1;
	char *end;
	long n = strtol(p, &end, 10);
	return *end || n > INT_MAX ? -1 : (int)n;
}

vdb_status vdb_output_resolve(const char *path, int *in_place_fd, char **replace,
			      vdb_error *err)
{
	*in_place_fd = -1;
	*replace = NULL;
	struct stat st;
	int own = own_descriptor(path);
	if (own >= 0) {
		/* Our own descriptor: written where it points, as the shell set it up (a file
		 * opened with >> is appended to, not replaced). */
		int fd = fstat(own, &st) < 0 ? -1 : fcntl(own, F_DUPFD_CLOEXEC, 3);
		if (fd < 0)
			return vdb_err_sys(err, VDB_EIO, "%s", path);
		*in_place_fd = fd;
		return VDB_OK;
	}
	if (stat(path, &st) == 0) {
		if (S_ISDIR(st.st_mode))
			return vdb_err(err, VDB_EEXIST, "%s is a directory", path);
		if (S_ISSOCK(st.st_mode))
			return vdb_err(err, VDB_EEXIST, "%s is a socket (vdb writes files, devices and "
				       "FIFOs)", path);
		if (!S_ISREG(st.st_mode)) {
			/* A device or FIFO: opened as it is (no O_CREAT, no O_TRUNC), never
			 * replaced. A FIFO's open waits for its reader, as cp's does; a signal
			 * (Ctrl-C) ends the wait instead of starting it again. */
			int fd = open(path, O_WRONLY | O_NOCTTY | O_CLOEXEC);
			if (fd < 0 && errno == EINTR)
				return vdb_err(err, VDB_EINTR, "interrupted while opening %s", path);
			if (fd < 0)
				return vdb_err_sys(err, VDB_EIO, "open %s", path);
			*in_place_fd = fd;
			return VDB_OK;
		}
	} else if (errno != ENOENT) {
		return vdb_err_sys(err, VDB_EIO, "%s", path);
	}
	/* A regular file or a new name (maybe behind a dangling link): follow the links to the
	 * name that gets replaced, so that the link keeps pointing at the new file. */
	char cur[PATH_MAX], link[PATH_MAX];
	if (snprintf(cur, sizeof cur, "%s", path) >= (int)sizeof cur)
		return vdb_err(err, VDB_EINVAL, "path too long: %s", path);
	for (int hops = 0;; hops++) {
		if (lstat(cur, &st) < 0) {
			if (errno == ENOENT)
				break; /* created there */
			return vdb_err_sys(err, VDB_EIO, "%s", cur);
		}
		if (!S_ISLNK(st.st_mode))
			break;
		if (hops == 40)
			return vdb_err(err, VDB_EINVAL, "%s: too many levels of symbolic links", path);
		ssize_t n = readlink(cur, link, sizeof link - 1);
		if (n < 0)
			return vdb_err_sys(err, VDB_EIO, "readlink %s", cur);
		link[n] = '\0';
		if (link[0] != '/') { /* relative to the directory holding the link */
			char dir[PATH_MAX];
			vdb_path_split(cur, dir, sizeof dir, NULL);
			if (vdb_path(cur, sizeof cur, dir, link))
				return vdb_err(err, VDB_EINVAL, "path too long: %s", path);
		} else {
			memcpy(cur, link, (size_t)n + 1);
		}
	}
	if (!(*replace = strdup(cur)))
		return vdb_err_nomem(err);
	return VDB_OK;
}

int vdb_dir_is_empty(const char *path, int (*ignore)(const char *name))
{
	DIR *d = opendir(path);
	if (!d)
		return 0;
	struct dirent *e;
	int empty = 1;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && !(ignore && ignore(e->d_name)))
			empty = 0;
	closedir(d);
	return empty;
}

void vdb_start_writeback(int fd, uint64_t *started, uint64_t written)
{
	if (written - *started < VDB_WRITEBACK_STEP)
		return;
#ifdef SYNC_FILE_RANGE_WRITE
	sync_file_range(fd, (off_t)*started, (off_t)(written - *started), SYNC_FILE_RANGE_WRITE);
#endif
	*started = written;
}

/* process_madvise needs a pidfd of this process, opened once. */
static int self_pidfd = -1;
static pthread_once_t self_pidfd_once = PTHREAD_ONCE_INIT;

static void open_self_pidfd(void)
{
#if defined(SYS_pidfd_open) && defined(SYS_process_madvise)
	self_pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
#endif
}

void vdb_map_willneed(const void *const *addr, const size_t *len, size_t n)
{
#if defined(SYS_pidfd_open) && defined(SYS_process_madvise)
	pthread_once(&self_pidfd_once, open_self_pidfd);
	if (self_pidfd < 0 || n == 0)
		return;
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	struct iovec iov[VDB_WILLNEED_MAX];
	size_t m = 0;
	for (size_t i = 0; i < n && m < VDB_WILLNEED_MAX; i++) {
		uintptr_t a = (uintptr_t)addr[i], start = a & ~(page - 1);
		uintptr_t end = (a + len[i] + page - 1) & ~(page - 1);
		iov[m++] = (struct iovec){(void *)start, end - start};
	}
	(void)syscall(SYS_process_madvise, self_pidfd, iov, m, MADV_WILLNEED, 0);
#else
	(void)addr;
	(void)len;
	(void)n;
#endif
}

vdb_status vdb_fsync_dir(const char *dir, vdb_error *err)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return vdb_err_sys(err, VDB_EIO, "open directory %s", dir);
	/* The rename/create/unlink is durable only once the directory itself is synced. */
	if (fsync(fd) < 0) {
		vdb_err_sys(err, VDB_EIO, "fsync directory %s", dir);
		close(fd);
		return VDB_EIO;
	}
	close(fd);
	return VDB_OK;
}

vdb_status vdb_tmpfile_create(vdb_tmpfile *t, const char *path, unsigned flags, vdb_error *err)
{
	t->fd = -1;
	t->create_errno = 0;
	if (snprintf(t->path, sizeof t->path, "%s", path) >= (int)sizeof t->path ||
	    snprintf(t->tmp, sizeof t->tmp, "%s.tmp-%ld", path, (long)getpid()) >= (int)sizeof t->tmp) {
		t->tmp[0] = '\0';
		return vdb_err(err, VDB_EINVAL, "path too long: %s", path);
	}
	if (flags & VDB_TMP_OUTPUT) {
		/* The temporary of an earlier run killed while writing this file goes first. */
		char dir[4096];
		const char *base;
		vdb_path_split(path, dir, sizeof dir, &base);
		vdb_remove_leftovers(dir, vdb_match_tmp_of, (void *)base);
	}
	t->fd = open(t->tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (t->fd < 0) {
		t->create_errno = errno;
		vdb_status st = vdb_err_sys(err, VDB_EIO, "create %s", t->tmp);
		t->tmp[0] = '\0'; /* nothing to remove */
		return st;
	}
	if ((flags & VDB_TMP_OUTPUT) && vdb_hold_tmp(t->fd) < 0) {
		vdb_status st = vdb_err_sys(err, VDB_EIO, "lock %s", t->tmp);
		vdb_tmpfile_discard(t);
		return st;
	}
	return VDB_OK;
}

vdb_status vdb_tmpfile_commit(vdb_tmpfile *t, unsigned flags, vdb_error *err)
{
	vdb_status st = VDB_OK;
	/* The content must be durable before the rename makes it visible under its name. */
	if (!(flags & VDB_TMP_NO_SYNC) && fsync(t->fd) < 0)
		st = vdb_err_sys(err, VDB_EIO, "fsync %s", t->tmp);
	int fd = t->fd;
	t->fd = -1;
	if (close(fd) < 0 && !st)
		st = vdb_err_sys(err, VDB_EIO, "close %s", t->tmp);
	if (!st && rename(t->tmp, t->path) < 0)
		st = vdb_err_sys(err, VDB_EIO, "rename %s to %s", t->tmp, t->path);
	if (st) {
		vdb_tmpfile_discard(t);
		return st;
	}
	t->tmp[0] = '\0'; /* it is PATH now */
	if (flags & (VDB_TMP_NO_SYNC | VDB_TMP_NO_DIR_SYNC))
		return VDB_OK;
	/* The rename is durable only once the directory is synced. */
	char dir[4096];
	vdb_path_split(t->path, dir, sizeof dir, NULL);
	return vdb_fsync_dir(dir, err);
}

void vdb_tmpfile_discard(vdb_tmpfile *t)
{
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
	if (t->tmp[0])
		unlink(t->tmp);
	t->tmp[0] = '\0';
}

vdb_status vdb_atomic_write(const char *dir, const char *name, const void *data, size_t len,
			    vdb_error *err)
{
	char path[4096];
	if (vdb_path(path, sizeof path, dir, name))
		return vdb_err(err, VDB_EINVAL, "path too long: %s/%s", dir, name);
	vdb_tmpfile t;
	vdb_status st = vdb_tmpfile_create(&t, path, 0, err);
	if (st)
		return st;
	if (vdb_write_all(t.fd, data, len) < 0) {
		st = vdb_err_sys(err, VDB_EIO, "write %s", t.tmp);
		vdb_tmpfile_discard(&t);
		return st;
	}
	return vdb_tmpfile_commit(&t, 0, err);
}

vdb_status vdb_checked_read(const char *dir, const char *name, const char *kind,
			    unsigned max_version, size_t max, char *path, char **data,
			    const char **body, vdb_error *err)
{
	size_t len;
	if (vdb_path(path, 4096, dir, name))
		return vdb_err(err, VDB_EINVAL, "path too long: %s", dir);
	vdb_status st = vdb_read_file(path, max, data, &len, err);
	if (st)
		return st;
	if ((st = vdb_checked_decode(path, kind, max_version, *data, len, body, err))) {
		free(*data);
		*data = NULL;
	}
	return st;
}

vdb_status vdb_read_file(const char *path, size_t max, char **out, size_t *len, vdb_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return vdb_err_sys(err, VDB_OK, "open %s", path);
	struct stat st;
	if (fstat(fd, &st) < 0) {
		vdb_err_sys(err, VDB_EIO, "stat %s", path);
		close(fd);
		return VDB_EIO;
	}
	if ((uint64_t)st.st_size > max) {
		close(fd);
		return vdb_err(err, VDB_ECORRUPT, "%s: file is %lld bytes, more than the %zu allowed",
			       path, (long long)st.st_size, max);
	}
	size_t n = (size_t)st.st_size;
	char *buf = malloc(n + 1);
	if (!buf) {
		close(fd);
		return vdb_err_nomem(err);
	}
	ssize_t r = vdb_pread_full(fd, buf, n, 0);
	if (r < 0) {
		vdb_err_sys(err, VDB_EIO, "read %s", path);
		free(buf);
		close(fd);
		return VDB_EIO;
	}
	close(fd);
	buf[r] = '\0';
	*out = buf;
	*len = (size_t)r;
	return VDB_OK;
}

vdb_status vdb_checked_encode(const char *kind, unsigned version, const char *body,
			      char **out, size_t *out_len, vdb_error *err)
{
	size_t blen = strlen(body);
	uint32_t crc = vdb_crc32c(0, body, blen);
	char head[128];
	int h = snprintf(head, sizeof head, "vdb-%s %u %zu %08x\n", kind, version, blen, crc);
	char *buf = malloc((size_t)h + blen + 1);
	if (!buf)
		return vdb_err_nomem(err);
	memcpy(buf, head, (size_t)h);
	memcpy(buf + h, body, blen + 1);
	*out = buf;
	*out_len = (size_t)h + blen;
	return VDB_OK;
}

vdb_status vdb_checked_decode(const char *path, const char *kind, unsigned max_version,
			      const char *data, size_t len, const char **body, vdb_error *err)
{
	const char *nl = memchr(data, '\n', len < 128 ? len : 128);
	char want[40];
	snprintf(want, sizeof want, "vdb-%s ", kind);
	size_t wl = strlen(want);
	if (!nl || (size_t)(nl - data) < wl || memcmp(data, want, wl) != 0)
		return vdb_err(err, VDB_ECORRUPT, "%s: not a vdb %s file (bad header)", path, kind);
	char head[128];
	memcpy(head, data, (size_t)(nl - data));
	head[nl - data] = '\0';
	unsigned version;
	unsigned long long blen;
	unsigned crc;
	char extra;
	if (sscanf(head + wl, "%u %llu %8x%c", &version, &blen, &crc, &extra) != 3)
		return vdb_err(err, VDB_ECORRUPT, "%s: malformed header line", path);
	if (version == 0 || version > max_version)
		return vdb_err(err, VDB_ECORRUPT,
			       "%s: format version %u is not supported by this vdb (it reads up to "
			       "version %u)",
			       path, version, max_version);
	size_t off = (size_t)(nl - data) + 1;
	if (blen != len - off)
		return vdb_err(err, VDB_ECORRUPT, "%s: header says %llu bytes, file has %zu", path,
			       blen, len - off);
	if (vdb_crc32c(0, data + off, len - off) != crc)
		return vdb_err(err, VDB_ECORRUPT, "%s: checksum mismatch", path);
	*body = data + off;
	return VDB_OK;
}

void vdb_remove_tree(const char *dir)
{
	DIR *d = opendir(dir);
	if (d) {
		struct dirent *e;
		while ((e = readdir(d))) {
			char p[4096];
			if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
			    !vdb_path(p, sizeof p, dir, e->d_name) && unlink(p) < 0 &&
			    errno == EISDIR)
				vdb_remove_tree(p);
		}
		closedir(d);
	}
	rmdir(dir);
}

/* ---- leftovers of killed commands ---- */

int vdb_hold_tmp(int fd)
{
	int rc;
	while ((rc = flock(fd, LOCK_EX)) < 0 && errno == EINTR)
		;
	return rc;
}

int vdb_hold_tmp_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0 && vdb_hold_tmp(fd) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		fd = -1;
	}
	return fd;
}

long vdb_parse_pid(const char *s, char stop, const char **end)
{
	long pid = 0;
	const char *p = s;
	for (; *p >= '0' && *p <= '9' && p - s < 10; p++)
		pid = pid * 10 + (*p - '0');
	if (p == s || pid <= 0 || pid > 0x7fffffff || (*p && *p != stop))
		return -1;
	if (end)
		*end = p;
	return pid;
}

int vdb_match_tmp_of(const char *name, void *ctx, long *pid)
{
	const char *base = ctx;
	size_t n = strlen(base);
	if (strncmp(name, base, n) || strncmp(name + n, ".tmp-", 5))
		return 0;
	return (*pid = vdb_parse_pid(name + n + 5, '\0', NULL)) > 0;
}

/* Removes dir/name when it is a regular file or directory that process pid left: pid is
 * not running, and its flock is free (taken here, non-blocking, and held while removing,
 * so a command starting to use it now would find it taken). */
static int remove_leftover(const char *dir, const char *name, long pid)
{
	char path[4096];
	struct stat sb;
	if (kill((pid_t)pid, 0) == 0 || errno != ESRCH ||
	    vdb_path(path, sizeof path, dir, name) || lstat(path, &sb) < 0 ||
	    !(S_ISREG(sb.st_mode) || S_ISDIR(sb.st_mode)))
		return 0;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return 0;
	int removed = 0;
	struct stat fb;
	if (fstat(fd, &fb) == 0 && fb.st_dev == sb.st_dev && fb.st_ino == sb.st_ino &&
	    flock(fd, LOCK_EX | LOCK_NB) == 0) {
		if (S_ISDIR(fb.st_mode))
			vdb_remove_tree(path);
		else
			unlink(path);
		removed = lstat(path, &sb) < 0 && errno == ENOENT;
	}
	close(fd);
	return removed;
}

size_t vdb_remove_leftovers(const char *dir, vdb_leftover_match match, void *ctx)
{
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	size_t removed = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		long pid;
		if (match(e->d_name, ctx, &pid))
			removed += (size_t)remove_leftover(dir, e->d_name, pid);
	}
	closedir(d);
	return removed;
}
