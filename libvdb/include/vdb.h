/*
 * vdb.h — the public interface of libvdb, the engine behind the vdb-* commands.
 *
 * This header is the whole contract: anything not declared here is private and may change.
 * Handles are opaque. Every function that can fail returns a vdb_status and, when the
 * caller passes a vdb_error, fills it with a message that names what failed (the file, the
 * syscall, the field). Output parameters are written only on success. Destructors accept
 * NULL. The library never prints, never exits and keeps no global mutable state, so a
 * program may open any number of collections from any number of threads, as long as one
 * handle is used by one thread at a time.
 *
 * Layers (see README.md and docs/format.md):
 *   collections   create, open for reading (a consistent view), search, get, iterate
 *   writers       the single writer of a collection: upsert/delete in durable batches
 *   JSON lines    the record format every command speaks, parsed and printed exactly
 *
 * Caveats
 *   - Do not put a database on a network filesystem: flock() and fsync() semantics there
 *     are not what the durability promise relies on.
 *   - A vdb_collection is a view of the collection at the moment it was opened. It does not
 *     follow later writes; open it again to see them.
 *   - Pointers inside a vdb_record stay valid until the next call on the same handle that
 *     produced it (cursor or collection) or until that handle is closed.
 */
#ifndef VDB_H
#define VDB_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "vdb_version.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define VDB_API __attribute__((visibility("default")))
#else
#define VDB_API
#endif

/* ---- Status and errors --------------------------------------------------------------- */

typedef enum vdb_status {
	VDB_OK = 0,
	VDB_EINVAL,    /* an argument is invalid (bad option value, bad name) */
	VDB_EDATA,     /* input data is invalid (a record, a query, a vector) */
	VDB_ECORRUPT,  /* a file of the database failed a check; the message names it */
	VDB_ENOENT,    /* the database, collection, record or input does not exist */
	VDB_EEXIST,    /* it already exists, or cannot be created */
	VDB_EIO,       /* an I/O call failed (the message names it, with strerror) */
	VDB_ELOCKED,   /* another process holds the collection's writer lock */
	VDB_ENOMEM,    /* out of memory */
	VDB_EINTR,     /* cancelled through the caller's cancel flag */
	VDB_EINTERNAL, /* a bug: an internal invariant did not hold */
} vdb_status;

typedef struct vdb_error {
	vdb_status code;
	char message[512];
} vdb_error;

/* A short constant description of a status ("I/O error"). */
VDB_API const char *vdb_status_string(vdb_status s);

/* The library's version, e.g. "0.1.0" (VDB_VERSION_STRING of the library itself). */
VDB_API const char *vdb_version(void);
/* The library's VDB_VERSION_NUMBER, e.g. 100 for 0.1.0: a program compares it with the
 * VDB_VERSION_NUMBER it was compiled with. */
VDB_API unsigned vdb_version_number(void);

/* ---- Identifiers and records ---------------------------------------------------------- */

/* A record id keeps its JSON type: a non-negative integer (any uint64) or a string of
 * 1..VDB_ID_MAX_BYTES bytes of UTF-8. Ids order as: integers ascending, then strings by
 * bytes; that order breaks score ties. */
#define VDB_ID_MAX_BYTES 256

typedef struct vdb_id {
	int is_string;   /* 0: integer `num`; 1: string `str`/`len` (not NUL-terminated) */
	uint64_t num;
	const char *str;
	size_t len;
} vdb_id;

/* Negative, zero or positive as a orders before, equal to, or after b. */
VDB_API int vdb_id_compare(const vdb_id *a, const vdb_id *b);

typedef struct vdb_record {
	vdb_id id;
	const float *vector;  /* `dim` float32 values, exactly as ingested */
	const char *payload;  /* minified JSON object text, or NULL when the record has none */
	size_t payload_len;
} vdb_record;

/* ---- Payload filters ------------------------------------------------------------------ */

/* A compiled payload filter (Mongo-style JSON, see vdb-query(1) FILTERS):
 *   {"lang": "en"}  {"year": {"$gte": 2020, "$lt": 2025}}  {"tag": {"$in": ["a", "b"]}}
 *   {"author": {"$exists": true}}  {"meta.source": "web"}  {"$or": [{...}, {...}]}
 * Operators: $eq $ne $gt $gte $lt $lte $in $nin $exists; $and $or $not (also per field:
 * {"year": {"$not": {"$gt": 2020}}}); several keys in one object mean AND; {} matches every
 * record. A payload array matches when any element matches; a missing field matches only
 * $exists:false, $ne and $nin. Immutable once parsed: one filter may serve many threads. */
typedef struct vdb_filter vdb_filter;

/* Compiles json[0..len). Errors: VDB_EINVAL with a message naming the offending path or
 * operator ("filter: unknown operator \"$regex\" at \"title\""), VDB_ENOMEM. */
VDB_API vdb_status vdb_filter_parse(const char *json, size_t len, vdb_filter **out,
				    vdb_error *err);
VDB_API void vdb_filter_free(vdb_filter *f);

/* Evaluates f on one payload (a JSON object's text; NULL for a record without one). The
 * payload is read only as far as the answer needs. Errors: VDB_EDATA (what had to be read
 * is not well-formed JSON). */
VDB_API vdb_status vdb_filter_match(const vdb_filter *f, const char *payload, size_t len,
				    int *match, vdb_error *err);

/* ---- Collections ---------------------------------------------------------------------- */

typedef enum vdb_metric {
	VDB_METRIC_L2 = 1,     /* score: Euclidean distance, lower is better */
	VDB_METRIC_COSINE = 2, /* score: cosine similarity in [-1, 1], higher is better */
	VDB_METRIC_DOT = 3,    /* score: dot product, higher is better */
} vdb_metric;

#define VDB_DIM_MAX 65536
#define VDB_DEFAULT_M 16
#define VDB_DEFAULT_EF_CONSTRUCTION 200
#define VDB_DEFAULT_EF 128
#define VDB_NAME_MAX 64
#define VDB_DEFAULT_COLLECTION "default"

typedef enum vdb_index_type {
	VDB_INDEX_HNSW = 1, /* a graph per sealed segment: approximate, fast */
	VDB_INDEX_FLAT = 2, /* no graph: every query scans every vector */
} vdb_index_type;

/* Payload indexes: per sealed segment, the values of one payload field, so that filters on
 * it find their candidate rows without reading every payload. keyword indexes string values
 * (equality and $in); int and float index every number (equality, $in and ranges; both keep
 * numbers as doubles, the precision filters compare at). */
#define VDB_INDEX_FIELDS_MAX 4
#define VDB_FIELD_PATH_MAX 128 /* bytes of a field path, including the terminating NUL */

typedef enum vdb_field_type {
	VDB_FIELD_KEYWORD = 1,
	VDB_FIELD_INT = 2,
	VDB_FIELD_FLOAT = 3,
} vdb_field_type;

typedef struct vdb_index_field {
	char path[VDB_FIELD_PATH_MAX]; /* dotted path, as in filters: "lang", "meta.source" */
	vdb_field_type type;
} vdb_index_field;

/* "keyword", "int", "float" <-> enum; parse returns 0 on success, -1 for an unknown name. */
VDB_API const char *vdb_field_type_name(vdb_field_type t);
VDB_API int vdb_field_type_parse(const char *name, vdb_field_type *out);

typedef struct vdb_collection_config {
	uint32_t dim;
	vdb_metric metric;
	/* Bytes of unsealed (write-ahead-logged) data after which the writer seals them into an
	 * immutable segment. Bounds the memory a reader or writer spends on the log tail. */
	uint64_t seal_bytes;
	vdb_index_type index;
	uint32_t m;               /* HNSW: neighbours per node and level (2..64), 2m at level 0 */
	uint32_t ef_construction; /* HNSW: beam width while building (m..4096) */
	uint32_t n_index_fields;  /* payload indexes built into every segment */
	vdb_index_field index_fields[VDB_INDEX_FIELDS_MAX];
} vdb_collection_config;

/* Sets defaults: dim 0 (must be set), metric L2, seal_bytes 64 MiB, HNSW with m 16 and
 * ef_construction 200, no payload indexes. */
VDB_API void vdb_collection_config_init(vdb_collection_config *cfg);

/* "hnsw", "flat" <-> enum; parse returns 0 on success, -1 for an unknown name. */
VDB_API const char *vdb_index_name(vdb_index_type t);
VDB_API int vdb_index_parse(const char *name, vdb_index_type *out);

/* "l2", "cosine", "dot" <-> enum; parse returns 0 on success, -1 for an unknown name. */
VDB_API const char *vdb_metric_name(vdb_metric m);
VDB_API int vdb_metric_parse(const char *name, vdb_metric *out);

/* 1 when `name` is a valid collection name: [A-Za-z0-9_.-], 1..64 bytes, not starting with
 * a dot, and not "VDB" (the database marker file). */
VDB_API int vdb_collection_name_valid(const char *name);

/* Creates the database directory `db_path` if needed and the collection `name` in it,
 * atomically: either the whole collection appears or nothing does.
 * Errors: VDB_EINVAL (bad name or config), VDB_EEXIST (collection exists, or db_path exists
 * and is not a vdb database), VDB_EIO. */
VDB_API vdb_status vdb_collection_create(const char *db_path, const char *name,
					 const vdb_collection_config *cfg, vdb_error *err);

typedef struct vdb_collection vdb_collection;

/* Opens a read-only, consistent view: every batch committed before the call, none in part.
 * Takes no lock; retries (bounded) when a concurrent writer replaces files underneath.
 * Errors: VDB_ENOENT (no such database or collection), VDB_ECORRUPT, VDB_EIO, VDB_ENOMEM. */
VDB_API vdb_status vdb_collection_open(const char *db_path, const char *name,
				       vdb_collection **out, vdb_error *err);
VDB_API void vdb_collection_close(vdb_collection *c);

VDB_API void vdb_collection_get_config(const vdb_collection *c, vdb_collection_config *out);
/* Number of live records in this view. */
VDB_API uint64_t vdb_collection_count(const vdb_collection *c);

/* Number of live records of this view whose payload matches f (f NULL: all of them).
 * Errors: VDB_ECORRUPT (a damaged payload; the message names the segment), VDB_ENOMEM. */
VDB_API vdb_status vdb_collection_count_where(vdb_collection *c, const vdb_filter *f,
					      uint64_t *out, vdb_error *err);

/* ---- Inspection ----------------------------------------------------------------------- */

/* The collections of database db, sorted by name: a malloc'd, NULL-terminated array of
 * names (*n of them) that vdb_names_free releases. Errors: VDB_ENOENT (not a database),
 * VDB_EIO, VDB_ENOMEM. */
VDB_API vdb_status vdb_list_collections(const char *db, char ***names, size_t *n,
					vdb_error *err);
VDB_API void vdb_names_free(char **names);

typedef struct vdb_collection_stats {
	uint64_t live;          /* live records (vdb_collection_count) */
	uint64_t dead;          /* stored rows that are deleted or replaced: what compaction
				 * reclaims */
	uint64_t segments;      /* sealed segments */
	uint64_t graphs;        /* segments with an HNSW graph */
	uint64_t segment_rows;  /* rows in the segments, dead ones included */
	uint64_t segment_bytes; /* bytes of the segment files */
	uint64_t log_records;   /* distinct ids with an operation in the log tail */
	uint64_t log_bytes;     /* bytes of the active write-ahead log */
	uint64_t disk_bytes;    /* bytes of every file in the collection's directory, leftovers
				 * of a crash included */
	uint64_t generation;    /* the MANIFEST's version number */
	long writer_pid;        /* pid of the process holding the writer lock now; 0: none;
				 * -1: held by a process that did not record its pid */
} vdb_collection_stats;

/* Fills *out for the view c (file sizes and the lock are read now, not when c was opened).
 * Never takes or disturbs the writer lock. Errors: VDB_EIO. */
VDB_API vdb_status vdb_collection_stats_get(const vdb_collection *c, vdb_collection_stats *out,
					    vdb_error *err);

/* ---- Search and lookup ---------------------------------------------------------------- */

#define VDB_K_MAX 100000

typedef struct vdb_hit {
	float score;     /* see vdb_metric */
	uint32_t source; /* where the record lives; pass the hit to vdb_hit_record */
	uint64_t row;
} vdb_hit;

typedef struct vdb_search_options {
	/* HNSW beam width: larger is more accurate and slower. 0: the default (128), and never
	 * less than k. */
	size_t ef;
	/* Non-zero: scan every vector (exact), even where a segment has a graph. */
	int exact;
	/* Optional: only records whose payload matches are returned. Still min(k, matching
	 * records) results: a graph traversal that cannot supply them falls back to a scan of
	 * the matching rows, and few matching rows are scanned exactly to begin with. */
	const vdb_filter *filter;
	/* Threads one call may use to scan a segment exactly (the segment's rows are split
	 * among them; the results are the same): 0 or 1, the calling thread only. Scans too
	 * small to gain from it stay on one thread. */
	unsigned threads;
} vdb_search_options;

VDB_API void vdb_search_options_init(vdb_search_options *o);

/* Nearest-neighbour search: fills hits[0..*n) best first, ties broken by id, with
 * *n = min(k, live records): segments with a graph are searched approximately (deleted and
 * replaced records are never returned, and a segment that cannot supply enough live
 * results is scanned exactly), the rest and the log tail exactly. `hits` must have room
 * for k entries (1 <= k <= VDB_K_MAX); o may be NULL for the defaults.
 * Errors: VDB_EINVAL (k out of range), VDB_EDATA (non-finite query; zero query for cosine),
 * VDB_ECORRUPT, VDB_ENOMEM. */
VDB_API vdb_status vdb_search(vdb_collection *c, const float *query, size_t k,
			      const vdb_search_options *o, vdb_hit *hits, size_t *n, vdb_error *err);

/* Searches of one view from several threads at once: vdb_search reuses scratch memory
 * kept in the collection, so each thread searches through its own searcher instead (a
 * view is otherwise read-only, and vdb_hit_record and vdb_get may be called from any
 * thread). A searcher must not outlive its collection. Errors: VDB_ENOMEM. */
typedef struct vdb_searcher vdb_searcher;
VDB_API vdb_status vdb_searcher_new(vdb_collection *c, vdb_searcher **out, vdb_error *err);
VDB_API void vdb_searcher_free(vdb_searcher *s);
/* As vdb_search, on the searcher's collection. */
VDB_API vdb_status vdb_searcher_search(vdb_searcher *s, const float *query, size_t k,
				       const vdb_search_options *o, vdb_hit *hits, size_t *n,
				       vdb_error *err);
/* Several queries with the same options, with the same results as vdb_searcher_search on
 * each; but where segments are scanned exactly (--exact, collections without graphs, small
 * segments, selective filters), each is read once for the whole batch, a cache-sized block
 * of rows at a time, instead of once per query. queries[i] has dim floats and asks for
 * ks[i] results, written to hits[i] (room for ks[i]); ns[i] gets their count. Every query
 * is checked before any is searched: on an error *failed is the index of the query at
 * fault (nothing is searched when the query itself is bad), else nq. */
VDB_API vdb_status vdb_searcher_search_batch(vdb_searcher *s, size_t nq,
					     const float *const *queries, const size_t *ks,
					     const vdb_search_options *o, vdb_hit *const *hits,
					     size_t *ns, size_t *failed, vdb_error *err);

/* The record behind a hit of this collection view. */
VDB_API vdb_status vdb_hit_record(vdb_collection *c, const vdb_hit *hit, vdb_record *out,
				  vdb_error *err);

/* Looks up a live record by id. Errors: VDB_ENOENT (no live record with that id). */
VDB_API vdb_status vdb_get(vdb_collection *c, const vdb_id *id, vdb_record *out, vdb_error *err);

/* ---- Iteration ------------------------------------------------------------------------ */

typedef struct vdb_cursor vdb_cursor;

/* Iterates every live record of the view in storage order (sealed segments oldest first,
 * then the log tail in commit order), in constant memory. Each segment's checksums are
 * verified before its first record is returned, so corruption is reported, not exported. */
VDB_API vdb_status vdb_cursor_open(vdb_collection *c, vdb_cursor **out, vdb_error *err);
/* The same, returning only records whose payload matches f (NULL: every record). f must
 * outlive the cursor. */
VDB_API vdb_status vdb_cursor_open_where(vdb_collection *c, const vdb_filter *f,
					 vdb_cursor **out, vdb_error *err);
/* Sets *has to 1 and fills *rec, or sets *has to 0 at the end. */
VDB_API vdb_status vdb_cursor_next(vdb_cursor *cur, vdb_record *rec, int *has, vdb_error *err);
VDB_API void vdb_cursor_close(vdb_cursor *cur);

/* ---- Writing -------------------------------------------------------------------------- */

typedef struct vdb_writer vdb_writer;

typedef struct vdb_writer_options {
	/* How long to wait for another writer's lock: < 0 forever, 0 fail at once with
	 * VDB_ELOCKED, > 0 that many seconds then VDB_ELOCKED. Default: forever. */
	double wait_seconds;
	/* Optional: when it becomes non-zero while waiting for the lock, open returns VDB_EINTR. */
	volatile sig_atomic_t *cancel;
	/* Optional: called once when the lock is busy and the writer starts waiting. */
	void (*on_wait)(void *ctx, long holder_pid);
	void *on_wait_ctx;
	/* Non-zero: a dry run. Every operation is validated as usual and vdb_writer_commit
	 * counts it (vdb_writer_last_not_found too), but nothing is written: no lock is taken,
	 * no recovery is done, the collection is read as a reader reads it. */
	int dry_run;
	/* Threads a graph build of a seal, merge or compaction may use (1 to 64); 0: one per
	 * CPU. The library reads no environment variable: $VDB_THREADS is the commands'. */
	unsigned threads;
} vdb_writer_options;

VDB_API void vdb_writer_options_init(vdb_writer_options *o);

/* Takes the collection's writer lock and recovers: discards a torn record at the end of the
 * write-ahead log, removes files left behind by a crash, and seals if the log is over the
 * threshold. Errors: VDB_ENOENT, VDB_ELOCKED (message names the holder's pid), VDB_EINTR,
 * VDB_ECORRUPT (e.g. corruption in the middle of the log: file and offset), VDB_EIO. */
VDB_API vdb_status vdb_writer_open(const char *db_path, const char *name,
				   const vdb_writer_options *o, vdb_writer **out, vdb_error *err);

/* The collection's configuration. */
VDB_API void vdb_writer_get_config(const vdb_writer *w, vdb_collection_config *out);

/* Of the deletes in the batch that the last vdb_writer_commit committed, how many named an
 * id with no live record at that point (nothing to delete). */
VDB_API uint64_t vdb_writer_last_not_found(const vdb_writer *w);

/* Adds an upsert to the pending batch. `vector` has dim finite floats (not all zero for a
 * cosine collection); `payload` is a JSON object's text or NULL. Nothing is visible or
 * durable until vdb_writer_commit. Errors: VDB_EDATA (the message names the field). */
VDB_API vdb_status vdb_writer_upsert(vdb_writer *w, const vdb_id *id, const float *vector,
				     const char *payload, size_t payload_len, vdb_error *err);
VDB_API vdb_status vdb_writer_delete(vdb_writer *w, const vdb_id *id, vdb_error *err);

/* Adds a delete of every live record whose payload matches f to the pending batch, which
 * must be empty (commit first: the filter sees the committed records); *count receives how
 * many. Commit to apply them, as one batch. Errors: VDB_EINVAL (pending batch),
 * VDB_ECORRUPT, VDB_EIO, VDB_ENOMEM. */
VDB_API vdb_status vdb_writer_delete_where(vdb_writer *w, const vdb_filter *f, uint64_t *count,
					   vdb_error *err);

/* Upserts n rows of dim float32 values (row i at vectors + i * stride; stride >= dim) with
 * the integer ids first_id, first_id + 1, ... and no payloads, and commits them as one
 * batch, with vdb_writer_commit's guarantees; the pending batch must be empty. Every row is
 * checked first: a bad one fails the call with VDB_EDATA (the message names the column),
 * *bad (when not NULL) set to its index, and nothing committed. Rows as large as the seal
 * threshold together are stored directly as a segment of their own (after sealing the log's
 * records), written from vectors without further copies: the fast path for bulk loads of
 * vector files. flags: 0, or VDB_ROWS_LAST when no more rows follow (the end of a bulk
 * load): then, in a collection without graphs (index flat), rows of at least a quarter of
 * the threshold are stored directly too, written once instead of logged now and rewritten
 * by the next seal. Errors: those of vdb_writer_upsert and vdb_writer_commit; VDB_EINVAL
 * (pending batch, stride < dim, ids beyond UINT64_MAX). */
#define VDB_ROWS_LAST 1u
VDB_API vdb_status vdb_writer_upsert_rows(vdb_writer *w, uint64_t first_id, const float *vectors,
					  size_t stride, size_t n, unsigned flags, size_t *bad,
					  vdb_error *err);

/* Operations and bytes in the pending batch. */
VDB_API size_t vdb_writer_pending(const vdb_writer *w);
VDB_API size_t vdb_writer_pending_bytes(const vdb_writer *w);

/* Writes the pending batch to the log as one record and fsyncs it: when this returns VDB_OK
 * the batch is durable and visible to new readers, whole. Seals the log into a segment when
 * it passed the threshold. A batch whose pending bytes reach the collection's seal_bytes is
 * sealed at once with the log's unsealed records instead, with the same
 * guarantees and results and without logging its rows. After an I/O error the writer
 * refuses further work (close it and open again: recovery restores the last durable
 * state). */
VDB_API vdb_status vdb_writer_commit(vdb_writer *w, vdb_error *err);

/* Compacts the collection: seals the log, then rewrites every segment into one without
 * deleted or replaced rows, with its graph (HNSW collections). Readers keep working and see
 * the old or the new version, never a mix. The pending batch must be empty.
 * Errors: VDB_EINVAL (pending batch), VDB_EIO, VDB_ECORRUPT, VDB_ENOMEM. */
VDB_API vdb_status vdb_writer_compact(vdb_writer *w, vdb_error *err);
/* Optional: progress of vdb_writer_compact's long part, the graph build of the merged
 * segment: progress(ctx, rows done, rows in all), called now and then from the compacting
 * thread (not called for collections without graphs). NULL turns it off. */
VDB_API void vdb_writer_set_compact_progress(vdb_writer *w,
					     void (*progress)(void *ctx, uint64_t done,
							      uint64_t total),
					     void *ctx);

/* Segments and live records of the writer's current version. */
VDB_API vdb_status vdb_writer_stats(const vdb_writer *w, uint64_t *segments, uint64_t *live);

/* Drops the pending batch. */
VDB_API void vdb_writer_rollback(vdb_writer *w);

/* Releases the lock; a pending batch that was not committed is dropped. */
VDB_API void vdb_writer_close(vdb_writer *w);

/* ---- JSON lines ----------------------------------------------------------------------- */

/* Parses and validates one JSON-lines record of the ingest format:
 *   {"id": <non-negative integer or string>, "vector": [dim numbers], "payload": {...}}
 *   {"id": ..., "delete": true}
 *   {"delete_where": {filter}}   (kind VDB_RECORD_DELETE_WHERE: rec->payload holds the
 *                                 filter's JSON text, for vdb_filter_parse)
 * Strict: invalid JSON or UTF-8, trailing characters, duplicate keys, unknown or mistyped
 * fields, wrong dimension, non-numbers, values beyond float32, invalid ids and non-object
 * payloads are VDB_EDATA with a message naming the field (and column). The returned record
 * points into the parser and stays valid until its next call. */
typedef struct vdb_jsonl_parser vdb_jsonl_parser;

typedef enum vdb_record_kind {
	VDB_RECORD_UPSERT = 1,
	VDB_RECORD_DELETE = 2,
	VDB_RECORD_DELETE_WHERE = 3,
} vdb_record_kind;

VDB_API vdb_status vdb_jsonl_parser_new(uint32_t dim, vdb_jsonl_parser **out, vdb_error *err);
VDB_API void vdb_jsonl_parser_free(vdb_jsonl_parser *p);
VDB_API vdb_status vdb_jsonl_parse_record(vdb_jsonl_parser *p, const char *line, size_t len,
					  vdb_record_kind *kind, vdb_record *rec, vdb_error *err);

/* Parses one query line: a bare array of dim numbers, or
 * {"vector": [...], "k": N, "filter": {...}} ("k" and "filter" optional).
 * *k is left unchanged when the line gives none. The vector points into the parser. */
VDB_API vdb_status vdb_jsonl_parse_query(vdb_jsonl_parser *p, const char *line, size_t len,
					 const float **vector, size_t *k, vdb_error *err);
/* The "filter" object of the last query parsed (its JSON text, for vdb_filter_parse), or
 * NULL when it had none. Valid until the parser's next call. */
VDB_API const char *vdb_jsonl_query_filter(const vdb_jsonl_parser *p, size_t *len);

/* Parses an id given on a command line: a JSON integer or string ("42", "\"doc-1\""), or
 * else any other non-empty word, taken as a string id. The id points into `text`. */
VDB_API vdb_status vdb_id_parse_arg(const char *text, vdb_id *out, vdb_error *err);

/* Output: appends to a growable text (like getline: *buf may be NULL and is realloc'd). */
typedef struct vdb_text {
	char *data;
	size_t len;
	size_t cap;
} vdb_text;

VDB_API void vdb_text_free(vdb_text *t);

/* Appends n bytes as they are. */
VDB_API vdb_status vdb_text_append(vdb_text *t, const char *s, size_t n);

/* Appends one record in the ingest format, with a trailing newline. Floats are printed in
 * the shortest form that reads back to the same float32. */
VDB_API vdb_status vdb_jsonl_append_record(vdb_text *t, const vdb_record *rec, uint32_t dim);

/* Appends a JSON value for the id (a number or a string literal). */
VDB_API vdb_status vdb_jsonl_append_id(vdb_text *t, const vdb_id *id);

/* Appends the shortest decimal that reads back to the same float32. */
VDB_API vdb_status vdb_jsonl_append_float(vdb_text *t, float f);

/* Appends a JSON array of dim floats. */
VDB_API vdb_status vdb_jsonl_append_vector(vdb_text *t, const float *v, uint32_t dim);

/* Parses one line of a payloads file (vdb-ingest --payloads): a JSON object, kept minified
 * with its numbers as written, or null for no payload (*payload = NULL). The payload points
 * into the parser and stays valid until its next call. Errors: VDB_EDATA. */
VDB_API vdb_status vdb_jsonl_parse_payload(vdb_jsonl_parser *p, const char *line, size_t len,
					   const char **payload, size_t *payload_len,
					   vdb_error *err);

/* Appends the id as one word that vdb_id_parse_arg reads back to the same id: integers in
 * decimal, strings as they are, or between double quotes when bare text would read back
 * differently (all digits, or already quoted). Errors: VDB_EDATA for a
 * string id holding a line break or a backslash inside such quotes (not representable). */
VDB_API vdb_status vdb_id_append_arg(vdb_text *t, const vdb_id *id, vdb_error *err);

/* ---- Byte streams --------------------------------------------------------------------- */

/* An input stream over a file descriptor (not closed by the stream). When the data starts
 * with a zstd frame it is decompressed on the fly (concatenated frames too), so compressed
 * files and pipes need no flag. Messages do not name the input (the caller knows it).
 * A read interrupted by a signal is retried unless *cancel (optional) is set, in
 * which case VDB_EINTR is returned. */
typedef struct vdb_istream vdb_istream;

VDB_API vdb_status vdb_istream_open(int fd, volatile sig_atomic_t *cancel, vdb_istream **out,
				    vdb_error *err);
/* Reads 1..cap bytes, or sets *got = 0 at the end. Errors: VDB_EIO, VDB_EINTR, VDB_EDATA
 * (damaged or truncated zstd data). */
VDB_API vdb_status vdb_istream_read(vdb_istream *s, void *buf, size_t cap, size_t *got,
				    vdb_error *err);
/* Reads n bytes; *got < n only at the end of the input, or on an error (then *got says
 * how many bytes before the error are in buf). */
VDB_API vdb_status vdb_istream_read_full(vdb_istream *s, void *buf, size_t n, size_t *got,
					 vdb_error *err);
/* 1 when a read would not block. */
VDB_API int vdb_istream_ready(vdb_istream *s);
VDB_API int vdb_istream_compressed(const vdb_istream *s);
/* Bytes read from the file descriptor so far (compressed bytes for zstd input). */
VDB_API uint64_t vdb_istream_raw_bytes(const vdb_istream *s);
VDB_API void vdb_istream_close(vdb_istream *s);

/* An output stream: standard output (path NULL or "-"), or the file `path`, written as a
 * temporary sibling "path.tmp-PID" that vdb_ostream_finish fsyncs and renames into place
 * (then fsyncs the directory), so that a reader never sees half a file. zstd_level > 0
 * compresses (one frame, with a checksum). Closing an unfinished stream removes the
 * temporary file. As cp does, a symbolic link is followed and its target replaced; a
 * device or FIFO (or /dev/stdout, /dev/fd/N) is written in place, never replaced; a
 * directory or socket is refused (VDB_EEXIST). Errors: VDB_EIO (names the file and the
 * call). */
typedef struct vdb_ostream vdb_ostream;

VDB_API vdb_status vdb_ostream_open(const char *path, int zstd_level, vdb_ostream **out,
				    vdb_error *err);
VDB_API vdb_status vdb_ostream_write(vdb_ostream *s, const void *p, size_t n, vdb_error *err);
VDB_API vdb_status vdb_ostream_finish(vdb_ostream *s, vdb_error *err);
/* durable 0: vdb_ostream_finish renames without the fsyncs, as cp(1) writes: still whole or
 * absent under its name while the system runs, but a crash soon after may lose it. */
VDB_API void vdb_ostream_set_durable(vdb_ostream *s, int durable);
VDB_API void vdb_ostream_close(vdb_ostream *s);

/* ---- Vector files: NumPy .npy, TEXMEX .fvecs/.bvecs ------------------------------------ */

typedef enum vdb_vec_format {
	VDB_VEC_NPY = 1,   /* NumPy format 1.0-3.0, a 2-D array (rows, dim) */
	VDB_VEC_FVECS = 2, /* per row: int32 dim, then dim float32 (little-endian) */
	VDB_VEC_BVECS = 3, /* per row: int32 dim, then dim uint8 (read only) */
} vdb_vec_format;

/* Reads rows of `dim` float32 from a vector file. .npy: float32 is taken as is; float64 and
 * float16, either byte order, are converted (each value must be finite and, for float64,
 * within the float32 range); C and Fortran order (Fortran-order data is read whole before
 * the first row). Every value must be finite. Errors (VDB_EDATA) name the row, counted from
 * 0, and the column: truncated rows, a wrong dimension, non-finite or out-of-range values,
 * an unsupported .npy (object or structured dtype, integer types, rank other than 2). */
typedef struct vdb_vec_reader vdb_vec_reader;

/* Reads the header (npy) at once. */
VDB_API vdb_status vdb_vec_reader_open(vdb_istream *in, vdb_vec_format f, uint32_t dim,
				       vdb_vec_reader **out, vdb_error *err);
/* The number of rows the header declares (npy), or -1 when only the end tells. */
VDB_API int64_t vdb_vec_reader_rows(const vdb_vec_reader *r);
/* Sets *vec to the next row (valid until the next call) and *has to 1, or *has to 0 at the
 * end. */
VDB_API vdb_status vdb_vec_reader_next(vdb_vec_reader *r, const float **vec, int *has,
				       vdb_error *err);
/* 1 when the next call returns without reading (a row is buffered, or the end is known);
 * with vdb_istream_ready, tells a caller whether it may block on a slow producer. */
VDB_API int vdb_vec_reader_ready(const vdb_vec_reader *r);
/* The next rows in bulk, checked as vdb_vec_reader_next checks them: *rows points at *got
 * (at most max) rows of dim float32, each *stride floats after the previous, valid until the
 * next call or close. An uncompressed regular file whose rows are float32 (.npy '<f4' in C
 * order, .fvecs) is mapped, not copied; other input is read into a buffer of max rows that
 * the reader keeps. Fewer than max rows only at the end of the input, or when a slow
 * producer has nothing more ready once a row is in (nothing is waited for then). On an
 * error, the *got rows before the failing one are valid. */
VDB_API vdb_status vdb_vec_reader_block(vdb_vec_reader *r, size_t max, const float **rows,
					size_t *stride, size_t *got, vdb_error *err);
VDB_API void vdb_vec_reader_close(vdb_vec_reader *r);

/* Writes rows of `dim` float32 as .npy (version 1.0, '<f4', C order; `rows` must be the
 * exact number of rows that follow) or .fvecs. VDB_EINVAL for another format. */
typedef struct vdb_vec_writer vdb_vec_writer;

VDB_API vdb_status vdb_vec_writer_open(vdb_ostream *out, vdb_vec_format f, uint32_t dim,
				       uint64_t rows, vdb_vec_writer **w, vdb_error *err);
VDB_API vdb_status vdb_vec_writer_put(vdb_vec_writer *w, const float *vec, vdb_error *err);
/* Checks that the declared number of rows was written (VDB_EINTERNAL otherwise). */
VDB_API vdb_status vdb_vec_writer_finish(vdb_vec_writer *w, vdb_error *err);
VDB_API void vdb_vec_writer_close(vdb_vec_writer *w);

/* ---- CSV (RFC 4180) ------------------------------------------------------------------- */

/* Reading: the first record is the header. One column holds the id (integers as integers,
 * anything else a string id); the vector is either one column holding a JSON array, or
 * `vector_columns`: a comma-separated list of column names or 1-based column numbers and
 * ranges ("2-769"). Every other non-empty field goes into the payload under its column
 * name, typed as a JSON number when it is one, else as a string. Quoted fields may hold
 * commas, doubled quotes and line breaks; lines end in LF or CRLF. */
typedef struct vdb_csv_options {
	const char *id_column;      /* default "id" */
	const char *vector_column;  /* default "vector" */
	const char *vector_columns; /* NULL: use vector_column */
} vdb_csv_options;

VDB_API void vdb_csv_options_init(vdb_csv_options *o);

typedef struct vdb_csv_reader vdb_csv_reader;

/* Reads and checks the header. Errors: VDB_EDATA (missing columns, duplicate names),
 * VDB_EINVAL (a bad vector_columns list). */
VDB_API vdb_status vdb_csv_reader_open(vdb_istream *in, uint32_t dim, const vdb_csv_options *o,
				       vdb_csv_reader **out, vdb_error *err);
/* Next record (pointers valid until the next call), *has = 0 at the end. VDB_EDATA errors
 * start with "line N: " (the line where the record starts). */
VDB_API vdb_status vdb_csv_reader_next(vdb_csv_reader *r, vdb_record *rec, int *has,
				       vdb_error *err);
/* The line where the last record returned started (for messages about it). */
VDB_API uint64_t vdb_csv_reader_line(const vdb_csv_reader *r);
/* 1 when the end of a line is buffered or the input has ended (see vdb_vec_reader_ready). */
VDB_API int vdb_csv_reader_ready(const vdb_csv_reader *r);
VDB_API void vdb_csv_reader_close(vdb_csv_reader *r);

/* Writing: a header "id,vector,<payload keys>" then one line per record: the id, the vector
 * as a JSON array, and each payload value under its key's column (strings as they are,
 * other values as JSON text, missing keys empty). With vector_columns, the vector takes dim
 * numeric columns "v0".."v<dim-1>" instead of "vector" (for spreadsheets; read back with
 * vector_columns "2-<dim+1>"). The payload keys must be known before the header: pass every
 * record to vdb_csv_writer_add first (columns follow in order of first appearance). It also
 * refuses, with the record's id in the message (VDB_EDATA), what CSV cannot hold: a NUL
 * byte in an id, a payload key or a payload string. A payload key named like the id or a
 * vector column moves that column to a free name ("_id", "_vector", "_v0"..., see
 * vdb_csv_writer_columns). Fields are quoted (RFC 4180) when they hold a comma, a quote or a
 * line break; lines end in CRLF. */
typedef struct vdb_csv_writer vdb_csv_writer;

VDB_API vdb_status vdb_csv_writer_new(uint32_t dim, int vector_columns, vdb_csv_writer **out,
				      vdb_error *err);
VDB_API vdb_status vdb_csv_writer_add(vdb_csv_writer *w, const vdb_record *rec,
				      vdb_error *err);
/* The payload part of vdb_csv_writer_add alone (no id check). */
VDB_API vdb_status vdb_csv_writer_add_keys(vdb_csv_writer *w, const char *payload, size_t len,
					   vdb_error *err);
/* After the header: the names of the id column and of the vector column (with vector
 * columns, their common prefix before the number). */
VDB_API void vdb_csv_writer_columns(const vdb_csv_writer *w, const char **id,
				    const char **vector);
VDB_API vdb_status vdb_csv_writer_header(vdb_csv_writer *w, vdb_text *t, vdb_error *err);
VDB_API vdb_status vdb_csv_writer_record(vdb_csv_writer *w, vdb_text *t, const vdb_record *rec,
					 vdb_error *err);
VDB_API void vdb_csv_writer_free(vdb_csv_writer *w);

/* ---- Snapshots, restore and checks --------------------------------------------------- */

/* A snapshot is one file: a tar stream compressed with zstd (`tar --zstd -tf` lists it)
 * whose first entry, vdb-snapshot.json, lists every other entry with its size and CRC32C,
 * plus the vdb and format versions, the time, each collection's configuration and record
 * count. docs/format.md describes it. Taking one never blocks writers: each collection is
 * captured as one MANIFEST version plus the log prefix committed at that moment. */

typedef struct vdb_snapshot_options {
	const char *const *collections; /* names to include; NULL (or 0 of them): all */
	size_t ncollections;
	int level;   /* zstd level 1..19 (default 3) */
	int threads; /* zstd worker threads; 0 (default) compresses in the calling thread */
	/* Incremental: the path of an earlier snapshot in the same directory. Segments that it
	 * (or a snapshot it depends on) already holds are referenced by name instead of being
	 * stored. NULL: a full snapshot. */
	const char *since;
	volatile sig_atomic_t *cancel; /* optional: non-zero stops with VDB_EINTR */
	/* Optional: called after every chunk (1 MiB) of work with the work done and the total
	 * known so far, for a progress display. Both are in bytes of what is stored: each file
	 * is read twice (checksummed, then archived), each read counting half. */
	void (*progress)(void *ctx, uint64_t done, uint64_t total);
	void *progress_ctx;
} vdb_snapshot_options;

VDB_API void vdb_snapshot_options_init(vdb_snapshot_options *o);

typedef struct vdb_snapshot_stats {
	uint64_t collections, records;
	uint64_t files;      /* entries stored in this archive (not counting its manifest) */
	uint64_t referenced; /* entries left in the earlier snapshots it depends on */
	uint64_t bytes_in;   /* bytes of the stored files */
	uint64_t bytes_out;  /* bytes of the compressed archive */
} vdb_snapshot_stats;

/* Streams a snapshot of database db to out_fd (a file or a pipe; never seeks). Readers and
 * writers of db keep working; no lock is taken and LOCK files are not copied. Every segment
 * is checksum-verified while it is read, so a damaged database fails the snapshot instead
 * of producing a backup that cannot be restored. stats may be NULL.
 * Errors: VDB_ENOENT (no database, collection or --since file), VDB_ECORRUPT (a damaged
 * database file, or a damaged --since snapshot), VDB_EIO (writing out_fd: the message says
 * so), VDB_EINTR, VDB_ENOMEM. */
VDB_API vdb_status vdb_snapshot_write(const char *db, const vdb_snapshot_options *o, int out_fd,
				      vdb_snapshot_stats *stats, vdb_error *err);

/* The same into a file, atomically: path.tmp-PID is written, fsynced and renamed over
 * path (then the directory is fsynced), so path is never a partial archive. A symbolic link
 * is followed and its target replaced that way; a device or FIFO (or /dev/stdout,
 * /dev/fd/N) is written in place; a directory or socket is refused (VDB_EEXIST). */
VDB_API vdb_status vdb_snapshot_write_file(const char *db, const vdb_snapshot_options *o,
					   const char *path, vdb_snapshot_stats *stats,
					   vdb_error *err);

/* Cron mode: snapshots in a directory, named vdb-YYYYMMDDTHHMMSSZ.tar.zst (UTC). */
typedef struct vdb_snapshot_rotation {
	/* Keep the newest `keep` snapshots and every snapshot one of them depends on; remove
	 * the others. 0: remove nothing. */
	uint64_t keep;
	/* Every full_every-th snapshot is full; the others are incremental on the latest full
	 * one (so each depends on that one only). 1: always full. Default 7. */
	uint64_t full_every;
	uint64_t pruned; /* out: snapshots removed */
	int incremental; /* out: the one written is incremental */
} vdb_snapshot_rotation;

VDB_API void vdb_snapshot_rotation_init(vdb_snapshot_rotation *r);

/* Writes the next snapshot of db into dir (created if missing) as r says, then prunes.
 * `written` (cap bytes) receives the new file's path. Snapshots that cannot be read are
 * never used as a base, and never removed while a kept snapshot names them. */
VDB_API vdb_status vdb_snapshot_into(const char *db, const vdb_snapshot_options *o,
				     const char *dir, vdb_snapshot_rotation *r, char *written,
				     size_t cap, vdb_snapshot_stats *stats, vdb_error *err);

typedef struct vdb_restore_options {
	/* Check everything a restore checks, on a scratch copy extracted into scratch_dir and
	 * removed afterwards; nothing is written beside TARGET. */
	int verify_only;
	/* verify_only's scratch directory's parent. NULL: /tmp. (The commands pass $TMPDIR.) */
	const char *scratch_dir;
	/* Replace a TARGET that is a non-empty vdb database: the new one is swapped in with one
	 * atomic rename, refused while a writer holds a lock in TARGET. */
	int force;
	/* Where the snapshots an incremental depends on are looked for. NULL: the directory of
	 * the archive (the current directory when it comes from standard input). */
	const char *chain_dir;
	volatile sig_atomic_t *cancel;
	/* Optional: called after every chunk (1 MiB) extracted with the bytes done and the
	 * total the archive's manifest lists (0 before it has been read). */
	void (*progress)(void *ctx, uint64_t done, uint64_t total);
	void *progress_ctx;
} vdb_restore_options;

VDB_API void vdb_restore_options_init(vdb_restore_options *o);

typedef struct vdb_restore_stats {
	uint64_t collections, records, files, bytes;
	uint64_t archives; /* 1 + the snapshots an incremental took files from */
} vdb_restore_stats;

/* Restores the snapshot read from fd (named `name` in messages; "-" for standard input) as
 * database `target`. Everything is extracted into a fresh hidden directory beside target,
 * checked (every entry's checksum, every database invariant that vdb_check verifies, the
 * record counts of the manifest), fsynced and only then renamed into place: target ends
 * absent (or as it was) or complete. target must not exist or be an empty directory,
 * unless o->force. Hostile input -- absolute paths, "..", links, devices, entries the
 * manifest does not list, duplicates, sizes over the manifest's, truncation, corruption,
 * zstd windows over 2^27 bytes, more output than the manifest announces -- is VDB_ECORRUPT
 * naming the entry, and nothing is written outside the temporary directory, which is
 * removed. Errors: also VDB_EEXIST (target not empty), VDB_ELOCKED (force: a writer holds
 * a lock in target), VDB_ENOENT (a snapshot of the chain is missing: named), VDB_EIO. */
VDB_API vdb_status vdb_restore(int fd, const char *name, const char *target,
			       const vdb_restore_options *o, vdb_restore_stats *stats,
			       vdb_error *err);

/* Appends a readable listing of the archive's manifest to out: one "key: value" line per
 * property, one line per collection, then one line per entry ("SIZE CRC32C NAME", and
 * "(in FILE)" for entries an incremental references). Reads only the manifest entry. */
VDB_API vdb_status vdb_snapshot_list(int fd, const char *name, vdb_text *out, vdb_error *err);

/* Reports of vdb_check: problem != 0 for damage (line names the file), 0 for a summary. */
typedef void (*vdb_check_report)(void *ctx, int problem, const char *line);

/* Checks collection `name` of db (NULL: every collection): the marker, CONFIG and MANIFEST
 * checksums, that every file the MANIFEST names exists with the size and header it gives,
 * every section checksum of every segment, deletion files, the log (header, frames,
 * sequence numbers), HNSW graph consistency (counts, neighbour ids, levels, entry point),
 * the id index (sorted, every row once, hashes match) and the record counts. Takes no
 * lock. *problems receives the number of problems reported; VDB_OK even when some were
 * found. Errors: VDB_ENOENT (no database or collection), VDB_ENOMEM. */
VDB_API vdb_status vdb_check(const char *db, const char *name, vdb_check_report report,
			     void *ctx, uint64_t *problems, vdb_error *err);

/* vdb_check, then repair of what is derived from the stored records: each segment whose
 * damage is confined to its id index, norms, payload indexes or graph (checksum mismatch or
 * broken structure) is rewritten from its vectors, ids and payloads -- every row, deletion
 * marks kept -- under the writer lock (waiting for it) and installed atomically. Records
 * are never dropped: damage to vectors, ids, payloads, deletion files, the log or the
 * MANIFEST is only reported. Each repaired collection is checked again; *problems counts
 * what is left, *rebuilt the segments rewritten. Errors: as vdb_check, and those of a
 * writer (VDB_EIO, ...). */
VDB_API vdb_status vdb_check_repair(const char *db, const char *name, vdb_check_report report,
				    void *ctx, uint64_t *problems, uint64_t *rebuilt,
				    vdb_error *err);

#ifdef __cplusplus
}
#endif

#endif /* VDB_H */
