#!/usr/bin/env bash
# Install Apache Airflow into its own virtual environment (the production image keeps
# Airflow apart from the services too), together with the MovieAugur project in editable
# mode so the DAGs can import offline/.
#
# Idempotent: a marker file in the venv records a hash of everything that decides the
# result (python, requirements, constraints, pyproject); when it matches, nothing is done.
#
# Env:
#   MOVIEAUGUR_AIRFLOW_VENV   venv path (default <repo>/.stack/airflow-venv)
#   MOVIEAUGUR_AIRFLOW_PYTHON interpreter used to create it (default python3.11)
#   MOVIEAUGUR_AIRFLOW_FORCE  set to 1 to reinstall even when the marker matches
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${MOVIEAUGUR_AIRFLOW_VENV:-$repo/.stack/airflow-venv}"
python="${MOVIEAUGUR_AIRFLOW_PYTHON:-python3.11}"
req="$here/requirements.txt"
constraints="$here/constraints.txt"
marker="$venv/.movieaugur-airflow-installed"

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

t_all="$(now)"
fingerprint="$(
  {
    "$python" -c 'import sys; print(sys.version)'
    cat "$req"
    [[ -f "$constraints" ]] && cat "$constraints"
    cat "$repo/pyproject.toml"
  } | sha256sum | cut -d' ' -f1
)"

if [[ -f "$marker" && -x "$venv/bin/airflow" ]] && grep -qx "fingerprint=$fingerprint" "$marker" \
   && [[ "${MOVIEAUGUR_AIRFLOW_FORCE:-0}" != "1" ]]; then
  echo "airflow venv up to date at $venv ($(grep '^airflow=' "$marker")); nothing to do"
  exit 0
fi

if [[ ! -x "$venv/bin/python" ]]; then
  t="$(now)"
  mkdir -p "$(dirname "$venv")"
  "$python" -m venv "$venv"
  echo "created venv $venv in $(elapsed "$t") s"
fi

pip=("$venv/bin/python" -m pip --disable-pip-version-check)
cflag=()
[[ -f "$constraints" ]] && cflag=(-c "$constraints")

t="$(now)"
"${pip[@]}" install --quiet --upgrade pip setuptools wheel "${cflag[@]}"
echo "upgraded pip/setuptools/wheel in $(elapsed "$t") s"

# One resolver run for Airflow and the project together, so neither can break the other.
t="$(now)"
if ! "${pip[@]}" install --quiet "${cflag[@]}" -r "$req" -e "$repo"; then
  # The project's own pins may have moved past constraints.txt (another engineer changed
  # pyproject.toml): resolve freshly rather than block everyone, and say so loudly.
  [[ ${#cflag[@]} -eq 0 ]] && exit 1
  echo "WARNING: install with constraints.txt failed; retrying unconstrained (run freeze.sh after)" >&2
  "${pip[@]}" install --quiet -r "$req" -e "$repo"
fi
echo "installed apache-airflow + movieaugur (editable) in $(elapsed "$t") s"

t="$(now)"
"${pip[@]}" check
airflow_version="$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("apache-airflow"))')"
echo "pip check ok, apache-airflow $airflow_version in $(elapsed "$t") s"

{
  echo "fingerprint=$fingerprint"
  echo "airflow=$airflow_version"
  echo "python=$("$venv/bin/python" -c 'import platform; print(platform.python_version())')"
  echo "installed_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
} > "$marker"
echo "airflow venv ready at $venv in $(elapsed "$t_all") s total"
