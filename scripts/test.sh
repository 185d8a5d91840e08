#!/usr/bin/env bash
# Set up .venv with the dev extras and run the whole test suite (pytest exits non-zero when a
# test fails and when no test was collected).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup_venv.sh dev
exec .venv/bin/python -m pytest "$@"
