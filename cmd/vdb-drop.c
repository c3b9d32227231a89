/* vdb-drop: remove a collection (libvdb's vdb_collection_drop: under its writer lock, one
 * durable rename away, then its files deleted). */
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
	printf("Usage: vdb-drop DB -c NAME [--wait SECONDS] [-q]\n"
	       "\n"
	       "Remove collection NAME of database DB and all its records. The collection is\n"
	       "gone in one durable step (its directory is renamed away and the database\n"
	       "directory fsynced), then its files are deleted; killed at any moment, it is\n"
	       "either whole or gone. Processes that have it open (vdb-query) keep answering\n"
	       "until they end. The collection's writer lock is taken first: while another\n"
	       "writer holds it, vdb-drop fails (exit 75) unless --wait says how long to wait.\n"
	       "\n"
	       "Options:\n"
	       "  -c, --collection NAME  the collection to drop (required)\n"
	       "      --wait SECONDS     wait at most this long for another writer's lock\n"
	       "  -q, --quiet            print nothing but errors\n"
	       "  -h, --help             show this help\n"
	       "  -V, --version          show the version\n"
	       "\n" CLI_EXIT_TABLE);
}

int main(int argc, char **argv)
{
	cli_init("vdb-drop", argv);
	const char *name;
	vdb_writer_options wo;
	vdb_writer_options_init(&wo);
	int quiet = 0, r = cli_parse_locked_collection(argc, argv, usage, &name, &wo, &quiet);
	if (r != CLI_NEXT)
		return r;
	if (cli_one_operand(argc, optind))
		return EXIT_USAGE;
	cli_catch_stop_signals(on_signal);
	wo.cancel = cli_cancel_on(&stop_signal);
	vdb_error err;
	if (vdb_collection_drop(argv[optind], name, &wo, &err)) {
		if (err.code == VDB_EINTR)
			return 128 + (stop_signal ? stop_signal : SIGINT);
		return cli_fail(&err);
	}
	if (!quiet)
		fprintf(stderr, "%s: dropped collection '%s' of %s\n", cli_prog, name, argv[optind]);
	return cli_close_stdout();
}
