#!/usr/bin/env python3
"""Shell completions (completions/): bash, zsh and fish are each asked, through the real
shell, what they complete; the options offered must be exactly those of each command's
--help, plus metric, index, format and order names and the collections of the database on
the command line. A shell that is not installed is skipped, visibly."""

import os
import re
import shutil
import subprocess
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vdbtest  # noqa: E402
from vdbtest import ENV, HERE, run  # noqa: E402

SRC = os.path.normpath(os.path.join(HERE, '..', '..', 'completions'))
COMMANDS = ['create', 'ingest', 'query', 'export', 'compact', 'snapshot', 'restore', 'check',
            'info', 'drop', 'rename']


def help_long_options(cmd):
    r = run(cmd, '--help')
    assert r.rc == 0, r
    opts = r.out.split('Options:', 1)[1].split('Exit status:', 1)[0]
    return sorted(set(re.findall(r'(?<![\w-])(--[a-z][a-z-]*)', opts)))


class Shell:
    """Completion in one shell: complete(line) -> the list of matches at its end."""

    name = None
    program = None

    def available(self):
        return shutil.which(self.program) is not None


class Bash(Shell):
    name, program = 'bash', 'bash'

    def available(self):
        return (super().available() and
                os.path.exists('/usr/share/bash-completion/bash_completion'))

    def setup(self, tmp):
        # Installed as meson installs it: one file per command name.
        d = os.path.join(tmp, 'bash-user', 'completions')
        os.makedirs(d)
        for c in ['vdb'] + ['vdb-' + c for c in COMMANDS]:
            shutil.copy(os.path.join(SRC, 'vdb.bash'), os.path.join(d, c))
        self.env = dict(ENV, BASH_COMPLETION_USER_DIR=os.path.join(tmp, 'bash-user'))

    def complete(self, line, cwd):
        p = subprocess.run(['bash', '--norc', '--noprofile', os.path.join(HERE, 'bash-complete.sh'),
                            line], capture_output=True, text=True, env=self.env, cwd=cwd,
                           timeout=60)
        assert p.returncode == 0, (line, p.stderr)
        return [l for l in p.stdout.split('\n') if l]


class Zsh(Shell):
    name, program = 'zsh', 'zsh'

    def setup(self, tmp):
        self.env = dict(ENV, HOME=tmp)

    def complete(self, line, cwd):
        p = subprocess.run(['zsh', '-f', os.path.join(HERE, 'zsh-complete.zsh'), SRC, line],
                           capture_output=True, text=True, env=self.env, cwd=cwd, timeout=60)
        assert p.returncode == 0, (line, p.stderr)
        return [l.strip() for l in p.stdout.split('\n') if l.strip()]


class Fish(Shell):
    name, program = 'fish', 'fish'

    def setup(self, tmp):
        d = os.path.join(tmp, 'fish-vendor')
        os.makedirs(d)
        for c in ['vdb'] + ['vdb-' + c for c in COMMANDS]:
            shutil.copy(os.path.join(SRC, 'vdb.fish'), os.path.join(d, c + '.fish'))
        self.dir = d
        self.env = dict(ENV, HOME=tmp, XDG_CONFIG_HOME=os.path.join(tmp, 'cfg'),
                        XDG_DATA_HOME=os.path.join(tmp, 'data'))

    def complete(self, line, cwd):
        # fish loads a command's completions from $fish_complete_path by the command's name.
        script = ('set -p fish_complete_path %s; complete -C %s'
                  % (self.dir, "'" + line.replace("'", "\\'") + "'"))
        p = subprocess.run(['fish', '--no-config', '-c', script], capture_output=True,
                           text=True, env=self.env, cwd=cwd, timeout=60)
        assert p.returncode == 0, (line, p.stderr)
        return [l.split('\t', 1)[0] for l in p.stdout.split('\n') if l]


class CompletionTests:
    """Mixed into one TestCase per shell."""

    shell = None

    def setUp(self):
        super().setUp()
        if not self.shell.available():
            self.skipTest('%s is not installed (scripts/deps installs it)' % self.shell.name)
        self.shell.setup(self.tmp)
        self.db = self.path('db')
        for name in ('docs', 'img-v2', 'a.b_c'):
            self.assertOk(run('create', self.db, '-c', name, '--dim', '2', '--metric', 'l2'))

    def complete(self, line):
        return self.shell.complete(line, self.tmp)

    def long_options(self, line):
        return sorted(set(m.rstrip('=') for m in self.complete(line) if m.startswith('--')))

    def test_every_long_option_of_every_command(self):
        for cmd in COMMANDS:
            want = help_long_options(cmd)
            self.assertEqual(self.long_options('vdb-%s --' % cmd), want, cmd)
            self.assertEqual(self.long_options('vdb %s --' % cmd), want, 'vdb ' + cmd)

    def test_command_names(self):
        got = set(self.complete('vdb '))
        self.assertTrue(set(COMMANDS) | {'help'} <= got, got)
        self.assertEqual(set(self.complete('vdb in')), {'info', 'ingest'})
        self.assertTrue(set(COMMANDS) <= set(self.complete('vdb help ')))

    def test_value_names(self):
        self.assertEqual(sorted(self.complete('vdb-create db -d 3 --metric ')),
                         ['cosine', 'dot', 'l2'])
        self.assertEqual(sorted(self.complete('vdb create db -m c')), ['cosine'])
        self.assertEqual(sorted(self.complete('vdb-create db --index ')), ['flat', 'hnsw'])
        self.assertEqual(sorted(self.complete('vdb-ingest db --format ')),
                         ['bvecs', 'csv', 'fvecs', 'jsonl', 'npy', 'parquet'])
        # export writes no bvecs
        self.assertEqual(sorted(self.complete('vdb export db -f ')),
                         ['csv', 'fvecs', 'jsonl', 'npy', 'parquet'])
        self.assertEqual(sorted(self.complete('vdb-export db --order ')), ['id', 'storage'])
        self.assertEqual(sorted(self.complete('vdb-export db --compression ')),
                         ['none', 'snappy', 'zstd'])

    def test_collection_names_from_the_database(self):
        want = ['a.b_c', 'docs', 'img-v2']
        for line in ('vdb-query db -c ', 'vdb query db --collection ', 'vdb-info -c ',
                     'vdb-ingest --batch 10 db -c ', 'vdb-snapshot db -c docs -c '):
            # -c before the database: the database is further on; after it, it is known.
            if line in ('vdb-info -c ',):
                continue
            self.assertEqual(sorted(self.complete(line)), want, line)
        self.assertEqual(self.complete('vdb-export db -c im'), ['img-v2'])
        self.assertEqual(sorted(self.complete('vdb-export %s -c ' % self.db)), want)
        # Not a database: nothing to offer.
        os.mkdir(self.path('plain'))
        self.assertEqual(self.complete('vdb-query plain -c '), [])


class BashCompletion(CompletionTests, vdbtest.VdbTestCase):
    shell = Bash()


class ZshCompletion(CompletionTests, vdbtest.VdbTestCase):
    shell = Zsh()


class FishCompletion(CompletionTests, vdbtest.VdbTestCase):
    shell = Fish()


if __name__ == '__main__':
    vdbtest.main()
