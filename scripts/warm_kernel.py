#!/usr/bin/env python3
"""Warm the evcxr build cache: start a headless `lepton-rust` kernel and run
    :dep lepton = { path = "<repo>" }
    use lepton::prelude::*;
    <a trivial expression>
    :dep lepton-polars = { path = "<repo>/lepton-polars" }
    use lepton_polars::prelude::*;
    <a trivial export>
(notebooks load lepton-polars, and with it Polars, only in their export cells) so that lepton,
lepton-polars and their dependencies (dfdx, polars, plotters, ...) are compiled once and
kept in the evcxr cache (.evcxr/cache) and the kernel's build slot (.evcxr/work).
Later kernels, in JupyterLab or in `make test`, then load lepton in seconds.

The first run compiles everything: about 10-17 minutes on 2 cores. Then a run takes
~20 s (kernel start, evcxr's rust-analyzer loading the dependency sources, a no-op
cargo build), so it is skipped while .evcxr/warm.stamp matches the hash of lepton's
sources, Cargo.toml/Cargo.lock, the toolchain and evcxr (--force runs it anyway).
Before the kernel starts, `cargo fetch` downloads the crates of Cargo.lock (the kernel
resolves offline: see init.evcxr).

Exit status: 1 when the kernel does not work; 0 otherwise, also when lepton fails to
compile (a loud warning: cargo test and the notebooks report that error again).

Usage: .venv/bin/python scripts/warm_kernel.py [--timeout SECONDS] [--force]
"""
from __future__ import annotations

import argparse
import hashlib
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KERNEL = "lepton-rust"


def _prelude_exists() -> bool:
    lib = ROOT / "lepton"
    return (lib / "prelude.rs").exists() or (lib / "prelude" / "mod.rs").exists()


def run_cell(kc, code: str, timeout: float) -> tuple[bool, float, list[str]]:
    """Execute one cell; stream its output; return (ok, seconds, error lines)."""
    started = time.monotonic()
    errors: list[str] = []
    done = threading.Event()

    def heartbeat():
        while not done.wait(30):
            print(f"    ... still compiling, {time.monotonic() - started:.0f} s", flush=True)

    threading.Thread(target=heartbeat, daemon=True).start()

    def hook(msg):
        c, t = msg["content"], msg["msg_type"]
        if t == "stream":
            sys.stdout.write("    " + c["text"].replace("\n", "\n    ").rstrip(" "))
            sys.stdout.flush()
        elif t in ("execute_result", "display_data"):
            print("    =>", c["data"].get("text/plain", ""), flush=True)
        elif t == "error":
            errors.append(f"{c['ename']}: {c['evalue']}")
            errors.extend(c.get("traceback") or [])

    try:
        reply = kc.execute_interactive(code, timeout=timeout, output_hook=hook)
        ok = reply["content"]["status"] == "ok" and not errors
    except (TimeoutError, queue.Empty):
        errors.append(f"timed out after {timeout} s")
        ok = False
    finally:
        done.set()
    return ok, time.monotonic() - started, errors


def warm_hash() -> str:
    """Hash of everything a warm cache depends on: lepton's manifest, lock and sources,
    the toolchain, evcxr and its init.evcxr."""
    h = hashlib.sha256()
    files = [ROOT / "Cargo.toml", ROOT / "Cargo.lock", ROOT / ".evcxr" / "init.evcxr",
             ROOT / ".evcxr" / ".cargo" / "config.toml"]
    for sub in ("lepton", "lepton-polars/src", "lepton-polars/Cargo.toml", "build.rs"):
        p = ROOT / sub
        files += sorted(x for x in p.rglob("*") if x.is_file()) if p.is_dir() else [p]
    for f in files:
        h.update(str(f.relative_to(ROOT)).encode())
        h.update(f.read_bytes() if f.exists() else b"<missing>")
    h.update(subprocess.run(["rustc", "-vV"], capture_output=True, text=True).stdout.encode())
    installed = subprocess.run(["cargo", "install", "--list"], capture_output=True, text=True).stdout
    h.update("".join(line for line in installed.splitlines() if line.startswith("evcxr")).encode())
    return h.hexdigest()


def cargo_fetch() -> None:
    """Download the crates of Cargo.lock, so the kernel (:offline 1) resolves to them."""
    cmd = ["cargo", "fetch"] + (["--locked"] if os.environ.get("CI") == "true" else [])
    print(f"  $ {' '.join(cmd)}", flush=True)
    r = subprocess.run(cmd, cwd=ROOT)
    if r.returncode != 0:
        print("  WARNING: cargo fetch failed; `:dep lepton` may fail offline", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--force", action="store_true", help="run even when the stamp says the cache is warm")
    args = ap.parse_args()

    stamp = ROOT / ".evcxr" / "warm.stamp"
    want = warm_hash()
    if not args.force and stamp.exists() and stamp.read_text().strip() == want:
        print("evcxr cache already warm for the current lepton sources, Cargo.lock and toolchain "
              f"({stamp.relative_to(ROOT)}); skipped. `make warm FORCE=1` reruns it.")
        return 0
    stamp.unlink(missing_ok=True)

    from jupyter_client.manager import start_new_kernel

    cargo_fetch()
    use = "use lepton::prelude::*;" if _prelude_exists() else "use lepton::error::Result;"
    lepton_cells = [
        f':dep lepton = {{ path = "{ROOT}" }}',
        use,
        "let lepton_warm_check = 6 * 7; lepton_warm_check",
    ]
    if (ROOT / "lepton-polars" / "Cargo.toml").exists():
        lepton_cells += [
            f':dep lepton-polars = {{ path = "{ROOT}/lepton-polars" }}',
            "use lepton_polars::prelude::*;",
            "ExperimentTable::new().to_polars()?.shape()",
        ]
    print("Warming the evcxr cache with lepton. The first time this compiles lepton and its")
    print("dependencies (dfdx, polars, plotters): about 10-17 minutes on 2 cores, cached afterwards;")
    print("later runs take ~20 s, and none at all while lepton is unchanged. Compiler progress follows.",
          flush=True)

    t0 = time.monotonic()
    cwd = ROOT / "notebooks" if (ROOT / "notebooks").is_dir() else ROOT
    try:
        km, kc = start_new_kernel(kernel_name=KERNEL, cwd=str(cwd), startup_timeout=300)
    except Exception as exc:  # noqa: BLE001 - report any start-up failure plainly
        print(f"ERROR: the {KERNEL} kernel did not start: {exc}", flush=True)
        return 1
    print(f"  kernel started in {time.monotonic() - t0:.1f} s", flush=True)
    status = 0
    try:
        # 1. The kernel itself must work (else setup is broken: fail).
        ok, secs, errors = run_cell(kc, "1 + 1", 600)
        print(f"  kernel check (1 + 1): {'ok' if ok else 'FAILED'} in {secs:.1f} s", flush=True)
        if not ok:
            print("\n".join("    " + line for line in errors), flush=True)
            return 1
        # 2. lepton: a compile error here is lepton's, reported again by cargo test and the
        #    notebooks, so it only warns (the dependencies compiled so far stay cached).
        for code in lepton_cells:
            print(f"  >>> {code}", flush=True)
            ok, secs, errors = run_cell(kc, code, args.timeout)
            print(f"  {'ok' if ok else 'FAILED'} in {secs:.1f} s", flush=True)
            if not ok:
                print("\n".join("    " + line for line in errors[:40]), flush=True)
                print("WARNING: lepton did not load in the kernel (see above); the cache holds what "
                      "compiled. Continuing.", flush=True)
                status = 2
                break
    finally:
        km.shutdown_kernel(now=False)
    if status == 0:
        stamp.write_text(want + "\n")
    print(f"warm-up {'done' if status == 0 else 'incomplete'} in {time.monotonic() - t0:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
