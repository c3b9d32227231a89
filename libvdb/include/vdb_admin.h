/*
 * vdb_admin.h — administering a database: online snapshots (full or incremental, and cron
 * rotation), verified atomic restore, and the checks and repair of vdb-check. The
 * conventions of vdb.h hold here too.
 */
#ifndef VDB_ADMIN_H
#define VDB_ADMIN_H

#include "vdb_io.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Snapshots, restore and checks --------------------------------------------------- */

/* A snapshot is one file: a tar stream compressed with zstd (`tar --zstd -tf` lists it)
 * whose first entry, vdb-snapshot.json, lists every other entry with its size and CRC32C,
 * plus the vdb and format versions, the time, each collection's configuration and record
 * count. docs/format.md describes it. Taking one never blocks writers: each collection is
 * captured as one MANIFEST version plus the log prefix committed at that moment. */

typedef struct vdb_snapshot_options {
	size_t size; /* sizeof the struct, set by vdb_snapshot_options_init: lets later versions add fields */
	const char *const *collections; /* names to include; NULL (or 0 of them): all */
	size_t ncollections;
	int level;   /* zstd level 1..19 (default 3) */
	int threads; /* zstd worker threads; 0 (default) compresses in the calling thread */
	/* Incremental: the path of an earlier snapshot in the directory the new one is written
	 * to (restore looks a chain up in one directory). Segments that it (or a snapshot it
	 * depends on) already holds are referenced by name instead of being stored, and so is
	 * the part of a log it holds (a log delta). It is checked whole first (every entry it
	 * stores, its end, the snapshots it depends on): a damaged base is VDB_ECORRUPT, a
	 * missing one VDB_ENOENT. NULL: a full snapshot. */
	const char *since;
	vdb_cancel cancel; /* optional: stops with VDB_EINTR */
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

/* A directory of snapshots with rotation (what a cron job runs): each named
 * vdb-YYYYMMDDTHHMMSSZ.tar.zst (UTC). */
/* Which snapshots of a directory to keep (restic's policy): the newest `last`; the newest
 * of each of the newest `hourly` hours (UTC) that have snapshots; the same for `daily`,
 * `weekly` (ISO weeks) and `monthly`. The policies add up; every snapshot a kept one
 * depends on is kept too. All 0: nothing is removed. */
typedef struct vdb_retention {
	uint64_t last, hourly, daily, weekly, monthly;
} vdb_retention;

/* One snapshot of a directory, as vdb_snapshot_dir_list reads it (its manifest only). */
typedef struct vdb_snapshot_file {
	char file[256];  /* its name in the directory */
	char id[33];     /* its snapshot id ("" when unreadable) */
	char time[32];   /* when it was taken, UTC, ISO 8601 ("" when unknown) */
	int64_t seconds; /* the same since the epoch (0 when unknown) */
	int readable;    /* its manifest could be read */
	int full;        /* no dependencies */
	char base[256];  /* an incremental's --since file */
	char (*deps)[256]; /* every file it takes something from */
	char (*dep_ids)[33]; /* and the snapshot id each must have */
	size_t ndeps;
	uint64_t collections, records, bytes; /* bytes: the file's size */
	/* "ok"; "unreadable: WHY"; "base missing: FILE" (a dependency is not in the
	 * directory, or another snapshot has its name) */
	char status[600];
	/* vdb_snapshot_prune: kept (and why: "last", "hourly", ..., "base of FILE"), or
	 * removed (or would be, with dry_run). */
	int keep;
	char why[300];
	int removed; /* vdb_snapshot_prune removed it */
} vdb_snapshot_file;

typedef struct vdb_snapshot_dir {
	vdb_snapshot_file *files; /* oldest first */
	size_t n;
} vdb_snapshot_dir;

/* The snapshots (files named *.tar.zst) of dir, oldest first, each described from its
 * manifest: cheap (no archive is read past its manifest), so a damaged archive whose
 * manifest is whole shows as "ok" here (vdb_restore with verify_only finds it). */
VDB_API vdb_status vdb_snapshot_dir_list(const char *dir, vdb_snapshot_dir *out, vdb_error *err);
VDB_API void vdb_snapshot_dir_free(vdb_snapshot_dir *d);

/* Appends d to out: one line per snapshot, oldest first. Text: TIME FILE KIND BASE
 * COLLECTIONS RECORDS BYTES STATUS ("-" for no base), and with `judged` (after
 * vdb_snapshot_prune) "keep (WHY)" or "remove" (dry_run: "would remove") first. JSON:
 * one object per line with file, time, kind, base, collections, records, bytes, status,
 * and with `judged` "action" and "why". */
VDB_API vdb_status vdb_snapshot_dir_format(const vdb_snapshot_dir *d, int json, int judged,
					   int dry_run, vdb_text *out, vdb_error *err);

/* Applies policy r to dir: lists it (into *out when not NULL, with each file's keep and
 * why), then removes what it does not keep, newest first, so that an interrupted prune
 * never leaves an incremental whose base is gone (the removals are fsynced as a
 * directory). With dry_run nothing is removed. While a kept snapshot is unreadable its
 * dependencies are unknown and nothing is removed. *removed counts the removals. */
VDB_API vdb_status vdb_snapshot_prune(const char *dir, const vdb_retention *r, int dry_run,
				      vdb_snapshot_dir *out, uint64_t *removed, vdb_error *err);

typedef struct vdb_snapshot_rotation {
	size_t size; /* sizeof the struct, set by vdb_snapshot_rotation_init: lets later versions add fields */
	/* Keep the newest `keep` snapshots and every snapshot one of them depends on; remove
	 * the others. 0: remove nothing (unless `retention` says more). */
	uint64_t keep;
	/* Every full_every-th snapshot is full; the others are incremental on the latest full
	 * one (so each depends on that one only). 1: always full. Default 7. */
	uint64_t full_every;
	uint64_t pruned; /* out: snapshots removed */
	int incremental; /* out: the one written is incremental */
	/* out: why an incremental was due but a full snapshot was written instead (its base
	 * is damaged or a snapshot it depends on is missing: vdb_snapshot_into checks the base
	 * whole before using it); "" when nothing was wrong. */
	char base_problem[512];
	/* The rest of the policy applied after each run (keep, when set, is its `last`). */
	vdb_retention retention;
	/* out (optional): the directory as the prune after the run judged it (each file's
	 * keep and why; free with vdb_snapshot_dir_free) */
	vdb_snapshot_dir *result;
} vdb_snapshot_rotation;

VDB_API void vdb_snapshot_rotation_init(vdb_snapshot_rotation *r);

/* Writes the next snapshot of db into dir (created if missing) as r says, then prunes.
 * `written` (cap bytes) receives the new file's path. Snapshots that cannot be read are
 * never used as a base, and never removed while a kept snapshot names them. */
VDB_API vdb_status vdb_snapshot_into(const char *db, const vdb_snapshot_options *o,
				     const char *dir, vdb_snapshot_rotation *r, char *written,
				     size_t cap, vdb_snapshot_stats *stats, vdb_error *err);

typedef struct vdb_restore_options {
	size_t size; /* sizeof the struct, set by vdb_restore_options_init: lets later versions add fields */
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
	vdb_cancel cancel; /* optional: stops with VDB_EINTR */
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

/* Verifies every snapshot of dir as vdb_restore with verify_only does (o: its other
 * options; chain_dir is dir), oldest first: *out lists them with each status "ok", or what
 * is wrong ("damaged: WHY", "base missing: WHY"). VDB_ECORRUPT when any is not ok (err
 * names the first), VDB_EINTR when cancelled. */
VDB_API vdb_status vdb_snapshot_dir_verify(const char *dir, const vdb_restore_options *o,
					   vdb_snapshot_dir *out, vdb_error *err);

/* Appends a readable listing of the archive's manifest to out: one "key: value" line per
 * property, one line per collection, then one line per entry ("SIZE CRC32C NAME", and
 * "(in FILE)" for entries an incremental references). Reads only the manifest entry. */
VDB_API vdb_status vdb_snapshot_list(int fd, const char *name, vdb_text *out, vdb_error *err);
/* The same as one JSON object and a newline: "snapshot", "created", "vdb", "format",
 * "kind" ("full" or "incremental"), "base" (null for a full one), "collections" (each
 * "name", "records", "segments" and its "config" object) and "entries" (each "name",
 * "size", "crc32c" as 8 hex digits, and "in": the archive that holds it, null for this one). */
VDB_API vdb_status vdb_snapshot_list_json(int fd, const char *name, vdb_text *out,
					  vdb_error *err);

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

#endif /* VDB_ADMIN_H */
