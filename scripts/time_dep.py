#!/usr/bin/env python3
"""A/B timing of `:dep` cells in new `lepton-rust` kernels, variants interleaved.

Each VARIANT is `label|dep line|env`, where env (optional) is space-separated KEY=VALUE
settings for the kernel process. For every round, one new kernel per variant runs, timed from
`execute` to the reply:

    <dep line>
    let x = 1 + 1;          (the first `let`: rust-analyzer infers its type)

Rounds alternate the variants, so a machine that gets busier or quieter affects all of them
alike. A first, untimed round compiles what a variant needs (`--no-warm` skips it). Prints
each kernel's seconds, then per variant the median, min and max of both cells.

Example (the README's "Notebook compile times", 2026-12-07):

    .venv/bin/python scripts/time_dep.py --kernels 5 \\
        'huge pages|:dep lepton = { path = ".." }|MIMALLOC_ALLOW_THP=1' \\
        'no huge pages|:dep lepton = { path = ".." }'
    .venv/bin/python scripts/time_dep.py --kernels 5 'either|:dep either = "1"' \\
        'dfdx|:dep dfdx = { version = "=0.13.0", default-features = false, features = ["std", "fast-alloc", "cpu", "safetensors"] }' \\
        'lepton|:dep lepton = { path = ".." }'

Run `make setup` first. Exit status: 1 when a cell fails.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from warm_kernel import KERNEL, ROOT, run_cell  # noqa: E402


def parse_variant(text: str) -> tuple[str, str, dict[str, str]]:
    parts = text.split("|")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1].startswith(":dep "):
        sys.exit(f"error: variant {text!r} is not 'label|:dep ...|KEY=VALUE ...'")
    env = {}
    for kv in (parts[2].split() if len(parts) == 3 else []):
        key, sep, value = kv.partition("=")
        if not sep:
            sys.exit(f"error: {kv!r} in variant {parts[0]!r} is not KEY=VALUE")
        env[key] = value
    return parts[0], parts[1], env


def run_kernel(dep: str, env: dict[str, str]) -> list[float] | None:
    from jupyter_client.manager import start_new_kernel
    km, kc = start_new_kernel(kernel_name=KERNEL, cwd=str(ROOT / "notebooks"), startup_timeout=300,
                              env=dict(os.environ, **env))
    try:
        times = []
        for code in (dep, "let x = 1 + 1;"):
            ok, secs, errors = run_cell(kc, code, 1800)
            if not ok:
                print(f"{code} FAILED:\n" + "\n".join(errors[:20]), flush=True)
                return None
            times.append(secs)
        return times
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("variants", nargs="+", metavar="VARIANT")
    ap.add_argument("--kernels", type=int, default=5, help="timed kernels per variant")
    ap.add_argument("--no-warm", action="store_true", help="skip the untimed first round")
    args = ap.parse_args()
    variants = [parse_variant(v) for v in args.variants]
    if len({label for label, _, _ in variants}) != len(variants):
        sys.exit("error: two variants have the same label")
    if not args.no_warm:
        for label, dep, env in variants:
            print(f"warm-up: {label}", flush=True)
            if run_kernel(dep, env) is None:
                return 1
    times: dict[str, list[list[float]]] = {label: [] for label, _, _ in variants}
    for k in range(args.kernels):
        for label, dep, env in variants:
            t = run_kernel(dep, env)
            if t is None:
                return 1
            times[label].append(t)
            print(f"round {k + 1}: {label:<16} :dep {t[0]:6.2f} s   first let {t[1]:6.2f} s", flush=True)
    print(f"\nvariant           :dep median (min-max)   first let median (min-max)   ({args.kernels} kernels each)")
    for label, rows in times.items():
        dep, let = [r[0] for r in rows], [r[1] for r in rows]
        print(f"{label:<16}  {statistics.median(dep):5.2f} ({min(dep):.2f}-{max(dep):.2f})"
              f"          {statistics.median(let):5.2f} ({min(let):.2f}-{max(let):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
