/* A progress line on stderr for long-running commands: rows, bytes, rate and, when the
 * total size is known, the ETA. Drawn only when stderr is a terminal and the command is not
 * quiet, at most a few times per second, and erased before the command prints anything
 * else there (call cli_progress_clear before a message, cli_progress_end at the end). */
#ifndef VDB_CMD_PROGRESS_H
#define VDB_CMD_PROGRESS_H

#include <stdint.h>

typedef struct cli_progress {
	int on;             /* drawing at all (stderr is a terminal, not quiet) */
	int drawn;          /* a line is on the screen */
	const char *unit;   /* "records", "rows", ...; NULL: bytes only */
	uint64_t total;     /* total bytes, or 0 when unknown */
	uint64_t total_rows; /* or the total rows (set after init), for the ETA */
	double t0, next;    /* start; earliest time for the next redraw */
	unsigned calls;     /* updates since the last clock check */
	int rows_only;      /* work counted in rows alone (cli_progress_rows) */
} cli_progress;

/* total_bytes: 0 when unknown (standard input, compressed input is measured in the bytes
 * read from the file, so its size still gives the ETA). */
void cli_progress_init(cli_progress *p, int quiet, const char *unit, uint64_t total_bytes);
/* Cheap enough to call per record: the clock is read every 256 calls only. */
void cli_progress_update(cli_progress *p, uint64_t rows, uint64_t bytes);
/* The same for coarse steps (a block of rows stored at once): reads the clock every call. */
void cli_progress_now(cli_progress *p, uint64_t rows, uint64_t bytes);
/* For work counted in bytes alone (unit NULL at init), reported in coarse steps: every call
 * reads the clock. Draws "DONE of TOTAL  RATE  PERCENT  ETA". */
void cli_progress_bytes(cli_progress *p, uint64_t done, uint64_t total);
/* The same with the signature of libvdb's progress callbacks (ctx: the cli_progress). */
void cli_progress_bytes_cb(void *ctx, uint64_t done, uint64_t total);
/* For work counted in rows alone (unit set at init), in coarse steps: every call reads the
 * clock. Draws "DONE UNIT  RATE UNIT/s  PERCENT  ETA". */
void cli_progress_rows(cli_progress *p, uint64_t done, uint64_t total);
void cli_progress_rows_cb(void *ctx, uint64_t done, uint64_t total);
/* Erases the line (before printing a message on stderr); the next update redraws it. */
void cli_progress_clear(cli_progress *p);
void cli_progress_end(cli_progress *p);

#endif
