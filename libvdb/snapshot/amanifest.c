/* The archive manifest: a checked-text file (util/io.h) holding JSON:
 *   {"vdb_snapshot":1,"vdb_version":"0.1.0","id":"<32 hex>","created":"2026-11-20T23:59:01Z",
 *    "base":"<file>"|null, "depends":[{"file":"...","id":"..."}],
 *    "collections":[{"name":"docs","records":120,"segments":2,"config":{CONFIG body}}],
 *    "entries":[{"name":"docs/seg-00000003.vdb","size":532480,"crc32c":"1a2b3c4d",
 *                "header_crc":305419896,"from":"<file>"}]}
 * Entries are listed in archive order; one with "from" is not in this archive but in the
 * earlier snapshot named (an incremental's dependency). Version 2 adds log deltas: a log
 * entry with "at":N stores only its bytes from N on here ("tail_crc32c" their CRC), and
 * "pieces":[{"from":"<file>","at":0,"size":N,"crc32c":"..."}] say which earlier snapshots
 * store the bytes before N, in order. Everything is validated on parse: the manifest
 * decides what a restore may write, so it is the first thing checked. */
#include "amanifest.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../storage/format.h"
#include "../util/error.h"
#include "../util/io.h"
#include "../util/zstream.h"

#define JSON_INT_MAX ((1ull << 53) - 1)

static int digits(const char *s, const char *end)
{
	if (s == end)
		return 0;
	for (; s < end; s++)
		if (*s < '0' || *s > '9')
			return 0;
	return 1;
}

static int file_name_ok(const char *f)
{
	size_t n = strlen(f);
	if (!strcmp(f, VDB_CONFIG_FILE) || !strcmp(f, VDB_MANIFEST_FILE))
		return 1;
	if (n > 8 && !strncmp(f, "seg-", 4) && !strcmp(f + n - 4, ".vdb"))
		return digits(f + 4, f + n - 4);
	if (n > 8 && !strncmp(f, "wal-", 4) && !strcmp(f + n - 4, ".log"))
		return digits(f + 4, f + n - 4);
	if (n > 10 && !strncmp(f, "del-", 4) && !strcmp(f + n - 4, ".vdb")) {
		const char *dash = strchr(f + 4, '-');
		return dash && digits(f + 4, dash) && digits(dash + 1, f + n - 4);
	}
	return 0;
}

int vdb_arc_name_ok(const char *name)
{
	if (!strcmp(name, VDB_DIR_MARKER))
		return 1;
	const char *slash = strchr(name, '/');
	if (!slash || slash - name > VDB_NAME_MAX || strlen(name) > VDB_TAR_NAME_MAX)
		return 0;
	char coll[VDB_NAME_MAX + 1];
	memcpy(coll, name, (size_t)(slash - name));
	coll[slash - name] = '\0';
	return vdb_collection_name_valid(coll) && file_name_ok(slash + 1);
}

long vdb_arc_find(const vdb_arc_manifest *m, const char *name)
{
	for (size_t i = 0; i < m->nent; i++)
		if (!strcmp(m->entries[i].name, name))
			return (long)i;
	return -1;
}

void vdb_arc_manifest_free(vdb_arc_manifest *m)
{
	for (size_t i = 0; i < m->nent; i++)
		free(m->entries[i].pieces);
	for (size_t i = 0; i < m->ncoll; i++)
		free(m->colls[i].config);
	free(m->colls);
	free(m->deps);
	free(m->entries);
	memset(m, 0, sizeof *m);
}

static void put_crc(char out[16], uint32_t crc)
{
	snprintf(out, 16, "%08" PRIx32, crc);
}

/* A log delta's "at", "tail_crc32c" and "pieces". */
static int encode_pieces(cJSON *o, const vdb_arc_manifest *m, const vdb_arc_entry *e)
{
	char crc[16];
	put_crc(crc, e->tail_crc);
	cJSON *arr;
	if (!cJSON_AddNumberToObject(o, "at", (double)e->at) ||
	    !cJSON_AddStringToObject(o, "tail_crc32c", crc) ||
	    !(arr = cJSON_AddArrayToObject(o, "pieces")))
		return 0;
	for (size_t i = 0; i < e->npieces; i++) {
		const vdb_arc_piece *p = &e->pieces[i];
		cJSON *q = cJSON_CreateObject();
		put_crc(crc, p->crc);
		if (!q || !cJSON_AddItemToArray(arr, q) ||
		    !cJSON_AddStringToObject(q, "from", m->deps[p->from].file) ||
		    !cJSON_AddNumberToObject(q, "at", (double)p->at) ||
		    !cJSON_AddNumberToObject(q, "size", (double)p->size) ||
		    !cJSON_AddStringToObject(q, "crc32c", crc))
			return 0;
	}
	return 1;
}

vdb_status vdb_arc_manifest_encode(const vdb_arc_manifest *m, char **out, size_t *len,
				   vdb_error *err)
{
	unsigned format = 1; /* what older vdb reads, unless a log delta needs version 2 */
	for (size_t i = 0; i < m->nent; i++)
		if (m->entries[i].at)
			format = 2;
	cJSON *root = cJSON_CreateObject(), *deps, *colls, *ents;
	int ok = root && cJSON_AddNumberToObject(root, "vdb_snapshot", format) &&
		 cJSON_AddStringToObject(root, "vdb_version", m->vdb_version) &&
		 cJSON_AddStringToObject(root, "id", m->id) &&
		 cJSON_AddStringToObject(root, "created", m->created) &&
		 (m->base[0] ? cJSON_AddStringToObject(root, "base", m->base) != NULL
			     : cJSON_AddNullToObject(root, "base") != NULL) &&
		 (deps = cJSON_AddArrayToObject(root, "depends")) &&
		 (colls = cJSON_AddArrayToObject(root, "collections")) &&
		 (ents = cJSON_AddArrayToObject(root, "entries"));
	for (size_t i = 0; ok && i < m->ndep; i++) {
		cJSON *d = cJSON_CreateObject();
		ok = d && cJSON_AddItemToArray(deps, d) &&
		     cJSON_AddStringToObject(d, "file", m->deps[i].file) &&
		     cJSON_AddStringToObject(d, "id", m->deps[i].id);
	}
	for (size_t i = 0; ok && i < m->ncoll; i++) {
		const vdb_arc_coll *c = &m->colls[i];
		cJSON *o = cJSON_CreateObject(), *cfg = cJSON_Parse(c->config);
		ok = o && cJSON_AddItemToArray(colls, o) && cfg &&
		     cJSON_AddStringToObject(o, "name", c->name) &&
		     cJSON_AddNumberToObject(o, "records", (double)c->records) &&
		     cJSON_AddNumberToObject(o, "segments", (double)c->segments) &&
		     cJSON_AddItemToObject(o, "config", cfg);
		if (!ok && cfg && !cJSON_IsInvalid(cfg) && !o)
			cJSON_Delete(cfg);
	}
	for (size_t i = 0; ok && i < m->nent; i++) {
		const vdb_arc_entry *e = &m->entries[i];
		char crc[16];
		put_crc(crc, e->crc);
		cJSON *o = cJSON_CreateObject();
		ok = o && cJSON_AddItemToArray(ents, o) &&
		     cJSON_AddStringToObject(o, "name", e->name) &&
		     cJSON_AddNumberToObject(o, "size", (double)e->size) &&
		     cJSON_AddStringToObject(o, "crc32c", crc) &&
		     (!e->header_crc ||
		      cJSON_AddNumberToObject(o, "header_crc", (double)e->header_crc)) &&
		     (e->from < 0 || cJSON_AddStringToObject(o, "from", m->deps[e->from].file)) &&
		     (!e->at || encode_pieces(o, m, e));
	}
	char *text = ok ? cJSON_PrintUnformatted(root) : NULL;
	cJSON_Delete(root);
	if (!text)
		return vdb_err_nomem(err);
	size_t n = strlen(text);
	char *body = malloc(n + 2);
	if (!body) {
		free(text);
		return vdb_err_nomem(err);
	}
	memcpy(body, text, n);
	memcpy(body + n, "\n", 2);
	free(text);
	vdb_status st = vdb_checked_encode("snapshot", format, body, out, len, err);
	free(body);
	return st;
}

static int get_u64(const cJSON *o, const char *key, uint64_t *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > (double)JSON_INT_MAX ||
	    v->valuedouble != floor(v->valuedouble))
		return -1;
	*out = (uint64_t)v->valuedouble;
	return 0;
}

static int get_str(const cJSON *o, const char *key, char *out, size_t cap)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	if (!cJSON_IsString(v) || strlen(v->valuestring) >= cap)
		return -1;
	strcpy(out, v->valuestring);
	return 0;
}

/* A dependency's file name: a plain name, resolved only inside the chain directory. */
static int dep_file_ok(const char *f)
{
	return f[0] && f[0] != '.' && !strchr(f, '/');
}

static int get_crc(const cJSON *o, const char *key, uint32_t *out)
{
	char crc[16], extra;
	unsigned x;
	if (get_str(o, key, crc, sizeof crc) || strlen(crc) != 8 ||
	    sscanf(crc, "%8x%c", &x, &extra) != 1)
		return -1;
	*out = x;
	return 0;
}

static int find_dep(const vdb_arc_manifest *m, const char *file)
{
	for (size_t k = 0; k < m->ndep; k++)
		if (!strcmp(m->deps[k].file, file))
			return (int)k;
	return -1;
}

static int is_log_name(const char *name)
{
	const char *slash = strrchr(name, '/');
	return slash && !strncmp(slash + 1, "wal-", 4);
}

/* A log delta's fields (version 2): pieces from dependencies covering [0, at) in order,
 * at <= size. */
static int parse_pieces(const cJSON *o, vdb_arc_manifest *m, vdb_arc_entry *e, const char **why)
{
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(o, "pieces");
	if (!cJSON_GetObjectItemCaseSensitive(o, "at") && !arr)
		return 0;
	*why = "malformed log delta";
	if (m->format < 2 || get_u64(o, "at", &e->at) || !e->at || e->at > e->size ||
	    e->from >= 0 || !is_log_name(e->name) || get_crc(o, "tail_crc32c", &e->tail_crc) ||
	    !cJSON_IsArray(arr))
		return -1;
	int n = cJSON_GetArraySize(arr);
	if (n < 1 || (unsigned)n > VDB_ARC_MAX_PIECES)
		return -1;
	if (!(e->pieces = calloc((size_t)n, sizeof *e->pieces))) {
		*why = "out of memory";
		return -1;
	}
	uint64_t at = 0;
	const cJSON *q;
	cJSON_ArrayForEach(q, arr)
	{
		vdb_arc_piece *p = &e->pieces[e->npieces];
		char from[VDB_ARC_FILE_MAX + 1];
		if (get_str(q, "from", from, sizeof from) || (p->from = find_dep(m, from)) < 0 ||
		    get_u64(q, "at", &p->at) || get_u64(q, "size", &p->size) ||
		    get_crc(q, "crc32c", &p->crc) || p->at != at || !p->size ||
		    p->size > e->at - at)
			return -1;
		at += p->size;
		e->npieces++;
	}
	return at == e->at ? 0 : -1;
}

static int parse_body(const cJSON *root, vdb_arc_manifest *m, const char **why)
{
	uint64_t v;
	const cJSON *deps = cJSON_GetObjectItemCaseSensitive(root, "depends");
	const cJSON *colls = cJSON_GetObjectItemCaseSensitive(root, "collections");
	const cJSON *ents = cJSON_GetObjectItemCaseSensitive(root, "entries");
	const cJSON *base = cJSON_GetObjectItemCaseSensitive(root, "base");
	*why = "malformed manifest";
	if (!cJSON_IsObject(root) || get_u64(root, "vdb_snapshot", &v) ||
	    get_str(root, "vdb_version", m->vdb_version, sizeof m->vdb_version) ||
	    get_str(root, "id", m->id, sizeof m->id) ||
	    get_str(root, "created", m->created, sizeof m->created) || !cJSON_IsArray(deps) ||
	    !cJSON_IsArray(colls) || !cJSON_IsArray(ents))
		return -1;
	if (v < 1 || v > VDB_ARC_FORMAT) {
		*why = "snapshot format version is not supported by this vdb";
		return -1;
	}
	m->format = (unsigned)v;
	if (cJSON_IsString(base)) {
		if (strlen(base->valuestring) >= sizeof m->base || !dep_file_ok(base->valuestring))
			return -1;
		strcpy(m->base, base->valuestring);
	} else if (!cJSON_IsNull(base)) {
		return -1;
	}
	int nd = cJSON_GetArraySize(deps), nc = cJSON_GetArraySize(colls);
	int ne = cJSON_GetArraySize(ents);
	if (nd > 10000 || nc > 100000 || ne < 0 || (unsigned)ne > VDB_ARC_MAX_ENTRIES) {
		*why = "the manifest lists too many items";
		return -1;
	}
	m->deps = calloc((size_t)nd + 1, sizeof *m->deps);
	m->colls = calloc((size_t)nc + 1, sizeof *m->colls);
	m->entries = calloc((size_t)ne + 1, sizeof *m->entries);
	if (!m->deps || !m->colls || !m->entries) {
		*why = "out of memory";
		return -1;
	}
	const cJSON *o;
	cJSON_ArrayForEach(o, deps)
	{
		vdb_arc_dep *d = &m->deps[m->ndep];
		if (get_str(o, "file", d->file, sizeof d->file) || !dep_file_ok(d->file) ||
		    get_str(o, "id", d->id, sizeof d->id))
			return -1;
		m->ndep++;
	}
	cJSON_ArrayForEach(o, colls)
	{
		vdb_arc_coll *c = &m->colls[m->ncoll];
		const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(o, "config");
		if (get_str(o, "name", c->name, sizeof c->name) ||
		    !vdb_collection_name_valid(c->name) || get_u64(o, "records", &c->records) ||
		    get_u64(o, "segments", &c->segments) || !cJSON_IsObject(cfg))
			return -1;
		for (size_t k = 0; k < m->ncoll; k++)
			if (!strcmp(m->colls[k].name, c->name)) {
				*why = "a collection is listed twice";
				return -1;
			}
		if (!(c->config = cJSON_PrintUnformatted(cfg))) {
			*why = "out of memory";
			return -1;
		}
		m->ncoll++;
	}
	cJSON_ArrayForEach(o, ents)
	{
		vdb_arc_entry *e = &m->entries[m->nent];
		char from[VDB_ARC_FILE_MAX + 1];
		uint64_t hc = 0;
		m->nent++; /* counted now: vdb_arc_manifest_free frees its pieces */
		if (get_str(o, "name", e->name, sizeof e->name) ||
		    get_u64(o, "size", &e->size) || get_crc(o, "crc32c", &e->crc) ||
		    (cJSON_GetObjectItemCaseSensitive(o, "header_crc") &&
		     (get_u64(o, "header_crc", &hc) || hc > UINT32_MAX)))
			return -1;
		if (!vdb_arc_name_ok(e->name)) {
			*why = "the manifest lists a name vdb never writes";
			return -1;
		}
		e->header_crc = (uint32_t)hc;
		e->from = -1;
		if (cJSON_GetObjectItemCaseSensitive(o, "from")) {
			if (get_str(o, "from", from, sizeof from))
				return -1;
			if ((e->from = find_dep(m, from)) < 0) {
				*why = "an entry refers to a snapshot missing from \"depends\"";
				return -1;
			}
		}
		if (parse_pieces(o, m, e, why))
			return -1;
	}
	return 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(((const vdb_arc_entry *)a)->name, ((const vdb_arc_entry *)b)->name);
}

/* Every entry once; every entry's collection listed; every collection complete. */
static int check_structure(const vdb_arc_manifest *m, const char **why)
{
	vdb_arc_entry *sorted = malloc((m->nent + 1) * sizeof *sorted);
	if (!sorted) {
		*why = "out of memory";
		return -1;
	}
	memcpy(sorted, m->entries, m->nent * sizeof *sorted);
	qsort(sorted, m->nent, sizeof *sorted, cmp_names);
	int dup = 0;
	for (size_t i = 1; i < m->nent; i++)
		dup |= !strcmp(sorted[i].name, sorted[i - 1].name);
	free(sorted);
	if (dup) {
		*why = "an entry is listed twice";
		return -1;
	}
	if (vdb_arc_find(m, VDB_DIR_MARKER) < 0) {
		*why = "the manifest lists no VDB marker";
		return -1;
	}
	for (size_t i = 0; i < m->nent; i++) {
		const char *slash = strchr(m->entries[i].name, '/');
		if (!slash)
			continue;
		size_t n = (size_t)(slash - m->entries[i].name), k;
		for (k = 0; k < m->ncoll; k++)
			if (strlen(m->colls[k].name) == n && !strncmp(m->colls[k].name,
								      m->entries[i].name, n))
				break;
		if (k == m->ncoll) {
			*why = "an entry belongs to no listed collection";
			return -1;
		}
	}
	for (size_t k = 0; k < m->ncoll; k++) {
		char a[VDB_TAR_NAME_MAX + 1], b[VDB_TAR_NAME_MAX + 1];
		snprintf(a, sizeof a, "%s/%s", m->colls[k].name, VDB_CONFIG_FILE);
		snprintf(b, sizeof b, "%s/%s", m->colls[k].name, VDB_MANIFEST_FILE);
		if (vdb_arc_find(m, a) < 0 || vdb_arc_find(m, b) < 0) {
			*why = "a collection lacks its CONFIG or MANIFEST";
			return -1;
		}
	}
	return 0;
}

vdb_status vdb_arc_manifest_parse(const char *what, const char *data, size_t len,
				  vdb_arc_manifest *m, vdb_error *err)
{
	const char *body;
	char path[4200];
	memset(m, 0, sizeof *m);
	snprintf(path, sizeof path, "%s: %s", what, VDB_ARC_MANIFEST_NAME);
	vdb_status st = vdb_checked_decode(path, "snapshot", VDB_ARC_FORMAT, data, len, &body, err);
	if (st)
		return st;
	cJSON *root = cJSON_ParseWithLength(body, len - (size_t)(body - data));
	const char *why = "malformed manifest";
	int bad = !root || parse_body(root, m, &why) || check_structure(m, &why);
	cJSON_Delete(root);
	if (bad) {
		vdb_arc_manifest_free(m);
		return vdb_err(err, !strcmp(why, "out of memory") ? VDB_ENOMEM : VDB_ECORRUPT,
			       "%s: %s", path, why);
	}
	return VDB_OK;
}

vdb_status vdb_arc_read_manifest(vdb_zreader *r, const char *what, vdb_arc_manifest *m,
				 vdb_error *err)
{
	unsigned char h[VDB_TAR_BLOCK];
	size_t got;
	vdb_tar_entry e;
	const char *why;
	vdb_status st = vdb_zreader_read(r, h, sizeof h, &got, VDB_ARC_MANIFEST_NAME, err);
	if (st)
		return st;
	if (got < sizeof h)
		return vdb_err(err, VDB_ECORRUPT, "%s: truncated archive (no manifest)", what);
	if (vdb_tar_parse(h, &e, &why))
		return vdb_err(err, VDB_ECORRUPT, "%s: not a vdb snapshot (first entry: %s)", what,
			       why);
	if (strcmp(e.name, VDB_ARC_MANIFEST_NAME) || (e.type != '0' && e.type != '\0'))
		return vdb_err(err, VDB_ECORRUPT,
			       "%s: not a vdb snapshot (the first entry is '%.100s', not %s)", what,
			       e.name, VDB_ARC_MANIFEST_NAME);
	if (e.size > VDB_ARC_MANIFEST_MAX)
		return vdb_err(err, VDB_ECORRUPT, "%s: %s is %llu bytes, over the %u-byte limit",
			       what, VDB_ARC_MANIFEST_NAME, (unsigned long long)e.size,
			       VDB_ARC_MANIFEST_MAX);
	size_t n = (size_t)(e.size + vdb_tar_pad(e.size));
	char *data = malloc(n + 1);
	if (!data)
		return vdb_err_nomem(err);
	st = vdb_zreader_read(r, data, n, &got, VDB_ARC_MANIFEST_NAME, err);
	if (!st && got < n)
		st = vdb_err(err, VDB_ECORRUPT, "%s: truncated archive (in %s)", what,
			     VDB_ARC_MANIFEST_NAME);
	if (!st)
		st = vdb_arc_manifest_parse(what, data, (size_t)e.size, m, err);
	free(data);
	if (!st)
		vdb_zreader_set_budget(r, vdb_arc_budget(m, e.size));
	return st;
}

uint64_t vdb_arc_budget(const vdb_arc_manifest *m, uint64_t manifest_size)
{
	/* Manifest and every stored entry with header and padding, then the two end blocks
	 * and the padding to a 10 KiB record (tar's blocking factor 20): at most 21 blocks. */
	uint64_t n = VDB_TAR_BLOCK + manifest_size + vdb_tar_pad(manifest_size);
	for (size_t i = 0; i < m->nent; i++) {
		/* Sizes are below 2^53 each; a million of them could still wrap: saturate. */
		uint64_t size = vdb_arc_stored_size(&m->entries[i]);
		uint64_t e = VDB_TAR_BLOCK + size + vdb_tar_pad(size);
		if (m->entries[i].from < 0)
			n = e > UINT64_MAX - n ? UINT64_MAX : n + e;
	}
	return n > UINT64_MAX - 21 * VDB_TAR_BLOCK ? UINT64_MAX : n + 21 * VDB_TAR_BLOCK;
}
