#!/usr/bin/env bash
# Set everything up and run the tests (the README's second command): the
# project's .venv with the test extra, then pytest. Nothing goes into the
# system Python, so an import that pyproject.toml does not declare fails here.
set -euo pipefail
cd "$(dirname "$0")/.."
# The ssh cluster kind is tested against a real sshd on loopback.
if ! command -v sshd >/dev/null && [ ! -x /usr/sbin/sshd ]; then
  if [ "$(id -u)" = 0 ]; then as_root=(); else as_root=(sudo -n); fi
  if command -v apt-get >/dev/null; then
    "${as_root[@]}" apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq openssh-server >/dev/null
  fi
fi
source scripts/environment.sh
use_project_environment test
python -m pytest "$@"
