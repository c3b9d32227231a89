/* Loads a JSON-lines file into a collection and answers query lines, through libvdb's
 * loader and query stream: vdb-ingest and vdb-query in one small program.
 *
 *   load_and_query DB DIM RECORDS.jsonl < QUERIES.jsonl
 *
 * Creates collection "docs" (cosine, HNSW) in DB if it is not there, loads RECORDS.jsonl in
 * durable batches (one line per record, {"id": 1, "vector": [...], "payload": {...}}), then
 * prints one result line per query read from standard input ([0.1, ...] or
 * {"vector": [...], "k": 3, "filter": {...}}), with the results' payloads. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <vdb_io.h>

static int fail(const char *what, const vdb_error *err)
{
	fprintf(stderr, "load_and_query: %s: %s\n", what, err->message);
	return 1;
}

static int print(void *ctx, const char *data, size_t len)
{
	(void)ctx;
	return fwrite(data, 1, len, stdout) == len ? 0 : -1;
}

static int flush(void *ctx)
{
	(void)ctx;
	return fflush(stdout);
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: load_and_query DB DIM RECORDS.jsonl < QUERIES.jsonl\n");
		return 2;
	}
	vdb_error err;
	vdb_collection_config cfg;
	vdb_collection_config_init(&cfg);
	cfg.dim = (uint32_t)atoi(argv[2]);
	cfg.metric = VDB_METRIC_COSINE;
	if (vdb_collection_create(argv[1], "docs", &cfg, &err) && err.code != VDB_EEXIST)
		return fail("create", &err);

	/* Load: the writer holds the collection's lock; the loader reads and commits. */
	vdb_writer_options wo;
	vdb_writer_options_init(&wo);
	vdb_writer *w;
	if (vdb_writer_open(argv[1], "docs", &wo, &w, &err))
		return fail("open for writing", &err);
	vdb_loader_options lo;
	vdb_loader_options_init(&lo);
	lo.threads = 2; /* parse on this thread, store on another */
	vdb_loader *loader;
	vdb_load_counts n;
	vdb_status st = vdb_loader_new(&lo, &loader, &err);
	if (!st)
		st = vdb_loader_add_input(loader, argv[3], VDB_FILE_JSONL, &err);
	if (!st)
		st = vdb_loader_run(loader, w, &err);
	if (loader)
		vdb_loader_counts(loader, &n);
	vdb_loader_free(loader);
	vdb_writer_close(w);
	if (st)
		return fail(argv[3], &err);
	fprintf(stderr, "%llu records committed in %llu batches\n",
		(unsigned long long)n.committed, (unsigned long long)n.batches);

	/* Query: a reader sees what was committed when it opened the collection. */
	vdb_collection *c;
	if (vdb_collection_open(argv[1], "docs", &c, &err))
		return fail("open", &err);
	vdb_query_stream_options qo;
	vdb_query_stream_options_init(&qo);
	qo.k = 3;
	qo.hits_flags = VDB_HITS_PAYLOAD;
	qo.write = print;
	qo.flush = flush;
	vdb_query_stream *qs;
	st = vdb_query_stream_new(c, &qo, &qs, &err);
	if (!st) {
		st = vdb_query_stream_run(qs, STDIN_FILENO, NULL, &err);
		vdb_query_stream_free(qs);
	}
	vdb_collection_close(c);
	if (fflush(stdout) != 0)
		return 1;
	return st ? fail("queries", &err) : 0;
}
