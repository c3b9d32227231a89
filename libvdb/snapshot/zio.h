/* zstd streams for snapshot archives: a compressing writer to a file descriptor and a
 * decompressing reader from one that enforces a window limit and an output budget. */
#ifndef VDB_SNAPSHOT_ZIO_H
#define VDB_SNAPSHOT_ZIO_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "vdb.h"

/* A reader refuses frames whose window is over 2^27 bytes (128 MiB of decoder memory);
 * vdb's writer never needs more than zstd's level 19 window (2^23). */
#define VDB_ZSTD_WINDOW_LOG_MAX 27

typedef struct vdb_zwriter vdb_zwriter;

/* level 1..19, threads 0 (in this thread) or more workers. `what` names fd in messages. */
vdb_status vdb_zwriter_open(int fd, const char *what, int level, int threads,
			    vdb_zwriter **out, vdb_error *err);
vdb_status vdb_zwriter_write(vdb_zwriter *w, const void *p, size_t n, vdb_error *err);
/* Ends the frame and flushes everything to fd. */
vdb_status vdb_zwriter_finish(vdb_zwriter *w, vdb_error *err);
uint64_t vdb_zwriter_bytes_out(const vdb_zwriter *w);
void vdb_zwriter_free(vdb_zwriter *w);

typedef struct vdb_zreader vdb_zreader;

vdb_status vdb_zreader_open(int fd, const char *what, const vdb_cancel *cancel,
			    vdb_zreader **out, vdb_error *err);
/* Decompressed bytes allowed in total: more is VDB_ECORRUPT (a decompression bomb or a
 * damaged archive), not a reason to keep writing. */
void vdb_zreader_set_budget(vdb_zreader *r, uint64_t max_out);
/* Decompression runs in a thread of the reader's own, a few MiB ahead of the caller.
 * Reads exactly n bytes; *got < n only at the end of the stream (a complete frame). A
 * stream cut inside a frame, a bad frame checksum, garbage between frames, or output
 * past the budget are VDB_ECORRUPT; `entry` names what was being read. */
vdb_status vdb_zreader_read(vdb_zreader *r, void *p, size_t n, size_t *got, const char *entry,
			    vdb_error *err);
/* The same without a copy: *p points at the next *got bytes of the stream (1..max, fewer
 * than max at the end of an internal buffer), valid until the next call on r; *got == 0
 * at the end of the stream. */
vdb_status vdb_zreader_next(vdb_zreader *r, size_t max, const void **p, size_t *got,
			    const char *entry, vdb_error *err);
void vdb_zreader_free(vdb_zreader *r);

#endif
