# Sourced by the README's two commands: create (or reuse) the project's own
# virtual environment, .venv, install suanli into it with the extras asked for,
# and put it first on the PATH. Nothing is installed into the system Python, so
# the tests see only what pyproject.toml declares.
#
#   source scripts/environment.sh; use_project_environment test
#
# PYTHON chooses the interpreter that creates .venv (default: python3, >= 3.11).

use_project_environment() {
  local extras="${1:-}" root venv python spec
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  venv="$root/.venv"
  python="${PYTHON:-python3}"
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "" 2>/dev/null; then
    if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "suanli needs Python >= 3.11 to create $venv; '$python' is $("$python" --version 2>&1)." >&2
      echo "Set PYTHON to a newer interpreter, e.g. PYTHON=python3.12 $0" >&2
      return 1
    fi
    echo "Creating the project environment $venv with $("$python" --version 2>&1)" >&2
    rm -rf "$venv"
    "$python" -m venv "$venv" || {
      echo "'$python -m venv' failed: on Debian or Ubuntu, install python3-venv first." >&2
      return 1
    }
  fi
  spec="."
  [ -n "$extras" ] && spec=".[$extras]"
  "$venv/bin/python" -m pip install -q --upgrade pip >/dev/null
  # editable_mode=strict: a tree of links that mypy can follow (see pyproject.toml).
  (cd "$root" && "$venv/bin/python" -m pip install -q -e "$spec" \
      --config-settings editable_mode=strict)
  export VIRTUAL_ENV="$venv"
  export PATH="$venv/bin:$PATH"
  hash -r
}
