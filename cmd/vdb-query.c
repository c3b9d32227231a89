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
	printf("Usage: vdb-query DB [-c NAME] [-k N] [--ef N | --exact] [--filter JSON] [--payload] [--vector] [FILE...]\n"
	       "       vdb-query DB [-c NAME] [-k N] [--ef N | --exact] [--filter JSON] [--payload] [--vector] --vector=JSON\n"
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
	       "      --filter JSON      only records whose payload matches this filter\n"
	       "      --count            print the number of live (matching) records\n"
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
	const vdb_filter *filter; /* --filter */
	const char *filter_text;  /* its JSON */
} query_opts;

/* The filter of the query lines: compiled once per distinct text, since streams usually
 * repeat one filter (and then the collection reuses its selection too). */
typedef struct line_filter {
	vdb_text text;
	vdb_filter *f;
} line_filter;

static void line_filter_free(line_filter *lf)
{
	vdb_text_free(&lf->text);
	vdb_filter_free(lf->f);
}

/* The filter for the query just parsed: --filter, the line's, or both (their AND). */
static vdb_status query_filter(const query_opts *o, const vdb_jsonl_parser *p, line_filter *lf,
			       const vdb_filter **out, vdb_error *err)
{
	size_t len;
	const char *text = vdb_jsonl_query_filter(p, &len);
	if (!text) {
		*out = o->filter;
		return VDB_OK;
	}
	if (!lf->f || lf->text.len != len || memcmp(lf->text.data, text, len)) {
		vdb_filter_free(lf->f);
		lf->f = NULL;
		lf->text.len = 0;
		vdb_text both = {0};
		const char *src = text;
		size_t srclen = len;
		if (o->filter_text) {
			if (vdb_text_append(&both, "{\"$and\":[", 9) ||
			    vdb_text_append(&both, o->filter_text, strlen(o->filter_text)) ||
			    vdb_text_append(&both, ",", 1) || vdb_text_append(&both, text, len) ||
			    vdb_text_append(&both, "]}", 2)) {
				vdb_text_free(&both);
				return VDB_ENOMEM;
			}
			src = both.data, srclen = both.len;
		}
		vdb_status st = vdb_filter_parse(src, srclen, &lf->f, err);
		vdb_text_free(&both);
		if (st)
			return st == VDB_EINVAL ? VDB_EDATA : st; /* a bad query line */
		if (vdb_text_append(&lf->text, text, len))
			return VDB_ENOMEM;
	}
	*out = lf->f;
	return VDB_OK;
}

#define PUT(text, s) (vdb_text_append(text, s, sizeof(s) - 1) != VDB_OK)

/* Searches and prints one result line, built whole and written with one call. */
static int print_results(vdb_collection *c, const query_opts *o, const vdb_filter *f,
			 const float *q, size_t k, vdb_hit *hits, vdb_text *t, uint32_t dim,
			 vdb_error *err)
{
	size_t n;
	vdb_search_options so = o->search;
	so.filter = f;
	vdb_status st = vdb_search(c, q, k, &so, hits, &n, err);
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

static int run_stream(vdb_collection *c, const query_opts *o, cli_lines *l, vdb_jsonl_parser *p,
		      line_filter *lf, vdb_hit *hits, vdb_text *out, uint32_t dim)
{
	for (;;) {
		const char *line;
		size_t len;
		int r = cli_lines_next(l, &line, &len);
		if (r == LINE_EOF)
			return EXIT_OK;
		char at[4200];
		if (l->name)
			snprintf(at, sizeof at, "%s: line %llu", l->name, (unsigned long long)l->lineno);
		else
			snprintf(at, sizeof at, "line %llu", (unsigned long long)l->lineno);
		if (r == LINE_ERROR) {
			cli_error("read %s: %m", l->name ? l->name : "standard input");
			return EXIT_IO;
		}
		if (r == LINE_TOO_LONG) {
			cli_error("%s: line is longer than %zu bytes (--max-line-bytes)", at, l->max_line);
			return EXIT_DATA;
		}
		if (r != LINE_OK)
			return EXIT_IO;
		if (cli_is_blank(line, len))
			continue;
		const float *q;
		size_t k = o->k;
		vdb_error err;
		const vdb_filter *f = NULL;
		vdb_status st = vdb_jsonl_parse_query(p, line, len, &q, &k, &err);
		if (!st)
			st = query_filter(o, p, lf, &f, &err);
		if (!st)
			st = print_results(c, o, f, q, k, hits, out, dim, &err);
		if (st == VDB_EDATA) {
			cli_error("%s: %s", at, err.message);
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
	static const struct option opts[] = {
		{"collection", required_argument, NULL, 'c'},
		{"payload", no_argument, NULL, 'P'},
		{"vector", optional_argument, NULL, 'E'},
		{"id", required_argument, NULL, 'I'},
		{"max-line-bytes", required_argument, NULL, 'L'},
		{"ef", required_argument, NULL, 'F'},
		{"exact", no_argument, NULL, 'X'},
		{"filter", required_argument, NULL, 'f'},
		{"count", no_argument, NULL, 'C'},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0}};
	query_opts o = {.k = 10};
	vdb_search_options_init(&o.search);
	const char *name = VDB_DEFAULT_COLLECTION, *one = NULL, *id = NULL;
	uint64_t v, max_line = 64u << 20;
	int c, count = 0;
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
		case 'f': o.filter_text = optarg; break;
		case 'C': count = 1; break;
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
	if (count && (one || id || optind < argc))
		return cli_usage_error("--count cannot be combined with %s",
				       one ? "--vector=JSON" : id ? "--id" : "query files");
	if (id && o.filter_text)
		return cli_usage_error("--filter cannot be combined with --id");
	vdb_filter *filter = NULL;
	if (o.filter_text && cli_parse_filter(o.filter_text, "--filter", &filter))
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
	line_filter lf = {{0}, NULL};
	vdb_collection_config cfg;
	vdb_collection_get_config(coll, &cfg);
	int rc;
	vdb_jsonl_parser *p = NULL;
	vdb_hit *hits = malloc(VDB_K_MAX * sizeof *hits);
	vdb_text out = {0};
	if (!hits || vdb_jsonl_parser_new(cfg.dim, &p, &err)) {
		cli_error("out of memory");
		rc = EXIT_INTERNAL;
	} else if (count) {
		uint64_t n;
		if (vdb_collection_count_where(coll, filter, &n, &err))
			rc = cli_fail(&err);
		else
			rc = printf("%llu\n", (unsigned long long)n) < 0 ? EXIT_IO : EXIT_OK;
	} else if (id) {
		rc = get_by_id(coll, id, cfg.dim);
	} else if (one) {
		const float *q;
		size_t k = o.k;
		const vdb_filter *f = NULL;
		vdb_status st = vdb_jsonl_parse_query(p, one, strlen(one), &q, &k, &err);
		if (!st)
			st = query_filter(&o, p, &lf, &f, &err);
		if (!st)
			st = print_results(coll, &o, f, q, k, hits, &out, cfg.dim, &err);
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
			rc = run_stream(coll, &o, &l, p, &lf, hits, &out, cfg.dim);
			cli_lines_free(&l);
			if (!use_stdin)
				close(fd);
		} while (++i < argc && rc == EXIT_OK);
	}
	vdb_text_free(&out);
	line_filter_free(&lf);
	vdb_filter_free(filter);
	free(hits);
	vdb_jsonl_parser_free(p);
	vdb_collection_close(coll);
	int wrc = cli_close_stdout();
	return rc ? rc : wrc;
}
