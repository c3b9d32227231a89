/* vdb: the umbrella command, git style: `vdb ingest ARGS` runs vdb-ingest ARGS, found
 * beside this executable first (so an installed or a build tree's vdb runs its own
 * commands), then on PATH. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "common.h"
#include "vdb_config.h"

static const char *const commands[][2] = {
	{"create", "create a collection"},
	{"ingest", "add, replace and delete records (JSON lines, npy, fvecs, CSV, Parquet)"},
	{"query", "nearest-neighbour search, get by id, count"},
	{"export", "write records out (JSON lines, npy, fvecs, CSV, Parquet)"},
	{"compact", "rewrite a collection's segments into one"},
	{"snapshot", "write an online backup (full or incremental)"},
	{"restore", "restore a snapshot, verified and atomic"},
	{"check", "verify every file and structure of a database"},
	{"info", "describe collections: configuration, counts, sizes, writer"},
	{"drop", "remove a collection"},
	{"rename", "rename a collection"},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(void)
{
	printf("Usage: vdb COMMAND [ARGS...]\n"
	       "       vdb help [COMMAND]\n"
	       "       vdb [--help | --version]\n"
	       "\n"
	       "Run the vdb command vdb-COMMAND with ARGS, looked for in the directory of\n"
	       "this program first, then on PATH. `vdb help COMMAND` shows the command's\n"
	       "manual page on a terminal, else its --help. See vdb(7) for an overview.\n"
	       "\n"
	       "Commands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		printf("  %-10s %s\n", commands[i][0], commands[i][1]);
	printf("\n"
	       "Options:\n"
	       "  -h, --help             show this help\n"
	       "  -V, --version          show the versions of vdb, libvdb, cJSON and zstd\n"
	       "\n" CLI_EXIT_TABLE);
}

static void version(void)
{
	printf("vdb %s\nlibvdb %s\ncJSON %s\nzstd %s\n", VDB_VERSION, vdb_version(),
	       cJSON_Version(), ZSTD_versionString());
}

/* A command name is a word of lower-case letters and dashes: never a path. */
static int plausible(const char *cmd)
{
	if (!*cmd || *cmd == '-')
		return 0;
	for (const char *p = cmd; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || *p == '-'))
			return 0;
	return 1;
}

/* The directory of this executable, from /proc/self/exe, else from argv[0] when it names
 * a path; "" when neither tells. */
static void own_dir(const char *argv0, char *out, size_t cap)
{
	ssize_t n = readlink("/proc/self/exe", out, cap - 1);
	if (n > 0) {
		out[n] = 0;
	} else if (strchr(argv0, '/') && strlen(argv0) < cap) {
		strcpy(out, argv0);
	} else {
		out[0] = 0;
		return;
	}
	char *slash = strrchr(out, '/');
	if (slash)
		slash[1] = 0;
	else
		out[0] = 0;
}

/* Replaces this process with vdb-CMD args...; returns only on failure, with an exit code. */
static int run(const char *argv0, const char *cmd, char **args)
{
	char prog[PATH_MAX], dir[PATH_MAX];
	if (!plausible(cmd) || snprintf(prog, sizeof prog, "vdb-%s", cmd) >= (int)sizeof prog)
		goto unknown;
	args[0] = prog;
	own_dir(argv0, dir, sizeof dir);
	if (*dir) {
		char path[PATH_MAX * 2];
		snprintf(path, sizeof path, "%s%s", dir, prog);
		execv(path, args);
		if (errno != ENOENT) {
			cli_error("cannot run %s: %s", path, strerror(errno));
			return errno == EACCES ? 126 : EXIT_INTERNAL;
		}
	}
	execvp(prog, args);
	if (errno != ENOENT) {
		cli_error("cannot run %s: %s", prog, strerror(errno));
		return errno == EACCES ? 126 : EXIT_INTERNAL;
	}
unknown:;
	const char *names[NCOMMANDS];
	for (size_t i = 0; i < NCOMMANDS; i++)
		names[i] = commands[i][0];
	const char *meant = cli_closest(cmd, strlen(cmd), names, NCOMMANDS);
	if (meant)
		return cli_usage_error("'%s' is not a vdb command; did you mean '%s'? (see 'vdb "
				       "--help')", cmd, meant);
	return cli_usage_error("'%s' is not a vdb command (see 'vdb --help')", cmd);
}

static int help(const char *argv0, const char *cmd)
{
	if (!cmd) {
		usage();
		return cli_close_stdout();
	}
	char page[PATH_MAX];
	/* On a terminal, the manual page when one is installed for the command. */
	if (plausible(cmd) && isatty(STDOUT_FILENO) &&
	    snprintf(page, sizeof page, "vdb-%s", cmd) < (int)sizeof page) {
		char probe[PATH_MAX + 64];
		snprintf(probe, sizeof probe, "man -w %s >/dev/null 2>&1", page);
		if (system(probe) == 0) {
			execlp("man", "man", page, (char *)NULL);
		}
	}
	char *args[] = {NULL, "--help", NULL};
	return run(argv0, cmd, args);
}

int main(int argc, char **argv)
{
	cli_init("vdb", argv);
	if (argc < 2) {
		cli_usage_error("missing command");
		return EXIT_USAGE;
	}
	const char *a = argv[1];
	if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
		usage();
		return cli_close_stdout();
	}
	if (!strcmp(a, "-V") || !strcmp(a, "--version")) {
		version();
		return cli_close_stdout();
	}
	if (!strcmp(a, "help")) {
		if (argc > 3)
			return cli_usage_error("help takes at most one command");
		return help(argv[0], argc == 3 ? argv[2] : NULL);
	}
	if (*a == '-')
		return cli_usage_error("unknown option '%s'", a);
	return run(argv[0], a, argv + 1);
}
