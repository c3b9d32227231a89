#!/usr/bin/env python3
"""vdb from Python: a collection of generated embeddings (no model: numpy draws clustered
unit vectors), a filtered search, an update, a snapshot and its restore.

    PYTHONPATH=python VDB_LIBRARY=build/libvdb/libvdb.so python3 examples/numpy_search.py DIR
"""
import os
import sys

import numpy as np
import vdb


def embeddings(n, dim, rng, topics=20):
    """Unit vectors around `topics` directions: what sentence embeddings look like."""
    centres = rng.standard_normal((topics, dim))
    topic = rng.integers(topics, size=n)
    x = centres[topic] + 0.5 * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), topic


def main(workdir):
    rng = np.random.default_rng(42)
    vectors, topic = embeddings(5000, 128, rng)
    with vdb.open(os.path.join(workdir, "db"), create=True) as db:
        docs = db.create_collection("docs", dim=128, metric="cosine",
                                    index_fields={"topic": "int"})
        docs.upsert([f"doc-{i}" for i in range(5000)], vectors,
                    payloads=[{"topic": int(t), "n": i} for i, t in enumerate(topic)])
        ids, scores, payloads = docs.search(vectors[7], k=5, payloads=True)
        print("nearest to doc-7:", list(ids), "scores", [round(float(s), 3) for s in scores])
        same = docs.search(vectors[7], k=5, filter={"topic": int(topic[7])})[0]
        print("same topic only:", list(same))
        docs.upsert(["doc-7"], -vectors[7:8], payloads=[{"topic": -1}])  # replaced
        print("doc-7 now:", docs.get("doc-7")["payload"], "records:", len(docs))
        archive = os.path.join(workdir, "docs.tar.zst")
        vdb.snapshot(db.path, archive)
        restored = vdb.restore(archive, os.path.join(workdir, "restored"))
        print("restored", restored["records"], "records; problems:",
              vdb.check(os.path.join(workdir, "restored")))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
