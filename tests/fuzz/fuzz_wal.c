/* The write-ahead log decoder: the input is a whole wal file; the dimension, log number and
 * first sequence number are taken from its own header and first frame, so that mutated
 * logs get past the header checks. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "storage/memtable.h"
#include "storage/wal.h"
#include "vdb.h"

static uint64_t le(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t dim = size >= 16 ? (uint32_t)le(data + 12, 4) : 4;
	if (dim == 0 || dim > 4096)
		dim = 4;
	uint64_t number = size >= 24 ? le(data + 16, 8) : 1;
	uint64_t seq = size >= 48 ? le(data + 40, 8) : 1;
	int fd = fuzz_memfd(data, size);
	vdb_memtable mt;
	vdb_memtable_init(&mt, dim);
	vdb_wal_replay r;
	vdb_error err;
	vdb_wal_replay_fd(fd, "wal", dim, number, seq, &mt, &r, &err);
	vdb_memtable_free(&mt);
	close(fd);
	return 0;
}
