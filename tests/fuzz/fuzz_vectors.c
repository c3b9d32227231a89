/* The .npy, .fvecs, .bvecs and CSV readers (vdb-ingest --format): the first byte chooses
 * the format and the dimension, the rest is the file (zstd-compressed or not: the input
 * stream detects it). */
#include <stdlib.h>
#include <unistd.h>

#include "fuzz.h"
#include "vdb_admin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	int format = data[0] & 3;
	uint32_t dim = 1 + (data[0] >> 2) % 16;
	int fd = fuzz_memfd(data + 1, size - 1);
	vdb_istream *in;
	vdb_error err;
	if (vdb_istream_open(fd, NULL, &in, &err)) {
		close(fd);
		return 0;
	}
	int has = 1;
	if (format < 3) {
		vdb_vec_reader *r;
		static const vdb_vec_format formats[] = {VDB_VEC_NPY, VDB_VEC_FVECS, VDB_VEC_BVECS};
		if (vdb_vec_reader_open(in, formats[format], dim, &r, &err) == VDB_OK) {
			const float *vec;
			for (int n = 0; has && n < 100000; n++)
				if (vdb_vec_reader_next(r, &vec, &has, &err))
					break;
			vdb_vec_reader_close(r);
		}
	} else {
		vdb_csv_options o;
		vdb_csv_options_init(&o);
		vdb_csv_reader *r;
		if (vdb_csv_reader_open(in, dim, &o, &r, &err) == VDB_OK) {
			vdb_record rec;
			for (int n = 0; has && n < 100000; n++)
				if (vdb_csv_reader_next(r, &rec, &has, &err))
					break;
			vdb_csv_reader_close(r);
		}
	}
	vdb_istream_close(in);
	close(fd);
	return 0;
}
