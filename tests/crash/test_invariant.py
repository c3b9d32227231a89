#!/usr/bin/env python3
"""Concurrency torture with an invariant checked in every read.

Ten "account" records are rewritten together by every batch: their balances always sum to
1000 and they all carry the batch's stamp; each batch also adds new records of its own.
For a bounded time (VDB_TORTURE_SECONDS, default 8), at once:
  - several writers (vdb-ingest processes, queueing on the collection's lock; a tiny seal
    size makes them seal and merge under the readers' feet),
  - readers: vdb-export, vdb-query with a filter on the accounts (graph and exact), and
    vdb-query --count,
  - vdb-snapshot and vdb-compact.
Every read must see the ten accounts with one stamp and the sum 1000 (no part of a batch),
and every record the stamp's batch and the batches before it added (a whole prefix).
Each snapshot restores to a state that satisfies the same. At the end the database holds
every committed batch: the accounts carry the stamp of the last batch to commit, and every
record of every batch is there.

The second test runs the same readers beside one writer that is killed (SIGKILL) at a
random moment of every run, and one that is not: the next writer recovers the log (cutting
a torn frame off) while the readers read. At the end every acknowledged batch is there,
and of a killed run's other batches a prefix at most.

Environment: VDB_BIN, VDB_TORTURE_SECONDS.
"""
import json
import os
import random
import re
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.environ.get("VDB_BIN", os.path.join(HERE, "..", "..", "build", "cmd"))
SECONDS = float(os.environ.get("VDB_TORTURE_SECONDS", "8"))
DIM = 4
ACCOUNTS = 10
NEW_PER_BATCH = 15
BATCH = ACCOUNTS + NEW_PER_BATCH
BATCH_RE = re.compile(r"committed batch \d+: \d+ records? \(lines (\d+)-(\d+)\)")
ENV = dict(os.environ, LC_ALL="C", LANG="C")


def run(argv, input=None):
    p = subprocess.run([os.path.join(BIN, argv[0])] + argv[1:], input=input,
                       capture_output=True, text=True, env=ENV, timeout=300)
    return p.returncode, p.stdout, p.stderr


def batch_lines(stamp, rng):
    """One batch: the accounts' new balances (summing to 1000) and its own new records."""
    cuts = sorted(rng.randrange(1001) for _ in range(ACCOUNTS - 1))
    balances = [b - a for a, b in zip([0] + cuts, cuts + [1000])]
    out = []
    for a, bal in enumerate(balances):
        out.append({"id": "acct-%d" % a, "vector": [a, 0, 0, bal],
                    "payload": {"kind": "acct", "bal": bal, "stamp": stamp}})
    for j in range(NEW_PER_BATCH):
        out.append({"id": "%s/%d" % (stamp, j), "vector": [j, 1, 1, 1],
                    "payload": {"kind": "new", "stamp": stamp}})
    return "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in out)


class InvariantTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="vdb-invariant-")
        self.db = os.path.join(self.tmp, "db")
        rc, _, err = run(["vdb-create", self.db, "--dim", str(DIM), "--metric", "l2",
                          "--seal-size", "8K", "--index-field", "kind:keyword"])
        self.assertEqual(rc, 0, err)
        self.lock = threading.Lock()
        self.order = []      # stamps in commit order, per writer process run
        self.committed = set()
        self.errors = []
        self.reads = {}
        self.killed_runs = []  # the stamps of every killed writer run

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def fail_later(self, msg):
        with self.lock:
            self.errors.append(msg)

    def count(self, what):
        with self.lock:
            self.reads[what] = self.reads.get(what, 0) + 1

    def check_accounts(self, accts, what):
        """accts: {id: payload}. One stamp, sum 1000; returns the stamp."""
        if len(accts) != ACCOUNTS:
            return self.fail_later("%s: %d accounts" % (what, len(accts)))
        stamps = {p["stamp"] for p in accts.values()}
        total = sum(p["bal"] for p in accts.values())
        if len(stamps) != 1 or total != 1000:
            return self.fail_later("%s: part of a batch: stamps %s, sum %d"
                                   % (what, sorted(stamps), total))
        return stamps.pop()

    def check_export(self, out, what):
        accts, news = {}, {}
        for line in out.splitlines():
            r = json.loads(line)
            if r["payload"]["kind"] == "acct":
                accts[r["id"]] = r["payload"]
            else:
                news.setdefault(r["payload"]["stamp"], set()).add(r["id"])
        if not accts and not news:
            return None
        stamp = self.check_accounts(accts, what)
        for s, ids in news.items():
            if len(ids) != NEW_PER_BATCH:
                self.fail_later("%s: batch %s has %d of its %d new records"
                                % (what, s, len(ids), NEW_PER_BATCH))
        if stamp is not None and stamp not in news:
            self.fail_later("%s: the accounts' batch %s added no records" % (what, stamp))
        return stamp

    def writer(self, w, deadline):
        rng = random.Random(w)
        run_no = 0
        while time.monotonic() < deadline:
            stamps = ["w%d-r%d-b%d" % (w, run_no, b) for b in range(rng.randint(1, 8))]
            path = os.path.join(self.tmp, "in-%d.jsonl" % w)
            with open(path, "w") as f:
                f.write("".join(batch_lines(s, rng) for s in stamps))
            rc, _, err = run(["vdb-ingest", "-v", "-b", str(BATCH), self.db, path])
            if rc != 0:
                return self.fail_later("writer %d: exit %d: %s" % (w, rc, err))
            done = max([int(m.group(2)) for m in BATCH_RE.finditer(err)] or [0])
            if done != BATCH * len(stamps):
                return self.fail_later("writer %d: %d lines acknowledged" % (w, done))
            with self.lock:
                # One vdb-ingest holds the lock for its whole run: its batches are contiguous.
                self.order.append((time.monotonic(), stamps))
                self.committed.update(stamps)
            run_no += 1

    def killer(self, w, deadline):
        """A writer killed (SIGKILL) at a random moment of every run. Its acknowledged
        batches are committed; of the rest, any prefix may be (a batch whose fsync finished
        before the kill). The next writer finds the killed one's log end, cuts a torn frame
        off if there is one, and goes on while the readers read."""
        rng = random.Random(1000 + w)
        run_no = 0
        while time.monotonic() < deadline and not self.errors:
            stamps = ["k%d-r%d-b%d" % (w, run_no, b) for b in range(rng.randint(2, 12))]
            path = os.path.join(self.tmp, "kill-%d.jsonl" % w)
            with open(path, "w") as f:
                f.write("".join(batch_lines(s, rng) for s in stamps))
            p = subprocess.Popen([os.path.join(BIN, "vdb-ingest"), "-v", "-b", str(BATCH),
                                  self.db, path], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True, env=ENV)
            time.sleep(rng.choice([0.0, 0.002, rng.uniform(0, 0.05)]))
            p.kill()
            _, err = p.communicate()
            done = max([int(m.group(2)) for m in BATCH_RE.finditer(err)] or [0])
            with self.lock:
                self.killed_runs.append(stamps)
                self.committed.update(stamps[:done // BATCH])
            run_no += 1

    def reader(self, kind, deadline):
        while time.monotonic() < deadline and not self.errors:
            if kind == "export":
                rc, out, err = run(["vdb-export", self.db])
                if rc != 0:
                    return self.fail_later("vdb-export: %s" % err)
                self.check_export(out, "vdb-export")
            elif kind in ("query", "exact"):
                args = ["vdb-query", self.db, "-k", str(ACCOUNTS), "--payload", "--filter",
                        '{"kind":"acct"}', "--vector=[5,0,0,100]"]
                rc, out, err = run(args + (["--exact"] if kind == "exact" else []))
                if rc != 0:
                    return self.fail_later("vdb-query: %s" % err)
                res = json.loads(out)["results"]
                if res:
                    self.check_accounts({r["id"]: r["payload"] for r in res}, "vdb-query " + kind)
            else:
                rc, out, err = run(["vdb-query", self.db, "--count", "--filter",
                                    '{"kind":"new"}'])
                if rc != 0:
                    return self.fail_later("vdb-query --count: %s" % err)
                n = int(json.loads(out)["count"]) if out.startswith("{") else int(out)
                if n % NEW_PER_BATCH:
                    self.fail_later("vdb-query --count: %d new records, not whole batches" % n)
            self.count(kind)

    def snapshotter(self, deadline):
        i = 0
        while time.monotonic() < deadline and not self.errors:
            snap = os.path.join(self.tmp, "s-%d.tar.zst" % i)
            rc, _, err = run(["vdb-snapshot", "-q", self.db, "-o", snap])
            if rc != 0:
                return self.fail_later("vdb-snapshot: %s" % err)
            target = os.path.join(self.tmp, "r-%d" % i)
            rc, _, err = run(["vdb-restore", "-q", snap, target])
            if rc != 0:
                return self.fail_later("vdb-restore: %s" % err)
            rc, out, err = run(["vdb-export", target])
            self.check_export(out, "restored snapshot %d" % i)
            shutil.rmtree(target)
            os.unlink(snap)
            self.count("snapshot")
            i += 1

    def compactor(self, deadline):
        while time.monotonic() < deadline and not self.errors:
            rc, _, err = run(["vdb-compact", "-q", self.db])
            if rc != 0:
                return self.fail_later("vdb-compact: %s" % err)
            self.count("compact")
            time.sleep(0.2)

    def run_all(self, threads):
        """Runs the threads to the end; returns the final export's account stamp and the
        stamps of the batches present, after checking it like every read."""
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(self.errors, [])
        rc, out, err = run(["vdb-export", self.db])
        self.assertEqual(rc, 0, err)
        stamp = self.check_export(out, "final export")
        self.assertEqual(self.errors, [])
        present = {json.loads(l)["payload"]["stamp"] for l in out.splitlines()
                   if '"kind":"new"' in l}
        return stamp, present

    def test_invariant_in_every_read(self):
        deadline = time.monotonic() + SECONDS
        threads = [threading.Thread(target=self.writer, args=(w, deadline)) for w in range(3)]
        threads += [threading.Thread(target=self.reader, args=(k, deadline))
                    for k in ("export", "query", "exact", "count")]
        threads += [threading.Thread(target=self.snapshotter, args=(deadline,)),
                    threading.Thread(target=self.compactor, args=(deadline,))]
        stamp, present = self.run_all(threads)
        # The accounts carry the last batch of the writer run that committed last.
        self.assertIn(stamp, {stamps[-1] for _, stamps in self.order})
        self.assertEqual(present, self.committed)
        rc, out, err = run(["vdb-check", self.db])
        self.assertEqual(rc, 0, out + err)
        print("%d batches committed by %d writer runs; reads: %s"
              % (len(self.committed), len(self.order), self.reads))
        for k in ("export", "query", "exact", "count", "snapshot"):
            self.assertGreater(self.reads.get(k, 0), 0, k)

    def test_invariant_while_writers_are_killed(self):
        deadline = time.monotonic() + SECONDS
        threads = [threading.Thread(target=self.writer, args=(0, deadline)),
                   threading.Thread(target=self.killer, args=(1, deadline))]
        threads += [threading.Thread(target=self.reader, args=(k, deadline))
                    for k in ("export", "query", "count")]
        threads += [threading.Thread(target=self.snapshotter, args=(deadline,))]
        stamp, present = self.run_all(threads)
        # Every acknowledged batch is there; of a killed run's others, a prefix at most.
        self.assertLessEqual(self.committed, present)
        for stamps in self.killed_runs:
            kept = [s in present for s in stamps]
            self.assertEqual(kept, sorted(kept, reverse=True),
                             "a killed run's batches are not a prefix: %s" % stamps)
        killed = {s for stamps in self.killed_runs for s in stamps}
        self.assertLessEqual(present, self.committed | killed)
        self.assertIn(stamp, {st[-1] for _, st in self.order} | killed)
        rc, out, err = run(["vdb-check", self.db])
        self.assertEqual(rc, 0, out + err)
        print("%d killed writer runs, %d whole runs; %d batches present; reads: %s"
              % (len(self.killed_runs), len(self.order), len(present), self.reads))
        for k in ("export", "query", "count", "snapshot"):
            self.assertGreater(self.reads.get(k, 0), 0, k)
        self.assertGreater(len(self.killed_runs), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
