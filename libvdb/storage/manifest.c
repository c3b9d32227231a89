/* MANIFEST: a small JSON document in a "checked text" file (util/io.h); CONFIG is config.c.
 *
 * MANIFEST body:
 *   {"generation":7,"wal":3,"next_seq":120,"next_file":9,
 *    "segments":[{"number":4,"rows":1000,"size":532480,"header_crc":305419896,
 *                 "deleted":12,"deletions":"del-00000004-00000008.vdb"}]}
 * It changes only by atomic replacement, so a reader sees one whole version or the other.
 * Every value is range-checked on read: a damaged manifest is an error, never a crash. */
#include "manifest.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util/error.h"
#include "../util/io.h"
#include "config.h"
#include "format.h"
#include "segment.h"

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static vdb_status parse_manifest(const char *path, const char *body, vdb_manifest *m,
				 vdb_error *err)
{
	cJSON *root = cJSON_Parse(body);
	memset(m, 0, sizeof *m);
	const cJSON *segs = cJSON_GetObjectItemCaseSensitive(root, "segments");
	if (!cJSON_IsObject(root) || vdb_config_get_u64(root, "generation", VDB_JSON_INT_MAX, &m->generation) ||
	    vdb_config_get_u64(root, "wal", VDB_JSON_INT_MAX, &m->wal) ||
	    vdb_config_get_u64(root, "next_seq", VDB_JSON_INT_MAX, &m->next_seq) ||
	    vdb_config_get_u64(root, "next_file", VDB_JSON_INT_MAX, &m->next_file) || !cJSON_IsArray(segs))
		goto bad;
	int n = cJSON_GetArraySize(segs);
	m->segs = calloc(n ? (size_t)n : 1, sizeof *m->segs);
	if (!m->segs) {
		cJSON_Delete(root);
		return vdb_err_nomem(err);
	}
	const cJSON *s;
	cJSON_ArrayForEach(s, segs)
	{
		vdb_manifest_seg *g = &m->segs[m->nseg];
		uint64_t crc;
		if (vdb_config_get_u64(s, "number", VDB_JSON_INT_MAX, &g->number) ||
		    vdb_config_get_u64(s, "rows", UINT32_MAX, &g->rows) || g->rows == 0 ||
		    vdb_config_get_u64(s, "size", VDB_JSON_INT_MAX, &g->size) ||
		    vdb_config_get_u64(s, "header_crc", UINT32_MAX, &crc) ||
		    vdb_config_get_u64(s, "deleted", g->rows, &g->deleted) || g->number >= m->next_file)
			goto bad;
		g->header_crc = (uint32_t)crc;
		const cJSON *d = cJSON_GetObjectItemCaseSensitive(s, "deletions");
		if (g->deleted) {
			if (!cJSON_IsString(d) || strlen(d->valuestring) >= sizeof g->del_file ||
			    strncmp(d->valuestring, "del-", 4) != 0 || strchr(d->valuestring, '/'))
				goto bad;
			strcpy(g->del_file, d->valuestring);
		} else if (d) {
			goto bad;
		}
		m->nseg++;
	}
	/* Each segment once. (Listed in storage order, not number order: a merge puts its
	 * result where the merged run was.) */
	uint64_t *nums = malloc((m->nseg ? m->nseg : 1) * sizeof *nums);
	if (!nums) {
		cJSON_Delete(root);
		vdb_manifest_free(m);
		return vdb_err_nomem(err);
	}
	for (size_t i = 0; i < m->nseg; i++)
		nums[i] = m->segs[i].number;
	qsort(nums, m->nseg, sizeof *nums, cmp_u64);
	int dup = 0;
	for (size_t i = 1; i < m->nseg; i++)
		dup |= nums[i] == nums[i - 1];
	free(nums);
	if (dup)
		goto bad;
	cJSON_Delete(root);
	return VDB_OK;
bad:
	cJSON_Delete(root);
	vdb_manifest_free(m);
	return vdb_err(err, VDB_ECORRUPT, "%s: invalid manifest content", path);
}

vdb_status vdb_manifest_read(const char *dir, vdb_manifest *m, vdb_error *err)
{
	char path[4096], *data;
	const char *body;
	vdb_status st = vdb_checked_read(dir, VDB_MANIFEST_FILE, "manifest", VDB_MANIFEST_FORMAT,
					 VDB_CHECKED_MAX, path, &data, &body, err);
	if (st)
		return st;
	st = parse_manifest(path, body, m, err);
	free(data);
	return st;
}

vdb_status vdb_manifest_encode(const vdb_manifest *m, char **file, size_t *len, vdb_error *err)
{
	vdb_buf b = VDB_BUF_INIT;
	int rc = vdb_buf_printf(&b,
				"{\"generation\":%" PRIu64 ",\"wal\":%" PRIu64
				",\"next_seq\":%" PRIu64 ",\"next_file\":%" PRIu64 ",\"segments\":[",
				m->generation, m->wal, m->next_seq, m->next_file);
	for (size_t i = 0; i < m->nseg && !rc; i++) {
		const vdb_manifest_seg *g = &m->segs[i];
		rc = vdb_buf_printf(&b,
				    "%s\n{\"number\":%" PRIu64 ",\"rows\":%" PRIu64
				    ",\"size\":%" PRIu64 ",\"header_crc\":%" PRIu32
				    ",\"deleted\":%" PRIu64,
				    i ? "," : "", g->number, g->rows, g->size, g->header_crc,
				    g->deleted);
		if (!rc && g->deleted)
			rc = vdb_buf_printf(&b, ",\"deletions\":\"%s\"", g->del_file);
		if (!rc)
			rc = vdb_buf_putc(&b, '}');
	}
	if (!rc)
		rc = vdb_buf_puts(&b, "]}\n");
	if (rc || vdb_buf_putc(&b, '\0')) {
		vdb_buf_free(&b);
		return vdb_err_nomem(err);
	}
	vdb_status st = vdb_checked_encode("manifest", VDB_MANIFEST_FORMAT, b.data, file, len, err);
	vdb_buf_free(&b);
	return st;
}

vdb_status vdb_manifest_write(const char *dir, const vdb_manifest *m, vdb_error *err)
{
	char *file;
	size_t len;
	vdb_status st = vdb_manifest_encode(m, &file, &len, err);
	if (st)
		return st;
	/* The new version becomes visible, whole, at the rename inside vdb_atomic_write. */
	st = vdb_atomic_write(dir, VDB_MANIFEST_FILE, file, len, err);
	free(file);
	return st;
}

void vdb_manifest_free(vdb_manifest *m)
{
	free(m->segs);
	m->segs = NULL;
	m->nseg = 0;
}

