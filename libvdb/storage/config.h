/* A collection's CONFIG (config.c): its vocabulary, validation and file. The names and
 * parsers of metrics, index and field types are public (vdb.h). */
#ifndef VDB_STORAGE_CONFIG_H
#define VDB_STORAGE_CONFIG_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "vdb.h"

/* Integers in vdb's JSON files stay below 2^53, where JSON numbers are exact in a double. */
#define VDB_JSON_INT_MAX ((1ull << 53) - 1)

/* What is wrong with a configuration (a sentence), or NULL when it is valid. */
const char *vdb_config_problem(const vdb_collection_config *cfg);
/* Copies cfg into a caller's struct, as much of it as the caller's size says it has. */
void vdb_config_copy_out(const vdb_collection_config *cfg, vdb_collection_config *out);
/* Reads and validates dir/CONFIG. Errors: VDB_ENOENT, VDB_ECORRUPT (names the file). */
vdb_status vdb_config_read(const char *dir, vdb_collection_config *cfg, vdb_error *err);
/* The CONFIG file image (header line and body) of a collection named `name`. */
vdb_status vdb_config_encode(const char *name, const vdb_collection_config *cfg, char **out,
			     size_t *len, vdb_error *err);
/* o[key] as an integer in [0, max] (a JSON number without a fraction); 0, or -1. */
int vdb_config_get_u64(const cJSON *o, const char *key, uint64_t max, uint64_t *out);

#endif
