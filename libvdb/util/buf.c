/* Growable byte buffer: geometric growth, explicit failure on exhaustion. */
#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int vdb_buf_reserve(vdb_buf *b, size_t extra)
{
	if (extra <= b->cap - b->len)
		return 0;
	if (extra > SIZE_MAX / 2 - b->len)
		return -1;
	size_t need = b->len + extra;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	char *p = realloc(b->data, cap);
	if (!p)
		return -1;
	b->data = p;
	b->cap = cap;
	return 0;
}

int vdb_buf_append(vdb_buf *b, const void *p, size_t n)
{
	if (n == 0)
		return 0;
	if (vdb_buf_reserve(b, n))
		return -1;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

int vdb_buf_putc(vdb_buf *b, char c)
{
	if (b->len == b->cap && vdb_buf_reserve(b, 1))
		return -1;
	b->data[b->len++] = c;
	return 0;
}

int vdb_buf_puts(vdb_buf *b, const char *s)
{
	return vdb_buf_append(b, s, strlen(s));
}

int vdb_buf_printf(vdb_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char tmp[256];
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	if ((size_t)n < sizeof tmp)
		return vdb_buf_append(b, tmp, (size_t)n);
	if (vdb_buf_reserve(b, (size_t)n + 1))
		return -1;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

int vdb_buf_put_u32(vdb_buf *b, uint32_t v)
{
	unsigned char t[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
			      (unsigned char)(v >> 24)};
	return vdb_buf_append(b, t, 4);
}

int vdb_buf_put_u64(vdb_buf *b, uint64_t v)
{
	if (vdb_buf_put_u32(b, (uint32_t)v))
		return -1;
	if (vdb_buf_put_u32(b, (uint32_t)(v >> 32))) {
		b->len -= 4;
		return -1;
	}
	return 0;
}

void vdb_buf_reset(vdb_buf *b)
{
	b->len = 0;
}

void vdb_buf_free(vdb_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}
