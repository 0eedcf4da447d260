#!/usr/bin/env python3
"""Register the `lepton-rust` Jupyter kernel ("Rust (lepton)") inside the venv.

Writes <venv>/share/jupyter/kernels/lepton-rust/ (Jupyter finds it from the venv's
prefix) and the repo-scoped evcxr configuration directory .evcxr/ with its init.evcxr.
Never touches ~/.local/share/jupyter, ~/.config/evcxr or ~/.cache/evcxr.
Run it with the venv's python (it uses sys.prefix). Idempotent.

Usage: .venv/bin/python scripts/register_kernel.py [--evcxr PATH] [--cache-mib N]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NAME = "lepton-rust"
DISPLAY = "Rust (lepton)"

INIT_EVCXR = """\
// Run by evcxr at every start of the `lepton-rust` kernel (EVCXR_CONFIG_DIR={cfg}).
// Written by scripts/register_kernel.py (`make setup`); edits are overwritten.
//
// Keep compiled dependency crates in the cache ({cache}/evcxr), so a new kernel
// does not recompile dfdx, polars and plotters (LRU-trimmed to this size in MiB).
:cache {cache_mib}
//
// Resolve dependencies offline, i.e. only from crates already downloaded: `make setup`
// runs `cargo fetch` for Cargo.lock first, so notebooks build lepton with the same
// versions as `cargo test`, without network and without re-resolving on every start
// (saves ~2 s per `:dep`). For a crate that is not downloaded yet, run `:offline 0`
// in the notebook before its `:dep`.
:offline 1
"""


def evcxr_cargo_config() -> str:
    """Cargo settings for the kernel's builds (evcxr builds in .evcxr/work/slot-N, so cargo
    reads .evcxr/.cargo/config.toml; config profiles override evcxr's generated manifest,
    which sets opt-level 2 for everything): the per-package opt-levels of Cargo.toml's dev
    profile (most dependencies at 0, the numeric ones at 2), and lepton itself at 2."""
    import tomllib
    manifest = tomllib.loads((ROOT / "Cargo.toml").read_text())
    packages = manifest.get("profile", {}).get("dev", {}).get("package", {})
    lines = ["# Written by scripts/register_kernel.py (`make setup`) from Cargo.toml's",
             "# [profile.dev.package.*] opt-levels; edits are overwritten.", ""]
    levels = {name: settings["opt-level"] for name, settings in packages.items() if "opt-level" in settings}
    levels["lepton"] = 2
    for name in sorted(levels, key=lambda n: (n != "*", n)):
        key = '"*"' if name == "*" else name
        lines += [f"[profile.dev.package.{key}]", f"opt-level = {levels[name]}"]
    return "\n".join(lines) + "\n"


def find_evcxr(explicit: str | None) -> Path:
    if explicit:
        return Path(explicit).resolve()
    cargo_bin = Path(os.environ.get("CARGO_HOME", Path.home() / ".cargo")) / "bin" / "evcxr_jupyter"
    found = shutil.which("evcxr_jupyter") or (str(cargo_bin) if cargo_bin.exists() else None)
    if not found:
        sys.exit("error: evcxr_jupyter not found; run `make setup` (it installs it)")
    return Path(found).resolve()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--evcxr", help="path to evcxr_jupyter (default: PATH, then ~/.cargo/bin)")
    ap.add_argument("--cache-mib", type=int, default=4096)
    ap.add_argument("--cargo-config-only", action="store_true",
                    help="only write .evcxr/.cargo/config.toml (any python >= 3.11)")
    args = ap.parse_args()
    if args.cargo_config_only:
        (ROOT / ".evcxr" / ".cargo").mkdir(parents=True, exist_ok=True)
        (ROOT / ".evcxr" / ".cargo" / "config.toml").write_text(evcxr_cargo_config())
        return

    in_conda = os.environ.get("CONDA_PREFIX") and Path(os.environ["CONDA_PREFIX"]).resolve() == Path(sys.prefix).resolve()
    if sys.prefix == sys.base_prefix and not in_conda:
        sys.exit("error: run this with the venv's python (.venv/bin/python) or inside the active "
                 "conda environment, not the system python")
    evcxr = find_evcxr(args.evcxr)
    launcher = ROOT / "scripts" / "evcxr_kernel.sh"

    cfg = ROOT / ".evcxr"
    cfg.mkdir(exist_ok=True)
    cache = Path(os.environ.get("LEPTON_EVCXR_CACHE_HOME", cfg / "cache"))
    (cfg / "init.evcxr").write_text(INIT_EVCXR.format(cfg=cfg, cache=cache, cache_mib=args.cache_mib))
    (cfg / ".cargo").mkdir(exist_ok=True)
    (cfg / ".cargo" / "config.toml").write_text(evcxr_cargo_config())

    kdir = Path(sys.prefix) / "share" / "jupyter" / "kernels" / NAME
    kdir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [str(launcher), "{connection_file}"],
        "display_name": DISPLAY,
        "language": "rust",
        "interrupt_mode": "message",
        "env": {"EVCXR_JUPYTER": str(evcxr)},
        "metadata": {"lepton": {"evcxr_config_dir": str(cfg), "evcxr_cache": str(cache / "evcxr")}},
    }
    (kdir / "kernel.json").write_text(json.dumps(spec, indent=2) + "\n")

    # Logos (and evcxr's kernel.js / lint files): let evcxr_jupyter --install write its
    # kernelspec into a throw-away JUPYTER_PATH and copy everything but its kernel.json.
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, JUPYTER_PATH=tmp)
        r = subprocess.run([str(evcxr), "--install"], env=env, capture_output=True, text=True)
        src = Path(tmp) / "kernels" / "rust"
        if r.returncode == 0 and src.is_dir():
            for f in src.iterdir():
                if f.name != "kernel.json":
                    shutil.copy2(f, kdir / f.name)
        else:
            print(f"warning: could not copy evcxr's kernel logos: {r.stderr.strip()}", file=sys.stderr)

    print(f"kernel {NAME!r} ({DISPLAY}) -> {kdir}")
    print(f"  launcher:           {launcher}")
    print(f"  evcxr_jupyter:      {evcxr}")
    print(f"  evcxr config dir:   {cfg} (init.evcxr: :cache {args.cache_mib}, :offline 1)")
    print(f"  evcxr build cache:  {cache / 'evcxr'}")


if __name__ == "__main__":
    main()
