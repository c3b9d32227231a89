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
	       "  parquet Apache Parquet: id (INT64, or strings when an id is a string),\n"
	       "          vector (a list of FLOAT, fixed_size_list<float, DIM> for Arrow),\n"
	       "          payload (JSON); zstd pages, row groups of about 64 MiB\n"
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
	       "  -f, --format FORMAT     jsonl, npy, fvecs, csv or parquet\n"
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
	       "                          empty strings vanish, arrays become strings);\n"
	       "                          parquet: also a typed column (string, int64,\n"
	       "                          double, boolean; null where absent) per key whose\n"
	       "                          values have one type\n"
	       "      --compression CODEC parquet: zstd (default), snappy or none\n"
	       "      --row-group-rows N  parquet: rows per row group (default: about 64 MiB\n"
	       "                          of rows, at most 1048576)\n"
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

/* An output error: quiet when standard output's reader went away (`| head`); only a
 * pipe fails with EPIPE, and vdb_export leaves errno as the failed write set it. */
static int write_failed(const vdb_error *err)
{
	if (err->code == VDB_EIO && errno == EPIPE)
		return EXIT_OK;
	return cli_fail(err);
}

typedef struct shown {
	cli_progress *prog;
	uint32_t dim;
	int quiet;
} shown;

static void on_progress(void *ctx, uint64_t rows, uint64_t total)
{
	shown *s = ctx;
	s->prog->total_rows = total; /* the exporter counted them once already */
	if (s->prog->on)
		cli_progress_update(s->prog, rows, rows * s->dim * 4);
}

static void on_note(void *ctx, const char *message)
{
	if (!((shown *)ctx)->quiet)
		cli_error("%s", message);
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
					     {"compression", required_argument, NULL, 'z'},
					     {"row-group-rows", required_argument, NULL, 'G'},
					     {"quiet", no_argument, NULL, 'q'},
					     {"help", no_argument, NULL, 'h'},
					     {"version", no_argument, NULL, 'V'},
					     {NULL, 0, NULL, 0}};
	const char *name = VDB_DEFAULT_COLLECTION, *filter_text = NULL;
	vdb_export_options o;
	vdb_export_options_init(&o);
	int by_id = 0, quiet = 0, codec_given = 0;
	vdb_file_format f = VDB_FILE_AUTO;
	int c;
	while ((c = cli_getopt(argc, argv, ":c:f:o:qhV", opts)) != -1) {
		switch (c) {
		case 'c': name = optarg; break;
		case 'f':
			f = vdb_file_format_parse(optarg);
			if (!f || f == VDB_FILE_BVECS)
				return cli_usage_error("unknown format '%s' (expected jsonl, npy, fvecs, "
						       "csv or parquet)", optarg);
			break;
		case 'W': filter_text = optarg; break;
		case 'o': o.output = strcmp(optarg, "-") ? optarg : NULL; break;
		case 'Z': o.zstd = 1; break;
		case 'S': o.durable = 0; break;
		case 'I': o.ids_path = optarg; break;
		case 'P': o.payloads_path = optarg; break;
		case 'O':
			if (strcmp(optarg, "storage") && strcmp(optarg, "id"))
				return cli_usage_error("unknown order '%s' (expected storage or id)",
						       optarg);
			by_id = !strcmp(optarg, "id");
			break;
		case 'C': o.vector_columns = 1; break;
		case 'K': o.payload_columns = 1; break;
		case 'z':
			if (!strcmp(optarg, "zstd"))
				o.parquet_codec = VDB_PARQUET_ZSTD;
			else if (!strcmp(optarg, "snappy"))
				o.parquet_codec = VDB_PARQUET_SNAPPY;
			else if (!strcmp(optarg, "none"))
				o.parquet_codec = VDB_PARQUET_UNCOMPRESSED;
			else
				return cli_usage_error("unknown compression '%s' (expected zstd, snappy "
						       "or none)", optarg);
			codec_given = 1;
			break;
		case 'G':
			if (cli_parse_u64(optarg, "--row-group-rows", 1, 1ull << 26, 0,
					  &o.row_group_rows))
				return EXIT_USAGE;
			break;
		default: {
			int r = cli_common_option(c, usage, &quiet); /* -q, -h, -V, or a usage error */
			if (r != CLI_NEXT)
				return r;
		}
		}
	}
	if (cli_one_operand(argc, optind))
		return EXIT_USAGE;
	if (f == VDB_FILE_AUTO && o.output && vdb_file_format_of(o.output) == VDB_FILE_BVECS)
		return cli_usage_error("bvecs output is not supported (it would round the values "
				       "to bytes): use fvecs");
	if (f == VDB_FILE_AUTO)
		f = o.output ? vdb_file_format_of(o.output) : VDB_FILE_JSONL;
	const char *ext = o.output ? unknown_extension(o.output) : NULL;
	if (f == VDB_FILE_AUTO && ext)
		return cli_usage_error("%s: '%s' is not a format vdb-export writes (name the file "
				       ".jsonl, .npy, .fvecs, .csv or .parquet, or give -f)", o.output, ext);
	if (f == VDB_FILE_AUTO)
		f = VDB_FILE_JSONL; /* a name without an extension (/dev/stdout, a FIFO, "out") */
	o.format = f;
	o.order = by_id ? VDB_ORDER_ID : VDB_ORDER_STORAGE;
	if (o.payload_columns && f != VDB_FILE_CSV && f != VDB_FILE_PARQUET)
		return cli_usage_error("--payload-columns goes with --format csv or parquet");
	if ((codec_given || o.row_group_rows) && f != VDB_FILE_PARQUET)
		return cli_usage_error("--compression and --row-group-rows go with --format parquet");
	if (o.vector_columns && f != VDB_FILE_CSV)
		return cli_usage_error("--vector-columns goes with --format csv");
	int binary = f == VDB_FILE_NPY || f == VDB_FILE_FVECS;
	if ((o.ids_path || o.payloads_path) && !binary)
		return cli_usage_error("--ids-out and --payloads-out go with --format npy or fvecs "
				       "(%s carries ids and payloads itself)", vdb_file_format_name(f));
	if (f == VDB_FILE_PARQUET && (o.zstd || ends_zst(o.output)))
		return cli_usage_error("Parquet compresses its own pages (see --compression): the "
				       "file itself is not compressed");
	o.zstd = o.zstd || ends_zst(o.output);
	if ((binary || o.zstd || f == VDB_FILE_PARQUET) && cli_output_is_terminal(o.output))
		return cli_usage_error("refusing to write binary data to a terminal (use -o FILE or "
				       "a pipe)");
	vdb_filter *filter = NULL;
	if (filter_text && cli_parse_filter(filter_text, "--filter", &filter))
		return EXIT_USAGE;
	o.filter = filter;
	vdb_error err;
	vdb_collection *coll;
	if (vdb_collection_open(argv[optind], name, &coll, &err)) {
		vdb_filter_free(filter);
		return cli_fail(&err);
	}
	vdb_collection_config cfg;
	vdb_collection_config_init(&cfg);
	vdb_collection_get_config(coll, &cfg);
	cli_progress prog;
	cli_progress_init(&prog, quiet, "records", 0);
	int rc = EXIT_OK;
	shown sh = {&prog, cfg.dim, quiet};
	o.ctx = &sh;
	o.on_progress = on_progress;
	o.on_note = on_note;
	if (vdb_export(coll, &o, NULL, &err))
		rc = write_failed(&err);
	cli_progress_end(&prog);
	vdb_collection_close(coll);
	vdb_filter_free(filter);
	int wrc = cli_close_stdout();
	return rc ? rc : wrc;
}
