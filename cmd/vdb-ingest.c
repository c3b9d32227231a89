/* vdb-ingest: records from files or standard input into a collection, committed in durable
 * batches. The loading itself is libvdb's loader (vdb_loader, vdb_io.h): this command parses
 * the arguments, draws the progress, prints the messages and the summary. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "progress.h"

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	__atomic_store_n(&stop_signal, sig, __ATOMIC_RELAXED); /* read by libvdb threads */
}

typedef struct ingest {
	int quiet, verbose, dry_run, json;
	FILE *rejects;
	const char *rejects_path;
	cli_progress prog;
} ingest;

static void usage(void)
{
	printf("Usage: vdb-ingest DB [-c NAME] [options] [FILE...]\n"
	       "\n"
	       "Read records from each FILE (or standard input; '-' is standard input) and\n"
	       "upsert or delete them in collection NAME of database DB. JSON lines:\n"
	       "  {\"id\": 7, \"vector\": [0.1, ...], \"payload\": {...}}   upsert (payload optional)\n"
	       "  {\"id\": \"doc-7\", \"delete\": true}                     delete\n"
	       "  {\"delete_where\": {\"lang\": \"de\"}}                   delete every match\n"
	       "Ids are non-negative integers or strings of 1-256 bytes. Records are committed\n"
	       "in batches, each durable (fsynced) before it is reported. A delete_where (or\n"
	       "--delete-where, done before any input is read) commits the records before it,\n"
	       "then deletes every live record whose payload matches the filter (see\n"
	       "vdb-query(1), FILTERS) in one batch of its own. With --delete-where and no\n"
	       "FILE, standard input is not read.\n"
	       "\n"
	       "Other formats (--format, or from the file name: .jsonl .npy .fvecs .bvecs .csv\n"
	       ".parquet):\n"
	       "  npy, fvecs, bvecs   vectors only: ids are the row numbers (from 0, plus\n"
	       "                      --id-offset) or come from --ids, payloads from --payloads\n"
	       "  csv                 a header line, an id column, the vector as one JSON-array\n"
	       "                      column or as --vector-columns, a \"payload\" column of\n"
	       "                      JSON objects (as vdb-export writes it); other columns:\n"
	       "                      payload keys\n"
	       "  parquet             Apache Parquet (DuckDB, Arrow, Spark, Polars, vdb-export):\n"
	       "                      an id column (integers or strings; absent: row numbers),\n"
	       "                      the vector as a list of FLOAT or DOUBLE, a \"payload\"\n"
	       "                      column of JSON objects if there is one; other columns:\n"
	       "                      payload keys (nulls left out)\n"
	       "Compressed input (zstd, e.g. FILE.npy.zst, or a pipe) is read on the fly.\n"
	       "\n"
	       "Options:\n"
	       "  -c, --collection NAME    collection (default: default)\n"
	       "  -f, --format FORMAT      jsonl, npy, fvecs, bvecs, csv or parquet (default:\n"
	       "                           from each file name, else jsonl)\n"
	       "      --ids FILE           vector files: one id per line, aligned by row\n"
	       "      --id-offset N        vector files without --ids: id = row number + N\n"
	       "      --payloads FILE      vector files: one JSON object (or null) per line,\n"
	       "                           aligned by row\n"
	       "      --id-column NAME     csv, parquet: the id column (default: id)\n"
	       "      --vector-column NAME csv, parquet: the vector column (default: vector;\n"
	       "                           parquet: else the only list of numbers)\n"
	       "      --payload-column NAME  csv, parquet: the column of JSON-object payloads\n"
	       "                           (default: payload, when there is one; '': none)\n"
	       "      --vector-columns LIST  csv: the vector's columns instead: names and\n"
	       "                           1-based numbers or ranges, comma-separated (2-129)\n"
	       "      --commit-delay MS    JSON lines: when input stalls, wait up to MS after\n"
	       "                           the first pending record for more before\n"
	       "                           committing (default 0: commit at once)\n"
	       "  -b, --batch N            records per committed batch (default 1000; vector\n"
	       "                           files: stored directly as segments, in blocks of\n"
	       "                           up to 4G when mapped, else of the seal threshold)\n"
	       "      --delete-where JSON  first delete every record matching this filter\n"
	       "      --skip-invalid       JSON lines: report bad lines and go on (exit 0)\n"
	       "      --rejects FILE       with --skip-invalid, copy bad lines to FILE\n"
	       "      --max-line-bytes N   longest accepted line (default 64M; K, M, G)\n"
	       "      --wait SECONDS       wait at most this long for another writer's lock\n"
	       "                           (default: wait as long as it takes)\n"
	       "      --no-wait            fail at once (exit 75) if another writer holds it\n"
	       "      --dry-run            read and check everything, commit nothing; the\n"
	       "                           summary says what would be committed\n"
	       "      --no-settle          leave what was loaded in the log and flat segments\n"
	       "                           (see SETTLING in vdb-ingest(1))\n"
	       "  -j, --threads N          threads parsing, storing and building graphs, 1 to\n"
	       "                           64 (default: $VDB_THREADS, or one per CPU)\n"
	       "      --json               the summary as one JSON object on standard output\n"
	       "  -v, --verbose            report each committed batch on stderr\n"
	       "  -q, --quiet              print nothing but errors (and no progress)\n"
	       "  -h, --help               show this help\n"
	       "  -V, --version            show the version\n"
	       "\n"
	       "Without --skip-invalid, the first bad line or row stops the run: every record\n"
	       "before it is committed, none after it, and the exit status is 65. When --ids or\n"
	       "--payloads do not have one line per row, nothing is committed. Progress is shown\n"
	       "on stderr when it is a terminal; a summary line is printed at the end.\n"
	       "\n"
	       "A load that succeeds ends by settling: in an HNSW collection, when the records\n"
	       "outside its largest segment are 1024 or more and 1/64 of it, everything is\n"
	       "merged into one segment (inserting them into that segment's graph), so the new\n"
	       "records are searched through one graph at once; else the records of the log\n"
	       "and of the flat segments at the end, when 1024 or more, get a graph of their\n"
	       "own.\n"
	       "\n" CLI_EXIT_TABLE);
}


static void on_progress(void *ctx, uint64_t records, uint64_t read_bytes, int now)
{
	ingest *g = ctx;
	if (now)
		cli_progress_now(&g->prog, records, read_bytes);
	else
		cli_progress_update(&g->prog, records, read_bytes);
}

static void on_commit(void *ctx, const vdb_load_batch *b)
{
	ingest *g = ctx;
	if (!g->verbose)
		return;
	cli_progress_clear(&g->prog);
	fprintf(stderr, "%s: %s batch %llu: %s (%s %llu-%llu)\n", cli_prog,
		g->dry_run ? "checked" : "committed", (unsigned long long)b->number,
		CLI_COUNT(b->records, "record", "records"), b->unit, (unsigned long long)b->first,
		(unsigned long long)b->last);
}

static void on_reject(void *ctx, const char *message)
{
	(void)ctx;
	cli_error("%s", message);
}

static int write_rejected(void *ctx, const void *bytes, size_t n)
{
	ingest *g = ctx;
	return fwrite(bytes, 1, n, g->rejects) == n ? 0 : errno ? errno : EIO;
}

static void on_wait(void *ctx, long pid)
{
	const ingest *g = ctx;
	if (!g->quiet) {
		if (pid > 0)
			fprintf(stderr, "%s: waiting for the writer lock held by pid %ld\n", cli_prog, pid);
		else
			fprintf(stderr, "%s: waiting for the writer lock\n", cli_prog);
	}
}

/* A loader error: usage errors (option combinations) get the usage hint; a stop signal
 * exits as the signal says. */
static int load_failed(const vdb_error *err)
{
	if (err->code == VDB_EINTR)
		return 128 + (stop_signal ? stop_signal : SIGINT);
	if (err->code == VDB_EINVAL)
		return cli_usage_error("%s", err->message);
	return cli_fail(err);
}

/* The one summary line on stderr (a failed run too: what was committed before it). The
 * rates are of what was read and checked, so that a failed or dry run shows them too. */
/* --json: the summary's figures as one JSON object on standard output. */
static void print_json_summary(const ingest *g, const vdb_load_counts *n, int rc, double dt)
{
	uint64_t bytes = n->bytes > n->read_bytes ? n->bytes : n->read_bytes;
	printf("{\"committed\":%llu,\"batches\":%llu,\"upserted\":%llu,\"deleted\":%llu,"
	       "\"not_found\":%llu,\"rejected\":%llu,\"read\":%llu,\"bytes\":%llu,"
	       "\"seconds\":%.3f,\"dry_run\":%s,\"interrupted\":%s,\"exit\":%d}\n",
	       (unsigned long long)n->committed, (unsigned long long)n->batches,
	       (unsigned long long)n->upserted, (unsigned long long)n->deleted,
	       (unsigned long long)n->not_found, (unsigned long long)n->rejected,
	       (unsigned long long)n->seen, (unsigned long long)bytes, dt,
	       g->dry_run ? "true" : "false", rc >= 128 ? "true" : "false", rc);
}

static void print_summary(const ingest *g, const vdb_load_counts *n, int rc, double dt)
{
	uint64_t bytes = n->bytes > n->read_bytes ? n->bytes : n->read_bytes;
	fprintf(stderr, "%s: %s%s%s %s in %s (%llu upserted, %llu deleted, %llu not found, %llu "
		"rejected) in %.2f s, %.0f records/s, %.1f MiB/s%s\n",
		cli_prog, rc >= 128 ? "interrupted: " : "", g->dry_run ? "dry run: " : "",
		CLI_COUNT(n->committed, "record", "records"),
		g->dry_run ? "would be committed" : "committed",
		CLI_COUNT(n->batches, "batch", "batches"), (unsigned long long)n->upserted,
		(unsigned long long)n->deleted, (unsigned long long)n->not_found,
		(unsigned long long)n->rejected, dt, dt > 0 ? (double)n->seen / dt : 0.0,
		dt > 0 ? (double)bytes / dt / (1 << 20) : 0.0, g->dry_run ? "; nothing was committed" : "");
}

int main(int argc, char **argv)
{
	cli_init("vdb-ingest", argv);
	static const struct option opts[] = {
		{"collection", required_argument, NULL, 'c'},
		{"format", required_argument, NULL, 'f'},
		{"ids", required_argument, NULL, 'I'},
		{"id-offset", required_argument, NULL, 'O'},
		{"payloads", required_argument, NULL, 'P'},
		{"id-column", required_argument, NULL, 'C'},
		{"vector-column", required_argument, NULL, 'X'},
		{"vector-columns", required_argument, NULL, 'Y'},
		{"payload-column", required_argument, NULL, 'Z'},
		{"batch", required_argument, NULL, 'b'},
		{"delete-where", required_argument, NULL, 'D'},
		{"skip-invalid", no_argument, NULL, 'S'},
		{"rejects", required_argument, NULL, 'R'},
		{"max-line-bytes", required_argument, NULL, 'L'},
		{"wait", required_argument, NULL, 'W'},
		{"no-wait", no_argument, NULL, 'N'},
		{"dry-run", no_argument, NULL, 'n'},
		{"no-settle", no_argument, NULL, 'T'},
		{"threads", required_argument, NULL, 'j'},
		{"commit-delay", required_argument, NULL, 'M'},
		{"json", no_argument, NULL, 'J'},
		{"verbose", no_argument, NULL, 'v'},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0}};
	ingest g = {0};
	vdb_loader_options lo;
	vdb_loader_options_init(&lo);
	vdb_csv_options csv;
	vdb_csv_options_init(&csv);
	lo.csv = &csv;
	const char *name = VDB_DEFAULT_COLLECTION;
	uint64_t max_line = 64u << 20;
	const char *where_text = NULL;
	vdb_file_format format = VDB_FILE_AUTO;
	int offset_given = 0;
	vdb_writer_options wo;
	vdb_writer_options_init(&wo);
	int c;
	uint64_t threads = cli_default_threads(); /* $VDB_THREADS, else one per CPU */
	while ((c = cli_getopt(argc, argv, ":c:f:b:j:vqhV", opts)) != -1) {
		switch (c) {
		case 'c': name = optarg; break;
		case 'f':
			if (!(format = vdb_file_format_parse(optarg)))
				return cli_usage_error("unknown format '%s' (expected jsonl, npy, fvecs, "
						       "bvecs, csv or parquet)", optarg);
			break;
		case 'I': lo.ids_path = optarg; break;
		case 'O':
			if (cli_parse_u64(optarg, "--id-offset", 0, UINT64_MAX, 0, &lo.id_offset))
				return EXIT_USAGE;
			offset_given = 1;
			break;
		case 'P': lo.payloads_path = optarg; break;
		case 'C': csv.id_column = optarg; break;
		case 'X': csv.vector_column = optarg; break;
		case 'Y': csv.vector_columns = optarg; break;
		case 'Z': csv.payload_column = optarg; break;
		case 'b':
			if (cli_parse_u64(optarg, "--batch", 1, 1000000, 0, &lo.batch))
				return EXIT_USAGE;
			break;
		case 'S': lo.skip_invalid = 1; break;
		case 'j':
			if (cli_parse_threads(optarg, &threads))
				return EXIT_USAGE;
			break;
		case 'J': g.json = 1; break;
		case 'M': {
			uint64_t ms;
			if (cli_parse_u64(optarg, "--commit-delay", 0, 60000, 0, &ms))
				return EXIT_USAGE;
			lo.commit_delay_ms = (unsigned)ms;
			break;
		}
		case 'D': where_text = optarg; break;
		case 'R': g.rejects_path = optarg; break;
		case 'L':
			if (cli_parse_u64(optarg, "--max-line-bytes", 16, 1ull << 31, 1, &max_line))
				return EXIT_USAGE;
			break;
		case 'W':
			if (cli_parse_seconds(optarg, "--wait", &wo.wait_seconds))
				return EXIT_USAGE;
			break;
		case 'N': wo.wait_seconds = 0; break;
		case 'n': g.dry_run = wo.dry_run = 1; break;
		case 'T': lo.no_settle = 1; break;
		case 'v': g.verbose = 1; break;
		case 'q': g.quiet = 1; break;
		case 'h': usage(); return cli_close_stdout();
		case 'V': cli_version(); return cli_close_stdout();
		default: return cli_option_error(c);
		}
	}
	if (optind >= argc)
		return cli_usage_error("missing database directory operand");
	if (g.rejects_path && !lo.skip_invalid)
		return cli_usage_error("--rejects needs --skip-invalid");
	if (offset_given && lo.ids_path)
		return cli_usage_error("--id-offset and --ids exclude each other");
	const char *db = argv[optind++];
	vdb_filter *where_filter = NULL;
	if (where_text && cli_parse_filter(where_text, "--delete-where", &where_filter))
		return EXIT_USAGE;

	cli_catch_stop_signals(on_signal);
	lo.max_line_bytes = (size_t)max_line;
	lo.delete_where = where_filter;
	lo.threads = (unsigned)threads;
	lo.cancel = cli_cancel_on(&stop_signal);
	lo.ctx = &g;
	lo.on_progress = on_progress;
	lo.on_commit = on_commit;
	lo.on_reject = on_reject;
	lo.write_rejected = g.rejects_path ? write_rejected : NULL;
	lo.rejects_name = g.rejects_path;
	vdb_error err;
	vdb_loader *loader = NULL;
	vdb_writer *w = NULL;
	double t0 = cli_now();
	int rc = vdb_loader_new(&lo, &loader, &err) ? load_failed(&err) : 0;
	/* --delete-where without FILE operands reads no input. */
	for (int i = optind; !rc && (i < argc || (i == optind && !where_filter)); i++)
		if (vdb_loader_add_input(loader, i < argc ? argv[i] : NULL, format, &err))
			rc = load_failed(&err);
	if (rc) {
		vdb_loader_free(loader);
		vdb_filter_free(where_filter);
		return rc;
	}
	wo.cancel = lo.cancel;
	wo.threads = lo.threads;
	wo.on_wait = on_wait;
	wo.on_wait_ctx = &g;
	if (vdb_writer_open(db, name, &wo, &w, &err)) {
		rc = load_failed(&err);
	} else if (g.rejects_path && !(g.rejects = fopen(g.rejects_path, "w"))) {
		cli_error("%s: %s", g.rejects_path, strerror(errno));
		rc = EXIT_CANTCREAT;
	} else {
		uint64_t total = vdb_loader_input_bytes(loader);
		cli_progress_init(&g.prog, g.quiet, "records", total == UINT64_MAX ? 0 : total);
		if (vdb_loader_run(loader, w, &err))
			rc = load_failed(&err);
		cli_progress_end(&g.prog);
	}
	if (g.rejects && fclose(g.rejects) != 0 && !rc) {
		cli_error("write %s: %s", g.rejects_path, strerror(errno));
		rc = EXIT_IO;
	}
	vdb_writer_close(w);
	if ((!g.quiet || g.json) && w) {
		vdb_load_counts n;
		vdb_loader_counts(loader, &n);
		if (g.json)
			print_json_summary(&g, &n, rc, cli_now() - t0);
		else
			print_summary(&g, &n, rc, cli_now() - t0);
	}
	if (g.json) {
		int out = cli_close_stdout();
		rc = rc ? rc : out;
	}
	vdb_loader_free(loader);
	vdb_filter_free(where_filter);
	return rc;
}
