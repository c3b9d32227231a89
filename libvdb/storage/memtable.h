/* The memtable: the latest operation per id for the unsealed part of the log, in first-seen
 * order. Readers build it by replaying the WAL; the writer keeps it current as batches
 * commit and turns it into a segment when sealing. Its size is bounded by the seal
 * threshold, which is what keeps open time and memory independent of collection size. */
#ifndef VDB_STORAGE_MEMTABLE_H
#define VDB_STORAGE_MEMTABLE_H

#include <stddef.h>
#include <stdint.h>

#include "../util/buf.h"
#include "vdb.h"

typedef struct vdb_mem_entry {
	uint64_t hash;
	uint64_t id_num;      /* the integer id, or the offset of the string id in `strings` */
	uint64_t vec;         /* offset (in floats) of the vector in `vectors` */
	uint64_t payload_off; /* offset in `payloads` */
	uint32_t id_len;      /* string id length */
	uint32_t payload_len; /* 0 with has_payload = 0: no payload */
	uint8_t is_string;
	uint8_t deleted;      /* the latest operation on this id is a delete */
	uint8_t has_payload;
} vdb_mem_entry;

typedef struct vdb_memtable {
	uint32_t dim;
	vdb_mem_entry *entries;
	size_t n, cap;
	uint32_t *slots; /* open addressing: entry index + 1; 0 = empty */
	size_t nslots;
	float *vectors;
	size_t nfloats, capfloats;
	vdb_buf strings;
	vdb_buf payloads;
	size_t live; /* entries whose latest operation is an upsert */
	size_t upserts; /* upserts applied, superseded ones included (the log's stored rows) */
} vdb_memtable;

void vdb_memtable_init(vdb_memtable *m, uint32_t dim);
void vdb_memtable_free(vdb_memtable *m);
void vdb_memtable_clear(vdb_memtable *m);
/* 0 or -1 when out of memory (the table is unchanged then). */
int vdb_memtable_upsert(vdb_memtable *m, const vdb_id *id, const float *vec, const char *payload,
			size_t payload_len);
int vdb_memtable_delete(vdb_memtable *m, const vdb_id *id);
/* The entry for id, or NULL. */
const vdb_mem_entry *vdb_memtable_find(const vdb_memtable *m, const vdb_id *id, uint64_t hash);
void vdb_memtable_entry_id(const vdb_memtable *m, const vdb_mem_entry *e, vdb_id *out);
void vdb_memtable_entry_record(const vdb_memtable *m, const vdb_mem_entry *e, vdb_record *out);

#endif
