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
 * Option structs begin with their size: fill one with its _init function, then set fields.
 * A program compiled against an older vdb.h keeps working with a newer library (fields it
 * does not know keep their defaults); one compiled against a newer vdb.h than the library
 * gets VDB_EINVAL rather than options silently ignored.
 *
 * The interface comes in three headers (as zstd.h and zdict.h):
 *   vdb.h         the stable core: errors, ids and records, filters, collections (create,
 *                 open a consistent view, search, get, iterate, inspect), writers (upsert
 *                 and delete in durable batches)
 *   vdb_io.h      the formats every command speaks: JSON lines, byte streams (zstd on the
 *                 fly, atomic file output), NumPy .npy and .fvecs/.bvecs, CSV
 *   vdb_admin.h   snapshots, restore, checks and repair
 * Each includes what it builds on; vdb_version.h (included here) has the version macros.
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
	VDB_EINTR,     /* cancelled by the caller (vdb_cancel) */
	VDB_EINTERNAL, /* a bug: an internal invariant did not hold */
} vdb_status;

/* Cancellation: the library asks cancelled(ctx) wherever it can stop cleanly (between
 * reads, while waiting for a lock, between files and chunks); non-zero stops the call with
 * VDB_EINTR, what was committed staying committed. It may be asked from the library's own
 * threads, so it must be safe to call from any thread (reading a flag that a signal handler
 * sets is). All zero: never cancelled. */
typedef struct vdb_cancel {
	int (*cancelled)(void *ctx);
	void *ctx;
} vdb_cancel;

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
/* A new filter matching what both a and b match (as {"$and": [a, b]}), built from the
 * compiled filters: neither is parsed again. Errors: VDB_ENOMEM. */
VDB_API vdb_status vdb_filter_and(const vdb_filter *a, const vdb_filter *b, vdb_filter **out,
				  vdb_error *err);

/* Evaluates f on one payload (a JSON object's text; NULL for a record without one). The
 * payload is read only as far as the answer needs. Errors: VDB_EDATA (what had to be read
 * is not well-formed JSON). */
VDB_API vdb_status vdb_filter_match(const vdb_filter *f, const char *payload, size_t len,
				    int *match, vdb_error *err);

/* Calls fn for each field condition of f, in the filter's order: the field's path (dotted)
 * and the JSON type of the value it is compared with ("string", "number", "boolean",
 * "null"; NULL for $exists). For tools that explain a filter (vdb-query's notes). */
VDB_API void vdb_filter_fields(const vdb_filter *f,
			       void (*fn)(void *ctx, const char *path, const char *compared),
			       void *ctx);

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

/* Quantized codes: a compact copy of every vector in each sealed segment (int8: a byte per
 * dimension, binary: a bit), which graph searches walk instead of the float32 vectors; the
 * best candidates are then rescored with the originals, which stay untouched (exports are
 * lossless and exact searches read only them). */
typedef enum vdb_quantize {
	VDB_QUANTIZE_NONE = 0,
	VDB_QUANTIZE_INT8 = 1,   /* per-dimension scale and offset; about a quarter of float32 */
	VDB_QUANTIZE_BINARY = 2, /* the sign of each dimension after centring; 1/32 of float32 */
} vdb_quantize;

/* "none", "int8", "binary" <-> enum. Parse errors: VDB_EINVAL, as vdb_field_type_parse. */
VDB_API const char *vdb_quantize_name(vdb_quantize q);
VDB_API vdb_status vdb_quantize_parse(const char *name, vdb_quantize *out, vdb_error *err);

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

/* "keyword", "int", "float" <-> enum. Parse errors: VDB_EINVAL naming the word and the
 * choices ("unknown type 'x' (expected keyword, int or float)"). */
VDB_API const char *vdb_field_type_name(vdb_field_type t);
VDB_API vdb_status vdb_field_type_parse(const char *name, vdb_field_type *out, vdb_error *err);

typedef struct vdb_collection_config {
	size_t size; /* sizeof the struct, set by vdb_collection_config_init: lets later versions add fields */
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
	vdb_quantize quantize; /* codes written beside the vectors of every new segment */
} vdb_collection_config;

/* Sets defaults: dim 0 (must be set), metric L2, seal_bytes 4 MiB, HNSW with m 16 and
 * ef_construction 200, no payload indexes. A config passed to vdb_collection_create, or
 * filled by vdb_collection_get_config and vdb_writer_get_config, is initialized by this
 * first: its size tells the library how much of the struct the caller's version has. */
VDB_API void vdb_collection_config_init(vdb_collection_config *cfg);

/* "hnsw", "flat" <-> enum. Parse errors: VDB_EINVAL, as vdb_field_type_parse. */
VDB_API const char *vdb_index_name(vdb_index_type t);
VDB_API vdb_status vdb_index_parse(const char *name, vdb_index_type *out, vdb_error *err);

/* "l2", "cosine", "dot" <-> enum. Parse errors: VDB_EINVAL, as vdb_field_type_parse. */
VDB_API const char *vdb_metric_name(vdb_metric m);
VDB_API vdb_status vdb_metric_parse(const char *name, vdb_metric *out, vdb_error *err);

/* 1 when `name` is a valid collection name: [A-Za-z0-9_.-], 1..64 bytes, not starting with
 * a dot, and not "VDB" (the database marker file). */
VDB_API int vdb_collection_name_valid(const char *name);

/* Creates an empty database at db_path (the directory, if needed, and its marker), or
 * does nothing when it is one already. Errors: VDB_EEXIST (db_path exists and is not a vdb
 * database), VDB_ECORRUPT (a damaged marker), VDB_EIO. */
VDB_API vdb_status vdb_db_create(const char *db_path, vdb_error *err);

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

/* Whether a writer has committed since this view was loaded: the collection's MANIFEST was
 * replaced or its log's length changed (two stat calls, about a microsecond each). */
VDB_API int vdb_collection_stale(const vdb_collection *c);

/* A payload field: a path (dotted into nested objects, as filters write it), one JSON type
 * it has ("string", "integer", "number", "boolean", "null", "array", "object"), and how many
 * of the records read hold it with that type. When a sample was read, for a field with a
 * payload index the type the index covers ("string" for keyword, "number" for int and float:
 * values in arrays too) is counted over every live record instead (exact = 1). */
typedef struct vdb_field_stat {
	const char *path;
	const char *type;
	uint64_t records;
	int exact;
} vdb_field_stat;
/* The payload fields of the view's live records, sorted by path and type (*out: *n of them,
 * free with vdb_field_stats_free): of every record, or with max_records > 0 and more live
 * records than that, of max_records of them spread evenly over the collection (*sampled
 * says how many were read; the types indexed fields' indexes cover then counted exactly, from
 * the indexes and the log tail's payloads). Errors: VDB_ECORRUPT (a damaged payload), VDB_ENOMEM. */
VDB_API vdb_status vdb_collection_fields(vdb_collection *c, uint64_t max_records,
					 vdb_field_stat **out, size_t *n, uint64_t *sampled,
					 vdb_error *err);
VDB_API void vdb_field_stats_free(vdb_field_stat *f, size_t n);
/* Loads the newest committed version into c when it is stale (*changed = 1), as
 * vdb_collection_open would (about as long as an open: the segments are mapped again and
 * the log replayed), else returns at once. Records, hits and cursors of the old version
 * must not be used afterwards, and no other thread may use c (or a searcher of it) during
 * the call. Errors: those of vdb_collection_open (c keeps its version); VDB_ENOENT when
 * the collection was dropped or replaced by one of another dimension or metric. */
VDB_API vdb_status vdb_collection_refresh(vdb_collection *c, int *changed, vdb_error *err);

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
	uint64_t coded;         /* segments with quantized codes */
	/* Bytes searches need in memory to run at memory speed: the graphs with the codes
	 * (quantized segments) or the vectors (others), the vectors of segments without a
	 * graph, and the log. Beyond it, vectors are read only to rescore a few candidates. */
	uint64_t search_bytes;
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
	size_t size; /* sizeof the struct, set by vdb_search_options_init: lets later versions add fields */
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
	/* Quantized collections: graph searches walk the codes and rescore the best
	 * k * oversample candidates with the float32 vectors (the beam is widened to that many
	 * when ef is smaller). 0: the default for the codes (VDB_OVERSAMPLE_INT8, _BINARY);
	 * otherwise at least 1. Ignored where there are no codes. */
	double oversample;
} vdb_search_options;

#define VDB_OVERSAMPLE_INT8 3
#define VDB_OVERSAMPLE_BINARY 10
#define VDB_OVERSAMPLE_MAX 1000

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

/* The ids of n hits at once (string ids point into the view, valid while it is open): for
 * bindings, where a call per hit costs more than the lookup. */
VDB_API vdb_status vdb_hit_ids(vdb_collection *c, const vdb_hit *hits, size_t n, vdb_id *ids,
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
/* The order of an ordered cursor. */
typedef enum vdb_order {
	VDB_ORDER_STORAGE = 0, /* as vdb_cursor_open_where: constant memory */
	VDB_ORDER_ID = 1       /* by id, as vdb_id_compare: integers ascending, then strings */
} vdb_order;
/* vdb_cursor_open_where in the given order. Id order first finds every matching record
 * (one storage-order pass, with the same checksum verification) and sorts their places:
 * about 16 bytes of memory per record, not a copy of the records or their ids. Errors: as
 * vdb_cursor_next, VDB_EINVAL (an unknown order). */
VDB_API vdb_status vdb_cursor_open_ordered(vdb_collection *c, const vdb_filter *f,
					   vdb_order order, vdb_cursor **out, vdb_error *err);
/* Sets *has to 1 and fills *rec, or sets *has to 0 at the end. */
VDB_API vdb_status vdb_cursor_next(vdb_cursor *cur, vdb_record *rec, int *has, vdb_error *err);
VDB_API void vdb_cursor_close(vdb_cursor *cur);

/* ---- Writing -------------------------------------------------------------------------- */

typedef struct vdb_writer vdb_writer;

typedef struct vdb_writer_options {
	size_t size; /* sizeof the struct, set by vdb_writer_options_init: lets later versions add fields */
	/* How long to wait for another writer's lock: < 0 forever, 0 fail at once with
	 * VDB_ELOCKED, > 0 that many seconds then VDB_ELOCKED. Default: forever. */
	double wait_seconds;
	/* Optional: asked while waiting for the lock; when it says so, open returns VDB_EINTR. */
	vdb_cancel cancel;
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

/* Removes collection `name` of db_path: under its writer lock (waiting as o says; NULL:
 * wait as long as it takes), its directory is renamed away and the database directory
 * fsynced (from then on the collection is gone, in one step), then its files are deleted.
 * Killed midway it is either whole or gone; what a killed drop left is removed by the next
 * drop or create. Open views keep answering until closed. Errors: VDB_ENOENT (no such
 * database or collection), VDB_ELOCKED, VDB_EINTR (o->cancel), VDB_EIO. */
VDB_API vdb_status vdb_collection_drop(const char *db_path, const char *name,
				       const vdb_writer_options *o, vdb_error *err);
/* Renames collection `from` to `to` under from's writer lock (as vdb_collection_drop
 * waits), in one durable rename that never replaces an existing collection. Errors:
 * VDB_ENOENT, VDB_EEXIST (`to` exists), VDB_EINVAL (invalid name), VDB_ELOCKED, VDB_EINTR,
 * VDB_EIO. */
VDB_API vdb_status vdb_collection_rename(const char *db_path, const char *from, const char *to,
					 const vdb_writer_options *o, vdb_error *err);

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
 * load): then the rows are stored directly as a segment whatever their number (with a
 * graph in an HNSW collection), so that a load leaves no log tail to replay and scan. Errors: those of vdb_writer_upsert and vdb_writer_commit; VDB_EINVAL
 * (pending batch, stride < dim, ids beyond UINT64_MAX). */
#define VDB_ROWS_LAST 1u
VDB_API vdb_status vdb_writer_upsert_rows(vdb_writer *w, uint64_t first_id, const float *vectors,
					  size_t stride, size_t n, unsigned flags, size_t *bad,
					  vdb_error *err);

/* Adds an upsert to the pending batch as a bulk row: vdb_writer_commit stores the batch's
 * bulk rows directly as a segment of their own (after sealing the log's records), with its
 * graph in an HNSW collection, whatever their number, without writing them to the log --
 * the fast path for bulk loads of files whose rows carry ids and payloads (Parquet); the
 * latest row per id wins, as in any batch. Checks and guarantees as vdb_writer_upsert and
 * vdb_writer_commit. A batch holds bulk rows or other operations, not both: VDB_EINVAL. */
VDB_API vdb_status vdb_writer_upsert_bulk(vdb_writer *w, const vdb_id *id, const float *vector,
					  const char *payload, size_t payload_len,
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
/* Changes the codes the collection's new segments carry (its CONFIG is replaced
 * atomically); segments written before keep theirs and keep working, and the next
 * vdb_writer_compact rewrites them all with the new kind. The pending batch must be empty.
 * Errors: VDB_EINVAL (a flat collection cannot be quantized), VDB_EIO. */
VDB_API vdb_status vdb_writer_set_quantize(vdb_writer *w, vdb_quantize q, vdb_error *err);
/* What a load does when it ends (vdb_loader_run), so that what it wrote is searched at once
 * as fast as after vdb_writer_compact, at a cost in proportion to what was added: in an
 * HNSW collection whose rows outside its largest segment (in smaller segments and the log)
 * are at least a graph's worth (VDB_HNSW_MIN_ROWS, 1024) and 1/64 of that segment, the log
 * is sealed and every segment merged into one, the largest one's graph kept and the other
 * rows inserted into it (unless over a quarter of that graph's rows are deleted: then
 * only vdb_writer_compact rebuilds it); otherwise, when the log and the segments without
 * a graph at the end hold 1024 records or more, they become a segment with a graph of
 * their own. Deleted rows stay until a compaction. A collection whose rows are spread over
 * several graphs (written by an older vdb, or loaded with no settling) is brought to one
 * graph by its next settling load, at the cost of inserting the rows outside the largest
 * segment. The pending batch must be empty. Errors: those of vdb_writer_compact. */
VDB_API vdb_status vdb_writer_settle(vdb_writer *w, vdb_error *err);
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

#ifdef __cplusplus
}
#endif

#endif /* VDB_H */
