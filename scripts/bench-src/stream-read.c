/* stream-read: the memory bandwidth reference of scripts/bench -- a plain streaming read
 * (sum of every float) of a file's bytes through a read-only mapping, as vdb reads a
 * segment. Prints the best of REPEATS passes in GB/s (10^9 bytes per second).
 *
 *   stream-read FILE [REPEATS [THREADS]]
 *
 * With THREADS > 1 each thread reads its own contiguous share of the file at the same time
 * (as vdb-query splits one query's scan), and the figure is the whole file over the time
 * of the slowest. Sixteen independent accumulators per thread so that the additions are
 * not the bottleneck; the file should already be in the page cache (the first pass brings
 * it in and maps it, and is counted like the others, so use REPEATS >= 2). */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct share {
	const float *a;
	size_t from, to; /* floats, multiples of 16 */
	double sum;
} share;

static void *read_share(void *arg)
{
	share *s = arg;
	float acc[16] = {0};
	for (size_t i = s->from; i < s->to; i += 16)
		for (int j = 0; j < 16; j++)
			acc[j] += s->a[i + j];
	s->sum = 0;
	for (int j = 0; j < 16; j++)
		s->sum += acc[j];
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: stream-read FILE [REPEATS [THREADS]]\n");
		return 64;
	}
	int repeats = argc > 2 ? atoi(argv[2]) : 5;
	int threads = argc > 3 ? atoi(argv[3]) : 1;
	if (threads < 1 || threads > 64) {
		fprintf(stderr, "stream-read: THREADS must be 1 to 64\n");
		return 64;
	}
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
	share sh[64];
	pthread_t tid[64];
	for (int r = 0; r < repeats; r++) {
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (int t = 0; t < threads; t++) {
			sh[t] = (share){a, n / 16 * t / threads * 16, n / 16 * (t + 1) / threads * 16, 0};
			if (t && pthread_create(&tid[t], NULL, read_share, &sh[t])) {
				perror("pthread_create");
				return 71;
			}
		}
		read_share(&sh[0]);
		for (int t = 1; t < threads; t++)
			pthread_join(tid[t], NULL);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		for (int t = 0; t < threads; t++)
			total += sh[t].sum;
		double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
		if (secs < best)
			best = secs;
	}
	/* The sum is printed so that the reads cannot be optimised away. */
	printf("%.3f GB/s (checksum %g)\n", (double)n * sizeof(float) / best / 1e9, total);
	return 0;
}
