/* Unit tests of the Parquet building blocks: the Thrift compact protocol both ways (and on
 * hostile bytes), the RLE/bit-packed hybrid, DELTA_BINARY_PACKED (the format's own
 * examples), page compression and LZ4 blocks, page headers. Whole files are tested from the
 * command line against DuckDB (tests/cli/test_parquet.py). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "formats/parquet.h"
#include "formats/thrift.h"

Test(parquet, thrift_round_trip)
{
	vdb_buf b = VDB_BUF_INIT;
	tc_writer w;
	tc_writer_init(&w, &b);
	tc_struct_begin(&w);
	tc_field_i32(&w, 1, -7);
	tc_field_i64(&w, 2, -5000000000LL);
	tc_field_bool(&w, 3, 1);
	tc_field_string(&w, 4, "name");
	tc_field_list(&w, 20, TC_I32, 20); /* an id jump past 15, a long list */
	for (int i = 0; i < 20; i++)
		tc_elem_i32(&w, i * 1000);
	tc_field_struct(&w, 21);
	tc_field_byte(&w, 1, -3);
	tc_field_bool(&w, 2, 0);
	tc_struct_end(&w);
	tc_field_i32(&w, 22, 42);
	tc_struct_end(&w);
	cr_assert(!w.failed);

	tc_reader r;
	tc_reader_init(&r, b.data, b.len);
	int16_t last = 0, id;
	uint8_t t;
	int32_t v32;
	int64_t v64;
	int bv;
	cr_assert_eq(tc_struct_enter(&r), 0);
	cr_assert_eq(tc_next_field(&r, &last, &id, &t), 1);
	cr_assert_eq(id, 1);
	cr_assert_eq(tc_read_i32(&r, t, &v32), 0);
	cr_assert_eq(v32, -7);
	cr_assert_eq(tc_next_field(&r, &last, &id, &t), 1);
	cr_assert_eq(tc_read_i32(&r, t, &v32), -1, "an i64 is not read as an i32");
	tc_reader_init(&r, b.data, b.len);
	last = 0;
	tc_struct_enter(&r);
	tc_next_field(&r, &last, &id, &t);
	tc_read_i32(&r, t, &v32);
	tc_next_field(&r, &last, &id, &t);
	cr_assert_eq(tc_read_i64(&r, t, &v64), 0);
	cr_assert_eq(v64, -5000000000LL);
	cr_assert_eq(tc_next_field(&r, &last, &id, &t), 1);
	cr_assert_eq(tc_read_bool(&r, t, &bv), 0);
	cr_assert_eq(bv, 1);
	const uint8_t *p;
	uint32_t n;
	cr_assert_eq(tc_next_field(&r, &last, &id, &t), 1);
	cr_assert_eq(tc_read_binary(&r, t, &p, &n), 0);
	cr_assert_eq(n, 4);
	cr_assert(!memcmp(p, "name", 4));
	cr_assert_eq(tc_next_field(&r, &last, &id, &t), 1);
	cr_assert_eq(id, 20);
	uint8_t et;
	cr_assert_eq(tc_read_list(&r, t, &et, &n), 0);
	cr_assert_eq(n, 20);
	for (uint32_t i = 0; i < n; i++) {
		cr_assert_eq(tc_read_i32(&r, et, &v32), 0);
		cr_assert_eq(v32, (int32_t)i * 1000);
	}
	cr_assert_eq(tc_next_field(&r, &last, &id, &t), 1);
	cr_assert_eq(id, 21);
	cr_assert_eq(tc_skip(&r, t), 0, "a nested struct is skipped whole");
	cr_assert_eq(tc_next_field(&r, &last, &id, &t), 1);
	cr_assert_eq(id, 22);
	cr_assert_eq(tc_read_i32(&r, t, &v32), 0);
	cr_assert_eq(v32, 42);
	cr_assert_eq(tc_next_field(&r, &last, &id, &t), 0, "the stop byte");
	cr_assert_eq(tc_reader_offset(&r), b.len);
	vdb_buf_free(&b);
}

Test(parquet, thrift_hostile_bytes_fail_cleanly)
{
	/* A list claiming more elements than bytes, a string past the end, nesting past the
	 * bound, a field of an unknown type, and every truncation of a valid struct. */
	static const uint8_t long_list[] = {0x19, 0xf5, 0xff, 0xff, 0x03, 0x00};
	static const uint8_t long_string[] = {0x18, 0x7f, 'a', 'b', 0x00};
	static const uint8_t bad_type[] = {0x1d, 0x00};
	const uint8_t *cases[] = {long_list, long_string, bad_type};
	size_t lens[] = {sizeof long_list, sizeof long_string, sizeof bad_type};
	for (size_t c = 0; c < 3; c++) {
		tc_reader r;
		tc_reader_init(&r, cases[c], lens[c]);
		cr_assert_eq(tc_skip(&r, TC_STRUCT), -1, "case %zu", c);
		cr_assert(r.err[0], "case %zu sets a reason", c);
	}
	uint8_t deep[2 * TC_MAX_DEPTH + 4];
	for (size_t i = 0; i < sizeof deep; i++)
		deep[i] = 0x1c; /* field 1, a struct, again and again */
	tc_reader r;
	tc_reader_init(&r, deep, sizeof deep);
	cr_assert_eq(tc_skip(&r, TC_STRUCT), -1);
	cr_assert_str_eq(r.err, "the metadata nests too deep");

	vdb_buf b = VDB_BUF_INIT;
	tc_writer w;
	tc_writer_init(&w, &b);
	tc_struct_begin(&w);
	tc_field_string(&w, 1, "abc");
	tc_field_list(&w, 2, TC_BINARY, 2);
	tc_elem_string(&w, "x");
	tc_elem_string(&w, "yz");
	tc_field_i64(&w, 3, 1234567);
	tc_struct_end(&w);
	for (size_t cut = 0; cut < b.len; cut++) {
		tc_reader_init(&r, b.data, cut);
		cr_assert_eq(tc_skip(&r, TC_STRUCT), -1, "cut at %zu", cut);
	}
	tc_reader_init(&r, b.data, b.len);
	cr_assert_eq(tc_skip(&r, TC_STRUCT), 0);
	vdb_buf_free(&b);
}

Test(parquet, rle_hybrid_round_trips)
{
	srand(7);
	uint32_t *v = malloc(5000 * sizeof *v), *back = malloc(5000 * sizeof *back);
	for (int width = 1; width <= 20; width++) {
		for (int pattern = 0; pattern < 4; pattern++) {
			size_t n = 1 + (size_t)rand() % 4999;
			uint32_t mask = width == 32 ? UINT32_MAX : (1u << width) - 1;
			for (size_t i = 0; i < n; i++)
				v[i] = pattern == 0 ? (uint32_t)rand() & mask
				       : pattern == 1 ? (uint32_t)(i / 37) & mask /* long runs */
				       : pattern == 2 ? (uint32_t)(i % 2) & mask  /* no runs at all */
						      : (i % 100 < 90 ? 1u : (uint32_t)rand()) & mask;
			vdb_buf b = VDB_BUF_INIT;
			cr_assert_eq(pq_rle_encode(&b, v, n, width), 0);
			memset(back, 0xff, n * sizeof *back);
			cr_assert_eq(pq_rle_decode((const uint8_t *)b.data, b.len, width, (uint32_t)n, back),
				     0, "width %d pattern %d", width, pattern);
			cr_assert(!memcmp(v, back, n * sizeof *v), "width %d pattern %d", width, pattern);
			if (width <= 8) { /* the same as levels, a byte each */
				uint8_t *lv = malloc(n);
				cr_assert_eq(pq_rle_decode_levels((const uint8_t *)b.data, b.len, width,
								  (uint32_t)n, lv), 0);
				for (size_t i = 0; i < n; i++)
					cr_assert_eq(lv[i], v[i], "width %d pattern %d value %zu", width,
						     pattern, i);
				free(lv);
			}
			/* Fewer bytes than the values need: refused, not read past. */
			cr_assert_eq(pq_rle_decode((const uint8_t *)b.data, b.len / 2, width,
						   (uint32_t)n, back), -1);
			vdb_buf_free(&b);
		}
	}
	/* A run value wider than the bit width says is damage. */
	static const uint8_t wide[] = {0x08, 0x05};
	cr_assert_eq(pq_rle_decode(wide, sizeof wide, 2, 4, back), -1);
	free(v);
	free(back);
}

Test(parquet, delta_binary_packed_examples)
{
	/* The format's examples: 1..5 (every delta 1), and 7 5 3 1 2 3 4 5. */
	static const uint8_t ones[] = {0x80, 0x01, 0x04, 0x05, 0x02, 0x02, 0, 0, 0, 0};
	int64_t out[8];
	size_t used;
	cr_assert_eq(pq_delta_decode(ones, sizeof ones, 5, out, &used), 0);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(out[i], i + 1);
	cr_assert_eq(used, sizeof ones);
	uint8_t mixed[5 + 1 + 4 + 8] = {0x80, 0x01, 0x04, 0x08, 0x0e, 0x03, 2, 0, 0, 0,
					0xc0, 0x3f, 0, 0, 0, 0, 0, 0};
	cr_assert_eq(pq_delta_decode(mixed, sizeof mixed, 8, out, &used), 0);
	static const int64_t want[] = {7, 5, 3, 1, 2, 3, 4, 5};
	for (int i = 0; i < 8; i++)
		cr_assert_eq(out[i], want[i], "value %d", i);
	cr_assert_eq(used, sizeof mixed);
	/* Another count than the header's, a truncated miniblock, a bad block size. */
	cr_assert_eq(pq_delta_decode(mixed, sizeof mixed, 7, out, &used), -1);
	cr_assert_eq(pq_delta_decode(mixed, sizeof mixed - 3, 8, out, &used), -1);
	uint8_t bad[sizeof ones];
	memcpy(bad, ones, sizeof ones);
	bad[0] = 0x81; /* block size 129 */
	cr_assert_eq(pq_delta_decode(bad, sizeof bad, 5, out, &used), -1);
}

Test(parquet, delta_byte_arrays)
{
	/* "axis" "axle" "babble" "babyhood": prefix lengths 0 2 0 3, suffixes "axis" "le"
	 * "babble" "yhood" (lengths 4 2 6 5), each list DELTA_BINARY_PACKED. */
	static const uint8_t data[] = {
		0x80, 0x01, 0x04, 0x04, 0x00, 0x03, 3, 0, 0, 0, /* prefixes: 0, deltas 2 -2 3 */
		0x44, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		0x80, 0x01, 0x04, 0x04, 0x08, 0x03, 3, 0, 0, 0, /* lengths: 4, deltas -2 4 -1 */
		0x70, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		'a', 'x', 'i', 's', 'l', 'e', 'b', 'a', 'b', 'b', 'l', 'e', 'y', 'h', 'o', 'o', 'd'};
	static const char *const want[] = {"axis", "axle", "babble", "babyhood"};
	pq_slice out[4];
	vdb_buf built = VDB_BUF_INIT;
	cr_assert_eq(pq_delta_strings(data, sizeof data, 4, &built, out), 0);
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(out[i].n, strlen(want[i]), "value %d", i);
		cr_assert(!memcmp(out[i].p, want[i], out[i].n), "value %d", i);
	}
	/* The suffixes alone, as DELTA_LENGTH_BYTE_ARRAY. */
	size_t used;
	cr_assert_eq(pq_delta_lengths(data + 22, sizeof data - 22, 4, out, &used), 0);
	cr_assert_eq(used, sizeof data - 22);
	cr_assert_eq(out[1].n, 2);
	cr_assert(!memcmp(out[1].p, "le", 2));
	/* A prefix longer than the previous value, and bytes that end early. */
	uint8_t bad[sizeof data];
	memcpy(bad, data, sizeof data);
	bad[4] = 0x0a; /* the first prefix length 5, of an empty previous value */
	cr_assert_eq(pq_delta_strings(bad, sizeof bad, 4, &built, out), -1);
	cr_assert_eq(pq_delta_strings(data, sizeof data - 1, 4, &built, out), -1);
	vdb_buf_free(&built);
}

Test(parquet, page_compression_round_trips_and_refuses_damage)
{
	char src[10000], dst[10000], why[96];
	for (size_t i = 0; i < sizeof src; i++)
		src[i] = (char)("vector database "[i % 16] + (i / 1000));
	int codecs[] = {PQ_UNCOMPRESSED, PQ_SNAPPY, PQ_ZSTD, PQ_ZSTD};
	void *zctx = NULL;
	for (size_t c = 0; c < 4; c++) {
		vdb_buf b = VDB_BUF_INIT;
		cr_assert_eq(pq_compress(codecs[c], c == 3, &zctx, src, sizeof src, &b), 0);
		if (c == 3) /* stored: raw blocks of 128 KiB at most, any zstd decoder's */
			cr_assert_eq(b.len, 9 + 3 + sizeof src);
		else if (codecs[c] != PQ_UNCOMPRESSED)
			cr_assert_lt(b.len, sizeof src / 2, "%s", pq_codec_name(codecs[c]));
		cr_assert_eq(pq_decompress(codecs[c], b.data, b.len, dst, sizeof dst, why, sizeof why),
			     0, "%s", pq_codec_name(codecs[c]));
		cr_assert(!memcmp(src, dst, sizeof src));
		/* The page's stated size must be met exactly. */
		cr_assert_eq(pq_decompress(codecs[c], b.data, b.len, dst, sizeof dst - 1, why,
					   sizeof why), -1, "%s", pq_codec_name(codecs[c]));
		if (codecs[c] != PQ_UNCOMPRESSED) {
			b.data[b.len / 2] ^= 0x55;
			int rc = pq_decompress(codecs[c], b.data, b.len, dst, sizeof dst, why, sizeof why);
			cr_assert(rc == -1 || !memcmp(src, dst, sizeof src) == 0,
				  "damaged %s data is refused or differs", pq_codec_name(codecs[c]));
		}
		vdb_buf_free(&b);
	}
	pq_compress_free(zctx);
	/* Stored frames of several blocks, and of none. */
	size_t sizes[] = {0, 1, 131072, 131073, 300000};
	char *big = malloc(300000), *back = malloc(300000);
	cr_assert(big && back);
	for (size_t i = 0; i < 300000; i++)
		big[i] = (char)(i * 2654435761u >> 13);
	for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
		vdb_buf b = VDB_BUF_INIT;
		cr_assert_eq(pq_compress(PQ_ZSTD, 1, &zctx, big, sizes[k], &b), 0);
		cr_assert_eq(b.len, 9 + 3 * (sizes[k] / 131072 + (sizes[k] % 131072 || !sizes[k])) +
					    sizes[k], "%zu bytes", sizes[k]);
		cr_assert_eq(pq_decompress(PQ_ZSTD, b.data, b.len, back, sizes[k], why, sizeof why), 0,
			     "%zu bytes: %s", sizes[k], why);
		cr_assert(!memcmp(big, back, sizes[k]));
		vdb_buf_free(&b);
	}
	free(big);
	free(back);
	cr_assert_eq(pq_decompress(PQ_BROTLI, src, 1, dst, 1, why, sizeof why), -2);
	cr_assert_str_eq(why, "BROTLI compression is not supported");
}

Test(parquet, lz4_blocks)
{
	/* "abc", then a match 3 back of 6 bytes, then the literal "X": abcabcabcX. */
	static const uint8_t block[] = {0x32, 'a', 'b', 'c', 0x03, 0x00, 0x10, 'X'};
	char out[16], why[96];
	cr_assert_eq(pq_decompress(PQ_LZ4_RAW, block, sizeof block, out, 10, why, sizeof why), 0);
	cr_assert(!memcmp(out, "abcabcabcX", 10));
	/* Hadoop's framing of the same block: big-endian sizes first. */
	uint8_t hadoop[8 + sizeof block] = {0, 0, 0, 10, 0, 0, 0, sizeof block};
	memcpy(hadoop + 8, block, sizeof block);
	cr_assert_eq(pq_decompress(PQ_LZ4, hadoop, sizeof hadoop, out, 10, why, sizeof why), 0);
	cr_assert(!memcmp(out, "abcabcabcX", 10));
	/* A match reaching before the start, or past the stated size. */
	static const uint8_t before[] = {0x12, 'a', 0x05, 0x00};
	cr_assert_eq(pq_decompress(PQ_LZ4_RAW, before, sizeof before, out, 7, why, sizeof why), -1);
	cr_assert_eq(pq_decompress(PQ_LZ4_RAW, block, sizeof block, out, 9, why, sizeof why), -1);
}

Test(parquet, page_headers)
{
	vdb_buf b = VDB_BUF_INIT;
	tc_writer w;
	tc_writer_init(&w, &b);
	tc_struct_begin(&w);
	tc_field_i32(&w, 1, PQ_DATA_PAGE_V2);
	tc_field_i32(&w, 2, 100);
	tc_field_i32(&w, 3, 60);
	tc_field_struct(&w, 8);
	tc_field_i32(&w, 1, 10);
	tc_field_i32(&w, 2, 1);
	tc_field_i32(&w, 3, 10);
	tc_field_i32(&w, 4, PQ_RLE_DICTIONARY);
	tc_field_i32(&w, 5, 3);
	tc_field_i32(&w, 6, 0);
	tc_field_bool(&w, 7, 0);
	tc_struct_end(&w);
	tc_struct_end(&w);
	pq_page_header h;
	size_t used;
	char why[96];
	cr_assert_eq(pq_page_header_parse((const uint8_t *)b.data, b.len, &h, &used, why, sizeof why), 1,
		     "%s", why);
	cr_assert_eq(used, b.len);
	cr_assert_eq(h.type, PQ_DATA_PAGE_V2);
	cr_assert_eq(h.num_values, 10);
	cr_assert_eq(h.num_nulls, 1);
	cr_assert_eq(h.encoding, PQ_RLE_DICTIONARY);
	cr_assert_eq(h.def_bytes, 3);
	cr_assert_eq(h.is_compressed, 0);
	/* Cut short: "more bytes needed", never damage or a read past the end. */
	for (size_t cut = 0; cut < b.len; cut++)
		cr_assert_eq(pq_page_header_parse((const uint8_t *)b.data, cut, &h, &used, why,
						  sizeof why), 0, "cut at %zu", cut);
	/* A data page v2 without its own header. */
	vdb_buf_reset(&b);
	tc_writer_init(&w, &b);
	tc_struct_begin(&w);
	tc_field_i32(&w, 1, PQ_DATA_PAGE_V2);
	tc_field_i32(&w, 2, 100);
	tc_field_i32(&w, 3, 60);
	tc_struct_end(&w);
	cr_assert_eq(pq_page_header_parse((const uint8_t *)b.data, b.len, &h, &used, why, sizeof why),
		     -1);
	cr_assert_str_eq(why, "a page header lacks the header of its kind");
	vdb_buf_free(&b);
}
