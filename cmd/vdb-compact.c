/* vdb-compact: rewrite a collection's segments into one, without deleted or replaced rows,
 * with its graph. Takes the writer lock; readers keep working throughout. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "progress.h"

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	__atomic_store_n(&stop_signal, sig, __ATOMIC_RELAXED); /* read by libvdb threads */
}

static void usage(void)
{
	printf("Usage: vdb-compact DB [-c NAME] [--quantize none|int8|binary]\n"
	       "                   [--wait SECONDS | --no-wait]\n"
	       "\n"
	       "Seal the collection's log and rewrite all its segments into one, dropping\n"
	       "deleted and replaced rows and building the segment's graph (HNSW collections).\n"
	       "Queries keep working during compaction and see the old or the new version,\n"
	       "never a mix. A crash at any moment leaves one of the two. Writers also merge\n"
	       "segments on their own as they seal, keeping the number of segments\n"
	       "logarithmic in the collection's size; vdb-compact is for reclaiming deleted\n"
	       "space and for a single, fully indexed segment.\n"
	       "\n"
	       "Options:\n"
	       "  -c, --collection NAME  collection (default: default)\n"
	       "      --quantize KIND    first make KIND the codes of the collection's\n"
	       "                         segments (see vdb-create --quantize); the rewrite\n"
	       "                         then gives every segment codes of that kind\n"
	       "      --wait SECONDS     wait at most this long for another writer's lock\n"
	       "      --no-wait          fail at once (exit 75) if another writer holds it\n"
	       "      --json             the summary as one JSON object on standard output\n"
	       "  -j, --threads N        threads building the graph, 1 to 64 (default:\n"
	       "                         $VDB_THREADS, or one per CPU)\n"
	       "  -q, --quiet            print nothing but errors\n"
	       "  -h, --help             show this help\n"
	       "  -V, --version          show the version\n"
	       "\n" CLI_EXIT_TABLE);
}

int main(int argc, char **argv)
{
	cli_init("vdb-compact", argv);
	static const struct option opts[] = {{"collection", required_argument, NULL, 'c'},
					     {"quantize", required_argument, NULL, 'Q'},
					     {"wait", required_argument, NULL, 'W'},
					     {"no-wait", no_argument, NULL, 'N'},
					     {"threads", required_argument, NULL, 'j'},
					     {"json", no_argument, NULL, 'J'},
					     {"quiet", no_argument, NULL, 'q'},
					     {"help", no_argument, NULL, 'h'},
					     {"version", no_argument, NULL, 'V'},
					     {NULL, 0, NULL, 0}};
	const char *name = VDB_DEFAULT_COLLECTION;
	vdb_writer_options wo;
	vdb_writer_options_init(&wo);
	int quiet = 0, c, requantize = 0, json = 0;
	vdb_quantize quantize = VDB_QUANTIZE_NONE;
	vdb_error err;
	uint64_t threads = cli_default_threads(); /* $VDB_THREADS, else one per CPU */
	while ((c = cli_getopt(argc, argv, ":c:j:qhV", opts)) != -1) {
		switch (c) {
		case 'c': name = optarg; break;
		case 'j':
			if (cli_parse_threads(optarg, &threads))
				return EXIT_USAGE;
			break;
		case 'W':
			if (cli_parse_seconds(optarg, "--wait", &wo.wait_seconds))
				return EXIT_USAGE;
			break;
		case 'N': wo.wait_seconds = 0; break;
		case 'J': json = 1; break;
		case 'Q':
			if (vdb_quantize_parse(optarg, &quantize, &err))
				return cli_usage_error("%s", err.message);
			requantize = 1;
			break;
		default: {
			int r = cli_common_option(c, usage, &quiet); /* -q, -h, -V, or a usage error */
			if (r != CLI_NEXT)
				return r;
		}
		}
	}
	if (cli_one_operand(argc, optind))
		return EXIT_USAGE;
	cli_catch_stop_signals(on_signal);
	wo.cancel = cli_cancel_on(&stop_signal);
	wo.threads = (unsigned)threads;
	double t0 = cli_now();
	vdb_writer *w;
	if (vdb_writer_open(argv[optind], name, &wo, &w, &err)) {
		if (err.code == VDB_EINTR)
			return 128 + (stop_signal ? stop_signal : SIGINT);
		return cli_fail(&err);
	}
	uint64_t segs0, live0, segs1, live1;
	vdb_writer_stats(w, &segs0, &live0);
	int rc = EXIT_OK;
	/* On a terminal: the merged segment's graph build, which is most of the time. */
	cli_progress pg;
	cli_progress_init(&pg, quiet, "rows", 0);
	vdb_writer_set_compact_progress(w, cli_progress_rows_cb, &pg);
	vdb_status st = requantize ? vdb_writer_set_quantize(w, quantize, &err) : VDB_OK;
	if (!st)
		st = vdb_writer_compact(w, &err);
	cli_progress_end(&pg);
	if (st)
		rc = cli_fail(&err);
	vdb_writer_stats(w, &segs1, &live1);
	vdb_writer_close(w);
	if (!rc && json) {
		vdb_text t = {0};
		char num[200];
		snprintf(num, sizeof num,
			 ",\"live\":%llu,\"segments_before\":%llu,\"segments_after\":%llu,"
			 "\"seconds\":%.3f}\n",
			 (unsigned long long)live1, (unsigned long long)segs0,
			 (unsigned long long)segs1, cli_now() - t0);
		vdb_id coll = {.is_string = 1, .str = name, .len = strlen(name)};
		if (vdb_text_append(&t, "{\"collection\":", 14) || vdb_jsonl_append_id(&t, &coll) ||
		    vdb_text_append(&t, num, strlen(num))) {
			cli_error("out of memory");
			rc = EXIT_INTERNAL;
		} else {
			fwrite(t.data, 1, t.len, stdout);
		}
		vdb_text_free(&t);
		int out = cli_close_stdout();
		rc = rc ? rc : out;
	} else if (!rc && !quiet) {
		fprintf(stderr, "%s: %s; %s before, %llu after; %.2f s\n", cli_prog,
			CLI_COUNT(live1, "live record", "live records"),
			CLI_COUNT(segs0, "segment", "segments"), (unsigned long long)segs1,
			cli_now() - t0);
	}
	return rc;
}
