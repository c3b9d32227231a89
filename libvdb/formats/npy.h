/* NumPy .npy headers: the magic, the version, and the Python dict literal that describes the
 * array ({'descr': '<f4', 'fortran_order': False, 'shape': (1000, 128), }). */
#ifndef VDB_FORMATS_NPY_H
#define VDB_FORMATS_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "../util/buf.h"
#include "vdb.h"

#define NPY_PREFIX 8 /* "\x93NUMPY", major, minor */

typedef struct npy_info {
	unsigned major, minor;
	char kind;        /* 'f' (the only kind accepted) */
	unsigned itemsize; /* 2, 4 or 8 */
	int big_endian;
	int fortran_order;
	uint64_t rows, cols;
} npy_info;

/* Checks the 8-byte prefix; sets *len_bytes to the size of the header-length field (2 for
 * version 1, 4 for versions 2 and 3). */
vdb_status npy_check_prefix(const unsigned char *p, size_t n, npy_info *info, unsigned *len_bytes,
			    vdb_error *err);

/* Parses the header dict text (without the prefix and length field). Refuses what vdb
 * cannot load with a message naming it: object, structured or non-float dtypes, a rank
 * other than 2, missing keys. */
vdb_status npy_parse_header(const char *text, size_t len, npy_info *info, vdb_error *err);

/* Appends a complete version 1.0 header for a C-order little-endian float32 array
 * (rows, cols), padded so that the data starts at a multiple of 64 bytes. */
int npy_write_header(vdb_buf *out, uint64_t rows, uint64_t cols);

#endif
