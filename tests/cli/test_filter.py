#!/usr/bin/env python3
"""Payload filters through the commands: vdb-query --filter / "filter" in query lines /
--count, vdb-export --filter, vdb-ingest --delete-where and delete_where records, checked
against an independent Python evaluation of the filter language on seeded records, over
sealed segments (with graphs), deletions and the log tail; and bad filters (exit 64 for an
option, 65 with the line number for a query or ingest line)."""

import json
import os
import random
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vdbtest  # noqa: E402
from vdbtest import EXIT_DATA, check_results, f32, run  # noqa: E402

DIM = 8
MISSING = object()


# ---- a reference evaluator, written from the documented semantics ----------------------------

def values_at(doc, path):
    """Every value at the dotted path: arrays on the way are descended into."""
    cur = [doc]
    for part in path.split('.'):
        nxt = []
        for v in cur:
            items = v if isinstance(v, list) else [v]
            for x in items:
                if isinstance(x, dict) and part in x:
                    nxt.append(x[part])
        cur = nxt
    return cur


def same(a, b):
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return type(a) == type(b) and a == b


def scalars(vals):
    out = []
    for v in vals:
        out.extend(v if isinstance(v, list) else [v])
    return out


def cmp_ok(op, v, w):
    if isinstance(w, str):
        if not isinstance(v, str):
            return False
        a, b = v.encode(), w.encode()
    else:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return False
        a, b = v, w
    return {'$gt': a > b, '$gte': a >= b, '$lt': a < b, '$lte': a <= b}[op]


def field_ok(vals, cond):
    if not (isinstance(cond, dict) and cond and all(k.startswith('$') for k in cond)):
        cond = {'$eq': cond}
    for op, w in cond.items():
        sc = scalars(vals)
        if op == '$eq':
            ok = any(same(v, w) for v in sc)
        elif op == '$ne':
            ok = not any(same(v, w) for v in sc)
        elif op == '$in':
            ok = any(same(v, x) for v in sc for x in w)
        elif op == '$nin':
            ok = not any(same(v, x) for v in sc for x in w)
        elif op == '$exists':
            ok = bool(vals) == w
        elif op == '$not':
            ok = not field_ok(vals, w)
        else:
            ok = any(cmp_ok(op, v, w) for v in sc)
        if not ok:
            return False
    return True


def matches(flt, payload):
    doc = payload if payload is not None else {}
    for k, v in flt.items():
        if k == '$and':
            ok = all(matches(f, payload) for f in v)
        elif k == '$or':
            ok = any(matches(f, payload) for f in v)
        elif k == '$not':
            ok = not matches(v, payload)
        else:
            ok = field_ok(values_at(doc, k), v)
        if not ok:
            return False
    return True


# ---- data -------------------------------------------------------------------------------------

def records(seed, n):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        rec = {'id': i if rng.random() < 0.8 else 'doc-%d' % i,
               'vector': [f32(rng.uniform(-1, 1)) for _ in range(DIM)]}
        if rng.random() < 0.9:
            p = {'year': rng.randrange(1990, 2026), 'score': round(rng.uniform(0, 1), 3),
                 'tags': rng.sample(['a', 'b', 'c', 'd', 'é'], rng.randrange(0, 4)),
                 'meta': {'source': rng.choice(['web', 'book', 'paper'])},
                 'flag': rng.random() < 0.3}
            if rng.random() < 0.8:
                p['lang'] = rng.choice(['en', 'en', 'de', 'fr'])
            if rng.random() < 0.1:
                p['lang'] = None
            rec['payload'] = p
        out.append(rec)
    return out


FILTERS = [
    {},
    {'lang': 'en'},
    {'lang': None},
    {'year': {'$gte': 2000, '$lt': 2010}},
    {'year': 2001},
    {'score': {'$gt': 0.99}},
    {'tags': 'é'},
    {'tags': {'$in': ['a', 'd']}},
    {'tags': {'$nin': ['a', 'b']}},
    {'lang': {'$ne': 'en'}},
    {'lang': {'$exists': False}},
    {'meta.source': 'book', 'flag': True},
    {'$or': [{'lang': 'fr'}, {'year': {'$lt': 1992}}]},
    {'$not': {'lang': {'$in': ['en', 'de']}}},
    {'year': {'$not': {'$gte': 1995}}},
    {'$and': [{'lang': 'de'}, {'tags': {'$exists': True}}, {'meta.source': {'$gte': 'p'}}]},
    {'lang': 'xx'},
]


class Filtered(vdbtest.VdbTestCase):
    CREATE = ()  # extra vdb-create arguments

    def setUp(self):
        super().setUp()
        self.recs = records(11, 4000)
        # A segment of 2,000 rows with a graph (the first load settles), then segments
        # without one (a seal follows the commit that passes 200K; --no-settle keeps them
        # flat), then a tail of new records and deletions in the log.
        self.assertOk(run('create', self.path('db'), '--dim', DIM, '--metric', 'l2',
                          '--seal-size', '200K', *self.CREATE))
        self.ingest('db', self.recs[:2000])
        self.ingest('db', self.recs[2000:], '--no-settle')
        tail = records(12, 300)
        for r in tail:
            r['id'] = 'tail-%s' % r['id']
        self.ingest('db', tail, '--no-settle')
        self.recs += tail
        gone = self.recs[::13]
        self.ingest('db', [{'id': r['id'], 'delete': True} for r in gone], '--no-settle')
        ids = {json.dumps(r['id']) for r in gone}
        self.live = [r for r in self.recs if json.dumps(r['id']) not in ids]
        self.assertGreaterEqual(len([f for f in os.listdir(self.path('db', 'default'))
                                     if f.startswith('seg-')]), 2)

    def expected(self, flt):
        return [r for r in self.live if matches(flt, r.get('payload'))]

    def test_count_matches_the_reference(self):
        for flt in FILTERS:
            r = self.query('db', '--count', '--filter', json.dumps(flt))
            self.assertOk(r, '%d\n' % len(self.expected(flt)))
        self.assertOk(self.query('db', '--count'), '%d\n' % len(self.live))

    def test_exact_queries_are_the_filtered_brute_force(self):
        rng = random.Random(5)
        for flt in FILTERS:
            want = self.expected(flt)
            qs = [[f32(rng.uniform(-1, 1)) for _ in range(DIM)] for _ in range(3)]
            r = self.query('db', '--exact', '-k', '10', '--filter', json.dumps(flt),
                           input=[json.dumps(q) for q in qs])
            self.assertOk(r)
            for q, line in zip(qs, r.lines):
                check_results(self, json.loads(line)['results'], want, q, 10, 'l2',
                              json.dumps(flt))

    def test_graph_queries_return_k_matching_results(self):
        rng = random.Random(6)
        hit = total = 0
        for flt in FILTERS:
            want = self.expected(flt)
            by_id = {json.dumps(r['id']) for r in want}
            qs = [[f32(rng.uniform(-1, 1)) for _ in range(DIM)] for _ in range(5)]
            for ef in ('10', '128'):
                r = self.query('db', '-k', '10', '--ef', ef, '--filter', json.dumps(flt),
                               input=[json.dumps(q) for q in qs])
                self.assertOk(r)
                for q, line in zip(qs, r.lines):
                    got = [json.dumps(h['id']) for h in json.loads(line)['results']]
                    self.assertEqual(len(got), min(10, len(want)), json.dumps(flt))
                    self.assertTrue(set(got) <= by_id, json.dumps(flt))
                    truth = vdbtest.brute_force(want, q, 10, 'l2')
                    hit += len(set(got) & {json.dumps(i) for i, _ in truth})
                    total += len(truth)
        self.assertGreaterEqual(hit / total, 0.95)

    def test_filters_in_query_lines_combine_with_the_option(self):
        q = [0.1] * DIM
        lines = [json.dumps({'vector': q, 'filter': {'lang': 'de'}}),
                 json.dumps(q),
                 json.dumps({'vector': q, 'k': 3, 'filter': {'year': {'$lt': 2000}}}),
                 json.dumps({'vector': q, 'filter': {'lang': 'de'}})]
        for base in (None, {'flag': True}):
            args = ['--exact', '--payload'] + (['--filter', json.dumps(base)] if base else [])
            r = self.query('db', *args, input=lines)
            self.assertOk(r)
            got = [json.loads(l)['results'] for l in r.lines]
            wants = [{'lang': 'de'}, {}, {'year': {'$lt': 2000}}, {'lang': 'de'}]
            for g, w, k in zip(got, wants, (10, 10, 3, 10)):
                flt = {'$and': [w, base]} if base else w
                check_results(self, g, self.expected(flt), q, k, 'l2', json.dumps(flt))
                for h in g:
                    self.assertTrue(matches(flt, h.get('payload')), h)
        one = self.query('db', '--exact', '--vector=' +
                         json.dumps({'vector': q, 'k': 2, 'filter': {'lang': 'fr'}}))
        self.assertOk(one)
        check_results(self, json.loads(one.out)['results'], self.expected({'lang': 'fr'}), q, 2,
                      'l2')

    def test_export_filter(self):
        for flt in ({'lang': 'en', 'year': {'$gte': 2015}}, {'tags': {'$in': ['é']}}, {}):
            r = run('export', self.path('db'), '--filter', json.dumps(flt))
            self.assertOk(r)
            got = sorted(json.dumps(json.loads(l)['id']) for l in r.lines)
            self.assertEqual(got, sorted(json.dumps(x['id']) for x in self.expected(flt)))

    def test_delete_where_option_and_records(self):
        flt = {'lang': 'de', 'year': {'$lt': 2010}}
        doomed = self.expected(flt)
        self.assertGreater(len(doomed), 10)
        r = self.ingest('db', None, '--delete-where', json.dumps(flt))
        self.assertSummary(r, len(doomed), deleted=len(doomed), batches=1)
        self.live = [x for x in self.live if not matches(flt, x.get('payload'))]
        self.assertOk(self.query('db', '--count'), '%d\n' % len(self.live))
        self.assertOk(self.query('db', '--count', '--filter', json.dumps(flt)), '0\n')

        # In a stream: records before it are committed first and seen by it; after it, new.
        new = [{'id': 'n1', 'vector': [0.5] * DIM, 'payload': {'lang': 'fr'}},
               {'delete_where': {'lang': 'fr'}},
               {'id': 'n2', 'vector': [0.5] * DIM, 'payload': {'lang': 'fr'}}]
        fr = len(self.expected({'lang': 'fr'})) + 1
        r = self.ingest('db', new)
        self.assertSummary(r, fr + 2, upserted=2, deleted=fr)
        self.assertOk(self.query('db', '--count', '--filter', '{"lang":"fr"}'), '1\n')
        ids = [json.loads(l)['id'] for l in run('export', self.path('db'), '--filter',
                                                 '{"lang":"fr"}').lines]
        self.assertEqual(ids, ['n2'])

    def test_bad_filters(self):
        db = self.path('db')
        for cmd, args in (('query', ['--count']), ('export', []), ('ingest', [])):
            opt = '--delete-where' if cmd == 'ingest' else '--filter'
            r = run(cmd, db, *args, opt, '{"title":{"$regex":"x"}}')
            self.assertUsage(r, '%s: unknown operator "$regex" at "title"' % opt)
            r = run(cmd, db, *args, opt, '{"year":{"$gt":true}}')
            self.assertUsage(r, '%s: "$gt" at "year" needs a number or a string' % opt)
            r = run(cmd, db, *args, opt, '{"tag":')
            self.assertUsage(r, '%s: invalid JSON at column 8' % opt)
        r = self.query('db', input=['[0,0,0,0,0,0,0,0]',
                                    '{"vector":[0,0,0,0,0,0,0,0],"filter":{"a":{"$in":1}}}'])
        self.assertFails(r, EXIT_DATA, 'vdb-query: line 2: filter: "$in" at "a" needs an array',
                         stdout_empty=False)
        self.assertEqual(len(r.lines), 1)
        r = self.query('db', input=['{"vector":[0,0,0,0,0,0,0,0],"filter":[1]}'])
        self.assertFails(r, EXIT_DATA, 'line 1: "filter" must be a JSON object')
        before = self.query('db', '--count').out
        r = self.ingest('db', [{'id': 'z', 'vector': [1] * DIM},
                               {'delete_where': {'$nor': []}}, {'id': 'y', 'vector': [1] * DIM}],
                        check=False)
        self.assertFails(r, EXIT_DATA, 'line 2: filter: unknown operator "$nor"')
        self.assertOk(self.query('db', '--count'), '%d\n' % (int(before) + 1))
        r = self.ingest('db', ['{"delete_where":{"a":1},"id":1}'], check=False)
        self.assertFails(r, EXIT_DATA, 'line 1: a delete_where record takes no other field')
        r = self.query('db', '--count', '--vector', '[1,2,3,4,5,6,7,8]')
        self.assertUsage(r, '--count cannot be combined with --vector=JSON')


class IndexedFiltered(Filtered):
    """The same checks with payload indexes on four of the fields: the indexes only narrow
    down the rows to evaluate, so every result must be the same."""
    CREATE = ('--index-field', 'lang:keyword', '--index-field', 'year:int',
              '--index-field', 'score:float', '--index-field', 'tags:keyword')

    def test_config_lists_the_indexes(self):
        with open(self.path('db', 'default', 'CONFIG')) as f:
            config = json.loads(f.read().split('\n', 1)[1])
        self.assertEqual(config['payload_indexes'],
                         [{'field': 'lang', 'type': 'keyword'}, {'field': 'year', 'type': 'int'},
                          {'field': 'score', 'type': 'float'},
                          {'field': 'tags', 'type': 'keyword'}])

    def test_bad_index_fields(self):
        db = self.path('other')
        for arg, msg in (('lang', 'expected NAME:keyword|int|float'),
                         ('lang:text', "unknown type 'text' (expected keyword, int or float)"),
                         (':int', 'expected NAME:keyword|int|float'),
                         ('a..b:int', 'an index field path must be'),
                         ('.a:int', 'an index field path must be'),
                         ('x' * 128 + ':int', 'field name longer than 127 bytes')):
            r = run('create', db, '--dim', 2, '--metric', 'l2', '--index-field', arg)
            self.assertFails(r, vdbtest.EXIT_USAGE, msg)
            self.assertFalse(os.path.exists(os.path.join(db, 'default')))
        r = run('create', db, '--dim', 2, '--metric', 'l2', '--index-field', 'a:int',
                '--index-field', 'a:float')
        self.assertFails(r, vdbtest.EXIT_USAGE, 'a field is indexed twice')
        args = []
        for i in range(5):
            args += ['--index-field', 'f%d:int' % i]
        r = run('create', db, '--dim', 2, '--metric', 'l2', *args)
        self.assertUsage(r, '--index-field: at most 4 fields')


if __name__ == '__main__':
    vdbtest.main()
