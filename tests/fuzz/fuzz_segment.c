/* The segment reader: the input is a segment file; what the MANIFEST would say about it
 * (number, dimension, rows, size, header checksum) is taken from its own header, so that
 * mutated segments get past the first checks. Then the quantized codes, when there are any,
 * are walked by a graph search and scored row by row (before the checksums: a search never
 * verifies them), every section is verified and every row's id and payload read. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz.h"
#include "storage/ids.h"
#include "storage/segment.h"
#include "vdb.h"

static uint64_t le(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 128)
		return 0;
	uint32_t dim = (uint32_t)le(data + 16, 4);
	uint64_t rows = le(data + 24, 8), number = le(data + 32, 8) % 100000000;
	const char *dir = fuzz_dir();
	char name[64];
	vdb_segment_name(name, sizeof name, number);
	fuzz_write_file(dir, name, data, size);
	vdb_segment s;
	vdb_error err;
	if (vdb_segment_open(dir, number, dim, rows, size, (uint32_t)le(data + 124, 4), 0, &s, &err))
		return 0;
	if (s.has_codes && dim <= 4096) {
		float *q = malloc(dim * sizeof *q);
		vdb_hnsw_scratch scratch = {0};
		vdb_code_query cq = {.q = malloc(vdb_code_query_len(dim) * sizeof(int16_t))};
		if (q && cq.q) {
			for (uint32_t d = 0; d < dim; d++)
				q[d] = (float)(d % 7) - 3.0f;
			double qq = 0;
			for (uint32_t d = 0; d < dim; d++)
				qq += (double)q[d] * q[d];
			vdb_code_query_prepare(&cq, &s.codes, q, qq, sqrt(qq));
			volatile float sink = 0;
			for (uint64_t row = 0; row < s.rows && row < 4096; row++)
				sink += vdb_code_distance(&cq, row);
			(void)sink;
			if (s.has_graph) {
				vdb_hnsw_space sp = {s.codes.metric, dim, s.vectors, s.norms, &cq};
				vdb_cand *c;
				size_t n;
				vdb_hnsw_search(&s.graph, &sp, q, (float)sqrt(qq), NULL, 16, &scratch,
						&c, &n, name, &err);
			}
		}
		vdb_hnsw_scratch_free(&scratch);
		free(cq.q);
		free(q);
	}
	if (vdb_segment_verify(&s, &err) == VDB_OK) {
		for (uint64_t row = 0; row < s.rows && row < 4096; row++) {
			vdb_id id;
			const char *p;
			size_t len;
			if (vdb_segment_id(&s, row, &id, &err) == VDB_OK) {
				int64_t found;
				vdb_segment_find(&s, &id, vdb_id_hash(&id), &found, &err);
			}
			vdb_segment_payload(&s, row, &p, &len, &err);
		}
	}
	vdb_segment_close(&s);
	return 0;
}
