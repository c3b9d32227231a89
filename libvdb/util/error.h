/* Filling a caller's vdb_error: a status code plus a message that names what failed. */
#ifndef VDB_UTIL_ERROR_H
#define VDB_UTIL_ERROR_H

#include "vdb.h"

/* Sets err (when not NULL) and returns code, so callers can `return vdb_err(...)`. */
vdb_status vdb_err(vdb_error *err, vdb_status code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Like vdb_err, appending ": strerror(errno)". Maps ENOSPC/EIO/... to VDB_EIO, ENOENT to
 * VDB_ENOENT, ENOMEM to VDB_ENOMEM unless `code` is given explicitly (not VDB_OK). */
/* Takes a caller's options struct `given` (first member: its size, set by its _init
 * function) over the defaults already in `local` (cap bytes, same type): fields the
 * caller's version does not have keep their defaults. VDB_EINVAL, naming `what`, when the
 * struct was not initialized or is larger than this library's (a newer vdb.h). */
vdb_status vdb_options_take(void *local, size_t cap, const void *given, const char *what,
			    vdb_error *err);

/* Whether the caller asks to stop (c may be NULL: never). */
static inline int vdb_cancelled(const vdb_cancel *c)
{
	return c && c->cancelled && c->cancelled(c->ctx);
}

vdb_status vdb_err_sys(vdb_error *err, vdb_status code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prefixes an existing message: "seg-3.vdb: <old message>". */
void vdb_err_prefix(vdb_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

vdb_status vdb_err_nomem(vdb_error *err);

#endif
