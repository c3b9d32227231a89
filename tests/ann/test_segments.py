#!/usr/bin/env python3
"""Segments over a long ingest: the automatic merge policy keeps their number logarithmic
in the collection's size, merges keep the records' storage order, flat seals get graphs
when they add up, a load settles into graphs when it ends, and vdb-compact leaves one
segment without deleted rows.

Environment: VDB_BIN (directory of the binaries).
"""
import json
import math
import os
import random
import shutil
import struct
import subprocess
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.environ.get("VDB_BIN", os.path.join(HERE, "..", "..", "build", "cmd"))
DIM = 8


def exe(name):
    return os.path.join(BIN, name)


def run(*args, input=None):
    p = subprocess.run([exe(args[0])] + list(args[1:]), input=input, capture_output=True, text=True)
    if p.returncode != 0:
        raise AssertionError("%s exited %d: %s" % (" ".join(args), p.returncode, p.stderr))
    return p


def segments(db):
    """(rows, has_graph) of each segment, in manifest order."""
    d = os.path.join(db, "default")
    with open(os.path.join(d, "MANIFEST")) as f:
        body = json.loads(f.read().split("\n", 1)[1])
    out = []
    for s in body["segments"]:
        with open(os.path.join(d, "seg-%08d.vdb" % s["number"]), "rb") as f:
            head = f.read(128 + 16 * 32)
        nsec = struct.unpack_from("<I", head, 20)[0]
        kinds = {struct.unpack_from("<I", head, 128 + 32 * i)[0] for i in range(nsec)}
        out.append((s["rows"] - s["deleted"], 8 in kinds))
    return out


class MergePolicy(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="vdb-segs-")
        self.db = os.path.join(self.tmp, "db")
        run("vdb-create", self.db, "--dim", str(DIM), "--metric", "l2", "--seal-size", "16K")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_segment_count_stays_logarithmic_and_order_is_kept(self):
        rng = random.Random(3)
        n = 30000
        lines = [json.dumps({"id": i, "vector": [rng.uniform(-1, 1) for _ in range(DIM)]}) for i in range(n)]
        counts, graphs = [], 0
        for start in range(0, n, 2000):  # many ingests, many seals, no settling
            run("vdb-ingest", "-q", "--no-settle", "-b", "250", self.db,
                input="\n".join(lines[start:start + 2000]) + "\n")
            segs = segments(self.db)
            counts.append(len(segs))
            rows = sum(r for r, _ in segs)
            # Fewer than 4 segments per size tier (factor 4), tiers up to log4(rows).
            bound = 3 * (int(math.log(max(rows, 4), 4)) + 1)
            self.assertLessEqual(len(segs), bound, "%d segments for %d sealed rows" % (len(segs), rows))
            # Log seals are flat; the flat segments at the end get a graph once they hold
            # 16 seal thresholds (16 x 16K) of vectors, and merges keep graphs.
            flat = 0
            while flat < len(segs) and not segs[len(segs) - 1 - flat][1]:
                flat += 1
            self.assertLess(sum(r for r, _ in segs[len(segs) - flat:]) * DIM * 4, 16 * 16384, segs)
            for r, has_graph in segs[:len(segs) - flat]:
                self.assertEqual(has_graph, r >= 1024, segs)
            graphs = max(graphs, sum(g for _, g in segs))
        print("segments after each of %d ingests of 2000 records: %s" % (len(counts), counts))
        self.assertGreater(max(counts), 3, "seals must have produced several segments")
        self.assertGreater(graphs, 0, "flat segments must have been given graphs")
        exported = [json.loads(l)["id"] for l in run("vdb-export", self.db).stdout.splitlines()]
        self.assertEqual(exported, list(range(n)), "merges keep the storage (insertion) order")

    def test_a_load_settles_into_graphs(self):
        rng = random.Random(5)
        nxt = [0]

        def load(n, *opts):
            data = "".join(json.dumps({"id": nxt[0] + i, "vector": [rng.uniform(-1, 1) for _ in range(DIM)]})
                           + "\n" for i in range(n))
            nxt[0] += n
            run("vdb-ingest", "-q", *opts, self.db, input=data)
            return segments(self.db)

        def log_ids():
            info = run("vdb-info", self.db).stdout
            return int(info.split("log", 1)[1].split()[0])

        # A stream much larger than the seal threshold ends as one segment with a graph.
        self.assertEqual(load(3000), [(3000, True)])
        self.assertEqual(log_ids(), 0)
        # Fewer than 1024 records stay in the log.
        self.assertEqual(load(100), [(3000, True)])
        self.assertEqual(log_ids(), 100)
        # 1024 or more outside the largest segment, and 1/64 of it: one segment again.
        self.assertEqual(load(1000), [(4100, True)])
        self.assertEqual(log_ids(), 0)
        # A load the size of the collection.
        self.assertEqual(load(65900), [(70000, True)])
        # Under 1/64 of the largest segment: no rewrite of it; the new records get a graph of
        # their own.
        self.assertEqual(load(1050), [(70000, True), (1050, True)])
        self.assertEqual(log_ids(), 0)
        # --no-settle leaves the log's seals flat.
        segs = load(2000, "--no-settle")
        self.assertEqual(segs[:2], [(70000, True), (1050, True)])
        self.assertTrue(len(segs) > 2 and not segs[-1][1], segs)
        self.assertEqual(sum(r for r, _ in segs) + log_ids(), 73050)
        # The next load settles all of it: 3100 rows are over 1/64 of 70000.
        self.assertEqual(load(100), [(73150, True)])
        exported = [json.loads(l)["id"] for l in run("vdb-export", self.db).stdout.splitlines()]
        self.assertEqual(exported, list(range(73150)), "settling keeps the storage order")
        # Over a quarter of the large graph's rows deleted: a merge could not reuse it, so
        # settling does not rebuild it (vdb-compact does); the new records get their own.
        # (From a file: batches read from a pipe end where the pipe runs dry, and the
        # deletes of a last batch under the seal size would wait in the log.)
        deletes = os.path.join(self.tmp, "deletes.jsonl")
        with open(deletes, "w") as f:
            f.write("".join('{"id":%d,"delete":true}\n' % i for i in range(20000)))
        run("vdb-ingest", "-q", self.db, deletes)
        self.assertEqual(segments(self.db), [(53150, True)])
        self.assertEqual(load(2000), [(53150, True), (2000, True)])
        run("vdb-compact", "-q", self.db)
        self.assertEqual(segments(self.db), [(55150, True)])

    def test_compaction_leaves_one_segment_without_deleted_rows(self):
        rng = random.Random(4)
        data = "".join(json.dumps({"id": i, "vector": [rng.uniform(-1, 1) for _ in range(DIM)]}) + "\n"
                       for i in range(5000))
        run("vdb-ingest", "-q", self.db, input=data)
        run("vdb-ingest", "-q", self.db, input="".join('{"id":%d,"delete":true}\n' % i for i in range(0, 5000, 3)))
        before = run("vdb-export", self.db).stdout
        p = run("vdb-compact", self.db)
        self.assertRegex(p.stderr, r"vdb-compact: 3333 live records; \d+ segments? before, 1 after")
        segs = segments(self.db)
        self.assertEqual(segs, [(3333, True)])
        files = os.listdir(os.path.join(self.db, "default"))
        self.assertEqual([f for f in files if f.startswith("del-")], [], files)
        self.assertEqual(len([f for f in files if f.startswith("wal-")]), 1, files)
        self.assertEqual(run("vdb-export", self.db).stdout, before, "compaction changes no record")
        # Compacting again has nothing to do and changes nothing.
        p = run("vdb-compact", self.db)
        self.assertIn("1 segment before, 1 after", p.stderr)
        self.assertEqual(run("vdb-export", self.db).stdout, before)

    def test_compact_errors(self):
        p = subprocess.run([exe("vdb-compact"), os.path.join(self.tmp, "nope")], capture_output=True, text=True)
        self.assertEqual(p.returncode, 66)
        self.assertIn("vdb-compact: ", p.stderr)
        p = subprocess.run([exe("vdb-compact"), self.db, "-c", "missing"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 66)
        self.assertIn("collection 'missing' does not exist", p.stderr)
        p = subprocess.run([exe("vdb-compact")], capture_output=True, text=True)
        self.assertEqual(p.returncode, 64)
        self.assertIn("missing database directory operand", p.stderr)
        # A writer holds the lock: --no-wait fails at once with 75.
        holder = subprocess.Popen([exe("vdb-ingest"), "-q", self.db], stdin=subprocess.PIPE, text=True)
        try:
            lock = os.path.join(self.db, "default", "LOCK")
            for _ in range(200):
                with open(lock) as f:
                    if f.read().startswith(str(holder.pid)):
                        break
                subprocess.run(["sleep", "0.01"])
            p = subprocess.run([exe("vdb-compact"), "--no-wait", self.db], capture_output=True, text=True)
            self.assertEqual(p.returncode, 75)
            self.assertIn("pid %d" % holder.pid, p.stderr)
        finally:
            holder.communicate("")


if __name__ == "__main__":
    unittest.main(verbosity=2)
