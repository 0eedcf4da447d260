#!/usr/bin/env python3
"""Add up the results of `make test`'s phases and print the closing line
`N passed, N failed` (alone on a line, the last line printed).

Inputs (all optional; a phase whose input is missing counts nothing):
  --cargo LOG RC       cargo test output; sums its `test result:` lines (unit, integration
                       and doc tests). A non-zero RC with no failed test counted (a build
                       error, a crash) adds 1 failure.
  --pytest JUNIT RC    pytest's --junitxml report. Same rule for RC (e.g. 5 = no tests
                       collected although test files exist, 2 = collection error).
  --notebooks JSON RC  scripts/run_notebooks.py --json summary. Same rule for RC.
Exit status: 1 when anything failed, else 0.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

CARGO_RE = re.compile(r"^test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored", re.M)


def cargo_counts(log: Path) -> tuple[int, int, int]:
    text = log.read_text(errors="replace") if log.exists() else ""
    p = f = s = 0
    for m in CARGO_RE.finditer(text):
        p += int(m.group(1)); f += int(m.group(2)); s += int(m.group(3))
    return p, f, s


def pytest_counts(junit: Path) -> tuple[int, int, int]:
    if not junit.exists():
        return 0, 0, 0
    root = ET.parse(junit).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    p = f = s = 0
    for su in suites:
        tests = int(su.get("tests", 0)); fail = int(su.get("failures", 0))
        err = int(su.get("errors", 0)); skip = int(su.get("skipped", 0))
        p += tests - fail - err - skip; f += fail + err; s += skip
    return p, f, s


def notebook_counts(js: Path) -> tuple[int, int, int]:
    if not js.exists():
        return 0, 0, 0
    d = json.loads(js.read_text())
    return int(d.get("passed", 0)), int(d.get("failed", 0)), 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cargo", nargs=2, metavar=("LOG", "RC"))
    ap.add_argument("--pytest", nargs=2, metavar=("JUNIT", "RC"))
    ap.add_argument("--notebooks", nargs=2, metavar=("JSON", "RC"))
    args = ap.parse_args()

    rows = []
    for name, arg, fn in (("cargo test", args.cargo, cargo_counts),
                          ("pytest", args.pytest, pytest_counts),
                          ("notebooks", args.notebooks, notebook_counts)):
        if arg is None:
            rows.append((name, 0, 0, 0, "not run"))
            continue
        path, rc = Path(arg[0]), int(arg[1])
        p, f, s = fn(path)
        note = f"exit {rc}"
        if rc != 0 and f == 0:
            f = 1
            note += " (counted as 1 failure: the phase failed without reporting a failed test)"
        rows.append((name, p, f, s, note))

    print("-" * 72)
    for name, p, f, s, note in rows:
        print(f"  {name:<11} {p:>5} passed {f:>4} failed {s:>4} skipped/ignored   [{note}]")
    print("-" * 72)
    passed = sum(r[1] for r in rows)
    failed = sum(r[2] for r in rows)
    print(f"{passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
