/* nearest: libvdb from C. Creates a collection in DB (a new directory), stores a few
 * vectors with payloads in one durable batch, and prints the 3 nearest to a query, with
 * their payloads, as the vdb-query command would find them.
 *
 *   cc nearest.c $(pkg-config --cflags --libs vdb) -o nearest && ./nearest /tmp/demo-db
 */
#include <stdio.h>
#include <string.h>

#include <vdb.h>

static int fail(const char *what, const vdb_error *err)
{
	fprintf(stderr, "nearest: %s: %s\n", what, err->message);
	return 1;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: nearest DB\n");
		return 2;
	}
	const char *db = argv[1];
	vdb_error err;
	/* The library at run time must be the major version this was compiled against. */
	if (vdb_version_number() / 10000 != VDB_VERSION_MAJOR) {
		fprintf(stderr, "nearest: built for libvdb %s, running with %s\n",
			VDB_VERSION_STRING, vdb_version());
		return 1;
	}

	vdb_collection_config cfg;
	vdb_collection_config_init(&cfg);
	cfg.dim = 2;
	cfg.metric = VDB_METRIC_L2;
	if (vdb_collection_create(db, "points", &cfg, &err))
		return fail("create", &err);

	/* One writer at a time per collection: the writer holds its lock until closed. */
	vdb_writer *w;
	if (vdb_writer_open(db, "points", NULL, &w, &err))
		return fail("open writer", &err);
	static const char *const names[] = {"origin", "east", "north", "far"};
	static const float vecs[][2] = {{0, 0}, {1, 0}, {0, 1}, {10, 10}};
	for (int i = 0; i < 4; i++) {
		char payload[64];
		snprintf(payload, sizeof payload, "{\"name\":\"%s\"}", names[i]);
		vdb_id id = {.is_string = 0, .num = (uint64_t)i + 1};
		if (vdb_writer_upsert(w, &id, vecs[i], payload, strlen(payload), &err)) {
			vdb_writer_close(w);
			return fail("upsert", &err);
		}
	}
	/* Durable and visible to new readers, as one batch, when this returns VDB_OK. */
	vdb_status st = vdb_writer_commit(w, &err);
	vdb_writer_close(w);
	if (st)
		return fail("commit", &err);

	vdb_collection *c;
	if (vdb_collection_open(db, "points", &c, &err))
		return fail("open", &err);
	const float query[2] = {0.9f, 0.2f};
	vdb_hit hits[3];
	size_t n;
	if (vdb_search(c, query, 3, NULL, hits, &n, &err)) {
		vdb_collection_close(c);
		return fail("search", &err);
	}
	printf("%llu records; nearest to [0.9, 0.2]:\n",
	       (unsigned long long)vdb_collection_count(c));
	for (size_t i = 0; i < n; i++) {
		vdb_record rec;
		if (vdb_hit_record(c, &hits[i], &rec, &err)) {
			vdb_collection_close(c);
			return fail("record", &err);
		}
		printf("%llu %.4f %.*s\n", (unsigned long long)rec.id.num, hits[i].score,
		       (int)rec.payload_len, rec.payload);
	}
	vdb_collection_close(c);
	return 0;
}
