#!/usr/bin/env bash
# The GPU check: on a machine with an NVIDIA GPU and no network, install the
# carried wheels (.whl/, from `../shared/device/fetch-wheels.sh rocket-fft`:
# that machine has numba but not rocket-fft, which the CPU kernels need) and suanli,
# then run every gpu-marked test and the GPU benchmark. Logs and tables go
# to $OUT (default: ./gpu-check-out). One call, well under 10 minutes.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-check-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
SITE=/tmp/suanli-site
python3 -m pip install -q --no-index --no-deps --target "$SITE" .whl/*.whl 2>&1 | tail -3
export PYTHONPATH="$SITE:$PWD"
python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . 2>&1 | tail -3
{
  date -u
  nvidia-smi
  python3 -c "import cupy, dask, distributed, dask_cuda; print('cupy', cupy.__version__, 'dask', dask.__version__, 'distributed', distributed.__version__, 'dask-cuda', dask_cuda.__version__)"
  python3 -c "import numba, rocket_fft; print('numba', numba.__version__, 'rocket-fft', rocket_fft.__version__)"
} > "$OUT/environment.txt" 2>&1
cat "$OUT/environment.txt"
# The gpu-marked tests, with the CPU tests they compare against.
timeout 360 python3 -m pytest -q -m gpu -p no:cacheprovider tests 2>&1 | tee "$OUT/gpu-tests.log"
tests_rc=${PIPESTATUS[0]}
timeout 240 python3 benchmarks/gpu.py 2>&1 | grep -v "INFO\|WARNING" | tee "$OUT/gpu-benchmark.md"
bench_rc=${PIPESTATUS[0]}
echo "gpu tests rc=$tests_rc, benchmark rc=$bench_rc" | tee "$OUT/summary.txt"
exit $(( tests_rc != 0 || bench_rc != 0 ))
