/* CRC32C (Castagnoli): the SSE4.2 crc32 instruction when the CPU has it, a slicing-by-8
 * table otherwise. The table is built once under pthread_once and never changes after, so
 * it is not state a caller can observe. Known answer: crc32c("123456789") == 0xe3069283. */
#include "crc32c.h"

#include <pthread.h>
#include <string.h>

#define POLY 0x82f63b78u

static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void table_build(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ POLY : c >> 1;
		table[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
}

static uint32_t crc_sw(uint32_t crc, const unsigned char *p, size_t len)
{
	pthread_once(&table_once, table_build);
	while (len && ((uintptr_t)p & 7)) {
		crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
		len--;
	}
	while (len >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		w ^= crc;
		crc = table[7][w & 0xff] ^ table[6][(w >> 8) & 0xff] ^ table[5][(w >> 16) & 0xff] ^
		      table[4][(w >> 24) & 0xff] ^ table[3][(w >> 32) & 0xff] ^
		      table[2][(w >> 40) & 0xff] ^ table[1][(w >> 48) & 0xff] ^ table[0][w >> 56];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
	return crc;
}

static uint32_t mult_mod_p(uint32_t a, uint32_t b);

#if defined(__x86_64__)
#include <nmmintrin.h>

/* The crc32 instruction takes 3 cycles but can start every cycle: three independent streams
 * over three consecutive parts of a block run about three times as fast as one. Their
 * registers are joined with the CRC's linearity: the register after parts A B C (L bytes
 * each) is A's shifted by 2L zero bytes, xor B's (from 0) shifted by L, xor C's; a shift by
 * n zero bytes is a multiplication by x^(8n) modulo the polynomial (constants below). */
#define STREAM_BYTES 8192
static uint32_t shift_1, shift_2; /* x^(8 STREAM_BYTES), x^(16 STREAM_BYTES) */
static pthread_once_t shift_once = PTHREAD_ONCE_INIT;

static void shift_build(void)
{
	uint32_t x2n = 1u << 30, s = 1u << 31; /* x^1, and x^0 = 1 */
	for (uint64_t n = (uint64_t)STREAM_BYTES * 8; n; n >>= 1) {
		if (n & 1)
			s = mult_mod_p(x2n, s);
		x2n = mult_mod_p(x2n, x2n);
	}
	shift_1 = s;
	shift_2 = mult_mod_p(s, s);
}

__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const unsigned char *p,
							 size_t len)
{
	uint64_t c = crc;
	while (len && ((uintptr_t)p & 7)) {
		c = _mm_crc32_u8((uint32_t)c, *p++);
		len--;
	}
	if (len >= 3 * STREAM_BYTES)
		pthread_once(&shift_once, shift_build);
	while (len >= 3 * STREAM_BYTES) {
		uint64_t c1 = 0, c2 = 0;
		for (size_t i = 0; i < STREAM_BYTES; i += 8) {
			uint64_t a, b, d;
			memcpy(&a, p + i, 8);
			memcpy(&b, p + STREAM_BYTES + i, 8);
			memcpy(&d, p + 2 * STREAM_BYTES + i, 8);
			c = _mm_crc32_u64(c, a);
			c1 = _mm_crc32_u64(c1, b);
			c2 = _mm_crc32_u64(c2, d);
		}
		c = mult_mod_p(shift_2, (uint32_t)c) ^ mult_mod_p(shift_1, (uint32_t)c1) ^ (uint32_t)c2;
		p += 3 * STREAM_BYTES;
		len -= 3 * STREAM_BYTES;
	}
	while (len >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		c = _mm_crc32_u64(c, w);
		p += 8;
		len -= 8;
	}
	while (len--)
		c = _mm_crc32_u8((uint32_t)c, *p++);
	return (uint32_t)c;
}
#endif

uint32_t vdb_crc32c(uint32_t crc, const void *data, size_t len)
{
	const unsigned char *p = data;
	crc = ~crc;
#if defined(__x86_64__)
	if (__builtin_cpu_supports("sse4.2"))
		return ~crc_hw(crc, p, len);
#endif
	return ~crc_sw(crc, p, len);
}

/* a * b modulo the polynomial, both in the reflected bit order of the CRC (x^0 is the top
 * bit). */
static uint32_t mult_mod_p(uint32_t a, uint32_t b)
{
	uint32_t p = 0;
	for (uint32_t m = 1u << 31; m; m >>= 1) {
		if (a & m)
			p ^= b;
		b = b & 1 ? (b >> 1) ^ POLY : b >> 1;
	}
	return p;
}

uint32_t vdb_crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b)
{
	/* Appending len_b bytes multiplies A's remainder by x^(8 len_b); the pre- and
	 * post-inversions cancel out between the two (the method of zlib's crc32_combine). */
	uint32_t x2n = 1u << 30, shift = 1u << 31; /* x^1, and x^0 = 1 */
	for (uint64_t n = len_b * 8; n; n >>= 1) {
		if (n & 1)
			shift = mult_mod_p(x2n, shift);
		x2n = mult_mod_p(x2n, x2n);
	}
	return mult_mod_p(shift, crc_a) ^ crc_b;
}
