/* vdb-info: what a database holds: per collection its configuration, record counts,
 * segments, sizes on disk and the writer holding its lock. Takes no lock. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

static void usage(void)
{
	printf("Usage: vdb-info DB [-c NAME] [--json] [-q]\n"
	       "       vdb-info DB --list [--json]\n"
	       "       vdb-info DB [-c NAME] --fields [--sample N] [--json]\n"
	       "\n"
	       "Describe a database: for each collection (sorted by name) its dimension,\n"
	       "metric, index and its parameters, payload indexes, live records and stored\n"
	       "rows that are deleted or replaced (what vdb-compact reclaims), segments,\n"
	       "the write-ahead log, bytes on disk, and the pid of the writer holding the\n"
	       "collection's lock, if any. Takes no lock and disturbs no writer; the\n"
	       "figures are those of the latest committed version.\n"
	       "\n"
	       "Options:\n"
	       "  -c, --collection NAME  only this collection (default: all)\n"
	       "      --json             one JSON object per collection per line\n"
	       "      --fields           the payload fields of each collection: path (dotted\n"
	       "                         into nested objects), JSON type, records holding it\n"
	       "      --sample N         --fields: read at most N records, spread over the\n"
	       "                         collection (default 10000; 0: all)\n"
	       "      --list             only the collections' names, one per line (with\n"
	       "                         --json: {\"collection\",\"dim\",\"metric\",\"records\"})\n"
	       "  -q, --quiet            accepted as by every command (info prints no\n"
	       "                         messages but errors anyway)\n"
	       "  -h, --help             show this help\n"
	       "  -V, --version          show the version\n"
	       "\n" CLI_EXIT_TABLE);
}

/* "1.5 MiB" beside exact byte counts, for people. */
static const char *human(uint64_t n, char *buf, size_t cap)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
	double v = (double)n;
	int u = 0;
	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, cap, "%" PRIu64 " B", n);
	else
		snprintf(buf, cap, "%.1f %s", v, units[u]);
	return buf;
}

static void print_text(const char *name, const vdb_collection_config *cfg,
		       const vdb_collection_stats *s)
{
	char h1[32], h2[32], h3[32];
	printf("collection %s\n", name);
	printf("  dimension        %" PRIu32 "\n", cfg->dim);
	printf("  metric           %s\n", vdb_metric_name(cfg->metric));
	if (cfg->index == VDB_INDEX_HNSW)
		printf("  index            hnsw (m %" PRIu32 ", ef-construction %" PRIu32 ")\n",
		       cfg->m, cfg->ef_construction);
	else
		printf("  index            %s\n", vdb_index_name(cfg->index));
	printf("  quantize         %s\n", vdb_quantize_name(cfg->quantize));
	printf("  seal bytes       %" PRIu64 "\n", cfg->seal_bytes);
	printf("  payload indexes  ");
	if (!cfg->n_index_fields)
		printf("none");
	for (uint32_t i = 0; i < cfg->n_index_fields; i++)
		printf("%s%s:%s", i ? ", " : "", cfg->index_fields[i].path,
		       vdb_field_type_name(cfg->index_fields[i].type));
	printf("\n");
	printf("  records          %" PRIu64 " live, %" PRIu64 " deleted or replaced\n", s->live,
	       s->dead);
	printf("  segments         %" PRIu64 " (%" PRIu64 " with a graph, %" PRIu64
	       " with codes), %s, %s\n",
	       s->segments, s->graphs, s->coded, CLI_COUNT(s->segment_rows, "row", "rows"),
	       human(s->segment_bytes, h1, sizeof h1));
	printf("  log              %s, %s\n", CLI_COUNT(s->log_records, "id", "ids"),
	       human(s->log_bytes, h2, sizeof h2));
	printf("  on disk          %s (%" PRIu64 " bytes)\n", human(s->disk_bytes, h3, sizeof h3),
	       s->disk_bytes);
	printf("  search memory    %s: resident set needed for searches at memory speed\n",
	       human(s->search_bytes, h3, sizeof h3));
	if (s->writer_pid > 0)
		printf("  writer           pid %ld\n", s->writer_pid);
	else if (s->writer_pid < 0)
		printf("  writer           locked (pid unknown)\n");
	else
		printf("  writer           none\n");
}

/* Collection names and field paths as JSON strings: an id's string form escapes them. */
static int append_string(vdb_text *t, const char *s)
{
	vdb_id id = {.is_string = 1, .str = s, .len = strlen(s)};
	return vdb_jsonl_append_id(t, &id) != VDB_OK;
}

static int print_json(const char *name, const vdb_collection_config *cfg,
		      const vdb_collection_stats *s)
{
	vdb_text t = {0};
	char num[512];
	int bad = vdb_text_append(&t, "{\"collection\":", 14) || append_string(&t, name);
	char m[16] = "null", efc[16] = "null"; /* graph parameters: HNSW only */
	if (cfg->index == VDB_INDEX_HNSW) {
		snprintf(m, sizeof m, "%" PRIu32, cfg->m);
		snprintf(efc, sizeof efc, "%" PRIu32, cfg->ef_construction);
	}
	snprintf(num, sizeof num,
		 ",\"dim\":%" PRIu32 ",\"metric\":\"%s\",\"index\":\"%s\",\"m\":%s"
		 ",\"ef_construction\":%s,\"quantize\":\"%s\",\"seal_bytes\":%" PRIu64
		 ",\"payload_indexes\":[",
		 cfg->dim, vdb_metric_name(cfg->metric), vdb_index_name(cfg->index), m, efc,
		 vdb_quantize_name(cfg->quantize), cfg->seal_bytes);
	bad = bad || vdb_text_append(&t, num, strlen(num));
	for (uint32_t i = 0; i < cfg->n_index_fields && !bad; i++) {
		snprintf(num, sizeof num, "%s{\"field\":", i ? "," : "");
		bad = vdb_text_append(&t, num, strlen(num)) ||
		      append_string(&t, cfg->index_fields[i].path);
		snprintf(num, sizeof num, ",\"type\":\"%s\"}",
			 vdb_field_type_name(cfg->index_fields[i].type));
		bad = bad || vdb_text_append(&t, num, strlen(num));
	}
	char pid[32] = "null";
	if (s->writer_pid > 0)
		snprintf(pid, sizeof pid, "%ld", s->writer_pid);
	else if (s->writer_pid < 0)
		snprintf(pid, sizeof pid, "true");
	snprintf(num, sizeof num,
		 "],\"live\":%" PRIu64 ",\"deleted\":%" PRIu64 ",\"segments\":%" PRIu64
		 ",\"graphs\":%" PRIu64 ",\"segment_rows\":%" PRIu64 ",\"segment_bytes\":%" PRIu64
		 ",\"log_records\":%" PRIu64 ",\"wal_bytes\":%" PRIu64 ",\"disk_bytes\":%" PRIu64
		 ",\"generation\":%" PRIu64 ",\"writer_pid\":%s,\"coded\":%" PRIu64
		 ",\"search_bytes\":%" PRIu64 "}\n",
		 s->live, s->dead, s->segments, s->graphs, s->segment_rows, s->segment_bytes,
		 s->log_records, s->log_bytes, s->disk_bytes, s->generation, pid, s->coded,
		 s->search_bytes);
	bad = bad || vdb_text_append(&t, num, strlen(num));
	if (!bad)
		fwrite(t.data, 1, t.len, stdout);
	vdb_text_free(&t);
	return bad;
}

/* Opens collection `name` of db and reads its configuration. */
static vdb_status open_collection(const char *db, const char *name, vdb_collection **c,
				  vdb_collection_config *cfg, vdb_error *err)
{
	vdb_status st = vdb_collection_open(db, name, c, err);
	vdb_collection_config_init(cfg);
	if (!st)
		vdb_collection_get_config(*c, cfg);
	return st;
}

/* --fields: the payload fields of a collection with their types and how many records hold
 * them, from all its records or an even sample of `sample` of them (said so). */
static int print_fields(const char *db, const char *name, int json, uint64_t sample)
{
	vdb_error err;
	vdb_collection *c;
	if (vdb_collection_open(db, name, &c, &err))
		return cli_fail(&err);
	vdb_field_stat *f;
	size_t n;
	uint64_t read, live = vdb_collection_count(c);
	int rc = EXIT_OK;
	if (vdb_collection_fields(c, sample, &f, &n, &read, &err)) {
		vdb_collection_close(c);
		return cli_fail(&err);
	}
	vdb_text t = {0};
	int bad = 0;
	char num[200];
	size_t width = 0; /* the paths' column */
	for (size_t i = 0; i < n; i++)
		width = strlen(f[i].path) > width ? strlen(f[i].path) : width;
	if (!json) {
		snprintf(num, sizeof num, "%s: payload fields of %s%llu of %llu records%s\n",
			 name, read < live ? "a sample: " : "", (unsigned long long)read,
			 (unsigned long long)live, read < live ? ", spread over the collection" : "");
		bad = vdb_text_append(&t, num, strlen(num)) != VDB_OK;
	}
	for (size_t i = 0; i < n && !bad; i++) {
		if (json) {
			snprintf(num, sizeof num,
				 ",\"type\":\"%s\",\"records\":%llu,\"read\":%llu,\"live\":%llu,"
				 "\"exact\":%s}\n",
				 f[i].type, (unsigned long long)f[i].records, (unsigned long long)read,
				 (unsigned long long)live, f[i].exact || read == live ? "true" : "false");
			bad = vdb_text_append(&t, "{\"collection\":", 14) || append_string(&t, name) ||
			      vdb_text_append(&t, ",\"field\":", 9) || append_string(&t, f[i].path) ||
			      vdb_text_append(&t, num, strlen(num));
		} else {
			size_t len = strlen(f[i].path);
			snprintf(num, sizeof num, "%*s  %-8s %llu%s\n", (int)(width - len), "",
				 f[i].type, (unsigned long long)f[i].records,
				 f[i].exact && read < live ? " (every record: indexed)" : "");
			bad = vdb_text_append(&t, "  ", 2) || vdb_text_append(&t, f[i].path, len) ||
			      vdb_text_append(&t, num, strlen(num));
		}
	}
	if (bad) {
		cli_error("out of memory");
		rc = EXIT_INTERNAL;
	} else {
		fwrite(t.data, 1, t.len, stdout);
	}
	vdb_text_free(&t);
	vdb_field_stats_free(f, n);
	vdb_collection_close(c);
	return rc;
}

/* --list: a collection's name, or with --json its name, dimension, metric and live
 * records. */
static int list_one(const char *db, const char *name, int json)
{
	if (!json)
		return printf("%s\n", name) < 0 ? EXIT_IO : EXIT_OK;
	vdb_error err;
	vdb_collection *c;
	vdb_collection_config cfg;
	if (open_collection(db, name, &c, &cfg, &err))
		return cli_fail(&err);
	vdb_text t = {0};
	char num[128];
	snprintf(num, sizeof num, ",\"dim\":%" PRIu32 ",\"metric\":\"%s\",\"records\":%" PRIu64 "}\n",
		 cfg.dim, vdb_metric_name(cfg.metric), vdb_collection_count(c));
	int bad = vdb_text_append(&t, "{\"collection\":", 14) || append_string(&t, name) ||
		  vdb_text_append(&t, num, strlen(num));
	if (!bad)
		fwrite(t.data, 1, t.len, stdout);
	vdb_text_free(&t);
	vdb_collection_close(c);
	if (bad) {
		cli_error("out of memory");
		return EXIT_INTERNAL;
	}
	return EXIT_OK;
}

static int describe(const char *db, const char *name, int json)
{
	vdb_error err;
	vdb_collection *c;
	vdb_collection_config cfg;
	if (open_collection(db, name, &c, &cfg, &err))
		return cli_fail(&err);
	vdb_collection_stats s;
	int rc = EXIT_OK;
	if (vdb_collection_stats_get(c, &s, &err))
		rc = cli_fail(&err);
	else if (json ? print_json(name, &cfg, &s) : (print_text(name, &cfg, &s), 0)) {
		cli_error("out of memory");
		rc = EXIT_INTERNAL;
	}
	vdb_collection_close(c);
	return rc;
}

int main(int argc, char **argv)
{
	cli_init("vdb-info", argv);
	static const struct option opts[] = {{"collection", required_argument, NULL, 'c'},
					     {"json", no_argument, NULL, 'J'},
					     {"list", no_argument, NULL, 'L'},
					     {"fields", no_argument, NULL, 'F'},
					     {"sample", required_argument, NULL, 'S'},
					     {"quiet", no_argument, NULL, 'q'},
					     {"help", no_argument, NULL, 'h'},
					     {"version", no_argument, NULL, 'V'},
					     {NULL, 0, NULL, 0}};
	const char *name = NULL;
	int json = 0, list = 0, fields = 0, quiet = 0, c, rc; /* -q as every command takes it:
								  * info prints no diagnostics but errors anyway */
	uint64_t sample = 10000;
	while ((c = cli_getopt(argc, argv, ":c:qhV", opts)) != -1) {
		switch (c) {
		case 'c': name = optarg; break;
		case 'J': json = 1; break;
		case 'L': list = 1; break;
		case 'F': fields = 1; break;
		case 'S':
			if (cli_parse_u64(optarg, "--sample", 0, UINT64_MAX, 0, &sample))
				return EXIT_USAGE;
			break;
		default:
			if ((rc = cli_common_option(c, usage, &quiet)) != CLI_NEXT)
				return rc;
		}
	}
	if (cli_one_operand(argc, optind))
		return EXIT_USAGE;
	const char *db = argv[optind];
	if (list && name)
		return cli_usage_error("--list and --collection cannot be combined");
	if (list && fields)
		return cli_usage_error("--list and --fields cannot be combined");
	if (name) {
		rc = fields ? print_fields(db, name, json, sample) : describe(db, name, json);
	} else {
		vdb_error err;
		char **names;
		size_t n;
		if (vdb_list_collections(db, &names, &n, &err))
			return cli_fail(&err);
		rc = EXIT_OK;
		for (size_t i = 0; i < n && !rc; i++) {
			if (list) {
				rc = list_one(db, names[i], json);
				continue;
			}
			if (fields) {
				rc = print_fields(db, names[i], json, sample);
				continue;
			}
			if (i && !json)
				printf("\n");
			rc = describe(db, names[i], json);
		}
		vdb_names_free(names);
	}
	int out = cli_close_stdout();
	return rc ? rc : out;
}
