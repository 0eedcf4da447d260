#!/usr/bin/env bash
# Ensures evcxr_jupyter (the Rust Jupyter kernel) of exactly version $1 is installed
# with `cargo install --locked`; does nothing when it already is.
# Usage: scripts/install_evcxr.sh VERSION
set -euo pipefail
version=${1:?usage: install_evcxr.sh VERSION}
cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"
export PATH="$cargo_bin:$PATH"

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo not found. Install Rust (stable) with rustup: https://rustup.rs" >&2
  exit 1
fi

# evcxr_jupyter has no --version flag; cargo's install registry knows what it installed.
if cargo install --list 2>/dev/null | grep -qx "evcxr_jupyter v${version}:" \
   && [[ -x "$cargo_bin/evcxr_jupyter" ]]; then
  echo "evcxr_jupyter ${version} already installed: $cargo_bin/evcxr_jupyter"
  exit 0
fi

# Optimisation level of the build. cargo's default for `install` is 3. On a 2-core machine with
# nothing else running (2026-12-06) opt-level 3 took 7 min 32 s and opt-level 1 6 min 38 s; with
# the cores shared with other builds earlier sessions saw 25-45 min (most of it rust-analyzer's
# crates, which evcxr embeds). The kernel's cell times were the same with either build (README,
# "Notebook compile times"). CI (CI=true) builds at opt-level 1, the quicker one.
# LEPTON_EVCXR_OPT_LEVEL=N chooses explicitly.
opt=${LEPTON_EVCXR_OPT_LEVEL:-}
[[ -z $opt && ${CI:-} == true ]] && opt=1
if [[ -n $opt ]]; then
  export CARGO_PROFILE_RELEASE_OPT_LEVEL=$opt
fi
echo "Installing evcxr_jupyter ${version} with cargo install --locked (opt-level ${opt:-3})."
echo "This compiles the kernel and rust-analyzer from source, once per machine: on 2 cores"
echo "7-8 minutes with the machine to itself, 25-45 minutes while other builds share the cores."
cargo install evcxr_jupyter --version "${version}" --locked
