"""Shared helpers for the vdb command-line tests (Python 3 standard library only).

The binaries are taken from $VDB_BIN (set by meson), or ../../build/cmd relative to this file.
Everything a test creates lives in a fresh temporary directory that is removed afterwards.

Contents:
  run(cmd, *args, input=...)      run vdb-<cmd>, returning a Result (rc, out, err, ...)
  Proc                            a long-running vdb-<cmd> with pipes (locking, signals)
  VdbTestCase                     unittest base: temp dir, create/ingest/export helpers and
                                  assertions for the CLI contract (exit code + message)
  seeded_records(seed, n, dim)    reproducible random records (random.Random(seed))
  record_line(rec)                one ingest JSON line
  brute_force(records, q, k, m)   exact nearest neighbours in Python (l2, cosine, dot)
  check_results(...)              compare vdb-query output to the brute force
  decimal_to_f32_bits(text)       exact decimal -> float32 rounding (round half to even)
  parse_export_line(line)         raw tokens of an exported record (id, vector texts, payload)
"""

import json
import math
import os
import random
import re
import shutil
import struct
import subprocess
import tempfile
import threading
import time
import unittest
from fractions import Fraction

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.environ.get('VDB_BIN') or os.path.normpath(os.path.join(HERE, '..', '..', 'build', 'cmd'))

# Deterministic strerror() texts and number formatting in the children. The commands run with
# argv[0] = "vdb-<cmd>" and BIN first in PATH, as from a user's shell.
ENV = dict(os.environ, LC_ALL='C', LANG='C', PATH=BIN + os.pathsep + os.environ.get('PATH', ''))
ENV.pop('LANGUAGE', None)

EXIT_OK, EXIT_USAGE, EXIT_DATA, EXIT_NOINPUT = 0, 64, 65, 66
EXIT_CANTCREAT, EXIT_IO, EXIT_LOCKED = 73, 74, 75
EXIT_SIGINT, EXIT_SIGTERM = 130, 143


def exe(cmd):
    return os.path.join(BIN, 'vdb-' + cmd)


def to_bytes(data):
    """Input for a command: None, str, bytes, or a list of lines (str or bytes, without the
    newline) and record dicts, each of which becomes one line."""
    if data is None or isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode('utf-8', 'surrogateescape')
    parts = []
    for x in data:
        if isinstance(x, dict):
            x = record_line(x)
        if isinstance(x, str):
            x = x.encode('utf-8', 'surrogateescape')
        parts.append(x + b'\n')
    return b''.join(parts)


class Result:
    """What a finished command did."""

    def __init__(self, argv, rc, outb, errb, elapsed):
        self.argv, self.rc, self.outb, self.errb, self.elapsed = argv, rc, outb, errb, elapsed
        self.out = outb.decode('utf-8', 'surrogateescape')
        self.err = errb.decode('utf-8', 'surrogateescape')

    @property
    def lines(self):
        return split_lines(self.out)

    @property
    def errlines(self):
        return split_lines(self.err)

    def __repr__(self):
        return 'Result(%r, rc=%d, out=%r, err=%r)' % (
            ' '.join(self.argv), self.rc, _short(self.out), _short(self.err))


def split_lines(text):
    """Lines split at '\\n' only (str.splitlines also splits at U+2028, U+0085, ... which may
    appear raw inside JSON strings)."""
    lines = text.split('\n')
    if lines and lines[-1] == '':
        lines.pop()
    return lines


def _short(s, n=600):
    return s if len(s) <= n else s[:n] + '...[%d more]' % (len(s) - n)


def run(cmd, *args, input=None, timeout=120, cwd=None, preexec_fn=None, stdin_file=False,
        env_extra=None):
    """Runs vdb-<cmd> ARGS. input: None (stdin is /dev/null), str, bytes, or a list of lines or
    records (each becomes one line), through a pipe -- or with stdin_file, from a file:
    vdb-ingest also commits whenever no further line is ready, so through a pipe its batches
    fall where the timing puts them, and from a file where -b does."""
    argv = ['vdb-' + cmd] + [str(a) for a in args]
    data = to_bytes(input)
    t0 = time.monotonic()
    with tempfile.TemporaryFile() as f:
        stdin = subprocess.DEVNULL if data is None else None
        if data is not None and stdin_file:
            f.write(data)
            f.seek(0)
            stdin, data = f, None
        p = subprocess.run(argv, executable=exe(cmd), input=data, stdin=stdin,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                           cwd=cwd, env=dict(ENV, **env_extra) if env_extra else ENV,
                           preexec_fn=preexec_fn)
    return Result(argv, p.returncode, p.stdout, p.stderr, time.monotonic() - t0)


class Proc:
    """A running vdb-<cmd> with stdin/stdout/stderr pipes; stderr (and stdout) are collected by
    background threads so that the test can wait for a message without blocking."""

    def __init__(self, cmd, *args, stdin=True):
        self.argv = ['vdb-' + cmd] + [str(a) for a in args]
        self.p = subprocess.Popen(self.argv, executable=exe(cmd),
                                  stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
        self.pid = self.p.pid
        self._err, self._out = [], []
        self._cv = threading.Condition()
        self._threads = [threading.Thread(target=self._pump, args=(self.p.stderr, self._err),
                                          daemon=True),
                         threading.Thread(target=self._pump, args=(self.p.stdout, self._out),
                                          daemon=True)]
        for t in self._threads:
            t.start()

    def _pump(self, f, sink):
        for line in iter(f.readline, b''):
            with self._cv:
                sink.append(line)
                self._cv.notify_all()
        with self._cv:
            self._cv.notify_all()

    @property
    def err(self):
        with self._cv:
            return b''.join(self._err).decode('utf-8', 'surrogateescape')

    @property
    def out(self):
        with self._cv:
            return b''.join(self._out).decode('utf-8', 'surrogateescape')

    def wait_for_stderr(self, pattern, timeout=20):
        """Waits until stderr matches the regex; returns the match or None on timeout."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                m = rx.search(b''.join(self._err).decode('utf-8', 'surrogateescape'))
                if m:
                    return m
                left = deadline - time.monotonic()
                if left <= 0 or (self.p.poll() is not None and
                                 not any(t.is_alive() for t in self._threads)):
                    return None
                self._cv.wait(min(left, 0.1))

    def wait_for_stdout_lines(self, n, timeout=20):
        """Waits until stdout holds n complete lines; returns them, or None on timeout."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                lines = b''.join(self._out).decode('utf-8', 'surrogateescape').splitlines(True)
                done = [l for l in lines if l.endswith('\n')]
                if len(done) >= n:
                    return done
                left = deadline - time.monotonic()
                if left <= 0 or self.p.poll() is not None:
                    return None
                self._cv.wait(min(left, 0.1))

    def send(self, data):
        self.p.stdin.write(to_bytes(data))
        self.p.stdin.flush()

    def close_stdin(self):
        if self.p.stdin and not self.p.stdin.closed:
            self.p.stdin.close()

    def signal(self, sig):
        self.p.send_signal(sig)

    def wait(self, timeout=30):
        """Waits for the exit (closing stdin first is the caller's choice); returns rc."""
        rc = self.p.wait(timeout)
        for t in self._threads:
            t.join(5)
        return rc

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait(10)
        self.close_stdin()


# ---- records -------------------------------------------------------------------------------


def f32(x):
    """x rounded to the nearest float32 (as a Python float)."""
    return struct.unpack('<f', struct.pack('<f', x))[0]


def f32_bits(x):
    return struct.unpack('<I', struct.pack('<f', x))[0]


def bits_f32(b):
    return struct.unpack('<f', struct.pack('<I', b))[0]


def seeded_records(seed, n, dim, string_ids=0.2, payloads=0.5, id_offset=0, lo=-1.0, hi=1.0):
    """n reproducible records: unique ids (integers, and about string_ids of them strings like
    "doc-17" or non-ASCII ones), float32-exact vectors, and payloads on about `payloads` of
    them. Vectors are never all zero."""
    rng = random.Random(seed)
    recs = []
    for i in range(n):
        j = i + id_offset
        if rng.random() < string_ids:
            rid = rng.choice(['doc-%d', 'Doc:%d', 'é%d', '%d', 'k/%d']) % j
        else:
            rid = j * 3 + 1
        vec = [f32(rng.uniform(lo, hi)) for _ in range(dim)]
        if not any(vec):
            vec[0] = 0.5
        rec = {'id': rid, 'vector': vec}
        if rng.random() < payloads:
            rec['payload'] = {'n': j, 'tag': rng.choice(['a', 'b', 'ü', 'x y']),
                              'list': [rng.randrange(100) for _ in range(rng.randrange(4))]}
        recs.append(rec)
    return recs


def record_line(rec):
    """One ingest line for a record dict ({'id', 'vector', 'payload'?} or {'id', 'delete'})."""
    return json.dumps(rec, separators=(',', ':'), ensure_ascii=False)


def records_text(recs):
    return ''.join(record_line(r) + '\n' for r in recs)


def apply_ops(state, recs):
    """Applies ingest records (upserts and deletes) to a dict id -> record, like vdb does."""
    for r in recs:
        if r.get('delete'):
            state.pop(r['id'], None)
        else:
            state[r['id']] = r
    return state


# ---- exact search ----------------------------------------------------------------------------


def id_key(i):
    """vdb's id order: integers ascending, then strings by their UTF-8 bytes."""
    if isinstance(i, int):
        return (0, i, b'')
    return (1, 0, i.encode('utf-8'))


def score(metric, q, x):
    if metric == 'l2':
        return math.sqrt(math.fsum((a - b) * (a - b) for a, b in zip(q, x)))
    dot = math.fsum(a * b for a, b in zip(q, x))
    if metric == 'dot':
        return dot
    if metric == 'cosine':
        nq = math.sqrt(math.fsum(a * a for a in q))
        nx = math.sqrt(math.fsum(a * a for a in x))
        return dot / (nq * nx)
    raise ValueError(metric)


def brute_force(records, query, k, metric):
    """Exact top k as [(id, score)]: l2 distance ascending, cosine/dot similarity descending,
    ties by id. records: iterable of dicts with 'id' and 'vector' (or a dict id -> record)."""
    if isinstance(records, dict):
        records = records.values()
    scored = [(score(metric, query, r['vector']), r['id']) for r in records]
    sign = 1 if metric == 'l2' else -1
    scored.sort(key=lambda t: (sign * t[0], id_key(t[1])))
    return [(i, s) for s, i in scored[:k]]


def check_results(tc, got, records, query, k, metric, msg=''):
    """Asserts that `got` (the list under "results") is the exact top k. Ids are compared
    exactly; only scores that differ in the float64 reference by less than float32 rounding
    noise (not exact ties) may come in either order. Exact ties must be in id order. Scores
    must match to 1e-4 relative."""
    if isinstance(records, dict):
        records = list(records.values())
    full = brute_force(records, query, len(records), metric)
    n = min(k, len(full))
    tc.assertEqual(len(got), n, '%s: number of results' % msg)
    scale = 1.0
    if metric == 'dot':
        qn = math.sqrt(math.fsum(a * a for a in query))
        xn = max((math.sqrt(math.fsum(a * a for a in r['vector'])) for r in records), default=1)
        scale = max(1.0, qn * xn)
    elif metric == 'l2' and full:
        scale = max(1.0, full[-1][1])
    eps = 2e-6 * scale
    exp_score = dict(full)
    pos = 0
    i = 0
    while pos < n:
        j = i
        while j + 1 < len(full) and abs(full[j + 1][1] - full[j][1]) <= eps:
            j += 1
        group = full[i:j + 1]
        take = min(len(group), n - pos)
        got_ids = [g['id'] for g in got[pos:pos + take]]
        want_ids = [g[0] for g in group]
        exact = all(g[1] == group[0][1] for g in group)
        if exact:
            tc.assertEqual(got_ids, want_ids[:take], '%s: ids at ranks %d..%d' %
                           (msg, pos, pos + take - 1))
        else:
            tc.assertEqual(len(set(map(json.dumps, got_ids))), take, msg)
            tc.assertTrue(set(map(json.dumps, got_ids)) <= set(map(json.dumps, want_ids)),
                          '%s: ids at ranks %d..%d: got %r, want a subset of %r' %
                          (msg, pos, pos + take - 1, got_ids, want_ids))
        pos += take
        i = j + 1
    # Equal printed scores are always in id order, whatever the reference says.
    for a, b in zip(got, got[1:]):
        if a['score'] == b['score']:
            tc.assertLess(id_key(a['id']), id_key(b['id']),
                          '%s: equal scores not in id order: %r, %r' % (msg, a, b))
    for g in got:
        want = exp_score[g['id']]
        tc.assertTrue(math.isclose(g['score'], want, rel_tol=1e-4, abs_tol=1e-5 * scale),
                      '%s: score of %r: got %r, want %r' % (msg, g['id'], g['score'], want))


# ---- exact float32 text ---------------------------------------------------------------------

F32_MAX = Fraction((2 ** 24 - 1) * 2 ** 104)


def decimal_to_f32_bits(text):
    """The float32 bits a correctly rounding parser (round half to even) gives for the JSON
    number `text`, or None when it overflows. Exact: no detour through float64."""
    neg = text.startswith('-')
    x = Fraction(text[1:] if neg else text)
    sign = 0x80000000 if neg else 0
    if x == 0:
        return sign
    e = x.numerator.bit_length() - x.denominator.bit_length()
    if Fraction(2) ** e > x:
        e -= 1
    q = max(e, -126) - 23
    n = round(x / Fraction(2) ** q)  # Fraction rounds half to even
    v = n * Fraction(2) ** q
    if v > F32_MAX:
        return None
    if v == 0:
        return sign
    return sign | f32_bits(float(v))


def significant_digits(tok):
    """Significant decimal digits of a JSON number token ("1.50e3" -> 2)."""
    m = re.match(r'-?(\d+)(?:\.(\d+))?(?:[eE][-+]?\d+)?$', tok)
    assert m, tok
    digits = (m.group(1) + (m.group(2) or '')).strip('0')
    return max(1, len(digits))


def shortest_f32_digits(bits):
    """Length of the shortest decimal that rounds back to these float32 bits."""
    x = bits_f32(bits)
    if x == 0:
        return 1
    for p in range(1, 10):
        if decimal_to_f32_bits('%.*e' % (p - 1, x)) == bits:
            return p
    return 9


JSON_NUMBER = re.compile(r'-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?$')


class _Num(str):
    """A raw JSON number token (keeps the text exactly)."""


def parse_raw(text):
    """json.loads keeping every number as its raw token (_Num, a str subclass)."""
    return json.loads(text, parse_float=_Num, parse_int=_Num)


def parse_export_line(line):
    """Splits one exported record line into (id, [vector tokens], payload text or None).
    Integer ids come back as int, string ids as str; the payload is its exact text."""
    obj = parse_raw(line)
    rid = obj['id']
    rid = int(rid) if isinstance(rid, _Num) else rid
    vec = [str(t) for t in obj['vector']]
    payload = None
    if 'payload' in obj:
        v = line.index(',"vector":[')
        close = line.index(']', v)
        rest = line[close + 1:]
        assert rest.startswith(',"payload":') and rest.endswith('}'), line
        payload = rest[len(',"payload":'):-1]
    return rid, vec, payload


def minify_json(text):
    """Removes the whitespace outside strings; everything else is kept as written."""
    out, in_str, esc = [], False, False
    for ch in text:
        if in_str:
            out.append(ch)
            if esc:
                esc = False
            elif ch == '\\':
                esc = True
            elif ch == '"':
                in_str = False
        elif ch in ' \t\r\n':
            continue
        else:
            if ch == '"':
                in_str = True
            out.append(ch)
    return ''.join(out)


# ---- test case base -------------------------------------------------------------------------


class VdbTestCase(unittest.TestCase):
    """A temp directory per test, plus helpers for the usual steps."""

    maxDiff = 4000

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='vdbtest-')
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def write(self, name, data):
        """Writes a file in the temp dir (str, bytes, or lines/records as for run's input)."""
        p = self.path(name)
        with open(p, 'wb') as f:
            f.write(to_bytes(data))
        return p

    def read(self, name):
        with open(self.path(name) if not os.path.isabs(name) else name, 'rb') as f:
            return f.read()

    def proc(self, cmd, *args, **kw):
        p = Proc(cmd, *args, **kw)
        self.addCleanup(p.kill)
        return p

    # Each helper returns the Result; with check=True it asserts success first.

    def create(self, db='db', dim=4, metric='l2', name=None, seal=None, check=True):
        args = [self.path(db) if not os.path.isabs(db) else db, '--dim', dim, '--metric', metric]
        if name is not None:
            args += ['-c', name]
        if seal is not None:
            args += ['--seal-size', seal]
        r = run('create', *args)
        if check:
            self.assertOk(r)
        return r

    def dbpath(self, db):
        return self.path(db) if not os.path.isabs(db) else db

    def ingest(self, db, recs=None, *args, name=None, check=True, files=()):
        """recs arrive on standard input from a file: batches fall where -b puts them."""
        argv = [self.dbpath(db)] + (['-c', name] if name else []) + list(args) + list(files)
        r = run('ingest', *argv, input=recs if recs is not None else None, stdin_file=True)
        if check:
            self.assertEqual(r.rc, 0, r)
            self.assertEqual(r.out, '', r)
        return r

    def export(self, db='db', name=None, check=True):
        r = run('export', self.dbpath(db), *(['-c', name] if name else []))
        if check:
            self.assertEqual(r.rc, 0, r)
            self.assertEqual(r.err, '', r)
        return r

    def exported(self, db='db', name=None):
        """The exported records as a dict id -> record (json-decoded)."""
        r = self.export(db, name)
        recs = [json.loads(l) for l in r.lines]
        out = {}
        for rec in recs:
            self.assertNotIn(json.dumps(rec['id']), map(json.dumps, out), 'duplicate id')
            out[rec['id']] = rec
        return out

    def exported_ids(self, db='db', name=None):
        r = self.export(db, name)
        return [json.loads(l)['id'] for l in r.lines]

    def query(self, db, *args, input=None, name=None):
        return run('query', self.dbpath(db), *(['-c', name] if name else []), *args,
                   input=input)

    # Assertions for the CLI contract.

    def assertOk(self, r, out=None):
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.err, '', r)
        if out is not None:
            self.assertEqual(r.out, out, r)

    def assertFails(self, r, code, *messages, stdout_empty=True, regex=False):
        """Exit status `code`, every message on stderr (substrings, or regexes), stderr lines
        prefixed "vdb-<cmd>: ", and nothing on stdout unless told otherwise."""
        self.assertEqual(r.rc, code, r)
        prog = os.path.basename(r.argv[0])
        self.assertTrue(r.err.startswith(prog + ': '), 'stderr not prefixed %r: %r' % (prog, r))
        for line in r.errlines:
            if line.startswith('Try '):
                continue
            self.assertTrue(line.startswith(prog + ': '), 'unprefixed stderr line %r in %r'
                            % (line, r))
        for m in messages:
            if regex:
                self.assertRegex(r.err, m, r)
            else:
                self.assertIn(m, r.err, r)
        if stdout_empty:
            self.assertEqual(r.out, '', r)

    def assertUsage(self, r, *messages):
        self.assertFails(r, EXIT_USAGE, *messages)
        prog = os.path.basename(r.argv[0])
        self.assertIn("Try '%s --help'" % prog, r.err, r)

    def assertSummary(self, r, committed, upserted=None, deleted=0, rejected=0, batches=None,
                      interrupted=False, not_found=0, dry_run=False):
        """The ingest summary line on stderr."""
        if upserted is None:
            upserted = committed - deleted - not_found
        rx = (r'vdb-ingest: %s%s%d records? %s in %s batch(es)? \(%d upserted, %d deleted, '
              r'%d not found, %d rejected\)' % (
                  'interrupted: ' if interrupted else '', 'dry run: ' if dry_run else '',
                  committed, 'would be committed' if dry_run else 'committed',
                  r'\d+' if batches is None else str(batches), upserted, deleted, not_found,
                  rejected))
        err = r.err if isinstance(r, Result) else r
        self.assertRegex(err, rx)


def snapshot(root, skip=()):
    """path -> (mtime_ns, size, content) for every file and directory below root, except the
    files named in skip (e.g. LOCK, which a writer rewrites with its pid before anything)."""
    out = {}
    for d, dirs, files in os.walk(root):
        st = os.stat(d)
        out[os.path.relpath(d, root)] = ('dir', st.st_mtime_ns)
        for f in files:
            if f in skip:
                continue
            p = os.path.join(d, f)
            st = os.stat(p)
            with open(p, 'rb') as fh:
                out[os.path.relpath(p, root)] = (st.st_mtime_ns, st.st_size, fh.read())
    return out


def write_fails(tc, cmd, *args, input=None):
    """Runs the command with stdout on /dev/full: it must report the failed write (exit 74)."""
    if not os.path.exists('/dev/full'):
        tc.skipTest('no /dev/full')
    with open('/dev/full', 'wb') as full:
        p = subprocess.run(['vdb-' + cmd] + [str(a) for a in args], executable=exe(cmd),
                           input=to_bytes(input), stdout=full, stderr=subprocess.PIPE, env=ENV,
                           timeout=60)
    err = p.stderr.decode('utf-8', 'surrogateescape')
    tc.assertEqual(p.returncode, EXIT_IO, err)
    tc.assertIn('vdb-%s: write error on standard output: No space left on device' % cmd, err)


def main():
    """unittest.main that exits non-zero on failure."""
    unittest.main(verbosity=2)
