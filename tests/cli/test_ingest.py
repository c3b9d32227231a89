#!/usr/bin/env python3
"""vdb-ingest: record validation, committing up to the first bad line, --skip-invalid and
--rejects, FILE operands, batches, deletes and upserts, locking, signals."""

import json
import os
import re
import signal
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vdbtest  # noqa: E402
from vdbtest import (EXIT_CANTCREAT, EXIT_DATA, EXIT_LOCKED, EXIT_NOINPUT,  # noqa: E402
                     EXIT_SIGINT, EXIT_SIGTERM, run)

GOOD = '{"id":%s,"vector":[1,2,3,4]}'
V = '"vector":[1,2,3,4]'


def good(i):
    return GOOD % json.dumps(i)


# (name, bad line for a dim-4 collection, the message after "line N: "). Every case comes
# from the record validation in libvdb/formats/jsonl.c (and the JSON scanner under it).
BAD = [
    # invalid JSON
    ('truncated', '{"id":1,',
     'invalid JSON at column 9: unexpected end of line (expected a string)'),
    ('single quotes', "{'id':1}",
     "invalid JSON at column 2: expected a string, found ''' (strings need double quotes)"),
    ('bare word', 'hello', "invalid JSON at column 1: expected a JSON value, found 'hello'"),
    ('trailing garbage', '{"id":1,%s} x' % V,
     'invalid JSON at column 29: trailing characters after the JSON value'),
    ('extra brace', '{"id":1,%s}}' % V,
     'invalid JSON at column 28: trailing characters after the JSON value'),
    ('two objects', '{"id":1,%s}{"id":2,%s}' % (V, V),
     'invalid JSON at column 28: trailing characters after the JSON value'),
    ('NUL byte', '{"id":1,\x00%s}' % V,
     'invalid JSON at column 9: expected a string, found byte 0x00'),
    ('trailing comma in vector', '{"id":1,"vector":[1,2,3,4,]}',
     "invalid JSON at column 27: expected a number, found ']'"),
    ('leading zero', '{"id":1,"vector":[01,2,3,4]}',
     'invalid JSON at column 19: number has a leading zero'),
    ('plus sign', '{"id":1,"vector":[+1,2,3,4]}',
     "invalid JSON at column 19: expected a number, found '+'"),
    ('NaN', '{"id":1,"vector":[1,NaN,3,4]}',
     "invalid JSON at column 21: expected a number, found 'N'"),
    ('Infinity', '{"id":1,"vector":[Infinity,2,3,4]}',
     "invalid JSON at column 19: expected a number, found 'I'"),
    ('raw tab in string', '{"id":"a\tb",%s}' % V,
     'invalid JSON at column 9: raw control character 0x09 in string (must be escaped)'),
    ('lone surrogate', '{"id":"\\ud800",%s}' % V,
     'invalid JSON at column 8: lone high surrogate \\ud800 in string (no low surrogate '
     'next)'),
    ('bad escape', '{"id":1,%s,"payload":{"a":"\\x"}}' % V,
     "invalid JSON at column 44: invalid escape '\\x'"),
    ('bad payload value', '{"id":1,%s,"payload":{"a":[1,2,]}}' % V,
     "invalid JSON at column 48: expected a JSON value, found ']'"),
    ('deep nesting', '{"id":1,%s,"payload":%s1%s}' % (V, '{"a":' * 600, '}' * 600),
     'invalid JSON at column 358: nesting deeper than 64 levels'),
    # duplicate keys
    ('duplicate id', '{"id":1,"id":2,%s}' % V, 'duplicate key "id"'),
    ('duplicate vector', '{"id":1,%s,%s}' % (V, V), 'duplicate key "vector"'),
    ('duplicate payload', '{"id":1,%s,"payload":{},"payload":{}}' % V,
     'duplicate key "payload"'),
    ('duplicate delete', '{"id":1,"delete":true,"delete":true}', 'duplicate key "delete"'),
    ('duplicate in payload', '{"id":1,%s,"payload":{"a":1,"a":2}}' % V,
     'invalid JSON at column 45: duplicate key "a"'),
    ('duplicate nested in payload', '{"id":1,%s,"payload":{"x":{"a":1,"a":2}}}' % V,
     'invalid JSON at column 50: duplicate key "a"'),
    ('duplicate after nested object', '{"id":1,%s,"payload":{"a":1,"b":{"a":2},"a":3}}' % V,
     'invalid JSON at column 57: duplicate key "a"'),
    ('duplicate via escape', '{"id":1,%s,"payload":{"\\u0061":1,"a":2}}' % V,
     'invalid JSON at column 50: duplicate key "a"'),
    # unknown fields
    ('unknown field', '{"id":1,%s,"vectors":[1]}' % V, 'unknown field "vectors"'),
    ('field names are case sensitive', '{"ID":1,%s}' % V, 'unknown field "ID"'),
    # mistyped fields
    ('vector is a string', '{"id":1,"vector":"1,2,3,4"}', '"vector" must be an array of 4 numbers'),
    ('vector is an object', '{"id":1,"vector":{"a":1}}', '"vector" must be an array of 4 numbers'),
    ('vector is null', '{"id":1,"vector":null}', '"vector" must be an array of 4 numbers'),
    ('payload is an array', '{"id":1,%s,"payload":[1]}' % V, '"payload" must be a JSON object'),
    ('payload is a string', '{"id":1,%s,"payload":"x"}' % V, '"payload" must be a JSON object'),
    ('payload is null', '{"id":1,%s,"payload":null}' % V, '"payload" must be a JSON object'),
    ('delete false', '{"id":1,"delete":false}', '"delete" must be true'),
    ('delete 1', '{"id":1,"delete":1}', '"delete" must be true'),
    ('delete "true"', '{"id":1,"delete":"true"}', '"delete" must be true'),
    ('delete with vector', '{"id":1,"delete":true,%s}' % V,
     'a delete record takes only "id" and "delete"'),
    ('delete with payload', '{"id":1,"delete":true,"payload":{}}',
     'a delete record takes only "id" and "delete"'),
    ('id true', '{"id":true,%s}' % V, '"id" must be a non-negative integer or a string'),
    ('id false', '{"id":false,%s}' % V, '"id" must be a non-negative integer or a string'),
    ('id null', '{"id":null,%s}' % V, '"id" must be a non-negative integer or a string'),
    ('id array', '{"id":[1],%s}' % V, '"id" must be a non-negative integer or a string'),
    ('id object', '{"id":{},%s}' % V, '"id" must be a non-negative integer or a string'),
    ('id float', '{"id":1.5,%s}' % V, '"id" must be an integer (got 1.5)'),
    ('id 1.0', '{"id":1.0,%s}' % V, '"id" must be an integer (got 1.0)'),
    ('id exponent', '{"id":1e3,%s}' % V, '"id" must be an integer (got 1e3)'),
    ('id negative', '{"id":-1,%s}' % V, '"id" must not be negative (got -1)'),
    ('id empty string', '{"id":"",%s}' % V, '"id" must not be an empty string'),
    ('id 257 bytes', '{"id":"%s",%s}' % ('a' * 257, V), '"id" is 257 bytes, more than 256'),
    ('id 129 two-byte chars', '{"id":"%s",%s}' % ('é' * 129, V),
     '"id" is 258 bytes, more than 256'),
    ('id 2^64', '{"id":18446744073709551616,%s}' % V,
     '"id" 18446744073709551616 is larger than 18446744073709551615'),
    ('id huge', '{"id":99999999999999999999999,%s}' % V,
     '"id" 99999999999999999999999 is larger than 18446744073709551615'),
    # missing fields
    ('missing id', '{%s}' % V, 'missing "id"'),
    ('empty object', '{}', 'missing "id"'),
    ('delete without id', '{"delete":true}', 'missing "id"'),
    ('missing vector', '{"id":1}', 'missing "vector"'),
    ('payload but no vector', '{"id":1,"payload":{}}', 'missing "vector"'),
    ('not an object', '[1,2,3,4]', 'a record must be a JSON object'),
    ('a string', '"x"', 'a record must be a JSON object'),
    ('a number', '7', 'a record must be a JSON object'),
    # dimension and elements
    ('too few', '{"id":1,"vector":[1,2,3]}', 'expected 4 numbers in "vector", got 3'),
    ('too many', '{"id":1,"vector":[1,2,3,4,5]}', 'expected 4 numbers in "vector", got 5'),
    ('many too many', '{"id":1,"vector":[%s]}' % ','.join(['1'] * 100),
     'expected 4 numbers in "vector", got 100'),
    ('empty vector', '{"id":1,"vector":[]}', 'expected 4 numbers in "vector", got 0'),
    ('string element', '{"id":1,"vector":[1,"2",3,4]}', 'vector[1] is not a number'),
    ('null element', '{"id":1,"vector":[1,2,null,4]}', 'vector[2] is not a number'),
    ('bool element', '{"id":1,"vector":[true,2,3,4]}', 'vector[0] is not a number'),
    ('array element', '{"id":1,"vector":[1,2,3,[4]]}', 'vector[3] is not a number'),
    ('object element', '{"id":1,"vector":[1,{},3,4]}', 'vector[1] is not a number'),
    ('1e39', '{"id":1,"vector":[1,2,3,1e39]}', 'vector[3] = 1e39 is outside the float32 range'),
    ('-1e39', '{"id":1,"vector":[-1e39,2,3,4]}',
     'vector[0] = -1e39 is outside the float32 range'),
    ('1e400', '{"id":1,"vector":[1,1e400,3,4]}',
     'vector[1] = 1e400 is outside the float32 range'),
    ('just past FLT_MAX', '{"id":1,"vector":[3.40282357e38,2,3,4]}',
     'vector[0] = 3.40282357e38 is outside the float32 range'),
    ('halfway from FLT_MAX to 2^128 rounds up',
     '{"id":1,"vector":[1,340282356779733661637539395458142568448,3,4]}',
     'vector[1] = 340282356779733661637539395458142568448 is outside the float32 range'),
    # invalid UTF-8 (byte columns)
    ('bad UTF-8 in payload string', b'{"id":1,"vector":[1,2,3,4],"payload":{"s":"\xff"}}',
     'invalid UTF-8 at column 44'),
    ('bad UTF-8 in payload key', b'{"id":1,"vector":[1,2,3,4],"payload":{"\xc3\x28":1}}',
     'invalid UTF-8 at column 40'),
    ('bad UTF-8 in id', b'{"id":"a\xfe","vector":[1,2,3,4]}', 'invalid UTF-8 at column 9'),
    ('overlong encoding', b'{"id":1,"vector":[1,2,3,4],"payload":{"s":"\xc0\x80"}}',
     'invalid UTF-8 at column 44'),
    ('encoded surrogate', b'{"id":"\xed\xa0\x80","vector":[1,2,3,4]}',
     'invalid UTF-8 at column 8'),
    ('above U+10FFFF', b'{"id":1,"vector":[1,2,3,4],"payload":{"s":"\xf4\x90\x80\x80"}}',
     'invalid UTF-8 at column 44'),
    ('truncated sequence', b'{"id":1,"vector":[1,2,3,4],"payload":{"s":"x"}}\xe2\x82',
     'invalid UTF-8 at column 48'),
]


def as_bytes(line):
    return line if isinstance(line, bytes) else line.encode('utf-8')


class Validation(vdbtest.VdbTestCase):

    def setUp(self):
        super().setUp()
        self.create()

    def test_each_bad_line_stops_the_run(self):
        """Default mode: exit 65, the line named, records before it committed, none after."""
        for n, (name, bad, msg) in enumerate(BAD):
            with self.subTest(case=name):
                coll = 'c%d' % n
                self.create(name=coll)
                r = self.ingest('db', [good(1), good('two'), as_bytes(bad), good(3), good(4)],
                                name=coll, check=False)
                self.assertFails(r, EXIT_DATA, 'vdb-ingest: line 3: ' + msg)
                self.assertSummary(r, committed=2, batches=1)
                self.assertEqual(self.exported_ids(name=coll), [1, 'two'])

    def test_skip_invalid_reports_every_bad_line(self):
        lines, bad_lines, want_ids = [good(0)], [], [0]
        for n, (name, bad, msg) in enumerate(BAD):
            lines.append(as_bytes(bad))
            bad_lines.append(as_bytes(bad))
            lines.append(good(n + 1))
            want_ids.append(n + 1)
        rej = self.path('rejects.txt')
        r = self.ingest('db', lines, '--skip-invalid', '--rejects', rej, check=False)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.out, '')
        for n, (name, bad, msg) in enumerate(BAD):
            self.assertIn('vdb-ingest: line %d: %s\n' % (2 * n + 2, msg), r.err, name)
        self.assertEqual(len([l for l in r.errlines if ': line ' in l]), len(BAD), r.err)
        self.assertSummary(r, committed=len(want_ids), rejected=len(BAD))
        self.assertEqual(self.exported_ids(), want_ids)
        self.assertEqual(self.read(rej), b''.join(b + b'\n' for b in bad_lines))

    def test_skip_invalid_without_rejects_file(self):
        r = self.ingest('db', [good(1), '{"id":2}', good(3), 'x', '{"id":4,"vector":[1]}',
                               good(5)], '--skip-invalid', check=False)
        self.assertEqual(r.rc, 0, r)
        self.assertIn('vdb-ingest: line 2: missing "vector"', r.err)
        self.assertIn("vdb-ingest: line 4: invalid JSON at column 1", r.err)
        self.assertIn('vdb-ingest: line 5: expected 4 numbers in "vector", got 1', r.err)
        self.assertSummary(r, committed=3, rejected=3)
        self.assertEqual(self.exported_ids(), [1, 3, 5])

    def test_skip_invalid_all_bad(self):
        rej = self.path('rej')
        r = self.ingest('db', ['{}', '[]'], '--skip-invalid', '--rejects', rej, check=False)
        self.assertEqual(r.rc, 0, r)
        self.assertSummary(r, committed=0, rejected=2, batches=0)
        self.assertEqual(self.read(rej), b'{}\n[]\n')
        self.assertEqual(self.exported_ids(), [])

    def test_rejects_needs_skip_invalid(self):
        r = self.ingest('db', [good(1)], '--rejects', self.path('rej'), check=False)
        self.assertUsage(r, 'vdb-ingest: --rejects needs --skip-invalid')
        self.assertFalse(os.path.exists(self.path('rej')))
        self.assertEqual(self.exported_ids(), [])

    def test_rejects_file_cannot_be_created(self):
        p = self.path('nodir', 'rej')
        r = self.ingest('db', [good(1)], '--skip-invalid', '--rejects', p, check=False)
        self.assertFails(r, EXIT_CANTCREAT, 'vdb-ingest: %s: No such file or directory' % p)
        self.assertEqual(self.exported_ids(), [])

    def test_rejects_file_is_replaced(self):
        rej = self.write('rej', 'old content\n')
        self.ingest('db', [good(1), '{"id":2}'], '--skip-invalid', '--rejects', rej)
        self.assertEqual(self.read(rej), b'{"id":2}\n')

    def test_bad_line_after_blank_lines_counts_them(self):
        r = self.ingest('db', ['', good(1), '   ', '\t', good(2), '', '{"id":3}', good(4)],
                        check=False)
        self.assertFails(r, EXIT_DATA, 'vdb-ingest: line 7: missing "vector"')
        self.assertSummary(r, committed=2)
        self.assertEqual(self.exported_ids(), [1, 2])

    def test_crlf_accepted(self):
        data = (as_bytes(good(1)) + b'\r\n' + as_bytes(good('s')) + b'\r\n' +
                b'{"id":3,"vector":[1,2,3,4],"payload":{"a":"b"}}\r\n')
        r = self.ingest('db', data, check=False)
        self.assertEqual(r.rc, 0, r)
        self.assertSummary(r, committed=3, batches=1)
        self.assertEqual(self.export().out, '{"id":1,"vector":[1,2,3,4]}\n'
                         '{"id":"s","vector":[1,2,3,4]}\n'
                         '{"id":3,"vector":[1,2,3,4],"payload":{"a":"b"}}\n')

    def test_utf8_byte_order_mark_at_the_start(self):
        # As Windows tools write it (CSV input strips it too); anywhere else it is an error.
        data = b'\xef\xbb\xbf' + as_bytes(good(1)) + b'\r\n' + as_bytes(good(2)) + b'\n'
        r = self.ingest('db', data, check=False)
        self.assertEqual(r.rc, 0, r)
        self.assertSummary(r, committed=2, batches=1)
        self.assertEqual(self.exported_ids(), [1, 2])
        r = self.ingest('db', as_bytes(good(3)) + b'\n\xef\xbb\xbf' + as_bytes(good(4)) + b'\n',
                        check=False)
        self.assertFails(r, EXIT_DATA, 'vdb-ingest: line 2: ')
        self.assertEqual(self.exported_ids(), [1, 2, 3])
        # A query stream too.
        q = run('query', self.path('db'), '-k', '1', input=b'\xef\xbb\xbf[1,2,3,4]\n')
        self.assertOk(q)
        self.assertEqual(len(json.loads(q.out)['results']), 1)

    def test_blank_crlf_lines_ignored(self):
        """Blank lines are ignored whatever their line ending (CRLF input has "\\r\\n" ones)."""
        data = (b'\r\n' + as_bytes(good(1)) + b'\r\n  \r\n\t\r\n\n' + as_bytes(good(2)) +
                b'\r\n\r\n')
        r = self.ingest('db', data, check=False)
        self.assertEqual(r.rc, 0, r)
        self.assertSummary(r, committed=2, batches=1)
        self.assertEqual(self.exported_ids(), [1, 2])

    def test_whitespace_last_line_without_newline(self):
        """A blank last line without a newline is ignored too, whatever the read buffer held
        before it. The file is built so that exactly 1 MiB of indented records precedes it."""
        line = '        {"id":%d,"vector":[1,2,3,4]}\n'
        parts, size, i = [], 0, 0
        while size + 2 * len(line % i) <= 1 << 20:
            parts.append(line % i)
            size += len(parts[-1])
            i += 1
        last = line % i
        parts.append(' ' * ((1 << 20) - size - len(last)) + last)
        data = ''.join(parts)
        self.assertEqual(len(data), 1 << 20)
        f = self.write('in.jsonl', data + '  ')
        r = self.ingest('db', None, '-q', files=[f], check=False)
        self.assertOk(r, out='')
        self.assertEqual(len(self.exported_ids()), i + 1)
        r = self.ingest('db', (good(1) + '\n \t').encode(), '-q', check=False)
        self.assertOk(r, out='')

    def test_crlf_bad_line_is_named(self):
        data = as_bytes(good(1)) + b'\r\n{"id":2,"vector":[1,2]}\r\n' + as_bytes(good(3)) + b'\r\n'
        r = self.ingest('db', data, check=False)
        self.assertFails(r, EXIT_DATA, 'vdb-ingest: line 2: expected 4 numbers in "vector", got 2')
        self.assertEqual(self.exported_ids(), [1])

    def test_last_line_without_newline(self):
        r = self.ingest('db', (good(1) + '\n' + good(2)).encode(), check=False)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(self.exported_ids(), [1, 2])
        r = self.ingest('db', (good(3) + '\n{"id":4}').encode(), check=False)
        self.assertFails(r, EXIT_DATA, 'vdb-ingest: line 2: missing "vector"')
        self.assertEqual(self.exported_ids(), [1, 2, 3])

    def test_empty_input(self):
        r = self.ingest('db', b'', check=False)
        self.assertEqual(r.rc, 0, r)
        self.assertSummary(r, committed=0, batches=0)
        r = self.ingest('db', b'\n\n  \n', check=False)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(self.exported_ids(), [])

    def test_accepted_edge_records(self):
        lines = [
            '{"id":0,"vector":[0,0,0,0]}',                      # zero vector is fine for l2
            '{"id":18446744073709551615,"vector":[1,2,3,4]}',   # largest id
            '{"id":"%s","vector":[1,2,3,4]}' % ('a' * 256),     # longest string id
            '{"id":"%s","vector":[1,2,3,4]}' % ('é' * 128),     # 256 bytes, 128 characters
            ' {"vector":[1,2,3,4] , "id" : "ws"} ',              # whitespace, any key order
            '{"id":"\\u00e9\\n","vector":[1,2,3,4]}',            # escapes decode in ids
            '{"id":"123","vector":[1,2,3,4]}',                  # a string, not the integer 123
            '{"id":123,"vector":[1e-50,-0.0,3.4028235e38,-3.40282356e38]}',
            '{"id":5,"vector":[1,2,3,4],"payload":{}}',
            '{"id":6,"vector":[1,2,3,4],"payload":{"a":{"a":{"a":1}},"b":[{"a":1},{"a":2}]}}',
            '{"id":7,"vector":[1,2,3,4],"payload":{"x":1e999999,"y":"\\ud83c\\udf89"}}',
            '{"id":99,"delete":true}',                          # deleting a missing id
        ]
        r = self.ingest('db', lines, check=False)
        self.assertEqual(r.rc, 0, r)
        self.assertSummary(r, committed=12, not_found=1, rejected=0)
        got = self.exported()
        self.assertEqual(len(got), 11)
        raw = {vdbtest.parse_export_line(l)[0]: vdbtest.parse_export_line(l)
               for l in self.export().lines}
        self.assertEqual(raw[123][1], ['0', '-0', '3.4028235e+38', '-3.4028235e+38'])
        self.assertIn('é\n', got)
        self.assertIn('123', got)
        self.assertEqual(got['é' * 128]['id'], 'é' * 128)
        self.assertEqual(raw[7][2], '{"x":1e999999,"y":"\\ud83c\\udf89"}')

    def test_cosine_zero_vector(self):
        self.create(name='cos', metric='cosine')
        r = self.ingest('db', [good(1), '{"id":2,"vector":[0,0,-0.0,0]}', good(3)], name='cos',
                        check=False)
        self.assertFails(r, EXIT_DATA, 'vdb-ingest: line 2: a zero vector has no direction '
                         "(the collection's metric is cosine)")
        self.assertEqual(self.exported_ids(name='cos'), [1])
        r = self.ingest('db', [good(4), '{"id":5,"vector":[0,0,0,1e-50]}', good(6)],
                        '--skip-invalid', name='cos', check=False)
        self.assertEqual(r.rc, 0, r)
        self.assertIn('vdb-ingest: line 2: a zero vector has no direction', r.err)
        self.assertEqual(self.exported_ids(name='cos'), [1, 4, 6])


class LongLines(vdbtest.VdbTestCase):

    def setUp(self):
        super().setUp()
        self.create()

    @staticmethod
    def padded(i, n):
        """A valid record line of exactly n bytes."""
        base = '{"id":%d,"vector":[1,2,3,4],"payload":{"p":""}}' % i
        return base[:-3] + 'x' * (n - len(base)) + base[-3:]

    def test_limit_is_inclusive(self):
        lines = [self.padded(1, 64), self.padded(2, 65), self.padded(3, 64)]
        self.assertEqual([len(l) for l in lines], [64, 65, 64])
        r = self.ingest('db', lines, '--max-line-bytes', '64', check=False)
        self.assertFails(r, EXIT_DATA,
                         'vdb-ingest: line 2: line is longer than 64 bytes (--max-line-bytes)')
        self.assertSummary(r, committed=1)
        self.assertEqual(self.exported_ids(), [1])

    def test_huge_line_skipped(self):
        huge = self.padded(2, 3 << 20)
        r = self.ingest('db', [self.padded(1, 100), huge, self.padded(3, 100), '{"id":4}',
                               self.padded(5, 100)],
                        '--max-line-bytes', '1M', '--skip-invalid', check=False)
        self.assertEqual(r.rc, 0, r)
        self.assertIn('vdb-ingest: line 2: line is longer than 1048576 bytes (--max-line-bytes)',
                      r.err)
        self.assertIn('vdb-ingest: line 4: missing "vector"', r.err)
        self.assertSummary(r, committed=3, rejected=2)
        self.assertEqual(self.exported_ids(), [1, 3, 5])

    def test_huge_last_line_without_newline(self):
        data = (self.padded(1, 100) + '\n' + self.padded(2, 3 << 20)).encode()
        r = self.ingest('db', data, '--max-line-bytes', '1M', check=False)
        self.assertFails(r, EXIT_DATA, 'vdb-ingest: line 2: line is longer than 1048576 bytes')
        self.assertEqual(self.exported_ids(), [1])

    def test_overlong_line_goes_to_rejects(self):
        """--rejects copies every bad line, the over-long ones included."""
        long_line = self.padded(2, 200)
        rej = self.path('rej')
        r = self.ingest('db', [self.padded(1, 50), long_line, self.padded(3, 50)],
                        '--max-line-bytes', '100', '--skip-invalid', '--rejects', rej,
                        check=False)
        self.assertEqual(r.rc, 0, r)
        self.assertIn('vdb-ingest: line 2: line is longer than 100 bytes', r.err)
        self.assertEqual(self.exported_ids(), [1, 3])
        self.assertEqual(self.read(rej), long_line.encode() + b'\n')

    def test_bad_limits(self):
        for bad in ['15', '0', 'abc', '1T', '3G']:
            with self.subTest(limit=bad):
                r = self.ingest('db', [good(1)], '--max-line-bytes', bad, check=False)
                self.assertUsage(r, "vdb-ingest: invalid value '%s' for --max-line-bytes" % bad)
        self.assertEqual(self.exported_ids(), [])


class Files(vdbtest.VdbTestCase):

    def setUp(self):
        super().setUp()
        self.create()

    def test_files_and_stdin_in_order(self):
        f1 = self.write('f1.jsonl', [good(1), good(2)])
        f2 = self.write('f2.jsonl', [good(5), '', good(6)])
        r = self.ingest('db', [good(3), good(4)], files=[f1, '-', f2], check=False)
        self.assertEqual(r.rc, 0, r)
        self.assertSummary(r, committed=6)
        self.assertEqual(self.exported_ids(), [1, 2, 3, 4, 5, 6])

    def test_error_names_the_file_and_its_line(self):
        f1 = self.write('f1.jsonl', [good(1), good(2)])
        f2 = self.write('f2.jsonl', [good(3), '{"id":4,"vector":[1,2,3]}', good(5)])
        f3 = self.write('f3.jsonl', [good(6)])
        r = self.ingest('db', files=[f1, f2, f3], check=False)
        self.assertFails(r, EXIT_DATA, 'vdb-ingest: %s: line 2: expected 4 numbers in "vector", '
                         'got 3' % f2)
        self.assertSummary(r, committed=3)
        self.assertEqual(self.exported_ids(), [1, 2, 3])

    def test_relative_file_name_is_shown_as_given(self):
        self.write('rel.jsonl', [good(1), '{}'])
        r = run('ingest', self.path('db'), 'rel.jsonl', cwd=self.tmp)
        self.assertFails(r, EXIT_DATA, 'vdb-ingest: rel.jsonl: line 2: missing "id"')

    def test_stdin_error_has_no_file_name(self):
        f1 = self.write('f1.jsonl', [good(1)])
        r = self.ingest('db', [good(2), '{"id":3}'], files=[f1, '-'], check=False)
        self.assertFails(r, EXIT_DATA, 'vdb-ingest: line 2: missing "vector"')
        self.assertEqual(self.exported_ids(), [1, 2])

    def test_skip_invalid_across_files(self):
        f1 = self.write('f1.jsonl', ['{}', good(1)])
        f2 = self.write('f2.jsonl', [good(2), '[]'])
        rej = self.path('rej')
        r = self.ingest('db', None, '--skip-invalid', '--rejects', rej, files=[f1, f2],
                        check=False)
        self.assertEqual(r.rc, 0, r)
        self.assertIn('vdb-ingest: %s: line 1: missing "id"' % f1, r.err)
        self.assertIn('vdb-ingest: %s: line 2: a record must be a JSON object' % f2, r.err)
        self.assertSummary(r, committed=2, rejected=2)
        self.assertEqual(self.read(rej), b'{}\n[]\n')

    def test_parquet_rows_read_on_one_thread_and_stored_on_another(self):
        # 3000 rows (a dozen chunks between the two threads; under TSan too, which runs this
        # file), payloads and string ids; then the same file into a cosine collection, which
        # refuses row 2100's zero vector when it stores it: the rows before it stay.
        src = [{'id': 'k%05d' % i, 'vector': [0, 0, 0, 0] if i == 2100 else [i % 7, 1, i / 8, -i],
                **({'payload': {'i': i, 's': 'x' * (i % 50)}} if i % 3 else {})}
               for i in range(3000)]
        self.ingest('db', ''.join(json.dumps(r) + '\n' for r in src))
        out = self.path('p.parquet')
        self.assertEqual(run('export', self.path('db'), '--order', 'id', '-o', out).rc, 0)
        for metric, rows in (('l2', 3000), ('cosine', 2100)):
            with self.subTest(metric=metric):
                db = 'back-' + metric
                self.create(db, metric=metric)
                r = run('ingest', self.path(db), out)
                if rows < len(src):
                    self.assertFails(r, EXIT_DATA, '%s: row 2100: a zero vector' % out)
                else:
                    self.assertEqual(r.rc, 0, r)
                got = self.exported(db)
                self.assertEqual(sorted(got), [w['id'] for w in src[:rows]])
                for w in src[:rows]:
                    self.assertEqual(got[w['id']].get('payload'), w.get('payload'))

    def test_missing_file_fails_before_anything_commits(self):
        f1 = self.write('f1.jsonl', [good(1)])
        missing = self.path('missing.jsonl')
        for files in ([f1, missing], [missing, f1], [f1, '-', missing]):
            with self.subTest(files=files):
                r = self.ingest('db', [good(2)], files=files, check=False)
                self.assertFails(r, EXIT_NOINPUT,
                                 'vdb-ingest: %s: No such file or directory' % missing)
                self.assertEqual(self.exported_ids(), [])

    def test_unreadable_file(self):
        if os.geteuid() == 0:
            self.skipTest('root can read anything')
        f1 = self.write('f1.jsonl', [good(1)])
        os.chmod(f1, 0)
        r = self.ingest('db', files=[f1], check=False)
        self.assertFails(r, EXIT_NOINPUT, 'vdb-ingest: %s: Permission denied' % f1)


class Batches(vdbtest.VdbTestCase):

    def setUp(self):
        super().setUp()
        self.create()

    def batch_sizes(self, err):
        return [(int(a), int(b), int(c), int(d)) for a, b, c, d in re.findall(
            r'vdb-ingest: committed batch (\d+): (\d+) records? \(lines (\d+)-(\d+)\)', err)]

    def test_file_batches_are_exact(self):
        f = self.write('in.jsonl', [good(i) for i in range(10)])
        r = self.ingest('db', None, '-v', '--batch', '3', files=[f], check=False)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(self.batch_sizes(r.err), [(1, 3, 1, 3), (2, 3, 4, 6), (3, 3, 7, 9),
                                                   (4, 1, 10, 10)])
        self.assertSummary(r, committed=10, batches=4)
        self.assertEqual(self.exported_ids(), list(range(10)))

    def test_batch_reports_line_ranges_with_blank_lines(self):
        f = self.write('in.jsonl', ['', good(1), good(2), '', good(3)])
        r = self.ingest('db', None, '-v', '-b', '2', files=[f], check=False)
        self.assertEqual(self.batch_sizes(r.err), [(1, 2, 2, 3), (2, 1, 5, 5)])

    def test_stdin_batches_at_most_n(self):
        n = 2500
        r = self.ingest('db', [good(i) for i in range(n)], '-v', '--batch', '700', check=False)
        self.assertEqual(r.rc, 0, r)
        sizes = self.batch_sizes(r.err)
        self.assertTrue(sizes)
        self.assertTrue(all(s[1] <= 700 for s in sizes), sizes)
        self.assertEqual(sum(s[1] for s in sizes), n)
        self.assertEqual([s[0] for s in sizes], list(range(1, len(sizes) + 1)))
        self.assertSummary(r, committed=n, batches=len(sizes))
        self.assertEqual(len(self.exported_ids()), n)

    def test_commit_delay_groups_a_slow_producer(self):
        # One record every 20 ms: without a delay each becomes a batch of its own; with
        # --commit-delay 300 they share batches, and none waits much over 300 ms.
        def trickle(*args, db='db'):
            p = self.proc('ingest', self.path(db), '-v', *args)
            try:
                seen = []
                for i in range(30):
                    p.send(good(i) + '\n')
                    time.sleep(0.02)
                # The last records are committed within the delay while stdin stays open.
                t = time.monotonic()
                while (len(self.batch_sizes(p.err)) == 0 or
                       sum(s[1] for s in self.batch_sizes(p.err)) < 30):
                    self.assertLess(time.monotonic() - t, 5, p.err)
                    time.sleep(0.01)
                seen.append(time.monotonic() - t)
                p.close_stdin()
                self.assertEqual(p.wait(), 0, p.err)
                return self.batch_sizes(p.err), seen[0]
            finally:
                p.kill()
        alone, _ = trickle()
        self.create('db2')
        grouped, waited = trickle('--commit-delay', '300', db='db2')
        print('commit delay: %d batches without, %d with 300 ms' % (len(alone), len(grouped)))
        self.assertGreater(len(alone), 15)
        self.assertLess(len(grouped), 8)
        self.assertEqual(sum(s[1] for s in grouped), 30)
        self.assertLess(waited, 2)
        for bad in ('-1', '60001', 'x'):
            with self.subTest(delay=bad):
                self.assertUsage(run('ingest', self.path('db'), '--commit-delay', bad),
                                 "vdb-ingest: invalid value '%s' for --commit-delay" % bad)

    def test_default_batch_is_1000(self):
        f = self.write('in.jsonl', [good(i) for i in range(2001)])
        r = self.ingest('db', None, '-v', files=[f], check=False)
        self.assertEqual([s[1] for s in self.batch_sizes(r.err)], [1000, 1000, 1])

    def test_bad_line_commits_pending_batch(self):
        f = self.write('in.jsonl', [good(i) for i in range(5)] + ['{}'] + [good(9)])
        r = self.ingest('db', None, '-v', '--batch', '2', files=[f], check=False)
        self.assertFails(r, EXIT_DATA, 'vdb-ingest: %s: line 6: missing "id"' % f)
        self.assertEqual(self.batch_sizes(r.err), [(1, 2, 1, 2), (2, 2, 3, 4), (3, 1, 5, 5)])
        self.assertSummary(r, committed=5, batches=3)
        self.assertEqual(self.exported_ids(), list(range(5)))

    def test_quiet_and_verbose(self):
        r = self.ingest('db', [good(1)], '-q', check=False)
        self.assertOk(r, out='')
        r = self.ingest('db', [good(2), '{}'], '-q', check=False)
        self.assertFails(r, EXIT_DATA, 'vdb-ingest: line 2: missing "id"')
        self.assertEqual(r.errlines, ['vdb-ingest: line 2: missing "id"'])

    def test_bad_batch_values(self):
        for bad in ['0', '1000001', 'abc', '-1', '']:
            with self.subTest(batch=bad):
                r = self.ingest('db', [good(1)], '--batch', bad, check=False)
                self.assertUsage(r, "vdb-ingest: invalid value '%s' for --batch" % bad)
        self.assertEqual(self.exported_ids(), [])


class DeletesAndUpserts(vdbtest.VdbTestCase):

    def test_delete(self):
        self.create()
        self.ingest('db', [good(i) for i in (1, 2, 3)] + [good('s')])
        r = self.ingest('db', ['{"id":2,"delete":true}', '{"id":99,"delete":true}',
                               '{"id":"s","delete":true}', '{"id":"2","delete":true}',
                               '{"delete":true,"id":"nope"}'])
        # Only two of the five ids had a live record: the others are "not found".
        self.assertSummary(r, committed=5, upserted=0, deleted=2, not_found=3)
        self.assertEqual(self.exported_ids(), [1, 3])
        self.assertFails(self.query('db', '--id', '2'), EXIT_NOINPUT,
                         'vdb-query: no record with id 2')
        self.assertNotIn(2, [h['id'] for h in json.loads(
            self.query('db', '-k', '10', '--vector=[1,2,3,4]').out)['results']])

    def test_deletes_of_absent_ids_are_counted_as_not_found(self):
        # In a sealed segment, in the log, earlier in the same batch, twice in a row.
        self.create(seal=4096)
        self.ingest('db', [good(i) for i in range(300)])  # several seals
        self.ingest('db', [good(i) for i in range(300, 305)])  # in the log
        r = self.ingest('db', ['{"id":0,"delete":true}', '{"id":301,"delete":true}',
                               '{"id":0,"delete":true}', good(900), '{"id":900,"delete":true}',
                               '{"id":900,"delete":true}', '{"id":"0","delete":true}',
                               good(5), '{"id":5,"delete":true}', '{"id":5,"delete":true}'],
                        '--batch', '3')
        self.assertSummary(r, committed=10, upserted=2, deleted=4, not_found=4)
        r = run('info', self.path('db'), '--json')
        self.assertEqual(json.loads(r.out)['live'], 302, r)

    def test_the_rate_counts_what_was_read(self):
        # A run whose lines are all rejected still read them: its rate is not 0.
        self.create()
        r = self.ingest('db', ['{"id":1}'] * 500, '--skip-invalid', check=False)
        self.assertSummary(r, 0, rejected=500)
        m = re.search(r'in [\d.]+ s, (\d+) records/s, ([\d.]+) MiB/s', r.err)
        self.assertTrue(m, r.err)
        self.assertGreater(int(m.group(1)), 0, r.err)

    def test_dry_run_commits_nothing(self):
        self.create(seal=4096)
        self.ingest('db', [good(i) for i in range(3)])
        before = vdbtest.snapshot(self.path('db'))
        lines = [good(i) for i in range(2, 10)] + ['{"id":1,"delete":true}',
                                                    '{"id":77,"delete":true}',
                                                    '{"id":9,"delete":true}']
        for args in ([], ['--batch', '2'], ['-v']):
            r = self.ingest('db', lines, '--dry-run', *args)
            self.assertSummary(r, committed=11, upserted=8, deleted=2, not_found=1, dry_run=True)
            self.assertIn('; nothing was committed', r.err)
            self.assertEqual(vdbtest.snapshot(self.path('db')), before)
        r = self.ingest('db', lines, '-v', '--dry-run')
        self.assertIn('vdb-ingest: checked batch 1: 11 records (lines 1-11)', r.err)
        # Bad input: the same error and exit status as a real run, still nothing written.
        r = self.ingest('db', lines[:3] + ['{"id":5,"vector":[1,2]}'], '--dry-run', check=False)
        self.assertFails(r, EXIT_DATA, 'line 4: expected 4 numbers in "vector", got 2')
        self.assertSummary(r, committed=3, dry_run=True)
        self.assertEqual(vdbtest.snapshot(self.path('db')), before)
        # A vector file, a delete_where, and no lock taken while a writer holds it.
        npy = self.write('v.npy', b'\x93NUMPY\x01\x00v\x00' +
                         ("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 4), }"
                          .ljust(117) + '\n').encode() + b'\0\0\x80?' * 8)
        holder = self.proc('ingest', self.path('db'), '-v')
        holder.send([good(50)])
        self.assertTrue(holder.wait_for_stderr('committed batch 1'), holder.err)
        before = vdbtest.snapshot(self.path('db'), skip=('LOCK',))
        r = self.ingest('db', None, '--dry-run', '--no-wait', files=[npy])
        self.assertSummary(r, committed=2, dry_run=True)
        r = self.ingest('db', None, '--dry-run', '--delete-where', '{}')
        self.assertSummary(r, committed=4, upserted=0, deleted=4, dry_run=True)
        self.assertEqual(vdbtest.snapshot(self.path('db'), skip=('LOCK',)), before)
        holder.close_stdin()
        self.assertEqual(holder.wait(), 0)

    def test_ids_are_compared_decoded(self):
        self.create()
        self.ingest('db', ['{"id":"é","vector":[1,1,1,1]}', '{"id":"a/b","vector":[1,1,1,1]}',
                           '{"id":"tab\\there","vector":[1,1,1,1]}'])
        self.ingest('db', ['{"id":"\\u00e9","delete":true}', '{"id":"a\\/b","vector":[2,2,2,2]}',
                           '{"id":"tab\\u0009here","delete":true}'])
        self.assertEqual(self.export().out, '{"id":"a/b","vector":[2,2,2,2]}\n')

    def test_delete_and_reinsert_in_one_batch(self):
        self.create()
        self.ingest('db', ['{"id":7,"vector":[1,1,1,1]}', '{"id":7,"delete":true}',
                           '{"id":7,"vector":[2,2,2,2]}', '{"id":8,"vector":[1,1,1,1]}',
                           '{"id":8,"delete":true}'])
        self.assertEqual(self.export().out, '{"id":7,"vector":[2,2,2,2]}\n')

    def test_upsert_replaces_vector_and_payload(self):
        self.create()
        self.ingest('db', ['{"id":1,"vector":[1,1,1,1],"payload":{"v":1}}',
                           '{"id":2,"vector":[2,2,2,2],"payload":{"v":2}}'])
        self.ingest('db', ['{"id":1,"vector":[3,3,3,3]}',
                           '{"id":2,"vector":[4,4,4,4],"payload":{"w":[4]}}'])
        got = self.exported()
        self.assertEqual(got[1], {'id': 1, 'vector': [3, 3, 3, 3]})
        self.assertEqual(got[2], {'id': 2, 'vector': [4, 4, 4, 4], 'payload': {'w': [4]}})
        r = self.query('db', '--id', '1')
        self.assertOk(r, out='{"id":1,"vector":[3,3,3,3]}\n')
        # The old vector is gone from search results.
        r = self.query('db', '-k', '5', '--payload', '--vector=[1,1,1,1]')
        self.assertOk(r)
        res = json.loads(r.out)['results']
        self.assertEqual([(h['id'], h['payload']) for h in res], [(1, None), (2, {'w': [4]})])
        self.assertAlmostEqual(res[0]['score'], 4.0, places=5)

    def test_upsert_within_one_batch(self):
        self.create()
        self.ingest('db', ['{"id":1,"vector":[1,1,1,1],"payload":{"v":1}}',
                           '{"id":1,"vector":[5,5,5,5]}'])
        self.assertEqual(self.export().out, '{"id":1,"vector":[5,5,5,5]}\n')

    def test_upsert_and_delete_of_sealed_records(self):
        self.create(seal='4K')
        recs = vdbtest.seeded_records(5, 200, 4, payloads=1.0)
        self.ingest('db', recs)
        self.assertTrue([f for f in os.listdir(self.path('db', 'default'))
                         if f.startswith('seg-')])
        first, second, third = recs[0]['id'], recs[1]['id'], recs[2]['id']
        self.ingest('db', [{'id': first, 'vector': [9, 9, 9, 9]},
                           {'id': second, 'delete': True},
                           {'id': third, 'vector': [8, 8, 8, 8], 'payload': {'new': True}}])
        got = self.exported()
        self.assertEqual(len(got), 199)
        self.assertEqual(got[first], {'id': first, 'vector': [9, 9, 9, 9]})
        self.assertNotIn(second, got)
        self.assertEqual(got[third]['payload'], {'new': True})
        self.assertFails(self.query('db', '--id', json.dumps(second)), EXIT_NOINPUT)


class Locking(vdbtest.VdbTestCase):

    def setUp(self):
        super().setUp()
        self.create()
        self.holder = self.proc('ingest', self.path('db'), '-v', '--batch', '1')
        self.holder.send([good(1)])
        self.assertTrue(self.holder.wait_for_stderr(r'committed batch 1: 1 record'),
                        self.holder.err)
        with open(self.path('db', 'default', 'LOCK')) as f:
            self.assertEqual(f.read().split()[0], str(self.holder.pid))

    def release(self):
        self.holder.send([good(2)])
        self.holder.close_stdin()
        self.assertEqual(self.holder.wait(), 0, self.holder.err)

    def test_no_wait(self):
        t0 = time.monotonic()
        r = self.ingest('db', [good(10)], '--no-wait', check=False)
        self.assertFails(r, EXIT_LOCKED, "vdb-ingest: collection 'default' is locked by another "
                         'writer (pid %d)' % self.holder.pid)
        self.assertLess(time.monotonic() - t0, 2)
        self.release()
        self.assertEqual(self.exported_ids(), [1, 2])

    def test_wait_timeout(self):
        t0 = time.monotonic()
        r = self.ingest('db', [good(10)], '--wait', '0.5', check=False)
        elapsed = time.monotonic() - t0
        self.assertFails(r, EXIT_LOCKED, 'vdb-ingest: waiting for the writer lock held by pid %d'
                         % self.holder.pid, "vdb-ingest: collection 'default' is locked by "
                         'another writer (pid %d)' % self.holder.pid)
        self.assertGreaterEqual(elapsed, 0.45)
        self.assertLess(elapsed, 3)
        self.release()
        self.assertEqual(self.exported_ids(), [1, 2])

    def test_readers_do_not_wait(self):
        self.assertEqual(self.exported_ids(), [1])
        r = self.query('db', '--id', '1')
        self.assertOk(r, out=good(1) + '\n')
        self.release()

    def test_default_waits_for_the_first_writer(self):
        f = self.write('in.jsonl', [good(i) for i in (20, 21, 22)])
        w = self.proc('ingest', self.path('db'), f, stdin=False)
        self.assertTrue(w.wait_for_stderr('vdb-ingest: waiting for the writer lock held by pid %d'
                                          % self.holder.pid), w.err)
        time.sleep(0.3)
        self.assertIsNone(w.p.poll(), 'the second writer did not wait')
        self.release()
        self.assertEqual(w.wait(), 0, w.err)
        self.assertSummary(w.err, committed=3)
        self.assertEqual(self.exported_ids(), [1, 2, 20, 21, 22])

    def test_sigterm_while_waiting(self):
        w = self.proc('ingest', self.path('db'), self.write('in.jsonl', [good(30)]), stdin=False)
        self.assertTrue(w.wait_for_stderr('waiting for the writer lock'), w.err)
        t0 = time.monotonic()
        w.signal(signal.SIGTERM)
        self.assertEqual(w.wait(), EXIT_SIGTERM, w.err)
        self.assertLess(time.monotonic() - t0, 2)
        self.release()
        self.assertEqual(self.exported_ids(), [1, 2])


class Signals(vdbtest.VdbTestCase):

    def interrupt(self, sig, code):
        self.create()
        p = self.proc('ingest', self.path('db'), '-v')
        p.send([good(1), good(2), good(3)])
        self.assertTrue(p.wait_for_stderr(r'committed batch 1: 3 records'), p.err)
        p.send([good(4)])
        self.assertTrue(p.wait_for_stderr(r'committed batch 2: 1 record'), p.err)
        p.send(b'{"id":5,"vector":[1,2')  # half a line: never committed
        time.sleep(0.1)
        t0 = time.monotonic()
        p.signal(sig)
        rc = p.wait(10)
        self.assertLess(time.monotonic() - t0, 2, 'slow to stop')
        self.assertEqual(rc, code, p.err)
        self.assertSummary(p.err, committed=4, batches=2, interrupted=True)
        self.assertNotIn('invalid JSON', p.err)
        self.assertEqual(p.out, '')
        self.assertEqual(self.exported_ids(), [1, 2, 3, 4])
        # The collection is not left locked.
        self.ingest('db', [good(6)], '--no-wait')
        self.assertEqual(self.exported_ids(), [1, 2, 3, 4, 6])

    def test_sigint(self):
        self.interrupt(signal.SIGINT, EXIT_SIGINT)

    def test_sigterm(self):
        self.interrupt(signal.SIGTERM, EXIT_SIGTERM)

    def test_sigbus_from_a_truncated_mapping(self):
        # What a read of a mapped file that another program truncated raises (its timing
        # cannot be arranged from here, so the signal is sent): a message naming the cause,
        # exit 74, committed batches kept and nothing of the batch in progress.
        self.create()
        p = self.proc('ingest', self.path('db'), '-v')
        p.send([good(1), good(2)])
        self.assertTrue(p.wait_for_stderr(r'committed batch 1: 2 records'), p.err)
        p.send([good(3)])
        self.assertTrue(p.wait_for_stderr(r'committed batch 2: 1 record'), p.err)
        p.send(b'{"id":4,"vector":[1,2')  # half a line: never committed
        time.sleep(0.1)
        p.signal(signal.SIGBUS)
        self.assertEqual(p.wait(10), vdbtest.EXIT_IO, p.err)
        self.assertRegex(p.err, r'\nvdb-ingest: a file being read shrank \(truncated by another '
                         r'program\?\); stopped without committing the batch in progress\n$')
        self.assertEqual(self.exported_ids(), [1, 2, 3])
        self.ingest('db', [good(5)], '--no-wait')  # and the collection is not left locked
        self.assertEqual(self.exported_ids(), [1, 2, 3, 5])


class Errors(vdbtest.VdbTestCase):

    def test_missing_database(self):
        db = self.path('nodb')
        r = run('ingest', db, input=[good(1)])
        self.assertFails(r, EXIT_NOINPUT, 'vdb-ingest: %s: No such file or directory' % db)
        self.assertFalse(os.path.exists(db))

    def test_not_a_database(self):
        os.mkdir(self.path('plain'))
        r = run('ingest', self.path('plain'), input=[good(1)])
        self.assertFails(r, EXIT_NOINPUT, 'vdb-ingest: %s: not a vdb database (no VDB file)'
                         % self.path('plain'))
        self.assertEqual(os.listdir(self.path('plain')), [])

    def test_missing_collection(self):
        self.create()
        r = run('ingest', self.path('db'), '-c', 'nope', input=[good(1)])
        self.assertFails(r, EXIT_NOINPUT, "vdb-ingest: collection 'nope' does not exist in %s"
                         % self.path('db'))
        self.assertEqual(sorted(os.listdir(self.path('db'))), ['VDB', 'default'])

    def test_usage(self):
        self.create()
        self.assertUsage(run('ingest', input=''), 'vdb-ingest: missing database directory operand')
        self.assertUsage(run('ingest', self.path('db'), '--bogus', input=''),
                         "vdb-ingest: unknown option '--bogus'")
        for bad in ['-1', 'abc', 'nan', '']:
            with self.subTest(wait=bad):
                self.assertUsage(run('ingest', self.path('db'), '--wait', bad, input=''),
                                 "vdb-ingest: invalid value '%s' for --wait (expected seconds, "
                                 ">= 0)" % bad)

    def test_rejects_write_error(self):
        if not os.path.exists('/dev/full'):
            self.skipTest('no /dev/full')
        self.create()
        r = self.ingest('db', [good(1), '{}', good(2)], '--skip-invalid', '--rejects',
                        '/dev/full', check=False)
        self.assertFails(r, vdbtest.EXIT_IO, 'vdb-ingest: line 2: missing "id"',
                         'vdb-ingest: write /dev/full: No space left on device')

    def test_help_and_version_write_errors(self):
        for opt in ('--help', '--version'):
            with self.subTest(opt=opt):
                vdbtest.write_fails(self, 'ingest', opt)

    def test_help_and_version(self):
        r = run('ingest', '--help')
        self.assertOk(r)
        self.assertTrue(r.out.startswith('Usage: vdb-ingest DB'))
        for word in ('Exit status', '--skip-invalid', '--rejects', '--no-wait', '--wait',
                     '--batch', '--max-line-bytes', '75'):
            self.assertIn(word, r.out)
        r = run('ingest', '-V')
        self.assertOk(r)
        self.assertRegex(r.out, r'^vdb-ingest \(vdb\) \d+\.\d+\.\d+\n$')


if __name__ == '__main__':
    vdbtest.main()
