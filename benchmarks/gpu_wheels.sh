#!/usr/bin/env bash
# Fills .whl/ with what benchmarks/gpu_check.sh needs on the accelerator machine
# and that machine lacks: dask, distributed, dask-cuda and the rest from
# ../shared/device/fetch-wheels.sh, plus what suanli imports (rocket-fft,
# matplotlib, bokeh, click, tqdm, ...) and SciPy (Numba's np.dot in the feature
# kernel calls SciPy's BLAS). Everything carried must fit in 64 MiB: SciPy's
# 34 MB wheel goes as an xz archive of its files without its tests (about
# 19 MB), which gpu_check.sh unpacks into the same place pip installs to.
#   echo /.whl/ >> .git/info/exclude; bash benchmarks/gpu_wheels.sh
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf .whl
../shared/device/fetch-wheels.sh rocket-fft typing_extensions tqdm click pytest-timeout \
    matplotlib contourpy cycler fonttools kiwisolver pillow pyparsing "bokeh<3.10" jinja2 \
    markupsafe narwhals xyzservices scipy > /dev/null
for wheel in .whl/scipy-*.whl; do
  unpacked=$(mktemp -d)
  python3 -m zipfile -e "$wheel" "$unpacked"
  tar -cJf "${wheel%.whl}.tar.xz" --exclude='*/tests' -C "$unpacked" .
  rm -rf "$unpacked" "$wheel"
done
ls -1 .whl
du -sh .whl
