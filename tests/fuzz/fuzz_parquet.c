/* The Parquet reader (vdb-ingest FILE.parquet): the first byte chooses the dimension and
 * whether the columns are named (id/vector/payload defaults, or none: the vector is found
 * by shape and ids are row numbers), the rest is the file. Every row is read, as the loader
 * would, until the end or the first error. */
#include <stdlib.h>
#include <unistd.h>

#include "formats/parquet.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint32_t dim = 1 + (data[0] & 7);
	vdb_csv_options o;
	vdb_csv_options_init(&o);
	if (data[0] & 8) {
		o.id_column = "no-such-column";
		o.payload_column = "";
	}
	int fd = fuzz_memfd(data + 1, size - 1);
	vdb_parquet_reader *r;
	vdb_error err;
	if (vdb_parquet_reader_open(fd, size - 1, dim, &o, &r, &err) == VDB_OK) {
		vdb_record rec;
		int has = 1;
		for (int n = 0; has && n < 1000000; n++)
			if (vdb_parquet_reader_next(r, &rec, &has, &err))
				break;
		vdb_parquet_reader_close(r);
	}
	close(fd);
	return 0;
}
