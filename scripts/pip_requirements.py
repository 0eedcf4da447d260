#!/usr/bin/env python3
"""Print the pip requirements listed under `- pip:` in environment.yml, one per line.

environment.yml is the single source of truth for the Python packages of lepton;
`make setup` feeds this output to `pip install -r /dev/stdin`.
Standard library only (no PyYAML): it understands the block-sequence form used
in environment.yml (`- pip:` followed by a more deeply indented `- pkg==ver` list),
plus the flow form `- pip: [a==1, b==2]`.

Usage: scripts/pip_requirements.py [path/to/environment.yml]
"""
from __future__ import annotations

import re
import sys
from pathlib import Path


def _strip_comment(line: str) -> str:
    # A '#' starts a comment when it begins the line or follows whitespace.
    m = re.search(r"(^|\s)#", line)
    return line[: m.start()] if m else line


def _unquote(s: str) -> str:
    s = s.strip()
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "'\"":
        return s[1:-1]
    return s


def pip_requirements(text: str) -> list[str]:
    lines = text.splitlines()
    in_deps = False
    deps_indent = -1
    for i, raw in enumerate(lines):
        line = _strip_comment(raw).rstrip()
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        stripped = line.strip()
        if indent == 0:
            in_deps = stripped == "dependencies:"
            continue
        if not in_deps:
            continue
        m = re.match(r"-\s*pip\s*:\s*(.*)$", stripped)
        if not m:
            continue
        rest = m.group(1).strip()
        if rest:  # flow style: - pip: [a, b]
            if not (rest.startswith("[") and rest.endswith("]")):
                raise SystemExit(f"environment.yml: cannot parse pip list: {rest!r}")
            return [_unquote(x) for x in rest[1:-1].split(",") if x.strip()]
        deps_indent = indent
        reqs: list[str] = []
        for raw2 in lines[i + 1 :]:
            line2 = _strip_comment(raw2).rstrip()
            if not line2.strip():
                continue
            indent2 = len(line2) - len(line2.lstrip())
            if indent2 <= deps_indent:
                break
            item = line2.strip()
            if not item.startswith("-"):
                raise SystemExit(f"environment.yml: unexpected line in pip list: {raw2!r}")
            reqs.append(_unquote(item[1:]))
        return reqs
    raise SystemExit("environment.yml: no `- pip:` list under `dependencies:`")


def main() -> None:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "environment.yml")
    reqs = pip_requirements(path.read_text(encoding="utf-8"))
    if not reqs:
        raise SystemExit(f"{path}: the pip list is empty")
    print("\n".join(reqs))


if __name__ == "__main__":
    main()
