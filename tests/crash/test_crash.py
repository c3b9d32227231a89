#!/usr/bin/env python3
"""Crash test: kill -9 a running vdb-ingest at random moments, many times, on one collection.

Each iteration feeds a fresh input file (new ids, replacements of old ids, deletes) to
`vdb-ingest -v --batch B`, and kills it after a random delay: during start-up and recovery,
in the middle of batches, during seals (the seal threshold is tiny, so seals are frequent),
or not at all when it finishes first. Input comes from a regular file, so batches are
exactly B lines and their boundaries are known.

After each kill the collection must equal the state before the iteration plus the first L
lines of its input, where L is a batch boundary (no partial batch) at or after the end of
the last batch vdb-ingest reported as committed (acknowledged means durable; a batch may be
durable without having been reported yet). vdb-export and vdb-query must work, and the next
iteration's writer recovers whatever the kill left behind. A quarter of the iterations kill a
vdb-compact instead (graph builds, merges): the content must be exactly what it was.

Environment: VDB_BIN (directory of the binaries), VDB_CRASH_ITERATIONS (default 60),
VDB_CRASH_SEED (default 20261120).
"""
import json
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.environ.get("VDB_BIN", os.path.join(HERE, "..", "..", "build", "cmd"))
ITERATIONS = int(os.environ.get("VDB_CRASH_ITERATIONS", "60"))
SEED = int(os.environ.get("VDB_CRASH_SEED", "20261120"))
DIM = 8
BATCH_RE = re.compile(r"committed batch \d+: \d+ records? \(lines (\d+)-(\d+)\)")


def exe(name):
    return os.path.join(BIN, name)


def vector_for(g):
    # Small integers: exact in float32 and in JSON, so states compare exactly.
    return [float((g * (k + 3)) % 1009 - 500) for k in range(DIM)]


def export(db, coll="default"):
    p = subprocess.run([exe("vdb-export"), db, "-c", coll], capture_output=True, text=True)
    if p.returncode != 0:
        raise AssertionError("vdb-export failed (%d): %s" % (p.returncode, p.stderr))
    state = {}
    for line in p.stdout.splitlines():
        r = json.loads(line)
        key = json.dumps(r["id"])
        assert key not in state, "id %s exported twice" % key
        state[key] = (r["vector"], r.get("payload"))
    return state


def apply(state, op):
    kind, key, vec, payload = op
    if kind == "del":
        state.pop(key, None)
    else:
        state[key] = (vec, payload)


class KillClock:
    """When to kill a run. A fixed delay fits one machine's speed: on a faster one every kill
    lands after the end, on a slower one before anything happened. Here the delay is drawn
    uniformly over 1.1 x the longest uninterrupted run seen of the same kind (until one is
    seen: over the longest run of any kind, or `first` seconds, half as long again after
    each kill), so kills spread over whole runs at any speed."""

    def __init__(self, rng, first=0.05):
        self.rng, self.first, self.longest, self.guess = rng, first, {}, {}

    def delay(self, kind):
        if kind in self.longest:
            return self.rng.uniform(0, 1.1 * self.longest[kind])
        # A kind not seen to finish yet: the longest run of any kind, else a guess that
        # grows with every kill until a run finishes.
        window = max(self.guess.get(kind, self.first), max(self.longest.values(), default=0))
        self.guess[kind] = 1.5 * window
        return self.rng.uniform(0, window)

    def finished(self, kind, seconds):
        self.longest[kind] = max(self.longest.get(kind, 0), seconds)

    def communicate(self, proc, kind):
        """Waits for proc (started just now, stderr piped) to finish or kills it at a random
        moment; returns its stderr, read all along (a full pipe would stop it)."""
        started = time.monotonic()
        try:
            _, err = proc.communicate(timeout=self.delay(kind))
            self.finished(kind, time.monotonic() - started)
        except subprocess.TimeoutExpired:
            proc.kill()  # SIGKILL
            _, err = proc.communicate()
        return err


class CrashTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="vdb-crash-")
        self.db = os.path.join(self.tmp, "db")
        subprocess.run([exe("vdb-create"), self.db, "--dim", str(DIM), "--metric", "l2",
                        "--seal-size", "16K"], check=True)

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def make_input(self, rng, state, g0, n):
        """n lines of new ids, replacements and deletes; returns (lines, ops)."""
        lines, ops = [], []
        existing = list(state.keys())
        for j in range(n):
            g = g0 + j
            r = rng.random()
            if existing and r < 0.15:
                key = rng.choice(existing)
                lines.append('{"id":%s,"delete":true}' % key)
                ops.append(("del", key, None, None))
                continue
            if existing and r < 0.35:
                key = rng.choice(existing)
            else:
                key = json.dumps(g if rng.random() < 0.7 else "s-%d" % g)
            payload = {"g": g}
            rec = {"id": json.loads(key), "vector": vector_for(g), "payload": payload}
            lines.append(json.dumps(rec, separators=(",", ":")))
            ops.append(("put", key, vector_for(g), payload))
        return lines, ops

    def test_kill_9_at_random_moments(self):
        self.kill_loop(SEED, ITERATIONS, [50, 300, 1000, 2500], [1, 3, 25, 100, 400])

    def test_kill_9_during_bulk_commits(self):
        # Batches of 400+ records are over the 16K seal threshold: each is committed as a
        # sealed segment of its own (after sealing the log), with no log bytes. Kills land
        # before, during and after those seals and their merges.
        self.kill_loop(SEED + 1, max(ITERATIONS // 2, 4), [1000, 2500, 6000], [400, 1000, 3000])

    def test_kill_9_while_a_load_settles(self):
        # Every batch of the load is acknowledged, then the load settles: its flat seals and
        # log are merged into one segment with a graph (with the collection's largest one).
        # A kill at any moment of that leaves every record, vdb-check content, and the next
        # load recovers and settles.
        rng = random.Random(SEED + 3)
        clock = KillClock(rng, first=0.3)
        state, g, killed = {}, 1, 0
        iterations = max(ITERATIONS // 6, 4)
        for it in range(iterations):
            n = rng.choice([3000, 6000])
            lines, ops = self.make_input(rng, state, g, n)
            g += n
            path = os.path.join(self.tmp, "settle-%d.jsonl" % it)
            with open(path, "w") as f:
                f.write("\n".join(lines) + "\n")
            proc = subprocess.Popen([exe("vdb-ingest"), "-v", "-b", "1000", self.db, path],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            err = ""
            for line in proc.stderr:
                err += line
                m = BATCH_RE.search(line)
                if m and int(m.group(2)) == n:
                    break  # the last batch is acknowledged: settling follows
            acked = time.monotonic()
            try:  # what is left to print is a line: the pipe cannot fill
                proc.wait(timeout=clock.delay(n))
                clock.finished(n, time.monotonic() - acked)
            except subprocess.TimeoutExpired:
                proc.kill()
            rest = proc.stderr.read()
            proc.wait()
            self.assertIn(proc.returncode, (0, -9), err + rest)
            killed += proc.returncode == -9
            for op in ops:
                apply(state, op)
            self.assertEqual(export(self.db), state, "iteration %d: acknowledged records" % it)
            c = subprocess.run([exe("vdb-check"), self.db], capture_output=True, text=True)
            self.assertEqual(c.returncode, 0, c.stdout + c.stderr)
        # An uninterrupted load recovers whatever was left and settles into one graph.
        self.last_load(rng, state, g, 1500)
        info = json.loads(subprocess.run([exe("vdb-info"), "--json", self.db], capture_output=True,
                                         text=True, check=True).stdout)
        self.assertEqual((info["segments"], info["graphs"], info["log_records"]), (1, 1, 0), info)
        print("settle kills: %d of %d loads killed after their last batch" % (killed, iterations))
        self.assertGreater(killed, 0)

    def test_kill_9_in_a_quantized_collection(self):
        # Seals, merges and compactions that write int8 codes, then conversions between code
        # kinds (vdb-compact --quantize: CONFIG replaced, then every segment rewritten),
        # killed at any moment: the content stays exactly what was acknowledged, vdb-check
        # passes, and CONFIG names the old kind or the new one.
        info = lambda: json.loads(subprocess.run([exe("vdb-info"), "--json", self.db],
                                                 capture_output=True, text=True, check=True).stdout)
        subprocess.run([exe("vdb-compact"), "-q", "--quantize", "int8", self.db], check=True)
        self.kill_loop(SEED + 5, max(ITERATIONS // 3, 4), [1000, 2500], [25, 100, 400])
        self.assertEqual(info()["coded"], info()["segments"])
        rng = random.Random(SEED + 6)
        clock = KillClock(rng, first=0.1)
        state, kind, killed = export(self.db), "int8", 0
        for it in range(9):
            new = ["binary", "none", "int8"][it % 3]
            proc = subprocess.Popen([exe("vdb-compact"), "-q", "--quantize", new, self.db],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            err = clock.communicate(proc, new)
            self.assertIn(proc.returncode, (0, -9), err)
            killed += proc.returncode == -9
            self.assertEqual(export(self.db), state, "conversion %d changed content" % it)
            c = subprocess.run([exe("vdb-check"), self.db], capture_output=True, text=True)
            self.assertEqual(c.returncode, 0, c.stdout + c.stderr)
            now = info()["quantize"]
            self.assertIn(now, (kind, new), "conversion %d" % it)
            kind = now
        subprocess.run([exe("vdb-compact"), "-q", "--quantize", "binary", self.db], check=True)
        i = info()
        self.assertEqual((i["quantize"], i["coded"], i["segments"]), ("binary", 1, 1), i)
        self.assertEqual(export(self.db), state)
        print("quantized: %d of 9 conversions killed" % killed)
        self.assertGreater(killed, 2)

    def test_kill_9_during_drop_and_rename(self):
        # vdb-drop of a collection of many files (segments, deletion files, a log), and
        # vdb-rename, killed at any moment: the collection is whole under one name (the same
        # content, vdb-check passes) or gone, and what a killed drop left is removed by the
        # next create or drop in the database.
        rng = random.Random(SEED + 9)
        clock = KillClock(rng, first=0.01)
        killed = gone = left = 0
        names = lambda: subprocess.run([exe("vdb-info"), "--list", self.db], capture_output=True,
                                       text=True, check=True).stdout.split()
        leftovers = lambda: [e for e in os.listdir(self.db) if e.startswith(".drop-")]
        for it in range(16):
            name, other = "c%d" % it, "r%d" % it
            subprocess.run([exe("vdb-create"), self.db, "-c", name, "--dim", str(DIM),
                            "--metric", "l2", "--seal-size", "16K"], check=True)
            self.assertEqual(leftovers(), [], "iteration %d" % it)  # removed by the create
            lines, _ = self.make_input(rng, {}, it * 10000, 1500)
            lines += ['{"id":%d,"delete":true}' % (it * 10000 + j) for j in range(0, 1500, 7)]
            subprocess.run([exe("vdb-ingest"), "-q", "-b", "50", self.db, "-c", name],
                           input="\n".join(lines) + "\n", text=True, check=True)
            state = export(self.db, name)
            rename = it % 4 == 3
            argv = ([exe("vdb-rename"), "-q", self.db, "-c", name, other] if rename else
                    [exe("vdb-drop"), "-q", self.db, "-c", name])
            proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                    text=True)
            err = clock.communicate(proc, rename)
            self.assertIn(proc.returncode, (0, -9), err)
            killed += proc.returncode == -9
            now = names()
            there = [n for n in (name, other) if n in now]
            if rename:
                self.assertEqual(len(there), 1, "rename %d: %s" % (it, now))
            if there:
                self.assertEqual(export(self.db, there[0]), state, "iteration %d" % it)
                c = subprocess.run([exe("vdb-check"), self.db, "-c", there[0]],
                                   capture_output=True, text=True)
                self.assertEqual(c.returncode, 0, c.stdout + c.stderr)
            else:
                gone += 1
                left += bool(leftovers())
            # Finish the job (a drop removes what a killed one left, as a create does).
            for n in there:
                subprocess.run([exe("vdb-drop"), "-q", self.db, "-c", n], check=True)
                self.assertEqual(leftovers(), [], "iteration %d" % it)
            self.assertEqual(names(), ["default"])
        subprocess.run([exe("vdb-create"), self.db, "-c", "last", "--dim", "2",
                        "--metric", "l2"], check=True)
        self.assertEqual(leftovers(), [])
        print("drop/rename kills: %d of 16 killed, %d collections gone, %d of them leaving "
              "files to remove" % (killed, gone, left))
        self.assertGreater(killed, 3)

    def test_kill_9_during_a_prune(self):
        # vdb-snapshot --prune over chains (a full snapshot, incrementals on it), killed at
        # any moment: every incremental left still has its base, and the next prune
        # finishes the job.
        rng = random.Random(SEED + 11)
        clock = KillClock(rng, first=0.05)
        subprocess.run([exe("vdb-ingest"), "-q", self.db], input="\n".join(
            self.make_input(rng, {}, 1, 300)[0]) + "\n", text=True, check=True)
        d = os.path.join(self.tmp, "snaps")
        killed = 0
        for it in range(8):
            shutil.rmtree(d, ignore_errors=True)
            os.mkdir(d)
            for c in range(12):
                for k in range(3):
                    argv = [exe("vdb-snapshot"), "-q", self.db, "-o",
                            os.path.join(d, "c%02d-%d.tar.zst" % (c, k))]
                    if k:
                        argv += ["--since", os.path.join(d, "c%02d-0.tar.zst" % c)]
                    subprocess.run(argv, check=True)
            keep = rng.choice([1, 3, 10])
            proc = subprocess.Popen([exe("vdb-snapshot"), "--prune", d, "--keep-last", str(keep)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            err = clock.communicate(proc, keep)
            self.assertIn(proc.returncode, (0, -9), err)
            killed += proc.returncode == -9
            p = subprocess.run([exe("vdb-snapshot"), "--list", d], capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertNotIn("base missing", p.stdout, "iteration %d" % it)
            p = subprocess.run([exe("vdb-snapshot"), "-q", "--prune", d, "--keep-last", str(keep)],
                               capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, p.stderr)
            left = sorted(os.listdir(d))
            newest = sorted(("c%02d-%d.tar.zst" % (c, k) for c in range(12) for k in range(3)))
            want = set(newest[-keep:]) | {"c11-0.tar.zst", "c%02d-0.tar.zst" % ((36 - keep) // 3)}
            self.assertEqual(set(left), {f for f in want if f in newest}, "iteration %d" % it)
        print("prune kills: %d of 8 killed" % killed)
        self.assertGreater(killed, 0)

    def last_load(self, rng, state, g, n):
        """An uninterrupted load of n more lines: it recovers what a kill left, and the
        collection is state (updated) afterwards."""
        lines, ops = self.make_input(rng, state, g, n)
        p = subprocess.run([exe("vdb-ingest"), "-q", self.db], input="\n".join(lines) + "\n",
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        for op in ops:
            apply(state, op)
        self.assertEqual(export(self.db), state)

    def kill_loop(self, seed, iterations, sizes, batches):
        rng = random.Random(seed)
        clock = KillClock(rng)
        state = {}
        g = 1
        outcomes = {"killed": 0, "finished": 0, "torn-or-unreported": 0, "compactions": 0}
        for it in range(iterations):
            n = rng.choice(sizes)
            batch = rng.choice(batches)
            lines, ops = self.make_input(rng, state, g, n)
            g += n
            path = os.path.join(self.tmp, "in-%d.jsonl" % it)
            with open(path, "w") as f:
                f.write("\n".join(lines) + "\n")
            if state and rng.random() < 0.25:
                # Kill a compaction instead: whatever the moment, the content must not change.
                outcomes["compactions"] += 1
                proc = subprocess.Popen([exe("vdb-compact"), "-q", self.db],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                err = clock.communicate(proc, "compact")
                self.assertIn(proc.returncode, (0, -9), err)
                self.assertEqual(export(self.db), state, "iteration %d: compaction changed content" % it)
                g -= n  # the generated input was not used
                continue
            proc = subprocess.Popen([exe("vdb-ingest"), "-v", "-b", str(batch), self.db, path],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            err = clock.communicate(proc, (n, batch))
            finished = proc.returncode == 0
            outcomes["finished" if finished else "killed"] += 1
            if not finished:
                self.assertEqual(proc.returncode, -9, err)
            acked = max([int(m.group(2)) for m in BATCH_RE.finditer(err)] or [0])
            if finished:
                self.assertEqual(acked, n, err)

            actual = export(self.db)
            # Candidate prefixes: batch boundaries from the last acknowledged line on.
            boundaries = sorted({b for b in range(0, n + 1, batch) if b >= acked} | ({n} if n >= acked else set()))
            model = dict(state)
            done = 0
            matched = None
            for b in boundaries:
                while done < b:
                    apply(model, ops[done])
                    done += 1
                if model == actual:
                    matched = b
                    break
            self.assertIsNotNone(
                matched,
                "iteration %d: state is not the old state plus a whole-batch prefix of the input "
                "at or after line %d (batch %d, %d lines, exit %s)\n%s"
                % (it, acked, batch, n, proc.returncode, err))
            if matched != acked:
                outcomes["torn-or-unreported"] += 1
            state = actual
            # Readers work on whatever the kill left (possibly a torn log tail).
            q = subprocess.run([exe("vdb-query"), self.db, "-k", "3", "--vector=%s" % json.dumps(vector_for(7))],
                               capture_output=True, text=True)
            self.assertEqual(q.returncode, 0, q.stderr)
            self.assertEqual(len(json.loads(q.stdout)["results"]), min(3, len(state)))

        # A last, uninterrupted ingest recovers and adds on top of everything.
        self.last_load(rng, state, g, 200)
        files = os.listdir(os.path.join(self.db, "default"))
        self.assertFalse([f for f in files if ".tmp-" in f], files)
        self.assertEqual(len([f for f in files if f.startswith("wal-")]), 1, files)
        print("crash test: %d iterations, %s, %d records at the end, %d segments"
              % (iterations, outcomes, len(state), len([f for f in files if f.startswith("seg-")])))
        self.assertGreater(outcomes["killed"], iterations // 4, "most runs must really be killed")

    def test_kill_9_during_vector_file_blocks(self):
        # .npy/.fvecs input with row-number ids and no --batch is stored in blocks, each
        # written straight to a segment (after sealing a logged tail, which some iterations
        # leave): a file named on the command line is mapped and stored as one block; a pipe
        # is read in blocks of the seal threshold (16K / 32-byte rows = 512 rows), whose last,
        # shorter one may be logged. Blocks over ids of older segments replace their rows, and
        # drop segments left without any. After a kill the collection must be the old state
        # plus a whole-block prefix of the rows.
        rng = random.Random(SEED + 2)
        block = 16 * 1024 // (4 * DIM)
        colls = {"default": {}, "flat": {}}
        subprocess.run([exe("vdb-create"), self.db, "-c", "flat", "--dim", str(DIM), "--metric", "l2",
                        "--index", "flat", "--seal-size", "16K"], check=True)
        iterations = max(ITERATIONS // 2, 4)
        clock = KillClock(rng)
        killed = midway = 0
        g = 1
        for it in range(iterations):
            coll = rng.choice(sorted(colls))
            state = colls[coll]
            if state and rng.random() < 0.4:  # a logged tail for the block to seal first
                key = rng.choice(sorted(state))
                rec = {"id": json.loads(key), "vector": vector_for(g), "payload": {"tail": g}}
                p = subprocess.run([exe("vdb-ingest"), "-q", self.db, "-c", coll],
                                   input=json.dumps(rec) + "\n", capture_output=True, text=True)
                self.assertEqual(p.returncode, 0, p.stderr)
                state[key] = (vector_for(g), {"tail": g})
                g += 1
            n = rng.choice([300, 1500, 4000, 12000])
            ids = [int(k) for k in state]
            offset = rng.choice([max(ids, default=0) + 1, max(max(ids, default=0) - n // 2, 0), 0])
            vecs = [vector_for(g + r) for r in range(n)]
            g += n
            fmt = rng.choice(["npy", "fvecs"])
            path = os.path.join(self.tmp, "in-%d.%s" % (it, fmt))
            write_vectors(path, fmt, vecs)
            piped = rng.random() < 0.5
            cmd = [exe("vdb-ingest"), "-v", self.db, "-c", coll, "--id-offset", str(offset)]
            src = subprocess.Popen(["cat", path], stdout=subprocess.PIPE) if piped else None
            proc = subprocess.Popen(cmd + (["-f", fmt, "-"] if piped else [path]),
                                    stdin=src.stdout if piped else subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            if src:
                src.stdout.close()
            err = clock.communicate(proc, (n, piped))
            if src:
                src.wait()
            if proc.returncode != 0:
                self.assertEqual(proc.returncode, -9, err)
                killed += 1
            acked = max([int(m.group(2)) + 1 for m in ROWS_RE.finditer(err)] or [0])
            if proc.returncode == 0:
                self.assertEqual(acked, n, err)
            actual = export(self.db, coll)
            model, done, matched = dict(state), 0, None
            for b in sorted({b for b in range(0, n + 1, block) if b >= acked} | {n}):
                while done < b:
                    model[json.dumps(offset + done)] = (vecs[done], None)
                    done += 1
                if model == actual:
                    matched = b
                    break
            self.assertIsNotNone(matched, "iteration %d (%s, %s, %d rows from id %d): not the old "
                                 "state plus a whole-block prefix at or after row %d\n%s"
                                 % (it, coll, fmt, n, offset, acked, err))
            midway += 0 < matched < n
            colls[coll] = actual
            q = subprocess.run([exe("vdb-query"), self.db, "-c", coll, "-k", "3",
                                "--vector=%s" % json.dumps(vector_for(7))], capture_output=True, text=True)
            self.assertEqual(q.returncode, 0, q.stderr)
        for coll, state in colls.items():
            # A last, uninterrupted load recovers (removing what the kills left) and adds.
            vecs = [vector_for(g + r) for r in range(700)]
            path = os.path.join(self.tmp, "last.fvecs")
            write_vectors(path, "fvecs", vecs)
            p = subprocess.run([exe("vdb-ingest"), "-q", self.db, "-c", coll, "--id-offset", "5", path],
                               capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, p.stderr)
            for r, v in enumerate(vecs):
                state[json.dumps(5 + r)] = (v, None)
            self.assertEqual(export(self.db, coll), state)
            c = subprocess.run([exe("vdb-check"), self.db, "-c", coll], capture_output=True, text=True)
            self.assertEqual(c.returncode, 0, c.stdout + c.stderr)
            files = os.listdir(os.path.join(self.db, coll))
            self.assertFalse([f for f in files if ".tmp-" in f], files)
        print("crash test (vector blocks): %d iterations, %d killed, %d with part of the blocks "
              "stored" % (iterations, killed, midway))
        self.assertGreater(killed, iterations // 4, "most runs must really be killed")
        self.assertGreater(midway, 0, "some kills must land between two blocks")

    def test_kill_9_during_a_parquet_load(self):
        # A Parquet file (written by vdb-export: several row groups, payloads, ids over old
        # records and new) loaded with a batch size, or without (one block as large as the
        # file here, stored as a segment): after a kill the collection must be the old state
        # plus a whole-batch prefix of the file's rows, at or after the last batch reported.
        rng = random.Random(SEED + 5)
        src = os.path.join(self.tmp, "src")
        state, killed, midway = {}, 0, 0
        clock = KillClock(rng)
        iterations = max(ITERATIONS // 3, 4)
        for it in range(iterations):
            n = rng.choice([200, 1500, 5000])
            first = rng.randrange(0, 3000)
            rows = [(first + r, vector_for(it * 10000 + r),
                     {"it": it, "r": r} if rng.random() < 0.5 else None) for r in range(n)]
            shutil.rmtree(src, ignore_errors=True)
            subprocess.run([exe("vdb-create"), "-q", src, "--dim", str(DIM), "--metric", "l2"],
                           check=True)
            lines = "".join(json.dumps({"id": i, "vector": v, **({"payload": p} if p else {})})
                            + "\n" for i, v, p in rows)
            subprocess.run([exe("vdb-ingest"), "-q", src], input=lines, text=True, check=True)
            path = os.path.join(self.tmp, "in-%d.parquet" % it)
            subprocess.run([exe("vdb-export"), src, "--order", "id", "-o", path,
                            "--row-group-rows", str(rng.choice([100, 1000, 100000])),
                            "--compression", rng.choice(["zstd", "snappy", "none"])], check=True)
            batch = rng.choice([None, 50, 700])
            cmd = [exe("vdb-ingest"), "-v", self.db] + (["-b", str(batch)] if batch else [])
            proc = subprocess.Popen(cmd + [path], stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            err = clock.communicate(proc, (n, batch))
            if proc.returncode != 0:
                self.assertEqual(proc.returncode, -9, err)
                killed += 1
            acked = max([int(m.group(2)) + 1 for m in ROWS_RE.finditer(err)] or [0])
            actual = export(self.db)
            model, done, matched = dict(state), 0, None
            step = batch or n
            for b in sorted({b for b in range(0, n + 1, step) if b >= acked} | {n}):
                while done < b:
                    i, v, p = rows[done]
                    model[json.dumps(i)] = (v, p)
                    done += 1
                if model == actual:
                    matched = b
                    break
            self.assertIsNotNone(matched, "iteration %d (%d rows, batch %s): not the old state "
                                 "plus a whole-batch prefix at or after row %d\n%s"
                                 % (it, n, batch, acked, err))
            midway += 0 < matched < n
            state = actual
        c = subprocess.run([exe("vdb-check"), self.db], capture_output=True, text=True)
        self.assertEqual(c.returncode, 0, c.stdout + c.stderr)
        print("crash test (parquet): %d iterations, %d killed, %d with part of the file stored"
              % (iterations, killed, midway))
        self.assertGreater(killed, iterations // 4, "most runs must really be killed")


ROWS_RE = re.compile(r"committed batch \d+: \d+ records? \(rows (\d+)-(\d+)\)")


def write_vectors(path, fmt, vecs):
    """vecs as float32 .fvecs, or .npy version 1.0 ('<f4', C order), without NumPy."""
    dim = len(vecs[0])
    with open(path, "wb") as f:
        if fmt == "npy":
            h = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }" % (len(vecs), dim)
            h += " " * (63 - (10 + len(h)) % 64) + "\n"
            f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode())
        for v in vecs:
            if fmt == "fvecs":
                f.write(struct.pack("<i", dim))
            f.write(struct.pack("<%df" % dim, *v))


if __name__ == "__main__":
    unittest.main(verbosity=2)
