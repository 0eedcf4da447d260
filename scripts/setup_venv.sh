#!/usr/bin/env bash
# Creates ./.venv with the pip list of environment.yml (the single source of truth),
# and re-creates it only when that list or the Python version changed (stamp file).
# Usage: scripts/setup_venv.sh   (env PYTHON=python3.11 to choose the interpreter)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$root/.venv"
stamp="$venv/.lepton-requirements.sha256"
python=${PYTHON:-python3}

if ! command -v "$python" >/dev/null 2>&1; then
  echo "error: $python not found; Python 3.11 is required (or set PYTHON=...)" >&2
  exit 1
fi
pyver=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "error: $python is Python $pyver; lepton needs Python >= 3.11 (environment.yml pins 3.11)" >&2
  exit 1
fi
[[ $pyver == 3.11 ]] || echo "warning: $python is Python $pyver; environment.yml is tested with 3.11" >&2

reqs=$("$python" "$root/scripts/pip_requirements.py" "$root/environment.yml")
want=$(printf '%s\npython %s\n' "$reqs" "$pyver" | sha256sum | cut -d' ' -f1)

if [[ -x $venv/bin/python && -f $stamp && $(cat "$stamp") == "$want" ]]; then
  echo "venv up to date: $venv"
  exit 0
fi

echo "Creating $venv (Python $pyver) from environment.yml:"
echo "$reqs" | sed 's/^/    /'
rm -f "$stamp"
"$python" -m venv --clear "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$venv/bin/python" -m pip install --disable-pip-version-check --progress-bar off -r <(echo "$reqs")
echo "$want" > "$stamp"
echo "venv ready: $venv"
