#!/usr/bin/env python3
"""Seeded sample embeddings as vdb-ingest JSON lines (stdlib only).

usage: gen-sample.py ROWS DIM [--seed N] [--queries]
Records: {"id": i, "vector": [...], "payload": {"lang": ..., "year": ..., "title": ...}}.
With --queries, prints bare vectors (one JSON array per line) instead.
"""
import argparse
import json
import random

ap = argparse.ArgumentParser()
ap.add_argument("rows", type=int)
ap.add_argument("dim", type=int)
ap.add_argument("--seed", type=int, default=1)
ap.add_argument("--queries", action="store_true")
a = ap.parse_args()
rng = random.Random(a.seed)
langs = ["en", "de", "fr", "ja", "pt"]
for i in range(a.rows):
    v = [round(rng.gauss(0, 1), 6) for _ in range(a.dim)]
    if a.queries:
        print(json.dumps(v))
    else:
        print(json.dumps({"id": i, "vector": v,
                          "payload": {"lang": rng.choice(langs), "year": rng.randint(1990, 2026),
                                      "title": "document %d" % i}}))
