/* Record ids: hashing (persisted in segment id indexes, so the function is part of the file
 * format and must never change) and the total order that breaks score ties. */
#ifndef VDB_STORAGE_IDS_H
#define VDB_STORAGE_IDS_H

#include "vdb.h"

/* FNV-1a 64 over a kind byte (0 integer, 1 string) followed by the 8 little-endian bytes of
 * the integer or the string's bytes. */
uint64_t vdb_id_hash(const vdb_id *id);
int vdb_id_equal(const vdb_id *a, const vdb_id *b);

#endif
