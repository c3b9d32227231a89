/* The line reader of JSON-lines inputs (see lines.h). */
#include "lines.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util/error.h"
#include "../util/stream.h"

void vdb_lines_init(vdb_lines *l, vdb_istream *in, const char *name, size_t max_line)
{
	memset(l, 0, sizeof *l);
	l->in = in;
	l->name = name;
	l->max_line = max_line;
}

void vdb_lines_free(vdb_lines *l)
{
	free(l->buf);
	l->buf = NULL;
}

/* Reads more input after the buffered bytes: 1 read something, 0 the end, or < 0. */
static int fill(vdb_lines *l)
{
	if (l->start > 0) {
		memmove(l->buf, l->buf + l->start, l->end - l->start);
		l->end -= l->start;
		l->start = 0;
	}
	if (l->end == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 1 << 20;
		char *b = realloc(l->buf, cap);
		if (!b) {
			vdb_err_nomem(&l->err);
			return VDB_LINE_ERROR;
		}
		l->buf = b;
		l->cap = cap;
	}
	size_t got;
	vdb_status st = vdb_istream_read(l->in, l->buf + l->end, l->cap - l->end, &got, &l->err);
	if (st)
		return st == VDB_EINTR ? VDB_LINE_CANCELLED : VDB_LINE_ERROR;
	l->end += got;
	l->eof = got == 0;
	return got > 0;
}

/* Passes the bytes of an over-long line to the overflow sink, if any. */
static void overflow(vdb_lines *l, const char *p, size_t n)
{
	if (l->overflow && !l->overflow_errno && n)
		l->overflow_errno = l->overflow(l->overflow_ctx, p, n);
}

int vdb_lines_next(vdb_lines *l, const char **line, size_t *len)
{
	size_t scanned = 0;
	int discarding = 0;
	for (;;) {
		char *s = l->buf + l->start;
		size_t avail = l->end - l->start;
		char *nl = avail > scanned ? memchr(s + scanned, '\n', avail - scanned) : NULL;
		if (nl || (l->eof && avail > 0)) {
			size_t n = nl ? (size_t)(nl - s) : avail;
			l->start += nl ? n + 1 : n;
			l->lineno++;
			if (discarding || n > l->max_line) {
				overflow(l, s, n);
				return VDB_LINE_TOO_LONG;
			}
			if (n && s[n - 1] == '\r')
				n--;
			/* A UTF-8 byte order mark, as Windows tools write at a file's start, is not
			 * part of the first line (CSV input strips it too). */
			if (l->lineno == 1 && n >= 3 && !memcmp(s, "\xEF\xBB\xBF", 3)) {
				s += 3;
				n -= 3;
			}
			*line = s;
			*len = n;
			return VDB_LINE_OK;
		}
		if (l->eof)
			return discarding ? (l->lineno++, VDB_LINE_TOO_LONG) : VDB_LINE_EOF;
		scanned = avail;
		if (avail > l->max_line) {
			/* Over the limit without a newline: pass on what we have, keep skipping. */
			overflow(l, s, avail);
			discarding = 1;
			l->start = l->end;
			scanned = 0;
		}
		int r = fill(l);
		if (r < 0)
			return r;
		if (discarding)
			scanned = 0;
	}
}

int vdb_lines_ready(vdb_lines *l)
{
	if (l->eof || (l->buf && memchr(l->buf + l->start, '\n', l->end - l->start)))
		return 1;
	return vdb_istream_ready(l->in);
}

int vdb_lines_wait(vdb_lines *l, double seconds)
{
	if (vdb_lines_ready(l))
		return 1;
	return vdb_istream_wait(l->in, seconds);
}

int vdb_line_is_blank(const char *line, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (line[i] != ' ' && line[i] != '\t' && line[i] != '\r')
			return 0;
	return 1;
}

const char *vdb_line_location(const char *name, uint64_t lineno, char *buf, size_t size)
{
	if (name)
		snprintf(buf, size, "%s: line %llu", name, (unsigned long long)lineno);
	else
		snprintf(buf, size, "line %llu", (unsigned long long)lineno);
	return buf;
}
