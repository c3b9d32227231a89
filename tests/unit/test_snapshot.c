/* Unit tests of the snapshot archive layers: ustar headers (including the base-256 size
 * of files over 8 GiB), the names an archive may hold, and the zstd reader's limits. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "snapshot/amanifest.h"
#include "snapshot/tar.h"
#include "util/zstream.h"

Test(tar, header_round_trip)
{
	unsigned char h[VDB_TAR_BLOCK];
	vdb_tar_entry e;
	const char *why;
	uint64_t sizes[] = {0, 1, 511, 512, 077777777776ull, 077777777777ull, 9ull << 30,
			    (1ull << 62) + 12345};
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		vdb_tar_header(h, "docs/seg-00000001.vdb", sizes[i], 1700000000);
		cr_assert_eq(vdb_tar_parse(h, &e, &why), 0, "size %llu", (unsigned long long)sizes[i]);
		cr_expect_eq(e.size, sizes[i]);
		cr_expect_str_eq(e.name, "docs/seg-00000001.vdb");
		cr_expect_eq(e.type, '0');
	}
	h[0] ^= 1;
	cr_assert_eq(vdb_tar_parse(h, &e, &why), -1);
	cr_expect_str_eq(why, "bad tar header checksum");
	memset(h, 0, sizeof h);
	cr_expect(vdb_tar_is_zero(h));
	cr_expect_eq(vdb_tar_pad(0), 0);
	cr_expect_eq(vdb_tar_pad(1), 511);
	cr_expect_eq(vdb_tar_pad(512), 0);
}

Test(tar, names)
{
	const char *good[] = {"VDB", "docs/CONFIG", "docs/MANIFEST", "a/seg-00000001.vdb",
			      "a/wal-1.log", "a/del-00000002-00000009.vdb", "x.y-z_1/CONFIG"};
	const char *bad[] = {"", "/VDB", "../VDB", "docs/../VDB", "docs", "docs/", "docs/LOCK",
			     ".hidden/CONFIG", "a/seg-.vdb", "a/seg-1x.vdb", "a/del-1.vdb",
			     "a/b/CONFIG", "VDB/CONFIG", "a/wal-1.log.tmp-3", "a/CONFIG/",
			     "a//CONFIG"};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
		cr_expect(vdb_arc_name_ok(good[i]), "%s", good[i]);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		cr_expect(!vdb_arc_name_ok(bad[i]), "%s", bad[i]);
}

/* Compresses data into a pipe-free temp file and returns an fd positioned at its start. */
static int compressed(const void *data, size_t n, int level)
{
	char path[] = "/tmp/vdb-unit-zio-XXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	unlink(path);
	vdb_zwriter *w;
	vdb_error err;
	cr_assert_eq(vdb_zwriter_open(fd, "test", level, 0, &w, &err), VDB_OK);
	cr_assert_eq(vdb_zwriter_write(w, data, n, &err), VDB_OK);
	cr_assert_eq(vdb_zwriter_finish(w, &err), VDB_OK);
	vdb_zwriter_free(w);
	lseek(fd, 0, SEEK_SET);
	return fd;
}

Test(zio, round_trip_and_budget)
{
	size_t n = 3u << 20;
	unsigned char *data = malloc(n), *back = malloc(n + 1);
	for (size_t i = 0; i < n; i++)
		data[i] = (unsigned char)(i * 7 + i / 1000);
	int fd = compressed(data, n, 3);
	vdb_zreader *r;
	vdb_error err;
	size_t got;
	cr_assert_eq(vdb_zreader_open(fd, "test", NULL, &r, &err), VDB_OK);
	cr_assert_eq(vdb_zreader_read(r, back, n + 1, &got, "all", &err), VDB_OK, "%s", err.message);
	cr_expect_eq(got, n);
	cr_expect(memcmp(data, back, n) == 0);
	vdb_zreader_free(r);
	/* The same stream with a budget one byte short. */
	lseek(fd, 0, SEEK_SET);
	cr_assert_eq(vdb_zreader_open(fd, "test", NULL, &r, &err), VDB_OK);
	vdb_zreader_set_budget(r, n - 1);
	cr_expect_eq(vdb_zreader_read(r, back, n, &got, "all", &err), VDB_ECORRUPT);
	cr_expect(strstr(err.message, "expands beyond") != NULL, "%s", err.message);
	vdb_zreader_free(r);
	close(fd);
	free(data);
	free(back);
}

static int plain_frame(const void *data, size_t n)
{
	size_t cap = ZSTD_compressBound(n);
	void *z = malloc(cap);
	size_t len = ZSTD_compress(z, cap, data, n, 19);
	cr_assert(!ZSTD_isError(len));
	char path[] = "/tmp/vdb-unit-zio-XXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	unlink(path);
	cr_assert_eq(write(fd, z, len), (ssize_t)len);
	free(z);
	lseek(fd, 0, SEEK_SET);
	return fd;
}

/* Reads the stream in fd in place, in pieces of at most 300000 bytes: it must give back
 * data[0..n) exactly, then stay at its end. */
static void read_in_place(int fd, const unsigned char *data, size_t n, const char *kind)
{
	unsigned char *back = malloc(n);
	vdb_zreader *r;
	vdb_error err;
	cr_assert_eq(vdb_zreader_open(fd, "test", NULL, &r, &err), VDB_OK);
	size_t done = 0, got, max = 300000;
	const void *p;
	for (;;) {
		cr_assert_eq(vdb_zreader_next(r, max, &p, &got, "all", &err), VDB_OK, "%s %zu: %s",
			     kind, n, err.message);
		if (!got)
			break;
		cr_assert_leq(got, max);
		cr_assert_leq(done + got, n, "%s %zu: more than was written", kind, n);
		memcpy(back + done, p, got);
		done += got;
	}
	cr_expect_eq(done, n, "%s %zu", kind, n);
	cr_expect(memcmp(data, back, n) == 0, "%s %zu", kind, n);
	cr_expect_eq(vdb_zreader_next(r, max, &p, &got, "the end", &err), VDB_OK);
	cr_expect_eq(got, 0, "the end stays the end");
	vdb_zreader_free(r);
	close(fd);
	free(back);
}

/* Streams whose frame ends on, just before or just after an internal buffer's end (the
 * decoder may then have output left that only the next buffer can take), read in place;
 * with and without a content checksum (`zstd --no-check`: nothing follows the last
 * block). */
Test(zio, read_in_place_across_buffers)
{
	const size_t sizes[] = {1, 5000, (1u << 20) - 1, 1u << 20, (1u << 20) + 1, (2u << 20) + 777,
				3u << 20};
	for (size_t t = 0; t < sizeof sizes / sizeof *sizes; t++) {
		size_t n = sizes[t];
		unsigned char *data = malloc(n);
		for (size_t i = 0; i < n; i++)
			data[i] = (unsigned char)(i % 251 < 200 ? 0 : i * 13); /* runs and noise */
		read_in_place(compressed(data, n, 19), data, n, "checksummed");
		read_in_place(plain_frame(data, n), data, n, "plain");
		free(data);
	}
}

Test(zio, truncated_stream)
{
	unsigned char data[4096], back[4096];
	for (size_t i = 0; i < sizeof data; i++)
		data[i] = (unsigned char)(i * 31);
	int fd = compressed(data, sizeof data, 1);
	off_t size = lseek(fd, 0, SEEK_END);
	cr_assert_eq(ftruncate(fd, size - 3), 0);
	lseek(fd, 0, SEEK_SET);
	vdb_zreader *r;
	vdb_error err;
	size_t got;
	cr_assert_eq(vdb_zreader_open(fd, "test", NULL, &r, &err), VDB_OK);
	cr_expect_eq(vdb_zreader_read(r, back, sizeof back + 0, &got, "the data", &err), VDB_OK);
	/* All data may have been produced; the missing frame checksum shows at the end. */
	cr_expect_eq(vdb_zreader_read(r, back, 1, &got, "the end", &err), VDB_ECORRUPT);
	cr_expect(strstr(err.message, "truncated archive") != NULL, "%s", err.message);
	vdb_zreader_free(r);
	close(fd);
}
