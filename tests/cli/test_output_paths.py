"""Output paths (-o, --ids-out, --payloads-out, --rejects, --into) are written as cp, zstd and
tar write them: a device or FIFO in place, never replaced by a regular file; a symbolic link
followed, its target replaced and the link kept; a directory refused. Every test uses its own
device node, FIFO and link -- never the system's /dev/null."""

import os
import stat
import subprocess
import threading
import unittest

from vdbtest import (EXIT_CANTCREAT, EXIT_IO, ENV, VdbTestCase, exe, run)

RECS = [{'id': i, 'vector': [float(i), 1.0, 2.0, 3.0], 'payload': {'n': i}} for i in range(5)]
# What vdb-export prints for RECS (vectors in the shortest float32 form).
JSONL = b''.join(b'{"id":%d,"vector":[%d,1,2,3],"payload":{"n":%d}}\n' % (i, i, i) for i in range(5))


class OutputPaths(VdbTestCase):
    def setUp(self):
        super().setUp()
        self.create()
        self.ingest('db', RECS)
        self.db = self.path('db')

    def null_device(self):
        """A device node of our own with /dev/null's numbers (root only)."""
        p = self.path('null')
        try:
            os.mknod(p, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        except PermissionError:
            self.skipTest('mknod needs root')
        return p

    def assertCharDevice(self, p):
        self.assertTrue(stat.S_ISCHR(os.lstat(p).st_mode), '%s is no longer a device' % p)

    def fifo_reader(self, p):
        """A FIFO at p and a thread reading it whole; returns a function giving the bytes."""
        os.mkfifo(p)
        got = []

        def read():
            with open(p, 'rb') as f:
                got.append(f.read())
        t = threading.Thread(target=read, daemon=True)
        t.start()

        def result():
            t.join(30)
            self.assertFalse(t.is_alive(), 'the FIFO reader never saw the end')
            return got[0]
        return result

    def test_a_device_is_written_in_place(self):
        null = self.null_device()
        for args in (['-o', null], ['-f', 'npy', '-o', null], ['-o', null, '--zstd']):
            r = run('export', self.db, *args)
            self.assertOk(r, '')
            self.assertCharDevice(null)
        npy = self.path('v.npy')
        r = run('export', self.db, '-o', npy, '--ids-out', null, '--payloads-out', null)
        self.assertOk(r, '')
        self.assertCharDevice(null)
        self.assertTrue(os.path.isfile(npy))
        r = run('snapshot', self.db, '-o', null, '-q')
        self.assertOk(r, '')
        self.assertCharDevice(null)
        self.assertEqual(os.listdir(self.tmp).count('null'), 1)
        self.assertEqual([n for n in os.listdir(self.tmp) if '.tmp-' in n], [])

    def test_a_fifo_is_written_in_place(self):
        for cmd, args, check in (
                ('export', [], lambda b: self.assertEqual(b, JSONL)),
                ('export', ['-f', 'npy'], lambda b: self.assertTrue(b.startswith(b'\x93NUMPY'))),
                ('snapshot', ['-q'], lambda b: self.assertTrue(b.startswith(b'\x28\xb5\x2f\xfd')))):
            p = self.path('fifo-%s-%d' % (cmd, len(args)))
            result = self.fifo_reader(p)
            r = run(cmd, self.db, '-o', p, *args, timeout=60)
            self.assertOk(r, '')
            check(result())
            self.assertTrue(stat.S_ISFIFO(os.lstat(p).st_mode), '%s is no longer a FIFO' % p)

    def test_dev_stdout_is_our_standard_output(self):
        for fmt, start in (('jsonl', JSONL), ('npy', b'\x93NUMPY')):
            r = run('export', self.db, '-f', fmt, '-o', '/dev/stdout')
            self.assertEqual(r.rc, 0, r)
            self.assertTrue(r.outb.startswith(start), r)
        # Standard output on a file opened for appending: appended to, not replaced.
        out = self.path('appended')
        with open(out, 'wb') as f:
            f.write(b'before\n')
        with open(out, 'ab') as f:
            p = subprocess.run(['vdb-export', self.db, '-o', '/dev/fd/1'], executable=exe('export'),
                               stdout=f, stderr=subprocess.PIPE, env=ENV, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.read(out), b'before\n' + JSONL)

    def test_a_symlink_is_followed_and_kept(self):
        target = self.write('target.jsonl', 'old\n')
        os.symlink('target.jsonl', self.path('link.jsonl'))
        r = run('export', self.db, '-o', self.path('link.jsonl'))
        self.assertOk(r, '')
        self.assertTrue(os.path.islink(self.path('link.jsonl')))
        self.assertEqual(self.read(target), JSONL)
        # A chain of links across directories, relative and absolute, and a dangling one.
        os.mkdir(self.path('sub'))
        os.symlink(self.path('sub', 'real.npy'), self.path('sub', 'abs.npy'))
        os.symlink('sub/abs.npy', self.path('rel.npy'))
        r = run('export', self.db, '-o', self.path('rel.npy'), '--ids-out', self.path('link.jsonl'))
        self.assertOk(r, '')
        self.assertTrue(os.path.islink(self.path('rel.npy')))
        self.assertTrue(os.path.islink(self.path('sub', 'abs.npy')))
        self.assertTrue(self.read(self.path('sub', 'real.npy')).startswith(b'\x93NUMPY'))
        self.assertEqual(self.read(target), b'0\n1\n2\n3\n4\n')
        r = run('snapshot', self.db, '-o', self.path('link.jsonl'), '-q')
        self.assertOk(r, '')
        self.assertTrue(os.path.islink(self.path('link.jsonl')))
        self.assertTrue(self.read(target).startswith(b'\x28\xb5\x2f\xfd'))
        self.assertEqual(run('restore', '--verify', self.path('link.jsonl')).rc, 0)

    def test_a_symlink_loop_is_refused(self):
        os.symlink('b', self.path('a'))
        os.symlink('a', self.path('b'))
        r = run('export', self.db, '-o', self.path('a'))
        self.assertFails(r, EXIT_IO, 'a: Too many levels of symbolic links')
        self.assertTrue(os.path.islink(self.path('a')))

    def test_a_directory_is_refused(self):
        d = self.path('adir')
        os.mkdir(d)
        os.symlink('adir', self.path('dirlink'))
        for cmd, args in (('export', ['-o', d]), ('export', ['-o', self.path('dirlink')]),
                          ('export', ['-o', self.path('x.npy'), '--ids-out', d]),
                          ('snapshot', ['-o', d])):
            r = run(cmd, self.db, *args)
            self.assertFails(r, EXIT_CANTCREAT, 'is a directory')
            self.assertTrue(os.path.isdir(d))
            self.assertEqual(os.listdir(d), [])
        self.assertFalse(os.path.exists(self.path('x.npy')))

    def test_a_socket_is_refused(self):
        import socket
        p = self.path('sock')
        s = socket.socket(socket.AF_UNIX)
        self.addCleanup(s.close)
        s.bind(p)
        r = run('export', self.db, '-o', p)
        self.assertFails(r, EXIT_CANTCREAT, 'is a socket')
        self.assertTrue(stat.S_ISSOCK(os.lstat(p).st_mode))

    def test_rejects_file_through_links_and_devices(self):
        bad = b'{"id":1}\n' + JSONL[:40] + b'\n'
        null = self.null_device()
        r = run('ingest', self.db, '--skip-invalid', '--rejects', null, '-q', input=bad)
        self.assertEqual(r.rc, 0, r)
        self.assertCharDevice(null)
        target = self.write('rejects.txt', '')
        os.symlink('rejects.txt', self.path('rejects-link'))
        r = run('ingest', self.db, '--skip-invalid', '--rejects', self.path('rejects-link'), '-q',
                input=bad)
        self.assertEqual(r.rc, 0, r)
        self.assertTrue(os.path.islink(self.path('rejects-link')))
        self.assertEqual(self.read(target).count(b'\n'), 2)
        r = run('ingest', self.db, '--skip-invalid', '--rejects', self.tmp, input=bad)
        self.assertFails(r, EXIT_CANTCREAT, 'Is a directory')

    def test_into_a_linked_directory(self):
        real = self.path('backups')
        os.mkdir(real)
        os.symlink('backups', self.path('blink'))
        r = run('snapshot', self.db, '--into', self.path('blink'), '-q')
        self.assertOk(r, '')
        self.assertTrue(os.path.islink(self.path('blink')))
        names = os.listdir(real)
        self.assertEqual(len(names), 1, names)
        self.assertTrue(names[0].endswith('.tar.zst'))
        f = self.write('afile', 'x')
        r = run('snapshot', self.db, '--into', f)
        self.assertFails(r, EXIT_IO, 'afile: Not a directory')
        self.assertEqual(self.read(f), b'x')


if __name__ == '__main__':
    unittest.main()
