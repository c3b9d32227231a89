/* libvdb's one zstd stream layer, used by the byte streams of the formats (stream.c) and by
 * snapshot archives. The writer produces one frame with a content checksum (so `zstd -t`
 * and every reader detect corruption) and optional worker threads. The reader treats its
 * input as hostile: the frame window is capped (ZSTD_d_windowLogMax) so a crafted header
 * cannot make it allocate gigabytes, and an archive's reader sets an output budget from the
 * archive's own manifest, so a small archive cannot expand into an unbounded stream. */
#include "zstream.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "error.h"
#include "io.h"

struct vdb_zwriter {
	ZSTD_CCtx *cctx;
	int fd;
	const char *what;
	void *out;
	size_t out_cap;
	uint64_t bytes_out;
	uint64_t synced; /* bytes whose writeback was started */
	vdb_zsink sink;  /* NULL: write to fd */
	void *sink_ctx;
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
		if (o.pos && w->sink) {
			vdb_status st = w->sink(w->sink_ctx, w->out, o.pos, err);
			if (st)
				return st;
		} else if (o.pos) {
			if (vdb_write_all(w->fd, w->out, o.pos) < 0)
				return vdb_err_sys(err, VDB_EIO, "write %s", w->what);
			vdb_start_writeback(w->fd, &w->synced, w->bytes_out + o.pos);
		}
		w->bytes_out += o.pos;
		if (mode == ZSTD_e_continue ? in.pos == in.size : left == 0)
			return VDB_OK;
	}
}

void vdb_zwriter_set_sink(vdb_zwriter *w, vdb_zsink sink, void *ctx)
{
	w->sink = sink;
	w->sink_ctx = ctx;
}

vdb_status vdb_zwriter_write(vdb_zwriter *w, const void *p, size_t n, vdb_error *err)
{
	return compress(w, p, n, ZSTD_e_continue, err);
}

vdb_status vdb_zwriter_flush(vdb_zwriter *w, vdb_error *err)
{
	return compress(w, NULL, 0, ZSTD_e_flush, err);
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

/* The reader decompresses in a thread of its own, a few megabytes ahead of the caller, so
 * that decompression overlaps with what the caller does with the data (checksums, writes,
 * fsyncs) -- as `tar -I zstd` overlaps the two in two processes. The thread decompresses
 * straight into slots, in order, and the caller reads them in place (vdb_zreader_next):
 * no byte is copied between the decoder and write(). A slot that ends the stream carries
 * how it ended, and the caller turns that into a message naming the entry it was reading. */
#define SLOTS 4
#define SLOT_SIZE (1u << 20)

enum zend { Z_MORE, Z_END, Z_TRUNCATED, Z_DAMAGED, Z_NOT_ZSTD, Z_WINDOW, Z_BUDGET, Z_IO, Z_INTR };

typedef struct zslot {
	unsigned char *data;
	size_t len;
	int full;
	enum zend end;
	const char *why; /* Z_DAMAGED: zstd's error name */
	int err_no;      /* Z_IO */
} zslot;

struct vdb_zreader {
	/* Thread side: the decoder. */
	ZSTD_DCtx *dctx;
	int fd;
	const char *what; /* NULL: a byte stream's messages ("zstd: ...", VDB_EDATA) */
	vdb_cancel cancel; /* asked by the decompressing thread too */
	unsigned char *in;
	size_t in_cap, in_len, in_pos;
	int eof;
	int out_full; /* the last call filled its output: the decoder may hold more */
	size_t last; /* last ZSTD_decompressStream result: 0 when a frame just ended */
	uint64_t total;
	_Atomic uint64_t raw; /* bytes read from fd (and given as the prefix) */
	unsigned char first[512]; /* the input's first bytes, to say what it is when not zstd */
	size_t nfirst;
	/* Shared, under mu. */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	zslot slot[SLOTS];
	uint64_t budget;
	int stop, started;
	pthread_t thread;
	/* Caller side. */
	size_t head, pos;
};

vdb_status vdb_zreader_open(int fd, const char *what, const vdb_cancel *cancel,
			    vdb_zreader **out, vdb_error *err)
{
	vdb_zreader *r = calloc(1, sizeof *r);
	if (!r)
		return vdb_err_nomem(err);
	r->fd = fd;
	r->what = what;
	if (cancel)
		r->cancel = *cancel;
	r->dctx = ZSTD_createDCtx();
	r->in_cap = ZSTD_DStreamInSize();
	r->in = malloc(r->in_cap);
	r->last = 1;
	r->budget = UINT64_MAX;
	int ok = r->dctx && r->in;
	for (int i = 0; i < SLOTS; i++)
		ok = ok && (r->slot[i].data = malloc(SLOT_SIZE));
	if (!ok || pthread_mutex_init(&r->mu, NULL)) {
		vdb_zreader_free(r);
		return vdb_err_nomem(err);
	}
	if (pthread_cond_init(&r->cv, NULL)) {
		pthread_mutex_destroy(&r->mu);
		vdb_zreader_free(r);
		return vdb_err_nomem(err);
	}
	r->started = -1; /* mutex and condition exist; no thread yet */
	/* The decoder's memory is bounded by the window: refuse larger ones outright. */
	ZSTD_DCtx_setParameter(r->dctx, ZSTD_d_windowLogMax, VDB_ZSTD_WINDOW_LOG_MAX);
	*out = r;
	return VDB_OK;
}

void vdb_zreader_prefix(vdb_zreader *r, const void *p, size_t n)
{
	memcpy(r->in, p, n);
	r->in_len = n;
	r->in_pos = 0;
	memcpy(r->first, p, n);
	r->nfirst = n;
	atomic_store(&r->raw, (uint64_t)n);
}

int vdb_zreader_ready(vdb_zreader *r)
{
	const zslot *s = &r->slot[r->head];
	pthread_mutex_lock(&r->mu);
	int ready = r->started > 0 && s->full &&
		    (r->pos < s->len || s->end != Z_MORE || r->slot[(r->head + 1) % SLOTS].full);
	pthread_mutex_unlock(&r->mu);
	if (ready)
		return 1;
	struct pollfd p = {r->fd, POLLIN, 0};
	return poll(&p, 1, 0) != 0;
}

uint64_t vdb_zreader_raw_bytes(const vdb_zreader *r)
{
	return atomic_load(&((vdb_zreader *)r)->raw);
}

void vdb_zreader_set_budget(vdb_zreader *r, uint64_t max_out)
{
	pthread_mutex_lock(&r->mu);
	r->budget = max_out;
	pthread_mutex_unlock(&r->mu);
}

static int stopping(vdb_zreader *r)
{
	pthread_mutex_lock(&r->mu);
	int stop = r->stop;
	pthread_mutex_unlock(&r->mu);
	return stop;
}

/* Whether input that zstd refused before producing anything is no zstd stream at all; *why
 * then says what it looks like (most often a tar that was never compressed). */
static int not_zstd(const vdb_zreader *r, const char **why)
{
	static const unsigned char magic[4] = {0x28, 0xB5, 0x2F, 0xFD};
	if (r->nfirst >= 4 && !memcmp(r->first, magic, 4))
		return 0;
	if (r->nfirst >= 263 && !memcmp(r->first + 257, "ustar", 5))
		*why = "it is an uncompressed tar archive, not zstd-compressed (a vdb snapshot is "
		       "a tar stream compressed with zstd: zstd FILE makes one)";
	else
		*why = "it is not zstd-compressed (not a vdb snapshot)";
	return 1;
}

/* Waits until fd is readable, or the reader is stopped or cancelled (a pipe may stay
 * silent). */
static int wait_input(vdb_zreader *r)
{
	for (;;) {
		if (stopping(r) || vdb_cancelled(&r->cancel))
			return -1;
		struct pollfd p = {r->fd, POLLIN, 0};
		int n = poll(&p, 1, 100);
		if (n != 0)
			return 0; /* readable, at end, or an error that read() will report */
	}
}

/* Whether decompressing more needs no wait for input: input or output is buffered, or fd
 * is readable. */
static int input_ready(vdb_zreader *r)
{
	if (r->in_pos < r->in_len || r->eof || r->out_full)
		return 1;
	struct pollfd p = {r->fd, POLLIN, 0};
	return poll(&p, 1, 0) != 0;
}

/* Thread side: decompresses more into the free end of slot s. Z_MORE when it produced
 * something. */
static enum zend refill(vdb_zreader *r, zslot *s)
{
	for (;;) {
		if (vdb_cancelled(&r->cancel))
			return Z_INTR;
		if (r->in_pos == r->in_len && !r->eof) {
			if (wait_input(r))
				return Z_INTR;
			ssize_t got = read(r->fd, r->in, r->in_cap);
			if (got < 0 && errno == EINTR)
				continue;
			if (got < 0) {
				s->err_no = errno;
				return Z_IO;
			}
			r->in_len = (size_t)got;
			r->in_pos = 0;
			r->eof = got == 0;
			atomic_fetch_add(&r->raw, (uint64_t)got);
			size_t keep = sizeof r->first - r->nfirst;
			keep = keep < (size_t)got ? keep : (size_t)got;
			memcpy(r->first + r->nfirst, r->in, keep);
			r->nfirst += keep;
		}
		/* 0 from zstd: the frame is complete and all of it flushed. Otherwise, with all
		 * input read, only a call that had filled its output may have more to give. */
		if (r->in_pos == r->in_len && r->eof && (r->last == 0 || !r->out_full))
			return r->last == 0 ? Z_END : Z_TRUNCATED;
		ZSTD_inBuffer in = {r->in, r->in_len, r->in_pos};
		ZSTD_outBuffer o = {s->data, SLOT_SIZE, s->len};
		size_t ret = ZSTD_decompressStream(r->dctx, &o, &in);
		if (ZSTD_isError(ret)) {
			s->why = ZSTD_getErrorName(ret);
			if (r->total == 0 && not_zstd(r, &s->why))
				return Z_NOT_ZSTD;
			return ZSTD_getErrorCode(ret) == ZSTD_error_frameParameter_windowTooLarge
				       ? Z_WINDOW
				       : Z_DAMAGED;
		}
		r->in_pos = in.pos;
		r->last = ret;
		r->out_full = o.pos == o.size;
		size_t made = o.pos - s->len;
		if (made) {
			pthread_mutex_lock(&r->mu);
			uint64_t budget = r->budget;
			pthread_mutex_unlock(&r->mu);
			/* Checked before the caller can see any of it. */
			if (r->total > budget || made > budget - r->total)
				return Z_BUDGET;
			r->total += made;
			s->len = o.pos;
			return Z_MORE;
		}
	}
}

static void *decompress_ahead(void *arg)
{
	vdb_zreader *r = arg;
	for (size_t i = 0;; i = (i + 1) % SLOTS) {
		zslot *s = &r->slot[i];
		pthread_mutex_lock(&r->mu);
		while (s->full && !r->stop)
			pthread_cond_wait(&r->cv, &r->mu);
		int stop = r->stop;
		pthread_mutex_unlock(&r->mu);
		if (stop)
			return NULL;
		s->len = 0;
		s->end = Z_MORE;
		/* A slot goes to the caller full, at the end, or when the input has nothing more
		 * ready: a slow producer's data is not held back until a megabyte is there. */
		while (s->len < SLOT_SIZE && s->end == Z_MORE && !(s->len && !input_ready(r)))
			s->end = refill(r, s);
		pthread_mutex_lock(&r->mu);
		s->full = 1;
		pthread_cond_broadcast(&r->cv);
		pthread_mutex_unlock(&r->mu);
		if (s->end != Z_MORE)
			return NULL;
	}
}

/* How a byte stream's decoding ended, in its own words: the caller names the input. */
static vdb_status stream_ended(const zslot *s, vdb_error *err)
{
	switch (s->end) {
	case Z_MORE:
	case Z_END: return VDB_OK;
	case Z_TRUNCATED: return vdb_err(err, VDB_EDATA, "zstd: the compressed data is truncated");
	case Z_NOT_ZSTD:
	case Z_DAMAGED: return vdb_err(err, VDB_EDATA, "zstd: %s", s->why);
	case Z_WINDOW:
		return vdb_err(err, VDB_EDATA, "zstd: the frame's window is over the 128 MiB limit");
	case Z_BUDGET: return vdb_err(err, VDB_EDATA, "zstd: more data than allowed");
	case Z_IO: errno = s->err_no; return vdb_err_sys(err, VDB_EIO, "read");
	case Z_INTR: return vdb_err(err, VDB_EINTR, "interrupted");
	}
	return vdb_err(err, VDB_EINTERNAL, "unknown reader state");
}

static vdb_status ended(vdb_zreader *r, const zslot *s, const char *entry, vdb_error *err)
{
	if (!r->what)
		return stream_ended(s, err);
	switch (s->end) {
	case Z_MORE:
	case Z_END: return VDB_OK;
	case Z_TRUNCATED:
		return vdb_err(err, VDB_ECORRUPT, "%s: truncated archive (it ends inside %s)", r->what,
			       entry);
	case Z_DAMAGED:
		return vdb_err(err, VDB_ECORRUPT, "%s: damaged archive in %s: %s", r->what, entry,
			       s->why);
	case Z_NOT_ZSTD:
		return vdb_err(err, VDB_ECORRUPT, "%s: %s", r->what, s->why);
	case Z_WINDOW:
		return vdb_err(err, VDB_ECORRUPT, "%s: damaged archive in %s: its zstd window is over "
			       "the 128 MiB limit", r->what, entry);
	case Z_BUDGET:
		return vdb_err(err, VDB_ECORRUPT, "%s: %s: the archive expands beyond the %llu bytes "
			       "its manifest announces", r->what, entry,
			       (unsigned long long)r->budget);
	case Z_IO:
		errno = s->err_no;
		return vdb_err_sys(err, VDB_EIO, "read %s", r->what);
	case Z_INTR: return vdb_err(err, VDB_EINTR, "interrupted");
	}
	return vdb_err(err, VDB_EINTERNAL, "unknown reader state");
}

vdb_status vdb_zreader_next(vdb_zreader *r, size_t max, const void **p, size_t *got,
			    const char *entry, vdb_error *err)
{
	if (r->started < 1) {
		if (pthread_create(&r->thread, NULL, decompress_ahead, r))
			return vdb_err(err, VDB_ENOMEM, "cannot start the decompression thread");
		r->started = 1;
	}
	*got = 0;
	for (;;) {
		zslot *s = &r->slot[r->head];
		pthread_mutex_lock(&r->mu);
		while (!s->full)
			pthread_cond_wait(&r->cv, &r->mu);
		pthread_mutex_unlock(&r->mu);
		if (r->pos < s->len) {
			/* The slot stays the caller's until a later call moves past it. */
			*p = s->data + r->pos;
			*got = s->len - r->pos < max ? s->len - r->pos : max;
			r->pos += *got;
			return VDB_OK;
		}
		if (s->end != Z_MORE)
			return ended(r, s, entry, err); /* the clean end stays the end */
		pthread_mutex_lock(&r->mu);
		s->full = 0;
		pthread_cond_broadcast(&r->cv);
		pthread_mutex_unlock(&r->mu);
		r->head = (r->head + 1) % SLOTS;
		r->pos = 0;
	}
}

vdb_status vdb_zreader_read(vdb_zreader *r, void *p, size_t n, size_t *got, const char *entry,
			    vdb_error *err)
{
	size_t done = 0;
	while (done < n) {
		const void *q;
		size_t k;
		vdb_status st = vdb_zreader_next(r, n - done, &q, &k, entry, err);
		if (st)
			return st;
		if (!k)
			break;
		memcpy((char *)p + done, q, k);
		done += k;
	}
	*got = done;
	return VDB_OK;
}

void vdb_zreader_free(vdb_zreader *r)
{
	if (!r)
		return;
	if (r->started) {
		if (r->started > 0) {
			pthread_mutex_lock(&r->mu);
			r->stop = 1;
			pthread_cond_broadcast(&r->cv);
			pthread_mutex_unlock(&r->mu);
			pthread_join(r->thread, NULL);
		}
		pthread_cond_destroy(&r->cv);
		pthread_mutex_destroy(&r->mu);
	}
	ZSTD_freeDCtx(r->dctx);
	free(r->in);
	for (int i = 0; i < SLOTS; i++)
		free(r->slot[i].data);
	free(r);
}
