/* Parquet's value encodings and page compression (parquet.h). The decoders read untrusted
 * bytes: every run, width and count is checked against what is left before it is used. */
#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "parquet.h"
#include "thrift.h"

const char *pq_codec_name(int codec)
{
	static const char *const names[] = {"UNCOMPRESSED", "SNAPPY", "GZIP", "LZO",
					    "BROTLI",       "LZ4",    "ZSTD", "LZ4_RAW"};
	return codec >= 0 && codec < (int)(sizeof names / sizeof *names) ? names[codec] : "unknown";
}

const char *pq_encoding_name(int e)
{
	static const char *const names[] = {"PLAIN", "GROUP_VAR_INT", "PLAIN_DICTIONARY", "RLE",
					    "BIT_PACKED", "DELTA_BINARY_PACKED",
					    "DELTA_LENGTH_BYTE_ARRAY", "DELTA_BYTE_ARRAY",
					    "RLE_DICTIONARY", "BYTE_STREAM_SPLIT"};
	return e >= 0 && e < (int)(sizeof names / sizeof *names) ? names[e] : "unknown";
}

const char *pq_type_name(int t)
{
	static const char *const names[] = {"BOOLEAN", "INT32",  "INT64",      "INT96",
					    "FLOAT",   "DOUBLE", "BYTE_ARRAY", "FIXED_LEN_BYTE_ARRAY"};
	return t >= 0 && t < (int)(sizeof names / sizeof *names) ? names[t] : "unknown";
}

/* Value i of a bit-packed run (LSB first) of `width` bits; the caller checked the bytes. */
static uint64_t unpack(const uint8_t *p, int width, uint64_t i)
{
	uint64_t bit = i * (uint64_t)width, v = 0;
	for (int got = 0; got < width;) {
		uint64_t byte = bit >> 3;
		int off = (int)(bit & 7), take = 8 - off < width - got ? 8 - off : width - got;
		v |= (uint64_t)((p[byte] >> off) & ((1u << take) - 1)) << got;
		got += take;
		bit += (uint64_t)take;
	}
	return v;
}

/* The hybrid decoder, into 32-bit values (o32) or bytes (o8). */
static int rle_decode(const uint8_t *p, size_t n, int bit_width, uint32_t count, uint32_t *o32,
		      uint8_t *o8)
{
	const uint8_t *end = p + n;
	uint32_t done = 0;
	if (bit_width < 0 || bit_width > (o8 ? 8 : 32))
		return -1;
	while (done < count) {
		uint64_t h;
		if (tc_get_uvarint(&p, end, &h))
			return -1;
		if (h & 1) { /* bit-packed: (h >> 1) groups of 8 */
			uint64_t values = (h >> 1) * 8;
			if ((h >> 1) > (uint64_t)(end - p) || (h >> 1) * (uint64_t)bit_width >
			    (uint64_t)(end - p))
				return -1;
			uint64_t take = values < count - done ? values : count - done;
			for (uint64_t i = 0; i < take; i++) {
				uint32_t v = bit_width == 8 ? p[i]
					     : bit_width == 1 ? (uint32_t)(p[i >> 3] >> (i & 7)) & 1
							      : (uint32_t)unpack(p, bit_width, i);
				if (o8)
					o8[done + i] = (uint8_t)v;
				else
					o32[done + i] = v;
			}
			p += (h >> 1) * (uint64_t)bit_width;
			done += (uint32_t)take;
		} else { /* a run of one value */
			uint64_t len = h >> 1;
			int bytes = (bit_width + 7) / 8;
			if (end - p < bytes)
				return -1;
			uint32_t v = 0;
			for (int i = 0; i < bytes; i++)
				v |= (uint32_t)p[i] << (8 * i);
			p += bytes;
			if (bit_width < 32 && v >> bit_width)
				return -1;
			uint64_t take = len < count - done ? len : count - done;
			if (o8)
				memset(o8 + done, (int)v, (size_t)take);
			else
				for (uint64_t i = 0; i < take; i++)
					o32[done + i] = v;
			done += (uint32_t)take;
		}
	}
	return 0;
}

int pq_rle_decode(const uint8_t *p, size_t n, int bit_width, uint32_t count, uint32_t *out)
{
	return rle_decode(p, n, bit_width, count, out, NULL);
}

int pq_rle_decode_levels(const uint8_t *p, size_t n, int bit_width, uint32_t count, uint8_t *out)
{
	return rle_decode(p, n, bit_width, count, NULL, out);
}

/* Runs of a repeated value become RLE runs; the rest goes bit-packed in groups of 8 (what
 * keeps a column of alternating levels small). */
int pq_rle_encode(vdb_buf *b, const uint32_t *v, size_t count, int bit_width)
{
	int bytes = (bit_width + 7) / 8;
	size_t i = 0;
	while (i < count) {
		size_t run = 1;
		while (i + run < count && v[i + run] == v[i])
			run++;
		if (run >= 8 || i + run == count) {
			if (tc_put_uvarint(b, (uint64_t)run << 1))
				return -1;
			for (int k = 0; k < bytes; k++)
				if (vdb_buf_putc(b, (char)(v[i] >> (8 * k))))
					return -1;
			i += run;
			continue;
		}
		/* Bit-pack groups of 8 until a long run starts (or the values end). */
		size_t start = i, groups = 0;
		while (i < count) {
			size_t r = 1;
			while (i + r < count && v[i + r] == v[i] && r < 8)
				r++;
			if (r >= 8 && groups)
				break;
			i = i + 8 < count ? i + 8 : count;
			groups++;
			if (groups == 63) /* keeps the header one byte */
				break;
		}
		if (tc_put_uvarint(b, (uint64_t)groups << 1 | 1) || vdb_buf_reserve(b, groups * bit_width))
			return -1;
		uint8_t *out = (uint8_t *)b->data + b->len;
		memset(out, 0, groups * (size_t)bit_width);
		for (size_t k = 0; k < groups * 8; k++) {
			uint64_t x = start + k < count ? v[start + k] : 0;
			uint64_t bit = k * (uint64_t)bit_width;
			for (int w = 0; w < bit_width; w++, bit++)
				if (x >> w & 1)
					out[bit >> 3] |= (uint8_t)(1u << (bit & 7));
		}
		b->len += groups * (size_t)bit_width;
	}
	return 0;
}

int pq_delta_decode(const uint8_t *p, size_t n, uint32_t count, int64_t *out, size_t *used)
{
	const uint8_t *start = p, *end = p + n;
	uint64_t block, minis, total, first;
	if (tc_get_uvarint(&p, end, &block) || tc_get_uvarint(&p, end, &minis) ||
	    tc_get_uvarint(&p, end, &total) || tc_get_uvarint(&p, end, &first))
		return -1;
	if (!block || block % 128 || !minis || block % minis || (block / minis) % 32 ||
	    block > (1u << 20) || total != count)
		return -1;
	uint64_t per_mini = block / minis, value = (first >> 1) ^ -(first & 1);
	uint64_t done = 0;
	if (count)
		out[done++] = (int64_t)value;
	while (done < total) {
		uint64_t zz;
		if (tc_get_uvarint(&p, end, &zz) || (uint64_t)(end - p) < minis)
			return -1;
		uint64_t min_delta = (zz >> 1) ^ -(zz & 1);
		const uint8_t *widths = p;
		p += minis;
		for (uint64_t m = 0; m < minis && done < total; m++) {
			int w = widths[m];
			if (w > 64 || (uint64_t)(end - p) < per_mini * (uint64_t)w / 8)
				return -1;
			for (uint64_t i = 0; i < per_mini && done < total; i++) {
				uint64_t d = w ? unpack(p, w, i) : 0;
				value += min_delta + d; /* wraps as the writer's arithmetic did */
				out[done++] = (int64_t)value;
			}
			p += per_mini * (uint64_t)w / 8;
		}
	}
	*used = (size_t)(p - start);
	return 0;
}

int pq_delta_lengths(const uint8_t *p, size_t len, uint32_t n, pq_slice *out, size_t *used)
{
	int64_t *lens = malloc(((size_t)n + 1) * sizeof *lens);
	size_t u;
	if (!lens || pq_delta_decode(p, len, n, lens, &u)) {
		free(lens);
		return -1;
	}
	size_t o = u;
	for (uint32_t i = 0; i < n; i++) {
		if (lens[i] < 0 || (uint64_t)lens[i] > len - o) {
			free(lens);
			return -1;
		}
		out[i] = (pq_slice){p + o, (size_t)lens[i]};
		o += (size_t)lens[i];
	}
	free(lens);
	*used = o;
	return 0;
}

int pq_delta_strings(const uint8_t *p, size_t len, uint32_t n, vdb_buf *built, pq_slice *out)
{
	int64_t *pre = malloc(((size_t)n + 1) * sizeof *pre);
	size_t *off = malloc(((size_t)n + 1) * sizeof *off);
	size_t u, u2, prev_off = 0, prev_len = 0;
	int rc = -1;
	if (!pre || !off || pq_delta_decode(p, len, n, pre, &u) ||
	    pq_delta_lengths(p + u, len - u, n, out, &u2))
		goto done;
	built->len = 0;
	for (uint32_t i = 0; i < n; i++) {
		if (pre[i] < 0 || (uint64_t)pre[i] > prev_len ||
		    vdb_buf_reserve(built, (size_t)pre[i] + out[i].n))
			goto done;
		off[i] = built->len;
		memmove(built->data + built->len, built->data + prev_off, (size_t)pre[i]);
		memcpy(built->data + built->len + pre[i], out[i].p, out[i].n);
		prev_off = off[i];
		prev_len = (size_t)pre[i] + out[i].n;
		built->len += prev_len;
		out[i].n = prev_len;
	}
	/* Pointers last: the buffer may have moved while it grew. */
	for (uint32_t i = 0; i < n; i++)
		out[i].p = (const uint8_t *)built->data + off[i];
	rc = 0;
done:
	free(pre);
	free(off);
	return rc;
}

/* ---- compression ---- */

/* A zstd frame holding n bytes as they are: raw blocks of at most 128 KiB (RFC 8878: a
 * single-segment frame with its 4-byte content size, no checksum). */
static int zstd_stored(const void *src, size_t n, vdb_buf *out)
{
	const size_t block = 128u << 10;
	if (n > UINT32_MAX || vdb_buf_reserve(out, 9 + n + 3 * (n / block + 1)))
		return -1;
	uint8_t *o = (uint8_t *)out->data + out->len;
	static const uint8_t head[5] = {0x28, 0xb5, 0x2f, 0xfd, 0xa0};
	memcpy(o, head, 5);
	for (int i = 0; i < 4; i++)
		o[5 + i] = (uint8_t)(n >> (8 * i));
	o += 9;
	size_t done = 0;
	do {
		size_t k = n - done < block ? n - done : block;
		uint32_t bh = (uint32_t)k << 3 | (done + k == n); /* type 0: raw */
		o[0] = (uint8_t)bh;
		o[1] = (uint8_t)(bh >> 8);
		o[2] = (uint8_t)(bh >> 16);
		memcpy(o + 3, (const uint8_t *)src + done, k);
		o += 3 + k;
		done += k;
	} while (done < n);
	out->len = (size_t)((char *)o - out->data);
	return 0;
}

int pq_compress(int codec, int store, void **zctx, const void *src, size_t n, vdb_buf *out)
{
	if (codec == PQ_UNCOMPRESSED)
		return vdb_buf_append(out, src, n);
	if (codec == PQ_SNAPPY) {
		size_t cap = snappy_max_compressed_length(n);
		if (vdb_buf_reserve(out, cap))
			return -1;
		if (snappy_compress(src, n, out->data + out->len, &cap) != SNAPPY_OK)
			return -1;
		out->len += cap;
		return 0;
	}
	if (codec == PQ_ZSTD) {
		if (store)
			return zstd_stored(src, n, out);
		size_t cap = ZSTD_compressBound(n);
		if (vdb_buf_reserve(out, cap) || (!*zctx && !(*zctx = ZSTD_createCCtx())))
			return -1;
		size_t r = ZSTD_compressCCtx(*zctx, out->data + out->len, cap, src, n, 1);
		if (ZSTD_isError(r))
			return -1;
		out->len += r;
		return 0;
	}
	return -1;
}

void pq_compress_free(void *zctx)
{
	ZSTD_freeCCtx(zctx);
}

/* An LZ4 block (no frame): literals and matches until the input ends. */
static int lz4_block(const uint8_t *p, size_t n, uint8_t *dst, size_t dn, size_t *made)
{
	const uint8_t *end = p + n;
	size_t o = 0;
	while (p < end) {
		uint8_t token = *p++;
		size_t lit = token >> 4;
		if (lit == 15)
			for (uint8_t c = 255; c == 255;) {
				if (p >= end)
					return -1;
				c = *p++;
				lit += c;
			}
		if (lit > (size_t)(end - p) || lit > dn - o)
			return -1;
		memcpy(dst + o, p, lit);
		p += lit;
		o += lit;
		if (p == end)
			break; /* the last sequence has literals only */
		if (end - p < 2)
			return -1;
		size_t off = (size_t)p[0] | (size_t)p[1] << 8;
		p += 2;
		size_t len = (token & 15) + 4u;
		if ((token & 15) == 15)
			for (uint8_t c = 255; c == 255;) {
				if (p >= end)
					return -1;
				c = *p++;
				len += c;
			}
		if (!off || off > o || len > dn - o)
			return -1;
		for (size_t i = 0; i < len; i++, o++) /* overlapping copies repeat bytes */
			dst[o] = dst[o - off];
	}
	*made = o;
	return 0;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The LZ4 codec as Hadoop writes it: blocks each prefixed with big-endian sizes. */
static int lz4_hadoop(const uint8_t *p, size_t n, uint8_t *dst, size_t dn)
{
	size_t o = 0;
	while (n) {
		if (n < 8)
			return -1;
		uint32_t raw = be32(p), comp = be32(p + 4);
		p += 8;
		n -= 8;
		size_t made;
		if (comp > n || raw > dn - o || lz4_block(p, comp, dst + o, raw, &made) || made != raw)
			return -1;
		p += comp;
		n -= comp;
		o += raw;
	}
	return o == dn ? 0 : -1;
}

int pq_decompress(int codec, const void *src, size_t n, void *dst, size_t dn, char *why,
		  size_t whylen)
{
	switch (codec) {
	case PQ_UNCOMPRESSED:
		if (n != dn)
			break;
		memcpy(dst, src, n);
		return 0;
	case PQ_SNAPPY: {
		size_t len;
		if (snappy_uncompressed_length(src, n, &len) != SNAPPY_OK || len != dn)
			break;
		if (snappy_uncompress(src, n, dst, &len) != SNAPPY_OK || len != dn)
			break;
		return 0;
	}
	case PQ_ZSTD: {
		size_t r = ZSTD_decompress(dst, dn, src, n);
		if (ZSTD_isError(r) || r != dn)
			break;
		return 0;
	}
	case PQ_GZIP: {
		z_stream z;
		memset(&z, 0, sizeof z);
		if (inflateInit2(&z, 15 + 32) != Z_OK) /* gzip or zlib header */
			break;
		z.next_in = (Bytef *)src;
		z.avail_in = (uInt)(n > UINT32_MAX ? UINT32_MAX : n);
		z.next_out = dst;
		z.avail_out = (uInt)(dn > UINT32_MAX ? UINT32_MAX : dn);
		int rc = inflate(&z, Z_FINISH);
		size_t out = z.total_out;
		inflateEnd(&z);
		if (rc != Z_STREAM_END || out != dn || n > UINT32_MAX || dn > UINT32_MAX)
			break;
		return 0;
	}
	case PQ_LZ4_RAW: {
		size_t made;
		if (lz4_block(src, n, dst, dn, &made) || made != dn)
			break;
		return 0;
	}
	case PQ_LZ4: {
		size_t made;
		if (!lz4_hadoop(src, n, dst, dn) || (!lz4_block(src, n, dst, dn, &made) && made == dn))
			return 0;
		break;
	}
	default:
		snprintf(why, whylen, "%s compression is not supported", pq_codec_name(codec));
		return -2;
	}
	snprintf(why, whylen, "a %s page does not decompress to its stated size",
		 pq_codec_name(codec));
	return -1;
}
