/* CRC32C (Castagnoli), the checksum of every WAL record and file section. */
#ifndef VDB_UTIL_CRC32C_H
#define VDB_UTIL_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continues a CRC: crc32c(crc32c(0, a), b) == crc32c(0, a || b). */
uint32_t vdb_crc32c(uint32_t crc, const void *data, size_t len);
/* The CRC of a || b from the CRCs of a and b and b's length, in O(log len_b): lets a
 * reader that checksums the parts of a stream also have the whole without a second pass. */
uint32_t vdb_crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b);

#endif
