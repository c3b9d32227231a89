/* vdb-rename: give a collection another name (libvdb's vdb_collection_rename: under its
 * writer lock, one durable rename that never replaces an existing collection). */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>

#include "common.h"

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	__atomic_store_n(&stop_signal, sig, __ATOMIC_RELAXED);
}

static void usage(void)
{
	printf("Usage: vdb-rename DB -c NAME NEW-NAME [--wait SECONDS] [-q]\n"
	       "\n"
	       "Rename collection NAME of database DB to NEW-NAME, in one durable step that\n"
	       "never replaces an existing collection (exit 73 if NEW-NAME exists). Processes\n"
	       "that have it open keep answering until they end. The collection's writer lock\n"
	       "is taken first: while another writer holds it, vdb-rename fails (exit 75)\n"
	       "unless --wait says how long to wait.\n"
	       "\n"
	       "Options:\n"
	       "  -c, --collection NAME  the collection to rename (required)\n"
	       "      --wait SECONDS     wait at most this long for another writer's lock\n"
	       "  -q, --quiet            print nothing but errors\n"
	       "  -h, --help             show this help\n"
	       "  -V, --version          show the version\n"
	       "\n" CLI_EXIT_TABLE);
}

int main(int argc, char **argv)
{
	cli_init("vdb-rename", argv);
	const char *name;
	vdb_writer_options wo;
	vdb_writer_options_init(&wo);
	int quiet = 0, r = cli_parse_locked_collection(argc, argv, usage, &name, &wo, &quiet);
	if (r != CLI_NEXT)
		return r;
	if (optind >= argc)
		return cli_usage_error("missing database directory operand");
	if (optind + 1 >= argc)
		return cli_usage_error("missing the new name operand");
	if (optind + 2 < argc)
		return cli_usage_error("too many operands");
	cli_catch_stop_signals(on_signal);
	wo.cancel = cli_cancel_on(&stop_signal);
	const char *db = argv[optind], *to = argv[optind + 1];
	vdb_error err;
	if (vdb_collection_rename(db, name, to, &wo, &err)) {
		if (err.code == VDB_EINTR)
			return 128 + (stop_signal ? stop_signal : SIGINT);
		if (err.code == VDB_EINVAL)
			return cli_usage_error("%s", err.message);
		return cli_fail(&err);
	}
	if (!quiet)
		fprintf(stderr, "%s: renamed collection '%s' of %s to '%s'\n", cli_prog, name, db, to);
	return cli_close_stdout();
}
