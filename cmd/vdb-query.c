/* vdb-query: nearest-neighbour queries (JSON lines in, one result line per query out, in
 * input order) and lookups by id, against one consistent view of the collection taken at
 * start. The answering is libvdb's query stream (vdb_query_stream, vdb_io.h). */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

static void usage(void)
{
	printf("Usage: vdb-query DB [-c NAME] [-k N] [--ef N | --exact] [--oversample F] [--filter JSON]\n"
	       "                   [--payload] [--vector] [-j N] [FILE...]\n"
	       "       vdb-query DB [-c NAME] [-k N] [--ef N | --exact] [--oversample F] [--filter JSON]\n"
	       "                   [--payload] [--vector] --vector=JSON\n"
	       "       vdb-query DB [-c NAME] --count [--filter JSON]\n"
	       "       vdb-query DB [-c NAME] --id ID\n"
	       "\n"
	       "Answer nearest-neighbour queries read as JSON lines from each FILE or standard\n"
	       "input: a bare array of numbers, or {\"vector\": [...], \"k\": 5, \"filter\": {...}}.\n"
	       "Each query prints one line, in input order:\n"
	       "  {\"results\":[{\"id\":7,\"score\":0.93}, ...]}\n"
	       "best first, ties broken by id (integers before strings). Scores: cosine\n"
	       "similarity and dot product (higher is better), Euclidean distance for l2\n"
	       "(lower is better). Sealed segments of an HNSW collection are searched through\n"
	       "their graphs (approximate); the rest, and everything with --exact, exactly.\n"
	       "\n"
	       "A filter keeps only records whose payload matches (see vdb-query(1), FILTERS):\n"
	       "  {\"lang\": \"en\", \"year\": {\"$gte\": 2020}, \"tag\": {\"$in\": [\"a\", \"b\"]}}\n"
	       "A filtered query still returns k results whenever k records match. A query\n"
	       "line's \"filter\" applies together with --filter (both must match).\n"
	       "\n"
	       "Options:\n"
	       "  -c, --collection NAME  collection (default: default)\n"
	       "  -k N                   results per query, 1 to %d (default 10)\n"
	       "      --ef N             graph search beam width (default 128, at least k):\n"
	       "                         larger is more accurate and slower\n"
	       "      --exact            scan every vector instead of using the graphs\n"
	       "      --oversample F     quantized collections: rescore the best k * F of the\n"
	       "                         graph's candidates with the stored vectors, 1 to %d\n"
	       "                         (default %d for int8 codes, %d for binary)\n"
	       "      --filter JSON      only records whose payload matches this filter\n"
	       "      --count            print the number of live (matching) records\n"
	       "      --payload          include each result's payload\n"
	       "      --vector           include each result's stored vector\n"
	       "      --vector=JSON      answer this one query (also: --vector '[...]')\n"
	       "      --id ID            print the stored record with this id (digits: an\n"
	       "                         integer id; anything else, or \"quoted\", a string id;\n"
	       "                         other numbers, like 1.5 or -3, are refused)\n"
	       "      --max-line-bytes N longest accepted query line (default 64M)\n"
	       "  -j, --threads N        answer streamed queries on N threads, 1 to 64\n"
	       "                         (default: $VDB_THREADS, or one per CPU); output\n"
	       "                         stays in input order; a query alone in\n"
	       "                         flight scans on all N\n"
	       "  -q, --quiet            print nothing but errors\n"
	       "  -h, --help             show this help\n"
	       "  -V, --version          show the version\n"
	       "\n" CLI_EXIT_TABLE,
	       VDB_K_MAX, VDB_OVERSAMPLE_MAX, VDB_OVERSAMPLE_INT8, VDB_OVERSAMPLE_BINARY);
}

/* Standard output for the query stream: errors show at the flush, and are reported once,
 * by cli_close_stdout. */
static int output_failed;

static int write_out(void *ctx, const char *data, size_t len)
{
	(void)ctx;
	output_failed |= fwrite(data, 1, len, stdout) != len;
	return output_failed;
}

static int flush_out(void *ctx)
{
	(void)ctx;
	output_failed |= fflush(stdout) != 0;
	return output_failed;
}

/* Whether text is a JSON number other than a plain non-negative integer (1.5, -3, 1e3):
 * ingest refuses such ids, so --id does not quietly look them up as strings. */
static int number_not_id(const char *s)
{
	const char *p = s + (*s == '-');
	size_t d = strspn(p, "0123456789");
	if (!d)
		return 0;
	p += d;
	if (*p == '.') {
		size_t f = strspn(p + 1, "0123456789");
		if (!f)
			return 0;
		p += 1 + f;
	}
	if (*p == 'e' || *p == 'E') {
		p += 1 + (p[1] == '+' || p[1] == '-');
		size_t e = strspn(p, "0123456789");
		if (!e)
			return 0;
		p += e;
	}
	return !*p && strspn(s, "0123456789") != strlen(s);
}

static int get_by_id(vdb_collection *c, const char *text, uint32_t dim)
{
	vdb_error err;
	vdb_id id;
	vdb_record rec;
	if (vdb_id_parse_text(text, &id, &err))
		return cli_usage_error("--id: %s", err.message);
	vdb_status st = vdb_get(c, &id, &rec, &err);
	if (st == VDB_ENOENT) {
		cli_error("no record with id %s", text);
		return EXIT_NOINPUT;
	}
	if (st)
		return cli_fail(&err);
	vdb_text t = {0};
	if (vdb_jsonl_append_record(&t, &rec, dim)) {
		vdb_text_free(&t);
		cli_error("out of memory");
		return EXIT_INTERNAL;
	}
	fwrite(t.data, 1, t.len, stdout);
	vdb_text_free(&t);
	return EXIT_OK;
}

/* Answers the query lines of each FILE operand in turn, or of standard input. */
static int stream_files(vdb_query_stream *qs, int argc, char **argv, int first)
{
	for (int i = first; i == first || i < argc; i++) {
		int use_stdin = i >= argc || !strcmp(argv[i], "-");
		int fd = use_stdin ? STDIN_FILENO : open(argv[i], O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			cli_error("%s: %m", argv[i]);
			return EXIT_NOINPUT;
		}
		vdb_error err;
		vdb_status st = vdb_query_stream_run(qs, fd, use_stdin ? NULL : argv[i], &err);
		if (!use_stdin)
			close(fd);
		if (st && output_failed)
			return EXIT_IO; /* reported by cli_close_stdout */
		if (st)
			return cli_fail(&err);
	}
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	cli_init("vdb-query", argv);
	/* Answers are flushed whenever input would block (run_stream), so a large buffer only
	 * saves system calls when queries stream in faster than they are answered. */
	static char outbuf[1 << 16];
	setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
	static const struct option opts[] = {
		{"collection", required_argument, NULL, 'c'},
		{"payload", no_argument, NULL, 'P'},
		{"vector", optional_argument, NULL, 'E'},
		{"id", required_argument, NULL, 'I'},
		{"max-line-bytes", required_argument, NULL, 'L'},
		{"threads", required_argument, NULL, 'j'},
		{"ef", required_argument, NULL, 'F'},
		{"exact", no_argument, NULL, 'X'},
		{"oversample", required_argument, NULL, 'O'},
		{"filter", required_argument, NULL, 'f'},
		{"count", no_argument, NULL, 'C'},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0}};
	vdb_query_stream_options o;
	vdb_query_stream_options_init(&o);
	const char *filter_text = NULL;
	const char *name = VDB_DEFAULT_COLLECTION, *one = NULL, *id = NULL;
	uint64_t v, max_line = 64u << 20;
	int c, count = 0;
	uint64_t threads = cli_default_threads();
	while ((c = cli_getopt(argc, argv, ":c:k:j:qhV", opts)) != -1) {
		switch (c) {
		case 'c': name = optarg; break;
		case 'k':
			if (cli_parse_u64(optarg, "-k", 1, VDB_K_MAX, 0, &v))
				return EXIT_USAGE;
			o.k = (size_t)v;
			break;
		case 'P': o.hits_flags |= VDB_HITS_PAYLOAD; break;
		case 'E':
			/* "--vector=JSON" or "--vector JSON" (a database path never starts with '[')
			 * is a query; a bare "--vector" asks for stored vectors in the output. */
			if (!optarg && optind < argc && argv[optind][0] == '[')
				optarg = argv[optind++];
			if (optarg)
				one = optarg;
			else
				o.hits_flags |= VDB_HITS_VECTOR;
			break;
		case 'I':
			if (number_not_id(optarg))
				return cli_usage_error("--id %s: not an integer id (ids are integers from 0 "
						       "or strings); quote it for a string id: '\"%s\"'",
						       optarg, optarg);
			id = optarg;
			break;
		case 'F':
			if (cli_parse_u64(optarg, "--ef", 1, VDB_K_MAX, 0, &v))
				return EXIT_USAGE;
			o.ef = (size_t)v;
			break;
		case 'X': o.exact = 1; break;
		case 'O':
			if (cli_parse_double(optarg, "--oversample", 1, VDB_OVERSAMPLE_MAX,
					     &o.oversample))
				return EXIT_USAGE;
			break;
		case 'f': filter_text = optarg; break;
		case 'C': count = 1; break;
		case 'L':
			if (cli_parse_u64(optarg, "--max-line-bytes", 16, 1ull << 31, 1, &max_line))
				return EXIT_USAGE;
			break;
		case 'j':
			if (cli_parse_u64(optarg, "--threads", 1, 64, 0, &threads))
				return EXIT_USAGE;
			break;
		case 'q': break;
		case 'h': usage(); return cli_close_stdout();
		case 'V': cli_version(); return cli_close_stdout();
		default: return cli_option_error(c);
		}
	}
	if (optind >= argc)
		return cli_usage_error("missing database directory operand");
	const char *db = argv[optind++];
	if ((one || id) && optind < argc)
		return cli_usage_error("query files cannot be combined with %s",
				       one ? "--vector=JSON" : "--id");
	if (one && id)
		return cli_usage_error("--vector=JSON and --id cannot be combined");
	if (count && (one || id || optind < argc))
		return cli_usage_error("--count cannot be combined with %s",
				       one ? "--vector=JSON" : id ? "--id" : "query files");
	if (id && filter_text)
		return cli_usage_error("--filter cannot be combined with --id");
	vdb_filter *filter = NULL;
	if (filter_text && cli_parse_filter(filter_text, "--filter", &filter))
		return EXIT_USAGE;
	o.filter = filter;
	for (int i = optind; i < argc; i++)
		if (strcmp(argv[i], "-") && access(argv[i], R_OK) < 0) {
			cli_error("%s: %m", argv[i]);
			return EXIT_NOINPUT;
		}

	vdb_error err;
	vdb_collection *coll;
	if (vdb_collection_open(db, name, &coll, &err)) {
		vdb_filter_free(filter);
		return cli_fail(&err);
	}
	vdb_collection_config cfg;
	vdb_collection_config_init(&cfg);
	vdb_collection_get_config(coll, &cfg);
	int rc = EXIT_OK;
	vdb_text out = {0};
	vdb_query_stream *qs = NULL;
	o.threads = (unsigned)threads;
	o.max_line_bytes = (size_t)max_line;
	o.write = write_out;
	o.flush = flush_out;
	if (vdb_query_stream_new(coll, &o, &qs, &err)) {
		rc = cli_fail(&err);
	} else if (count) {
		uint64_t n;
		if (vdb_collection_count_where(coll, filter, &n, &err))
			rc = cli_fail(&err);
		else
			rc = printf("%llu\n", (unsigned long long)n) < 0 ? EXIT_IO : EXIT_OK;
	} else if (id) {
		rc = get_by_id(coll, id, cfg.dim);
	} else if (one) {
		vdb_status st = vdb_query_stream_answer(qs, one, strlen(one), &out, &err);
		if (st == VDB_EDATA) {
			cli_error("--vector: %s", err.message);
			rc = EXIT_USAGE;
		} else if (st) {
			rc = cli_fail(&err);
		} else {
			fwrite(out.data, 1, out.len, stdout);
		}
	} else {
		rc = stream_files(qs, argc, argv, optind);
	}
	vdb_text_free(&out);
	vdb_query_stream_free(qs);
	vdb_filter_free(filter);
	vdb_collection_close(coll);
	int wrc = cli_close_stdout();
	return rc ? rc : wrc;
}
