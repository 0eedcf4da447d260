#!/usr/bin/env bash
# `make test`: set-up, then the test phases.
#   0. `make setup` (evcxr kernel, venv, warm evcxr cache), with lepton and its dependencies
#      compiled meanwhile in the kernel's build slot (scripts/kernel_cargo_test.sh --prebuild)
#   1. cargo test -p lepton (unit, integration, example and doc tests) in that same slot, so
#      tests and kernel share one dependency build instead of two cold compiles
#      (scripts/kernel_cargo_test.sh explains; `make test-rust` is plain cargo test)
#   2. pytest tests/python (in the venv; skipped when there are no test files)
#   3. notebooks/*.ipynb  executed headless (scripts/run_notebooks.py, LEPTON_QUICK=1)
# Every phase runs even when an earlier one failed; full logs go to target/test-logs/.
# Ends with the line `N passed, N failed` (scripts/summary.py) and exits non-zero
# when anything failed.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
py="$root/.venv/bin/python"
logs="$root/target/test-logs"
mkdir -p "$logs"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

timed() { "$root/scripts/timed.sh" "$@"; }

# 0. set-up. The test build runs in the background meanwhile: it is also the kernel's build of
#    lepton (scripts/kernel_cargo_test.sh), and the evcxr install leaves a core idle for
#    long stretches (rustc's single-threaded front end on rust-analyzer's largest crates).
# The pinned toolchain first: the background build and `make evcxr` both run cargo, and rustup
# would otherwise install a missing toolchain from both at once.
timed "make toolchain" make -C "$root" toolchain || { echo "0 passed, 1 failed"; exit 1; }
echo "==> kernel-shaped test build in the background (log: target/test-logs/cargo-build.log)"
"$root/scripts/kernel_cargo_test.sh" --prebuild >"$logs/cargo-build.log" 2>&1 &
build_pid=$!
timed "make evcxr venv" make -C "$root" evcxr venv
setup_rc=$?
wait_start=$(date +%s)
wait "$build_pid"
build_rc=$?
echo "<== background test build: exit $build_rc, waited $(( $(date +%s) - wait_start )) s after evcxr + venv"
if (( setup_rc == 0 )); then
  timed "make setup" make -C "$root" setup
  setup_rc=$?
fi

# 1. cargo test (--no-fail-fast: a failing test binary does not hide the others). In CI the
#    committed Cargo.lock must match Cargo.toml.
cargo_rc=0
if [[ ${CI:-} == true ]] && ! cargo metadata --locked --format-version 1 >/dev/null; then
  echo "Cargo.lock is out of date with Cargo.toml (cargo metadata --locked failed)" >&2
  cargo_rc=1
fi
timed "cargo test (log: target/test-logs/cargo-test.log)" \
  bash -c 'set -o pipefail; "$0" --no-fail-fast 2>&1 | tee "$1"' "$root/scripts/kernel_cargo_test.sh" "$logs/cargo-test.log"
rc=$?
(( rc != 0 )) && cargo_rc=$rc
if (( setup_rc != 0 )); then
  echo "make setup failed (exit $setup_rc)" >&2
  (( cargo_rc == 0 )) && cargo_rc=$setup_rc
fi

# 2. pytest, only when tests/python holds test files.
rm -f "$logs/pytest.xml"
summary_args=(--cargo "$logs/cargo-test.log" "$cargo_rc")
if compgen -G "tests/python/test_*.py" >/dev/null || compgen -G "tests/python/*_test.py" >/dev/null \
   || compgen -G "tests/python/**/test_*.py" >/dev/null; then
  export LEPTON_INTEROP_CMD="$root/scripts/kernel_cargo_test.sh run"
  timed "pytest tests/python (log: target/test-logs/pytest.log)" \
    bash -c 'set -o pipefail; "$0" -m pytest tests/python -ra -p no:cacheprovider --junitxml="$1" 2>&1 | tee "$2"' \
    "$py" "$logs/pytest.xml" "$logs/pytest.log"
  pytest_rc=$?
  # exit 5 = no tests collected although test files exist: a failure (summary counts it).
  summary_args+=(--pytest "$logs/pytest.xml" "$pytest_rc")
else
  echo "==> pytest: no test files in tests/python, skipped"
fi

# 3. notebooks
rm -f "$logs/notebooks.json"
timed "notebooks (log: target/test-logs/notebooks.log, executed copies: notebooks/out/)" \
  bash -c 'set -o pipefail; LEPTON_QUICK=${LEPTON_QUICK:-1} "$0" scripts/run_notebooks.py --json "$1" 2>&1 | tee "$2"' \
  "$py" "$logs/notebooks.json" "$logs/notebooks.log"
nb_rc=$?
summary_args+=(--notebooks "$logs/notebooks.json" "$nb_rc")

"$py" scripts/summary.py "${summary_args[@]}"
