/* The payload fields a collection's records hold (vdb_collection_fields): every path, dotted
 * into nested objects as filters write them, with its JSON type and how many records hold
 * it so. Payloads are read in place (segments' payload sections, the log tail's memtable),
 * without the checksum pass a cursor makes, so that a sample of a large collection costs a
 * sample's reads. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "../formats/payload.h"
#include "../index/pindex.h"
#include "../util/error.h"
#include "collection.h"

typedef struct seen {
	char *path;
	const char *type;
} seen;

typedef struct walk {
	seen *v;
	size_t n, cap;
	int nomem;
} walk;

static const char *type_of(const cJSON *x)
{
	if (cJSON_IsString(x))
		return "string";
	if (cJSON_IsNumber(x)) {
		double d = x->valuedouble;
		return d == (double)(long long)d && d > -9e15 && d < 9e15 ? "integer" : "number";
	}
	if (cJSON_IsBool(x))
		return "boolean";
	if (cJSON_IsNull(x))
		return "null";
	return cJSON_IsArray(x) ? "array" : "object";
}

static void note(walk *w, const char *path, size_t len, const char *type)
{
	if (w->n == w->cap) {
		size_t cap = w->cap ? 2 * w->cap : 256;
		seen *v = realloc(w->v, cap * sizeof *v);
		if (!v) {
			w->nomem = 1;
			return;
		}
		w->v = v;
		w->cap = cap;
	}
	char *p = malloc(len + 1);
	if (!p) {
		w->nomem = 1;
		return;
	}
	memcpy(p, path, len);
	p[len] = 0;
	w->v[w->n++] = (seen){p, type};
}

/* Every key of object o under the path prefix[0..len), nested objects too. */
static void walk_object(walk *w, const cJSON *o, char *prefix, size_t len, size_t cap, int depth)
{
	for (const cJSON *k = o->child; k && !w->nomem; k = k->next) {
		size_t kl = strlen(k->string), nl = len + (len ? 1 : 0) + kl;
		if (nl >= cap)
			continue; /* a path longer than any filter may write */
		if (len)
			prefix[len] = '.';
		memcpy(prefix + len + (len ? 1 : 0), k->string, kl);
		note(w, prefix, nl, type_of(k));
		if (cJSON_IsObject(k) && depth < VDB_PAYLOAD_MAX_DEPTH)
			walk_object(w, k, prefix, nl, cap, depth + 1);
	}
}

static void take_payload(walk *w, const char *payload, size_t len)
{
	if (!payload || !len)
		return;
	cJSON *o = cJSON_ParseWithLength(payload, len);
	char path[1024];
	if (o && cJSON_IsObject(o))
		walk_object(w, o, path, 0, sizeof path, 1);
	cJSON_Delete(o);
}

/* Whether a payload holds a value the index of field f covers at its path. */
typedef struct covered {
	vdb_field_type type;
	int found;
} covered;

static void on_indexed_value(void *ctx, const char *v, size_t n)
{
	covered *c = ctx;
	double d;
	if (c->type == VDB_FIELD_KEYWORD ? v[0] == '"'
					 : (v[0] == '-' || (v[0] >= '0' && v[0] <= '9')) &&
						   vdb_json_number(v, n, &d) == 0)
		c->found = 1;
}

/* Live records holding a value of indexed field f: from the segments' indexes and the log
 * tail's payloads. -1 when a segment has no index of it (written before the field was
 * indexed), or on an error (err set). */
static int64_t count_indexed(const vdb_state *s, const vdb_index_field *f, vdb_error *err)
{
	uint64_t total = 0, plen = strlen(f->path);
	for (size_t g = 0; g < s->man.nseg; g++) {
		const vdb_segment *seg = &s->segs[g];
		const vdb_pindex *p = NULL;
		for (uint32_t i = 0; i < seg->npidx && !p; i++)
			if (seg->pidx[i].path_len == plen && !memcmp(seg->pidx[i].path, f->path, plen))
				p = &seg->pidx[i];
		if (!p)
			return -1;
		uint64_t words = (seg->rows + 63) / 64;
		uint64_t *bits = calloc(words ? words : 1, sizeof *bits);
		if (!bits) {
			vdb_err_nomem(err);
			return -1;
		}
		if (vdb_pindex_range(p, 0, UINT64_MAX, seg->rows, bits)) {
			free(bits);
			vdb_err(err, VDB_ECORRUPT, "%s: damaged payload index", seg->file);
			return -1;
		}
		for (uint64_t w = 0; w < words; w++) {
			uint64_t live = bits[w];
			for (uint64_t m = live; m; m &= m - 1) {
				uint64_t r = w * 64 + (uint64_t)__builtin_ctzll(m);
				if (vdb_segment_is_dead(seg, r))
					live &= ~(1ull << (r & 63));
			}
			total += (uint64_t)__builtin_popcountll(live);
		}
		free(bits);
	}
	for (size_t i = 0; i < s->mt.n; i++) {
		const vdb_mem_entry *e = &s->mt.entries[i];
		covered c = {f->type, 0};
		if (e->deleted || !e->has_payload)
			continue;
		if (vdb_payload_values(s->mt.payloads.data + e->payload_off, e->payload_len, f->path,
				       plen, on_indexed_value, &c) < 0) {
			vdb_err(err, VDB_ECORRUPT, "%s: a damaged payload in the log", s->dir);
			return -1;
		}
		total += c.found;
	}
	return (int64_t)total;
}

/* Replaces the sampled figures of the types an index covers with its exact count. */
static vdb_status exact_indexed(const vdb_state *s, vdb_field_stat **f, size_t *n,
				vdb_error *err)
{
	for (uint32_t i = 0; i < s->cfg.n_index_fields; i++) {
		const vdb_index_field *x = &s->cfg.index_fields[i];
		err->code = VDB_OK;
		int64_t count = count_indexed(s, x, err);
		if (count < 0) {
			if (err->code)
				return err->code;
			continue; /* not every segment indexes it: the sample stands */
		}
		const char *type = x->type == VDB_FIELD_KEYWORD ? "string" : "number";
		size_t kept = 0;
		for (size_t j = 0; j < *n; j++) { /* drop the sampled rows the count replaces */
			vdb_field_stat *e = &(*f)[j];
			int replaced = !strcmp(e->path, x->path) &&
				       (x->type == VDB_FIELD_KEYWORD ? !strcmp(e->type, "string")
								     : !strcmp(e->type, "integer") ||
									       !strcmp(e->type, "number"));
			if (replaced)
				free((char *)e->path);
			else
				(*f)[kept++] = *e;
		}
		*n = kept;
		if (!count)
			continue;
		vdb_field_stat *grown = realloc(*f, (*n + 1) * sizeof **f);
		char *path = strdup(x->path);
		if (!grown || !path) {
			free(path);
			if (grown)
				*f = grown;
			return vdb_err_nomem(err);
		}
		*f = grown;
		(*f)[(*n)++] = (vdb_field_stat){path, type, (uint64_t)count, 1};
	}
	return VDB_OK;
}

static int stat_order(const void *a, const void *b)
{
	const vdb_field_stat *x = a, *y = b;
	int c = strcmp(x->path, y->path);
	return c ? c : strcmp(x->type, y->type);
}

static int by_path_type(const void *a, const void *b)
{
	const seen *x = a, *y = b;
	int c = strcmp(x->path, y->path);
	return c ? c : strcmp(x->type, y->type);
}

vdb_status vdb_collection_fields(vdb_collection *c, uint64_t max_records, vdb_field_stat **out,
				 size_t *n, uint64_t *sampled, vdb_error *err)
{
	const vdb_state *s = vdb_collection_state(c);
	*out = NULL;
	*n = 0;
	*sampled = 0;
	/* Spread over the whole collection: every step-th live record. */
	double step = max_records && s->live > max_records ? (double)s->live / (double)max_records : 1;
	double next = 0;
	uint64_t live_i = 0;
	walk w = {0};
	vdb_status st = VDB_OK;
	for (size_t g = 0; g < s->man.nseg && !st && !w.nomem; g++) {
		const vdb_segment *seg = &s->segs[g];
		for (uint64_t r = 0; r < seg->rows && !w.nomem; r++) {
			if (vdb_segment_is_dead(seg, r))
				continue;
			if ((double)live_i++ < next)
				continue;
			next += step;
			const char *p;
			size_t len;
			if ((st = vdb_segment_payload(seg, r, &p, &len, err)))
				break;
			take_payload(&w, p, len);
			++*sampled;
		}
	}
	for (size_t i = 0; i < s->mt.n && !st && !w.nomem; i++) {
		const vdb_mem_entry *e = &s->mt.entries[i];
		if (e->deleted || (double)live_i++ < next)
			continue;
		next += step;
		if (e->has_payload)
			take_payload(&w, s->mt.payloads.data + e->payload_off, e->payload_len);
		++*sampled;
	}
	if (!st && w.nomem)
		st = vdb_err_nomem(err);
	vdb_field_stat *f = NULL;
	size_t nf = 0;
	if (!st && w.n) {
		qsort(w.v, w.n, sizeof *w.v, by_path_type);
		if (!(f = calloc(w.n, sizeof *f)))
			st = vdb_err_nomem(err);
		for (size_t i = 0; !st && i < w.n; i++) {
			if (nf && !strcmp(f[nf - 1].path, w.v[i].path) && f[nf - 1].type == w.v[i].type) {
				f[nf - 1].records++;
				continue;
			}
			f[nf++] = (vdb_field_stat){w.v[i].path, w.v[i].type, 1, 0};
			w.v[i].path = NULL; /* now f's */
		}
	}
	for (size_t i = 0; i < w.n; i++)
		free(w.v[i].path);
	free(w.v);
	/* A sample's figures of indexed fields are replaced by the indexes' exact counts. */
	if (!st && *sampled < s->live && s->cfg.n_index_fields &&
	    !(st = exact_indexed(s, &f, &nf, err)) && nf)
		qsort(f, nf, sizeof *f, stat_order);
	if (st) {
		vdb_field_stats_free(f, nf);
		return st;
	}
	*out = f;
	*n = nf;
	return VDB_OK;
}

void vdb_field_stats_free(vdb_field_stat *f, size_t n)
{
	for (size_t i = 0; f && i < n; i++)
		free((char *)f[i].path);
	free(f);
}
