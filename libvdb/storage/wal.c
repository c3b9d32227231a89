/* Write-ahead log.
 *
 * File: a 32-byte header (magic "vdbWAL\0\0", format u32, dim u32, log number u64, pad u32,
 * crc32c of the preceding 28 bytes), then frames. A frame is one committed batch:
 *   u32 magic "VWF1" | u32 body length | u64 sequence | u32 body crc32c | u32 header crc32c
 * followed by the body, a run of operations:
 *   u8 op (1 upsert, 2 delete) | u8 id kind (0 integer, 1 string) | u16 id length |
 *   u32 payload length | id (u64, or the string's bytes) | upsert: dim float32, payload
 *
 * The writer appends a frame with one write() and fsyncs before acknowledging, and it never
 * writes frame n+1 before frame n is durable. So after a crash only the last frame can be
 * damaged: a bad frame with a valid frame after it cannot come from a crash and is reported
 * as corruption (file and offset), never skipped. Readers apply the same rule, which also
 * covers a frame they catch half-written by a live writer (nothing valid follows it yet). */
#include "wal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../util/crc32c.h"
#include "../util/error.h"
#include "../util/io.h"
#include "format.h"

void vdb_wal_name(char *out, size_t cap, uint64_t number)
{
	snprintf(out, cap, "wal-%08" PRIu64 ".log", number);
}

vdb_status vdb_wal_create(const char *dir, uint64_t number, uint32_t dim, vdb_error *err)
{
	unsigned char h[VDB_WAL_HEADER_SIZE] = {0};
	memcpy(h, VDB_WAL_MAGIC, 8);
	vdb_put32(h + 8, VDB_WAL_FORMAT);
	vdb_put32(h + 12, dim);
	vdb_put64(h + 16, number);
	vdb_put32(h + 28, vdb_crc32c(0, h, 28));
	char name[64];
	vdb_wal_name(name, sizeof name, number);
	return vdb_atomic_write(dir, name, h, sizeof h, err);
}

void vdb_wal_batch_reset(vdb_buf *b)
{
	b->len = 0;
	vdb_buf_reserve(b, VDB_FRAME_HEADER_SIZE);
	if (b->cap >= VDB_FRAME_HEADER_SIZE) {
		memset(b->data, 0, VDB_FRAME_HEADER_SIZE);
		b->len = VDB_FRAME_HEADER_SIZE;
	}
}

static int encode_op(vdb_buf *b, int op, const vdb_id *id, size_t payload_len)
{
	unsigned char h[VDB_OP_HEADER_SIZE];
	h[0] = (unsigned char)op;
	h[1] = id->is_string ? 1 : 0;
	vdb_put32(h + 4, (uint32_t)payload_len);
	h[2] = (unsigned char)(id->is_string ? id->len & 0xff : 0);
	h[3] = (unsigned char)(id->is_string ? id->len >> 8 : 0);
	if (vdb_buf_append(b, h, sizeof h))
		return -1;
	if (id->is_string)
		return vdb_buf_append(b, id->str, id->len);
	return vdb_buf_put_u64(b, id->num);
}

int vdb_wal_encode_upsert(vdb_buf *b, uint32_t dim, const vdb_id *id, const float *vec,
			  const char *payload, size_t payload_len)
{
	size_t mark = b->len;
	if (encode_op(b, VDB_OP_UPSERT, id, payload ? payload_len : 0) ||
	    vdb_buf_append(b, vec, (size_t)dim * sizeof *vec) ||
	    (payload && vdb_buf_append(b, payload, payload_len))) {
		b->len = mark;
		return -1;
	}
	return 0;
}

int vdb_wal_encode_delete(vdb_buf *b, const vdb_id *id)
{
	size_t mark = b->len;
	if (encode_op(b, VDB_OP_DELETE, id, 0)) {
		b->len = mark;
		return -1;
	}
	return 0;
}

vdb_status vdb_wal_append(int fd, const char *path, uint64_t off, uint64_t seq, vdb_buf *b,
			  vdb_error *err)
{
	size_t body = b->len - VDB_FRAME_HEADER_SIZE;
	if (body > VDB_FRAME_MAX_BODY)
		return vdb_err(err, VDB_EINVAL, "batch of %zu bytes is over the %u-byte limit", body,
			       VDB_FRAME_MAX_BODY);
	unsigned char *h = (unsigned char *)b->data;
	vdb_put32(h, VDB_FRAME_MAGIC);
	vdb_put32(h + 4, (uint32_t)body);
	vdb_put64(h + 8, seq);
	vdb_put32(h + 16, vdb_crc32c(0, b->data + VDB_FRAME_HEADER_SIZE, body));
	vdb_put32(h + 20, vdb_crc32c(0, h, 20));
	size_t done = 0;
	while (done < b->len) {
		ssize_t w = pwrite(fd, b->data + done, b->len - done, (off_t)(off + done));
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return vdb_err_sys(err, VDB_EIO, "write %s", path);
		}
		done += (size_t)w;
	}
	/* The batch is acknowledged only after this: fdatasync also makes the new size durable. */
	if (fdatasync(fd) < 0)
		return vdb_err_sys(err, VDB_EIO, "fsync %s", path);
	return VDB_OK;
}

int vdb_wal_next_op(const char *body, size_t len, uint32_t dim, size_t *pos, vdb_wal_op *op)
{
	size_t p = *pos, vbytes = (size_t)dim * sizeof(float);
	if (p >= len)
		return 0;
	const unsigned char *h = (const unsigned char *)body + p;
	if (len - p < VDB_OP_HEADER_SIZE)
		return -1;
	int kind = h[1];
	size_t idlen = (size_t)h[2] | (size_t)h[3] << 8;
	size_t plen = vdb_le32(h + 4);
	*op = (vdb_wal_op){.op = h[0]};
	p += VDB_OP_HEADER_SIZE;
	if (kind == 0) {
		if (idlen != 0 || len - p < 8)
			return -1;
		op->id.num = vdb_le64(body + p);
		p += 8;
	} else if (kind == 1) {
		if (idlen == 0 || idlen > VDB_ID_MAX_BYTES || len - p < idlen)
			return -1;
		op->id.is_string = 1;
		op->id.str = body + p;
		op->id.len = idlen;
		p += idlen;
	} else {
		return -1;
	}
	if (op->op == VDB_OP_UPSERT) {
		if (len - p < vbytes || len - p - vbytes < plen)
			return -1;
		op->vector = body + p;
		p += vbytes;
		op->payload = plen ? body + p : NULL;
		op->payload_len = plen;
		p += plen;
	} else if (op->op != VDB_OP_DELETE || plen != 0) {
		return -1;
	}
	*pos = p;
	return 1;
}

vdb_status vdb_wal_apply(const char *body, size_t len, uint32_t dim, vdb_memtable *mt,
			 const char *path, uint64_t off, vdb_error *err)
{
	size_t p = 0, vbytes = (size_t)dim * sizeof(float);
	float *vec = malloc(vbytes ? vbytes : 1);
	if (!vec)
		return vdb_err_nomem(err);
	vdb_status st = VDB_OK;
	vdb_wal_op op;
	int r;
	while ((r = vdb_wal_next_op(body, len, dim, &p, &op)) > 0) {
		int rc;
		if (op.op == VDB_OP_UPSERT) {
			memcpy(vec, op.vector, vbytes);
			rc = vdb_memtable_upsert(mt, &op.id, vec, op.payload, op.payload_len);
		} else {
			rc = vdb_memtable_delete(mt, &op.id);
		}
		if (rc) {
			st = vdb_err_nomem(err);
			break;
		}
	}
	if (r < 0)
		st = vdb_err(err, VDB_ECORRUPT, "%s: malformed operation in the record at offset %" PRIu64,
			     path, off);
	free(vec);
	return st;
}

static int frame_header_ok(const unsigned char *h)
{
	return vdb_le32(h) == VDB_FRAME_MAGIC && vdb_le32(h + 20) == vdb_crc32c(0, h, 20) &&
	       vdb_le32(h + 4) <= VDB_FRAME_MAX_BODY;
}

/* Is there a frame with a valid header and a sequence >= seq anywhere in [from, size)?
 *
 * `size` is the length the replay stat'ed, and nothing past it is looked at. A live writer
 * may have appended since: the frame the replay found cut short by `size` can be whole by
 * now, with the next one after it, and counting that next frame would turn a write in
 * progress into "corruption". Below `size` the bytes are stable, because a file's length
 * grows only after the bytes beneath it are in place. */
static vdb_status valid_frame_after(int fd, const char *path, uint64_t from, uint64_t size,
				    uint64_t seq, int *found, vdb_error *err)
{
	enum { CHUNK = 1 << 20 };
	unsigned char *buf = malloc(CHUNK + VDB_FRAME_HEADER_SIZE);
	if (!buf)
		return vdb_err_nomem(err);
	*found = 0;
	for (uint64_t pos = from; pos + VDB_FRAME_HEADER_SIZE <= size && !*found; pos += CHUNK) {
		size_t want = CHUNK + VDB_FRAME_HEADER_SIZE;
		if (want > size - pos)
			want = (size_t)(size - pos);
		ssize_t got = vdb_pread_full(fd, buf, want, (off_t)pos);
		if (got < 0) {
			free(buf);
			return vdb_err_sys(err, VDB_EIO, "read %s", path);
		}
		for (ssize_t i = 0; i + (ssize_t)VDB_FRAME_HEADER_SIZE <= got && i < CHUNK; i++)
			if (buf[i] == 0x56 && frame_header_ok(buf + i) &&
			    vdb_le64(buf + i + 8) >= seq) {
				*found = 1;
				break;
			}
	}
	free(buf);
	return VDB_OK;
}

static vdb_status check_file_header(int fd, const char *path, uint32_t dim, uint64_t number,
				    vdb_error *err)
{
	unsigned char h[VDB_WAL_HEADER_SIZE];
	ssize_t got = vdb_pread_full(fd, h, sizeof h, 0);
	if (got < 0)
		return vdb_err_sys(err, VDB_EIO, "read %s", path);
	if (got < (ssize_t)sizeof h || memcmp(h, VDB_WAL_MAGIC, 8) != 0 ||
	    vdb_le32(h + 28) != vdb_crc32c(0, h, 28))
		return vdb_err(err, VDB_ECORRUPT, "%s: bad write-ahead log header", path);
	if (vdb_le32(h + 8) != VDB_WAL_FORMAT)
		return vdb_err(err, VDB_ECORRUPT,
			       "%s: log format version %u is not supported (this vdb reads version %u)",
			       path, vdb_le32(h + 8), VDB_WAL_FORMAT);
	if (vdb_le32(h + 12) != dim || vdb_le64(h + 16) != number)
		return vdb_err(err, VDB_ECORRUPT, "%s: log header does not match the collection", path);
	return VDB_OK;
}

vdb_status vdb_wal_replay_fd(int fd, const char *path, uint32_t dim, uint64_t number,
			     uint64_t first_seq, vdb_memtable *mt, vdb_wal_replay *r,
			     vdb_error *err)
{
	vdb_status st = check_file_header(fd, path, dim, number, err);
	if (st)
		return st;
	struct stat sb;
	if (fstat(fd, &sb) < 0)
		return vdb_err_sys(err, VDB_EIO, "stat %s", path);
	uint64_t size = (uint64_t)sb.st_size, off = VDB_WAL_HEADER_SIZE, seq = first_seq;
	vdb_buf body = VDB_BUF_INIT;
	memset(r, 0, sizeof *r);
	r->size = size;
	while (off < size) {
		unsigned char h[VDB_FRAME_HEADER_SIZE];
		ssize_t got = size - off >= sizeof h ? vdb_pread_full(fd, h, sizeof h, (off_t)off) : 0;
		if (got < 0) {
			st = vdb_err_sys(err, VDB_EIO, "read %s", path);
			goto out;
		}
		int damaged = got < (ssize_t)sizeof h || !frame_header_ok(h);
		size_t blen = damaged ? 0 : vdb_le32(h + 4);
		if (!damaged && size - off - sizeof h < blen)
			damaged = 1; /* the frame runs past the end of the file */
		if (!damaged) {
			body.len = 0;
			if (vdb_buf_reserve(&body, blen)) {
				st = vdb_err_nomem(err);
				goto out;
			}
			ssize_t got_body = vdb_pread_full(fd, body.data, blen, (off_t)(off + sizeof h));
			if (got_body < 0) {
				st = vdb_err_sys(err, VDB_EIO, "read %s", path);
				goto out;
			}
			/* Short: a writer cut the file since the stat (see below). */
			damaged = got_body != (ssize_t)blen ||
				  vdb_crc32c(0, body.data, blen) != vdb_le32(h + 16);
		}
		if (damaged) {
			int later;
			st = valid_frame_after(fd, path, off + 1, size, seq, &later, err);
			if (st)
				goto out;
			if (later) {
				/* Bytes below `size` stay put while a writer appends, but a writer
				 * that cuts a torn frame off (after a crash) rewrites them. */
				struct stat now;
				r->changed = fstat(fd, &now) < 0 || now.st_size != sb.st_size ||
					     now.st_mtim.tv_sec != sb.st_mtim.tv_sec ||
					     now.st_mtim.tv_nsec != sb.st_mtim.tv_nsec ||
					     now.st_ctim.tv_sec != sb.st_ctim.tv_sec ||
					     now.st_ctim.tv_nsec != sb.st_ctim.tv_nsec;
				st = vdb_err(err, VDB_ECORRUPT,
					     "%s: corrupt record at offset %" PRIu64
					     " followed by valid records",
					     path, off);
				goto out;
			}
			r->torn = 1;
			break;
		}
		if (vdb_le64(h + 8) != seq) {
			st = vdb_err(err, VDB_ECORRUPT,
				     "%s: record at offset %" PRIu64 " has sequence %" PRIu64
				     ", expected %" PRIu64,
				     path, off, vdb_le64(h + 8), seq);
			goto out;
		}
		st = vdb_wal_apply(body.data, blen, dim, mt, path, off, err);
		if (st)
			goto out;
		seq++;
		r->frames++;
		off += sizeof h + blen;
	}
	r->end = off;
	r->next_seq = seq;
out:
	vdb_buf_free(&body);
	return st;
}
