/* Shared pieces of the vdb-* commands: messages, the exit-code table, option parsing and
 * signals. Everything else a command does goes through libvdb (vdb.h, vdb_io.h,
 * vdb_admin.h). */
#ifndef VDB_CMD_COMMON_H
#define VDB_CMD_COMMON_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "vdb_admin.h"

/* One exit-code table for every command (sysexits(3) values). */
enum {
	EXIT_OK = 0,
	EXIT_USAGE = 64,    /* bad command line */
	EXIT_DATA = 65,     /* bad input data or a corrupt database file */
	EXIT_NOINPUT = 66,  /* missing input file, database, collection or record */
	EXIT_INTERNAL = 70, /* internal error (a bug) or out of memory */
	EXIT_CANTCREAT = 73,/* cannot create (already exists) */
	EXIT_IO = 74,       /* I/O error */
	EXIT_LOCKED = 75,   /* the collection is locked by another writer: try again */
};

#define CLI_EXIT_TABLE                                                                        \
	"Exit status:\n"                                                                      \
	"  0   success\n"                                                                     \
	"  64  usage error\n"                                                                 \
	"  65  invalid input data, or a damaged database file\n"                              \
	"  66  missing input file, database, collection or record\n"                          \
	"  70  internal error\n"                                                              \
	"  73  cannot create (already exists)\n"                                              \
	"  74  I/O error (disk full, read or write failure)\n"                                \
	"  75  locked by another writer (try again later)\n"                                  \
	"  130/143  interrupted by SIGINT/SIGTERM\n"

extern const char *cli_prog;
/* Optional: called before any message is printed on stderr (the progress line erases
 * itself there). */
extern void (*cli_before_message)(void);

void cli_init(const char *prog, char **argv);
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints the error and "Try 'PROG --help'." and returns EXIT_USAGE. */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int cli_exit_code(vdb_status s);
/* After option parsing: 0 when exactly one operand (the database) remains, else prints the
 * usage error and returns EXIT_USAGE. */
int cli_one_operand(int argc, int optind_);
/* Prints "PROG: message" for a library error and returns the exit code. */
int cli_fail(const vdb_error *err);
void cli_version(void);
/* A vdb_cancel that stops the library once *flag is set (by a signal handler). */
vdb_cancel cli_cancel_on(volatile sig_atomic_t *flag);
/* Whether an output operand is a terminal: "-" with standard output on one, or a path
 * naming a terminal device (-o /dev/stdout, -o /dev/tty). Binary output refuses both. */
int cli_output_is_terminal(const char *path);
/* "1 record" / "2 records": n with the noun in the number English wants ("record", or
 * the plural given as `many`). */
const char *cli_count(char *buf, size_t cap, uint64_t n, const char *one, const char *many);
#define CLI_COUNT(n, one, many) cli_count((char[48]){0}, 48, (n), (one), (many))

/* The options every command shares, for the default branch of its getopt switch: -q sets
 * *quiet (when not NULL) and returns CLI_NEXT; -h and -V print the help or the version and
 * return the exit status; anything else is a usage error (EXIT_USAGE). */
#define CLI_NEXT (-1)
int cli_common_option(int c, void (*usage)(void), int *quiet);

/* The options of the commands that change one collection under its writer lock and take
 * nothing else (vdb-drop, vdb-rename): -c NAME (required: a usage error without it),
 * --wait SECONDS (default: fail at once when the lock is held) and the common ones. On success fills *name, o->wait_seconds
 * and *quiet and returns CLI_NEXT, with optind at the operands; else the exit status (a
 * usage error is reported). */
int cli_parse_locked_collection(int argc, char **argv, void (*usage)(void), const char **name,
				vdb_writer_options *o, int *quiet);
/* The usage error for getopt's ':' (a missing value) or '?' (an unknown option): one line
 * naming the option (and, for a misspelt long option, the one meant: "did you mean
 * '--batch'?"), then "Try 'PROG --help'". Returns EXIT_USAGE. */
int cli_option_error(int c);

/* getopt_long, remembering the long options for cli_option_error's suggestions. */
struct option;
int cli_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts);

/* Of the n candidates, the one word is most likely a misspelling of (at most 1 edit away
 * for a word of up to 4 characters, 2 for longer; an edit inserts, deletes, replaces or
 * swaps two neighbouring characters), or NULL. */
const char *cli_closest(const char *word, size_t len, const char *const *cands, size_t n);

/* Parse a decimal integer in [min, max]; on failure prints "invalid value for OPTION" and
 * returns -1. Accepts K, M, G suffixes (powers of 1024) when `suffixes` is set. */
int cli_parse_u64(const char *s, const char *option, uint64_t min, uint64_t max, int suffixes,
		  uint64_t *out);
/* A decimal number in [min, max] (NaN and infinities refused), as cli_parse_u64. */
int cli_parse_double(const char *s, const char *option, double min, double max, double *out);
int cli_parse_seconds(const char *s, const char *option, double *out);
/* An ISO 8601 time (YYYY-MM-DD[THH:MM[:SS]][Z|+-HH:MM]; UTC without an offset) as seconds
 * since the epoch; -1 (reported as a usage error) when it is not one. */
int cli_parse_time(const char *s, const char *option, int64_t *out);

/* Compiles a filter given on the command line (--filter JSON); on failure prints
 * "OPTION: why" as a usage error and returns EXIT_USAGE. */
int cli_parse_filter(const char *json, const char *option, vdb_filter **out);

/* Writes to stdout and reports failures (EPIPE or disk full) at exit. */
int cli_close_stdout(void);

double cli_now(void);

/* Threads to use when no option says: $VDB_THREADS when it is an integer from 1 to 64, else
 * one per CPU, at most 64. The commands pass it to libvdb (which reads no environment):
 * graph builds of ingest and compact, query answering, snapshot compression. */
unsigned cli_default_threads(void);
/* -j/--threads N: 1 to 64 (a usage error, reported, otherwise). */
int cli_parse_threads(const char *arg, uint64_t *out);

/* Installs handler for SIGINT and SIGTERM without SA_RESTART, so that a blocked read returns
 * EINTR and the command can stop at the next safe point. */
void cli_catch_stop_signals(void (*handler)(int));

#endif
