/* gen-clustered: seeded clustered vectors for the ANN benchmark, written as vdb-ingest JSON
 * lines and as TEXMEX .fvecs (for NumPy and hnswlib), so every tool gets the same floats.
 *
 *   gen-clustered N DIM SEED CLUSTERS OUT.jsonl OUT.fvecs
 *
 * Generator (state it with any figure): CLUSTERS centres drawn from N(0, 1)^DIM; each point
 * picks a centre uniformly and adds W z + e, where W is a fixed DIM x 16 matrix with
 * N(0, 1/16) entries, z ~ N(0, 0.6^2)^16 and e ~ N(0, 0.05^2)^DIM: clusters of intrinsic
 * dimension 16, like real embeddings (isotropic noise in 128 dimensions would make every
 * point of a cluster nearly equidistant from a query, and "nearest" meaningless). Values are
 * rounded to float32. Randomness: splitmix64 seeded with SEED (W and the centres come from
 * the seed too, so queries need the same CLUSTERS and a different SEED only changes the
 * points: the structure is drawn from a fixed seed 1), Box-Muller normals. Ids are the
 * row numbers. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static uint64_t state;

static uint64_t next(void)
{
	uint64_t z = (state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static double uniform(void)
{
	return ((double)(next() >> 11) + 0.5) / 9007199254740992.0;
}

static double normal(void)
{
	return sqrt(-2 * log(uniform())) * cos(2 * M_PI * uniform());
}

int main(int argc, char **argv)
{
	if (argc != 7) {
		fprintf(stderr, "usage: gen-clustered N DIM SEED CLUSTERS OUT.jsonl OUT.fvecs\n");
		return 64;
	}
	long n = atol(argv[1]), dim = atol(argv[2]), clusters = atol(argv[4]);
	state = strtoull(argv[3], NULL, 10);
	FILE *js = fopen(argv[5], "w"), *fv = fopen(argv[6], "wb");
	float *centres = malloc(sizeof(float) * (size_t)(clusters * dim));
	float *v = malloc(sizeof(float) * (size_t)dim);
	if (!js || !fv || !centres || !v || n <= 0 || dim <= 0 || clusters <= 0) {
		perror("gen-clustered");
		return 73;
	}
	enum { RANK = 16 };
	double *w = malloc(sizeof(double) * (size_t)(dim * RANK)), z[RANK];
	if (!w) {
		perror("gen-clustered");
		return 73;
	}
	/* The structure (centres, W) is the same for every SEED: base and queries share it. */
	uint64_t points_seed = state;
	state = 1;
	for (long i = 0; i < clusters * dim; i++)
		centres[i] = (float)normal();
	for (long i = 0; i < dim * RANK; i++)
		w[i] = normal() / sqrt((double)RANK);
	state = points_seed * 0x9e3779b97f4a7c15ull + 12345;
	int32_t d32 = (int32_t)dim;
	for (long i = 0; i < n; i++) {
		long c = (long)(uniform() * (double)clusters);
		for (int r = 0; r < RANK; r++)
			z[r] = 0.6 * normal();
		fprintf(js, "{\"id\":%ld,\"vector\":[", i);
		for (long j = 0; j < dim; j++) {
			double x = centres[c * dim + j] + 0.05 * normal();
			for (int r = 0; r < RANK; r++)
				x += w[j * RANK + r] * z[r];
			v[j] = (float)x;
			fprintf(js, j ? ",%.9g" : "%.9g", v[j]);
		}
		fputs("]}\n", js);
		fwrite(&d32, 4, 1, fv);
		fwrite(v, 4, (size_t)dim, fv);
	}
	if (fclose(js) || fclose(fv)) {
		perror("gen-clustered");
		return 74;
	}
	return 0;
}
