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
# System tools the tests use but pip cannot install (tests install nothing themselves):
# docker-compose (tests/integration/test_compose.py parses infra/compose.yml with it) and nginx (`nginx -t`).
# wrk is the load generator of bench/serve_wrk.py (CI runs a smoke of it).
if [[ ",${1:-}," == *,test,* || ",${1:-}," == *,bench,* ]]; then
  missing=()
  command -v docker-compose >/dev/null || missing+=(docker-compose)
  command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
  command -v wrk >/dev/null || missing+=(wrk)
  if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
      echo "installing ${missing[*]} with apt-get"
      export DEBIAN_FRONTEND=noninteractive
      # Without `apt-get update` first: on a machine whose lists are fresh it saves ~10 s.
      apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
        || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; }
    else
      echo "warning: ${missing[*]} not installed (needs root and apt-get here); the compose tests will fail:" \
           "sudo apt-get install -y ${missing[*]}" >&2
    fi
  fi
fi
# Chromium (Debian's package) for the dashboard's browser test (tests/integration/test_dashboard_browser.py).
if [[ ",${1:-}," == *,test,* ]] && ! command -v chromium >/dev/null; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "installing chromium with apt-get"
    (export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
      || echo "warning: installing chromium failed; the dashboard browser test will fail" >&2
  else
    echo "warning: chromium not installed (needs root and apt-get here); the dashboard browser test will fail:" \
         "sudo apt-get install -y chromium" >&2
  fi
fi
