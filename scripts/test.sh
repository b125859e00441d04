#!/usr/bin/env bash
# Set everything up and run the tests (the README's second command).
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
python3 -m pip install -q --upgrade pip >/dev/null
python3 -m pip install -q -e ".[test]" --config-settings editable_mode=strict
python3 -m pytest "$@"
