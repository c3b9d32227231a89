/* vdb-ingest: JSON-lines records from files or standard input into a collection, committed
 * in durable batches.
 *
 * A batch is committed when it reaches --batch records, and also whenever the input has no
 * further line (or row) ready: a slow producer's records become durable and visible promptly, while
 * a fast one still gets full batches (one fsync each). On the first bad line (by default)
 * every record before it is committed and nothing after it; with --skip-invalid bad lines
 * are reported and skipped. SIGINT/SIGTERM stop reading; only acknowledged batches remain. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "progress.h"

static volatile sig_atomic_t stop_signal;

/* The cancel flag of input reads: set by SIGINT/SIGTERM (with stop_signal), and by a
 * writer thread that failed (see ingest_lines_piped). */
static volatile sig_atomic_t read_cancel;

static void on_signal(int sig)
{
	stop_signal = sig;
	read_cancel = 1;
}

typedef enum fmt { FMT_DEFAULT, FMT_JSONL, FMT_NPY, FMT_FVECS, FMT_BVECS, FMT_CSV } fmt;

static const char *const fmt_names[] = {"", "jsonl", "npy", "fvecs", "bvecs", "csv"};

static int is_vectors(fmt f)
{
	return f == FMT_NPY || f == FMT_FVECS || f == FMT_BVECS;
}

static vdb_vec_format vec_format(fmt f)
{
	return f == FMT_NPY ? VDB_VEC_NPY : f == FMT_FVECS ? VDB_VEC_FVECS : VDB_VEC_BVECS;
}

/* The format a file name says; FMT_DEFAULT when it says none (or one not written here). */
static fmt detect(const char *path)
{
	int i = cli_name_index(cli_format_of(path), fmt_names, FMT_CSV + 1);
	return i > 0 ? (fmt)i : FMT_DEFAULT;
}

/* One input operand. Vector files with sidecars are opened up front, to count their rows
 * before anything is committed. */
typedef struct input {
	const char *path; /* NULL: standard input */
	fmt f;
	int fd;
	vdb_istream *in;
	vdb_vec_reader *vr;
} input;

/* A file read line by line alongside the vector rows (--ids, --payloads). */
typedef struct sidecar {
	const char *path, *option;
	int fd;
	vdb_istream *in;
	cli_lines l;
} sidecar;

typedef struct ingest {
	vdb_writer *w;
	vdb_jsonl_parser *parser;
	uint32_t dim;
	uint64_t batch_size, seal_bytes;
	int batch_given, skip_invalid, quiet, verbose;
	FILE *rejects;
	const char *rejects_path;
	/* totals of committed work, and of the pending batch */
	uint64_t committed, upserted, deleted, not_found, rejected, batches, bytes;
	uint64_t seen; /* records read and checked, committed or not: the rate, failed runs too */
	int dry_run; /* --dry-run: "committed" means validated and counted */
	uint64_t p_up, p_del, p_bytes;
	uint64_t first_line, last_line; /* input line (or row) range of the pending batch */
	const char *unit;               /* "lines" or "rows" */
	cli_progress prog;
	uint64_t done_bytes;     /* raw bytes of the finished inputs */
	const vdb_istream *cur;  /* the input being read */
	uint64_t row, id_offset; /* vector rows over all inputs; ids default to row + offset */
	sidecar ids, payloads;
	vdb_text idtext;
	vdb_csv_options csv;
	int piped;          /* JSON lines on two threads: records are stored by the writer thread */
	uint64_t chunk_raw; /* and the input bytes read up to its chunk */
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
	       "Other formats (--format, or from the file name: .jsonl .npy .fvecs .bvecs .csv):\n"
	       "  npy, fvecs, bvecs   vectors only: ids are the row numbers (from 0, plus\n"
	       "                      --id-offset) or come from --ids, payloads from --payloads\n"
	       "  csv                 a header line, an id column, the vector as one JSON-array\n"
	       "                      column or as --vector-columns; other columns: payload\n"
	       "Compressed input (zstd, e.g. FILE.npy.zst, or a pipe) is read on the fly.\n"
	       "\n"
	       "Options:\n"
	       "  -c, --collection NAME    collection (default: default)\n"
	       "  -f, --format FORMAT      jsonl, npy, fvecs, bvecs or csv (default: from each\n"
	       "                           file name, else jsonl)\n"
	       "      --ids FILE           vector files: one id per line, aligned by row\n"
	       "      --id-offset N        vector files without --ids: id = row number + N\n"
	       "      --payloads FILE      vector files: one JSON object (or null) per line,\n"
	       "                           aligned by row\n"
	       "      --id-column NAME     csv: the id column (default: id)\n"
	       "      --vector-column NAME csv: the column holding a JSON array (default: vector)\n"
	       "      --vector-columns LIST  csv: the vector's columns instead: names and\n"
	       "                           1-based numbers or ranges, comma-separated (2-129)\n"
	       "  -b, --batch N            records per committed batch (default 1000; vector\n"
	       "                           files: up to the seal threshold, stored directly)\n"
	       "      --delete-where JSON  first delete every record matching this filter\n"
	       "      --skip-invalid       JSON lines: report bad lines and go on (exit 0)\n"
	       "      --rejects FILE       with --skip-invalid, copy bad lines to FILE\n"
	       "      --max-line-bytes N   longest accepted line (default 64M; K, M, G)\n"
	       "      --wait SECONDS       wait at most this long for another writer's lock\n"
	       "                           (default: wait as long as it takes)\n"
	       "      --no-wait            fail at once (exit 75) if another writer holds it\n"
	       "      --dry-run            read and check everything, commit nothing; the\n"
	       "                           summary says what would be committed\n"
	       "  -v, --verbose            report each committed batch on stderr\n"
	       "  -q, --quiet              print nothing but errors (and no progress)\n"
	       "  -h, --help               show this help\n"
	       "  -V, --version            show the version\n"
	       "\n"
	       "Without --skip-invalid, the first bad line or row stops the run: every record\n"
	       "before it is committed, none after it, and the exit status is 65. When --ids or\n"
	       "--payloads do not have one line per row, nothing is committed. Progress is shown\n"
	       "on stderr when it is a terminal; a summary line is printed at the end.\n"
	       "\n" CLI_EXIT_TABLE);
}

static void count_committed(ingest *g);

static int commit(ingest *g)
{
	if (!vdb_writer_pending(g->w))
		return 0;
	vdb_error err;
	if (vdb_writer_commit(g->w, &err))
		return cli_fail(&err);
	count_committed(g);
	return 0;
}

/* Moves the pending batch's counts to the committed totals; deletes of ids that had no
 * live record count as "not found", not as deleted. */
static void count_committed(ingest *g)
{
	uint64_t absent = vdb_writer_last_not_found(g->w);
	g->batches++;
	g->committed += g->p_up + g->p_del;
	g->upserted += g->p_up;
	g->deleted += g->p_del - absent;
	g->not_found += absent;
	g->bytes += g->p_bytes;
	if (g->verbose) {
		cli_progress_clear(&g->prog);
		fprintf(stderr, "%s: %s batch %llu: %s (%s %llu-%llu)\n", cli_prog,
			g->dry_run ? "checked" : "committed", (unsigned long long)g->batches,
			CLI_COUNT(g->p_up + g->p_del, "record", "records"), g->unit,
			(unsigned long long)g->first_line, (unsigned long long)g->last_line);
	}
	g->p_up = g->p_del = g->p_bytes = 0;
}

/* Commits when the pending batch is full. */
static int maybe_commit(ingest *g)
{
	if (vdb_writer_pending(g->w) >= g->batch_size ||
	    vdb_writer_pending_bytes(g->w) >= (64u << 20))
		return commit(g);
	return 0;
}

/* Vector files without --batch fill each batch up to the collection's seal threshold: the
 * writer stores such a batch directly as a sealed segment, so the rows are written once
 * instead of to the log and again when it is sealed. */
static int maybe_commit_rows(ingest *g)
{
	if (g->batch_given)
		return maybe_commit(g);
	if (vdb_writer_pending_bytes(g->w) >= g->seal_bytes)
		return commit(g);
	return 0;
}

/* The progress line; `now`: draw if it is time (a coarse step, e.g. a block of rows), else
 * look at the clock only now and then (a record). */
static void tick(ingest *g, int now)
{
	/* On two threads the input belongs to the main thread: its reading is known as of the
	 * chunk being stored. */
	uint64_t raw = g->piped ? g->chunk_raw
				: g->done_bytes + (g->cur ? vdb_istream_raw_bytes(g->cur) : 0);
	uint64_t records = g->committed + g->p_up + g->p_del;
	if (now)
		cli_progress_now(&g->prog, records, raw);
	else
		cli_progress_update(&g->prog, records, raw);
}

/* Notes a record added to the pending batch, found at `pos` (a line or row number). */
static void added(ingest *g, uint64_t pos, int deleted, uint64_t bytes)
{
	g->seen++;
	if (g->p_up + g->p_del == 0)
		g->first_line = pos;
	g->last_line = pos;
	if (deleted)
		g->p_del++;
	else
		g->p_up++;
	g->p_bytes += bytes;
	if (g->prog.on)
		tick(g, 0);
}

/* A line of a JSON-lines input: where it is, and its text (NULL for an over-long line,
 * which the line reader copied to --rejects itself, failing or not: overflow_error). */
typedef struct line_at {
	const char *name; /* the file, or NULL for standard input */
	uint64_t lineno;
	const char *line;
	size_t len;
	int overflow_error;
} line_at;

static line_at line_of(const cli_lines *l, const char *line, size_t len)
{
	return (line_at){l->name, l->lineno, line, len, l->overflow_error};
}

/* A bad line: report it; 0 to go on (--skip-invalid), or the exit status. */
static int reject(ingest *g, const line_at *at, const char *msg)
{
	if (at->name)
		cli_error("%s: line %llu: %s", at->name, (unsigned long long)at->lineno, msg);
	else
		cli_error("line %llu: %s", (unsigned long long)at->lineno, msg);
	if (!g->skip_invalid)
		return EXIT_DATA;
	g->rejected++;
	g->seen++;
	if (g->rejects && ((at->line && fwrite(at->line, 1, at->len, g->rejects) != at->len) ||
			   fputc('\n', g->rejects) == EOF || at->overflow_error)) {
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
	g->seen += n;
	return commit(g);
}

static int apply_delete_where(ingest *g, const line_at *at, const vdb_record *rec)
{
	vdb_filter *f;
	vdb_error err;
	vdb_status st = vdb_filter_parse(rec->payload, rec->payload_len, &f, &err);
	if (st == VDB_EINVAL)
		return reject(g, at, err.message);
	if (st)
		return cli_fail(&err);
	int rc = delete_where(g, f, at->lineno);
	vdb_filter_free(f);
	return rc;
}

/* Stores a parsed record of line `at` in the pending batch; 0 or an exit status. */
static int store(ingest *g, const line_at *at, vdb_record_kind kind, const vdb_record *rec)
{
	if (kind == VDB_RECORD_DELETE_WHERE)
		return apply_delete_where(g, at, rec);
	vdb_error err;
	vdb_status st = kind == VDB_RECORD_DELETE
				? vdb_writer_delete(g->w, &rec->id, &err)
				: vdb_writer_upsert(g->w, &rec->id, rec->vector, rec->payload,
						    rec->payload_len, &err);
	if (st == VDB_EDATA)
		return reject(g, at, err.message);
	if (st)
		return cli_fail(&err);
	added(g, at->lineno, kind == VDB_RECORD_DELETE, at->len + 1);
	return 0;
}

static int apply(ingest *g, const cli_lines *l, const char *line, size_t len)
{
	vdb_record_kind kind;
	vdb_record rec;
	vdb_error err;
	line_at at = line_of(l, line, len);
	if (vdb_jsonl_parse_record(g->parser, line, len, &kind, &rec, &err))
		return err.code == VDB_EDATA ? reject(g, &at, err.message) : cli_fail(&err);
	return store(g, &at, kind, &rec);
}

static int input_failed(const char *name, const vdb_error *err);

/* A read error of a line reader: the stream's message, or errno's. */
static int read_failed(const cli_lines *l)
{
	if (l->src_err.code)
		return input_failed(l->name, &l->src_err);
	cli_error("read %s: %s", l->name ? l->name : "standard input", strerror(errno));
	return EXIT_IO;
}

/* Reads one JSON-lines input to its end; returns 0 or an exit status. */
static int ingest_lines(ingest *g, input *in, size_t max_line)
{
	cli_lines l;
	cli_lines_init(&l, in->fd, in->path, max_line, &stop_signal);
	l.src = in->in;
	l.overflow = g->rejects;
	g->unit = "lines";
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
			rc = read_failed(&l);
			break;
		}
		if (r == LINE_TOO_LONG) {
			char msg[96];
			snprintf(msg, sizeof msg, "line is longer than %zu bytes (--max-line-bytes)",
				 max_line);
			line_at at = line_of(&l, NULL, 0);
			if ((rc = reject(g, &at, msg)))
				break;
			continue;
		}
		if (cli_is_blank(line, len)) /* blank lines are allowed and ignored */
			continue;
		if ((rc = apply(g, &l, line, len)))
			break;
		if ((rc = maybe_commit(g)))
			break;
		if (stop_signal) {
			rc = 128 + stop_signal;
			break;
		}
	}
	cli_lines_free(&l);
	return rc;
}

/* ---- JSON lines on two threads ----
 * Parsing a line costs about twice what storing its record does (the log write, the
 * memtable), so with a second core the main thread reads and parses while a writer thread
 * stores the records and commits: the two overlap. Parsed records go over in chunks, in
 * input order, and the writer thread does exactly what ingest_lines does (the same
 * batches, commit points and messages). The main thread also says where the input had no
 * further line ready, so that what came before is committed before it waits.
 * --skip-invalid stays on one thread: an over-long line is copied to --rejects by the line
 * reader while it is read, and must land in order with the lines rejected after parsing. */

/* Up to 2048 records parsed ahead of the writer thread: about two default batches, so that
 * parsing goes on while a commit waits for its fsync. */
enum { CHUNK_RECORDS = 256, CHUNK_BYTES = 1 << 20, CHUNK_QUEUE = 8 };
enum { READ_NOMEM = -100 }; /* beside the LINE_* results */

typedef struct parsed {
	uint64_t lineno;
	size_t len; /* of the line, without its newline */
	vdb_record_kind kind;
	vdb_id id;            /* a string id's bytes are in the chunk's text, at id_off */
	size_t id_off;
	size_t payload_off;   /* in the chunk's text; payload_len 0 with has_payload 0: none */
	size_t payload_len;
	int has_payload;
} parsed;

typedef struct chunk {
	parsed rec[CHUNK_RECORDS];
	size_t n;
	float *vectors; /* CHUNK_RECORDS x dim */
	vdb_text text;  /* string ids and payloads */
	int wait;       /* the input had no further line ready after this chunk */
	int last;       /* the main thread sends nothing after this chunk */
	/* a bad line after the records (last is set): where, and why */
	int bad;
	uint64_t bad_lineno;
	char bad_msg[sizeof ((vdb_error *)0)->message];
	uint64_t raw_bytes; /* of the input read so far, for the progress line */
} chunk;

typedef struct pipe_ctx {
	ingest *g;
	const char *name;
	pthread_mutex_t mu;
	pthread_cond_t ready, space;
	chunk ring[CHUNK_QUEUE];
	size_t head, tail; /* filled: [head, tail) */
	int writer_rc;     /* the writer thread's result once it stopped */
	int writer_done;
	int reader_done;   /* the main thread reads no more */
	pthread_cond_t reader_stopped;
	pthread_t reader;  /* the main thread, woken from a blocked read when the writer fails */
	pthread_t writer;
	atomic_int stop;   /* the signal that stopped the run: the main thread passes it on */
} pipe_ctx;

/* A writer thread that failed interrupts the main thread's read with this signal. */
#define WAKE_SIGNAL SIGURG

static void on_wake(int sig)
{
	(void)sig; /* only interrupts a blocked read(2) */
}

static void *writer_main(void *arg)
{
	pipe_ctx *p = arg;
	ingest *g = p->g;
	int rc = 0;
	for (int last = 0; !last && !rc;) {
		pthread_mutex_lock(&p->mu);
		while (p->head == p->tail)
			pthread_cond_wait(&p->ready, &p->mu);
		chunk *c = &p->ring[p->head % CHUNK_QUEUE];
		pthread_mutex_unlock(&p->mu);
		g->chunk_raw = c->raw_bytes;
		for (size_t i = 0; i < c->n && !rc; i++) {
			parsed *r = &c->rec[i];
			vdb_record rec = {r->id, c->vectors + i * g->dim,
					  r->has_payload ? c->text.data + r->payload_off : NULL,
					  r->payload_len};
			if (r->id.is_string)
				rec.id.str = c->text.data + r->id_off;
			line_at at = {p->name, r->lineno, NULL, r->len, 0};
			int sig = atomic_load_explicit(&p->stop, memory_order_relaxed);
			if (!(rc = store(g, &at, r->kind, &rec)) && !(rc = maybe_commit(g)) && sig)
				rc = 128 + sig;
		}
		if (!rc && c->bad) {
			line_at at = {p->name, c->bad_lineno, NULL, 0, 0};
			rc = reject(g, &at, c->bad_msg);
		}
		if (!rc && c->wait && vdb_writer_pending(g->w))
			rc = commit(g);
		last = c->last;
		pthread_mutex_lock(&p->mu);
		p->head++;
		pthread_cond_signal(&p->space);
		pthread_mutex_unlock(&p->mu);
	}
	pthread_mutex_lock(&p->mu);
	p->writer_rc = rc;
	p->writer_done = 1;
	pthread_cond_signal(&p->space);
	pthread_mutex_unlock(&p->mu);
	if (rc) {
		/* The main thread may be waiting for input: interrupt its read. It checks the flag
		 * before each read, but the signal may come just before one starts, so it is
		 * repeated until the main thread has stopped reading. */
		read_cancel = 1;
		pthread_mutex_lock(&p->mu);
		while (!p->reader_done) {
			pthread_kill(p->reader, WAKE_SIGNAL);
			struct timespec t;
			clock_gettime(CLOCK_REALTIME, &t);
			t.tv_nsec += 10000000;
			if (t.tv_nsec >= 1000000000) {
				t.tv_sec++;
				t.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&p->reader_stopped, &p->mu, &t);
		}
		pthread_mutex_unlock(&p->mu);
	}
	return NULL;
}

/* Copies a parsed record into chunk c. */
static int chunk_add(chunk *c, uint32_t dim, uint64_t lineno, size_t len, vdb_record_kind kind,
		     const vdb_record *rec)
{
	parsed *r = &c->rec[c->n];
	*r = (parsed){lineno, len, kind, rec->id, 0, 0, rec->payload_len, rec->payload != NULL};
	if (rec->id.is_string) {
		r->id_off = c->text.len;
		r->id.str = NULL;
		if (vdb_text_append(&c->text, rec->id.str, rec->id.len))
			return -1;
	}
	if (rec->payload) {
		r->payload_off = c->text.len;
		if (vdb_text_append(&c->text, rec->payload, rec->payload_len))
			return -1;
	}
	if (kind == VDB_RECORD_UPSERT)
		memcpy(c->vectors + c->n * dim, rec->vector, dim * sizeof(float));
	c->n++;
	return 0;
}

/* The main thread's side: hands chunk c to the writer thread; waits while the queue is
 * full. Returns the next chunk to fill, or NULL when the writer thread has stopped. */
static chunk *chunk_send(pipe_ctx *p, ingest *g)
{
	pthread_mutex_lock(&p->mu);
	p->tail++;
	pthread_cond_signal(&p->ready);
	while (!p->writer_done && p->tail - p->head == CHUNK_QUEUE)
		pthread_cond_wait(&p->space, &p->mu);
	chunk *c = p->writer_done ? NULL : &p->ring[p->tail % CHUNK_QUEUE];
	pthread_mutex_unlock(&p->mu);
	if (c) {
		c->n = 0;
		c->text.len = 0;
		c->wait = c->last = c->bad = 0;
		c->raw_bytes = g->done_bytes + vdb_istream_raw_bytes(g->cur);
	}
	return c;
}

/* ingest_lines on two threads (see above); 0 or an exit status. */
static int ingest_lines_piped(ingest *g, input *in, size_t max_line)
{
	pipe_ctx *p = calloc(1, sizeof *p);
	int rc = 0, started = 0;
	for (size_t i = 0; p && i < CHUNK_QUEUE; i++)
		if (!(p->ring[i].vectors = malloc((size_t)CHUNK_RECORDS * g->dim * sizeof(float))))
			rc = EXIT_INTERNAL;
	if (!p || rc) {
		cli_error("out of memory");
		rc = EXIT_INTERNAL;
		goto out;
	}
	p->g = g;
	p->name = in->path;
	p->reader = pthread_self();
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->ready, NULL);
	pthread_cond_init(&p->space, NULL);
	pthread_cond_init(&p->reader_stopped, NULL);
	g->piped = 1;
	/* Signals are for the main thread, whose read they interrupt: the writer thread (and the
	 * graph builders it starts) block them. */
	sigset_t block, old;
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, WAKE_SIGNAL);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	int failed = pthread_create(&p->writer, NULL, writer_main, p);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (failed) {
		g->piped = 0;
		rc = -1; /* no thread to be had: the caller reads on one */
		goto destroy;
	}
	started = 1;
	cli_lines l;
	cli_lines_init(&l, in->fd, in->path, max_line, &read_cancel);
	l.src = in->in;
	g->unit = "lines";
	chunk *c = &p->ring[0];
	c->n = 0;
	c->raw_bytes = 0;
	int r = LINE_OK, read_errno = 0;
	size_t unflushed = 0; /* records sent since the last chunk marked `wait` */
	for (;;) {
		int wait = !cli_lines_ready(&l);
		if (c->n == CHUNK_RECORDS || c->text.len >= CHUNK_BYTES ||
		    (wait && (c->n || unflushed))) {
			c->wait = wait;
			unflushed = wait ? 0 : unflushed + c->n;
			if (!(c = chunk_send(p, g)))
				break;
		}
		const char *line;
		size_t len;
		r = cli_lines_next(&l, &line, &len);
		read_errno = errno;
		if (stop_signal) {
			/* The writer thread stops after the record it is storing. */
			atomic_store(&p->stop, stop_signal);
			r = LINE_CANCELLED;
			break;
		}
		if (r == LINE_OK && cli_is_blank(line, len))
			continue;
		if (r != LINE_OK && r != LINE_TOO_LONG)
			break;
		vdb_record_kind kind;
		vdb_record rec;
		vdb_error err;
		if (r == LINE_TOO_LONG) {
			snprintf(c->bad_msg, sizeof c->bad_msg,
				 "line is longer than %zu bytes (--max-line-bytes)", max_line);
		} else if (vdb_jsonl_parse_record(g->parser, line, len, &kind, &rec, &err)) {
			snprintf(c->bad_msg, sizeof c->bad_msg, "%s", err.message);
			if (err.code != VDB_EDATA) {
				r = READ_NOMEM;
				break;
			}
		} else if (chunk_add(c, g->dim, l.lineno, len, kind, &rec)) {
			r = READ_NOMEM;
			break;
		} else {
			continue;
		}
		/* A bad line: the records before it are stored, then it stops the run. */
		c->bad = 1;
		c->bad_lineno = l.lineno;
		r = LINE_EOF;
		break;
	}
	pthread_mutex_lock(&p->mu);
	p->reader_done = 1; /* no more wake-up signals: messages may be printed */
	pthread_cond_signal(&p->reader_stopped);
	pthread_mutex_unlock(&p->mu);
	if (c) { /* the end: the last chunk, maybe empty, tells the writer thread to finish */
		c->last = 1;
		c = chunk_send(p, g);
	}
	pthread_mutex_lock(&p->mu);
	while (!p->writer_done)
		pthread_cond_wait(&p->space, &p->mu);
	pthread_mutex_unlock(&p->mu);
	rc = p->writer_rc;
	if (!rc && stop_signal)
		rc = 128 + stop_signal;
	else if (!rc && r == LINE_ERROR) {
		errno = read_errno;
		rc = read_failed(&l);
	} else if (!rc && r == READ_NOMEM) {
		cli_error("out of memory");
		rc = EXIT_INTERNAL;
	}
	cli_lines_free(&l);
	g->piped = 0;
destroy:
	if (started)
		pthread_join(p->writer, NULL);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->ready);
	pthread_cond_destroy(&p->space);
	pthread_cond_destroy(&p->reader_stopped);
out:
	for (size_t i = 0; p && i < CHUNK_QUEUE; i++) {
		free(p->ring[i].vectors);
		vdb_text_free(&p->ring[i].text);
	}
	free(p);
	return rc;
}

/* A library error about input `name`: "NAME: message" and the exit status. */
static int input_failed(const char *name, const vdb_error *err)
{
	if (err->code == VDB_EINTR)
		return 128 + (stop_signal ? stop_signal : SIGINT);
	cli_error("%s: %s", name ? name : "standard input", err->message);
	return cli_exit_code(err->code);
}

/* The next line of a sidecar, which the up-front count says is there. */
static int sidecar_line(sidecar *s, uint64_t row, const char **line, size_t *len)
{
	int r = cli_lines_next(&s->l, line, len);
	if (r == LINE_OK)
		return 0;
	if (r == LINE_CANCELLED)
		return 128 + stop_signal;
	if (r == LINE_ERROR)
		return read_failed(&s->l);
	if (r == LINE_TOO_LONG) {
		cli_error("%s: line %llu is longer than the --max-line-bytes limit", s->path,
			  (unsigned long long)s->l.lineno);
		return EXIT_DATA;
	}
	cli_error("%s: ends before row %llu", s->path, (unsigned long long)row);
	return EXIT_DATA;
}

/* The id of the next vector row: from --ids, else the row number plus --id-offset. */
static int row_id(ingest *g, vdb_id *id)
{
	if (!g->ids.path) {
		if (g->row > UINT64_MAX - g->id_offset) {
			cli_error("row %llu: row number plus --id-offset is beyond the largest id",
				  (unsigned long long)g->row);
			return EXIT_DATA;
		}
		*id = (vdb_id){0, g->row + g->id_offset, NULL, 0};
		return 0;
	}
	const char *line;
	size_t len;
	int rc = sidecar_line(&g->ids, g->row, &line, &len);
	if (rc)
		return rc;
	vdb_error err;
	g->idtext.len = 0;
	if (vdb_text_append(&g->idtext, line, len) || vdb_text_append(&g->idtext, "", 1)) {
		cli_error("out of memory");
		return EXIT_INTERNAL;
	}
	if (memchr(line, 0, len) || vdb_id_parse_arg(g->idtext.data, id, &err)) {
		cli_error("%s: line %llu: %s", g->ids.path, (unsigned long long)g->ids.l.lineno,
			  memchr(line, 0, len) ? "an id must not hold a NUL byte" : err.message);
		return EXIT_DATA;
	}
	return 0;
}

static int row_payload(ingest *g, const char **payload, size_t *plen)
{
	*payload = NULL;
	*plen = 0;
	if (!g->payloads.path)
		return 0;
	const char *line;
	size_t len;
	int rc = sidecar_line(&g->payloads, g->row, &line, &len);
	if (rc)
		return rc;
	vdb_error err;
	if (vdb_jsonl_parse_payload(g->parser, line, len, payload, plen, &err)) {
		cli_error("%s: line %llu: %s", g->payloads.path,
			  (unsigned long long)g->payloads.l.lineno, err.message);
		return EXIT_DATA;
	}
	return 0;
}

static int ingest_vector_blocks(ingest *g, input *in);

/* Reads one .npy/.fvecs/.bvecs input to its end. Rows are numbered from 0 in each file. */
static int ingest_vectors(ingest *g, input *in)
{
	vdb_error err;
	if (!in->vr && vdb_vec_reader_open(in->in, vec_format(in->f), g->dim, &in->vr, &err))
		return input_failed(in->path, &err);
	g->unit = "rows";
	if (!g->ids.path && !g->payloads.path && !g->batch_given)
		return ingest_vector_blocks(g, in);
	for (uint64_t row = 0;; row++) {
		const float *vec;
		int has, rc;
		/* As with JSON lines: commit before we may block on a slow producer. */
		if (vdb_writer_pending(g->w) && !vdb_vec_reader_ready(in->vr) &&
		    !vdb_istream_ready(in->in) && (rc = commit(g)))
			return rc;
		if (vdb_vec_reader_next(in->vr, &vec, &has, &err))
			return input_failed(in->path, &err);
		if (!has)
			return 0;
		vdb_id id;
		const char *payload;
		size_t plen;
		if ((rc = row_id(g, &id)) || (rc = row_payload(g, &payload, &plen)))
			return rc;
		vdb_status st = vdb_writer_upsert(g->w, &id, vec, payload, plen, &err);
		if (st == VDB_EDATA) {
			cli_error("%s: row %llu: %s", in->path ? in->path : "standard input",
				  (unsigned long long)row, err.message);
			return EXIT_DATA;
		}
		if (st)
			return cli_fail(&err);
		g->row++;
		added(g, row, 0, 0);
		if ((rc = maybe_commit_rows(g)))
			return rc;
		if (stop_signal)
			return 128 + stop_signal;
	}
}

/* Stores n rows of a block (stride floats apart), the first being row `row` of the input,
 * as one batch. */
static int commit_block(ingest *g, input *in, const float *block, size_t stride, size_t n,
			uint64_t row, unsigned flags)
{
	vdb_error err;
	size_t bad = 0;
	vdb_status st = vdb_writer_upsert_rows(g->w, g->row + g->id_offset, block, stride, n, flags,
					       &bad, &err);
	if (st == VDB_EDATA) {
		/* Every row before the bad one is committed, as on the row-by-row path. */
		int rc = bad ? commit_block(g, in, block, stride, bad, row, 0) : 0;
		if (rc)
			return rc;
		cli_error("%s: row %llu: %s", in->path ? in->path : "standard input",
			  (unsigned long long)(row + bad), err.message);
		return EXIT_DATA;
	}
	if (st)
		return cli_fail(&err);
	g->row += n;
	g->seen += n;
	g->p_up = n;
	g->first_line = row;
	g->last_line = row + n - 1;
	count_committed(g);
	if (g->prog.on)
		tick(g, 1);
	return 0;
}

/* Vector rows with the default ids, no payloads and no --batch: taken in blocks of the seal
 * threshold's size (mapped from a plain file, else read), which vdb_writer_upsert_rows
 * stores as segments without copying the rows again (a smaller last block, or what a slow
 * producer had ready, is logged). Same results and guarantees as the row-by-row path. */
static int ingest_vector_blocks(ingest *g, input *in)
{
	int rc = commit(g); /* an earlier input's records: the block is a batch of its own */
	if (rc)
		return rc;
	size_t rowbytes = (size_t)g->dim * sizeof(float);
	uint64_t cap = (g->seal_bytes + rowbytes - 1) / rowbytes;
	int64_t declared = vdb_vec_reader_rows(in->vr);
	/* A short block of a regular file is its end (a pipe's may be a pause). */
	struct stat sb;
	int file = fstat(in->fd, &sb) == 0 && S_ISREG(sb.st_mode);
	if (declared >= 0 && (uint64_t)declared < cap)
		cap = declared ? (uint64_t)declared : 1;
	vdb_error err;
	for (uint64_t row = 0; !rc;) {
		const float *block;
		size_t got, n, stride;
		vdb_status rst = vdb_vec_reader_block(in->vr, (size_t)cap, &block, &stride, &got, &err);
		if (g->prog.on)
			tick(g, 1); /* the block is read; storing it (a graph build) takes a while */
		/* Ids stop at UINT64_MAX: the rows that still have one are stored first. */
		uint64_t max_row = UINT64_MAX - g->id_offset;
		n = g->row > max_row ? 0 : max_row - g->row >= got ? got : (size_t)(max_row - g->row + 1);
		int last = !rst && (row + got == (uint64_t)declared || (file && got < cap));
		if (n && (rc = commit_block(g, in, block, stride, n, row, last ? VDB_ROWS_LAST : 0)))
			break;
		row += n;
		if (n < got) {
			cli_error("row %llu: row number plus --id-offset is beyond the largest id",
				  (unsigned long long)g->row);
			rc = EXIT_DATA;
		} else if (rst) {
			rc = input_failed(in->path, &err);
		} else if (!got) {
			break;
		} else if (stop_signal) {
			rc = 128 + stop_signal;
		}
	}
	return rc;
}

static int ingest_csv(ingest *g, input *in)
{
	vdb_error err;
	vdb_csv_reader *r;
	if (vdb_csv_reader_open(in->in, g->dim, &g->csv, &r, &err))
		return input_failed(in->path, &err);
	g->unit = "lines";
	int rc = 0;
	for (;;) {
		vdb_record rec;
		int has;
		if (vdb_writer_pending(g->w) && !vdb_csv_reader_ready(r) &&
		    !vdb_istream_ready(in->in) && (rc = commit(g)))
			break;
		if (vdb_csv_reader_next(r, &rec, &has, &err)) {
			rc = input_failed(in->path, &err);
			break;
		}
		if (!has)
			break;
		vdb_status st = vdb_writer_upsert(g->w, &rec.id, rec.vector, rec.payload,
						  rec.payload_len, &err);
		if (st == VDB_EDATA) {
			cli_error("%s: line %llu: %s", in->path ? in->path : "standard input",
				  (unsigned long long)vdb_csv_reader_line(r), err.message);
			rc = EXIT_DATA;
			break;
		}
		if (st) {
			rc = cli_fail(&err);
			break;
		}
		added(g, vdb_csv_reader_line(r), 0, 0);
		if ((rc = maybe_commit(g)))
			break;
		if (stop_signal) {
			rc = 128 + stop_signal;
			break;
		}
	}
	vdb_csv_reader_close(r);
	return rc;
}

/* Opens path (NULL: standard input) as a stream that decompresses zstd by itself. */
static int open_stream(const char *path, int *fd, vdb_istream **in)
{
	*fd = path ? open(path, O_RDONLY | O_CLOEXEC) : STDIN_FILENO;
	if (*fd < 0) {
		cli_error("%s: %s", path, strerror(errno));
		return EXIT_NOINPUT;
	}
	vdb_error err;
	vdb_cancel cancel = cli_cancel_on(&read_cancel);
	if (vdb_istream_open(*fd, &cancel, in, &err))
		return input_failed(path, &err);
	return 0;
}

static int open_input(input *in)
{
	return open_stream(in->path, &in->fd, &in->in);
}

static void close_input(input *in)
{
	vdb_vec_reader_close(in->vr);
	vdb_istream_close(in->in);
	if (in->path && in->fd >= 0)
		close(in->fd);
	in->vr = NULL;
	in->in = NULL;
	in->fd = -1;
}

static int ingest_input(ingest *g, input *in, size_t max_line)
{
	int rc = in->in ? 0 : open_input(in);
	if (rc)
		return rc;
	g->cur = in->in;
	if (in->f == FMT_CSV)
		rc = ingest_csv(g, in);
	else if (is_vectors(in->f))
		rc = ingest_vectors(g, in);
	else if (!g->skip_invalid && cli_default_threads() > 1 &&
		 (rc = ingest_lines_piped(g, in, max_line)) >= 0)
		; /* done on two threads */
	else
		rc = ingest_lines(g, in, max_line);
	g->done_bytes += vdb_istream_raw_bytes(in->in);
	if (in->f != FMT_JSONL)
		g->bytes += vdb_istream_raw_bytes(in->in);
	g->cur = NULL;
	close_input(in);
	return rc;
}

static int open_sidecar(sidecar *s, size_t max_line)
{
	int rc = open_stream(s->path, &s->fd, &s->in);
	if (rc)
		return rc;
	cli_lines_init(&s->l, s->fd, s->path, max_line, &stop_signal);
	s->l.src = s->in;
	return 0;
}

static void close_sidecar(sidecar *s)
{
	if (!s->in)
		return;
	cli_lines_free(&s->l);
	vdb_istream_close(s->in);
	close(s->fd);
	s->in = NULL;
}

/* Lines of a sidecar file, read through once. */
static int count_lines(sidecar *s, size_t max_line, uint64_t *n)
{
	int rc = open_sidecar(s, max_line);
	*n = 0;
	for (; !rc;) {
		const char *line;
		size_t len;
		int r = cli_lines_next(&s->l, &line, &len);
		if (r == LINE_EOF)
			break;
		if (r == LINE_CANCELLED)
			rc = 128 + stop_signal;
		else if (r == LINE_ERROR)
			rc = read_failed(&s->l);
		else
			++*n;
	}
	close_sidecar(s);
	return rc;
}

/* Rows of a vector input whose header does not say: read through a second descriptor. A
 * bad row ends the count there; the ingest itself then stops at that row with its error. */
static int count_rows(ingest *g, input *in, uint64_t *n)
{
	input c = {in->path, in->f, -1, NULL, NULL};
	int rc = open_input(&c);
	vdb_error err = {.code = VDB_OK};
	*n = 0;
	if (!rc && !vdb_vec_reader_open(c.in, vec_format(c.f), g->dim, &c.vr, &err))
		for (;;) {
			const float *vec;
			int has;
			if (vdb_vec_reader_next(c.vr, &vec, &has, &err) || !has)
				break;
			++*n;
		}
	if (!rc && err.code == VDB_EINTR)
		rc = 128 + stop_signal;
	close_input(&c);
	return rc;
}

/* Opens a vector input and reads its header (which checks a regular file's size). */
static int open_vector_input(ingest *g, input *in)
{
	int rc = open_input(in);
	if (rc)
		return rc;
	vdb_error err;
	if (vdb_vec_reader_open(in->in, vec_format(in->f), g->dim, &in->vr, &err))
		return input_failed(in->path, &err);
	return 0;
}

/* Every vector input that is a regular file is opened up front: its header and size are
 * checked (vdb_vec_reader_open) before anything of any input is committed. */
static int open_vector_files(ingest *g, input *ins, int n)
{
	for (int i = 0; i < n; i++) {
		struct stat st;
		int rc;
		if (is_vectors(ins[i].f) && ins[i].path && stat(ins[i].path, &st) == 0 &&
		    S_ISREG(st.st_mode) && (rc = open_vector_input(g, &ins[i])))
			return rc;
	}
	return 0;
}

/* --ids and --payloads must have one line per vector row: checked before anything is
 * committed, so a misaligned pair of files changes nothing. */
static int check_sidecars(ingest *g, input *ins, int n, size_t max_line)
{
	uint64_t rows = 0;
	for (int i = 0; i < n; i++) {
		int rc;
		uint64_t r;
		struct stat st;
		if (!ins[i].vr && (rc = open_vector_input(g, &ins[i])))
			return rc;
		int64_t declared = vdb_vec_reader_rows(ins[i].vr);
		if (declared >= 0) {
			r = (uint64_t)declared;
		} else if (ins[i].path && stat(ins[i].path, &st) == 0 && S_ISREG(st.st_mode)) {
			if ((rc = count_rows(g, &ins[i], &r)))
				return rc;
		} else {
			return cli_usage_error("the rows of %s cannot be counted in advance (for "
					       "--ids/--payloads): give it as a file, or as .npy",
					       ins[i].path ? ins[i].path : "standard input");
		}
		rows += r;
	}
	sidecar *sc[2] = {&g->ids, &g->payloads};
	for (int i = 0; i < 2; i++) {
		if (!sc[i]->path)
			continue;
		uint64_t lines;
		int rc = count_lines(sc[i], max_line, &lines);
		if (rc)
			return rc;
		if (lines != rows) {
			cli_error("%s %s has %llu lines, but the vector input has %llu rows: nothing "
				  "was ingested", sc[i]->option, sc[i]->path, (unsigned long long)lines,
				  (unsigned long long)rows);
			return EXIT_DATA;
		}
		if ((rc = open_sidecar(sc[i], max_line)))
			return rc;
	}
	return 0;
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

/* Each input's format, and the checks that fail a run before anything is opened: option
 * combinations, missing files. *total: bytes of all inputs (UINT64_MAX: a pipe among them). */
static int plan_inputs(ingest *g, input *ins, int ninputs, char **paths, int npaths, fmt format,
		       int offset_given, uint64_t *total)
{
	int stdin_seen = 0;
	*total = 0;
	for (int i = 0; i < ninputs; i++) {
		const char *path = npaths ? paths[i] : "-";
		int is_stdin = !strcmp(path, "-");
		input *in = &ins[i];
		*in = (input){is_stdin ? NULL : path, format, -1, NULL, NULL};
		if (in->f == FMT_DEFAULT)
			in->f = is_stdin ? FMT_JSONL : detect(path);
		if (in->f == FMT_DEFAULT)
			in->f = FMT_JSONL; /* any other name: JSON lines, as always */
		if (is_stdin && stdin_seen++)
			return cli_usage_error("standard input ('-') is given twice");
		if (in->f != FMT_JSONL && g->skip_invalid)
			return cli_usage_error("--skip-invalid applies to JSON lines only (%s is "
					       "%s)", path, fmt_names[in->f]);
		if (!is_vectors(in->f) && (g->ids.path || g->payloads.path || offset_given))
			return cli_usage_error("--ids, --payloads and --id-offset go with .npy, "
					       ".fvecs or .bvecs input (%s is %s)", path,
					       fmt_names[in->f]);
		/* Check every input up front: a missing file fails the run before anything
		 * commits. */
		struct stat st;
		if (!is_stdin && access(path, R_OK) < 0) {
			cli_error("%s: %s", path, strerror(errno));
			return EXIT_NOINPUT;
		}
		if (is_stdin || stat(path, &st) < 0 || !S_ISREG(st.st_mode))
			*total = UINT64_MAX;
		else if (*total != UINT64_MAX)
			*total += (uint64_t)st.st_size;
	}
	sidecar *sc[2] = {&g->ids, &g->payloads};
	for (int i = 0; i < 2; i++)
		if (sc[i]->path && (!strcmp(sc[i]->path, "-") || access(sc[i]->path, R_OK) < 0)) {
			if (!strcmp(sc[i]->path, "-"))
				return cli_usage_error("%s needs a file, not standard input",
						       sc[i]->option);
			cli_error("%s: %s", sc[i]->path, strerror(errno));
			return EXIT_NOINPUT;
		}
	return 0;
}

/* The one summary line on stderr (a failed run too: what was committed before it). The
 * rates are of what was read and checked, so that a failed or dry run shows them too. */
static void print_summary(const ingest *g, int rc, double dt)
{
	fprintf(stderr, "%s: %s%s%s %s in %s (%llu upserted, %llu deleted, %llu not found, %llu "
		"rejected) in %.2f s, %.0f records/s, %.1f MB/s%s\n",
		cli_prog, rc >= 128 ? "interrupted: " : "", g->dry_run ? "dry run: " : "",
		CLI_COUNT(g->committed, "record", "records"),
		g->dry_run ? "would be committed" : "committed",
		CLI_COUNT(g->batches, "batch", "batches"), (unsigned long long)g->upserted,
		(unsigned long long)g->deleted, (unsigned long long)g->not_found,
		(unsigned long long)g->rejected, dt, dt > 0 ? (double)g->seen / dt : 0.0,
		dt > 0 ? (double)(g->bytes > g->done_bytes ? g->bytes : g->done_bytes) / dt / 1e6
		       : 0.0,
		g->dry_run ? "; nothing was committed" : "");
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
		{"batch", required_argument, NULL, 'b'},
		{"delete-where", required_argument, NULL, 'D'},
		{"skip-invalid", no_argument, NULL, 'S'},
		{"rejects", required_argument, NULL, 'R'},
		{"max-line-bytes", required_argument, NULL, 'L'},
		{"wait", required_argument, NULL, 'W'},
		{"no-wait", no_argument, NULL, 'N'},
		{"dry-run", no_argument, NULL, 'n'},
		{"verbose", no_argument, NULL, 'v'},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0}};
	ingest g = {.batch_size = 1000, .unit = "lines"};
	g.ids = (sidecar){.option = "--ids", .fd = -1};
	g.payloads = (sidecar){.option = "--payloads", .fd = -1};
	vdb_csv_options_init(&g.csv);
	const char *name = VDB_DEFAULT_COLLECTION;
	uint64_t max_line = 64u << 20;
	const char *where_text = NULL;
	fmt format = FMT_DEFAULT;
	int offset_given = 0;
	vdb_writer_options wo;
	vdb_writer_options_init(&wo);
	int c;
	while ((c = getopt_long(argc, argv, ":c:f:b:vqhV", opts, NULL)) != -1) {
		switch (c) {
		case 'c': name = optarg; break;
		case 'f':
			if (cli_name_index(optarg, fmt_names, FMT_CSV + 1) <= 0)
				return cli_usage_error("unknown format '%s' (expected jsonl, npy, fvecs, "
						       "bvecs or csv)", optarg);
			format = (fmt)cli_name_index(optarg, fmt_names, FMT_CSV + 1);
			break;
		case 'I': g.ids.path = optarg; break;
		case 'O':
			if (cli_parse_u64(optarg, "--id-offset", 0, UINT64_MAX, 0, &g.id_offset))
				return EXIT_USAGE;
			offset_given = 1;
			break;
		case 'P': g.payloads.path = optarg; break;
		case 'C': g.csv.id_column = optarg; break;
		case 'X': g.csv.vector_column = optarg; break;
		case 'Y': g.csv.vector_columns = optarg; break;
		case 'b':
			g.batch_given = 1;
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
		case 'n': g.dry_run = wo.dry_run = 1; break;
		case 'v': g.verbose = 1; break;
		case 'q': g.quiet = 1; break;
		case 'h': usage(); return cli_close_stdout();
		case 'V': cli_version(); return cli_close_stdout();
		default: return cli_option_error(c);
		}
	}
	if (optind >= argc)
		return cli_usage_error("missing database directory operand");
	if (g.rejects_path && !g.skip_invalid)
		return cli_usage_error("--rejects needs --skip-invalid");
	if (offset_given && g.ids.path)
		return cli_usage_error("--id-offset and --ids exclude each other");
	const char *db = argv[optind++];
	vdb_filter *where_filter = NULL;
	if (where_text && cli_parse_filter(where_text, "--delete-where", &where_filter))
		return EXIT_USAGE;
	/* --delete-where without FILE operands reads no input. */
	int ninputs = optind < argc ? argc - optind : where_filter ? 0 : 1;
	input *ins = calloc(ninputs ? (size_t)ninputs : 1, sizeof *ins);
	if (!ins) {
		cli_error("out of memory");
		vdb_filter_free(where_filter);
		return EXIT_INTERNAL;
	}
	uint64_t total;
	int rc = plan_inputs(&g, ins, ninputs, argv + optind, argc - optind, format, offset_given,
			     &total);
	if (rc) {
		free(ins);
		vdb_filter_free(where_filter);
		return rc;
	}
	cli_catch_stop_signals(on_signal);
	struct sigaction wake = {.sa_handler = on_wake}; /* no SA_RESTART: read(2) is interrupted */
	sigaction(WAKE_SIGNAL, &wake, NULL);
	wo.cancel = cli_cancel_on(&stop_signal);
	wo.threads = cli_default_threads(); /* $VDB_THREADS, else one per CPU */
	wo.on_wait = on_wait;
	wo.on_wait_ctx = &g;

	double t0 = cli_now();
	vdb_error err;
	if (vdb_writer_open(db, name, &wo, &g.w, &err)) {
		free(ins);
		vdb_filter_free(where_filter);
		if (err.code == VDB_EINTR)
			return 128 + (stop_signal ? stop_signal : SIGINT);
		return cli_fail(&err);
	}
	vdb_collection_config cfg;
	vdb_writer_get_config(g.w, &cfg);
	g.dim = cfg.dim;
	g.seal_bytes = cfg.seal_bytes;
	if (vdb_jsonl_parser_new(cfg.dim, &g.parser, &err)) {
		rc = cli_fail(&err);
		goto done;
	}
	if ((rc = open_vector_files(&g, ins, ninputs)))
		goto done;
	if ((g.ids.path || g.payloads.path) && (rc = check_sidecars(&g, ins, ninputs, max_line)))
		goto done;
	if (g.rejects_path && !(g.rejects = fopen(g.rejects_path, "w"))) {
		cli_error("%s: %s", g.rejects_path, strerror(errno));
		rc = EXIT_CANTCREAT;
		goto done;
	}
	if (where_filter && (rc = delete_where(&g, where_filter, 0)))
		goto done;
	cli_progress_init(&g.prog, g.quiet, "records", total == UINT64_MAX ? 0 : total);
	for (int i = 0; i < ninputs && !rc; i++)
		rc = ingest_input(&g, &ins[i], max_line);
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
	cli_progress_end(&g.prog);
	for (int i = 0; i < ninputs; i++)
		close_input(&ins[i]);
	free(ins);
	close_sidecar(&g.ids);
	close_sidecar(&g.payloads);
	vdb_text_free(&g.idtext);
	vdb_writer_close(g.w);
	vdb_filter_free(where_filter);
	vdb_jsonl_parser_free(g.parser);
	if (!g.quiet)
		print_summary(&g, rc, cli_now() - t0);
	return rc;
}
