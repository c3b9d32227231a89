#!/usr/bin/env python3
"""Every byte flipped and every length cut, one damage at a time, in a small collection
that has every kind of file: a segment with its graph, int8 codes and a payload index,
smaller segments (with codes) with deletion marks, string and integer ids, payloads, and a
log tail with a delete. After each damage the read paths of the commands run in-process
(tests/crash/damage_sweep.c): no crash, no hang, every error names the damaged file.

VDB_SWEEP_STEP=N visits every Nth offset (the normal suite: 9); scripts/torture runs
every offset (1)."""

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'cli'))
import vdbtest  # noqa: E402
from vdbtest import run  # noqa: E402


def records(seed, ids):
    rng = random.Random(seed)
    out = []
    for i in ids:
        rec = {'id': i if i % 5 else 's%d' % i, 'vector': [rng.uniform(-1, 1) for _ in range(4)]}
        if i % 3:
            rec['payload'] = {'lang': rng.choice(['en', 'de']), 'n': i}
        out.append(json.dumps(rec))
    return out


class DamageSweep(vdbtest.VdbTestCase):

    def test_every_byte_and_every_length(self):
        db = self.path('db')
        self.assertOk(run('create', db, '--dim', 4, '--metric', 'l2', '--seal-size', '8K',
                          '--quantize', 'int8', '--index-field', 'lang:keyword'))
        self.ingest('db', records(1, range(1300)), '-b', '100')
        self.assertEqual(run('compact', '-q', db).rc, 0)
        # Replacements of sealed rows: new segments and deletion marks on the big one.
        self.ingest('db', records(2, range(0, 900, 3)), '-b', '100')
        self.ingest('db', records(3, range(2000, 2020)) + ['{"id": 7, "delete": true}'])
        names = sorted(os.listdir(os.path.join(db, 'default')))
        for kind in ('seg-', 'del-', 'wal-', 'MANIFEST', 'CONFIG'):
            self.assertTrue(any(n.startswith(kind) for n in names), (kind, names))
        step = os.environ.get('VDB_SWEEP_STEP', '9')
        r = subprocess.run([os.environ['VDB_DAMAGE_SWEEP'], db, 'default', step],
                           capture_output=True, text=True, timeout=3600)
        self.assertEqual(r.returncode, 0, r.stderr)
        print(r.stdout.strip())


if __name__ == '__main__':
    vdbtest.main()
