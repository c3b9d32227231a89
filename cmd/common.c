/* Shared CLI helpers: the message format ("vdb-ingest: line 3: ..."), exit codes, option
 * value parsing with range checks, and the line reader used for JSON-lines input. */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vdb_config.h"

const char *cli_prog = "vdb";
void (*cli_before_message)(void);

/* Files are read through mappings (segments, and .npy/.fvecs inputs), and a mapped file that
 * another program truncates raises SIGBUS at the next read past its new end. By default that
 * is a bare "Bus error" (exit 135); this says what happened, and exits 74. Stopping there
 * is as safe as any kill: a batch is committed whole or not at all, so nothing partial is
 * ever visible. The message is made at start: a handler may only write(2) and _exit. */
static char sigbus_msg[256];
static size_t sigbus_len;

static void on_sigbus(int sig)
{
	(void)sig;
	ssize_t w = write(STDERR_FILENO, sigbus_msg, sigbus_len);
	(void)w;
	_exit(EXIT_IO);
}

/* The command line, for cli_option_error. */
static char **cli_argv;

void cli_init(const char *prog, char **argv)
{
	cli_prog = prog;
	cli_argv = argv;
	/* On a terminal a progress line may be showing: the message starts on a line of its own. */
	int n = snprintf(sigbus_msg, sizeof sigbus_msg,
			 "%s%s: a file being read shrank (truncated by another program?); stopped "
			 "without committing the batch in progress\n",
			 isatty(STDERR_FILENO) ? "\n" : "", prog);
	sigbus_len = n > 0 && (size_t)n < sizeof sigbus_msg ? (size_t)n : 0;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigbus;
	sigaction(SIGBUS, &sa, NULL);
}

void cli_error(const char *fmt, ...)
{
	va_list ap;
	fflush(stdout);
	if (cli_before_message)
		cli_before_message();
	fprintf(stderr, "%s: ", cli_prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int cli_usage_error(const char *fmt, ...)
{
	va_list ap;
	if (cli_before_message)
		cli_before_message();
	fprintf(stderr, "%s: ", cli_prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s --help' for more information.\n", cli_prog);
	return EXIT_USAGE;
}

int cli_one_operand(int argc, int optind_)
{
	if (optind_ == argc - 1)
		return 0;
	return cli_usage_error(optind_ >= argc ? "missing database directory operand"
					       : "too many operands");
}

int cli_exit_code(vdb_status s)
{
	switch (s) {
	case VDB_OK: return EXIT_OK;
	case VDB_EINVAL: return EXIT_USAGE;
	case VDB_EDATA:
	case VDB_ECORRUPT: return EXIT_DATA;
	case VDB_ENOENT: return EXIT_NOINPUT;
	case VDB_EEXIST: return EXIT_CANTCREAT;
	case VDB_EIO: return EXIT_IO;
	case VDB_ELOCKED: return EXIT_LOCKED;
	case VDB_EINTR: return 128 + SIGINT;
	case VDB_ENOMEM:
	case VDB_EINTERNAL: return EXIT_INTERNAL;
	}
	return EXIT_INTERNAL;
}

int cli_fail(const vdb_error *err)
{
	cli_error("%s", err->message);
	return cli_exit_code(err->code);
}

int cli_parse_filter(const char *json, const char *option, vdb_filter **out)
{
	vdb_error err;
	vdb_status st = vdb_filter_parse(json, strlen(json), out, &err);
	if (st == VDB_EINVAL) {
		const char *why = err.message;
		if (!strncmp(why, "filter: ", 8)) /* the option already says what it is */
			why += 8;
		return cli_usage_error("%s: %s", option, why);
	}
	return st ? cli_fail(&err) : 0;
}

static int flag_set(void *ctx)
{
	return *(volatile sig_atomic_t *)ctx != 0;
}

vdb_cancel cli_cancel_on(volatile sig_atomic_t *flag)
{
	return (vdb_cancel){flag_set, (void *)flag};
}

int cli_output_is_terminal(const char *path)
{
	if (!path || !strcmp(path, "-"))
		return isatty(STDOUT_FILENO);
	/* Only character devices are opened to ask: opening a FIFO to look would hand its
	 * reader an end of file. */
	struct stat st;
	if (stat(path, &st) < 0 || !S_ISCHR(st.st_mode))
		return 0;
	int fd = open(path, O_WRONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	int tty = fd >= 0 && isatty(fd);
	if (fd >= 0)
		close(fd);
	return tty;
}

const char *cli_count(char *buf, size_t cap, uint64_t n, const char *one, const char *many)
{
	snprintf(buf, cap, "%llu %s", (unsigned long long)n, n == 1 ? one : many);
	return buf;
}

void cli_version(void)
{
	printf("%s (vdb) %s\n", cli_prog, VDB_VERSION);
}

int cli_common_option(int c, void (*usage)(void), int *quiet)
{
	switch (c) {
	case 'q':
		if (quiet)
			*quiet = 1;
		return CLI_NEXT;
	case 'h': usage(); return cli_close_stdout();
	case 'V': cli_version(); return cli_close_stdout();
	default: return cli_option_error(c);
	}
}

int cli_option_error(int c)
{
	/* Every option string starts with ':', so getopt prints nothing itself: ':' is a
	 * missing value, '?' an unknown option (or a value given to a flag). */
	const char *arg = cli_argv && optind > 0 ? cli_argv[optind - 1] : NULL;
	int is_long = arg && !strncmp(arg, "--", 2);
	int n = is_long ? (int)strcspn(arg, "=") : 0;
	if (c == ':' && is_long)
		return cli_usage_error("option '%.*s' needs a value", n, arg);
	if (c == ':')
		return cli_usage_error("option '-%c' needs a value", optopt);
	if (is_long && optopt && arg[n] == '=')
		return cli_usage_error("option '%.*s' takes no value", n, arg);
	if (is_long)
		return cli_usage_error("unknown option '%.*s'", n, arg);
	if (optopt > ' ' && optopt < 127)
		return cli_usage_error("unknown option '-%c'", optopt);
	return cli_usage_error("unknown option");
}

int cli_parse_u64(const char *s, const char *option, uint64_t min, uint64_t max, int suffixes,
		  uint64_t *out)
{
	char *end;
	errno = 0;
	if (*s < '0' || *s > '9')
		goto bad;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno)
		goto bad;
	if (suffixes && *end) {
		int shift = *end == 'K' || *end == 'k' ? 10 : *end == 'M' || *end == 'm' ? 20
						       : *end == 'G' || *end == 'g' ? 30 : -1;
		if (shift < 0 || end[1] || v > (UINT64_MAX >> shift))
			goto bad;
		v <<= shift;
		end++;
	}
	if (*end || v < min || v > max)
		goto bad;
	*out = v;
	return 0;
bad:
	cli_usage_error("invalid value '%s' for %s (expected an integer from %llu to %llu%s)", s,
			option, (unsigned long long)min, (unsigned long long)max,
			suffixes ? ", optionally with K, M or G" : "");
	return -1;
}

int cli_parse_seconds(const char *s, const char *option, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= 0) || v > 1e9) {
		cli_usage_error("invalid value '%s' for %s (expected seconds, >= 0)", s, option);
		return -1;
	}
	*out = v;
	return 0;
}

void cli_lines_init(cli_lines *l, int fd, const char *name, size_t max_line,
		    volatile sig_atomic_t *cancel)
{
	memset(l, 0, sizeof *l);
	l->fd = fd;
	l->name = name;
	l->max_line = max_line;
	l->cancel = cancel;
}

void cli_lines_free(cli_lines *l)
{
	free(l->buf);
	l->buf = NULL;
}

/* Reads more input after the buffered bytes; 1 read something, 0 end of input, or <0. */
static int fill(cli_lines *l)
{
	if (l->start > 0) {
		memmove(l->buf, l->buf + l->start, l->end - l->start);
		l->end -= l->start;
		l->start = 0;
	}
	if (l->end == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 1 << 20;
		char *b = realloc(l->buf, cap);
		if (!b)
			return LINE_ERROR;
		l->buf = b;
		l->cap = cap;
	}
	if (l->src) {
		size_t got;
		vdb_status st = vdb_istream_read(l->src, l->buf + l->end, l->cap - l->end, &got,
						 &l->src_err);
		if (st)
			return st == VDB_EINTR ? LINE_CANCELLED : LINE_ERROR;
		l->end += got;
		l->eof = got == 0;
		return got > 0;
	}
	for (;;) {
		if (l->cancel && *l->cancel)
			return LINE_CANCELLED;
		ssize_t r = read(l->fd, l->buf + l->end, l->cap - l->end);
		if (r < 0 && errno == EINTR)
			continue; /* the loop re-checks the cancel flag */
		if (r < 0)
			return LINE_ERROR;
		if (r == 0) {
			l->eof = 1;
			return 0;
		}
		l->end += (size_t)r;
		return 1;
	}
}

/* Passes the bytes of an over-long line to the overflow file, if any. */
static void overflow(cli_lines *l, const char *p, size_t n)
{
	if (l->overflow && !l->overflow_error && n && fwrite(p, 1, n, l->overflow) != n) {
		l->overflow_error = 1;
		l->overflow_errno = errno;
	}
}

int cli_lines_next(cli_lines *l, const char **line, size_t *len)
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
				return LINE_TOO_LONG;
			}
			if (n && s[n - 1] == '\r')
				n--;
			*line = s;
			*len = n;
			return LINE_OK;
		}
		if (l->eof)
			return discarding ? (l->lineno++, LINE_TOO_LONG) : LINE_EOF;
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

int cli_is_blank(const char *line, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (line[i] != ' ' && line[i] != '\t' && line[i] != '\r')
			return 0;
	return 1;
}

int cli_lines_ready(cli_lines *l)
{
	if (l->eof || (l->buf && memchr(l->buf + l->start, '\n', l->end - l->start)))
		return 1;
	if (l->src)
		return vdb_istream_ready(l->src);
	struct pollfd p = {l->fd, POLLIN, 0};
	return poll(&p, 1, 0) > 0;
}

int cli_close_stdout(void)
{
	if (fflush(stdout) != 0 || ferror(stdout) || fclose(stdout) != 0) {
		if (errno == EPIPE)
			return EXIT_OK; /* the reader went away: not our error to report */
		cli_error("write error on standard output: %s", strerror(errno));
		return EXIT_IO;
	}
	return EXIT_OK;
}

const char *cli_format_of(const char *path)
{
	size_t n = strlen(path);
	if (n > 4 && !strcmp(path + n - 4, ".zst"))
		n -= 4;
	static const struct {
		const char *ext, *format;
	} ext[] = {{".jsonl", "jsonl"}, {".ndjson", "jsonl"}, {".json", "jsonl"},
		   {".npy", "npy"},     {".fvecs", "fvecs"},    {".bvecs", "bvecs"},
		   {".csv", "csv"}};
	for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
		size_t e = strlen(ext[i].ext);
		if (n > e && !strncmp(path + n - e, ext[i].ext, e))
			return ext[i].format;
	}
	return NULL;
}

int cli_name_index(const char *name, const char *const *names, int n)
{
	for (int i = 0; name && i < n; i++)
		if (!strcmp(name, names[i]))
			return i;
	return -1;
}

double cli_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void cli_catch_stop_signals(void (*handler)(int))
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = handler;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

unsigned cli_default_threads(void)
{
	const char *env = getenv("VDB_THREADS");
	char *end;
	long v = env ? strtol(env, &end, 10) : 0;
	if (env && *env && !*end && v >= 1 && v <= 64)
		return (unsigned)v;
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > 64 ? 64 : (unsigned)n;
}
