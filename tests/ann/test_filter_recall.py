#!/usr/bin/env python3
"""Filtered search through the commands users run: recall and counts.

Seeded synthetic payloads on SIFT10K (../shared/datasets/sift10k, skipped visibly when
absent) and, always, on seeded clustered data. For equality, range, $in and compound
filters at 50%, 10%, 1% and 0.1% selectivity:
* every filtered query returns min(k, matching records) results, all of them matching;
* recall@10 of the default (graph) search against `vdb-query --exact` with the same filter
  is at least 0.95 (the exact filtered path itself is checked against a Python brute force
  in tests/cli/test_filter.py);
* `vdb-query --count --filter` equals a brute-force count over the payloads.

Environment: VDB_BIN (directory of the binaries), VDB_DATASETS (default ../shared/datasets
relative to the project root).
"""
import json
import os
import random
import sys
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_recall import SIFT, Base, clustered, ids_of, read_vecs, recall, run  # noqa: E402

SELECTIVITIES = (0.5, 0.1, 0.01, 0.001)


def payloads(seed, n):
    """Independent fields whose filters select a known fraction of the records:
    q: an integer 0..999 (equality and $in on "t<q>" tags), f: a float in [0, 1),
    b: a boolean; every 50th record has no "f" (missing fields must not match ranges)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        q = rng.randrange(1000)
        p = {"q": q, "t": "t%d" % q, "f": round(rng.random(), 6), "b": rng.random() < 0.5,
             "meta": {"src": rng.choice(["web", "book"])}}
        if i % 50 == 0:
            del p["f"]
        out.append(p)
    return out


def filters(s):
    """One filter of each kind selecting about a fraction s of the records."""
    m = int(round(s * 1000))
    return {
        "equality": {"q": {"$lt": m}} if m > 1 else {"q": 0},
        "range": {"f": {"$gte": 0.25, "$lt": 0.25 + s}},
        "in": {"t": {"$in": ["t%d" % (999 - j) for j in range(m)]}},
        "compound": {"$and": [{"b": True}, {"$or": [{"q": {"$lt": m}},
                                                   {"q": {"$gte": 1000 - m}}]}]},
    }


def matches(flt, p):
    """The few operators used above, evaluated directly."""
    for k, v in flt.items():
        if k == "$and":
            if not all(matches(x, p) for x in v):
                return False
        elif k == "$or":
            if not any(matches(x, p) for x in v):
                return False
        elif isinstance(v, dict):
            if k not in p:
                return False
            x = p[k]
            for op, w in v.items():
                ok = {"$lt": lambda: x < w, "$gte": lambda: x >= w,
                      "$in": lambda: x in w}[op]()
                if not ok:
                    return False
        elif p.get(k, object()) != v:
            return False
    return True


class FilteredBase(Base):
    def load_with_payloads(self, vectors, seed):
        db = os.path.join(self.tmp, "f")
        run("vdb-create", db, "--dim", str(len(vectors[0])), "--metric", "l2")
        ps = payloads(seed, len(vectors))
        data = "".join(json.dumps({"id": i, "vector": v, "payload": p}) + "\n"
                       for i, (v, p) in enumerate(zip(vectors, ps)))
        run("vdb-ingest", "-q", db, input=data)
        run("vdb-compact", "-q", db)  # one segment, with its graph
        return db, ps

    def check_filters(self, db, ps, queries, label, min_recall=0.95):
        qdata = "".join(json.dumps(q) + "\n" for q in queries)
        for s in SELECTIVITIES:
            for kind, flt in filters(s).items():
                text = json.dumps(flt)
                want = [i for i, p in enumerate(ps) if matches(flt, p)]
                count = int(run("vdb-query", db, "--count", "--filter", text))
                self.assertEqual(count, len(want), "%s %s %g" % (label, kind, s))
                wanted = set(want)
                exact = ids_of(run("vdb-query", db, "-k", "10", "--exact", "--filter", text,
                                   input=qdata))
                approx = ids_of(run("vdb-query", db, "-k", "10", "--filter", text, input=qdata))
                for got in exact + approx:
                    self.assertEqual(len(got), min(10, len(want)), "%s %s %g" % (label, kind, s))
                    self.assertTrue(set(got) <= wanted, "%s %s %g" % (label, kind, s))
                r = recall(approx, exact, min(10, len(want))) if want else 1.0
                print("%s, %s filter, selectivity %.3f (%d records): recall@10 %.4f"
                      % (label, kind, len(want) / len(ps), len(want), r))
                self.assertGreaterEqual(r, min_recall, "%s %s %g" % (label, kind, s))


@unittest.skipUnless(os.path.isdir(SIFT), "SIFT10K not found at %s (set VDB_DATASETS)" % SIFT)
class Sift10kFiltered(FilteredBase):
    def test_filtered_recall_and_counts(self):
        base = read_vecs(os.path.join(SIFT, "base.fvecs"), "f")
        queries = read_vecs(os.path.join(SIFT, "query.fvecs"), "f")
        db, ps = self.load_with_payloads(base, 21)
        self.check_filters(db, ps, queries, "SIFT10K")


class ClusteredFiltered(FilteredBase):
    def test_filtered_recall_and_counts_on_seeded_data(self):
        db, ps = self.load_with_payloads(clustered(31, 8000, 24), 32)
        self.check_filters(db, ps, clustered(33, 60, 24), "clustered 8000x24")


if __name__ == "__main__":
    unittest.main(verbosity=2)
