/* vdb-query: nearest-neighbour queries (JSON lines in, one result line per query out, in
 * input order) and lookups by id, against one consistent view of the collection taken at
 * start. */
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

static void usage(void)
{
	printf("Usage: vdb-query DB [-c NAME] [-k N] [--ef N | --exact] [--filter JSON] [--payload] [--vector] [-j N] [FILE...]\n"
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
	       "  -j, --threads N        answer streamed queries on N threads, 1 to 64\n"
	       "                         (default: $VDB_THREADS, or one per CPU); output\n"
	       "                         stays in input order; a query alone in\n"
	       "                         flight scans on all N\n"
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
		vdb_filter *line;
		vdb_status st = vdb_filter_parse(text, len, &line, err);
		if (st)
			return st == VDB_EINVAL ? VDB_EDATA : st; /* a bad query line */
		if (o->filter) {
			st = vdb_filter_and(o->filter, line, &lf->f, err);
			vdb_filter_free(line);
			if (st)
				return st;
		} else {
			lf->f = line;
		}
		if (vdb_text_append(&lf->text, text, len))
			return VDB_ENOMEM;
	}
	*out = lf->f;
	return VDB_OK;
}


/* Streamed query lines are read in batches of the lines already there: at most this many
 * lines or bytes; queries of a batch with k up to BATCH_MAX_K are searched together. */
#define BATCH_LINES 64
#define BATCH_BYTES (1u << 20)
#define BATCH_MAX_K 1024

/* One thread's means of answering queries: its own searcher, parser and hit array. */
typedef struct answerer {
	vdb_collection *c;
	vdb_searcher *searcher;
	vdb_jsonl_parser *parser;
	vdb_hit *hits;
	uint32_t dim;
	line_filter lf;
	float *bq;     /* a batch's query vectors, BATCH_LINES * dim */
	vdb_hit *bhits; /* and their results, BATCH_LINES * BATCH_MAX_K */
	unsigned scan_threads; /* threads the current query or batch may scan with */
} answerer;

static vdb_status answerer_init(answerer *a, vdb_collection *c, uint32_t dim, vdb_error *err)
{
	memset(a, 0, sizeof *a);
	a->c = c;
	a->dim = dim;
	a->scan_threads = 1;
	if (!(a->hits = malloc(VDB_K_MAX * sizeof *a->hits))) {
		err->code = VDB_ENOMEM;
		snprintf(err->message, sizeof err->message, "out of memory");
		return VDB_ENOMEM;
	}
	a->bq = malloc((size_t)BATCH_LINES * dim * sizeof *a->bq);
	a->bhits = malloc((size_t)BATCH_LINES * BATCH_MAX_K * sizeof *a->bhits);
	if (!a->bq || !a->bhits) {
		err->code = VDB_ENOMEM;
		snprintf(err->message, sizeof err->message, "out of memory");
		return VDB_ENOMEM;
	}
	vdb_status st = vdb_searcher_new(c, &a->searcher, err);
	return st ? st : vdb_jsonl_parser_new(dim, &a->parser, err);
}

static void answerer_free(answerer *a)
{
	vdb_jsonl_parser_free(a->parser);
	vdb_searcher_free(a->searcher);
	line_filter_free(&a->lf);
	free(a->hits);
	free(a->bq);
	free(a->bhits);
}

/* Appends the result line of hits[0..n) to t. */
static vdb_status format_hits(answerer *a, const query_opts *o, const vdb_hit *hits, size_t n,
			      vdb_text *t, vdb_error *err)
{
	unsigned flags = (o->with_payload ? VDB_HITS_PAYLOAD : 0) |
			 (o->with_vector ? VDB_HITS_VECTOR : 0);
	return vdb_jsonl_append_hits(t, a->c, hits, n, flags, err);
}

/* Searches for q and appends its result line to t. */
static vdb_status search_into(answerer *a, const query_opts *o, const vdb_filter *f,
			      const float *q, size_t k, vdb_text *t, vdb_error *err)
{
	size_t n;
	vdb_search_options so = o->search;
	so.filter = f;
	so.threads = a->scan_threads;
	vdb_status st = vdb_searcher_search(a->searcher, q, k, &so, a->hits, &n, err);
	return st ? st : format_hits(a, o, a->hits, n, t, err);
}

/* Parses one query line and appends its result line to t. */
static vdb_status answer_line(answerer *a, const query_opts *o, const char *line, size_t len,
			      vdb_text *t, vdb_error *err)
{
	const float *q;
	size_t k = o->k;
	const vdb_filter *f = NULL;
	vdb_status st = vdb_jsonl_parse_query(a->parser, line, len, &q, &k, err);
	if (!st)
		st = query_filter(o, a->parser, &a->lf, &f, err);
	return st ? st : search_into(a, o, f, q, k, t, err);
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

/* "FILE: line N" or "line N", for messages about a line. */
static const char *line_location(const cli_lines *l, uint64_t lineno, char *at, size_t size)
{
	if (l->name)
		snprintf(at, size, "%s: line %llu", l->name, (unsigned long long)lineno);
	else
		snprintf(at, size, "line %llu", (unsigned long long)lineno);
	return at;
}

/* Reports a failed query line; returns the exit code. */
static int report(vdb_status st, const vdb_error *err, const cli_lines *l, uint64_t lineno)
{
	char at[4200];
	if (st == VDB_EDATA) {
		cli_error("%s: %s", line_location(l, lineno, at, sizeof at), err->message);
		return EXIT_DATA;
	}
	if (st == VDB_ENOMEM) {
		cli_error("out of memory");
		return EXIT_INTERNAL;
	}
	return cli_fail(err);
}

/* Reports a reader result other than LINE_OK; returns the exit code. */
static int report_read(int r, const cli_lines *l)
{
	char at[4200];
	if (r == LINE_ERROR) {
		cli_error("read %s: %m", l->name ? l->name : "standard input");
		return EXIT_IO;
	}
	if (r == LINE_TOO_LONG) {
		cli_error("%s: line is longer than %zu bytes (--max-line-bytes)",
			  line_location(l, l->lineno, at, sizeof at), l->max_line);
		return EXIT_DATA;
	}
	return EXIT_IO;
}


typedef struct batch {
	vdb_text text;              /* the lines, each followed by '\n' */
	size_t n;                   /* lines */
	size_t end[BATCH_LINES];    /* end offset of each line in text */
	uint64_t lineno[BATCH_LINES];
	vdb_text out;               /* their answers */
	vdb_status st;              /* of the failed line, if any */
	vdb_error err;
	uint64_t err_lineno;
	int done;
} batch;

enum { LINE_NOMEM = -100 };

/* Reads lines into b: the first may wait for input, the rest only while they are ready. */
static int fill_batch(cli_lines *l, batch *b)
{
	b->n = 0;
	b->text.len = 0;
	b->done = 0;
	do {
		const char *line;
		size_t len;
		int r = cli_lines_next(l, &line, &len);
		if (r != LINE_OK)
			return r;
		if (vdb_text_append(&b->text, line, len) || vdb_text_append(&b->text, "\n", 1))
			return LINE_NOMEM;
		b->end[b->n] = b->text.len - 1;
		b->lineno[b->n++] = l->lineno;
	} while (b->n < BATCH_LINES && b->text.len < BATCH_BYTES && !l->eof && cli_lines_ready(l));
	return LINE_OK;
}

/* Answers the lines of b from the first: those that are plain queries (k up to
 * BATCH_MAX_K, no filter of their own) are searched together, so that segments scanned
 * exactly are read once for them all; from the first line that is not (or when a batched
 * query fails), one line at a time, which reports errors in order. */
static void answer_batch(answerer *a, const query_opts *o, batch *b)
{
	b->out.len = 0;
	b->st = VDB_OK;
	const float *qs[BATCH_LINES];
	size_t ks[BATCH_LINES], ns[BATCH_LINES], first = 0, nq = 0, start = 0;
	vdb_hit *hits[BATCH_LINES];
	for (size_t i = 0; i < b->n; start = b->end[i] + 1, i++, first = i) {
		const char *line = b->text.data + start;
		size_t len = b->end[i] - start;
		if (cli_is_blank(line, len))
			continue;
		const float *q;
		size_t k = o->k, fl;
		if (vdb_jsonl_parse_query(a->parser, line, len, &q, &k, &b->err) ||
		    vdb_jsonl_query_filter(a->parser, &fl) || k > BATCH_MAX_K)
			break;
		memcpy(a->bq + nq * a->dim, q, a->dim * sizeof *q);
		qs[nq] = a->bq + nq * a->dim;
		ks[nq] = k;
		hits[nq] = a->bhits + nq * BATCH_MAX_K;
		nq++;
	}
	size_t failed = 0;
	if (nq > 1) {
		vdb_search_options so = o->search;
		so.filter = o->filter;
		so.threads = a->scan_threads;
		if (vdb_searcher_search_batch(a->searcher, nq, qs, ks, &so, hits, ns, &failed,
					      &b->err))
			first = 0; /* answer line by line: errors come out in order */
		for (size_t i = 0; first && i < nq; i++)
			if (format_hits(a, o, hits[i], ns[i], &b->out, &b->err)) {
				b->out.len = 0;
				first = 0;
			}
	} else {
		first = 0;
	}
	start = first ? b->end[first - 1] + 1 : 0;
	for (size_t i = first; i < b->n; start = b->end[i] + 1, i++) {
		const char *line = b->text.data + start;
		size_t len = b->end[i] - start;
		if (cli_is_blank(line, len))
			continue;
		vdb_status st = answer_line(a, o, line, len, &b->out, &b->err);
		if (st) {
			b->st = st;
			b->err_lineno = b->lineno[i];
			return;
		}
	}
}

/* Answers every line of l on this thread, a batch of ready lines at a time. */
static int stream_serial(answerer *a, const query_opts *o, cli_lines *l, batch *b)
{
	for (;;) {
		/* Answers go out in blocks, but never sit in the buffer while we wait for more
		 * input: a program that sends one query and waits for its answer gets it. */
		if (!cli_lines_ready(l) && fflush(stdout) != 0)
			return EXIT_IO; /* reported by cli_close_stdout */
		int r = fill_batch(l, b);
		if (b->n) {
			answer_batch(a, o, b);
			if (b->out.len)
				fwrite(b->out.data, 1, b->out.len, stdout);
			if (b->st)
				return report(b->st, &b->err, l, b->err_lineno);
		}
		if (r == LINE_EOF)
			return EXIT_OK;
		if (r == LINE_NOMEM) {
			cli_error("out of memory");
			return EXIT_INTERNAL;
		}
		if (r != LINE_OK)
			return report_read(r, l);
	}
}

/* ---- answering on several threads ----
 * The main thread reads lines into batches and writes the batches' answers in input order;
 * N - 1 workers take the batches in order and answer their lines, and so does the main
 * thread whenever it would otherwise wait (the ring is full, or no input is ready), so that
 * N threads share N cores instead of N + 1. A batch stops at its first failed line, whose
 * error the main thread reports after writing the answers before it. */

typedef struct pool {
	pthread_mutex_t mu;
	pthread_cond_t work, finished;
	batch *ring;
	size_t cap, head, taken, tail; /* in flight: [head, tail); handed out: [head, taken) */
	int stop;
	unsigned threads;
	const query_opts *o;
} pool;

typedef struct worker_ctx {
	pool *pl;
	answerer a;
} worker_ctx;

/* Takes the next batch not yet taken and answers it on answerer a; called and returns with
 * pl->mu held. */
static void answer_next(pool *pl, answerer *a)
{
	batch *b = &pl->ring[pl->taken++ % pl->cap];
	/* A batch alone in flight (one query typed at a time, or the last of a file) would
	 * leave the other cores idle: its exact scans are split among them. */
	a->scan_threads = pl->tail - pl->head == 1 ? pl->threads : 1;
	pthread_mutex_unlock(&pl->mu);
	answer_batch(a, pl->o, b);
	pthread_mutex_lock(&pl->mu);
	b->done = 1;
	pthread_cond_broadcast(&pl->finished);
}

static void *worker_main(void *arg)
{
	worker_ctx *w = arg;
	pool *pl = w->pl;
	pthread_mutex_lock(&pl->mu);
	for (;;) {
		while (!pl->stop && pl->taken == pl->tail)
			pthread_cond_wait(&pl->work, &pl->mu);
		if (pl->stop)
			break;
		answer_next(pl, &w->a);
	}
	pthread_mutex_unlock(&pl->mu);
	return NULL;
}

static int stream_parallel(pool *pl, answerer *self, cli_lines *l)
{
	int rc = EXIT_OK, read_rc = LINE_OK;
	pthread_mutex_lock(&pl->mu);
	pl->head = pl->taken = pl->tail = 0;
	pthread_mutex_unlock(&pl->mu);
	for (;;) {
		pthread_mutex_lock(&pl->mu);
		/* Write what is finished, in order. */
		while (rc == EXIT_OK && pl->head < pl->tail && pl->ring[pl->head % pl->cap].done) {
			batch *b = &pl->ring[pl->head % pl->cap];
			pthread_mutex_unlock(&pl->mu);
			if (b->out.len)
				fwrite(b->out.data, 1, b->out.len, stdout);
			if (b->st && rc == EXIT_OK)
				rc = report(b->st, &b->err, l, b->err_lineno);
			pthread_mutex_lock(&pl->mu);
			pl->head++;
		}
		int idle = pl->head == pl->tail;
		if (rc != EXIT_OK || (read_rc != LINE_OK && idle)) {
			/* Stop: wait for batches still being answered (their output is dropped). */
			while (pl->head < pl->taken) {
				while (!pl->ring[pl->head % pl->cap].done)
					pthread_cond_wait(&pl->finished, &pl->mu);
				pl->head++;
			}
			pl->head = pl->taken = pl->tail;
			pthread_mutex_unlock(&pl->mu);
			if (rc == EXIT_OK && read_rc == LINE_NOMEM) {
				cli_error("out of memory");
				rc = EXIT_INTERNAL;
			} else if (rc == EXIT_OK && read_rc != LINE_EOF) {
				rc = report_read(read_rc, l);
			}
			return rc;
		}
		int room = pl->tail - pl->head < pl->cap;
		if (read_rc == LINE_OK && room && (idle || cli_lines_ready(l))) {
			pthread_mutex_unlock(&pl->mu);
			/* About to wait for input with nothing in flight: answers so far go out. */
			if (idle && !cli_lines_ready(l) && fflush(stdout) != 0)
				return EXIT_IO; /* reported by cli_close_stdout */
			batch *b = &pl->ring[pl->tail % pl->cap];
			read_rc = fill_batch(l, b);
			pthread_mutex_lock(&pl->mu);
			if (b->n) {
				/* Lines read before an error or the end are still answered. */
				b->done = 0;
				pl->tail++;
				pthread_cond_signal(&pl->work);
			}
			pthread_mutex_unlock(&pl->mu);
			continue;
		}
		/* Input is not ready, or the ring is full: answer a batch here, or else wait for
		 * the oldest one. */
		if (pl->taken < pl->tail)
			answer_next(pl, self);
		else
			while (pl->head < pl->tail && !pl->ring[pl->head % pl->cap].done)
				pthread_cond_wait(&pl->finished, &pl->mu);
		pthread_mutex_unlock(&pl->mu);
	}
}

/* Answers the query lines of each FILE operand in turn, or of standard input. */
static int stream_files(answerer *a, const query_opts *o, int argc, char **argv, int first,
			size_t max_line, unsigned threads)
{
	pool pl = {.o = o, .threads = threads};
	worker_ctx *workers = NULL;
	pthread_t *tids = NULL;
	unsigned started = 0;
	int rc = EXIT_OK;
	if (threads > 1) {
		pl.cap = 2 * threads + 2;
		pl.ring = calloc(pl.cap, sizeof *pl.ring);
		workers = calloc(threads, sizeof *workers);
		tids = calloc(threads, sizeof *tids);
		pthread_mutex_init(&pl.mu, NULL);
		pthread_cond_init(&pl.work, NULL);
		pthread_cond_init(&pl.finished, NULL);
		if (!pl.ring || !workers || !tids)
			rc = EXIT_INTERNAL;
		for (; rc == EXIT_OK && started < threads - 1; started++) {
			vdb_error err;
			workers[started].pl = &pl;
			if (answerer_init(&workers[started].a, a->c, a->dim, &err) ||
			    pthread_create(&tids[started], NULL, worker_main, &workers[started])) {
				answerer_free(&workers[started].a);
				rc = EXIT_INTERNAL;
				break;
			}
		}
		if (rc)
			cli_error("out of memory");
	}
	for (int i = first; rc == EXIT_OK && (i == first || i < argc); i++) {
		int use_stdin = i >= argc || !strcmp(argv[i], "-");
		int fd = use_stdin ? STDIN_FILENO : open(argv[i], O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			cli_error("%s: %m", argv[i]);
			rc = EXIT_NOINPUT;
			break;
		}
		cli_lines l;
		cli_lines_init(&l, fd, use_stdin ? NULL : argv[i], max_line, NULL);
		if (threads > 1) {
			rc = stream_parallel(&pl, a, &l);
		} else {
			batch *b = calloc(1, sizeof *b);
			rc = b ? stream_serial(a, o, &l, b) : (cli_error("out of memory"), EXIT_INTERNAL);
			if (b) {
				vdb_text_free(&b->text);
				vdb_text_free(&b->out);
			}
			free(b);
		}
		cli_lines_free(&l);
		if (!use_stdin)
			close(fd);
	}
	if (threads > 1) {
		pthread_mutex_lock(&pl.mu);
		pl.stop = 1;
		pthread_cond_broadcast(&pl.work);
		pthread_mutex_unlock(&pl.mu);
		for (unsigned t = 0; t < started; t++) {
			pthread_join(tids[t], NULL);
			answerer_free(&workers[t].a);
		}
		for (size_t b = 0; pl.ring && b < pl.cap; b++) {
			vdb_text_free(&pl.ring[b].text);
			vdb_text_free(&pl.ring[b].out);
		}
		pthread_mutex_destroy(&pl.mu);
		pthread_cond_destroy(&pl.work);
		pthread_cond_destroy(&pl.finished);
		free(pl.ring);
		free(workers);
		free(tids);
	}
	return rc;
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
	uint64_t threads = cli_default_threads();
	while ((c = getopt_long(argc, argv, ":c:k:j:qhV", opts, NULL)) != -1) {
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
	vdb_collection_config cfg;
	vdb_collection_get_config(coll, &cfg);
	int rc = EXIT_OK;
	answerer a;
	vdb_text out = {0};
	if (answerer_init(&a, coll, cfg.dim, &err)) {
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
		a.scan_threads = (unsigned)threads;
		vdb_status st = answer_line(&a, &o, one, strlen(one), &out, &err);
		if (st == VDB_EDATA) {
			cli_error("--vector: %s", err.message);
			rc = EXIT_USAGE;
		} else if (st) {
			rc = cli_fail(&err);
		} else {
			fwrite(out.data, 1, out.len, stdout);
		}
	} else {
		rc = stream_files(&a, &o, argc, argv, optind, (size_t)max_line, (unsigned)threads);
	}
	vdb_text_free(&out);
	answerer_free(&a);
	vdb_filter_free(filter);
	vdb_collection_close(coll);
	int wrc = cli_close_stdout();
	return rc ? rc : wrc;
}
