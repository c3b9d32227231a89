"""Shared by the benchmark scripts (scripts/bench-scale, scripts/bench-quant): seeded
embedding-like data, exact ground truth, recall, q/s at a recall, and the files vdb reads.

Data: 200 cluster centres in a 48-dimensional latent space, each point a centre plus
N(0, 0.6^2) latent noise, projected to D dimensions by a fixed Gaussian matrix, plus
N(0, 0.4^2) noise per dimension (about a third of the signal's norm), then scaled to unit
length. Isotropic Gaussian data is not used: it has no neighbourhood structure."""
import json
import math
import subprocess
import sys

import numpy as np


def embeddings(n, d, seed, latent=48, clusters=200, structure_seed=7):
    """Unit-length float32 rows with low-rank cluster structure plus noise (see above)."""
    rs = np.random.default_rng(structure_seed)
    proj = rs.standard_normal((latent, d)) / math.sqrt(latent)
    centres = rs.standard_normal((clusters, latent))
    r = np.random.default_rng(seed)
    out = np.empty((n, d), dtype=np.float32)
    for s in range(0, n, 20000):
        m = min(20000, n - s)
        z = centres[r.integers(clusters, size=m)] + 0.6 * r.standard_normal((m, latent))
        x = z @ proj + 0.4 * r.standard_normal((m, d))
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        out[s:s + m] = x
    return out


def ground_truth(base, queries, k=10):
    gt = np.empty((len(queries), k), dtype=np.int64)
    for s in range(0, len(queries), 100):
        sims = queries[s:s + 100] @ base.T
        part = np.argpartition(-sims, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sims, part, axis=1), axis=1)
        gt[s:s + 100] = np.take_along_axis(part, order, axis=1)
    return gt


def recall(ids, gt, k=10):
    return float(np.mean([len(set(a[:k]) & set(g[:k])) / k for a, g in zip(ids, gt)]))


def at_recall(points, target):
    """q/s at a recall, interpolated log-linearly between the sweep points around it."""
    pts = sorted(points)
    for (r0, q0), (r1, q1) in zip(pts, pts[1:]):
        if r0 <= target <= r1:
            if r1 == r0:
                return max(q0, q1)
            t = (target - r0) / (r1 - r0)
            return math.exp(math.log(q0) + t * (math.log(q1) - math.log(q0)))
    best = [q for r, q in pts if r >= target]
    return max(best) if best else None


def run(cmd, env=None, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, **kw)
    if p.returncode != 0:
        sys.exit("%s failed (%d): %s" % (" ".join(map(str, cmd)), p.returncode, p.stderr))
    return p


def write_npy(path, a):
    np.save(path, a)


def write_query_lines(path, q, reps):
    with open(path, "w") as f:
        for _ in range(reps):
            for v in q:
                f.write(json.dumps([float(x) for x in v]) + "\n")


def write_record_lines(path, a):
    with open(path, "w") as f:
        for i, v in enumerate(a):
            f.write('{"id":%d,"vector":%s}\n' % (i, json.dumps([float(x) for x in v])))
