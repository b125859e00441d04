#!/usr/bin/env bash
# Rehearses benchmarks/gpu_check.sh on a CPU machine, in a Python 3.12 virtual
# environment holding only what the accelerator machine has, so that a module
# missing from the carried wheels shows up here and not in a device session.
# The gpu tests skip (no GPU); everything around them runs: the installs, the
# imports of suanli, dask-cuda and the dashboard, the test collection, and a
# sensor-faults run on a CPU local cluster (plots, report, progress bars).
#   PYTHON312=python3.12 bash benchmarks/gpu_rehearsal.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON312=${PYTHON312:-python3.12}
VENV=${VENV:-/tmp/suanli-gpu-rehearsal}
OUT=${OUT:-gpu-rehearsal-out}
mkdir -p "$OUT"
if [ ! -x "$VENV/bin/python3" ]; then
  "$PYTHON312" -m venv "$VENV"
  # The accelerator machine's own packages (CuPy aside: it needs a GPU to import usefully).
  "$VENV/bin/pip" install -q numpy pandas pyarrow xarray numba "cuda-core[cu13]" nvidia-ml-py \
      cloudpickle msgpack psutil pyyaml toolz fsspec pytest setuptools
fi
rm -rf /tmp/suanli-site
export PATH="$VENV/bin:$PATH"
OUT="$OUT" bash benchmarks/gpu_check.sh || true   # without a GPU the benchmark fails
grep -q "no tests ran\|skipped" "$OUT/gpu-tests.log"  # collected, then skipped: no GPU
if grep -qi "error" "$OUT/gpu-tests.log"; then  # `! grep` would not stop set -e
  echo "rehearsal: the gpu tests' collection failed: see $OUT/gpu-tests.log" >&2
  exit 1
fi
export PYTHONPATH="/tmp/suanli-site:$PWD"
python3 -c "import dask_cuda, distributed.dashboard, matplotlib.figure, tqdm, click; \
import suanli.cluster, suanli.datasets, suanli.pipelines; print('imports: ok')"
python3 -c "
from suanli import pipelines
if __name__ == '__main__':
    result = pipelines.run('sensor-faults', 'synthetic://telemetry?units=8&minutes=1&seed=1',
                           cluster='local', output='$OUT/run', train__epochs=5)
    print(result.summary())
"
echo "rehearsal: ok"
