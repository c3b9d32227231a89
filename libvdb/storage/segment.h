/* Sealed segments (immutable, memory-mapped) and their deletion marks. */
#ifndef VDB_STORAGE_SEGMENT_H
#define VDB_STORAGE_SEGMENT_H

#include <stddef.h>
#include <stdint.h>

#include "../index/codes.h"
#include "../index/hnsw.h"
#include "../index/pindex.h"
#include "memtable.h"
#include "vdb.h"

typedef struct vdb_section {
	uint32_t kind;
	uint64_t off, len;
	uint32_t crc;
} vdb_section;

typedef struct vdb_segment {
	uint64_t number;
	uint64_t rows;
	uint32_t dim;
	char file[64];
	const unsigned char *map;
	size_t size;
	uint32_t header_crc;
	int verified; /* a cursor of this view checked every section's CRC already */
	vdb_section sec[16];
	uint32_t nsec;
	const float *vectors;
	const unsigned char *ids;
	const char *id_strings;
	uint64_t id_strings_len;
	const unsigned char *id_index;
	const unsigned char *payload_offsets;
	const char *payloads;
	uint64_t payloads_len;
	const float *norms; /* cosine collections: |x| per row; else NULL */
	int has_graph;
	vdb_hnsw_graph graph;
	int has_codes; /* quantized: graph searches walk the codes */
	vdb_codes codes;
	vdb_pindex pidx[VDB_INDEX_FIELDS_MAX]; /* payload indexes, in section order */
	uint32_t npidx;
	/* Rows not to return: deletion marks from the manifest's deletion file, plus rows whose
	 * id has a newer operation in the log tail. NULL when there are none. */
	uint64_t *dead;
	uint64_t ndead;
	uint64_t ndeleted; /* marks from the deletion file alone */
	char del_file[64];
} vdb_segment;

/* Rows of the segment that queries can return. */
static inline uint64_t vdb_segment_live_rows(const vdb_segment *g)
{
	return g->rows - g->ndead;
}

void vdb_segment_name(char *out, size_t cap, uint64_t number);
void vdb_del_name(char *out, size_t cap, uint64_t segment, uint64_t gen);

/* The rows a new segment is written from, in order; iterated once per section. */
typedef struct vdb_row_source {
	uint64_t rows;
	void *ctx;
	void (*rewind)(void *ctx);
	/* Fills the next row: 1, or 0 at the end, or -1 with err set. */
	int (*next)(void *ctx, vdb_record *rec, uint64_t *id_hash, vdb_error *err);
	/* Optional: told how far the graph build of a segment written from this source has
	 * got (rows inserted of rows), which is most of the time a segment takes. */
	void (*progress)(void *ctx, uint64_t done, uint64_t total);
	void *progress_ctx;
	uint32_t threads; /* for the graph build; 0: one per CPU */
	/* Non-zero: no graph, whatever the collection's index (a flat segment, searched
	 * exactly until a merge gives its rows a graph). */
	int no_graph;
	/* Optional: a graph over some of the rows to start the build from (see
	 * vdb_hnsw_build_params.reuse). */
	const vdb_hnsw_graph *reuse_graph;
	const uint32_t *reuse_map;
} vdb_row_source;

/* Row sources: the live upserts of a memtable in first-seen order; the live rows of a run
 * of segments in order. */
typedef struct vdb_mem_rows {
	const vdb_memtable *mt;
	size_t i;
} vdb_mem_rows;
void vdb_mem_rows_init(vdb_row_source *src, vdb_mem_rows *ctx, const vdb_memtable *mt);

/* n rows, row i at vectors + i * stride, with the integer ids first..first+n-1 and no
 * payloads. */
typedef struct vdb_block_rows {
	const float *vectors;
	size_t stride;
	uint64_t first, n, i;
} vdb_block_rows;
void vdb_block_rows_init(vdb_row_source *src, vdb_block_rows *ctx, const float *vectors,
			 size_t stride, uint64_t first, uint64_t n);

typedef struct vdb_seg_rows {
	const vdb_segment *segs;
	size_t nseg, g;
	uint64_t row;
	uint32_t dim;
	uint32_t *reuse_map; /* owned: see vdb_seg_rows_reuse_graph */
} vdb_seg_rows;
void vdb_seg_rows_init(vdb_row_source *src, vdb_seg_rows *ctx, const vdb_segment *segs,
		       size_t nseg, uint32_t dim);
/* Lets the graph of the run's largest segment seed the merged segment's graph, so that a
 * merge inserts the other rows instead of building from nothing. Chosen: the segment with
 * the most live rows that has a graph and at most a quarter of its rows deleted (links to
 * deleted rows are dropped, and many dropped links would cost recall). Returns -1 when out
 * of memory (src unchanged). Free with vdb_seg_rows_free. */
int vdb_seg_rows_reuse_graph(vdb_row_source *src, vdb_seg_rows *ctx);
void vdb_seg_rows_free(vdb_seg_rows *ctx);

/* Writes src as dir/seg-<number>.vdb (temp name, fsync, rename; the caller fsyncs dir),
 * with norms for cosine, the collection's payload indexes, its codes when it is quantized
 * and, for an HNSW collection of at least VDB_HNSW_MIN_ROWS rows, the graph (built with
 * every core). src->rows must be > 0. */
vdb_status vdb_segment_write(const char *dir, uint64_t number, const vdb_collection_config *cfg,
			     const vdb_row_source *src, uint64_t *size, uint32_t *header_crc,
			     vdb_error *err);

/* Maps and validates a segment against what the manifest says about it. Reads are bounds
 * checked against the mapping; section checksums are verified by vdb_segment_verify.
 * flags: 0, or VDB_SEG_OPEN_PRIMARY to require and map only the primary sections (vectors,
 * ids, payloads): enough to read every row and to rebuild the derived ones (id index,
 * norms, payload indexes, graph), which are then left unset. */
#define VDB_SEG_OPEN_PRIMARY 1u
vdb_status vdb_segment_open(const char *dir, uint64_t number, uint32_t dim, uint64_t rows,
			    uint64_t size, uint32_t header_crc, unsigned flags, vdb_segment *s,
			    vdb_error *err);
/* The section table of a segment header h (its first hlen bytes): 0, or -1 when h is not
 * a segment header or its table does not fit. Neither the header's checksum nor the
 * sections' bounds are checked (vdb_segment_open does that). */
int vdb_segment_table(const unsigned char *h, size_t hlen, vdb_section *sec, uint32_t *nsec);
/* Bytes of the sections a search reads at random or in full, which must stay in memory for
 * it to run at memory speed: with a graph, the graph and the codes (quantized) or the
 * vectors and norms; without, the vectors and norms (scanned). The vectors of a quantized
 * segment are read only to rescore a few candidates a query. */
uint64_t vdb_segment_search_bytes(const vdb_segment *s);
/* 1 for the sections vdb_segment_write computes from the others (rebuildable). */
int vdb_section_is_derived(uint32_t kind);
void vdb_segment_close(vdb_segment *s);
/* Drops the pages of the mapping from this process (they stay in the page cache): called by
 * sequential readers (export, merges) so their memory does not grow with what they read. */
void vdb_segment_release(const vdb_segment *s);
#define VDB_RELEASE_EVERY 8192 /* rows between releases in sequential reads */
vdb_status vdb_segment_verify(const vdb_segment *s, vdb_error *err);
/* vdb_segment_verify, and *file_crc the CRC32C of the whole file, in one pass over it
 * when its sections lie in order (as vdb writes them); the pages read are dropped from
 * this process as it goes (see vdb_segment_release). */
vdb_status vdb_segment_verify_file(const vdb_segment *s, uint32_t *file_crc, vdb_error *err);

static inline int vdb_segment_is_dead(const vdb_segment *s, uint64_t row)
{
	return s->dead && (s->dead[row >> 6] >> (row & 63) & 1);
}
int vdb_segment_mark_dead(vdb_segment *s, uint64_t row); /* -1: out of memory */

vdb_status vdb_segment_id(const vdb_segment *s, uint64_t row, vdb_id *out, vdb_error *err);
vdb_status vdb_segment_payload(const vdb_segment *s, uint64_t row, const char **p, size_t *len,
			       vdb_error *err);
/* The row holding id (dead or not), or -1. A damaged index is VDB_ECORRUPT. */
vdb_status vdb_segment_find(const vdb_segment *s, const vdb_id *id, uint64_t hash, int64_t *row,
			    vdb_error *err);
/* The same for lookups made in ascending hash order: *from is 0 before the first and is
 * advanced by each (it never passes an entry a later, larger hash could need). */
vdb_status vdb_segment_find_from(const vdb_segment *s, const vdb_id *id, uint64_t hash,
				 uint64_t *from, int64_t *row, vdb_error *err);

/* Deletion files: the complete bitmap of a segment's deleted rows, replaced (never edited)
 * when more rows are deleted. */
vdb_status vdb_del_write(const char *dir, const char *name, uint64_t segment, uint64_t rows,
			 const uint64_t *bitmap, uint64_t count, vdb_error *err);
vdb_status vdb_del_read(const char *dir, const char *name, uint64_t segment, uint64_t rows,
			uint64_t **bitmap, uint64_t *count, vdb_error *err);

#endif
