/* Byte streams for the import/export formats: an input stream over a file descriptor that
 * decompresses zstd on the fly when the data starts with a zstd frame (so `.zst` files and
 * compressed pipes need no flag), and an output stream that writes a file atomically
 * (temporary sibling, fsync, rename, fsync of the directory) or standard output, optionally
 * zstd-compressed. Both buffer, so callers may read and write in small pieces cheaply; the
 * compression and decompression are zstream.c's (a decoder thread reads ahead of the caller). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "io.h"
#include "stream.h"
#include "vdb_io.h"
#include "zstream.h"

static const unsigned char zstd_magic[4] = {0x28, 0xB5, 0x2F, 0xFD};

struct vdb_istream {
	int fd;
	vdb_cancel cancel;
	vdb_zreader *z;   /* NULL: plain */
	unsigned char sniffed[4]; /* a plain stream's first bytes, handed out first */
	size_t nsniffed, sniff_pos;
	uint64_t raw;     /* bytes read from fd (plain streams) */
};

/* How often a read that waits for input asks the caller's cancel whether to stop: a
 * library cannot count on a signal to interrupt read(2) (the caller's threads, or a handler
 * installed with SA_RESTART), so it waits in poll(2) and looks up now and then. */
#define CANCEL_POLL_MS 50

/* read(2) that retries EINTR, and stops with VDB_EINTR once the caller's cancel says so,
 * also while it waits for input. */
static vdb_status raw_read(vdb_istream *s, void *buf, size_t cap, size_t *got, vdb_error *err)
{
	for (;;) {
		if (vdb_cancelled(&s->cancel))
			return vdb_err(err, VDB_EINTR, "interrupted");
		if (s->cancel.cancelled) {
			struct pollfd p = {s->fd, POLLIN, 0};
			if (poll(&p, 1, CANCEL_POLL_MS) == 0 || (p.revents == 0 && errno == EINTR))
				continue;
		}
		ssize_t r = read(s->fd, buf, cap);
		if (r < 0 && errno == EINTR)
			continue; /* the loop re-checks the cancel flag */
		if (r < 0)
			return vdb_err_sys(err, VDB_EIO, "read");
		*got = (size_t)r;
		s->raw += (uint64_t)r;
		return VDB_OK;
	}
}

vdb_status vdb_istream_open(int fd, const vdb_cancel *cancel,
			    vdb_istream **out, vdb_error *err)
{
	vdb_istream *s = calloc(1, sizeof *s);
	if (!s)
		return vdb_err_nomem(err);
	s->fd = fd;
	if (cancel)
		s->cancel = *cancel;
	/* Sniff the first bytes: a zstd frame starts with its magic number. */
	size_t n = 0;
	vdb_status st = VDB_OK;
	while (n < sizeof zstd_magic) {
		size_t got = 0;
		if ((st = raw_read(s, s->sniffed + n, sizeof zstd_magic - n, &got, err)))
			goto fail;
		if (!got)
			break;
		n += got;
	}
	s->nsniffed = n;
	if (n == sizeof zstd_magic && !memcmp(s->sniffed, zstd_magic, n)) {
		if ((st = vdb_zreader_open(fd, NULL, cancel, &s->z, err)))
			goto fail;
		vdb_zreader_prefix(s->z, s->sniffed, n);
	}
	*out = s;
	return VDB_OK;
fail:
	vdb_istream_close(s);
	return st;
}

vdb_status vdb_istream_read(vdb_istream *s, void *buf, size_t cap, size_t *got, vdb_error *err)
{
	if (s->z) {
		const void *p;
		vdb_status st = vdb_zreader_next(s->z, cap, &p, got, NULL, err);
		if (!st && *got)
			memcpy(buf, p, *got);
		return st;
	}
	if (s->sniff_pos < s->nsniffed) { /* the sniffed bytes first */
		size_t n = s->nsniffed - s->sniff_pos;
		n = n < cap ? n : cap;
		memcpy(buf, s->sniffed + s->sniff_pos, n);
		s->sniff_pos += n;
		*got = n;
		return VDB_OK;
	}
	return raw_read(s, buf, cap, got, err);
}

vdb_status vdb_istream_read_full(vdb_istream *s, void *buf, size_t n, size_t *got,
				 vdb_error *err)
{
	size_t have = 0;
	*got = 0;
	while (have < n) {
		size_t g;
		vdb_status st = vdb_istream_read(s, (char *)buf + have, n - have, &g, err);
		*got = have;
		if (st)
			return st;
		if (!g)
			break;
		have += g;
	}
	*got = have;
	return VDB_OK;
}

int vdb_istream_file(vdb_istream *s, uint64_t *offset, uint64_t *size)
{
	struct stat st;
	off_t pos;
	if (s->z || fstat(s->fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (pos = lseek(s->fd, 0, SEEK_CUR)) < 0)
		return -1;
	/* Sniffed bytes not yet handed out are given back to the file. */
	size_t pending = s->nsniffed - s->sniff_pos;
	if (pending) {
		if ((uint64_t)pos < pending || lseek(s->fd, pos - (off_t)pending, SEEK_SET) < 0)
			return -1;
		pos -= (off_t)pending;
		s->raw -= pending;
		s->sniff_pos = s->nsniffed;
	}
	*offset = (uint64_t)pos;
	*size = (uint64_t)st.st_size;
	return s->fd;
}

vdb_status vdb_istream_skip(vdb_istream *s, uint64_t n, vdb_error *err)
{
	if (lseek(s->fd, (off_t)n, SEEK_CUR) < 0)
		return vdb_err_sys(err, VDB_EIO, "seek");
	s->raw += n;
	return VDB_OK;
}

int vdb_istream_ready(vdb_istream *s)
{
	if (s->z)
		return vdb_zreader_ready(s->z);
	if (s->sniff_pos < s->nsniffed)
		return 1;
	struct pollfd p = {s->fd, POLLIN, 0};
	return poll(&p, 1, 0) > 0;
}

int vdb_istream_wait(vdb_istream *s, double seconds)
{
	double end = vdb_monotonic() + seconds;
	for (;;) {
		if (vdb_istream_ready(s))
			return 1;
		double left = end - vdb_monotonic();
		if (left <= 0)
			return 0;
		/* A plain descriptor is polled for the whole wait; a zstd stream's reader
		 * thread fills its buffers on its own, so it is looked at every millisecond. */
		int ms = s->z ? 1 : (int)(left * 1000) + 1;
		struct pollfd p = {s->fd, POLLIN, 0};
		if (poll(&p, 1, s->z ? 0 : ms) > 0 && !s->z)
			return 1;
		if (s->z) {
			struct timespec ts = {0, 1000 * 1000};
			nanosleep(&ts, NULL);
		}
	}
}

double vdb_monotonic(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int vdb_istream_compressed(const vdb_istream *s)
{
	return s->z != NULL;
}

uint64_t vdb_istream_raw_bytes(const vdb_istream *s)
{
	return s->z ? vdb_zreader_raw_bytes(s->z) : s->raw;
}

void vdb_istream_close(vdb_istream *s)
{
	if (!s)
		return;
	vdb_zreader_free(s->z);
	free(s);
}

/* ---- output ---- */

#define OSTREAM_BUF (1u << 20)

struct vdb_ostream {
	int fd;
	char *path; /* NULL: standard output */
	vdb_tmpfile *tmp; /* the temporary renamed over path at finish; NULL: path is a device
			   * or FIFO written in place */
	vdb_zwriter *z; /* compressing: the buffer's bytes go through it to put() */
	char *buf;
	size_t len;
	int failed, finished;
	int fast; /* no fsyncs at finish (vdb_ostream_set_durable) */
};

static vdb_status put(void *ctx, const void *p, size_t n, vdb_error *err);

vdb_status vdb_ostream_open(const char *path, int zstd_level, vdb_ostream **out, vdb_error *err)
{
	vdb_ostream *s = calloc(1, sizeof *s);
	if (!s)
		return vdb_err_nomem(err);
	s->fd = STDOUT_FILENO;
	vdb_status st = VDB_ENOMEM;
	if (!(s->buf = malloc(OSTREAM_BUF)))
		goto nomem;
	if (path && strcmp(path, "-")) {
		/* A device or FIFO is written in place, a link is followed (vdb_output_resolve). */
		int fd;
		s->fd = -1; /* not standard output: nothing to close until something is open */
		if ((st = vdb_output_resolve(path, &fd, &s->path, err)))
			goto fail;
		if (fd >= 0) {
			s->fd = fd;
			if (!(s->path = strdup(path))) {
				close(fd);
				goto nomem;
			}
			goto done;
		}
		if (!(s->tmp = malloc(sizeof *s->tmp)))
			goto nomem;
		if ((st = vdb_tmpfile_create(s->tmp, s->path, VDB_TMP_OUTPUT, err))) {
			free(s->tmp);
			s->tmp = NULL; /* nothing to remove */
			goto fail;
		}
		s->fd = s->tmp->fd;
	}
done:
	if (zstd_level) {
		if ((st = vdb_zwriter_open(s->fd, "output", zstd_level, 0, &s->z, err)))
			goto fail;
		vdb_zwriter_set_sink(s->z, put, s);
	}
	*out = s;
	return VDB_OK;
nomem:
	st = vdb_err_nomem(err);
fail:
	vdb_ostream_close(s);
	return st;
}

static const char *oname(const vdb_ostream *s)
{
	return s->tmp ? s->tmp->tmp : s->path ? s->path : "standard output";
}

static vdb_status put(void *ctx, const void *p, size_t n, vdb_error *err)
{
	vdb_ostream *s = ctx;
	if (vdb_write_all(s->fd, p, n) < 0) {
		s->failed = 1;
		if (!s->path)
			return vdb_err_sys(err, VDB_EIO, "write error on standard output");
		return vdb_err_sys(err, VDB_EIO, "write %s", oname(s));
	}
	return VDB_OK;
}

/* Passes p[0..n) on, through the compressor when there is one. */
static vdb_status emit(vdb_ostream *s, const void *p, size_t n, vdb_error *err)
{
	if (!n)
		return VDB_OK;
	vdb_status st = s->z ? vdb_zwriter_write(s->z, p, n, err) : put(s, p, n, err);
	if (st)
		s->failed = 1;
	return st;
}

static vdb_status flush_buf(vdb_ostream *s, vdb_error *err)
{
	vdb_status st = emit(s, s->buf, s->len, err);
	s->len = 0;
	return st;
}

vdb_status vdb_ostream_write(vdb_ostream *s, const void *p, size_t n, vdb_error *err)
{
	if (s->failed)
		return vdb_err(err, VDB_EIO, "write %s: an earlier write failed", oname(s));
	if (s->len + n <= OSTREAM_BUF) {
		memcpy(s->buf + s->len, p, n);
		s->len += n;
		return VDB_OK;
	}
	if (flush_buf(s, err))
		return VDB_EIO;
	if (n >= OSTREAM_BUF / 2)
		return emit(s, p, n, err); /* large pieces go straight through */
	memcpy(s->buf, p, n);
	s->len = n;
	return VDB_OK;
}

vdb_status vdb_ostream_finish(vdb_ostream *s, vdb_error *err)
{
	if (s->failed)
		return vdb_err(err, VDB_EIO, "write %s: an earlier write failed", oname(s));
	if (flush_buf(s, err) || (s->z && vdb_zwriter_finish(s->z, err))) {
		s->failed = 1;
		return err ? err->code : VDB_EIO;
	}
	if (!s->path) {
		s->finished = 1;
		return VDB_OK;
	}
	if (!s->tmp) { /* written in place: a device or FIFO has no name to make durable */
		int fd = s->fd;
		s->fd = -1;
		s->finished = 1;
		if (close(fd) < 0) {
			s->failed = 1;
			return vdb_err_sys(err, VDB_EIO, "close %s", s->path);
		}
		return VDB_OK;
	}
	s->fd = -1; /* the temporary's, closed by the commit */
	vdb_status st = vdb_tmpfile_commit(s->tmp, s->fast ? VDB_TMP_NO_SYNC : 0, err);
	if (st)
		s->failed = 1;
	else
		s->finished = 1;
	return st;
}

void vdb_ostream_set_durable(vdb_ostream *s, int durable)
{
	s->fast = !durable;
}

void vdb_ostream_close(vdb_ostream *s)
{
	if (!s)
		return;
	if (s->path && !s->tmp && s->fd >= 0)
		close(s->fd); /* a device or FIFO written in place */
	/* Standard output streams: what was written before a failure elsewhere still goes out,
	 * as it would have without the buffer (a compressed stream is flushed, not ended, so
	 * its reader sees it is incomplete). */
	if (!s->path && !s->finished && !s->failed && !flush_buf(s, NULL) && s->z)
		vdb_zwriter_flush(s->z, NULL);
	if (s->tmp)
		vdb_tmpfile_discard(s->tmp); /* an unfinished output never appears under its name */
	vdb_zwriter_free(s->z);
	free(s->buf);
	free(s->path);
	free(s->tmp);
	free(s);
}
