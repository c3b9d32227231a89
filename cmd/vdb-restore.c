/* vdb-restore: verify a snapshot completely, then make it a database in one rename; or only
 * verify it, or list it. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "progress.h"

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	__atomic_store_n(&stop_signal, sig, __ATOMIC_RELAXED); /* read by libvdb threads */
}

static void usage(void)
{
	printf("Usage: vdb-restore FILE|- TARGET [--force] [--chain-dir DIR]\n"
	       "       vdb-restore DIR [--at TIME] TARGET [--force]\n"
	       "       vdb-restore --verify FILE|-|DIR [--chain-dir DIR]\n"
	       "       vdb-restore --list [--json] FILE|-\n"
	       "\n"
	       "Restore a snapshot written by vdb-snapshot as database TARGET. Everything is\n"
	       "extracted into a new hidden directory beside TARGET and checked -- every\n"
	       "checksum, every database invariant vdb-check verifies, the record counts --\n"
	       "then fsynced and renamed into place: TARGET is absent or complete, whatever\n"
	       "happens. TARGET must not exist or be empty. An incremental snapshot takes the\n"
	       "rest of its files from the snapshots it depends on, looked up in its own\n"
	       "directory. Hostile or damaged archives are refused, naming the entry.\n"
	       "Given a directory of snapshots, the newest one (taken at or before --at TIME)\n"
	       "is restored, or with --verify every one is verified, one line each.\n"
	       "\n"
	       "Options:\n"
	       "      --at TIME          with a directory: the newest snapshot taken at or\n"
	       "                         before TIME (ISO 8601: 2026-12-07T03:00:00Z; UTC\n"
	       "                         unless it has an offset)\n"
	       "      --force            replace TARGET if it is a vdb database (one atomic\n"
	       "                         swap; refused while a writer holds a lock in it)\n"
	       "      --chain-dir DIR    look for the snapshots an incremental depends on in\n"
	       "                         DIR (default: FILE's directory; '.' for stdin)\n"
	       "      --verify           every check a restore makes, on a scratch copy in\n"
	       "                         $TMPDIR (default /tmp), removed afterwards; of a\n"
	       "                         directory: of every snapshot in it, printing TIME\n"
	       "                         FILE KIND BASE COLLECTIONS RECORDS BYTES STATUS\n"
	       "                         (with -q: for the bad ones only)\n"
	       "      --list             print the archive's manifest: properties, collections,\n"
	       "                         then one line per file: SIZE CRC32C NAME\n"
	       "      --json             with --list: the manifest as one JSON object\n"
	       "  -q, --quiet            print nothing but errors (and no progress)\n"
	       "  -h, --help             show this help\n"
	       "  -V, --version          show the version\n"
	       "\n" CLI_EXIT_TABLE);
}

/* --verify DIR: one line per snapshot on standard output (with -q: per bad one). */
static int verify_dir(const char *dir, const vdb_restore_options *o, int quiet)
{
	vdb_snapshot_dir d = {0};
	vdb_error err, e2;
	vdb_status st = vdb_snapshot_dir_verify(dir, o, &d, &err);
	vdb_text t = {0};
	size_t all = d.n;
	if (quiet) { /* the bad ones first, in order, and only they are printed */
		size_t bad = 0;
		for (size_t i = 0; i < all; i++)
			if (strcmp(d.files[i].status, "ok")) {
				vdb_snapshot_file f = d.files[i];
				memmove(d.files + bad + 1, d.files + bad, (i - bad) * sizeof f);
				d.files[bad++] = f;
			}
		d.n = bad;
	}
	int fmt = d.files && vdb_snapshot_dir_format(&d, 0, 0, 0, &t, &e2);
	d.n = all;
	if (fmt && !st) {
		st = e2.code;
		err = e2;
	}
	fwrite(t.data ? t.data : "", 1, t.len, stdout);
	vdb_text_free(&t);
	vdb_snapshot_dir_free(&d);
	int wrc = cli_close_stdout();
	if (st == VDB_EINTR)
		return 128 + (stop_signal ? stop_signal : SIGINT);
	return st ? cli_fail(&err) : wrc;
}

/* DIR [--at TIME]: the snapshot to restore, into path (cap bytes). */
static int choose(const char *dir, int have_at, int64_t at, char *path, size_t cap)
{
	vdb_snapshot_dir d;
	vdb_error err;
	if (vdb_snapshot_dir_list(dir, &d, &err))
		return cli_fail(&err);
	long pick = -1;
	for (size_t i = 0; i < d.n; i++)
		if (d.files[i].readable && (!have_at || d.files[i].seconds <= at))
			pick = (long)i;
	int rc = EXIT_OK;
	if (pick < 0) {
		cli_error("%s: no snapshot%s", dir, have_at ? " taken at or before that time" : "");
		rc = EXIT_NOINPUT;
	} else if (snprintf(path, cap, "%s/%s", dir, d.files[pick].file) >= (int)cap) {
		cli_error("%s: path too long", dir);
		rc = EXIT_USAGE;
	} else {
		fprintf(stderr, "%s: %s: taken %s\n", cli_prog, path, d.files[pick].time);
	}
	vdb_snapshot_dir_free(&d);
	return rc;
}

int main(int argc, char **argv)
{
	cli_init("vdb-restore", argv);
	enum { OPT_FORCE = 256, OPT_CHAIN, OPT_VERIFY, OPT_LIST, OPT_JSON, OPT_AT };
	static const struct option opts[] = {{"force", no_argument, NULL, OPT_FORCE},
					     {"at", required_argument, NULL, OPT_AT},
					     {"chain-dir", required_argument, NULL, OPT_CHAIN},
					     {"verify", no_argument, NULL, OPT_VERIFY},
					     {"list", no_argument, NULL, OPT_LIST},
					     {"json", no_argument, NULL, OPT_JSON},
					     {"quiet", no_argument, NULL, 'q'},
					     {"help", no_argument, NULL, 'h'},
					     {"version", no_argument, NULL, 'V'},
					     {NULL, 0, NULL, 0}};
	vdb_restore_options o;
	vdb_restore_options_init(&o);
	int quiet = 0, list = 0, json = 0, have_at = 0, c, rc;
	int64_t at = 0;
	while ((c = cli_getopt(argc, argv, ":qhV", opts)) != -1) {
		switch (c) {
		case OPT_FORCE: o.force = 1; break;
		case OPT_CHAIN: o.chain_dir = optarg; break;
		case OPT_VERIFY:
			o.verify_only = 1;
			o.scratch_dir = getenv("TMPDIR"); /* the scratch copy goes there */
			break;
		case OPT_LIST: list = 1; break;
		case OPT_AT:
			if (cli_parse_time(optarg, "--at", &at))
				return EXIT_USAGE;
			have_at = 1;
			break;
		case OPT_JSON: json = 1; break;
		default:
			if ((rc = cli_common_option(c, usage, &quiet)) != CLI_NEXT)
				return rc;
		}
	}
	int want = o.verify_only || list ? 1 : 2;
	if (json && !list)
		return cli_usage_error("--json goes with --list");
	if (o.verify_only && list)
		return cli_usage_error("--verify and --list exclude each other");
	if ((o.verify_only || list) && o.force)
		return cli_usage_error("--force goes with a restore, not --verify or --list");
	if (argc - optind != want)
		return cli_usage_error(argc - optind < want ? "missing operand" : "too many operands");
	const char *file = argv[optind];
	struct stat sb;
	int is_dir = strcmp(file, "-") && stat(file, &sb) == 0 && S_ISDIR(sb.st_mode);
	char chosen[4096];
	if (have_at && (!is_dir || o.verify_only || list))
		return cli_usage_error("--at goes with a restore from a directory of snapshots");
	if (is_dir && (list || o.chain_dir))
		return cli_usage_error("%s: a directory (%s takes a snapshot file)", file,
				       list ? "--list" : "--chain-dir");
	if (is_dir && o.verify_only) {
		cli_catch_stop_signals(on_signal);
		o.cancel = cli_cancel_on(&stop_signal);
		return verify_dir(file, &o, quiet);
	}
	if (is_dir) {
		if ((rc = choose(file, have_at, at, chosen, sizeof chosen)))
			return rc;
		file = chosen;
	}
	int fd = STDIN_FILENO;
	if (strcmp(file, "-") && (fd = open(file, O_RDONLY | O_CLOEXEC)) < 0) {
		cli_error("%s: %s", file, strerror(errno));
		return errno == ENOENT ? EXIT_NOINPUT : EXIT_IO;
	}
	cli_catch_stop_signals(on_signal);
	o.cancel = cli_cancel_on(&stop_signal);
	cli_progress progress;
	cli_progress_init(&progress, quiet, NULL, 0);
	o.progress = cli_progress_bytes_cb;
	o.progress_ctx = &progress;
	double t0 = cli_now();
	vdb_error err;
	rc = EXIT_OK;
	if (list) {
		vdb_text t = {0};
		if ((json ? vdb_snapshot_list_json : vdb_snapshot_list)(fd, file, &t, &err))
			rc = cli_fail(&err);
		else
			fwrite(t.data, 1, t.len, stdout);
		vdb_text_free(&t);
		int wrc = cli_close_stdout();
		return rc ? rc : wrc;
	}
	vdb_restore_stats s;
	const char *target = o.verify_only ? NULL : argv[optind + 1];
	vdb_status st = vdb_restore(fd, file, target, &o, &s, &err);
	cli_progress_end(&progress);
	if (st) {
		if (err.code == VDB_EINTR)
			return 128 + (stop_signal ? stop_signal : SIGINT);
		return cli_fail(&err);
	}
	if (!quiet)
		fprintf(stderr, "%s: %s: %s: %s, %s; %s, %.1f MiB from %s; %.2f s\n", cli_prog,
			target ? target : file, o.verify_only ? "verified" : "restored",
			CLI_COUNT(s.collections, "collection", "collections"),
			CLI_COUNT(s.records, "record", "records"), CLI_COUNT(s.files, "file", "files"),
			(double)s.bytes / (1 << 20), CLI_COUNT(s.archives, "archive", "archives"),
			cli_now() - t0);
	return rc;
}
