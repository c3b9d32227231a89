/* The payload fields a collection's records hold (vdb_collection_fields): every path, dotted
 * into nested objects as filters write them, with its JSON type and how many records hold
 * it so. Payloads are read in place (segments' payload sections, the log tail's memtable),
 * without the checksum pass a cursor makes, so that a sample of a large collection costs a
 * sample's reads. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "../formats/payload.h"
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
			f[nf++] = (vdb_field_stat){w.v[i].path, w.v[i].type, 1};
			w.v[i].path = NULL; /* now f's */
		}
	}
	for (size_t i = 0; i < w.n; i++)
		free(w.v[i].path);
	free(w.v);
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
