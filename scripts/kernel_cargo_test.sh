#!/usr/bin/env bash
# `cargo test` for lepton, built the way the evcxr kernel builds it, so that `make test`
# compiles lepton's dependency tree once instead of twice.
#
# Why: on a fresh 2-core machine `make test` must compile evcxr_jupyter (about an hour: the
# rust-analyzer crates it embeds), then lepton's ~190 dependency crates for the kernel, and,
# for a plain `cargo test`, the same crates again with cargo's own flags (the kernel builds
# its own crate with -Cprefer-dynamic). Together that does not fit CI's 90 minutes.
#
# So the tests are built in the kernel's first build slot, .evcxr/work/slot-0, as a crate
# shaped exactly like the one evcxr 0.22 generates there for a notebook (the same
# [profile.dev], -Cprefer-dynamic, --target, per-package opt-levels from
# .evcxr/.cargo/config.toml, and the repository's Cargo.lock, which scripts/evcxr_kernel.sh
# also copies into every slot). cargo then shares every dependency, and lepton itself,
# between the tests and the kernel. `cargo test -p lepton -p lepton-polars` runs the unit,
# integration, example and doc tests of both crates (a path dependency can be tested by -p);
# they are built at opt-level 2, as in the kernel. `cargo test` / `make test-rust` at the root still run the
# same tests with the root manifest's profile.
#
# Modes:
#   kernel_cargo_test.sh [cargo test args]    run the tests
#   kernel_cargo_test.sh --prebuild           compile only (`cargo test --no-run`); needs no
#                                             evcxr yet, so `make test` runs it while evcxr
#                                             installs (the kernel later finds it all fresh:
#                                             cargo's fingerprints ignore the rustc wrapper)
#   kernel_cargo_test.sh run [--quiet] [-p PACKAGE] --example NAME -- ARGS
#                                             build example NAME of PACKAGE (default lepton) in
#                                             the same slot (`cargo build -p PACKAGE --example`;
#                                             `cargo run -p` refuses a
#                                             path dependency) and run it with ARGS (the
#                                             Python interop test uses it, LEPTON_INTEROP_CMD)
# When a running kernel holds slot-0, the build goes to .evcxr/work/cargo-test instead and
# takes its dependencies from evcxr's build cache (evcxr as the rustc wrapper).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
cfg="$root/.evcxr"
mode=test
case ${1:-} in
  --prebuild) mode=prebuild; shift ;;
  run) mode=run; shift ;;
esac

mkdir -p "$cfg/work"
[[ -f $cfg/.cargo/config.toml ]] || python3 "$root/scripts/register_kernel.py" --cargo-config-only
exec {lock_fd}>"$cfg/work/slot-0.lock"
if flock -n "$lock_fd"; then
  dir="$cfg/work/slot-0"
else
  exec {lock_fd}>&-
  dir="$cfg/work/cargo-test"
  echo "kernel_cargo_test.sh: slot-0 is in use by a kernel; building in $dir" >&2
fi

# The crate evcxr 0.22 writes for a notebook (evcxr/src/module.rs, get_cargo_toml_contents)
# with `:dep lepton = { path = "<repo>" }`, `:dep lepton-polars = { path = "<repo>/lepton-polars" }`
# and the default `:opt 2`.
mkdir -p "$dir/src" "$dir/.cargo"
[[ -f $dir/src/lib.rs ]] || : >"$dir/src/lib.rs"
cat >"$dir/Cargo.toml" <<EOF

[package]
name = "ctx"
version = "1.0.0"
edition = "2024"

[lib]
crate-type = ["cdylib"]
path = "src/lib.rs"

[profile.dev]
opt-level = 2
debug = false
strip = "debuginfo"
rpath = true
lto = false
debug-assertions = true
codegen-units = 16
panic = 'unwind'
incremental = true
overflow-checks = true

[dependencies]
lepton = { path = "$root" }
lepton-polars = { path = "$root/lepton-polars" }

EOF
printf '\n[net]\noffline = %s\n' true >"$dir/.cargo/config.toml"
cp "$root/Cargo.lock" "$dir/Cargo.lock"

target=$(rustc -vV | sed -n 's/^host: //p')
cd "$dir"
# The environment evcxr 0.22 gives cargo (eval_context.rs, cargo_command).
export CARGO_TARGET_DIR=target CARGO_BUILD_BUILD_DIR=target CARGO_TERM_COLOR=never
export RUSTFLAGS="-Cprefer-dynamic"
# As scripts/evcxr_kernel.sh: incremental on even when CI is set (cargo 1.99 then turns it off),
# so that lepton's fingerprints here and in the kernel agree.
export CARGO_INCREMENTAL=1
evcxr=$(command -v evcxr_jupyter || true)
if [[ -n $evcxr && $mode != prebuild ]]; then
  # with :cache on, evcxr is the rustc wrapper and serves dependencies from its cache
  export RUSTC_WRAPPER="$evcxr" EVCXR_RUSTC_WRAPPER=1 EVCXR_CACHE_ENABLED=1 EVCXR_TARGET_DIR="$dir/target"
  export XDG_CACHE_HOME="${LEPTON_EVCXR_CACHE_HOME:-$cfg/cache}"
fi
case $mode in
  prebuild) # download Cargo.lock's crates first (the build is --offline); a failed fetch is
            # retried once and reported, and the build below then names what is missing.
            # CARGO_NET_OFFLINE=false: this directory's .cargo/config.toml (evcxr's) says
            # offline, and cargo reads config from the working directory, not the manifest's
            if ! CARGO_NET_OFFLINE=false cargo fetch --locked --manifest-path "$root/Cargo.toml" >"$dir/fetch.log" 2>&1; then
              sleep 5
              CARGO_NET_OFFLINE=false cargo fetch --locked --manifest-path "$root/Cargo.toml" >"$dir/fetch.log" 2>&1 \
                || { echo "kernel_cargo_test.sh: cargo fetch failed:" >&2; cat "$dir/fetch.log" >&2; }
            fi
            exec cargo test --offline -p lepton -p lepton-polars --target "$target" --no-run "$@" ;;
  run)
    # `cargo run -p` takes only workspace members, and lepton is a path dependency here:
    # build the example with `cargo build -p lepton --example NAME` (cargo options before
    # `--`), then run its binary with the arguments after `--`.
    cargo_args=() prog_args=() example= package=lepton
    while (( $# )); do
      case $1 in
        --) shift; prog_args=("$@"); break ;;
        --example) example=${2:-}; cargo_args+=("$1" "${2:-}"); shift 2 || shift ;;
        -p|--package) package=${2:-}; shift 2 || shift ;;
        *) cargo_args+=("$1"); shift ;;
      esac
    done
    if [[ -z $example ]]; then
      echo "kernel_cargo_test.sh run: needs --example NAME" >&2
      exit 2
    fi
    cargo build --offline -p "$package" --target "$target" "${cargo_args[@]}"
    # the build is done: free the slot (a kernel may take it) while the example runs
    exec {lock_fd}>&-
    exec "target/$target/debug/examples/$example" "${prog_args[@]}" ;;
  *) exec cargo test --offline -p lepton -p lepton-polars --target "$target" "$@" ;;
esac
