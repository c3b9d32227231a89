/* A loaded version of a collection: its config, one MANIFEST version, the segments it names
 * (mapped) with their deletion marks, and the log tail replayed into a memtable. Readers
 * and the writer share this; only the writer changes what is on disk. */
#ifndef VDB_STORAGE_STATE_H
#define VDB_STORAGE_STATE_H

#include "manifest.h"
#include "memtable.h"
#include "segment.h"
#include "vdb.h"
#include "wal.h"

/* What stat says of a file that writers replace or append to. */
typedef struct vdb_file_stamp {
	uint64_t dev, ino, size;
	int64_t mtime_ns;
} vdb_file_stamp;

typedef struct vdb_state {
	char dir[4096];  /* the collection's directory */
	char name[VDB_NAME_MAX + 1];
	vdb_collection_config cfg;
	vdb_manifest man;
	vdb_segment *segs; /* man.nseg entries, oldest first */
	vdb_memtable mt;
	vdb_wal_replay wal; /* where the log's valid records end */
	uint64_t live;      /* live records in this version */
	vdb_file_stamp manifest_stamp; /* the MANIFEST as it was before it was read */
} vdb_state;

/* Whether a writer has committed since s was loaded: the MANIFEST was replaced (every change
 * of segments or log does that) or the log's length changed (every commit appends to it).
 * Two stat calls; an error (a missing file) counts as a change. */
int vdb_state_stale(const vdb_state *s);

/* Loads collection `name` of database `db`. Readers (wal_fd == NULL) retry a bounded number
 * of times when a file named by the manifest disappears under them (a concurrent seal or
 * compaction replaced it). The writer passes wal_fd to get the active log open read-write. */
vdb_status vdb_state_load(const char *db, const char *name, vdb_state *s, int *wal_fd,
			  vdb_error *err);
/* flags: VDB_SEG_OPEN_PRIMARY opens the segments with only their primary sections (for
 * checks and repairs of the derived ones); such a reader version does not hide the rows the
 * log tail supersedes (that needs the id indexes), so it is not for answering queries. */
vdb_status vdb_state_load_flags(const char *db, const char *name, vdb_state *s, int *wal_fd,
				unsigned flags, vdb_error *err);
void vdb_state_free(vdb_state *s);

/* Rewrites the *n segments numbered `numbers` of a collection from their primary sections
 * (every row, deletion marks kept), rebuilding their id indexes, norms, payload indexes and
 * graphs, under the writer lock (waiting for it), installed by one MANIFEST switch
 * (writer.c). Records are never dropped. numbers and *n are reduced to the segments that
 * were still in the collection and were rewritten. */
vdb_status vdb_rebuild_segments(const char *db, const char *name, uint64_t *numbers, size_t *n,
				vdb_error *err);

/* The id behind (src, row) of a search hit or candidate: src < man.nseg is a segment, else
 * the log tail (row: its memtable entry). */
vdb_status vdb_state_row_id(const vdb_state *s, uint32_t src, uint64_t row, vdb_id *out,
			    vdb_error *err);

#endif
