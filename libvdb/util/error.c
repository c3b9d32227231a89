/* Error reporting for libvdb: messages are composed here so that every failure reads the
 * same way ("open seg-00000003.vdb: No such file or directory"). */
#include "error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

vdb_status vdb_err(vdb_error *err, vdb_status code, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err->message, sizeof err->message, fmt, ap);
		va_end(ap);
		err->code = code;
	}
	return code;
}

vdb_status vdb_err_sys(vdb_error *err, vdb_status code, const char *fmt, ...)
{
	int e = errno;
	if (code == VDB_OK)
		code = e == ENOENT ? VDB_ENOENT : e == ENOMEM ? VDB_ENOMEM : VDB_EIO;
	/* A failing or full disk is an I/O error (exit 74) whatever the call: even when
	 * creating, where the caller expects only "exists" or "not permitted". */
	if (code == VDB_EEXIST && (e == EIO || e == ENOSPC || e == EDQUOT))
		code = VDB_EIO;
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(err->message, sizeof err->message, fmt, ap);
		va_end(ap);
		if (n >= 0 && (size_t)n < sizeof err->message)
			snprintf(err->message + n, sizeof err->message - (size_t)n, ": %s", strerror(e));
		err->code = code;
	}
	errno = e;
	return code;
}

void vdb_err_prefix(vdb_error *err, const char *fmt, ...)
{
	if (!err)
		return;
	char prefix[256], old[sizeof err->message];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof prefix, fmt, ap);
	va_end(ap);
	memcpy(old, err->message, sizeof old);
	/* Truncation is acceptable: the prefix and the start of the old message matter most. */
	int n = snprintf(err->message, sizeof err->message, "%.255s: ", prefix);
	if (n > 0 && (size_t)n < sizeof err->message)
		snprintf(err->message + n, sizeof err->message - (size_t)n, "%.*s",
			 (int)(sizeof err->message - (size_t)n - 1), old);
}

vdb_status vdb_err_nomem(vdb_error *err)
{
	return vdb_err(err, VDB_ENOMEM, "out of memory");
}

const char *vdb_status_string(vdb_status s)
{
	switch (s) {
	case VDB_OK: return "success";
	case VDB_EINVAL: return "invalid argument";
	case VDB_EDATA: return "invalid input data";
	case VDB_ECORRUPT: return "corrupt database file";
	case VDB_ENOENT: return "not found";
	case VDB_EEXIST: return "already exists";
	case VDB_EIO: return "I/O error";
	case VDB_ELOCKED: return "locked by another writer";
	case VDB_ENOMEM: return "out of memory";
	case VDB_EINTR: return "interrupted";
	case VDB_EINTERNAL: return "internal error";
	}
	return "unknown status";
}

vdb_status vdb_options_take(void *local, size_t cap, const void *given, const char *what,
			    vdb_error *err)
{
	size_t n;
	memcpy(&n, given, sizeof n);
	if (n < sizeof n || n > cap)
		return vdb_err(err, VDB_EINVAL, "%s: size %zu is not one this libvdb knows (%zu): "
			       "initialize it with its _init function, and build against the "
			       "library's own vdb.h", what, n, cap);
	memcpy(local, given, n);
	memcpy(local, &cap, sizeof cap); /* the defaults fill the rest */
	return VDB_OK;
}
