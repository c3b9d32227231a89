/*
 * vdb_io.h — libvdb's formats: JSON lines (the record format every command speaks, parsed
 * and printed exactly), byte streams that decompress zstd on the fly and write files
 * atomically, NumPy .npy and TEXMEX .fvecs/.bvecs vector files, and CSV (RFC 4180).
 * The conventions of vdb.h hold here too.
 */
#ifndef VDB_IO_H
#define VDB_IO_H

#include "vdb.h"

#ifdef __cplusplus
extern "C" {
#endif

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
 * {"vector": [...], "k": N, "filter": {...}, "ef": N, "oversample": F, "tag": ANY} (all but
 * "vector" optional; see vdb_search_options for ef and oversample; "tag" is any JSON value,
 * echoed in the answer). *k is left unchanged when the line gives none. The vector points
 * into the parser. */
VDB_API vdb_status vdb_jsonl_parse_query(vdb_jsonl_parser *p, const char *line, size_t len,
					 const float **vector, size_t *k, vdb_error *err);
/* The "ef" and "oversample" of the last query parsed, 0 for those it did not give. */
VDB_API void vdb_jsonl_query_params(const vdb_jsonl_parser *p, size_t *ef, double *oversample);
/* The "tag" of the last query line parsed (its minified JSON text), or NULL when it had
 * none. A line that failed still has its tag when the tag could be read (a JSON object
 * whose "tag" comes before anything malformed). Valid until the parser's next call. */
VDB_API const char *vdb_jsonl_query_tag(const vdb_jsonl_parser *p, size_t *len);
/* The "filter" object of the last query parsed (its JSON text, for vdb_filter_parse), or
 * NULL when it had none. Valid until the parser's next call. */
VDB_API const char *vdb_jsonl_query_filter(const vdb_jsonl_parser *p, size_t *len);

/* Parses the text form of an id, as a line of an ids file (vdb-ingest --ids, vdb-export
 * --ids-out) or a command-line argument holds it: a JSON integer or string ("42",
 * "\"doc-1\""), or else any other non-empty text, taken as a string id. The id points into
 * `text`. */
VDB_API vdb_status vdb_id_parse_text(const char *text, vdb_id *out, vdb_error *err);

/* Output: appends to a growable text (like getline: *buf may be NULL and is realloc'd). */
typedef struct vdb_text {
	char *data;
	size_t len;
	size_t cap;
} vdb_text;

VDB_API void vdb_text_free(vdb_text *t);

/* Appends n bytes as they are. */
VDB_API vdb_status vdb_text_append(vdb_text *t, const char *s, size_t n);

/* Appends the result line of a search, as vdb-query prints it, with a trailing newline:
 *   {"results":[{"id":7,"score":0.93},...]}
 * hits[0..n) of collection c, best first; with VDB_HITS_PAYLOAD each result also carries
 * "payload" (null without one), with VDB_HITS_VECTOR "vector". Errors: those of
 * vdb_hit_record, VDB_ENOMEM. */
#define VDB_HITS_PAYLOAD 1u
#define VDB_HITS_VECTOR 2u
VDB_API vdb_status vdb_jsonl_append_hits(vdb_text *t, vdb_collection *c, const vdb_hit *hits,
					 size_t n, unsigned flags, vdb_error *err);
/* The same, with the query's tag (JSON text, tag_len bytes; none when NULL) first:
 *   {"tag":"q17","results":[...]} */
VDB_API vdb_status vdb_jsonl_append_answer(vdb_text *t, vdb_collection *c, const char *tag,
					   size_t tag_len, const vdb_hit *hits, size_t n,
					   unsigned flags, vdb_error *err);
/* The line that stands for a query line that failed (vdb-query --skip-invalid), with its tag
 * when it had one: {"tag":"q17","line":12,"error":"..."}. Errors: VDB_ENOMEM. */
VDB_API vdb_status vdb_jsonl_append_failure(vdb_text *t, const char *tag, size_t tag_len,
					    uint64_t lineno, const char *message);

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

/* Appends the id as one word that vdb_id_parse_text reads back to the same id: integers in
 * decimal, strings as they are, or between double quotes when bare text would read back
 * differently (all digits, or already quoted). Errors: VDB_EDATA for a
 * string id holding a line break or a backslash inside such quotes (not representable). */
VDB_API vdb_status vdb_id_append_text(vdb_text *t, const vdb_id *id, vdb_error *err);

/* ---- Byte streams --------------------------------------------------------------------- */

/* An input stream over a file descriptor (not closed by the stream). When the data starts
 * with a zstd frame it is decompressed on the fly (concatenated frames too), so compressed
 * files and pipes need no flag. Messages do not name the input (the caller knows it).
 * A read interrupted by a signal is retried unless `cancel` (optional, NULL: never) says
 * to stop, in which case VDB_EINTR is returned. */
typedef struct vdb_istream vdb_istream;

VDB_API vdb_status vdb_istream_open(int fd, const vdb_cancel *cancel, vdb_istream **out,
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
/* 1 when vdb_vec_reader_block maps the rows in place (an uncompressed regular file of
 * float32 rows): a large max then costs no buffer. */
VDB_API int vdb_vec_reader_maps(vdb_vec_reader *r);
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
	size_t size; /* sizeof the struct, set by vdb_csv_options_init: lets later versions add fields */
	const char *id_column;      /* default "id" */
	const char *vector_column;  /* default "vector" */
	const char *vector_columns; /* NULL: use vector_column */
	/* A column of JSON objects taken as the payload, when the header has it (default
	 * "payload", as vdb_csv_writer writes it; "" or NULL: none). The other columns' values
	 * join it as keys of their own. */
	const char *payload_column;
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

/* Writing: a header "id,vector,payload" then one line per record: the id, the vector as a
 * JSON array and the payload as its JSON text (empty without one), which the reader takes
 * back exactly. With vdb_csv_writer_set_payload_columns, each top-level payload key gets a
 * column of its own instead ("id,vector,<payload keys>": strings as they are, other values
 * as JSON text, missing keys empty), which spreadsheets show better but which is lossy read
 * back (a string "42" becomes the number 42, an empty string disappears, arrays and
 * booleans become strings). With vector_columns, the vector takes dim
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
/* One column per top-level payload key (lossy, see above) instead of one JSON column; before
 * any vdb_csv_writer_add. */
VDB_API void vdb_csv_writer_set_payload_columns(vdb_csv_writer *w, int on);
VDB_API vdb_status vdb_csv_writer_add(vdb_csv_writer *w, const vdb_record *rec,
				      vdb_error *err);
/* The payload part of vdb_csv_writer_add alone (no id check; nothing to do without
 * vdb_csv_writer_set_payload_columns). */
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

/* ---- File formats by name ------------------------------------------------------------- */

typedef enum vdb_file_format {
	VDB_FILE_AUTO = 0, /* from the file's name; JSON lines when it names none */
	VDB_FILE_JSONL,
	VDB_FILE_NPY,
	VDB_FILE_FVECS,
	VDB_FILE_BVECS,
	VDB_FILE_CSV,
	VDB_FILE_PARQUET,
} vdb_file_format;

/* The format a file name says, a ".zst" after it aside: .jsonl .ndjson .json, .npy, .fvecs,
 * .bvecs, .csv, .parquet (.pq); VDB_FILE_AUTO when it says none. */
VDB_API vdb_file_format vdb_file_format_of(const char *path);
/* "jsonl", "npy", "fvecs", "bvecs", "csv", "parquet"; VDB_FILE_AUTO for any other name. */
VDB_API vdb_file_format vdb_file_format_parse(const char *name);
/* The name of a format ("" for VDB_FILE_AUTO). */
VDB_API const char *vdb_file_format_name(vdb_file_format f);
/* Whether the format holds vectors only (npy, fvecs, bvecs): ids and payloads come from
 * elsewhere. */
VDB_API int vdb_file_format_is_vectors(vdb_file_format f);

/* ---- Exporting a collection ------------------------------------------------------------ */

typedef enum vdb_parquet_codec {
	VDB_PARQUET_ZSTD = 0,
	VDB_PARQUET_SNAPPY,
	VDB_PARQUET_UNCOMPRESSED,
} vdb_parquet_codec;

/* What vdb-export writes: every live record of a view (or those a filter matches), in
 * storage order (sealed segments oldest first, then the log in commit order; constant
 * memory) or id order, as
 *   VDB_FILE_JSONL  JSON lines in the ingest format (what re-ingests to the same records)
 *   VDB_FILE_NPY    a float32 (rows, dim) array, C order
 *   VDB_FILE_FVECS  TEXMEX: per row, int32 dim then dim float32
 *   VDB_FILE_CSV    RFC 4180: id,vector,payload (the payload's JSON), or the options below
 *   VDB_FILE_PARQUET  Apache Parquet: id (INT64, or STRING when an id is a string),
 *                   vector (LIST of FLOAT, marked fixed_size_list<float, dim> for Arrow),
 *                   payload (JSON), and with payload_columns a typed column per top-level
 *                   payload key of one type; pages compressed as parquet_codec says
 * to `output` (NULL: standard output) atomically (temp name, fsync unless !durable,
 * rename); ids_path and payloads_path (npy, fvecs) receive the ids (one per line) and the
 * payloads (a JSON object or null per line) in the same order, finished before the main
 * output. A name ending in .zst is zstd-compressed, and so is the main output with zstd. */
typedef struct vdb_export_options {
	size_t size; /* sizeof the struct, set by vdb_export_options_init: lets later versions add fields */
	vdb_file_format format; /* default VDB_FILE_JSONL */
	const char *output;
	int zstd;
	int durable; /* default 1 */
	const char *ids_path, *payloads_path;
	vdb_order order;
	const vdb_filter *filter; /* optional */
	int vector_columns;  /* csv: the vector as dim numeric columns v0, v1, ... */
	/* csv: a column per top-level payload key (lossy read back); parquet: typed columns
	 * for the keys of one type, beside the payload column */
	int payload_columns;
	vdb_cancel cancel;
	void *ctx; /* passed to the callbacks */
	/* Optional: after each record, with the records written and the total. */
	void (*on_progress)(void *ctx, uint64_t rows, uint64_t total);
	/* Optional: a note for people (a CSV column renamed because a payload key took its
	 * name). */
	void (*on_note)(void *ctx, const char *message);
	/* parquet: page compression (default VDB_PARQUET_ZSTD), and rows per row group (0:
	 * about 64 MiB of rows, at most 1,048,576). */
	vdb_parquet_codec parquet_codec;
	uint64_t row_group_rows;
} vdb_export_options;

VDB_API void vdb_export_options_init(vdb_export_options *o);

/* Writes the records of view c as o says; *rows (when not NULL) receives how many were
 * written. Checksums are verified before any record of a segment is written. On an output
 * error the outputs are removed (a file never appears partial) and errno is that of the
 * failed call (EPIPE: standard output's reader went away). Errors: VDB_EINVAL (options that
 * do not go together), VDB_EIO, VDB_ECORRUPT, VDB_EDATA (CSV cannot hold an id or payload),
 * VDB_EINTR, VDB_ENOMEM. */
VDB_API vdb_status vdb_export(vdb_collection *c, const vdb_export_options *o, uint64_t *rows,
			      vdb_error *err);

/* ---- Loading files into a collection --------------------------------------------------- */

/* A loader reads records from files and standard input (any format above, zstd-compressed or
 * not) into a collection through a writer, in durable batches, as vdb-ingest does:
 *  - a batch is committed when it holds `batch` records (or 64 MiB), and also whenever the
 *    input has nothing more ready, so a slow producer's records become durable promptly;
 *  - vector files (without ids or payloads files, or `batch`) are taken in blocks the size
 *    of the collection's seal threshold and stored directly as segments (the last block
 *    too, with its graph);
 *  - a delete_where record commits what is before it, then deletes every match in a batch
 *    of its own;
 *  - the first bad line or row (without skip_invalid) stops the run: everything before it
 *    is committed, nothing after it, and the run returns VDB_EDATA naming the file and line
 *    ("FILE: line N: why"; "line N: why" for standard input; "row N" for vector files);
 *  - ids and payloads files must have one line per vector row: checked before anything is
 *    committed, as every vector file's header and size is;
 *  - cancellation (o.cancel) stops at the next record or read, even while waiting for input:
 *    only committed batches stay (VDB_EINTR).
 * With two threads or more, JSON lines are parsed on the calling thread and stored on one
 * of the loader's (parsing costs about twice what storing does); the batches, messages and
 * results are the same as on one. The callbacks are then called from that thread, never two
 * at once. */
typedef struct vdb_loader vdb_loader;

/* What a loader did so far. */
typedef struct vdb_load_counts {
	uint64_t committed; /* records in committed batches: upserts and deletes */
	uint64_t upserted, deleted;
	uint64_t not_found; /* deletes of ids with no live record (not counted as deleted) */
	uint64_t rejected;  /* bad lines skipped (skip_invalid) */
	uint64_t batches;
	uint64_t seen;       /* records read and checked, committed or not, rejected lines too */
	uint64_t bytes;      /* input bytes behind the committed records */
	uint64_t read_bytes; /* bytes read from the inputs (compressed bytes of zstd input) */
} vdb_load_counts;

/* A committed batch (for messages). */
typedef struct vdb_load_batch {
	uint64_t number;      /* from 1 */
	uint64_t records;
	const char *unit;     /* "lines" or "rows": what first and last count */
	uint64_t first, last; /* where its records were in the input */
} vdb_load_batch;

typedef struct vdb_loader_options {
	size_t size; /* sizeof the struct, set by vdb_loader_options_init: lets later versions add fields */
	/* Records per committed batch, 1 to 1000000; 0: the default, 1000 (and vector files
	 * fill each batch up to the seal threshold). */
	uint64_t batch;
	/* The longest accepted JSON line (default 64 MiB). */
	size_t max_line_bytes;
	/* JSON lines only: a bad line is reported (on_reject, write_rejected) and skipped. */
	int skip_invalid;
	/* Vector files: one id per line, aligned with the rows (instead of row numbers). */
	const char *ids_path;
	/* Vector files without ids_path: id = row number over all inputs + id_offset (not 0:
	 * only vector files may be added). */
	uint64_t id_offset;
	/* Vector files: one JSON object (or null) per line, aligned with the rows. */
	const char *payloads_path;
	/* CSV inputs (NULL: the defaults of vdb_csv_options_init). */
	const vdb_csv_options *csv;
	/* Optional: deleted before any input is read, in a batch of its own. */
	const vdb_filter *delete_where;
	/* Threads: 2 or more parses JSON lines on one and stores on another (see above);
	 * 0 or 1, the calling thread only. */
	unsigned threads;
	vdb_cancel cancel;
	void *ctx; /* passed to the callbacks */
	/* Optional: the progress of the run: records added so far (committed or pending) and
	 * input bytes read. `now` is set after a large step (a block of rows); otherwise it
	 * comes once per record, and should look at the clock only now and then. */
	void (*on_progress)(void *ctx, uint64_t records, uint64_t read_bytes, int now);
	/* Optional: after each committed batch. */
	void (*on_commit)(void *ctx, const vdb_load_batch *b);
	/* Optional, skip_invalid: a line was rejected; the message names where and why. */
	void (*on_reject)(void *ctx, const char *message);
	/* Optional, skip_invalid: receives the bytes of every rejected line followed by a
	 * newline (an over-long line in pieces as it is read). Returns 0 or an errno value, which
	 * fails the run with VDB_EIO ("write REJECTS_NAME: why"). */
	int (*write_rejected)(void *ctx, const void *bytes, size_t n);
	const char *rejects_name;
	/* Non-zero: the run does not end with vdb_writer_settle (what it stored stays in the log
	 * and the segments it was sealed into, for a later load or vdb_writer_compact). */
	int no_settle;
	/* JSON lines: when the input stalls with records pending, wait up to this many
	 * milliseconds after the first of them was read for more lines before committing them
	 * (0 to 60000; 0, the default: commit at once). A slow producer's records then share
	 * fsyncs; none waits longer than this for its commit. */
	unsigned commit_delay_ms;
} vdb_loader_options;

VDB_API void vdb_loader_options_init(vdb_loader_options *o);

/* A loader with no inputs yet. Errors: VDB_EINVAL (an option out of range; standard input
 * as ids or payloads file: it is read twice, to count its lines first), VDB_ENOMEM. The
 * messages of this and the other loader calls name options as vdb-ingest spells them
 * ("--ids", "--max-line-bytes"). */
VDB_API vdb_status vdb_loader_new(const vdb_loader_options *o, vdb_loader **out, vdb_error *err);

/* Adds an input, read in the order added: path, or standard input for NULL or "-", in
 * format f (VDB_FILE_AUTO: from the name, standard input and unknown names JSON lines).
 * Nothing is read yet, but a missing file fails here, before anything is committed.
 * Errors: VDB_EINVAL (standard input twice; skip_invalid with a format other than JSON
 * lines; ids, payloads or id_offset with a format other than a vector file), VDB_ENOENT. */
VDB_API vdb_status vdb_loader_add_input(vdb_loader *l, const char *path, vdb_file_format f,
					vdb_error *err);
/* The bytes of all inputs added, or UINT64_MAX when one is not a regular file. */
VDB_API uint64_t vdb_loader_input_bytes(const vdb_loader *l);

/* Reads every input into the writer's collection (see above). What is pending in the
 * writer when it returns is committed (VDB_OK, VDB_EDATA) or dropped (any other error).
 * Errors: VDB_EDATA, VDB_EINTR, VDB_EINVAL (the rows of a pipe that ids or payloads files
 * must match cannot be counted in advance), VDB_ENOENT, VDB_EIO, VDB_ENOMEM, and those of
 * vdb_writer_commit. A loader runs once. */
VDB_API vdb_status vdb_loader_run(vdb_loader *l, vdb_writer *w, vdb_error *err);

VDB_API void vdb_loader_counts(const vdb_loader *l, vdb_load_counts *out);
VDB_API void vdb_loader_free(vdb_loader *l);

/* ---- Query streams --------------------------------------------------------------------- */

/* A query stream answers query lines (see vdb_jsonl_parse_query) read from a file descriptor
 * with one result line each (see vdb_jsonl_append_hits), in input order, as vdb-query does:
 *  - lines already there are read and answered in batches; queries of a batch without a
 *    filter of their own are searched together, so that exact scans read each segment once
 *    for them all;
 *  - with several threads, batches are answered in parallel and written in order; a batch
 *    alone in flight (one query typed at a time) scans on all threads;
 *  - answers are handed to `write` in blocks, and `flush` is called before the stream waits
 *    for input, so a program that sends one query and waits for its answer gets it;
 *  - a bad line stops the stream after the answers before it are written: VDB_EDATA naming
 *    it ("FILE: line N: why", "line N: why" for standard input); with skip_invalid it is
 *    answered by a failure line instead (vdb_jsonl_append_failure) and the stream goes on;
 *  - a line's "tag" comes first in its answer (vdb_jsonl_append_answer).
 * The options' filter applies together with each line's own (both must match); a line's
 * filter is compiled once per distinct text. The stream searches one collection view. */
typedef struct vdb_query_stream vdb_query_stream;

typedef struct vdb_query_stream_options {
	size_t size; /* sizeof the struct, set by vdb_query_stream_options_init: lets later versions add fields */
	size_t k;    /* results per query a line does not say otherwise (default 10) */
	size_t ef;   /* as vdb_search_options */
	int exact;
	double oversample; /* as vdb_search_options */
	const vdb_filter *filter; /* optional; must outlive the stream */
	unsigned hits_flags;      /* VDB_HITS_PAYLOAD, VDB_HITS_VECTOR */
	/* Threads answering a stream (1 to 64; 0: 1), and scanning a single query. */
	unsigned threads;
	size_t max_line_bytes; /* the longest accepted query line (default 64 MiB) */
	void *ctx;             /* passed to the callbacks */
	/* Receives the answers in input order, whole lines at a time. Returns 0, or non-zero
	 * to stop the stream (vdb_query_stream_run returns VDB_EIO). */
	int (*write)(void *ctx, const char *data, size_t len);
	/* Optional: the stream is about to wait for input. Returns as `write` does. */
	int (*flush)(void *ctx);
	/* A line that is not a valid query (VDB_EDATA: syntax, dimension, filter, a vector
	 * with no direction) gets a failure line in its place and the stream goes on; see
	 * vdb_query_stream_failures. */
	int skip_invalid;
} vdb_query_stream_options;

VDB_API void vdb_query_stream_options_init(vdb_query_stream_options *o);
/* Errors: VDB_EINVAL (k, threads out of range; no write callback), VDB_ENOMEM. */
VDB_API vdb_status vdb_query_stream_new(vdb_collection *c, const vdb_query_stream_options *o,
					vdb_query_stream **out, vdb_error *err);
/* Answers every query line read from fd (not closed; zstd input is decompressed) until its
 * end; `name` names it in messages (NULL: standard input). Errors: VDB_EDATA (a bad line:
 * the answers before it were written), VDB_EIO (reading; or `write`/`flush` said to stop),
 * VDB_ECORRUPT, VDB_ENOMEM. */
VDB_API vdb_status vdb_query_stream_run(vdb_query_stream *s, int fd, const char *name,
					vdb_error *err);
/* How many queries the stream has answered so far (runs and vdb_query_stream_answer), and
 * in *with_results how many of them found at least one record. */
VDB_API uint64_t vdb_query_stream_answered(const vdb_query_stream *s, uint64_t *with_results);
/* How many lines a skip_invalid stream answered with failure lines so far; when any,
 * *first_line and *first_error say which was the first and why. */
VDB_API uint64_t vdb_query_stream_failures(const vdb_query_stream *s, uint64_t *first_line,
					   vdb_error *first_error);
/* Answers one query line, appending its result line to out; the scans of this query use
 * every thread of the options. Errors: VDB_EDATA (a bad query), those of vdb_search. */
VDB_API vdb_status vdb_query_stream_answer(vdb_query_stream *s, const char *line, size_t len,
					   vdb_text *out, vdb_error *err);
VDB_API void vdb_query_stream_free(vdb_query_stream *s);

#ifdef __cplusplus
}
#endif

#endif /* VDB_IO_H */
