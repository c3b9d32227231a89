/* random-reads: how a disk answers the random 4 KiB page reads of rescoring beyond RAM
 * (docs for search.c's batched rescoring): N random pages of FILE, dropped from the page
 * cache first (POSIX_FADV_DONTNEED), read through a mapping one at a time (each a page
 * fault that waits for the device), or all asked for at once with process_madvise
 * (MADV_WILLNEED, 512 ranges a call, as vdb does in calls of 64) and then touched.
 *
 *   cc -O2 -o random-reads scripts/bench-src/random-reads.c
 *   ./random-reads FILE N          (a file much larger than N pages, e.g. a segment)
 *
 * Prints microseconds per page for each way. Seeded: the same pages every run. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Seconds to read the pages at off[0..n) of a fresh mapping of fd. */
static double pass(int fd, size_t size, const size_t *off, size_t n, int at_once)
{
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	char *m = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	madvise(m, size, MADV_RANDOM);
	volatile char sink = 0;
	double t = now();
	if (at_once) {
		int pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
		for (size_t i = 0; i < n; i += 512) {
			struct iovec v[512];
			size_t c = 0;
			for (size_t j = i; j < n && j < i + 512; j++, c++)
				v[c] = (struct iovec){m + off[j], 4096};
			if (syscall(SYS_process_madvise, pidfd, v, c, MADV_WILLNEED, 0) < 0)
				perror("process_madvise");
		}
		close(pidfd);
	}
	for (size_t i = 0; i < n; i++)
		sink += m[off[i]];
	t = now() - t;
	munmap(m, size);
	(void)sink;
	return t;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: random-reads FILE N\n");
		return 64;
	}
	int fd = open(argv[1], O_RDONLY);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		perror(argv[1]);
		return 66;
	}
	size_t n = (size_t)atol(argv[2]), pages = (size_t)st.st_size / 4096;
	if (!n || pages < 2 * n) {
		fprintf(stderr, "random-reads: FILE needs at least 2 N pages\n");
		return 64;
	}
	size_t *off = malloc(n * sizeof *off);
	uint64_t x = 20261207;
	for (size_t i = 0; i < n; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		off[i] = (size_t)((x >> 17) % pages) * 4096;
	}
	double one = pass(fd, (size_t)st.st_size, off, n, 0);
	double all = pass(fd, (size_t)st.st_size, off, n, 1);
	printf("%zu random pages: %.1f us each one at a time, %.1f us each asked for at once\n", n,
	       1e6 * one / (double)n, 1e6 * all / (double)n);
	free(off);
	close(fd);
	return 0;
}
