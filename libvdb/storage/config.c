/* A collection's CONFIG: its vocabulary (metrics, index types, payload index types and
 * their names), the defaults, the validation every configuration passes, and the file's
 * JSON body, written once when the collection is created and never changed:
 *   {"name":"docs","dim":384,"metric":"cosine","dtype":"float32","seal_bytes":4194304,
 *    "index":{"type":"hnsw","m":16,"ef_construction":200},
 *    "payload_indexes":[{"field":"lang","type":"keyword"}]}
 * inside a "checked text" file (util/io.h). */
#include "config.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../formats/json.h"
#include "../index/hnsw.h"
#include "../util/buf.h"
#include "../util/error.h"
#include "../util/io.h"
#include "format.h"

#define DEFAULT_SEAL_BYTES (4ull << 20)

int vdb_config_get_u64(const cJSON *o, const char *key, uint64_t max, uint64_t *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > (double)max ||
	    v->valuedouble != floor(v->valuedouble))
		return -1;
	*out = (uint64_t)v->valuedouble;
	return 0;
}

void vdb_collection_config_init(vdb_collection_config *cfg)
{
	cfg->size = sizeof *cfg;
	cfg->dim = 0;
	cfg->metric = VDB_METRIC_L2;
	cfg->seal_bytes = DEFAULT_SEAL_BYTES;
	cfg->index = VDB_INDEX_HNSW;
	cfg->m = VDB_HNSW_DEFAULT_M;
	cfg->ef_construction = VDB_HNSW_DEFAULT_EF_CONSTRUCTION;
	cfg->n_index_fields = 0;
	memset(cfg->index_fields, 0, sizeof cfg->index_fields);
	cfg->quantize = VDB_QUANTIZE_NONE;
}

const char *vdb_quantize_name(vdb_quantize q)
{
	return q == VDB_QUANTIZE_NONE ? "none" : q == VDB_QUANTIZE_INT8 ? "int8"
					: q == VDB_QUANTIZE_BINARY ? "binary" : "?";
}

vdb_status vdb_quantize_parse(const char *name, vdb_quantize *out, vdb_error *err)
{
	static const vdb_quantize all[] = {VDB_QUANTIZE_NONE, VDB_QUANTIZE_INT8,
					   VDB_QUANTIZE_BINARY};
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		if (!strcmp(name, vdb_quantize_name(all[i]))) {
			*out = all[i];
			return VDB_OK;
		}
	return vdb_err(err, VDB_EINVAL, "unknown quantization '%s' (expected none, int8 or binary)",
		       name);
}

const char *vdb_field_type_name(vdb_field_type t)
{
	return t == VDB_FIELD_KEYWORD ? "keyword" : t == VDB_FIELD_INT ? "int"
					: t == VDB_FIELD_FLOAT ? "float" : "?";
}

vdb_status vdb_field_type_parse(const char *name, vdb_field_type *out, vdb_error *err)
{
	if (!strcmp(name, "keyword"))
		*out = VDB_FIELD_KEYWORD;
	else if (!strcmp(name, "int"))
		*out = VDB_FIELD_INT;
	else if (!strcmp(name, "float"))
		*out = VDB_FIELD_FLOAT;
	else
		return vdb_err(err, VDB_EINVAL, "unknown type '%s' (expected keyword, int or float)",
			       name);
	return VDB_OK;
}

/* A field path as filters write it: dot-separated non-empty parts of printable text. */
static int field_path_valid(const char *p)
{
	size_t n = strnlen(p, VDB_FIELD_PATH_MAX);
	if (n == 0 || n == VDB_FIELD_PATH_MAX || p[0] == '.' || p[n - 1] == '.' || strstr(p, ".."))
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
			return 0;
	return 1;
}

const char *vdb_index_name(vdb_index_type t)
{
	return t == VDB_INDEX_HNSW ? "hnsw" : t == VDB_INDEX_FLAT ? "flat" : "?";
}

vdb_status vdb_index_parse(const char *name, vdb_index_type *out, vdb_error *err)
{
	if (!strcmp(name, "hnsw"))
		*out = VDB_INDEX_HNSW;
	else if (!strcmp(name, "flat"))
		*out = VDB_INDEX_FLAT;
	else
		return vdb_err(err, VDB_EINVAL, "unknown index '%s' (expected hnsw or flat)", name);
	return VDB_OK;
}

/* Range checks shared by create and the config reader. */
const char *vdb_config_problem(const vdb_collection_config *cfg)
{
	if (cfg->dim < 1 || cfg->dim > VDB_DIM_MAX)
		return "dimension must be 1 to 65536";
	if (cfg->metric < VDB_METRIC_L2 || cfg->metric > VDB_METRIC_DOT)
		return "unknown metric";
	if (cfg->seal_bytes < 4096 || cfg->seal_bytes > (1ull << 40))
		return "seal threshold must be 4 KiB to 1 TiB";
	if (cfg->index != VDB_INDEX_HNSW && cfg->index != VDB_INDEX_FLAT)
		return "unknown index type";
	if (cfg->index == VDB_INDEX_HNSW && (cfg->m < 2 || cfg->m > 64))
		return "m must be 2 to 64";
	if (cfg->index == VDB_INDEX_HNSW &&
	    (cfg->ef_construction < cfg->m || cfg->ef_construction > 4096))
		return "ef_construction must be m to 4096";
	if (cfg->n_index_fields > VDB_INDEX_FIELDS_MAX)
		return "at most 4 payload indexes";
	if (cfg->quantize < VDB_QUANTIZE_NONE || cfg->quantize > VDB_QUANTIZE_BINARY)
		return "unknown quantization";
	if (cfg->quantize != VDB_QUANTIZE_NONE && cfg->index != VDB_INDEX_HNSW)
		return "quantized codes are walked by graph searches: they need an hnsw index";
	for (uint32_t i = 0; i < cfg->n_index_fields; i++) {
		const vdb_index_field *f = &cfg->index_fields[i];
		if (!field_path_valid(f->path))
			return "an index field path must be 1-127 bytes of dot-separated non-empty "
			       "parts";
		if (f->type < VDB_FIELD_KEYWORD || f->type > VDB_FIELD_FLOAT)
			return "unknown index field type";
		for (uint32_t j = 0; j < i; j++)
			if (!strcmp(cfg->index_fields[j].path, f->path))
				return "a field is indexed twice";
	}
	return NULL;
}

const char *vdb_metric_name(vdb_metric m)
{
	switch (m) {
	case VDB_METRIC_L2: return "l2";
	case VDB_METRIC_COSINE: return "cosine";
	case VDB_METRIC_DOT: return "dot";
	}
	return "?";
}

vdb_status vdb_metric_parse(const char *name, vdb_metric *out, vdb_error *err)
{
	static const vdb_metric all[] = {VDB_METRIC_L2, VDB_METRIC_COSINE, VDB_METRIC_DOT};
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		if (strcmp(name, vdb_metric_name(all[i])) == 0) {
			*out = all[i];
			return VDB_OK;
		}
	return vdb_err(err, VDB_EINVAL, "unknown metric '%s' (expected cosine, l2 or dot)", name);
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
	bad = bad || (cfg->n_index_fields && vdb_buf_putc(&body, ']'));
	/* Format 2 added "quantize": a collection without codes keeps a version 1 CONFIG, which
	 * older vdb still read. */
	unsigned version = 1;
	if (cfg->quantize != VDB_QUANTIZE_NONE && !bad) {
		bad = vdb_buf_printf(&body, ",\"quantize\":\"%s\"", vdb_quantize_name(cfg->quantize));
		version = 2;
	}
	bad = bad || vdb_buf_puts(&body, "}\n") || vdb_buf_putc(&body, '\0');
	if (bad) {
		vdb_buf_free(&body);
		return vdb_err_nomem(err);
	}
	vdb_status st = vdb_checked_encode("config", version, body.data, out, len, err);
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
		    vdb_field_type_parse(t->valuestring, &x->type, NULL))
			return -1;
		snprintf(x->path, sizeof x->path, "%s", f->valuestring);
		c->n_index_fields++;
	}
	return 0;
}

/* The optional "quantize": "int8" | "binary" ("none" when absent). */
static int read_quantize(const cJSON *root, vdb_collection_config *c)
{
	const cJSON *q = cJSON_GetObjectItemCaseSensitive(root, "quantize");
	return q && (!cJSON_IsString(q) || vdb_quantize_parse(q->valuestring, &c->quantize, NULL))
		       ? -1
		       : 0;
}

vdb_status vdb_config_read(const char *dir, vdb_collection_config *cfg, vdb_error *err)
{
	char path[4096], *data;
	const char *body;
	vdb_status st = vdb_checked_read(dir, VDB_CONFIG_FILE, "config", VDB_CONFIG_FORMAT, 1 << 20,
					 path, &data, &body, err);
	if (st)
		return st;
	cJSON *root = cJSON_Parse(body);
	const cJSON *metric = cJSON_GetObjectItemCaseSensitive(root, "metric");
	const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(root, "dtype");
	uint64_t dim, seal;
	vdb_collection_config c;
	vdb_collection_config_init(&c);
	if (!cJSON_IsObject(root) || vdb_config_get_u64(root, "dim", VDB_DIM_MAX, &dim) || dim == 0 ||
	    vdb_config_get_u64(root, "seal_bytes", VDB_JSON_INT_MAX, &seal) || !cJSON_IsString(metric) ||
	    vdb_metric_parse(metric->valuestring, &c.metric, NULL) || !cJSON_IsString(dtype) ||
	    strcmp(dtype->valuestring, "float32") != 0) {
		st = vdb_err(err, VDB_ECORRUPT, "%s: invalid configuration", path);
	} else {
		c.dim = (uint32_t)dim;
		c.seal_bytes = seal;
		const cJSON *ix = cJSON_GetObjectItemCaseSensitive(root, "index");
		const cJSON *type = cJSON_GetObjectItemCaseSensitive(ix, "type");
		uint64_t m = 0, efc = 0;
		if (!cJSON_IsString(type) || vdb_index_parse(type->valuestring, &c.index, NULL) ||
		    (c.index == VDB_INDEX_HNSW &&
		     (vdb_config_get_u64(ix, "m", 64, &m) || vdb_config_get_u64(ix, "ef_construction", 4096, &efc)))) {
			st = vdb_err(err, VDB_ECORRUPT, "%s: invalid index configuration", path);
		} else if (read_index_fields(root, &c)) {
			st = vdb_err(err, VDB_ECORRUPT, "%s: invalid payload_indexes", path);
		} else if (read_quantize(root, &c)) {
			st = vdb_err(err, VDB_ECORRUPT, "%s: invalid quantize", path);
		} else {
			c.m = (uint32_t)m;
			c.ef_construction = (uint32_t)efc;
			if (c.index == VDB_INDEX_FLAT)
				c.m = c.ef_construction = 0;
			if ((c.index == VDB_INDEX_HNSW || c.n_index_fields || c.quantize) &&
			    vdb_config_problem(&c))
				st = vdb_err(err, VDB_ECORRUPT, "%s: %s", path, vdb_config_problem(&c));
			else
				*cfg = c;
		}
	}
	cJSON_Delete(root);
	free(data);
	return st;
}

void vdb_config_copy_out(const vdb_collection_config *cfg, vdb_collection_config *out)
{
	size_t n = out->size;
	if (n < offsetof(vdb_collection_config, dim) + sizeof out->dim || n > sizeof *out)
		n = sizeof *out; /* not initialized: this header's struct */
	memcpy(out, cfg, n);
	out->size = n;
}
