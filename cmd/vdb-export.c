/* vdb-export: every live record of a collection as JSON lines in the ingest format, in
 * storage order, in constant memory. What it prints re-ingests to the same records. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "common.h"

static void usage(void)
{
	printf("Usage: vdb-export DB [-c NAME] [--filter JSON]\n"
	       "\n"
	       "Print every live record of collection NAME as JSON lines in the format\n"
	       "vdb-ingest reads:\n"
	       "  {\"id\":7,\"vector\":[0.1,...],\"payload\":{...}}\n"
	       "Vectors print in the shortest form that reads back to the same float32 values,\n"
	       "ids keep their JSON type, payloads are printed as stored. Records come in\n"
	       "storage order: sealed segments oldest first, then the unsealed log in commit\n"
	       "order. Checksums are verified before any record of a segment is printed.\n"
	       "With --filter, only records whose payload matches (see vdb-query(1), FILTERS).\n"
	       "\n"
	       "Options:\n"
	       "  -c, --collection NAME  collection (default: default)\n"
	       "      --filter JSON      only records whose payload matches this filter\n"
	       "  -q, --quiet            print nothing but errors\n"
	       "  -h, --help             show this help\n"
	       "  -V, --version          show the version\n"
	       "\n" CLI_EXIT_TABLE);
}

int main(int argc, char **argv)
{
	cli_init("vdb-export");
	static const struct option opts[] = {{"collection", required_argument, NULL, 'c'},
					     {"filter", required_argument, NULL, 'f'},
					     {"quiet", no_argument, NULL, 'q'},
					     {"help", no_argument, NULL, 'h'},
					     {"version", no_argument, NULL, 'V'},
					     {NULL, 0, NULL, 0}};
	const char *name = VDB_DEFAULT_COLLECTION, *filter_text = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "c:qhV", opts, NULL)) != -1) {
		switch (c) {
		case 'c': name = optarg; break;
		case 'f': filter_text = optarg; break;
		case 'q': break;
		case 'h': usage(); return cli_close_stdout();
		case 'V': cli_version(); return cli_close_stdout();
		default: return cli_usage_error("unknown or incomplete option");
		}
	}
	if (cli_one_operand(argc, optind))
		return EXIT_USAGE;
	vdb_filter *filter = NULL;
	if (filter_text && cli_parse_filter(filter_text, "--filter", &filter))
		return EXIT_USAGE;
	vdb_error err;
	vdb_collection *coll;
	vdb_cursor *cur = NULL;
	if (vdb_collection_open(argv[optind], name, &coll, &err)) {
		vdb_filter_free(filter);
		return cli_fail(&err);
	}
	vdb_collection_config cfg;
	vdb_collection_get_config(coll, &cfg);
	int rc = EXIT_OK;
	vdb_text t = {0};
	if (vdb_cursor_open_where(coll, filter, &cur, &err)) {
		rc = cli_fail(&err);
		goto out;
	}
	for (;;) {
		vdb_record rec;
		int has;
		if (vdb_cursor_next(cur, &rec, &has, &err)) {
			rc = cli_fail(&err);
			break;
		}
		if (!has)
			break;
		t.len = 0;
		if (vdb_jsonl_append_record(&t, &rec, cfg.dim)) {
			cli_error("out of memory");
			rc = EXIT_INTERNAL;
			break;
		}
		if (fwrite(t.data, 1, t.len, stdout) != t.len)
			break; /* reported by cli_close_stdout */
	}
out:
	vdb_text_free(&t);
	vdb_cursor_close(cur);
	vdb_collection_close(coll);
	vdb_filter_free(filter);
	int wrc = cli_close_stdout();
	return rc ? rc : wrc;
}
