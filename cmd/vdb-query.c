/* vdb-query: nearest-neighbour queries (JSON lines in, one result line per query out, in
 * input order) and lookups by id, each batch of queries against one consistent version of
 * the collection, the newest when the batch starts. The answering is libvdb's query stream
 * (vdb_query_stream, vdb_io.h). */
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
	       "                   [--with-payloads] [--with-vectors] [--skip-invalid] [-j N] [FILE...]\n"
	       "       vdb-query DB [-c NAME] [-k N] [--ef N | --exact] [--oversample F] [--filter JSON]\n"
	       "                   [--with-payloads] [--with-vectors] --query-vector JSON\n"
	       "       vdb-query DB [-c NAME] --count [--filter JSON]\n"
	       "       vdb-query DB [-c NAME] --id ID [--id ID]... | --ids-from FILE\n"
	       "\n"
	       "Answer nearest-neighbour queries read as JSON lines from each FILE or standard\n"
	       "input: a bare array of numbers, or {\"vector\": [...], \"k\": 5, \"filter\": {...},\n"
	       "\"ef\": 64, \"oversample\": 4, \"tag\": ANY} (all but \"vector\" optional).\n"
	       "Each query prints one line, in input order, with its tag if it has one:\n"
	       "  {\"tag\":\"q1\",\"results\":[{\"id\":7,\"score\":0.93}, ...]}\n"
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
	       "  -k, --top-k N          results per query, 1 to %d (default 10)\n"
	       "      --ef N             graph search beam width (default 128, at least k):\n"
	       "                         larger is more accurate and slower\n"
	       "      --exact            scan every vector instead of using the graphs\n"
	       "      --oversample F     quantized collections: rescore the best k * F of the\n"
	       "                         graph's candidates with the stored vectors, 1 to %d\n"
	       "                         (default %d for int8 codes, %d for binary)\n"
	       "      --filter JSON      only records whose payload matches this filter\n"
	       "      --count            print the number of live (matching) records\n"
	       "      --with-payloads    include each result's payload (also: --payload)\n"
	       "      --with-vectors     include each result's stored vector (also: --vector)\n"
	       "      --query-vector JSON  answer this one query, a JSON array or query\n"
	       "                         object (also: --vector=JSON, --vector '[...]')\n"
	       "      --id ID            print the stored record with this id (digits: an\n"
	       "                         integer id; anything else, or \"quoted\", a string id;\n"
	       "                         other numbers, like 1.5 or -3, are refused);\n"
	       "                         repeatable: one line each, {\"id\":..,\"missing\":true}\n"
	       "                         for an id without a record (then exit 66)\n"
	       "      --ids-from FILE    the same for each id in FILE ('-': standard input),\n"
	       "                         one per line\n"
	       "      --max-line-bytes N longest accepted query line (default 64M)\n"
	       "      --skip-invalid     answer a bad query line with an error line in its\n"
	       "                         place, {\"tag\":...,\"line\":N,\"error\":\"...\"}, and go\n"
	       "                         on; exit 65 at the end if any line failed\n"
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

/* Notes on a --filter naming fields the records do not hold, or comparing a field with a
 * value of a type the records never give it ({"date": {"$gte": 20240301}} on string dates
 * matches nothing, silently): from the payloads of up to FIELD_SAMPLE records, read only
 * when the run found nothing (a count of 0, or queries that all came back empty), so that
 * a filter that works costs no start-up reading. */
#define FIELD_SAMPLE 10000

typedef struct filter_notes {
	const vdb_field_stat *f;
	size_t n;
	uint64_t read;
} filter_notes;

static int type_fits(const char *compared, const char *held)
{
	if (!strcmp(held, "array"))
		return 1; /* a condition on an array field applies to its elements */
	if (!strcmp(compared, "number"))
		return !strcmp(held, "integer") || !strcmp(held, "number");
	return !strcmp(compared, held);
}

static void note_field(void *ctx, const char *path, const char *compared)
{
	const filter_notes *fn = ctx;
	int found = 0, fits = 0;
	const char *held = NULL;
	for (size_t i = 0; i < fn->n; i++)
		if (!strcmp(fn->f[i].path, path)) {
			found = 1;
			held = fn->f[i].type;
			fits |= !compared || type_fits(compared, held);
		}
	if (!found)
		cli_error("note: no record has the field \"%s\" (of the %llu read)", path,
			  (unsigned long long)fn->read);
	else if (!fits)
		cli_error("note: the filter compares \"%s\" with a %s; the records read hold %s "
			  "values there", path, compared, held);
}

static void filter_notes_print(vdb_collection *c, const vdb_filter *f)
{
	filter_notes fn = {0};
	vdb_field_stat *stats;
	vdb_error err;
	if (vdb_collection_fields(c, FIELD_SAMPLE, &stats, &fn.n, &fn.read, &err))
		return; /* the query reports a damaged payload itself */
	fn.f = stats;
	if (fn.read)
		vdb_filter_fields(f, note_field, &fn);
	vdb_field_stats_free(stats, fn.n);
}

/* "1,2,3,4", "0.5 -1e3": numbers that were meant as a query vector. */
static int looks_like_numbers(const char *s)
{
	return *s && strspn(s, "0123456789.,-+eE \t") == strlen(s) && strpbrk(s, "0123456789");
}

/* Prints the record with id `id` (written `text`) in the ingest format, or (many: one of
 * several ids) {"id":...,"missing":true} when there is none. *missing counts those. */
static int print_record(vdb_collection *c, const vdb_id *id, const char *text, uint32_t dim,
			int many, uint64_t *missing)
{
	vdb_error err;
	vdb_record rec;
	vdb_status st = vdb_get(c, id, &rec, &err);
	if (st == VDB_ENOENT && !many) {
		cli_error("no record with id %s", text);
		return EXIT_NOINPUT;
	}
	if (st && st != VDB_ENOENT)
		return cli_fail(&err);
	vdb_text t = {0};
	int bad = st ? vdb_text_append(&t, "{\"id\":", 6) || vdb_jsonl_append_id(&t, id) ||
			       vdb_text_append(&t, ",\"missing\":true}\n", 17)
		     : vdb_jsonl_append_record(&t, &rec, dim) != VDB_OK;
	*missing += st != VDB_OK;
	if (!bad)
		fwrite(t.data, 1, t.len, stdout);
	vdb_text_free(&t);
	if (bad) {
		cli_error("out of memory");
		return EXIT_INTERNAL;
	}
	return EXIT_OK;
}

/* --id (once or more) and --ids-from: one line per id, in order. A single --id that has no
 * record is an error (exit 66); with several, a missing one prints a "missing" line, and the
 * exit status is 66 when any was missing. */
static int get_by_ids(vdb_collection *c, const char *const *ids, size_t n, const char *from,
		      uint32_t dim)
{
	int many = n > 1 || from, rc = EXIT_OK;
	uint64_t missing = 0, total = n;
	vdb_error err;
	vdb_id id;
	for (size_t i = 0; i < n; i++) /* every --id is checked before anything is printed */
		if (vdb_id_parse_text(ids[i], &id, &err))
			return cli_usage_error("--id: %s", err.message);
	for (size_t i = 0; i < n && !rc; i++)
		if (!(rc = vdb_id_parse_text(ids[i], &id, &err)))
			rc = print_record(c, &id, ids[i], dim, many, &missing);
	if (!rc && from) {
		int use_stdin = !strcmp(from, "-");
		FILE *f = use_stdin ? stdin : fopen(from, "re");
		if (!f) {
			cli_error("%s: %m", from);
			return EXIT_NOINPUT;
		}
		char *line = NULL;
		size_t cap = 0;
		ssize_t len;
		for (uint64_t lineno = 1; !rc && (len = getline(&line, &cap, f)) >= 0; lineno++) {
			while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
				line[--len] = 0;
			const char *why = strlen(line) != (size_t)len ? "a NUL byte in an id"
					  : number_not_id(line)
					      ? "not an integer id (ids are integers from 0 or "
						"strings); quote it for a string id"
					      : vdb_id_parse_text(line, &id, &err) ? err.message
										  : NULL;
			if (why) {
				cli_error("%s: line %llu: %s", use_stdin ? "standard input" : from,
					  (unsigned long long)lineno, why);
				rc = EXIT_DATA;
				break;
			}
			total++;
			rc = print_record(c, &id, line, dim, many, &missing);
		}
		if (!rc && ferror(f)) {
			cli_error("%s: %m", from);
			rc = EXIT_IO;
		}
		free(line);
		if (!use_stdin)
			fclose(f);
	}
	if (!rc && missing) {
		cli_error("%llu of %llu ids have no record", (unsigned long long)missing,
			  (unsigned long long)total);
		rc = EXIT_NOINPUT;
	}
	return rc;
}

/* With --skip-invalid: the lines answered by failure lines, summed up on stderr (the first
 * named with its file), exit 65. */
static int report_failures(vdb_query_stream *qs, const char *first_file)
{
	uint64_t line = 0;
	vdb_error first;
	uint64_t n = vdb_query_stream_failures(qs, &line, &first);
	if (!n)
		return EXIT_OK;
	cli_error("%llu query line%s failed (answered by error lines); the first: %s%sline %llu: %s",
		  (unsigned long long)n, n == 1 ? "" : "s", first_file ? first_file : "",
		  first_file ? ": " : "", (unsigned long long)line, first.message);
	return EXIT_DATA;
}

/* Answers the query lines of each FILE operand in turn, or of standard input. */
static int stream_files(vdb_query_stream *qs, int argc, char **argv, int first)
{
	const char *first_failed = NULL;
	for (int i = first; i == first || i < argc; i++) {
		int use_stdin = i >= argc || !strcmp(argv[i], "-");
		int fd = use_stdin ? STDIN_FILENO : open(argv[i], O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			cli_error("%s: %m", argv[i]);
			return EXIT_NOINPUT;
		}
		vdb_error err, ignored;
		uint64_t line, failed = vdb_query_stream_failures(qs, &line, &ignored);
		vdb_status st = vdb_query_stream_run(qs, fd, use_stdin ? NULL : argv[i], &err);
		if (!use_stdin)
			close(fd);
		if (!failed && vdb_query_stream_failures(qs, &line, &ignored))
			first_failed = use_stdin ? NULL : argv[i];
		if (st && output_failed)
			return EXIT_IO; /* reported by cli_close_stdout */
		if (st)
			return cli_fail(&err);
	}
	return report_failures(qs, first_failed);
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
		{"with-vectors", no_argument, NULL, 'w'},
		{"with-payloads", no_argument, NULL, 'P'},
		{"query-vector", required_argument, NULL, 'Y'},
		{"id", required_argument, NULL, 'I'},
		{"ids-from", required_argument, NULL, 'G'},
		{"max-line-bytes", required_argument, NULL, 'L'},
		{"threads", required_argument, NULL, 'j'},
		{"top-k", required_argument, NULL, 'k'},
		{"ef", required_argument, NULL, 'F'},
		{"exact", no_argument, NULL, 'X'},
		{"oversample", required_argument, NULL, 'O'},
		{"filter", required_argument, NULL, 'f'},
		{"count", no_argument, NULL, 'C'},
		{"skip-invalid", no_argument, NULL, 'S'},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0}};
	vdb_query_stream_options o;
	vdb_query_stream_options_init(&o);
	const char *filter_text = NULL;
	const char *name = VDB_DEFAULT_COLLECTION, *one = NULL, *ids_from = NULL;
	/* The one-query option as the user spelled it, for messages. */
	const char *one_opt = "--query-vector", *one_form;
	static const char **ids; /* static: still reachable at an early return */
	ids = calloc((size_t)argc, sizeof *ids);
	size_t nids = 0;
	if (!ids) {
		cli_error("out of memory");
		return EXIT_INTERNAL;
	}
	uint64_t v, max_line = 64u << 20;
	int c, count = 0, quiet = 0;
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
			/* The first spellings, kept: "--vector=JSON" or "--vector JSON" (a database
			 * path never starts with '[') is --query-vector; a bare "--vector" is
			 * --with-vectors. A list of numbers after it is neither. */
			if (!optarg && optind < argc && argv[optind][0] == '[')
				optarg = argv[optind++];
			if (!optarg && optind < argc && looks_like_numbers(argv[optind]) &&
			    access(argv[optind], F_OK) < 0)
				return cli_usage_error("--vector %s: a query vector is a JSON array: "
						       "--query-vector '[%s]'",
						       argv[optind], argv[optind]);
			if (optarg) {
				one = optarg;
				one_opt = "--vector";
			} else {
				o.hits_flags |= VDB_HITS_VECTOR;
			}
			break;
		case 'w': o.hits_flags |= VDB_HITS_VECTOR; break;
		case 'Y':
			one = optarg;
			one_opt = "--query-vector";
			break;
		case 'I':
			if (number_not_id(optarg))
				return cli_usage_error("--id %s: not an integer id (ids are integers from 0 "
						       "or strings); quote it for a string id: '\"%s\"'",
						       optarg, optarg);
			ids[nids++] = optarg;
			break;
		case 'G': ids_from = optarg; break;
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
		case 'S': o.skip_invalid = 1; break;
		case 'L':
			if (cli_parse_u64(optarg, "--max-line-bytes", 16, 1ull << 31, 1, &max_line))
				return EXIT_USAGE;
			break;
		case 'j':
			if (cli_parse_threads(optarg, &threads))
				return EXIT_USAGE;
			break;
		case 'q': quiet = 1; break;
		case 'h': usage(); return cli_close_stdout();
		case 'V': cli_version(); return cli_close_stdout();
		default: return cli_option_error(c);
		}
	}
	if (optind >= argc)
		return cli_usage_error("missing database directory operand");
	const char *db = argv[optind++];
	one_form = strcmp(one_opt, "--vector") ? one_opt : "--vector=JSON";
	int by_id = nids || ids_from;
	const char *id_opt = nids ? "--id" : "--ids-from";
	if ((one || by_id) && optind < argc)
		return cli_usage_error("query files cannot be combined with %s",
				       one ? one_form : id_opt);
	if (one && by_id)
		return cli_usage_error("%s and %s cannot be combined", one_form, id_opt);
	if (count && (one || by_id || optind < argc))
		return cli_usage_error("--count cannot be combined with %s",
				       one ? one_form : by_id ? id_opt : "query files");
	if (by_id && filter_text)
		return cli_usage_error("--filter cannot be combined with %s", id_opt);
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
		if (!rc && !n && filter && !quiet)
			filter_notes_print(coll, filter);
	} else if (by_id) {
		rc = get_by_ids(coll, ids, nids, ids_from, cfg.dim);
	} else if (one) {
		vdb_status st = vdb_query_stream_answer(qs, one, strlen(one), &out, &err);
		if (st == VDB_EDATA) {
			cli_error("%s: %s", one_opt, err.message);
			rc = EXIT_USAGE;
		} else if (st) {
			rc = cli_fail(&err);
		} else {
			fwrite(out.data, 1, out.len, stdout);
		}
	} else {
		rc = stream_files(qs, argc, argv, optind);
	}
	/* Queries that all came back empty under a filter: say why it may match nothing. */
	uint64_t found;
	if (qs && filter && !quiet && !count && vdb_query_stream_answered(qs, &found) && !found)
		filter_notes_print(coll, filter);
	vdb_text_free(&out);
	vdb_query_stream_free(qs);
	vdb_filter_free(filter);
	vdb_collection_close(coll);
	free(ids);
	int wrc = cli_close_stdout();
	return rc ? rc : wrc;
}
