/* The loader (vdb_io.h): records from files and standard input into a collection, committed
 * in durable batches.
 *
 * A batch is committed when it reaches `batch` records (or 64 MiB), and also whenever the
 * input has no further line (or row) ready: a slow producer's records become durable and
 * visible promptly, while a fast one still gets full batches (one fsync each). On the first
 * bad line (by default) every record before it is committed and nothing after it; with
 * skip_invalid bad lines are reported and skipped.
 *
 * JSON lines go through one loop whatever the thread count: the reading side parses lines
 * into chunks of records, in input order, and the storing side stores each chunk's records
 * and commits. On one thread a chunk is stored as soon as it holds one record; with two, the
 * chunks go over a queue to a thread of the loader's, so that parsing (about twice the cost
 * of storing) overlaps storing. Vector files and CSV are stored as they are read. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../formats/lines.h"
#include "../formats/parquet.h"
#include "../util/error.h"
#include "../util/io.h"
#include "../util/stream.h"
#include "vdb_io.h"

#define DEFAULT_BATCH 1000
#define MAX_BATCH 1000000
#define DEFAULT_MAX_LINE (64u << 20)
/* A batch is committed at this size whatever its record count: it is held in memory. */
#define PENDING_BYTES_CAP (64u << 20)
/* Parquet rows without a batch size: batches this large, each stored as one segment (a
 * block, as vector files' are), so that a load is not sealed a few MiB at a time and
 * merged again and again. */
#define PARQUET_BLOCK_BYTES (256u << 20)

/* One input: vector files are opened before anything is committed, to check their headers
 * and sizes (and count their rows for ids and payloads files). */
typedef struct input {
	char *path; /* NULL: standard input */
	vdb_file_format f;
	int fd;
	vdb_istream *in;
	vdb_vec_reader *vr;
	vdb_parquet_reader *pr; /* Parquet: opened up front; fd is the file, or a spooled copy */
	uint64_t pq_size;
} input;

/* A file read line by line alongside the vector rows (ids or payloads). */
typedef struct sidecar {
	char *path;
	int fd;
	vdb_istream *in;
	vdb_lines lines;
} sidecar;

struct vdb_loader {
	vdb_loader_options o;
	vdb_csv_options csv;
	char *rejects_name;
	input *ins;
	size_t nins, cap;
	int stdin_seen, ran;
	int batch_given; /* else vector files fill batches up to the seal threshold */
	uint64_t input_bytes;
	sidecar ids, payloads;

	vdb_writer *w;
	uint32_t dim;
	uint64_t seal_bytes;
	vdb_jsonl_parser *parser;
	vdb_load_counts n;
	uint64_t p_up, p_del, p_bytes; /* the pending batch */
	uint64_t first, last;          /* its input line (or row) range */
	const char *unit;
	uint64_t done_bytes;      /* raw bytes of the finished inputs */
	const vdb_istream *cur;   /* the input being read */
	uint64_t cur_bytes;       /* ... or its bytes read so far, for an input read by offset */
	int chunked;              /* JSON lines: the bytes read are known as of the chunk stored */
	uint64_t chunk_raw;
	uint64_t row;             /* vector rows over all inputs */
	vdb_text idtext;
	atomic_int store_failed;  /* the storing thread stopped: the reading side stops too */
	vdb_cancel read_cancel;   /* the caller's cancel, or store_failed */
};

void vdb_loader_options_init(vdb_loader_options *o)
{
	memset(o, 0, sizeof *o);
	o->size = sizeof *o;
}

/* ---- messages ---- */

/* "NAME: message" (NAME "standard input" for NULL) over err's own message. */
static vdb_status located(vdb_error *err, const char *name, vdb_status code)
{
	char msg[sizeof err->message];
	snprintf(msg, sizeof msg, "%s", err->message);
	return vdb_err(err, code, "%s: %s", name ? name : "standard input", msg);
}

/* A library error about input `name`; cancellation stays as it is. */
static vdb_status input_failed(vdb_error *err, const char *name)
{
	return err->code == VDB_EINTR ? VDB_EINTR : located(err, name, err->code);
}

/* A bad row of a vector or CSV input: "NAME: UNIT N: why". */
static vdb_status bad_at(vdb_error *err, const char *name, const char *unit, uint64_t pos)
{
	char msg[sizeof err->message];
	snprintf(msg, sizeof msg, "%s", err->message);
	return vdb_err(err, VDB_EDATA, "%s: %s %llu: %s", name ? name : "standard input", unit,
		       (unsigned long long)pos, msg);
}

static vdb_status cancelled(vdb_error *err)
{
	return vdb_err(err, VDB_EINTR, "interrupted");
}

/* ---- batches ---- */

static void progress(vdb_loader *l, int now)
{
	if (!l->o.on_progress)
		return;
	uint64_t raw = l->chunked ? l->chunk_raw
				  : l->done_bytes + (l->cur ? vdb_istream_raw_bytes(l->cur) : l->cur_bytes);
	l->o.on_progress(l->o.ctx, l->n.committed + l->p_up + l->p_del, raw, now);
}

/* Moves the pending batch's counts to the committed totals; deletes of ids that had no
 * live record count as "not found", not as deleted. */
static void count_committed(vdb_loader *l)
{
	uint64_t absent = vdb_writer_last_not_found(l->w);
	l->n.batches++;
	l->n.committed += l->p_up + l->p_del;
	l->n.upserted += l->p_up;
	l->n.deleted += l->p_del - absent;
	l->n.not_found += absent;
	l->n.bytes += l->p_bytes;
	if (l->o.on_commit) {
		vdb_load_batch b = {l->n.batches, l->p_up + l->p_del, l->unit, l->first, l->last};
		l->o.on_commit(l->o.ctx, &b);
	}
	l->p_up = l->p_del = l->p_bytes = 0;
}

static vdb_status commit(vdb_loader *l, vdb_error *err)
{
	if (!vdb_writer_pending(l->w))
		return VDB_OK;
	vdb_status st = vdb_writer_commit(l->w, err);
	if (!st)
		count_committed(l);
	return st;
}

/* Commits when the pending batch is full. */
static vdb_status maybe_commit(vdb_loader *l, vdb_error *err)
{
	if (vdb_writer_pending(l->w) >= l->o.batch ||
	    vdb_writer_pending_bytes(l->w) >= PENDING_BYTES_CAP)
		return commit(l, err);
	return VDB_OK;
}

/* Vector rows without a batch size given fill each batch up to the seal threshold: the
 * writer stores such a batch directly as a sealed segment, so the rows are written once
 * instead of to the log and again when it is sealed. */
static vdb_status maybe_commit_rows(vdb_loader *l, int batch_given, vdb_error *err)
{
	if (batch_given)
		return maybe_commit(l, err);
	if (vdb_writer_pending_bytes(l->w) >= l->seal_bytes)
		return commit(l, err);
	return VDB_OK;
}

/* Notes a record added to the pending batch, found at `pos` (a line or row number). */
static void added(vdb_loader *l, uint64_t pos, int deleted, uint64_t bytes)
{
	l->n.seen++;
	if (l->p_up + l->p_del == 0)
		l->first = pos;
	l->last = pos;
	if (deleted)
		l->p_del++;
	else
		l->p_up++;
	l->p_bytes += bytes;
	progress(l, 0);
}

/* Deletes every record matching f in one committed batch, after committing what is
 * pending (the filter must see it). */
static vdb_status delete_where(vdb_loader *l, const vdb_filter *f, uint64_t lineno,
			       vdb_error *err)
{
	vdb_status st = commit(l, err);
	if (st)
		return st;
	l->first = l->last = lineno;
	uint64_t n;
	if ((st = vdb_writer_delete_where(l->w, f, &n, err)))
		return st;
	l->p_del = n;
	l->n.seen += n;
	return commit(l, err);
}

/* ---- JSON lines: the storing side ---- */

/* A bad line (`line` NULL: over-long, its bytes already passed on while it was read):
 * VDB_EDATA naming it, or with skip_invalid reported and skipped. */
static vdb_status reject(vdb_loader *l, const char *name, uint64_t lineno, const char *why,
			 const char *line, size_t len, int overflow_errno, vdb_error *err)
{
	char at[4200], whybuf[sizeof err->message];
	snprintf(whybuf, sizeof whybuf, "%s", why); /* why may be err's own message */
	why = whybuf;
	vdb_line_location(name, lineno, at, sizeof at);
	if (!l->o.skip_invalid)
		return vdb_err(err, VDB_EDATA, "%s: %s", at, why);
	l->n.rejected++;
	l->n.seen++;
	if (l->o.on_reject) {
		char msg[sizeof at + sizeof err->message + 2];
		snprintf(msg, sizeof msg, "%s: %s", at, why);
		l->o.on_reject(l->o.ctx, msg);
	}
	if (!l->o.write_rejected)
		return VDB_OK;
	int e = overflow_errno;
	if (!e && line && len)
		e = l->o.write_rejected(l->o.ctx, line, len);
	if (!e)
		e = l->o.write_rejected(l->o.ctx, "\n", 1);
	if (e)
		return vdb_err(err, VDB_EIO, "write %s: %s",
			       l->rejects_name ? l->rejects_name : "rejected lines", strerror(e));
	return VDB_OK;
}

/* Up to 2048 records parsed ahead of the storing thread: about two default batches, so
 * that parsing goes on while a commit waits for its fsync. */
enum { CHUNK_RECORDS = 256, CHUNK_BYTES = 1 << 20, CHUNK_QUEUE = 8 };

/* A parsed line of a chunk; its strings are in the chunk's text. */
typedef struct parsed {
	uint64_t lineno;
	size_t len; /* of the line, without its newline */
	int rejected; /* a bad line: `payload` holds why, `line` the line when kept */
	vdb_record_kind kind;
	vdb_id id;
	size_t id_off;
	size_t payload_off, payload_len; /* has_payload 0: none */
	int has_payload;
	size_t line_off; /* the line's bytes (kept with skip_invalid, for the rejects) */
	int has_line;
	int overflow_errno; /* passing an over-long line's bytes on failed */
} parsed;

typedef struct chunk {
	parsed rec[CHUNK_RECORDS];
	size_t n;
	float *vectors; /* CHUNK_RECORDS x dim */
	vdb_text text;
	int wait;           /* the input had no further line ready after this chunk */
	int last;           /* nothing is sent after this chunk */
	int failed;         /* ... because reading failed: the run's end decides what commits */
	uint64_t raw_bytes; /* of the input read so far, for the progress */
} chunk;

static vdb_status store_record(vdb_loader *l, const char *name, const chunk *c,
			       const parsed *r, size_t i, vdb_error *err)
{
	const char *text = c->text.data;
	const char *line = r->has_line ? text + r->line_off : NULL;
	if (r->rejected)
		return reject(l, name, r->lineno, text + r->payload_off, line, r->len,
			      r->overflow_errno, err);
	vdb_record rec = {r->id, c->vectors + i * l->dim, r->has_payload ? text + r->payload_off : NULL,
			  r->payload_len};
	if (r->id.is_string)
		rec.id.str = text + r->id_off;
	vdb_status st;
	if (r->kind == VDB_RECORD_DELETE_WHERE) {
		vdb_filter *f;
		st = vdb_filter_parse(rec.payload, rec.payload_len, &f, err);
		if (st == VDB_EINVAL)
			return reject(l, name, r->lineno, err->message, line, r->len, 0, err);
		if (st)
			return st;
		st = delete_where(l, f, r->lineno, err);
		vdb_filter_free(f);
		return st;
	}
	st = r->kind == VDB_RECORD_DELETE
		     ? vdb_writer_delete(l->w, &rec.id, err)
		     : vdb_writer_upsert(l->w, &rec.id, rec.vector, rec.payload, rec.payload_len, err);
	if (st == VDB_EDATA)
		return reject(l, name, r->lineno, err->message, line, r->len, 0, err);
	if (st)
		return st;
	added(l, r->lineno, r->kind == VDB_RECORD_DELETE, r->len + 1);
	return maybe_commit(l, err);
}

/* ---- the pipeline between the reading side and the storing side ---- */

typedef struct pipeline {
	vdb_loader *l;
	const char *name;
	int threaded;
	chunk ring[CHUNK_QUEUE];
	size_t nring;
	pthread_mutex_t mu;
	pthread_cond_t ready, space;
	size_t head, tail; /* filled: [head, tail) */
	int store_done;
	vdb_status store_st;
	vdb_error store_err;
	pthread_t thread;
	/* Parquet rows (else JSON lines): the file's rows and bytes, for the progress. */
	const input *parquet;
} pipeline;

static vdb_status store_parquet_row(pipeline *p, const chunk *c, const parsed *r, size_t i,
				    vdb_error *err);

/* Stores a chunk's records in order, then commits if the input had nothing more ready (or,
 * Parquet without a batch size, at its end: the last block is a segment too). */
static vdb_status store_chunk(pipeline *p, const chunk *c, vdb_error *err)
{
	vdb_loader *l = p->l;
	l->chunk_raw = c->raw_bytes;
	for (size_t i = 0; i < c->n; i++) {
		vdb_status st = p->parquet ? store_parquet_row(p, c, &c->rec[i], i, err)
					   : store_record(l, p->name, c, &c->rec[i], i, err);
		if (!st && vdb_cancelled(&l->o.cancel))
			st = cancelled(err);
		if (st)
			return st;
	}
	if (p->parquet)
		return c->last && !c->failed && !l->batch_given ? commit(l, err) : VDB_OK;
	return c->wait ? commit(l, err) : VDB_OK;
}

static void chunk_reset(chunk *c, const vdb_loader *l)
{
	c->n = 0;
	c->text.len = 0;
	c->wait = c->last = c->failed = 0;
	c->raw_bytes = l->done_bytes + (l->cur ? vdb_istream_raw_bytes(l->cur) : 0);
}

static void *store_main(void *arg)
{
	pipeline *p = arg;
	vdb_status st = VDB_OK;
	for (int last = 0; !last && !st;) {
		pthread_mutex_lock(&p->mu);
		while (p->head == p->tail)
			pthread_cond_wait(&p->ready, &p->mu);
		chunk *c = &p->ring[p->head % p->nring];
		pthread_mutex_unlock(&p->mu);
		st = store_chunk(p, c, &p->store_err);
		last = c->last;
		pthread_mutex_lock(&p->mu);
		p->head++;
		pthread_cond_signal(&p->space);
		pthread_mutex_unlock(&p->mu);
	}
	if (st)
		atomic_store(&p->l->store_failed, 1); /* the reading side's next read stops */
	pthread_mutex_lock(&p->mu);
	p->store_st = st;
	p->store_done = 1;
	pthread_cond_signal(&p->space);
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* Hands chunk c to the storing side: stores it here on one thread, else queues it (waiting
 * while the queue is full). Returns the next chunk to fill, or NULL once storing stopped. */
static chunk *send(pipeline *p, chunk *c)
{
	if (!p->threaded) {
		p->store_st = store_chunk(p, c, &p->store_err);
		if (p->store_st || c->last)
			return NULL;
		chunk_reset(c, p->l);
		return c;
	}
	pthread_mutex_lock(&p->mu);
	p->tail++;
	pthread_cond_signal(&p->ready);
	while (!p->store_done && p->tail - p->head == p->nring)
		pthread_cond_wait(&p->space, &p->mu);
	c = p->store_done ? NULL : &p->ring[p->tail % p->nring];
	pthread_mutex_unlock(&p->mu);
	if (c)
		chunk_reset(c, p->l);
	return c;
}

/* Copies a text into the chunk; its offset in *off. */
static int chunk_text(chunk *c, const char *s, size_t n, size_t *off)
{
	*off = c->text.len;
	return vdb_text_append(&c->text, s, n) ? -1 : 0;
}

static int chunk_add(chunk *c, uint32_t dim, uint64_t lineno, size_t len, vdb_record_kind kind,
		     const vdb_record *rec)
{
	parsed *r = &c->rec[c->n];
	*r = (parsed){.lineno = lineno, .len = len, .kind = kind, .id = rec->id,
		      .payload_len = rec->payload_len, .has_payload = rec->payload != NULL};
	if (rec->id.is_string) {
		r->id.str = NULL;
		if (chunk_text(c, rec->id.str, rec->id.len, &r->id_off))
			return -1;
	}
	if (rec->payload && chunk_text(c, rec->payload, rec->payload_len, &r->payload_off))
		return -1;
	if (kind == VDB_RECORD_UPSERT)
		memcpy(c->vectors + c->n * dim, rec->vector, dim * sizeof(float));
	c->n++;
	return 0;
}

/* A bad line into the chunk, with why (NUL-terminated) and, when kept, its bytes. */
static int chunk_reject(chunk *c, uint64_t lineno, const char *line, size_t len, const char *why,
			int overflow_errno)
{
	parsed *r = &c->rec[c->n];
	*r = (parsed){.lineno = lineno, .len = len, .rejected = 1, .has_line = line != NULL,
		      .overflow_errno = overflow_errno};
	if (chunk_text(c, why, strlen(why) + 1, &r->payload_off) ||
	    (line && chunk_text(c, line, len, &r->line_off)))
		return -1;
	c->n++;
	return 0;
}

static int overflow_to_rejects(void *ctx, const char *p, size_t n)
{
	const vdb_loader *l = ctx;
	return l->o.write_rejected(l->o.ctx, p, n);
}

/* The reading side: parses every line of `in` into chunks and sends them; returns the
 * reading side's own failure (the storing side's is in p->store_st). */
static vdb_status parse_lines(pipeline *p, input *in, chunk *c, vdb_error *err)
{
	vdb_loader *l = p->l;
	vdb_lines lines;
	vdb_lines_init(&lines, in->in, in->path, l->o.max_line_bytes);
	if (l->o.skip_invalid && l->o.write_rejected) {
		lines.overflow = overflow_to_rejects;
		lines.overflow_ctx = l;
	}
	/* On one thread a chunk goes to storing at once: rejected lines then reach the rejects
	 * in input order with the bytes of over-long ones, which are passed on as they are read. */
	size_t cap = p->threaded ? CHUNK_RECORDS : 1;
	int keep_lines = l->o.skip_invalid && l->o.write_rejected;
	vdb_status st = VDB_OK;
	size_t unflushed = 0; /* records sent since the last chunk marked `wait` */
	double pending_since = 0; /* when the first of the records not yet committed was read */
	for (;;) {
		int wait = !vdb_lines_ready(&lines);
		if (wait && l->o.commit_delay_ms && (c->n || unflushed)) {
			double left = pending_since + l->o.commit_delay_ms / 1e3 - vdb_monotonic();
			if (left > 0 && vdb_lines_wait(&lines, left))
				wait = 0; /* more came within the delay: it joins the batch */
		}
		if (c->n == cap || c->text.len >= CHUNK_BYTES || (wait && (c->n || unflushed))) {
			c->wait = wait;
			unflushed = wait ? 0 : unflushed + c->n;
			if (!(c = send(p, c)))
				break;
		}
		const char *line;
		size_t len;
		int r = vdb_lines_next(&lines, &line, &len);
		if (r == VDB_LINE_EOF)
			break;
		if (r == VDB_LINE_CANCELLED) {
			st = cancelled(err);
			break;
		}
		if (r == VDB_LINE_ERROR) {
			*err = lines.err;
			st = input_failed(err, in->path);
			break;
		}
		if (r == VDB_LINE_OK && vdb_line_is_blank(line, len))
			continue; /* blank lines are allowed and ignored */
		if (!c->n && !unflushed)
			pending_since = vdb_monotonic();
		vdb_record_kind kind;
		vdb_record rec;
		int bad = 0, failed;
		if (r == VDB_LINE_TOO_LONG) {
			char why[96];
			snprintf(why, sizeof why, "line is longer than %zu bytes (--max-line-bytes)",
				 l->o.max_line_bytes);
			bad = 1;
			failed = chunk_reject(c, lines.lineno, NULL, 0, why, lines.overflow_errno);
		} else if (vdb_jsonl_parse_record(l->parser, line, len, &kind, &rec, err)) {
			if (err->code != VDB_EDATA) {
				st = err->code;
				break;
			}
			bad = 1;
			failed = chunk_reject(c, lines.lineno, keep_lines ? line : NULL, len,
					      err->message, 0);
		} else {
			failed = chunk_add(c, l->dim, lines.lineno, len, kind, &rec);
			if (!failed && keep_lines) {
				parsed *pr = &c->rec[c->n - 1];
				pr->has_line = 1;
				failed = chunk_text(c, line, len, &pr->line_off);
			}
		}
		if (failed) {
			st = vdb_err_nomem(err);
			break;
		}
		if (bad && !l->o.skip_invalid)
			break; /* the records before it are stored, then it stops the run */
	}
	if (c) { /* the end: the last chunk, maybe empty, tells the storing side to finish */
		c->last = 1;
		send(p, c);
	}
	vdb_lines_free(&lines);
	return st;
}

/* Signals are the application's: the storing thread (and the graph builders it starts)
 * leaves the asynchronous ones to the application's threads. */
static int start_store_thread(pipeline *p)
{
	static const int sigs[] = {SIGINT,  SIGTERM, SIGHUP,  SIGQUIT,  SIGALRM, SIGUSR1,
				   SIGUSR2, SIGCHLD, SIGPIPE, SIGWINCH, SIGURG};
	sigset_t block, old;
	sigemptyset(&block);
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		sigaddset(&block, sigs[i]);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	int failed = pthread_create(&p->thread, NULL, store_main, p);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return failed;
}

/* A pipeline for one input: a storing thread when threaded (and one can be had), else the
 * reading side stores each chunk itself. NULL when out of memory. */
static pipeline *pipeline_open(vdb_loader *l, const char *name, int threaded)
{
	pipeline *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->l = l;
	p->name = name;
	p->threaded = threaded;
	p->nring = threaded ? CHUNK_QUEUE : 1;
	for (size_t i = 0; i < p->nring; i++)
		if (!(p->ring[i].vectors = malloc((size_t)CHUNK_RECORDS * l->dim * sizeof(float)))) {
			p->threaded = 0;
			while (i--)
				free(p->ring[i].vectors);
			free(p);
			return NULL;
		}
	if (p->threaded) {
		pthread_mutex_init(&p->mu, NULL);
		pthread_cond_init(&p->ready, NULL);
		pthread_cond_init(&p->space, NULL);
		if (start_store_thread(p)) { /* no thread to be had: one is enough */
			pthread_mutex_destroy(&p->mu);
			pthread_cond_destroy(&p->ready);
			pthread_cond_destroy(&p->space);
			p->threaded = 0;
		}
	}
	chunk_reset(&p->ring[0], l);
	return p;
}

/* Waits for the storing side (the reading side sent its last chunk, or stopped) and frees
 * p; returns the storing side's failure first (the reading side stopped because of it),
 * else the reading side's, st. */
static vdb_status pipeline_close(pipeline *p, vdb_status st, vdb_error *err)
{
	if (p->threaded) {
		pthread_join(p->thread, NULL);
		pthread_mutex_destroy(&p->mu);
		pthread_cond_destroy(&p->ready);
		pthread_cond_destroy(&p->space);
	}
	if (p->store_st) {
		st = p->store_st;
		*err = p->store_err;
	}
	for (size_t i = 0; i < p->nring; i++) {
		free(p->ring[i].vectors);
		vdb_text_free(&p->ring[i].text);
	}
	free(p);
	return st;
}

/* Reads one JSON-lines input to its end. */
static vdb_status load_lines(vdb_loader *l, input *in, vdb_error *err)
{
	/* skip_invalid stays on one thread: see parse_lines. */
	pipeline *p = pipeline_open(l, in->path, l->o.threads > 1 && !l->o.skip_invalid);
	if (!p)
		return vdb_err_nomem(err);
	l->unit = "lines";
	l->chunked = 1;
	vdb_status st = parse_lines(p, in, &p->ring[0], err);
	st = pipeline_close(p, st, err);
	l->chunked = 0;
	return st;
}

/* ---- vector files ---- */

static vdb_vec_format vec_format(vdb_file_format f)
{
	return f == VDB_FILE_NPY ? VDB_VEC_NPY : f == VDB_FILE_FVECS ? VDB_VEC_FVECS : VDB_VEC_BVECS;
}

/* The next line of a sidecar, which the up-front count says is there. */
static vdb_status sidecar_line(sidecar *s, uint64_t row, const char **line, size_t *len,
			       vdb_error *err)
{
	int r = vdb_lines_next(&s->lines, line, len);
	if (r == VDB_LINE_OK)
		return VDB_OK;
	if (r == VDB_LINE_CANCELLED)
		return cancelled(err);
	if (r == VDB_LINE_ERROR) {
		*err = s->lines.err;
		return input_failed(err, s->path);
	}
	if (r == VDB_LINE_TOO_LONG)
		return vdb_err(err, VDB_EDATA, "%s: line %llu is longer than the --max-line-bytes limit",
			       s->path, (unsigned long long)s->lines.lineno);
	return vdb_err(err, VDB_EDATA, "%s: ends before row %llu", s->path, (unsigned long long)row);
}

/* The id of the next vector row: from the ids file, else the row number plus id_offset. */
static vdb_status row_id(vdb_loader *l, vdb_id *id, vdb_error *err)
{
	if (!l->ids.path) {
		if (l->row > UINT64_MAX - l->o.id_offset)
			return vdb_err(err, VDB_EDATA, "row %llu: row number plus --id-offset is "
				       "beyond the largest id", (unsigned long long)l->row);
		*id = (vdb_id){0, l->row + l->o.id_offset, NULL, 0};
		return VDB_OK;
	}
	const char *line;
	size_t len;
	vdb_status st = sidecar_line(&l->ids, l->row, &line, &len, err);
	if (st)
		return st;
	l->idtext.len = 0;
	if (vdb_text_append(&l->idtext, line, len) || vdb_text_append(&l->idtext, "", 1))
		return vdb_err_nomem(err);
	int nul = memchr(line, 0, len) != NULL;
	if (nul || vdb_id_parse_text(l->idtext.data, id, err)) {
		if (nul)
			vdb_err(err, VDB_EDATA, "an id must not hold a NUL byte");
		return bad_at(err, l->ids.path, "line", l->ids.lines.lineno);
	}
	return VDB_OK;
}

static vdb_status row_payload(vdb_loader *l, const char **payload, size_t *plen, vdb_error *err)
{
	*payload = NULL;
	*plen = 0;
	if (!l->payloads.path)
		return VDB_OK;
	const char *line;
	size_t len;
	vdb_status st = sidecar_line(&l->payloads, l->row, &line, &len, err);
	if (st)
		return st;
	if (vdb_jsonl_parse_payload(l->parser, line, len, payload, plen, err))
		return bad_at(err, l->payloads.path, "line", l->payloads.lines.lineno);
	return VDB_OK;
}

/* Vector rows one at a time: with ids or payloads files, or a batch size given. Rows are
 * numbered from 0 in each file. */
static vdb_status load_vector_rows(vdb_loader *l, input *in, vdb_error *err)
{
	for (uint64_t row = 0;; row++) {
		const float *vec;
		int has;
		vdb_status st;
		/* As with JSON lines: commit before we may block on a slow producer. */
		if (vdb_writer_pending(l->w) && !vdb_vec_reader_ready(in->vr) &&
		    !vdb_istream_ready(in->in) && (st = commit(l, err)))
			return st;
		if (vdb_vec_reader_next(in->vr, &vec, &has, err))
			return input_failed(err, in->path);
		if (!has)
			return VDB_OK;
		vdb_id id;
		const char *payload;
		size_t plen;
		if ((st = row_id(l, &id, err)) || (st = row_payload(l, &payload, &plen, err)))
			return st;
		st = vdb_writer_upsert(l->w, &id, vec, payload, plen, err);
		if (st == VDB_EDATA)
			return bad_at(err, in->path, "row", row);
		if (st)
			return st;
		l->row++;
		added(l, row, 0, 0);
		if ((st = maybe_commit_rows(l, l->batch_given, err)))
			return st;
		if (vdb_cancelled(&l->o.cancel))
			return cancelled(err);
	}
}

/* Stores n rows of a block (stride floats apart), the first being row `row` of the input,
 * as one batch. */
static vdb_status commit_block(vdb_loader *l, input *in, const float *block, size_t stride,
			       size_t n, uint64_t row, unsigned flags, vdb_error *err)
{
	size_t bad = 0;
	vdb_status st = vdb_writer_upsert_rows(l->w, l->row + l->o.id_offset, block, stride, n,
					       flags, &bad, err);
	if (st == VDB_EDATA) {
		/* Every row before the bad one is committed, as on the row-by-row path. */
		vdb_error why = *err;
		if (bad && (st = commit_block(l, in, block, stride, bad, row, 0, err)))
			return st;
		*err = why;
		return bad_at(err, in->path, "row", row + bad);
	}
	if (st)
		return st;
	l->row += n;
	l->n.seen += n;
	l->p_up = n;
	l->first = row;
	l->last = row + n - 1;
	count_committed(l);
	progress(l, 1);
	return VDB_OK;
}

/* Vector rows with the default ids, no payloads and no batch size: taken in blocks, which
 * vdb_writer_upsert_rows stores as segments without copying the rows again; the last block
 * of a file too, marked VDB_ROWS_LAST. Rows read into a buffer come in blocks of the seal
 * threshold's size. Rows mapped in place from a plain file cost no buffer, and come in
 * blocks of up to BULK_MAPPED_BYTES: most files become one segment with one graph, as
 * vdb-compact would leave them, instead of many segments searched one after the other. A
 * block is one batch, committed whole or not at all. Same results and guarantees as the
 * row-by-row path. */
#define BULK_MAPPED_BYTES (4ull << 30)

static vdb_status load_vector_blocks(vdb_loader *l, input *in, vdb_error *err)
{
	vdb_status st = commit(l, err); /* an earlier input's records: a block is a batch */
	if (st)
		return st;
	size_t rowbytes = (size_t)l->dim * sizeof(float);
	uint64_t block_bytes = l->seal_bytes;
	if (vdb_vec_reader_maps(in->vr) && block_bytes < BULK_MAPPED_BYTES)
		block_bytes = BULK_MAPPED_BYTES;
	uint64_t cap = (block_bytes + rowbytes - 1) / rowbytes;
	if (cap > UINT32_MAX - 1)
		cap = UINT32_MAX - 1; /* a segment's rows are numbered in 32 bits */
	int64_t declared = vdb_vec_reader_rows(in->vr);
	/* A short block of a regular file is its end (a pipe's may be a pause). */
	struct stat sb;
	int file = fstat(in->fd, &sb) == 0 && S_ISREG(sb.st_mode);
	if (declared >= 0 && (uint64_t)declared < cap)
		cap = declared ? (uint64_t)declared : 1;
	for (uint64_t row = 0;;) {
		const float *block;
		size_t got, n, stride;
		vdb_status rst = vdb_vec_reader_block(in->vr, (size_t)cap, &block, &stride, &got, err);
		progress(l, 1); /* the block is read; storing it (a graph build) takes a while */
		/* Ids stop at UINT64_MAX: the rows that still have one are stored first. */
		uint64_t max_row = UINT64_MAX - l->o.id_offset;
		n = l->row > max_row ? 0 : max_row - l->row >= got ? got : (size_t)(max_row - l->row + 1);
		int last = !rst && (row + got == (uint64_t)declared || (file && got < cap));
		vdb_error read_err = *err;
		if (n && (st = commit_block(l, in, block, stride, n, row, last ? VDB_ROWS_LAST : 0,
					    err)))
			return st;
		row += n;
		if (n < got)
			return vdb_err(err, VDB_EDATA, "row %llu: row number plus --id-offset is beyond "
				       "the largest id", (unsigned long long)l->row);
		if (rst) {
			*err = read_err;
			return input_failed(err, in->path);
		}
		if (!got)
			return VDB_OK;
		if (vdb_cancelled(&l->o.cancel))
			return cancelled(err);
	}
}

static vdb_status load_vectors(vdb_loader *l, input *in, vdb_error *err)
{
	if (!in->vr && vdb_vec_reader_open(in->in, vec_format(in->f), l->dim, &in->vr, err))
		return input_failed(err, in->path);
	l->unit = "rows";
	if (!l->ids.path && !l->payloads.path && !l->batch_given)
		return load_vector_blocks(l, in, err);
	return load_vector_rows(l, in, err);
}

/* ---- CSV ---- */

static vdb_status load_csv(vdb_loader *l, input *in, vdb_error *err)
{
	vdb_csv_reader *r;
	if (vdb_csv_reader_open(in->in, l->dim, &l->csv, &r, err))
		return input_failed(err, in->path);
	l->unit = "lines";
	vdb_status st = VDB_OK;
	for (;;) {
		vdb_record rec;
		int has;
		if (vdb_writer_pending(l->w) && !vdb_csv_reader_ready(r) &&
		    !vdb_istream_ready(in->in) && (st = commit(l, err)))
			break;
		if (vdb_csv_reader_next(r, &rec, &has, err)) {
			st = input_failed(err, in->path);
			break;
		}
		if (!has)
			break;
		st = vdb_writer_upsert(l->w, &rec.id, rec.vector, rec.payload, rec.payload_len, err);
		if (st == VDB_EDATA)
			st = bad_at(err, in->path, "line", vdb_csv_reader_line(r));
		if (st)
			break;
		added(l, vdb_csv_reader_line(r), 0, 0);
		if ((st = maybe_commit(l, err)))
			break;
		if (vdb_cancelled(&l->o.cancel)) {
			st = cancelled(err);
			break;
		}
	}
	vdb_csv_reader_close(r);
	return st;
}

/* ---- Parquet ---- */

/* Rows of a Parquet file, read on this thread and stored on the pipeline's (the pages'
 * reading and decoding overlap the storing); a file without an id column numbers its rows
 * as vector files do (over all inputs). Unless a batch size is given, the rows go in blocks
 * of PARQUET_BLOCK_BYTES, each stored directly as a segment (vdb_writer_upsert_bulk), the
 * file's last block too: a load leaves no log tail, as vector files' do. A bad row stops
 * the run, the rows before it committed. */
static vdb_status load_parquet(vdb_loader *l, input *in, vdb_error *err)
{
	l->unit = "rows";
	vdb_status st = commit(l, err); /* an earlier input's records: a block is a batch */
	if (st)
		return st;
	pipeline *p = pipeline_open(l, in->path, l->o.threads > 1);
	if (!p)
		return vdb_err_nomem(err);
	p->parquet = in;
	chunk *c = &p->ring[0];
	while (c) {
		if (c->n == CHUNK_RECORDS || c->text.len >= CHUNK_BYTES) {
			if (!(c = send(p, c)))
				break;
		}
		vdb_record rec;
		int has;
		if (vdb_parquet_reader_next(in->pr, &rec, &has, err)) {
			st = input_failed(err, in->path);
			break;
		}
		if (!has)
			break;
		if (!vdb_parquet_reader_has_ids(in->pr))
			rec.id = (vdb_id){0, l->row, NULL, 0};
		l->row++;
		if (chunk_add(c, l->dim, vdb_parquet_reader_row(in->pr), 0, VDB_RECORD_UPSERT,
			      &rec)) {
			st = vdb_err_nomem(err);
			break;
		}
	}
	if (c) { /* the end: the last chunk, maybe empty, tells the storing side to finish */
		c->last = 1;
		c->failed = st != VDB_OK;
		send(p, c);
	}
	return pipeline_close(p, st, err);
}

/* The storing side of load_parquet: row r of a chunk (its row number in lineno). */
static vdb_status store_parquet_row(pipeline *p, const chunk *c, const parsed *r, size_t i,
				    vdb_error *err)
{
	vdb_loader *l = p->l;
	vdb_id id = r->id;
	if (id.is_string)
		id.str = c->text.data + r->id_off;
	const char *payload = r->has_payload ? c->text.data + r->payload_off : NULL;
	const float *vector = c->vectors + i * l->dim;
	vdb_status st = l->batch_given
				? vdb_writer_upsert(l->w, &id, vector, payload, r->payload_len, err)
				: vdb_writer_upsert_bulk(l->w, &id, vector, payload, r->payload_len, err);
	if (st == VDB_EDATA)
		return bad_at(err, p->name, "row", r->lineno);
	if (st)
		return st;
	uint64_t rows = vdb_parquet_reader_rows(p->parquet->pr), size = p->parquet->pq_size;
	l->cur_bytes = rows ? (uint64_t)((double)size * (double)(r->lineno + 1) / (double)rows)
			    : size;
	added(l, r->lineno, 0, 0);
	if (l->batch_given)
		return maybe_commit(l, err);
	if (vdb_writer_pending_bytes(l->w) >= PARQUET_BLOCK_BYTES)
		return commit(l, err);
	return VDB_OK;
}

static int ends_zst(const char *path)
{
	size_t n = strlen(path);
	return n > 4 && !strcmp(path + n - 4, ".zst");
}

/* A Parquet input is read by offset (its footer first): a plain file in place; standard
 * input, a pipe or a .zst file is first copied to an unnamed temporary file. Either way the
 * footer and every column chunk's place are checked here, before anything is committed. */
static vdb_status open_parquet_input(vdb_loader *l, input *in, vdb_error *err)
{
	int fd = in->path ? open(in->path, O_RDONLY | O_CLOEXEC) : STDIN_FILENO;
	struct stat sb;
	vdb_status st;
	if (fd < 0)
		return vdb_err_sys(err, VDB_ENOENT, "%s", in->path);
	if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && !(in->path && ends_zst(in->path))) {
		in->fd = fd;
		in->pq_size = (uint64_t)sb.st_size;
	} else {
		const char *dir = getenv("TMPDIR");
		char name[4096];
		snprintf(name, sizeof name, "%s/vdb-parquet-XXXXXX", dir && *dir ? dir : "/tmp");
		int tmp = mkstemp(name);
		if (tmp >= 0)
			unlink(name); /* gone when closed, whatever happens */
		if (tmp < 0) {
			st = vdb_err_sys(err, VDB_EIO, "a temporary file to hold %s (set TMPDIR)",
					 in->path ? in->path : "standard input");
			if (in->path)
				close(fd);
			return st;
		}
		vdb_istream *is = NULL;
		char *buf = malloc(1u << 20);
		uint64_t total = 0;
		st = buf ? vdb_istream_open(fd, &l->read_cancel, &is, err) : vdb_err_nomem(err);
		for (size_t got = 1; !st && got;) {
			if (!(st = vdb_istream_read(is, buf, 1u << 20, &got, err)) && got &&
			    vdb_write_all(tmp, buf, got) < 0)
				st = vdb_err_sys(err, VDB_EIO, "writing a temporary file");
			total += got;
		}
		free(buf);
		vdb_istream_close(is);
		if (in->path)
			close(fd);
		if (st) {
			close(tmp);
			return input_failed(err, in->path);
		}
		in->fd = tmp;
		in->pq_size = total;
	}
	if (vdb_parquet_reader_open(in->fd, in->pq_size, l->dim, &l->csv, &in->pr, err))
		return input_failed(err, in->path);
	return VDB_OK;
}

/* ---- inputs ---- */

static int read_cancelled(void *ctx)
{
	vdb_loader *l = ctx;
	return atomic_load_explicit(&l->store_failed, memory_order_relaxed) ||
	       vdb_cancelled(&l->o.cancel);
}

/* Opens path (NULL: standard input) as a stream that decompresses zstd by itself. */
static vdb_status open_stream(vdb_loader *l, const char *path, int *fd, vdb_istream **in,
			      vdb_error *err)
{
	*fd = path ? open(path, O_RDONLY | O_CLOEXEC) : STDIN_FILENO;
	if (*fd < 0)
		return vdb_err_sys(err, VDB_ENOENT, "%s", path);
	if (vdb_istream_open(*fd, &l->read_cancel, in, err))
		return input_failed(err, path);
	return VDB_OK;
}

static void close_input(input *in)
{
	vdb_vec_reader_close(in->vr);
	vdb_istream_close(in->in);
	vdb_parquet_reader_close(in->pr);
	if ((in->path || in->pr) && in->fd >= 0 && in->fd != STDIN_FILENO)
		close(in->fd);
	in->pr = NULL;
	in->vr = NULL;
	in->in = NULL;
	in->fd = -1;
}

static vdb_status load_input(vdb_loader *l, input *in, vdb_error *err)
{
	if (in->f == VDB_FILE_PARQUET) {
		vdb_status st = in->pr ? VDB_OK : open_parquet_input(l, in, err);
		l->cur = NULL;
		l->cur_bytes = 0;
		if (!st)
			st = load_parquet(l, in, err);
		l->done_bytes += in->pq_size;
		l->n.bytes += in->pq_size;
		l->cur_bytes = 0;
		close_input(in);
		return st;
	}
	vdb_status st = in->in ? VDB_OK : open_stream(l, in->path, &in->fd, &in->in, err);
	if (st)
		return st;
	l->cur = in->in;
	if (in->f == VDB_FILE_CSV)
		st = load_csv(l, in, err);
	else if (vdb_file_format_is_vectors(in->f))
		st = load_vectors(l, in, err);
	else
		st = load_lines(l, in, err);
	l->done_bytes += vdb_istream_raw_bytes(in->in);
	if (in->f != VDB_FILE_JSONL)
		l->n.bytes += vdb_istream_raw_bytes(in->in);
	l->cur = NULL;
	close_input(in);
	return st;
}

static vdb_status open_sidecar(vdb_loader *l, sidecar *s, vdb_error *err)
{
	vdb_status st = open_stream(l, s->path, &s->fd, &s->in, err);
	if (!st)
		vdb_lines_init(&s->lines, s->in, s->path, l->o.max_line_bytes);
	return st;
}

static void close_sidecar(sidecar *s)
{
	if (!s->in)
		return;
	vdb_lines_free(&s->lines);
	vdb_istream_close(s->in);
	close(s->fd);
	s->in = NULL;
}

/* Lines of a sidecar file, read through once. */
static vdb_status count_lines(vdb_loader *l, sidecar *s, uint64_t *n, vdb_error *err)
{
	vdb_status st = open_sidecar(l, s, err);
	*n = 0;
	while (!st) {
		const char *line;
		size_t len;
		int r = vdb_lines_next(&s->lines, &line, &len);
		if (r == VDB_LINE_EOF)
			break;
		if (r == VDB_LINE_CANCELLED) {
			st = cancelled(err);
		} else if (r == VDB_LINE_ERROR) {
			*err = s->lines.err;
			st = input_failed(err, s->path);
		} else {
			++*n;
		}
	}
	close_sidecar(s);
	return st;
}

/* Rows of a vector input whose header does not say: read through a second descriptor. A
 * bad row ends the count there; the load itself then stops at that row with its error. */
static vdb_status count_rows(vdb_loader *l, input *in, uint64_t *n, vdb_error *err)
{
	input c = {in->path, in->f, -1, NULL, NULL, NULL, 0};
	vdb_status st = open_stream(l, c.path, &c.fd, &c.in, err);
	vdb_error rerr = {.code = VDB_OK};
	*n = 0;
	if (!st && !vdb_vec_reader_open(c.in, vec_format(c.f), l->dim, &c.vr, &rerr))
		for (;;) {
			const float *vec;
			int has;
			if (vdb_vec_reader_next(c.vr, &vec, &has, &rerr) || !has)
				break;
			++*n;
		}
	if (!st && rerr.code == VDB_EINTR)
		st = cancelled(err);
	close_input(&c);
	return st;
}

/* Opens a vector input and reads its header (which checks a regular file's size). */
static vdb_status open_vector_input(vdb_loader *l, input *in, vdb_error *err)
{
	vdb_status st = open_stream(l, in->path, &in->fd, &in->in, err);
	if (!st && vdb_vec_reader_open(in->in, vec_format(in->f), l->dim, &in->vr, err))
		st = input_failed(err, in->path);
	return st;
}

static int is_regular(const char *path)
{
	struct stat st;
	return path && stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Every vector input that is a regular file is opened up front: its header and size are
 * checked (vdb_vec_reader_open) before anything of any input is committed. */
static vdb_status open_vector_files(vdb_loader *l, vdb_error *err)
{
	for (size_t i = 0; i < l->nins; i++) {
		input *in = &l->ins[i];
		vdb_status st;
		if (vdb_file_format_is_vectors(in->f) && is_regular(in->path) &&
		    (st = open_vector_input(l, in, err)))
			return st;
		if (in->f != VDB_FILE_PARQUET || (in->path && ends_zst(in->path)))
			continue;
		if ((st = open_parquet_input(l, in, err)))
			return st;
		/* A plain file is checked now and read again in its turn: a dataset of many
		 * parts does not hold a descriptor and a footer per part meanwhile. Standard
		 * input was copied to a temporary file, which is kept. A .zst file is copied
		 * and checked in its turn, before any of its rows. */
		if (in->path)
			close_input(in);
	}
	return VDB_OK;
}

/* Ids and payloads files must have one line per vector row: checked before anything is
 * committed, so a misaligned pair of files changes nothing. */
static vdb_status check_sidecars(vdb_loader *l, vdb_error *err)
{
	uint64_t rows = 0;
	for (size_t i = 0; i < l->nins; i++) {
		input *in = &l->ins[i];
		vdb_status st;
		uint64_t r;
		if (!in->vr && (st = open_vector_input(l, in, err)))
			return st;
		int64_t declared = vdb_vec_reader_rows(in->vr);
		if (declared >= 0)
			r = (uint64_t)declared;
		else if (is_regular(in->path)) {
			if ((st = count_rows(l, in, &r, err)))
				return st;
		} else
			return vdb_err(err, VDB_EINVAL, "the rows of %s cannot be counted in advance "
				       "(for --ids/--payloads): give it as a file, or as .npy",
				       in->path ? in->path : "standard input");
		rows += r;
	}
	sidecar *sc[2] = {&l->ids, &l->payloads};
	for (int i = 0; i < 2; i++) {
		if (!sc[i]->path)
			continue;
		uint64_t lines;
		vdb_status st = count_lines(l, sc[i], &lines, err);
		if (st)
			return st;
		if (lines != rows)
			return vdb_err(err, VDB_EDATA, "%s %s has %llu lines, but the vector input "
				       "has %llu rows: nothing was ingested",
				       i ? "--payloads" : "--ids", sc[i]->path,
				       (unsigned long long)lines, (unsigned long long)rows);
		if ((st = open_sidecar(l, sc[i], err)))
			return st;
	}
	return VDB_OK;
}

/* ---- the API ---- */

static char *dup_or_null(const char *s, int *failed)
{
	char *d = s ? strdup(s) : NULL;
	if (s && !d)
		*failed = 1;
	return d;
}

/* An ids or payloads file is read twice (counted, then read): it must be a file. */
static vdb_status check_sidecar_path(const char *path, const char *option, vdb_error *err)
{
	if (path && !strcmp(path, "-"))
		return vdb_err(err, VDB_EINVAL, "%s needs a file, not standard input", option);
	return VDB_OK;
}

vdb_status vdb_loader_new(const vdb_loader_options *o, vdb_loader **out, vdb_error *err)
{
	*out = NULL;
	vdb_loader_options opt;
	vdb_loader_options_init(&opt);
	vdb_status st = vdb_options_take(&opt, sizeof opt, o, "loader options", err);
	if (st)
		return st;
	if (opt.batch > MAX_BATCH)
		return vdb_err(err, VDB_EINVAL, "batch must be 1 to %d records", MAX_BATCH);
	if (opt.commit_delay_ms > 60000)
		return vdb_err(err, VDB_EINVAL, "--commit-delay must be 0 to 60000 milliseconds");
	if ((st = check_sidecar_path(opt.ids_path, "--ids", err)) ||
	    (st = check_sidecar_path(opt.payloads_path, "--payloads", err)))
		return st;
	vdb_loader *l = calloc(1, sizeof *l);
	if (!l)
		return vdb_err_nomem(err);
	l->batch_given = opt.batch != 0;
	if (!opt.batch)
		opt.batch = DEFAULT_BATCH;
	if (!opt.max_line_bytes)
		opt.max_line_bytes = DEFAULT_MAX_LINE;
	int failed = 0;
	l->ids.path = dup_or_null(opt.ids_path, &failed);
	l->payloads.path = dup_or_null(opt.payloads_path, &failed);
	l->rejects_name = dup_or_null(opt.rejects_name, &failed);
	l->ids.fd = l->payloads.fd = -1;
	opt.ids_path = opt.payloads_path = opt.rejects_name = NULL; /* the copies are used */
	vdb_csv_options_init(&l->csv);
	if (opt.csv)
		l->csv = *opt.csv;
	opt.csv = NULL;
	l->o = opt;
	l->read_cancel = (vdb_cancel){read_cancelled, l};
	l->unit = "lines";
	if (failed) {
		vdb_loader_free(l);
		return vdb_err_nomem(err);
	}
	*out = l;
	return VDB_OK;
}

vdb_status vdb_loader_add_input(vdb_loader *l, const char *path, vdb_file_format f,
				vdb_error *err)
{
	int is_stdin = !path || !strcmp(path, "-");
	const char *shown = is_stdin ? "-" : path;
	if (f == VDB_FILE_AUTO && !is_stdin)
		f = vdb_file_format_of(path);
	if (f == VDB_FILE_AUTO)
		f = VDB_FILE_JSONL; /* standard input, and any other name: JSON lines */
	if (f < VDB_FILE_JSONL || f > VDB_FILE_PARQUET)
		return vdb_err(err, VDB_EINVAL, "unknown input format %d", (int)f);
	if (is_stdin && l->stdin_seen)
		return vdb_err(err, VDB_EINVAL, "standard input ('-') is given twice");
	if (f != VDB_FILE_JSONL && l->o.skip_invalid)
		return vdb_err(err, VDB_EINVAL, "--skip-invalid applies to JSON lines only (%s is %s)",
			       shown, vdb_file_format_name(f));
	if (!vdb_file_format_is_vectors(f) && (l->ids.path || l->payloads.path || l->o.id_offset))
		return vdb_err(err, VDB_EINVAL, "--ids, --payloads and --id-offset go with .npy, "
			       ".fvecs or .bvecs input (%s is %s)", shown, vdb_file_format_name(f));
	/* Every input is checked up front: a missing file fails the run before anything is
	 * committed. */
	struct stat st;
	if (!is_stdin && access(path, R_OK) < 0)
		return vdb_err_sys(err, VDB_ENOENT, "%s", path);
	if (l->nins == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 4;
		input *ins = realloc(l->ins, cap * sizeof *ins);
		if (!ins)
			return vdb_err_nomem(err);
		l->ins = ins;
		l->cap = cap;
	}
	input *in = &l->ins[l->nins];
	*in = (input){NULL, f, -1, NULL, NULL, NULL, 0};
	if (!is_stdin && !(in->path = strdup(path)))
		return vdb_err_nomem(err);
	l->nins++;
	l->stdin_seen |= is_stdin;
	if (is_stdin || stat(path, &st) < 0 || !S_ISREG(st.st_mode))
		l->input_bytes = UINT64_MAX;
	else if (l->input_bytes != UINT64_MAX)
		l->input_bytes += (uint64_t)st.st_size;
	return VDB_OK;
}

uint64_t vdb_loader_input_bytes(const vdb_loader *l)
{
	return l->input_bytes;
}

static vdb_status run(vdb_loader *l, vdb_error *err)
{
	vdb_collection_config cfg;
	vdb_collection_config_init(&cfg);
	vdb_writer_get_config(l->w, &cfg);
	l->dim = cfg.dim;
	l->seal_bytes = cfg.seal_bytes;
	vdb_status st = vdb_jsonl_parser_new(cfg.dim, &l->parser, err);
	if (!st)
		st = open_vector_files(l, err);
	if (!st && (l->ids.path || l->payloads.path))
		st = check_sidecars(l, err);
	if (!st && l->o.delete_where)
		st = delete_where(l, l->o.delete_where, 0, err);
	for (size_t i = 0; i < l->nins && !st; i++)
		st = load_input(l, &l->ins[i], err);
	return st;
}

vdb_status vdb_loader_run(vdb_loader *l, vdb_writer *w, vdb_error *err)
{
	if (l->ran)
		return vdb_err(err, VDB_EINVAL, "a loader runs once");
	l->ran = 1;
	l->w = w;
	vdb_status st = run(l, err);
	if (st == VDB_OK || st == VDB_EDATA) {
		/* Everything before the end, or before the first bad line, is committed. */
		vdb_error cerr;
		if (commit(l, &cerr)) {
			*err = cerr;
			st = cerr.code;
		} else if (st == VDB_OK && !l->o.no_settle) {
			/* What was loaded is committed; settling only makes it faster to search. */
			st = vdb_writer_settle(w, err);
		}
	} else {
		vdb_writer_rollback(w); /* interrupted or failed: only committed batches stay */
	}
	return st;
}

void vdb_loader_counts(const vdb_loader *l, vdb_load_counts *out)
{
	*out = l->n;
	out->read_bytes = l->done_bytes + (l->cur ? vdb_istream_raw_bytes(l->cur) : 0);
}

void vdb_loader_free(vdb_loader *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->nins; i++) {
		close_input(&l->ins[i]);
		free(l->ins[i].path);
	}
	free(l->ins);
	close_sidecar(&l->ids);
	close_sidecar(&l->payloads);
	free(l->ids.path);
	free(l->payloads.path);
	free(l->rejects_name);
	vdb_text_free(&l->idtext);
	vdb_jsonl_parser_free(l->parser);
	free(l);
}
