#!/usr/bin/env python3
"""Quantized collections (vdb-create --quantize int8|binary), through the commands users run.

* For each code kind and metric, on seeded clustered data: recall@10 of the default graph
  search against `vdb-query --exact` at or above the kind's threshold, and at least 0.99 with
  a wide beam and oversampling; every result carries its exact score (rescored with the
  float32 vectors).
* The codes never touch the vectors: exports and --exact answers are byte for byte those of
  the same records in a collection without codes.
* Deleted records are never returned and filtered searches still return k matching records.
* vdb-compact --quantize converts a collection both ways; vdb-info reports the codes and the
  memory searches need; bad values are usage errors.

Environment: VDB_BIN (directory of the binaries).
"""
import json
import os
import random
import subprocess
import sys
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_recall import Base, clustered, exe, ids_of, normalise, recall, run  # noqa: E402

# Recall@10 of the default search (ef 128, default oversampling) against --exact.
THRESHOLD = {"int8": 0.97, "binary": 0.9}
DIMS = {"int8": 48, "binary": 256}  # binary codes are meant for wide embeddings


def embedding_like(seed, n, dim, latent=12, clusters=20):
    """Rows with the structure of embeddings: cluster centres in a small latent space plus
    latent noise, projected to dim dimensions by a fixed matrix, plus noise in every
    dimension (a third of the signal). Sign bits capture such rows; they capture little of
    isotropic noise around far-apart centres (clustered()), where only the dimensions
    near the mean carry a neighbour's differences."""
    fixed = random.Random(77)
    proj = [[fixed.gauss(0, 1) / latent ** 0.5 for _ in range(dim)] for _ in range(latent)]
    centres = [[fixed.gauss(0, 1) for _ in range(latent)] for _ in range(clusters)]
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        z = [c + rng.gauss(0, 0.6) for c in rng.choice(centres)]
        out.append([sum(z[j] * proj[j][d] for j in range(latent)) + rng.gauss(0, 0.4)
                    for d in range(dim)])
    return out


def info(db, *args):
    return json.loads(run("vdb-info", "--json", db, *args))


class Quantized(Base):
    def data(self, kind, metric, n=4000, nq=100):
        dim = DIMS[kind]
        make = embedding_like if kind == "binary" else clustered
        vs, qs = make(31, n, dim), make(32, nq, dim)
        if metric != "l2":
            vs, qs = [normalise(v) for v in vs], [normalise(q) for q in qs]
        return vs, qs

    def scores(self, db, queries, *args):
        data = "".join(json.dumps(q) + "\n" for q in queries)
        out = run("vdb-query", db, "-k", "10", *args, input=data)
        return [{h["id"]: h["score"] for h in json.loads(line)["results"]}
                for line in out.splitlines()]

    def test_recall_for_each_kind_and_metric(self):
        for kind in ("int8", "binary"):
            for metric in ("l2", "cosine", "dot"):
                label = "%s %s" % (kind, metric)
                vs, qs = self.data(kind, metric)
                db = self.load(kind + metric, metric, vs, "--quantize", kind)
                i = info(db)
                self.assertEqual((i["quantize"], i["coded"], i["graphs"]), (kind, 1, 1), label)
                truth = self.query(db, qs, "--exact")
                r = recall(self.query(db, qs), truth)
                wide = recall(self.query(db, qs, "--ef", "400", "--oversample", "40"), truth)
                print("%s, %dx%d: recall@10 %.4f (default), %.4f (--ef 400 --oversample 40)"
                      % (label, len(vs), len(vs[0]), r, wide))
                self.assertGreaterEqual(r, THRESHOLD[kind], label)
                self.assertGreaterEqual(wide, 0.99, label)
                # Rescored: each result's score is the exact one, bit for bit.
                exact = self.scores(db, qs, "--exact", "-k", "100")
                for got, ex in zip(self.scores(db, qs), exact):
                    for i, score in got.items():
                        if i in ex:
                            self.assertEqual(score, ex[i], label)
                # With oversampling 1 the codes alone rank: recall is lower, so they are in use.
                one = recall(self.query(db, qs, "--ef", "10", "--oversample", "1"), truth)
                self.assertLess(one, r, label)
                # A query line's own "ef" and "oversample" are the options' equals.
                lines = "".join(json.dumps({"vector": q, "ef": 10, "oversample": 1}) + "\n"
                                for q in qs)
                self.assertEqual(recall(ids_of(run("vdb-query", db, "-k", "10", input=lines)),
                                        truth), one, label)

    def test_a_stream_batch_answers_as_each_query_alone(self):
        # A stream's queries walk the codes first and are rescored together; a line with
        # parameters of its own is answered alone. 100 queries x 60 x 30 candidates are
        # more than one rescoring round holds, so the batch is rescored in parts.
        for kind, metric in (("int8", "l2"), ("binary", "cosine")):
            vs, qs = self.data(kind, metric, n=4000, nq=100)
            db = self.load("b" + kind, metric, vs, "--quantize", kind)
            path = os.path.join(self.tmp, "queries.jsonl")  # a file: every line is there
            with open(path, "w") as f:
                f.write("".join(json.dumps(q) + "\n" for q in qs))
            batched = run("vdb-query", db, "-k", "60", "--oversample", "30", path)
            alone = run("vdb-query", db, "-k", "60", input="".join(
                json.dumps({"vector": q, "oversample": 30}) + "\n" for q in qs))
            self.assertEqual(len(batched.splitlines()), len(qs), kind)
            self.assertEqual(batched, alone, kind)
            truth = self.query(db, qs, "--exact", "-k", "60")
            self.assertGreaterEqual(recall(ids_of(batched), truth, k=60), 0.99, kind)

    def test_vectors_exports_and_exact_answers_are_untouched(self):
        vs, qs = self.data("int8", "cosine", n=2500, nq=30)
        plain = self.load("plain", "cosine", vs)
        for kind in ("int8", "binary"):
            db = self.load("q" + kind, "cosine", vs, "--quantize", kind)
            self.assertEqual(run("vdb-export", db), run("vdb-export", plain), kind)
            data = "".join(json.dumps(q) + "\n" for q in qs)
            self.assertEqual(run("vdb-query", db, "--exact", "-k", "20", input=data),
                             run("vdb-query", plain, "--exact", "-k", "20", input=data), kind)

    def test_deleted_records_never_return_and_filters_keep_k(self):
        vs, qs = self.data("int8", "l2", n=3000, nq=40)
        db = os.path.join(self.tmp, "del")
        run("vdb-create", db, "--dim", str(len(vs[0])), "--metric", "l2", "--quantize", "int8")
        data = "".join(json.dumps({"id": i, "vector": v, "payload": {"m": i % 7}}) + "\n"
                       for i, v in enumerate(vs))
        run("vdb-ingest", "-q", db, input=data)
        run("vdb-compact", "-q", db)
        deleted = set(random.Random(4).sample(range(len(vs)), 300))
        run("vdb-ingest", "-q", db,
            input="".join('{"id":%d,"delete":true}\n' % i for i in sorted(deleted)))
        got = self.query(db, qs)
        self.assertTrue(all(len(r) == 10 for r in got))
        self.assertFalse({i for r in got for i in r} & deleted)
        self.assertGreaterEqual(recall(got, self.query(db, qs, "--exact")), THRESHOLD["int8"])
        flt = self.query(db, qs, "--filter", '{"m":3}')
        self.assertTrue(all(len(r) == 10 and all(i % 7 == 3 for i in r) for r in flt))
        self.assertFalse({i for r in flt for i in r} & deleted)
        run("vdb-check", "-q", db)

    def test_compact_converts_a_collection_both_ways(self):
        vs, qs = self.data("int8", "cosine", n=3000, nq=40)
        db = self.load("conv", "cosine", vs)
        self.assertEqual((info(db)["quantize"], info(db)["coded"]), ("none", 0))
        before = info(db)["search_bytes"]
        run("vdb-compact", "-q", "--quantize", "int8", db)
        i = info(db)
        self.assertEqual((i["quantize"], i["coded"], i["graphs"]), ("int8", 1, 1))
        # The graph walks the codes: a quarter of the vectors' bytes, or near it.
        self.assertLess(i["search_bytes"], before * 0.6)
        truth = self.query(db, qs, "--exact")
        self.assertGreaterEqual(recall(self.query(db, qs), truth), THRESHOLD["int8"])
        run("vdb-check", "-q", db)
        # New writes get codes of the new kind too.
        more = clustered(33, 1500, len(vs[0]))
        run("vdb-ingest", "-q", db, input="".join(
            json.dumps({"id": 10000 + i, "vector": normalise(v)}) + "\n" for i, v in enumerate(more)))
        i = info(db)
        self.assertEqual(i["coded"], i["segments"])
        run("vdb-compact", "-q", "--quantize", "none", db)
        i = info(db)
        self.assertEqual((i["quantize"], i["coded"]), ("none", 0))
        run("vdb-check", "-q", db)

    def test_snapshots_carry_the_codes(self):
        vs, qs = self.data("int8", "l2", n=2000, nq=20)
        db = self.load("snap", "l2", vs, "--quantize", "int8")
        archive = os.path.join(self.tmp, "s.tar.zst")
        run("vdb-snapshot", "-q", db, "-o", archive)
        run("vdb-restore", "-q", "--verify", archive)
        target = os.path.join(self.tmp, "restored")
        run("vdb-restore", "-q", archive, target)
        i = info(target)
        self.assertEqual((i["quantize"], i["coded"]), ("int8", 1))
        data = "".join(json.dumps(q) + "\n" for q in qs)
        self.assertEqual(run("vdb-query", target, "--oversample", "1", input=data),
                         run("vdb-query", db, "--oversample", "1", input=data))
        run("vdb-check", "-q", target)

    def test_usage_errors(self):
        db = os.path.join(self.tmp, "u")
        for args, words in ((["--quantize", "int4"], "unknown quantization 'int4'"),
                            (["--quantize", "int8", "--index", "flat"], "--index hnsw")):
            p = subprocess.run([exe("vdb-create"), db, "--dim", "4", "--metric", "l2"] + args,
                               capture_output=True, text=True)
            self.assertEqual(p.returncode, 64, p.stderr)
            self.assertIn(words, p.stderr)
        self.assertFalse(os.path.exists(db))
        run("vdb-create", db, "--dim", "4", "--metric", "l2", "--quantize", "int8")
        run("vdb-create", db, "-c", "flat", "--dim", "4", "--metric", "l2", "--index", "flat")
        for bad in ("0.5", "0", "1001", "nan", "x"):
            p = subprocess.run([exe("vdb-query"), db, "--oversample", bad, "--vector=[1,2,3,4]"],
                               capture_output=True, text=True)
            self.assertEqual(p.returncode, 64, bad)
            self.assertIn("--oversample", p.stderr)
        p = subprocess.run([exe("vdb-compact"), db, "-c", "flat", "--quantize", "int8"],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 64, p.stderr)
        self.assertIn("hnsw", p.stderr)
        self.assertEqual(info(db, "-c", "flat")["quantize"], "none")


if __name__ == "__main__":
    unittest.main(verbosity=2)
