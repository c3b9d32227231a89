/* libvdb's zstd streams: a compressing writer to a file descriptor and a decompressing
 * reader from one that enforces a window limit and, for archives, an output budget. The
 * byte streams of the formats (vdb_istream, vdb_ostream) and snapshot archives both use
 * them. */
#ifndef VDB_UTIL_ZSTREAM_H
#define VDB_UTIL_ZSTREAM_H

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
/* Optional: the compressed bytes go to sink(ctx, ...) instead of fd (whose writes and
 * messages the sink then owns). */
typedef vdb_status (*vdb_zsink)(void *ctx, const void *p, size_t n, vdb_error *err);
void vdb_zwriter_set_sink(vdb_zwriter *w, vdb_zsink sink, void *ctx);
vdb_status vdb_zwriter_write(vdb_zwriter *w, const void *p, size_t n, vdb_error *err);
/* Writes out what is buffered, the frame staying open (a reader sees it is incomplete). */
vdb_status vdb_zwriter_flush(vdb_zwriter *w, vdb_error *err);
/* Ends the frame and flushes everything to fd. */
vdb_status vdb_zwriter_finish(vdb_zwriter *w, vdb_error *err);
uint64_t vdb_zwriter_bytes_out(const vdb_zwriter *w);
void vdb_zwriter_free(vdb_zwriter *w);

typedef struct vdb_zreader vdb_zreader;

/* `what` names fd in the messages of an archive ("truncated archive (it ends inside ENTRY)",
 * VDB_ECORRUPT); NULL makes a byte stream's reader, whose messages name no input ("zstd:
 * the compressed data is truncated", VDB_EDATA) for the caller to prefix. */
vdb_status vdb_zreader_open(int fd, const char *what, const vdb_cancel *cancel,
			    vdb_zreader **out, vdb_error *err);
/* Bytes of the stream already read from fd (at most its first 512, e.g. to sniff the zstd
 * magic), decoded before what follows them in fd. Before the first read only. */
void vdb_zreader_prefix(vdb_zreader *r, const void *p, size_t n);
/* 1 when the next read returns without waiting for input. */
int vdb_zreader_ready(vdb_zreader *r);
/* Bytes read from fd so far (the prefix included). */
uint64_t vdb_zreader_raw_bytes(const vdb_zreader *r);
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
