#!/usr/bin/env python3
"""Format migrations without NumPy: .npy written and read byte by byte here, .fvecs/.bvecs,
CSV (checked with Python's csv module), zstd streams (with the zstd program when
installed), sidecar ids and payloads, atomic outputs, progress, and every error path with
its exit code and message. The NumPy round trips are in test_numpy.py."""

import csv
import glob
import io
import json
import math
import os
import pty
import shutil
import struct
import subprocess
import sys
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vdbtest  # noqa: E402
from vdbtest import (ENV, EXIT_DATA, EXIT_IO, EXIT_NOINPUT, EXIT_USAGE, bits_f32,  # noqa: E402
                     exe, f32, f32_bits, run)

DIM = 4
ZSTD = shutil.which('zstd')
AWKWARD = [0.0, -0.0, bits_f32(1), bits_f32(0x7f7fffff), -bits_f32(0x7f7fffff), 1e-38,
           bits_f32(0x3eaaaaab), 123456.789]


def vectors(seed, n, dim=DIM):
    return [[r for r in rec['vector']] for rec in vdbtest.seeded_records(seed, n, dim)]


def npy_bytes(rows, descr='<f4', fortran=False, version=(1, 0), shape=None, data=None):
    """A .npy file written by hand (the layout numpy.save uses)."""
    fmt = {'<f4': '<f', '>f4': '>f', '<f8': '<d', '>f8': '>d', '<f2': '<e', '>f2': '>e'}
    if shape is None:
        shape = (len(rows), len(rows[0]) if rows else DIM)
    if data is None:
        order = [x for row in rows for x in row]
        if fortran:
            order = [rows[r][c] for c in range(shape[1]) for r in range(shape[0])]
        data = b''.join(struct.pack(fmt[descr], x) for x in order)
    shape_text = '(%s)' % ''.join('%d, ' % d for d in shape) if len(shape) == 1 else \
        '(%s)' % ', '.join(str(d) for d in shape)
    if not isinstance(descr, str) or descr.startswith('['):
        descr_text = descr if isinstance(descr, str) else repr(descr)
    else:
        descr_text = repr(descr)
    header = "{'descr': %s, 'fortran_order': %s, 'shape': %s, }" % (
        descr_text, 'True' if fortran else 'False', shape_text)
    lenbytes = 2 if version[0] == 1 else 4
    total = 8 + lenbytes + len(header) + 1
    header += ' ' * ((64 - total % 64) % 64) + '\n'
    out = b'\x93NUMPY' + bytes(version)
    out += struct.pack('<H' if lenbytes == 2 else '<I', len(header))
    return out + header.encode('utf-8') + data


def parse_npy(data):
    """(shape, descr, fortran, values) of a .npy file, read by hand."""
    assert data[:6] == b'\x93NUMPY', data[:10]
    major = data[6]
    if major == 1:
        (hlen,), off = struct.unpack('<H', data[8:10]), 10
    else:
        (hlen,), off = struct.unpack('<I', data[8:12]), 12
    header = data[off:off + hlen].decode()
    assert (off + hlen) % 64 == 0, 'data is not 64-byte aligned'
    import ast
    d = ast.literal_eval(header)
    body = data[off + hlen:]
    n = len(body) // 4
    return d['shape'], d['descr'], d['fortran_order'], list(struct.unpack('<%df' % n, body))


def fvecs_bytes(rows, dim=None, kind='f'):
    out = b''
    for row in rows:
        d = len(row) if dim is None else dim
        out += struct.pack('<i', d)
        out += struct.pack('<%d%s' % (len(row), 'f' if kind == 'f' else 'B'), *row)
    return out


def bits(v):
    return [f32_bits(x) for x in v]


def stderr_on_a_terminal(cmd, *args):
    """Runs vdb-<cmd> with stderr on a pseudo-terminal: (exit status, what it wrote there)."""
    master, slave = pty.openpty()
    try:
        p = subprocess.Popen(['vdb-' + cmd] + [str(a) for a in args], executable=exe(cmd),
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave,
                             env=ENV)
        os.close(slave)
        slave = None
        err = b''
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO once the child has closed the terminal
                break
            if not chunk:
                break
            err += chunk
        return p.wait(60), err
    finally:
        if slave is not None:
            os.close(slave)
        os.close(master)


class Base(vdbtest.VdbTestCase):
    def vecs_of(self, db='db', name=None):
        """Exported records in storage order as (id, vector bits, payload); the vectors come
        from an .fvecs export (JSON numbers lose the sign of -0 in Python)."""
        recs = [json.loads(l) for l in self.export(db, name).lines]
        r = run('export', self.dbpath(db), *(['-c', name] if name else []), '-f', 'fvecs')
        self.assertEqual(r.rc, 0, r)
        data, vecs = r.outb, []
        while data:
            (d,) = struct.unpack('<i', data[:4])
            vecs.append(list(struct.unpack('<%dI' % d, data[4:4 + 4 * d])))
            data = data[4 + 4 * d:]
        self.assertEqual(len(vecs), len(recs))
        return [(r['id'], v, r.get('payload')) for r, v in zip(recs, vecs)]

    def need_zstd(self):
        if not ZSTD:
            self.skipTest('the zstd program is not installed (scripts/deps installs it)')

    def zstd(self, src, dst):
        subprocess.run([ZSTD, '-q', '-f', src, '-o', dst], check=True)


class Vectors(Base):
    def test_fvecs_round_trip_is_byte_identical(self):
        rows = vectors(1, 300) + [AWKWARD[:DIM], AWKWARD[DIM:]]
        src = self.write('in.fvecs', fvecs_bytes(rows))
        self.create(dim=DIM)
        r = self.ingest('db', None, '--batch', '64', files=[src])
        self.assertSummary(r, len(rows), batches=5)
        got = self.vecs_of()
        self.assertEqual([g[0] for g in got], list(range(len(rows))), 'ids are row numbers')
        self.assertEqual([g[1] for g in got], [bits(v) for v in rows])
        for order in ('storage', 'id'):
            out = self.path('out-%s.fvecs' % order)
            self.assertOk(run('export', self.path('db'), '-o', out, '--order', order))
            self.assertEqual(self.read(out), self.read(src), order)
        # To standard output too, with --format.
        r = run('export', self.path('db'), '--format', 'fvecs')
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.outb, self.read(src))

    def test_id_offset_and_several_files(self):
        a, b = vectors(2, 5), vectors(3, 7)
        self.create(dim=DIM)
        self.ingest('db', None, '--id-offset', '1000',
                    files=[self.write('a.fvecs', fvecs_bytes(a)),
                           self.write('b.npy', npy_bytes(b))])
        got = self.vecs_of()
        self.assertEqual([g[0] for g in got], list(range(1000, 1012)), 'rows count on')
        self.assertEqual([g[1] for g in got], [bits(v) for v in a + b])
        r = self.ingest('db', None, '--id-offset', str(2 ** 64 - 2), check=False,
                        files=[self.write('c.fvecs', fvecs_bytes(a[:3]))])
        self.assertFails(r, EXIT_DATA, 'row 2: row number plus --id-offset is beyond the '
                                       'largest id')
        self.assertSummary(r, 2)

    def test_bvecs(self):
        rows = [[0, 1, 2, 255], [7, 7, 7, 7], [200, 100, 50, 25]]
        self.create(dim=DIM)
        self.ingest('db', None, files=[self.write('x.bvecs', fvecs_bytes(rows, kind='b'))])
        self.assertEqual([g[1] for g in self.vecs_of()], [bits(map(float, r)) for r in rows])

    def test_npy_dtypes_orders_and_versions(self):
        rows = vectors(4, 9)
        want = [bits(v) for v in rows]
        cases = {'f4': npy_bytes(rows), 'f4-big': npy_bytes(rows, '>f4'),
                 'f8': npy_bytes(rows, '<f8'), 'f8-big': npy_bytes(rows, '>f8'),
                 'fortran': npy_bytes(rows, fortran=True),
                 'fortran-f8-big': npy_bytes(rows, '>f8', fortran=True),
                 'v2': npy_bytes(rows, version=(2, 0)), 'v3': npy_bytes(rows, version=(3, 0)),
                 # No byte-order character: numpy reads the native order.
                 'f4-native': npy_bytes(rows, 'f4', data=npy_bytes(rows)[-len(rows) * 16:]),
                 'f8-native': npy_bytes(rows, 'f8', data=npy_bytes(rows, '<f8')[-len(rows) * 32:])}
        for name, data in cases.items():
            with self.subTest(name):
                self.create(name=name, dim=DIM)
                self.ingest('db', None, name=name, files=[self.write(name + '.npy', data)])
                self.assertEqual([g[1] for g in self.vecs_of(name=name)], want)
        # float16: every value converts exactly, subnormals and signed zero included.
        halves = [[0.0, -0.0, 2.0 ** -24, 65504.0], [1 / 3, -2.5, 2.0 ** -14, 0.099975586]]
        data = npy_bytes(halves, '<f2')
        self.create(name='half', dim=DIM)
        self.ingest('db', None, name='half', files=[self.write('h.npy', data)])
        want = [bits(struct.unpack('<4e', struct.pack('<4e', *h))) for h in halves]
        self.assertEqual([g[1] for g in self.vecs_of(name='half')], want)
        # An empty array ingests nothing.
        self.create(name='empty', dim=DIM)
        r = self.ingest('db', None, name='empty',
                        files=[self.write('e.npy', npy_bytes([], shape=(0, DIM)))])
        self.assertSummary(r, 0)

    def test_npy_refusals(self):
        self.create(dim=DIM)
        ok = vectors(5, 3)
        cases = [
            ("object", npy_bytes(ok, "|O", data=b''), "holds Python objects (dtype 'O')"),
            ('int', npy_bytes(ok, '<i4', data=b''), "unsupported .npy dtype '<i4' (expected "
                                                   "float16, float32 or float64)"),
            ('structured', npy_bytes(ok, "[('a', '<f4'), ('b', '<f4')]", data=b''),
             'structured array'),
            ('rank1', npy_bytes(ok, shape=(DIM,), data=b''), '.npy array has 1 dimension; '
                                                             'expected 2 (rows, dim)'),
            ('rank3', npy_bytes(ok, shape=(1, 2, 2), data=b''), 'has 3 dimensions'),
            ('columns', npy_bytes([[1.0] * 5]), '.npy array has 5 columns; the collection\'s '
                                               'dimension is 4'),
            ('magic', b'NUMPY' + b'\0' * 100, 'not a NumPy .npy file'),
            ('version', b'\x93NUMPY\x04\x00' + b'\0' * 100, 'unsupported .npy format '
                                                            'version 4.0'),
            # Only x.0 versions exist; numpy refuses 1.1 and 2.1 too.
            ('v11', npy_bytes(ok, version=(1, 1)), 'unsupported .npy format version 1.1'),
            ('v21', npy_bytes(ok, version=(2, 1)), 'unsupported .npy format version 2.1'),
            ('nobyteorder-int', npy_bytes(ok, 'i4', data=b''), "unsupported .npy dtype 'i4'"),
            ('header', npy_bytes(ok)[:20], '.npy header is truncated'),
        ]
        for name, data, msg in cases:
            with self.subTest(name):
                r = self.ingest('db', None, check=False,
                                files=[self.write(name + '.npy', data)])
                self.assertFails(r, EXIT_DATA, 'vdb-ingest: %s: ' % self.path(name + '.npy'),
                                 msg)
                self.assertSummary(r, 0)
        self.assertEqual(self.export().out, '')

    def test_bad_rows_stop_with_everything_before_committed(self):
        good = vectors(6, 10)
        nan, inf = float('nan'), float('inf')
        cases = [
            ('nan.npy', npy_bytes(good[:7] + [[1.0, 2.0, nan, 3.0]] + good[7:]),
             'row 7, column 2: NaN is not a valid vector value', 7),
            ('inf.fvecs', fvecs_bytes(good[:3] + [[-inf, 0.0, 0.0, 0.0]]),
             'row 3, column 0: -Infinity is not a valid vector value', 3),
            ('big.npy', npy_bytes(good[:5] + [[1.0, 1e39, 0.0, 0.0]], '<f8'),
             'row 5, column 1: 9.9999999999999994e+38 is outside the float32 range', 5),
            ('half.npy', npy_bytes(good[:2] + [[inf, 0.0, 0.0, 0.0]], '<f2'),
             'row 2, column 0: Infinity is not a valid vector value', 2),
            # A row of another dimension in a file of whole rows (the size cannot tell).
            ('dim.fvecs', fvecs_bytes(good[:4]) + fvecs_bytes([[1.0] * 3]) + b'\0' * 4,
             "row 4: dimension is 3; the collection's is 4", 4),
        ]
        as_half = [list(struct.unpack('<4e', struct.pack('<4e', *v))) for v in good]
        for name, data, msg, before in cases:
            with self.subTest(name):
                want = as_half if name == 'half.npy' else good
                coll = name.replace('.', '-')
                self.create(name=coll, dim=DIM)
                r = self.ingest('db', None, '--batch', '3', name=coll, check=False,
                                files=[self.write(name, data)])
                self.assertFails(r, EXIT_DATA, 'vdb-ingest: %s: %s' % (self.path(name), msg))
                self.assertSummary(r, before)
                self.assertEqual([g[1] for g in self.vecs_of(name=coll)],
                                 [bits(v) for v in want[:before]])

    # Cut, short and long vector files: (name, data, message for a regular file, which is
    # refused whole, message and rows committed when the same bytes come through a pipe).
    TRUNCATED = [
        ('cut.fvecs', fvecs_bytes(vectors(6, 6))[:-3],
         'truncated: the file holds 5 rows of 20 bytes (dimension 4) and 17 bytes',
         'row 5 is truncated: the file ends after 17 of its 20 bytes', 5),
        ('zero.fvecs', fvecs_bytes(vectors(6, 2)) + b'\0\0\0\0',
         "row 2: dimension 0 (the collection's is 4)",
         "row 2: dimension 0 (the collection's is 4)", 2),
        ('wide.fvecs', fvecs_bytes(vectors(6, 3)) + fvecs_bytes([[1.0] * 5]),
         "row 3: dimension is 5; the collection's is 4",
         "row 3: dimension is 5; the collection's is 4", 3),
        ('cut.npy', npy_bytes(vectors(6, 10))[:-20],
         'truncated: the header declares 10 rows of 16 bytes, the file holds 8 and 12 bytes',
         'row 8 is truncated: the file ends after 12 of its 16 bytes', 8),
        ('short.npy', npy_bytes(vectors(6, 10), shape=(12, DIM)),
         'truncated: the header declares 12 rows of 16 bytes, the file holds 10 and 0 bytes',
         'the file ends at row 10; the .npy header declares 12 rows', 10),
        ('long.npy', npy_bytes(vectors(6, 10), shape=(9, DIM)),
         '16 bytes follow the 9 rows the .npy header declares',
         'data follows the 9 rows the .npy header declares', 9),
        ('fortran-cut.npy', npy_bytes(vectors(6, 10), fortran=True)[:-4],
         'truncated: the header declares 10 rows of 16 bytes, the file holds 9 and 12 bytes',
         '.npy data is truncated: 156 of 160 bytes', 0),
        # A header claiming 10^11 rows of a 208-byte file: refused, nothing allocated.
        ('claim.npy', npy_bytes([], fortran=True, shape=(10 ** 11, DIM), data=b'\0' * 48),
         'truncated: the header declares 100000000000 rows of 16 bytes, the file holds 3 and 0',
         '.npy data is truncated: 48 of 1600000000000 bytes', 0),
    ]

    def test_truncated_files_are_refused_whole(self):
        for name, data, msg, _, _ in self.TRUNCATED:
            with self.subTest(name):
                coll = name.replace('.', '-')
                self.create(name=coll, dim=DIM)
                for args in (['--batch', '3'], []):
                    r = self.ingest('db', None, *args, name=coll, check=False,
                                    files=[self.write(name, data)])
                    self.assertFails(r, EXIT_DATA, 'vdb-ingest: %s: %s' % (self.path(name), msg))
                    self.assertSummary(r, 0)
                    self.assertEqual(self.vecs_of(name=coll), [])
                # After a good file: every file is checked before anything is committed.
                good = self.write('good.' + name.split('.')[1],
                                  npy_bytes(vectors(7, 5)) if name.endswith('.npy')
                                  else fvecs_bytes(vectors(7, 5)))
                r = self.ingest('db', None, name=coll, check=False,
                                files=[good, self.path(name)])
                self.assertFails(r, EXIT_DATA, 'vdb-ingest: %s: %s' % (self.path(name), msg))
                self.assertSummary(r, 0)
                self.assertEqual(self.vecs_of(name=coll), [])
                # Standard input from the same file: its size is known too.
                r = self.ingest('db', data, '-f', name.split('.')[1], name=coll, check=False)
                self.assertFails(r, EXIT_DATA, 'vdb-ingest: standard input: ' + msg)
                self.assertEqual(self.vecs_of(name=coll), [])

    def test_truncated_streams_keep_whole_batches(self):
        for name, data, _, msg, before in self.TRUNCATED:
            with self.subTest(name):
                coll = name.replace('.', '-')
                self.create(name=coll, dim=DIM)
                r = run('ingest', self.path('db'), '-c', coll, '-f', name.split('.')[1],
                        '--batch', '3', '-', input=data)
                self.assertFails(r, EXIT_DATA, 'vdb-ingest: standard input: ' + msg)
                got = [g[1] for g in self.vecs_of(name=coll)]
                # A pipe may deliver rows in pieces: whole batches, and at most the rows
                # before the bad one.
                self.assertLessEqual(len(got), before)
                self.assertEqual(got, [bits(v) for v in vectors(6, len(got))])

    def test_ids_and_payloads_sidecars(self):
        rows = vectors(7, 6)
        ids = ['10', 'doc-1', '"42"', '18446744073709551615', 'é/x y', '7']
        payloads = ['{"a": 1}', 'null', '{"t":"x","n":1.50}', '{}', 'null', '{"k":[1,2]}']
        self.create(dim=DIM)
        self.ingest('db', None, '--ids', self.write('ids.txt', '\n'.join(ids) + '\n'),
                    '--payloads', self.write('p.jsonl', '\r\n'.join(payloads)),
                    files=[self.write('v.fvecs', fvecs_bytes(rows))])
        got = self.vecs_of()
        self.assertEqual([g[0] for g in got],
                         [10, 'doc-1', '42', 18446744073709551615, 'é/x y', 7])
        self.assertEqual([g[1] for g in got], [bits(v) for v in rows])
        exported = [json.loads(l) for l in self.export().lines]
        self.assertEqual([r.get('payload') for r in exported],
                         [{'a': 1}, None, {'t': 'x', 'n': 1.5}, {}, None, {'k': [1, 2]}])
        self.assertIn('"n":1.50', self.export().out, 'payload numbers kept as written')
        # Export the sidecars back: the same lines (ids in their canonical spelling).
        out = self.path('o.fvecs')
        self.assertOk(run('export', self.path('db'), '-o', out, '--ids-out',
                          self.path('ids.out'), '--payloads-out', self.path('p.out')))
        self.assertEqual(self.read(out), fvecs_bytes(rows))
        self.assertEqual(self.read('ids.out').decode().split('\n'),
                         ['10', 'doc-1', '"42"', '18446744073709551615', 'é/x y', '7', ''])
        self.assertEqual([json.loads(l) for l in self.read('p.out').decode().splitlines()],
                         [r.get('payload') for r in exported])
        # ... and they ingest back to the same records.
        self.create('db2', dim=DIM)
        self.ingest('db2', None, '--ids', self.path('ids.out'), '--payloads',
                    self.path('p.out'), files=[out])
        self.assertEqual(self.export('db2').out, self.export().out)

    def test_sidecar_length_mismatch_commits_nothing(self):
        rows = vectors(8, 5)
        self.create(dim=DIM)
        v = self.write('v.npy', npy_bytes(rows))
        f = self.write('v.fvecs', fvecs_bytes(rows))
        cases = [('--ids', '0\n1\n2\n3\n', 4), ('--ids', '0\n1\n2\n3\n4\n5\n', 6),
                 ('--payloads', 'null\n' * 4, 4), ('--payloads', '{}\n' * 6 + '{}', 7)]
        for opt, text, n in cases:
            for src in (v, f):
                with self.subTest(opt=opt, n=n, src=src):
                    side = self.write('side', text)
                    r = self.ingest('db', None, opt, side, '--batch', '1', check=False,
                                    files=[src])
                    self.assertFails(r, EXIT_DATA, 'vdb-ingest: %s %s has %d lines, but the '
                                     'vector input has 5 rows: nothing was ingested'
                                     % (opt, side, n))
                    self.assertSummary(r, 0)
        # Over two inputs, the rows add up.
        r = self.ingest('db', None, '--ids', self.write('ids', '\n'.join(map(str, range(9)))),
                        check=False, files=[v, f])
        self.assertFails(r, EXIT_DATA, 'has 9 lines, but the vector input has 10 rows')
        self.assertEqual(self.export().out, '')
        # A pipe of .fvecs cannot be counted in advance; .npy on a pipe can (its header).
        r = run('ingest', self.path('db'), '--ids', self.path('ids'), '-f', 'fvecs', '-',
                input=self.read(f))
        self.assertUsage(r, 'the rows of standard input cannot be counted in advance')
        r = run('ingest', self.path('db'), '--ids', self.write('i5', '0\n1\n2\n3\n4\n'),
                '-f', 'npy', '-', input=self.read(v))
        self.assertSummary(r, 5)

    def test_bad_sidecar_lines(self):
        rows = vectors(9, 4)
        self.create(dim=DIM)
        v = self.write('v.fvecs', fvecs_bytes(rows))
        r = self.ingest('db', None, '--ids', self.write('ids', '1\n2\n\n4\n'), '--batch', '1',
                        check=False, files=[v])
        self.assertFails(r, EXIT_DATA, "vdb-ingest: %s: line 3: an id must not be empty"
                         % self.path('ids'))
        self.assertSummary(r, 2)
        r = self.ingest('db', None, '--payloads', self.write('p', '{}\n[1]\n{}\n{}\n'),
                        check=False, files=[v])
        self.assertFails(r, EXIT_DATA, 'vdb-ingest: %s: line 2: a payload must be a JSON '
                                       'object or null' % self.path('p'))
        r = self.ingest('db', None, '--payloads', self.write('p2', '{}\n{}\n{"a":}\n{}\n'),
                        check=False, files=[v])
        self.assertFails(r, EXIT_DATA, 'line 3: invalid JSON at column 6')


class Zstd(Base):
    def test_compressed_inputs(self):
        self.need_zstd()
        rows = vectors(10, 50)
        recs = vdbtest.seeded_records(11, 40, DIM)
        plain = {'a.npy': npy_bytes(rows), 'b.fvecs': fvecs_bytes(rows),
                 'c.jsonl': vdbtest.records_text(recs).encode()}
        for name, data in plain.items():
            with self.subTest(name):
                src = self.write(name, data)
                self.zstd(src, src + '.zst')
                coll = name.split('.')[0]
                self.create(name=coll, dim=DIM)
                self.ingest('db', None, name=coll, files=[src + '.zst'])
                want = self.export(name=coll).out
                # The same through a pipe, with --format (needed for the binary formats).
                fmt = name.split('.')[1]
                self.create(name=coll + '2', dim=DIM)
                r = run('ingest', self.path('db'), '-c', coll + '2', '-f', fmt,
                        input=self.read(src + '.zst'))
                self.assertEqual(r.rc, 0, r)
                self.assertEqual(self.export(name=coll + '2').out, want)
                self.assertNotEqual(want, '')

    def test_truncated_and_damaged_zstd(self):
        self.need_zstd()
        rows = vectors(12, 20000)
        src = self.write('a.npy', npy_bytes(rows))
        self.zstd(src, src + '.zst')
        z = self.read(src + '.zst')
        self.create(dim=DIM)
        cut = self.write('cut.npy.zst', z[:len(z) * 3 // 4])
        r = self.ingest('db', None, check=False, files=[cut])
        self.assertFails(r, EXIT_DATA, 'vdb-ingest: %s: zstd: the compressed data is '
                                       'truncated' % cut)
        got = self.vecs_of()
        self.assertGreater(len(got), 0, 'the whole rows before the cut are committed')
        self.assertEqual([g[1] for g in got], [bits(v) for v in rows[:len(got)]])
        # The frame's checksum is verified: a damaged stream is not taken for data.
        bad = bytearray(z)
        bad[-1] ^= 0xff
        r = run('ingest', self.path('db'), '-c', 'default', '-f', 'npy', '-', input=bytes(bad))
        self.assertFails(r, EXIT_DATA, 'vdb-ingest: standard input: zstd: Restored data '
                                       "doesn't match checksum")

    def test_compressed_outputs(self):
        self.need_zstd()
        recs = vdbtest.seeded_records(13, 100, DIM)
        self.create(dim=DIM)
        self.ingest('db', recs)
        plain = self.export().outb
        for args, name in ((['-o', self.path('x.jsonl.zst')], 'x.jsonl.zst'),
                           (['--zstd', '-o', self.path('y.jsonl')], 'y.jsonl')):
            self.assertOk(run('export', self.path('db'), *args))
            out = subprocess.run([ZSTD, '-dc', self.path(name)], stdout=subprocess.PIPE,
                                 check=True).stdout
            self.assertEqual(out, plain, name)
        r = run('export', self.path('db'), '--zstd', '-f', 'fvecs', '--ids-out',
                self.path('ids.zst'))
        self.assertEqual(r.rc, 0, r)
        raw = subprocess.run([ZSTD, '-dc'], input=r.outb, stdout=subprocess.PIPE,
                             check=True).stdout
        self.assertEqual(raw, fvecs_bytes([rec['vector'] for rec in recs]))
        ids = subprocess.run([ZSTD, '-dc', self.path('ids.zst')], stdout=subprocess.PIPE,
                             check=True).stdout.decode()
        self.assertEqual(ids.splitlines(), [str(rec['id']) if isinstance(rec['id'], int)
                                            else ('"%s"' % rec['id'] if rec['id'].isdigit()
                                                  else rec['id']) for rec in recs])


class Export(Base):
    def test_npy_export_layout_and_order(self):
        recs = vdbtest.seeded_records(14, 200, DIM, string_ids=0.3)
        self.create(dim=DIM, seal='4K')
        self.ingest('db', recs[:120], '--batch', '50')
        self.ingest('db', recs[120:])
        self.assertGreater(len(glob.glob(self.path('db', 'default', 'seg-*.vdb'))), 0)
        storage = [json.loads(l) for l in self.export().lines]
        for order, want in (('storage', storage),
                            ('id', sorted(storage, key=lambda r: vdbtest.id_key(r['id'])))):
            with self.subTest(order):
                out = self.path('o-%s.npy' % order)
                self.assertOk(run('export', self.path('db'), '-o', out, '--order', order,
                                  '--ids-out', self.path('ids-' + order)))
                shape, descr, fortran, vals = parse_npy(self.read(out))
                self.assertEqual((shape, descr, fortran), ((200, DIM), '<f4', False))
                self.assertEqual([f32_bits(x) for x in vals],
                                 [b for r in want for b in bits(r['vector'])])
                ids = self.read('ids-' + order).decode().splitlines()
                self.assertEqual(ids, [str(r['id']) if isinstance(r['id'], int) else
                                       ('"%s"' % r['id'] if r['id'].isdigit() else r['id'])
                                       for r in want])
        r = run('export', self.path('db'), '--order', 'id')
        self.assertEqual([json.loads(l)['id'] for l in r.lines],
                         sorted((r['id'] for r in storage), key=vdbtest.id_key))

    def test_outputs_are_atomic(self):
        self.create(dim=DIM, seal='4K')
        recs = vdbtest.seeded_records(15, 250, DIM)
        self.ingest('db', recs[:200], '--batch', '60')
        self.ingest('db', recs[200:])
        segs = sorted(glob.glob(self.path('db', 'default', 'seg-*.vdb')))
        self.assertGreaterEqual(len(segs), 2)
        # An existing output stays as it was when the export fails part way.
        self.write('out.npy', b'old')
        with open(segs[-1], 'r+b') as f:
            f.seek(os.path.getsize(segs[-1]) // 2)
            b = f.read(1)
            f.seek(-1, 1)
            f.write(bytes([b[0] ^ 0x55]))
        r = run('export', self.path('db'), '-o', self.path('out.npy'), '--ids-out',
                self.path('ids'))
        self.assertFails(r, EXIT_DATA, os.path.basename(segs[-1]))
        self.assertEqual(self.read('out.npy'), b'old')
        self.assertEqual(sorted(os.listdir(self.tmp)), ['db', 'out.npy'],
                         'no temporary file and no half-written sidecar is left')
        r = run('export', self.path('db'), '-o', self.path('nodir', 'x.npy'))
        self.assertFails(r, EXIT_IO, 'vdb-export: create %s.tmp-' % self.path('nodir', 'x.npy'),
                         'No such file or directory')

    def test_usage_errors(self):
        self.create(dim=DIM)
        cases = [(['-f', 'orc'], "unknown format 'orc' (expected jsonl, npy, fvecs, csv or "
                                 "parquet)"),
                 (['--ids-out', 'x'], '--ids-out and --payloads-out go with --format npy or '
                                      'fvecs (jsonl carries ids and payloads itself)'),
                 (['-o', 'x.csv', '--payloads-out', 'x'], '(csv carries ids and payloads'),
                 (['--order', 'random'], "unknown order 'random' (expected storage or id)")]
        for args, msg in cases:
            with self.subTest(args):
                self.assertUsage(run('export', self.path('db'), *args), msg)

    def test_an_unknown_extension_needs_a_format(self):
        self.create(dim=DIM)
        self.ingest('db', [{'id': 1, 'vector': [1, 2, 3, 4]}])
        for name in ('out.orc', 'out.tsv', 'out.orc.zst', 'a.b/out.txt'):
            with self.subTest(name):
                r = run('export', self.path('db'), '-o', self.path(name))
                ext = '.' + name.split('/')[-1].split('.')[1]
                self.assertUsage(r, "'%s' is not a format vdb-export writes (name the file "
                                 ".jsonl, .npy, .fvecs, .csv or .parquet, or give -f)" % ext)
                self.assertFalse(os.path.exists(self.path(name)))
        # -f says the format; a name without an extension gets JSON lines.
        self.assertOk(run('export', self.path('db'), '-f', 'jsonl', '-o', self.path('o.tsv')))
        self.assertEqual(self.read('o.tsv'), b'{"id":1,"vector":[1,2,3,4]}\n')
        self.assertOk(run('export', self.path('db'), '-o', self.path('plain')))
        self.assertEqual(self.read('plain'), b'{"id":1,"vector":[1,2,3,4]}\n')
        self.assertOk(run('export', self.path('db'), '-o', self.path('o.jsonl.zst')))

    def test_refuses_binary_to_a_terminal(self):
        self.create(dim=DIM)
        for args in (['-f', 'npy'], ['--zstd'], ['-f', 'npy', '-o', '/dev/stdout'],
                     ['--zstd', '-o', '/dev/fd/1']):
            master, slave = pty.openpty()
            try:
                p = subprocess.run(['vdb-export', self.path('db')] + args,
                                   executable=exe('export'), stdout=slave,
                                   stderr=subprocess.PIPE, env=ENV, timeout=60)
            finally:
                os.close(slave)
                os.close(master)
            self.assertEqual(p.returncode, EXIT_USAGE)
            self.assertIn(b'refusing to write binary data to a terminal', p.stderr)

    def test_write_error_to_a_file_is_reported(self):
        if not os.path.exists('/dev/full'):
            self.skipTest('no /dev/full')
        self.create(dim=DIM)
        self.ingest('db', vdbtest.seeded_records(16, 10, DIM))
        vdbtest.write_fails(self, 'export', self.path('db'), '-f', 'npy')


class Csv(Base):
    def test_ingest_quoting_crlf_and_payload_types(self):
        text = ('id,vector,name,zip,score,note\r\n'
                '1,"[0.5, -1, 2e-3, 4]",plain,007,3.25,\r\n'
                '"doc-2","[1,2,3,4]","Smith, J.",12345,-0,"line one\r\nline ""two"""\r\n'
                '\r\n'
                '"""3""","[0 ,0, 0,1]",é,,1e400x,\n'
                '4,"[1,1,1,1]","",,,""')
        self.create(dim=DIM)
        self.ingest('db', None, files=[self.write('in.csv', text)])
        got = [json.loads(l) for l in self.export().lines]
        self.assertEqual([g['id'] for g in got], [1, 'doc-2', '3', 4])
        self.assertEqual(bits(got[0]['vector']), bits([0.5, -1, 2e-3, 4]))
        self.assertEqual(got[0]['payload'], {'name': 'plain', 'zip': '007', 'score': 3.25})
        self.assertEqual(got[1]['payload'], {'name': 'Smith, J.', 'zip': 12345, 'score': 0,
                                             'note': 'line one\r\nline "two"'})
        self.assertEqual(got[2]['payload'], {'name': 'é', 'score': '1e400x'})
        self.assertNotIn('payload', got[3], 'empty fields are absent keys')
        self.assertIn('"score":-0', self.export().out, 'numbers kept as written')

    def test_vector_columns(self):
        text = 'x0,key,x1,label,x2,x3\n0.5,a,1.5,first,2.5,3.5\n-1, b ,-2,second,-3,-4\n'
        self.create(dim=DIM)
        self.ingest('db', None, '--id-column', 'key', '--vector-columns', 'x0,x1,5-6',
                    files=[self.write('in.csv', text)])
        got = [json.loads(l) for l in self.export().lines]
        self.assertEqual([(g['id'], g['vector'], g['payload']) for g in got],
                         [('a', [0.5, 1.5, 2.5, 3.5], {'label': 'first'}),
                          (' b ', [-1, -2, -3, -4], {'label': 'second'})])

    def test_csv_errors(self):
        self.create(dim=DIM)
        head = 'id,vector,p\n1,"[1,2,3,4]",x\n'
        cases = [
            (head + '2,"[1,2,3,4]"\n', [], 'in.csv: line 3: 2 fields; the header has 3', 1),
            (head + '2,"[1,2,3,4]",x\n3,"[1,2,3]",y\n', [],
             'line 4: expected 4 numbers in "vector", got 3', 2),
            (head + '2,"[1,2,3,4]",a"b\n', [],
             'line 3: field 3: a quote inside an unquoted field', 1),
            (head + '2,"[1,2,3,4]","open\n\n', [],
             'line 3: a quoted field is not closed before the end of the input', 1),
            (head + '2,"[1,2,3,4]","x"y\n', [], 'line 3: field 3: characters after the '
                                                'closing quote', 1),
            ('key,vector\n1,"[1,2,3,4]"\n', [], 'line 1: the header has no column "id" '
                                                '(--id-column)', 0),
            ('id,vector,id\n', [], 'line 1: the header names column "id" twice', 0),
            ('', [], 'empty CSV input: no header line', 0),
            ('id,a,b,c,d\n1,1,2,x,4\n', ['--vector-columns', '2-5'],
             'line 2: column "c": not a number', 0),
            ('id,a,b,c,d\n1,1,2,,4\n', ['--vector-columns', 'a,b,c,d'],
             'line 2: column "c": empty (a vector needs every value)', 0),
            ('id,a,b,c,d\n1,1,2,1e39,4\n', ['--vector-columns', '2-5'],
             'line 2: column "c": 1e39 is outside the float32 range', 0),
            (head + '"","[1,2,3,4]",x\n', [], 'line 3: an id must not be empty', 1),
            # A byte-order mark is skipped only at the start of the first field: after an
            # empty first field it is part of the second name (found by fuzzing: the
            # offsets were moved before the start of the buffer).
            (',\ufeffid,vector\n,1,"[1,2,3,4]"\n', [],
             'line 1: the header has no column "id" (--id-column)', 0),
        ]
        for i, (text, args, msg, before) in enumerate(cases):
            with self.subTest(msg):
                coll = 'c%d' % i
                self.create(name=coll, dim=DIM)
                r = self.ingest('db', None, *args, '--batch', '1', name=coll, check=False,
                                files=[self.write('in.csv', text)])
                self.assertFails(r, EXIT_DATA, msg)
                self.assertSummary(r, before)
        # A --vector-columns list that cannot match the dimension is a usage error.
        for spec, msg in (('2-4', 'selects 3 columns'), ('a,b,c,d,2', 'selects more than 4'),
                          ('0-3', 'column range 0-3 is outside 1-5'), ('a,,b', 'bad')):
            r = self.ingest('db', None, '--vector-columns', spec, check=False,
                            files=[self.write('v.csv', 'id,a,b,c,d\n')])
            self.assertFails(r, EXIT_USAGE, msg)

    def test_export_reads_back_with_python_csv_and_reingests(self):
        recs = vdbtest.seeded_records(17, 60, DIM, string_ids=0.4)
        recs[0]['payload'] = {'text': 'comma, "quote"\nnewline', 'n': 12345678901234567890}
        recs[1]['payload'] = {'flag': True, 'nested': {'a': [1, 2]}, 'none': None}
        recs[3]['payload'] = {'tags': ['ml', 'ml'], 's': '42', 'e': '', 'b': False, 'z': None}
        recs[4]['payload'] = {}
        recs[2]['id'] = '1234'  # a string id that looks like an integer
        self.create(dim=DIM)
        self.ingest('db', recs)
        out = self.path('o.csv')
        self.assertOk(run('export', self.path('db'), '-o', out))
        raw = self.read(out)
        self.assertTrue(raw.endswith(b'\r\n'))
        rows = list(csv.reader(io.StringIO(raw.decode('utf-8'), newline='')))
        self.assertEqual(rows[0], ['id', 'vector', 'payload'])
        self.assertEqual(len(rows), 61)
        by = {r[0]: dict(zip(rows[0], r)) for r in rows[1:]}
        self.assertEqual(bits(json.loads(by['"1234"']['vector'])), bits(recs[2]['vector']))
        key = lambda i: str(i) if isinstance(i, int) else json.dumps(i) if i.isdigit() else i
        for rec in recs[:5]:
            self.assertEqual(json.loads(by[key(rec['id'])]['payload']), rec['payload'])
        self.assertEqual(by[key(recs[5]['id'])]['payload'],
                         json.dumps(recs[5]['payload'], separators=(',', ':'))
                         if 'payload' in recs[5] else '')
        # Re-ingested: exactly the same records, payload types and all.
        self.create('db2', dim=DIM)
        self.ingest('db2', None, files=[out])
        self.assertEqual(run('export', self.path('db2')).out, run('export', self.path('db')).out)
        # --payload-columns: a column per key, for spreadsheets; read back, CSV types only
        # numbers: other JSON values come back as their text (lossy, as documented).
        flat = self.path('flat.csv')
        self.assertOk(run('export', self.path('db'), '--payload-columns', '-o', flat))
        rows = list(csv.reader(io.StringIO(self.read(flat).decode('utf-8'), newline='')))
        header = rows[0]
        self.assertEqual(header[:2], ['id', 'vector'])
        by = {r[0]: dict(zip(header, r)) for r in rows[1:]}
        first = by[key(recs[0]['id'])]
        self.assertEqual((first['text'], first['n']), ('comma, "quote"\nnewline',
                                                       '12345678901234567890'))
        second = by[key(recs[1]['id'])]
        self.assertEqual((second['flag'], second['nested'], second['none']),
                         ('true', '{"a":[1,2]}', 'null'))
        self.create('db3', dim=DIM)
        self.ingest('db3', None, files=[flat])
        a, b = self.exported(), self.exported('db3')
        self.assertEqual(sorted(map(json.dumps, a)), sorted(map(json.dumps, b)))
        for k in a:
            want = {key: v if isinstance(v, (str, int, float)) and not isinstance(v, bool)
                    else json.dumps(v, separators=(',', ':'))
                    for key, v in a[k].get('payload', {}).items()}
            want = {key: int(v) if isinstance(v, str) and v.isdigit() else v
                    for key, v in want.items() if v != ''}
            self.assertEqual(b[k].get('payload', {}), want, k)
        self.assertUsage(run('export', self.path('db'), '--payload-columns'),
                         '--payload-columns goes with --format csv')

    def test_payload_column_on_ingest(self):
        # A "payload" column of JSON objects is the payload; other columns join it as keys;
        # --payload-column names another one, or none.
        self.create(dim=2)
        f = self.write('in.csv', 'id,vector,payload,lang\r\n'
                       '1,"[1,2]","{""a"":[1,2],""s"":""42""}",en\r\n'
                       '2,"[1,3]",,de\r\n'
                       '3,"[1,4]","{}",\r\n'
                       '4,"[1,5]",,\r\n')
        self.ingest('db', None, files=[f])
        got = {r['id']: r.get('payload') for r in map(json.loads, run('export', self.path('db')).lines)}
        self.assertEqual(got, {1: {'a': [1, 2], 's': '42', 'lang': 'en'}, 2: {'lang': 'de'},
                               3: {}, 4: None})
        for cell, why in (('"[1]"', 'column "payload": not a JSON object'),
                          ('"{""a"":1,}"', 'column "payload": '),
                          ('"{""lang"":1}"', 'the payload: duplicate key "lang"')):
            with self.subTest(cell=cell):
                bad = self.write('bad.csv', 'id,vector,payload,lang\r\n9,"[1,2]",%s,en\r\n'
                                 % cell)
                r = self.ingest('db', None, files=[bad], check=False)
                self.assertFails(r, EXIT_DATA, 'line 2: ' + why, stdout_empty=False)
        g = self.write('g.csv', 'id,vector,meta\r\n5,"[1,6]","{""x"":1}"\r\n')
        self.ingest('db', None, '--payload-column', 'meta', files=[g])
        t = self.write('t.csv', 'id,vector,payload\r\n6,"[1,7]",plain text\r\n')
        self.ingest('db', None, '--payload-column', '', files=[t])
        got = {r['id']: r.get('payload') for r in map(json.loads, run('export', self.path('db')).lines)}
        self.assertEqual((got[5], got[6]), ({'x': 1}, {'payload': 'plain text'}))

    def test_numeric_vector_columns_both_ways(self):
        recs = vdbtest.seeded_records(23, 30, DIM, string_ids=0.3)
        self.create(dim=DIM)
        self.ingest('db', recs)
        out = self.path('o.csv')
        self.assertOk(run('export', self.path('db'), '-o', out, '--vector-columns'))
        rows = list(csv.reader(io.StringIO(self.read(out).decode(), newline='')))
        self.assertEqual(rows[0][:DIM + 1], ['id', 'v0', 'v1', 'v2', 'v3'])
        want = [json.loads(l) for l in self.export().lines]
        self.assertEqual([bits(map(float, r[1:DIM + 1])) for r in rows[1:]],
                         [bits(r['vector']) for r in want])
        self.create('db2', dim=DIM)
        self.ingest('db2', None, '--vector-columns', '2-%d' % (DIM + 1), files=[out])
        self.assertEqual([g[:2] for g in self.vecs_of('db2')], [g[:2] for g in self.vecs_of()])
        self.assertUsage(run('export', self.path('db'), '--vector-columns'),
                         '--vector-columns goes with --format csv')

    def test_payload_key_clashing_with_a_column(self):
        # Keys named like our columns (as CSV ingest creates them from an extra "id"
        # column): those columns move to free names, said on stderr, and read back.
        self.create(dim=DIM)
        recs = [{'id': 1, 'vector': [1, 2, 3, 4], 'payload': {'id': 5, 'vector': 'v', '_id': 'u'}},
                {'id': 'x', 'vector': [4, 3, 2, 1], 'payload': {'v0': 1, 'v3': 2}}]
        self.ingest('db', recs)
        out = self.path('o.csv')
        r = run('export', self.path('db'), '-o', out, '--payload-columns')
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.errlines, [
            "vdb-export: note: a payload key is named 'id', so that column is '__id' (read it "
            "back with vdb-ingest --id-column __id)",
            "vdb-export: note: a payload key is named 'vector', so that column is '_vector' "
            "(read it back with vdb-ingest --vector-column _vector)"])
        rows = list(csv.reader(io.StringIO(self.read(out).decode(), newline='')))
        self.assertEqual(rows[0], ['__id', '_vector', 'id', 'vector', '_id', 'v0', 'v3'])
        self.create('db2', dim=DIM)
        self.ingest('db2', None, '--id-column', '__id', '--vector-column', '_vector', files=[out])
        self.assertEqual(self.exported('db2'), self.exported())
        self.assertOk(run('export', self.path('db'), '-o', out, '-q', '--payload-columns'))
        # Numbered vector columns: v0..v3 are payload keys here, so those become _v0.._v3.
        r = run('export', self.path('db'), '-o', out, '--vector-columns', '--payload-columns')
        self.assertEqual(r.errlines[1:], ['vdb-export: note: payload keys are named like the '
                                          'vector columns, so those are _v0, _v1, ...'], r)
        rows = list(csv.reader(io.StringIO(self.read(out).decode(), newline='')))
        self.assertEqual(rows[0][:DIM + 1], ['__id', '_v0', '_v1', '_v2', '_v3'])
        self.create('db3', dim=DIM)
        self.ingest('db3', None, '--id-column', '__id', '--vector-columns', '2-5', files=[out])
        self.assertEqual(self.exported('db3'), self.exported())

    def test_ids_with_line_breaks_and_nul_bytes(self):
        self.create(dim=DIM)
        recs = [{'id': 'two\nlines', 'vector': [1, 2, 3, 4]},
                {'id': 'cr\r\nlf', 'vector': [1, 2, 3, 5], 'payload': {'t': 'a\nb'}},
                {'id': '"quoted"', 'vector': [1, 2, 3, 6]}, {'id': '7', 'vector': [1, 2, 3, 7]}]
        self.ingest('db', recs)
        out = self.path('o.csv')
        self.assertOk(run('export', self.path('db'), '-o', out))
        self.create('db2', dim=DIM)
        self.ingest('db2', None, files=[out])
        self.assertEqual(self.exported('db2'), self.exported())
        # What CSV cannot hold is refused before anything is written, naming the record
        # (a NUL byte in a payload only with --payload-columns: JSON text escapes it).
        for rec, why in (({'id': 'nul\u0000id', 'vector': [1, 1, 1, 1]}, 'the id holds a NUL'),
                         ({'id': 9, 'vector': [1, 1, 1, 1], 'payload': {'s': 'a\u0000'}},
                          'a payload string holds a NUL'),
                         ({'id': 'k', 'vector': [1, 1, 1, 1], 'payload': {'a\u0000': 1}},
                          'a payload key holds a NUL')):
            with self.subTest(why):
                name = 'c%d' % len(why)
                self.create(name=name, dim=DIM)
                self.ingest('db', recs + [rec], name=name)
                flat = ['--payload-columns'] if 'payload' in why else []
                if flat:
                    self.assertOk(run('export', self.path('db'), '-c', name, '-f', 'csv'))
                r = run('export', self.path('db'), '-c', name, *flat, '-o', self.path('o2.csv'))
                self.assertFails(r, EXIT_DATA, 'record %s: %s' % (json.dumps(rec['id']), why),
                                 'not representable in CSV (use JSON lines)')
                self.assertFalse(os.path.exists(self.path('o2.csv')))
                r = run('export', self.path('db'), '-c', name, '-f', 'csv', *flat)
                self.assertFails(r, EXIT_DATA, why)


class Ingest(Base):
    def test_format_detection_and_usage_errors(self):
        self.create(dim=DIM)
        v = self.write('v.fvecs', fvecs_bytes(vectors(18, 3)))
        cases = [(['-f', 'orc', v], "unknown format 'orc' (expected jsonl, npy, fvecs, "
                                    "bvecs, csv or parquet)"),
                 (['--ids', 'x', self.write('r.jsonl', '')],
                  '--ids, --payloads and --id-offset go with .npy, .fvecs or .bvecs input'),
                 (['--skip-invalid', v], '--skip-invalid applies to JSON lines only'),
                 (['--ids', v, '--id-offset', '3', v], '--id-offset and --ids exclude each '
                                                       'other'),
                 (['--ids', '-', v], '--ids needs a file, not standard input'),
                 (['-', '-'], "standard input ('-') is given twice")]
        for args, msg in cases:
            with self.subTest(args):
                self.assertUsage(run('ingest', self.path('db'), *args), msg)
        r = run('ingest', self.path('db'), '--ids', self.path('missing'), v)
        self.assertFails(r, EXIT_NOINPUT, 'missing: No such file or directory')
        # --format overrides the name; other names are JSON lines as always.
        r = run('ingest', self.path('db'), '-f', 'fvecs', self.write('v.dat', self.read(v)))
        self.assertSummary(r, 3)
        r = run('ingest', self.path('db'), self.write('recs.txt', vdbtest.records_text(
            vdbtest.seeded_records(19, 2, DIM, id_offset=100))))
        self.assertSummary(r, 2)

    def test_interrupted_binary_ingest_keeps_only_committed_batches(self):
        import signal
        import time
        rows = vectors(21, 8)
        self.create(dim=DIM)
        self.ingest('db', None, files=[self.write('first.fvecs', fvecs_bytes(rows[:3]))])
        p = self.proc('ingest', self.path('db'), '-v', '-f', 'npy', '--id-offset', '3', '-')
        data = npy_bytes(rows, shape=(1000, DIM))
        # 4 whole rows of the 1000 the header declares: committed while the reader waits
        # (a slow producer's rows are not held back), then half a row, never committed.
        p.send(data[:-4 * DIM * 4])
        self.assertTrue(p.wait_for_stderr(r'committed batch 1: 4 records \(rows 0-3\)'), p.err)
        p.send(data[-4 * DIM * 4:-3 * DIM * 4 - 6])
        time.sleep(0.2)
        p.signal(signal.SIGINT)
        self.assertEqual(p.wait(10), vdbtest.EXIT_SIGINT, p.err)
        self.assertSummary(p.err, committed=4, batches=1, interrupted=True)
        self.assertEqual([g[1] for g in self.vecs_of()], [bits(v) for v in rows[:3] + rows[:4]])
        self.ingest('db', None, '--no-wait', '--id-offset', '7',
                    files=[self.write('more.fvecs', fvecs_bytes(rows[4:]))])
        self.assertEqual(len(self.vecs_of()), 11, 'the collection is not left locked')

    def test_slow_csv_producer_is_committed_promptly(self):
        self.create(dim=DIM)
        p = self.proc('ingest', self.path('db'), '-v', '-f', 'csv', '-')
        p.send(b'id,vector,tag\r\n1,"[1,2,3,4]",a\r\n2,"[5,6,7,8]",b\r\n')
        self.assertTrue(p.wait_for_stderr(r'committed batch 1: 2 records \(lines 2-3\)'), p.err)
        p.send(b'3,"[0,0,0,1]","multi\nline"\n')
        self.assertTrue(p.wait_for_stderr(r'committed batch 2: 1 record \(lines 4-4\)'), p.err)
        p.close_stdin()
        self.assertEqual(p.wait(10), 0, p.err)
        self.assertEqual([json.loads(l)['payload']['tag'] for l in self.export().lines],
                         ['a', 'b', 'multi\nline'])

    def test_export_progress_on_a_terminal(self):
        self.create(dim=DIM)
        self.ingest('db', None, files=[self.write('v.fvecs', fvecs_bytes(vectors(22, 3000)))])
        rc, err = stderr_on_a_terminal('export', self.path('db'), '-o', self.path('o.npy'))
        self.assertEqual(rc, 0, err)
        self.assertRegex(err, rb'vdb-export: \d+ records .*records/s.*\d+%  ETA (\d+:\d\d|--:--)')
        self.assertTrue(err.endswith(b'\r\x1b[K'), 'the line is erased at the end: %r' % err)

    def test_progress_only_on_a_terminal(self):
        self.create(dim=DIM)
        v = self.write('v.fvecs', fvecs_bytes(vectors(20, 20000)))
        for quiet in (False, True):
            rc, err = stderr_on_a_terminal('ingest', self.path('db'), *(['-q'] if quiet else []),
                                           '--batch', '100000', v)
            self.assertEqual(rc, 0, err)
            if quiet:
                self.assertEqual(err, b'')
            else:
                self.assertIn(b'\r', err)
                self.assertRegex(err, rb'records/s.*\d+%  ETA (\d+:\d\d|--:--)')
                self.assertIn(b'\r\x1b[Kvdb-ingest: 20000 records committed', err,
                              'the progress line is erased before the summary')
        # Not a terminal: the summary line only.
        r = run('ingest', self.path('db'), v)
        self.assertEqual(len(r.errlines), 1, r)


if __name__ == '__main__':
    vdbtest.main()
