#!/usr/bin/env bash
# Static checks: ruff (lint, import order) and mypy (types), as configured in pyproject.toml.
# Run by .ci/run before the tests; `bash scripts/lint.sh` after `bash scripts/setup.sh test`.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
venv="${MOVIEAUGUR_VENV:-$repo/.venv}"
"$venv/bin/ruff" check .
"$venv/bin/mypy"
