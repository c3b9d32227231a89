#!/usr/bin/env python3
"""vdb-drop and vdb-rename: what they change, what they refuse (exit codes and messages), the
writer lock, and processes that have the collection open. Kill -9 and failing system calls
are tests/crash (test_crash.py, test_faults.py)."""

import fcntl
import json
import os
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vdbtest  # noqa: E402
from vdbtest import (EXIT_CANTCREAT, EXIT_LOCKED, EXIT_NOINPUT, run)  # noqa: E402

RECS = ['{"id":%d,"vector":[%d,1,0,0],"payload":{"n":%d}}' % (i, i, i) for i in range(40)]


class Collections(vdbtest.VdbTestCase):

    def setUp(self):
        super().setUp()
        self.create('db', dim=4)
        self.create('db', dim=4, name='docs')
        self.create('db', dim=2, name='other')
        self.ingest('db', RECS, name='docs')
        self.db = self.dbpath('db')

    def names(self):
        r = run('info', self.db, '--list')
        self.assertOk(r)
        return r.lines

    def test_drop(self):
        want = run('export', self.db, '-c', 'other').out
        r = run('drop', self.db, '-c', 'docs')
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.err, "vdb-drop: dropped collection 'docs' of %s\n" % self.db)
        self.assertEqual(self.names(), ['default', 'other'])
        self.assertEqual(run('export', self.db, '-c', 'other').out, want)
        self.assertEqual(sorted(os.listdir(self.db)), ['VDB', 'default', 'other'])
        self.assertFails(run('query', self.db, '-c', 'docs', '--count'), EXIT_NOINPUT,
                         "vdb-query: collection 'docs' does not exist")
        self.assertFails(run('drop', self.db, '-c', 'docs'), EXIT_NOINPUT,
                         "vdb-drop: collection 'docs' does not exist")
        # The name is free at once; -q prints nothing.
        self.create('db', dim=3, name='docs')
        self.assertOk(run('drop', '-q', self.db, '-c', 'docs'))
        self.assertOk(run('check', '-q', self.db))

    def test_drop_usage(self):
        self.assertUsage(run('drop', self.db), 'vdb-drop: which collection? -c NAME is required')
        self.assertUsage(run('drop', '-c', 'docs'), 'missing database directory operand')
        self.assertUsage(run('drop', self.db, self.db, '-c', 'docs'), 'too many operands')
        self.assertUsage(run('drop', self.db, '-c', 'docs', '--wait', 'x'), '--wait')
        self.assertFails(run('drop', self.path('nodb'), '-c', 'docs'), EXIT_NOINPUT, 'nodb')
        self.assertFails(run('drop', self.db, '-c', '.hidden'), 64,
                         "invalid collection name '.hidden'")
        self.assertEqual(self.names(), ['default', 'docs', 'other'])

    def test_a_held_lock_refuses_unless_waited_for(self):
        for cmd, args in (('drop', ()), ('rename', ('renamed',))):
            with self.subTest(cmd=cmd):
                with open(os.path.join(self.db, 'docs', 'LOCK'), 'r+') as f:
                    fcntl.flock(f, fcntl.LOCK_EX)
                    f.seek(0)
                    f.write('%d host 0\n' % os.getpid())
                    f.flush()
                    r = run(cmd, self.db, '-c', 'docs', *args)
                    self.assertFails(r, EXIT_LOCKED, "vdb-%s: collection 'docs' is locked by "
                                     "another writer (pid %d)" % (cmd, os.getpid()))
                    self.assertIn('docs', self.names())
                    # --wait: the lock is released while the command waits.
                    threading.Timer(0.3, lambda: fcntl.flock(f, fcntl.LOCK_UN)).start()
                    t = time.monotonic()
                    self.assertOk(run(cmd, '-q', self.db, '-c', 'docs', *args, '--wait', '20'))
                    self.assertGreater(time.monotonic() - t, 0.25)
                self.assertNotIn('docs', self.names())
                if cmd == 'drop':
                    self.create('db', dim=4, name='docs')

    def test_a_running_query_finds_the_collection_gone(self):
        p = self.proc('query', self.db, '-c', 'docs', '-k', '1')
        try:
            p.send('[3,1,0,0]\n')
            self.assertIsNotNone(p.wait_for_stdout_lines(1), p.err)
            self.assertOk(run('drop', '-q', self.db, '-c', 'docs'))
            p.send('[3,1,0,0]\n')
            p.close_stdin()
            self.assertEqual(p.wait(), EXIT_NOINPUT, p.err)
            self.assertIn("collection 'docs' does not exist", p.err)
            self.assertEqual(p.out, '{"results":[{"id":3,"score":0}]}\n')
        finally:
            p.kill()

    def test_rename(self):
        want = run('export', self.db, '-c', 'docs').out
        r = run('rename', self.db, '-c', 'docs', 'docs_v1')
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.err, "vdb-rename: renamed collection 'docs' of %s to 'docs_v1'\n"
                         % self.db)
        self.assertEqual(self.names(), ['default', 'docs_v1', 'other'])
        self.assertEqual(run('export', self.db, '-c', 'docs_v1').out, want)
        with open(os.path.join(self.db, 'docs_v1', 'CONFIG')) as f:
            self.assertIn('"name":"docs_v1"', f.read())
        self.assertOk(run('ingest', '-q', self.db, '-c', 'docs_v1',
                          input='{"id":99,"vector":[0,0,0,1]}\n'))
        self.assertOk(run('check', '-q', self.db))
        # An existing collection is never replaced.
        self.assertFails(run('rename', self.db, '-c', 'docs_v1', 'other'), EXIT_CANTCREAT,
                         "vdb-rename: collection 'other' already exists in %s" % self.db)
        os.mkdir(os.path.join(self.db, 'emptydir'))
        self.assertFails(run('rename', self.db, '-c', 'docs_v1', 'emptydir'), EXIT_CANTCREAT,
                         "collection 'emptydir' already exists")
        self.assertEqual(run('query', self.db, '-c', 'other', '--count').out, '0\n')
        self.assertEqual(self.names(), ['default', 'docs_v1', 'other'])

    def test_rename_usage(self):
        for bad in ('.x', 'a/b', 'x' * 65, ''):
            with self.subTest(name=bad):
                self.assertUsage(run('rename', self.db, '-c', 'docs', bad),
                                 "vdb-rename: invalid collection name '%s'" % bad)
        self.assertUsage(run('rename', self.db, 'new'),
                         'vdb-rename: which collection? -c NAME is required')
        self.assertUsage(run('rename', self.db, '-c', 'docs'), 'missing the new name operand')
        self.assertUsage(run('rename', self.db, '-c', 'docs', 'a', 'b'), 'too many operands')
        self.assertFails(run('rename', self.db, '-c', 'nope', 'new'), EXIT_NOINPUT,
                         "vdb-rename: collection 'nope' does not exist")
        self.assertEqual(self.names(), ['default', 'docs', 'other'])

    def test_umbrella_and_help(self):
        for cmd in ('drop', 'rename'):
            r = run(cmd, '--help')
            self.assertOk(r)
            self.assertIn('Usage: vdb-%s DB -c NAME' % cmd, r.out)
        p = subprocess.run([os.path.join(vdbtest.BIN, 'vdb'), '--help'], capture_output=True,
                           text=True, env=vdbtest.ENV)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn('  drop ', p.stdout)
        self.assertIn('  rename ', p.stdout)


if __name__ == '__main__':
    vdbtest.main()
