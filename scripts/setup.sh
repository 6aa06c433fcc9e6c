#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment and install MovieAugur into it.
# Usage: bash scripts/setup.sh [extra]   e.g. "test" installs the test tools too.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${MOVIEAUGUR_VENV:-$repo/.venv}"
python="${MOVIEAUGUR_PYTHON:-python3.11}"
command -v "$python" >/dev/null || python=python3
if [ ! -x "$venv/bin/python" ]; then
  echo "creating $venv with $($python --version)"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
fi
spec="$repo"
[ -n "${1:-}" ] && spec="$repo[$1]"
# Reinstall only when pyproject.toml changed since the last install (fast re-runs).
stamp="$venv/.movieaugur-installed"
want="$(sha256sum "$repo/pyproject.toml" | cut -d' ' -f1)-${1:-base}"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  started=$SECONDS
  "$venv/bin/pip" install -q -e "$spec"
  echo "$want" > "$stamp"
  echo "installed MovieAugur into $venv in $((SECONDS - started))s"
fi
