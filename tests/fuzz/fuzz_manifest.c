/* The checked-text parsers of a collection: the input is read as its MANIFEST and as its
 * CONFIG. */
#include "fuzz.h"
#include "storage/manifest.h"
#include "vdb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *dir = fuzz_dir();
	fuzz_write_file(dir, "MANIFEST", data, size);
	fuzz_write_file(dir, "CONFIG", data, size);
	vdb_manifest m;
	vdb_error err;
	if (vdb_manifest_read(dir, &m, &err) == VDB_OK)
		vdb_manifest_free(&m);
	vdb_collection_config cfg;
	vdb_config_read(dir, &cfg, &err);
	return 0;
}
