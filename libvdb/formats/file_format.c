/* File formats by name: what "-f npy" or "vectors.npy.zst" means (see vdb_io.h). */
#include <string.h>

#include "vdb_io.h"

static const char *const names[] = {"", "jsonl", "npy", "fvecs", "bvecs", "csv", "parquet"};

static const struct {
	const char *ext;
	vdb_file_format f;
} extensions[] = {{".jsonl", VDB_FILE_JSONL}, {".ndjson", VDB_FILE_JSONL},
		  {".json", VDB_FILE_JSONL},  {".npy", VDB_FILE_NPY},
		  {".fvecs", VDB_FILE_FVECS}, {".bvecs", VDB_FILE_BVECS},
		  {".csv", VDB_FILE_CSV},     {".parquet", VDB_FILE_PARQUET},
		  {".pq", VDB_FILE_PARQUET}};

vdb_file_format vdb_file_format_of(const char *path)
{
	size_t n = strlen(path);
	if (n > 4 && !strcmp(path + n - 4, ".zst"))
		n -= 4;
	for (size_t i = 0; i < sizeof extensions / sizeof extensions[0]; i++) {
		size_t e = strlen(extensions[i].ext);
		if (n > e && !strncmp(path + n - e, extensions[i].ext, e))
			return extensions[i].f;
	}
	return VDB_FILE_AUTO;
}

vdb_file_format vdb_file_format_parse(const char *name)
{
	for (int i = 1; name && i <= VDB_FILE_PARQUET; i++)
		if (!strcmp(name, names[i]))
			return (vdb_file_format)i;
	return VDB_FILE_AUTO;
}

const char *vdb_file_format_name(vdb_file_format f)
{
	return f >= VDB_FILE_AUTO && f <= VDB_FILE_PARQUET ? names[f] : "";
}

int vdb_file_format_is_vectors(vdb_file_format f)
{
	return f == VDB_FILE_NPY || f == VDB_FILE_FVECS || f == VDB_FILE_BVECS;
}
