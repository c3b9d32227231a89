/* zstd streams. The writer produces one frame with a content checksum (so `zstd -t` and
 * every reader detect corruption) and optional worker threads. The reader treats its input
 * as hostile: the frame window is capped (ZSTD_d_windowLogMax) so a crafted header cannot
 * make it allocate gigabytes, and the caller sets an output budget from the archive's own
 * manifest, so a small archive cannot expand into an unbounded stream. */
#include "zio.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "../util/error.h"
#include "../util/io.h"

struct vdb_zwriter {
	ZSTD_CCtx *cctx;
	int fd;
	const char *what;
	void *out;
	size_t out_cap;
	uint64_t bytes_out;
	uint64_t synced; /* bytes whose writeback was started */
};

vdb_status vdb_zwriter_open(int fd, const char *what, int level, int threads,
			    vdb_zwriter **out, vdb_error *err)
{
	vdb_zwriter *w = calloc(1, sizeof *w);
	if (!w)
		return vdb_err_nomem(err);
	w->fd = fd;
	w->what = what;
	w->cctx = ZSTD_createCCtx();
	w->out_cap = ZSTD_CStreamOutSize();
	w->out = malloc(w->out_cap);
	if (!w->cctx || !w->out) {
		vdb_zwriter_free(w);
		return vdb_err_nomem(err);
	}
	if (ZSTD_isError(ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_compressionLevel, level)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_checksumFlag, 1))) {
		vdb_zwriter_free(w);
		return vdb_err(err, VDB_EINVAL, "invalid zstd level %d", level);
	}
	if (threads > 0 &&
	    ZSTD_isError(ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_nbWorkers, threads))) {
		vdb_zwriter_free(w);
		return vdb_err(err, VDB_EINVAL, "this libzstd cannot compress with %d threads",
			       threads);
	}
	*out = w;
	return VDB_OK;
}

static vdb_status compress(vdb_zwriter *w, const void *p, size_t n, ZSTD_EndDirective mode,
			   vdb_error *err)
{
	ZSTD_inBuffer in = {p, n, 0};
	for (;;) {
		ZSTD_outBuffer o = {w->out, w->out_cap, 0};
		size_t left = ZSTD_compressStream2(w->cctx, &o, &in, mode);
		if (ZSTD_isError(left))
			return vdb_err(err, VDB_EINTERNAL, "zstd: %s", ZSTD_getErrorName(left));
		if (o.pos && vdb_write_all(w->fd, w->out, o.pos) < 0)
			return vdb_err_sys(err, VDB_EIO, "write %s", w->what);
		w->bytes_out += o.pos;
		vdb_start_writeback(w->fd, &w->synced, w->bytes_out);
		if (mode == ZSTD_e_end ? left == 0 : in.pos == in.size)
			return VDB_OK;
	}
}

vdb_status vdb_zwriter_write(vdb_zwriter *w, const void *p, size_t n, vdb_error *err)
{
	return compress(w, p, n, ZSTD_e_continue, err);
}

vdb_status vdb_zwriter_finish(vdb_zwriter *w, vdb_error *err)
{
	return compress(w, NULL, 0, ZSTD_e_end, err);
}

uint64_t vdb_zwriter_bytes_out(const vdb_zwriter *w)
{
	return w->bytes_out;
}

void vdb_zwriter_free(vdb_zwriter *w)
{
	if (!w)
		return;
	ZSTD_freeCCtx(w->cctx);
	free(w->out);
	free(w);
}

struct vdb_zreader {
	ZSTD_DCtx *dctx;
	int fd;
	const char *what;
	volatile sig_atomic_t *cancel;
	unsigned char *in, *out;
	size_t in_cap, in_len, in_pos;
	size_t out_cap, out_len, out_pos;
	int eof;
	size_t last; /* last ZSTD_decompressStream result: 0 when a frame just ended */
	uint64_t total, budget;
};

vdb_status vdb_zreader_open(int fd, const char *what, volatile sig_atomic_t *cancel,
			    vdb_zreader **out, vdb_error *err)
{
	vdb_zreader *r = calloc(1, sizeof *r);
	if (!r)
		return vdb_err_nomem(err);
	r->fd = fd;
	r->what = what;
	r->cancel = cancel;
	r->dctx = ZSTD_createDCtx();
	r->in_cap = ZSTD_DStreamInSize();
	r->out_cap = ZSTD_DStreamOutSize();
	r->in = malloc(r->in_cap);
	r->out = malloc(r->out_cap);
	r->last = 1;
	r->budget = UINT64_MAX;
	if (!r->dctx || !r->in || !r->out) {
		vdb_zreader_free(r);
		return vdb_err_nomem(err);
	}
	/* The decoder's memory is bounded by the window: refuse larger ones outright. */
	ZSTD_DCtx_setParameter(r->dctx, ZSTD_d_windowLogMax, VDB_ZSTD_WINDOW_LOG_MAX);
	*out = r;
	return VDB_OK;
}

void vdb_zreader_set_budget(vdb_zreader *r, uint64_t max_out)
{
	r->budget = max_out;
}

uint64_t vdb_zreader_total(const vdb_zreader *r)
{
	return r->total;
}

/* Decompresses more into r->out: 1 produced or consumed something, 0 at a clean end. */
static int refill(vdb_zreader *r, const char *entry, vdb_error *err)
{
	for (;;) {
		if (r->cancel && *r->cancel)
			return vdb_err(err, VDB_EINTR, "interrupted"), -1;
		if (r->in_pos == r->in_len && !r->eof) {
			ssize_t got = read(r->fd, r->in, r->in_cap);
			if (got < 0 && errno == EINTR)
				continue;
			if (got < 0)
				return vdb_err_sys(err, VDB_EIO, "read %s", r->what), -1;
			r->in_len = (size_t)got;
			r->in_pos = 0;
			r->eof = got == 0;
		}
		if (r->in_pos == r->in_len && r->eof) {
			if (r->last == 0)
				return 0;
			return vdb_err(err, VDB_ECORRUPT,
				       "%s: truncated archive (it ends inside %s)", r->what, entry),
			       -1;
		}
		ZSTD_inBuffer in = {r->in, r->in_len, r->in_pos};
		ZSTD_outBuffer o = {r->out, r->out_cap, 0};
		size_t ret = ZSTD_decompressStream(r->dctx, &o, &in);
		if (ZSTD_isError(ret)) {
			const char *why = ZSTD_getErrorName(ret);
			if (ZSTD_getErrorCode(ret) == ZSTD_error_frameParameter_windowTooLarge)
				why = "its zstd window is over the 128 MiB limit";
			return vdb_err(err, VDB_ECORRUPT, "%s: damaged archive in %s: %s", r->what,
				       entry, why),
			       -1;
		}
		r->in_pos = in.pos;
		r->last = ret;
		if (o.pos) {
			if (r->total > r->budget || o.pos > r->budget - r->total)
				return vdb_err(err, VDB_ECORRUPT,
					       "%s: %s: the archive expands beyond the %llu bytes its "
					       "manifest announces",
					       r->what, entry, (unsigned long long)r->budget),
				       -1;
			r->total += o.pos;
			r->out_len = o.pos;
			r->out_pos = 0;
			return 1;
		}
	}
}

vdb_status vdb_zreader_read(vdb_zreader *r, void *p, size_t n, size_t *got, const char *entry,
			    vdb_error *err)
{
	size_t done = 0;
	while (done < n) {
		if (r->out_pos == r->out_len) {
			int rc = refill(r, entry, err);
			if (rc < 0)
				return err ? err->code : VDB_ECORRUPT;
			if (rc == 0)
				break;
			continue;
		}
		size_t k = r->out_len - r->out_pos;
		if (k > n - done)
			k = n - done;
		memcpy((char *)p + done, r->out + r->out_pos, k);
		r->out_pos += k;
		done += k;
	}
	*got = done;
	return VDB_OK;
}

void vdb_zreader_free(vdb_zreader *r)
{
	if (!r)
		return;
	ZSTD_freeDCtx(r->dctx);
	free(r->in);
	free(r->out);
	free(r);
}
