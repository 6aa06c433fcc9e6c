#!/usr/bin/env bash
# Install what the tests need and run them all: unit tests, the demo, the real local stack
# (Kafka, Connect, FerretDB, Redis, NGINX: obtained and started by the tests' fixtures through
# `movieaugur stack up`), Airflow (its own venv), and MovieLens quality.
# Extra arguments go to pytest, e.g.: bash scripts/test.sh -m "not stack" -x
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
bash scripts/setup.sh test
venv="${MOVIEAUGUR_VENV:-$repo/.venv}"
set +e
"$venv/bin/python" -m pytest -ra "$@"
code=$?
set -e
if [ "$code" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure here" >&2
  exit 1
fi
exit "$code"
