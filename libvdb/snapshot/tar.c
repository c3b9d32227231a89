/* ustar headers. Snapshots contain only regular files with short relative names, so the
 * writer needs nothing beyond the 1988 ustar fields; the reader parses what any tar may
 * produce far enough to name and refuse it (links, devices, pax or GNU extension headers).
 *
 * Header (offsets): name 0/100, mode 100/8, uid 108/8, gid 116/8, size 124/12,
 * mtime 136/12, checksum 148/8, typeflag 156, linkname 157/100, magic 257/6 "ustar\0",
 * version 263/2 "00", uname 265/32, gname 297/32, devmajor 329/8, devminor 337/8,
 * prefix 345/155. The checksum is the sum of the header's bytes with the checksum field
 * counted as spaces. */
#include "tar.h"

#include <stdio.h>
#include <string.h>

static void octal(unsigned char *p, size_t width, uint64_t v)
{
	/* width - 1 digits and a NUL, as POSIX specifies. */
	char buf[32];
	snprintf(buf, sizeof buf, "%0*llo", (int)(width - 1), (unsigned long long)v);
	memcpy(p, buf, width);
}

static unsigned checksum(const unsigned char h[VDB_TAR_BLOCK])
{
	unsigned sum = 0;
	for (size_t i = 0; i < VDB_TAR_BLOCK; i++)
		sum += i >= 148 && i < 156 ? ' ' : h[i];
	return sum;
}

void vdb_tar_header(unsigned char h[VDB_TAR_BLOCK], const char *name, uint64_t size,
		    int64_t mtime)
{
	memset(h, 0, VDB_TAR_BLOCK);
	size_t n = strlen(name);
	memcpy(h, name, n > VDB_TAR_NAME_MAX ? VDB_TAR_NAME_MAX : n);
	octal(h + 100, 8, 0644);
	octal(h + 108, 8, 0);
	octal(h + 116, 8, 0);
	if (size < 077777777777ull) {
		octal(h + 124, 12, size);
	} else {
		h[124] = 0x80; /* base-256, big-endian in the remaining 11 bytes */
		for (int i = 0; i < 8; i++)
			h[135 - i] = (unsigned char)(size >> (8 * i));
	}
	octal(h + 136, 12, mtime > 0 ? (uint64_t)mtime : 0);
	h[156] = '0';
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	octal(h + 329, 8, 0);
	octal(h + 337, 8, 0);
	char buf[16];
	snprintf(buf, sizeof buf, "%06o", checksum(h));
	memcpy(h + 148, buf, 7); /* six digits, NUL, and the space already counted */
	h[155] = ' ';
}

int vdb_tar_is_zero(const unsigned char h[VDB_TAR_BLOCK])
{
	for (size_t i = 0; i < VDB_TAR_BLOCK; i++)
		if (h[i])
			return 0;
	return 1;
}

/* An octal field: optional leading spaces, digits, then NUL or spaces. */
static int parse_octal(const unsigned char *p, size_t width, uint64_t *out)
{
	size_t i = 0;
	uint64_t v = 0;
	while (i < width && p[i] == ' ')
		i++;
	size_t digits = 0;
	for (; i < width && p[i] >= '0' && p[i] <= '7'; i++, digits++) {
		if (v >> 60)
			return -1;
		v = v << 3 | (uint64_t)(p[i] - '0');
	}
	for (; i < width; i++)
		if (p[i] != ' ' && p[i] != '\0')
			return -1;
	if (!digits)
		return -1;
	*out = v;
	return 0;
}

int vdb_tar_parse(const unsigned char h[VDB_TAR_BLOCK], vdb_tar_entry *e, const char **why)
{
	uint64_t sum;
	if (parse_octal(h + 148, 8, &sum) || sum != checksum(h)) {
		*why = "bad tar header checksum";
		return -1;
	}
	if (memcmp(h + 257, "ustar", 5) != 0) {
		*why = "not a ustar header";
		return -1;
	}
	if (h[124] & 0x80) {
		if (h[124] != 0x80 || h[125] || h[126] || h[127]) {
			*why = "bad size field";
			return -1;
		}
		uint64_t v = 0;
		for (int i = 128; i < 136; i++)
			v = v << 8 | h[i];
		e->size = v;
	} else if (parse_octal(h + 124, 12, &e->size)) {
		*why = "bad size field";
		return -1;
	}
	char name[101], prefix[156];
	memcpy(name, h, 100);
	name[100] = '\0';
	memcpy(prefix, h + 345, 155);
	prefix[155] = '\0';
	if (prefix[0])
		snprintf(e->name, sizeof e->name, "%s/%s", prefix, name);
	else
		snprintf(e->name, sizeof e->name, "%s", name);
	e->type = (char)h[156];
	return 0;
}

const char *vdb_tar_type_name(char type)
{
	switch (type) {
	case '0': case '\0': return "regular file";
	case '7': return "contiguous file";
	case '1': return "hard link";
	case '2': return "symbolic link";
	case '3': return "character device";
	case '4': return "block device";
	case '5': return "directory";
	case '6': return "FIFO";
	case 'x': case 'g': return "pax extended header";
	case 'L': case 'K': return "GNU long name header";
	}
	return "entry of unknown type";
}
