/* vdb-query: nearest-neighbour queries (JSON lines in, one result line per query out, in
 * input order) and lookups by id, against one consistent view of the collection taken at
 * start. */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

static void usage(void)
{
	printf("Usage: vdb-query DB [-c NAME] [-k N] [--ef N | --exact] [--payload] [--vector] [FILE...]\n"
	       "       vdb-query DB [-c NAME] [-k N] [--ef N | --exact] [--payload] [--vector] --vector=JSON\n"
	       "       vdb-query DB [-c NAME] --id ID\n"
	       "\n"
	       "Answer nearest-neighbour queries read as JSON lines from each FILE or standard\n"
	       "input: a bare array of numbers, or {\"vector\": [...], \"k\": 5}. Each query\n"
	       "prints one line, in input order:\n"
	       "  {\"results\":[{\"id\":7,\"score\":0.93}, ...]}\n"
	       "best first, ties broken by id (integers before strings). Scores: cosine\n"
	       "similarity and dot product (higher is better), Euclidean distance for l2\n"
	       "(lower is better). Sealed segments of an HNSW collection are searched through\n"
	       "their graphs (approximate); the rest, and everything with --exact, exactly.\n"
	       "\n"
	       "Options:\n"
	       "  -c, --collection NAME  collection (default: default)\n"
	       "  -k N                   results per query, 1 to %d (default 10)\n"
	       "      --ef N             graph search beam width (default 128, at least k):\n"
	       "                         larger is more accurate and slower\n"
	       "      --exact            scan every vector instead of using the graphs\n"
	       "      --payload          include each result's payload\n"
	       "      --vector           include each result's stored vector\n"
	       "      --vector=JSON      answer this one query (also: --vector '[...]')\n"
	       "      --id ID            print the stored record with this id (digits: an\n"
	       "                         integer id; anything else, or \"quoted\", a string id)\n"
	       "      --max-line-bytes N longest accepted query line (default 64M)\n"
	       "  -q, --quiet            print nothing but errors\n"
	       "  -h, --help             show this help\n"
	       "  -V, --version          show the version\n"
	       "\n" CLI_EXIT_TABLE,
	       VDB_K_MAX);
}

typedef struct query_opts {
	int with_payload, with_vector;
	size_t k;
	vdb_search_options search;
} query_opts;

#define PUT(text, s) (vdb_text_append(text, s, sizeof(s) - 1) != VDB_OK)

/* Searches and prints one result line, built whole and written with one call. */
static int print_results(vdb_collection *c, const query_opts *o, const float *q, size_t k,
			 vdb_hit *hits, vdb_text *t, uint32_t dim, vdb_error *err)
{
	size_t n;
	vdb_status st = vdb_search(c, q, k, &o->search, hits, &n, err);
	if (st)
		return st;
	t->len = 0;
	int bad = PUT(t, "{\"results\":[");
	for (size_t i = 0; i < n && !bad; i++) {
		vdb_record rec;
		if ((st = vdb_hit_record(c, &hits[i], &rec, err)))
			return st;
		bad |= (i && PUT(t, ",")) || PUT(t, "{\"id\":") ||
		       vdb_jsonl_append_id(t, &rec.id) != VDB_OK || PUT(t, ",\"score\":") ||
		       vdb_jsonl_append_float(t, hits[i].score) != VDB_OK;
		if (o->with_payload)
			bad |= PUT(t, ",\"payload\":") ||
			       (rec.payload ? vdb_text_append(t, rec.payload, rec.payload_len) != VDB_OK
					    : PUT(t, "null"));
		if (o->with_vector)
			bad |= PUT(t, ",\"vector\":") ||
			       vdb_jsonl_append_vector(t, rec.vector, dim) != VDB_OK;
		bad |= PUT(t, "}");
	}
	if (bad || PUT(t, "]}\n"))
		return VDB_ENOMEM;
	fwrite(t->data, 1, t->len, stdout);
	return VDB_OK;
}

static int get_by_id(vdb_collection *c, const char *text, uint32_t dim)
{
	vdb_error err;
	vdb_id id;
	vdb_record rec;
	if (vdb_id_parse_arg(text, &id, &err))
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

/* "FILE: line N" or "line N", for messages about the line just read. */
static const char *line_location(const cli_lines *l, char *at, size_t size)
{
	if (l->name)
		snprintf(at, size, "%s: line %llu", l->name, (unsigned long long)l->lineno);
	else
		snprintf(at, size, "line %llu", (unsigned long long)l->lineno);
	return at;
}

static int run_stream(vdb_collection *c, const query_opts *o, cli_lines *l, vdb_jsonl_parser *p,
		      vdb_hit *hits, vdb_text *out, uint32_t dim)
{
	char at[4200];
	for (;;) {
		/* Answers go out in blocks, but never sit in the buffer while we wait for more
		 * input: a program that sends one query and waits for its answer gets it. */
		if (!cli_lines_ready(l) && fflush(stdout) != 0)
			return EXIT_IO; /* reported by cli_close_stdout */
		const char *line;
		size_t len;
		int r = cli_lines_next(l, &line, &len);
		if (r == LINE_EOF)
			return EXIT_OK;
		if (r == LINE_ERROR) {
			cli_error("read %s: %m", l->name ? l->name : "standard input");
			return EXIT_IO;
		}
		if (r == LINE_TOO_LONG) {
			cli_error("%s: line is longer than %zu bytes (--max-line-bytes)",
				  line_location(l, at, sizeof at), l->max_line);
			return EXIT_DATA;
		}
		if (r != LINE_OK)
			return EXIT_IO;
		if (cli_is_blank(line, len))
			continue;
		const float *q;
		size_t k = o->k;
		vdb_error err;
		vdb_status st = vdb_jsonl_parse_query(p, line, len, &q, &k, &err);
		if (!st)
			st = print_results(c, o, q, k, hits, out, dim, &err);
		if (st == VDB_EDATA) {
			cli_error("%s: %s", line_location(l, at, sizeof at), err.message);
			return EXIT_DATA;
		}
		if (st == VDB_ENOMEM) {
			cli_error("out of memory");
			return EXIT_INTERNAL;
		}
		if (st)
			return cli_fail(&err);
	}
}

int main(int argc, char **argv)
{
	cli_init("vdb-query");
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
		{"ef", required_argument, NULL, 'F'},
		{"exact", no_argument, NULL, 'X'},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0}};
	query_opts o = {.k = 10};
	vdb_search_options_init(&o.search);
	const char *name = VDB_DEFAULT_COLLECTION, *one = NULL, *id = NULL;
	uint64_t v, max_line = 64u << 20;
	int c;
	while ((c = getopt_long(argc, argv, "c:k:qhV", opts, NULL)) != -1) {
		switch (c) {
		case 'c': name = optarg; break;
		case 'k':
			if (cli_parse_u64(optarg, "-k", 1, VDB_K_MAX, 0, &v))
				return EXIT_USAGE;
			o.k = (size_t)v;
			break;
		case 'P': o.with_payload = 1; break;
		case 'E':
			/* "--vector=JSON" or "--vector JSON" (a database path never starts with '[')
			 * is a query; a bare "--vector" asks for stored vectors in the output. */
			if (!optarg && optind < argc && argv[optind][0] == '[')
				optarg = argv[optind++];
			if (optarg)
				one = optarg;
			else
				o.with_vector = 1;
			break;
		case 'I': id = optarg; break;
		case 'F':
			if (cli_parse_u64(optarg, "--ef", 1, VDB_K_MAX, 0, &v))
				return EXIT_USAGE;
			o.search.ef = (size_t)v;
			break;
		case 'X': o.search.exact = 1; break;
		case 'L':
			if (cli_parse_u64(optarg, "--max-line-bytes", 16, 1ull << 31, 1, &max_line))
				return EXIT_USAGE;
			break;
		case 'q': break;
		case 'h': usage(); return cli_close_stdout();
		case 'V': cli_version(); return cli_close_stdout();
		default: return cli_usage_error("unknown or incomplete option");
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
	for (int i = optind; i < argc; i++)
		if (strcmp(argv[i], "-") && access(argv[i], R_OK) < 0) {
			cli_error("%s: %m", argv[i]);
			return EXIT_NOINPUT;
		}

	vdb_error err;
	vdb_collection *coll;
	if (vdb_collection_open(db, name, &coll, &err))
		return cli_fail(&err);
	vdb_collection_config cfg;
	vdb_collection_get_config(coll, &cfg);
	int rc;
	vdb_jsonl_parser *p = NULL;
	vdb_hit *hits = malloc(VDB_K_MAX * sizeof *hits);
	vdb_text out = {0};
	if (!hits || vdb_jsonl_parser_new(cfg.dim, &p, &err)) {
		cli_error("out of memory");
		rc = EXIT_INTERNAL;
	} else if (id) {
		rc = get_by_id(coll, id, cfg.dim);
	} else if (one) {
		const float *q;
		size_t k = o.k;
		vdb_status st = vdb_jsonl_parse_query(p, one, strlen(one), &q, &k, &err);
		if (!st)
			st = print_results(coll, &o, q, k, hits, &out, cfg.dim, &err);
		if (st == VDB_EDATA) {
			cli_error("--vector: %s", err.message);
			rc = EXIT_USAGE;
		} else {
			rc = st ? cli_fail(&err) : EXIT_OK;
		}
	} else {
		rc = EXIT_OK;
		int i = optind;
		do {
			int use_stdin = i >= argc || !strcmp(argv[i], "-");
			int fd = use_stdin ? STDIN_FILENO : open(argv[i], O_RDONLY | O_CLOEXEC);
			if (fd < 0) {
				cli_error("%s: %m", argv[i]);
				rc = EXIT_NOINPUT;
				break;
			}
			cli_lines l;
			cli_lines_init(&l, fd, use_stdin ? NULL : argv[i], max_line, NULL);
			rc = run_stream(coll, &o, &l, p, hits, &out, cfg.dim);
			cli_lines_free(&l);
			if (!use_stdin)
				close(fd);
		} while (++i < argc && rc == EXIT_OK);
	}
	vdb_text_free(&out);
	free(hits);
	vdb_jsonl_parser_free(p);
	vdb_collection_close(coll);
	int wrc = cli_close_stdout();
	return rc ? rc : wrc;
}
