#!/usr/bin/env bash
# Set up .venv (simulation, learning and perception extras: evaluation perceives its goals with
# open3d, as a robot does) and run the main job: the FMB object set, insertion
# demonstrations, the small diffusion policy and the BC baseline, their evaluation on seen and
# held-out objects, and a report in runs/quickstart/report.md. Extra arguments go to `fmb quickstart`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup_venv.sh learn,perception
unset PYTHONDONTWRITEBYTECODE  # the packages are installed uncompiled: let first imports cache their bytecode
exec .venv/bin/fmb quickstart "$@"
