/* stream-read: the memory bandwidth reference of scripts/bench -- a plain streaming read
 * (sum of every float) of a file's bytes through a read-only mapping, as vdb reads a
 * segment. Prints the best of REPEATS passes in GB/s (10^9 bytes per second).
 *
 *   stream-read FILE [REPEATS]
 *
 * Sixteen independent accumulators so that the additions are not the bottleneck; the
 * file should already be in the page cache (the first pass brings it in and is counted
 * like the others, so use REPEATS >= 2). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: stream-read FILE [REPEATS]\n");
		return 64;
	}
	int repeats = argc > 2 ? atoi(argv[2]) : 5;
	int fd = open(argv[1], O_RDONLY);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		perror(argv[1]);
		return 66;
	}
	size_t n = (size_t)st.st_size / sizeof(float) / 16 * 16;
	const float *a = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	if (a == MAP_FAILED) {
		perror("mmap");
		return 74;
	}
	double best = 1e30, total = 0;
	for (int r = 0; r < repeats; r++) {
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		float acc[16] = {0};
		for (size_t i = 0; i < n; i += 16)
			for (int j = 0; j < 16; j++)
				acc[j] += a[i + j];
		clock_gettime(CLOCK_MONOTONIC, &t1);
		for (int j = 0; j < 16; j++)
			total += acc[j];
		double t = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
		if (t < best)
			best = t;
	}
	/* The sum is printed so that the reads cannot be optimised away. */
	printf("%.3f GB/s (checksum %g)\n", (double)n * sizeof(float) / best / 1e9, total);
	return 0;
}
