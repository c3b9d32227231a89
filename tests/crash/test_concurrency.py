#!/usr/bin/env python3
"""Concurrency test: several writers on one collection at once, with queries, exports and
compactions running while they write.

Writers take turns through the collection's lock (each waits for the previous one); seals
happen under the readers' feet (tiny seal threshold). Every reader run must succeed, and
every export must show, for each writer, a whole-batch prefix of that writer's records:
no reader ever sees part of a batch. At the end every record of every writer is present.

Environment: VDB_BIN (directory of the binaries).
"""
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.environ.get("VDB_BIN", os.path.join(HERE, "..", "..", "build", "cmd"))
DIM = 4
WRITERS = 4
PER_WRITER = 1500
BATCH = 50


def exe(name):
    return os.path.join(BIN, name)


def record(w, j):
    return {"id": w * 1000000 + j, "vector": [float(w), float(j % 97), 1.0, float(j)],
            "payload": {"w": w, "j": j}}


class ConcurrencyTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="vdb-conc-")
        self.db = os.path.join(self.tmp, "db")
        subprocess.run([exe("vdb-create"), self.db, "--dim", str(DIM), "--metric", "l2",
                        "--seal-size", "32K"], check=True)

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def check_export(self, text):
        per_writer = {w: [] for w in range(WRITERS)}
        for line in text.splitlines():
            r = json.loads(line)
            w, j = divmod(r["id"], 1000000)
            self.assertEqual(r, record(w, j))
            per_writer[w].append(j)
        for w, js in per_writer.items():
            js.sort()
            self.assertEqual(js, list(range(len(js))), "writer %d: not a prefix" % w)
            self.assertTrue(len(js) % BATCH == 0 or len(js) == PER_WRITER,
                            "writer %d: %d records is part of a batch" % (w, len(js)))
        return sum(len(js) for js in per_writer.values())

    def test_writers_and_readers_at_once(self):
        stop = threading.Event()
        failures, reads = [], {"query": 0, "export": 0}
        seen_counts = []

        def reader(kind):
            while not stop.is_set():
                if kind == "export":
                    p = subprocess.run([exe("vdb-export"), self.db], capture_output=True, text=True)
                else:
                    p = subprocess.run([exe("vdb-query"), self.db, "-k", "5", "--vector=[1,2,1,3]"],
                                       capture_output=True, text=True)
                if p.returncode != 0:
                    failures.append("%s exit %d: %s" % (kind, p.returncode, p.stderr))
                    return
                try:
                    if kind == "export":
                        seen_counts.append(self.check_export(p.stdout))
                    else:
                        json.loads(p.stdout)
                except AssertionError as e:
                    failures.append(str(e))
                    return
                reads[kind] += 1

        compactions = {"n": 0}

        def compactor():
            # Compaction takes the writer lock between writers' runs; readers must never
            # see a mix of the old and the new segments.
            while not stop.is_set():
                p = subprocess.run([exe("vdb-compact"), "-q", self.db], capture_output=True, text=True)
                if p.returncode != 0:
                    failures.append("compact exit %d: %s" % (p.returncode, p.stderr))
                    return
                compactions["n"] += 1

        readers = [threading.Thread(target=reader, args=(k,)) for k in ("export", "query", "export")]
        readers.append(threading.Thread(target=compactor))
        for t in readers:
            t.start()
        # Inputs are regular files, so every batch is exactly BATCH records (with a pipe,
        # vdb-ingest would also commit whenever the pipe runs dry).
        procs = []
        start = time.time()
        for w in range(WRITERS):
            path = os.path.join(self.tmp, "w%d.jsonl" % w)
            with open(path, "w") as f:
                f.write("".join(json.dumps(record(w, j)) + "\n" for j in range(PER_WRITER)))
            procs.append(subprocess.Popen([exe("vdb-ingest"), "-q", "-b", str(BATCH), self.db, path],
                                          stderr=subprocess.PIPE, text=True))
        # All writers start at once; each waits on the lock for its turn.
        for p in procs:
            _, err = p.communicate(timeout=300)
            self.assertEqual(p.returncode, 0, err)
        stop.set()
        for t in readers:
            t.join(timeout=60)
        self.assertEqual(failures, [])
        final = subprocess.run([exe("vdb-export"), self.db], capture_output=True, text=True)
        self.assertEqual(final.returncode, 0, final.stderr)
        self.assertEqual(self.check_export(final.stdout), WRITERS * PER_WRITER)
        self.assertGreater(reads["export"], 3, "readers must have run during the writes")
        self.assertGreater(len(set(seen_counts)), 2, "readers must have seen the data grow")
        print("concurrency: %d writers x %d records in %.1f s; %d exports, %d queries and %d "
              "compactions while writing; %d distinct states seen"
              % (WRITERS, PER_WRITER, time.time() - start, reads["export"], reads["query"],
                 compactions["n"], len(set(seen_counts))))


if __name__ == "__main__":
    unittest.main(verbosity=2)
