#!/usr/bin/python3
"""gen-correlated-fvecs: a seeded ANN dataset with no cluster structure, in the TEXMEX layout
that `scripts/bench-ann --sift DIR` reads (DIR/base.fvecs, query.fvecs, groundtruth.ivecs).

usage: scripts/gen-correlated-fvecs.py DIR [SEED] [--rows N] [--dim D] [--queries Q]
       (defaults: SEED 7, 50,000 x 96, 1000 queries)

Each vector is x = A z + 0.3 e, normalized to unit length: A is a fixed D x D/2 matrix
with N(0, 2/D) entries, z ~ N(0, 1)^(D/2), e ~ N(0, 1)^D (all from SEED). Unlike
gen-clustered's data there are no clusters, which makes the graph's job harder; a check
that vdb's HNSW is not tuned to one kind of data. Ground truth: the 100 nearest by L2
(the same order as cosine, the vectors being unit length), computed with NumPy.
"""
import argparse
import os

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("seed", nargs="?", type=int, default=7)
    ap.add_argument("--rows", type=int, default=50000)
    ap.add_argument("--dim", type=int, default=96)
    ap.add_argument("--queries", type=int, default=1000)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    d, r = a.dim, a.dim // 2
    A = rng.normal(size=(d, r)).astype(np.float32) / np.sqrt(r)

    def draw(m):
        x = rng.normal(size=(m, r)).astype(np.float32) @ A.T
        x += 0.3 * rng.normal(size=(m, d)).astype(np.float32)
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    base, q = draw(a.rows), draw(a.queries)
    gt = np.empty((a.queries, 100), dtype=np.int32)
    bn = (base ** 2).sum(1)
    for i in range(0, a.queries, 100):  # blocks keep the distance matrix small
        d2 = bn[None, :] - 2 * q[i:i + 100] @ base.T
        gt[i:i + 100] = np.argsort(d2, axis=1)[:, :100]

    def write_vecs(path, arr):
        n, k = arr.shape
        out = np.empty((n, k + 1), dtype=np.int32)
        out[:, 0] = k
        out[:, 1:] = arr.view(np.int32)
        out.tofile(path)

    os.makedirs(a.dir, exist_ok=True)
    write_vecs(os.path.join(a.dir, "base.fvecs"), base)
    write_vecs(os.path.join(a.dir, "query.fvecs"), q)
    write_vecs(os.path.join(a.dir, "groundtruth.ivecs"), gt)


if __name__ == "__main__":
    main()
