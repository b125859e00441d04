#!/usr/bin/env bash
# Set everything up and run the tests (the README's second command): the
# project's .venv with the test extra, then pytest. Nothing goes into the
# system Python, so an import that pyproject.toml does not declare fails here.
set -euo pipefail
cd "$(dirname "$0")/.."
# The ssh kind is tested against a real sshd on loopback, the slurm kind against a
# real one-node SLURM (Debian's slurmctld, slurmd, their clients and munge; the
# slurm-wlm metapackage would add some 35 plugin packages the tests do not use).
packages=()
if ! command -v sshd >/dev/null && [ ! -x /usr/sbin/sshd ]; then
  packages+=(openssh-server)
fi
if [ ! -x /usr/sbin/slurmctld ] || [ ! -x /usr/sbin/slurmd ] || ! command -v sbatch >/dev/null \
    || [ ! -x /usr/sbin/munged ]; then
  packages+=(slurmctld slurmd slurm-client munge)
fi
if [ "${#packages[@]}" -gt 0 ] && command -v apt-get >/dev/null; then
  if [ "$(id -u)" = 0 ]; then as_root=(); else as_root=(sudo -n); fi
  "${as_root[@]}" apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq \
      --no-install-recommends "${packages[@]}" >/dev/null
fi
source scripts/environment.sh
use_project_environment test
python -m pytest "$@"
