#!/usr/bin/env bash
# The GPU check: on a machine with an NVIDIA GPU and no network, install the
# carried wheels (.whl/, filled by benchmarks/gpu_wheels.sh) and suanli, then run
# every gpu-marked test and the GPU benchmark. Logs and tables go to $OUT
# (default: ./gpu-check-out). One call, well under 10 minutes. Rehearse it on a
# CPU machine first (benchmarks/gpu_rehearsal.sh): a module missing there would
# cost a whole device session.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-check-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
SITE=/tmp/suanli-site
python3 -m pip install -q --no-index --no-deps --target "$SITE" .whl/*.whl 2>&1 | tail -3
for archive in .whl/*.tar.xz; do  # wheels repacked smaller (gpu_wheels.sh): their files
  [ -e "$archive" ] && tar -xJf "$archive" -C "$SITE"
done
export PYTHONPATH="$SITE:$PWD"
python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . 2>&1 | tail -3
{
  date -u
  nvidia-smi
  python3 -c "import cupy, dask, distributed, dask_cuda; print('cupy', cupy.__version__, 'dask', dask.__version__, 'distributed', distributed.__version__, 'dask-cuda', dask_cuda.__version__)"
  python3 -c "import numba, rocket_fft, scipy; print('numba', numba.__version__, 'rocket-fft', rocket_fft.__version__, 'scipy', scipy.__version__)"
  python3 -c "import suanli.pipelines, dask_cuda, distributed.dashboard; print('suanli imports: ok')"
} > "$OUT/environment.txt" 2>&1
cat "$OUT/environment.txt"
# Only the modules with gpu-marked tests: collecting the whole suite would import
# what only the CPU tests need (scikit-learn, moto, nbclient, ...).
timeout 270 python3 -m pytest -q -m gpu -p no:cacheprovider \
    $(grep -rl "pytest.mark.gpu" tests --include="test_*.py") 2>&1 | tee "$OUT/gpu-tests.log"
tests_rc=${PIPESTATUS[0]}
timeout 200 python3 benchmarks/gpu.py 2>&1 | grep -v "INFO\|WARNING" | tee "$OUT/gpu-benchmark.md"
bench_rc=${PIPESTATUS[0]}
echo "gpu tests rc=$tests_rc, benchmark rc=$bench_rc" | tee "$OUT/summary.txt"
exit $(( tests_rc != 0 || bench_rc != 0 ))
