#!/usr/bin/env python3
"""Progress lines on stderr for snapshot, restore and compaction: drawn on a terminal (a
pseudo-terminal here), erased before the summary, absent with -q and when stderr is not a
terminal."""

import os
import re
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vdbtest  # noqa: E402
from vdbtest import run  # noqa: E402
from test_formats import stderr_on_a_terminal  # noqa: E402

# "\rvdb-snapshot: 1.0 MiB of 4.2 MiB  20.0 MiB/s  24%  ETA 0:00\033[K"
LINE = r'\r%s: [\d.]+ (B|KiB|MiB|GiB) of [\d.]+ (B|KiB|MiB|GiB)  [\d.]+ (B|KiB|MiB|GiB)/s  \d+%%  ETA (\d+:\d\d|--:--)\x1b\[K'


class Progress(vdbtest.VdbTestCase):

    def setUp(self):
        super().setUp()
        self.create(dim=64)
        # Enough for a few 1 MiB chunks of work.
        self.ingest('db', vdbtest.seeded_records(9, 6000, 64))
        self.assertOk(run('compact', self.path('db'), '-q'))

    def check_drawn_then_erased(self, cmd, err, summary):
        text = err.decode()
        self.assertRegex(text, LINE % cmd)
        # The last line drawn is erased before the summary, which ends the output alone.
        last = text.rstrip('\n').split('\n')[-1]
        self.assertTrue(last.startswith('\r\x1b[K%s: ' % cmd) or
                        re.search(r'\r\x1b\[K%s: ' % cmd, last), repr(last))
        self.assertRegex(last.split('\r\x1b[K')[-1], summary)

    def test_snapshot_and_restore_on_a_terminal(self):
        arc = self.path('db.tar.zst')
        rc, err = stderr_on_a_terminal('snapshot', self.path('db'), '-o', arc, '-l', '1')
        self.assertEqual(rc, 0, err)
        self.check_drawn_then_erased('vdb-snapshot', err, r'^vdb-snapshot: .*db\.tar\.zst: 1 '
                                     r'collection, 6000 records')
        rc, err = stderr_on_a_terminal('restore', arc, self.path('copy'))
        self.assertEqual(rc, 0, err)
        self.check_drawn_then_erased('vdb-restore', err, r'^vdb-restore: .*copy: restored: 1 '
                                     r'collection, 6000 records')
        self.assertEqual(self.exported_ids('copy'), self.exported_ids('db'))
        rc, err = stderr_on_a_terminal('restore', '--verify', arc)
        self.assertEqual(rc, 0, err)
        self.assertRegex(err.decode(), LINE % 'vdb-restore')

    def test_snapshot_total_is_the_size_stored(self):
        # Each stored byte is read twice (checked, then archived): the total shown is still
        # the size of the files, not twice it.
        arc = self.path('db.tar.zst')
        rc, err = stderr_on_a_terminal('snapshot', self.path('db'), '-o', arc, '-l', '1')
        self.assertEqual(rc, 0, err)
        units = {'B': 1, 'KiB': 1 << 10, 'MiB': 1 << 20, 'GiB': 1 << 30}
        shown = [float(n) * units[u] for n, u in
                 re.findall(r' of ([\d.]+) (B|KiB|MiB|GiB)  ', err.decode())]
        self.assertTrue(shown, err)
        stored = sum(os.path.getsize(os.path.join(d, f))
                     for d, _, fs in os.walk(self.path('db')) for f in fs if f != 'LOCK')
        self.assertLess(abs(shown[-1] - stored), 0.06 * stored, (shown, stored))

    def test_vector_file_ingest_on_a_terminal(self):
        # Rows taken in blocks of the seal size (the bulk path) still draw the line.
        self.assertOk(run('create', self.path('db'), '-c', 'v', '--dim', 64, '--metric', 'l2',
                          '--seal-size', '256K'))
        rows = [r['vector'] for r in vdbtest.seeded_records(10, 4000, 64, payloads=0)]
        import struct
        data = b''.join(struct.pack('<i64f', 64, *v) for v in rows)
        rc, err = stderr_on_a_terminal('ingest', self.path('db'), '-c', 'v',
                                       self.write('v.fvecs', data))
        self.assertEqual(rc, 0, err)
        text = err.decode()
        self.assertRegex(text, r'\rvdb-ingest: \d+ records  [\d.]+ (B|KiB|MiB)  \d+ records/s  '
                         r'[\d.]+ (B|KiB|MiB|GiB)/s  \d+%  ETA (\d+:\d\d|--:--)\x1b\[K')
        self.assertIn('\r\x1b[Kvdb-ingest: 4000 records committed', text)
        # The first line is drawn at once: too early to guess the time left.
        first = text.split('\x1b[K')[0]
        self.assertRegex(first, r'ETA --:--$')

    def test_quiet_and_not_a_terminal_draw_nothing(self):
        arc = self.path('db.tar.zst')
        rc, err = stderr_on_a_terminal('snapshot', self.path('db'), '-o', arc, '-q')
        self.assertEqual((rc, err), (0, b''))
        rc, err = stderr_on_a_terminal('restore', '-q', arc, self.path('copy'))
        self.assertEqual((rc, err), (0, b''))
        r = run('snapshot', self.path('db'), '-o', self.path('b.tar.zst'))
        self.assertEqual(r.rc, 0, r)
        self.assertNotIn('\r', r.err)
        self.assertEqual(len(r.errlines), 1, r)
        r = run('restore', self.path('b.tar.zst'), self.path('copy2'))
        self.assertEqual(r.rc, 0, r)
        self.assertNotIn('\r', r.err)
        self.assertEqual(len(r.errlines), 1, r)

    def test_compaction_on_a_terminal(self):
        # The graph build of the merged segment, in rows: drawn, then erased before the
        # summary; nothing with -q or off a terminal.
        # (--no-settle: settling would leave one segment, with nothing to compact.)
        self.ingest('db', vdbtest.seeded_records(10, 3000, 64, id_offset=100000), '--no-settle')
        rc, err = stderr_on_a_terminal('compact', self.path('db'))
        self.assertEqual(rc, 0, err)
        text = err.decode()
        self.assertRegex(text, r'\rvdb-compact: \d+ rows  \d+ rows/s  \d+%  ETA (\d+:\d\d|--:--)\x1b\[K')
        last = text.rstrip('\r\n').split('\r\x1b[K')[-1]
        self.assertRegex(last, r'^vdb-compact: 9000 live records; \d+ segments? before, 1 after')
        self.ingest('db', vdbtest.seeded_records(11, 100, 64, id_offset=200000))
        rc, err = stderr_on_a_terminal('compact', self.path('db'), '-q')
        self.assertEqual((rc, err), (0, b''))
        self.ingest('db', vdbtest.seeded_records(12, 100, 64, id_offset=300000))
        r = run('compact', self.path('db'))
        self.assertEqual(r.rc, 0, r)
        self.assertNotIn('\r', r.err)

    def test_an_error_erases_the_line_first(self):
        arc = self.path('db.tar.zst')
        self.assertEqual(run('snapshot', self.path('db'), '-o', arc, '-q').rc, 0)
        data = bytearray(self.read(arc))
        # Damage the end of the archive: the restore draws progress, then fails.
        data[-200:] = bytes(200)
        self.write(arc, bytes(data))
        rc, err = stderr_on_a_terminal('restore', arc, self.path('copy'))
        self.assertEqual(rc, 65, err)
        text = err.decode()
        self.assertRegex(text, LINE % 'vdb-restore')
        self.assertRegex(text, r'\r\x1b\[Kvdb-restore: [^\r]*\r?\n$')  # the pty adds \r
        self.assertFalse(os.path.exists(self.path('copy')))


if __name__ == '__main__':
    vdbtest.main()
