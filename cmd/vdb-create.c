/* vdb-create: create a database directory (if needed) and a collection in it. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

static void usage(void)
{
	printf("Usage: vdb-create DB [-c NAME] --dim N --metric cosine|l2|dot [--index hnsw|flat]\n"
	       "                  [--m M] [--ef-construction N] [--seal-size BYTES]\n"
	       "                  [--index-field NAME:keyword|int|float]...\n"
	       "                  [--quantize none|int8|binary]\n"
	       "\n"
	       "Create collection NAME (default \"default\") in the database directory DB,\n"
	       "creating DB if it does not exist. Nothing is changed if the collection exists.\n"
	       "\n"
	       "Options:\n"
	       "  -c, --collection NAME  collection name: 1-64 of A-Z a-z 0-9 _ . -, not\n"
	       "                         starting with a dot (default: default)\n"
	       "  -d, --dim N            vector dimension, 1 to %d (required)\n"
	       "  -m, --metric METRIC    cosine, l2 or dot (required)\n"
	       "      --index TYPE       hnsw (default): a graph per sealed segment for fast\n"
	       "                         approximate search; flat: exact scans only\n"
	       "      --m M              HNSW links per node and level, 2 to 64 (default %d)\n"
	       "      --ef-construction N  HNSW build beam width, M to 4096 (default %d)\n"
	       "      --seal-size BYTES  unsealed log size that triggers a seal into an\n"
	       "                         immutable segment (default 4M; K, M, G suffixes)\n"
	       "      --index-field NAME:TYPE  keep an index of payload field NAME (a dotted\n"
	       "                         path) in every segment, for filters on it: keyword\n"
	       "                         (strings), int or float (numbers); up to %d fields\n"
	       "      --quantize KIND    keep compact codes of every vector beside it, which\n"
	       "                         graph searches walk (the vectors rescore the best):\n"
	       "                         none (default), int8 (a byte per dimension: +25%%\n"
	       "                         on disk, search in a quarter of the memory) or\n"
	       "                         binary (a bit per dimension, for 384 dims or more)\n"
	       "  -q, --quiet            print nothing but errors\n"
	       "  -h, --help             show this help\n"
	       "  -V, --version          show the version\n"
	       "\n" CLI_EXIT_TABLE,
	       VDB_DIM_MAX, VDB_DEFAULT_M, VDB_DEFAULT_EF_CONSTRUCTION, VDB_INDEX_FIELDS_MAX);
}

/* NAME:TYPE, split at the last colon (a field name may contain colons). */
static int add_index_field(vdb_collection_config *cfg, const char *arg)
{
	const char *colon = strrchr(arg, ':');
	vdb_field_type type;
	if (!colon || colon == arg)
		return cli_usage_error("--index-field: expected NAME:keyword|int|float, got '%s'", arg);
	vdb_error err;
	if (vdb_field_type_parse(colon + 1, &type, &err))
		return cli_usage_error("--index-field: %s", err.message);
	if (cfg->n_index_fields == VDB_INDEX_FIELDS_MAX)
		return cli_usage_error("--index-field: at most %d fields", VDB_INDEX_FIELDS_MAX);
	size_t n = (size_t)(colon - arg);
	if (n >= VDB_FIELD_PATH_MAX)
		return cli_usage_error("--index-field: field name longer than %d bytes",
				       VDB_FIELD_PATH_MAX - 1);
	vdb_index_field *f = &cfg->index_fields[cfg->n_index_fields++];
	memcpy(f->path, arg, n);
	f->path[n] = '\0';
	f->type = type;
	return 0;
}

int main(int argc, char **argv)
{
	cli_init("vdb-create", argv);
	static const struct option opts[] = {
		{"collection", required_argument, NULL, 'c'}, {"dim", required_argument, NULL, 'd'},
		{"metric", required_argument, NULL, 'm'},     {"seal-size", required_argument, NULL, 'S'},
		{"index", required_argument, NULL, 'I'},      {"m", required_argument, NULL, 'M'},
		{"ef-construction", required_argument, NULL, 'E'},
		{"index-field", required_argument, NULL, 'F'},
		{"quantize", required_argument, NULL, 'Q'},
		{"quiet", no_argument, NULL, 'q'},	      {"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},	      {NULL, 0, NULL, 0}};
	const char *name = VDB_DEFAULT_COLLECTION, *metric = NULL;
	vdb_collection_config cfg;
	vdb_error err;
	vdb_collection_config_init(&cfg);
	uint64_t v;
	int have_dim = 0, have_m = 0, have_efc = 0, c;
	while ((c = cli_getopt(argc, argv, ":c:d:m:qhV", opts)) != -1) {
		switch (c) {
		case 'c': name = optarg; break;
		case 'd':
			if (cli_parse_u64(optarg, "--dim", 1, VDB_DIM_MAX, 0, &v))
				return EXIT_USAGE;
			cfg.dim = (uint32_t)v;
			have_dim = 1;
			break;
		case 'm': metric = optarg; break;
		case 'S':
			if (cli_parse_u64(optarg, "--seal-size", 4096, 1ull << 40, 1, &v))
				return EXIT_USAGE;
			cfg.seal_bytes = v;
			break;
		case 'I':
			if (vdb_index_parse(optarg, &cfg.index, &err))
				return cli_usage_error("%s", err.message);
			break;
		case 'M':
			if (cli_parse_u64(optarg, "--m", 2, 64, 0, &v))
				return EXIT_USAGE;
			cfg.m = (uint32_t)v;
			have_m = 1;
			break;
		case 'E':
			if (cli_parse_u64(optarg, "--ef-construction", 2, 4096, 0, &v))
				return EXIT_USAGE;
			cfg.ef_construction = (uint32_t)v;
			have_efc = 1;
			break;
		case 'F':
			if (add_index_field(&cfg, optarg))
				return EXIT_USAGE;
			break;
		case 'Q':
			if (vdb_quantize_parse(optarg, &cfg.quantize, &err))
				return cli_usage_error("%s", err.message);
			break;
		case 'q': break;
		case 'h': usage(); return cli_close_stdout();
		case 'V': cli_version(); return cli_close_stdout();
		default: return cli_option_error(c);
		}
	}
	if (cli_one_operand(argc, optind))
		return EXIT_USAGE;
	if (!have_dim)
		return cli_usage_error("--dim is required");
	if (!metric)
		return cli_usage_error("--metric is required (cosine, l2 or dot)");
	if (vdb_metric_parse(metric, &cfg.metric, &err))
		return cli_usage_error("%s", err.message);
	if (cfg.index == VDB_INDEX_FLAT && (have_m || have_efc))
		return cli_usage_error("--m and --ef-construction apply to --index hnsw");
	if (cfg.index == VDB_INDEX_HNSW && cfg.ef_construction < cfg.m)
		return cli_usage_error("--ef-construction must be at least --m (%u)", cfg.m);
	if (cfg.index == VDB_INDEX_FLAT && cfg.quantize != VDB_QUANTIZE_NONE)
		return cli_usage_error("--quantize applies to --index hnsw (graph searches walk "
				       "the codes)");
	if (cfg.index == VDB_INDEX_FLAT)
		cfg.m = cfg.ef_construction = 0;
	if (!vdb_collection_name_valid(name))
		return cli_usage_error("invalid collection name '%s' (use 1-64 of A-Z a-z 0-9 _ . -, "
				       "not starting with a dot)",
				       name);
	if (vdb_collection_create(argv[optind], name, &cfg, &err))
		return cli_fail(&err);
	return EXIT_OK;
}
