#!/usr/bin/env python3
"""Crash torture: kill -9 at random moments during ingest (with seals and merges: the seal
size is tiny), compaction, snapshot, restore and restore --force, on one database.

After every kill:
  - vdb-check passes on the database;
  - every acknowledged batch is present exactly and no batch is present in part: the
    database equals the state before plus the first L lines of the input, L a batch
    boundary at or after the end of the last batch vdb-ingest reported;
  - a compaction or a snapshot left the content as it was;
  - a snapshot that vdb-snapshot reported written (exit 0) restores to the state it
    captured; a killed one left no archive under its name, or a complete one;
  - a killed restore left its target absent or complete (and with --force: the old
    database or the new one, complete).
At the end every snapshot reported written is restored once more.

Usage: torture.py [ITERATIONS]   (or VDB_TORTURE_ITERATIONS; default 50)
Environment: VDB_BIN (directory of the binaries), VDB_TORTURE_SEED (default: 20261121;
"random" picks one and prints it), VDB_TORTURE_KEEP=1 keeps the directory of a failure.
"""
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.environ.get("VDB_BIN", os.path.join(HERE, "..", "..", "build", "cmd"))
DIM = 8
BATCH_RE = re.compile(r"committed batch \d+: \d+ records? \(lines (\d+)-(\d+)\)")
ENV = dict(os.environ, LC_ALL="C", LANG="C")


class Failure(Exception):
    pass


def exe(name):
    return os.path.join(BIN, name)


def run(argv, input=None):
    p = subprocess.run([exe(argv[0])] + argv[1:], input=input, capture_output=True, text=True,
                       env=ENV, timeout=300)
    return p.returncode, p.stdout, p.stderr


def expect(cond, what):
    if not cond:
        raise Failure(what)


def vector_for(g):
    # Small integers: exact in float32 and in JSON, so states compare exactly.
    return [float((g * (k + 3)) % 1009 - 500) for k in range(DIM)]


def export(db):
    rc, out, err = run(["vdb-export", db])
    expect(rc == 0, "vdb-export %s failed (%d): %s" % (db, rc, err))
    state = {}
    for line in out.splitlines():
        r = json.loads(line)
        key = json.dumps(r["id"])
        expect(key not in state, "%s: id %s exported twice" % (db, key))
        state[key] = (r["vector"], r.get("payload"))
    return state


def digest(state):
    """A fingerprint of a state (the snapshots' states are kept only as fingerprints)."""
    return hashlib.sha256(json.dumps(sorted(state.items())).encode()).hexdigest()


def check(db):
    rc, out, err = run(["vdb-check", db])
    expect(rc == 0, "vdb-check %s failed (%d):\n%s%s" % (db, rc, out, err))


def apply(state, op):
    kind, key, val = op
    if kind == "del":
        state.pop(key, None)
    else:
        state[key] = val


def kill_after(argv, delay):
    """Starts argv, kills it (SIGKILL) after delay seconds; returns (rc, stderr)."""
    p = subprocess.Popen([exe(argv[0])] + argv[1:], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True, env=ENV)
    time.sleep(delay)
    p.kill()  # a no-op if it already finished
    _, err = p.communicate()
    expect(p.returncode in (0, -9), "%s: exit %d\n%s" % (" ".join(argv), p.returncode, err))
    return p.returncode, err


class Torture:
    def __init__(self, tmp, seed):
        self.tmp, self.rng = tmp, random.Random(seed)
        self.db = os.path.join(tmp, "db")
        self.snaps = os.path.join(tmp, "snaps")
        os.mkdir(self.snaps)
        rc, _, err = run(["vdb-create", self.db, "--dim", str(DIM), "--metric", "l2",
                          "--seal-size", "16K"])
        expect(rc == 0, err)
        self.state = {}
        self.g = 1
        self.written = []  # (archive, state it captured)
        self.counts = {}

    def delay(self):
        r = self.rng
        return r.choice([0.0, 0.002, r.uniform(0, 0.03), r.uniform(0, 0.15), r.uniform(0, 0.5)])

    def make_input(self, n):
        rng, lines, ops = self.rng, [], []
        existing = list(self.state)
        # Keep the database small (every iteration exports it): mostly deletes once it grew.
        p_del = 0.15 if len(existing) < 4000 else 0.6
        for j in range(n):
            g = self.g + j
            r = rng.random()
            if existing and r < p_del:
                key = rng.choice(existing)
                lines.append('{"id":%s,"delete":true}' % key)
                ops.append(("del", key, None))
                continue
            if existing and r < p_del + 0.2:
                key = rng.choice(existing)
            else:
                key = json.dumps(g if rng.random() < 0.7 else "s-%d" % g)
            payload = {"g": g}
            rec = {"id": json.loads(key), "vector": vector_for(g), "payload": payload}
            lines.append(json.dumps(rec, separators=(",", ":")))
            ops.append(("put", key, (vector_for(g), payload)))
        self.g += n
        return lines, ops

    def note(self, what):
        self.counts[what] = self.counts.get(what, 0) + 1

    def ingest(self, it):
        n = self.rng.choice([50, 300, 1000, 2500])
        batch = self.rng.choice([1, 3, 25, 100, 400])
        lines, ops = self.make_input(n)
        path = os.path.join(self.tmp, "in.jsonl")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        rc, err = kill_after(["vdb-ingest", "-v", "-b", str(batch), self.db, path], self.delay())
        self.note("ingest " + ("finished" if rc == 0 else "killed"))
        acked = max([int(m.group(2)) for m in BATCH_RE.finditer(err)] or [0])
        expect(rc != 0 or acked == n, "a finished ingest acknowledged %d of %d lines" % (acked, n))
        actual = export(self.db)
        model, done = dict(self.state), 0
        for b in sorted({b for b in range(0, n + 1, batch) if b >= acked} | {n}):
            while done < b:
                apply(model, ops[done])
                done += 1
            if model == actual:
                self.state = actual
                return
        raise Failure("ingest: the database is not the old state plus whole batches of the "
                      "input from line %d on (batch %d, %d lines, exit %d)\n%s"
                      % (acked, batch, n, rc, err))

    def compact(self, it):
        rc, err = kill_after(["vdb-compact", "-q", self.db], self.delay())
        self.note("compact " + ("finished" if rc == 0 else "killed"))
        expect(export(self.db) == self.state, "a compaction changed the content\n" + err)

    def snapshot(self, it):
        out = os.path.join(self.snaps, "s-%04d.tar.zst" % it)
        argv = ["vdb-snapshot", "-q", self.db, "-o", out]
        if self.rng.random() < 0.5:
            argv += ["-T", "2"]
        if self.written and self.rng.random() < 0.3:
            argv += ["--since", self.written[-1][0]]
        rc, err = kill_after(argv, self.delay())
        self.note("snapshot " + ("finished" if rc == 0 else "killed"))
        expect(export(self.db) == self.state, "a snapshot changed the content\n" + err)
        if rc == 0 or os.path.exists(out):
            # Killed after the rename: the archive under its name is complete.
            self.written.append((out, digest(self.state)))
            self.verify_restore(self.written[-1])

    def verify_restore(self, written):
        archive, fingerprint = written
        target = os.path.join(self.tmp, "verify")
        shutil.rmtree(target, ignore_errors=True)
        rc, _, err = run(["vdb-restore", "-q", archive, target])
        expect(rc == 0, "restoring %s failed (%d): %s" % (archive, rc, err))
        expect(digest(export(target)) == fingerprint, "%s restores to other content" % archive)
        check(target)
        shutil.rmtree(target)

    def restore(self, it):
        if not self.written:
            return self.snapshot(it)
        archive, fingerprint = self.rng.choice(self.written)
        force = self.rng.random() < 0.4
        target = os.path.join(self.tmp, "restored")
        old = None
        if force and os.path.isdir(target) and os.listdir(target):
            old = export(target)
        else:
            force = False
            shutil.rmtree(target, ignore_errors=True)
        argv = ["vdb-restore", "-q"] + (["--force"] if force else []) + [archive, target]
        rc, err = kill_after(argv, self.delay())
        self.note("restore%s %s" % (" --force" if force else "",
                                    "finished" if rc == 0 else "killed"))
        if rc == 0 or (os.path.isdir(target) and os.listdir(target)):
            got = export(target)
            expect(digest(got) == fingerprint or (old is not None and rc != 0 and got == old),
                   "a restore (exit %d) left its target incomplete or wrong\n%s" % (rc, err))
            check(target)
        else:
            expect(old is None, "a killed restore --force removed the old database")
        # A killed restore leaves at most its hidden temporary directory, and the next restore
        # to the same target that runs to its end removes it.
        left = [f for f in os.listdir(self.tmp) if f.startswith(".restored.restore-")]
        expect(rc != 0 or not left, "a finished restore left %s beside its target" % left)

    def iterate(self, it):
        r = self.rng.random()
        if not self.state or r < 0.45:
            self.ingest(it)
        elif r < 0.6:
            self.compact(it)
        elif r < 0.8:
            self.snapshot(it)
        else:
            self.restore(it)
        check(self.db)
        # Readers work on whatever the kill left (possibly a torn log tail).
        rc, out, err = run(["vdb-query", self.db, "-k", "3",
                            "--vector=%s" % json.dumps(vector_for(7))])
        expect(rc == 0, "vdb-query failed: " + err)
        expect(len(json.loads(out)["results"]) == min(3, len(self.state)), "vdb-query: " + out)

    def finish(self):
        # A last, uninterrupted ingest recovers and adds on top of everything.
        lines, ops = self.make_input(200)
        rc, _, err = run(["vdb-ingest", "-q", self.db], input="\n".join(lines) + "\n")
        expect(rc == 0, err)
        for op in ops:
            apply(self.state, op)
        expect(export(self.db) == self.state, "the final ingest")
        check(self.db)
        for w in self.written:
            self.verify_restore(w)


def main():
    iterations = int(sys.argv[1] if len(sys.argv) > 1 else
                     os.environ.get("VDB_TORTURE_ITERATIONS", "50"))
    seed = os.environ.get("VDB_TORTURE_SEED", "20261121")
    seed = random.randrange(1 << 32) if seed == "random" else int(seed)
    tmp = tempfile.mkdtemp(prefix="vdb-torture-")
    t0 = time.monotonic()
    t = Torture(tmp, seed)
    it = -1
    try:
        for it in range(iterations):
            t.iterate(it)
            if (it + 1) % 100 == 0 and it + 1 < iterations:
                print("torture: %d iterations, %.0f s" % (it + 1, time.monotonic() - t0),
                      flush=True)
        t.finish()
    except Failure as e:
        print("torture: FAILED at iteration %d of %d (VDB_TORTURE_SEED=%d): %s"
              % (it, iterations, seed, e), file=sys.stderr)
        if os.environ.get("VDB_TORTURE_KEEP") == "1":
            print("torture: kept %s" % tmp, file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
        return 1
    shutil.rmtree(tmp, ignore_errors=True)
    print("torture: %d iterations passed (VDB_TORTURE_SEED=%d) in %.0f s: %s; %d records, "
          "%d snapshots written and restored"
          % (iterations, seed, time.monotonic() - t0,
             ", ".join("%s %d" % kv for kv in sorted(t.counts.items())), len(t.state),
             len(t.written)))
    killed = sum(v for k, v in t.counts.items() if k.endswith("killed"))
    if iterations >= 20 and killed < iterations // 4:
        print("torture: only %d of %d runs were really killed" % (killed, iterations),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
