#!/usr/bin/env bash
# `make test`: set-up, then the test phases.
#   0. `make setup` (evcxr kernel, venv, warm evcxr cache), while `cargo test --no-run`
#      compiles the tests in the background: on a fresh 2-core machine both are long
#      compiles, and overlapping them fills the cores that one build alone leaves idle
#      (rustc's single-threaded front end on the large crates).
#   1. cargo test        (unit, integration and doc tests)
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

cargo_flags=()
[[ ${CI:-} == true ]] && cargo_flags+=(--locked)

# 0. set-up, with the test build in the background (its result is what step 1 reports).
echo "==> cargo test --no-run in the background (log: target/test-logs/cargo-build.log)"
( cargo test --no-run "${cargo_flags[@]}" >"$logs/cargo-build.log" 2>&1 ) &
build_pid=$!
timed "make setup" make -C "$root" setup
setup_rc=$?
wait_start=$(date +%s)
wait "$build_pid"
echo "<== background test build (exit $?): waited $(( $(date +%s) - wait_start )) s after set-up"
if (( setup_rc != 0 )); then
  echo "make setup failed (exit $setup_rc): no kernel for the notebooks" >&2
fi

# 1. cargo test. In CI the committed Cargo.lock must be up to date (--locked).
timed "cargo test (log: target/test-logs/cargo-test.log)" \
  bash -c 'set -o pipefail; cargo test "$@" 2>&1 | tee "'"$logs"'/cargo-test.log"' _ "${cargo_flags[@]}"
cargo_rc=$?

# 2. pytest, only when tests/python holds test files.
rm -f "$logs/pytest.xml"
summary_args=(--cargo "$logs/cargo-test.log" "$cargo_rc")
if compgen -G "tests/python/test_*.py" >/dev/null || compgen -G "tests/python/*_test.py" >/dev/null \
   || compgen -G "tests/python/**/test_*.py" >/dev/null; then
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
