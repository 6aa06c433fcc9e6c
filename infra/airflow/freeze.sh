#!/usr/bin/env bash
# Regenerate constraints.txt from the current Airflow venv. The official Airflow constraints
# files are unreachable from our machines, so a freeze of a known-good install is our pin.
# Run after changing requirements.txt: MOVIEAUGUR_AIRFLOW_FORCE=1 install.sh, test, then this.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${MOVIEAUGUR_AIRFLOW_VENV:-$repo/.stack/airflow-venv}"
py="$venv/bin/python"
{
  echo "# Generated from a known-good install of requirements.txt + the project (pip freeze, $(date -u +%F), Python $("$py" -c 'import platform; print(platform.python_version())'))."
  echo "# Used by install.sh as a pip constraints file; regenerate with infra/airflow/freeze.sh after changing requirements."
  "$py" -m pip freeze --exclude-editable | grep -viE '^(movieaugur|-e )'
} > "$here/constraints.txt"
echo "wrote $here/constraints.txt ($(grep -vc '^#' "$here/constraints.txt") pins)"
