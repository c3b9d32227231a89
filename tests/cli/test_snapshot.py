#!/usr/bin/env python3
"""vdb-snapshot, vdb-restore and vdb-check, end to end.

Round trips (several collections, seals, merges, deletions, graphs), standard output and
input, atomic file output, the terminal refusal, restore targets and --force, --verify and
--list, snapshots taken while an ingest runs (each restores to a whole-batch prefix),
incrementals and their chains, cron mode with pruning, a corpus of hostile archives built
here (Python's tarfile and the zstd command), flipped bytes and truncation anywhere in an
archive, kill -9 during restore, and vdb-check on a damaged file of every kind.
"""
import fcntl
import io
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vdbtest import (EXIT_CANTCREAT, EXIT_DATA, EXIT_LOCKED, EXIT_NOINPUT, EXIT_USAGE, ENV,  # noqa: E402
                     VdbTestCase, exe, main, run, seeded_records)

from snapchain import (ZSTD, TAR, crc32c, zstd_compress, zstd_decompress, checked,  # noqa: E402
                       tar_members, tar_build, craft_chain)


def info(name, type=tarfile.REGTYPE, linkname=''):
    i = tarfile.TarInfo(name)
    i.type = type
    i.linkname = linkname
    i.mode = 0o644
    return i


class Snapshot(VdbTestCase):
    def build_db(self, db='db', n=3000, seed=1):
        """Two collections: an l2 one with several segments (graphs), deletions, replaced
        records and a log tail; a small cosine one."""
        self.create(db, dim=8, metric='l2', seal='24K')
        recs = seeded_records(seed, n, 8)
        self.ingest(db, recs, '-b', '500')
        self.ingest(db, [{'id': r['id'], 'delete': True} for r in recs[:n:7]])
        self.ingest(db, seeded_records(seed + 1, 200, 8, id_offset=n // 2))
        self.create(db, dim=3, metric='cosine', name='small')
        self.ingest(db, seeded_records(seed + 2, 50, 3), name='small')
        return self.dbpath(db)

    def snap(self, db, out, *args, check=True):
        r = run('snapshot', self.dbpath(db), '-o', out, *args)
        if check:
            self.assertEqual(r.rc, 0, r)
            if '-q' not in args:
                self.assertRegex(r.err, r'^vdb-snapshot: .*: \d+ collections?, \d+ records?; \d+ '
                             r'files?, [\d.]+ MiB -> [\d.]+ MiB \(ratio [\d.]+\), \d+ referenced; '
                                 r'[\d.]+ s\n$')
            else:
                self.assertEqual(r.err, '')
        return r

    def assertSameDb(self, a, b, collections=(None, 'small')):
        for c in collections:
            self.assertEqual(self.export(a, c).out, self.export(b, c).out, c)

    def assertNoLeftovers(self, parent=None):
        parent = parent or self.tmp
        left = [f for f in os.listdir(parent) if '.restore-' in f or '.tmp-' in f]
        self.assertEqual(left, [], 'temporary files left behind')

    # ---- round trips ------------------------------------------------------------------

    def test_round_trip(self):
        db = self.build_db()
        arc = self.path('s.tar.zst')
        self.snap('db', arc)
        r = run('restore', arc, self.path('r'))
        self.assertEqual(r.rc, 0, r)
        # (How many files depends on where the ingests' batches fell, which depends on how
        # fast the pipe delivered them.)
        self.assertRegex(r.err, r'vdb-restore: .*/r: restored: 2 collections, \d+ records; \d+ '
                         r'files, [\d.]+ MiB from 1 archive;')
        self.assertSameDb('db', 'r')
        q = '--vector=[0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8]'
        self.assertEqual(self.query('db', '-k', '10', '--payload', q).out,
                         self.query('r', '-k', '10', '--payload', q).out)
        self.assertEqual(self.query('db', '-k', '10', '--exact', q).out,
                         self.query('r', '-k', '10', '--exact', q).out)
        c = run('check', self.path('r'))
        self.assertEqual(c.rc, 0, c)
        self.assertRegex(c.out, r'default: ok: \d+ records?; \d+ segments?')
        # The same files, byte for byte, except LOCK, which is never copied.
        for coll in ('default', 'small'):
            src = sorted(f for f in os.listdir(os.path.join(db, coll)) if f != 'LOCK')
            self.assertEqual(sorted(os.listdir(self.path('r', coll))), src)
            for f in src:
                if not f.startswith('wal-'):
                    self.assertEqual(self.read(os.path.join(db, coll, f)),
                                     self.read(self.path('r', coll, f)), f)
        # The restored database takes writes.
        self.ingest('r', seeded_records(9, 10, 8, id_offset=10 ** 6))
        self.assertNoLeftovers()

    def test_tar_lists_it(self):
        if not TAR or not ZSTD:
            self.skipTest('tar or zstd not installed')
        self.build_db()
        arc = self.path('s.tar.zst')
        self.snap('db', arc)
        p = subprocess.run([TAR, '--zstd', '-tf', arc], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        names = p.stdout.split()
        self.assertEqual(names[0], 'vdb-snapshot.json')
        self.assertIn('VDB', names)
        self.assertIn('default/MANIFEST', names)
        self.assertTrue(any(re.match(r'default/seg-\d+\.vdb$', n) for n in names))
        self.assertNotIn('default/LOCK', names)
        # tar extracts the same database (the emergency path).
        os.mkdir(self.path('x'))
        subprocess.run([TAR, '--zstd', '-xf', arc, '-C', self.path('x')], check=True)
        os.unlink(self.path('x', 'vdb-snapshot.json'))
        self.assertSameDb('db', 'x')
        # The manifest: sizes, CRC32C, versions, configs, counts.
        man = subprocess.run([TAR, '--zstd', '-xOf', arc, 'vdb-snapshot.json'],
                             stdout=subprocess.PIPE, check=True).stdout
        head, body = man.split(b'\n', 1)
        self.assertEqual(head, b'vdb-snapshot 1 %d %08x' % (len(body), crc32c(body)))
        m = json.loads(body)
        self.assertEqual(m['vdb_snapshot'], 1)
        self.assertEqual(m['base'], None)
        self.assertRegex(m['created'], r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$')
        colls = {c['name']: c for c in m['collections']}
        self.assertEqual(colls['small']['records'], 50)
        self.assertEqual(colls['small']['config']['metric'], 'cosine')
        self.assertEqual(colls['default']['records'], len(self.exported()))
        ents = {e['name']: e for e in m['entries']}
        self.assertEqual(sorted(ents), sorted(names[1:]))
        for n in names[1:]:
            data = subprocess.run([TAR, '--zstd', '-xOf', arc, n], stdout=subprocess.PIPE,
                                  check=True).stdout
            self.assertEqual(len(data), ents[n]['size'], n)
            self.assertEqual('%08x' % crc32c(data), ents[n]['crc32c'], n)

    def test_stdout_and_stdin(self):
        self.build_db()
        p1 = subprocess.Popen([exe('snapshot'), self.path('db'), '-o', '-', '-q', '-l', '5',
                               '-T', '2'], stdout=subprocess.PIPE, env=ENV)
        p2 = subprocess.run([exe('restore'), '-', self.path('r')], stdin=p1.stdout,
                            stderr=subprocess.PIPE, env=ENV)
        p1.stdout.close()
        self.assertEqual(p1.wait(), 0)
        self.assertEqual(p2.returncode, 0, p2.stderr)
        self.assertSameDb('db', 'r')

    def test_selected_collections(self):
        self.build_db()
        arc = self.path('s.tar.zst')
        self.snap('db', arc, '-c', 'small')
        self.assertOk(run('restore', '-q', arc, self.path('r')))
        self.assertEqual(os.listdir(self.path('r')).count('default'), 0)
        self.assertSameDb('db', 'r', ('small',))
        r = run('snapshot', self.path('db'), '-c', 'nope', '-o', arc)
        self.assertFails(r, EXIT_NOINPUT, "collection 'nope' does not exist")

    def test_empty_database(self):
        self.create('db', dim=2, metric='l2')
        shutil.rmtree(self.path('db', 'default'))
        arc = self.path('s.tar.zst')
        self.snap('db', arc)
        self.assertOk(run('restore', '-q', arc, self.path('r')))
        self.assertEqual(os.listdir(self.path('r')), ['VDB'])
        self.assertOk(run('check', '-q', self.path('r')))

    def test_refuses_terminal(self):
        import pty
        self.build_db()
        # Standard output on a terminal, named as '-' or as the device it is.
        for out in ('-', '/dev/stdout', None):
            master, slave = pty.openpty()
            try:
                p = subprocess.run([exe('snapshot'), self.path('db'), '-o',
                                    out or os.ttyname(slave)], stdout=slave,
                                   stderr=subprocess.PIPE, env=ENV, timeout=30)
            finally:
                os.close(slave)
                os.close(master)
            self.assertEqual(p.returncode, EXIT_USAGE)
            self.assertIn(b'vdb-snapshot: refusing to write a binary archive to a terminal',
                          p.stderr)

    def test_file_output_is_atomic(self):
        self.build_db()
        arc = self.path('s.tar.zst')
        self.write('s.tar.zst', b'old')
        r = run('snapshot', self.path('nodb'), '-o', arc)
        self.assertFails(r, EXIT_NOINPUT, 'nodb')
        self.assertEqual(self.read(arc), b'old')
        self.assertNoLeftovers()
        r = run('snapshot', self.path('db'), '-o', self.path('missing-dir', 'x'))
        self.assertFails(r, EXIT_NOINPUT, 'missing-dir')
        self.snap('db', arc)
        self.assertOk(run('restore', '--verify', '-q', arc))

    def test_usage(self):
        self.build_db()
        self.assertUsage(run('snapshot', self.path('db')), 'exactly one of -o FILE and --into')
        self.assertUsage(run('snapshot', self.path('db'), '-o', 'x', '--level', '20'),
                         "invalid value '20' for --level")
        self.assertUsage(run('snapshot', self.path('db'), '-o', 'x', '--keep', '2'),
                         'retention options and --full-every go with --into')
        self.assertUsage(run('restore', 'x'), 'missing operand')
        self.assertUsage(run('restore', '--verify', 'x', 'y'), 'too many operands')
        self.assertUsage(run('restore', '--list', '--force', 'x'), '--force goes with')
        self.assertUsage(run('check'), 'missing database directory operand')
        r = run('restore', self.path('none.tar.zst'), self.path('r'))
        self.assertFails(r, EXIT_NOINPUT, 'none.tar.zst: No such file or directory')

    # ---- restore targets ---------------------------------------------------------------

    def test_targets(self):
        self.build_db()
        arc = self.path('s.tar.zst')
        self.snap('db', arc)
        os.mkdir(self.path('empty'))
        self.assertOk(run('restore', '-q', arc, self.path('empty') + '/'))
        self.assertSameDb('db', 'empty')
        os.mkdir(self.path('full'))
        self.write('full/keep.txt', 'mine')
        r = run('restore', arc, self.path('full'))
        self.assertFails(r, EXIT_CANTCREAT, 'full exists and is not empty')
        r = run('restore', '--force', arc, self.path('full'))
        self.assertFails(r, EXIT_CANTCREAT, 'is not empty and not a vdb database')
        self.assertEqual(self.read('full/keep.txt'), b'mine')
        self.write('file', 'x')
        self.assertFails(run('restore', arc, self.path('file')), EXIT_CANTCREAT)
        self.assertNoLeftovers()
        # A link is named as one, with --force too, and neither it nor its target changes.
        os.mkdir(self.path('real'))
        os.symlink('real', self.path('link'))
        for args in ([], ['--force']):
            r = run('restore', *args, arc, self.path('link'))
            self.assertFails(r, EXIT_CANTCREAT, 'link is a symbolic link (restore to the '
                             'directory it points to, or remove the link)')
            self.assertTrue(os.path.islink(self.path('link')))
            self.assertEqual(os.listdir(self.path('real')), [])
        self.assertNoLeftovers()

    def test_an_uncompressed_tar_is_named_as_such(self):
        if not ZSTD:
            self.skipTest('zstd not installed')
        self.build_db()
        arc = self.path('s.tar.zst')
        self.snap('db', arc, '-q')
        tar = self.write('s.tar', zstd_decompress(self.read(arc)))
        for args in ([tar, self.path('t')], ['--verify', tar], ['--list', tar]):
            r = run('restore', *args)
            self.assertFails(r, EXIT_DATA, 's.tar: it is an uncompressed tar archive, not '
                             'zstd-compressed')
        r = run('restore', self.write('notes.txt', 'hello\n'), self.path('t'))
        self.assertFails(r, EXIT_DATA, 'notes.txt: it is not zstd-compressed (not a vdb snapshot)')
        self.assertFalse(os.path.exists(self.path('t')))
        self.assertNoLeftovers()

    def test_force_swaps_and_respects_locks(self):
        self.build_db()
        arc = self.path('s.tar.zst')
        self.snap('db', arc)
        self.create('other', dim=2, metric='dot')
        self.ingest('other', [{'id': 1, 'vector': [1, 2]}])
        # A writer at work in TARGET: refused, TARGET untouched.
        w = self.proc('ingest', '-v', self.path('other'))
        w.send([{'id': 2, 'vector': [3, 4]}])
        self.assertTrue(w.wait_for_stderr('committed batch 1'), w.err)  # it holds the lock
        r = run('restore', '--force', arc, self.path('other'))
        self.assertFails(r, EXIT_LOCKED, 'locked by another writer')
        w.close_stdin()
        self.assertEqual(w.wait(), 0)
        self.assertNoLeftovers()
        self.assertOk(run('restore', '--force', '-q', arc, self.path('other')))
        self.assertSameDb('db', 'other')
        self.assertNoLeftovers()

    def test_waiting_writer_follows_a_swapped_database(self):
        """A writer waiting for the lock while the database is swapped underneath (what
        --force does) must end up holding the lock of the new database, so that no second
        writer can enter it."""
        for db in ('db1', 'db2'):
            self.create(db, dim=2, metric='l2')
            self.ingest(db, [{'id': 1, 'vector': [1, 2]}])
        a = self.proc('ingest', '-v', self.path('db1'))
        a.send([{'id': 2, 'vector': [3, 4]}])
        self.assertTrue(a.wait_for_stderr('committed batch 1'), a.err)  # it holds the lock
        b = self.proc('ingest', '-v', '--wait', '60', self.path('db1'))
        self.assertTrue(b.wait_for_stderr('waiting for the writer lock'), b.err)
        os.rename(self.path('db1'), self.path('old'))
        os.rename(self.path('db2'), self.path('db1'))
        a.close_stdin()
        self.assertEqual(a.wait(), 0)
        b.send([{'id': 3, 'vector': [5, 6]}])
        self.assertTrue(b.wait_for_stderr('committed batch 1'), b.err)  # it holds the lock
        c = run('ingest', '--no-wait', self.path('db1'), input=[{'id': 4, 'vector': [7, 8]}])
        self.assertFails(c, EXIT_LOCKED, 'locked by another writer')
        b.close_stdin()
        self.assertEqual(b.wait(), 0, b.err)
        self.assertEqual(sorted(self.exported('db1')), [1, 3])

    def test_verify_and_list(self):
        self.build_db()
        arc = self.path('s.tar.zst')
        self.snap('db', arc)
        r = run('restore', '--verify', arc)
        self.assertEqual(r.rc, 0, r)
        # How many files depends on where the ingests' batches fell (they also commit when
        # the input pauses, so seals and merges vary with timing): the file count is not
        # fixed, the record count must be the live records of both collections.
        m = re.search(r'verified: 2 collections, (\d+) records; (\d+) files', r.err)
        self.assertIsNotNone(m, r)
        self.assertEqual(int(m.group(1)), len(self.exported('db')) + 50)
        self.assertEqual(os.listdir(self.tmp).count('r'), 0)
        r = run('restore', '--list', arc)
        self.assertEqual(r.rc, 0, r)
        self.assertRegex(r.out, r'^snapshot: [0-9a-f]{32}\ncreated: \S+Z\nvdb: \S+\nformat: 1\n'
                         r'kind: full\n')
        self.assertRegex(r.out, r'collection: small: 50 records, 0 segments, config \{')
        self.assertRegex(r.out, r'\n +\d+ [0-9a-f]{8} default/MANIFEST\n')

    # ---- consistency under writes --------------------------------------------------------

    def test_snapshot_during_ingest(self):
        """Every snapshot taken while batches are committed, sealed and merged restores to
        exactly the first k batches, for some k."""
        batch, batches = 40, 150
        self.create('db', dim=4, metric='l2', seal='16K')

        def rec(i):
            return {'id': i, 'vector': [float(i % 13), float(i % 7), 1.0, float(i)]}
        w = self.proc('ingest', '-q', '-b', str(batch), self.path('db'))
        seen = set()
        for k in range(batches):
            w.send([rec(k * batch + j) for j in range(batch)])
            if k % 15 == 7:
                arc = self.path('s%d.tar.zst' % k)
                self.snap('db', arc, '-q')
                self.assertOk(run('restore', '-q', arc, self.path('r%d' % k)))
                ids = sorted(json.loads(l)['id'] for l in self.export('r%d' % k).lines)
                self.assertEqual(ids, list(range(len(ids))), 'not a prefix')
                self.assertEqual(len(ids) % batch, 0, 'part of a batch')
                seen.add(len(ids))
                for l in self.export('r%d' % k).lines:
                    self.assertEqual(json.loads(l), rec(json.loads(l)['id']))
                self.assertEqual(run('check', '-q', self.path('r%d' % k)).rc, 0)
        w.close_stdin()
        self.assertEqual(w.wait(), 0)
        self.assertGreater(len(seen), 1)

    # ---- incrementals and cron ------------------------------------------------------------

    def test_incremental(self):
        self.build_db()
        full = self.path('full.tar.zst')
        self.snap('db', full)
        self.ingest('db', seeded_records(5, 300, 8, id_offset=50000))
        self.ingest('db', [{'id': 4, 'delete': True}])
        inc = self.path('inc.tar.zst')
        r = self.snap('db', inc, '--since', full)
        self.assertRegex(r.err, r'[1-9]\d* referenced')
        self.assertLess(os.path.getsize(inc), os.path.getsize(full))
        lst = run('restore', '--list', inc).out
        self.assertIn('kind: incremental on full.tar.zst', lst)
        self.assertRegex(lst, r'default/seg-\d+\.vdb \(in full\.tar\.zst\)')
        # The same as JSON: every entry, where it is, the collections with their config.
        r = run('restore', '--list', '--json', inc)
        self.assertOk(r)
        j = json.loads(r.out)
        # Version 2: the log is a delta (a full snapshot is still written as version 1).
        self.assertEqual((j['kind'], j['base'], j['format']), ('incremental', 'full.tar.zst', 2))
        self.assertEqual(len(j['entries']), len([l for l in lst.splitlines()
                                                 if re.match(r' *\d+ [0-9a-f]{8} ', l)]))
        self.assertTrue(any(e['in'] == 'full.tar.zst' for e in j['entries']))
        self.assertTrue(all(re.fullmatch(r'[0-9a-f]{8}', e['crc32c']) for e in j['entries']))
        self.assertEqual(j['collections'][0]['config']['dim'], 8)
        self.assertUsage(run('restore', '--json', inc, self.path('x')),
                         '--json goes with --list')
        r = run('restore', inc, self.path('r'))
        self.assertEqual(r.rc, 0, r)
        self.assertIn('from 2 archives', r.err)
        self.assertSameDb('db', 'r')
        # An incremental on an incremental points at where the bytes are.
        self.ingest('db', seeded_records(6, 300, 8, id_offset=60000))
        inc2 = self.path('inc2.tar.zst')
        self.snap('db', inc2, '--since', inc)
        self.assertOk(run('restore', '-q', inc2, self.path('r2')))
        self.assertSameDb('db', 'r2')
        # From standard input, with the chain directory given.
        with open(inc2, 'rb') as f:
            p = subprocess.run([exe('restore'), '-q', '--chain-dir', self.tmp, '-',
                                self.path('r3')], stdin=f, stderr=subprocess.PIPE, env=ENV)
        self.assertEqual(p.returncode, 0, p.stderr)
        # An incremental may not replace its own base.
        self.assertFails(run('snapshot', self.path('db'), '-o', inc, '--since', inc), EXIT_USAGE,
                         'an incremental cannot replace the snapshot it depends on')
        # A missing link is named.
        os.rename(full, self.path('moved.tar.zst'))
        r = run('restore', inc, self.path('r4'))
        self.assertFails(r, EXIT_NOINPUT, 'full.tar.zst')
        self.assertFalse(os.path.exists(self.path('r4')))
        # A different file under the same name is refused.
        self.snap('db', full)
        r = run('restore', inc, self.path('r4'))
        self.assertFails(r, EXIT_DATA, 'not the snapshot this incremental depends on')
        self.assertFalse(os.path.exists(self.path('r4')))
        self.assertNoLeftovers()

    def test_log_deltas(self):
        # A collection whose records are all in its log (loaded without settling): an
        # incremental stores only the log's frames after those its base holds.
        self.create('db', dim=32, metric='l2', seal='64M')
        self.ingest('db', seeded_records(7, 30000, 32, payloads=0), '-b', '1000', '--no-settle')
        info = json.loads(run('info', '--json', self.path('db')).out)
        self.assertEqual((info['segments'], info['log_records']), (0, 30000), info)
        full = self.path('full.tar.zst')
        self.snap('db', full)
        self.assertEqual(json.loads(run('restore', '--list', '--json', full).out)['format'], 1)
        self.ingest('db', seeded_records(8, 1, 32, id_offset=90000), '--no-settle')
        one = self.export('db').out
        inc1 = self.path('inc1.tar.zst')
        self.snap('db', inc1, '--since', full)
        self.assertLess(os.path.getsize(inc1), 0.02 * os.path.getsize(full))
        lst = run('restore', '--list', inc1).out
        self.assertRegex(lst, r'default/wal-\d+\.log \(bytes from \d+ here, before them in '
                         r'full\.tar\.zst\)')
        j = json.loads(run('restore', '--list', '--json', inc1).out)
        self.assertEqual(j['format'], 2)
        log = next(e for e in j['entries'] if '/wal-' in e['name'])
        self.assertEqual([(p['in'], p['at']) for p in log['pieces']], [('full.tar.zst', 0)])
        self.assertEqual(log['pieces'][0]['size'], log['stored_from'])
        # 1% more: an incremental on the incremental (the log's pieces come from both).
        self.ingest('db', seeded_records(9, 300, 32, id_offset=91000), '--no-settle')
        inc2 = self.path('inc2.tar.zst')
        self.snap('db', inc2, '--since', inc1)
        self.assertLess(os.path.getsize(inc2), 0.05 * os.path.getsize(full))
        log = next(e for e in json.loads(run('restore', '--list', '--json', inc2).out)['entries']
                   if '/wal-' in e['name'])
        self.assertEqual([p['in'] for p in log['pieces']], ['full.tar.zst', 'inc1.tar.zst'])
        r = run('restore', inc2, self.path('r2'))
        self.assertEqual(r.rc, 0, r)
        self.assertIn('from 3 archives', r.err)
        self.assertSameDb('db', 'r2', collections=(None,))
        self.assertEqual(run('check', self.path('r2')).rc, 0)
        self.assertOk(run('restore', '-q', inc1, self.path('r1')))
        self.assertEqual(self.export('r1').out, one)
        self.assertEqual(run('restore', '--verify', inc2).rc, 0)
        # Nothing logged since the base: an empty stored part.
        inc3 = self.path('inc3.tar.zst')
        self.snap('db', inc3, '--since', inc2)
        self.assertOk(run('restore', '-q', inc3, self.path('r3')))
        self.assertSameDb('db', 'r3', collections=(None,))
        # A base whose log is not this one's prefix (the collection dropped and re-created
        # under the same name): the log is stored whole.
        run('drop', self.path('db'), '-c', 'default')
        self.create('db', dim=32, metric='l2', seal='64M')
        self.ingest('db', seeded_records(10, 40, 32), '--no-settle')
        other = self.path('other.tar.zst')
        self.snap('db', other, '--since', full)
        j = json.loads(run('restore', '--list', '--json', other).out)
        self.assertFalse([e for e in j['entries'] if 'pieces' in e], j)
        self.assertOk(run('restore', '-q', other, self.path('r4')))
        self.assertSameDb('db', 'r4', collections=(None,))
        # The chain must hold the very bytes: a base replaced by another snapshot is refused
        # by its id, and pieces that do not match what their archive stores are named.
        os.rename(inc1, self.path('inc1.saved'))
        shutil.copy(full, inc1)
        self.assertFails(run('restore', inc2, self.path('r5')), EXIT_DATA,
                         'not the snapshot this incremental depends on')
        os.replace(self.path('inc1.saved'), inc1)
        with open(inc2, 'rb') as f:
            raw = zstd_decompress(f.read())
        members = tar_members(raw)
        head, body = members[0][1].split(b'\n', 1)

        def with_log(mod):
            mm = json.loads(body)
            mod(next(e for e in mm['entries'] if '/wal-' in e['name']))
            text = json.dumps(mm).encode() + b'\n'
            image = b'vdb-snapshot 2 %d %08x\n' % (len(text), crc32c(text)) + text
            return zstd_compress(tar_build([(members[0][0], image)] + members[1:]))
        self.assertRejected(with_log(lambda e: e['pieces'][1].update(crc32c='00000000')),
                            'inc1.tar.zst does not hold bytes')
        self.assertRejected(with_log(lambda e: e['pieces'][1].update(at=7)), 'malformed log delta')
        self.assertRejected(with_log(lambda e: e.update(crc32c='00000000')),
                            'its pieces do not make the file the manifest describes')
        self.assertRejected(with_log(lambda e: e.update(tail_crc32c='00000000')),
                            'checksum mismatch')
        self.assertRejected(with_log(lambda e: e['pieces'].pop()), 'malformed log delta')
        self.assertNoLeftovers()

    def test_cron_mode(self):
        self.build_db()
        d = self.path('backups')
        made = []
        for i in range(6):
            if i:
                self.ingest('db', seeded_records(20 + i, 100, 8, id_offset=100000 * i))
            r = run('snapshot', self.path('db'), '--into', d, '--keep', '2', '--full-every', '3')
            self.assertEqual(r.rc, 0, r)
            m = re.search(r'vdb-snapshot: (\S+/vdb-\d{8}T\d{6}Z\.tar\.zst): ', r.err)
            self.assertTrue(m, r.err)
            made.append(os.path.basename(m.group(1)))
            # Run 3 (full) prunes run 1: runs 2 and 3 are kept, and run 0, the base of 2.
            # Run 4 keeps 3 and 4 (based on 3), so 0 and 2 go: named, newest first.
            pruned = {3: [1], 4: [2, 0]}.get(i, [])
            self.assertEqual(r.errlines[1:], ['vdb-snapshot: removed %s/%s' % (d, made[k])
                                              for k in pruned], r.err)
        kinds = {}
        for f in os.listdir(d):
            out = run('restore', '--list', os.path.join(d, f)).out
            kinds[f] = re.search(r'kind: (.*)', out).group(1)
        # Runs 0 and 3 are full; 4 and 5 are incremental on 3; keep 2 (4, 5) plus their base.
        self.assertEqual(sorted(kinds), sorted([made[3], made[4], made[5]]))
        self.assertEqual(kinds[made[3]], 'full')
        self.assertEqual(kinds[made[5]], 'incremental on ' + made[3])
        self.assertOk(run('restore', '-q', os.path.join(d, made[5]), self.path('r')))
        self.assertSameDb('db', 'r')

    def test_a_base_is_checked_before_it_is_used(self):
        self.build_db()
        d = self.path('backups')

        def cron(*extra):
            r = run('snapshot', '-q', self.path('db'), '--into', d, '--keep', '9',
                    '--full-every', '3', *extra)
            self.assertEqual(r.rc, 0, r)
            return r, sorted(os.listdir(d))[-1]

        def kind(name):
            return re.search(r'kind: (.*)', run('restore', '--list', os.path.join(d, name)).out
                             ).group(1)
        _, full = cron()
        # A truncated full: the next run writes a full one and says why (even with -q).
        path = os.path.join(d, full)
        os.truncate(path, os.path.getsize(path) * 2 // 3)
        self.ingest('db', seeded_records(40, 50, 8, id_offset=400000))
        r, new = cron()
        self.assertRegex(r.err, r'^vdb-snapshot: warning: \S*%s: truncated archive.*: writing a '
                         r'full snapshot instead of an incremental\n$' % re.escape(full))
        self.assertEqual(kind(new), 'full')
        # The next run builds on the new full, quietly.
        r, inc = cron()
        self.assertEqual(r.err, '')
        self.assertEqual(kind(inc), 'incremental on ' + new)
        # A byte changed inside the new full (the archive is still complete).
        path = os.path.join(d, new)
        data = bytearray(self.read(path))
        data[len(data) // 2] ^= 0x40
        with open(path, 'wb') as f:
            f.write(data)
        r, full2 = cron()
        self.assertRegex(r.err, r'^vdb-snapshot: warning: \S*%s: .*: writing a full snapshot '
                         r'instead of an incremental\n$' % re.escape(new))
        self.assertEqual(kind(full2), 'full')
        self.assertEqual(run('restore', '--verify', os.path.join(d, full2)).rc, 0)
        # Something that is not a snapshot at all under the newest name.
        time.sleep(1)
        junk = os.path.join(d, 'vdb-29991231T235959Z.tar.zst')
        with open(junk, 'wb') as f:
            f.write(b'not an archive')
        r, _ = cron()
        self.assertRegex(r.err, r'^vdb-snapshot: warning: \S*vdb-29991231T235959Z\.tar\.zst: ')
        os.remove(junk)
        # --since: a damaged base is refused (65) naming it, and nothing is written; a
        # missing one is 66.
        out = os.path.join(d, 'by-hand.tar.zst')
        self.assertFails(run('snapshot', self.path('db'), '-o', out, '--since',
                             os.path.join(d, new)), EXIT_DATA,
                         '%s: cannot be the base of an incremental' % os.path.join(d, new))
        self.assertFalse(os.path.exists(out))
        self.assertFails(run('snapshot', self.path('db'), '-o', out, '--since',
                             os.path.join(d, 'nothing.tar.zst')), EXIT_NOINPUT, 'nothing.tar.zst')
        # An incremental whose dependency is gone cannot be a base either.
        self.snap('db', out, '--since', os.path.join(d, inc))
        os.rename(os.path.join(d, new), self.path('moved.tar.zst'))
        out2 = os.path.join(d, 'by-hand-2.tar.zst')
        self.assertFails(run('snapshot', self.path('db'), '-o', out2, '--since', out),
                         EXIT_NOINPUT, 'a snapshot it depends on is missing')
        # A base in another directory than the new file: refused, saying why.
        self.assertFails(run('snapshot', self.path('db'), '-o', self.path('elsewhere.tar.zst'),
                             '--since', os.path.join(d, full2)), EXIT_USAGE,
                         'an incremental must be written in the directory of the snapshot it '
                         'depends on')
        self.assertNoLeftovers(d)

    def log_chain(self, full, inc, seed, n, more):
        """A 4-d collection of n records kept in its log, `full` snapshotted, then `more`
        records, `inc` snapshotted on it (its log a delta)."""
        if not ZSTD:
            self.skipTest('zstd not installed')
        self.create('db', dim=4, metric='l2', seal='64M')
        self.ingest('db', seeded_records(seed, n, 4), '--no-settle')
        self.snap('db', full, '-q')
        self.ingest('db', seeded_records(seed + 1, more, 4, id_offset=5000), '--no-settle')
        self.snap('db', inc, '-q', '--since', full)

    def chain_dir(self, spec):
        """A directory of crafted snapshots (snapchain.craft_chain) of a small database."""
        full, inc = self.path('f.tar.zst'), self.path('i.tar.zst')
        self.log_chain(full, inc, 50, 200, 5)
        d = self.path('snaps')
        os.mkdir(d)
        craft_chain(full, inc, d, spec)
        return d

    def test_listing_and_retention(self):
        f = 'vdb-%sZ.tar.zst'
        spec = [(f % '20261001T030000', '2026-10-01T03:00:00Z', None),
                (f % '20261015T030000', '2026-10-15T03:00:00Z', None),
                (f % '20261101T030000', '2026-11-01T03:00:00Z', None),
                (f % '20261102T030000', '2026-11-02T03:00:00Z', f % '20261101T030000'),
                (f % '20261130T030000', '2026-11-30T03:00:00Z', None),
                (f % '20261201T030000', '2026-12-01T03:00:00Z', None),
                (f % '20261201T090000', '2026-12-01T09:00:00Z', f % '20261201T030000'),
                (f % '20261202T030000', '2026-12-02T03:00:00Z', f % '20261201T030000'),
                (f % '20261202T033000', '2026-12-02T03:30:00Z', f % '20261201T030000')]
        names = [n for n, _, _ in spec]
        d = self.chain_dir(spec)
        # The listing: oldest first, one line each, every field.
        r = run('snapshot', '--list', d)
        self.assertOk(r)
        lines = r.out.splitlines()
        self.assertEqual([l.split()[1] for l in lines], names)
        self.assertEqual(lines[0].split()[0], '2026-10-01T03:00:00Z')
        self.assertEqual(lines[3].split()[2:4], ['incremental', names[2]])
        self.assertEqual(lines[0].split()[2:6], ['full', '-', '1', '200'])
        self.assertTrue(all(l.endswith(' ok') for l in lines), r.out)
        j = [json.loads(l) for l in run('snapshot', '--list', d, '--json').out.splitlines()]
        self.assertEqual(set(j[3]), {'file', 'time', 'kind', 'base', 'collections', 'records',
                                     'bytes', 'status'})
        self.assertEqual((j[3]['kind'], j[3]['base'], j[3]['records'], j[3]['status']),
                         ('incremental', names[2], 205, 'ok'))
        self.assertEqual(j[0]['bytes'], os.path.getsize(os.path.join(d, names[0])))
        # A dry run removes nothing and says what it would; the base of a kept incremental
        # is kept, saying why. Daily 2: the newest of Dec 2 and of Dec 1; monthly 3: the
        # newest of Dec, Nov and Oct.
        r = run('snapshot', '--prune', d, '--keep-daily', '2', '--keep-monthly', '3',
                '--dry-run')
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(sorted(os.listdir(d)), names)
        acts = {l.split(') ')[-1].split()[1] if l.startswith('keep') else l.split()[3]:
                l.split(' 20')[0] for l in r.out.splitlines()}
        self.assertEqual(acts, {names[0]: 'would remove', names[1]: 'keep (monthly)',
                                names[2]: 'would remove', names[3]: 'would remove',
                                names[4]: 'keep (monthly)',
                                names[5]: 'keep (base of %s)' % names[6],
                                names[6]: 'keep (daily)', names[7]: 'would remove',
                                names[8]: 'keep (daily)'}, r.out)
        self.assertEqual(r.errlines, ['vdb-snapshot: would remove %s/%s' % (d, n)
                                      for n in (names[7], names[3], names[2], names[0])])
        j = [json.loads(l) for l in run('snapshot', '--prune', d, '--keep-last', '1',
                                        '--dry-run', '--json').out.splitlines()]
        self.assertEqual([(o['action'], o['why']) for o in j[-2:]],
                         [('would remove', None), ('keep', 'last')])
        self.assertEqual(j[5]['why'], 'base of ' + names[8])
        # The real prune: the same files go, named, newest first.
        r = run('snapshot', '--prune', d, '--keep-daily', '2', '--keep-monthly', '3')
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.errlines, ['vdb-snapshot: removed %s/%s' % (d, n)
                                      for n in (names[7], names[3], names[2], names[0])])
        self.assertEqual(sorted(os.listdir(d)), [names[i] for i in (1, 4, 5, 6, 8)])
        self.assertOk(run('restore', '-q', os.path.join(d, names[8]), self.path('r')))
        # Weekly: the newest of each ISO week that has snapshots (Monday Nov 30 to Dec 2 are
        # week 49; the next one back is Oct 15's).
        r = run('snapshot', '--prune', d, '--keep-weekly', '2', '--dry-run', '--json')
        kept = [o['file'] for o in map(json.loads, r.out.splitlines()) if o['action'] == 'keep']
        self.assertEqual(kept, [names[1], names[5], names[8]], r.out)
        # Hourly 1 keeps the newest only (and its base).
        r = run('snapshot', '--prune', d, '--keep-hourly', '1', '--dry-run', '--json')
        kept = [o['file'] for o in map(json.loads, r.out.splitlines()) if o['action'] == 'keep']
        self.assertEqual(kept, [names[5], names[8]], r.out)
        # An unreadable snapshot among the kept ones: nothing may be removed.
        with open(os.path.join(d, 'vdb-20261203T000000Z.tar.zst'), 'wb') as fh:
            fh.write(b'garbage')
        r = run('snapshot', '--prune', d, '--keep-last', '1', '--json')
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(len(os.listdir(d)), 6)
        self.assertIn('a kept snapshot cannot be read', r.out)
        self.assertIn('unreadable: ', run('snapshot', '--list', d).out)
        # Usage.
        self.assertUsage(run('snapshot', '--prune', d), '--prune needs a retention option')
        self.assertUsage(run('snapshot', '--list', d, '--keep-last', '2'),
                         'retention options and --dry-run go with --prune or --into')
        self.assertUsage(run('snapshot', self.path('db'), '-o', self.path('x'), '--dry-run'),
                         '--dry-run goes with --prune')
        self.assertFails(run('snapshot', '--list', self.path('nowhere')), EXIT_NOINPUT,
                         'nowhere')

    def test_directories_verify_and_restore_at_a_time(self):
        f = 'vdb-%sZ.tar.zst'
        spec = [(f % '20261201T030000', '2026-12-01T03:00:00Z', None),
                (f % '20261201T090000', '2026-12-01T09:00:00Z', f % '20261201T030000'),
                (f % '20261202T030000', '2026-12-02T03:00:00Z', None),
                (f % '20261202T090000', '2026-12-02T09:00:00Z', f % '20261202T030000')]
        names = [n for n, _, _ in spec]
        d = self.chain_dir(spec)
        r = run('restore', '--verify', d)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual([l.split()[1] for l in r.out.splitlines()], names)
        self.assertTrue(all(l.endswith(' ok') for l in r.out.splitlines()), r.out)
        self.assertOk(run('restore', '-q', '--verify', d), '')  # -q: only the bad ones
        # --at: the newest at or before the time, whatever its spelling.
        for at, want in (('2026-12-01T09:00:00Z', 1), ('2026-12-01T10:59', 1),
                         ('2026-12-02T04:00:00+01:00', 2), ('2026-12-02', 1),
                         ('2026-12-03', 3)):
            t = self.path('at-%s' % re.sub(r'\W', '', at))
            r = run('restore', d, '--at', at, t)
            self.assertEqual(r.rc, 0, r)
            self.assertIn('%s/%s: taken' % (d, names[want]), r.err)
        r = run('restore', d, self.path('newest'))
        self.assertIn(names[3], r.err)
        self.assertFails(run('restore', d, '--at', '2026-11-30', self.path('x')), EXIT_NOINPUT,
                         'no snapshot taken at or before that time')
        self.assertUsage(run('restore', d, '--at', 'yesterday', self.path('x')),
                         "invalid value 'yesterday' for --at")
        self.assertUsage(run('restore', os.path.join(d, names[0]), '--at', '2026-12-01',
                             self.path('x')), '--at goes with a restore from a directory')
        # Damage and a missing base: every snapshot gets its line, the bad ones say why,
        # and the exit status is 65.
        path = os.path.join(d, names[2])
        data = bytearray(self.read(path))
        data[len(data) // 2] ^= 0x20
        with open(path, 'wb') as fh:
            fh.write(data)
        os.remove(os.path.join(d, names[0]))
        r = run('restore', '--verify', d)
        self.assertEqual(r.rc, EXIT_DATA, r)
        st = {l.split()[1]: l for l in r.out.splitlines()}
        self.assertEqual(sorted(st), names[1:])
        self.assertIn('base missing: ', st[names[1]])
        self.assertIn('damaged: ', st[names[2]])
        self.assertIn('damaged: ', st[names[3]])  # its base is the damaged one
        self.assertIn(names[1], r.err)
        self.assertIn('base missing: ' + names[0],
                      run('snapshot', '--list', d).out.splitlines()[0])
        self.assertNoLeftovers(d)

    # ---- hostile and damaged archives ----------------------------------------------------

    def base_archive(self):
        if not ZSTD:
            self.skipTest('zstd not installed')
        self.create('db', dim=4, metric='l2', seal='8K')
        self.ingest('db', seeded_records(3, 600, 4))
        arc = self.path('s.tar.zst')
        self.snap('db', arc, '-q')
        return arc, tar_members(zstd_decompress(self.read(arc)))

    def assertRejected(self, data, *messages, name='bad.tar.zst'):
        """Restore refuses the archive with exit 65 and the messages, leaving nothing; and
        --verify refuses it the same way: it runs every check a restore runs."""
        p = self.write(name, data)
        target = self.path('target')
        r = run('restore', p, target)
        self.assertFails(r, EXIT_DATA, *messages)
        self.assertFalse(os.path.exists(target), 'target created')
        self.assertNoLeftovers()
        scratch = self.path('scratch')
        os.makedirs(scratch, exist_ok=True)
        v = run('restore', '--verify', p, env_extra={'TMPDIR': scratch})
        self.assertFails(v, EXIT_DATA, *messages)
        self.assertEqual(os.listdir(scratch), [], 'verify left its scratch copy')
        return r

    def test_hostile_entries(self):
        arc, members = self.base_archive()
        man = members[0]
        seg = next(m for m in members if m[0].name.endswith('.vdb'))
        cases = [
            ([man, (info('/tmp/vdb-evil'), b'x')] + members[1:], "'/tmp/vdb-evil': absolute path"),
            ([man, (info('../evil'), b'x')] + members[1:], "'../evil': '..' in the path"),
            ([man, (info('default/../../evil'), b'x')] + members[1:], "'..' in the path"),
            ([man, (info('default/link', tarfile.SYMTYPE, '/etc/passwd'), b'')] + members[1:],
             "'default/link': a symbolic link"),
            ([man, (info('default/hard', tarfile.LNKTYPE, 'VDB'), b'')] + members[1:],
             "'default/hard': a hard link"),
            ([man, (info('default/dev', tarfile.CHRTYPE), b'')] + members[1:],
             "'default/dev': a character device"),
            ([man, (info('default/fifo', tarfile.FIFOTYPE), b'')] + members[1:], 'a FIFO'),
            ([man, (info('default', tarfile.DIRTYPE), b'')] + members[1:], 'a directory'),
            ([man, (info('default/extra.txt'), b'x')] + members[1:],
             "entry 'default/extra.txt' is not in the manifest"),
            (members + [seg], "entry '%s' appears twice" % seg[0].name),
            ([(m, d + b'more' if m.name == seg[0].name else d) for m, d in members],
             "entry '%s' is %d bytes, the manifest says %d" % (
                 seg[0].name, len(seg[1]) + 4, len(seg[1]))),
            ([(m, d[:-1] + bytes([d[-1] ^ 1]) if m.name == seg[0].name else d)
              for m, d in members], "entry '%s': checksum mismatch" % seg[0].name),
            ([m for m in members if m[0].name != seg[0].name],
             "entry '%s' is missing" % seg[0].name),
            (members[1:], 'not a vdb snapshot'),
        ]
        for built, message in cases:
            with self.subTest(message):
                self.assertRejected(zstd_compress(tar_build(built)), message)
        self.assertFalse(os.path.exists('/tmp/vdb-evil'))
        self.assertFalse(os.path.exists(os.path.join(os.path.dirname(self.tmp), 'evil')))

    def test_hostile_manifests(self):
        arc, members = self.base_archive()
        head, body = members[0][1].split(b'\n', 1)
        m = json.loads(body)

        def with_manifest(mod, fix_crc=True):
            mm = json.loads(body)
            mod(mm)
            text = json.dumps(mm).encode() + b'\n'
            image = checked('snapshot', text) if fix_crc else head + b'\n' + text
            return zstd_compress(tar_build([(members[0][0], image)] + members[1:]))
        self.assertRejected(with_manifest(lambda mm: mm['entries'].append(
            {'name': '../x', 'size': 1, 'crc32c': '00000000'})), 'a name vdb never writes')
        self.assertRejected(with_manifest(lambda mm: mm['entries'].append(
            dict(mm['entries'][1]))), 'an entry is listed twice')
        self.assertRejected(with_manifest(lambda mm: mm.update(vdb_snapshot=3)),
                            'format version is not supported')
        self.assertRejected(with_manifest(lambda mm: mm['entries'][1].update(size=10),
                                          fix_crc=False), 'vdb-snapshot.json: header says')
        # A file the collection's MANIFEST does not name, listed and stored all the same.
        # (A copy of a real segment: anything else is refused by its header already.)
        extra = 'default/seg-00009999.vdb'
        copy = next(d for mm, d in members if '/seg-' in mm.name)
        image = checked('snapshot', json.dumps(dict(json.loads(body), entries=json.loads(
            body)['entries'] + [{'name': extra, 'size': len(copy), 'crc32c': '%08x' % crc32c(copy)}]
        )).encode() + b'\n')
        self.assertRejected(zstd_compress(tar_build([(members[0][0], image)] + members[1:] +
                                                    [(info(extra), copy)])),
                            'seg-00009999.vdb: a file the MANIFEST does not name')
        image = checked('snapshot', json.dumps(dict(json.loads(body), entries=json.loads(
            body)['entries'] + [{'name': extra, 'size': 3, 'crc32c': '%08x' % crc32c(b'abc')}]
        )).encode() + b'\n')
        self.assertRejected(zstd_compress(tar_build([(members[0][0], image)] + members[1:] +
                                                    [(info(extra), b'abc')])),
                            "entry 'default/seg-00009999.vdb': not a segment")
        self.assertRejected(with_manifest(lambda mm: mm['collections'][0].update(records=1)),
                            "holds 600 records, the manifest says 1")
        self.assertRejected(with_manifest(lambda mm: mm['collections'][0].update(records=601)),
                            "holds 600 records, the manifest says 601")
        # A log the MANIFEST does not reference, listed with its right size and CRC.
        wal = next(d for mm, d in members if '/wal-' in mm.name)
        stray = 'default/wal-00000099.log'
        image = checked('snapshot', json.dumps(dict(json.loads(body), entries=json.loads(
            body)['entries'] + [{'name': stray, 'size': len(wal), 'crc32c': '%08x' % crc32c(wal)}]
        )).encode() + b'\n')
        self.assertRejected(zstd_compress(tar_build([(members[0][0], image)] + members[1:] +
                                                    [(info(stray), wal)])),
                            'wal-00000099.log: a file the MANIFEST does not name')
        # A byte flipped in a segment and in the log, the manifest's CRC recomputed to match
        # (after a few more records, so that the log holds frames: the first one is hit).
        self.ingest('db', seeded_records(4, 5, 4), '-b', '1')
        self.snap('db', arc, '-q')
        members = tar_members(zstd_decompress(self.read(arc)))
        head, body = members[0][1].split(b'\n', 1)
        for kind, pick, at in (('segment', '/seg-', -30), ('log', '/wal-', 40)):
            with self.subTest(flipped=kind):
                name, data = next((mm.name, d) for mm, d in members if pick in mm.name)
                bad = bytearray(data)
                bad[at] ^= 0x10
                bad = bytes(bad)
                mm = json.loads(body)
                for e in mm['entries']:
                    if e['name'] == name:
                        e['crc32c'] = '%08x' % crc32c(bad)
                image = checked('snapshot', json.dumps(mm).encode() + b'\n')
                self.assertRejected(zstd_compress(tar_build(
                    [(members[0][0], image)] + [(m2, bad if m2.name == name else d)
                                                for m2, d in members[1:]])),
                    'the restored database fails its checks', os.path.basename(name))
        seg = next(i for i, e in enumerate(m['entries']) if e['name'].endswith('.vdb'))
        self.assertRejected(with_manifest(lambda mm: mm['entries'][seg].update(from_=1)
                                          or mm['entries'][seg].update({'from': 'x.tar.zst'})),
                            'missing from "depends"')
        # A manifest claiming a huge file cannot make the restore write more than it holds.
        big = with_manifest(lambda mm: mm['entries'][seg].update(size=1 << 40))
        self.assertRejected(big, 'the manifest says %d' % (1 << 40))
        # Entries whose size is declared consistently (manifest, tar header, CRC) but whose
        # own header says otherwise are refused at their first bytes, not after all their
        # zeros (1 MiB here) have been written. (Small here: crc32c() is Python.)
        seg_name, seg_data = next((mm.name, d) for mm, d in members if mm.name.endswith('.vdb')
                                  and '/seg-' in mm.name)
        wal_name = next(mm.name for mm, d in members if '/wal-' in mm.name)
        pad = b'\0' * (1 << 20)
        for name, data, message in (
                (seg_name, seg_data + pad, "its segment header says %d bytes, the manifest %d"
                 % (len(seg_data), len(seg_data) + len(pad))),
                (seg_name, pad, 'not a segment, or its header is damaged'),
                (wal_name, pad, 'not a log, or its header is damaged')):
            with self.subTest(entry=name, message=message):
                mm = json.loads(body)
                for e in mm['entries']:
                    if e['name'] == name:
                        e.update(size=len(data), crc32c='%08x' % crc32c(data))
                image = checked('snapshot', json.dumps(mm).encode() + b'\n')
                self.assertRejected(zstd_compress(tar_build(
                    [(members[0][0], image)] + [(m2, data if m2.name == name else d)
                                                for m2, d in members[1:]])),
                    "entry '%s': %s" % (name, message))

    def test_sections_checked_as_they_stream(self):
        """Restore checksums each segment section from the bytes it writes (pieces of a
        section that spans several reads combined) instead of reading the files back: a
        segment of several MiB restores, and a flipped byte in a section, far past the first
        MiB, under a recomputed manifest CRC is still found and named."""
        if not ZSTD:
            self.skipTest('zstd not installed')
        import struct
        self.create('db', dim=96, metric='l2', seal='4M')
        recs = seeded_records(12, 14000, 96, payloads=0)
        self.ingest('db', recs, '-b', '2000')
        self.ingest('db', [{'id': r['id'], 'delete': True} for r in recs[:14000:5]])
        arc = self.path('s.tar.zst')
        self.snap('db', arc, '-q')
        self.assertOk(run('restore', '-q', arc, self.path('t')))
        self.assertEqual(self.export('t').out, self.export('db').out)
        self.assertOk(run('check', '-q', self.path('t')))
        members = tar_members(zstd_decompress(self.read(arc)))
        seg = next(m for m in members if m[0].name.endswith('.vdb'))
        self.assertGreater(len(seg[1]), 3 << 20, 'the segment should span several reads')
        data = seg[1]
        nsec = struct.unpack_from('<I', data, 20)[0]
        table = [struct.unpack_from('<IIQQI', data, 128 + 32 * i) for i in range(nsec)]
        head, body = members[0][1].split(b'\n', 1)
        for kind in (1, 4):  # vectors (primary), id index (derived)
            with self.subTest(section=kind):
                off, length = next((t[2], t[3]) for t in table if t[0] == kind)
                at = off + length - 100 if kind == 1 else off + length // 2
                self.assertGreater(at, 1 << 20)
                bad = bytearray(data)
                bad[at] ^= 0x40
                bad = bytes(bad)
                m = json.loads(body)
                for e in m['entries']:
                    if e['name'] == seg[0].name:
                        e['crc32c'] = '%08x' % crc32c(bad)
                image = checked('snapshot', json.dumps(m).encode() + b'\n')
                built = [(members[0][0], image)] + [
                    (i, bad if i.name == seg[0].name else d) for i, d in members[1:]]
                self.assertRejected(zstd_compress(tar_build(built)),
                                    'checksum mismatch in section %d' % kind,
                                    os.path.basename(seg[0].name))
        # Damage to the compressed stream half way through the segment, met while the
        # decompressing thread runs ahead: named as the entry being read (by its CRC, or by
        # zstd when the block no longer decodes).
        data = bytearray(self.read(arc))
        for at in (len(data) // 2, len(data) // 2 + 1000, len(data) * 2 // 3):
            with self.subTest(compressed=at):
                bad = bytearray(data)
                bad[at] ^= 0x55
                self.assertRejected(bytes(bad), 'damaged archive', seg[0].name)

    def test_decompression_bombs(self):
        arc, members = self.base_archive()
        raw = tar_build(members)
        # Gigabytes of zeros after the end of the archive: stopped at the budget.
        bomb = zstd_compress(raw + bytes(64 << 20), '-19')
        self.assertLess(len(bomb), 1 << 20)
        self.assertRejected(bomb, 'expands beyond')
        # Real data after the end marker.
        self.assertRejected(zstd_compress(raw + b'\x01' * 512), 'data after the end')
        # A frame that needs a 2 GiB window.
        wide = subprocess.run([ZSTD, '-q', '-c', '--long=31', '--zstd=wlog=31'],
                              input=raw, stdout=subprocess.PIPE, check=True).stdout
        self.assertRejected(wide, 'window')
        # Not zstd at all (a tar that was never compressed), and an empty file.
        self.assertRejected(raw, 'it is an uncompressed tar archive, not zstd-compressed')
        self.assertRejected(b'', 'truncated archive')

    def test_flipped_bytes_and_truncation(self):
        arc, members = self.base_archive()
        data = self.read(arc)
        rng = random.Random(7)
        positions = sorted(set([0, 1, 4, 5, 10, len(data) - 1, len(data) - 4] +
                               [rng.randrange(len(data)) for _ in range(40)]))
        want = self.export('db').out
        rejected = 0
        for pos in positions:
            with self.subTest(flip=pos):
                bad = bytearray(data)
                bad[pos] ^= 1 << rng.randrange(8)
                p = self.write('bad.tar.zst', bytes(bad))
                r = run('restore', p, self.path('target'))
                if r.rc == 0:
                    # A bit zstd ignores (e.g. the frame header's unused flag): the archive
                    # still decodes to the same, fully checksummed, database.
                    self.assertEqual(self.export('target').out, want)
                    shutil.rmtree(self.path('target'))
                    continue
                rejected += 1
                self.assertFails(r, EXIT_DATA)
                self.assertFalse(os.path.exists(self.path('target')), 'target created')
                self.assertNoLeftovers()
        self.assertGreater(rejected, len(positions) * 3 // 4)
        for cut in sorted(set([1, 10, 100, len(data) // 2, len(data) - 1] +
                              [rng.randrange(len(data)) for _ in range(15)])):
            with self.subTest(cut=cut):
                self.assertRejected(data[:cut])
        self.assertRejected(data + b'garbage', 'damaged archive')

    def test_damage_in_a_chain_with_log_deltas(self):
        # Flipped bytes anywhere in an incremental with a log delta, or in its base, and
        # bytes changed inside the log's pieces themselves (the archives recompressed, so
        # zstd's own checksum passes): the restore is exact or refused (65), never wrong.
        full, inc = self.path('full.tar.zst'), self.path('inc.tar.zst')
        self.log_chain(full, inc, 60, 400, 20)
        want = self.export('db').out
        rng = random.Random(11)
        originals = {a: self.read(a) for a in (full, inc)}
        for arc, data in originals.items():
            for pos in sorted(set(rng.randrange(len(data)) for _ in range(12))):
                with self.subTest(archive=arc, flip=pos):
                    bad = bytearray(data)
                    bad[pos] ^= 1 << rng.randrange(8)
                    with open(arc, 'wb') as f:
                        f.write(bad)
                    r = run('restore', inc, self.path('t'))
                    if r.rc == 0:
                        self.assertEqual(self.export('t').out, want)
                        shutil.rmtree(self.path('t'))
                    else:
                        self.assertFails(r, EXIT_DATA)
            with open(arc, 'wb') as f:
                f.write(data)
        # Inside the log's bytes, past zstd: each archive's part of the log is checked.
        for arc, data in originals.items():
            members = tar_members(zstd_decompress(data))
            k = next(i for i, (m, _) in enumerate(members) if '/wal-' in m.name)
            for pos in (0, len(members[k][1]) // 2, len(members[k][1]) - 1):
                with self.subTest(archive=arc, log_byte=pos):
                    body = bytearray(members[k][1])
                    body[pos] ^= 0x10
                    bad = members[:k] + [(members[k][0], bytes(body))] + members[k + 1:]
                    with open(arc, 'wb') as f:
                        f.write(zstd_compress(tar_build(bad)))
                    r = run('restore', inc, self.path('t'))
                    self.assertFails(r, EXIT_DATA, '%s: entry ' % arc, '/wal-')
                    self.assertRegex(r.err, 'checksum mismatch|header is damaged')
                    self.assertFalse(os.path.exists(self.path('t')))
            with open(arc, 'wb') as f:
                f.write(data)
        self.assertOk(run('restore', '-q', inc, self.path('t')))
        self.assertEqual(self.export('t').out, want)
        self.assertNoLeftovers()

    def test_kill_during_restore(self):
        self.create('db', dim=32, metric='l2', seal='256K')
        self.ingest('db', seeded_records(4, 6000, 32), '-b', '2000')
        arc = self.path('s.tar.zst')
        self.snap('db', arc, '-q')
        want = self.export('db').out
        # Kills land anywhere within the time a whole restore takes here.
        t = time.monotonic()
        self.assertEqual(run('restore', '-q', arc, self.path('timed')).rc, 0)
        span = time.monotonic() - t
        rng = random.Random(11)
        outcomes = set()
        for i in range(12):
            target = self.path('t%d' % i)
            p = subprocess.Popen([exe('restore'), '-q', arc, target], env=ENV,
                                 stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0, span))
            p.send_signal(signal.SIGKILL)
            p.wait()
            if os.path.exists(target):
                self.assertEqual(self.export(target).out, want)
                outcomes.add('complete')
            else:
                outcomes.add('absent')
                if any(f.startswith('.t%d.restore-' % i) for f in os.listdir(self.tmp)):
                    outcomes.add('left over')
                # The next restore there removes what the killed one left, and succeeds.
                r = run('restore', '-q', arc, target)
                self.assertEqual(r.rc, 0, r)
                self.assertEqual(self.export(target).out, want)
            self.assertNoLeftovers()
        print('kill -9 during restore: %s' % ', '.join(sorted(outcomes)), file=sys.stderr)

    def test_leftovers_of_killed_commands_are_removed_and_live_ones_kept(self):
        # A leftover is removed only when the PID its name carries is gone and its flock is
        # free; a live command's temporary (a running PID, or a held lock) is kept, as is
        # anything that is not exactly such a name.
        self.create('db', dim=4)
        self.ingest('db', seeded_records(5, 50, 4))
        dead = []
        for _ in range(3):
            p = subprocess.Popen(['true'])
            p.wait()
            dead.append(p.pid)
        me = os.getpid()

        def mkdir(name, content=True):
            os.mkdir(self.path(name))
            if content:
                self.write(os.path.join(name, 'seg-00000001.vdb'), b'x' * 100)
            return name

        removed = [mkdir('.t.restore-%d-abcdef' % dead[0])]
        kept = [mkdir('.t.restore-%d-ghijkl' % dead[1]), mkdir('.t.restore-%d-mnopqr' % me),
                mkdir('.u.restore-%d-abcdef' % dead[0]), mkdir('.t.restore-%d-abc' % dead[0]),
                mkdir('.t.restore-x%d-abcdef' % dead[0])]
        kept.append('.t.restore-%d-zzzzzz' % dead[0])  # a link, never followed
        os.symlink(self.path(kept[1]), self.path(kept[-1]))
        held = os.open(self.path(kept[0]), os.O_RDONLY)
        fcntl.flock(held, fcntl.LOCK_EX)  # a restore that is still running, under a reused PID
        files_removed = ['s.tar.zst.tmp-%d' % dead[0], 'out.jsonl.tmp-%d' % dead[2]]
        files_kept = ['s.tar.zst.tmp-%d' % me, 's.tar.zst.tmp-%dx' % dead[0],
                      'other.tmp-%d' % dead[0]]
        for f in files_removed + files_kept:
            self.write(f, b'partial')
        removed += files_removed
        kept += files_kept
        backups = self.path('backups')
        os.mkdir(backups)
        cron_left = 'vdb-20200101T000000Z.tar.zst.tmp-%d' % dead[2]
        for f in (cron_left, 'notes.tmp-%d' % dead[2]):
            self.write(os.path.join('backups', f), b'partial')
        arc = self.path('s.tar.zst')
        try:
            self.snap('db', arc, '-q')
            r = run('restore', '-q', arc, self.path('t'))
            self.assertEqual(r.rc, 0, r)
            r = run('snapshot', '-q', self.path('db'), '--into', backups)
            self.assertEqual(r.rc, 0, r)
            r = run('export', self.path('db'), '-o', self.path('out.jsonl'))
            self.assertEqual(r.rc, 0, r)
            left = set(os.listdir(self.tmp))
            for f in removed:
                self.assertNotIn(f, left)
            for f in kept:
                self.assertIn(f, left)
            self.assertTrue(os.path.exists(self.path(kept[2], 'seg-00000001.vdb')))
            names = os.listdir(backups)
            self.assertNotIn(cron_left, names)
            self.assertIn('notes.tmp-%d' % dead[2], names)
            self.assertEqual(len([n for n in names if n.endswith('.tar.zst')]), 1, names)
            # Released, the lock no longer protects the first one.
            fcntl.flock(held, fcntl.LOCK_UN)
            shutil.rmtree(self.path('t'))
            r = run('restore', '-q', arc, self.path('t'))
            self.assertEqual(r.rc, 0, r)
            self.assertNotIn(kept[0], os.listdir(self.tmp))
        finally:
            os.close(held)

    # ---- vdb-check ------------------------------------------------------------------------

    def test_check_finds_damage_in_every_kind_of_file(self):
        self.create('db', dim=8, metric='cosine', seal='16K')
        recs = seeded_records(8, 2500, 8, string_ids=0.3)
        self.ingest('db', recs)
        self.ingest('db', [{'id': r['id'], 'delete': True} for r in recs[:900:7]])
        late = seeded_records(9, 300, 8, id_offset=90000)
        self.ingest('db', late, '-b', '10')
        # Deleting sealed rows, then sealing again, leaves a deletion-marks file.
        self.ingest('db', [{'id': r['id'], 'delete': True} for r in late[:100]])
        self.ingest('db', seeded_records(10, 300, 8, id_offset=95000), '-b', '10')
        base = self.path('db', 'default')
        files = sorted(os.listdir(base))
        self.assertTrue(any(f.startswith('del-') for f in files), files)
        ok = run('check', self.path('db'))
        self.assertEqual(ok.rc, 0, ok)
        self.assertIn('default: ok: ', ok.out)
        rng = random.Random(3)
        kinds = ['VDB', 'CONFIG', 'MANIFEST'] + \
            [f for f in files if f.startswith(('seg-', 'del-', 'wal-'))]
        for f in kinds:
            path = self.path('db', f) if f == 'VDB' else os.path.join(base, f)
            size = os.path.getsize(path)
            spots = [0, size // 2, size - 1]
            if f.startswith('wal-'):
                spots = [5, 40]  # header, first frame (more frames follow)
            for pos in spots:
                with self.subTest(file=f, pos=pos):
                    work = self.path('w')
                    shutil.rmtree(work, ignore_errors=True)
                    shutil.copytree(self.path('db'), work)
                    wp = os.path.join(work, f) if f == 'VDB' else os.path.join(work, 'default', f)
                    with open(wp, 'r+b') as fh:
                        fh.seek(pos)
                        b = fh.read(1)[0]
                        fh.seek(pos)
                        fh.write(bytes([b ^ (1 << rng.randrange(8))]))
                    r = run('check', work)
                    label = f.split('-')[0]
                    self.assertFails(r, EXIT_DATA, 'problem', stdout_empty=False)
                    self.assertTrue(f in r.err or label in r.err, r)
        # A snapshot refuses to back up a damaged segment.
        seg = next(f for f in files if f.startswith('seg-'))
        with open(os.path.join(base, seg), 'r+b') as fh:
            fh.seek(os.path.getsize(os.path.join(base, seg)) // 2)
            b = fh.read(1)[0]
            fh.seek(-1, 1)
            fh.write(bytes([b ^ 0x10]))
        r = run('snapshot', self.path('db'), '-o', self.path('s.tar.zst'))
        self.assertFails(r, EXIT_DATA, seg)
        self.assertFalse(os.path.exists(self.path('s.tar.zst')))

    def test_check_finds_an_id_live_twice(self):
        """Drop a segment's deletion marks from its MANIFEST (checksums made valid again):
        rows replaced by newer segments come back to life, and only the uniqueness check can
        tell."""
        self.create('db', dim=4, metric='l2', seal='8K')
        recs = seeded_records(5, 600, 4, string_ids=0)
        self.ingest('db', recs)
        self.ingest('db', [dict(r, vector=[1.0, 2.0, 3.0, 4.0]) for r in recs[:100]])
        self.ingest('db', seeded_records(6, 400, 4, string_ids=0, id_offset=5000))
        self.assertOk(run('check', '-q', self.path('db')))
        base = self.path('db', 'default')
        m = json.loads(self.read(os.path.join(base, 'MANIFEST')).split(b'\n', 1)[1])
        seg = next(g for g in m['segments'] if g['deleted'])
        seg['deleted'] = 0
        del seg['deletions']
        with open(os.path.join(base, 'MANIFEST'), 'wb') as fh:
            fh.write(checked('manifest', json.dumps(m).encode() + b'\n'))
        r = run('check', self.path('db'))
        self.assertFails(r, EXIT_DATA, 'are both live with the same id',
                         'seg-%08d.vdb' % seg['number'], stdout_empty=False)

    def test_check_graph_consistency(self):
        """A neighbour id out of range with its section checksum recomputed: only the
        structural check can see it."""
        import struct
        self.create('db', dim=4, metric='l2', seal='64K')
        self.ingest('db', seeded_records(2, 3000, 4), '-b', '3000')
        run('compact', self.path('db'))
        base = self.path('db', 'default')
        seg = next(f for f in os.listdir(base) if f.startswith('seg-'))
        path = os.path.join(base, seg)
        with open(path, 'r+b') as fh:
            h = fh.read(128)
            nsec = struct.unpack_from('<I', h, 20)[0]
            table = fh.read(32 * nsec)
            secs = [struct.unpack_from('<IIQQI', table, 32 * i) for i in range(nsec)]
            l0 = next(s for s in secs if s[0] == 9)
            fh.seek(l0[2])
            count = struct.unpack('<I', fh.read(4))[0]
            self.assertGreater(count, 0)
            fh.write(struct.pack('<I', 0xFFFFFF))  # first neighbour of node 0
            fh.seek(l0[2])
            crc = crc32c(fh.read(l0[3]))
            i = secs.index(l0)
            table = bytearray(table)
            struct.pack_into('<I', table, 32 * i + 24, crc)
            hcrc = crc32c(bytes(table), crc32c(h[:124]))
            fh.seek(124)
            fh.write(struct.pack('<I', hcrc))
            fh.write(bytes(table))
        man = self.read(os.path.join(base, 'MANIFEST')).split(b'\n', 1)[1]
        m = json.loads(man)
        for s in m['segments']:
            if 'seg-%08d.vdb' % s['number'] == seg:
                s['header_crc'] = hcrc
        with open(os.path.join(base, 'MANIFEST'), 'wb') as fh:
            fh.write(checked('manifest', json.dumps(m).encode() + b'\n'))
        r = run('check', self.path('db'))
        self.assertFails(r, EXIT_DATA, seg, 'graph node 0 has a bad level-0 neighbour list',
                         stdout_empty=False)


if __name__ == '__main__':
    main()
