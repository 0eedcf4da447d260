#!/usr/bin/env bash
# Usage: scripts/timed.sh LABEL COMMAND [ARG...]
# Runs COMMAND, framed by "==> LABEL" and "<== LABEL: ok|FAILED (exit N) in Ns",
# and exits with COMMAND's status. Used by the Makefile so that every phase of
# `make setup` / `make test` reports its elapsed time.
set -uo pipefail
label=$1; shift
start=$(date +%s)
echo "==> ${label}"
"$@"
rc=$?
secs=$(( $(date +%s) - start ))
if (( rc == 0 )); then
  printf '<== %s: ok in %dm%02ds\n' "$label" $((secs / 60)) $((secs % 60))
else
  printf '<== %s: FAILED (exit %d) in %dm%02ds\n' "$label" "$rc" $((secs / 60)) $((secs % 60))
fi
exit "$rc"
