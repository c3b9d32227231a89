#!/usr/bin/env python3
"""A real full disk: a 4 MB tmpfs (mounted in a private user and mount namespace with
unshare(1), so no privileges are needed where user namespaces are allowed; skipped visibly
where they are not).

Ingest until the file system is full: vdb-ingest fails with exit 74 and "No space left on
device", every batch it acknowledged is there exactly and no other, vdb-check passes, and
queries work. A snapshot, a compaction and a restore on the full disk fail the same way and
leave nothing half-written behind. Once space is freed, ingest (with the batch that failed)
and compaction succeed.

Environment: VDB_BIN.
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
DIM = 64
SIZE = "4m"
BATCH = 50
BATCH_RE = re.compile(r"committed batch \d+: \d+ records? \(lines (\d+)-(\d+)\)")
ENV = dict(os.environ, LC_ALL="C", LANG="C")
NOSPC = "No space left on device"


def exe(name):
    return os.path.join(BIN, name)


def run(argv, input=None):
    p = subprocess.run([exe(argv[0])] + argv[1:], input=input, capture_output=True, text=True,
                       env=ENV, timeout=300)
    return p.returncode, p.stdout, p.stderr


def records(g0, n):
    return [{"id": g, "vector": [float((g * (k + 1)) % 251 - 125) for k in range(DIM)],
             "payload": {"g": g, "pad": "x" * 200}} for g in range(g0, g0 + n)]


def lines(recs):
    return "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in recs)


def exported_ids(db):
    rc, out, err = run(["vdb-export", db])
    assert rc == 0, err
    return [json.loads(l)["id"] for l in out.splitlines()]


class DiskFullTest(unittest.TestCase):
    """Runs inside the namespace, on the tmpfs mounted at $VDB_DISKFULL_DIR."""

    def setUp(self):
        self.dir = os.environ["VDB_DISKFULL_DIR"]
        self.db = os.path.join(self.dir, "db")
        self.ballast = os.path.join(self.dir, "ballast")

    def assert_nospc(self, rc, err, what):
        self.assertEqual(rc, 74, "%s: exit %d\n%s" % (what, rc, err))
        self.assertIn(NOSPC, err, what)
        self.assertTrue(err.strip().splitlines()[-1].startswith(what + ": "), err)

    def assert_sound(self, want_ids):
        rc, out, err = run(["vdb-check", self.db])
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(sorted(exported_ids(self.db)), sorted(want_ids))
        rc, out, err = run(["vdb-query", self.db, "-k", "2", "--vector=%s" % json.dumps(
            records(1, 1)[0]["vector"])])
        self.assertEqual(rc, 0, err)

    def test_full_disk(self):
        rc, _, err = run(["vdb-create", self.db, "--dim", str(DIM), "--metric", "l2",
                          "--seal-size", "256K"])
        self.assertEqual(rc, 0, err)
        with open(self.ballast, "wb") as f:  # freed later, as an administrator would
            f.write(b"\0" * (2 << 20))  # compaction needs room for a copy of the data
        acked, g, failed_input = [], 1, None
        for _ in range(200):
            recs = records(g, 400)
            rc, _, err = run(["vdb-ingest", "-v", "-b", str(BATCH), self.db], input=lines(recs))
            done = max([int(m.group(2)) for m in BATCH_RE.finditer(err)] or [0])
            acked += [r["id"] for r in recs[:done]]
            if rc != 0:
                self.assert_nospc(rc, err, "vdb-ingest")
                # Acknowledged batches are all there; the failed one is not there in part.
                ids = exported_ids(self.db)
                extra = sorted(set(ids) - set(acked))
                self.assertTrue(extra == [] or extra == [r["id"] for r in recs[done:done + BATCH]],
                                "a partial batch is visible: %s" % extra[:5])
                acked += extra
                failed_input = recs[done + len(extra):]
                break
            g += 400
        self.assertIsNotNone(failed_input, "the disk never filled up")
        self.assert_sound(acked)

        # On the full disk: a snapshot, a compaction and a restore fail cleanly.
        snap = os.path.join(self.dir, "s.tar.zst")
        rc, _, err = run(["vdb-snapshot", "-l", "1", self.db, "-o", snap])
        if rc != 0:
            self.assert_nospc(rc, err, "vdb-snapshot")
            self.assertEqual([f for f in os.listdir(self.dir) if f.startswith("s.tar")], [])
        rc, _, err = run(["vdb-compact", self.db])
        self.assert_nospc(rc, err, "vdb-compact")
        self.assert_sound(acked)
        outside = tempfile.mkdtemp(prefix="vdb-diskfull-")
        try:
            big = os.path.join(outside, "big.tar.zst")
            rc, _, err = run(["vdb-snapshot", "-q", "-l", "1", self.db, "-o", big])
            self.assertEqual(rc, 0, err)
            rc, _, err = run(["vdb-restore", big, os.path.join(self.dir, "restored")])
            self.assert_nospc(rc, err, "vdb-restore")
            self.assertEqual(sorted(f for f in os.listdir(self.dir) if "restore" in f), [])
        finally:
            shutil.rmtree(outside)
        self.assertEqual([f for f in os.listdir(os.path.join(self.db, "default"))
                          if ".tmp" in f], [])

        # Space freed: the failed input goes in, and compaction works.
        os.unlink(self.ballast)
        if os.path.exists(snap):
            os.unlink(snap)
        rc, _, err = run(["vdb-ingest", "-q", self.db], input=lines(failed_input))
        self.assertEqual(rc, 0, err)
        acked += [r["id"] for r in failed_input]
        rc, _, err = run(["vdb-compact", "-q", self.db])
        self.assertEqual(rc, 0, err)
        self.assert_sound(acked)
        print("disk full after %d records; recovered to %d" % (len(acked) - len(failed_input),
                                                               len(acked)))


def outer():
    """Mounts the tmpfs in a new user and mount namespace and runs the test inside."""
    unshare = shutil.which("unshare")
    if not unshare:
        print("SKIP: unshare(1) is not installed: no size-limited file system")
        return 77
    mnt = tempfile.mkdtemp(prefix="vdb-diskfull-mnt-")
    try:
        probe = subprocess.run([unshare, "-Urm", "sh", "-c",
                                'mount -t tmpfs -o size=%s tmpfs "$0"' % SIZE, mnt],
                               capture_output=True, text=True)
        if probe.returncode != 0:
            print("SKIP: cannot mount a tmpfs in a user namespace here (%s)"
                  % probe.stderr.strip())
            return 77
        env = dict(os.environ, VDB_DISKFULL_DIR=mnt, VDB_BIN=os.path.abspath(BIN))
        p = subprocess.run([unshare, "-Urm", "sh", "-c",
                            'mount -t tmpfs -o size=%s tmpfs "$1" && exec "$0" "$2" --inside'
                            % SIZE, sys.executable, mnt, os.path.abspath(__file__)], env=env)
        return p.returncode
    finally:
        shutil.rmtree(mnt, ignore_errors=True)


if __name__ == "__main__":
    if "--inside" in sys.argv:
        sys.argv.remove("--inside")
        unittest.main(verbosity=2)
    else:
        sys.exit(outer())
