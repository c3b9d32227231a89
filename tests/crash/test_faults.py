#!/usr/bin/env python3
"""Fault injection: every file system call of an ingest (with seals and merges), a
compaction, a snapshot and a restore fails once, in turn, with EIO or ENOSPC.

The LD_PRELOAD shim faultshim.c ($VDB_FAULTSHIM) counts the write, pwrite, fsync, fdatasync,
rename, open, mmap, ftruncate and mkdir calls a command makes on files under the test's
directory, and makes the Nth fail. For every N from 1 to the number of calls a clean run
makes (errno alternating between EIO and ENOSPC), starting from the same database:

  - the command exits 74 with a message naming the error, or 0 when the call was harmless
    (never 0 after a failed fsync, fdatasync, write or rename: that would be a failure
    reported as success);
  - nothing acknowledged is lost and nothing half-written is visible: the database is the
    old one plus a whole-batch prefix of the input at or after the last batch vdb-ingest
    reported (a compaction or a snapshot leaves the content as it was); vdb-check passes;
    no temporary file is left behind; a failed snapshot leaves no archive, a failed restore
    no target (and, with --force, the old database);
  - the next run, without faults, succeeds and gives the expected content.

Environment: VDB_BIN, VDB_FAULTSHIM.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.environ.get("VDB_BIN", os.path.join(HERE, "..", "..", "build", "cmd"))
SHIM = os.environ.get("VDB_FAULTSHIM",
                      os.path.join(HERE, "..", "..", "build", "tests", "crash", "libvdbfault.so"))
DIM = 4
BATCH_RE = re.compile(r"committed batch \d+: \d+ records? \(lines (\d+)-(\d+)\)")
ERRNO_TEXT = {"EIO": "Input/output error", "ENOSPC": "No space left on device"}
# A failure of one of these calls can never be harmless: the data it was to write (or make
# durable, or put in place) is not where the command would report it.
MUST_FAIL = ("write", "pwrite", "writev", "fsync", "fdatasync", "rename", "renameat",
             "renameat2")
ENV = dict(os.environ, LC_ALL="C", LANG="C")
# Under AddressSanitizer (scripts/test --sanitize) the shim comes before ASan's runtime.
ENV["ASAN_OPTIONS"] = ENV.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"
for k in ("LD_PRELOAD", "VDB_FAULT_DIR", "VDB_FAULT_N", "VDB_FAULT_LOG", "VDB_FAULT_ERRNO",
          "VDB_FAULT_CALLS"):
    ENV.pop(k, None)


def exe(name):
    return os.path.join(BIN, name)


def run(argv, input=None):
    p = subprocess.run([exe(argv[0])] + argv[1:], input=input, capture_output=True, text=True,
                       env=ENV, timeout=120)
    return p.returncode, p.stdout, p.stderr


def vector_for(g):
    return [float((g * (k + 3)) % 1009 - 500) for k in range(DIM)]


def export(db):
    rc, out, err = run(["vdb-export", db])
    if rc != 0:
        raise AssertionError("vdb-export %s failed (%d): %s" % (db, rc, err))
    state = {}
    for line in out.splitlines():
        r = json.loads(line)
        key = json.dumps(r["id"])
        assert key not in state, "id %s exported twice" % key
        state[key] = (r["vector"], r.get("payload"))
    return state


def check(tc, db, what):
    rc, out, err = run(["vdb-check", db])
    tc.assertEqual(rc, 0, "%s: vdb-check failed:\n%s%s" % (what, out, err))


def temp_files(top):
    found = []
    for d, dirs, files in os.walk(top):
        found += [os.path.join(d, f) for f in files + dirs if ".tmp" in f]
    return found


class FaultRun:
    """One run of a command with the Nth counted call failing (n = 0: none)."""

    def __init__(self, tmp, argv, n, errno_name="EIO", calls="all"):
        log = os.path.join(tmp, "..", "fault-%d.log" % os.getpid())
        log = os.path.abspath(log)
        if os.path.exists(log):
            os.unlink(log)
        env = dict(ENV, LD_PRELOAD=SHIM, VDB_FAULT_DIR=tmp, VDB_FAULT_N=str(n),
                   VDB_FAULT_ERRNO=errno_name, VDB_FAULT_LOG=log, VDB_FAULT_CALLS=calls)
        p = subprocess.run([exe(argv[0])] + argv[1:], capture_output=True, text=True, env=env,
                           timeout=120)
        self.rc, self.out, self.err = p.returncode, p.stdout, p.stderr
        self.errno_name = errno_name
        with open(log) as f:
            lines = f.read().splitlines()
        os.unlink(log)
        self.calls = max(int(l.split()[1]) for l in lines if l.startswith("calls "))
        inj = [l.split(" ", 3) for l in lines if l.startswith("injected ")]
        self.kind, self.path = (inj[0][2], inj[0][3]) if inj else (None, None)

    def describe(self):
        return "fault %s on %s %s: exit %d\n%s" % (self.errno_name, self.kind, self.path,
                                                  self.rc, self.err)


@unittest.skipUnless(os.path.exists(SHIM), "the fault injection shim is not built")
class FaultTest(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="vdb-faults-")
        self.tmp = os.path.join(self.root, "t")  # only calls under here fail
        os.mkdir(self.tmp)
        self.base = os.path.join(self.root, "base")
        self.db = os.path.join(self.tmp, "db")
        rc, _, err = run(["vdb-create", self.base, "--dim", str(DIM), "--metric", "l2",
                          "--seal-size", "4K"])
        self.assertEqual(rc, 0, err)
        self.state = {}
        self.ingest_base(self.make_ops(1, 120, 0)[0])

    def tearDown(self):
        shutil.rmtree(self.root, ignore_errors=True)

    def ingest_base(self, lines):
        rc, _, err = run(["vdb-ingest", "-q", "-b", "30", self.base], input="".join(lines))
        self.assertEqual(rc, 0, err)
        self.state = export(self.base)

    def make_ops(self, g0, n, every_other):
        """n lines: new ids, and with every_other > 0 replacements and deletes of old ids."""
        lines, ops = [], []
        old = sorted(self.state)
        for j in range(n):
            g = g0 + j
            if every_other and old and j % every_other == 1:
                key = old[(j * 7) % len(old)]
                lines.append('{"id":%s,"delete":true}\n' % key)
                ops.append(("del", key, None))
                continue
            key = old[(j * 5) % len(old)] if every_other and old and j % every_other == 2 \
                else json.dumps(g if j % 3 else "s-%d" % g)
            rec = {"id": json.loads(key), "vector": vector_for(g), "payload": {"g": g}}
            lines.append(json.dumps(rec, separators=(",", ":")) + "\n")
            ops.append(("put", key, (vector_for(g), {"g": g})))
        return lines, ops

    def fresh_db(self):
        shutil.rmtree(self.tmp)
        os.mkdir(self.tmp)
        shutil.copytree(self.base, self.db, symlinks=True)

    def assert_failure_clean(self, r, cmd):
        """The command either failed with exit 74 and a message, or the call was harmless."""
        self.assertIsNotNone(r.kind, "no fault was injected:\n" + r.err)
        if r.rc == 0:
            # The process id a writer puts in its LOCK file is only information for people.
            if not r.path.endswith("/LOCK"):
                self.assertNotIn(r.kind, MUST_FAIL, "failure reported as success: " + r.describe())
            return False
        self.assertEqual(r.rc, 74, r.describe())
        last = r.err.strip().splitlines()[-1] if r.err.strip() else ""
        self.assertTrue(last.startswith(cmd + ": ") and ERRNO_TEXT[r.errno_name] in r.err,
                        "unclear message: " + r.describe())
        return True

    def loop(self, cmd_argv, verify, prepare=None, calls="all"):
        """Runs cmd_argv once cleanly to count its calls (of the kinds `calls` names), then
        once per call with that call failing; verify(run, failed) checks the outcome.
        Returns (calls, failures)."""
        self.fresh_db()
        if prepare:
            prepare()
        clean = FaultRun(self.tmp, cmd_argv, 0, calls=calls)
        self.assertEqual(clean.rc, 0, clean.describe())
        self.assertGreater(clean.calls, 4)
        failures = 0
        for n in range(1, clean.calls + 1):
            self.fresh_db()
            if prepare:
                prepare()
            r = FaultRun(self.tmp, cmd_argv, n, "ENOSPC" if n % 2 == 0 else "EIO", calls)
            with self.subTest(n=n, kind=r.kind, path=r.path):
                failed = self.assert_failure_clean(r, cmd_argv[0])
                failures += failed
                verify(r, failed)
        return clean.calls, failures

    def test_ingest_with_seals_and_merges(self):
        calls, failures = self.ingest_loop(*self.make_ops(1000, 150, 4), 25)
        print("ingest: %d calls, %d failed cleanly, the rest harmless" % (calls, failures))
        self.assertGreater(failures, calls // 2)

    def test_ingest_that_settles(self):
        # 1,100 new records: the load ends by giving its flat seals and log a graph.
        calls, failures = self.ingest_loop(*self.make_ops(1000, 1100, 0), 100)
        print("settling ingest: %d calls, %d failed cleanly, the rest harmless" % (calls, failures))
        self.assertGreater(failures, calls // 2)
        self.fresh_db()
        rc, _, err = run(["vdb-ingest", "-q", "-b", "100", self.db,
                          os.path.join(self.root, "in.jsonl")])
        self.assertEqual(rc, 0, err)
        rc, out, err = run(["vdb-info", "--json", self.db])
        self.assertEqual(rc, 0, err)
        info = json.loads(out)
        self.assertEqual((info["graphs"], info["log_records"]), (info["segments"], 0), info)

    def ingest_loop(self, lines, ops, batch):
        path = os.path.join(self.root, "in.jsonl")
        with open(path, "w") as f:
            f.write("".join(lines))
        final = dict(self.state)
        for kind, key, val in ops:
            final.pop(key, None) if kind == "del" else final.__setitem__(key, tuple(val))

        def verify(r, failed):
            acked = max([int(m.group(2)) for m in BATCH_RE.finditer(r.err)] or [0])
            actual = export(self.db)
            model, done, matched = dict(self.state), 0, None
            for b in sorted({b for b in range(0, len(ops) + 1, batch) if b >= acked} | {len(ops)}):
                while done < b:
                    kind, key, val = ops[done]
                    model.pop(key, None) if kind == "del" else model.__setitem__(key, tuple(val))
                    done += 1
                if {k: (v[0], v[1]) for k, v in model.items()} == actual:
                    matched = b
                    break
            self.assertIsNotNone(matched, "not the old state plus whole batches from line %d "
                                 "on: %s" % (acked, r.describe()))
            if not failed:
                self.assertEqual(matched, len(ops), r.describe())
            check(self, self.db, r.describe())
            # The next run recovers and applies the whole input.
            rc, _, err = run(["vdb-ingest", "-q", "-b", str(batch), self.db, path])
            self.assertEqual(rc, 0, err)
            self.assertEqual(export(self.db), final)
            check(self, self.db, "after recovery")
            self.assertEqual(temp_files(self.db), [], "after recovery")

        return self.loop(["vdb-ingest", "-v", "-b", str(batch), self.db, path], verify)

    def test_parquet_load_stored_as_a_segment(self):
        # A Parquet file's rows (new integer ids, and replacements of old ones) go in as one
        # block written directly as a segment, never logged: a fault anywhere leaves the
        # old state or the old state plus every row.
        old = sorted(k for k in self.state if not k.startswith('"'))
        rows = {}
        for j in range(400):
            key = old[(j * 5) % len(old)] if j % 5 == 2 else json.dumps(3000 + j)
            rows[key] = (vector_for(5000 + j), {"p": j} if j % 2 else None)
        src = os.path.join(self.root, "pq-src")
        rc, _, err = run(["vdb-create", src, "--dim", str(DIM), "--metric", "l2"])
        self.assertEqual(rc, 0, err)
        lines = "".join(json.dumps({"id": json.loads(k), "vector": v,
                                    **({"payload": p} if p else {})}) + "\n"
                        for k, (v, p) in rows.items())
        rc, _, err = run(["vdb-ingest", "-q", src], input=lines)
        self.assertEqual(rc, 0, err)
        path = os.path.join(self.root, "in.parquet")
        rc, _, err = run(["vdb-export", src, "-o", path, "--row-group-rows", "150"])
        self.assertEqual(rc, 0, err)
        final = dict(self.state)
        final.update(rows)

        def verify(r, failed):
            actual = export(self.db)
            self.assertIn(actual, (self.state, final) if failed else (final,), r.describe())
            check(self, self.db, r.describe())
            rc, _, err = run(["vdb-ingest", "-q", self.db, path])  # the next run: all of it
            self.assertEqual(rc, 0, err)
            self.assertEqual(export(self.db), final)
            check(self, self.db, "after recovery")
            self.assertEqual(temp_files(self.db), [], "after recovery")

        calls, failures = self.loop(["vdb-ingest", "-v", self.db, path], verify)
        print("Parquet ingest: %d calls, %d failed cleanly, the rest harmless" % (calls, failures))
        self.assertGreater(failures, calls // 2)

    def test_failed_commit_while_input_waits(self):
        # JSON lines are parsed on the main thread and committed on a second one. A commit
        # that fails while the main thread waits for more input (a producer that stays
        # open) must end the run at once with the error, not when the input ends.
        self.fresh_db()
        lines, _ = self.make_ops(1, 40, 0)
        log = os.path.join(self.root, "fault-wait.log")
        env = dict(ENV, LD_PRELOAD=SHIM, VDB_FAULT_DIR=self.tmp, VDB_FAULT_N="1",
                   VDB_FAULT_CALLS="fsync", VDB_FAULT_ERRNO="EIO", VDB_FAULT_LOG=log,
                   VDB_THREADS="2")
        p = subprocess.Popen([exe("vdb-ingest"), "-v", self.db], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        try:
            p.stdin.write("".join(lines))
            p.stdin.flush()  # and the pipe stays open
            rc = p.wait(timeout=20)
        finally:
            if p.poll() is None:
                p.kill()
            p.stdin.close()
        err = p.stderr.read()
        p.stdout.close()
        p.stderr.close()
        self.assertEqual(rc, 74, err)
        self.assertRegex(err, r"(?m)^vdb-ingest: .*Input/output error$")
        self.assertNotIn("committed batch", err)
        self.assertIn("0 records committed", err)
        self.assertEqual(export(self.db), self.state)
        check(self, self.db, "after the failed commit")

    def test_export_no_sync_skips_the_fsyncs(self):
        # vdb-export -o fsyncs the file and its directory (a failing fsync is an error, and
        # nothing appears); --no-sync makes no fsync at all, as cp(1), and the file is the
        # same.
        self.fresh_db()
        out = os.path.join(self.tmp, "out.npy")
        env = dict(ENV, LD_PRELOAD=SHIM, VDB_FAULT_DIR=self.tmp, VDB_FAULT_N="1",
                   VDB_FAULT_CALLS="fsync", VDB_FAULT_ERRNO="EIO")
        argv = [exe("vdb-export"), self.db, "-q", "-o", out]
        p = subprocess.run(argv, capture_output=True, text=True, env=env)
        self.assertEqual(p.returncode, 74, p.stderr)
        self.assertRegex(p.stderr, r"^vdb-export: fsync .*out\.npy\.tmp-\d+: Input/output error\n$")
        self.assertFalse(os.path.exists(out))
        self.assertEqual(temp_files(self.tmp), [])
        p = subprocess.run(argv + ["--no-sync"], capture_output=True, text=True, env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        want = subprocess.run(argv[:3] + ["-o", "-", "-f", "npy"], capture_output=True,
                              env=ENV).stdout
        with open(out, "rb") as f:
            self.assertEqual(f.read(), want)

    def test_compaction(self):
        # Deletes and replacements in the log tail and in several segments.
        lines, _ = self.make_ops(2000, 60, 3)
        rc, _, err = run(["vdb-ingest", "-q", "-b", "7", self.base], input="".join(lines))
        self.assertEqual(rc, 0, err)
        self.state = export(self.base)

        def verify(r, failed):
            self.assertEqual(export(self.db), self.state, r.describe())
            check(self, self.db, r.describe())
            if failed:
                self.assertEqual(temp_files(self.db), [], r.describe())
            rc, _, err = run(["vdb-compact", "-q", self.db])
            self.assertEqual(rc, 0, err)
            self.assertEqual(export(self.db), self.state)
            self.assertEqual(len([f for f in os.listdir(os.path.join(self.db, "default"))
                                  if f.startswith("seg-")]), 1)

        calls, failures = self.loop(["vdb-compact", self.db], verify)
        print("compaction: %d calls, %d failed cleanly" % (calls, failures))
        self.assertGreater(failures, calls // 2)

    def test_conversion_to_quantized_codes(self):
        # vdb-compact --quantize int8: CONFIG replaced, then every segment rewritten with
        # codes. A failure anywhere leaves the content, a sound collection, and CONFIG with
        # the old kind or the new one; the next run finishes the conversion.
        lines, _ = self.make_ops(2000, 60, 3)
        rc, _, err = run(["vdb-ingest", "-q", "-b", "7", self.base], input="".join(lines))
        self.assertEqual(rc, 0, err)
        self.state = export(self.base)

        def info():
            rc, out, err = run(["vdb-info", "--json", self.db])
            self.assertEqual(rc, 0, err)
            return json.loads(out)

        def verify(r, failed):
            self.assertEqual(export(self.db), self.state, r.describe())
            check(self, self.db, r.describe())
            self.assertIn(info()["quantize"], ("none", "int8"), r.describe())
            if failed:
                self.assertEqual(temp_files(self.db), [], r.describe())
            rc, _, err = run(["vdb-compact", "-q", "--quantize", "int8", self.db])
            self.assertEqual(rc, 0, err)
            self.assertEqual(export(self.db), self.state)
            i = info()
            self.assertEqual((i["quantize"], i["coded"], i["segments"]), ("int8", 1, 1), i)

        calls, failures = self.loop(["vdb-compact", "--quantize", "int8", self.db], verify)
        print("conversion to int8 codes: %d calls, %d failed cleanly" % (calls, failures))
        self.assertGreater(failures, calls // 2)

    def test_drop_and_rename(self):
        # A failing call of vdb-drop leaves the collection whole (the same content, vdb-check
        # passes) or gone; of vdb-rename, whole under one name or the other. Either way the
        # next run succeeds, and what a failed drop left is removed by the next create.
        def names():
            rc, out, err = run(["vdb-info", "--list", self.db])
            self.assertEqual(rc, 0, err)
            return out.split()

        def whole(name, r):
            rc, out, err = run(["vdb-export", self.db, "-c", name])
            self.assertEqual(rc, 0, err)
            got = {json.dumps(json.loads(l)["id"]): (json.loads(l)["vector"],
                                                     json.loads(l).get("payload"))
                   for l in out.splitlines()}
            self.assertEqual(got, self.state, r.describe())
            check(self, self.db, r.describe())

        def verify_drop(r, failed):
            if names() == ["default"]:
                whole("default", r)
                rc, _, err = run(["vdb-drop", "-q", self.db, "-c", "default"])
                self.assertEqual(rc, 0, err)
            self.assertEqual(names(), [], r.describe())
            rc, _, err = run(["vdb-create", self.db, "-c", "again", "--dim", "2", "--metric",
                              "l2"])
            self.assertEqual(rc, 0, err)
            self.assertEqual([e for e in os.listdir(self.db) if e.startswith(".")], [],
                             r.describe())

        def verify_rename(r, failed):
            now = names()
            self.assertIn(now, (["default"], ["renamed"]), r.describe())
            whole(now[0], r)
            if now == ["default"]:
                rc, _, err = run(["vdb-rename", "-q", self.db, "-c", "default", "renamed"])
                self.assertEqual(rc, 0, err)
            self.assertEqual(names(), ["renamed"])
            whole("renamed", r)

        calls, failures = self.loop(["vdb-drop", self.db, "-c", "default"], verify_drop)
        print("drop: %d calls, %d failed cleanly" % (calls, failures))
        self.assertGreater(failures, 2)
        calls, failures = self.loop(["vdb-rename", self.db, "-c", "default", "renamed"],
                                    verify_rename)
        print("rename: %d calls, %d failed cleanly" % (calls, failures))
        self.assertGreater(failures, 2)

    def test_snapshot(self):
        out = os.path.join(self.tmp, "snaps", "s.tar.zst")

        def prepare():
            os.mkdir(os.path.dirname(out))

        def verify(r, failed):
            self.assertEqual(export(self.db), self.state, r.describe())
            check(self, self.db, r.describe())
            snaps = os.listdir(os.path.dirname(out))
            if failed and snaps == []:
                rc, _, err = run(["vdb-snapshot", "-q", self.db, "-o", out])
                self.assertEqual(rc, 0, err)
            else:
                # Only a failure after the rename (syncing the directory) leaves the archive;
                # it is complete, as the restore below proves.
                self.assertTrue(not failed or r.path == os.path.dirname(out), r.describe())
                self.assertEqual(snaps, ["s.tar.zst"], r.describe())
            target = os.path.join(self.root, "restored")
            shutil.rmtree(target, ignore_errors=True)
            rc, _, err = run(["vdb-restore", "-q", out, target])
            self.assertEqual(rc, 0, err)
            self.assertEqual(export(target), self.state)

        calls, failures = self.loop(["vdb-snapshot", self.db, "-T", "2", "-o", out], verify,
                                    prepare)
        print("snapshot: %d calls, %d failed cleanly" % (calls, failures))
        self.assertGreater(failures, calls // 2)

    def test_prune(self):
        # Three chains (a full snapshot and incrementals on it); --keep-last 2 keeps the
        # newest chain and removes the other five files. Whichever removal fails, every
        # incremental left still has its base (removals go newest first), and the next
        # prune finishes the job.
        d = os.path.join(self.tmp, "snaps")
        chains = [("a0", None), ("a1", "a0"), ("a2", "a0"), ("b0", None), ("b1", "b0"),
                  ("c0", None), ("c1", "c0")]

        def prepare():
            os.mkdir(d)
            for name, base in chains:
                argv = ["vdb-snapshot", "-q", self.db, "-o", os.path.join(d, name + ".tar.zst")]
                rc, _, err = run(argv + (["--since", os.path.join(d, base + ".tar.zst")]
                                         if base else []))
                self.assertEqual(rc, 0, err)

        def verify(r, failed):
            rc, out, err = run(["vdb-snapshot", "--list", d])
            self.assertEqual(rc, 0, err)
            self.assertNotIn("base missing", out, r.describe())
            rc, _, err = run(["vdb-snapshot", "--prune", d, "--keep-last", "2"])
            self.assertEqual(rc, 0, err)
            self.assertEqual(sorted(os.listdir(d)), ["c0.tar.zst", "c1.tar.zst"], r.describe())

        calls, failures = self.loop(["vdb-snapshot", "--prune", d, "--keep-last", "2"], verify,
                                    prepare, calls="unlink")
        print("prune: %d calls, %d failed cleanly" % (calls, failures))
        self.assertEqual((calls, failures), (5, 5))

    def snapshot_file(self):
        snap = os.path.join(self.root, "s.tar.zst")
        if not os.path.exists(snap):
            rc, _, err = run(["vdb-snapshot", "-q", self.base, "-o", snap])
            self.assertEqual(rc, 0, err)
        return snap

    def test_restore(self):
        snap = self.snapshot_file()
        target = os.path.join(self.tmp, "restored")

        def verify(r, failed):
            left = sorted(os.listdir(self.tmp))
            if failed and left == ["db"]:
                rc, _, err = run(["vdb-restore", "-q", snap, target])
                self.assertEqual(rc, 0, err)
            else:
                # Only a failure after the rename (syncing the parent directory) leaves the
                # target, and it is complete.
                self.assertTrue(not failed or r.path == self.tmp, r.describe())
                self.assertEqual(left, ["db", "restored"], r.describe())
            self.assertEqual(export(target), self.state, r.describe())
            check(self, target, r.describe())

        calls, failures = self.loop(["vdb-restore", snap, target], verify)
        print("restore: %d calls, %d failed cleanly" % (calls, failures))
        self.assertGreater(failures, calls // 2)

    def test_restore_force_over_a_database(self):
        snap = self.snapshot_file()
        other = os.path.join(self.tmp, "other")
        old_state = {json.dumps(7): ([1.0, 2.0, 3.0, 4.0], None)}

        def prepare():
            rc, _, err = run(["vdb-create", other, "--dim", str(DIM), "--metric", "l2"])
            self.assertEqual(rc, 0, err)
            rc, _, err = run(["vdb-ingest", "-q", other], input='{"id":7,"vector":[1,2,3,4]}\n')
            self.assertEqual(rc, 0, err)

        def verify(r, failed):
            actual = export(other)
            if failed:
                # The swap is one atomic step: the old database or the new, complete one.
                self.assertIn(actual, (old_state, self.state), r.describe())
                self.assertEqual(sorted(os.listdir(self.tmp)), ["db", "other"],
                                 "a failed restore left files: " + r.describe())
                rc, _, err = run(["vdb-restore", "-q", "--force", snap, other])
                self.assertEqual(rc, 0, err)
                actual = export(other)
            self.assertEqual(actual, self.state, r.describe())
            check(self, other, r.describe())

        calls, failures = self.loop(["vdb-restore", "--force", snap, other], verify, prepare)
        print("restore --force: %d calls, %d failed cleanly" % (calls, failures))
        self.assertGreater(failures, calls // 2)


if __name__ == "__main__":
    unittest.main(verbosity=2)
