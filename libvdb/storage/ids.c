/* Id hashing and ordering. */
#include "ids.h"

#include <string.h>

static uint64_t fnv1a(uint64_t h, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

uint64_t vdb_id_hash(const vdb_id *id)
{
	unsigned char kind = id->is_string ? 1 : 0;
	uint64_t h = fnv1a(0xcbf29ce484222325ull, &kind, 1);
	if (id->is_string)
		return fnv1a(h, (const unsigned char *)id->str, id->len);
	unsigned char b[8];
	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)(id->num >> (8 * i));
	return fnv1a(h, b, 8);
}

int vdb_id_equal(const vdb_id *a, const vdb_id *b)
{
	if (a->is_string != b->is_string)
		return 0;
	if (!a->is_string)
		return a->num == b->num;
	return a->len == b->len && memcmp(a->str, b->str, a->len) == 0;
}

int vdb_id_compare(const vdb_id *a, const vdb_id *b)
{
	if (a->is_string != b->is_string)
		return a->is_string ? 1 : -1;
	if (!a->is_string)
		return a->num < b->num ? -1 : a->num > b->num;
	size_t n = a->len < b->len ? a->len : b->len;
	int c = memcmp(a->str, b->str, n);
	if (c)
		return c;
	return a->len < b->len ? -1 : a->len > b->len;
}
