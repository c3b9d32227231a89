#!/usr/bin/env python3
"""vdb-query: exact results against a Python brute force for every metric, tie order, the
query forms and output fields, lookups by id, and bad queries."""

import json
import os
import random
import shutil
import struct
import sys
import tempfile

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vdbtest  # noqa: E402
from vdbtest import (EXIT_DATA, EXIT_NOINPUT, apply_ops, check_results, f32,  # noqa: E402
                     run, seeded_records)

DIM = 16
METRICS = ('l2', 'cosine', 'dot')
U64_MAX = 18446744073709551615

# Exact duplicates of one vector, under mixed integer and string ids; their expected order.
DUP_IDS = [100000, 2, U64_MAX, 5, 'tie', 'Tie', 'tiE', 'ti', 'tie-é', 'ü', '9999999']
DUP_ORDER = [2, 5, 100000, U64_MAX, '9999999', 'Tie', 'ti', 'tiE', 'tie', 'tie-é', 'ü']
# Different integer vectors at exactly the same l2 distance, dot product and cosine from Q.
Q = [3.0] * DIM


def around_q(i, j, sign):
    v = list(Q)
    v[i] += sign
    v[j] -= sign
    return v


SYM = [(40, around_q(0, 1, 1)), ('q-b', around_q(0, 1, -1)), (U64_MAX - 1, around_q(2, 3, 1)),
       ('Q-a', around_q(2, 3, -1))]
SYM_ORDER = [40, U64_MAX - 1, 'Q-a', 'q-b']


class Fixture:
    """One database, a collection per metric holding the same records: 500 seeded records
    (about a fifth with string ids) plus the tie groups, written by three ingests so that
    records live both in sealed segments and in the unsealed log, with deletes and upserts
    reaching into the segments."""

    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix='vdbtest-query-')
        self.db = os.path.join(self.tmp, 'db')
        rng = random.Random(7)
        self.dup_vec = [f32(rng.uniform(-1, 1)) for _ in range(DIM)]
        recs = seeded_records(11, 500, DIM, string_ids=0.2)
        dups = [{'id': i, 'vector': self.dup_vec} for i in DUP_IDS]
        syms = [{'id': i, 'vector': v} for i, v in SYM]
        part1 = recs[:400] + dups[:5] + syms[:2]
        part2 = recs[400:] + dups[5:] + syms[2:]
        deleted = [recs[3]['id'], recs[150]['id'], recs[420]['id'], recs[499]['id']]
        self.deleted_vec = recs[150]['vector']
        part3 = [{'id': i, 'delete': True} for i in deleted]
        self.upserted = [(recs[n]['id'], recs[n]['vector']) for n in (10, 200, 410, 450)]
        for n in (10, 200, 410, 450):  # upserts of sealed and of logged records
            part3.append({'id': recs[n]['id'], 'vector': [f32(rng.uniform(-1, 1))
                                                          for _ in range(DIM)]})
        # A later seal writes deletion files for the older segment; then more changes in the log.
        part4 = seeded_records(12, 250, DIM, id_offset=1000)
        part5 = [{'id': recs[30]['id'], 'delete': True}, {'id': part4[5]['id'], 'delete': True},
                 {'id': recs[40]['id'], 'vector': [f32(rng.uniform(-1, 1)) for _ in range(DIM)]}]
        self.upserted.append((recs[40]['id'], recs[40]['vector']))
        deleted += [recs[30]['id'], part4[5]['id']]
        self.parts = [part1, part2, part3, part4, part5]
        self.live = apply_ops({}, part1 + part2 + part3 + part4 + part5)
        self.deleted = deleted
        self.queries = [[f32(rng.uniform(-1, 1)) for _ in range(DIM)] for _ in range(8)]
        self.queries += [recs[20]['vector'], recs[460]['vector'], self.dup_vec, Q,
                         self.deleted_vec, [f32(rng.uniform(-100, 100)) for _ in range(DIM)]]
        for m in METRICS:
            self.must(run('create', self.db, '-c', m, '--dim', DIM, '--metric', m,
                          '--seal-size', '16K'))
            for part in self.parts:
                self.must(run('ingest', self.db, '-c', m, '-q', input=part, stdin_file=True))
            files = os.listdir(os.path.join(self.db, m))
            segs = [f for f in files if f.startswith('seg-')]
            wal = [f for f in files if f.startswith('wal-')]
            assert len(segs) >= 2, files
            assert [f for f in files if f.startswith('del-')], files
            assert os.path.getsize(os.path.join(self.db, m, wal[0])) > 32, files

    @staticmethod
    def must(r):
        if r.rc != 0:
            raise AssertionError('fixture step failed: %r' % r)

    def close(self):
        shutil.rmtree(self.tmp, True)


FIX = None


def setUpModule():
    global FIX
    FIX = Fixture()


def tearDownModule():
    FIX.close()


class ExactResults(vdbtest.VdbTestCase):

    def run_queries(self, metric, lines, *args):
        r = run('query', FIX.db, '-c', metric, *args, input=lines)
        self.assertOk(r)
        self.assertEqual(len(r.lines), len(lines))
        return [json.loads(l) for l in r.lines]

    def test_against_brute_force(self):
        ks = [1, 7, 10, 50, 1000]
        for metric in METRICS:
            lines = [json.dumps({'vector': q, 'k': k}) for q in FIX.queries for k in ks]
            out = self.run_queries(metric, lines)
            n = 0
            for qi, q in enumerate(FIX.queries):
                for k in ks:
                    self.assertEqual(list(out[n]), ['results'])
                    for hit in out[n]['results']:
                        self.assertEqual(list(hit), ['id', 'score'])
                    check_results(self, out[n]['results'], FIX.live, q, k, metric,
                                  '%s query %d k=%d' % (metric, qi, k))
                    n += 1

    def test_threads_answer_in_input_order(self):
        # Many queries of mixed k, with blank lines, answered on several threads: the same
        # bytes as on one thread, whatever the batching.
        rng = random.Random(5)
        lines = []
        for i in range(700):
            q = FIX.queries[i % len(FIX.queries)]
            lines.append(json.dumps({'vector': q, 'k': rng.choice([1, 3, 10, 40])}))
            if i % 97 == 0:
                lines.append('  ')
        for metric in METRICS:
            one = run('query', FIX.db, '-c', metric, '--threads', '1', '--payload', input=lines)
            self.assertOk(one)
            self.assertEqual(len(one.lines), 700)
            for j in ('2', '3', '16'):
                with self.subTest(metric=metric, threads=j):
                    r = run('query', FIX.db, '-c', metric, '-j', j, '--payload', input=lines)
                    self.assertOk(r, out=one.out)

    def test_one_query_scanned_on_several_threads(self):
        # A collection big enough that one exact query's scan is split among the threads
        # (70,000 x 64 floats, with exact duplicates for ties and deleted rows): --vector
        # and a lone line on stdin give the same bytes on 1, 2 and 3 threads.
        dim, rows = 64, 70000
        rng = random.Random(9)
        base = [struct.pack('<i%df' % dim, dim, *[rng.uniform(-1, 1) for _ in range(dim)])
                for _ in range(700)]
        tmp = tempfile.mkdtemp(prefix='vdbtest-split-')
        try:
            fv, db = os.path.join(tmp, 'v.fvecs'), os.path.join(tmp, 'db')
            with open(fv, 'wb') as f:
                for i in range(rows):
                    f.write(base[(i * 31) % len(base)])
            for metric in METRICS:
                self.assertOk(run('create', db, '-c', metric, '--dim', dim, '--metric', metric,
                                  '--index', 'flat'))
                self.assertOk(run('ingest', '-q', db, '-c', metric, fv))
                self.assertOk(run('ingest', '-q', db, '-c', metric, input=[
                    json.dumps({'id': i, 'delete': True}) for i in range(0, rows, 17)]))
                self.assertOk(run('compact', '-q', db, '-c', metric))
                q = json.dumps([round(rng.uniform(-1, 1), 3) for _ in range(dim)])
                for args in (['--vector=' + q], []):
                    one = run('query', db, '-c', metric, '--exact', '-k', '50', '-j', '1', *args,
                              input=None if args else [q])
                    self.assertOk(one)
                    self.assertEqual(len(json.loads(one.out)['results']), 50)
                    for j in ('2', '3'):
                        with self.subTest(metric=metric, threads=j, args=args):
                            r = run('query', db, '-c', metric, '--exact', '-k', '50', '-j', j,
                                    *args, input=None if args else [q])
                            self.assertOk(r, out=one.out)
        finally:
            shutil.rmtree(tmp, True)

    def test_threads_stop_at_the_first_bad_line(self):
        good = [json.dumps(q) for q in FIX.queries]
        lines = good * 20 + ['[1,2]'] + good * 20
        want = run('query', FIX.db, '-c', 'l2', '-j', '1', input=good * 20)
        self.assertOk(want)
        for j in ('1', '2', '4'):
            with self.subTest(threads=j):
                r = run('query', FIX.db, '-c', 'l2', '-j', j, input=lines)
                self.assertFails(r, EXIT_DATA, 'vdb-query: line %d: expected %d numbers in '
                                 '"vector", got 2' % (len(good) * 20 + 1, DIM), stdout_empty=False)
                self.assertEqual(r.out, want.out)

    def test_k_larger_than_collection(self):
        for metric in METRICS:
            out = self.run_queries(metric, [json.dumps(FIX.queries[0])], '-k', '100000')
            self.assertEqual(len(out[0]['results']), len(FIX.live))
            check_results(self, out[0]['results'], FIX.live, FIX.queries[0], 100000, metric,
                          metric)

    def test_bare_array_and_object_forms(self):
        for metric in METRICS:
            q = FIX.queries[1]
            lines = [json.dumps(q), json.dumps({'vector': q}), json.dumps({'k': 3, 'vector': q}),
                     json.dumps({'vector': q, 'k': 12}), ' %s ' % json.dumps(q),
                     ' { "k" : 3 , "vector" : %s } ' % json.dumps(q, indent=None)]
            out = self.run_queries(metric, lines, '-k', '5')
            self.assertEqual(out[0], out[1])
            self.assertEqual(out[0], out[4])
            self.assertEqual([len(o['results']) for o in out], [5, 5, 3, 12, 5, 3])
            self.assertEqual(out[5], out[2])
            self.assertEqual(out[2]['results'], out[0]['results'][:3])
            self.assertEqual(out[3]['results'][:5], out[0]['results'])
            check_results(self, out[3]['results'], FIX.live, q, 12, metric, metric)

    def test_default_k_is_10(self):
        out = self.run_queries('l2', [json.dumps(FIX.queries[2])])
        self.assertEqual(len(out[0]['results']), 10)

    def test_duplicate_vectors_tie_by_id(self):
        for metric in METRICS:
            out = self.run_queries(metric, [json.dumps({'vector': FIX.dup_vec, 'k': 1000})])
            res = out[0]['results']
            dups = [h for h in res if json.dumps(h['id']) in map(json.dumps, DUP_IDS)]
            self.assertEqual([h['id'] for h in dups], DUP_ORDER, metric)
            self.assertEqual(len({h['score'] for h in dups}), 1, dups)
            # Consecutive in the ranking.
            first = res.index(dups[0])
            self.assertEqual(res[first:first + len(dups)], dups)
            if metric == 'l2':
                self.assertEqual(res[:len(DUP_ORDER)], dups)
                self.assertEqual(dups[0]['score'], 0)

    def test_ties_cut_by_k(self):
        """k ending inside a group of equal scores keeps the smallest ids."""
        for metric in ('l2', 'cosine'):
            lines = [json.dumps({'vector': FIX.dup_vec, 'k': k})
                     for k in range(1, len(DUP_ORDER) + 1)]
            out = self.run_queries(metric, lines)
            for k, o in zip(range(1, len(DUP_ORDER) + 1), out):
                self.assertEqual([h['id'] for h in o['results']], DUP_ORDER[:k],
                                 '%s k=%d' % (metric, k))
        for k in range(1, 5):
            out = self.run_queries('dot', [json.dumps(Q)], '-k', str(k))
            self.assertEqual([h['id'] for h in out[0]['results']], SYM_ORDER[:k])

    def test_equal_scores_of_different_vectors_tie_by_id(self):
        for metric in METRICS:
            out = self.run_queries(metric, [json.dumps(Q)], '-k', '4')
            self.assertEqual([h['id'] for h in out[0]['results']], SYM_ORDER, metric)
            self.assertEqual(len({h['score'] for h in out[0]['results']}), 1)
        out = self.run_queries('l2', [json.dumps(Q)], '-k', '1')
        self.assertEqual(out[0]['results'], [{'id': 40, 'score': 1.4142135}])

    def test_deleted_records_never_returned(self):
        for metric in METRICS:
            out = self.run_queries(metric, [json.dumps(FIX.deleted_vec)], '-k', '100000')
            ids = [h['id'] for h in out[0]['results']]
            for d in FIX.deleted:
                self.assertNotIn(d, ids)
            self.assertEqual(len(ids), len(FIX.live))
            self.assertEqual(len(set(map(json.dumps, ids))), len(ids), 'an id came twice')
        for d in FIX.deleted:
            arg = json.dumps(d, ensure_ascii=False) if isinstance(d, str) else str(d)
            r = run('query', FIX.db, '-c', 'l2', '--id', arg)
            self.assertFails(r, EXIT_NOINPUT, 'vdb-query: no record with id')

    def test_upserted_records_have_their_new_vector(self):
        for rid, old_vec in FIX.upserted:
            arg = json.dumps(rid, ensure_ascii=False) if isinstance(rid, str) else str(rid)
            r = run('query', FIX.db, '-c', 'dot', '--id', arg)
            self.assertOk(r)
            got = json.loads(r.out)
            got['vector'] = [f32(x) for x in got['vector']]
            self.assertEqual(got, FIX.live[rid])
            # Searching for the old vector does not find the record at distance 0.
            r = run('query', FIX.db, '-c', 'l2', '-k', '1', '--vector=' + json.dumps(old_vec))
            self.assertOk(r)
            top = json.loads(r.out)['results'][0]
            self.assertFalse(top['id'] == rid and top['score'] == 0, top)

    def test_scores_with_vector_field(self):
        out = self.run_queries('cosine', [json.dumps(FIX.queries[3])], '-k', '20', '--vector')
        for h in out[0]['results']:
            self.assertEqual(list(h), ['id', 'score', 'vector'])
            self.assertEqual([f32(x) for x in h['vector']], FIX.live[h['id']]['vector'])
            self.assertAlmostEqual(h['score'], vdbtest.score('cosine', FIX.queries[3],
                                                             h['vector']), places=5)


class Small(vdbtest.VdbTestCase):
    """A small l2 collection whose answers are known exactly."""

    RECS = ['{"id":1,"vector":[0,0,0,0],"payload":{"a":1}}',
            '{"id":"s","vector":[1,0,0,0]}',
            '{"id":3,"vector":[0,2,0,0],"payload":{"n":12345678901234567890,"f":1.0e+2}}',
            '{"id":"123","vector":[0,0,3,0],"payload":{"str":true}}',
            '{"id":123,"vector":[0,0,0,4]}',
            '{"id":"doc 1","vector":[0.1,1e-45,-0.0,3.4028235e38]}',
            '{"id":"é","vector":[5,0,0,0]}']

    def setUp(self):
        super().setUp()
        self.create(dim=4)
        self.ingest('db', self.RECS)

    def q(self, *args, input=None):
        return self.query('db', *args, input=input)

    def test_payload_and_vector_fields(self):
        r = self.q('-k', '3', '--payload', '--vector', input='[0,0,0,0]\n')
        self.assertOk(r, out='{"results":[{"id":1,"score":0,"payload":{"a":1},"vector":[0,0,0,0]},'
                      '{"id":"s","score":1,"payload":null,"vector":[1,0,0,0]},'
                      '{"id":3,"score":2,"payload":{"n":12345678901234567890,"f":1.0e+2},'
                      '"vector":[0,2,0,0]}]}\n')
        r = self.q('-k', '2', '--payload', input='[0,0,0,0]\n')
        self.assertOk(r, out='{"results":[{"id":1,"score":0,"payload":{"a":1}},'
                      '{"id":"s","score":1,"payload":null}]}\n')
        r = self.q('-k', '2', '--vector', input='[0,0,0,0]\n')
        self.assertOk(r, out='{"results":[{"id":1,"score":0,"vector":[0,0,0,0]},'
                      '{"id":"s","score":1,"vector":[1,0,0,0]}]}\n')
        r = self.q('-k', '1', input='[0,0,0,0]\n')
        self.assertOk(r, out='{"results":[{"id":1,"score":0}]}\n')

    def test_vector_output_is_exact(self):
        r = self.q('-k', '1', '--vector', '--payload', input='[0.1,0,0,3.4028235e38]\n')
        self.assertOk(r, out='{"results":[{"id":"doc 1","score":0,"payload":null,'
                      '"vector":[0.1,1e-45,-0,3.4028235e+38]}]}\n')

    def test_one_shot_query(self):
        stream = self.q('-k', '2', input='[0,1.9,0,0]\n')
        self.assertOk(stream)
        self.assertEqual(stream.out, '{"results":[{"id":3,"score":0.100000024},'
                         '{"id":1,"score":1.9}]}\n')
        for args in (['--vector=[0,1.9,0,0]'], ['--vector', '[0,1.9,0,0]'],
                     ['--vector=[0, 1.9, 0, 0]'], ['--vector={"vector":[0,1.9,0,0]}']):
            with self.subTest(args=args):
                self.assertOk(self.q('-k', '2', *args), out=stream.out)
        # The query's own k wins over -k; the option may come before the database.
        self.assertOk(self.q('--vector={"vector":[0,1.9,0,0],"k":1}', '-k', '5'),
                      out='{"results":[{"id":3,"score":0.100000024}]}\n')
        r = run('query', '-k', '2', '--vector', '[0,1.9,0,0]', self.path('db'))
        self.assertOk(r, out=stream.out)
        # --vector (the output flag) and --vector=JSON together.
        r = self.q('-k', '1', '--vector', '--vector=[0,1.9,0,0]')
        self.assertOk(r, out='{"results":[{"id":3,"score":0.100000024,"vector":[0,2,0,0]}]}\n')

    def test_one_shot_errors(self):
        r = self.q('--vector=[1,2]')
        self.assertFails(r, vdbtest.EXIT_USAGE,
                         'vdb-query: --vector: expected 4 numbers in "vector", got 2')
        r = self.q('--vector=[1,2,3,x]')
        self.assertFails(r, vdbtest.EXIT_USAGE, 'vdb-query: --vector: invalid JSON at column 8')
        r = self.q('--vector=[0,0,0,0]', self.write('q.jsonl', '[0,0,0,0]\n'))
        self.assertUsage(r, 'vdb-query: query files cannot be combined with --vector=JSON')
        r = self.q('--vector=[0,0,0,0]', '--id', '1')
        self.assertUsage(r, 'vdb-query: --vector=JSON and --id cannot be combined')

    def test_notes_on_filters_that_cannot_match(self):
        # Not errors: the run goes on (exit 0), and -q silences them.
        r = self.q('--count', '--filter', '{"lnag":"en"}')
        self.assertEqual((r.rc, r.out), (0, '0\n'), r)
        self.assertEqual(r.err, 'vdb-query: note: no record has the field "lnag" (of the 7 '
                         'read)\n')
        r = self.q('--count', '--filter', '{"str":{"$gte":1}}')
        self.assertEqual((r.rc, r.out), (0, '0\n'), r)
        self.assertEqual(r.err, 'vdb-query: note: the filter compares "str" with a number; '
                         'the records read hold boolean values there\n')
        self.assertOk(self.q('--count', '--filter', '{"a":1}'), out='1\n')
        self.assertOk(self.q('--count', '--filter', '{"a":{"$exists":true},"n":{"$gt":0}}'),
                      out='0\n')
        self.assertOk(self.q('-q', '--count', '--filter', '{"lnag":"en"}'), out='0\n')
        r = self.q('-k', '1', '--filter', '{"f":"x"}', input='[0,0,0,0]\n')
        self.assertEqual(r.out, '{"results":[]}\n')
        self.assertIn('compares "f" with a string; the records read hold integer values', r.err)

    def test_split_vector_options(self):
        # --with-vectors / --with-payloads (the output) and --query-vector (one query); the
        # first spellings keep working, and a bare list of numbers gets a hint.
        want = self.q('-k', '1', '--vector', '--payload', '--vector=[0,1.9,0,0]').out
        self.assertOk(self.q('-k', '1', '--with-vectors', '--with-payloads',
                             '--query-vector', '[0,1.9,0,0]'), out=want)
        self.assertOk(self.q('-k', '1', '--query-vector={"vector":[0,1.9,0,0]}',
                             '--with-vectors', '--with-payloads'), out=want)
        r = self.q('--query-vector', '[1,2]')
        self.assertFails(r, vdbtest.EXIT_USAGE,
                         'vdb-query: --query-vector: expected 4 numbers in "vector", got 2')
        self.assertUsage(self.q('--query-vector', '[0,0,0,0]', '--id', '1'),
                         'vdb-query: --query-vector and --id cannot be combined')
        for arg in ('1,2,3,4', '0.5', '-1e3, 2'):
            with self.subTest(arg=arg):
                self.assertUsage(self.q('--vector', arg, input='[0,0,0,0]\n'),
                                 "vdb-query: --vector %s: a query vector is a JSON array: "
                                 "--query-vector '[%s]'" % (arg, arg))
        # A query file that happens to be named like a number is still a file.
        f = self.write('1', '[0,0,0,0]\n')
        r = run('query', self.path('db'), '-k', '1', '--vector', '1', cwd=self.path())
        self.assertOk(r, out='{"results":[{"id":1,"score":0,"vector":[0,0,0,0]}]}\n')

    def test_k_option(self):
        self.assertEqual(len(json.loads(self.q('-k', '100000', '--vector=[0,0,0,0]').out)
                             ['results']), len(self.RECS))
        for bad in ['0', '100001', 'abc', '-1', '']:
            with self.subTest(k=bad):
                self.assertUsage(self.q('-k', bad, input='[0,0,0,0]\n'),
                                 "vdb-query: invalid value '%s' for -k (expected an integer "
                                 'from 1 to 100000)' % bad)

    def test_id_lookup(self):
        cases = [('1', self.RECS[0]), ('s', self.RECS[1]), ('3', self.RECS[2]),
                 ('"123"', self.RECS[3]), ('123', self.RECS[4]), ('doc 1', None),
                 ('"doc 1"', None), ('é', '{"id":"é","vector":[5,0,0,0]}'),
                 ('"s"', self.RECS[1])]
        for arg, want in cases:
            with self.subTest(id=arg):
                r = self.q('--id', arg)
                self.assertOk(r)
                if want is None:
                    want = '{"id":"doc 1","vector":[0.1,1e-45,-0,3.4028235e+38]}'
                self.assertEqual(r.out, want + '\n')

    def test_id_missing(self):
        for arg in ['2', '"1"', 'S', '"3"', '18446744073709551615', 'x' * 256]:
            with self.subTest(id=arg):
                self.assertFails(self.q('--id', arg), EXIT_NOINPUT,
                                 'vdb-query: no record with id %s' % arg)

    def test_many_ids(self):
        # Several --id, and --ids-from: one line per id in order, "missing" lines for ids
        # without a record, exit 66 when any was missing.
        r = self.q('--id', '1', '--id', '"s"', '--id', '999', '--id', '"1"')
        self.assertFails(r, EXIT_NOINPUT, 'vdb-query: 2 of 4 ids have no record',
                         stdout_empty=False)
        self.assertEqual(r.lines, [self.RECS[0], self.RECS[1], '{"id":999,"missing":true}',
                                   '{"id":"1","missing":true}'])
        self.assertOk(self.q('--id', '123', '--id', '"123"'),
                      out=self.RECS[4] + '\n' + self.RECS[3] + '\n')
        ids = self.write('ids.txt', ['3', 'é', '"doc 1"', '7'])
        r = self.q('--ids-from', ids)
        self.assertFails(r, EXIT_NOINPUT, 'vdb-query: 1 of 4 ids have no record',
                         stdout_empty=False)
        self.assertEqual(r.lines, [self.RECS[2], '{"id":"é","vector":[5,0,0,0]}',
                                   '{"id":"doc 1","vector":[0.1,1e-45,-0,3.4028235e+38]}',
                                   '{"id":7,"missing":true}'])
        self.assertOk(self.q('--id', 's', '--ids-from', '-', input=b'1\r\n123\n'),
                      out='%s\n%s\n%s\n' % (self.RECS[1], self.RECS[0], self.RECS[4]))
        # A line that is not an id stops the run (exit 65), after the lines before it.
        for line, why in (('1.5', 'not an integer id (ids are integers from 0 or strings); '
                                  'quote it for a string id'),
                          ('', 'an id must not be empty'),
                          ('18446744073709551616', 'integer id 18446744073709551616 is '
                                                   'larger than 18446744073709551615')):
            with self.subTest(line=line):
                r = self.q('--ids-from', '-', input=['1', line, '3'])
                self.assertFails(r, EXIT_DATA, 'vdb-query: standard input: line 2: ' + why,
                                 stdout_empty=False)
                self.assertEqual(r.lines, [self.RECS[0]])
        missing = self.path('nope.txt')
        self.assertFails(self.q('--ids-from', missing), EXIT_NOINPUT,
                         'vdb-query: %s: No such file or directory' % missing)
        self.assertUsage(self.q('--ids-from', ids, '--filter', '{}'),
                         'vdb-query: --filter cannot be combined with --ids-from')
        # Every --id is checked before any is printed.
        r = self.q('--id', '1', '--id', '')
        self.assertUsage(r, 'vdb-query: --id: an id must not be empty')

    def test_id_invalid(self):
        for arg, msg in [('', 'an id must not be empty'),
                         ('18446744073709551616', 'integer id 18446744073709551616 is larger '
                          'than 18446744073709551615'),
                         ('""', 'a string id must be 1 to 256 bytes of UTF-8'),
                         ('x' * 257, 'a string id must be 1 to 256 bytes of UTF-8'),
                         ('"a\\"b"', 'escapes are not supported in a quoted id')]:
            with self.subTest(id=arg):
                self.assertUsage(self.q('--id', arg), 'vdb-query: --id: ' + msg)
        self.assertUsage(self.q('--id', '1', self.write('q', '')),
                         'vdb-query: query files cannot be combined with --id')
        # Numbers that are not ids (ingest refuses them) are not looked up as strings.
        for arg in ['1.5', '-3', '1e3', '-0', '2.50E-7']:
            with self.subTest(id=arg):
                self.assertUsage(self.q('--id', arg),
                                 "vdb-query: --id %s: not an integer id (ids are integers from "
                                 "0 or strings); quote it for a string id: '\"%s\"'" % (arg, arg))
        for arg in ['"1.5"', '1.', '-x', '1e']:  # quoted, or not numbers: string ids
            with self.subTest(id=arg):
                self.assertFails(self.q('--id', arg), EXIT_NOINPUT,
                                 'vdb-query: no record with id %s' % arg)

    def test_bad_query_line_stops_after_earlier_results(self):
        good = ['[0,0,0,0]', '{"vector":[1,0,0,0],"k":1}']
        want = self.q('-k', '2', input=good)
        self.assertOk(want)
        self.assertEqual(len(want.lines), 2)
        bad = [
            ('[1,2', 'invalid JSON at column 5: unexpected end of line'),
            ('[1,2,3]', 'expected 4 numbers in "vector", got 3'),
            ('[1,2,3,4,5]', 'expected 4 numbers in "vector", got 5'),
            ('[]', 'expected 4 numbers in "vector", got 0'),
            ('{"vector":[1,2,3]}', 'expected 4 numbers in "vector", got 3'),
            ('[1,"a",3,4]', 'vector[1] is not a number'),
            ('[1,2,3,1e39]', 'vector[3] = 1e39 is outside the float32 range'),
            ('[1,2,3,4] x', 'invalid JSON at column 11: trailing characters after the JSON value'),
            ('{"vector":[1,2,3,4],"k":0}', '"k" must be an integer from 1 to 100000'),
            ('{"vector":[1,2,3,4],"k":100001}', '"k" must be an integer from 1 to 100000'),
            ('{"vector":[1,2,3,4],"k":-1}', '"k" must be an integer from 1 to 100000'),
            ('{"vector":[1,2,3,4],"k":1.5}', '"k" must be an integer from 1 to 100000'),
            ('{"vector":[1,2,3,4],"k":1e2}', '"k" must be an integer from 1 to 100000'),
            ('{"vector":[1,2,3,4],"k":"5"}', '"k" must be an integer from 1 to 100000'),
            ('{"vector":[1,2,3,4],"k":null}', '"k" must be an integer from 1 to 100000'),
            ('{"k":3}', 'missing "vector"'),
            ('{}', 'missing "vector"'),
            ('{"vector":[1,2,3,4],"ef":0}', '"ef" must be an integer from 1 to 100000'),
            ('{"vector":[1,2,3,4],"ef":"64"}', '"ef" must be an integer from 1 to 100000'),
            ('{"vector":[1,2,3,4],"oversample":0.5}', '"oversample" must be a number from 1 to 1000'),
            ('{"vector":[1,2,3,4],"oversample":1001}', '"oversample" must be a number from 1 to 1000'),
            ('{"vector":[1,2,3,4],"oversample":"2"}', '"oversample" must be a number from 1 to 1000'),
            ('{"vector":[1,2,3,4],"ef":8,"ef":9}', 'duplicate key "ef"'),
            ('{"vector":[1,2,3,4],"top":3}',
             'unknown field "top" (a query has "vector", "k", "filter", "ef", "oversample" and '
             '"tag")'),
            ('{"vector":[1,2,3,4],"tag":1,"tag":2}', 'duplicate key "tag"'),
            ('{"vector":[1,2,3,4],"tag":[1,}', 'invalid JSON at column'),
            ('{"vector":[1,2,3,4],"vector":[1,2,3,4]}', 'duplicate key "vector"'),
            ('{"vector":[1,2,3,4],"k":1,"k":2}', 'duplicate key "k"'),
            ('{"vector":[1,2,3,4],}', 'invalid JSON at column'),
            ('"text"', 'a query must be an array of numbers or an object with "vector"'),
            ('7', 'a query must be an array of numbers or an object with "vector"'),
            (b'["\xff"]', 'invalid UTF-8 at column 3'),
        ]
        for line, msg in bad:
            with self.subTest(line=line):
                r = self.q('-k', '2', input=good + [line, '[0,0,0,0]'])
                self.assertFails(r, EXIT_DATA, 'vdb-query: line 3: ' + msg, stdout_empty=False)
                self.assertEqual(r.out, want.out)

    def test_tags_are_echoed_first(self):
        tags = ['"q1"', '17', '{"run":"a","n":[1,2]}', 'null', '"\\u00e9\\n"', '[true,false]']
        lines = ['{"tag":%s,"vector":[0,0,0,0],"k":1}' % t for t in tags]
        lines.insert(2, '[5,0,0,0]')  # untagged, between tagged ones
        lines.append('{"vector":[0,0,0,0],"k":1,"tag":{ "spaced" : [ 1 , 2 ] }}')
        lines.append('{"vector":[0,0,0,0],"tag":"alone","ef":20,"k":1}')  # answered alone
        want = ['{"tag":%s,"results":[{"id":1,"score":0}]}' % t for t in tags]
        want.insert(2, '{"results":[{"id":"é","score":0},{"id":"s","score":4}]}')
        want.append('{"tag":{"spaced":[1,2]},"results":[{"id":1,"score":0}]}')
        want.append('{"tag":"alone","results":[{"id":1,"score":0}]}')
        for threads in ('1', '2'):
            r = self.q('-k', '2', '-j', threads, input=lines)
            self.assertOk(r, out='\n'.join(want) + '\n')
        r = self.q('-k', '1', '--vector={"tag":"one","vector":[0,0,0,0]}')
        self.assertOk(r, out='{"tag":"one","results":[{"id":1,"score":0}]}\n')

    def test_skip_invalid_answers_bad_lines_in_place(self):
        lines = ['{"tag":"a","vector":[0,0,0,0],"k":1}',
                 '{"tag":"b","vector":[1,2,3],"k":1}',       # wrong dimension, tag known
                 '[1,2',                                     # not JSON: no tag
                 '{"vector":[0,0,0,0],"filter":{"a":{"$x":1}},"tag":"c"}',
                 '',                                         # blank: no line of its own
                 '{"tag":"d","vector":[0,0,0,0],"k":1}',
                 '{"vector":[1,"x",0,0],"tag":"e"}']         # the tag after the error
        want = ['{"tag":"a","results":[{"id":1,"score":0}]}',
                '{"tag":"b","line":2,"error":"expected 4 numbers in \\"vector\\", got 3"}',
                '{"line":3,"error":"invalid JSON at column 5: unexpected end of line '
                '(expected \']\')"}',
                '{"tag":"c","line":4,"error":"filter: unknown operator \\"$x\\" at \\"a\\""}',
                '{"tag":"d","results":[{"id":1,"score":0}]}',
                '{"tag":"e","line":7,"error":"vector[1] is not a number"}']
        for threads in ('1', '2'):
            r = self.q('-j', threads, '--skip-invalid', input=lines)
            self.assertFails(r, EXIT_DATA, 'vdb-query: 4 query lines failed (answered by error '
                             'lines); the first: line 2: expected 4 numbers in "vector", got 3',
                             stdout_empty=False)
            self.assertEqual(r.lines, want)
        # Every line good: exit 0. Files are named in the summary.
        self.assertOk(self.q('--skip-invalid', input=['[0,0,0,0]']))
        f = self.write('q.jsonl', ['[0,0,0,0]', '[0]'])
        r = self.q('-k', '1', '--skip-invalid', f, f)
        self.assertFails(r, EXIT_DATA, 'vdb-query: 2 query lines failed (answered by error '
                         'lines); the first: %s: line 2: expected 4 numbers in "vector", got 1' % f,
                         stdout_empty=False)
        self.assertEqual(len(r.lines), 4)
        # A zero vector has no cosine direction: a failed line too.
        self.create('cos', dim=2, metric='cosine')
        self.ingest('cos', ['{"id":1,"vector":[1,0]}'])
        r = self.query('cos', '--skip-invalid', input=['[0,0]', '{"vector":[0,1],"tag":7}'])
        self.assertFails(r, EXIT_DATA, 'vdb-query: 1 query line failed', stdout_empty=False)
        self.assertEqual(r.lines, ['{"line":1,"error":"a zero query vector has no cosine '
                                   'similarity"}', '{"tag":7,"results":[{"id":1,"score":0}]}'])

    def test_bad_first_line(self):
        r = self.q(input=['[1]'])
        self.assertFails(r, EXIT_DATA, 'vdb-query: line 1: expected 4 numbers in "vector", got 1')

    def test_blank_lines_skipped_and_counted(self):
        r = self.q('-k', '1', input=['', '[0,0,0,0]', '   ', '[1]'])
        self.assertFails(r, EXIT_DATA, 'vdb-query: line 4: expected 4 numbers', stdout_empty=False)
        self.assertEqual(r.out, '{"results":[{"id":1,"score":0}]}\n')

    def test_crlf_queries(self):
        r = self.q('-k', '1', input=b'[0,0,0,0]\r\n{"vector":[1,0,0,0]}\r\n')
        self.assertOk(r, out='{"results":[{"id":1,"score":0}]}\n{"results":[{"id":"s",'
                      '"score":0}]}\n')

    def test_blank_crlf_lines_skipped(self):
        r = self.q('-k', '1', input=b'[0,0,0,0]\r\n\r\n  \r\n[1,0,0,0]\r\n')
        self.assertOk(r, out='{"results":[{"id":1,"score":0}]}\n{"results":[{"id":"s",'
                      '"score":0}]}\n')

    def test_max_line_bytes(self):
        r = self.q('--max-line-bytes', '16', '-k', '1',
                   input=['[0,0,0,0]', '[0, 0, 0, 0, 0, 0, 0]', '[0,0,0,0]'])
        self.assertFails(r, EXIT_DATA, 'vdb-query: line 2: line is longer than 16 bytes '
                         '(--max-line-bytes)', stdout_empty=False)
        self.assertEqual(r.out, '{"results":[{"id":1,"score":0}]}\n')

    def test_query_files(self):
        q1 = self.write('q1.jsonl', ['[0,0,0,0]', '[5,0,0,0]'])
        q2 = self.write('q2.jsonl', ['{"vector":[0,2,0,0],"k":1}'])
        r = self.q('-k', '1', q1, '-', q2, input=['[0,0,0,4]'])
        self.assertOk(r, out='{"results":[{"id":1,"score":0}]}\n'
                      '{"results":[{"id":"é","score":0}]}\n'
                      '{"results":[{"id":123,"score":0}]}\n'
                      '{"results":[{"id":3,"score":0}]}\n')
        bad = self.write('bad.jsonl', ['[0,0,0,0]', '[0,0]'])
        r = self.q('-k', '1', q1, bad, q2)
        self.assertFails(r, EXIT_DATA, 'vdb-query: %s: line 2: expected 4 numbers in "vector", '
                         'got 2' % bad, stdout_empty=False)
        self.assertEqual(len(r.lines), 3)
        missing = self.path('missing.jsonl')
        r = self.q(q1, missing)
        self.assertFails(r, EXIT_NOINPUT, 'vdb-query: %s: No such file or directory' % missing)

    def test_empty_collection(self):
        self.create(name='empty', metric='cosine')
        r = self.query('db', name='empty', input=['[1,0,0,0]', '{"vector":[0,1,0,0],"k":5}'])
        self.assertOk(r, out='{"results":[]}\n{"results":[]}\n')
        self.assertOk(self.query('db', '--vector=[1,2,3,4]', name='empty'),
                      out='{"results":[]}\n')
        self.assertOk(self.query('db', '--payload', '--vector', name='empty', input='[1,1,1,1]'),
                      out='{"results":[]}\n')
        self.assertFails(self.query('db', '--id', '1', name='empty'), EXIT_NOINPUT)
        self.assertOk(self.query('db', name='empty', input=''), out='')

    def test_everything_deleted(self):
        self.ingest('db', [{'id': json.loads(l)['id'], 'delete': True} for l in self.RECS])
        self.assertOk(self.q('--vector=[1,2,3,4]'), out='{"results":[]}\n')

    def test_cosine_zero_query(self):
        self.create(name='cos', metric='cosine')
        self.ingest('db', ['{"id":1,"vector":[1,0,0,0]}'], name='cos')
        r = self.query('db', name='cos', input=['[1,0,0,0]', '[0,0,-0.0,0]'])
        self.assertFails(r, EXIT_DATA, 'vdb-query: line 2: a zero query vector has no cosine '
                         'similarity', stdout_empty=False)
        self.assertEqual(r.out, '{"results":[{"id":1,"score":1}]}\n')
        r = self.query('db', '--vector=[0,0,0,0]', name='cos')
        self.assertFails(r, vdbtest.EXIT_USAGE, 'vdb-query: --vector: a zero query vector')

    def test_sees_records_of_a_later_ingest(self):
        self.ingest('db', ['{"id":77,"vector":[0,0,0,0.5]}'])
        r = self.q('-k', '1', '--vector=[0,0,0,0.375]')
        self.assertOk(r, out='{"results":[{"id":77,"score":0.125}]}\n')

    def test_answers_each_query_before_the_next_arrives(self):
        # A program that writes one query and waits for its answer (a coprocess) must get
        # it while the input stays open: answers are not held back in a buffer.
        for threads in ('1', '2'):
            with self.subTest(threads=threads):
                self.coprocess(threads)

    def test_a_running_stream_sees_later_commits(self):
        # Each batch is answered from the newest version: records committed to the log,
        # a compaction (a new MANIFEST), deletes, and a filter's cached selection.
        q = '{"vector":[0,0,0,0.375],"k":1}\n'
        qf = '{"vector":[0,0,0,0.375],"k":1,"filter":{"a":1}}\n'
        for threads in ('1', '2'):
            with self.subTest(threads=threads):
                self.create('live%s' % threads, dim=4)
                db = 'live%s' % threads
                self.ingest(db, ['{"id":1,"vector":[0,0,0,0],"payload":{"a":1}}'])
                p = self.proc('query', self.dbpath(db), '--threads', threads)
                try:
                    def ask(line, n):
                        p.send(line)
                        got = p.wait_for_stdout_lines(n)
                        self.assertIsNotNone(got, p.err)
                        return got[-1].rstrip("\n")
                    self.assertEqual(ask(q, 1), '{"results":[{"id":1,"score":0.375}]}')
                    self.assertEqual(ask(qf, 2), '{"results":[{"id":1,"score":0.375}]}')
                    self.ingest(db, ['{"id":77,"vector":[0,0,0,0.5],"payload":{"a":1}}'])
                    self.assertEqual(ask(q, 3), '{"results":[{"id":77,"score":0.125}]}')
                    self.assertEqual(ask(qf, 4), '{"results":[{"id":77,"score":0.125}]}')
                    self.assertOk(run('compact', '-q', self.dbpath(db)))
                    self.ingest(db, ['{"id":77,"delete":true}'])
                    self.assertEqual(ask(q, 5), '{"results":[{"id":1,"score":0.375}]}')
                    self.assertEqual(ask(qf, 6), '{"results":[{"id":1,"score":0.375}]}')
                    p.close_stdin()
                    self.assertEqual(p.wait(), 0, p.err)
                finally:
                    p.kill()

    def coprocess(self, threads):
        p = self.proc('query', self.dbpath('db'), '-k', '1', '--threads', threads)
        try:
            p.send('[0,0,0,0.375]\n')
            first = p.wait_for_stdout_lines(1)
            self.assertIsNotNone(first, 'no answer while stdin is open; stderr: ' + p.err)
            p.send('[0,0,0,0.375]\n')
            self.assertEqual(len(p.wait_for_stdout_lines(2) or []), 2, p.err)
            p.close_stdin()
            self.assertEqual(p.wait(), 0, p.err)
            self.assertEqual(p.out.count('\n'), 2)
        finally:
            p.kill()

    def test_scores_do_not_depend_on_the_search_path(self):
        # The same records answered from the log (exact), through a sealed segment's graph
        # and with --exact carry the same scores, for every metric (cosine's graph ranks by
        # stored norms, but results carry the exact scan's score).
        recs = seeded_records(31, 1500, 8, string_ids=0, payloads=0)
        queries = [json.dumps([round(random.Random(i).uniform(-1, 1), 3) for _ in range(8)])
                   for i in range(20)]
        for metric in METRICS:
            with self.subTest(metric=metric):
                db = 'db-' + metric
                self.create(db, dim=8, metric=metric)
                self.ingest(db, [vdbtest.record_line(r) for r in recs])
                logged = self.query(db, '-k', '5', input=queries)
                self.assertOk(logged)
                self.assertOk(run('compact', '-q', self.dbpath(db)))
                graph = self.query(db, '-k', '5', '--ef', '200', input=queries)
                exact = self.query(db, '-k', '5', '--exact', input=queries)
                self.assertOk(graph, out=logged.out)
                self.assertOk(exact, out=logged.out)

    def test_threads_option(self):
        for bad in ('0', '65', 'x', ''):
            with self.subTest(threads=bad):
                self.assertUsage(self.q('--threads', bad, input='[0,0,0,0]'),
                                 "vdb-query: invalid value '%s' for --threads (expected an "
                                 "integer from 1 to 64)" % bad)

    def test_one_spelling_for_threads_and_k(self):
        # -j/--threads in every command that takes threads (vdb-snapshot's -T stays);
        # -k has a long form.
        self.assertOk(self.q('--top-k', '1', input='[0,0,0,0]'),
                      out='{"results":[{"id":1,"score":0}]}\n')
        want = run('export', self.dbpath('db')).out
        for cmd, extra in (('ingest', ()), ('compact', ('-q',))):
            for bad in ('0', '65', 'x'):
                with self.subTest(cmd=cmd, threads=bad):
                    self.assertUsage(run(cmd, self.dbpath('db'), '-j', bad, *extra),
                                     "vdb-%s: invalid value '%s' for --threads" % (cmd, bad))
        self.create('one', dim=4)
        self.assertOk(run('ingest', self.dbpath('one'), '-q', '-j', '1',
                          input='\n'.join(self.RECS) + '\n'))
        self.assertOk(run('compact', '-q', '--threads', '2', self.dbpath('one')))
        self.assertEqual(run('export', self.dbpath('one')).out, want)
        for spelling in ('-j', '-T', '--threads'):
            with self.subTest(snapshot=spelling):
                out = self.path('s%s.tar.zst' % spelling.strip('-'))
                self.assertOk(run('snapshot', '-q', self.dbpath('db'), '-o', out, spelling, '2'))
                self.assertOk(run('restore', '-q', '--verify', out))

    def test_missing_db_and_collection(self):
        db = self.path('nodb')
        self.assertFails(run('query', db, input='[0,0,0,0]'), EXIT_NOINPUT,
                         'vdb-query: %s: No such file or directory' % db)
        # The message names the collections that do exist (users forget -c).
        self.assertFails(self.query('db', name='nope', input='[0,0,0,0]'), EXIT_NOINPUT,
                         "vdb-query: collection 'nope' does not exist in %s (it has: default)\n"
                         % self.path('db'))
        self.assertFails(self.query('db', '--id', '1', name='nope'), EXIT_NOINPUT)
        for name in ('b-docs', 'a-images'):
            self.assertOk(run('create', self.path('db'), '-c', name, '--dim', '4', '--metric',
                              'l2'))
        self.assertFails(run('ingest', self.path('db'), '-c', 'nope', input=''), EXIT_NOINPUT,
                         "vdb-ingest: collection 'nope' does not exist in %s (it has: a-images, "
                         "b-docs, default)\n" % self.path('db'))
        empty = self.path('empty')
        self.assertOk(run('create', empty, '-c', 'gone', '--dim', '4', '--metric', 'l2'))
        shutil.rmtree(os.path.join(empty, 'gone'))
        self.assertFails(run('export', empty), EXIT_NOINPUT,
                         "vdb-export: collection 'default' does not exist in %s (it has no "
                         "collection)\n" % empty)

    def test_write_errors(self):
        vdbtest.write_fails(self, 'query', self.path('db'), input='[0,0,0,0]\n')
        vdbtest.write_fails(self, 'query', self.path('db'), '--vector=[0,0,0,0]')
        vdbtest.write_fails(self, 'query', self.path('db'), '--id', '1')

    def test_help_and_version_write_errors(self):
        for opt in ('--help', '--version'):
            with self.subTest(opt=opt):
                vdbtest.write_fails(self, 'query', opt)

    def test_usage_help_version(self):
        self.assertUsage(run('query', input=''), 'vdb-query: missing database directory operand')
        self.assertUsage(self.q('--bogus', input=''), "vdb-query: unknown option '--bogus'")
        r = run('query', '--help')
        self.assertOk(r)
        self.assertTrue(r.out.startswith('Usage: vdb-query DB'))
        for word in ('Exit status', '--payload', '--vector=JSON', '--id', '-k N'):
            self.assertIn(word, r.out)
        r = run('query', '-V')
        self.assertOk(r)
        self.assertRegex(r.out, r'^vdb-query \(vdb\) \d+\.\d+\.\d+\n$')


if __name__ == '__main__':
    vdbtest.main()
