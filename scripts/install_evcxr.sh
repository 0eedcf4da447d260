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

echo "Installing evcxr_jupyter ${version} with cargo install --locked."
echo "This compiles the kernel from source and takes about 10-15 minutes on 2 cores (once per machine)."
cargo install evcxr_jupyter --version "${version}" --locked
