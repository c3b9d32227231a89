/* Little-endian integers in byte buffers, for every on-disk format (storage files, payload
 * indexes, snapshots). All of vdb's integers on disk are little-endian; vdb refuses to build
 * on a big-endian host rather than write files another machine would misread. */
#ifndef VDB_UTIL_BYTES_H
#define VDB_UTIL_BYTES_H

#include <stdint.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "vdb's file formats are little-endian; this host is not"
#endif

static inline uint32_t vdb_le32(const void *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}
static inline uint64_t vdb_le64(const void *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}
static inline void vdb_put32(void *p, uint32_t v)
{
	memcpy(p, &v, 4);
}
static inline void vdb_put64(void *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

#endif
