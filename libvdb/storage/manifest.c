/* MANIFEST and CONFIG: small JSON documents in "checked text" files (util/io.h).
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
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../formats/json.h"
#include "../util/error.h"
#include "../util/io.h"
#include "format.h"
#include "segment.h"

static int get_u64(const cJSON *o, const char *key, uint64_t max, uint64_t *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > (double)max ||
	    v->valuedouble != floor(v->valuedouble))
		return -1;
	*out = (uint64_t)v->valuedouble;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Integers in these files stay below 2^53, where JSON numbers are exact in a double. */
#define JSON_INT_MAX ((1ull << 53) - 1)

static vdb_status parse_manifest(const char *path, const char *body, vdb_manifest *m,
				 vdb_error *err)
{
	cJSON *root = cJSON_Parse(body);
	memset(m, 0, sizeof *m);
	const cJSON *segs = cJSON_GetObjectItemCaseSensitive(root, "segments");
	if (!cJSON_IsObject(root) || get_u64(root, "generation", JSON_INT_MAX, &m->generation) ||
	    get_u64(root, "wal", JSON_INT_MAX, &m->wal) ||
	    get_u64(root, "next_seq", JSON_INT_MAX, &m->next_seq) ||
	    get_u64(root, "next_file", JSON_INT_MAX, &m->next_file) || !cJSON_IsArray(segs))
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
		if (get_u64(s, "number", JSON_INT_MAX, &g->number) ||
		    get_u64(s, "rows", UINT32_MAX, &g->rows) || g->rows == 0 ||
		    get_u64(s, "size", JSON_INT_MAX, &g->size) ||
		    get_u64(s, "header_crc", UINT32_MAX, &crc) ||
		    get_u64(s, "deleted", g->rows, &g->deleted) || g->number >= m->next_file)
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
	size_t len;
	const char *body;
	if (vdb_path(path, sizeof path, dir, VDB_MANIFEST_FILE))
		return vdb_err(err, VDB_EINVAL, "path too long: %s", dir);
	vdb_status st = vdb_read_file(path, VDB_CHECKED_MAX, &data, &len, err);
	if (st)
		return st;
	st = vdb_checked_decode(path, "manifest", VDB_MANIFEST_FORMAT, data, len, &body, err);
	if (!st)
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

vdb_status vdb_config_encode(const char *name, const vdb_collection_config *cfg, char **out,
			     size_t *len, vdb_error *err)
{
	char index[128];
	if (cfg->index == VDB_INDEX_HNSW)
		snprintf(index, sizeof index,
			 "{\"type\":\"hnsw\",\"m\":%" PRIu32 ",\"ef_construction\":%" PRIu32 "}",
			 cfg->m, cfg->ef_construction);
	else
		snprintf(index, sizeof index, "{\"type\":\"flat\"}");
	vdb_buf body = VDB_BUF_INIT;
	int bad = vdb_buf_printf(&body,
				 "{\"name\":\"%s\",\"dim\":%" PRIu32 ",\"metric\":\"%s\","
				 "\"dtype\":\"float32\",\"seal_bytes\":%" PRIu64 ",\"index\":%s",
				 name, cfg->dim, vdb_metric_name(cfg->metric), cfg->seal_bytes, index);
	/* Written only when there are some: collections without them keep the same CONFIG. */
	for (uint32_t i = 0; i < cfg->n_index_fields && !bad; i++) {
		const vdb_index_field *f = &cfg->index_fields[i];
		bad = vdb_buf_puts(&body, i ? ",{\"field\":" : ",\"payload_indexes\":[{\"field\":") ||
		      vj_write_string(&body, f->path, strlen(f->path)) ||
		      vdb_buf_printf(&body, ",\"type\":\"%s\"}", vdb_field_type_name(f->type));
	}
	bad = bad || (cfg->n_index_fields && vdb_buf_putc(&body, ']')) || vdb_buf_puts(&body, "}\n") ||
	      vdb_buf_putc(&body, '\0');
	if (bad) {
		vdb_buf_free(&body);
		return vdb_err_nomem(err);
	}
	vdb_status st = vdb_checked_encode("config", VDB_CONFIG_FORMAT, body.data, out, len, err);
	vdb_buf_free(&body);
	return st;
}

/* The optional "payload_indexes": [{"field": PATH, "type": "keyword"|"int"|"float"}]. */
static int read_index_fields(const cJSON *root, vdb_collection_config *c)
{
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "payload_indexes"), *e;
	if (!list)
		return 0;
	if (!cJSON_IsArray(list) || cJSON_GetArraySize(list) > VDB_INDEX_FIELDS_MAX)
		return -1;
	cJSON_ArrayForEach(e, list)
	{
		const cJSON *f = cJSON_GetObjectItemCaseSensitive(e, "field");
		const cJSON *t = cJSON_GetObjectItemCaseSensitive(e, "type");
		vdb_index_field *x = &c->index_fields[c->n_index_fields];
		if (!cJSON_IsString(f) || !cJSON_IsString(t) ||
		    strlen(f->valuestring) >= sizeof x->path ||
		    vdb_field_type_parse(t->valuestring, &x->type))
			return -1;
		snprintf(x->path, sizeof x->path, "%s", f->valuestring);
		c->n_index_fields++;
	}
	return 0;
}

vdb_status vdb_config_read(const char *dir, vdb_collection_config *cfg, vdb_error *err)
{
	char path[4096], *data;
	size_t len;
	const char *body;
	if (vdb_path(path, sizeof path, dir, VDB_CONFIG_FILE))
		return vdb_err(err, VDB_EINVAL, "path too long: %s", dir);
	vdb_status st = vdb_read_file(path, 1 << 20, &data, &len, err);
	if (st)
		return st;
	st = vdb_checked_decode(path, "config", VDB_CONFIG_FORMAT, data, len, &body, err);
	if (st) {
		free(data);
		return st;
	}
	cJSON *root = cJSON_Parse(body);
	const cJSON *metric = cJSON_GetObjectItemCaseSensitive(root, "metric");
	const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(root, "dtype");
	uint64_t dim, seal;
	vdb_collection_config c;
	vdb_collection_config_init(&c);
	if (!cJSON_IsObject(root) || get_u64(root, "dim", VDB_DIM_MAX, &dim) || dim == 0 ||
	    get_u64(root, "seal_bytes", JSON_INT_MAX, &seal) || !cJSON_IsString(metric) ||
	    vdb_metric_parse(metric->valuestring, &c.metric) || !cJSON_IsString(dtype) ||
	    strcmp(dtype->valuestring, "float32") != 0) {
		st = vdb_err(err, VDB_ECORRUPT, "%s: invalid configuration", path);
	} else {
		c.dim = (uint32_t)dim;
		c.seal_bytes = seal;
		const cJSON *ix = cJSON_GetObjectItemCaseSensitive(root, "index");
		const cJSON *type = cJSON_GetObjectItemCaseSensitive(ix, "type");
		uint64_t m = 0, efc = 0;
		if (!cJSON_IsString(type) || vdb_index_parse(type->valuestring, &c.index) ||
		    (c.index == VDB_INDEX_HNSW &&
		     (get_u64(ix, "m", 64, &m) || get_u64(ix, "ef_construction", 4096, &efc)))) {
			st = vdb_err(err, VDB_ECORRUPT, "%s: invalid index configuration", path);
		} else if (read_index_fields(root, &c)) {
			st = vdb_err(err, VDB_ECORRUPT, "%s: invalid payload_indexes", path);
		} else {
			c.m = (uint32_t)m;
			c.ef_construction = (uint32_t)efc;
			if (c.index == VDB_INDEX_FLAT)
				c.m = c.ef_construction = 0;
			if ((c.index == VDB_INDEX_HNSW || c.n_index_fields) && vdb_config_problem(&c))
				st = vdb_err(err, VDB_ECORRUPT, "%s: %s", path, vdb_config_problem(&c));
			else
				*cfg = c;
		}
	}
	cJSON_Delete(root);
	free(data);
	return st;
}
