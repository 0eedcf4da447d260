"""Loading lepton-polars after lepton must not change how lepton is built.

A notebook runs `:dep lepton` first and `:dep lepton-polars` (and with it Polars) only where it
exports. If Polars turned on a feature of a crate lepton shares with it, cargo would rebuild
that crate and lepton above it, and evcxr would lose the notebook's variables of lepton types.
The feature pins in the root Cargo.toml prevent that; this test checks them: every crate in
lepton's dependency tree has the same features with and without lepton-polars beside it.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LINE = re.compile(r"^(\S+ v\S+)(?: \(.*?\))? \[(.*)\]")


def features(*packages: str) -> set[tuple[str, str]]:
    """(crate, features) of every crate in the packages' tree; a crate built both for the
    host (build scripts, proc macros) and the target may appear twice."""
    host = re.search(r"^host: (\S+)$", subprocess.run(
        ["rustc", "-vV"], capture_output=True, text=True, check=True).stdout, re.M)
    assert host, "rustc -vV printed no host"
    argv = ["cargo", "tree", "--offline", "-e", "normal,build", "--prefix", "none",
            "--target", host.group(1), "--format", "{p} [{f}]"]
    for p in packages:
        argv += ["-p", p]
    out = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    found: set[tuple[str, str]] = set()
    for line in out.stdout.splitlines():
        m = LINE.match(line.strip())
        if m:
            found.add((m.group(1), m.group(2)))
    return found


def test_lepton_builds_the_same_beside_lepton_polars():
    alone = features("lepton")
    beside = features("lepton", "lepton-polars")
    assert len(alone) > 50, f"cargo tree listed only {len(alone)} crates"
    assert len(beside) > len(alone) + 50, "lepton-polars should bring Polars in"
    changed = sorted(c for c in alone - beside if not c[0].startswith("lepton "))
    assert not changed, "features Polars changes (pin them in Cargo.toml): " + "; ".join(
        f"{k} [{f}] becomes " + " or ".join(f"[{g}]" for j, g in sorted(beside) if j == k)
        for k, f in changed)
