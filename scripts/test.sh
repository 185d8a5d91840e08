#!/usr/bin/env bash
# Set up .venv with the dev extras and run the whole test suite (pytest exits non-zero when a
# test fails and when no test was collected), on up to 4 pytest-xdist workers (one per core).
#   scripts/test.sh                 # everything
#   scripts/test.sh --fast          # leave out the tests marked slow (about 1.5 min on 2 cores)
#   scripts/test.sh -m graph        # only the ROS graph tests (markers: slow, graph, train; pytest.ini)
#   scripts/test.sh -n 0 tests/sim  # serially, one folder (any pytest arguments)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup_venv.sh dev
args=()
for arg in "$@"; do
  if [ "$arg" = "--fast" ]; then args+=(-m "not slow"); else args+=("$arg"); fi
done
# setup_venv.sh installs without byte-compiling every package (22k files, ~2 min here); the tests
# compile what they import, once, where the environment forbids writing bytecode (a container's
# PYTHONDONTWRITEBYTECODE=1 made every test process compile torch from source again).
unset PYTHONDONTWRITEBYTECODE
# worksteal: a worker that runs out of tests takes pending ones from the other (the suite has a
# few minute-long tests; plain load balancing left one worker idle at the tail).
exec .venv/bin/python -m pytest -n auto --maxprocesses 4 --dist worksteal ${args[@]+"${args[@]}"}
