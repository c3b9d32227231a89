/* Portable distance kernels: 8 lanes of independent partial sums (so -O2/-O3 turns each
 * loop into packed SIMD without -ffast-math), combined in a fixed order so results are
 * deterministic for a given build. */
#include "distance.h"

#define LANES 8

static float hsum(const float *acc)
{
	return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

float vdb_dot(const float *a, const float *b, size_t n)
{
	float acc[LANES] = {0};
	size_t i = 0;
	for (; i + LANES <= n; i += LANES)
		for (int j = 0; j < LANES; j++)
			acc[j] += a[i + j] * b[i + j];
	float s = hsum(acc);
	for (; i < n; i++)
		s += a[i] * b[i];
	return s;
}

float vdb_l2sq(const float *a, const float *b, size_t n)
{
	float acc[LANES] = {0};
	size_t i = 0;
	for (; i + LANES <= n; i += LANES)
		for (int j = 0; j < LANES; j++) {
			float d = a[i + j] - b[i + j];
			acc[j] += d * d;
		}
	float s = hsum(acc);
	for (; i < n; i++) {
		float d = a[i] - b[i];
		s += d * d;
	}
	return s;
}

void vdb_dot_and_norm(const float *q, const float *x, size_t n, float *dot, float *xx)
{
	float ad[LANES] = {0}, an[LANES] = {0};
	size_t i = 0;
	for (; i + LANES <= n; i += LANES)
		for (int j = 0; j < LANES; j++) {
			ad[j] += q[i + j] * x[i + j];
			an[j] += x[i + j] * x[i + j];
		}
	float d = hsum(ad), m = hsum(an);
	for (; i < n; i++) {
		d += q[i] * x[i];
		m += x[i] * x[i];
	}
	*dot = d;
	*xx = m;
}
