#!/usr/bin/env python3
"""Counts individual test cases in a meson testlog.json and prints one summary line.

Criterion binaries report "Synthesis: Tested: N | Passing: N | Failing: N | Crashing: N";
Python unittest modules report "Ran N tests" and "OK (skipped=N)" / "FAILED (...)". A meson
test whose output has neither (a crash, a timeout) counts as one failed case.
"""
import json
import re
import sys

passed = failed = skipped = 0
bad = []
for line in open(sys.argv[1]):
    t = json.loads(line)
    out = (t.get("stdout") or "") + (t.get("stderr") or "")
    ok = t.get("result") == "OK"
    crit = re.findall(r"Synthesis: Tested: (\d+) \| Passing: (\d+) \| Failing: (\d+) \| Crashing: (\d+)", out)
    ran = re.findall(r"^Ran (\d+) tests?", out, re.M)
    if crit:
        n, p, f, c = map(int, crit[-1])
        passed += p
        failed += f + c
    elif ran:
        n = int(ran[-1])
        s = re.findall(r"skipped=(\d+)", out)
        fails = re.findall(r"(?:failures|errors)=(\d+)", out)
        k = int(s[-1]) if s else 0
        f = sum(map(int, fails))
        skipped += k
        failed += f
        passed += n - k - f
    elif t.get("result") == "SKIP":
        skipped += 1
    else:
        passed += ok
        failed += not ok
    if not ok and t.get("result") != "SKIP":
        bad.append(t.get("name"))
        failed += 0 if (crit or ran) and failed else 0
if bad:
    print("failing meson tests: " + ", ".join(bad))
print("tests: %d passed, %d failed, %d skipped" % (passed, failed, skipped))
sys.exit(1 if failed or bad else 0)
