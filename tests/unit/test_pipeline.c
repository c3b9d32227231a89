/* The loader and the query stream through the public API alone (vdb.h, vdb_io.h), linked
 * against the installable libvdb: what a C program sees, not only what the commands do. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vdb_io.h"

static char tmpdir[256];
static char db[300];

static void setup(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/vdb-pipeline-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
	snprintf(db, sizeof db, "%s/db", tmpdir);
	vdb_collection_config cfg;
	vdb_collection_config_init(&cfg);
	cfg.dim = 2;
	cfg.metric = VDB_METRIC_L2;
	cfg.index = VDB_INDEX_FLAT;
	vdb_error err;
	cr_assert_eq(vdb_collection_create(db, "default", &cfg, &err), VDB_OK, "%s", err.message);
}

static void teardown(void)
{
	char cmd[400];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(loader, .init = setup, .fini = teardown);
TestSuite(query_stream, .init = setup, .fini = teardown);

/* Writes text to a file in the test directory; returns its path (static per name slot). */
static const char *write_file(const char *name, const void *data, size_t len)
{
	static char paths[4][400];
	static int next;
	char *p = paths[next++ % 4];
	snprintf(p, 400, "%s/%s", tmpdir, name);
	FILE *f = fopen(p, "wb");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(data, 1, len, f), len);
	cr_assert_eq(fclose(f), 0);
	return p;
}

static const char *write_text(const char *name, const char *text)
{
	return write_file(name, text, strlen(text));
}

static uint64_t count_records(void)
{
	vdb_collection *c;
	vdb_error err;
	cr_assert_eq(vdb_collection_open(db, "default", &c, &err), VDB_OK, "%s", err.message);
	uint64_t n = vdb_collection_count(c);
	vdb_collection_close(c);
	return n;
}

static int has_record(uint64_t id)
{
	vdb_collection *c;
	vdb_error err;
	cr_assert_eq(vdb_collection_open(db, "default", &c, &err), VDB_OK, "%s", err.message);
	vdb_id key = {0, id, NULL, 0};
	vdb_record rec;
	vdb_status st = vdb_get(c, &key, &rec, &err);
	vdb_collection_close(c);
	return st == VDB_OK;
}

typedef struct seen {
	int commits, rejects;
	uint64_t last_records;
	char reject_msg[1024];
	char rejected[1024];
	size_t rejected_len;
	int fail_writes;
	int cancel;
} seen;

static void on_commit(void *ctx, const vdb_load_batch *b)
{
	seen *s = ctx;
	s->commits++;
	cr_assert_eq(b->number, (uint64_t)s->commits);
	s->last_records = b->records;
}

static void on_reject(void *ctx, const char *message)
{
	seen *s = ctx;
	s->rejects++;
	snprintf(s->reject_msg, sizeof s->reject_msg, "%s", message);
}

static int write_rejected(void *ctx, const void *bytes, size_t n)
{
	seen *s = ctx;
	if (s->fail_writes)
		return 28; /* ENOSPC */
	cr_assert_lt(s->rejected_len + n, sizeof s->rejected);
	memcpy(s->rejected + s->rejected_len, bytes, n);
	s->rejected_len += n;
	return 0;
}

static int cancel_now(void *ctx)
{
	return ((seen *)ctx)->cancel;
}

/* Runs a loader over one input with these options; returns the status, err filled. */
static vdb_status load(vdb_loader_options *o, const char *path, vdb_file_format f,
		       vdb_load_counts *counts, vdb_error *err)
{
	vdb_loader *l;
	vdb_status st = vdb_loader_new(o, &l, err);
	if (st)
		return st;
	if ((st = vdb_loader_add_input(l, path, f, err))) {
		vdb_loader_free(l);
		return st;
	}
	vdb_writer_options wo;
	vdb_writer_options_init(&wo);
	vdb_writer *w;
	cr_assert_eq(vdb_writer_open(db, "default", &wo, &w, err), VDB_OK, "%s", err->message);
	st = vdb_loader_run(l, w, err);
	if (counts)
		vdb_loader_counts(l, counts);
	vdb_writer_close(w);
	vdb_loader_free(l);
	return st;
}

static const char *five_records = "{\"id\": 1, \"vector\": [1, 0]}\n"
				  "{\"id\": 2, \"vector\": [0, 1], \"payload\": {\"lang\": \"de\"}}\n"
				  "\n"
				  "{\"id\": 3, \"vector\": [1, 1], \"payload\": {\"lang\": \"en\"}}\n"
				  "{\"id\": 1, \"delete\": true}\n"
				  "{\"id\": 9, \"delete\": true}\n";

Test(loader, json_lines_in_batches_on_one_and_two_threads)
{
	for (unsigned threads = 1; threads <= 2; threads++) {
		seen s = {0};
		vdb_loader_options o;
		vdb_loader_options_init(&o);
		o.batch = 2;
		o.threads = threads;
		o.ctx = &s;
		o.on_commit = on_commit;
		vdb_load_counts n;
		vdb_error err;
		char name[32];
		snprintf(name, sizeof name, "in%u.jsonl", threads);
		const char *path = write_text(name, five_records);
		cr_assert_eq(load(&o, path, VDB_FILE_AUTO, &n, &err), VDB_OK, "%s", err.message);
		cr_assert_eq(n.committed, 5);
		cr_assert_eq(n.upserted, 3);
		cr_assert_eq(n.deleted, 1);
		cr_assert_eq(n.not_found, 1);
		cr_assert_eq(n.batches, 3, "batches of 2: %llu", (unsigned long long)n.batches);
		cr_assert_eq(s.commits, 3);
		cr_assert_eq(s.last_records, 1);
		cr_assert_eq(count_records(), 2);
		cr_assert(!has_record(1) && has_record(2) && has_record(3));
	}
}

Test(loader, a_bad_line_stops_after_committing_what_came_before)
{
	const char *path = write_text("bad.jsonl", "{\"id\": 1, \"vector\": [1, 0]}\n"
						   "{\"id\": 2, \"vector\": [0, 1]}\n"
						   "{\"id\": 3, \"vector\": [1]}\n"
						   "{\"id\": 4, \"vector\": [1, 1]}\n");
	vdb_loader_options o;
	vdb_loader_options_init(&o);
	vdb_error err;
	vdb_load_counts n;
	cr_assert_eq(load(&o, path, VDB_FILE_JSONL, &n, &err), VDB_EDATA);
	cr_assert(strstr(err.message, "bad.jsonl: line 3: ") != NULL, "%s", err.message);
	cr_assert_eq(n.committed, 2);
	cr_assert_eq(count_records(), 2);
	cr_assert(!has_record(4));
}

Test(loader, skip_invalid_reports_and_copies_bad_lines_in_order)
{
	const char *path = write_text("skip.jsonl", "{\"id\": 1, \"vector\": [1, 0]}\n"
						    "not json\n"
						    "{\"id\": 2, \"vector\": [0, 0, 0]}\n"
						    "{\"id\": 3, \"vector\": [1, 1]}\n");
	seen s = {0};
	vdb_loader_options o;
	vdb_loader_options_init(&o);
	o.skip_invalid = 1;
	o.ctx = &s;
	o.on_reject = on_reject;
	o.write_rejected = write_rejected;
	vdb_error err;
	vdb_load_counts n;
	cr_assert_eq(load(&o, path, VDB_FILE_AUTO, &n, &err), VDB_OK, "%s", err.message);
	cr_assert_eq(n.rejected, 2);
	cr_assert_eq(n.committed, 2);
	cr_assert_eq(s.rejects, 2);
	cr_assert(strstr(s.reject_msg, "skip.jsonl: line 3: ") != NULL, "%s", s.reject_msg);
	const char *want = "not json\n{\"id\": 2, \"vector\": [0, 0, 0]}\n";
	cr_assert_eq(s.rejected_len, strlen(want));
	cr_assert(!memcmp(s.rejected, want, s.rejected_len));
	/* A rejects sink that fails fails the run, naming it. */
	seen f = {.fail_writes = 1};
	o.ctx = &f;
	o.rejects_name = "rej.txt";
	cr_assert_eq(load(&o, path, VDB_FILE_AUTO, NULL, &err), VDB_EIO);
	cr_assert(strstr(err.message, "write rej.txt: ") != NULL, "%s", err.message);
}

Test(loader, inputs_are_checked_before_anything_is_read)
{
	vdb_loader_options o;
	vdb_loader_options_init(&o);
	o.skip_invalid = 1;
	vdb_loader *l;
	vdb_error err;
	cr_assert_eq(vdb_loader_new(&o, &l, &err), VDB_OK);
	const char *fv = write_file("v.fvecs", "\2\0\0\0", 4);
	cr_assert_eq(vdb_loader_add_input(l, fv, VDB_FILE_AUTO, &err), VDB_EINVAL);
	cr_assert(strstr(err.message, "JSON lines only") != NULL, "%s", err.message);
	char missing[400];
	snprintf(missing, sizeof missing, "%s/missing.jsonl", tmpdir);
	cr_assert_eq(vdb_loader_add_input(l, missing, VDB_FILE_AUTO, &err), VDB_ENOENT);
	cr_assert_eq(vdb_loader_add_input(l, NULL, VDB_FILE_AUTO, &err), VDB_OK);
	cr_assert_eq(vdb_loader_add_input(l, "-", VDB_FILE_AUTO, &err), VDB_EINVAL);
	cr_assert_eq(vdb_loader_input_bytes(l), UINT64_MAX); /* standard input: unknown */
	vdb_loader_free(l);
	o.skip_invalid = 0;
	o.ids_path = "-";
	cr_assert_eq(vdb_loader_new(&o, &l, &err), VDB_EINVAL);
}

/* Little-endian .fvecs rows of dim 2. */
static size_t fvecs(char *buf, const float (*rows)[2], size_t n)
{
	size_t off = 0;
	for (size_t i = 0; i < n; i++) {
		int32_t d = 2;
		memcpy(buf + off, &d, 4);
		memcpy(buf + off + 4, rows[i], 8);
		off += 12;
	}
	return off;
}

Test(loader, vector_files_with_ids_and_payloads_files)
{
	static const float rows[3][2] = {{1, 0}, {0, 1}, {1, 1}};
	char buf[64];
	const char *vec = write_file("v.fvecs", buf, fvecs(buf, rows, 3));
	vdb_loader_options o;
	vdb_loader_options_init(&o);
	o.ids_path = write_text("ids.txt", "10\n11\n");
	vdb_error err;
	/* One line short: nothing at all is committed. */
	cr_assert_eq(load(&o, vec, VDB_FILE_AUTO, NULL, &err), VDB_EDATA);
	cr_assert(strstr(err.message, "has 2 lines, but the vector input has 3 rows") != NULL,
		  "%s", err.message);
	cr_assert_eq(count_records(), 0);
	o.ids_path = write_text("ids2.txt", "10\n11\ndoc\n");
	o.payloads_path = write_text("p.jsonl", "{\"a\": 1}\nnull\n{\"b\": 2}\n");
	vdb_load_counts n;
	cr_assert_eq(load(&o, vec, VDB_FILE_AUTO, &n, &err), VDB_OK, "%s", err.message);
	cr_assert_eq(n.upserted, 3);
	cr_assert(has_record(10) && has_record(11));
	/* Without sidecars the rows take their numbers plus the offset. */
	vdb_loader_options_init(&o);
	o.id_offset = 100;
	cr_assert_eq(load(&o, vec, VDB_FILE_FVECS, &n, &err), VDB_OK, "%s", err.message);
	cr_assert(has_record(100) && has_record(102));
	cr_assert_eq(count_records(), 6);
}

Test(loader, delete_where_and_cancellation)
{
	vdb_loader_options o;
	vdb_loader_options_init(&o);
	vdb_error err;
	cr_assert_eq(load(&o, write_text("a.jsonl", five_records), VDB_FILE_AUTO, NULL, &err),
		     VDB_OK, "%s", err.message);
	vdb_filter *f;
	cr_assert_eq(vdb_filter_parse("{\"lang\": \"de\"}", 14, &f, &err), VDB_OK);
	o.delete_where = f;
	vdb_load_counts n;
	cr_assert_eq(load(&o, write_text("b.jsonl", "{\"id\": 7, \"vector\": [2, 2]}\n"),
			  VDB_FILE_AUTO, &n, &err), VDB_OK, "%s", err.message);
	vdb_filter_free(f);
	cr_assert_eq(n.deleted, 1);
	cr_assert(!has_record(2) && has_record(3) && has_record(7));
	/* A cancel stops the run: what was pending is dropped. */
	seen s = {.cancel = 1};
	vdb_loader_options_init(&o);
	o.cancel = (vdb_cancel){cancel_now, &s};
	cr_assert_eq(load(&o, write_text("c.jsonl", "{\"id\": 8, \"vector\": [2, 2]}\n"),
			  VDB_FILE_AUTO, NULL, &err), VDB_EINTR);
	cr_assert(!has_record(8));
}

/* ---- query streams ---- */

static void load_text(const char *text)
{
	vdb_loader_options o;
	vdb_loader_options_init(&o);
	vdb_error err;
	cr_assert_eq(load(&o, write_text("data.jsonl", text), VDB_FILE_AUTO, NULL, &err), VDB_OK,
		     "%s", err.message);
}

typedef struct out {
	vdb_text t;
	int flushes, fail;
} out;

static int out_write(void *ctx, const char *data, size_t len)
{
	out *o = ctx;
	if (o->fail)
		return -1;
	return vdb_text_append(&o->t, data, len) ? -1 : 0;
}

static int out_flush(void *ctx)
{
	((out *)ctx)->flushes++;
	return 0;
}

/* Runs a query stream over `queries` (a file) with these options into o->t. */
static vdb_status run_stream(vdb_query_stream_options *so, const char *queries, out *o,
			     vdb_error *err)
{
	vdb_collection *c;
	cr_assert_eq(vdb_collection_open(db, "default", &c, err), VDB_OK, "%s", err->message);
	so->ctx = o;
	so->write = out_write;
	so->flush = out_flush;
	vdb_query_stream *qs;
	vdb_status st = vdb_query_stream_new(c, so, &qs, err);
	if (!st) {
		int fd = open(queries, O_RDONLY);
		cr_assert_geq(fd, 0);
		st = vdb_query_stream_run(qs, fd, "q.jsonl", err);
		close(fd);
		vdb_query_stream_free(qs);
	}
	vdb_collection_close(c);
	return st;
}

static size_t count_lines(const vdb_text *t)
{
	size_t n = 0;
	for (size_t i = 0; i < t->len; i++)
		n += t->data[i] == '\n';
	return n;
}

Test(query_stream, answers_in_input_order_on_any_thread_count)
{
	vdb_text data = {0}, queries = {0};
	char line[128];
	for (int i = 0; i < 300; i++) {
		int n = snprintf(line, sizeof line, "{\"id\": %d, \"vector\": [%d, %d]}\n", i, i,
				 i % 7);
		vdb_text_append(&data, line, (size_t)n);
	}
	vdb_text_append(&data, "", 1);
	load_text(data.data);
	for (int i = 0; i < 500; i++) {
		int n = snprintf(line, sizeof line, "{\"vector\": [%d.5, 3], \"k\": %d}\n", i % 300,
				 1 + i % 4);
		vdb_text_append(&queries, line, (size_t)n);
	}
	const char *q = write_file("q.jsonl", queries.data, queries.len);
	out one = {0}, many = {0};
	vdb_query_stream_options so;
	vdb_query_stream_options_init(&so);
	vdb_error err;
	cr_assert_eq(run_stream(&so, q, &one, &err), VDB_OK, "%s", err.message);
	so.threads = 3;
	cr_assert_eq(run_stream(&so, q, &many, &err), VDB_OK, "%s", err.message);
	cr_assert_eq(count_lines(&one.t), 500);
	cr_assert_eq(one.t.len, many.t.len);
	cr_assert(!memcmp(one.t.data, many.t.data, one.t.len), "answers differ with 3 threads");
	/* The first answer: k 1, the nearest of [0.5, 3] is id 2, [2, 2] (distance 1.80). */
	cr_assert(!strncmp(one.t.data, "{\"results\":[{\"id\":2,", 20), "%.60s", one.t.data);
	cr_assert(strchr(one.t.data, '\n') - one.t.data < 45, "k 1: one result");
	vdb_text_free(&one.t);
	vdb_text_free(&many.t);
	vdb_text_free(&data);
	vdb_text_free(&queries);
}

Test(query_stream, a_bad_line_stops_after_the_answers_before_it)
{
	load_text(five_records);
	const char *q = write_text("q.jsonl", "[1, 0]\n[0, 1]\n[1, 2, 3]\n[1, 1]\n");
	for (unsigned threads = 1; threads <= 2; threads++) {
		out o = {0};
		vdb_query_stream_options so;
		vdb_query_stream_options_init(&so);
		so.threads = threads;
		vdb_error err;
		cr_assert_eq(run_stream(&so, q, &o, &err), VDB_EDATA);
		cr_assert(strstr(err.message, "q.jsonl: line 3: ") != NULL, "%s", err.message);
		cr_assert_eq(count_lines(&o.t), 2);
		vdb_text_free(&o.t);
	}
	/* A failing output stops the stream. */
	out o = {.fail = 1};
	vdb_query_stream_options so;
	vdb_query_stream_options_init(&so);
	vdb_error err;
	cr_assert_eq(run_stream(&so, write_text("q2.jsonl", "[1, 0]\n"), &o, &err), VDB_EIO);
}

Test(query_stream, the_options_filter_and_a_lines_filter_both_apply)
{
	load_text("{\"id\": 1, \"vector\": [1, 0], \"payload\": {\"lang\": \"de\", \"y\": 1}}\n"
		  "{\"id\": 2, \"vector\": [1, 0], \"payload\": {\"lang\": \"de\", \"y\": 2}}\n"
		  "{\"id\": 3, \"vector\": [1, 0], \"payload\": {\"lang\": \"en\", \"y\": 2}}\n");
	vdb_filter *f;
	vdb_error err;
	cr_assert_eq(vdb_filter_parse("{\"lang\": \"de\"}", 14, &f, &err), VDB_OK);
	vdb_collection *c;
	cr_assert_eq(vdb_collection_open(db, "default", &c, &err), VDB_OK);
	vdb_query_stream_options so;
	vdb_query_stream_options_init(&so);
	so.filter = f;
	so.hits_flags = VDB_HITS_PAYLOAD;
	out o = {0};
	so.ctx = &o;
	so.write = out_write;
	vdb_query_stream *qs;
	cr_assert_eq(vdb_query_stream_new(c, &so, &qs, &err), VDB_OK, "%s", err.message);
	vdb_text t = {0};
	const char *q = "{\"vector\": [1, 0], \"filter\": {\"y\": 2}}";
	cr_assert_eq(vdb_query_stream_answer(qs, q, strlen(q), &t, &err), VDB_OK, "%s",
		     err.message);
	cr_assert(!strncmp(t.data, "{\"results\":[{\"id\":2,", 20), "%.*s", (int)t.len, t.data);
	cr_assert_eq(count_lines(&t), 1);
	vdb_text_append(&t, "", 1); /* a C string from here */
	cr_assert(strstr(t.data, "\"id\":3") == NULL && strstr(t.data, "\"id\":1") == NULL);
	const char *bad = "{\"vector\": [1, 0], \"filter\": {\"y\": {\"$nope\": 1}}}";
	cr_assert_eq(vdb_query_stream_answer(qs, bad, strlen(bad), &t, &err), VDB_EDATA);
	vdb_text_free(&t);
	vdb_query_stream_free(qs);
	vdb_collection_close(c);
	vdb_filter_free(f);
	/* Options out of range. */
	cr_assert_eq(vdb_collection_open(db, "default", &c, &err), VDB_OK);
	so.k = 0;
	cr_assert_eq(vdb_query_stream_new(c, &so, &qs, &err), VDB_EINVAL);
	vdb_query_stream_options_init(&so);
	cr_assert_eq(vdb_query_stream_new(c, &so, &qs, &err), VDB_EINVAL); /* no write */
	vdb_collection_close(c);
}
