/* Exporting a collection (vdb_io.h: vdb_export): every live record (or those a filter
 * matches) of one view, in storage order in constant memory or in id order, as JSON lines in
 * the ingest format, a NumPy .npy, TEXMEX .fvecs (ids and payloads in sidecar files) or CSV,
 * to standard output or atomically to files, optionally zstd-compressed. The sidecars are
 * finished before the main output, so when the main file appears its companions are
 * complete. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "../formats/parquet.h"
#include "../util/error.h"
#include "vdb_io.h"

void vdb_export_options_init(vdb_export_options *o)
{
	memset(o, 0, sizeof *o);
	o->size = sizeof *o;
	o->format = VDB_FILE_JSONL;
	o->durable = 1;
}

/* The outputs: the records, and the optional sidecars of the vector formats. */
typedef struct outputs {
	vdb_ostream *main, *ids, *payloads;
	vdb_vec_writer *vw;
	vdb_csv_writer *cw;
	vdb_parquet_writer *pw;
	vdb_text t;
	uint32_t dim;
	const vdb_export_options *o;
} outputs;

static vdb_status put_text(vdb_ostream *s, vdb_text *t, vdb_error *err)
{
	vdb_status st = vdb_ostream_write(s, t->data, t->len, err);
	t->len = 0;
	return st;
}

static vdb_status write_record(outputs *out, const vdb_record *rec, vdb_error *err)
{
	vdb_status st;
	switch (out->o->format) {
	case VDB_FILE_NPY:
	case VDB_FILE_FVECS:
		if ((st = vdb_vec_writer_put(out->vw, rec->vector, err)))
			return st;
		break;
	case VDB_FILE_PARQUET: /* the view's vectors stay mapped (or in its memtable) */
		if ((st = vdb_parquet_writer_put(out->pw, rec, err)))
			return st;
		break;
	case VDB_FILE_CSV:
		if ((st = vdb_csv_writer_record(out->cw, &out->t, rec, err)) ||
		    (st = put_text(out->main, &out->t, err)))
			return st;
		break;
	default:
		if (vdb_jsonl_append_record(&out->t, rec, out->dim))
			return vdb_err_nomem(err);
		if ((st = put_text(out->main, &out->t, err)))
			return st;
	}
	if (out->ids) {
		if ((st = vdb_id_append_text(&out->t, &rec->id, err)) ||
		    vdb_text_append(&out->t, "\n", 1))
			return st ? st : vdb_err_nomem(err);
		if ((st = put_text(out->ids, &out->t, err)))
			return st;
	}
	if (out->payloads) {
		if ((rec->payload ? vdb_text_append(&out->t, rec->payload, rec->payload_len)
				  : vdb_text_append(&out->t, "null", 4)) ||
		    vdb_text_append(&out->t, "\n", 1))
			return vdb_err_nomem(err);
		if ((st = put_text(out->payloads, &out->t, err)))
			return st;
	}
	return VDB_OK;
}

/* A payload key took the name of a CSV column of ours: say what the column is called. */
static void note_renamed(const vdb_export_options *o, const char *usual, const char *now,
			 const char *option)
{
	char m[512];
	if (!o->on_note)
		return;
	if (option)
		snprintf(m, sizeof m, "note: a payload key is named '%s', so that column is '%s' "
			 "(read it back with vdb-ingest %s %s)", usual, now, option, now);
	else
		snprintf(m, sizeof m, "note: payload keys are named like the vector columns, so "
			 "those are %s0, %s1, ...", now, now);
	o->on_note(o->ctx, m);
}

/* A first pass over the same view refuses what CSV cannot hold (a NUL byte in an id; with
 * payload_columns, in a payload key or string) before anything is written, and collects
 * the payload keys payload_columns makes columns of. */
static vdb_status csv_header(outputs *out, vdb_collection *coll, vdb_error *err)
{
	const vdb_export_options *o = out->o;
	vdb_status st = vdb_csv_writer_new(out->dim, o->vector_columns, &out->cw, err);
	vdb_cursor *cur = NULL;
	if (!st)
		vdb_csv_writer_set_payload_columns(out->cw, o->payload_columns);
	if (!st)
		st = vdb_cursor_open_where(coll, o->filter, &cur, err);
	for (int has = 1; !st && has;) {
		vdb_record rec;
		if (!(st = vdb_cursor_next(cur, &rec, &has, err)) && has)
			st = vdb_csv_writer_add(out->cw, &rec, err);
	}
	vdb_cursor_close(cur);
	if (!st && !(st = vdb_csv_writer_header(out->cw, &out->t, err)))
		st = put_text(out->main, &out->t, err);
	const char *id, *vector;
	vdb_csv_writer_columns(out->cw, &id, &vector);
	if (!st && strcmp(id, "id"))
		note_renamed(o, "id", id, "--id-column");
	if (!st && strcmp(vector, o->vector_columns ? "v" : "vector"))
		note_renamed(o, o->vector_columns ? "v0, v1, ..." : "vector", vector,
			     o->vector_columns ? NULL : "--vector-column");
	return st;
}

/* Parquet's first pass over the same view: the id column's type (strings when any id is
 * one) and, with payload_columns, the payload keys of one type. */
static vdb_status parquet_scan(outputs *out, vdb_collection *coll, vdb_error *err)
{
	const vdb_export_options *o = out->o;
	static const int codecs[] = {PQ_ZSTD, PQ_SNAPPY, PQ_UNCOMPRESSED};
	if ((unsigned)o->parquet_codec > VDB_PARQUET_UNCOMPRESSED)
		return vdb_err(err, VDB_EINVAL, "unknown Parquet compression %d", o->parquet_codec);
	vdb_status st = vdb_parquet_writer_open(out->main, out->dim, codecs[o->parquet_codec],
						o->row_group_rows, o->payload_columns, &out->pw,
						err);
	vdb_cursor *cur = NULL;
	if (!st)
		st = vdb_cursor_open_where(coll, o->filter, &cur, err);
	for (int has = 1; !st && has;) {
		vdb_record rec;
		if (vdb_cancelled(&o->cancel))
			st = vdb_err(err, VDB_EINTR, "interrupted");
		else if (!(st = vdb_cursor_next(cur, &rec, &has, err)) && has)
			st = vdb_parquet_writer_scan(out->pw, &rec, err);
	}
	vdb_cursor_close(cur);
	if (!st && o->on_note)
		vdb_parquet_writer_notes(out->pw, o->on_note, o->ctx);
	return st;
}

static int ends_zst(const char *path)
{
	size_t n = path ? strlen(path) : 0;
	return n > 4 && !strcmp(path + n - 4, ".zst");
}

static vdb_status open_outputs(outputs *out, vdb_error *err)
{
	const vdb_export_options *o = out->o;
	vdb_status st;
	if ((st = vdb_ostream_open(o->output, o->zstd || ends_zst(o->output) ? 3 : 0, &out->main,
				   err)) ||
	    (o->ids_path &&
	     (st = vdb_ostream_open(o->ids_path, ends_zst(o->ids_path) ? 3 : 0, &out->ids, err))) ||
	    (o->payloads_path &&
	     (st = vdb_ostream_open(o->payloads_path, ends_zst(o->payloads_path) ? 3 : 0,
				    &out->payloads, err))))
		return st;
	vdb_ostream *written[] = {out->main, out->ids, out->payloads};
	for (size_t i = 0; i < sizeof written / sizeof *written; i++)
		if (written[i])
			vdb_ostream_set_durable(written[i], o->durable);
	return VDB_OK;
}

vdb_status vdb_export(vdb_collection *coll, const vdb_export_options *given, uint64_t *rows_out,
		      vdb_error *err)
{
	vdb_export_options opts;
	vdb_export_options_init(&opts);
	if (given && vdb_options_take(&opts, sizeof opts, given, "vdb_export_options", err))
		return VDB_EINVAL;
	const vdb_export_options *o = &opts;
	vdb_file_format f = o->format;
	int binary = f == VDB_FILE_NPY || f == VDB_FILE_FVECS;
	if (f != VDB_FILE_JSONL && f != VDB_FILE_CSV && f != VDB_FILE_PARQUET && !binary)
		return vdb_err(err, VDB_EINVAL, "export formats are jsonl, npy, fvecs, csv and "
			       "parquet");
	if (f == VDB_FILE_PARQUET && (o->zstd || ends_zst(o->output)))
		return vdb_err(err, VDB_EINVAL, "Parquet compresses its own pages (zstd by "
			       "default): the file itself is not compressed");
	if ((o->ids_path || o->payloads_path) && !binary)
		return vdb_err(err, VDB_EINVAL, "ids and payloads files go with npy or fvecs (%s "
			       "carries ids and payloads itself)", vdb_file_format_name(f));
	if (o->vector_columns && f != VDB_FILE_CSV)
		return vdb_err(err, VDB_EINVAL, "vector columns go with csv");
	if (o->payload_columns && f != VDB_FILE_CSV && f != VDB_FILE_PARQUET)
		return vdb_err(err, VDB_EINVAL, "payload columns go with csv and parquet");
	vdb_collection_config cfg;
	vdb_collection_config_init(&cfg);
	vdb_collection_get_config(coll, &cfg);
	outputs out = {.dim = cfg.dim, .o = o};
	uint64_t count = 0, rows = 0;
	vdb_cursor *cur = NULL;
	/* The row count heads an npy file, and sizes the progress display. */
	vdb_status st = vdb_collection_count_where(coll, o->filter, &count, err);
	if (!st)
		st = open_outputs(&out, err);
	if (!st)
		st = vdb_cursor_open_ordered(coll, o->filter, o->order, &cur, err);
	if (!st && binary)
		st = vdb_vec_writer_open(out.main, f == VDB_FILE_NPY ? VDB_VEC_NPY : VDB_VEC_FVECS,
					 cfg.dim, count, &out.vw, err);
	else if (!st && f == VDB_FILE_CSV)
		st = csv_header(&out, coll, err);
	else if (!st && f == VDB_FILE_PARQUET)
		st = parquet_scan(&out, coll, err);
	for (int has = 1; !st;) {
		vdb_record rec;
		if (vdb_cancelled(&o->cancel)) {
			st = vdb_err(err, VDB_EINTR, "interrupted");
			break;
		}
		if ((st = vdb_cursor_next(cur, &rec, &has, err)) || !has)
			break;
		st = write_record(&out, &rec, err);
		rows++;
		if (o->on_progress)
			o->on_progress(o->ctx, rows, count);
	}
	if (!st && out.vw)
		st = vdb_vec_writer_finish(out.vw, err);
	if (!st && out.pw)
		st = vdb_parquet_writer_finish(out.pw, err);
	/* Sidecars first: when the main output appears, its companions are complete. */
	if (!st && out.ids)
		st = vdb_ostream_finish(out.ids, err);
	if (!st && out.payloads)
		st = vdb_ostream_finish(out.payloads, err);
	if (!st)
		st = vdb_ostream_finish(out.main, err);
	/* What the failed call set (EPIPE: the reader went away) outlives the cleanup. */
	int saved = errno;
	vdb_cursor_close(cur);
	vdb_vec_writer_close(out.vw);
	vdb_csv_writer_free(out.cw);
	vdb_parquet_writer_free(out.pw);
	vdb_text_free(&out.t);
	vdb_ostream_close(out.main);
	vdb_ostream_close(out.ids);
	vdb_ostream_close(out.payloads);
	errno = saved;
	if (rows_out)
		*rows_out = rows;
	return st;
}
