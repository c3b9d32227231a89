/* The filter parser and evaluator: "FILTER\nPAYLOAD". */
#include <string.h>

#include "fuzz.h"
#include "vdb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	const char *nl = memchr(text, '\n', size);
	size_t flen = nl ? (size_t)(nl - text) : size;
	vdb_filter *f;
	vdb_error err;
	if (vdb_filter_parse(text, flen, &f, &err))
		return 0;
	int match;
	if (nl)
		vdb_filter_match(f, nl + 1, size - flen - 1, &match, &err);
	vdb_filter_match(f, NULL, 0, &match, &err);
	vdb_filter_match(f, "{\"a\":1,\"b\":[\"x\",2.5,null,{\"c\":true}]}", 37, &match, &err);
	vdb_filter_free(f);
	return 0;
}
