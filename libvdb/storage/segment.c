/* Segments.
 *
 * seg-<n>.vdb layout (little-endian):
 *   0   magic "vdbSEG\0\0"   8  u32 format   12 u32 header size (128)   16 u32 dim
 *   20  u32 section count    24 u64 rows     32 u64 segment number      40 u64 file size
 *   48..123 reserved (zero)  124 u32 crc32c of bytes 0..123 and the section table
 *   128 section table: count * {u32 kind, u32 pad, u64 offset, u64 length, u32 crc32c, u32 pad}
 *   sections, each starting on a 64-byte boundary (vectors are then aligned for SIMD loads)
 *
 * Sections: VECTORS rows*dim float32; IDS rows*{u64 integer or string offset, u32 length,
 * u32 kind}; ID_STRINGS; ID_INDEX rows*{u64 id hash, u64 row} sorted by (hash, row) for
 * binary search; PAYLOAD_OFFSETS (rows+1)*u64; PAYLOADS (minified JSON objects).
 *
 * Opening maps the file and checks the header, the table and every size against the mapping
 * (O(1), so opening a large collection costs the same as a small one); each accessor checks
 * the offsets it follows, so a damaged file yields VDB_ECORRUPT, never a read out of bounds.
 * Full section checksums are verified by vdb_segment_verify (export, check, snapshot). */
#include "segment.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../util/crc32c.h"
#include "../util/error.h"
#include "../util/io.h"
#include "format.h"
#include "ids.h"

void vdb_segment_name(char *out, size_t cap, uint64_t number)
{
	snprintf(out, cap, "seg-%08" PRIu64 ".vdb", number);
}

void vdb_del_name(char *out, size_t cap, uint64_t segment, uint64_t gen)
{
	snprintf(out, cap, "del-%08" PRIu64 "-%08" PRIu64 ".vdb", segment, gen);
}

/* ---- writing ---- */

typedef struct seg_out {
	int fd;
	const char *path;
	uint64_t off;
	uint32_t crc;
	vdb_buf buf;
	vdb_error *err;
} seg_out;

static int out_flush(seg_out *o)
{
	if (o->buf.len && vdb_write_all(o->fd, o->buf.data, o->buf.len) < 0) {
		vdb_err_sys(o->err, VDB_EIO, "write %s", o->path);
		return -1;
	}
	o->buf.len = 0;
	return 0;
}

static int out_put(seg_out *o, const void *p, size_t n)
{
	o->crc = vdb_crc32c(o->crc, p, n);
	o->off += n;
	if (o->buf.len + n > (1u << 20) && out_flush(o))
		return -1;
	if (n > (1u << 20)) {
		if (vdb_write_all(o->fd, p, n) < 0) {
			vdb_err_sys(o->err, VDB_EIO, "write %s", o->path);
			return -1;
		}
		return 0;
	}
	if (vdb_buf_append(&o->buf, p, n)) {
		vdb_err_nomem(o->err);
		return -1;
	}
	return 0;
}

static int out_align(seg_out *o)
{
	static const char zeros[VDB_SEG_ALIGN];
	size_t pad = (size_t)((VDB_SEG_ALIGN - o->off % VDB_SEG_ALIGN) % VDB_SEG_ALIGN);
	if (o->buf.len + pad > (1u << 20) && out_flush(o))
		return -1;
	o->off += pad;
	return vdb_buf_append(&o->buf, zeros, pad) ? (vdb_err_nomem(o->err), -1) : 0;
}

static void sec_begin(seg_out *o, vdb_section *s, uint32_t kind)
{
	s->kind = kind;
	s->off = o->off;
	o->crc = 0;
}

static void sec_end(seg_out *o, vdb_section *s)
{
	s->len = o->off - s->off;
	s->crc = o->crc;
}

typedef struct idx_entry {
	uint64_t hash, row;
} idx_entry;

static int idx_cmp(const void *a, const void *b)
{
	const idx_entry *x = a, *y = b;
	if (x->hash != y->hash)
		return x->hash < y->hash ? -1 : 1;
	return x->row < y->row ? -1 : x->row > y->row;
}

static int write_sections(seg_out *o, const vdb_memtable *mt, uint32_t dim, uint64_t rows,
			  vdb_section *sec)
{
	const vdb_mem_entry *E = mt->entries;
	size_t n = mt->n;
	sec_begin(o, &sec[0], VDB_SEC_VECTORS);
	for (size_t i = 0; i < n; i++)
		if (!E[i].deleted && out_put(o, mt->vectors + E[i].vec, (size_t)dim * sizeof(float)))
			return -1;
	sec_end(o, &sec[0]);

	if (out_align(o))
		return -1;
	sec_begin(o, &sec[1], VDB_SEC_IDS);
	uint64_t soff = 0;
	for (size_t i = 0; i < n; i++) {
		if (E[i].deleted)
			continue;
		unsigned char rec[16];
		vdb_put64(rec, E[i].is_string ? soff : E[i].id_num);
		vdb_put32(rec + 8, E[i].is_string ? E[i].id_len : 0);
		vdb_put32(rec + 12, E[i].is_string);
		if (E[i].is_string)
			soff += E[i].id_len;
		if (out_put(o, rec, sizeof rec))
			return -1;
	}
	sec_end(o, &sec[1]);

	if (out_align(o))
		return -1;
	sec_begin(o, &sec[2], VDB_SEC_ID_STRINGS);
	for (size_t i = 0; i < n; i++)
		if (!E[i].deleted && E[i].is_string &&
		    out_put(o, mt->strings.data + E[i].id_num, E[i].id_len))
			return -1;
	sec_end(o, &sec[2]);

	if (out_align(o))
		return -1;
	idx_entry *idx = malloc((rows ? rows : 1) * sizeof *idx);
	if (!idx) {
		vdb_err_nomem(o->err);
		return -1;
	}
	uint64_t r = 0;
	for (size_t i = 0; i < n; i++)
		if (!E[i].deleted)
			idx[r] = (idx_entry){E[i].hash, r}, r++;
	qsort(idx, rows, sizeof *idx, idx_cmp);
	sec_begin(o, &sec[3], VDB_SEC_ID_INDEX);
	int rc = 0;
	for (uint64_t i = 0; i < rows && !rc; i++) {
		unsigned char rec[16];
		vdb_put64(rec, idx[i].hash);
		vdb_put64(rec + 8, idx[i].row);
		rc = out_put(o, rec, sizeof rec);
	}
	free(idx);
	if (rc)
		return -1;
	sec_end(o, &sec[3]);

	if (out_align(o))
		return -1;
	sec_begin(o, &sec[4], VDB_SEC_PAYLOAD_OFFSETS);
	uint64_t poff = 0;
	unsigned char b8[8];
	vdb_put64(b8, 0);
	if (out_put(o, b8, 8))
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (E[i].deleted)
			continue;
		poff += E[i].has_payload ? E[i].payload_len : 0;
		vdb_put64(b8, poff);
		if (out_put(o, b8, 8))
			return -1;
	}
	sec_end(o, &sec[4]);

	if (out_align(o))
		return -1;
	sec_begin(o, &sec[5], VDB_SEC_PAYLOADS);
	for (size_t i = 0; i < n; i++)
		if (!E[i].deleted && E[i].has_payload &&
		    out_put(o, mt->payloads.data + E[i].payload_off, E[i].payload_len))
			return -1;
	sec_end(o, &sec[5]);
	return out_flush(o);
}

static uint32_t header_encode(unsigned char *h, uint32_t dim, uint64_t rows, uint64_t number,
			      uint64_t size, const vdb_section *sec, uint32_t nsec)
{
	memset(h, 0, VDB_SEG_HEADER_SIZE + nsec * VDB_SEG_SECTION_SIZE);
	memcpy(h, VDB_SEG_MAGIC, 8);
	vdb_put32(h + 8, VDB_SEG_FORMAT);
	vdb_put32(h + 12, VDB_SEG_HEADER_SIZE);
	vdb_put32(h + 16, dim);
	vdb_put32(h + 20, nsec);
	vdb_put64(h + 24, rows);
	vdb_put64(h + 32, number);
	vdb_put64(h + 40, size);
	for (uint32_t i = 0; i < nsec; i++) {
		unsigned char *t = h + VDB_SEG_HEADER_SIZE + i * VDB_SEG_SECTION_SIZE;
		vdb_put32(t, sec[i].kind);
		vdb_put64(t + 8, sec[i].off);
		vdb_put64(t + 16, sec[i].len);
		vdb_put32(t + 24, sec[i].crc);
	}
	uint32_t crc = vdb_crc32c(0, h, 124);
	crc = vdb_crc32c(crc, h + VDB_SEG_HEADER_SIZE, nsec * VDB_SEG_SECTION_SIZE);
	vdb_put32(h + 124, crc);
	return crc;
}

vdb_status vdb_segment_write(const char *dir, uint64_t number, uint32_t dim,
			     const vdb_memtable *mt, uint64_t *rows_out, uint64_t *size_out,
			     uint32_t *crc_out, vdb_error *err)
{
	uint64_t rows = mt->live;
	*rows_out = rows;
	if (!rows)
		return VDB_OK;
	char name[64], tmpname[96], path[4096], tmp[4096];
	vdb_segment_name(name, sizeof name, number);
	snprintf(tmpname, sizeof tmpname, "%s.tmp-%ld", name, (long)getpid());
	if (vdb_path(path, sizeof path, dir, name) || vdb_path(tmp, sizeof tmp, dir, tmpname))
		return vdb_err(err, VDB_EINVAL, "path too long: %s", dir);
	int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return vdb_err_sys(err, VDB_EIO, "create %s", tmp);
	enum { NSEC = 6 };
	vdb_section sec[NSEC];
	uint64_t table = VDB_SEG_HEADER_SIZE + NSEC * VDB_SEG_SECTION_SIZE;
	uint64_t first = (table + VDB_SEG_ALIGN - 1) / VDB_SEG_ALIGN * VDB_SEG_ALIGN;
	seg_out o = {.fd = fd, .path = tmp, .off = first, .buf = VDB_BUF_INIT, .err = err};
	vdb_status st = VDB_EIO;
	if (lseek(fd, (off_t)first, SEEK_SET) < 0) {
		vdb_err_sys(err, VDB_EIO, "seek %s", tmp);
		goto fail;
	}
	if (write_sections(&o, mt, dim, rows, sec))
		goto fail;
	unsigned char h[VDB_SEG_HEADER_SIZE + NSEC * VDB_SEG_SECTION_SIZE];
	uint32_t crc = header_encode(h, dim, rows, number, o.off, sec, NSEC);
	if (pwrite(fd, h, sizeof h, 0) != (ssize_t)sizeof h) {
		vdb_err_sys(err, VDB_EIO, "write %s", tmp);
		goto fail;
	}
	/* The segment must be durable before a manifest can name it. */
	if (fsync(fd) < 0) {
		vdb_err_sys(err, VDB_EIO, "fsync %s", tmp);
		goto fail;
	}
	if (close(fd) < 0) {
		fd = -1;
		vdb_err_sys(err, VDB_EIO, "close %s", tmp);
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		vdb_err_sys(err, VDB_EIO, "rename %s", tmp);
		goto fail;
	}
	vdb_buf_free(&o.buf);
	*size_out = o.off;
	*crc_out = crc;
	return VDB_OK;
fail:
	vdb_buf_free(&o.buf);
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return err ? err->code : st;
}

/* ---- reading ---- */

static vdb_status corrupt(vdb_error *err, const vdb_segment *s, const char *what)
{
	return vdb_err(err, VDB_ECORRUPT, "%s: %s", s->file, what);
}

static const vdb_section *find_sec(const vdb_segment *s, uint32_t kind)
{
	for (uint32_t i = 0; i < s->nsec; i++)
		if (s->sec[i].kind == kind)
			return &s->sec[i];
	return NULL;
}

static vdb_status map_sections(vdb_segment *s, vdb_error *err)
{
	uint64_t rows = s->rows, dim = s->dim;
	struct {
		uint32_t kind;
		uint64_t want; /* exact length, or UINT64_MAX for variable */
	} need[] = {{VDB_SEC_VECTORS, rows * dim * 4}, {VDB_SEC_IDS, rows * 16},
		    {VDB_SEC_ID_STRINGS, UINT64_MAX},  {VDB_SEC_ID_INDEX, rows * 16},
		    {VDB_SEC_PAYLOAD_OFFSETS, (rows + 1) * 8}, {VDB_SEC_PAYLOADS, UINT64_MAX}};
	const void *ptr[6];
	for (int i = 0; i < 6; i++) {
		const vdb_section *sec = find_sec(s, need[i].kind);
		if (!sec)
			return corrupt(err, s, "a section is missing");
		if (sec->off % VDB_SEG_ALIGN || sec->off > s->size || sec->len > s->size - sec->off)
			return corrupt(err, s, "a section lies outside the file");
		if (need[i].want != UINT64_MAX && sec->len != need[i].want)
			return corrupt(err, s, "a section has the wrong size");
		ptr[i] = s->map + sec->off;
	}
	s->vectors = ptr[0];
	s->ids = ptr[1];
	s->id_strings = ptr[2];
	s->id_strings_len = find_sec(s, VDB_SEC_ID_STRINGS)->len;
	s->id_index = ptr[3];
	s->payload_offsets = ptr[4];
	s->payloads = ptr[5];
	s->payloads_len = find_sec(s, VDB_SEC_PAYLOADS)->len;
	return VDB_OK;
}

vdb_status vdb_segment_open(const char *dir, uint64_t number, uint32_t dim, uint64_t rows,
			    uint64_t size, uint32_t header_crc, vdb_segment *s, vdb_error *err)
{
	memset(s, 0, sizeof *s);
	s->number = number;
	s->dim = dim;
	vdb_segment_name(s->file, sizeof s->file, number);
	char path[4096];
	if (vdb_path(path, sizeof path, dir, s->file))
		return vdb_err(err, VDB_EINVAL, "path too long: %s", dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return vdb_err_sys(err, VDB_OK, "open %s", s->file);
	struct stat st;
	if (fstat(fd, &st) < 0) {
		vdb_err_sys(err, VDB_EIO, "stat %s", s->file);
		close(fd);
		return VDB_EIO;
	}
	if ((uint64_t)st.st_size != size || size < VDB_SEG_HEADER_SIZE) {
		close(fd);
		return vdb_err(err, VDB_ECORRUPT, "%s: size is %lld bytes, the manifest says %" PRIu64,
			       s->file, (long long)st.st_size, size);
	}
	/* Header and table are read with pread, not through the mapping: touching a mapped
	 * page can map a whole large folio, and the writer would then hold a megabyte of
	 * every segment it merely opened. */
	unsigned char h[VDB_SEG_HEADER_SIZE + VDB_SEG_MAX_SECTIONS * VDB_SEG_SECTION_SIZE];
	size_t hlen = size < sizeof h ? (size_t)size : sizeof h;
	if (vdb_pread_full(fd, h, hlen, 0) != (ssize_t)hlen) {
		vdb_err_sys(err, VDB_EIO, "read %s", s->file);
		close(fd);
		return VDB_EIO;
	}
	void *map = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	close(fd); /* the mapping keeps the file alive even if a writer unlinks it */
	if (map == MAP_FAILED)
		return vdb_err_sys(err, VDB_EIO, "mmap %s", s->file);
	s->map = map;
	s->size = size;
	uint32_t nsec = vdb_le32(h + 20);
	if (memcmp(h, VDB_SEG_MAGIC, 8) != 0 || nsec > VDB_SEG_MAX_SECTIONS ||
	    VDB_SEG_HEADER_SIZE + (uint64_t)nsec * VDB_SEG_SECTION_SIZE > hlen)
		goto bad_header;
	uint32_t crc = vdb_crc32c(0, h, 124);
	crc = vdb_crc32c(crc, h + VDB_SEG_HEADER_SIZE, nsec * VDB_SEG_SECTION_SIZE);
	if (crc != vdb_le32(h + 124) || crc != header_crc)
		goto bad_header;
	if (vdb_le32(h + 8) != VDB_SEG_FORMAT) {
		vdb_err(err, VDB_ECORRUPT, "%s: segment format %u is not supported (this vdb reads %u)",
			s->file, vdb_le32(h + 8), VDB_SEG_FORMAT);
		goto fail;
	}
	if (vdb_le32(h + 16) != dim || vdb_le64(h + 24) != rows || vdb_le64(h + 32) != number ||
	    vdb_le64(h + 40) != size)
		goto bad_header;
	s->header_crc = crc;
	s->rows = rows;
	s->nsec = nsec;
	for (uint32_t i = 0; i < nsec; i++) {
		const unsigned char *t = h + VDB_SEG_HEADER_SIZE + i * VDB_SEG_SECTION_SIZE;
		s->sec[i] = (vdb_section){vdb_le32(t), vdb_le64(t + 8), vdb_le64(t + 16),
					  vdb_le32(t + 24)};
	}
	if (map_sections(s, err))
		goto fail;
	return VDB_OK;
bad_header:
	vdb_err(err, VDB_ECORRUPT, "%s: segment header is damaged or does not match the manifest",
		s->file);
fail:
	munmap(map, size);
	s->map = NULL;
	return VDB_ECORRUPT;
}

void vdb_segment_close(vdb_segment *s)
{
	if (!s)
		return;
	if (s->map)
		munmap((void *)s->map, s->size);
	free(s->dead);
	s->map = NULL;
	s->dead = NULL;
}

vdb_status vdb_segment_verify(const vdb_segment *s, vdb_error *err)
{
	for (uint32_t i = 0; i < s->nsec; i++)
		if (vdb_crc32c(0, s->map + s->sec[i].off, s->sec[i].len) != s->sec[i].crc)
			return vdb_err(err, VDB_ECORRUPT,
				       "%s: checksum mismatch in section %u (offset %" PRIu64 ")",
				       s->file, s->sec[i].kind, s->sec[i].off);
	return VDB_OK;
}

int vdb_segment_mark_dead(vdb_segment *s, uint64_t row)
{
	if (!s->dead) {
		s->dead = calloc((s->rows + 63) / 64, sizeof *s->dead);
		if (!s->dead)
			return -1;
	}
	if (!(s->dead[row >> 6] >> (row & 63) & 1)) {
		s->dead[row >> 6] |= 1ull << (row & 63);
		s->ndead++;
	}
	return 0;
}

vdb_status vdb_segment_id(const vdb_segment *s, uint64_t row, vdb_id *out, vdb_error *err)
{
	const unsigned char *rec = s->ids + row * 16;
	uint64_t v = vdb_le64(rec);
	uint32_t len = vdb_le32(rec + 8), kind = vdb_le32(rec + 12);
	if (kind == 0) {
		*out = (vdb_id){0, v, NULL, 0};
		return VDB_OK;
	}
	if (kind != 1 || len == 0 || len > VDB_ID_MAX_BYTES || v > s->id_strings_len ||
	    len > s->id_strings_len - v)
		return corrupt(err, s, "damaged id table");
	*out = (vdb_id){1, 0, s->id_strings + v, len};
	return VDB_OK;
}

vdb_status vdb_segment_payload(const vdb_segment *s, uint64_t row, const char **p, size_t *len,
			       vdb_error *err)
{
	uint64_t a = vdb_le64(s->payload_offsets + row * 8);
	uint64_t b = vdb_le64(s->payload_offsets + (row + 1) * 8);
	if (a > b || b > s->payloads_len)
		return corrupt(err, s, "damaged payload table");
	*p = b > a ? s->payloads + a : NULL;
	*len = (size_t)(b - a);
	return VDB_OK;
}

vdb_status vdb_segment_find(const vdb_segment *s, const vdb_id *id, uint64_t hash, int64_t *row,
			    vdb_error *err)
{
	uint64_t lo = 0, hi = s->rows;
	while (lo < hi) { /* first entry with entry.hash >= hash */
		uint64_t mid = lo + (hi - lo) / 2;
		if (vdb_le64(s->id_index + mid * 16) < hash)
			lo = mid + 1;
		else
			hi = mid;
	}
	*row = -1;
	for (; lo < s->rows && vdb_le64(s->id_index + lo * 16) == hash; lo++) {
		uint64_t r = vdb_le64(s->id_index + lo * 16 + 8);
		if (r >= s->rows)
			return corrupt(err, s, "damaged id index");
		vdb_id other;
		vdb_status st = vdb_segment_id(s, r, &other, err);
		if (st)
			return st;
		if (vdb_id_equal(id, &other)) {
			*row = (int64_t)r;
			return VDB_OK;
		}
	}
	return VDB_OK;
}

/* ---- deletion files ---- */

vdb_status vdb_del_write(const char *dir, const char *name, uint64_t segment, uint64_t rows,
			 const uint64_t *bitmap, uint64_t count, vdb_error *err)
{
	size_t words = (size_t)((rows + 63) / 64);
	size_t len = VDB_DEL_HEADER_SIZE + words * 8 + 4;
	unsigned char *b = calloc(1, len);
	if (!b)
		return vdb_err_nomem(err);
	memcpy(b, VDB_DEL_MAGIC, 8);
	vdb_put32(b + 8, VDB_DEL_FORMAT);
	vdb_put64(b + 16, segment);
	vdb_put64(b + 24, rows);
	vdb_put64(b + 32, count);
	memcpy(b + VDB_DEL_HEADER_SIZE, bitmap, words * 8);
	vdb_put32(b + len - 4, vdb_crc32c(0, b, len - 4));
	vdb_status st = vdb_atomic_write(dir, name, b, len, err);
	free(b);
	return st;
}

vdb_status vdb_del_read(const char *dir, const char *name, uint64_t segment, uint64_t rows,
			uint64_t **bitmap, uint64_t *count, vdb_error *err)
{
	char path[4096], *data;
	size_t len, words = (size_t)((rows + 63) / 64);
	if (vdb_path(path, sizeof path, dir, name))
		return vdb_err(err, VDB_EINVAL, "path too long: %s", dir);
	vdb_status st = vdb_read_file(path, VDB_DEL_HEADER_SIZE + words * 8 + 4, &data, &len, err);
	if (st) {
		if (st == VDB_ENOENT)
			vdb_err_sys(err, VDB_ENOENT, "open %s", name);
		return st;
	}
	if (len != VDB_DEL_HEADER_SIZE + words * 8 + 4 || memcmp(data, VDB_DEL_MAGIC, 8) != 0 ||
	    vdb_le32(data + len - 4) != vdb_crc32c(0, data, len - 4) ||
	    vdb_le64(data + 16) != segment || vdb_le64(data + 24) != rows) {
		free(data);
		return vdb_err(err, VDB_ECORRUPT, "%s: deletion file is damaged or does not match",
			       name);
	}
	uint64_t *bm = malloc(words ? words * 8 : 8);
	if (!bm) {
		free(data);
		return vdb_err_nomem(err);
	}
	memcpy(bm, data + VDB_DEL_HEADER_SIZE, words * 8);
	uint64_t n = 0;
	for (size_t i = 0; i < words; i++)
		n += (uint64_t)__builtin_popcountll(bm[i]);
	if (n != vdb_le64(data + 32) || (rows % 64 && bm[words - 1] >> (rows % 64))) {
		free(bm);
		free(data);
		return vdb_err(err, VDB_ECORRUPT, "%s: deletion count does not match its bitmap", name);
	}
	free(data);
	*bitmap = bm;
	*count = n;
	return VDB_OK;
}
