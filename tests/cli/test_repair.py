#!/usr/bin/env python3
"""vdb-check --repair: derived sections of a segment (HNSW graph, payload indexes, id index,
norms) are rebuilt from its records; primary damage (vectors, ids, payloads, deletion files,
the log) is reported and never "repaired" by dropping records.

Each case damages one section of a sealed segment, either flipping bytes (the checksum no
longer matches) or rewriting values and recomputing the section's checksum, the header
checksum and the MANIFEST's copy of it (so only the structural checks can see it). Then
vdb-check must fail, --repair must fix it, vdb-check must pass, and export and queries must
equal those of the undamaged collection.
"""
import json
import os
import struct
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vdbtest  # noqa: E402
from test_snapshot import checked, crc32c  # noqa: E402
from vdbtest import EXIT_DATA, EXIT_USAGE, run  # noqa: E402

DIM = 8
SEC_VECTORS, SEC_IDS, SEC_ID_INDEX, SEC_PAYLOADS = 1, 2, 4, 6
SEC_NORMS, SEC_HNSW_META, SEC_HNSW_L0, SEC_PAYLOAD_INDEX = 7, 8, 9, 12


class Segment:
    """A segment file's header and section table, and edits that keep it consistent."""

    def __init__(self, path):
        self.path = path
        with open(path, 'rb') as f:
            self.head = f.read(128)
            n = struct.unpack_from('<I', self.head, 20)[0]
            self.table = bytearray(f.read(32 * n))
        self.secs = [struct.unpack_from('<IIQQI', self.table, 32 * i) for i in range(n)]

    def section(self, kind, nth=0):
        return [s for s in self.secs if s[0] == kind][nth]

    def read(self, sec):
        with open(self.path, 'rb') as f:
            f.seek(sec[2])
            return f.read(sec[3])

    def write(self, sec, data, fix_crc):
        """Replaces the section's content (same length); with fix_crc the section checksum and
        the header checksum are recomputed. Returns the new header checksum."""
        assert len(data) == sec[3]
        with open(self.path, 'r+b') as f:
            f.seek(sec[2])
            f.write(data)
            if not fix_crc:
                return None
            i = self.secs.index(sec)
            struct.pack_into('<I', self.table, 32 * i + 24, crc32c(data))
            hcrc = crc32c(bytes(self.table), crc32c(self.head[:124]))
            f.seek(124)
            f.write(struct.pack('<I', hcrc))
            f.write(bytes(self.table))
            return hcrc


class RepairTest(vdbtest.VdbTestCase):
    def setUp(self):
        super().setUp()
        self.db = self.path('db')
        r = run('create', self.db, '--dim', DIM, '--metric', 'cosine', '--seal-size', '64K',
                '--index-field', 'tag:keyword', '--index-field', 'n:int')
        self.assertOk(r)
        recs = vdbtest.seeded_records(7, 3000, DIM, payloads=0.8)
        self.ingest('db', vdbtest.records_text(recs), '-b', '3000')
        self.assertOk(run('compact', '-q', self.db))  # one segment with a graph
        # Deletions (a deletion file), replacements and a log tail on top.
        more = [{'id': r['id'], 'delete': True} for r in recs[::10]]
        more += vdbtest.seeded_records(8, 40, DIM, id_offset=10 ** 6)
        self.ingest('db', vdbtest.records_text(more), '-b', '100')
        self.coll = os.path.join(self.db, 'default')
        self.queries = ''.join(json.dumps(r['vector']) + '\n'
                               for r in vdbtest.seeded_records(9, 25, DIM))
        self.before = self.answers()
        self.assertOk(run('check', '-q', self.db))

    def answers(self):
        out = [self.export().out]
        for args in (['--exact'], ['--ef', '1000'], ['--exact', '--filter', '{"tag":"a"}'],
                     ['--filter', '{"n":{"$lt":800}}', '--ef', '1000'],
                     ['--filter', '{"tag":{"$in":["b","x y"]}}', '--payload']):
            r = self.query('db', '-k', '5', *args, input=self.queries)
            self.assertOk(r)
            out.append(r.out)
        r = self.query('db', '--count', '--filter', '{"tag":"ü"}')
        self.assertOk(r)
        return out + [r.out]

    def graph_segment(self):
        segs = sorted(f for f in os.listdir(self.coll) if f.startswith('seg-'))
        for s in segs:
            seg = Segment(os.path.join(self.coll, s))
            if any(x[0] == SEC_HNSW_L0 for x in seg.secs):
                return s, seg
        self.fail('no segment with a graph: %s' % segs)

    def set_manifest_crc(self, name, hcrc):
        path = os.path.join(self.coll, 'MANIFEST')
        m = json.loads(self.read(path).split(b'\n', 1)[1])
        for s in m['segments']:
            if 'seg-%08d.vdb' % s['number'] == name:
                s['header_crc'] = hcrc
        with open(path, 'wb') as fh:
            fh.write(checked('manifest', json.dumps(m).encode() + b'\n'))

    def damage(self, kind, edit, fix_crc, nth=0):
        name, seg = self.graph_segment()
        sec = seg.section(kind, nth)
        data = bytearray(seg.read(sec))
        edit(data)
        hcrc = seg.write(sec, bytes(data), fix_crc)
        if fix_crc:
            self.set_manifest_crc(name, hcrc)
        return name

    def assertRepairs(self, name, *messages):
        r = run('check', self.db)
        self.assertFails(r, EXIT_DATA, name, *messages, stdout_empty=False)
        deleted = json.loads(self.read(os.path.join(self.coll, 'MANIFEST')).split(b'\n', 1)[1])
        r = run('check', '--repair', self.db)
        self.assertEqual(r.rc, 0, r)
        self.assertIn('default: repaired: %s rewritten from its records' % name, r.out)
        self.assertIn('default: ok: ', r.out)
        self.assertNotIn(name, os.listdir(self.coll), 'the damaged file is removed')
        self.assertOk(run('check', '-q', self.db))
        after = json.loads(self.read(os.path.join(self.coll, 'MANIFEST')).split(b'\n', 1)[1])
        self.assertEqual(sum(s['deleted'] for s in after['segments']),
                         sum(s['deleted'] for s in deleted['segments']), 'deletion marks kept')
        self.assertEqual(self.answers(), self.before)
        # The collection stays writable: an ingest and a compaction on top.
        self.ingest('db', vdbtest.records_text(vdbtest.seeded_records(10, 5, DIM, id_offset=99)))
        self.assertOk(run('compact', '-q', self.db))
        self.assertOk(run('check', '-q', self.db))

    def test_graph_neighbour_out_of_range_crc_recomputed(self):
        def edit(d):
            struct.pack_into('<I', d, 4, 0xFFFFFF)  # first neighbour of node 0
        name = self.damage(SEC_HNSW_L0, edit, True)
        self.assertRepairs(name, 'graph node 0 has a bad level-0 neighbour list')

    def test_graph_rows_unreachable_crc_recomputed(self):
        # Every list consistent, but no link leads to two live rows: searches could never
        # return them (what a build that left rows unlinked would look like).
        name, seg = self.graph_segment()
        meta = seg.read(seg.section(SEC_HNSW_META))
        m0, entry = struct.unpack_from('<I', meta, 4)[0], struct.unpack_from('<Q', meta, 16)[0]
        lost = [r for r in (1, 2, 3) if r != entry][:2]  # rows 1-9 are live (every 10th deleted)

        def edit(d):
            for node in range(len(d) // (4 * (m0 + 1))):
                base = node * 4 * (m0 + 1)
                count = struct.unpack_from('<I', d, base)[0]
                links = struct.unpack_from('<%dI' % count, d, base + 4)
                kept = [x for x in links if x not in lost]
                struct.pack_into('<I%dI' % len(kept), d, base, len(kept), *kept)
        self.damage(SEC_HNSW_L0, edit, True)
        # A snapshot of it restores as it was made (the records are all there): vdb-check
        # of the copy finds the same, and --repair there fixes it too.
        archive, copy = self.path('s.tar.zst'), self.path('copy')
        self.assertOk(run('snapshot', '-q', self.db, '-o', archive))
        self.assertOk(run('restore', '-q', archive, copy))
        self.assertFails(run('check', copy), EXIT_DATA, '2 live rows unreachable',
                         stdout_empty=False)
        self.assertEqual(run('check', '-q', '--repair', copy).rc, 0)
        self.assertOk(run('check', '-q', copy))
        self.assertRepairs(name, '2 live rows unreachable in the graph (row %d and others)'
                           % lost[0], 'searches never return them', '--repair rebuilds it')

    def test_graph_bytes_flipped(self):
        def edit(d):
            for i in range(100, 140):
                d[i] ^= 0x5A
        name = self.damage(SEC_HNSW_L0, edit, False)
        self.assertRepairs(name, 'checksum mismatch in section 9', 'derived data')

    def test_graph_header_damaged_crc_recomputed(self):
        # A graph header that does not even open: the segment cannot be loaded as a whole.
        def edit(d):
            for i in range(len(d)):
                d[i] ^= 0xFF
        name = self.damage(SEC_HNSW_META, edit, True)
        r = self.export(check=False)
        self.assertEqual(r.rc, EXIT_DATA, r)
        self.assertRepairs(name)

    def test_payload_index_entries_changed_crc_recomputed(self):
        name, seg = self.graph_segment()
        sec = seg.section(SEC_PAYLOAD_INDEX, 0)
        data = seg.read(sec)
        plen = struct.unpack_from('<I', data, 4)[0]
        first = 16 + (plen + 7) // 8 * 8

        def edit(d):
            # The first entry now names another row: sorted and in range, but wrong.
            row = struct.unpack_from('<Q', d, first + 8)[0]
            struct.pack_into('<Q', d, first + 8, 0 if row else 1)
        name = self.damage(SEC_PAYLOAD_INDEX, edit, True)
        self.assertRepairs(name, "payload index of field 'tag' does not match the payloads")

    def test_payload_index_bytes_flipped(self):
        def edit(d):
            d[-3] ^= 0x10
        name = self.damage(SEC_PAYLOAD_INDEX, edit, False, nth=1)
        self.assertRepairs(name, 'checksum mismatch in section 12')

    def test_id_index_and_norms_flipped(self):
        def edit(d):
            d[17] ^= 0x01
        name = self.damage(SEC_ID_INDEX, edit, False)
        self.damage(SEC_NORMS, edit, False)
        self.assertRepairs(name, 'checksum mismatch in section 4', 'checksum mismatch in section 7')

    def test_two_segments_repaired_at_once(self):
        # A second segment with a graph (a bulk commit), then damage in both.
        more = vdbtest.seeded_records(11, 3000, DIM, id_offset=2 * 10 ** 6)
        # From a file: a pipe that runs dry midway would commit (and seal) what came so far.
        path = self.path('more.jsonl')
        with open(path, 'w') as f:
            f.write(vdbtest.records_text(more))
        # --no-settle: settling would merge it into the first.
        self.ingest('db', None, '-b', '3000', '--no-settle', files=(path,))
        self.before = self.answers()
        # Only the segments the MANIFEST names: a merge the ingest started may leave the
        # files it replaced behind for the next writer to remove.
        with open(os.path.join(self.coll, 'MANIFEST'), 'rb') as fh:
            named = {'seg-%08d.vdb' % g['number']
                     for g in json.loads(fh.read().split(b'\n', 1)[1])['segments']}
        segs = []
        for f in sorted(os.listdir(self.coll)):
            seg = Segment(os.path.join(self.coll, f)) if f in named else None
            if seg and any(x[0] == SEC_HNSW_L0 for x in seg.secs):
                segs.append((f, seg))
        self.assertEqual(len(segs), 2, segs)
        for (f, seg), kind in zip(segs, (SEC_PAYLOAD_INDEX, SEC_HNSW_L0)):
            sec = seg.section(kind)
            data = bytearray(seg.read(sec))
            data[-5] ^= 0x40
            seg.write(sec, bytes(data), False)
        r = run('check', '--repair', self.db)
        self.assertEqual(r.rc, 0, r)
        for f, _ in segs:
            self.assertIn('repaired: %s rewritten' % f, r.out)
        self.assertOk(run('check', '-q', self.db))
        self.assertEqual(self.answers(), self.before)

    def test_kill_9_during_repair(self):
        # Wherever the kill lands, the collection is the old version (damaged, records all
        # there) or the repaired one: the next --repair finishes the job or has nothing to
        # do, and the result answers exactly as before the damage.
        import random
        import subprocess
        import time
        rng = random.Random(5)
        for it in range(6):
            name = self.damage(SEC_HNSW_L0, lambda d: d.__setitem__(7, d[7] ^ 0x11), False)
            p = subprocess.Popen([vdbtest.exe('check'), '--repair', '-q', self.db],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 env=vdbtest.ENV)
            time.sleep(rng.uniform(0, 0.08))
            p.kill()
            p.wait()
            r = run('check', '--repair', self.db)
            self.assertEqual(r.rc, 0, r)
            self.assertOk(run('check', '-q', self.db))
            self.assertEqual(self.answers(), self.before)
            self.assertFalse([f for f in os.listdir(self.coll) if '.tmp-' in f])
            del name

    def test_primary_damage_is_reported_not_repaired(self):
        for kind in (SEC_VECTORS, SEC_PAYLOADS, SEC_IDS):
            with self.subTest(kind=kind):
                name, seg = self.graph_segment()
                sec = seg.section(kind)
                good = seg.read(sec)
                data = bytearray(good)
                data[len(data) // 2] ^= 0x04
                seg.write(sec, bytes(data), False)
                files = sorted(os.listdir(self.coll))
                r = run('check', '--repair', self.db)
                self.assertFails(r, EXIT_DATA, '%s: checksum mismatch in section %d' % (name, kind),
                                 'found that --repair cannot fix', stdout_empty=False)
                self.assertNotIn('repaired', r.out)
                self.assertEqual(sorted(os.listdir(self.coll)), files, 'nothing rewritten')
                seg.write(sec, good, False)
                self.assertOk(run('check', '-q', self.db))
        # Primary and derived damage in the same segment: nothing is rewritten either.
        name = self.damage(SEC_HNSW_L0, lambda d: d.__setitem__(9, d[9] ^ 1), False)
        self.damage(SEC_VECTORS, lambda d: d.__setitem__(9, d[9] ^ 1), False)
        r = run('check', '--repair', self.db)
        self.assertFails(r, EXIT_DATA, 'section 1', 'section 9', stdout_empty=False)
        self.assertIn(name, os.listdir(self.coll))

    def test_damaged_log_is_reported(self):
        wal = next(f for f in os.listdir(self.coll) if f.startswith('wal-'))
        path = os.path.join(self.coll, wal)
        size = os.path.getsize(path)
        with open(path, 'r+b') as f:
            f.seek(40)
            b = f.read(1)
            f.seek(40)
            f.write(bytes([b[0] ^ 0x20]))
        r = run('check', '--repair', self.db)
        self.assertFails(r, EXIT_DATA, wal, stdout_empty=False)
        self.assertEqual(os.path.getsize(path), size, 'the log is left as it is')

    def test_sound_database_is_left_alone(self):
        files = sorted(os.listdir(self.coll))
        r = run('check', '--repair', self.db)
        self.assertOk(r)
        self.assertNotIn('repaired', r.out)
        self.assertEqual(sorted(os.listdir(self.coll)), files)

    def test_usage(self):
        self.assertUsage(run('check', '--repair'), 'missing')
        self.assertUsage(run('check', '--repair=yes', self.db), 'repair')


if __name__ == '__main__':
    unittest.main(verbosity=2)
