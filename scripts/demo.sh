#!/usr/bin/env bash
# The demo: embedded, no servers. Installs into .venv on first use, then runs `movieaugur demo`.
# Extra arguments go to the demo, e.g.: bash scripts/demo.sh --port 9000 --movielens ../shared/data/ml-latest-small
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$repo/scripts/setup.sh"
exec "${MOVIEAUGUR_VENV:-$repo/.venv}/bin/movieaugur" demo "$@"
