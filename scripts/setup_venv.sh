#!/usr/bin/env bash
# Create (or update) the project-local virtual environment .venv with the given extras.
# Usage: scripts/setup_venv.sh EXTRAS     e.g. scripts/setup_venv.sh sim   or   dev   or   learn,perception
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS="${1:-dev}"
PYTHON="${PYTHON:-python3}"

if [ ! -x .venv/bin/python ]; then
  if ! "$PYTHON" -m venv .venv 2>/dev/null; then
    # Debian/Ubuntu ship venv separately.
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
      apt-get install -y -q python3-venv >/dev/null
      rm -rf .venv
      "$PYTHON" -m venv .venv
    else
      echo "error: '$PYTHON -m venv' failed; install python3-venv (apt-get install python3-venv)" >&2
      exit 1
    fi
  fi
fi
# Headless rendering (MuJoCo through EGL) needs Mesa's EGL; install it where it is missing.
if [ "$EXTRAS" != "cad" ] && ! "$PYTHON" -c "import ctypes.util, sys; sys.exit(not ctypes.util.find_library('EGL'))"; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get install -y -q libegl1 libgl1 libgl1-mesa-dri >/dev/null || echo "warning: could not install Mesa EGL" >&2
  else
    echo "warning: libEGL not found; camera rendering needs it (apt-get install libegl1 libgl1-mesa-dri)" >&2
  fi
fi
# open3d (the perception extra) loads libusb-1.0 at import.
if [[ ",$EXTRAS," == *,dev,* || ",$EXTRAS," == *,perception,* || ",$EXTRAS," == *,all,* ]]; then
  if ! "$PYTHON" -c "import ctypes.util, sys; sys.exit(not ctypes.util.find_library('usb-1.0'))"; then
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
      apt-get install -y -q libusb-1.0-0 >/dev/null || echo "warning: could not install libusb-1.0-0 (open3d needs it)" >&2
    else
      echo "warning: libusb-1.0 not found; open3d needs it (apt-get install libusb-1.0-0)" >&2
    fi
  fi
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
# --no-compile: Python compiles a module when it is first imported; most of the 22k files never are.
.venv/bin/python -m pip install -q --no-compile --disable-pip-version-check -e ".[${EXTRAS}]" 2>&1 | grep -v '^WARNING: Location' || true
.venv/bin/python -c "import fmb, cad" || { echo "error: installing .[${EXTRAS}] failed" >&2; exit 1; }
