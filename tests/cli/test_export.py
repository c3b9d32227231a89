#!/usr/bin/env python3
"""vdb-export: lossless round trips (floats to the bit, big and unicode ids, payloads as
written), storage order, pipes, and damaged files (segments, MANIFEST, the write-ahead log)."""

import glob
import json
import os
import random
import signal
import struct
import subprocess
import sys
from fractions import Fraction

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vdbtest  # noqa: E402
from vdbtest import (ENV, EXIT_DATA, EXIT_NOINPUT, JSON_NUMBER, bits_f32,  # noqa: E402
                     decimal_to_f32_bits, exe, minify_json, parse_export_line, run,
                     shortest_f32_digits, significant_digits, snapshot)

DIM = 8
U64_MAX = 18446744073709551615
FLT_MAX_MID = 2 ** 128 - 2 ** 103  # halfway between FLT_MAX and 2^128


def id_json(i):
    """How vdb prints an id: integers in decimal; strings with only '"', '\\' and control
    characters escaped (\\b \\f \\n \\r \\t, else \\u00xx), everything else raw UTF-8."""
    if isinstance(i, int):
        return str(i)
    out = ['"']
    for ch in i:
        o = ord(ch)
        if ch in '"\\':
            out.append('\\' + ch)
        elif ch in '\b\f\n\r\t':
            out.append({'\b': '\\b', '\f': '\\f', '\n': '\\n', '\r': '\\r', '\t': '\\t'}[ch])
        elif o < 0x20:
            out.append('\\u%04x' % o)
        else:
            out.append(ch)
    return ''.join(out) + '"'


def dec(fr):
    """An exact decimal text "Ne-K" for a non-negative Fraction with a power-of-two
    denominator."""
    d = fr.denominator
    k = d.bit_length() - 1
    return fr.numerator * 5 ** k, k


def float_texts(rng, bits):
    """Several spellings of the float32 `bits`, some exact and some not."""
    x = bits_f32(bits)
    return [repr(x), '%.9g' % x, '%.17g' % x, '%.3g' % x, '%.25e' % x,
            ('-' if bits >> 31 else '') + '%de-%d' % dec(abs(Fraction(x)))]


def awkward_floats(rng, n):
    """n number texts: special values, random finite bit patterns in several spellings, and
    decimals exactly at, just above and just below the midpoint between two floats."""
    out = ['1e-45', '-1e-45', '1.4e-45', '-0.0', '-0', '0', '0.0', '0e10', '3.4028235e38',
           '-3.4028235e38', '3.40282347e+38', str(FLT_MAX_MID - 1), '1.17549435e-38',
           '1.1754942e-38', '1E-7', '1e+21', '16777217', '0.1', '123456789012345678901234567890',
           '0.' + '0' * 50 + '1', '7.006492321624085e-46', '7.006492321624086e-46']
    while len(out) < n:
        r = rng.random()
        b = rng.getrandbits(32)
        if (b >> 23) & 0xFF == 0xFF:
            continue
        if r < 0.15:  # subnormals
            b &= 0x807FFFFF
        if r < 0.6:
            out.append(rng.choice(float_texts(rng, b)))
        elif (b & 0x7FFFFFFF) < 0x7F7FFFFF:
            a = abs(Fraction(bits_f32(b)))
            nxt = abs(Fraction(bits_f32((b & 0x7FFFFFFF) + 1)))
            m, k = dec((a + nxt) / 2)
            sign = '-' if b >> 31 else ''
            out.append(rng.choice(['%s%de-%d' % (sign, m, k), '%s%d1e-%d' % (sign, m, k + 1),
                                   '%s%d9e-%d' % (sign, m - 1, k + 1)]))
    return out[:n]


def awkward_records(seed, n):
    """(lines, expected) where expected is a list of (id, [float32 bits], payload text or None)
    in input order."""
    rng = random.Random(seed)
    floats = awkward_floats(rng, n * DIM)
    ids = [0, 1, 2 ** 53 + 1, 2 ** 63, U64_MAX, U64_MAX - 1, 'plain', '日本語', 'emoji 🎉',
           'a"b\\c\n\t\u0001\u001f\u007f/', 'é by escape', 'mixed/ß/ø', 'x' * 256, 'é' * 128,
           '123', ' ', '\u2028']
    payloads = [
        '{ "n" : 12345678901234567890 , "f" : 1.0e+2, "neg": -0, "e": 1E400, "d": 0.10 }',
        '{"s": "caf\\u00e9 \\ud83c\\udf89 \\"q\\" \\/ \\\\ \\n", "raw": "日本 🎉", "t": "\\t"}',
        '{"nested": {"a": [1, 2.50, {"b": null}], "t": true, "f": false}, "empty": {}, '
        '"arr": [ ]}',
        '{}',
        '{"big": -98765432109876543210.123456789e-5, "list": [1e-400, -1E+400]}',
        None,
    ]
    lines, expected = [], []
    for i in range(n):
        rid = ids[i] if i < len(ids) else (rng.getrandbits(64) if rng.random() < 0.5 else
                                           'id-%d-%s' % (i, rng.choice(['é', 'Ω', '', '\\'])))
        toks = floats[i * DIM:(i + 1) * DIM]
        bits = [decimal_to_f32_bits(t) for t in toks]
        if None in bits:  # overflow: not a valid record; use another spelling
            toks = ['1' if b is None else t for t, b in zip(toks, bits)]
            bits = [decimal_to_f32_bits(t) for t in toks]
        payload = payloads[i % len(payloads)]
        if isinstance(rid, str):
            id_text = json.dumps(rid, ensure_ascii=rng.random() < 0.5)
            if rid == 'é by escape':
                id_text = '"\\u00e9 by escape"'
        else:
            id_text = str(rid)
        line = '{"id":%s, "vector":[%s]%s}' % (id_text, ', '.join(toks),
                                               ', "payload": ' + payload if payload else '')
        lines.append(line)
        expected.append((rid, bits, minify_json(payload) if payload else None))
    return lines, expected


class RoundTrip(vdbtest.VdbTestCase):

    def check_export(self, text, expected, ordered=True):
        """Every exported record: the id as written by vdb, each float the same bits as
        ingested and in shortest form, and the payload minified but otherwise as written."""
        self.assertTrue(text.endswith('\n') or text == '')
        got = {}
        order = []
        for line in vdbtest.split_lines(text):
            rid, toks, payload = parse_export_line(line)
            self.assertTrue(line.startswith('{"id":%s,"vector":[' % id_json(rid)), line)
            got[json.dumps(rid)] = (toks, payload)
            order.append(rid)
        self.assertEqual(len(got), len(order), 'duplicate ids in the export')
        if ordered:
            self.assertEqual(order, [e[0] for e in expected])
        self.assertEqual(sorted(got), sorted(json.dumps(e[0]) for e in expected))
        for rid, bits, payload in expected:
            toks, got_payload = got[json.dumps(rid)]
            self.assertEqual(len(toks), DIM)
            for t, b in zip(toks, bits):
                self.assertRegex(t, JSON_NUMBER)
                self.assertEqual(decimal_to_f32_bits(t), b,
                                 'id %r: %s is not float32 0x%08x' % (rid, t, b))
                self.assertLessEqual(significant_digits(t), shortest_f32_digits(b),
                                     'id %r: %s is not the shortest form' % (rid, t))
            self.assertEqual(got_payload, payload, 'payload of %r' % rid)

    def round_trip(self, e1, seal=None):
        """Ingests an export into a fresh collection and checks the new export is identical."""
        name = 'fresh%d' % len(os.listdir(self.path('db')))
        self.create(name=name, dim=DIM, seal=seal)
        self.ingest('db', e1, name=name)
        e2 = self.export(name=name).out
        self.assertEqual(e2, e1, 're-ingesting the export changed it')
        return e2

    def test_awkward_values(self):
        lines, expected = awkward_records(1, 120)
        self.create(dim=DIM)
        r = self.ingest('db', lines, check=False)
        self.assertEqual(r.rc, 0, r)
        self.assertSummary(r, committed=len(lines))
        e1 = self.export().out
        self.check_export(e1, expected)
        self.round_trip(e1)
        self.round_trip(e1, seal='4K')

    def test_specific_spellings(self):
        self.create(dim=DIM)
        self.ingest('db', ['{"id":1,"vector":[1e-45,-0.0,3.4028235e38,1.17549435e-38,0.1,'
                           '16777217,1e21,1e-7]}',
                           '{"id":2,"vector":[100,1.5e10,123456789,0.000001,1e-6,-2.5,'
                           '0.30000001,1e+30]}'])
        self.assertEqual(self.export().out,
                         '{"id":1,"vector":[1e-45,-0,3.4028235e+38,1.1754944e-38,0.1,16777216,'
                         '1e+21,1e-7]}\n'
                         '{"id":2,"vector":[100,15000000000,123456790,0.000001,0.000001,-2.5,'
                         '0.3,1e+30]}\n')

    def test_after_seals(self):
        lines, expected = awkward_records(2, 300)
        self.create(dim=DIM, seal='4K')
        r = self.ingest('db', lines, '--batch', '37', check=False)
        self.assertEqual(r.rc, 0, r)
        # Seals happened (the merge policy may have combined their segments since).
        segs = glob.glob(self.path('db', 'default', 'seg-*.vdb'))
        self.assertGreaterEqual(len(segs), 1)
        e1 = self.export().out
        self.check_export(e1, expected)
        self.round_trip(e1)
        self.round_trip(e1, seal='4K')

    def test_after_deletes_and_upserts(self):
        lines, expected = awkward_records(3, 200)
        self.create(dim=DIM, seal='4K')
        self.ingest('db', lines[:150], '--batch', '50')
        live = {json.dumps(e[0]): e for e in expected[:150]}
        rng = random.Random(4)
        ops = []
        for e in rng.sample(expected[:150], 40):  # deletes, in segments and in the log
            ops.append('{"id":%s,"delete":true}' % json.dumps(e[0]))
            live.pop(json.dumps(e[0]))
        more_lines, more = awkward_records(5, 60)
        for i, (line, e) in enumerate(zip(more_lines[:30], more[:30])):
            # upserts of existing ids (some deleted above), alternating payload / none
            target = expected[i * 5][0]
            obj = json.loads(line)
            new_line = line.replace(line[:line.index(', "vector"')],
                                    '{"id":%s' % json.dumps(target), 1)
            if i % 2 and 'payload' in obj:
                new_line = new_line[:new_line.index(', "payload"')] + '}'
                e = (target, e[1], None)
            else:
                e = (target, e[1], e[2])
            ops.append(new_line)
            live[json.dumps(target)] = e
        for line, e in zip(lines[150:], expected[150:]):
            ops.append(line)
            live[json.dumps(e[0])] = e
        self.ingest('db', ops, '--batch', '23')
        self.ingest('db', ['{"id":%s,"delete":true}' % json.dumps(expected[199][0]),
                           '{"id":"never-there","delete":true}'])
        live.pop(json.dumps(expected[199][0]))
        e1 = self.export().out
        self.check_export(e1, list(live.values()), ordered=False)
        self.round_trip(e1)

    def test_storage_order(self):
        """Sealed segments oldest first, then the log in commit order."""
        self.create(dim=2, seal='4K')
        first = ['{"id":%d,"vector":[%d,0]}' % (i, i) for i in range(300, 0, -1)]
        self.ingest('db', first)  # sealed
        self.assertTrue(glob.glob(self.path('db', 'default', 'seg-*.vdb')))
        self.ingest('db', ['{"id":"b","vector":[1,1]}', '{"id":0,"vector":[0,0]}',
                           '{"id":"a","vector":[1,1]}'])
        ids = self.exported_ids()
        self.assertEqual(ids, list(range(300, 0, -1)) + ['b', 0, 'a'])

    def test_empty_collection(self):
        self.create()
        self.assertOk(self.export(), out='')
        self.assertOk(run('export', self.path('db'), '-q'), out='')

    def test_everything_deleted(self):
        self.create(seal='4K')
        recs = vdbtest.seeded_records(8, 120, 4)
        self.ingest('db', recs)
        self.ingest('db', [{'id': r['id'], 'delete': True} for r in recs])
        self.assertOk(self.export(), out='')
        self.ingest('db', [{'id': 1, 'vector': [1, 2, 3, 4]}])
        self.assertOk(self.export(), out='{"id":1,"vector":[1,2,3,4]}\n')

    def test_named_collection(self):
        self.create(name='one')
        self.create(name='two')
        self.ingest('db', ['{"id":1,"vector":[1,1,1,1]}'], name='one')
        self.ingest('db', ['{"id":2,"vector":[2,2,2,2]}'], name='two')
        self.assertOk(run('export', self.path('db'), '-c', 'two'),
                      out='{"id":2,"vector":[2,2,2,2]}\n')
        self.assertOk(run('export', '--collection=one', self.path('db')),
                      out='{"id":1,"vector":[1,1,1,1]}\n')


class ConcurrentReaders(vdbtest.VdbTestCase):

    def test_readers_see_whole_batches_while_the_writer_seals(self):
        """Each export and query sees every batch committed before it started and none in
        part, while a writer commits batches of 10 and seals every few of them."""
        self.create(dim=4, seal='4K')
        n = 3000
        f = self.write('in.jsonl', ['{"id":%d,"vector":[%d,1,2,3],"payload":{"i":%d}}' %
                                    (i, i, i) for i in range(n)])
        w = self.proc('ingest', self.path('db'), '--batch', '10', '--no-settle', '-q', f,
                      stdin=False)
        seen = []
        while True:
            done = w.p.poll() is not None
            r = run('export', self.path('db'))
            self.assertOk(r)
            ids = [json.loads(l)['id'] for l in r.lines]
            self.assertEqual(ids, list(range(len(ids))))
            self.assertEqual(len(ids) % 10, 0, 'part of a batch is visible')
            seen.append(len(ids))
            q = run('query', self.path('db'), '-k', '1', '--vector=[0,1,2,3]')
            self.assertOk(q)
            if done:
                break
        self.assertEqual(w.wait(), 0, w.err)
        self.assertEqual(seen[-1], n)
        self.assertEqual(seen, sorted(seen))
        self.assertGreater(len(glob.glob(self.path('db', 'default', 'seg-*.vdb'))), 3)


class Errors(vdbtest.VdbTestCase):

    def test_missing_collection_and_db(self):
        self.create()
        r = run('export', self.path('db'), '-c', 'nope')
        self.assertFails(r, EXIT_NOINPUT, "vdb-export: collection 'nope' does not exist in %s"
                         % self.path('db'))
        r = run('export', self.path('nodb'))
        self.assertFails(r, EXIT_NOINPUT, 'vdb-export: %s: No such file or directory'
                         % self.path('nodb'))
        os.mkdir(self.path('plain'))
        r = run('export', self.path('plain'))
        self.assertFails(r, EXIT_NOINPUT, 'not a vdb database (no VDB file)')
        r = run('export', self.path('db'), '-c', '../db')
        self.assertFails(r, vdbtest.EXIT_USAGE, "invalid collection name '../db'")

    def test_db_is_a_file(self):
        p = self.write('db', 'x')
        self.assertFails(run('export', p), EXIT_NOINPUT, 'vdb-export: %s: not a directory' % p)

    def test_write_error(self):
        self.create()
        self.ingest('db', [{'id': i, 'vector': [1, 2, 3, 4]} for i in range(10)])
        vdbtest.write_fails(self, 'export', self.path('db'))

    def test_help_and_version_write_errors(self):
        for opt in ('--help', '--version'):
            with self.subTest(opt=opt):
                vdbtest.write_fails(self, 'export', opt)

    def test_usage_help_version(self):
        self.assertUsage(run('export'), 'vdb-export: missing database directory operand')
        self.create()
        self.assertUsage(run('export', self.path('db'), 'extra'), 'vdb-export: too many operands')
        self.assertUsage(run('export', self.path('db'), '--bogus'),
                         "vdb-export: unknown option '--bogus'")
        r = run('export', '--help')
        self.assertOk(r)
        self.assertTrue(r.out.startswith('Usage: vdb-export DB'))
        self.assertIn('Exit status', r.out)
        r = run('export', '--version')
        self.assertOk(r)
        self.assertRegex(r.out, r'^vdb-export \(vdb\) \d+\.\d+\.\d+\n$')


class Pipes(vdbtest.VdbTestCase):

    def setUp(self):
        super().setUp()
        self.create(dim=64)
        self.ingest('db', vdbtest.seeded_records(9, 3000, 64, string_ids=0, payloads=0))
        self.first = self.export().lines[0] + '\n'

    def test_head_closes_the_pipe(self):
        r = subprocess.run(['sh', '-c', 'vdb-export "$1" | head -1', 'sh', self.path('db')],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, timeout=60)
        self.assertEqual(r.returncode, 0)
        self.assertEqual(r.stdout.decode(), self.first)
        self.assertEqual(r.stderr, b'', 'vdb-export complained about the closed pipe')

    def reader_goes_away(self, ignore_sigpipe):
        def pre():
            signal.signal(signal.SIGPIPE, signal.SIG_IGN if ignore_sigpipe else signal.SIG_DFL)
        p = subprocess.Popen(['vdb-export', self.path('db')], executable=exe('export'),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV,
                             preexec_fn=pre)
        line = p.stdout.readline()
        p.stdout.close()
        rc = p.wait(30)
        err = p.stderr.read()
        p.stderr.close()
        self.assertEqual(line.decode(), self.first)
        return rc, err

    def test_sigpipe_default(self):
        rc, err = self.reader_goes_away(False)
        self.assertEqual(rc, -signal.SIGPIPE)
        self.assertEqual(err, b'')

    def test_sigpipe_ignored(self):
        rc, err = self.reader_goes_away(True)
        self.assertEqual(err, b'', 'vdb-export complained about EPIPE')
        self.assertEqual(rc, 0)


def flip(path, offset):
    with open(path, 'r+b') as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x5A]))


class Damage(vdbtest.VdbTestCase):

    def section(self, seg, kind):
        """(offset, length) of a section of a segment file (see libvdb/storage/segment.c)."""
        with open(seg, 'rb') as f:
            data = f.read()
        nsec = struct.unpack_from('<I', data, 20)[0]
        for i in range(nsec):
            k, _, off, length = struct.unpack_from('<IIQQ', data, 128 + 32 * i)
            if k == kind:
                return off, length
        raise AssertionError('no section %d in %s' % (kind, seg))

    def rows(self, seg):
        with open(seg, 'rb') as f:
            return struct.unpack_from('<Q', f.read(32), 24)[0]

    def test_flipped_byte_in_segment_vectors(self):
        self.create(dim=4, seal='4K')
        recs = vdbtest.seeded_records(10, 250, 4)
        self.ingest('db', recs[:200], '--batch', '60')
        self.ingest('db', recs[200:])
        segs = sorted(glob.glob(self.path('db', 'default', 'seg-*.vdb')))
        self.assertGreaterEqual(len(segs), 2)
        intact = self.export().lines
        # Damage the newest segment: only the records of the older, intact ones come out.
        off, length = self.section(segs[-1], 1)
        flip(segs[-1], off + length // 2)
        r = run('export', self.path('db'))
        self.assertFails(r, EXIT_DATA, r'^vdb-export: (.*/)?%s: checksum mismatch' %
                         os.path.basename(segs[-1]), stdout_empty=False, regex=True)
        n = sum(self.rows(s) for s in segs[:-1])
        self.assertEqual(r.lines, intact[:n])
        # Damage the oldest segment: nothing at all is printed.
        off, length = self.section(segs[0], 1)
        flip(segs[0], off + 3)
        r = run('export', self.path('db'))
        self.assertFails(r, EXIT_DATA, r'^vdb-export: (.*/)?%s: checksum mismatch' %
                         os.path.basename(segs[0]), regex=True)

    def test_truncated_manifest(self):
        self.create(dim=4, seal='4K')
        self.ingest('db', vdbtest.seeded_records(11, 120, 4))
        mf = self.path('db', 'default', 'MANIFEST')
        orig = self.read(mf)
        for size in (0, 10, len(orig) // 2, len(orig) - 1):
            with self.subTest(size=size):
                with open(mf, 'wb') as f:
                    f.write(orig[:size])
                before = snapshot(self.path('db'), skip=['LOCK'])
                for cmd, args, inp in (('export', [], None),
                                       ('query', ['--vector=[1,2,3,4]'], None),
                                       ('query', [], '[1,2,3,4]\n'),
                                       ('query', ['--id', '1'], None),
                                       ('ingest', [], '{"id":1,"vector":[1,2,3,4]}\n')):
                    r = run(cmd, self.path('db'), *args, input=inp)
                    self.assertFails(r, EXIT_DATA, 'MANIFEST')
                    self.assertRegex(r.errlines[0], r'^vdb-%s: .*MANIFEST' % cmd)
                self.assertEqual(snapshot(self.path('db'), skip=['LOCK']), before)
        with open(mf, 'wb') as f:
            f.write(orig)
        self.assertEqual(len(self.export().lines), 120)

    def wal_with_batches(self, db='db'):
        """A collection whose log holds three frames (batches of two records)."""
        self.create(db, dim=4)
        self.ingest(db, ['{"id":%d,"vector":[%d,0,0,0]}' % (i, i) for i in range(6)],
                    '--batch', '2')
        wal = glob.glob(self.path(db, 'default', 'wal-*.log'))
        self.assertEqual(len(wal), 1)
        return wal[0]

    def test_corrupt_middle_of_wal(self):
        for where in ('body', 'header'):
            with self.subTest(where=where):
                db = 'db-' + where
                wal = self.wal_with_batches(db)
                flip(wal, 32 + (24 + 10 if where == 'body' else 2))
                before = snapshot(self.path(db), skip=['LOCK'])
                name = os.path.basename(wal)
                for cmd, args, inp in (('export', [], None),
                                       ('query', ['--vector=[1,2,3,4]'], None),
                                       ('query', [], '[1,2,3,4]\n'),
                                       ('query', ['--id', '1'], None),
                                       ('ingest', [], '{"id":9,"vector":[1,2,3,4]}\n')):
                    r = run(cmd, self.path(db), *args, input=inp)
                    self.assertFails(r, EXIT_DATA, r'^vdb-%s: (.*/)?%s: .*offset 32\b' %
                                     (cmd, name), regex=True)
                # Nothing was "repaired" by cutting the log.
                self.assertEqual(snapshot(self.path(db), skip=['LOCK']), before)

    def test_torn_tail_is_ignored_then_cut(self):
        wal = self.wal_with_batches()
        size = os.path.getsize(wal)
        with open(wal, 'ab') as f:
            f.write(bytes(random.Random(12).getrandbits(8) for _ in range(37)))
        want = ''.join('{"id":%d,"vector":[%d,0,0,0]}\n' % (i, i) for i in range(6))
        self.assertOk(self.export(), out=want)
        r = self.query('db', '-k', '1', '--vector=[5,0,0,0]')
        self.assertOk(r, out='{"results":[{"id":5,"score":0}]}\n')
        r = self.ingest('db', ['{"id":"new","vector":[7,7,7,7]}'], '-q')
        self.assertOk(r, out='')
        self.assertOk(self.export(), out=want + '{"id":"new","vector":[7,7,7,7]}\n')
        self.assertLess(os.path.getsize(wal), size + 37 + 24 + 60)

    def test_torn_last_frame(self):
        """A crash in the middle of writing the last batch loses that batch only."""
        wal = self.wal_with_batches()
        size = os.path.getsize(wal)
        frame = (size - 32) // 3
        with open(wal, 'r+b') as f:
            f.truncate(size - frame // 2)
        want = ''.join('{"id":%d,"vector":[%d,0,0,0]}\n' % (i, i) for i in range(4))
        self.assertOk(self.export(), out=want)
        self.ingest('db', ['{"id":9,"vector":[9,9,9,9]}'])
        self.assertOk(self.export(), out=want + '{"id":9,"vector":[9,9,9,9]}\n')


if __name__ == '__main__':
    vdbtest.main()
