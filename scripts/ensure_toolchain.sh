#!/usr/bin/env bash
# Installs the Rust toolchain pinned in rust-toolchain.toml (with its components) unless rustup
# already has it. Run once, before any parallel cargo commands: rustup would otherwise
# install it on first use, possibly from two processes at once.
# Usage: scripts/ensure_toolchain.sh
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
channel=$(sed -n 's/^channel *= *"\([^"]*\)".*/\1/p' "$root/rust-toolchain.toml")
if [[ -z $channel ]]; then
  echo "error: no channel in $root/rust-toolchain.toml" >&2
  exit 1
fi
if ! command -v rustup >/dev/null 2>&1; then
  # without rustup the toolchain file is not read: the rustc on PATH must be the pinned one
  if rustc -V 2>/dev/null | grep -q "^rustc $channel "; then
    exit 0
  fi
  echo "error: rustup not found and rustc on PATH is not $channel (rust-toolchain.toml)." >&2
  echo "Install rustup: https://rustup.rs" >&2
  exit 1
fi
if rustup toolchain list | grep -q "^$channel-" \
   && rustup component list --toolchain "$channel" --installed 2>/dev/null | grep -q '^rust-src'; then
  echo "Rust $channel already installed"
  exit 0
fi
echo "Installing Rust $channel (rust-toolchain.toml) with rustup"
rustup toolchain install "$channel" --profile minimal --component rust-src
