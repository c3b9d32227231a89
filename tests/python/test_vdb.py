#!/usr/bin/env python3
"""The Python module (python/vdb) against the built library: every call, its errors, the
writer lock shared with vdb-ingest, searches seeing other processes' commits, and numpy
arrays of other dtypes, shapes and orders (converted or refused, never misread).

Environment: VDB_LIBRARY (the built libvdb.so), VDB_BIN (the built commands)."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))
BIN = os.environ.get("VDB_BIN", os.path.join(HERE, "..", "..", "build", "cmd"))
os.environ.setdefault("VDB_LIBRARY", os.path.join(HERE, "..", "..", "build", "libvdb",
                                                  "libvdb.so"))

try:
    import numpy as np
    import vdb
except ImportError as e:  # numpy missing: every test skips, saying so
    np = vdb = None
    MISSING = str(e)


def cmd(name, *args, input=None):
    return subprocess.run([os.path.join(BIN, name)] + list(args), input=input,
                          capture_output=True, text=True)


@unittest.skipIf(vdb is None, "needs numpy: %s" % (MISSING if vdb is None else ""))
class Module(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="vdb-py-")
        self.path = os.path.join(self.tmp, "db")
        self.rng = np.random.default_rng(7)

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def vectors(self, n, d=8):
        return self.rng.standard_normal((n, d)).astype(np.float32)

    def test_version_matches_the_commands(self):
        self.assertEqual(cmd("vdb", "--version").stdout.split()[:2], ["vdb", vdb.__version__])

    def test_create_upsert_search_get_count_and_delete(self):
        with vdb.open(self.path, create=True) as db:
            self.assertEqual(db.collections(), [])
            col = db.create_collection("docs", dim=8, metric="l2",
                                       index_fields={"lang": "keyword"})
            self.assertEqual((col.dim, col.metric, col.index, col.quantize),
                             (8, "l2", "hnsw", "none"))
            self.assertEqual(col.index_fields, {"lang": "keyword"})
            self.assertEqual(db.collections(), ["docs"])
            self.assertIn("docs", db)
            v = self.vectors(300)
            col.upsert(list(range(300)), v,
                       payloads=[{"lang": "en" if i % 3 else "de", "n": i} for i in range(300)])
            self.assertEqual(len(col), 300)
            self.assertEqual(col.count({"lang": "de"}), 100)
            ids, scores = col.search(v[7], k=5)
            self.assertEqual(ids.dtype, np.int64)
            self.assertEqual(ids[0], 7)
            self.assertEqual(scores[0], 0.0)
            self.assertTrue(np.all(np.diff(scores) >= 0))  # l2: distances, best first
            # The same answers as vdb-query.
            q = cmd("vdb-query", self.path, "-c", "docs", "-k", "5",
                    "--query-vector=" + json.dumps(v[7].tolist()))
            self.assertEqual(q.returncode, 0, q.stderr)
            want = json.loads(q.stdout)["results"]
            self.assertEqual(ids.tolist(), [r["id"] for r in want])
            self.assertTrue(np.allclose(scores, [r["score"] for r in want]))
            # Several queries, a filter, payloads, exact.
            ids, scores, pls = col.search(v[:4], k=3, filter={"lang": "de"}, payloads=True)
            self.assertEqual(ids.shape, (4, 3))
            self.assertTrue(all(p["lang"] == "de" for row in pls for p in row))
            e_ids, _ = col.search(v[:4], k=3, filter={"lang": "de"}, exact=True)
            self.assertEqual(e_ids.tolist(), ids.tolist())
            r = col.get(10)
            self.assertEqual(r["payload"], {"lang": "en", "n": 10})
            self.assertTrue(np.array_equal(r["vector"], v[10]))
            self.assertIsNone(col.get(12345))
            col.delete([10, 11, 99999])
            self.assertIsNone(col.get(10))
            self.assertEqual(len(col), 298)
            self.assertEqual(col.delete_where({"lang": "de"}), 100)
            self.assertEqual(len(col), 198)
            # String ids: an object array.
            col.upsert(["a", "é"], self.vectors(2), payloads=[None, {"x": [1, None]}])
            self.assertEqual(col.get("é")["payload"], {"x": [1, None]})
            ids, _ = col.search(col.get("a")["vector"], k=1)
            self.assertEqual((ids.dtype, ids[0]), (object, "a"))
            db.drop_collection("docs")
            self.assertEqual(db.collections(), [])
        # What the module wrote, the commands read.
        self.assertEqual(cmd("vdb-check", self.path).returncode, 0)

    def test_consecutive_integer_ids_are_stored_without_copies(self):
        db = vdb.open(self.path, create=True)
        col = db.create_collection("c", dim=8)
        v = self.vectors(2000)
        col.upsert(np.arange(1000, 3000), v)
        self.assertEqual(len(col), 2000)
        self.assertTrue(np.array_equal(col.get(2999)["vector"], v[-1]))
        exp = cmd("vdb-export", self.path, "-c", "c")
        self.assertEqual(len(exp.stdout.splitlines()), 2000)

    def test_arrays_of_other_types_shapes_and_orders(self):
        db = vdb.open(self.path, create=True)
        col = db.create_collection("c", dim=4)
        v64 = np.array([[0.1, 0.2, 0.3, 0.4], [1, 2, 3, 4]], dtype=np.float64)
        col.upsert([1, 2], v64)  # converted, as .npy float64 is: rounded to float32
        self.assertTrue(np.array_equal(col.get(1)["vector"], v64[0].astype(np.float32)))
        fortran = np.asfortranarray(self.vectors(3, 4))
        col.upsert([3, 4, 5], fortran)
        self.assertTrue(np.array_equal(col.get(4)["vector"], fortran[1]))
        strided = self.vectors(6, 4)[::2]
        col.upsert([6, 7, 8], strided)
        self.assertTrue(np.array_equal(col.get(8)["vector"], strided[2]))
        col.upsert([9], np.array([1, 2, 3, 4], dtype=np.int32))
        self.assertEqual(col.get(9)["vector"].tolist(), [1, 2, 3, 4])
        for bad, msg in ((self.vectors(2, 5), "shape (n, 4)"),
                         (np.zeros((2, 2, 4), np.float32), "shape (n, 4)"),
                         (np.array([["a", "b", "c", "d"]]), "must hold numbers")):
            with self.assertRaises(vdb.DataError) as cm:
                col.upsert([1] * len(bad), bad)
            self.assertIn(msg, str(cm.exception))
            self.assertEqual(cm.exception.exit_code, 65)
        with self.assertRaises(vdb.DataError) as cm:
            col.upsert([1, 2, 3], self.vectors(2, 4))
        self.assertIn("3 ids for 2 vectors", str(cm.exception))
        with self.assertRaises(vdb.DataError) as cm:
            col.upsert([20], np.array([[1, np.nan, 0, 0]], np.float32))
        self.assertIn("row 0", str(cm.exception))
        self.assertIn("not finite", str(cm.exception))
        self.assertIsNone(col.get(20))  # nothing of a failed call is stored
        with self.assertRaises(vdb.UsageError):
            col.upsert([-1], self.vectors(1, 4))
        with self.assertRaises(vdb.UsageError):
            col.upsert([1.5], self.vectors(1, 4))
        with self.assertRaises(vdb.DataError):
            col.search(self.vectors(1, 3))
        with self.assertRaises(vdb.DataError):
            col.upsert([30], self.vectors(1, 4), payloads=[[1, 2]])
        self.assertEqual(len(col), 9)

    def test_errors_carry_the_message_and_the_exit_code(self):
        with self.assertRaises(vdb.NotFoundError) as cm:
            vdb.open(self.path)
        self.assertEqual(cm.exception.exit_code, 66)
        db = vdb.open(self.path, create=True)
        with self.assertRaises(vdb.NotFoundError) as cm:
            db["nope"]
        self.assertIn("nope", str(cm.exception))
        db.create_collection("c", dim=4, metric="cosine")
        with self.assertRaises(vdb.ExistsError):
            db.create_collection("c", dim=4)
        with self.assertRaises(vdb.UsageError) as cm:
            db.create_collection("d", dim=4, metric="manhattan")
        self.assertIn("manhattan", str(cm.exception))
        with self.assertRaises(vdb.UsageError):
            db["c"].search(np.ones(4), filter={"x": {"$regex": "a"}})
        with self.assertRaises(vdb.DataError) as cm:
            db["c"].upsert([1], np.zeros((1, 4)))  # cosine: a zero vector has no direction
        self.assertIn("zero vector", str(cm.exception))
        self.assertTrue(issubclass(vdb.LockedError, vdb.Error))
        self.assertTrue(issubclass(vdb.IOError, OSError))

    def test_the_writer_lock_is_shared_with_the_commands(self):
        db = vdb.open(self.path, create=True)
        col = db.create_collection("c", dim=4)
        # vdb-ingest holds the lock while it waits for more input.
        p = subprocess.Popen([os.path.join(BIN, "vdb-ingest"), "-q", self.path, "-c", "c"],
                             stdin=subprocess.PIPE, text=True)
        p.stdin.write('{"id": 1, "vector": [1, 2, 3, 4]}\n')
        p.stdin.flush()
        deadline = time.time() + 10
        while col.count() == 0 and time.time() < deadline:
            time.sleep(0.02)
        with self.assertRaises(vdb.LockedError) as cm:
            col.upsert([2], self.vectors(1, 4), timeout=0)
        self.assertEqual(cm.exception.exit_code, 75)
        with self.assertRaises(vdb.LockedError):
            col.upsert([2], self.vectors(1, 4), timeout=0.2)
        # Waiting: the upsert goes through once the command ends.
        t = threading.Thread(target=lambda: (time.sleep(0.3), p.stdin.close()))
        t.start()
        col.upsert([2], self.vectors(1, 4), timeout=30)
        t.join()
        self.assertEqual(p.wait(), 0)
        self.assertEqual(len(col), 2)
        # And the commands wait for (or refuse) the module's writer in the same way:
        # drop_collection with timeout=0 while vdb-ingest holds the lock.
        p = subprocess.Popen([os.path.join(BIN, "vdb-ingest"), "-q", self.path, "-c", "c"],
                             stdin=subprocess.PIPE, text=True)
        p.stdin.write('{"id": 3, "vector": [1, 2, 3, 4]}\n')
        p.stdin.flush()
        while col.count() < 3 and time.time() < deadline + 10:
            time.sleep(0.02)
        with self.assertRaises(vdb.LockedError):
            db.drop_collection("c", timeout=0)
        p.stdin.close()
        self.assertEqual(p.wait(), 0)

    def test_a_search_sees_commits_made_by_other_processes(self):
        db = vdb.open(self.path, create=True)
        col = db.create_collection("c", dim=4)
        col.upsert([1], np.array([[0, 0, 0, 1]], np.float32))
        self.assertEqual(col.search(np.array([0, 0, 0, 1]), k=5)[0].tolist(), [1])
        r = cmd("vdb-ingest", "-q", self.path, "-c", "c",
                input='{"id": 77, "vector": [0, 0, 0, 1.5]}\n')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(col.search(np.array([0, 0, 0, 1]), k=5)[0].tolist(), [1, 77])
        r = cmd("vdb-compact", "-q", self.path, "-c", "c")
        self.assertEqual(r.returncode, 0, r.stderr)
        cmd("vdb-ingest", "-q", self.path, "-c", "c", input='{"id": 1, "delete": true}\n')
        self.assertEqual(col.search(np.array([0, 0, 0, 1]), k=5)[0].tolist(), [77])
        self.assertEqual(len(col), 1)

    def test_snapshot_restore_verify_and_check(self):
        db = vdb.open(self.path, create=True)
        col = db.create_collection("c", dim=8)
        col.upsert(range(500), self.vectors(500),
                   payloads=[{"n": i} for i in range(500)])
        self.assertEqual(vdb.check(self.path), [])
        full = os.path.join(self.tmp, "full.tar.zst")
        st = vdb.snapshot(self.path, full)
        self.assertEqual((st["collections"], st["records"]), (1, 500))
        col.upsert([1000], self.vectors(1))
        inc = os.path.join(self.tmp, "inc.tar.zst")
        vdb.snapshot(self.path, inc, since=full)
        self.assertLess(os.path.getsize(inc), os.path.getsize(full) / 4)  # the log: a delta
        self.assertEqual(vdb.verify(inc)["archives"], 2)
        target = os.path.join(self.tmp, "restored")
        self.assertEqual(vdb.restore(inc, target)["records"], 501)
        self.assertEqual(cmd("vdb-export", target).stdout, cmd("vdb-export", self.path).stdout)
        with self.assertRaises(vdb.ExistsError):
            vdb.restore(inc, target)
        vdb.restore(full, target, force=True)
        self.assertEqual(len(vdb.open(target)["c"]), 500)
        # Damage is named by check and refused by verify.
        seg = sorted(f for f in os.listdir(os.path.join(target, "c")) if f.startswith("seg-"))
        if seg:
            p = os.path.join(target, "c", seg[0])
            with open(p, "r+b") as f:
                f.seek(os.path.getsize(p) // 2)
                b = f.read(1)
                f.seek(-1, 1)
                f.write(bytes([b[0] ^ 0xFF]))
            problems = vdb.check(target)
            self.assertTrue(problems and seg[0] in problems[0], problems)
        with open(full, "r+b") as f:
            f.truncate(os.path.getsize(full) // 2)
        with self.assertRaises(vdb.DataError) as cm:
            vdb.verify(full)
        self.assertIn("truncated", str(cm.exception))
        with self.assertRaises(vdb.DataError):
            vdb.snapshot(self.path, os.path.join(self.tmp, "x.tar.zst"), since=full)
        with self.assertRaises(vdb.NotFoundError):
            vdb.check(os.path.join(self.tmp, "nowhere"))

    def test_ingest_files_with_the_commands_loader(self):
        db = vdb.open(self.path, create=True)
        col = db.create_collection("c", dim=4)
        v = self.vectors(50, 4)
        npy = os.path.join(self.tmp, "v.npy")
        np.save(npy, v)
        counts = col.ingest(npy, id_offset=100)
        self.assertEqual((counts["upserted"], counts["committed"]), (50, 50))
        self.assertTrue(np.array_equal(col.get(149)["vector"], v[49]))
        jl = os.path.join(self.tmp, "r.jsonl")
        with open(jl, "w") as f:
            f.write('{"id": "x", "vector": [1, 2, 3, 4], "payload": {"a": 1}}\n')
            f.write('{"id": 100, "delete": true}\n')
            f.write('{"id": "y", "vector": [1, 2]}\n')
        with self.assertRaises(vdb.DataError) as cm:
            col.ingest(jl)
        self.assertIn("r.jsonl: line 3", str(cm.exception))
        self.assertEqual(col.get("x")["payload"], {"a": 1})  # what came before it stays
        self.assertIsNone(col.get(100))
        counts = col.ingest(jl, skip_invalid=True)
        self.assertEqual(counts["rejected"], 1)
        with self.assertRaises(vdb.UsageError):
            col.ingest(jl, format="parquet-ish")
        with self.assertRaises(vdb.NotFoundError):
            col.ingest(os.path.join(self.tmp, "none.jsonl"))

    def test_export_writes_what_the_command_writes(self):
        db = vdb.open(self.path, create=True)
        col = db.create_collection("c", dim=4)
        col.upsert([3, "b", 1], self.vectors(3, 4), payloads=[{"k": 1}, None, {"k": 2}])
        out = os.path.join(self.tmp, "out.jsonl")
        self.assertEqual(col.export(out), 3)
        with open(out) as f:
            self.assertEqual(f.read(), cmd("vdb-export", self.path, "-c", "c").stdout)
        self.assertEqual(col.export(out, order="id", filter={"k": {"$exists": True}}), 2)
        with open(out) as f:
            self.assertEqual([json.loads(l)["id"] for l in f], [1, 3])
        npy, idf = os.path.join(self.tmp, "v.npy"), os.path.join(self.tmp, "ids.txt")
        col.export(npy, ids=idf, order="id")
        self.assertTrue(np.array_equal(np.load(npy)[0], col.get(1)["vector"]))
        with open(idf) as f:
            self.assertEqual(f.read().split(), ["1", "3", "b"])
        with self.assertRaises(vdb.UsageError):
            col.export(out, ids=idf)  # ids files go with npy and fvecs
        with self.assertRaises(vdb.UsageError):
            col.export(out, format="bvecs-ish")
        with self.assertRaises(vdb.IOError) as cm:  # as vdb-export -o: exit 74
            col.export(os.path.join(self.tmp, "no", "dir", "x.jsonl"))
        self.assertIn("No such file or directory", str(cm.exception))

    def test_parquet_out_and_back_in(self):
        db = vdb.open(self.path, create=True)
        col = db.create_collection("c", dim=4)
        col.upsert([3, 7, 1], self.vectors(3, 4), payloads=[{"k": 1}, None, {"k": 2.5}])
        pq = os.path.join(self.tmp, "out.parquet")
        self.assertEqual(col.export(pq, payload_columns=True, compression="snappy",
                                    row_group_rows=2), 3)
        with open(pq, "rb") as f:
            self.assertEqual(f.read(4), b"PAR1")
        back = db.create_collection("back", dim=4)
        back.ingest(pq)
        def records(name):
            out = cmd("vdb-export", self.path, "-c", name, "--order", "id").stdout
            return [json.loads(l) for l in out.splitlines()]
        self.assertEqual(records("back"), records("c"))
        with self.assertRaises(vdb.UsageError):
            col.export(pq, compression="lzo")

    def test_fewer_results_than_k_and_mixed_ids(self):
        db = vdb.open(self.path, create=True)
        col = db.create_collection("c", dim=4)
        v = self.vectors(6, 4)
        col.upsert([1, 2, 3, "s", 2 ** 64 - 1, 5], v,
                   payloads=[{"t": 1}, {"t": 1}, None, {"t": 1}, None, None])
        ids, scores = col.search(v[:2], k=10, filter={"t": 1})
        self.assertEqual(ids.shape, (2, 3))
        self.assertEqual(ids.dtype, object)
        self.assertEqual(sorted(map(str, ids[0])), ["1", "2", "s"])
        ids, scores = col.search(v[4], k=10)
        self.assertEqual(ids.dtype, object)  # 2^64 - 1 does not fit int64
        self.assertEqual(ids[0], 2 ** 64 - 1)
        self.assertEqual(len(ids), 6)
        ids, scores = col.search(v[0], k=2, filter={"t": 1}, exact=True)
        self.assertEqual(ids.dtype, object)
        self.assertEqual(ids[0], 1)
        ids, scores = col.search(v[2], k=2, filter={"t": {"$exists": False}})
        self.assertEqual((ids.dtype, ids[0]), (np.int64, 3))
        ids, scores = col.search(v[0], k=3, filter={"t": 99})
        self.assertEqual(ids.shape, (0,))
        self.assertEqual(scores.shape, (0,))

    def test_the_example_runs(self):
        example = os.path.join(HERE, "..", "..", "examples", "numpy_search.py")
        p = subprocess.run([sys.executable, example, self.tmp], capture_output=True, text=True,
                           env=dict(os.environ, PYTHONPATH=os.path.join(HERE, "..", "..",
                                                                        "python")))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("nearest to doc-7: ['doc-7'", p.stdout)
        self.assertIn("doc-7 now: {'topic': -1} records: 5000", p.stdout)
        self.assertIn("restored 5000 records; problems: []", p.stdout)

    def test_threads_search_and_write_at_once(self):
        db = vdb.open(self.path, create=True)
        db.create_collection("c", dim=8)
        v = self.vectors(2000)
        db["c"].upsert(range(2000), v)
        errors = []

        def reader(seed):
            col = db["c"]
            try:
                for i in range(seed, 2000, 97):
                    ids, _ = col.search(v[i], k=1)
                    if ids[0] != i:
                        errors.append((i, ids[0]))
            except Exception as e:  # reported below
                errors.append(e)

        def writer():
            col = db["c"]
            for j in range(5):
                col.upsert([10000 + j], self.vectors(1))

        threads = [threading.Thread(target=reader, args=(s,)) for s in range(4)]
        threads.append(threading.Thread(target=writer))
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        self.assertEqual(len(db["c"]), 2005)


if __name__ == "__main__":
    unittest.main(verbosity=2)
