#!/usr/bin/env bash
# Set everything up and run the main job on the embedded default: the
# sensor-faults pipeline on a local cluster over generated telemetry
# (the README's first command).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q --upgrade pip >/dev/null
python3 -m pip install -q -e . --config-settings editable_mode=strict
suanli run sensor-faults "$@"
