/* vdb-check: everything a reader relies on, verified in full rather than on demand.
 *
 * Loading a version (storage/state.c) already checks the CONFIG and MANIFEST checksums,
 * that each segment exists with the size, row count and header checksum the MANIFEST
 * gives, each deletion file's checksum and count, and the whole log (header, every frame's
 * checksums and sequence numbers; a damaged frame followed by valid ones is corruption).
 * On top of that this module reads every byte of every segment: section checksums, then
 * the structures a search follows -- id index, payload offsets and the HNSW graph -- which
 * are each checked value by value, because a CRC only proves the bytes are the ones the
 * writer wrote, not that the writer was right. */
#include "check.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../index/pindex.h"
#include "../storage/db.h"
#include "../storage/format.h"
#include "../storage/ids.h"
#include "../storage/state.h"
#include "../util/crc32c.h"
#include "../util/error.h"
#include "vdb_admin.h"

#define NO_UPPER UINT32_MAX

typedef struct checker {
	vdb_check_report report;
	void *ctx;
	const char *coll;
	const vdb_known_crcs *known;
	int strict; /* restoring: see vdb_check_collection */
	uint64_t problems;
	/* An I/O error or lack of memory met on the way: it says nothing about the files'
	 * content, so it ends the check as an error, not as damage. */
	vdb_status fatal;
	vdb_error fatal_err;
} checker;

/* Reports one line, "COLL<sep>message": a problem (counted) or a note. */
static void vreport(checker *c, int is_problem, const char *sep, const char *fmt, va_list ap)
{
	char line[1024];
	int n = snprintf(line, sizeof line, "%s%s", c->coll, sep);
	vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
	if (c->report)
		c->report(c->ctx, is_problem, line);
}

static void problem(checker *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(checker *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vreport(c, 1, "/", fmt, ap);
	va_end(ap);
	c->problems++;
}

/* The first I/O error or lack of memory ends the check (see checker.fatal). */
static void fatal(checker *c, vdb_status st, const vdb_error *e)
{
	if (!c->fatal) {
		c->fatal = st;
		c->fatal_err = *e;
	}
}

/* Something worth knowing that is not damage: reported, not counted. */
static void note(checker *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(checker *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vreport(c, 0, ": note: ", fmt, ap);
	va_end(ap);
}

/* The id index: sorted by (hash, row), every row exactly once, each hash that of its id. */
static void check_id_index(checker *c, const vdb_segment *s)
{
	unsigned char *seen = calloc(s->rows ? s->rows : 1, 1);
	if (!seen) {
		problem(c, "%s: out of memory while checking the id index", s->file);
		return;
	}
	uint64_t prev_hash = 0, prev_row = 0;
	for (uint64_t i = 0; i < s->rows; i++) {
		uint64_t hash = vdb_le64(s->id_index + i * 16), row = vdb_le64(s->id_index + i * 16 + 8);
		vdb_id id;
		vdb_error e;
		if (row >= s->rows || seen[row]) {
			problem(c, "%s: id index entry %" PRIu64 " names row %" PRIu64
				" (out of range or twice)", s->file, i, row);
			break;
		}
		seen[row] = 1;
		if (i && (hash < prev_hash || (hash == prev_hash && row < prev_row))) {
			problem(c, "%s: id index is not sorted at entry %" PRIu64, s->file, i);
			break;
		}
		if (vdb_segment_id(s, row, &id, &e)) {
			problem(c, "%s", e.message);
			break;
		}
		if (vdb_id_hash(&id) != hash) {
			problem(c, "%s: id index entry %" PRIu64 " has the wrong hash for row %" PRIu64,
				s->file, i, row);
			break;
		}
		vdb_id prev_id;
		if (i && hash == prev_hash && !vdb_segment_id(s, prev_row, &prev_id, &e) &&
		    vdb_id_equal(&id, &prev_id)) {
			problem(c, "%s: rows %" PRIu64 " and %" PRIu64 " hold the same id", s->file,
				prev_row, row);
			break;
		}
		prev_hash = hash;
		prev_row = row;
	}
	free(seen);
}

static void check_payloads(checker *c, const vdb_segment *s)
{
	uint64_t prev = 0;
	for (uint64_t r = 0; r <= s->rows; r++) {
		uint64_t off = vdb_le64(s->payload_offsets + r * 8);
		if (off < prev || off > s->payloads_len || (r == 0 && off != 0)) {
			problem(c, "%s: payload offset of row %" PRIu64 " is out of order or range",
				s->file, r);
			return;
		}
		prev = off;
	}
	if (prev != s->payloads_len)
		problem(c, "%s: payload offsets do not cover the payload section", s->file);
}

/* Each payload index must be exactly what writing the segment computes from its payloads
 * (its content is derived, so anything else -- an entry moved, dropped or pointing at the
 * wrong row, even under a matching checksum -- is damage a filter could act on). */
static void check_pindexes(checker *c, const vdb_collection_config *cfg, const vdb_segment *s)
{
	uint32_t k = 0;
	uint64_t before = c->problems;
	for (uint32_t i = 0; i < s->nsec && c->problems == before; i++) {
		const vdb_section *sec = &s->sec[i];
		if (sec->kind != VDB_SEC_PAYLOAD_INDEX)
			continue;
		if (k >= cfg->n_index_fields) {
			problem(c, "%s: a payload index the collection does not define", s->file);
			return;
		}
		vdb_pindex_builder b = {.field = &cfg->index_fields[k++]};
		vdb_buf want = VDB_BUF_INIT;
		vdb_error e;
		int rc = 0;
		for (uint64_t row = 0; row < s->rows && !rc; row++) {
			const char *p;
			size_t len;
			rc = vdb_segment_payload(s, row, &p, &len, &e) ? -1
								       : vdb_pindex_add(&b, row, p, len, &e);
		}
		if (!rc)
			rc = vdb_pindex_finish(&b, &want, &e);
		if (rc)
			problem(c, "%s", e.message);
		else if (want.len != sec->len || memcmp(want.data, s->map + sec->off, want.len))
			problem(c, "%s: payload index of field '%s' does not match the payloads",
				s->file, cfg->index_fields[k - 1].path);
		vdb_pindex_builder_free(&b);
		vdb_buf_free(&want);
	}
}

/* Level of a node in the graph (0 when it has no upper lists), or -1 when damaged. */
static int node_level(const vdb_hnsw_graph *g, uint64_t node)
{
	uint32_t off = g->nodes[node];
	if (off == NO_UPPER)
		return 0;
	if (off >= g->upper_len)
		return -1;
	uint32_t lv = g->upper[off];
	if (lv == 0 || lv > g->max_level ||
	    (uint64_t)off + 1 + (uint64_t)lv * (g->m + 1) > g->upper_len)
		return -1;
	return (int)lv;
}

static int list_ok(const vdb_hnsw_graph *g, const uint32_t *l, uint32_t max, uint64_t node,
		   int level)
{
	if (l[0] > max)
		return 0;
	for (uint32_t k = 1; k <= l[0]; k++)
		if (l[k] >= g->rows || l[k] == node || node_level(g, l[k]) < level)
			return 0;
	return 1;
}

/* Live rows no search can return: not reachable at level 0 from the entry point. Builds
 * link every node in; older builds could leave some out, which --repair rebuilds (but a
 * restore takes as archived: a note). dead: the version's deletions. */
static void check_graph_reach(checker *c, const vdb_segment *s, const vdb_segment *dead)
{
	const vdb_hnsw_graph *g = &s->graph;
	uint8_t *reached = calloc(g->rows, 1);
	vdb_error e;
	vdb_status st = reached ? vdb_hnsw_reached(g, reached, s->file, &e) : vdb_err_nomem(&e);
	uint64_t lost = 0, first = 0;
	for (uint64_t n = 0; !st && n < g->rows; n++)
		if (!reached[n] && !vdb_segment_is_dead(dead, n) && !lost++)
			first = n;
	free(reached);
	if (st == VDB_ENOMEM) {
		fatal(c, st, &e);
	} else if (st) {
		problem(c, "%s", e.message);
	} else if (lost) {
		char line[512];
		snprintf(line, sizeof line, "%s: %" PRIu64 " live row%s unreachable in the graph "
			 "(row %" PRIu64 "%s): searches never return %s (derived data: --repair "
			 "rebuilds it)", s->file, lost, lost == 1 ? "" : "s", first,
			 lost == 1 ? "" : " and others", lost == 1 ? "it" : "them");
		if (c->strict)
			note(c, "%s", line);
		else
			problem(c, "%s", line);
	}
}

static void check_graph(checker *c, const vdb_segment *s, const vdb_segment *dead)
{
	const vdb_hnsw_graph *g = &s->graph;
	int top = node_level(g, g->entry);
	if (top < 0 || (uint32_t)top != g->max_level) {
		problem(c, "%s: graph entry point %" PRIu64 " is not on the top level %u", s->file,
			g->entry, g->max_level);
		return;
	}
	for (uint64_t n = 0; n < g->rows; n++) {
		int lv = node_level(g, n);
		if (lv < 0) {
			problem(c, "%s: graph node %" PRIu64 " has damaged upper levels", s->file, n);
			return;
		}
		if (!list_ok(g, g->l0 + n * (g->m0 + 1), g->m0, n, 0)) {
			problem(c, "%s: graph node %" PRIu64 " has a bad level-0 neighbour list",
				s->file, n);
			return;
		}
		for (int l = 1; l <= lv; l++)
			if (!list_ok(g, g->upper + g->nodes[n] + 1 + (uint64_t)(l - 1) * (g->m + 1),
				     g->m, n, l)) {
				problem(c, "%s: graph node %" PRIu64 " has a bad level-%d neighbour list",
					s->file, n, l);
				return;
			}
	}
	check_graph_reach(c, s, dead);
}

/* Whether a live row of s and a live row of an older segment g hold the same id. Both id
 * indexes are sorted by (hash, row) -- check_id_index proved it before this runs -- so one
 * merged pass finds every pair of rows with equal hashes, reading both indexes in order
 * instead of searching g once per row of s. Returns 1 after reporting a problem. */
static int shared_live_id(checker *c, const vdb_segment *s, const vdb_segment *g)
{
	uint64_t i = 0, j = 0, runs = 0;
	while (i < s->rows && j < g->rows) {
		uint64_t hs = vdb_le64(s->id_index + i * 16), hg = vdb_le64(g->id_index + j * 16);
		if (hs != hg) {
			if (hs < hg)
				i++;
			else
				j++;
			continue;
		}
		uint64_t i_end = i, j_end = j; /* the runs of entries with this hash */
		while (i_end < s->rows && vdb_le64(s->id_index + i_end * 16) == hs)
			i_end++;
		while (j_end < g->rows && vdb_le64(g->id_index + j_end * 16) == hs)
			j_end++;
		for (uint64_t a = i; a < i_end; a++) {
			uint64_t row = vdb_le64(s->id_index + a * 16 + 8);
			if (row >= s->rows) { /* the version loaded after check_id_index's may differ */
				problem(c, "%s: id index entry %" PRIu64 " names row %" PRIu64
					" (out of range)", s->file, a, row);
				return 1;
			}
			if (vdb_segment_is_dead(s, row))
				continue;
			for (uint64_t b = j; b < j_end; b++) {
				uint64_t other = vdb_le64(g->id_index + b * 16 + 8);
				vdb_id x, y;
				vdb_error e;
				if (other >= g->rows) {
					problem(c, "%s: id index entry %" PRIu64 " names row %" PRIu64
						" (out of range)", g->file, b, other);
					return 1;
				}
				if (vdb_segment_is_dead(g, other))
					continue;
				if (vdb_segment_id(s, row, &x, &e) || vdb_segment_id(g, other, &y, &e)) {
					problem(c, "%s", e.message);
					return 1;
				}
				if (vdb_id_equal(&x, &y)) {
					problem(c, "%s row %" PRIu64 " and %s row %" PRIu64 " are both live "
						"with the same id", s->file, row, g->file, other);
					return 1;
				}
			}
		}
		i = i_end;
		j = j_end;
		if (++runs % VDB_RELEASE_EVERY == 0) { /* constant memory over any collection */
			vdb_segment_release(s);
			vdb_segment_release(g);
		}
	}
	return 0;
}

/* An id is live in at most one segment (the writer marks the older row deleted when it
 * seals a newer one): otherwise the collection would return the record twice. */
static void check_unique_live(checker *c, const vdb_state *st)
{
	for (size_t k = 1; k < st->man.nseg; k++) {
		for (size_t j = 0; j < k; j++) {
			int found = shared_live_id(c, &st->segs[k], &st->segs[j]);
			vdb_segment_release(&st->segs[j]);
			if (found)
				break;
		}
		vdb_segment_release(&st->segs[k]);
		if (c->problems)
			return;
	}
}

/* Files the version does not name: leftovers of a crash (removed by the next writer) or
 * something foreign. Reported, not counted as damage: no reader ever opens them. */
static void report_strays(checker *c, const vdb_state *st, int strict)
{
	DIR *d = opendir(st->dir);
	if (!d)
		return;
	char wal[64], seg[64];
	vdb_wal_name(wal, sizeof wal, st->man.wal);
	struct dirent *e;
	while ((e = readdir(d))) {
		const char *n = e->d_name;
		int known = !strcmp(n, ".") || !strcmp(n, "..") || !strcmp(n, VDB_CONFIG_FILE) ||
			    !strcmp(n, VDB_MANIFEST_FILE) || !strcmp(n, VDB_LOCK_FILE) ||
			    !strcmp(n, wal);
		for (size_t i = 0; !known && i < st->man.nseg; i++) {
			vdb_segment_name(seg, sizeof seg, st->man.segs[i].number);
			known = !strcmp(n, seg) || !strcmp(n, st->man.segs[i].del_file);
		}
		if (!known && strict) {
			problem(c, "%s: a file the MANIFEST does not name", n);
		} else if (!known) {
			note(c, "%s is not part of the current version (a leftover the next writer "
			     "removes, or a foreign file)", n);
		}
	}
	closedir(d);
}

/* The CRC of a section's bytes: the one the caller computed while writing exactly these
 * bytes of this file (c->known), or else read through the mapping. */
static uint32_t section_crc(const checker *c, const vdb_segment *s, const vdb_section *sec)
{
	size_t n = strlen(c->coll);
	for (size_t i = 0; c->known && i < c->known->n; i++) {
		const vdb_known_crc *k = &c->known->v[i];
		if (k->off == sec->off && k->len == sec->len && !strncmp(k->name, c->coll, n) &&
		    k->name[n] == '/' && !strcmp(k->name + n + 1, s->file))
			return k->crc;
	}
	return vdb_crc32c(0, s->map + sec->off, sec->len);
}

/* Checks one segment opened with its primary sections only. Damage to a primary section
 * (vectors, ids, payloads) is not repairable; damage confined to the derived ones (id
 * index, norms, payload indexes, graph: a checksum mismatch, or a structure that does not
 * open or does not hold together) is, by rewriting the segment: returns 1 for that. */
static int check_segment(checker *c, const vdb_state *st, const vdb_segment *s)
{
	int primary = 0, derived = 0;
	for (uint32_t i = 0; i < s->nsec; i++) {
		const vdb_section *sec = &s->sec[i];
		if (section_crc(c, s, sec) == sec->crc)
			continue;
		problem(c, "%s: checksum mismatch in section %u (offset %" PRIu64 ")%s", s->file,
			sec->kind, sec->off,
			vdb_section_is_derived(sec->kind) ? " (derived data: --repair rebuilds it)"
							  : "");
		if (vdb_section_is_derived(sec->kind))
			derived = 1;
		else
			primary = 1;
	}
	if (!primary) {
		uint64_t mark = c->problems;
		check_payloads(c, s);
		primary = c->problems > mark;
	}
	if (!derived && !primary) {
		/* The full open parses what the primary one skipped (derived sections are not
		 * judged against damaged records). */
		vdb_segment full;
		vdb_error e;
		const vdb_manifest_seg *m = NULL;
		for (size_t i = 0; i < st->man.nseg; i++)
			if (st->man.segs[i].number == s->number)
				m = &st->man.segs[i];
		uint64_t mark = c->problems;
		vdb_status ost = vdb_segment_open(st->dir, s->number, st->cfg.dim, m->rows, m->size,
						  m->header_crc, 0, &full, &e);
		if (ost == VDB_EIO || ost == VDB_ENOMEM) {
			fatal(c, ost, &e);
		} else if (ost) {
			problem(c, "%s", e.message);
		} else {
			check_id_index(c, &full);
			check_pindexes(c, &st->cfg, &full);
			if (full.has_graph)
				check_graph(c, &full, s);
			vdb_segment_release(&full);
			vdb_segment_close(&full);
		}
		derived = c->problems > mark;
	}
	return derived && !primary;
}

vdb_status vdb_check_collection(const char *db, const char *name, int strict,
				const vdb_known_crcs *known, vdb_check_report report, void *ctx,
				uint64_t *problems, uint64_t *live, uint64_t **rebuild,
				size_t *nrebuild, vdb_error *err)
{
	checker c = {.report = report, .ctx = ctx, .coll = name, .known = known,
		     .strict = strict};
	vdb_state st;
	vdb_error e;
	*live = 0;
	if (rebuild) {
		*rebuild = NULL;
		*nrebuild = 0;
	}
	/* First with the primary sections only, so that damage to a derived one does not hide
	 * the rest (and can be repaired); then as readers load it, for what needs the id
	 * indexes: hiding superseded rows, one live row per id, the record count. */
	vdb_status rc = vdb_state_load_flags(db, name, &st, NULL, VDB_SEG_OPEN_PRIMARY, &e);
	/* An I/O error says nothing about the files' content: it is reported as such. */
	if (rc == VDB_ENOENT || rc == VDB_ENOMEM || rc == VDB_EINVAL || rc == VDB_EIO) {
		if (err)
			*err = e;
		return rc;
	}
	if (rc) {
		problem(&c, "%s", e.message);
		*problems += c.problems;
		return VDB_OK;
	}
	for (size_t i = 0; i < st.man.nseg; i++) {
		const vdb_segment *s = &st.segs[i];
		if (check_segment(&c, &st, s) && rebuild) {
			uint64_t *more = realloc(*rebuild, (*nrebuild + 1) * sizeof **rebuild);
			if (!more) {
				vdb_state_free(&st);
				return vdb_err_nomem(err);
			}
			*rebuild = more;
			more[(*nrebuild)++] = s->number;
		}
		vdb_segment_release(s);
	}
	report_strays(&c, &st, strict);
	vdb_state_free(&st);
	if (c.fatal) {
		if (err)
			*err = c.fatal_err;
		return c.fatal;
	}
	if (!c.problems) {
		rc = vdb_state_load(db, name, &st, NULL, &e);
		if (rc == VDB_ENOMEM || rc == VDB_EIO) {
			if (err)
				*err = e;
			return rc;
		}
		if (rc) {
			problem(&c, "%s", e.message);
			*problems += c.problems;
			return VDB_OK;
		}
		check_unique_live(&c, &st);
		uint64_t rows = 0, deleted = 0;
		for (size_t i = 0; i < st.man.nseg; i++) {
			rows += st.segs[i].rows;
			deleted += st.segs[i].ndeleted;
		}
		if (!c.problems && report) {
			char line[1024], wal[64];
			vdb_wal_name(wal, sizeof wal, st.man.wal);
#define S(n) ((n) == 1 ? "" : "s")
			snprintf(line, sizeof line,
				 "%s: ok: %" PRIu64 " record%s; %zu segment%s (%" PRIu64 " row%s, %" PRIu64
				 " deleted); %s: %" PRIu64 " batch%s%s",
				 name, st.live, S(st.live), st.man.nseg, S(st.man.nseg), rows, S(rows),
				 deleted, wal, st.wal.frames, st.wal.frames == 1 ? "" : "es",
				 st.wal.torn ? ", then an incomplete record (an interrupted write: the "
					       "next writer discards it)"
					     : "");
#undef S
			report(ctx, 0, line);
		}
		*live = st.live;
		vdb_state_free(&st);
	}
	*problems += c.problems;
	return VDB_OK;
}

/* One collection with --repair: check, rewrite the segments whose damage is confined to
 * derived sections, check again; only the second check's problems count. */
static vdb_status repair_collection(const char *db, const char *name, vdb_check_report report,
				    void *ctx, uint64_t *problems, uint64_t *rebuilt,
				    vdb_error *err)
{
	uint64_t first = 0, live, *numbers = NULL;
	size_t n = 0;
	vdb_status rc = vdb_check_collection(db, name, 0, NULL, report, ctx, &first, &live, &numbers,
					     &n, err);
	if (rc || !n) { /* nothing to rebuild: the first check's problems are what is left */
		free(numbers);
		*problems += first;
		return rc;
	}
	rc = vdb_rebuild_segments(db, name, numbers, &n, err);
	for (size_t i = 0; !rc && report && i < n; i++) {
		char line[256];
		snprintf(line, sizeof line,
			 "%s: repaired: seg-%08" PRIu64 ".vdb rewritten from its records (id index, "
			 "norms, payload indexes, codes and graph rebuilt)", name, numbers[i]);
		report(ctx, 0, line);
	}
	free(numbers);
	if (rc)
		return rc;
	*rebuilt += n;
	return vdb_check_collection(db, name, 0, NULL, report, ctx, problems, &live, NULL, NULL, err);
}

static vdb_status check_db(const char *db, const char *name, vdb_check_report report,
			   void *ctx, int repair, uint64_t *problems, uint64_t *rebuilt,
			   vdb_error *err)
{
	vdb_error e;
	*problems = 0;
	if (rebuilt)
		*rebuilt = 0;
	vdb_status rc = vdb_db_check(db, &e);
	if (rc == VDB_ECORRUPT) {
		/* Every reader refuses a database whose marker is damaged: nothing more to see. */
		(*problems)++;
		if (report)
			report(ctx, 1, e.message);
		return VDB_OK;
	}
	if (rc) {
		if (err)
			*err = e;
		return rc;
	}
	vdb_coll_name *names = NULL, one;
	size_t n = 1;
	if (name) {
		snprintf(one, sizeof one, "%s", name);
	} else {
		if ((rc = vdb_db_collections(db, &names, &n, &e))) {
			if (err)
				*err = e;
			return rc;
		}
	}
	for (size_t i = 0; i < n; i++) {
		uint64_t live;
		const char *coll = name ? one : names[i];
		rc = repair ? repair_collection(db, coll, report, ctx, problems, rebuilt, err)
			    : vdb_check_collection(db, coll, 0, NULL, report, ctx, problems, &live, NULL,
						   NULL, err);
		if (rc)
			break;
	}
	free(names);
	return rc;
}

vdb_status vdb_check(const char *db, const char *name, vdb_check_report report, void *ctx,
		     uint64_t *problems, vdb_error *err)
{
	return check_db(db, name, report, ctx, 0, problems, NULL, err);
}

vdb_status vdb_check_repair(const char *db, const char *name, vdb_check_report report,
			    void *ctx, uint64_t *problems, uint64_t *rebuilt, vdb_error *err)
{
	return check_db(db, name, report, ctx, 1, problems, rebuilt, err);
}
