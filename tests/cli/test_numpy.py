#!/usr/bin/env python3
"""NumPy's own view of vdb's .npy files: numpy.save output ingests exactly (every dtype,
byte order, memory order and format version vdb accepts), numpy.load of vdb-export gives
the same float32 array, and what vdb refuses, numpy can write. Needs python3-numpy (installed
by scripts/deps); without it the whole module is skipped (exit 77, shown as SKIP by meson)."""

import json
import os
import subprocess
import sys
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vdbtest  # noqa: E402
from vdbtest import EXIT_DATA, run  # noqa: E402

try:
    import numpy as np
except ImportError:
    print('SKIP: numpy is not installed for %s (scripts/deps installs python3-numpy)'
          % sys.executable)
    sys.exit(77)

DIM = 16


def same_bits(a, b):
    a = np.ascontiguousarray(a, dtype=np.float32)
    b = np.ascontiguousarray(b, dtype=np.float32)
    return a.shape == b.shape and np.array_equal(a.view(np.uint32), b.view(np.uint32))


class NumPy(vdbtest.VdbTestCase):
    def save(self, name, arr, version=None):
        p = self.path(name)
        if version is None:
            np.save(p, arr, allow_pickle=arr.dtype == object)
        else:
            with open(p, 'wb') as f:
                np.lib.format.write_array(f, arr, version=version, allow_pickle=False)
        return p

    def export_npy(self, db='db', name=None, *args):
        out = self.path('out-%s.npy' % (name or 'default'))
        r = run('export', self.path(db), *(['-c', name] if name else []), '-o', out, *args)
        self.assertEqual((r.rc, r.err), (0, ''), r)
        return np.load(out)

    def test_float32_round_trip(self):
        rng = np.random.default_rng(1)
        a = rng.standard_normal((3000, DIM)).astype(np.float32)
        a[0, :4] = [0.0, -0.0, np.finfo(np.float32).tiny / 8, np.finfo(np.float32).max]
        self.create(dim=DIM)
        r = self.ingest('db', None, files=[self.save('a.npy', a)])
        self.assertSummary(r, 3000)
        b = self.export_npy()
        self.assertEqual(b.dtype, np.float32)
        self.assertTrue(same_bits(a, b))
        # Ids are the row numbers; --order id gives the same array.
        self.assertEqual([json.loads(l)['id'] for l in self.export().lines], list(range(3000)))
        self.assertTrue(same_bits(a, self.export_npy('db', None, '--order', 'id')))

    def test_converted_dtypes_and_layouts(self):
        rng = np.random.default_rng(2)
        base = rng.standard_normal((257, DIM))
        variants = {
            'f8': base, 'f8-big': base.astype('>f8'), 'f4-big': base.astype('>f4'),
            'f2': base.astype(np.float16), 'f2-big': base.astype('>f2'),
            'fortran': np.asfortranarray(base.astype(np.float32)),
            'fortran-f8': np.asfortranarray(base),
            'sliced': base.astype(np.float32)[::2],  # np.save writes it C-contiguous
        }
        for name, arr in variants.items():
            with self.subTest(name):
                self.create(name=name, dim=DIM)
                self.ingest('db', None, name=name, files=[self.save(name + '.npy', arr)])
                self.assertTrue(same_bits(self.export_npy('db', name), arr.astype(np.float32)))
        for version in ((1, 0), (2, 0), (3, 0)):
            with self.subTest(version=version):
                name = 'v%d' % version[0]
                arr = base.astype(np.float32)
                self.create(name=name, dim=DIM)
                self.ingest('db', None, name=name,
                            files=[self.save(name + '.npy', arr, version=version)])
                self.assertTrue(same_bits(self.export_npy('db', name), arr))

    def test_refused_arrays(self):
        self.create(dim=DIM)
        obj = np.empty((2, DIM), dtype=object)
        obj[:] = 1.0
        cases = [('obj', obj, "holds Python objects (dtype 'O')"),
                 ('int', np.zeros((2, DIM), dtype=np.int64), "unsupported .npy dtype '<i8'"),
                 ('rank1', np.zeros(DIM, dtype=np.float32), 'has 1 dimension; expected 2'),
                 ('rank3', np.zeros((2, 2, DIM), dtype=np.float32), 'has 3 dimensions'),
                 ('rec', np.zeros(2, dtype=[('v', '<f4', (DIM,))]), 'structured array'),
                 ('dim', np.zeros((2, DIM + 1), dtype=np.float32), 'has 17 columns'),
                 ('nan', np.full((2, DIM), np.nan), 'row 0, column 0: NaN is not a valid'),
                 ('range', np.full((2, DIM), 1e300), 'row 0, column 0: 1.0000000000000001e+300 '
                                                     'is outside the float32 range')]
        for name, arr, msg in cases:
            with self.subTest(name):
                p = self.save(name + '.npy', arr)
                r = self.ingest('db', None, check=False, files=[p])
                self.assertFails(r, EXIT_DATA, 'vdb-ingest: %s: ' % p, msg)
        self.assertEqual(self.export().out, '')

    def test_sidecars_align_with_the_array(self):
        rng = np.random.default_rng(3)
        a = rng.standard_normal((50, DIM)).astype(np.float32)
        ids = ['doc-%d' % i for i in range(50)]
        self.create(dim=DIM)
        self.ingest('db', None, '--ids', self.write('ids', '\n'.join(ids) + '\n'),
                    '--payloads', self.write('p', ''.join('{"i":%d}\n' % i for i in range(50))),
                    files=[self.save('a.npy', a)])
        recs = [json.loads(l) for l in self.export().lines]
        for i, rec in enumerate(recs):
            self.assertEqual((rec['id'], rec['payload']), (ids[i], {'i': i}))
        b = self.export_npy('db', None, '--order', 'id', '--ids-out', self.path('ids.out'))
        order = sorted(range(50), key=lambda i: ids[i].encode())
        self.assertTrue(same_bits(b, a[order]))
        self.assertEqual(self.read('ids.out').decode().split(), [ids[i] for i in order])

    def test_zstd_npy_both_ways(self):
        zstd = vdbtest.shutil.which('zstd')
        if not zstd:
            self.skipTest('the zstd program is not installed (scripts/deps installs it)')
        a = np.random.default_rng(4).standard_normal((1000, DIM)).astype(np.float32)
        p = self.save('a.npy', a)
        subprocess.run([zstd, '-q', p, '-o', p + '.zst'], check=True)
        self.create(dim=DIM)
        self.ingest('db', None, files=[p + '.zst'])
        out = self.path('o.npy.zst')
        self.assertEqual(run('export', self.path('db'), '-o', out).rc, 0)
        subprocess.run([zstd, '-q', '-d', out, '-o', self.path('o.npy')], check=True)
        self.assertTrue(same_bits(np.load(self.path('o.npy')), a))


if __name__ == '__main__':
    vdbtest.main()
