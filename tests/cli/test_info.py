#!/usr/bin/env python3
"""vdb-info (configuration, counts, sizes, the writer's pid) and the vdb umbrella command."""

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vdbtest  # noqa: E402
from vdbtest import BIN, ENV, EXIT_NOINPUT, EXIT_USAGE, Result, run  # noqa: E402


def info_json(tc, *args):
    r = run('info', *args, '--json')
    tc.assertOk(r)
    return [json.loads(l) for l in r.lines]


class Info(vdbtest.VdbTestCase):

    def setUp(self):
        super().setUp()
        self.db = self.path('db')
        self.assertOk(run('create', self.db, '--dim', '3', '--metric', 'cosine',
                          '--index-field', 'lang:keyword', '--index-field', 'year:int'))
        self.assertOk(run('create', self.db, '-c', 'flat', '--dim', '2', '--metric', 'dot',
                          '--index', 'flat'))

    def test_fresh_collections(self):
        got = info_json(self, self.db)
        self.assertEqual([c['collection'] for c in got], ['default', 'flat'])
        d, f = got
        self.assertEqual((d['dim'], d['metric'], d['index'], d['m'], d['ef_construction']),
                         (3, 'cosine', 'hnsw', 16, 200))
        self.assertEqual(d['payload_indexes'], [{'field': 'lang', 'type': 'keyword'},
                                                {'field': 'year', 'type': 'int'}])
        self.assertEqual((f['dim'], f['metric'], f['index'], f['m'], f['ef_construction']),
                         (2, 'dot', 'flat', None, None))
        for c in got:
            self.assertEqual((c['live'], c['deleted'], c['segments'], c['log_records'],
                              c['writer_pid']), (0, 0, 0, 0, None))
            # The log holds its header only; the directory its files.
            self.assertEqual(c['wal_bytes'], 32)
            coll = os.path.join(self.db, c['collection'])
            self.assertEqual(c['disk_bytes'], sum(os.path.getsize(os.path.join(coll, n))
                                                  for n in os.listdir(coll)))

    def test_counts_follow_writes_deletes_and_compaction(self):
        recs = ['{"id":%d,"vector":[1,%d,3],"payload":{"lang":"en"}}' % (i, i)
                for i in range(1, 11)]
        self.ingest('db', recs)
        self.ingest('db', ['{"id":3,"delete":true}', '{"id":4,"vector":[0,1,0]}'])
        c, = info_json(self, self.db, '-c', 'default')
        # In the log: id 3's row deleted and id 4's replaced are dead rows too.
        self.assertEqual((c['live'], c['deleted'], c['segments'], c['log_records']),
                         (9, 2, 0, 10))
        r = run('info', self.db, '-q')
        self.assertOk(r)
        self.assertRegex(r.out, r'\n  records +9 live, 2 deleted or replaced\n')
        self.assertGreater(c['wal_bytes'], 32)
        self.assertOk(run('compact', self.db, '-q'))
        c, = info_json(self, self.db, '-c', 'default')
        self.assertEqual((c['live'], c['deleted'], c['segments'], c['segment_rows'],
                          c['log_records'], c['wal_bytes']), (9, 0, 1, 9, 0, 32))
        # Replacing and deleting sealed rows leaves dead rows for the next compaction.
        self.ingest('db', ['{"id":5,"vector":[5,5,5]}', '{"id":6,"delete":true}'])
        c, = info_json(self, self.db, '-c', 'default')
        self.assertEqual((c['live'], c['deleted'], c['segment_rows']), (8, 2, 9))
        self.assertGreater(c['generation'], 1)
        seg = [n for n in os.listdir(self.path('db', 'default')) if n.startswith('seg-')]
        self.assertEqual(c['segment_bytes'], os.path.getsize(self.path('db', 'default', seg[0])))

    def test_text_output(self):
        self.ingest('db', ['{"id":1,"vector":[1,2,3]}'])
        r = run('info', self.db)
        self.assertOk(r)
        self.assertIn('collection default\n', r.out)
        self.assertRegex(r.out, r'\n  metric +cosine\n')
        self.assertRegex(r.out, r'\n  index +hnsw \(m 16, ef-construction 200\)\n')
        self.assertRegex(r.out, r'\n  payload indexes +lang:keyword, year:int\n')
        self.assertRegex(r.out, r'\n  records +1 live, 0 deleted or replaced\n')
        self.assertRegex(r.out, r'\n  writer +none\n')
        self.assertIn('\n\ncollection flat\n', r.out)
        self.assertRegex(r.out, r'collection flat\n(.*\n)*  index +flat\n')

    def test_writer_pid_while_a_writer_holds_the_lock(self):
        p = self.proc('ingest', self.db)
        p.send(b'{"id":1,"vector":[1,2,3]}\n')
        deadline = time.monotonic() + 20
        while True:
            c, = info_json(self, self.db, '-c', 'default')
            if c['writer_pid'] is not None or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual(c['writer_pid'], p.pid)
        self.assertIn('writer           pid %d\n' % p.pid, run('info', self.db).out)
        # Looking did not disturb the writer, nor a writer that will not wait.
        self.assertFails(run('ingest', self.db, '--no-wait', input=[]), 75,
                         '(pid %d)' % p.pid)
        p.close_stdin()
        self.assertEqual(p.wait(), 0, p.err)
        c, = info_json(self, self.db, '-c', 'default')
        self.assertEqual((c['writer_pid'], c['live']), (None, 1))

    def test_lock_held_by_another_program(self):
        with open(self.path('db', 'flat', 'LOCK'), 'a+') as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            c, = info_json(self, self.db, '-c', 'flat')
        # /proc/locks names this process; without it, the LOCK file's recorded pid is used.
        self.assertIn(c['writer_pid'], (os.getpid(), True) if os.path.exists('/proc/locks')
                      else (True,))
        c, = info_json(self, self.db, '-c', 'flat')
        self.assertIsNone(c['writer_pid'])

    def test_list(self):
        self.assertOk(run('info', self.db, '--list'), out='default\nflat\n')
        self.ingest('db', ['{"id":%d,"vector":[1,%d,3]}' % (i, i) for i in range(5)])
        self.assertEqual(info_json(self, self.db, '--list'),
                         [{'collection': 'default', 'dim': 3, 'metric': 'cosine', 'records': 5},
                          {'collection': 'flat', 'dim': 2, 'metric': 'dot', 'records': 0}])
        self.assertUsage(run('info', self.db, '--list', '-c', 'flat'),
                         'vdb-info: --list and --collection cannot be combined')
        self.assertFails(run('info', self.path('nope'), '--list'), EXIT_NOINPUT, 'nope')

    def test_fields(self):
        recs = ['{"id":1,"vector":[1,2,3],"payload":{"lang":"en","year":2020,"meta":{"src":"web"}}}',
                '{"id":2,"vector":[1,2,4],"payload":{"lang":"de","year":2021.5,"tags":["a"]}}',
                '{"id":3,"vector":[1,2,5],"payload":{"lang":null}}',
                '{"id":4,"vector":[1,2,6]}',
                '{"id":5,"vector":[1,2,7],"payload":{"ok":true}}']
        self.ingest('db', recs[:3])
        self.assertOk(run('compact', '-q', self.db))  # some in a segment, some in the log
        self.ingest('db', recs[3:] + ['{"id":3,"delete":true}'])
        r = run('info', self.db, '-c', 'default', '--fields')
        self.assertOk(r, out='default: payload fields of 4 of 4 records\n'
                      '  lang      string   2\n'
                      '  meta      object   1\n'
                      '  meta.src  string   1\n'
                      '  ok        boolean  1\n'
                      '  tags      array    1\n'
                      '  year      integer  1\n'
                      '  year      number   1\n')
        got = info_json(self, self.db, '-c', 'default', '--fields')
        self.assertEqual(got[0], {'collection': 'default', 'field': 'lang', 'type': 'string',
                                  'records': 2, 'read': 4, 'live': 4, 'exact': True})
        r = run('info', self.db, '-c', 'default', '--fields', '--sample', '2')
        self.assertEqual(r.lines[0], 'default: payload fields of a sample: 2 of 4 records, '
                         'spread over the collection')
        # The indexed fields (lang:keyword, year:int) are counted over every record then.
        self.assertIn('  lang      string   2 (every record: indexed)', r.lines)
        self.assertIn('  year      number   2 (every record: indexed)', r.lines)
        self.assertFalse(any(l.startswith('  year      integer') for l in r.lines), r.lines)
        got = info_json(self, self.db, '-c', 'default', '--fields', '--sample', '1')
        lang = [g for g in got if g['field'] == 'lang' and g['type'] == 'string'][0]
        self.assertEqual((lang['records'], lang['exact'], lang['read']), (2, True, 1))
        # Every collection, and usage errors.
        r = run('info', self.db, '--fields')
        self.assertOk(r)
        self.assertIn('flat: payload fields of 0 of 0 records', r.out)
        self.assertUsage(run('info', self.db, '--fields', '--list'),
                         'vdb-info: --list and --fields cannot be combined')
        self.assertUsage(run('info', self.db, '--fields', '--sample', 'x'), '--sample')

    def test_json_reports_of_ingest_compact_and_check(self):
        # --json: the summaries as JSON on standard output, for jq.
        recs = ['{"id":%d,"vector":[1,%d,3]}' % (i, i) for i in range(10)]
        r = run('ingest', self.db, '--json', '-b', '4', input='\n'.join(recs + ['{"id":3,'
                '"delete":true}', '{"id":77,"delete":true}', 'bad']) + '\n', stdin_file=True)
        self.assertEqual(r.rc, vdbtest.EXIT_DATA, r)
        got = json.loads(r.out)
        self.assertEqual({k: got[k] for k in ('committed', 'batches', 'upserted', 'deleted',
                                               'not_found', 'rejected', 'dry_run',
                                               'interrupted', 'exit')},
                         {'committed': 12, 'batches': 3, 'upserted': 10, 'deleted': 1,
                          'not_found': 1, 'rejected': 0, 'dry_run': False,
                          'interrupted': False, 'exit': 65})
        self.assertNotIn('committed in', r.err)  # no human summary beside it
        self.assertIn('line 13', r.err)
        r = run('ingest', self.db, '--json', '--dry-run', '-q', input=recs[0] + '\n')
        self.assertOk(r)
        self.assertEqual((json.loads(r.out)['dry_run'], json.loads(r.out)['committed']),
                         (True, 1))
        r = run('compact', self.db, '--json')
        self.assertOk(r)
        got = json.loads(r.out)
        self.assertEqual((got['collection'], got['live'], got['segments_after']),
                         ('default', 9, 1))
        r = run('check', self.db, '--json')
        self.assertOk(r)
        lines = [json.loads(l) for l in r.lines]
        self.assertEqual(lines[-1], {'problems': 0, 'rebuilt': 0})
        self.assertEqual([l['problem'] for l in lines[:-1]], [False, False])
        self.assertTrue(lines[0]['message'].startswith('default: ok: 9 records'))
        # A damaged file: a problem line, the count, exit 65.
        seg = [f for f in os.listdir(os.path.join(self.db, 'default')) if f.startswith('seg-')][0]
        with open(os.path.join(self.db, 'default', seg), 'r+b') as f:
            f.seek(200)
            b = f.read(1)
            f.seek(200)
            f.write(bytes([b[0] ^ 0xff]))
        r = run('check', self.db, '-c', 'default', '--json')
        self.assertEqual(r.rc, vdbtest.EXIT_DATA, r)
        lines = [json.loads(l) for l in r.lines]
        self.assertTrue(any(l.get('problem') for l in lines[:-1]), lines)
        self.assertGreater(lines[-1]['problems'], 0)

    def test_errors(self):
        self.assertFails(run('info', self.path('nope')), EXIT_NOINPUT, 'nope')
        self.assertFails(run('info', self.db, '-c', 'missing'), EXIT_NOINPUT, 'missing')
        self.assertUsage(run('info'), 'missing database directory operand')
        self.assertUsage(run('info', self.db, self.db), 'too many operands')
        self.assertUsage(run('info', self.db, '--bogus'), 'unknown')
        os.mkdir(self.path('plain'))
        r = run('info', self.path('plain'))
        self.assertNotEqual(r.rc, 0)
        self.assertEqual(r.out, '')

    def test_empty_database_prints_nothing(self):
        self.assertOk(run('create', self.path('db2'), '--dim', '2', '--metric', 'l2'))
        shutil.rmtree(self.path('db2', 'default'))
        self.assertOk(run('info', self.path('db2')), out='')


def vdb(*args, input=None, path=None, argv0='vdb', executable=None):
    """Runs the umbrella command."""
    env = dict(ENV)
    if path is not None:
        env['PATH'] = path
    # A copy of vdb elsewhere finds libvdb through this (the build tree's rpath is relative).
    lib = os.path.join(os.path.dirname(BIN), 'libvdb')
    env['LD_LIBRARY_PATH'] = lib + os.pathsep + env.get('LD_LIBRARY_PATH', '')
    argv = [argv0] + [str(a) for a in args]
    p = subprocess.run(argv, executable=executable or os.path.join(BIN, 'vdb'),
                       input=input, stdin=None if input is not None else subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, timeout=60)
    return Result(argv, p.returncode, p.stdout, p.stderr, 0)


class Umbrella(vdbtest.VdbTestCase):

    def test_runs_commands_beside_itself_before_path(self):
        # A decoy vdb-info on PATH must lose against the one beside vdb.
        decoy = self.path('decoy')
        os.mkdir(decoy)
        with open(os.path.join(decoy, 'vdb-info'), 'w') as f:
            f.write('#!/bin/sh\necho decoy\n')
        os.chmod(os.path.join(decoy, 'vdb-info'), 0o755)
        db = self.path('db')
        r = vdb('create', db, '--dim', '2', '--metric', 'l2', path=decoy + ':/usr/bin:/bin')
        self.assertOk(r)
        r = vdb('ingest', db, input=b'{"id":1,"vector":[1,2]}\n', path=decoy)
        self.assertEqual(r.rc, 0, r)
        self.assertIn('vdb-ingest: 1 record committed in 1 batch', r.err)
        r = vdb('info', db, '--json', path=decoy)
        self.assertEqual(json.loads(r.out)['live'], 1, r)
        # Failures keep the command's exit status and message.
        r = vdb('query', self.path('nope'), '--vector', '[1,2]', path=decoy)
        self.assertEqual(r.rc, EXIT_NOINPUT, r)
        self.assertTrue(r.err.startswith('vdb-query: '), r)

    def test_falls_back_to_path(self):
        # A copy of vdb alone in a directory finds the commands on PATH, extra ones too.
        lone = self.path('lone')
        os.mkdir(lone)
        shutil.copy(os.path.join(BIN, 'vdb'), lone)
        extra = self.path('extra')
        os.mkdir(extra)
        with open(os.path.join(extra, 'vdb-hello'), 'w') as f:
            f.write('#!/bin/sh\necho "hello $*"\n')
        os.chmod(os.path.join(extra, 'vdb-hello'), 0o755)
        exe = os.path.join(lone, 'vdb')
        r = vdb('hello', 'a b', 'c', path=extra, executable=exe)
        self.assertOk(r, out='hello a b c\n')
        r = vdb('--version', path=BIN, executable=exe)
        self.assertEqual(r.rc, 0)
        r = vdb('info', '--version', path=BIN + ':/usr/bin:/bin', executable=exe)
        self.assertOk(r, out='vdb-info (vdb) %s\n' % vdb('--version').lines[0].split()[1])
        self.assertUsage(vdb('info', path=extra, executable=exe), "'info' is not a vdb command")

    def test_version_names_the_libraries(self):
        r = vdb('--version')
        self.assertOk(r)
        self.assertRegex(r.out, r'^vdb \d+\.\d+\.\d+\nlibvdb \d+\.\d+\.\d+\n'
                         r'cJSON \d+\.\d+\.\d+\nzstd \d+\.\d+\.\d+\n$')
        self.assertEqual(vdb('-V').out, r.out)
        # The zstd the zstd tool reports, when it is there, has the same major version.
        if shutil.which('zstd'):
            z = subprocess.run(['zstd', '--version'], capture_output=True, text=True).stdout
            m = re.search(r'v(\d+)\.', z)
            if m:
                self.assertIn('\nzstd %s.' % m.group(1), r.out)

    def test_help(self):
        r = vdb('--help')
        self.assertOk(r)
        self.assertTrue(r.out.startswith('Usage: vdb COMMAND [ARGS...]\n'), r)
        for cmd in ('create', 'ingest', 'query', 'export', 'compact', 'snapshot', 'restore',
                    'check', 'info'):
            self.assertRegex(r.out, r'\n  %s +\S' % cmd)
        self.assertIn('Exit status:\n  0   success\n', r.out)
        self.assertEqual(vdb('help').out, r.out)
        # Not on a terminal: the command's --help.
        r = vdb('help', 'info')
        self.assertOk(r, out=run('info', '--help').out)
        self.assertUsage(vdb('help', 'nosuch'), "'nosuch' is not a vdb command (see")
        self.assertUsage(vdb('help', 'ingets'),
                         "vdb: 'ingets' is not a vdb command; did you mean 'ingest'? (see "
                         "'vdb --help')")
        self.assertUsage(vdb('help', 'a', 'b'), 'help takes at most one command')

    def test_usage_errors(self):
        self.assertUsage(vdb(), 'missing command')
        self.assertUsage(vdb('--bogus'), "unknown option '--bogus'")
        # Never a path, never a name that cannot be a command.
        for bad in ('../vdb-info', '/bin/true', 'Info', 'x y', ''):
            self.assertUsage(vdb(bad), 'is not a vdb command')
        self.assertUsage(vdb('ingets'), "vdb: 'ingets' is not a vdb command; did you mean "
                                        "'ingest'? (see 'vdb --help')")
        self.assertUsage(vdb('Info'), "did you mean 'info'?")
        self.assertUsage(vdb('frobnicate'), "vdb: 'frobnicate' is not a vdb command (see")


if __name__ == '__main__':
    vdbtest.main()
