#!/usr/bin/env python3
"""Bulk commits: a batch of at least the collection's seal threshold is written directly as a
sealed segment (with its graph and payload indexes), not to the log. Everything a user can
observe must be what the normal, logged path gives for the same input: exports, exact and
filtered queries, counts, upserts over existing ids (sealed or still in the log), deletes in
the same input, and vdb-check. Vector files are batched up to the seal threshold by default.
"""
import json
import os
import struct
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
        for extra in (['--exact'], ['--exact', '--filter', '{"tag":"a"}'],
                      ['--filter', '{"n":{"$gte":100}}', '--exact', '--payload', '--vector']):
            qa = self.query('db', '-k', '7', *extra, name=a, input=queries)
            qb = self.query('db', '-k', '7', *extra, name=b, input=queries)
            self.assertOk(qa)
            self.assertEqual(qa.out, qb.out, extra)
        for f in ('{}', '{"tag":"b"}', '{"n":{"$lt":500}}'):
            ca = self.query('db', '--count', '--filter', f, name=a)
            cb = self.query('db', '--count', '--filter', f, name=b)
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
        empty = wal_size(bulk)
        rows = [r['vector'] for r in vdbtest.seeded_records(3, 3000, DIM)]
        src = self.write('a.fvecs', fvecs(rows))
        # Ids 0..2999, then the first 1000 rows again over ids 0..999 (upserts), from a
        # sidecar: both collections must end up identical.
        ids = self.write('ids.txt', ''.join('%d\n' % i for i in range(1000)))
        part = self.write('b.fvecs', fvecs([[v + 1 for v in r] for r in rows[:1000]]))
        self.ingest('db', None, '--batch', '100', name='normal', files=[src])
        self.ingest('db', None, '--batch', '100', '--ids', ids, name='normal', files=[part])
        r = self.ingest('db', None, '-v', name='bulk', files=[src])
        # 16K of log-encoded rows (about 48 bytes each) per batch: a few hundred rows.
        batches = r.err.count('committed batch')
        self.assertGreater(batches, 3, r.err)
        self.assertLess(batches, 3000 // 100, r.err)
        self.assertLessEqual(wal_size(bulk) - empty, 16 * 1024, 'only the last, small batch')
        self.ingest('db', None, '--ids', ids, name='bulk', files=[part])
        self.same('normal', 'bulk')
        self.assertEqual(len(self.exported(name='bulk')), 3000)

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


if __name__ == '__main__':
    unittest.main(verbosity=2)
