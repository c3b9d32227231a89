/* A line reader over an input stream: the JSON-lines inputs of the loader and of query
 * streams. Lines longer than a limit are never held whole: they are skipped (and their bytes
 * passed to an optional sink, for a rejects file) and reported as too long. */
#ifndef VDB_FORMATS_LINES_H
#define VDB_FORMATS_LINES_H

#include <stddef.h>
#include <stdint.h>

#include "vdb_io.h"

typedef struct vdb_lines {
	vdb_istream *in;
	const char *name; /* for messages: the file name, or NULL for standard input */
	char *buf;
	size_t cap, start, end;
	size_t max_line;
	uint64_t lineno;
	int eof;
	/* Optional: receives the bytes of lines over max_line, in pieces as they are read;
	 * returns 0, or an errno value (kept in overflow_errno, and then no more is passed). */
	int (*overflow)(void *ctx, const char *p, size_t n);
	void *overflow_ctx;
	int overflow_errno;
	vdb_error err; /* the stream's error when vdb_lines_next returns VDB_LINE_ERROR */
} vdb_lines;

enum {
	VDB_LINE_OK = 1,
	VDB_LINE_EOF = 0,
	VDB_LINE_ERROR = -1,     /* err says why (VDB_EIO, VDB_EDATA, VDB_ENOMEM) */
	VDB_LINE_TOO_LONG = -2,  /* the whole line was consumed (and passed to overflow) */
	VDB_LINE_CANCELLED = -3, /* the stream's cancel asked to stop */
};

void vdb_lines_init(vdb_lines *l, vdb_istream *in, const char *name, size_t max_line);
void vdb_lines_free(vdb_lines *l);
/* The next line without its '\n' (and a trailing '\r'; the first line without a UTF-8 byte
 * order mark), valid until the next call. */
int vdb_lines_next(vdb_lines *l, const char **line, size_t *len);
/* 1 when the next line can be had without blocking (buffered, or the input is readable). */
int vdb_lines_ready(vdb_lines *l);
/* vdb_lines_ready, waiting up to `seconds` for the input to become readable. */
int vdb_lines_wait(vdb_lines *l, double seconds);
/* 1 when line[0..len) holds only spaces, tabs and carriage returns. */
int vdb_line_is_blank(const char *line, size_t len);
/* "FILE: line N" or "line N" (standard input), for messages about a line. */
const char *vdb_line_location(const char *name, uint64_t lineno, char *buf, size_t size);

#endif
