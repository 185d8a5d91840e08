#!/usr/bin/env bash
# Set up .venv and run the main job: the FMB object set and its preview under runs/quickstart/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup_venv.sh sim
exec .venv/bin/fmb quickstart "$@"
