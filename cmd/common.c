/* Shared CLI helpers: the message format ("vdb-ingest: line 3: ..."), exit codes, option
 * value parsing with range checks, signals. */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
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

/* The command line and the long options, for cli_option_error. */
static char **cli_argv;
static const struct option *cli_longopts;

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

/* The handler stores the flag atomically and libvdb's threads read it so: a signal flag read
 * from another thread is otherwise a data race. */
static int flag_set(void *ctx)
{
	return __atomic_load_n((volatile sig_atomic_t *)ctx, __ATOMIC_RELAXED) != 0;
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

int cli_parse_locked_collection(int argc, char **argv, void (*usage)(void), const char **name,
				vdb_writer_options *o, int *quiet)
{
	static const struct option opts[] = {{"collection", required_argument, NULL, 'c'},
					     {"wait", required_argument, NULL, 'W'},
					     {"quiet", no_argument, NULL, 'q'},
					     {"help", no_argument, NULL, 'h'},
					     {"version", no_argument, NULL, 'V'},
					     {NULL, 0, NULL, 0}};
	*name = NULL;
	o->wait_seconds = 0;
	int c, r;
	while ((c = cli_getopt(argc, argv, ":c:qhV", opts)) != -1) {
		if (c == 'c')
			*name = optarg;
		else if (c == 'W' && cli_parse_seconds(optarg, "--wait", &o->wait_seconds))
			return EXIT_USAGE;
		else if (c != 'W' && (r = cli_common_option(c, usage, quiet)) != CLI_NEXT)
			return r;
	}
	if (!*name)
		return cli_usage_error("which collection? -c NAME is required");
	return CLI_NEXT;
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
	if (is_long) {
		const char *names[128];
		size_t k = 0;
		for (const struct option *o = cli_longopts; o && o->name && k < 128; o++)
			names[k++] = o->name;
		const char *meant = cli_closest(arg + 2, (size_t)n - 2, names, k);
		if (meant)
			return cli_usage_error("unknown option '%.*s'; did you mean '--%s'?", n, arg,
					       meant);
		return cli_usage_error("unknown option '%.*s'", n, arg);
	}
	if (optopt > ' ' && optopt < 127)
		return cli_usage_error("unknown option '-%c'", optopt);
	return cli_usage_error("unknown option");
}

int cli_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts)
{
	cli_longopts = longopts;
	return getopt_long(argc, argv, shortopts, longopts, NULL);
}

/* Edits from a[0..la) to b[0..lb) (optimal string alignment), or more than `most` when
 * that is all that matters. */
static size_t edits(const char *a, size_t la, const char *b, size_t lb, size_t most)
{
	enum { MAX = 64 };
	if (la >= MAX || lb >= MAX || (la > lb ? la - lb : lb - la) > most)
		return most + 1;
	size_t d[MAX + 1][MAX + 1];
	for (size_t i = 0; i <= la; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++)
		for (size_t j = 1; j <= lb; j++) {
			size_t best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
			if (d[i - 1][j] + 1 < best)
				best = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    d[i - 2][j - 2] + 1 < best)
				best = d[i - 2][j - 2] + 1;
			d[i][j] = best;
		}
	return d[la][lb];
}

const char *cli_closest(const char *word, size_t len, const char *const *cands, size_t n)
{
	size_t most = len <= 4 ? 1 : 2, best = most + 1;
	const char *meant = NULL;
	for (size_t i = 0; i < n; i++) {
		size_t e = edits(word, len, cands[i], strlen(cands[i]), most);
		if (e < best) {
			best = e;
			meant = cands[i];
		}
	}
	return meant;
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

int cli_parse_double(const char *s, const char *option, double min, double max, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= min) || v > max) {
		cli_usage_error("invalid value '%s' for %s (expected a number from %g to %g)", s,
				option, min, max);
		return -1;
	}
	*out = v;
	return 0;
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

int cli_parse_time(const char *s, const char *option, int64_t *out)
{
	/* YYYY-MM-DD, then optionally [T ]HH:MM[:SS], then optionally Z or +-HH[:]MM. */
	struct tm tm = {0};
	int n = 0, off = 0, len = (int)strlen(s);
	int ok = sscanf(s, "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &n) == 3 &&
		 n == 10;
	if (ok && (s[n] == 'T' || s[n] == ' ')) {
		int m = 0;
		ok = sscanf(s + n + 1, "%2d:%2d%n", &tm.tm_hour, &tm.tm_min, &m) == 2 && m == 5;
		n += 1 + m;
		if (ok && s[n] == ':') {
			ok = sscanf(s + n + 1, "%2d%n", &tm.tm_sec, &m) == 1 && m == 2;
			n += 1 + m;
		}
	}
	if (ok && s[n] == 'Z') {
		n++;
	} else if (ok && (s[n] == '+' || s[n] == '-')) {
		int h, mi, m = 0;
		ok = (sscanf(s + n + 1, "%2d:%2d%n", &h, &mi, &m) == 2 && m == 5) ||
		     (sscanf(s + n + 1, "%2d%2d%n", &h, &mi, &m) == 2 && m == 4);
		off = (s[n] == '-' ? -1 : 1) * (h * 3600 + mi * 60);
		n += 1 + m;
	}
	ok = ok && n == len && tm.tm_mon >= 1 && tm.tm_mon <= 12 && tm.tm_mday >= 1 &&
	     tm.tm_mday <= 31 && tm.tm_hour <= 23 && tm.tm_min <= 59 && tm.tm_sec <= 60;
	if (!ok) {
		cli_usage_error("invalid value '%s' for %s (expected an ISO 8601 time such as "
				"2026-12-07T03:00:00Z; UTC unless it has an offset)", s, option);
		return -1;
	}
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	*out = (int64_t)timegm(&tm) - off;
	return 0;
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

int cli_parse_threads(const char *arg, uint64_t *out)
{
	return cli_parse_u64(arg, "--threads", 1, 64, 0, out);
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
