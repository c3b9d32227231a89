#!/usr/bin/env python3
"""Bulk commits: a batch of at least the collection's seal threshold is written directly as a
sealed segment (with its graph and payload indexes), not to the log. Everything a user can
observe must be what the normal, logged path gives for the same input: exports, exact and
filtered queries, counts, upserts over existing ids (sealed or still in the log), deletes in
the same input, and vdb-check. Vector files are batched up to the seal threshold by default.
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vdbtest  # noqa: E402
from vdbtest import run  # noqa: E402

DIM = 8
SEAL = '16K'


def wal_size(coll_dir):
    wals = [f for f in os.listdir(coll_dir) if f.startswith('wal-')]
    assert len(wals) == 1, wals
    return os.path.getsize(os.path.join(coll_dir, wals[0]))


def fvecs(rows):
    return b''.join(struct.pack('<i%df' % len(r), len(r), *r) for r in rows)


class BulkTest(vdbtest.VdbTestCase):
    def make(self, name):
        r = run('create', self.path('db'), '-c', name, '--dim', DIM, '--metric', 'l2',
                '--seal-size', SEAL, '--index-field', 'tag:keyword', '--index-field', 'n:int')
        self.assertOk(r)
        return self.path('db', name)

    def same(self, a, b):
        """Both collections answer everything identically."""
        for order in ('id', 'storage'):
            ra = run('export', self.path('db'), '-c', a, '--order', order)
            rb = run('export', self.path('db'), '-c', b, '--order', order)
            self.assertOk(ra)
            self.assertOk(rb)
            if order == 'id':
                self.assertEqual(ra.out, rb.out)
            else:  # segment boundaries differ, so storage order may too; the records do not
                self.assertEqual(sorted(ra.lines), sorted(rb.lines))
        queries = ''.join(json.dumps(r['vector']) + '\n'
                          for r in vdbtest.seeded_records(99, 20, DIM))
        for extra in (['--exact'], ['--exact', '-q', '--filter', '{"tag":"a"}'],
                      ['--filter', '{"n":{"$gte":100}}', '-q', '--exact', '--payload', '--vector']):
            qa = self.query('db', '-k', '7', *extra, name=a, input=queries)
            qb = self.query('db', '-k', '7', *extra, name=b, input=queries)
            self.assertOk(qa)
            self.assertEqual(qa.out, qb.out, extra)
        for f in ('{}', '{"tag":"b"}', '{"n":{"$lt":500}}'):
            ca = self.query('db', '--count', '-q', '--filter', f, name=a)
            cb = self.query('db', '--count', '-q', '--filter', f, name=b)
            self.assertOk(ca)
            self.assertEqual(ca.out, cb.out, f)
        for c in (a, b):
            self.assertOk(run('check', self.path('db'), '-c', c, '-q'))

    def test_jsonl_batches_match_the_logged_path(self):
        normal, bulk = self.make('normal'), self.make('bulk')
        empty = wal_size(bulk)
        base = vdbtest.seeded_records(1, 600, DIM)
        # The same history in both: sealed segments, then an unsealed log tail.
        for c in ('normal', 'bulk'):
            self.ingest('db', vdbtest.records_text(base[:500]), '--batch', '50', name=c)
            self.ingest('db', vdbtest.records_text(base[500:]), '--batch', '20', name=c)
        self.assertGreater(wal_size(bulk), empty, 'the tail is in the log')
        # Then one input with new ids, replacements of sealed and of logged ids, deletes of
        # old ids and of ids upserted earlier in the same input, and re-upserts after those.
        new = vdbtest.seeded_records(2, 900, DIM, id_offset=10000)
        ops = []
        for i, r in enumerate(new):
            ops.append(r)
            if i % 7 == 0:
                old = dict(base[(i * 13) % 600], vector=r['vector'])
                ops.append(old)
            if i % 11 == 0:
                ops.append({'id': base[(i * 17 + 3) % 600]['id'], 'delete': True})
            if i % 29 == 0 and i:
                ops.append({'id': new[i - 5]['id'], 'delete': True})
            if i % 31 == 0 and i > 40:
                ops.append(dict(new[i - 40], payload={'n': i, 'tag': 'a'}))
        ops.append({'id': 'never-existed', 'delete': True})
        text = vdbtest.records_text(ops)
        src = self.write('ops.jsonl', text)  # a file: batches are not cut by pipe timing
        self.ingest('db', None, '--batch', '50', name='normal', files=[src])
        r = self.ingest('db', None, '--batch', '1000000', '-v', name='bulk', files=[src])
        self.assertIn('committed batch 1: %d records' % len(ops), r.err)
        self.assertEqual(wal_size(bulk), empty, 'no log bytes: sealed directly')
        state = vdbtest.apply_ops({r['id']: r for r in base}, ops)
        got = self.exported(name='bulk')
        self.assertEqual(sorted(map(json.dumps, got)), sorted(map(json.dumps, state)))
        self.assertEqual(got, self.exported(name='normal'))
        self.same('normal', 'bulk')
        # A later logged batch on top of the bulk segment still wins over it.
        later = [dict(ops[0], vector=[1.0] * DIM), {'id': ops[1]['id'], 'delete': True}]
        for c in ('normal', 'bulk'):
            self.ingest('db', vdbtest.records_text(later), name=c)
        self.same('normal', 'bulk')
        self.assertEqual(self.exported(name='bulk')[ops[0]['id']]['vector'], [1.0] * DIM)

    def test_vector_files_are_batched_to_the_seal_threshold(self):
        normal, bulk = self.make('normal'), self.make('bulk')
        mapped = self.make('mapped')
        empty = wal_size(bulk)
        rows = [r['vector'] for r in vdbtest.seeded_records(3, 3000, DIM)]
        src = self.write('a.fvecs', fvecs(rows))
        # Ids 0..2999, then the first 1000 rows again over ids 0..999 (upserts), from a
        # sidecar: both collections must end up identical.
        ids = self.write('ids.txt', ''.join('%d\n' % i for i in range(1000)))
        part = self.write('b.fvecs', fvecs([[v + 1 for v in r] for r in rows[:1000]]))
        self.ingest('db', None, '--batch', '100', name='normal', files=[src])
        self.ingest('db', None, '--batch', '100', '--ids', ids, name='normal', files=[part])
        # Read from a pipe: 16K of rows (about 48 bytes each) per batch, a few hundred rows.
        r = run('ingest', self.path('db'), '-c', 'bulk', '-v', '-f', 'fvecs', '-',
                input=fvecs(rows))
        self.assertEqual(r.rc, 0, r)
        batches = r.err.count('committed batch')
        self.assertGreater(batches, 3, r.err)
        self.assertLess(batches, 3000 // 100, r.err)
        self.assertEqual(wal_size(bulk), empty, 'the last block is a segment too')
        # Mapped from a file: no buffer to bound, one block, one segment.
        r = self.ingest('db', None, '-v', name='mapped', files=[src])
        self.assertEqual(r.err.count('committed batch'), 1, r.err)
        self.assertIn('committed batch 1: 3000 records (rows 0-2999)', r.err)
        self.assertEqual(wal_size(mapped), empty)
        self.assertEqual(len([f for f in os.listdir(mapped) if f.startswith('seg-')]), 1)
        for c in ('bulk', 'mapped'):
            self.ingest('db', None, '--ids', ids, name=c, files=[part])
            self.same('normal', c)
            self.assertEqual(len(self.exported(name=c)), 3000)

    def test_bulk_commit_over_a_killed_logged_tail_recovers(self):
        # A crash left orphans and a torn log; a bulk commit after recovery must keep them
        # out and the acknowledged tail in.
        coll = self.make('c')
        base = vdbtest.seeded_records(4, 200, DIM)
        self.ingest('db', vdbtest.records_text(base), '--batch', '10', name='c')
        with open(os.path.join(coll, 'seg-99999999.vdb'), 'wb') as f:
            f.write(b'orphan')
        wal = [f for f in os.listdir(coll) if f.startswith('wal-')][0]
        with open(os.path.join(coll, wal), 'ab') as f:
            f.write(b'\x01\x02torn')
        more = vdbtest.seeded_records(5, 1500, DIM, id_offset=5000)
        self.ingest('db', vdbtest.records_text(more), '--batch', '1000000', name='c')
        self.assertNotIn('seg-99999999.vdb', os.listdir(coll))
        self.assertEqual(len(self.exported(name='c')), 1700)
        self.assertOk(run('check', self.path('db'), '-c', 'c', '-q'))


def npy(rows, shape=None):
    """A '<f4' C-order .npy (version 1.0, data 64-byte aligned, as numpy.save writes it)."""
    shape = shape or (len(rows), len(rows[0]))
    h = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }" % shape
    h += ' ' * (63 - (10 + len(h)) % 64) + '\n'
    return (b'\x93NUMPY\x01\x00' + struct.pack('<H', len(h)) + h.encode() +
            b''.join(struct.pack('<%df' % len(r), *r) for r in rows))


BLOCK = 16 * 1024 // (4 * DIM)  # rows of a block at the 16K threshold


class VectorBlocksTest(vdbtest.VdbTestCase):
    """.npy/.fvecs with row-number ids and no --batch: stored block by block (mapped from a
    plain file, read from a pipe or zstd), each block of the seal threshold a segment of its
    own. Results must be those of the row-by-row path, errors included."""

    def make(self, name, index='hnsw'):
        self.assertOk(run('create', self.path('db'), '-c', name, '--dim', DIM, '--metric', 'l2',
                          '--seal-size', SEAL, '--index', index))
        return self.path('db', name)

    def rows(self, seed, n):
        return [r['vector'] for r in vdbtest.seeded_records(seed, n, DIM)]

    def test_blocks_match_the_row_path(self):
        rows = self.rows(11, 3 * BLOCK + 200)  # the last block: over a quarter of a full one
        files = {'npy': self.write('a.npy', npy(rows)), 'fvecs': self.write('a.fvecs', fvecs(rows))}
        over = self.write('b.fvecs', fvecs([[v * 2 for v in r] for r in rows[:BLOCK + 9]]))
        for index in ('flat', 'hnsw'):
            for fmt, path in sorted(files.items()):
                with self.subTest(index=index, fmt=fmt):
                    ref, blk = 'ref-%s-%s' % (index, fmt), 'blk-%s-%s' % (index, fmt)
                    self.make(ref, index)
                    coll = self.make(blk, index)
                    empty = wal_size(coll)
                    self.ingest('db', None, '--batch', '100', name=ref, files=[path])
                    # From a pipe: blocks of the seal threshold's size.
                    # (--no-settle: settling would seal a logged last block.)
                    r = run('ingest', self.path('db'), '-c', blk, '-v', '--no-settle', '-f', fmt,
                            '-', input=self.read(path))
                    self.assertEqual(r.rc, 0, r)
                    self.assertIn('committed batch 1: %d records (rows 0-%d)' % (BLOCK, BLOCK - 1),
                                  r.err)
                    self.assertIn('committed batch 4: 200 records (rows %d-%d)'
                                  % (3 * BLOCK, 3 * BLOCK + 199), r.err)
                    segs = [f for f in os.listdir(coll) if f.startswith('seg-')]
                    if fmt == 'npy':  # the header says which block is the last: a segment
                        self.assertEqual(wal_size(coll), empty)
                    else:  # on a pipe, a short .fvecs block may be a pause: logged
                        self.assertGreater(wal_size(coll), empty)
                    # Mapped from the file: one block, one segment, nothing logged.
                    mapped = self.make('map-%s-%s' % (index, fmt), index)
                    r = self.ingest('db', None, '-v', name='map-%s-%s' % (index, fmt), files=[path])
                    self.assertIn('committed batch 1: %d records (rows 0-%d)'
                                  % (len(rows), len(rows) - 1), r.err)
                    self.assertEqual(wal_size(mapped), empty)
                    self.same(ref, 'map-%s-%s' % (index, fmt))
                    self.assertTrue(segs)
                    # A logged tail (with payloads), then rows over ids in both.
                    tail = vdbtest.records_text(vdbtest.seeded_records(12, 5, DIM))
                    for c in (ref, blk):
                        self.ingest('db', tail, name=c)
                    self.ingest('db', None, '--batch', '7', '--id-offset', '3', name=ref,
                                files=[over])
                    self.ingest('db', None, '--id-offset', '3', name=blk, files=[over])
                    self.same(ref, blk)

    def same(self, a, b):
        for order in ('id', 'storage'):
            ra = run('export', self.path('db'), '-c', a, '--order', order)
            rb = run('export', self.path('db'), '-c', b, '--order', order)
            self.assertOk(ra)
            self.assertEqual(sorted(ra.lines), sorted(rb.lines))
            if order == 'id':
                self.assertEqual(ra.out, rb.out)
        q = ''.join(json.dumps(r) + '\n' for r in self.rows(13, 5))
        qa = self.query('db', '-k', '9', '--exact', '--payload', name=a, input=q)
        self.assertOk(qa)
        self.assertEqual(qa.out, self.query('db', '-k', '9', '--exact', '--payload', name=b,
                                            input=q).out)
        for c in (a, b):
            self.assertOk(run('check', self.path('db'), '-c', c, '-q'))

    def test_bad_rows_after_whole_blocks(self):
        n = 3 * BLOCK + 50
        good = self.rows(14, n)
        bad_at = 2 * BLOCK + 17
        nan_rows = good[:bad_at] + [[1.0, float('nan')] + [0.0] * (DIM - 2)] + good[bad_at + 1:]
        dim_fvecs = fvecs(good[:bad_at]) + struct.pack('<i', DIM + 1) + b'\0' * 4 * (DIM + 1)
        # (name, data, message and rows committed from a pipe, message for a regular file
        # when its size alone shows the damage: then nothing of it is committed)
        cases = [
            ('nan.npy', npy(nan_rows), 'row %d, column 1: NaN is not a valid vector value' % bad_at,
             bad_at, None),
            ('dim.fvecs', dim_fvecs, "row %d: dimension is %d; the collection's is %d"
             % (bad_at, DIM + 1, DIM), bad_at, "row %d: dimension is %d; the collection's is %d"
             % (bad_at, DIM + 1, DIM)),
            ('cut.fvecs', fvecs(good)[:-5], 'row %d is truncated: the file ends after %d of its '
             '%d bytes' % (n - 1, 4 + 4 * DIM - 5, 4 + 4 * DIM), n - 1,
             'truncated: the file holds %d rows of %d bytes (dimension %d) and %d bytes'
             % (n - 1, 4 + 4 * DIM, DIM, 4 + 4 * DIM - 5)),
            ('cut.npy', npy(good)[:-5], 'row %d is truncated: the file ends after %d of its %d '
             'bytes' % (n - 1, 4 * DIM - 5, 4 * DIM), n - 1,
             'truncated: the header declares %d rows of %d bytes, the file holds %d and %d bytes'
             % (n, 4 * DIM, n - 1, 4 * DIM - 5)),
            ('short.npy', npy(good, shape=(n + 3, DIM)),
             'the file ends at row %d; the .npy header declares %d rows' % (n, n + 3), n,
             'truncated: the header declares %d rows of %d bytes, the file holds %d and 0 bytes'
             % (n + 3, 4 * DIM, n)),
            ('long.npy', npy(good, shape=(n - 2, DIM)),
             'data follows the %d rows the .npy header declares' % (n - 2), n - 2,
             '%d bytes follow the %d rows the .npy header declares' % (2 * 4 * DIM, n - 2)),
        ]
        for name, data, pipe_msg, pipe_before, file_msg in cases:
            for how in ('file', 'pipe'):
                msg, before = pipe_msg, pipe_before
                with self.subTest(name=name, how=how):
                    coll = '%s-%s' % (name.replace('.', '-'), how)
                    self.make(coll, 'flat')
                    path = self.write(name, data)
                    if how == 'file':
                        r = self.ingest('db', None, name=coll, check=False, files=[path])
                        where = path
                        if file_msg:
                            msg, before = file_msg, 0
                    else:
                        r = run('ingest', self.path('db'), '-c', coll, '-f', name.split('.')[1], '-',
                                input=data)
                        where = 'standard input'
                    self.assertFails(r, vdbtest.EXIT_DATA, 'vdb-ingest: %s: %s' % (where, msg))
                    self.assertSummary(r, before)
                    got = self.exported(name=coll)
                    self.assertEqual(sorted(got), list(range(before)))
                    self.assertEqual([[vdbtest.f32(x) for x in got[i]['vector']]
                                      for i in range(before)],
                                     [[vdbtest.f32(x) for x in v] for v in good[:before]])
                    self.assertOk(run('check', self.path('db'), '-c', coll, '-q'))
                    self.assertFalse([f for f in os.listdir(self.path('db', coll)) if 'tmp-' in f])

    def test_zero_vector_under_cosine_and_ids_at_the_end_of_the_range(self):
        rows = self.rows(15, BLOCK + 40)
        rows[BLOCK + 5] = [0.0] * DIM
        self.assertOk(run('create', self.path('db'), '-c', 'cos', '--dim', DIM, '--metric',
                          'cosine', '--seal-size', SEAL))
        r = self.ingest('db', None, name='cos', check=False, files=[self.write('z.npy', npy(rows))])
        self.assertFails(r, vdbtest.EXIT_DATA, 'vdb-ingest: %s: row %d: a zero vector has no '
                         'direction' % (self.path('z.npy'), BLOCK + 5))
        self.assertEqual(len(self.exported(name='cos')), BLOCK + 5)
        # Ids stop at 2^64-1: the rows that have one are stored, then the error.
        self.make('end', 'flat')
        top = 2 ** 64 - 1
        r = self.ingest('db', None, '--id-offset', str(top - BLOCK - 9), name='end', check=False,
                        files=[self.write('e.fvecs', fvecs(rows[:BLOCK + 5] + rows[BLOCK + 6:]))])
        self.assertFails(r, vdbtest.EXIT_DATA, 'vdb-ingest: row %d: row number plus --id-offset is '
                         'beyond the largest id' % (BLOCK + 10))
        ids = self.exported_ids(name='end')
        self.assertEqual(len(ids), BLOCK + 10)
        self.assertEqual(max(ids), top)

    def test_compressed_and_mixed_inputs(self):
        rows = self.rows(16, 2 * BLOCK + 3)
        self.make('ref', 'flat')
        self.make('mix', 'flat')
        self.ingest('db', None, '--batch', '50', name='ref',
                    files=[self.write('all.fvecs', fvecs(rows + rows[:10]))])
        # JSON lines, then .npy (blocks), then a zstd .fvecs (read, not mapped): one run.
        head = ''.join(json.dumps({'id': i, 'vector': [0.5] * DIM}) + '\n' for i in range(4))
        files = [self.write('h.jsonl', head), self.write('a.npy', npy(rows))]
        zstd = shutil.which('zstd')
        if zstd:
            src = self.write('t.fvecs', fvecs(rows[:10]))
            subprocess.run([zstd, '-q', '-f', src, '-o', src + '.zst'], check=True)
            files.append(src + '.zst')
        else:
            files.append(self.write('t.fvecs', fvecs(rows[:10])))
        r = self.ingest('db', None, '-v', name='mix', files=files)
        self.assertSummary(r, 4 + len(rows) + 10)
        want = self.exported(name='ref')
        got = self.exported(name='mix')
        # The .npy rows are ids 0.. (over the JSON lines' 0..3), the .fvecs rows continue the
        # row count: ids len(rows)..; the reference has the same rows in one file.
        self.assertEqual(got, want)


if __name__ == '__main__':
    unittest.main(verbosity=2)
