/* Query streams (vdb_io.h): query lines in, one result line each out, in input order.
 *
 * Lines are read in batches of the lines already there (the first may wait for input);
 * a batch's plain queries are searched together. On several threads the calling thread
 * reads batches and writes their answers in input order; N - 1 workers take the batches in
 * order and answer them, and so does the calling thread whenever it would otherwise wait
 * (the ring is full, or no input is ready), so that N threads share N cores, not N + 1. A
 * batch stops at its first failed line, whose error is reported after the answers before
 * it are written. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../formats/lines.h"
#include "../util/error.h"
#include "vdb_io.h"

/* A batch: at most this many lines or bytes; queries with k up to BATCH_MAX_K are searched
 * together. Every batch reads each exactly scanned segment once, so a large batch reads
 * memory less often (1,000 exact queries at 768-d on 40,000 rows in the log: 0.93 s in
 * batches of 64, 0.84 s in batches of 256); a batch takes only lines already there, so
 * the size costs a query typed alone nothing. */
#define BATCH_LINES 256
#define BATCH_BYTES (4u << 20)
#define BATCH_MAX_K 1024
#define DEFAULT_MAX_LINE (64u << 20)

/* The filter of the query lines: compiled once per distinct text, since streams usually
 * repeat one filter (and then the collection reuses its selection too). */
typedef struct line_filter {
	vdb_text text;
	vdb_filter *f;
} line_filter;

/* One thread's means of answering queries: its own searcher, parser and hit arrays. */
typedef struct answerer {
	const vdb_query_stream *s;
	vdb_searcher *searcher;
	vdb_jsonl_parser *parser;
	vdb_hit *hits;
	line_filter lf;
	float *bq;      /* a batch's query vectors, BATCH_LINES * dim */
	vdb_hit *bhits; /* and their results, BATCH_LINES * BATCH_MAX_K */
	vdb_text tags;  /* and their tags */
	uint64_t answered, found; /* queries answered since the counts were taken, with results */
	unsigned scan_threads; /* threads the current query or batch may scan with */
} answerer;

struct vdb_query_stream {
	vdb_collection *c;
	uint32_t dim;
	vdb_query_stream_options o;
	answerer self; /* the calling thread's */
	uint64_t failed, first_failed; /* lines skipped as invalid, and the first one's number */
	vdb_error first_error;
	uint64_t answered, found; /* queries answered, and those with at least one result */
};

typedef struct batch {
	vdb_text text;           /* the lines, each followed by '\n' */
	size_t n;                /* lines */
	size_t end[BATCH_LINES]; /* end offset of each line in text */
	uint64_t lineno[BATCH_LINES];
	vdb_text out;            /* their answers */
	vdb_status st;           /* of the failed line, if any */
	vdb_error err;
	uint64_t err_lineno;
	/* With skip_invalid: lines that failed and stand as failure lines in out. */
	uint64_t failed, first_failed;
	vdb_error first_error;
	uint64_t answered, found; /* as vdb_query_stream_answered counts them */
	int done;
} batch;

void vdb_query_stream_options_init(vdb_query_stream_options *o)
{
	memset(o, 0, sizeof *o);
	o->size = sizeof *o;
	o->k = 10;
	o->threads = 1;
	o->max_line_bytes = DEFAULT_MAX_LINE;
}

static vdb_status answerer_init(answerer *a, const vdb_query_stream *s, vdb_error *err)
{
	memset(a, 0, sizeof *a);
	a->s = s;
	a->scan_threads = 1;
	a->hits = malloc(VDB_K_MAX * sizeof *a->hits);
	a->bq = malloc((size_t)BATCH_LINES * s->dim * sizeof *a->bq);
	a->bhits = malloc((size_t)BATCH_LINES * BATCH_MAX_K * sizeof *a->bhits);
	if (!a->hits || !a->bq || !a->bhits)
		return vdb_err_nomem(err);
	vdb_status st = vdb_searcher_new(s->c, &a->searcher, err);
	return st ? st : vdb_jsonl_parser_new(s->dim, &a->parser, err);
}

static void answerer_free(answerer *a)
{
	vdb_jsonl_parser_free(a->parser);
	vdb_searcher_free(a->searcher);
	vdb_text_free(&a->lf.text);
	vdb_filter_free(a->lf.f);
	free(a->hits);
	free(a->bq);
	free(a->bhits);
	vdb_text_free(&a->tags);
}

/* The filter for the query just parsed: the stream's, the line's, or both (their AND). */
static vdb_status query_filter(answerer *a, const vdb_filter **out, vdb_error *err)
{
	const vdb_filter *base = a->s->o.filter;
	line_filter *lf = &a->lf;
	size_t len;
	const char *text = vdb_jsonl_query_filter(a->parser, &len);
	if (!text) {
		*out = base;
		return VDB_OK;
	}
	if (!lf->f || lf->text.len != len || memcmp(lf->text.data, text, len)) {
		vdb_filter_free(lf->f);
		lf->f = NULL;
		lf->text.len = 0;
		vdb_filter *line;
		vdb_status st = vdb_filter_parse(text, len, &line, err);
		if (st)
			return st == VDB_EINVAL ? (err->code = VDB_EDATA) : st; /* a bad query line */
		if (base) {
			st = vdb_filter_and(base, line, &lf->f, err);
			vdb_filter_free(line);
			if (st)
				return st;
		} else {
			lf->f = line;
		}
		if (vdb_text_append(&lf->text, text, len))
			return vdb_err_nomem(err);
	}
	*out = lf->f;
	return VDB_OK;
}

static vdb_search_options search_options(const answerer *a, const vdb_filter *f)
{
	vdb_search_options so;
	vdb_search_options_init(&so);
	so.ef = a->s->o.ef;
	so.exact = a->s->o.exact;
	so.oversample = a->s->o.oversample;
	so.filter = f;
	so.threads = a->scan_threads;
	return so;
}

/* Parses one query line and appends its result line to t. */
static vdb_status answer_line(answerer *a, const char *line, size_t len, vdb_text *t,
			      vdb_error *err)
{
	const float *q;
	size_t k = a->s->o.k, n;
	const vdb_filter *f = NULL;
	vdb_status st = vdb_jsonl_parse_query(a->parser, line, len, &q, &k, err);
	if (!st)
		st = query_filter(a, &f, err);
	if (st)
		return st;
	vdb_search_options so = search_options(a, f);
	size_t ef;
	double oversample;
	vdb_jsonl_query_params(a->parser, &ef, &oversample);
	if (ef)
		so.ef = ef;
	if (oversample)
		so.oversample = oversample;
	if ((st = vdb_searcher_search(a->searcher, q, k, &so, a->hits, &n, err)))
		return st;
	a->answered++;
	a->found += n > 0;
	size_t tag_len;
	const char *tag = vdb_jsonl_query_tag(a->parser, &tag_len);
	return vdb_jsonl_append_answer(t, a->s->c, tag, tag_len, a->hits, n, a->s->o.hits_flags,
				       err);
}

/* With skip_invalid, a line that failed as a query (VDB_EDATA) is answered by a failure
 * line and counted; returns VDB_OK then, else st. */
static vdb_status skip_failed(answerer *a, batch *b, size_t i, vdb_status st)
{
	if (st != VDB_EDATA || !a->s->o.skip_invalid)
		return st;
	size_t tag_len;
	const char *tag = vdb_jsonl_query_tag(a->parser, &tag_len);
	if (vdb_jsonl_append_failure(&b->out, tag, tag_len, b->lineno[i], b->err.message))
		return vdb_err_nomem(&b->err);
	if (!b->failed++) {
		b->first_failed = b->lineno[i];
		b->first_error = b->err;
	}
	return VDB_OK;
}

/* Answers the lines of b from the first: those that are plain queries (k up to
 * BATCH_MAX_K, no filter of their own) are searched together; from the first line that is
 * not (or when a batched query fails), one line at a time, which reports errors in order. */
static void answer_batch(answerer *a, batch *b)
{
	const vdb_query_stream *s = a->s;
	b->out.len = 0;
	b->st = VDB_OK;
	b->failed = 0;
	a->tags.len = 0;
	const float *qs[BATCH_LINES];
	size_t ks[BATCH_LINES], ns[BATCH_LINES], first = 0, nq = 0, start = 0;
	size_t tag_off[BATCH_LINES], tag_len[BATCH_LINES];
	vdb_hit *hits[BATCH_LINES];
	for (size_t i = 0; i < b->n; start = b->end[i] + 1, i++, first = i) {
		const char *line = b->text.data + start;
		size_t len = b->end[i] - start;
		if (vdb_line_is_blank(line, len))
			continue;
		const float *q;
		size_t k = s->o.k, fl, ef;
		double oversample;
		if (vdb_jsonl_parse_query(a->parser, line, len, &q, &k, &b->err))
			break;
		vdb_jsonl_query_params(a->parser, &ef, &oversample);
		if (vdb_jsonl_query_filter(a->parser, &fl) || ef || oversample || k > BATCH_MAX_K)
			break; /* parameters of its own: answered alone */
		const char *tag = vdb_jsonl_query_tag(a->parser, &tag_len[nq]);
		tag_off[nq] = a->tags.len;
		if (!tag)
			tag_len[nq] = SIZE_MAX;
		else if (vdb_text_append(&a->tags, tag, tag_len[nq]))
			break; /* answered alone, which reports it */
		memcpy(a->bq + nq * s->dim, q, s->dim * sizeof *q);
		qs[nq] = a->bq + nq * s->dim;
		ks[nq] = k;
		hits[nq] = a->bhits + nq * BATCH_MAX_K;
		nq++;
	}
	size_t failed = 0;
	if (nq > 1) {
		vdb_search_options so = search_options(a, s->o.filter);
		if (vdb_searcher_search_batch(a->searcher, nq, qs, ks, &so, hits, ns, &failed,
					      &b->err))
			first = 0; /* answer line by line: errors come out in order */
		for (size_t i = 0; first && i < nq; i++)
			if (vdb_jsonl_append_answer(&b->out, s->c,
						    tag_len[i] == SIZE_MAX ? NULL
									   : a->tags.data + tag_off[i],
						    tag_len[i] == SIZE_MAX ? 0 : tag_len[i], hits[i],
						    ns[i], s->o.hits_flags, &b->err)) {
				b->out.len = 0;
				first = 0;
			}
		for (size_t i = 0; first && i < nq; i++) {
			a->answered++;
			a->found += ns[i] > 0;
		}
	} else {
		first = 0;
	}
	start = first ? b->end[first - 1] + 1 : 0;
	for (size_t i = first; i < b->n; start = b->end[i] + 1, i++) {
		const char *line = b->text.data + start;
		size_t len = b->end[i] - start;
		if (vdb_line_is_blank(line, len))
			continue;
		vdb_status st = skip_failed(a, b, i, answer_line(a, line, len, &b->out, &b->err));
		if (st) {
			b->st = st;
			b->err_lineno = b->lineno[i];
			break;
		}
	}
	b->answered = a->answered;
	b->found = a->found;
	a->answered = a->found = 0;
}

enum { LINE_NOMEM = -100 };

/* Reads lines into b: the first may wait for input, the rest only while they are ready. */
static int fill_batch(vdb_lines *l, batch *b)
{
	b->n = 0;
	b->text.len = 0;
	b->done = 0;
	do {
		const char *line;
		size_t len;
		int r = vdb_lines_next(l, &line, &len);
		if (r != VDB_LINE_OK)
			return r;
		if (vdb_text_append(&b->text, line, len) || vdb_text_append(&b->text, "\n", 1))
			return LINE_NOMEM;
		b->end[b->n] = b->text.len - 1;
		b->lineno[b->n++] = l->lineno;
	} while (b->n < BATCH_LINES && b->text.len < BATCH_BYTES && !l->eof && vdb_lines_ready(l));
	return VDB_LINE_OK;
}

/* A failed line of a batch, as the error of the run. */
static vdb_status line_failed(const batch *b, const vdb_lines *l, vdb_error *err)
{
	*err = b->err;
	if (b->st != VDB_EDATA)
		return b->st;
	char at[4200];
	vdb_line_location(l->name, b->err_lineno, at, sizeof at);
	return vdb_err(err, VDB_EDATA, "%s: %s", at, b->err.message);
}

/* The reader's result other than VDB_LINE_OK, as the error of the run. */
static vdb_status read_failed(int r, vdb_lines *l, vdb_error *err)
{
	char at[4200];
	if (r == LINE_NOMEM)
		return vdb_err_nomem(err);
	if (r == VDB_LINE_TOO_LONG)
		return vdb_err(err, VDB_EDATA, "%s: line is longer than %zu bytes (--max-line-bytes)",
			       vdb_line_location(l->name, l->lineno, at, sizeof at), l->max_line);
	if (r == VDB_LINE_CANCELLED)
		return vdb_err(err, VDB_EINTR, "interrupted");
	return vdb_err(err, l->err.code, "%s: %s", l->name ? l->name : "standard input",
		       l->err.message);
}

static vdb_status put(const vdb_query_stream *s, const vdb_text *t, vdb_error *err)
{
	if (t->len && s->o.write(s->o.ctx, t->data, t->len))
		return vdb_err(err, VDB_EIO, "writing the answers failed");
	return VDB_OK;
}

/* Writes a batch's answers (in input order) and counts its failure lines. */
static vdb_status put_batch(vdb_query_stream *s, const batch *b, vdb_error *err)
{
	s->answered += b->answered;
	s->found += b->found;
	if (b->failed && !s->failed) {
		s->first_failed = b->first_failed;
		s->first_error = b->first_error;
	}
	s->failed += b->failed;
	return put(s, &b->out, err);
}

static vdb_status flush(const vdb_query_stream *s, vdb_error *err)
{
	if (s->o.flush && s->o.flush(s->o.ctx))
		return vdb_err(err, VDB_EIO, "writing the answers failed");
	return VDB_OK;
}

/* A batch is answered from the newest committed version: when a writer has committed since
 * the last (two stat calls), the new version is loaded first, which costs about what opening
 * the collection costs. */
static vdb_status refresh(vdb_query_stream *s, vdb_error *err)
{
	int changed;
	return vdb_collection_refresh(s->c, &changed, err);
}

/* Answers every line of l on the calling thread, a batch of ready lines at a time. */
static vdb_status stream_serial(vdb_query_stream *s, vdb_lines *l, batch *b, vdb_error *err)
{
	for (;;) {
		/* Answers never sit in a buffer while we wait for more input. */
		vdb_status st = vdb_lines_ready(l) ? VDB_OK : flush(s, err);
		if (st)
			return st;
		int r = fill_batch(l, b);
		if (b->n) {
			if ((st = refresh(s, err)))
				return st;
			answer_batch(&s->self, b);
			if ((st = put_batch(s, b, err)))
				return st;
			if (b->st)
				return line_failed(b, l, err);
		}
		if (r == VDB_LINE_EOF)
			return VDB_OK;
		if (r != VDB_LINE_OK)
			return read_failed(r, l, err);
	}
}

/* ---- answering on several threads ---- */

typedef struct pool {
	pthread_mutex_t mu;
	pthread_cond_t work, finished;
	batch *ring;
	size_t cap, head, taken, tail; /* in flight: [head, tail); handed out: [head, taken) */
	int stop;
	unsigned threads;
} pool;

typedef struct worker {
	pool *pl;
	answerer a;
	pthread_t tid;
} worker;

/* Takes the next batch not yet taken and answers it on answerer a; called and returns with
 * pl->mu held. */
static void answer_next(pool *pl, answerer *a)
{
	batch *b = &pl->ring[pl->taken++ % pl->cap];
	/* A batch alone in flight (one query typed at a time, or the last of a file) would
	 * leave the other cores idle: its exact scans are split among them. */
	a->scan_threads = pl->tail - pl->head == 1 ? pl->threads : 1;
	pthread_mutex_unlock(&pl->mu);
	answer_batch(a, b);
	pthread_mutex_lock(&pl->mu);
	b->done = 1;
	pthread_cond_broadcast(&pl->finished);
}

static void *worker_main(void *arg)
{
	worker *w = arg;
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

static vdb_status stream_parallel(vdb_query_stream *s, pool *pl, vdb_lines *l, vdb_error *err)
{
	vdb_status st = VDB_OK;
	int read_rc = VDB_LINE_OK;
	/* A batch read after a writer committed: it waits until the batches in flight are
	 * answered (from the version they started on) and written, then the new version is
	 * loaded and it is queued. */
	batch *held = NULL;
	for (;;) {
		pthread_mutex_lock(&pl->mu);
		/* Write what is finished, in order. */
		while (!st && pl->head < pl->tail && pl->ring[pl->head % pl->cap].done) {
			batch *b = &pl->ring[pl->head % pl->cap];
			pthread_mutex_unlock(&pl->mu);
			st = put_batch(s, b, err);
			if (!st && b->st)
				st = line_failed(b, l, err);
			pthread_mutex_lock(&pl->mu);
			pl->head++;
		}
		int idle = pl->head == pl->tail;
		if (st || (read_rc != VDB_LINE_OK && idle && !held)) {
			/* Stop: wait for batches still being answered (their output is dropped). */
			while (pl->head < pl->taken) {
				while (!pl->ring[pl->head % pl->cap].done)
					pthread_cond_wait(&pl->finished, &pl->mu);
				pl->head++;
			}
			pl->head = pl->taken = pl->tail;
			pthread_mutex_unlock(&pl->mu);
			if (!st && read_rc != VDB_LINE_EOF)
				st = read_failed(read_rc, l, err);
			return st;
		}
		if (held && idle) {
			pthread_mutex_unlock(&pl->mu);
			if ((st = refresh(s, err)))
				continue;
			pthread_mutex_lock(&pl->mu);
			held->done = 0;
			pl->tail++;
			pthread_cond_signal(&pl->work);
			pthread_mutex_unlock(&pl->mu);
			held = NULL;
			continue;
		}
		int room = pl->tail - pl->head < pl->cap;
		if (!held && read_rc == VDB_LINE_OK && room && (idle || vdb_lines_ready(l))) {
			pthread_mutex_unlock(&pl->mu);
			/* About to wait for input with nothing in flight: answers so far go out. */
			if (idle && !vdb_lines_ready(l) && (st = flush(s, err)))
				continue;
			batch *b = &pl->ring[pl->tail % pl->cap];
			read_rc = fill_batch(l, b);
			if (b->n && vdb_collection_stale(s->c)) {
				held = b;
				continue;
			}
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
			answer_next(pl, &s->self);
		else
			while (pl->head < pl->tail && !pl->ring[pl->head % pl->cap].done)
				pthread_cond_wait(&pl->finished, &pl->mu);
		pthread_mutex_unlock(&pl->mu);
	}
}

/* Starts threads - 1 workers and answers l with them. */
static vdb_status run_parallel(vdb_query_stream *s, vdb_lines *l, vdb_error *err)
{
	pool pl = {.threads = s->o.threads, .cap = 2 * (size_t)s->o.threads + 2};
	worker *workers = calloc(s->o.threads, sizeof *workers);
	pl.ring = calloc(pl.cap, sizeof *pl.ring);
	pthread_mutex_init(&pl.mu, NULL);
	pthread_cond_init(&pl.work, NULL);
	pthread_cond_init(&pl.finished, NULL);
	vdb_status st = workers && pl.ring ? VDB_OK : vdb_err_nomem(err);
	unsigned started = 0;
	for (; !st && started < s->o.threads - 1; started++) {
		worker *w = &workers[started];
		w->pl = &pl;
		if ((st = answerer_init(&w->a, s, err)) ||
		    (pthread_create(&w->tid, NULL, worker_main, w) && (st = vdb_err_nomem(err)))) {
			answerer_free(&w->a);
			break;
		}
	}
	if (!st)
		st = stream_parallel(s, &pl, l, err);
	pthread_mutex_lock(&pl.mu);
	pl.stop = 1;
	pthread_cond_broadcast(&pl.work);
	pthread_mutex_unlock(&pl.mu);
	for (unsigned t = 0; t < started; t++) {
		pthread_join(workers[t].tid, NULL);
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
	return st;
}

vdb_status vdb_query_stream_new(vdb_collection *c, const vdb_query_stream_options *o,
				vdb_query_stream **out, vdb_error *err)
{
	*out = NULL;
	vdb_query_stream_options opt;
	vdb_query_stream_options_init(&opt);
	vdb_status st = vdb_options_take(&opt, sizeof opt, o, "query stream options", err);
	if (st)
		return st;
	if (opt.k < 1 || opt.k > VDB_K_MAX)
		return vdb_err(err, VDB_EINVAL, "k must be 1 to %d", VDB_K_MAX);
	if (opt.threads > 64)
		return vdb_err(err, VDB_EINVAL, "threads must be 1 to 64");
	if (!opt.write)
		return vdb_err(err, VDB_EINVAL, "a query stream needs a write callback");
	if (!opt.threads)
		opt.threads = 1;
	if (!opt.max_line_bytes)
		opt.max_line_bytes = DEFAULT_MAX_LINE;
	vdb_query_stream *s = calloc(1, sizeof *s);
	if (!s)
		return vdb_err_nomem(err);
	vdb_collection_config cfg;
	vdb_collection_config_init(&cfg);
	vdb_collection_get_config(c, &cfg);
	s->c = c;
	s->dim = cfg.dim;
	s->o = opt;
	if ((st = answerer_init(&s->self, s, err))) {
		vdb_query_stream_free(s);
		return st;
	}
	*out = s;
	return VDB_OK;
}

vdb_status vdb_query_stream_run(vdb_query_stream *s, int fd, const char *name, vdb_error *err)
{
	vdb_istream *in;
	vdb_error oerr;
	vdb_status st = vdb_istream_open(fd, NULL, &in, &oerr);
	if (st)
		return vdb_err(err, st, "%s: %s", name ? name : "standard input", oerr.message);
	vdb_lines l;
	vdb_lines_init(&l, in, name, s->o.max_line_bytes);
	s->self.scan_threads = 1;
	if (s->o.threads > 1) {
		st = run_parallel(s, &l, err);
	} else {
		batch *b = calloc(1, sizeof *b);
		st = b ? stream_serial(s, &l, b, err) : vdb_err_nomem(err);
		if (b) {
			vdb_text_free(&b->text);
			vdb_text_free(&b->out);
		}
		free(b);
	}
	vdb_lines_free(&l);
	vdb_istream_close(in);
	return st;
}

uint64_t vdb_query_stream_answered(const vdb_query_stream *s, uint64_t *with_results)
{
	*with_results = s->found;
	return s->answered;
}

uint64_t vdb_query_stream_failures(const vdb_query_stream *s, uint64_t *first_line,
				   vdb_error *first_error)
{
	if (s->failed) {
		*first_line = s->first_failed;
		*first_error = s->first_error;
	}
	return s->failed;
}

vdb_status vdb_query_stream_answer(vdb_query_stream *s, const char *line, size_t len,
				   vdb_text *out, vdb_error *err)
{
	s->self.scan_threads = s->o.threads;
	vdb_status st = answer_line(&s->self, line, len, out, err);
	s->answered += s->self.answered;
	s->found += s->self.found;
	s->self.answered = s->self.found = 0;
	return st;
}

void vdb_query_stream_free(vdb_query_stream *s)
{
	if (!s)
		return;
	answerer_free(&s->self);
	free(s);
}
