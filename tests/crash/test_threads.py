#!/usr/bin/env python3
"""The threaded code paths, in one small workload that `scripts/test --tsan` runs under
ThreadSanitizer (and the normal suite runs as a plain test): the parallel HNSW graph build
(a compaction of more than 4,096 rows with VDB_THREADS=3), vdb-query -j 3 (whose answers
must equal -j 1's, in the same order), snapshot compression with worker threads (-T 3) and
the restore of that snapshot.

Environment: VDB_BIN.
"""
import json
import os
import random
import shutil
import subprocess
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.environ.get("VDB_BIN", os.path.join(HERE, "..", "..", "build", "cmd"))
DIM = 8
ROWS = 5000
ENV = dict(os.environ, LC_ALL="C", LANG="C", VDB_THREADS="3")


def run(argv, input=None):
    p = subprocess.run([os.path.join(BIN, argv[0])] + argv[1:], input=input,
                       capture_output=True, text=True, env=ENV, timeout=600)
    return p.returncode, p.stdout, p.stderr


class ThreadsTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="vdb-threads-")
        self.db = os.path.join(self.tmp, "db")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def ok(self, argv, input=None):
        rc, out, err = run(argv, input)
        self.assertEqual(rc, 0, "%s: %s" % (" ".join(argv), err))
        return out

    def test_threaded_paths(self):
        rng = random.Random(8)
        self.ok(["vdb-create", "-q", self.db, "--dim", str(DIM), "--metric", "l2", "--m", "8",
                 "--ef-construction", "40"])
        recs = "".join(json.dumps({"id": i, "vector": [rng.uniform(-1, 1) for _ in range(DIM)],
                                   "payload": {"i": i}}) + "\n" for i in range(ROWS))
        self.ok(["vdb-ingest", "-q", self.db], recs)
        self.ok(["vdb-compact", "-q", self.db])  # one segment of 5,000 rows: built by 3 threads
        self.ok(["vdb-check", "-q", self.db])
        queries = "".join(json.dumps({"vector": [rng.uniform(-1, 1) for _ in range(DIM)]}) + "\n"
                          for _ in range(300))
        one = self.ok(["vdb-query", self.db, "-k", "5", "-j", "1"], queries)
        three = self.ok(["vdb-query", self.db, "-k", "5", "-j", "3"], queries)
        self.assertEqual(three, one)
        self.assertEqual(len(one.splitlines()), 300)
        snap = os.path.join(self.tmp, "s.tar.zst")
        self.ok(["vdb-snapshot", "-q", self.db, "-T", "3", "-o", snap])
        target = os.path.join(self.tmp, "restored")
        self.ok(["vdb-restore", "-q", snap, target])
        self.assertEqual(self.ok(["vdb-export", target]), self.ok(["vdb-export", self.db]))


if __name__ == "__main__":
    unittest.main(verbosity=2)
