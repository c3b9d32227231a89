/* The tar layer of snapshot archives: POSIX ustar headers for regular files only. */
#ifndef VDB_SNAPSHOT_TAR_H
#define VDB_SNAPSHOT_TAR_H

#include <stddef.h>
#include <stdint.h>

#define VDB_TAR_BLOCK 512u
#define VDB_TAR_NAME_MAX 99u /* the ustar name field, NUL-terminated; no prefix field used */

/* Fills a 512-byte header for a regular file (mode 0644, owner 0). Sizes of 8 GiB and more
 * use the base-256 size encoding GNU tar and bsdtar read. */
void vdb_tar_header(unsigned char h[VDB_TAR_BLOCK], const char *name, uint64_t size,
		    int64_t mtime);

/* Bytes of padding after `size` bytes of content. */
static inline uint64_t vdb_tar_pad(uint64_t size)
{
	return (VDB_TAR_BLOCK - size % VDB_TAR_BLOCK) % VDB_TAR_BLOCK;
}

/* A parsed header. */
typedef struct vdb_tar_entry {
	char name[257]; /* prefix "/" name, as tar would extract it */
	char type;      /* the typeflag byte ('0' or '\0' for a regular file) */
	uint64_t size;
} vdb_tar_entry;

/* 1 for an all-zero block (the end-of-archive marker). */
int vdb_tar_is_zero(const unsigned char h[VDB_TAR_BLOCK]);

/* Parses a header: 0, or -1 with a reason in *why (bad checksum, bad size field, not a
 * ustar header). Names are not judged here: the restore decides what it accepts. */
int vdb_tar_parse(const unsigned char h[VDB_TAR_BLOCK], vdb_tar_entry *e, const char **why);

/* What a typeflag is, for messages ("symbolic link", "hard link", ...). */
const char *vdb_tar_type_name(char type);

#endif
