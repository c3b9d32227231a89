/* On-disk layout constants shared by the storage modules (docs/format.md describes them for
 * people). All integers are little-endian; vdb refuses to build on a big-endian host rather
 * than write files another machine would misread. */
#ifndef VDB_STORAGE_FORMAT_H
#define VDB_STORAGE_FORMAT_H

#include <stdint.h>

#include "../util/bytes.h"

#define VDB_DIR_MARKER "VDB"
#define VDB_DIR_FORMAT 1
#define VDB_CONFIG_FILE "CONFIG"
/* The newest version read; files use the oldest version that can say what they hold. */
#define VDB_CONFIG_FORMAT 2
#define VDB_MANIFEST_FILE "MANIFEST"
#define VDB_MANIFEST_FORMAT 1
#define VDB_LOCK_FILE "LOCK"

/* Write-ahead log: wal-<n>.log = file header, then frames (one per committed batch). */
#define VDB_WAL_MAGIC "vdbWAL\0\0"
#define VDB_WAL_FORMAT 1
#define VDB_WAL_HEADER_SIZE 32u /* magic[8] ver u32, dim u32, number u64, pad u32, crc u32 */
#define VDB_FRAME_MAGIC 0x31465756u /* "VWF1" */
#define VDB_FRAME_HEADER_SIZE 24u  /* magic, body_len, seq u64, body_crc, header_crc */
#define VDB_FRAME_MAX_BODY (1u << 30)

/* Operations inside a frame body. */
#define VDB_OP_UPSERT 1
#define VDB_OP_DELETE 2
#define VDB_OP_HEADER_SIZE 8u /* op u8, id kind u8, id len u16, payload len u32 */

/* Sealed segment: seg-<n>.vdb = header, section table, 64-byte aligned sections. */
#define VDB_SEG_MAGIC "vdbSEG\0\0"
/* Version 2 added the codes section; a segment without one is still written as version 1. */
#define VDB_SEG_FORMAT 2
#define VDB_SEG_HEADER_SIZE 128u
#define VDB_SEG_SECTION_SIZE 32u
#define VDB_SEG_MAX_SECTIONS 16u
#define VDB_SEG_ALIGN 64u

enum vdb_section_kind {
	VDB_SEC_VECTORS = 1,   /* rows * dim float32 */
	VDB_SEC_IDS = 2,       /* rows * {u64 num or string offset, u32 len, u32 kind} */
	VDB_SEC_ID_STRINGS = 3,
	VDB_SEC_ID_INDEX = 4,  /* rows * {u64 hash, u64 row}, sorted */
	VDB_SEC_PAYLOAD_OFFSETS = 5, /* (rows + 1) * u64 */
	VDB_SEC_PAYLOADS = 6,
	VDB_SEC_NORMS = 7,      /* cosine: rows * float32 |x| */
	VDB_SEC_HNSW_META = 8,  /* graph sections: see index/hnsw.c */
	VDB_SEC_HNSW_L0 = 9,
	VDB_SEC_HNSW_NODES = 10,
	VDB_SEC_HNSW_UPPER = 11,
	VDB_SEC_PAYLOAD_INDEX = 12, /* one per indexed field: see index/pindex.h */
	VDB_SEC_CODES = 13,         /* quantized collections: see index/codes.h */
};

/* Deletion marks of one segment: del-<seg>-<gen>.vdb = header, bitmap, crc. */
#define VDB_DEL_MAGIC "vdbDEL\0\0"
#define VDB_DEL_FORMAT 1
#define VDB_DEL_HEADER_SIZE 40u /* magic, ver u32, pad u32, segment u64, rows u64, count u64 */

#endif
