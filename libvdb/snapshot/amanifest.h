/* The manifest of a snapshot archive (its first entry, vdb-snapshot.json). */
#ifndef VDB_SNAPSHOT_AMANIFEST_H
#define VDB_SNAPSHOT_AMANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "tar.h"
#include "vdb.h"

#define VDB_ARC_MANIFEST_NAME "vdb-snapshot.json"
/* Version 2 adds log deltas (an entry's "at" and "pieces"); an archive without them is
 * written as version 1, which older vdb reads. */
#define VDB_ARC_FORMAT 2
#define VDB_ARC_MAX_PIECES 1000u /* pieces of one log: the length of a --since chain */
#define VDB_ARC_MANIFEST_MAX (16u << 20) /* bytes */
#define VDB_ARC_MAX_ENTRIES 1000000u
#define VDB_ARC_FILE_MAX 255 /* a dependency's file name */

/* Bytes [at, at + size) of a log, stored in dependency `from` (as that archive's stored
 * part of the entry of the same name). */
typedef struct vdb_arc_piece {
	int from;
	uint64_t at, size;
	uint32_t crc; /* CRC32C of those bytes */
	int done;     /* restore: written and checked */
} vdb_arc_piece;

typedef struct vdb_arc_entry {
	char name[VDB_TAR_NAME_MAX + 1];
	uint64_t size;
	uint32_t crc;        /* CRC32C of the whole file */
	uint32_t header_crc; /* segments: the header CRC the MANIFEST records; else 0 */
	int from;            /* -1: stored in this archive; else index into deps */
	/* A log delta (from == -1): only bytes [at, size) are stored here, their CRC32C
	 * tail_crc; bytes [0, at) are the pieces, in order, from earlier snapshots whose logs
	 * held the same prefix. at == 0: the whole file is stored, no pieces. */
	uint64_t at;
	uint32_t tail_crc;
	vdb_arc_piece *pieces; /* malloc'd */
	size_t npieces;
} vdb_arc_entry;

/* The bytes of e this archive stores, and their CRC32C. */
static inline uint64_t vdb_arc_stored_size(const vdb_arc_entry *e)
{
	return e->size - e->at;
}

static inline uint32_t vdb_arc_stored_crc(const vdb_arc_entry *e)
{
	return e->at ? e->tail_crc : e->crc;
}

typedef struct vdb_arc_dep {
	char file[VDB_ARC_FILE_MAX + 1]; /* base name, resolved in the chain directory */
	char id[33];
} vdb_arc_dep;

typedef struct vdb_arc_coll {
	char name[VDB_NAME_MAX + 1];
	uint64_t records, segments;
	char *config; /* the CONFIG body (JSON text), malloc'd */
} vdb_arc_coll;

typedef struct vdb_arc_manifest {
	unsigned format;
	char id[33];
	char created[32];     /* UTC, ISO 8601 */
	char vdb_version[32];
	char base[VDB_ARC_FILE_MAX + 1]; /* incremental: the --since file; "" for a full one */
	vdb_arc_dep *deps;
	size_t ndep;
	vdb_arc_coll *colls;
	size_t ncoll;
	vdb_arc_entry *entries;
	size_t nent;
} vdb_arc_manifest;

/* 1 when name is a path vdb writes into archives: VDB, or COLLECTION/ followed by CONFIG,
 * MANIFEST, seg-N.vdb, del-N-N.vdb or wal-N.log. Nothing else is ever extracted. */
int vdb_arc_name_ok(const char *name);

/* The checked-text image of m ("vdb-snapshot 1 LEN CRC\n{json}"). */
vdb_status vdb_arc_manifest_encode(const vdb_arc_manifest *m, char **out, size_t *len,
				   vdb_error *err);
/* Verifies the checksum and every field (names, sizes, duplicates, references). */
vdb_status vdb_arc_manifest_parse(const char *what, const char *data, size_t len,
				  vdb_arc_manifest *m, vdb_error *err);
void vdb_arc_manifest_free(vdb_arc_manifest *m);

/* Index of the entry called name, or -1. */
long vdb_arc_find(const vdb_arc_manifest *m, const char *name);

/* Reads and parses the manifest entry at the start of an archive stream. */
struct vdb_zreader;
vdb_status vdb_arc_read_manifest(struct vdb_zreader *r, const char *what, vdb_arc_manifest *m,
				 vdb_error *err);

/* Decompressed bytes an archive with manifest m may hold, at most (the reader's budget). */
uint64_t vdb_arc_budget(const vdb_arc_manifest *m, uint64_t manifest_size);

#endif
