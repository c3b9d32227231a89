/* Apache Parquet, written and read without a Parquet library (Debian has none for C): the
 * footer and page headers in the Thrift compact protocol (thrift.h), pages compressed with
 * Debian's libzstd, libsnappy and zlib.
 *
 *   parquet_meta.c      the footer (FileMetaData) and page headers, parsed with every count,
 *                       length and offset checked
 *   parquet_encoding.c  RLE/bit-packed levels and dictionary indices, DELTA_BINARY_PACKED,
 *                       DELTA_(LENGTH_)BYTE_ARRAY, BYTE_STREAM_SPLIT; page compression
 *   parquet_write.c     vdb-export's writer: id, vector (LIST of FLOAT, marked
 *                       fixed_size_list<float, dim> for Arrow), payload (JSON) and typed
 *                       payload columns
 *   parquet_read.c      vdb-ingest's reader: the files DuckDB, Arrow, Spark and Polars write
 *   arrow_schema.c      the ARROW:schema footer entry Arrow-based readers restore types from
 *
 * A Parquet file is attacker-controlled input: its footer says where everything is. */
#ifndef VDB_FORMATS_PARQUET_H
#define VDB_FORMATS_PARQUET_H

#include <stddef.h>
#include <stdint.h>

#include "../util/buf.h"
#include "vdb_io.h"

/* ---- the format's numbers ---- */

enum { PQ_BOOLEAN, PQ_INT32, PQ_INT64, PQ_INT96, PQ_FLOAT, PQ_DOUBLE, PQ_BYTE_ARRAY,
       PQ_FIXED_LEN_BYTE_ARRAY };
enum { PQ_REQUIRED, PQ_OPTIONAL, PQ_REPEATED };
enum { PQ_UNCOMPRESSED, PQ_SNAPPY, PQ_GZIP, PQ_LZO, PQ_BROTLI, PQ_LZ4, PQ_ZSTD, PQ_LZ4_RAW };
enum { PQ_PLAIN = 0, PQ_PLAIN_DICTIONARY = 2, PQ_RLE = 3, PQ_BIT_PACKED = 4,
       PQ_DELTA_BINARY_PACKED = 5, PQ_DELTA_LENGTH_BYTE_ARRAY = 6, PQ_DELTA_BYTE_ARRAY = 7,
       PQ_RLE_DICTIONARY = 8, PQ_BYTE_STREAM_SPLIT = 9 };
enum { PQ_DATA_PAGE, PQ_INDEX_PAGE, PQ_DICTIONARY_PAGE, PQ_DATA_PAGE_V2 };
/* ConvertedType, the older annotation (still written beside the logical type). */
enum { PQ_CT_UTF8 = 0, PQ_CT_MAP = 1, PQ_CT_MAP_KEY_VALUE = 2, PQ_CT_LIST = 3, PQ_CT_ENUM = 4,
       PQ_CT_DECIMAL = 5, PQ_CT_DATE = 6, PQ_CT_TIME_MILLIS = 7, PQ_CT_TIME_MICROS = 8,
       PQ_CT_TIMESTAMP_MILLIS = 9, PQ_CT_TIMESTAMP_MICROS = 10, PQ_CT_UINT_8 = 11,
       PQ_CT_UINT_64 = 14, PQ_CT_INT_8 = 15, PQ_CT_INT_64 = 18, PQ_CT_JSON = 19,
       PQ_CT_BSON = 20, PQ_CT_INTERVAL = 21 };

/* What a column's annotations (logical or converted type) say, reduced to what the reader
 * acts on. */
typedef enum pq_kind {
	PQ_K_NONE,   /* a plain physical value */
	PQ_K_STRING, /* UTF-8 text (STRING, ENUM, UTF8) */
	PQ_K_JSON,
	PQ_K_INT,    /* int_bits, int_signed */
	PQ_K_DATE,   /* days since 1970-01-01 */
	PQ_K_TIMESTAMP, /* time_unit, since 1970-01-01T00:00:00 */
	PQ_K_LIST,
	PQ_K_MAP,
	PQ_K_OTHER,  /* anything else (DECIMAL, TIME, UUID, BSON, INTERVAL, FLOAT16, ...) */
} pq_kind;

typedef struct pq_schema_el {
	const char *name; /* into the footer's bytes; name_len long, not NUL-terminated */
	uint32_t name_len;
	int has_type, type;
	int32_t type_length;
	int repetition; /* PQ_REQUIRED when absent */
	int32_t num_children;
	pq_kind kind;
	int int_bits, int_signed;
	int time_unit; /* 0 ms, 1 us, 2 ns */
	int utc;       /* timestamps: adjusted to UTC */
	const char *other; /* the annotation's name, for messages (PQ_K_OTHER) */
} pq_schema_el;

typedef struct pq_chunk {
	int type, codec;
	int64_t num_values, total_compressed, total_uncompressed;
	int64_t data_page_offset, dictionary_page_offset; /* the latter -1 when absent */
	uint32_t path_len; /* elements of path_in_schema */
} pq_chunk;

typedef struct pq_row_group {
	pq_chunk *cols;
	uint32_t ncols;
	int64_t num_rows;
} pq_row_group;

typedef struct pq_file_meta {
	pq_schema_el *schema;
	uint32_t nschema;
	int64_t num_rows;
	pq_row_group *groups;
	uint32_t ngroups;
} pq_file_meta;

/* Parses the footer's FileMetaData (p stays referenced: names point into it). 0, or -1 with
 * the reason in why. */
int pq_meta_parse(const uint8_t *p, size_t n, pq_file_meta *m, char *why, size_t whylen);
void pq_meta_free(pq_file_meta *m);

typedef struct pq_page_header {
	int type;
	int32_t uncompressed_size, compressed_size;
	int32_t num_values;
	int encoding;
	int def_encoding, rep_encoding; /* v1 */
	int32_t num_nulls, num_rows;    /* v2 */
	int32_t def_bytes, rep_bytes;   /* v2: the uncompressed level sections */
	int is_compressed;              /* v2 (default 1) */
	unsigned bodies;                /* bit 5, 7, 8: which kinds' headers it has */
} pq_page_header;

/* Parses a page header from p[0..n): 1 with *used bytes, 0 when more bytes are needed (the
 * header may go on past n), -1 on damage (why). */
int pq_page_header_parse(const uint8_t *p, size_t n, pq_page_header *h, size_t *used, char *why,
			 size_t whylen);

/* ---- encodings and compression (parquet_encoding.c) ---- */

/* Decodes `count` values of the RLE/bit-packed hybrid (bit width 0..32) from p[0..n) into
 * out; -1 when the bytes end first or a run is malformed. */
int pq_rle_decode(const uint8_t *p, size_t n, int bit_width, uint32_t count, uint32_t *out);
/* The same for levels (bit width 0..8), a byte each. */
int pq_rle_decode_levels(const uint8_t *p, size_t n, int bit_width, uint32_t count, uint8_t *out);
/* Appends `count` values (each < 2^bit_width) as the hybrid encoding, without a length. */
int pq_rle_encode(vdb_buf *b, const uint32_t *v, size_t count, int bit_width);
/* DELTA_BINARY_PACKED: `count` values into out (int64); *used bytes consumed. -1 on damage
 * or when the block header says more or fewer values. */
int pq_delta_decode(const uint8_t *p, size_t n, uint32_t count, int64_t *out, size_t *used);
/* A byte-array value: n bytes at p. */
typedef struct pq_slice {
	const uint8_t *p;
	size_t n;
} pq_slice;
/* DELTA_LENGTH_BYTE_ARRAY: n lengths (delta-encoded), then the bytes back to back; out
 * points into p; *used bytes consumed. DELTA_BYTE_ARRAY: prefix lengths, then the suffixes
 * as DELTA_LENGTH_BYTE_ARRAY, each value that much of the previous one and its suffix,
 * rebuilt in `built` (out points into it). 0, or -1 on damage or out of memory. */
int pq_delta_lengths(const uint8_t *p, size_t len, uint32_t n, pq_slice *out, size_t *used);
int pq_delta_strings(const uint8_t *p, size_t len, uint32_t n, vdb_buf *built, pq_slice *out);
/* Compresses src into out (appended) with codec (PQ_UNCOMPRESSED, PQ_SNAPPY, PQ_ZSTD):
 * 0 or -1 (out of memory, or a codec error). store: zstd frames holding the bytes as they
 * are (raw blocks), for bytes that zstd would shrink too little to be worth its time; any
 * zstd decoder reads them. *zctx: a compression context made on first use (start with
 * NULL; free with pq_compress_free). */
int pq_compress(int codec, int store, void **zctx, const void *src, size_t n, vdb_buf *out);
void pq_compress_free(void *zctx);
/* Decompresses src into exactly dn bytes of dst (UNCOMPRESSED, SNAPPY, GZIP, ZSTD, LZ4_RAW).
 * 0; -1 with why when the data is damaged or does not make dn bytes; -2 when the codec is
 * not supported. */
int pq_decompress(int codec, const void *src, size_t n, void *dst, size_t dn, char *why,
		  size_t whylen);
const char *pq_codec_name(int codec);
const char *pq_encoding_name(int encoding);
const char *pq_type_name(int type);

/* ---- the ARROW:schema footer entry (arrow_schema.c) ---- */

typedef enum arrow_type {
	ARROW_INT64, ARROW_UINT64, ARROW_DOUBLE, ARROW_BOOL, ARROW_UTF8,
	ARROW_FIXED_SIZE_LIST_FLOAT, /* list_size elements of non-nullable float */
} arrow_type;

typedef struct arrow_field {
	const char *name;
	arrow_type type;
	int nullable;
	int32_t list_size;
} arrow_field;

/* Appends the base64 text of an Arrow IPC schema message with these fields. */
int arrow_schema_base64(vdb_buf *out, const arrow_field *fields, size_t n);

/* ---- vdb-export's writer (parquet_write.c) ---- */

typedef struct vdb_parquet_writer vdb_parquet_writer;

/* Opens a writer of records of `dim`-long vectors to out (which it does not finish).
 * codec: PQ_ZSTD, PQ_SNAPPY or PQ_UNCOMPRESSED; row_group_rows 0: sized for 64 MiB of
 * buffered rows; payload_columns: typed columns for the top-level payload keys that have
 * one type throughout (collected with vdb_parquet_writer_scan). */
vdb_status vdb_parquet_writer_open(vdb_ostream *out, uint32_t dim, int codec,
				   uint64_t row_group_rows, int payload_columns,
				   vdb_parquet_writer **w, vdb_error *err);
/* The first pass: every record, before the first vdb_parquet_writer_put. */
vdb_status vdb_parquet_writer_scan(vdb_parquet_writer *w, const vdb_record *rec, vdb_error *err);
/* After the scan: notes for people (mixed ids written as strings, payload keys left out of
 * the typed columns), through fn. */
void vdb_parquet_writer_notes(vdb_parquet_writer *w, void (*fn)(void *ctx, const char *m),
			      void *ctx);
/* A record. Its vector must stay where it is until vdb_parquet_writer_finish (a collection
 * view's records do): the writer keeps a pointer to it, not a copy, until its row group is
 * written. */
vdb_status vdb_parquet_writer_put(vdb_parquet_writer *w, const vdb_record *rec, vdb_error *err);
/* Writes the last row group and the footer. */
vdb_status vdb_parquet_writer_finish(vdb_parquet_writer *w, vdb_error *err);
void vdb_parquet_writer_free(vdb_parquet_writer *w);

/* ---- vdb-ingest's reader (parquet_read.c) ---- */

typedef struct vdb_parquet_reader vdb_parquet_reader;

/* Opens the Parquet file on fd (a regular file, read with pread) whose size is `size`:
 * checks the footer, the schema and where every column chunk lies before any row is read.
 * Columns by name as o says (id_column, vector_column, payload_column of the CSV options).
 * Errors: VDB_EDATA (damaged or unsupported, naming the column and the feature),
 * VDB_EIO, VDB_ENOMEM. */
vdb_status vdb_parquet_reader_open(int fd, uint64_t size, uint32_t dim, const vdb_csv_options *o,
				   vdb_parquet_reader **out, vdb_error *err);
/* The next row (pointers valid until the next call); *has 0 at the end. VDB_EDATA errors
 * start with "row N: " (from 0). */
vdb_status vdb_parquet_reader_next(vdb_parquet_reader *r, vdb_record *rec, int *has,
				   vdb_error *err);
/* The row of the last record returned, from 0. */
uint64_t vdb_parquet_reader_row(const vdb_parquet_reader *r);
uint64_t vdb_parquet_reader_rows(const vdb_parquet_reader *r);
/* Whether the file has an id column (else each record's id is its row number in the file,
 * which a caller may replace). */
int vdb_parquet_reader_has_ids(const vdb_parquet_reader *r);
void vdb_parquet_reader_close(vdb_parquet_reader *r);

#endif
