#!/usr/bin/env bash
# Kernel launcher of the `lepton-rust` Jupyter kernelspec (written by scripts/register_kernel.py):
# starts evcxr_jupyter with a configuration scoped to this repository.
#   EVCXR_CONFIG_DIR = .evcxr/        init.evcxr there runs at kernel start (turns on :cache)
#   XDG_CACHE_HOME   = .evcxr/cache   evcxr's :cache keeps compiled crates in $XDG_CACHE_HOME/evcxr
#   EVCXR_TMPDIR     = .evcxr/work/slot-N
#                    a persistent build directory, one per concurrently running kernel
#                    (flock), so that lepton itself, a path dependency that cargo builds
#                    incrementally and that :cache therefore never caches, is rebuilt only
#                    when its sources changed
#   Cargo.lock       = the repository's, copied into the slot at every start
#   RUSTUP_TOOLCHAIN = rust-toolchain.toml's channel
#   CARGO_INCREMENTAL = 1 (see below)
#   JUPYTER_PATH     = .evcxr/no-jupyter   keeps evcxr's start-up self-update away from
#                    ~/.local/share/jupyter/kernels/rust
# Usage (by Jupyter): evcxr_kernel.sh {connection_file}
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cfg="$root/.evcxr"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
export EVCXR_CONFIG_DIR="$cfg"
export XDG_CACHE_HOME="${LEPTON_EVCXR_CACHE_HOME:-$cfg/cache}"
export JUPYTER_PATH="$cfg/no-jupyter"

mkdir -p "$cfg/work"
slot=
for i in $(seq 0 31); do
  exec {lock_fd}>"$cfg/work/slot-$i.lock"
  if flock -n "$lock_fd"; then slot=$i; break; fi
  exec {lock_fd}>&-
done
if [[ -z $slot ]]; then
  echo "evcxr_kernel.sh: all 32 build slots in $cfg/work are busy" >&2
  exit 1
fi
# The lock stays held (fd inherited through exec) for the kernel's lifetime.
export EVCXR_TMPDIR="$cfg/work/slot-$slot"
mkdir -p "$EVCXR_TMPDIR"
# Each cell's code is a cdylib linked against the toolchain's libstd-*.so (-Cprefer-dynamic),
# found through a RUNPATH relative to $ORIGIN that rustc computes for the cdylib in deps/;
# evcxr then loads a copy one directory up, so when the repository and the toolchain share a
# parent (a clone under $HOME next to ~/.rustup) that relative path misses by one level and
# the kernel dies with "dlopen failed". The sysroot's library directory on LD_LIBRARY_PATH
# (searched before RUNPATH) makes loading independent of where the repository lives.
# The repository's pinned toolchain (rust-toolchain.toml) for every cell, wherever the kernel
# was started from.
RUSTUP_TOOLCHAIN=$(sed -n 's/^channel *= *"\([^"]*\)".*/\1/p' "$root/rust-toolchain.toml")
export RUSTUP_TOOLCHAIN
# Incremental compilation of the notebook's crate, always. With `CI` set, cargo 1.99 compiles
# it without `-C incremental` although evcxr's manifest asks for it; evcxr's :cache then takes
# that compile for a cacheable one, keyed by the command line alone, and serves the first
# cell's library for every later cell ("dlsym failed" from the second cell on).
export CARGO_INCREMENTAL=1
sysroot=$(rustc --print sysroot)
host=$(rustc -vV | sed -n 's/^host: //p')
export LD_LIBRARY_PATH="$sysroot/lib/rustlib/$host/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# The notebook's crate resolves its dependencies to Cargo.lock's versions (evcxr keeps a
# Cargo.lock it finds and only adds to it), as `cargo test` and scripts/kernel_cargo_test.sh.
cp "$root/Cargo.lock" "$EVCXR_TMPDIR/Cargo.lock"
# No transparent huge pages for evcxr's allocator (mimalloc asks for them with madvise, which
# Debian's default THP mode "madvise" grants). The embedded rust-analyzer allocates a lot of
# short-lived memory while it analyses the crate graph at `:dep` and at the first `let`; with
# huge pages, 16 % of the kernel's time during `:dep lepton` went to zeroing fresh 2 MiB pages
# (perf). Without: `:dep lepton` median 3.92 s instead of 4.52 s, first `let` 4.58 s instead
# of 5.49 s (5 new kernels each, interleaved, 2026-12-07; docs/DESIGN.md, "Notebook start-up").
export MIMALLOC_ALLOW_THP=${MIMALLOC_ALLOW_THP:-0}  # scripts/time_dep.py sets 1 for the A/B
exec "${EVCXR_JUPYTER:-evcxr_jupyter}" --control_file "$1"
