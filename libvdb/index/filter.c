/* The payload filter language: Mongo-style JSON compiled once into a tree, then evaluated
 * against many payloads without building any document tree for them.
 *
 *   {"lang": "en"}                        equality: strings, numbers, booleans, null
 *   {"year": {"$gte": 2020, "$lt": 2025}} $eq $ne $gt $gte $lt $lte (numbers or strings)
 *   {"tag": {"$in": [...]}} {"$nin": ...} membership
 *   {"author": {"$exists": true}}         presence
 *   {"meta.source": "web"}                dotted paths into nested objects
 *   {"$and": [...]} {"$or": [...]} {"$not": {...}}; several keys in one object mean AND;
 *   {"year": {"$not": {"$gt": 2020}}}     negation of one field's conditions
 *
 * Semantics (documented in vdb-query(1)): a path that meets an array descends into its
 * object elements; a field whose value is an array matches when any element matches; a
 * missing field matches nothing but $exists:false, $ne and $nin (which are the negations of
 * "some value equals" / "some value is in" / "exists"). Numbers compare as doubles, strings
 * by their decoded bytes, and a range operator only compares values of its operand's type.
 *
 * Payloads are walked in place: they are minified JSON validated at ingest, but they come
 * from files, so the walk is bounds-checked and reports damage (-1) instead of trusting them. */
#include "filter.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../formats/json.h"
#include "../formats/payload.h"
#include "../util/buf.h"
#include "../util/error.h"

typedef enum { FV_STR, FV_NUM, FV_BOOL, FV_NULL } fv_type;

typedef struct fvalue {
	fv_type type;
	double num;
	int b;
	char *s; /* decoded string (owned), may contain NUL bytes */
	size_t len;
} fvalue;

/* Leaf operators after compilation: $ne, $nin and $exists:false become the negation of the
 * positive test ("some value equals", "some value is in", "exists"). */
typedef enum { OP_EQ, OP_GT, OP_GTE, OP_LT, OP_LTE, OP_IN, OP_EXISTS } fop;

typedef enum { N_ALL, N_AND, N_OR, N_NOT, N_LEAF } nkind;

typedef vdb_payload_part pseg;

typedef struct fnode {
	nkind kind;
	struct fnode **kids; /* AND, OR: nkids; NOT: one */
	size_t nkids;
	/* leaf */
	fop op;
	int negate;
	pseg *path;
	size_t npath;
	fvalue *vals; /* EQ, range: one; IN: nvals */
	size_t nvals;
} fnode;

struct vdb_filter {
	fnode *root;
	vdb_buf text; /* canonical (minified) source */
};

#define MAX_DEPTH VDB_PAYLOAD_MAX_DEPTH

/* ---- the tree ------------------------------------------------------------------------ */

static void node_free(fnode *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->nkids; i++)
		node_free(n->kids[i]);
	free(n->kids);
	for (size_t i = 0; i < n->npath; i++)
		free((char *)n->path[i].s); /* the leaf's own copy (new_leaf) */
	free(n->path);
	for (size_t i = 0; i < n->nvals; i++)
		free(n->vals[i].s);
	free(n->vals);
	free(n);
}

void vdb_filter_free(vdb_filter *f)
{
	if (!f)
		return;
	node_free(f->root);
	vdb_buf_free(&f->text);
	free(f);
}

const char *vdb_filter_text(const vdb_filter *f, size_t *len)
{
	*len = f->text.len;
	return f->text.data;
}

int vdb_filter_is_all(const vdb_filter *f)
{
	return f->root->kind == N_ALL;
}

static void node_fields(const fnode *n, void (*fn)(void *, const char *, const char *),
			void *ctx)
{
	for (size_t i = 0; i < n->nkids; i++)
		node_fields(n->kids[i], fn, ctx);
	if (n->kind != N_LEAF)
		return;
	char path[1024];
	size_t len = 0;
	for (size_t i = 0; i < n->npath && len < sizeof path; i++)
		len += (size_t)snprintf(path + len, sizeof path - len, "%s%.*s", i ? "." : "",
					(int)n->path[i].len, n->path[i].s);
	static const char *const names[] = {"string", "number", "boolean", "null"};
	fn(ctx, path, n->op == OP_EXISTS || !n->nvals ? NULL : names[n->vals[0].type]);
}

void vdb_filter_fields(const vdb_filter *f, void (*fn)(void *, const char *, const char *),
		       void *ctx)
{
	node_fields(f->root, fn, ctx);
}

static int add_kid(fnode *parent, fnode *kid)
{
	fnode **k = realloc(parent->kids, (parent->nkids + 1) * sizeof *k);
	if (!k)
		return -1;
	k[parent->nkids++] = kid;
	parent->kids = k;
	return 0;
}

/* A deep copy of n, or NULL when out of memory. Counts grow with what is copied, so that
 * node_free can take a copy that stopped half way. */
static fnode *node_clone(const fnode *n)
{
	fnode *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->kind = n->kind;
	c->op = n->op;
	c->negate = n->negate;
	if ((n->nkids && !(c->kids = calloc(n->nkids, sizeof *c->kids))) ||
	    (n->npath && !(c->path = calloc(n->npath, sizeof *c->path))) ||
	    (n->nvals && !(c->vals = calloc(n->nvals, sizeof *c->vals))))
		goto fail;
	for (; c->nkids < n->nkids; c->nkids++)
		if (!(c->kids[c->nkids] = node_clone(n->kids[c->nkids])))
			goto fail;
	for (; c->npath < n->npath; c->npath++) {
		const pseg *p = &n->path[c->npath];
		char *s = malloc(p->len + 1);
		if (!s)
			goto fail;
		memcpy(s, p->s, p->len + 1); /* the leaf's copies are NUL-terminated */
		c->path[c->npath] = (pseg){s, p->len};
	}
	for (; c->nvals < n->nvals; c->nvals++) {
		const fvalue *v = &n->vals[c->nvals];
		fvalue *w = &c->vals[c->nvals];
		*w = *v;
		if (v->s && !(w->s = malloc(v->len + 1)))
			goto fail;
		if (v->s) {
			memcpy(w->s, v->s, v->len);
			w->s[v->len] = '\0';
		}
	}
	return c;
fail:
	node_free(c);
	return NULL;
}

vdb_status vdb_filter_and(const vdb_filter *a, const vdb_filter *b, vdb_filter **out,
			  vdb_error *err)
{
	vdb_filter *f = calloc(1, sizeof *f);
	fnode *and = calloc(1, sizeof *and);
	fnode *ka = node_clone(a->root), *kb = node_clone(b->root);
	if (!f || !and || !ka || !kb)
		goto nomem;
	and->kind = N_AND;
	f->root = and;
	if (add_kid(and, ka) || (ka = NULL, add_kid(and, kb)))
		goto nomem;
	kb = NULL;
	/* The canonical text is the source the AND would have been parsed from: equal texts
	 * still mean equal selections. */
	if (vdb_buf_puts(&f->text, "{\"$and\":[") || vdb_buf_append(&f->text, a->text.data, a->text.len) ||
	    vdb_buf_putc(&f->text, ',') || vdb_buf_append(&f->text, b->text.data, b->text.len) ||
	    vdb_buf_puts(&f->text, "]}"))
		goto nomem;
	*out = f;
	return VDB_OK;
nomem:
	node_free(ka);
	node_free(kb);
	if (!f || !f->root)
		node_free(and);
	vdb_filter_free(f);
	return vdb_err_nomem(err);
}

/* ---- compiling ------------------------------------------------------------------------ */

/* The source has been validated whole (strict JSON, no duplicate keys) before compiling, so
 * the scanner calls below cannot fail on syntax; they can only run out of memory. */
typedef struct compiler {
	vj_reader r;
	vdb_buf key;
	vdb_error *err;
	vdb_status st;
} compiler;

static fnode *fail(compiler *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static fnode *fail(compiler *c, const char *fmt, ...)
{
	if (c->st)
		return NULL;
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	c->st = vdb_err(c->err, VDB_EINVAL, "filter: %s", msg);
	return NULL;
}

static fnode *oom(compiler *c)
{
	if (!c->st)
		c->st = vdb_err_nomem(c->err);
	return NULL;
}

/* Quotes text for a message: shortened, control bytes shown as '?'. */
static const char *shown(const char *s, size_t len, char out[72])
{
	size_t n = len < 64 ? len : 64, j = 0;
	for (size_t i = 0; i < n; i++)
		out[j++] = (unsigned char)s[i] < 0x20 ? '?' : s[i];
	if (n < len)
		out[j++] = '.', out[j++] = '.', out[j++] = '.';
	out[j] = '\0';
	return out;
}

/* Reads the next key into c->key (decoded). */
static int next_key(compiler *c)
{
	c->key.len = 0;
	if (vj_string(&c->r, &c->key) || vj_expect(&c->r, ':'))
		return -1;
	return 0;
}

/* After a member: 1 when another follows (consumes ','), 0 at '}' (consumes it). */
static int more(compiler *c)
{
	int ch = vj_peek(&c->r);
	c->r.p++;
	return ch == ',';
}

/* A scalar operand at the cursor, or -1 (not a scalar: the value is skipped). */
static int scalar(compiler *c, fvalue *v)
{
	int ch = vj_peek(&c->r);
	memset(v, 0, sizeof *v);
	if (ch == '"') {
		vdb_buf b = VDB_BUF_INIT;
		if (vj_string(&c->r, &b) || vdb_buf_putc(&b, '\0')) {
			vdb_buf_free(&b);
			oom(c);
			return -2;
		}
		v->type = FV_STR;
		v->s = b.data;
		v->len = b.len - 1;
		return 0;
	}
	if (ch == '-' || (ch >= '0' && ch <= '9')) {
		const char *tok;
		size_t n;
		vj_number(&c->r, &tok, &n);
		v->type = FV_NUM;
		if (vdb_json_number(tok, n, &v->num)) {
			oom(c);
			return -2;
		}
		return 0;
	}
	const char *start = c->r.p;
	vj_value(&c->r, NULL);
	size_t n = (size_t)(c->r.p - start);
	if (n == 4 && !memcmp(start, "true", 4))
		v->type = FV_BOOL, v->b = 1;
	else if (n == 5 && !memcmp(start, "false", 5))
		v->type = FV_BOOL, v->b = 0;
	else if (n == 4 && !memcmp(start, "null", 4))
		v->type = FV_NULL;
	else
		return -1;
	return 0;
}

static fnode *new_leaf(compiler *c, const pseg *path, size_t npath, fop op, int negate)
{
	fnode *n = calloc(1, sizeof *n);
	if (!n || !(n->path = calloc(npath, sizeof *n->path))) {
		free(n);
		return oom(c);
	}
	n->kind = N_LEAF;
	n->op = op;
	n->negate = negate;
	n->npath = npath;
	for (size_t i = 0; i < npath; i++) {
		char *copy = malloc(path[i].len + 1);
		if (!copy) {
			node_free(n);
			return oom(c);
		}
		memcpy(copy, path[i].s, path[i].len);
		copy[path[i].len] = '\0';
		n->path[i] = (pseg){copy, path[i].len};
	}
	return n;
}

static const struct {
	const char *name;
	fop op;
	int negate;
} ops[] = {{"$eq", OP_EQ, 0},   {"$ne", OP_EQ, 1},   {"$gt", OP_GT, 0},   {"$gte", OP_GTE, 0},
	   {"$lt", OP_LT, 0},   {"$lte", OP_LTE, 0}, {"$in", OP_IN, 0},   {"$nin", OP_IN, 1},
	   {"$exists", OP_EXISTS, 0}};

static fnode *field_ops(compiler *c, const pseg *path, size_t npath, const char *pname,
			int depth);

/* One operator of a field's operator object, the key already read into c->key. */
static fnode *field_op(compiler *c, const pseg *path, size_t npath, const char *pname,
		       int depth)
{
	char ob[72];
	const char *oname = shown(c->key.data, c->key.len, ob);
	if (!strcmp(oname, "$not") && c->key.len == 4) {
		if (vj_peek(&c->r) != '{') {
			vj_value(&c->r, NULL);
			return fail(c, "\"$not\" at \"%s\" needs an object of operators", pname);
		}
		fnode *inner = field_ops(c, path, npath, pname, depth + 1);
		if (!inner)
			return NULL;
		fnode *n = calloc(1, sizeof *n);
		if (!n || add_kid(n, inner)) {
			free(n);
			node_free(inner);
			return oom(c);
		}
		n->kind = N_NOT;
		return n;
	}
	size_t i = 0;
	while (i < sizeof ops / sizeof ops[0] &&
	       !(strlen(ops[i].name) == c->key.len && !memcmp(ops[i].name, c->key.data, c->key.len)))
		i++;
	if (i == sizeof ops / sizeof ops[0])
		return fail(c, "unknown operator \"%s\" at \"%s\"", oname, pname);
	fnode *n = new_leaf(c, path, npath, ops[i].op, ops[i].negate);
	if (!n)
		return NULL;
	fvalue v;
	if (ops[i].op == OP_EXISTS) {
		if (scalar(c, &v) || v.type != FV_BOOL) {
			free(v.s);
			node_free(n);
			return fail(c, "\"$exists\" at \"%s\" needs true or false", pname);
		}
		n->negate = !v.b;
		return n;
	}
	if (ops[i].op == OP_IN) {
		if (vj_peek(&c->r) != '[') {
			vj_value(&c->r, NULL);
			node_free(n);
			return fail(c, "\"%s\" at \"%s\" needs an array of values", oname, pname);
		}
		c->r.p++;
		while (vj_peek(&c->r) != ']') {
			fvalue *nv = realloc(n->vals, (n->nvals + 1) * sizeof *nv);
			if (!nv) {
				node_free(n);
				return oom(c);
			}
			n->vals = nv;
			int r = scalar(c, &nv[n->nvals]);
			if (r) {
				node_free(n);
				return r == -2 ? NULL
					       : fail(c, "\"%s\" at \"%s\": values must be strings, "
							 "numbers, booleans or null", oname, pname);
			}
			n->nvals++;
			if (vj_peek(&c->r) == ',')
				c->r.p++;
		}
		c->r.p++;
		return n;
	}
	if (!(n->vals = calloc(1, sizeof *n->vals))) {
		node_free(n);
		return oom(c);
	}
	int r = scalar(c, &n->vals[0]);
	n->nvals = r ? 0 : 1;
	if (r == -2) {
		node_free(n);
		return NULL;
	}
	if (r || (ops[i].op != OP_EQ &&
		  n->vals[0].type != FV_NUM && n->vals[0].type != FV_STR)) {
		node_free(n);
		return fail(c, "\"%s\" at \"%s\" needs %s", oname, pname,
			    ops[i].op == OP_EQ ? "a string, number, boolean or null"
					       : "a number or a string");
	}
	return n;
}

/* {"$op": value, ...} for one field: the AND of its operators. */
static fnode *field_ops(compiler *c, const pseg *path, size_t npath, const char *pname, int depth)
{
	if (depth > MAX_DEPTH)
		return fail(c, "nested too deeply at \"%s\"", pname);
	c->r.p++; /* '{' */
	fnode *and = calloc(1, sizeof *and);
	if (!and)
		return oom(c);
	and->kind = N_AND;
	if (vj_peek(&c->r) == '}') {
		c->r.p++;
		node_free(and);
		return fail(c, "empty operator object at \"%s\"", pname);
	}
	do {
		if (next_key(c)) {
			node_free(and);
			return oom(c);
		}
		if (!c->key.len || c->key.data[0] != '$') {
			char kb[72];
			node_free(and);
			return fail(c, "\"%s\" at \"%s\": an operator object holds only $-operators "
				       "(to match a nested field use the dotted path \"%s.%s\")",
				    shown(c->key.data, c->key.len, kb), pname, pname, kb);
		}
		fnode *kid = field_op(c, path, npath, pname, depth);
		if (!kid || add_kid(and, kid)) {
			node_free(kid);
			node_free(and);
			return kid ? oom(c) : NULL;
		}
	} while (more(c));
	if (and->nkids == 1) {
		fnode *only = and->kids[0];
		and->nkids = 0;
		node_free(and);
		return only;
	}
	return and;
}

static fnode *object(compiler *c, int depth);

/* The value of a field path, the key (the path) in c->key. */
static fnode *field(compiler *c, int depth)
{
	char pname[72];
	/* An empty key ("") may have left the buffer unallocated: no arithmetic on NULL. */
	const char *key = c->key.data ? c->key.data : "";
	shown(key, c->key.len, pname);
	pseg path[MAX_DEPTH];
	size_t npath = 0;
	const char *s = key, *e = s + c->key.len;
	for (const char *p = s;; p++) {
		if (p == e || *p == '.') {
			if (p == s || npath == MAX_DEPTH) {
				vj_value(&c->r, NULL);
				return fail(c, "invalid field path \"%s\" (%s)", pname,
					    npath == MAX_DEPTH ? "too many parts" : "empty part");
			}
			path[npath++] = (pseg){s, (size_t)(p - s)};
			s = p + 1;
			if (p == e)
				break;
		}
	}
	/* The key buffer is reused while the value is read: keep the path's bytes. */
	char *copy = malloc(c->key.len + 1);
	if (!copy)
		return oom(c);
	memcpy(copy, c->key.data, c->key.len);
	for (size_t i = 0; i < npath; i++)
		path[i].s = copy + (path[i].s - c->key.data);
	fnode *n = NULL;
	int ch = vj_peek(&c->r);
	if (ch == '{') {
		/* An operator object when its first key starts with '$'. */
		vj_reader save = c->r;
		c->r.p++;
		int ops_obj = 0;
		if (vj_peek(&c->r) == '"') {
			c->key.len = 0;
			vj_string(&c->r, &c->key);
			ops_obj = c->key.len && c->key.data[0] == '$';
		}
		c->r = save;
		if (ops_obj) {
			n = field_ops(c, path, npath, pname, depth + 1);
		} else {
			vj_value(&c->r, NULL);
			n = fail(c, "the value of \"%s\" is an object: compare nested fields with dotted "
				    "paths (\"%s.field\") or use operators ($gt, $in, ...)", pname, pname);
		}
	} else if (ch == '[') {
		vj_value(&c->r, NULL);
		n = fail(c, "the value of \"%s\" is an array: use {\"$in\": [...]}", pname);
	} else if ((n = new_leaf(c, path, npath, OP_EQ, 0))) {
		if (!(n->vals = calloc(1, sizeof *n->vals))) {
			node_free(n);
			n = oom(c);
		} else {
			scalar(c, &n->vals[0]); /* a string, number or literal here */
			n->nvals = 1;
		}
	}
	free(copy);
	return n;
}

/* A list of filters: the operand of $and / $or. */
static fnode *list(compiler *c, nkind kind, const char *name, int depth)
{
	if (vj_peek(&c->r) != '[') {
		vj_value(&c->r, NULL);
		return fail(c, "\"%s\" needs a non-empty array of filter objects", name);
	}
	c->r.p++;
	fnode *n = calloc(1, sizeof *n);
	if (!n)
		return oom(c);
	n->kind = kind;
	while (vj_peek(&c->r) != ']') {
		if (vj_peek(&c->r) != '{') {
			size_t at = n->nkids + 1;
			vj_value(&c->r, NULL);
			node_free(n);
			return fail(c, "\"%s\": element %zu is not a filter object", name, at);
		}
		fnode *kid = object(c, depth + 1);
		if (!kid || add_kid(n, kid)) {
			node_free(kid);
			node_free(n);
			return kid ? oom(c) : NULL;
		}
		if (vj_peek(&c->r) == ',')
			c->r.p++;
	}
	c->r.p++;
	if (!n->nkids) {
		node_free(n);
		return fail(c, "\"%s\" needs a non-empty array of filter objects", name);
	}
	return n;
}

/* A filter object: the AND of its members ({} matches everything). */
static fnode *object(compiler *c, int depth)
{
	if (depth > MAX_DEPTH)
		return fail(c, "nested too deeply");
	c->r.p++; /* '{' */
	fnode *and = calloc(1, sizeof *and);
	if (!and)
		return oom(c);
	and->kind = N_AND;
	if (vj_peek(&c->r) == '}') {
		c->r.p++;
		and->kind = N_ALL;
		return and;
	}
	do {
		if (next_key(c)) {
			node_free(and);
			return oom(c);
		}
		fnode *kid;
		char kb[72];
		if (c->key.len && c->key.data[0] == '$') {
			shown(c->key.data, c->key.len, kb);
			if (!strcmp(kb, "$and"))
				kid = list(c, N_AND, "$and", depth);
			else if (!strcmp(kb, "$or"))
				kid = list(c, N_OR, "$or", depth);
			else if (!strcmp(kb, "$not")) {
				if (vj_peek(&c->r) != '{') {
					vj_value(&c->r, NULL);
					kid = fail(c, "\"$not\" needs a filter object");
				} else {
					fnode *inner = object(c, depth + 1);
					kid = inner ? calloc(1, sizeof *kid) : NULL;
					if (inner && (!kid || add_kid(kid, inner))) {
						free(kid);
						node_free(inner);
						kid = oom(c);
					} else if (kid) {
						kid->kind = N_NOT;
					}
				}
			} else {
				kid = fail(c, "unknown operator \"%s\" (at the top of a filter: $and, "
					      "$or, $not, or a field path)", kb);
			}
		} else {
			kid = field(c, depth);
		}
		if (!kid || add_kid(and, kid)) {
			node_free(kid);
			node_free(and);
			return kid ? oom(c) : NULL;
		}
	} while (more(c));
	if (and->nkids == 1) {
		fnode *only = and->kids[0];
		and->nkids = 0;
		node_free(and);
		return only;
	}
	return and;
}

vdb_status vdb_filter_parse(const char *json, size_t len, vdb_filter **out, vdb_error *err)
{
	vdb_filter *f = calloc(1, sizeof *f);
	if (!f)
		return vdb_err_nomem(err);
	vj_reader r;
	vj_init(&r, json, len);
	int ch = vj_peek(&r);
	if (vj_value(&r, &f->text) || vj_end(&r)) {
		vdb_filter_free(f);
		return vdb_err(err, VDB_EINVAL, "filter: invalid JSON at column %zu: %s",
			       r.err_off + 1, r.err);
	}
	if (ch != '{') {
		vdb_filter_free(f);
		return vdb_err(err, VDB_EINVAL, "filter: must be a JSON object, like {\"lang\": \"en\"}");
	}
	compiler c = {.err = err};
	vj_init(&c.r, f->text.data, f->text.len);
	vj_peek(&c.r);
	f->root = object(&c, 0);
	vdb_buf_free(&c.key);
	if (!f->root) {
		vdb_filter_free(f);
		return c.st ? c.st : vdb_err_nomem(err);
	}
	*out = f;
	return VDB_OK;
}

/* ---- evaluating ---------------------------------------------------------------------- */

/* The positive test of a leaf on one scalar value v[0..n): 1, 0, or -1 (damaged); a
 * visitor of vdb_payload_walk (ctx: the leaf). */
static int test_scalar(void *ctx, const char *v, size_t n)
{
	const fnode *L = ctx;
	fv_type t;
	double num = 0;
	if (*v == '"')
		t = FV_STR;
	else if (n == 4 && !memcmp(v, "true", 4))
		t = FV_BOOL, num = 1;
	else if (n == 5 && !memcmp(v, "false", 5))
		t = FV_BOOL, num = 0;
	else if (n == 4 && !memcmp(v, "null", 4))
		t = FV_NULL;
	else if (vdb_json_number(v, n, &num) == 0)
		t = FV_NUM;
	else
		return -1;
	if (L->op == OP_EQ || L->op == OP_IN) {
		for (size_t i = 0; i < L->nvals; i++) {
			const fvalue *w = &L->vals[i];
			if (w->type != t)
				continue;
			if (t == FV_NULL || (t == FV_BOOL && w->b == (int)num) ||
			    (t == FV_NUM && w->num == num) ||
			    (t == FV_STR && vdb_json_string_equals(v, n, w->s, w->len)))
				return 1;
		}
		return 0;
	}
	const fvalue *w = &L->vals[0];
	if (w->type != t)
		return 0;
	int c;
	if (t == FV_NUM) {
		c = num < w->num ? -1 : num > w->num ? 1 : 0;
		if (num != num)
			return 0;
	} else {
		int bad = 0;
		c = vdb_json_string_compare(v, n, w->s, w->len, &bad);
		if (bad)
			return -1;
	}
	switch (L->op) {
	case OP_GT: return c > 0;
	case OP_GTE: return c >= 0;
	case OP_LT: return c < 0;
	default: return c <= 0; /* OP_LTE */
	}
}

static int eval(const fnode *n, const char *s, const char *e)
{
	switch (n->kind) {
	case N_ALL:
		return 1;
	case N_AND:
	case N_OR:
		for (size_t i = 0; i < n->nkids; i++) {
			int r = eval(n->kids[i], s, e);
			if (r < 0)
				return r;
			if (r == (n->kind == N_OR))
				return r;
		}
		return n->kind == N_AND;
	case N_NOT: {
		int r = eval(n->kids[0], s, e);
		return r < 0 ? r : !r;
	}
	default: {
		int r = vdb_payload_walk(s, (size_t)(e - s), n->path, n->npath, n->op == OP_EXISTS,
					 test_scalar, (void *)n);
		return r < 0 ? r : r ^ n->negate;
	}
	}
}

int vdb_filter_eval(const vdb_filter *f, const char *payload, size_t len)
{
	if (!payload || !len)
		payload = "{}", len = 2;
	return eval(f->root, payload, payload + len);
}

vdb_status vdb_filter_match(const vdb_filter *f, const char *payload, size_t len, int *match,
			    vdb_error *err)
{
	int r = vdb_filter_eval(f, payload, len);
	if (r < 0)
		return vdb_err(err, VDB_EDATA, "payload is not well-formed JSON");
	*match = r;
	return VDB_OK;
}

/* ---- values at a path, and index lookups ----------------------------------------------- */

static int path_is(const fnode *L, const vdb_pindex *ix)
{
	size_t n = L->npath - 1;
	for (size_t i = 0; i < L->npath; i++)
		n += L->path[i].len;
	if (n != ix->path_len)
		return 0;
	const char *p = ix->path;
	for (size_t i = 0; i < L->npath; i++) {
		if (memcmp(p, L->path[i].s, L->path[i].len))
			return 0;
		p += L->path[i].len + 1;
		if (i + 1 < L->npath && p[-1] != '.')
			return 0;
	}
	return 1;
}

/* The index key range of one operand value, or -1 when the index does not hold such values. */
static int value_keys(const vdb_pindex *ix, const fvalue *v, fop op, uint64_t *lo, uint64_t *hi)
{
	if (ix->type == VDB_FIELD_KEYWORD) {
		if (v->type != FV_STR || op != OP_EQ)
			return -1;
		*lo = *hi = vdb_pindex_string_key(v->s, v->len);
		return 0;
	}
	if (v->type != FV_NUM || v->num != v->num)
		return -1;
	uint64_t k = vdb_pindex_number_key(v->num);
	*lo = 0, *hi = UINT64_MAX;
	switch (op) {
	case OP_EQ: *lo = *hi = k; break;
	case OP_GT: *lo = k == UINT64_MAX ? 1 : k + 1, *hi = k == UINT64_MAX ? 0 : UINT64_MAX; break;
	case OP_GTE: *lo = k; break;
	case OP_LT: *hi = k == 0 ? 0 : k - 1, *lo = k == 0 ? 1 : 0; break;
	default: *hi = k; break; /* OP_LTE */
	}
	return 0;
}

/* A leaf's candidates: 1 with bits set, 0 when no index answers it, -1 damaged index. */
static int leaf_candidates(const fnode *L, const vdb_pindex *ix, size_t nix, uint64_t rows,
			   uint64_t *bits)
{
	if (L->negate || L->op == OP_EXISTS || !L->nvals)
		return 0;
	for (size_t i = 0; i < nix; i++) {
		if (!path_is(L, &ix[i]))
			continue;
		fop op = L->op == OP_IN ? OP_EQ : L->op;
		uint64_t lo, hi;
		size_t k;
		for (k = 0; k < L->nvals; k++)
			if (value_keys(&ix[i], &L->vals[k], op, &lo, &hi))
				break;
		if (k < L->nvals)
			continue; /* another index of the same path may hold these values */
		for (k = 0; k < L->nvals; k++) {
			value_keys(&ix[i], &L->vals[k], op, &lo, &hi);
			if (vdb_pindex_range(&ix[i], lo, hi, rows, bits))
				return -1;
		}
		return 1;
	}
	return 0;
}

/* Candidates of a subtree: *out is a new bitmap (a superset of its matching rows), or NULL
 * when the indexes cannot narrow it. 0, or -1 (out of memory; damaged index in *damaged). */
static int candidates(const fnode *n, const vdb_pindex *ix, size_t nix, uint64_t rows,
		      uint64_t **out, int *damaged)
{
	size_t words = (rows + 63) / 64 ? (rows + 63) / 64 : 1;
	*out = NULL;
	if (n->kind == N_LEAF) {
		uint64_t *bits = calloc(words, 8);
		if (!bits)
			return -1;
		int r = leaf_candidates(n, ix, nix, rows, bits);
		if (r == 1) {
			*out = bits;
			return 0;
		}
		free(bits);
		if (r < 0)
			*damaged = 1;
		return r < 0 ? -1 : 0;
	}
	if (n->kind != N_AND && n->kind != N_OR)
		return 0; /* everything, or a negation: no narrowing */
	uint64_t *acc = NULL;
	for (size_t i = 0; i < n->nkids; i++) {
		uint64_t *kid;
		if (candidates(n->kids[i], ix, nix, rows, &kid, damaged)) {
			free(acc);
			return -1;
		}
		if (!kid) {
			if (n->kind == N_OR) {
				free(acc);
				return 0; /* one unbounded alternative: anything may match */
			}
			continue;
		}
		if (!acc) {
			acc = kid;
			continue;
		}
		for (size_t w = 0; w < words; w++)
			acc[w] = n->kind == N_AND ? acc[w] & kid[w] : acc[w] | kid[w];
		free(kid);
	}
	*out = acc;
	return 0;
}

vdb_status vdb_filter_candidates(const vdb_filter *f, const vdb_pindex *ix, size_t nix,
				 uint64_t rows, uint64_t **out, const char *file, vdb_error *err)
{
	int damaged = 0;
	*out = NULL;
	if (!nix)
		return VDB_OK;
	if (candidates(f->root, ix, nix, rows, out, &damaged))
		return damaged ? vdb_err(err, VDB_ECORRUPT, "%s: damaged payload index", file)
			       : vdb_err_nomem(err);
	return VDB_OK;
}
