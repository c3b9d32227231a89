/* Growable byte buffer used across libvdb for building records, output lines and file
 * images. Appends never fail silently: they return -1 on allocation failure and leave the
 * buffer as it was, so callers can report VDB_ENOMEM. */
#ifndef VDB_UTIL_BUF_H
#define VDB_UTIL_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct vdb_buf {
	char *data;
	size_t len;
	size_t cap;
} vdb_buf;

#define VDB_BUF_INIT {NULL, 0, 0}

/* Ensures room for `extra` more bytes; 0 on success, -1 when memory is exhausted. */
int vdb_buf_reserve(vdb_buf *b, size_t extra);
int vdb_buf_append(vdb_buf *b, const void *p, size_t n);
int vdb_buf_putc(vdb_buf *b, char c);
int vdb_buf_puts(vdb_buf *b, const char *s);
int vdb_buf_printf(vdb_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int vdb_buf_put_u32(vdb_buf *b, uint32_t v); /* little-endian */
int vdb_buf_put_u64(vdb_buf *b, uint64_t v); /* little-endian */
void vdb_buf_reset(vdb_buf *b);              /* len = 0, keeps memory */
void vdb_buf_free(vdb_buf *b);               /* accepts a zeroed buffer */

#endif
