/* Internals of the input streams for readers that can do better than copying. */
#ifndef VDB_UTIL_STREAM_H
#define VDB_UTIL_STREAM_H

#include <stdint.h>

#include "vdb_io.h"

/* For a plain (not compressed) regular file with nothing buffered: its descriptor, with
 * *offset where the next read starts and *size the file's size; -1 otherwise. A reader may
 * then map the file instead of reading it, and call vdb_istream_skip for what it used. */
int vdb_istream_file(vdb_istream *s, uint64_t *offset, uint64_t *size);
/* Moves the next read of such a stream n bytes on, counted as read. */
vdb_status vdb_istream_skip(vdb_istream *s, uint64_t n, vdb_error *err);
/* vdb_istream_ready, waiting up to `seconds` for input to arrive. */
int vdb_istream_wait(vdb_istream *s, double seconds);
/* Seconds on the monotonic clock. */
double vdb_monotonic(void);

#endif
