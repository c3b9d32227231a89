/* Fault injection for the vdb commands: an LD_PRELOAD shim that makes the Nth file system
 * call on a file under a given directory fail, as a failing or a full disk would.
 *
 * Environment:
 *   VDB_FAULT_DIR    only calls on paths under this directory count (the test's temporary
 *                    directory): standard error, /proc, shared libraries and anonymous
 *                    memory never fail, so the command can still report what happened
 *   VDB_FAULT_CALLS  comma-separated call kinds that count: write (write, pwrite, writev),
 *                    fsync (fsync, fdatasync), rename (rename, renameat, renameat2), open
 *                    (open, openat, creat), mmap, ftruncate, mkdir; "all" (the default:
 *                    all of these); unlink (unlink, unlinkat) counts only when named
 *   VDB_FAULT_N      the counted call that fails (1 = the first); 0 or unset: none fails
 *   VDB_FAULT_ERRNO  EIO (default) or ENOSPC
 *   VDB_FAULT_LOG    a file to which lines are appended: "injected N KIND PATH" when the
 *                    fault happens, and "calls C" (how many calls counted) at exit
 *
 * The counter is shared by all threads (snapshot compression workers, parallel queries).
 * Calls glibc makes internally (stdio's own writes) do not pass through here; vdb writes its
 * files with the system calls directly. */
#define _GNU_SOURCE
/* Both mmap and mmap64 (open, open64, ...) are defined below; with 64-bit file offsets the
 * headers would turn one name into the other. off_t is 64 bits on the 64-bit targets. */
#undef _FILE_OFFSET_BITS
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

enum {
	K_WRITE = 1, K_FSYNC = 2, K_RENAME = 4, K_OPEN = 8, K_MMAP = 16, K_FTRUNCATE = 32,
	K_MKDIR = 64, K_UNLINK = 128,
};

static const struct {
	const char *name;
	unsigned bit;
} kind_names[] = {
	{"write", K_WRITE}, {"fsync", K_FSYNC},		{"rename", K_RENAME}, {"open", K_OPEN},
	{"mmap", K_MMAP},   {"ftruncate", K_FTRUNCATE}, {"mkdir", K_MKDIR},
	{"unlink", K_UNLINK},
};

static char fault_dir[PATH_MAX];
static size_t fault_dir_len;
static unsigned kinds_mask = ~0u & ~(unsigned)K_UNLINK;
static long fault_n;
static int fault_errno = EIO;
static const char *fault_log;
static long counted;
static int initialised;

static ssize_t (*real_write)(int, const void *, size_t);
static int (*real_open)(const char *, int, ...);

static void *next_fn(const char *name)
{
	void *f = dlsym(RTLD_NEXT, name);
	if (!f)
		abort();
	return f;
}

static void init(void)
{
	if (__atomic_load_n(&initialised, __ATOMIC_ACQUIRE))
		return;
	real_write = next_fn("write");
	real_open = next_fn("open");
	const char *d = getenv("VDB_FAULT_DIR");
	if (d && realpath(d, fault_dir))
		fault_dir_len = strlen(fault_dir);
	const char *n = getenv("VDB_FAULT_N");
	fault_n = n ? atol(n) : 0;
	const char *e = getenv("VDB_FAULT_ERRNO");
	fault_errno = e && !strcmp(e, "ENOSPC") ? ENOSPC : EIO;
	fault_log = getenv("VDB_FAULT_LOG");
	const char *calls = getenv("VDB_FAULT_CALLS");
	if (calls && strcmp(calls, "all")) {
		kinds_mask = 0;
		for (size_t i = 0; i < sizeof kind_names / sizeof kind_names[0]; i++)
			if (strstr(calls, kind_names[i].name))
				kinds_mask |= kind_names[i].bit;
	}
	__atomic_store_n(&initialised, 1, __ATOMIC_RELEASE);
}

static void log_line(const char *line)
{
	if (!fault_log)
		return;
	int fd = real_open(fault_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	(void)!real_write(fd, line, strlen(line));
	close(fd);
}

__attribute__((destructor)) static void report(void)
{
	init();
	char line[64];
	snprintf(line, sizeof line, "calls %ld\n", __atomic_load_n(&counted, __ATOMIC_SEQ_CST));
	log_line(line);
}

static int under_dir(const char *path)
{
	return fault_dir_len && !strncmp(path, fault_dir, fault_dir_len) &&
	       (path[fault_dir_len] == '/' || path[fault_dir_len] == '\0');
}

/* An absolute form of `path` relative to `dirfd` (enough to compare prefixes: no "..", no
 * symbolic links are resolved). */
static int absolute(int dirfd, const char *path, char *out, size_t cap)
{
	if (path[0] == '/') {
		snprintf(out, cap, "%s", path);
		return 0;
	}
	char base[PATH_MAX];
	if (dirfd == AT_FDCWD) {
		if (!getcwd(base, sizeof base))
			return -1;
	} else {
		char proc[64];
		snprintf(proc, sizeof proc, "/proc/self/fd/%d", dirfd);
		ssize_t n = readlink(proc, base, sizeof base - 1);
		if (n < 0)
			return -1;
		base[n] = '\0';
	}
	int n = snprintf(out, cap, "%s/%s", base, path);
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* Whether this call fails: it counts if it is of a selected kind on a path under the
 * directory, and fails if it is the Nth that counted. */
static int inject(unsigned kind, const char *what, const char *path)
{
	init();
	if (!(kinds_mask & kind) || !path || !under_dir(path))
		return 0;
	long k = __atomic_add_fetch(&counted, 1, __ATOMIC_SEQ_CST);
	if (k != fault_n)
		return 0;
	char line[2 * PATH_MAX + 64];
	snprintf(line, sizeof line, "injected %ld %s %s\n", k, what, path);
	log_line(line);
	return 1;
}

static int inject_path(unsigned kind, const char *what, int dirfd, const char *path)
{
	char abs[2 * PATH_MAX];
	return absolute(dirfd, path, abs, sizeof abs) == 0 && inject(kind, what, abs);
}

static int inject_fd(unsigned kind, const char *what, int fd)
{
	char proc[64], path[PATH_MAX];
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(proc, path, sizeof path - 1);
	if (n < 0)
		return 0;
	path[n] = '\0';
	return inject(kind, what, path);
}

#define FAIL(ret)                        \
	do {                             \
		errno = fault_errno;     \
		return ret;              \
	} while (0)

ssize_t write(int fd, const void *p, size_t n)
{
	static ssize_t (*f)(int, const void *, size_t);
	if (!f)
		f = next_fn("write");
	if (fd > 2 && inject_fd(K_WRITE, "write", fd))
		FAIL(-1);
	return f(fd, p, n);
}

ssize_t pwrite(int fd, const void *p, size_t n, off_t off)
{
	static ssize_t (*f)(int, const void *, size_t, off_t);
	if (!f)
		f = next_fn("pwrite");
	if (inject_fd(K_WRITE, "pwrite", fd))
		FAIL(-1);
	return f(fd, p, n, off);
}

ssize_t pwrite64(int fd, const void *p, size_t n, off_t off)
{
	static ssize_t (*f)(int, const void *, size_t, off_t);
	if (!f)
		f = next_fn("pwrite64");
	if (inject_fd(K_WRITE, "pwrite", fd))
		FAIL(-1);
	return f(fd, p, n, off);
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	static ssize_t (*f)(int, const struct iovec *, int);
	if (!f)
		f = next_fn("writev");
	if (fd > 2 && inject_fd(K_WRITE, "writev", fd))
		FAIL(-1);
	return f(fd, iov, cnt);
}

int fsync(int fd)
{
	static int (*f)(int);
	if (!f)
		f = next_fn("fsync");
	if (inject_fd(K_FSYNC, "fsync", fd))
		FAIL(-1);
	return f(fd);
}

int fdatasync(int fd)
{
	static int (*f)(int);
	if (!f)
		f = next_fn("fdatasync");
	if (inject_fd(K_FSYNC, "fdatasync", fd))
		FAIL(-1);
	return f(fd);
}

int ftruncate(int fd, off_t len)
{
	static int (*f)(int, off_t);
	if (!f)
		f = next_fn("ftruncate");
	if (inject_fd(K_FTRUNCATE, "ftruncate", fd))
		FAIL(-1);
	return f(fd, len);
}

int ftruncate64(int fd, off_t len)
{
	static int (*f)(int, off_t);
	if (!f)
		f = next_fn("ftruncate64");
	if (inject_fd(K_FTRUNCATE, "ftruncate", fd))
		FAIL(-1);
	return f(fd, len);
}

int rename(const char *a, const char *b)
{
	static int (*f)(const char *, const char *);
	if (!f)
		f = next_fn("rename");
	if (inject_path(K_RENAME, "rename", AT_FDCWD, b))
		FAIL(-1);
	return f(a, b);
}

int renameat(int da, const char *a, int db, const char *b)
{
	static int (*f)(int, const char *, int, const char *);
	if (!f)
		f = next_fn("renameat");
	if (inject_path(K_RENAME, "renameat", db, b))
		FAIL(-1);
	return f(da, a, db, b);
}

int renameat2(int da, const char *a, int db, const char *b, unsigned flags)
{
	static int (*f)(int, const char *, int, const char *, unsigned);
	if (!f)
		f = next_fn("renameat2");
	if (inject_path(K_RENAME, "renameat2", db, b))
		FAIL(-1);
	return f(da, a, db, b, flags);
}

int unlink(const char *path)
{
	static int (*f)(const char *);
	if (!f)
		f = next_fn("unlink");
	if (inject_path(K_UNLINK, "unlink", AT_FDCWD, path))
		FAIL(-1);
	return f(path);
}

int unlinkat(int dirfd, const char *path, int flags)
{
	static int (*f)(int, const char *, int);
	if (!f)
		f = next_fn("unlinkat");
	if (inject_path(K_UNLINK, "unlinkat", dirfd, path))
		FAIL(-1);
	return f(dirfd, path, flags);
}

int mkdir(const char *path, mode_t mode)
{
	static int (*f)(const char *, mode_t);
	if (!f)
		f = next_fn("mkdir");
	if (inject_path(K_MKDIR, "mkdir", AT_FDCWD, path))
		FAIL(-1);
	return f(path, mode);
}

/* open and its aliases: the mode argument exists only with O_CREAT or O_TMPFILE. */
#define OPEN_MODE(flags, mode)                                   \
	mode_t mode = 0;                                         \
	if ((flags) & (O_CREAT | __O_TMPFILE)) {                 \
		va_list ap;                                      \
		va_start(ap, flags);                             \
		mode = (mode_t)va_arg(ap, int);                  \
		va_end(ap);                                      \
	}

#define DEFINE_OPEN(name)                                                   \
	int name(const char *path, int flags, ...)                          \
	{                                                                   \
		static int (*f)(const char *, int, ...);                    \
		if (!f)                                                     \
			f = next_fn(#name);                                 \
		OPEN_MODE(flags, mode)                                      \
		if (inject_path(K_OPEN, "open", AT_FDCWD, path))            \
			FAIL(-1);                                           \
		return f(path, flags, mode);                                \
	}
DEFINE_OPEN(open)
DEFINE_OPEN(open64)

#define DEFINE_OPENAT(name)                                                 \
	int name(int dirfd, const char *path, int flags, ...)               \
	{                                                                   \
		static int (*f)(int, const char *, int, ...);               \
		if (!f)                                                     \
			f = next_fn(#name);                                 \
		OPEN_MODE(flags, mode)                                      \
		if (inject_path(K_OPEN, "openat", dirfd, path))             \
			FAIL(-1);                                           \
		return f(dirfd, path, flags, mode);                         \
	}
DEFINE_OPENAT(openat)
DEFINE_OPENAT(openat64)

int creat(const char *path, mode_t mode)
{
	static int (*f)(const char *, mode_t);
	if (!f)
		f = next_fn("creat");
	if (inject_path(K_OPEN, "creat", AT_FDCWD, path))
		FAIL(-1);
	return f(path, mode);
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	static void *(*f)(void *, size_t, int, int, int, off_t);
	if (!f)
		f = next_fn("mmap");
	if (fd >= 0 && !(flags & MAP_ANONYMOUS) && inject_fd(K_MMAP, "mmap", fd))
		FAIL(MAP_FAILED);
	return f(addr, len, prot, flags, fd, off);
}

void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	static void *(*f)(void *, size_t, int, int, int, off_t);
	if (!f)
		f = next_fn("mmap64");
	if (fd >= 0 && !(flags & MAP_ANONYMOUS) && inject_fd(K_MMAP, "mmap", fd))
		FAIL(MAP_FAILED);
	return f(addr, len, prot, flags, fd, off);
}
