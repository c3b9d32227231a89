/* The JSONL record, query and payload parsers (vdb-ingest, vdb-query, --payloads): one line,
 * the first byte choosing the dimension. */
#include <stdlib.h>

#include "fuzz.h"
#include "vdb_admin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint32_t dim = 1 + data[0] % 8;
	const char *line = (const char *)data + 1;
	size_t len = size - 1;
	vdb_jsonl_parser *p;
	vdb_error err;
	if (vdb_jsonl_parser_new(dim, &p, &err))
		abort();
	vdb_record_kind kind;
	vdb_record rec;
	if (vdb_jsonl_parse_record(p, line, len, &kind, &rec, &err) == VDB_OK &&
	    kind == VDB_RECORD_UPSERT) {
		volatile float sum = 0;
		for (uint32_t i = 0; i < dim; i++)
			sum += rec.vector[i];
		for (size_t i = 0; rec.payload && i < rec.payload_len; i++)
			sum += (float)rec.payload[i];
	}
	const float *vec;
	size_t k = 10;
	if (vdb_jsonl_parse_query(p, line, len, &vec, &k, &err) == VDB_OK) {
		size_t flen;
		const char *f = vdb_jsonl_query_filter(p, &flen);
		vdb_filter *filter;
		if (f && vdb_filter_parse(f, flen, &filter, &err) == VDB_OK)
			vdb_filter_free(filter);
	}
	const char *payload;
	size_t plen;
	vdb_jsonl_parse_payload(p, line, len, &payload, &plen, &err);
	vdb_jsonl_parser_free(p);
	return 0;
}
