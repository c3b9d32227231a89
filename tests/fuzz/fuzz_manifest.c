/* The checked-text parsers of a collection: the input is read as its MANIFEST and as its
 * CONFIG. When the input starts with a "vdb-KIND VERSION " header, the body length and CRC
 * of a second copy are made to match, so that mutations reach the JSON behind the checksum. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "storage/config.h"
#include "storage/manifest.h"
#include "util/crc32c.h"
#include "vdb.h"

static void parse(const char *dir, const uint8_t *data, size_t size)
{
	fuzz_write_file(dir, "MANIFEST", data, size);
	fuzz_write_file(dir, "CONFIG", data, size);
	vdb_manifest m;
	vdb_error err;
	if (vdb_manifest_read(dir, &m, &err) == VDB_OK)
		vdb_manifest_free(&m);
	vdb_collection_config cfg;
	vdb_config_read(dir, &cfg, &err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *dir = fuzz_dir();
	parse(dir, data, size);
	const uint8_t *nl = memchr(data, '\n', size < 100 ? size : 100);
	char kind[32], line[101];
	unsigned version;
	if (!nl)
		return 0;
	/* sscanf needs a string: the header line, terminated (the input is not). */
	memcpy(line, data, (size_t)(nl - data));
	line[nl - data] = '\0';
	if (sscanf(line, "vdb-%31[a-z] %u ", kind, &version) != 2)
		return 0;
	size_t blen = size - (size_t)(nl + 1 - data);
	char head[100];
	int h = snprintf(head, sizeof head, "vdb-%s %u %zu %08x\n", kind, version, blen,
			 vdb_crc32c(0, nl + 1, blen));
	uint8_t *fixed = malloc((size_t)h + blen + 1);
	memcpy(fixed, head, (size_t)h);
	memcpy(fixed + h, nl + 1, blen);
	parse(dir, fixed, (size_t)h + blen);
	free(fixed);
	return 0;
}
