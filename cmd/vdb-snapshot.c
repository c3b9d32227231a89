/* vdb-snapshot: a consistent, compressed, checksummed archive of a live database, to a file
 * (atomically), to standard output, or into a cron-managed backup directory. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "progress.h"

static volatile sig_atomic_t stop_signal;
static cli_progress progress; /* ended before the summary */

static void on_signal(int sig)
{
	__atomic_store_n(&stop_signal, sig, __ATOMIC_RELAXED); /* read by libvdb threads */
}

static void usage(void)
{
	printf("Usage: vdb-snapshot DB [-c NAME]... -o FILE|- [--since PREVIOUS]\n"
	       "       vdb-snapshot DB [-c NAME]... --into DIR [--keep-last N] [--full-every N]\n"
	       "       vdb-snapshot --list DIR [--json]\n"
	       "       vdb-snapshot --prune DIR --keep-last N [--dry-run] [--json]\n"
	       "(--keep-last stands for any of the retention options below: they combine.)\n"
	       "\n"
	       "Write a snapshot of the database: a tar archive compressed with zstd whose\n"
	       "first entry, vdb-snapshot.json, lists every file with its size and CRC32C.\n"
	       "Writers keep writing meanwhile: each collection is captured as one committed\n"
	       "version. Every segment is verified while it is read. vdb-restore restores it;\n"
	       "`tar --zstd -tf FILE` lists it. A file is written atomically (temp name, fsync,\n"
	       "rename); binary output to a terminal is refused.\n"
	       "\n"
	       "Options:\n"
	       "  -c, --collection NAME  snapshot this collection (repeatable; default: all)\n"
	       "  -o, --output FILE      write the archive to FILE ('-': standard output)\n"
	       "      --since PREVIOUS   incremental: store only what PREVIOUS (a snapshot in\n"
	       "                         the same directory, checked whole first) does not\n"
	       "                         hold: new segments, new log frames\n"
	       "      --into DIR         cron mode: write DIR/vdb-YYYYMMDDTHHMMSSZ.tar.zst,\n"
	       "                         incremental on the latest snapshot in DIR\n"
	       "      --full-every N     cron mode: every Nth snapshot is full (default 7)\n"
	       "      --keep-last N      after a cron run, or with --prune: keep the newest N\n"
	       "                         snapshots (--keep N is the same)\n"
	       "      --keep-hourly N    ... and the newest of each of the last N hours (UTC)\n"
	       "                         that have snapshots\n"
	       "      --keep-daily N     ... of the last N days\n"
	       "      --keep-weekly N    ... of the last N weeks (ISO weeks)\n"
	       "      --keep-monthly N   ... of the last N months\n"
	       "                         Every snapshot a kept one depends on is kept too;\n"
	       "                         with no retention option nothing is removed\n"
	       "      --list DIR         one line per snapshot in DIR, oldest first: TIME FILE\n"
	       "                         KIND BASE COLLECTIONS RECORDS BYTES STATUS\n"
	       "      --prune DIR        apply the retention options to DIR: one line per\n"
	       "                         snapshot, 'keep (WHY)' or 'remove' before it\n"
	       "      --dry-run          with --prune: remove nothing ('would remove')\n"
	       "      --json             with --list or --prune: one JSON object per line\n"
	       "  -l, --level N          zstd level, 1-19 (default 3)\n"
	       "  -j, --threads N        zstd worker threads, 0-256 (default 0: one thread;\n"
	       "                         -T N is the same)\n"
	       "  -q, --quiet            print nothing but errors (and no progress)\n"
	       "  -h, --help             show this help\n"
	       "  -V, --version          show the version\n"
	       "\n"
	       "A summary goes to standard error, and the name of every snapshot a prune\n"
	       "removed:\n"
	       "  vdb-snapshot: FILE: 2 collections, 1000 records; 9 files, 1.2 MiB -> 0.4 MiB\n"
	       "  (ratio 3.1), 0 referenced; 0.21 s\n"
	       "  vdb-snapshot: removed DIR/vdb-20261201T030000Z.tar.zst\n"
	       "\n" CLI_EXIT_TABLE);
}

static void summary(const char *where, const vdb_snapshot_stats *s, double secs)
{
	cli_progress_end(&progress);
	fprintf(stderr, "%s: %s: %s, %s; %s, %.1f MiB -> %.1f MiB (ratio %.1f), %llu referenced; "
		"%.2f s\n", cli_prog, where, CLI_COUNT(s->collections, "collection", "collections"),
		CLI_COUNT(s->records, "record", "records"), CLI_COUNT(s->files, "file", "files"),
		(double)s->bytes_in / (1 << 20), (double)s->bytes_out / (1 << 20),
		s->bytes_out ? (double)s->bytes_in / (double)s->bytes_out : 0.0,
		(unsigned long long)s->referenced, secs);
}

static int fail(const vdb_error *err)
{
	if (err->code == VDB_EINTR)
		return 128 + (stop_signal ? stop_signal : SIGINT);
	return cli_fail(err);
}

/* Leaves main through free_names. */
#define LEAVE(code) \
	do { \
		rc = (code); \
		goto free_names; \
	} while (0)

/* Names every file the judged directory d (in dir) says was removed, in the order they
 * were: newest first. */
static void say_removed(const char *dir, const vdb_snapshot_dir *d, int dry_run)
{
	for (size_t i = d->n; i-- > 0;)
		if (dry_run ? !d->files[i].keep : d->files[i].removed)
			fprintf(stderr, "%s: %s %s/%s\n", cli_prog, dry_run ? "would remove" : "removed",
				dir, d->files[i].file);
}

/* --list DIR and --prune DIR: the listing on standard output. */
static int list_or_prune(const char *dir, int prune, const vdb_retention *keep, int dry_run,
			 int json, int quiet)
{
	vdb_snapshot_dir d = {0};
	vdb_error err;
	uint64_t removed = 0;
	vdb_status st = prune ? vdb_snapshot_prune(dir, keep, dry_run, &d, &removed, &err)
			      : vdb_snapshot_dir_list(dir, &d, &err);
	vdb_text t = {0};
	if (d.files && vdb_snapshot_dir_format(&d, json, prune, dry_run, &t, &err) && !st)
		st = err.code;
	if (t.len)
		fwrite(t.data, 1, t.len, stdout);
	vdb_text_free(&t);
	if (prune && !quiet)
		say_removed(dir, &d, dry_run);
	vdb_snapshot_dir_free(&d);
	int rc = st ? cli_fail(&err) : EXIT_OK;
	int wrc = cli_close_stdout();
	return rc ? rc : wrc;
}

int main(int argc, char **argv)
{
	cli_init("vdb-snapshot", argv);
	enum {
		OPT_SINCE = 256,
		OPT_INTO,
		OPT_KEEP,
		OPT_FULL_EVERY,
		OPT_KEEP_HOURLY,
		OPT_KEEP_DAILY,
		OPT_KEEP_WEEKLY,
		OPT_KEEP_MONTHLY,
		OPT_LIST,
		OPT_PRUNE,
		OPT_DRY_RUN,
		OPT_JSON
	};
	static const struct option opts[] = {{"collection", required_argument, NULL, 'c'},
					     {"output", required_argument, NULL, 'o'},
					     {"since", required_argument, NULL, OPT_SINCE},
					     {"into", required_argument, NULL, OPT_INTO},
					     {"keep", required_argument, NULL, OPT_KEEP},
					     {"keep-last", required_argument, NULL, OPT_KEEP},
					     {"keep-hourly", required_argument, NULL, OPT_KEEP_HOURLY},
					     {"keep-daily", required_argument, NULL, OPT_KEEP_DAILY},
					     {"keep-weekly", required_argument, NULL, OPT_KEEP_WEEKLY},
					     {"keep-monthly", required_argument, NULL, OPT_KEEP_MONTHLY},
					     {"list", required_argument, NULL, OPT_LIST},
					     {"prune", required_argument, NULL, OPT_PRUNE},
					     {"dry-run", no_argument, NULL, OPT_DRY_RUN},
					     {"json", no_argument, NULL, OPT_JSON},
					     {"full-every", required_argument, NULL, OPT_FULL_EVERY},
					     {"level", required_argument, NULL, 'l'},
					     {"threads", required_argument, NULL, 'j'},
					     {"quiet", no_argument, NULL, 'q'},
					     {"help", no_argument, NULL, 'h'},
					     {"version", no_argument, NULL, 'V'},
					     {NULL, 0, NULL, 0}};
	vdb_snapshot_options o;
	vdb_snapshot_options_init(&o);
	const char **names = calloc((size_t)argc, sizeof *names);
	const char *output = NULL, *into = NULL, *list = NULL, *prune = NULL;
	uint64_t v, full_every = 7;
	vdb_retention keep = {0};
	int quiet = 0, c, rc, have_keep = 0, have_full = 0, dry_run = 0, json = 0;
	if (!names) {
		cli_error("out of memory");
		return EXIT_INTERNAL;
	}
	while ((c = cli_getopt(argc, argv, ":c:o:l:T:j:qhV", opts)) != -1) {
		switch (c) {
		case 'c': names[o.ncollections++] = optarg; break;
		case 'o': output = optarg; break;
		case OPT_SINCE: o.since = optarg; break;
		case OPT_INTO: into = optarg; break;
		case OPT_KEEP:
		case OPT_KEEP_HOURLY:
		case OPT_KEEP_DAILY:
		case OPT_KEEP_WEEKLY:
		case OPT_KEEP_MONTHLY: {
			static const char *const spelled[] = {"--keep-last", "--keep-hourly",
							      "--keep-daily", "--keep-weekly",
							      "--keep-monthly"};
			uint64_t *slots[] = {&keep.last, &keep.hourly, &keep.daily, &keep.weekly,
					     &keep.monthly};
			int k = c == OPT_KEEP ? 0 : c - OPT_KEEP_HOURLY + 1;
			if (cli_parse_u64(optarg, spelled[k], 1, 1000000, 0, slots[k]))
				LEAVE(EXIT_USAGE);
			have_keep = 1;
			break;
		}
		case OPT_LIST: list = optarg; break;
		case OPT_PRUNE: prune = optarg; break;
		case OPT_DRY_RUN: dry_run = 1; break;
		case OPT_JSON: json = 1; break;
		case OPT_FULL_EVERY:
			if (cli_parse_u64(optarg, "--full-every", 1, 1000000, 0, &full_every))
				LEAVE(EXIT_USAGE);
			have_full = 1;
			break;
		case 'l':
			if (cli_parse_u64(optarg, "--level", 1, 19, 0, &v))
				LEAVE(EXIT_USAGE);
			o.level = (int)v;
			break;
		case 'T': /* the first spelling, kept */
		case 'j':
			if (cli_parse_u64(optarg, "--threads", 0, 256, 0, &v))
				LEAVE(EXIT_USAGE);
			o.threads = (int)v;
			break;
		default:
			if ((rc = cli_common_option(c, usage, &quiet)) != CLI_NEXT)
				LEAVE(rc);
		}
	}
	if (list || prune) {
		if (list && prune)
			LEAVE(cli_usage_error("--list and --prune exclude each other"));
		if (argc > optind)
			LEAVE(cli_usage_error("--%s takes no database", list ? "list" : "prune"));
		if (output || into || o.since || o.ncollections || have_full)
			LEAVE(cli_usage_error("--%s goes alone with %s", list ? "list" : "prune",
					      list ? "--json" : "retention options, --dry-run and --json"));
		if (list && (have_keep || dry_run))
			LEAVE(cli_usage_error("retention options and --dry-run go with --prune or "
					      "--into"));
		if (prune && !have_keep)
			LEAVE(cli_usage_error("--prune needs a retention option (--keep-last, "
					      "--keep-daily, ...)"));
		LEAVE(list_or_prune(list ? list : prune, prune != NULL, &keep, dry_run, json, quiet));
	}
	if (dry_run || json)
		LEAVE(cli_usage_error("%s goes with --prune", dry_run ? "--dry-run" : "--json"));
	if (cli_one_operand(argc, optind))
		LEAVE(EXIT_USAGE);
	if (!output == !into)
		LEAVE(cli_usage_error("give exactly one of -o FILE and --into DIR"));
	if (output && (have_keep || have_full))
		LEAVE(cli_usage_error("retention options and --full-every go with --into (or "
				      "--prune)"));
	if (into && o.since)
		LEAVE(cli_usage_error("--since goes with -o (--into chooses the base itself)"));
	o.collections = names;
	cli_catch_stop_signals(on_signal);
	o.cancel = cli_cancel_on(&stop_signal);
	cli_progress_init(&progress, quiet, NULL, 0);
	o.progress = cli_progress_bytes_cb;
	o.progress_ctx = &progress;
	const char *db = argv[optind];
	double t0 = cli_now();
	vdb_error err;
	vdb_snapshot_stats stats;
	rc = EXIT_OK;
	if (into) {
		vdb_snapshot_rotation rot;
		vdb_snapshot_dir judged = {0};
		vdb_snapshot_rotation_init(&rot);
		rot.retention = keep;
		rot.full_every = full_every;
		rot.result = &judged;
		char written[4096];
		vdb_status st = vdb_snapshot_into(db, &o, into, &rot, written, sizeof written, &stats,
						  &err);
		/* Said even with -q: the chain the next runs build on starts again here. */
		if (rot.base_problem[0]) {
			cli_progress_end(&progress);
			fprintf(stderr, "%s: warning: %s: writing a full snapshot instead of an "
				"incremental\n", cli_prog, rot.base_problem);
		}
		if (st)
			rc = fail(&err);
		else if (!quiet)
			summary(written, &stats, cli_now() - t0);
		if (!rc && !quiet)
			say_removed(into, &judged, 0);
		vdb_snapshot_dir_free(&judged);
	} else if (!strcmp(output, "-")) {
		if (isatty(STDOUT_FILENO)) {
			cli_error("refusing to write a binary archive to a terminal (use -o FILE or a "
				  "pipe)");
			rc = EXIT_USAGE;
		} else if (vdb_snapshot_write(db, &o, STDOUT_FILENO, &stats, &err)) {
			rc = fail(&err);
		} else if (!quiet) {
			summary("standard output", &stats, cli_now() - t0);
		}
	} else if (cli_output_is_terminal(output)) {
		cli_error("refusing to write a binary archive to a terminal (%s)", output);
		rc = EXIT_USAGE;
	} else if (vdb_snapshot_write_file(db, &o, output, &stats, &err)) {
		rc = fail(&err);
	} else if (!quiet) {
		summary(output, &stats, cli_now() - t0);
	}
free_names:
	cli_progress_end(&progress);
	free(names);
	return rc;
}
