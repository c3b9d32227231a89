/* Write-ahead log: one frame per committed batch, fsynced before the batch is acknowledged.
 * See wal.c for the layout and the rule that tells a torn tail from corruption. */
#ifndef VDB_STORAGE_WAL_H
#define VDB_STORAGE_WAL_H

#include <stdint.h>

#include "../util/buf.h"
#include "memtable.h"
#include "vdb.h"

/* Creates dir/wal-<number>.log holding only the file header (atomically, dir fsynced). */
vdb_status vdb_wal_create(const char *dir, uint64_t number, uint32_t dim, vdb_error *err);
void vdb_wal_name(char *out, size_t cap, uint64_t number);

typedef struct vdb_wal_replay {
	uint64_t end;      /* offset just past the last valid frame */
	uint64_t next_seq; /* sequence number the next frame must carry */
	uint64_t frames;
	uint64_t size;     /* the file's length when the replay began (all it read) */
	int torn;          /* bytes after `end` were discarded as an incomplete last write */
	int changed;       /* with VDB_ECORRUPT: the file changed while it was read (a writer
			    * cutting a torn frame off), so a reader should load again */
} vdb_wal_replay;

/* Reads every complete frame of an open WAL file into mt, checking the file header (dim,
 * number) and that frames carry first_seq, first_seq + 1, ... A damaged frame followed by
 * nothing valid is a torn tail (reported in r->torn); one followed by a valid frame is
 * corruption (VDB_ECORRUPT naming path and offset). Only the first st_size bytes that
 * fstat gave at the start are read, so a frame a live writer is appending is a torn tail. */
vdb_status vdb_wal_replay_fd(int fd, const char *path, uint32_t dim, uint64_t number,
			     uint64_t first_seq, vdb_memtable *mt, vdb_wal_replay *r,
			     vdb_error *err);

/* A pending batch: frame header space followed by encoded operations. */
void vdb_wal_batch_reset(vdb_buf *b);
int vdb_wal_encode_upsert(vdb_buf *b, uint32_t dim, const vdb_id *id, const float *vec,
			  const char *payload, size_t payload_len);
int vdb_wal_encode_delete(vdb_buf *b, const vdb_id *id);

/* Seals the frame header of batch b (sequence seq), writes it at offset off and fsyncs.
 * On VDB_OK the batch is durable. */
vdb_status vdb_wal_append(int fd, const char *path, uint64_t off, uint64_t seq, vdb_buf *b,
			  vdb_error *err);

/* One operation of an encoded body: an upsert (its vector's dim floats, unaligned, and
 * payload point into the body) or a delete. */
typedef struct vdb_wal_op {
	int op; /* VDB_OP_UPSERT or VDB_OP_DELETE */
	vdb_id id;
	const char *vector;
	const char *payload; /* NULL: none */
	size_t payload_len;
} vdb_wal_op;

/* Decodes the operation at *pos of body and moves *pos past it: 1 when one was decoded, 0
 * at the end of the body, -1 when it is malformed. */
int vdb_wal_next_op(const char *body, size_t len, uint32_t dim, size_t *pos, vdb_wal_op *op);

/* Applies an encoded body to mt (used by replay and by the writer after a commit). */
vdb_status vdb_wal_apply(const char *body, size_t len, uint32_t dim, vdb_memtable *mt,
			 const char *path, uint64_t off, vdb_error *err);

#endif
