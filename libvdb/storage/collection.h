/* What the rest of the storage layer may see of a collection view (collection.c). */
#ifndef VDB_STORAGE_COLLECTION_H
#define VDB_STORAGE_COLLECTION_H

#include "state.h"

/* The loaded version a view answers from. */
const vdb_state *vdb_collection_state(const vdb_collection *c);

#endif
