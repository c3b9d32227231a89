/* The write-ahead log decoder: the input is a whole wal file; the dimension, log number and
 * first sequence number are taken from its own header and first frame, so that mutated
 * logs get past the header checks. It is decoded as it is, then once more with the header's
 * and every frame's checksums made to match, so that mutations reach the record decoder. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "storage/memtable.h"
#include "storage/wal.h"
#include "util/crc32c.h"
#include "vdb.h"

static uint64_t le(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> 8 * i);
}

static void replay(const uint8_t *data, size_t size)
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
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	replay(data, size);
	if (size < 32)
		return 0;
	uint8_t *fixed = malloc(size);
	memcpy(fixed, data, size);
	put32(fixed + 28, vdb_crc32c(0, fixed, 28));
	/* Frames: magic, body length, sequence, body CRC, CRC of those 20 bytes; then the body. */
	for (size_t off = 32; off + 24 <= size;) {
		uint64_t len = le(fixed + off + 4, 4);
		if (len > size - off - 24)
			break;
		put32(fixed + off + 16, vdb_crc32c(0, fixed + off + 24, len));
		put32(fixed + off + 20, vdb_crc32c(0, fixed + off, 20));
		off += 24 + len;
	}
	replay(fixed, size);
	free(fixed);
	return 0;
}
