/* vdb-check: verify every byte and every structure of a database; report; exit 65 when
 * anything is damaged. Takes no lock: it checks one committed version, like a reader. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "common.h"

static void usage(void)
{
	printf("Usage: vdb-check DB [-c NAME] [--repair] [--json]\n"
	       "\n"
	       "Check a database: the checksums of the marker, CONFIG, MANIFEST, every section\n"
	       "of every segment, the deletion files and every record of the log; that the\n"
	       "files the MANIFEST names exist with the sizes and headers it gives; the id\n"
	       "indexes, payload offsets and HNSW graphs (neighbour counts and ids, levels,\n"
	       "entry point, every live row reachable) value by value; and the record counts.\n"
	       "Prints one line per sound collection on standard output and one message per\n"
	       "problem, naming the file, on standard error. Exit status 0 when everything is\n"
	       "sound, 65 when not.\n"
	       "Writers may keep writing: the check sees one committed version.\n"
	       "\n"
	       "With --repair, each segment whose damage is confined to data derived from its\n"
	       "records (id index, norms, payload indexes, HNSW graph) is rewritten from its\n"
	       "vectors, ids and payloads under the writer lock and installed atomically; the\n"
	       "collection is then checked again. Records are never dropped: damage to\n"
	       "vectors, ids, payloads, deletion files, the log or the MANIFEST is reported\n"
	       "and left alone (exit 65; restore a snapshot).\n"
	       "\n"
	       "Options:\n"
	       "  -c, --collection NAME  check only this collection (default: all)\n"
	       "      --json             the report as JSON lines on standard output:\n"
	       "                         {\"problem\":BOOL,\"message\":...} per line, then\n"
	       "                         {\"problems\":N,\"rebuilt\":N}\n"
	       "      --repair           rebuild damaged derived data, then check again\n"
	       "  -q, --quiet            print only the problems\n"
	       "  -h, --help             show this help\n"
	       "  -V, --version          show the version\n"
	       "\n" CLI_EXIT_TABLE);
}

static int quiet, json;

/* --json: each line of the report as {"problem":BOOL,"message":"..."} on standard output. */
static void print_json_line(int problem, const char *line)
{
	vdb_text t = {0};
	vdb_id msg = {.is_string = 1, .str = line, .len = strlen(line)};
	const char *head = problem ? "{\"problem\":true,\"message\":" : "{\"problem\":false,\"message\":";
	if (!vdb_text_append(&t, head, strlen(head)) &&
	    !vdb_jsonl_append_id(&t, &msg) && !vdb_text_append(&t, "}\n", 2))
		fwrite(t.data, 1, t.len, stdout);
	vdb_text_free(&t);
}

static void report(void *ctx, int problem, const char *line)
{
	(void)ctx;
	if (json)
		print_json_line(problem, line);
	else if (problem)
		cli_error("%s", line);
	else if (!quiet)
		printf("%s\n", line);
}

int main(int argc, char **argv)
{
	cli_init("vdb-check", argv);
	static const struct option opts[] = {{"collection", required_argument, NULL, 'c'},
					     {"repair", no_argument, NULL, 'R'},
					     {"json", no_argument, NULL, 'J'},
					     {"quiet", no_argument, NULL, 'q'},
					     {"help", no_argument, NULL, 'h'},
					     {"version", no_argument, NULL, 'V'},
					     {NULL, 0, NULL, 0}};
	const char *name = NULL;
	int c, rc, repair = 0;
	while ((c = cli_getopt(argc, argv, ":c:qhV", opts)) != -1) {
		switch (c) {
		case 'c': name = optarg; break;
		case 'R': repair = 1; break;
		case 'J': json = 1; break;
		default:
			if ((rc = cli_common_option(c, usage, &quiet)) != CLI_NEXT)
				return rc;
		}
	}
	if (cli_one_operand(argc, optind))
		return EXIT_USAGE;
	vdb_error err;
	uint64_t problems, rebuilt;
	if (repair ? vdb_check_repair(argv[optind], name, report, NULL, &problems, &rebuilt, &err)
		   : vdb_check(argv[optind], name, report, NULL, &problems, &err)) {
		cli_close_stdout();
		return cli_fail(&err);
	}
	if (json)
		printf("{\"problems\":%llu,\"rebuilt\":%llu}\n", (unsigned long long)problems,
		       (unsigned long long)(repair ? rebuilt : 0));
	rc = cli_close_stdout();
	if (problems) {
		cli_error("%s: %llu problem%s found%s", argv[optind], (unsigned long long)problems,
			  problems == 1 ? "" : "s", repair ? " that --repair cannot fix" : "");
		return EXIT_DATA;
	}
	return rc;
}
