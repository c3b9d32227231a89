/* File primitives with the durability steps spelled out: every write loop retries EINTR and
 * short writes; fsync failures are returned, never retried (after a failed fsync the page
 * cache may already have dropped the dirty pages, so a retry that succeeds proves nothing). */
#ifndef VDB_UTIL_IO_H
#define VDB_UTIL_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "vdb.h"

/* write(2) until done; 0 or -1 with errno. */
int vdb_write_all(int fd, const void *p, size_t n);
/* pread(2) exactly n bytes at off; returns bytes read (< n only at end of file) or -1. */
ssize_t vdb_pread_full(int fd, void *p, size_t n, off_t off);

/* Starts the writeback of what was written to fd between *started and `written` once that
 * is at least VDB_WRITEBACK_STEP bytes (sync_file_range; a hint, errors ignored: the final
 * fsync reports them). Long sequential writes then reach the disk while the writer keeps
 * producing, and the fsync that makes them durable finds little left to do. */
#define VDB_WRITEBACK_STEP (32u << 20)
void vdb_start_writeback(int fd, uint64_t *started, uint64_t written);

/* Asks the kernel to start reading the pages of n ranges of file mappings that are not in
 * memory (MADV_WILLNEED, all n in one process_madvise call, so the reads proceed in
 * parallel): a hint, errors ignored; does nothing where process_madvise is missing. */
#define VDB_WILLNEED_MAX 64
void vdb_map_willneed(const void *const *addr, const size_t *len, size_t n);

/* fsync the directory `dir` so that a create/rename/unlink in it is durable. */
vdb_status vdb_fsync_dir(const char *dir, vdb_error *err);

/* ---- replacing a file atomically ----
 * Every file vdb writes whole is written the same way: a temporary sibling PATH.tmp-PID,
 * fsynced, renamed over PATH, and PATH's directory fsynced -- so a reader sees the old
 * file or the new one, never a mix, and a crash leaves at most the temporary behind. */
typedef struct vdb_tmpfile {
	int fd;          /* open for reading and writing on tmp; -1 once closed */
	char path[4096]; /* the name it becomes */
	char tmp[4096];  /* PATH.tmp-PID */
	int create_errno; /* why vdb_tmpfile_create failed, for callers that say it their way */
} vdb_tmpfile;

/* For files a user names (outputs): first remove what a killed earlier run left as this
 * PATH's temporary, and hold the temporary's flock while writing (see leftovers below). */
#define VDB_TMP_OUTPUT 1u
/* Creates t->tmp for path. Errors: VDB_EIO (naming the temporary; t->create_errno says
 * why), VDB_EINVAL (a path too long). */
vdb_status vdb_tmpfile_create(vdb_tmpfile *t, const char *path, unsigned flags, vdb_error *err);

/* No fsyncs at all (vdb-export --no-sync: as cp). */
#define VDB_TMP_NO_SYNC 1u
/* No fsync of the directory: the caller syncs it once for several files (a seal). */
#define VDB_TMP_NO_DIR_SYNC 2u
/* fsyncs, closes and renames the temporary over PATH, then fsyncs the directory (flags
 * above). Never retries a failed fsync. On failure the temporary is removed. */
vdb_status vdb_tmpfile_commit(vdb_tmpfile *t, unsigned flags, vdb_error *err);
/* Closes and removes a temporary that was not committed; nothing after a commit. */
void vdb_tmpfile_discard(vdb_tmpfile *t);

/* Writes data to dir/name atomically (a vdb_tmpfile: readers see the old or the new file,
 * never a mix). */
vdb_status vdb_atomic_write(const char *dir, const char *name, const void *data, size_t len,
			    vdb_error *err);

/* Reads a whole file of at most max bytes into a malloc'd buffer (NUL-terminated). */
vdb_status vdb_read_file(const char *path, size_t max, char **out, size_t *len, vdb_error *err);

/* ---- output paths ----
 * Where a command writes a file the user named (-o, --ids-out, --payloads-out), as cp, zstd
 * and tar do: a device, FIFO or a descriptor of this process (/dev/stdout, /dev/fd/N,
 * /proc/self/fd/N) is written in place -- replacing it with a regular file would destroy
 * /dev/null or leave a reader of the FIFO with nothing; a regular file or a new name is
 * replaced atomically by the caller (temporary sibling, fsync, rename); a symbolic link is
 * followed to its final target, which is what gets replaced, in the target's directory (the
 * link stays a link). A directory or a socket is refused (VDB_EEXIST). On success exactly
 * one of *in_place_fd (>= 0, the caller closes it) and *replace (malloc'd path) is set. */
vdb_status vdb_output_resolve(const char *path, int *in_place_fd, char **replace,
			      vdb_error *err);

/* "Checked text" files (VDB marker, CONFIG, MANIFEST): a header line
 *     vdb-<kind> <format-version> <body-bytes> <crc32c-hex>\n
 * followed by a JSON body. The header lets `cat` show a readable file while every byte
 * stays covered by a checksum. */
#define VDB_CHECKED_MAX (64u << 20)
vdb_status vdb_checked_encode(const char *kind, unsigned version, const char *body,
			      char **out, size_t *out_len, vdb_error *err);
/* Verifies the header and checksum of a file's content; on success *body points into
 * `data`. Names `path` in errors; a newer format version is refused naming both. */
vdb_status vdb_checked_decode(const char *path, const char *kind, unsigned max_version,
			      const char *data, size_t len, const char **body, vdb_error *err);

/* Reads the checked text file dir/name (at most max bytes) and verifies it (kind, format at
 * most max_version, checksum): *data is the whole file (free() it) and *body its body;
 * path (4096 bytes) receives the file's path, for messages. Errors: those of
 * vdb_read_file (VDB_ENOENT when it is missing) and vdb_checked_decode. */
vdb_status vdb_checked_read(const char *dir, const char *name, const char *kind,
			    unsigned max_version, size_t max, char *path, char **data,
			    const char **body, vdb_error *err);

/* The directory part of path into dir ("." when there is none, "/" for the root), ignoring
 * trailing slashes; *base (when not NULL) points at the last component inside path. */
void vdb_path_split(const char *path, char *dir, size_t cap, const char **base);

/* 1 when dir exists and holds no entries but those `ignore` accepts (may be NULL). */
int vdb_dir_is_empty(const char *dir, int (*ignore)(const char *name));

/* Path join into a fixed buffer; returns -1 if it would not fit. */
int vdb_path(char *out, size_t cap, const char *a, const char *b);

/* Removes a directory and everything below it, best effort. Never follows a symbolic link:
 * links are unlinked like files. */
void vdb_remove_tree(const char *dir);

/* ---- leftovers of killed commands ----
 * A command that writes FILE whole writes a temporary name beside it first (FILE.tmp-PID; a
 * restore, the directory .TARGET.restore-PID-XXXXXX) and renames it into place at the end;
 * killed before, it leaves the temporary behind, possibly gigabytes of it. So the writer
 * holds an flock on its temporary while it works (vdb_hold_tmp), and the next command that
 * writes beside it removes what a dead process left: an entry counts as left over only when
 * the PID its name carries is not running and its flock is free. Neither test alone would
 * do -- a PID is reused by other programs, and a lock is taken a moment after its file is
 * created -- so both must agree, and an entry of a live command is never touched. */

/* Takes the flock of the temporary file or directory open as fd (held until it is closed);
 * -1 with errno on failure. */
int vdb_hold_tmp(int fd);
/* Opens the temporary directory dir and takes its flock: the descriptor that holds it (close
 * it when done), or -1 with errno. */
int vdb_hold_tmp_dir(const char *dir);

/* Says whether name is a leftover to remove: sets *pid to the PID its name carries. */
typedef int (*vdb_leftover_match)(const char *name, void *ctx, long *pid);

/* Removes the entries of dir that match and are left over (see above); returns how many. */
size_t vdb_remove_leftovers(const char *dir, vdb_leftover_match match, void *ctx);

/* Parses the decimal PID at s, which must end at the end of s or at `stop`; -1 when there
 * is none. *end (when not NULL) is set just past it. */
long vdb_parse_pid(const char *s, char stop, const char **end);

/* A matcher for base.tmp-PID (ctx: the const char *base): the temporary of a snapshot file
 * or an export output named base. */
int vdb_match_tmp_of(const char *name, void *ctx, long *pid);

#endif
