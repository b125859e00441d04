#!/usr/bin/env bash
# Set everything up and run the tests (the README's second command).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q --upgrade pip >/dev/null
python3 -m pip install -q -e ".[test]" --config-settings editable_mode=strict
python3 -m pytest "$@"
