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
#include <math.h>
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

/* ---- row sources ---- */

static void mem_rewind(void *ctx)
{
	((vdb_mem_rows *)ctx)->i = 0;
}

static int mem_next(void *ctx, vdb_record *rec, uint64_t *hash, vdb_error *err)
{
	(void)err;
	vdb_mem_rows *m = ctx;
	while (m->i < m->mt->n) {
		const vdb_mem_entry *e = &m->mt->entries[m->i++];
		if (e->deleted)
			continue;
		vdb_memtable_entry_record(m->mt, e, rec);
		*hash = e->hash;
		return 1;
	}
	return 0;
}

void vdb_mem_rows_init(vdb_row_source *src, vdb_mem_rows *ctx, const vdb_memtable *mt)
{
	ctx->mt = mt;
	ctx->i = 0;
	*src = (vdb_row_source){.rows = mt->live, .ctx = ctx, .rewind = mem_rewind, .next = mem_next};
}

static void block_rewind(void *ctx)
{
	((vdb_block_rows *)ctx)->i = 0;
}

static int block_next(void *ctx, vdb_record *rec, uint64_t *hash, vdb_error *err)
{
	(void)err;
	vdb_block_rows *b = ctx;
	if (b->i == b->n)
		return 0;
	*rec = (vdb_record){{0, b->first + b->i, NULL, 0}, b->vectors + b->i * b->stride, NULL, 0};
	*hash = vdb_id_hash(&rec->id);
	b->i++;
	return 1;
}

void vdb_block_rows_init(vdb_row_source *src, vdb_block_rows *ctx, const float *vectors,
			 size_t stride, uint64_t first, uint64_t n)
{
	*ctx = (vdb_block_rows){vectors, stride, first, n, 0};
	*src = (vdb_row_source){.rows = n, .ctx = ctx, .rewind = block_rewind, .next = block_next};
}

static void seg_rewind(void *ctx)
{
	vdb_seg_rows *r = ctx;
	r->g = 0;
	r->row = 0;
}

static int seg_next(void *ctx, vdb_record *rec, uint64_t *hash, vdb_error *err)
{
	vdb_seg_rows *r = ctx;
	while (r->g < r->nseg) {
		const vdb_segment *g = &r->segs[r->g];
		while (r->row < g->rows) {
			uint64_t row = r->row++;
			if (row % VDB_RELEASE_EVERY == VDB_RELEASE_EVERY - 1)
				vdb_segment_release(g);
			if (vdb_segment_is_dead(g, row))
				continue;
			if (vdb_segment_id(g, row, &rec->id, err) ||
			    vdb_segment_payload(g, row, &rec->payload, &rec->payload_len, err))
				return -1;
			rec->vector = g->vectors + row * r->dim;
			*hash = vdb_id_hash(&rec->id);
			return 1;
		}
		vdb_segment_release(g);
		r->g++;
		r->row = 0;
	}
	return 0;
}

void vdb_seg_rows_init(vdb_row_source *src, vdb_seg_rows *ctx, const vdb_segment *segs,
		       size_t nseg, uint32_t dim)
{
	*ctx = (vdb_seg_rows){segs, nseg, 0, 0, dim, NULL};
	uint64_t rows = 0;
	for (size_t i = 0; i < nseg; i++)
		rows += segs[i].rows - segs[i].ndead;
	*src = (vdb_row_source){.rows = rows, .ctx = ctx, .rewind = seg_rewind, .next = seg_next};
}

int vdb_seg_rows_reuse_graph(vdb_row_source *src, vdb_seg_rows *ctx)
{
	const vdb_segment *best = NULL;
	uint64_t first = 0, best_first = 0; /* output row of each segment's first live row */
	for (size_t i = 0; i < ctx->nseg; i++) {
		const vdb_segment *g = &ctx->segs[i];
		uint64_t live = g->rows - g->ndead;
		if (g->has_graph && g->ndead <= g->rows / 4 && live > 0 &&
		    (!best || live > best->rows - best->ndead)) {
			best = g;
			best_first = first;
		}
		first += live;
	}
	if (!best || src->rows > VDB_HNSW_NO_ROW)
		return 0;
	uint32_t *map = malloc(best->rows * sizeof *map);
	if (!map)
		return -1;
	uint64_t out = best_first;
	for (uint64_t r = 0; r < best->rows; r++)
		map[r] = vdb_segment_is_dead(best, r) ? VDB_HNSW_NO_ROW : (uint32_t)out++;
	free(ctx->reuse_map);
	ctx->reuse_map = map;
	src->reuse_graph = &best->graph;
	src->reuse_map = map;
	return 0;
}

void vdb_seg_rows_free(vdb_seg_rows *ctx)
{
	free(ctx->reuse_map);
	ctx->reuse_map = NULL;
}

/* ---- writing ---- */

typedef struct seg_out {
	int fd;
	const char *path;
	uint64_t off;
	uint64_t written, started; /* bytes written to fd, and handed to writeback */
	uint32_t crc;
	vdb_buf buf;
	/* buf's bytes from here on belong to the current section and are not in crc yet: the
	 * CRC is taken over large runs (rows come a few KiB at a time; the CRC is three times
	 * as fast over runs of 24 KiB or more, see crc32c.c). */
	size_t crc_from;
	vdb_error *err;
	vdb_section sec[VDB_SEG_MAX_SECTIONS];
	uint32_t nsec;
} seg_out;

static int out_write(seg_out *o, const void *p, size_t n)
{
	if (vdb_write_all(o->fd, p, n) < 0) {
		vdb_err_sys(o->err, VDB_EIO, "write %s", o->path);
		return -1;
	}
	o->written += n;
	/* The disk starts on the rows while the rest of the segment is produced. */
	vdb_start_writeback(o->fd, &o->started, o->written);
	return 0;
}

/* Takes the section's buffered bytes into its CRC. */
static void crc_catch_up(seg_out *o)
{
	if (o->buf.len > o->crc_from)
		o->crc = vdb_crc32c(o->crc, o->buf.data + o->crc_from, o->buf.len - o->crc_from);
	o->crc_from = o->buf.len;
}

static int out_flush(seg_out *o)
{
	crc_catch_up(o);
	if (o->buf.len && out_write(o, o->buf.data, o->buf.len))
		return -1;
	o->buf.len = o->crc_from = 0;
	return 0;
}

static int out_put(seg_out *o, const void *p, size_t n)
{
	o->off += n;
	if (o->buf.len + n > (1u << 20) && out_flush(o))
		return -1;
	if (n > (1u << 20)) {
		o->crc = vdb_crc32c(o->crc, p, n);
		return out_write(o, p, n);
	}
	if (vdb_buf_append(&o->buf, p, n)) {
		vdb_err_nomem(o->err);
		return -1;
	}
	return 0;
}

/* Starts a section on the next 64-byte boundary. */
static int sec_begin(seg_out *o, uint32_t kind)
{
	static const char zeros[VDB_SEG_ALIGN];
	size_t pad = (size_t)((VDB_SEG_ALIGN - o->off % VDB_SEG_ALIGN) % VDB_SEG_ALIGN);
	if (o->buf.len + pad > (1u << 20) && out_flush(o))
		return -1;
	o->off += pad;
	if (vdb_buf_append(&o->buf, zeros, pad)) {
		vdb_err_nomem(o->err);
		return -1;
	}
	o->sec[o->nsec] = (vdb_section){kind, o->off, 0, 0};
	o->crc = 0;
	o->crc_from = o->buf.len; /* the padding is in no section */
	return 0;
}

static void sec_end(seg_out *o)
{
	vdb_section *s = &o->sec[o->nsec++];
	crc_catch_up(o);
	s->len = o->off - s->off;
	s->crc = o->crc;
}

static int put_section(seg_out *o, uint32_t kind, const void *p, size_t n)
{
	if (sec_begin(o, kind) || out_put(o, p, n))
		return -1;
	sec_end(o);
	return 0;
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

/* Sorts the id index by (hash, row). The entries come in row order, so a stable sort by
 * hash is enough: an LSD radix sort, a byte per pass (passes where every hash has the same
 * byte are skipped), several times faster than qsort on the random hashes. Falls back to
 * qsort when the scratch array cannot be had. */
static void idx_sort(idx_entry *idx, uint64_t n)
{
	idx_entry *tmp = n > 64 ? malloc(n * sizeof *tmp) : NULL;
	if (!tmp) {
		qsort(idx, n, sizeof *idx, idx_cmp);
		return;
	}
	static const unsigned bytes = 8;
	uint64_t (*count)[256] = calloc(bytes, sizeof *count);
	if (!count) {
		free(tmp);
		qsort(idx, n, sizeof *idx, idx_cmp);
		return;
	}
	for (uint64_t i = 0; i < n; i++)
		for (unsigned b = 0; b < bytes; b++)
			count[b][idx[i].hash >> (8 * b) & 0xff]++;
	idx_entry *from = idx, *to = tmp;
	for (unsigned b = 0; b < bytes; b++) {
		if (count[b][idx[0].hash >> (8 * b) & 0xff] == n)
			continue; /* one value of this byte: the order stays */
		uint64_t pos = 0;
		for (unsigned v = 0; v < 256; v++) {
			uint64_t c = count[b][v];
			count[b][v] = pos;
			pos += c;
		}
		for (uint64_t i = 0; i < n; i++)
			to[count[b][from[i].hash >> (8 * b) & 0xff]++] = from[i];
		idx_entry *t = from;
		from = to;
		to = t;
	}
	if (from != idx)
		memcpy(idx, from, n * sizeof *idx);
	free(count);
	free(tmp);
}

#define FOR_EACH_ROW(o, src, rec, hash, ...)                                                  \
	do {                                                                                  \
		(src)->rewind((src)->ctx);                                                    \
		int rc_;                                                                      \
		while ((rc_ = (src)->next((src)->ctx, &(rec), &(hash), (o)->err)) == 1) {     \
			__VA_ARGS__                                                           \
		}                                                                             \
		if (rc_ < 0)                                                                  \
			return -1;                                                            \
	} while (0)

/* Vectors first (the graph is built from them, read back through a mapping), then ids,
 * the id index, payloads and norms. */
static int write_rows(seg_out *o, const vdb_row_source *src, uint32_t dim, float *norms,
		      idx_entry *idx)
{
	vdb_record rec;
	uint64_t hash, r = 0;
	size_t vbytes = (size_t)dim * sizeof(float);
	if (sec_begin(o, VDB_SEC_VECTORS))
		return -1;
	FOR_EACH_ROW(o, src, rec, hash, {
		if (r >= src->rows)
			break;
		if (out_put(o, rec.vector, vbytes))
			return -1;
		if (norms) { /* cosine only */
			double nn = 0;
			for (uint32_t i = 0; i < dim; i++)
				nn += (double)rec.vector[i] * rec.vector[i];
			norms[r] = (float)sqrt(nn);
		}
		idx[r] = (idx_entry){hash, r};
		r++;
	});
	if (r != src->rows) {
		vdb_err(o->err, VDB_EINTERNAL, "row source gave %llu rows, expected %llu",
			(unsigned long long)r, (unsigned long long)src->rows);
		return -1;
	}
	sec_end(o);

	uint64_t soff = 0;
	if (sec_begin(o, VDB_SEC_IDS))
		return -1;
	FOR_EACH_ROW(o, src, rec, hash, {
		unsigned char b[16];
		vdb_put64(b, rec.id.is_string ? soff : rec.id.num);
		vdb_put32(b + 8, rec.id.is_string ? (uint32_t)rec.id.len : 0);
		vdb_put32(b + 12, (uint32_t)rec.id.is_string);
		soff += rec.id.is_string ? rec.id.len : 0;
		if (out_put(o, b, sizeof b))
			return -1;
	});
	sec_end(o);
	if (sec_begin(o, VDB_SEC_ID_STRINGS))
		return -1;
	FOR_EACH_ROW(o, src, rec, hash, {
		if (rec.id.is_string && out_put(o, rec.id.str, rec.id.len))
			return -1;
	});
	sec_end(o);

	idx_sort(idx, src->rows);
	if (sec_begin(o, VDB_SEC_ID_INDEX))
		return -1;
	for (uint64_t i = 0; i < src->rows; i++) {
		unsigned char b[16];
		vdb_put64(b, idx[i].hash);
		vdb_put64(b + 8, idx[i].row);
		if (out_put(o, b, sizeof b))
			return -1;
	}
	sec_end(o);

	uint64_t poff = 0;
	unsigned char b8[8] = {0};
	if (sec_begin(o, VDB_SEC_PAYLOAD_OFFSETS) || out_put(o, b8, 8))
		return -1;
	FOR_EACH_ROW(o, src, rec, hash, {
		poff += rec.payload ? rec.payload_len : 0;
		vdb_put64(b8, poff);
		if (out_put(o, b8, 8))
			return -1;
	});
	sec_end(o);
	if (sec_begin(o, VDB_SEC_PAYLOADS))
		return -1;
	FOR_EACH_ROW(o, src, rec, hash, {
		if (rec.payload && out_put(o, rec.payload, rec.payload_len))
			return -1;
	});
	sec_end(o);
	return 0;
}

/* One payload index section, from another pass over the rows' payloads. */
static int write_payload_index(seg_out *o, const vdb_row_source *src, const vdb_index_field *f)
{
	vdb_record rec;
	uint64_t hash, r = 0;
	vdb_pindex_builder b = {.field = f};
	vdb_buf sec = VDB_BUF_INIT;
	int rc = -1;
	src->rewind(src->ctx);
	int more;
	while ((more = src->next(src->ctx, &rec, &hash, o->err)) == 1)
		if (vdb_pindex_add(&b, r++, rec.payload, rec.payload_len, o->err))
			goto out;
	if (more < 0 || vdb_pindex_finish(&b, &sec, o->err))
		goto out;
	rc = put_section(o, VDB_SEC_PAYLOAD_INDEX, sec.data, sec.len);
out:
	vdb_pindex_builder_free(&b);
	vdb_buf_free(&sec);
	return rc;
}

/* Builds the graph from the vectors just written (mapped back from the temp file) and
 * appends its four sections. */
static int write_graph(seg_out *o, const vdb_collection_config *cfg, const vdb_row_source *src,
		       const float *norms, uint64_t seed)
{
	if (out_flush(o))
		return -1;
	const vdb_section *v = &o->sec[0];
	size_t maplen = (size_t)(v->off + v->len);
	void *map = mmap(NULL, maplen, PROT_READ, MAP_SHARED, o->fd, 0);
	if (map == MAP_FAILED) {
		vdb_err_sys(o->err, VDB_EIO, "mmap %s", o->path);
		return -1;
	}
	vdb_hnsw_space sp = {cfg->metric, cfg->dim, (const float *)((const char *)map + v->off),
			     cfg->metric == VDB_METRIC_COSINE ? norms : NULL, NULL};
	uint64_t rows = src->rows;
	vdb_hnsw_build_params p = {.m = cfg->m,
				   .ef_construction = cfg->ef_construction,
				   .threads = src->threads,
				   .seed = seed,
				   .progress = src->progress,
				   .progress_ctx = src->progress_ctx,
				   .reuse = src->reuse_graph,
				   .reuse_map = src->reuse_map};
	vdb_buf meta = VDB_BUF_INIT, l0 = VDB_BUF_INIT, nodes = VDB_BUF_INIT, upper = VDB_BUF_INIT;
	int rc = vdb_hnsw_build(&sp, rows, &p, &meta, &l0, &nodes, &upper, o->err) ? -1 : 0;
	munmap(map, maplen);
	rc = rc || put_section(o, VDB_SEC_HNSW_META, meta.data, meta.len) ||
	     put_section(o, VDB_SEC_HNSW_L0, l0.data, l0.len) ||
	     put_section(o, VDB_SEC_HNSW_NODES, nodes.data, nodes.len) ||
	     put_section(o, VDB_SEC_HNSW_UPPER, upper.data, upper.len) ? -1 : 0;
	vdb_buf_free(&meta);
	vdb_buf_free(&l0);
	vdb_buf_free(&nodes);
	vdb_buf_free(&upper);
	return rc;
}

/* Rows of a segment the codes are learned from, at most, spread evenly over it. */
#define CODES_SAMPLE_ROWS 8192
#define CODES_SAMPLE_BYTES (32u << 20)

/* The codes section: a pass over the rows for a sample to learn from, one to encode. */
static int write_codes(seg_out *o, const vdb_collection_config *cfg, const vdb_row_source *src)
{
	uint32_t dim = cfg->dim, stride = vdb_codes_stride(cfg->quantize, cfg->metric, dim);
	uint64_t rows = src->rows, cap = CODES_SAMPLE_BYTES / ((uint64_t)dim * sizeof(float));
	size_t n = (size_t)(rows < CODES_SAMPLE_ROWS ? rows : CODES_SAMPLE_ROWS);
	if (n > cap)
		n = cap ? (size_t)cap : 1;
	uint64_t every = (rows + n - 1) / n;
	float *sample = malloc((size_t)n * dim * sizeof *sample);
	unsigned char *code = malloc(stride);
	vdb_buf head = VDB_BUF_INIT;
	vdb_codes_encoder enc = {0};
	vdb_record rec;
	uint64_t hash, r = 0;
	size_t got = 0;
	int more, rc = -1;
	if (!sample || !code) {
		vdb_err_nomem(o->err);
		goto out;
	}
	src->rewind(src->ctx);
	while ((more = src->next(src->ctx, &rec, &hash, o->err)) == 1)
		if (r++ % every == 0 && got < n)
			memcpy(sample + (size_t)got++ * dim, rec.vector, (size_t)dim * sizeof(float));
	if (more < 0 || vdb_codes_train(cfg->quantize, cfg->metric, dim, rows, sample, got, &head,
					o->err) ||
	    sec_begin(o, VDB_SEC_CODES) || out_put(o, head.data, head.len))
		goto out;
	const float *params = (const float *)(head.data + VDB_CODES_HEAD);
	if (vdb_codes_encoder_init(&enc, cfg->quantize, cfg->metric, dim, params, o->err))
		goto out;
	src->rewind(src->ctx);
	while ((more = src->next(src->ctx, &rec, &hash, o->err)) == 1) {
		vdb_codes_encode(&enc, rec.vector, code);
		if (out_put(o, code, stride))
			goto out;
	}
	if (more < 0)
		goto out;
	sec_end(o);
	rc = 0;
out:
	vdb_codes_encoder_free(&enc);
	free(sample);
	free(code);
	vdb_buf_free(&head);
	return rc;
}

static uint32_t header_encode(unsigned char *h, uint32_t dim, uint64_t rows, uint64_t number,
			      uint64_t size, const vdb_section *sec, uint32_t nsec)
{
	memset(h, 0, VDB_SEG_HEADER_SIZE + nsec * VDB_SEG_SECTION_SIZE);
	memcpy(h, VDB_SEG_MAGIC, 8);
	uint32_t version = 1; /* the oldest that can say it: older vdb read segments without codes */
	for (uint32_t i = 0; i < nsec; i++)
		if (sec[i].kind == VDB_SEC_CODES)
			version = 2;
	vdb_put32(h + 8, version);
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

static int write_all_sections(seg_out *o, const vdb_collection_config *cfg,
			      const vdb_row_source *src, uint64_t number)
{
	int cosine = cfg->metric == VDB_METRIC_COSINE;
	float *norms = cosine ? malloc(src->rows * sizeof *norms) : NULL;
	idx_entry *idx = malloc(src->rows * sizeof *idx);
	int rc = -1;
	if ((cosine && !norms) || !idx) {
		vdb_err_nomem(o->err);
		goto out;
	}
	if (write_rows(o, src, cfg->dim, norms, idx))
		goto out;
	if (cosine && put_section(o, VDB_SEC_NORMS, norms, src->rows * sizeof *norms))
		goto out;
	for (uint32_t i = 0; i < cfg->n_index_fields; i++)
		if (write_payload_index(o, src, &cfg->index_fields[i]))
			goto out;
	/* Codes and graph last and side by side: together they are what a graph search reads
	 * at random (the "hot set"). */
	if (cfg->quantize != VDB_QUANTIZE_NONE && write_codes(o, cfg, src))
		goto out;
	if (cfg->index == VDB_INDEX_HNSW && src->rows >= VDB_HNSW_MIN_ROWS && !src->no_graph &&
	    write_graph(o, cfg, src, norms, number))
		goto out;
	rc = out_flush(o);
out:
	free(norms);
	free(idx);
	return rc;
}

vdb_status vdb_segment_write(const char *dir, uint64_t number, const vdb_collection_config *cfg,
			     const vdb_row_source *src, uint64_t *size_out, uint32_t *crc_out,
			     vdb_error *err)
{
	char name[64], path[4096];
	vdb_segment_name(name, sizeof name, number);
	if (vdb_path(path, sizeof path, dir, name))
		return vdb_err(err, VDB_EINVAL, "path too long: %s", dir);
	if (src->rows == 0)
		return vdb_err(err, VDB_EINTERNAL, "a segment needs rows");
	vdb_tmpfile t;
	vdb_status st = vdb_tmpfile_create(&t, path, 0, err);
	if (st)
		return st;
	int fd = t.fd;
	const char *tmp = t.tmp;
	/* The table is reserved at its largest so sections can follow before it is known. */
	uint64_t first = VDB_SEG_HEADER_SIZE + VDB_SEG_MAX_SECTIONS * VDB_SEG_SECTION_SIZE;
	seg_out o = {.fd = fd, .path = tmp, .off = first, .written = first, .started = first,
		     .buf = VDB_BUF_INIT, .err = err};
	st = VDB_EIO;
	if (lseek(fd, (off_t)first, SEEK_SET) < 0) {
		vdb_err_sys(err, VDB_EIO, "seek %s", tmp);
		goto fail;
	}
	if (write_all_sections(&o, cfg, src, number)) {
		st = err ? err->code : VDB_EIO;
		goto fail;
	}
	unsigned char h[VDB_SEG_HEADER_SIZE + VDB_SEG_MAX_SECTIONS * VDB_SEG_SECTION_SIZE];
	uint32_t crc = header_encode(h, cfg->dim, src->rows, number, o.off, o.sec, o.nsec);
	size_t hlen = VDB_SEG_HEADER_SIZE + o.nsec * VDB_SEG_SECTION_SIZE;
	if (pwrite(fd, h, hlen, 0) != (ssize_t)hlen) {
		vdb_err_sys(err, VDB_EIO, "write %s", tmp);
		goto fail;
	}
	/* The segment must be durable before a manifest can name it; the writer syncs the
	 * directory once, before the manifest that names it. */
	vdb_buf_free(&o.buf);
	if ((st = vdb_tmpfile_commit(&t, VDB_TMP_NO_DIR_SYNC, err)))
		return st;
	*size_out = o.off;
	*crc_out = crc;
	return VDB_OK;
fail:
	vdb_buf_free(&o.buf);
	vdb_tmpfile_discard(&t);
	return st;
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

/* madvise(advice) for the pages of a section (a hint: errors are ignored, as on kernels
 * without transparent huge pages). */
static void advise_section(const vdb_segment *s, uint32_t kind, int advice)
{
	const vdb_section *sec = find_sec(s, kind);
	if (!sec || !sec->len)
		return;
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t start = (uintptr_t)(s->map + sec->off) & ~(page - 1);
	(void)madvise((void *)start, (uintptr_t)(s->map + sec->off + sec->len) - start, advice);
}

/* With VDB_SEG_OPEN_PRIMARY only the primary sections are required and mapped: the id
 * index, norms, payload indexes and graph are derived from them and may be damaged. */
static vdb_status map_sections(vdb_segment *s, int fd, unsigned flags, vdb_error *err)
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
		ptr[i] = NULL;
		if (need[i].kind == VDB_SEC_ID_INDEX && (flags & VDB_SEG_OPEN_PRIMARY))
			continue;
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
	for (uint32_t i = 0; i < s->nsec; i++) {
		const vdb_section *sec = &s->sec[i];
		if (sec->off % VDB_SEG_ALIGN || sec->off > s->size || sec->len > s->size - sec->off)
			return corrupt(err, s, "a section lies outside the file");
	}
	if (flags & VDB_SEG_OPEN_PRIMARY)
		return VDB_OK;
	const vdb_section *norms = find_sec(s, VDB_SEC_NORMS);
	if (norms) {
		if (norms->len != rows * 4)
			return corrupt(err, s, "the norms section has the wrong size");
		s->norms = (const float *)(s->map + norms->off);
	}
	/* Segments written before payload indexes existed simply have none. */
	for (uint32_t i = 0; i < s->nsec; i++) {
		const vdb_section *sec = &s->sec[i];
		if (sec->kind != VDB_SEC_PAYLOAD_INDEX)
			continue;
		if (s->npidx == VDB_INDEX_FIELDS_MAX)
			return corrupt(err, s, "too many payload indexes");
		/* pread, not the mapping: see vdb_segment_open. */
		unsigned char head[VDB_PINDEX_HEAD_MAX] = {0};
		size_t hl = sec->len < sizeof head ? (size_t)sec->len : sizeof head;
		if (vdb_pread_full(fd, head, hl, (off_t)sec->off) != (ssize_t)hl)
			return corrupt(err, s, "unreadable payload index");
		vdb_status st = vdb_pindex_open(head, s->map + sec->off, sec->len,
						&s->pidx[s->npidx++], s->file, err);
		if (st)
			return st;
	}
	const vdb_section *g[4] = {find_sec(s, VDB_SEC_HNSW_META), find_sec(s, VDB_SEC_HNSW_L0),
				   find_sec(s, VDB_SEC_HNSW_NODES), find_sec(s, VDB_SEC_HNSW_UPPER)};
	int ng = !!g[0] + !!g[1] + !!g[2] + !!g[3];
	if (ng != 0 && ng != 4)
		return corrupt(err, s, "graph sections are missing");
	if (ng == 4) {
		/* pread, not the mapping: see vdb_segment_open. */
		unsigned char meta[64];
		if (g[0]->len > sizeof meta ||
		    vdb_pread_full(fd, meta, g[0]->len, (off_t)g[0]->off) != (ssize_t)g[0]->len)
			return corrupt(err, s, "damaged graph header");
		vdb_status st = vdb_hnsw_open(meta, g[0]->len, s->map + g[1]->off,
					      g[1]->len, s->map + g[2]->off, g[2]->len,
					      s->map + g[3]->off, g[3]->len, rows, &s->graph, s->file,
					      err);
		if (st)
			return st;
		s->has_graph = 1;
	}
	const vdb_section *codes = find_sec(s, VDB_SEC_CODES);
	if (codes) {
		/* pread, not the mapping: see vdb_segment_open. */
		size_t hl = vdb_codes_head_max(s->dim);
		if (hl > codes->len)
			hl = (size_t)codes->len;
		unsigned char *head = malloc(hl ? hl : 1);
		if (!head)
			return vdb_err_nomem(err);
		vdb_status st = vdb_pread_full(fd, head, hl, (off_t)codes->off) != (ssize_t)hl
					? corrupt(err, s, "unreadable codes section")
					: vdb_codes_open(head, hl, s->map + codes->off, codes->len,
							 s->dim, rows, &s->codes, s->file, err);
		free(head);
		if (st)
			return st;
		s->has_codes = 1;
		/* Searches read the vectors only to rescore a few candidates: reading ahead of
		 * such a read would fill memory with vectors no search wants (and push out the
		 * codes and graph, which they all want). */
		advise_section(s, VDB_SEC_VECTORS, MADV_RANDOM);
	}
#ifdef MADV_HUGEPAGE
	if (s->has_graph) {
		/* What every graph search reads at random: the graph, and the codes or else the
		 * vectors (and norms). Mapped with huge pages where the kernel can (its page cache
		 * then reads them in 2 MiB folios, each mapped by one TLB entry): on 500,000 x 768
		 * this took 12% off the time of 8,000 in-memory queries on int8 codes, 11% on
		 * float32 vectors, and a process limited to 40% of the vectors' size answered
		 * 2,350-2,730 queries a second instead of 1,880-1,980 (its hot set was read in
		 * large pieces and no longer missed the TLB). */
		static const uint32_t hot[] = {VDB_SEC_HNSW_L0, VDB_SEC_HNSW_NODES, VDB_SEC_HNSW_UPPER};
		for (size_t i = 0; i < sizeof hot / sizeof *hot; i++)
			advise_section(s, hot[i], MADV_HUGEPAGE);
		advise_section(s, s->has_codes ? VDB_SEC_CODES : VDB_SEC_VECTORS, MADV_HUGEPAGE);
		if (!s->has_codes)
			advise_section(s, VDB_SEC_NORMS, MADV_HUGEPAGE);
	}
#endif
	return VDB_OK;
}

int vdb_segment_table(const unsigned char *h, size_t hlen, vdb_section *sec, uint32_t *nsec)
{
	if (hlen < VDB_SEG_HEADER_SIZE || memcmp(h, VDB_SEG_MAGIC, 8) != 0)
		return -1;
	uint32_t n = vdb_le32(h + 20);
	if (n > VDB_SEG_MAX_SECTIONS || VDB_SEG_HEADER_SIZE + (uint64_t)n * VDB_SEG_SECTION_SIZE > hlen)
		return -1;
	for (uint32_t i = 0; i < n; i++) {
		const unsigned char *t = h + VDB_SEG_HEADER_SIZE + i * VDB_SEG_SECTION_SIZE;
		sec[i] = (vdb_section){vdb_le32(t), vdb_le64(t + 8), vdb_le64(t + 16), vdb_le32(t + 24)};
	}
	*nsec = n;
	return 0;
}

vdb_status vdb_segment_open(const char *dir, uint64_t number, uint32_t dim, uint64_t rows,
			    uint64_t size, uint32_t header_crc, unsigned flags, vdb_segment *s,
			    vdb_error *err)
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
	if (map == MAP_FAILED) {
		vdb_err_sys(err, VDB_EIO, "mmap %s", s->file);
		close(fd);
		return VDB_EIO;
	}
	s->map = map;
	s->size = size;
	uint32_t nsec;
	if (vdb_segment_table(h, hlen, s->sec, &nsec))
		goto bad_header;
	uint32_t crc = vdb_crc32c(0, h, 124);
	crc = vdb_crc32c(crc, h + VDB_SEG_HEADER_SIZE, nsec * VDB_SEG_SECTION_SIZE);
	if (crc != vdb_le32(h + 124) || crc != header_crc)
		goto bad_header;
	if (vdb_le32(h + 8) < 1 || vdb_le32(h + 8) > VDB_SEG_FORMAT) {
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
	if (map_sections(s, fd, flags, err))
		goto fail;
	close(fd); /* the mapping keeps the file alive even if a writer unlinks it */
	return VDB_OK;
bad_header:
	vdb_err(err, VDB_ECORRUPT, "%s: segment header is damaged or does not match the manifest",
		s->file);
fail:
	close(fd);
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

void vdb_segment_release(const vdb_segment *s)
{
	if (s->map)
		madvise((void *)s->map, s->size, MADV_DONTNEED);
}

uint64_t vdb_segment_search_bytes(const vdb_segment *s)
{
	uint64_t n = 0;
	for (uint32_t i = 0; i < s->nsec; i++) {
		uint32_t k = s->sec[i].kind;
		int graph = k >= VDB_SEC_HNSW_META && k <= VDB_SEC_HNSW_UPPER;
		int exact = k == VDB_SEC_VECTORS || k == VDB_SEC_NORMS;
		if (s->has_graph ? graph || (s->has_codes ? k == VDB_SEC_CODES : exact) : exact)
			n += s->sec[i].len;
	}
	return n;
}

int vdb_section_is_derived(uint32_t kind)
{
	return kind == VDB_SEC_ID_INDEX || kind == VDB_SEC_NORMS || kind == VDB_SEC_HNSW_META ||
	       kind == VDB_SEC_HNSW_L0 || kind == VDB_SEC_HNSW_NODES ||
	       kind == VDB_SEC_HNSW_UPPER || kind == VDB_SEC_PAYLOAD_INDEX || kind == VDB_SEC_CODES;
}

static vdb_status section_mismatch(const vdb_segment *s, uint32_t i, vdb_error *err)
{
	return vdb_err(err, VDB_ECORRUPT, "%s: checksum mismatch in section %u (offset %" PRIu64 ")",
		       s->file, s->sec[i].kind, s->sec[i].off);
}

vdb_status vdb_segment_verify(const vdb_segment *s, vdb_error *err)
{
	for (uint32_t i = 0; i < s->nsec; i++)
		if (vdb_crc32c(0, s->map + s->sec[i].off, s->sec[i].len) != s->sec[i].crc)
			return section_mismatch(s, i, err);
	return VDB_OK;
}

/* CRC of len mapped bytes from off, dropping the pages read every 64 MiB. */
static uint32_t crc_released(const vdb_segment *s, uint32_t crc, uint64_t off, uint64_t len)
{
	const uint64_t step = 64u << 20;
	while (len) {
		uint64_t n = len < step - off % step ? len : step - off % step;
		crc = vdb_crc32c(crc, s->map + off, (size_t)n);
		off += n;
		len -= n;
		if (off % step == 0)
			vdb_segment_release(s);
	}
	return crc;
}

vdb_status vdb_segment_verify_file(const vdb_segment *s, uint32_t *file_crc, vdb_error *err)
{
	uint64_t pos = 0;
	for (uint32_t i = 0; i < s->nsec; i++)
		if (s->sec[i].off < pos || (pos = s->sec[i].off + s->sec[i].len) > s->size)
			pos = UINT64_MAX;
	if (pos == UINT64_MAX) { /* not as vdb lays sections out: two passes */
		vdb_status st = vdb_segment_verify(s, err);
		*file_crc = crc_released(s, 0, 0, s->size);
		vdb_segment_release(s);
		return st;
	}
	/* One pass: each section's CRC is checked, then combined into the file's. */
	uint32_t crc = 0;
	pos = 0;
	for (uint32_t i = 0; i < s->nsec; i++) {
		const vdb_section *sec = &s->sec[i];
		crc = crc_released(s, crc, pos, sec->off - pos);
		uint32_t c = crc_released(s, 0, sec->off, sec->len);
		if (c != sec->crc) {
			vdb_segment_release(s);
			return section_mismatch(s, i, err);
		}
		crc = vdb_crc32c_combine(crc, c, sec->len);
		pos = sec->off + sec->len;
	}
	*file_crc = crc_released(s, crc, pos, s->size - pos);
	vdb_segment_release(s);
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
	uint64_t from = 0;
	return vdb_segment_find_from(s, id, hash, &from, row, err);
}

vdb_status vdb_segment_find_from(const vdb_segment *s, const vdb_id *id, uint64_t hash,
				 uint64_t *from, int64_t *row, vdb_error *err)
{
	uint64_t lo = *from < s->rows ? *from : s->rows, hi = s->rows;
	/* Galloping from the previous position: lookups in ascending hash order then cost
	 * what a merge of the two sorted lists would, touching the index in order. */
	for (uint64_t step = 1; lo + step < hi; step *= 2) {
		if (vdb_le64(s->id_index + (lo + step - 1) * 16) >= hash) {
			hi = lo + step;
			break;
		}
		lo += step;
	}
	while (lo < hi) { /* first entry with entry.hash >= hash */
		uint64_t mid = lo + (hi - lo) / 2;
		if (vdb_le64(s->id_index + mid * 16) < hash)
			lo = mid + 1;
		else
			hi = mid;
	}
	*row = -1;
	*from = lo;
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
