/* MANIFEST: the one mutable file of a collection, naming its current version. */
#ifndef VDB_STORAGE_MANIFEST_H
#define VDB_STORAGE_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "vdb.h"

typedef struct vdb_manifest_seg {
	uint64_t number, rows, size;
	uint32_t header_crc;
	uint64_t deleted;   /* rows marked deleted (0: no deletion file) */
	char del_file[64];  /* "" when deleted == 0 */
} vdb_manifest_seg;

typedef struct vdb_manifest {
	uint64_t generation; /* +1 at every replacement */
	uint64_t wal;        /* number of the active log, wal-<n>.log */
	uint64_t next_seq;   /* sequence number of the first frame in that log */
	uint64_t next_file;  /* next number for a segment or deletion file */
	vdb_manifest_seg *segs;
	size_t nseg;
} vdb_manifest;

vdb_status vdb_manifest_read(const char *dir, vdb_manifest *m, vdb_error *err);
/* The file image of m, exactly as vdb_manifest_write writes it (snapshots store it). */
vdb_status vdb_manifest_encode(const vdb_manifest *m, char **file, size_t *len, vdb_error *err);
/* Atomic replacement: temp file, fsync, rename, fsync directory. */
vdb_status vdb_manifest_write(const char *dir, const vdb_manifest *m, vdb_error *err);
void vdb_manifest_free(vdb_manifest *m);

#endif
