#!/usr/bin/env python3
"""Format stability: the databases and snapshots written by every released on-disk format
version (tests/fixtures/vN, made by tests/fixtures/make-fixtures.sh) are still read, checked,
queried, written to and restored; and a file of a newer, unknown format version is refused
with exit 65 and a message naming both versions."""
import os
import re
import shutil
import struct
import subprocess
import unittest

from vdbtest import EXIT_DATA, VdbTestCase, main, parse_export_line, run, split_lines
from test_snapshot import ZSTD, crc32c

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'fixtures')
VERSIONS = sorted(d for d in os.listdir(FIXTURES) if re.fullmatch(r'v\d+', d))
CURRENT = 2  # the newest format version this vdb writes (docs/format.md)
# Each file carries the oldest version that can say what it holds: the newest of each kind
# (version 2 added codes to segments and "quantize" to CONFIG), and one past it.
# Snapshot archives: version 2 added log deltas (only archives holding one are version 2).
NEWEST = {'VDB': 1, 'CONFIG': 2, 'MANIFEST': 1, 'wal': 1, 'seg': 2, 'snapshot': 2}
NEWER = {kind: v + 1 for kind, v in NEWEST.items()}
SEG_HEADER, SEG_SECTION = 128, 32


class FixtureTest(VdbTestCase):
    def copy(self, version):
        db = self.path('db-' + version)
        shutil.copytree(os.path.join(FIXTURES, version, 'db'), db)
        return db

    def expected(self, version, coll):
        with open(os.path.join(FIXTURES, version, coll + '.jsonl'), encoding='utf-8') as f:
            return f.read()

    def test_every_version_is_read(self):
        self.assertIn('v%d' % CURRENT, VERSIONS)
        for v in VERSIONS:
            with self.subTest(version=v):
                db = self.copy(v)
                self.assertOk(run('check', db))
                for coll in ('default', 'flat'):
                    r = run('export', db, '-c', coll)
                    self.assertOk(r)
                    # Byte for byte: the shortest round-trip numbers and the payloads as stored.
                    self.assertEqual(r.out, self.expected(v, coll))
                r = run('query', db, '-k', '3', '--vector=[0,0,-5,0]', '--filter',
                        '{"tag":"t1"}', '--payload')
                self.assertOk(r)
                self.assertEqual(len(split_lines(r.out)), 1, r.out)
                self.assertEqual(r.out.count('"tag":"t1"'), 3, r.out)

    def test_every_version_accepts_writes_and_compaction(self):
        for v in VERSIONS:
            with self.subTest(version=v):
                db = self.copy(v)
                self.assertOk(run('ingest', db, '-q', input=['{"id":"new","vector":[1,2,3,4]}',
                                                       '{"id":1,"delete":true}']))
                self.assertOk(run('compact', db, '-q'))
                self.assertOk(run('check', db))
                ids = [parse_export_line(l)[0] for l in split_lines(run('export', db).out)]
                self.assertIn('new', ids)
                self.assertNotIn(1, ids)
                self.assertEqual(len(ids), len(split_lines(self.expected(v, 'default'))))

    def test_every_version_snapshot_restores(self):
        for v in VERSIONS:
            with self.subTest(version=v):
                archive = os.path.join(FIXTURES, v, 'full.tar.zst')
                self.assertOk(run('restore', '-q', '--verify', archive))
                target = self.path('restored-' + v)
                self.assertOk(run('restore', '-q', archive, target))
                for coll in ('default', 'flat'):
                    self.assertEqual(run('export', target, '-c', coll).out,
                                     self.expected(v, coll))
                # From version 2 on: an incremental on it whose logs are deltas.
                inc = os.path.join(FIXTURES, v, 'inc.tar.zst')
                if int(v[1:]) >= 2:
                    self.assertIn('bytes from', run('restore', '--list', inc).out)
                    self.assertOk(run('restore', '-q', '--verify', inc))
                    self.assertOk(run('restore', '-q', inc, target + '-inc'))
                    self.assertEqual(run('export', target + '-inc').out,
                                     self.expected(v, 'inc-default'))

    def assertNewerRefused(self, db, name, kind, *cmds):
        for cmd in cmds:
            r = run(cmd, db)
            # vdb-check still reports the sound collections on standard output.
            self.assertFails(r, EXIT_DATA, name, stdout_empty=cmd != 'check')
            self.assertRegex(r.err, r'\b%d\b.*\b%d\b' % (NEWER[kind], NEWEST[kind]))

    def bump_text(self, path, kind):
        """A checked text file (marker, CONFIG, MANIFEST) of the next format version."""
        with open(path, 'rb') as f:
            data = f.read()
        head, rest = data.split(b' ', 1)
        version, rest = rest.split(b' ', 1)
        self.assertLessEqual(int(version), NEWEST[kind])
        with open(path, 'wb') as f:
            f.write(head + b' %d ' % NEWER[kind] + rest)

    def test_files_carry_the_oldest_version_that_holds_them(self):
        db = self.copy('v%d' % CURRENT)
        versions = {}
        for coll in ('default', 'flat'):
            with open(os.path.join(db, coll, 'CONFIG'), 'rb') as f:
                versions[coll + '/CONFIG'] = int(f.read().split(b' ')[1])
        for name in sorted(os.listdir(os.path.join(db, 'default'))):
            if name.startswith('seg-'):
                with open(os.path.join(db, 'default', name), 'rb') as f:
                    versions[name] = struct.unpack_from('<I', f.read(12), 8)[0]
        # The quantized collection's CONFIG and segments (with codes) are version 2; the
        # flat collection's CONFIG stays version 1, which older vdb read.
        self.assertEqual(versions.pop('default/CONFIG'), 2)
        self.assertEqual(versions.pop('flat/CONFIG'), 1)
        self.assertTrue(versions)
        self.assertEqual(set(versions.values()), {2}, versions)

    def test_newer_marker_config_manifest_are_refused(self):
        for name in ('VDB', 'default/CONFIG', 'default/MANIFEST'):
            with self.subTest(file=name):
                db = self.copy('v%d' % CURRENT)
                kind = os.path.basename(name)
                self.bump_text(os.path.join(db, name), kind)
                self.assertNewerRefused(db, kind, kind, 'export', 'check')
                r = run('ingest', db, input=['{"id":"x","vector":[1,2,3,4]}'])
                self.assertFails(r, EXIT_DATA, os.path.basename(name))
                shutil.rmtree(db)

    def test_newer_log_is_refused(self):
        db = self.copy('v%d' % CURRENT)
        path = os.path.join(db, 'default', 'wal-00000004.log')
        with open(path, 'r+b') as f:
            h = bytearray(f.read(32))
            h[8:12] = struct.pack('<I', NEWER['wal'])
            h[28:32] = struct.pack('<I', crc32c(bytes(h[:28])))
            f.seek(0)
            f.write(h)
        self.assertNewerRefused(db, 'wal-00000004.log', 'wal', 'export', 'check')

    def test_newer_segment_is_refused(self):
        db = self.copy('v%d' % CURRENT)
        path = os.path.join(db, 'default', 'seg-00000003.vdb')
        with open(path, 'r+b') as f:
            data = bytearray(f.read())
            nsec = struct.unpack_from('<I', data, 20)[0]
            data[8:12] = struct.pack('<I', NEWER['seg'])
            crc = crc32c(bytes(data[SEG_HEADER:SEG_HEADER + nsec * SEG_SECTION]),
                         crc32c(bytes(data[:124])))
            old = struct.unpack_from('<I', data, 124)[0]
            data[124:128] = struct.pack('<I', crc)
            f.seek(0)
            f.write(data)
        # The MANIFEST names each segment's header checksum: a consistent newer database.
        mpath = os.path.join(db, 'default', 'MANIFEST')
        with open(mpath, 'rb') as f:
            head, body = f.read().split(b'\n', 1)
        body = body.replace(b'"header_crc":%d' % old, b'"header_crc":%d' % crc)
        kind, version = head.split(b' ')[:2]
        with open(mpath, 'wb') as f:
            f.write(b'%s %s %d %08x\n' % (kind, version, len(body), crc32c(body)) + body)
        self.assertNewerRefused(db, 'seg-00000003.vdb', 'seg', 'export', 'check')

    @unittest.skipUnless(ZSTD, 'zstd(1) is not installed')
    def test_newer_snapshot_is_refused(self):
        archive = os.path.join(FIXTURES, 'v%d' % CURRENT, 'full.tar.zst')
        tar = subprocess.run([ZSTD, '-dc', archive], capture_output=True, check=True).stdout
        # The first entry, vdb-snapshot.json, is a checked text: bump its header's version
        # (the tar header has no checksum over the content; a full snapshot is version 1).
        at = tar.index(b'vdb-snapshot 1 ', 512)
        self.assertEqual(at, 512)
        tar = tar[:at] + b'vdb-snapshot %d ' % NEWER['snapshot'] + tar[at + len(b'vdb-snapshot 1 '):]
        newer = self.path('newer.tar.zst')
        with open(newer, 'wb') as f:
            f.write(subprocess.run([ZSTD, '-q', '-c'], input=tar, capture_output=True,
                                   check=True).stdout)
        for args in (('--verify', newer), ('--list', newer), (newer, self.path('t'))):
            r = run('restore', *args)
            self.assertFails(r, EXIT_DATA, 'vdb-snapshot.json')
            self.assertRegex(r.err, r'\b%d\b.*\b%d\b' % (NEWER['snapshot'], NEWEST['snapshot']))
        self.assertFalse(os.path.exists(self.path('t')))


if __name__ == '__main__':
    main()
