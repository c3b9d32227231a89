/* vdb-ingest: JSON-lines records from files or standard input into a collection, committed
 * in durable batches.
 *
 * A batch is committed when it reaches --batch records, and also whenever the input has no
 * further line ready: a slow producer's records become durable and visible promptly, while
 * a fast one still gets full batches (one fsync each). On the first bad line (by default)
 * every record before it is committed and nothing after it; with --skip-invalid bad lines
 * are reported and skipped. SIGINT/SIGTERM stop reading; only acknowledged batches remain. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	stop_signal = sig;
}

typedef struct ingest {
	vdb_writer *w;
	vdb_jsonl_parser *parser;
	uint64_t batch_size;
	int skip_invalid, quiet, verbose;
	FILE *rejects;
	const char *rejects_path;
	/* totals of committed work, and of the pending batch */
	uint64_t committed, upserted, deleted, rejected, batches, bytes;
	uint64_t p_up, p_del, p_bytes;
	uint64_t first_line, last_line; /* input line range of the pending batch */
} ingest;

static void usage(void)
{
	printf("Usage: vdb-ingest DB [-c NAME] [options] [FILE...]\n"
	       "\n"
	       "Read JSON-lines records from each FILE (or standard input; '-' is standard\n"
	       "input) and upsert or delete them in collection NAME of database DB:\n"
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
	       "Options:\n"
	       "  -c, --collection NAME    collection (default: default)\n"
	       "  -b, --batch N            records per committed batch (default 1000)\n"
	       "      --delete-where JSON  first delete every record matching this filter\n"
	       "      --skip-invalid       report bad lines and go on (exit 0)\n"
	       "      --rejects FILE       with --skip-invalid, copy bad lines to FILE\n"
	       "      --max-line-bytes N   longest accepted line (default 64M; K, M, G)\n"
	       "      --wait SECONDS       wait at most this long for another writer's lock\n"
	       "                           (default: wait as long as it takes)\n"
	       "      --no-wait            fail at once (exit 75) if another writer holds it\n"
	       "  -v, --verbose            report each committed batch on stderr\n"
	       "  -q, --quiet              print nothing but errors\n"
	       "  -h, --help               show this help\n"
	       "  -V, --version            show the version\n"
	       "\n"
	       "Without --skip-invalid, the first bad line stops the run: every record before\n"
	       "it is committed, none after it, and the exit status is 65. A summary line is\n"
	       "printed on stderr at the end.\n"
	       "\n" CLI_EXIT_TABLE);
}

static int commit(ingest *g)
{
	if (!vdb_writer_pending(g->w))
		return 0;
	vdb_error err;
	if (vdb_writer_commit(g->w, &err))
		return cli_fail(&err);
	g->batches++;
	g->committed += g->p_up + g->p_del;
	g->upserted += g->p_up;
	g->deleted += g->p_del;
	g->bytes += g->p_bytes;
	if (g->verbose)
		fprintf(stderr, "%s: committed batch %llu: %llu records (lines %llu-%llu)\n", cli_prog,
			(unsigned long long)g->batches, (unsigned long long)(g->p_up + g->p_del),
			(unsigned long long)g->first_line, (unsigned long long)g->last_line);
	g->p_up = g->p_del = g->p_bytes = 0;
	return 0;
}

static void where(char *out, size_t cap, const cli_lines *l)
{
	if (l->name)
		snprintf(out, cap, "%s: line %llu", l->name, (unsigned long long)l->lineno);
	else
		snprintf(out, cap, "line %llu", (unsigned long long)l->lineno);
}

/* A bad line: report it; 0 to go on (--skip-invalid), or the exit status. */
static int reject(ingest *g, const cli_lines *l, const char *line, size_t len, const char *msg)
{
	char at[4200];
	where(at, sizeof at, l);
	cli_error("%s: %s", at, msg);
	if (!g->skip_invalid)
		return EXIT_DATA;
	g->rejected++;
	/* An over-long line (line == NULL) was already copied by the line reader. */
	if (g->rejects && ((line && fwrite(line, 1, len, g->rejects) != len) ||
			   fputc('\n', g->rejects) == EOF || l->overflow_error)) {
		cli_error("write %s: %s", g->rejects_path, strerror(errno));
		return EXIT_IO;
	}
	return 0;
}

/* Deletes every record matching f in one committed batch, after committing what is
 * pending (the filter must see it). */
static int delete_where(ingest *g, const vdb_filter *f, uint64_t lineno)
{
	int rc = commit(g);
	if (rc)
		return rc;
	g->first_line = g->last_line = lineno;
	vdb_error err;
	uint64_t n;
	if (vdb_writer_delete_where(g->w, f, &n, &err))
		return cli_fail(&err);
	g->p_del = n;
	return commit(g);
}

static int apply_delete_where(ingest *g, const cli_lines *l, const char *line, size_t len,
			      const vdb_record *rec)
{
	vdb_filter *f;
	vdb_error err;
	vdb_status st = vdb_filter_parse(rec->payload, rec->payload_len, &f, &err);
	if (st == VDB_EINVAL)
		return reject(g, l, line, len, err.message);
	if (st)
		return cli_fail(&err);
	int rc = delete_where(g, f, l->lineno);
	vdb_filter_free(f);
	return rc;
}

static int apply(ingest *g, const cli_lines *l, const char *line, size_t len)
{
	vdb_record_kind kind;
	vdb_record rec;
	vdb_error err;
	vdb_status st = vdb_jsonl_parse_record(g->parser, line, len, &kind, &rec, &err);
	if (!st && kind == VDB_RECORD_DELETE_WHERE)
		return apply_delete_where(g, l, line, len, &rec);
	if (!st)
		st = kind == VDB_RECORD_DELETE
			     ? vdb_writer_delete(g->w, &rec.id, &err)
			     : vdb_writer_upsert(g->w, &rec.id, rec.vector, rec.payload, rec.payload_len,
						 &err);
	if (st == VDB_EDATA)
		return reject(g, l, line, len, err.message);
	if (st)
		return cli_fail(&err);
	if (!vdb_writer_pending(g->w) || (g->p_up + g->p_del) == 0)
		g->first_line = l->lineno;
	g->last_line = l->lineno;
	if (kind == VDB_RECORD_DELETE)
		g->p_del++;
	else
		g->p_up++;
	g->p_bytes += len + 1;
	return 0;
}

/* Reads one input to its end; returns 0 or an exit status. */
static int ingest_fd(ingest *g, int fd, const char *name, size_t max_line)
{
	cli_lines l;
	cli_lines_init(&l, fd, name, max_line, &stop_signal);
	l.overflow = g->rejects;
	int rc = 0;
	for (;;) {
		/* Commit before we may block, so a slow producer's records do not wait. */
		if (vdb_writer_pending(g->w) && !cli_lines_ready(&l) && (rc = commit(g)))
			break;
		const char *line;
		size_t len;
		int r = cli_lines_next(&l, &line, &len);
		if (r == LINE_EOF)
			break;
		if (r == LINE_CANCELLED) {
			rc = 128 + stop_signal;
			break;
		}
		if (r == LINE_ERROR) {
			cli_error("read %s: %s", name ? name : "standard input", strerror(errno));
			rc = EXIT_IO;
			break;
		}
		if (r == LINE_TOO_LONG) {
			char msg[96];
			snprintf(msg, sizeof msg, "line is longer than %zu bytes (--max-line-bytes)",
				 max_line);
			if ((rc = reject(g, &l, NULL, 0, msg)))
				break;
			continue;
		}
		if (cli_is_blank(line, len)) /* blank lines are allowed and ignored */
			continue;
		if ((rc = apply(g, &l, line, len)))
			break;
		if (vdb_writer_pending(g->w) >= g->batch_size ||
		    vdb_writer_pending_bytes(g->w) >= (64u << 20))
			if ((rc = commit(g)))
				break;
		if (stop_signal) {
			rc = 128 + stop_signal;
			break;
		}
	}
	cli_lines_free(&l);
	return rc;
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

int main(int argc, char **argv)
{
	cli_init("vdb-ingest");
	static const struct option opts[] = {
		{"collection", required_argument, NULL, 'c'},
		{"batch", required_argument, NULL, 'b'},
		{"delete-where", required_argument, NULL, 'D'},
		{"skip-invalid", no_argument, NULL, 'S'},
		{"rejects", required_argument, NULL, 'R'},
		{"max-line-bytes", required_argument, NULL, 'L'},
		{"wait", required_argument, NULL, 'W'},
		{"no-wait", no_argument, NULL, 'N'},
		{"verbose", no_argument, NULL, 'v'},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0}};
	ingest g = {.batch_size = 1000};
	const char *name = VDB_DEFAULT_COLLECTION;
	uint64_t max_line = 64u << 20;
	const char *where_text = NULL;
	vdb_writer_options wo;
	vdb_writer_options_init(&wo);
	int c;
	while ((c = getopt_long(argc, argv, "c:b:vqhV", opts, NULL)) != -1) {
		switch (c) {
		case 'c': name = optarg; break;
		case 'b':
			if (cli_parse_u64(optarg, "--batch", 1, 1000000, 0, &g.batch_size))
				return EXIT_USAGE;
			break;
		case 'S': g.skip_invalid = 1; break;
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
		case 'v': g.verbose = 1; break;
		case 'q': g.quiet = 1; break;
		case 'h': usage(); return cli_close_stdout();
		case 'V': cli_version(); return cli_close_stdout();
		default: return cli_usage_error("unknown or incomplete option");
		}
	}
	if (optind >= argc)
		return cli_usage_error("missing database directory operand");
	if (g.rejects_path && !g.skip_invalid)
		return cli_usage_error("--rejects needs --skip-invalid");
	const char *db = argv[optind++];
	vdb_filter *where_filter = NULL;
	if (where_text && cli_parse_filter(where_text, "--delete-where", &where_filter))
		return EXIT_USAGE;
	/* Check every input up front: a missing file fails the run before anything commits. */
	for (int i = optind; i < argc; i++)
		if (strcmp(argv[i], "-") && access(argv[i], R_OK) < 0) {
			cli_error("%s: %s", argv[i], strerror(errno));
			vdb_filter_free(where_filter);
			return EXIT_NOINPUT;
		}
	cli_catch_stop_signals(on_signal);
	wo.cancel = &stop_signal;
	wo.on_wait = on_wait;
	wo.on_wait_ctx = &g;

	double t0 = cli_now();
	vdb_error err;
	if (vdb_writer_open(db, name, &wo, &g.w, &err)) {
		vdb_filter_free(where_filter);
		if (err.code == VDB_EINTR)
			return 128 + (stop_signal ? stop_signal : SIGINT);
		return cli_fail(&err);
	}
	vdb_collection_config cfg;
	vdb_writer_get_config(g.w, &cfg);
	int rc = 0;
	if (vdb_jsonl_parser_new(cfg.dim, &g.parser, &err)) {
		rc = cli_fail(&err);
		goto done;
	}
	if (g.rejects_path && !(g.rejects = fopen(g.rejects_path, "w"))) {
		cli_error("%s: %s", g.rejects_path, strerror(errno));
		rc = EXIT_CANTCREAT;
		goto done;
	}
	if (where_filter && (rc = delete_where(&g, where_filter, 0)))
		goto done;
	if (optind == argc) {
		if (!where_filter) /* --delete-where alone reads no input */
			rc = ingest_fd(&g, STDIN_FILENO, NULL, max_line);
	} else {
		for (int i = optind; i < argc && !rc; i++) {
			int stdin_ = !strcmp(argv[i], "-");
			int fd = stdin_ ? STDIN_FILENO : open(argv[i], O_RDONLY | O_CLOEXEC);
			if (fd < 0) {
				cli_error("%s: %s", argv[i], strerror(errno));
				rc = EXIT_NOINPUT;
				break;
			}
			rc = ingest_fd(&g, fd, stdin_ ? NULL : argv[i], max_line);
			if (!stdin_)
				close(fd);
		}
	}
	if (rc == 0 || rc == EXIT_DATA) {
		/* Everything before the end, or before the first bad line, is committed. */
		int crc = commit(&g);
		if (crc)
			rc = crc;
	} else {
		vdb_writer_rollback(g.w); /* interrupted or failed: only acknowledged batches stay */
	}
	if (g.rejects && fclose(g.rejects) != 0 && !rc) {
		cli_error("write %s: %s", g.rejects_path, strerror(errno));
		rc = EXIT_IO;
	}
done:
	vdb_writer_close(g.w);
	vdb_filter_free(where_filter);
	vdb_jsonl_parser_free(g.parser);
	if (!g.quiet) {
		double dt = cli_now() - t0;
		fprintf(stderr,
			"%s: %s%llu records committed in %llu batches (%llu upserted, %llu deleted, "
			"%llu rejected) in %.2f s, %.0f records/s, %.1f MB/s\n",
			cli_prog, rc >= 128 ? "interrupted: " : "", (unsigned long long)g.committed,
			(unsigned long long)g.batches, (unsigned long long)g.upserted,
			(unsigned long long)g.deleted, (unsigned long long)g.rejected, dt,
			dt > 0 ? (double)g.committed / dt : 0.0, dt > 0 ? (double)g.bytes / dt / 1e6 : 0.0);
	}
	return rc;
}
