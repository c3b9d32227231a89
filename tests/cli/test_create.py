#!/usr/bin/env python3
"""vdb-create: databases and collections, names, options, and refusing to clobber."""

import os
import subprocess
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vdbtest  # noqa: E402
from vdbtest import EXIT_CANTCREAT, ENV, exe, run, snapshot  # noqa: E402


class CreateSuccess(vdbtest.VdbTestCase):

    def test_creates_db_and_default_collection_silently(self):
        r = run('create', self.path('db'), '--dim', '4', '--metric', 'l2')
        self.assertOk(r, out='')
        self.assertTrue(os.path.isfile(self.path('db', 'VDB')))
        self.assertTrue(os.path.isdir(self.path('db', 'default')))
        # No temporary leftovers beside the collection.
        self.assertEqual(sorted(os.listdir(self.path('db'))), ['VDB', 'default'])
        # The new collection is usable and empty.
        self.assertOk(self.export(), out='')
        self.assertOk(self.query('db', '--vector=[0,0,0,1]'), out='{"results":[]}\n')

    def test_collection_option_short_long_and_equals(self):
        self.create(name='alpha')
        self.assertOk(run('create', self.path('db'), '--collection', 'beta', '-d', '2', '-m',
                          'dot'))
        self.assertOk(run('create', self.path('db'), '--collection=gamma', '--dim=3',
                          '--metric=cosine'))
        self.assertEqual(sorted(os.listdir(self.path('db'))), ['VDB', 'alpha', 'beta', 'gamma'])
        self.assertFalse(os.path.exists(self.path('db', 'default')))
        # Each collection has its own dimension.
        self.ingest('db', ['{"id":1,"vector":[1,2]}'], name='beta')
        self.assertFails(self.ingest('db', ['{"id":1,"vector":[1,2]}'], name='gamma',
                                     check=False),
                         65, 'vdb-ingest: line 1: expected 3 numbers in "vector", got 2')

    def test_default_name_is_default(self):
        self.create(name='other')
        self.create()  # a second collection in the existing database
        self.assertEqual(sorted(os.listdir(self.path('db'))), ['VDB', 'default', 'other'])
        self.ingest('db', ['{"id":1,"vector":[1,2,3,4]}'])
        self.assertEqual(self.exported_ids(name='default'), [1])
        self.assertEqual(self.exported_ids(name='other'), [])

    def test_valid_name_edges(self):
        for name in ['a', 'A' * 64, 'x.y-z_09', 'default2', 'vdb', 'VDBx', '-dash', '_']:
            with self.subTest(name=name):
                self.assertOk(run('create', self.path('db'), '-c', name, '--dim', '1',
                                  '--metric', 'l2'))
                self.assertTrue(os.path.isdir(self.path('db', name)))

    def test_metrics_are_used(self):
        # The same data answers differently under each metric.
        for metric, want_first in [('l2', 1), ('dot', 2), ('cosine', 1)]:
            with self.subTest(metric=metric):
                self.create(name=metric, dim=2, metric=metric)
                self.ingest('db', ['{"id":1,"vector":[1,0]}', '{"id":2,"vector":[3,3]}'],
                            name=metric)
                r = self.query('db', '-k', '1', '--vector=[1,0]', name=metric)
                self.assertOk(r)
                self.assertEqual(vdbtest.json.loads(r.out)['results'][0]['id'], want_first)

    def test_dim_and_seal_size_edges_accepted(self):
        for i, extra in enumerate([['--dim', '1'], ['--dim', '65536'],
                                   ['--dim', '2', '--seal-size', '4096'],
                                   ['--dim', '2', '--seal-size', '4K'],
                                   ['--dim', '2', '--seal-size', '4k'],
                                   ['--dim', '2', '--seal-size', '1M'],
                                   ['--dim', '2', '--seal-size', '1G'],
                                   ['--dim', '2', '--seal-size', '1024G']]):
            with self.subTest(extra=extra):
                self.assertOk(run('create', self.path('db'), '-c', 'c%d' % i, '--metric', 'l2',
                                  *extra))

    def test_quiet(self):
        self.assertOk(run('create', self.path('db'), '-q', '--dim', '2', '--metric', 'l2'),
                      out='')

    def test_existing_empty_directory_becomes_a_database(self):
        os.mkdir(self.path('db'))
        self.create()
        self.assertTrue(os.path.isfile(self.path('db', 'VDB')))

    def test_what_a_killed_create_left_is_removed(self):
        # .tmp-create-NAME-PID: removed once PID is gone (NAME may hold '-'); kept while it
        # runs. The database's listing never showed them.
        self.create()
        p = subprocess.Popen(['true'])
        p.wait()
        left = ['.tmp-create-old-%d' % p.pid, '.tmp-create-a-b-%d' % p.pid]
        live = '.tmp-create-x-%d' % os.getpid()
        for d in left + [live]:
            os.mkdir(self.path('db', d))
            self.write(os.path.join('db', d, 'CONFIG'), b'partial')
        self.assertOk(run('create', self.path('db'), '-c', 'new', '--dim', '2', '--metric', 'l2'))
        names = os.listdir(self.path('db'))
        for d in left:
            self.assertNotIn(d, names)
        self.assertIn(live, names)
        self.assertIn('new', names)

    def test_options_after_operand(self):
        self.assertOk(run('create', '--dim', '2', self.path('db'), '--metric', 'dot', '-c', 'x'))
        self.assertTrue(os.path.isdir(self.path('db', 'x')))


class CreateRefuses(vdbtest.VdbTestCase):

    def test_existing_collection_is_untouched(self):
        self.create(dim=4, metric='l2')
        self.ingest('db', ['{"id":1,"vector":[1,2,3,4],"payload":{"a":1}}'])
        before = snapshot(self.path('db'))
        for args in (['--dim', '4', '--metric', 'l2'], ['--dim', '8', '--metric', 'cosine'],
                     ['--dim', '4', '--metric', 'l2', '--seal-size', '4K']):
            with self.subTest(args=args):
                r = run('create', self.path('db'), *args)
                self.assertFails(r, EXIT_CANTCREAT, "vdb-create: collection 'default' already "
                                 "exists in %s" % self.path('db'))
                self.assertEqual(snapshot(self.path('db')), before)
        # Still the same collection: dimension 4, the record intact.
        self.assertEqual(self.export().out, '{"id":1,"vector":[1,2,3,4],"payload":{"a":1}}\n')

    def test_existing_named_collection(self):
        self.create(name='c1')
        before = snapshot(self.path('db'))
        r = run('create', self.path('db'), '-c', 'c1', '--dim', '4', '--metric', 'l2')
        self.assertFails(r, EXIT_CANTCREAT, "collection 'c1' already exists")
        self.assertEqual(snapshot(self.path('db')), before)

    def test_invalid_names(self):
        for name in ['', '.x', '.', '..', 'a/b', '/abs', 'a' * 65, 'VDB', 'sp ace', 'tab\tx',
                     'é', 'a:b', 'a*']:
            with self.subTest(name=name):
                r = run('create', self.path('db'), '-c', name, '--dim', '2', '--metric', 'l2')
                self.assertUsage(r, "vdb-create: invalid collection name '%s'" % name,
                                 'use 1-64 of A-Z a-z 0-9 _ . -')
                self.assertFalse(os.path.exists(self.path('db')), 'created %r' % name)

    def test_invalid_name_in_existing_db_changes_nothing(self):
        self.create()
        before = snapshot(self.path('db'))
        for name in ['VDB', '.hidden', 'a' * 65]:
            r = run('create', self.path('db'), '-c', name, '--dim', '2', '--metric', 'l2')
            self.assertUsage(r, 'invalid collection name')
        self.assertEqual(snapshot(self.path('db')), before)

    def test_dim_missing_or_invalid(self):
        r = run('create', self.path('db'), '--metric', 'l2')
        self.assertUsage(r, 'vdb-create: --dim is required')
        for bad in ['0', '65537', 'abc', '-1', '1.5', '', '4x', ' 4', '99999999999999999999999']:
            with self.subTest(dim=bad):
                r = run('create', self.path('db'), '--dim', bad, '--metric', 'l2')
                self.assertUsage(r, "vdb-create: invalid value '%s' for --dim" % bad,
                                 'expected an integer from 1 to 65536')
        self.assertFalse(os.path.exists(self.path('db')))

    def test_metric_missing_or_unknown(self):
        r = run('create', self.path('db'), '--dim', '2')
        self.assertUsage(r, 'vdb-create: --metric is required (cosine, l2 or dot)')
        for bad in ['euclid', 'L2', 'COSINE', '', 'ip', 'l2 ']:
            with self.subTest(metric=bad):
                r = run('create', self.path('db'), '--dim', '2', '--metric', bad)
                self.assertUsage(r, "vdb-create: unknown metric '%s' (expected cosine, l2 or dot)"
                                 % bad)
        self.assertFalse(os.path.exists(self.path('db')))

    def test_seal_size_invalid(self):
        for bad in ['abc', '0', '4095', '3K', '-4096', '1T', '4KB', '1.5M', '2048G', '', 'K',
                    '99999999999999999999G']:
            with self.subTest(seal=bad):
                r = run('create', self.path('db'), '--dim', '2', '--metric', 'l2',
                        '--seal-size', bad)
                self.assertUsage(r, "vdb-create: invalid value '%s' for --seal-size" % bad)
        self.assertFalse(os.path.exists(self.path('db')))

    def test_nonempty_foreign_directory(self):
        os.mkdir(self.path('db'))
        self.write('db/notes.txt', 'mine\n')
        before = snapshot(self.path('db'))
        r = run('create', self.path('db'), '--dim', '2', '--metric', 'l2')
        self.assertFails(r, EXIT_CANTCREAT,
                         'vdb-create: %s exists and is not a vdb database' % self.path('db'))
        self.assertEqual(snapshot(self.path('db')), before)

    def test_db_is_a_regular_file(self):
        p = self.write('db', 'not a directory\n')
        r = run('create', p, '--dim', '2', '--metric', 'l2')
        self.assertFails(r, EXIT_CANTCREAT,
                         'vdb-create: %s exists and is not a directory' % p)
        self.assertEqual(self.read('db'), b'not a directory\n')

    def test_parent_directory_missing(self):
        p = self.path('missing', 'db')
        r = run('create', p, '--dim', '2', '--metric', 'l2')
        self.assertFails(r, EXIT_CANTCREAT, 'vdb-create: cannot create database directory %s: '
                         'No such file or directory' % p)
        self.assertFalse(os.path.exists(self.path('missing')))

    def test_operands(self):
        self.assertUsage(run('create', '--dim', '2', '--metric', 'l2'),
                         'vdb-create: missing database directory operand')
        self.assertUsage(run('create', self.path('a'), self.path('b'), '--dim', '2',
                             '--metric', 'l2'), 'vdb-create: too many operands')
        self.assertFalse(os.path.exists(self.path('a')))

    def test_unknown_or_incomplete_option(self):
        # One line naming the option and what is wrong with it, then the "Try" line.
        for args, msg in ((['--bogus'], "unknown option '--bogus'"), (['-x'], "unknown option '-x'"),
                          (['--dim'], "option '--dim' needs a value"),
                          (['--metric'], "option '--metric' needs a value"),
                          (['-c'], "option '-c' needs a value"),
                          (['--seal-size'], "option '--seal-size' needs a value"),
                          (['--quiet=1'], "option '--quiet' takes no value")):
            with self.subTest(args=args):
                r = run('create', self.path('db'), '--dim', '2', '--metric', 'l2', *args)
                self.assertUsage(r, 'vdb-create: ' + msg)
                self.assertEqual(len(r.errlines), 2, r)
                self.assertFalse(os.path.exists(self.path('db')))
        # The same in every command.
        for cmd in ('ingest', 'query', 'export', 'compact', 'snapshot', 'restore', 'check',
                    'info'):
            with self.subTest(cmd=cmd):
                r = run(cmd, self.path('db'), '--bacth')
                # A misspelling of one of the command's own options is named.
                meant = "; did you mean '--batch'?" if cmd == 'ingest' else ''
                self.assertUsage(r, "vdb-%s: unknown option '--bacth'%s\n" % (cmd, meant))
                self.assertEqual(len(r.errlines), 2, r)
        for cmd, typo, meant in (('query', '--exatc', '--exact'), ('export', '--fromat=npy', '--format'),
                                 ('query', '--zzzzzz', None), ('create', '--metirc', '--metric'),
                                 ('info', '--jsno', '--json')):
            with self.subTest(typo=typo):
                r = run(cmd, self.path('db'), typo)
                name = typo.split('=')[0]
                tail = "; did you mean '%s'?" % meant if meant else ''
                self.assertUsage(r, "vdb-%s: unknown option '%s'%s\n" % (cmd, name, tail))


class CreateHelp(vdbtest.VdbTestCase):

    def test_help(self):
        for opt in ('-h', '--help'):
            with self.subTest(opt=opt):
                r = run('create', opt)
                self.assertOk(r)
                self.assertTrue(r.out.startswith('Usage: vdb-create DB'), r)
                for word in ('Exit status', '--dim', '--metric', '--seal-size', '--collection',
                             '64', '73', '75'):
                    self.assertIn(word, r.out)

    def test_help_wins_over_bad_options_after_it(self):
        r = run('create', '--help', self.path('db'))
        self.assertOk(r)
        self.assertFalse(os.path.exists(self.path('db')))

    def test_version(self):
        for opt in ('-V', '--version'):
            with self.subTest(opt=opt):
                r = run('create', opt)
                self.assertOk(r)
                self.assertRegex(r.out, r'^vdb-create \(vdb\) \d+\.\d+\.\d+\n$')


    def test_help_and_version_write_errors(self):
        for opt in ('--help', '--version'):
            with self.subTest(opt=opt):
                vdbtest.write_fails(self, 'create', opt)


class CreateConcurrent(vdbtest.VdbTestCase):

    def spawn(self, n, args_for):
        procs = [subprocess.Popen([exe('create')] + args_for(i), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=ENV) for i in range(n)]
        return [(p.wait(60), p.stdout.read().decode(), p.stderr.read().decode())
                for p in procs]

    # Both races are timing dependent: several rounds make a failure reproducible.

    def test_same_collection_exactly_one_wins(self):
        for rnd in range(4):
            db = self.path('db%d' % rnd)
            res = self.spawn(10, lambda i: [db, '--dim', str(i + 1), '--metric', 'l2'])
            self.assertEqual(len([r for r in res if r[0] == 0]), 1, res)
            for rc, out, err in res:
                self.assertIn(rc, (0, EXIT_CANTCREAT), res)
                self.assertEqual(out, '')
                if rc:  # the loser is told why: the collection exists (not "not a database")
                    self.assertEqual(err, "vdb-create: collection 'default' already exists in "
                                     "%s\n" % db, res)
            self.assertEqual(sorted(os.listdir(db)), ['VDB', 'default'])

    def test_different_collections_in_a_new_db_all_succeed(self):
        for rnd in range(4):
            db = self.path('db%d' % rnd)
            res = self.spawn(10, lambda i: [db, '-c', 'c%d' % i, '--dim', '2', '--metric', 'l2'])
            self.assertEqual([r[0] for r in res], [0] * 10, res)
            self.assertEqual(sorted(os.listdir(db)), ['VDB'] + ['c%d' % i for i in range(10)])


if __name__ == '__main__':
    vdbtest.main()
