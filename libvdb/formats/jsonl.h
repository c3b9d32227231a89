/* Pieces of the JSON-lines parser shared with the other text formats (CSV). */
#ifndef VDB_FORMATS_JSONL_H
#define VDB_FORMATS_JSONL_H

#include <stddef.h>

#include "vdb_io.h"

/* Parses s[0..len) as a JSON array of the parser's dim numbers (nothing else around it but
 * whitespace); *vec points into the parser. Messages name `field`. */
vdb_status jsonl_parse_vector_text(vdb_jsonl_parser *p, const char *s, size_t len,
				   const char *field, const float **vec, vdb_error *err);

/* vdb_id_append_text for a field that may hold line breaks (a quoted CSV field): the same
 * text, line breaks allowed. */
vdb_status jsonl_append_id_field(vdb_text *t, const vdb_id *id, vdb_error *err);

#endif
