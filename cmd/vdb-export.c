/* vdb-export: every live record of a collection, as JSON lines in the ingest format (what
 * it prints re-ingests to the same records), NumPy .npy, TEXMEX .fvecs (with ids and
 * payloads in sidecar files) or CSV; to standard output or atomically to a file, optionally
 * zstd-compressed. Storage order in constant memory, or id order. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "progress.h"


static void usage(void)
{
	printf("Usage: vdb-export DB [-c NAME] [options]\n"
	       "\n"
	       "Write every live record of collection NAME, by default as JSON lines in the\n"
	       "format vdb-ingest reads:\n"
	       "  {\"id\":7,\"vector\":[0.1,...],\"payload\":{...}}\n"
	       "Vectors print in the shortest form that reads back to the same float32 values,\n"
	       "ids keep their JSON type, payloads are printed as stored. Checksums are verified\n"
	       "before any record of a segment is written.\n"
	       "\n"
	       "Formats (--format, or from the name given to -o):\n"
	       "  jsonl   JSON lines (default)\n"
	       "  npy     a NumPy float32 array (rows, dim), C order\n"
	       "  fvecs   TEXMEX: per row, int32 dim then dim float32\n"
	       "  csv     RFC 4180: id,vector,payload (the payload's JSON), CRLF line ends\n"
	       "With npy and fvecs, --ids-out and --payloads-out write the ids (one per line)\n"
	       "and payloads (one JSON object or null per line) in the same row order.\n"
	       "\n"
	       "Order: storage (default): sealed segments oldest first, then the unsealed log\n"
	       "in commit order, in constant memory; id: integers ascending, then strings by\n"
	       "their bytes (holds every id in memory).\n"
	       "\n"
	       "With --filter, only the records whose payload matches (see vdb-query(1),\n"
	       "FILTERS).\n"
	       "\n"
	       "Options:\n"
	       "  -c, --collection NAME   collection (default: default)\n"
	       "  -f, --format FORMAT     jsonl, npy, fvecs or csv\n"
	       "      --filter JSON       only records whose payload matches this filter\n"
	       "  -o, --output FILE       write FILE (atomically: complete or not at all)\n"
	       "                          instead of standard output; FILE.zst is compressed\n"
	       "      --zstd              compress the output with zstd\n"
	       "      --no-sync           do not fsync the files written (as cp does): faster,\n"
	       "                          but a crash soon after may lose them\n"
	       "      --ids-out FILE      npy, fvecs: write the ids to FILE\n"
	       "      --payloads-out FILE npy, fvecs: write the payloads to FILE\n"
	       "      --order ORDER       storage or id (default: storage)\n"
	       "      --vector-columns    csv: the vector as dim numeric columns v0, v1, ...\n"
	       "                          instead of one JSON array (vdb-ingest reads them back\n"
	       "                          with --vector-columns 2-DIM+1)\n"
	       "      --payload-columns   csv: a column per top-level payload key instead of\n"
	       "                          the JSON column, for spreadsheets; lossy read back\n"
	       "                          (strings that look like numbers become numbers,\n"
	       "                          empty strings vanish, arrays become strings)\n"
	       "  -q, --quiet             print nothing but errors (and no progress)\n"
	       "  -h, --help              show this help\n"
	       "  -V, --version           show the version\n"
	       "\n" CLI_EXIT_TABLE);
}

/* The extension of a file name that names no format ("out.parquet": ".parquet"), NULL when
 * it names one or has none; a ".zst" after it does not count. */
static const char *unknown_extension(const char *path)
{
	if (vdb_file_format_of(path))
		return NULL;
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	static char ext[64];
	snprintf(ext, sizeof ext, "%s", base);
	size_t n = strlen(ext);
	if (n > 4 && !strcmp(ext + n - 4, ".zst"))
		ext[n - 4] = '\0';
	const char *dot = strrchr(ext, '.');
	return dot && dot != ext ? dot : NULL;
}

static int ends_zst(const char *path)
{
	size_t n = path ? strlen(path) : 0;
	return n > 4 && !strcmp(path + n - 4, ".zst");
}

static vdb_status nomem(vdb_error *err)
{
	err->code = VDB_ENOMEM;
	snprintf(err->message, sizeof err->message, "out of memory");
	return VDB_ENOMEM;
}

/* The outputs: the records, and the optional sidecars of the vector formats. */
typedef struct outputs {
	vdb_ostream *main, *ids, *payloads;
	const char *main_name, *ids_name, *payloads_name;
	vdb_vec_writer *vw;
	vdb_csv_writer *cw;
	vdb_text t;
	uint32_t dim;
	vdb_file_format f;
	int vector_columns; /* csv: the vector in dim numeric columns */
	int payload_columns; /* csv: a column per payload key */
	int quiet;
} outputs;

/* An output error: quiet when standard output's reader went away (`| head`); only a
 * pipe fails with EPIPE, and errno is still that of the failed write. */
static int write_failed(const vdb_error *err)
{
	if (err->code == VDB_EIO && errno == EPIPE)
		return EXIT_OK;
	return cli_fail(err);
}

static vdb_status put_text(vdb_ostream *o, vdb_text *t, vdb_error *err)
{
	vdb_status st = vdb_ostream_write(o, t->data, t->len, err);
	t->len = 0;
	return st;
}

static vdb_status write_record(outputs *o, const vdb_record *rec, vdb_error *err)
{
	vdb_status st;
	switch (o->f) {
	case VDB_FILE_NPY:
	case VDB_FILE_FVECS:
		if ((st = vdb_vec_writer_put(o->vw, rec->vector, err)))
			return st;
		break;
	case VDB_FILE_CSV:
		if ((st = vdb_csv_writer_record(o->cw, &o->t, rec, err)) ||
		    (st = put_text(o->main, &o->t, err)))
			return st;
		break;
	default:
		if (vdb_jsonl_append_record(&o->t, rec, o->dim))
			return nomem(err);
		if ((st = put_text(o->main, &o->t, err)))
			return st;
	}
	if (o->ids) {
		if ((st = vdb_id_append_text(&o->t, &rec->id, err)) || vdb_text_append(&o->t, "\n", 1))
			return st ? st : nomem(err);
		if ((st = put_text(o->ids, &o->t, err)))
			return st;
	}
	if (o->payloads) {
		if ((rec->payload ? vdb_text_append(&o->t, rec->payload, rec->payload_len)
				  : vdb_text_append(&o->t, "null", 4)) ||
		    vdb_text_append(&o->t, "\n", 1))
			return nomem(err);
		if ((st = put_text(o->payloads, &o->t, err)))
			return st;
	}
	return VDB_OK;
}

/* A payload key took the name of a CSV column of ours: say what the column is called. */
static void note_renamed(const char *usual, const char *now, const char *option)
{
	if (option)
		cli_error("note: a payload key is named '%s', so that column is '%s' (read it back "
			  "with vdb-ingest %s %s)", usual, now, option, now);
	else
		cli_error("note: payload keys are named like the vector columns, so those are %s0, "
			  "%s1, ...", now, now);
}

/* A first pass over the same view refuses what CSV cannot hold (a NUL byte in an id; with
 * --payload-columns, in a payload key or string) before anything is written, and collects
 * the payload keys --payload-columns makes columns of. */
static vdb_status csv_header(outputs *o, vdb_collection *coll, const vdb_filter *filter,
			     vdb_error *err)
{
	vdb_status st = vdb_csv_writer_new(o->dim, o->vector_columns, &o->cw, err);
	vdb_cursor *cur = NULL;
	if (!st)
		vdb_csv_writer_set_payload_columns(o->cw, o->payload_columns);
	if (!st)
		st = vdb_cursor_open_where(coll, filter, &cur, err);
	for (int has = 1; !st && has;) {
		vdb_record rec;
		if (!(st = vdb_cursor_next(cur, &rec, &has, err)) && has)
			st = vdb_csv_writer_add(o->cw, &rec, err);
	}
	vdb_cursor_close(cur);
	if (!st && !(st = vdb_csv_writer_header(o->cw, &o->t, err)))
		st = put_text(o->main, &o->t, err);
	const char *id, *vector;
	vdb_csv_writer_columns(o->cw, &id, &vector);
	if (!st && !o->quiet && strcmp(id, "id"))
		note_renamed("id", id, "--id-column");
	if (!st && !o->quiet && strcmp(vector, o->vector_columns ? "v" : "vector"))
		note_renamed(o->vector_columns ? "v0, v1, ..." : "vector", vector,
				 o->vector_columns ? NULL : "--vector-column");
	return st;
}

int main(int argc, char **argv)
{
	cli_init("vdb-export", argv);
	static const struct option opts[] = {{"collection", required_argument, NULL, 'c'},
					     {"format", required_argument, NULL, 'f'},
					     {"filter", required_argument, NULL, 'W'},
					     {"output", required_argument, NULL, 'o'},
					     {"zstd", no_argument, NULL, 'Z'},
					     {"no-sync", no_argument, NULL, 'S'},
					     {"ids-out", required_argument, NULL, 'I'},
					     {"payloads-out", required_argument, NULL, 'P'},
					     {"order", required_argument, NULL, 'O'},
					     {"vector-columns", no_argument, NULL, 'C'},
					     {"payload-columns", no_argument, NULL, 'K'},
					     {"quiet", no_argument, NULL, 'q'},
					     {"help", no_argument, NULL, 'h'},
					     {"version", no_argument, NULL, 'V'},
					     {NULL, 0, NULL, 0}};
	const char *name = VDB_DEFAULT_COLLECTION, *filter_text = NULL;
	outputs o = {0};
	int zstd = 0, by_id = 0, quiet = 0, durable = 1;
	vdb_file_format f = VDB_FILE_AUTO;
	int c;
	while ((c = cli_getopt(argc, argv, ":c:f:o:qhV", opts)) != -1) {
		switch (c) {
		case 'c': name = optarg; break;
		case 'f':
			f = vdb_file_format_parse(optarg);
			if (!f || f == VDB_FILE_BVECS)
				return cli_usage_error("unknown format '%s' (expected jsonl, npy, fvecs "
						       "or csv)", optarg);
			break;
		case 'W': filter_text = optarg; break;
		case 'o': o.main_name = strcmp(optarg, "-") ? optarg : NULL; break;
		case 'Z': zstd = 1; break;
		case 'S': durable = 0; break;
		case 'I': o.ids_name = optarg; break;
		case 'P': o.payloads_name = optarg; break;
		case 'O':
			if (strcmp(optarg, "storage") && strcmp(optarg, "id"))
				return cli_usage_error("unknown order '%s' (expected storage or id)",
						       optarg);
			by_id = !strcmp(optarg, "id");
			break;
		case 'C': o.vector_columns = 1; break;
		case 'K': o.payload_columns = 1; break;
		default: {
			int r = cli_common_option(c, usage, &quiet); /* -q, -h, -V, or a usage error */
			if (r != CLI_NEXT)
				return r;
		}
		}
	}
	if (cli_one_operand(argc, optind))
		return EXIT_USAGE;
	if (f == VDB_FILE_AUTO && o.main_name && vdb_file_format_of(o.main_name) == VDB_FILE_BVECS)
		return cli_usage_error("bvecs output is not supported (it would round the values "
				       "to bytes): use fvecs");
	if (f == VDB_FILE_AUTO)
		f = o.main_name ? vdb_file_format_of(o.main_name) : VDB_FILE_JSONL;
	const char *ext = o.main_name ? unknown_extension(o.main_name) : NULL;
	if (f == VDB_FILE_AUTO && ext)
		return cli_usage_error("%s: '%s' is not a format vdb-export writes (name the file "
				       ".jsonl, .npy, .fvecs or .csv, or give -f)", o.main_name, ext);
	if (f == VDB_FILE_AUTO)
		f = VDB_FILE_JSONL; /* a name without an extension (/dev/stdout, a FIFO, "out") */
	o.f = f;
	if (o.payload_columns && f != VDB_FILE_CSV)
		return cli_usage_error("--payload-columns goes with --format csv");
	if (o.vector_columns && f != VDB_FILE_CSV)
		return cli_usage_error("--vector-columns goes with --format csv");
	int binary = f == VDB_FILE_NPY || f == VDB_FILE_FVECS;
	if ((o.ids_name || o.payloads_name) && !binary)
		return cli_usage_error("--ids-out and --payloads-out go with --format npy or fvecs "
				       "(%s carries ids and payloads itself)", vdb_file_format_name(f));
	zstd = zstd || ends_zst(o.main_name);
	if ((binary || zstd) && cli_output_is_terminal(o.main_name))
		return cli_usage_error("refusing to write binary data to a terminal (use -o FILE or "
				       "a pipe)");
	vdb_filter *filter = NULL;
	if (filter_text && cli_parse_filter(filter_text, "--filter", &filter))
		return EXIT_USAGE;
	vdb_error err;
	vdb_collection *coll;
	if (vdb_collection_open(argv[optind], name, &coll, &err)) {
		vdb_filter_free(filter);
		return cli_fail(&err);
	}
	vdb_collection_config cfg;
	vdb_collection_config_init(&cfg);
	vdb_collection_get_config(coll, &cfg);
	o.dim = cfg.dim;
	uint64_t count = 0;
	vdb_cursor *cur = NULL;
	cli_progress prog;
	cli_progress_init(&prog, quiet, "records", 0);
	int rc = EXIT_OK;
	/* The row count heads an npy file, and sizes the progress display. */
	if (vdb_collection_count_where(coll, filter, &count, &err)) {
		rc = cli_fail(&err);
		goto out;
	}
	prog.total_rows = count;
	if (vdb_ostream_open(o.main_name, zstd ? 3 : 0, &o.main, &err) ||
	    (o.ids_name && vdb_ostream_open(o.ids_name, ends_zst(o.ids_name) ? 3 : 0, &o.ids, &err)) ||
	    (o.payloads_name &&
	     vdb_ostream_open(o.payloads_name, ends_zst(o.payloads_name) ? 3 : 0, &o.payloads, &err))) {
		rc = cli_fail(&err);
		goto out;
	}
	vdb_ostream *written[] = {o.main, o.ids, o.payloads};
	for (size_t i = 0; i < sizeof written / sizeof *written; i++)
		if (written[i])
			vdb_ostream_set_durable(written[i], durable);
	if (vdb_cursor_open_ordered(coll, filter, by_id ? VDB_ORDER_ID : VDB_ORDER_STORAGE, &cur,
				    &err)) {
		rc = cli_fail(&err);
		goto out;
	}
	vdb_status st = VDB_OK;
	o.quiet = quiet;
	if (binary)
		st = vdb_vec_writer_open(o.main, f == VDB_FILE_NPY ? VDB_VEC_NPY : VDB_VEC_FVECS, cfg.dim,
					 count, &o.vw, &err);
	else if (f == VDB_FILE_CSV)
		st = csv_header(&o, coll, filter, &err);
	uint64_t rows = 0;
	for (int has = 1; !st;) {
		vdb_record rec;
		if ((st = vdb_cursor_next(cur, &rec, &has, &err)) || !has)
			break;
		st = write_record(&o, &rec, &err);
		rows++;
		if (prog.on)
			cli_progress_update(&prog, rows, rows * cfg.dim * 4);
	}
	if (!st && o.vw)
		st = vdb_vec_writer_finish(o.vw, &err);
	/* Sidecars first: when the main output appears, its companions are complete. */
	if (!st && o.ids)
		st = vdb_ostream_finish(o.ids, &err);
	if (!st && o.payloads)
		st = vdb_ostream_finish(o.payloads, &err);
	if (!st)
		st = vdb_ostream_finish(o.main, &err);
	if (st)
		rc = write_failed(&err);
out:
	cli_progress_end(&prog);
	vdb_cursor_close(cur);
	vdb_vec_writer_close(o.vw);
	vdb_csv_writer_free(o.cw);
	vdb_text_free(&o.t);
	vdb_ostream_close(o.main);
	vdb_ostream_close(o.ids);
	vdb_ostream_close(o.payloads);
	vdb_collection_close(coll);
	vdb_filter_free(filter);
	int wrc = cli_close_stdout();
	return rc ? rc : wrc;
}
