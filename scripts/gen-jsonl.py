#!/usr/bin/python3
"""Write seeded, embedding-like JSON-lines records for vdb benchmarks.

    gen-jsonl.py --rows N --dim D [--seed S] --out FILE [--big-out FILE --big-factor K]

Each line is what a Python producer would write with json.dumps defaults:
    {"id": 0, "vector": [0.012345678, -0.0870211, ...]}
Vectors: float32 standard normal, L2-normalised to unit length (like typical
embedding-model output), each value printed as str(numpy.float32(x)) -- numpy's
shortest round-trip float32 form (Dragon4), at most 9 significant digits
(e.g. 0.1 -> "0.1", not double's "0.10000000149011612").

Rows come in fixed chunks, each from numpy.random.default_rng([seed, first_row]),
so the output depends only on the arguments, not on the number of worker
processes. With --big-out, a second file of K*N rows is written in the same
pass; its first N lines are identical to --out, the rest continue the stream
(ids N .. K*N-1).

Needs NumPy (Debian: python3-numpy, used by /usr/bin/python3).
"""
import argparse
import os
import sys

try:
    import numpy as np
except ImportError:
    sys.exit("gen-jsonl.py: NumPy is missing for %s; install python3-numpy" % sys.executable)

CHUNK = 4096  # rows per chunk; part of the definition of the stream, do not change lightly


def chunk_text(args):
    seed, dim, start, stop = args
    rng = np.random.default_rng([seed, start])
    v = rng.standard_normal((stop - start, dim), dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    out = []
    for i, row in enumerate(v, start):
        out.append('{"id": %d, "vector": [%s]}\n' % (i, ", ".join(map(str, row))))
    return "".join(out).encode("ascii")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, required=True)
    ap.add_argument("--dim", type=int, required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True)
    ap.add_argument("--big-out")
    ap.add_argument("--big-factor", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    a = ap.parse_args()
    if a.rows < 1 or a.dim < 1 or a.seed < 0 or a.big_factor < 1:
        ap.error("--rows, --dim, --big-factor must be >= 1 and --seed >= 0")
    total = a.rows * (a.big_factor if a.big_out else 1)
    # Chunks start every CHUNK rows and also at a.rows, so no chunk straddles the end of
    # --out; each chunk is seeded by (seed, its first row), so --out is the same whether or
    # not --big-out is written.
    bounds = sorted(set(list(range(0, total, CHUNK)) + [a.rows, total]))
    tasks = [(a.seed, a.dim, s, e) for s, e in zip(bounds, bounds[1:])]

    small = open(a.out, "wb")
    big = open(a.big_out, "wb") if a.big_out else None
    if a.jobs > 1 and len(tasks) > 1:
        import multiprocessing as mp
        pool = mp.Pool(a.jobs)
        results = pool.imap(chunk_text, tasks)
    else:
        pool = None
        results = map(chunk_text, tasks)
    for (_, _, start, _), text in zip(tasks, results):
        if start < a.rows:
            small.write(text)
        if big:
            big.write(text)
    if pool:
        pool.close()
        pool.join()
    small.close()
    if big:
        big.close()


if __name__ == "__main__":
    main()
