#!/usr/bin/env python3
"""Damaged files: flip one bit somewhere in every kind of file of a small collection
(segments with graphs and norms, deletion marks, the log, MANIFEST, CONFIG, the VDB marker),
or cut the file short, and run the readers, a writer and vdb-check on it. Each run must end normally (exit 0) or report the
damage with exit 65 and a message naming the damaged file -- never crash, hang or read out
of bounds (the sanitizer build runs this too).

Positions: every byte of each file's first 256 bytes (headers, section tables, the first
frame) and a seeded sample of the rest; lengths cut to: every length up to 32 bytes, every
8th up to 256, a seeded sample of the rest, and one byte short. Environment: VDB_BIN, VDB_CORRUPTION_SAMPLES
(positions sampled past the first 256 bytes of each file; default 40).
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
SAMPLES = int(os.environ.get("VDB_CORRUPTION_SAMPLES", "40"))
QUERY = "--vector=[0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8]"


def exe(name):
    return os.path.join(BIN, name)


def ingest(db, lines, *args):
    # From a file, not a pipe: batches (and so seals and deletion marks) fall where -b puts
    # them, not where the pipe's timing would.
    with tempfile.TemporaryFile() as f:
        f.write("".join(l + "\n" for l in lines).encode())
        f.seek(0)
        subprocess.run([exe("vdb-ingest"), "-q", *args, db], stdin=f, check=True)


class Corruption(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="vdb-corrupt-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def build(self, metric):
        db = os.path.join(self.tmp, "base-" + metric)
        subprocess.run([exe("vdb-create"), db, "--dim", "8", "--metric", metric, "--seal-size", "16K"],
                       check=True)
        rng = random.Random(1)
        ingest(db, [json.dumps({"id": i if i % 3 else "s%d" % i,
                                "vector": [rng.uniform(-1, 1) for _ in range(8)], "payload": {"i": i}})
                    for i in range(2500)])
        ingest(db, ['{"id":%d,"delete":true}' % i for i in range(1, 900, 7)])
        ingest(db, [json.dumps({"id": 10000 + i, "vector": [0.5] * 8}) for i in range(300)], "-b", "10")
        # Deleting sealed rows, then sealing again, leaves a deletion-marks file.
        ingest(db, ['{"id":%d,"delete":true}' % i for i in range(10000, 10100)])
        ingest(db, [json.dumps({"id": 20000 + i, "vector": [0.25] * 8}) for i in range(300)], "-b", "10")
        return db

    def check(self, db, name, pos, rng, truncate=False):
        work = os.path.join(self.tmp, "work")
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(db, work)
        path = os.path.join(work, name) if name == "VDB" else os.path.join(work, "default", name)
        with open(path, "r+b") as f:
            if truncate:
                f.truncate(pos)
            else:
                f.seek(pos)
                b = f.read(1)[0]
                f.seek(pos)
                f.write(bytes([b ^ (1 << rng.randrange(8))]))
        label = name.split("-")[0].split(".")[0]  # seg, del, wal, MANIFEST, CONFIG, VDB
        cmds = [["vdb-export", work], ["vdb-query", work, "-k", "5", "--payload", QUERY],
                ["vdb-ingest", "-q", work]]
        # vdb-check before the writer, which repairs a cut log tail (an interrupted write).
        for cmd in ([["vdb-check", "-q", work]] if truncate else []) + cmds:
            try:
                r = subprocess.run([exe(cmd[0])] + cmd[1:], input='{"id":1,"vector":[1,1,1,1,1,1,1,1]}\n',
                                   capture_output=True, text=True, timeout=30)
            except subprocess.TimeoutExpired:
                self.fail("%s hangs on %s with byte %d damaged" % (cmd[0], name, pos))
            where = "%s %s %d, %s" % (name, "cut to" if truncate else "byte", pos, cmd[0])
            self.assertIn(r.returncode, (0, 65), "%s: exit %d: %s" % (where, r.returncode, r.stderr))
            if r.returncode == 65:
                self.assertTrue(r.stderr.startswith(cmd[0] + ": "), where)
                self.assertTrue(name in r.stderr or label in r.stderr,
                                "%s: the message does not name the file: %s" % (where, r.stderr))
        return r.returncode

    def sweep(self, metric):
        db = self.build(metric)
        rng = random.Random(2)
        names = ["VDB"] + sorted(f for f in os.listdir(os.path.join(db, "default")) if f != "LOCK")
        kinds = {n.split("-")[0].split(".")[0] for n in names}
        for want in ("seg", "del", "wal", "MANIFEST", "CONFIG", "VDB"):
            self.assertIn(want, kinds, names)
        runs = 0
        for name in names:
            path = os.path.join(db, name) if name == "VDB" else os.path.join(db, "default", name)
            size = os.path.getsize(path)
            positions = set(range(min(size, 256)))
            positions |= {rng.randrange(size) for _ in range(SAMPLES)} if size > 256 else set()
            for pos in sorted(positions):
                self.check(db, name, pos, rng)
                runs += 1
        print("%s: %d damaged copies, %d files, 3 commands each: no crash, no hang" % (metric, runs, len(names)))

    def test_truncated_files(self):
        db = self.build("l2")
        rng = random.Random(3)
        names = ["VDB"] + sorted(f for f in os.listdir(os.path.join(db, "default")) if f != "LOCK")
        runs = 0
        for name in names:
            path = os.path.join(db, name) if name == "VDB" else os.path.join(db, "default", name)
            size = os.path.getsize(path)
            lengths = set(range(min(size, 33))) | set(range(0, min(size, 257), 8)) | {size - 1}
            lengths |= {rng.randrange(size) for _ in range(10)}
            for n in sorted(lengths):
                self.check(db, name, n, rng, truncate=True)
                runs += 1
        print("%d truncated copies, %d files, 4 commands each: no crash, no hang" % (runs, len(names)))

    def test_l2_collection(self):
        self.sweep("l2")

    def test_cosine_collection(self):
        self.sweep("cosine")


if __name__ == "__main__":
    unittest.main(verbosity=2)
