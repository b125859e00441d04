#!/usr/bin/env bash
# Set everything up and run the main job on the embedded default: the
# sensor-faults pipeline on a local cluster over generated telemetry
# (the README's first command). Installs into the project's .venv only.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/environment.sh
use_project_environment ""
suanli run sensor-faults "$@"
