"""How many NVIDIA GPUs this process can see, without needing CUDA libraries."""

from __future__ import annotations

import os
import shutil
import subprocess


def visible_gpu_count() -> int:
    """GPUs visible here: NVML (or ``nvidia-smi -L``), limited by CUDA_VISIBLE_DEVICES.

    Returns 0 where there is no driver, as on CI machines; never raises.
    """
    present = _nvml_count()
    if present is None:
        present = _nvidia_smi_count()
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        listed = [d for d in visible.split(",") if d.strip() and d.strip() != "-1"]
        present = min(present, len(listed))
    return present


def _nvml_count() -> int | None:
    try:
        import pynvml  # from nvidia-ml-py, which dask-cuda installs
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception:  # no driver: NVMLError_LibraryNotFound and kin
        return 0
    try:
        return int(pynvml.nvmlDeviceGetCount())
    finally:
        pynvml.nvmlShutdown()


def _nvidia_smi_count() -> int:
    tool = shutil.which("nvidia-smi")
    if tool is None:
        return 0
    try:
        listing = subprocess.run([tool, "-L"], capture_output=True, text=True, timeout=20,
                                 check=False)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return sum(1 for line in listing.stdout.splitlines() if line.startswith("GPU "))
