/* damage-sweep: every byte of every file of a collection flipped, and every file cut to
 * every length, one damage at a time; after each, what the commands do is done in-process
 * (check, open and read every record, search exactly and through the graphs, open a
 * writer, which recovers the log) and must neither crash nor hang: each either succeeds
 * (the damage was in bytes no reader uses, or is a torn log tail, which is by design not
 * an error) or reports an error, and every error and every problem vdb_check reports
 * names the damaged file. Then the file is put back.
 *
 *   damage-sweep DB COLLECTION [STEP]
 *
 * STEP > 1 visits every STEP-th offset only (the normal suite's quick mode); the default 1
 * is every byte and every length (scripts/torture runs it). The process exits non-zero on
 * the first violation, naming the file, offset and kind of damage; a crash is a crash of
 * this process, which the test runner reports. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vdb_admin.h"

static const char *g_file; /* the damaged file's name, for the checks below */
static int g_named;        /* a problem line naming it was seen */
static unsigned long g_lines;

static void on_report(void *ctx, int problem, const char *line)
{
	(void)ctx;
	if (!problem)
		return;
	g_lines++;
	if (strstr(line, g_file))
		g_named = 1;
}

static void fail(const char *what, const char *file, long off, const char *kind, const char *msg)
{
	fprintf(stderr, "damage-sweep: %s after %s at offset %ld of %s: %s\n", what, kind, off, file,
		msg);
	exit(1);
}

/* The commands' read paths on the damaged collection. */
static void exercise(const char *db, const char *name, const char *file, long off,
		     const char *kind)
{
	vdb_error err;
	uint64_t problems = 0;
	g_file = file;
	g_named = 0;
	g_lines = 0;
	vdb_status st = vdb_check(db, name, on_report, NULL, &problems, &err);
	if (st && st != VDB_ENOENT && !strstr(err.message, file))
		fail("vdb_check's error does not name the file", file, off, kind, err.message);
	if (!st && problems && !g_named)
		fail("no problem line of vdb_check names the file", file, off, kind, "");
	vdb_collection *c;
	st = vdb_collection_open(db, name, &c, &err);
	if (st) {
		if (!strstr(err.message, file) && st != VDB_ENOENT)
			fail("open's error does not name the file", file, off, kind, err.message);
	} else {
		vdb_collection_config cfg;
		vdb_collection_config_init(&cfg);
		vdb_collection_get_config(c, &cfg);
		vdb_cursor *cur;
		if (vdb_cursor_open(c, &cur, &err) == VDB_OK) {
			vdb_record rec;
			int has = 1;
			while (has && (st = vdb_cursor_next(cur, &rec, &has, &err)) == VDB_OK)
				;
			if (st && !strstr(err.message, file))
				fail("reading records: the error does not name the file", file, off, kind,
				     err.message);
			vdb_cursor_close(cur);
		}
		float *q = calloc(cfg.dim, sizeof *q);
		vdb_hit hits[10];
		size_t n;
		for (uint32_t i = 0; i < cfg.dim; i++)
			q[i] = (float)(i % 3) - 0.5f;
		for (int exact = 0; exact < 2; exact++) {
			vdb_search_options o;
			vdb_search_options_init(&o);
			o.exact = exact;
			st = vdb_search(c, q, 10, &o, hits, &n, &err);
			if (st && !strstr(err.message, file))
				fail("search: the error does not name the file", file, off, kind,
				     err.message);
			for (size_t i = 0; !st && i < n; i++) {
				vdb_record rec;
				st = vdb_hit_record(c, &hits[i], &rec, &err);
				if (st && !strstr(err.message, file))
					fail("reading a hit: the error does not name the file", file, off,
					     kind, err.message);
			}
		}
		free(q);
		vdb_collection_close(c);
	}
	vdb_writer_options wo;
	vdb_writer_options_init(&wo);
	wo.wait_seconds = 0;
	vdb_writer *w;
	st = vdb_writer_open(db, name, &wo, &w, &err);
	if (st == VDB_OK)
		vdb_writer_close(w);
	else if (st != VDB_ENOENT && !strstr(err.message, file))
		fail("writer open: the error does not name the file", file, off, kind, err.message);
}

static unsigned char *slurp(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY);
	struct stat sb;
	if (fd < 0 || fstat(fd, &sb) < 0) {
		perror(path);
		exit(2);
	}
	unsigned char *b = malloc((size_t)sb.st_size + 1);
	ssize_t r = read(fd, b, (size_t)sb.st_size);
	close(fd);
	if (r != sb.st_size) {
		perror(path);
		exit(2);
	}
	*len = (size_t)sb.st_size;
	return b;
}

static void pwrite_all(int fd, const void *b, size_t len, off_t off, const char *path)
{
	if (len && pwrite(fd, b, len, off) != (ssize_t)len) {
		perror(path);
		exit(2);
	}
}

/* Damages one file every way, putting it back after each: a flip is one byte written and
 * written back; a cut is a truncation, then the tail written back. */
static unsigned long sweep_file(const char *db, const char *name, const char *path,
				const char *file, size_t step)
{
	size_t len;
	unsigned char *orig = slurp(path, &len);
	int fd = open(path, O_WRONLY);
	if (fd < 0) {
		perror(path);
		exit(2);
	}
	/* Opening a writer recovers the log: it cuts a torn tail off (by design), so the log
	 * is rewritten whole after each damage; other files are only read. */
	int whole = strncmp(file, "wal-", 4) == 0;
	unsigned long runs = 0;
	for (size_t off = 0; off < len; off += step) {
		unsigned char b = orig[off] ^ (unsigned char)(1u << (off % 8)); /* one bit */
		pwrite_all(fd, &b, 1, (off_t)off, path);
		exercise(db, name, file, (long)off, "a flipped bit");
		pwrite_all(fd, orig + (whole ? 0 : off), whole ? len : 1, whole ? 0 : (off_t)off, path);
		if (ftruncate(fd, (off_t)off) < 0) {
			perror(path);
			exit(2);
		}
		exercise(db, name, file, (long)off, "a cut");
		pwrite_all(fd, orig + (whole ? 0 : off), whole ? len : len - off,
			   whole ? 0 : (off_t)off, path);
		if (whole && ftruncate(fd, (off_t)len) < 0) {
			perror(path);
			exit(2);
		}
		runs += 2;
	}
	close(fd);
	/* The file must be exactly as it was: the sweep damages one thing at a time. */
	size_t now;
	unsigned char *back = slurp(path, &now);
	if (now != len || memcmp(back, orig, len))
		fail("the file was not put back", file, -1, "the sweep", "");
	free(back);
	free(orig);
	return runs;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: damage-sweep DB COLLECTION [STEP]\n");
		return 64;
	}
	const char *db = argv[1], *name = argv[2];
	size_t step = argc > 3 ? (size_t)strtoul(argv[3], NULL, 10) : 1;
	if (step < 1)
		step = 1;
	char dir[4096], path[4096 + 260];
	snprintf(dir, sizeof dir, "%s/%s", db, name);
	unsigned long runs = 0, files = 0;
	/* The database marker first, then every file of the collection but the lock. */
	snprintf(path, sizeof path, "%s/VDB", db);
	runs += sweep_file(db, name, path, "VDB", step);
	files++;
	DIR *d = opendir(dir);
	if (!d) {
		perror(dir);
		return 66;
	}
	struct dirent *e;
	static char names[256][256];
	int n = 0;
	while ((e = readdir(d)) && n < 256)
		if (e->d_name[0] != '.' && strcmp(e->d_name, "LOCK"))
			snprintf(names[n++], sizeof names[0], "%s", e->d_name);
	closedir(d);
	for (int i = 0; i < n; i++) {
		if (snprintf(path, sizeof path, "%s/%s", dir, names[i]) >= (int)sizeof path)
			return 64; /* a path this long is not a test database */
		runs += sweep_file(db, name, path, names[i], step);
		files++;
	}
	printf("damage-sweep: %lu damaged versions of %lu files (step %zu): no crash, every "
	       "error names its file\n",
	       runs, files, step);
	return 0;
}
