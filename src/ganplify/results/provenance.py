"""Where a number came from: package versions, git commit, interpreter, host and devices,
and what sets CPU speed: the CPU model and instruction set, the BLAS, the thread counts."""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import socket
import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import ganplify

# Environment variables that change the CPU's thread count or instruction set at run time.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
ISA_VARIABLES = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS")

# The /proc/cpuinfo flags (x86) and features (ARM) that decide which kernels BLAS and torch run.
SIMD_FLAGS = (
    "sse4_2",
    "avx",
    "fma",
    "avx2",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
    "asimd",
    "sve",
    "sve2",
    "sme",
)

PACKAGES = (
    "ganplify",
    "numpy",
    "scipy",
    "torch",
    "iminuit",
    "pandas",
    "matplotlib",
    "snakemake",
    "snakemake-executor-plugin-slurm",
    "safetensors",
    "jsonschema",
    "pyyaml",
)


def now() -> str:
    """Current UTC time, ISO 8601."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


@lru_cache(maxsize=1)
def git_state() -> dict:
    """Commit and dirtiness of the checkout the running package comes from (or the cwd)."""
    here = Path(ganplify.__file__).resolve().parent
    for cwd in (here, Path.cwd()):
        try:
            commit = subprocess.run(
                ["git", "rev-parse", "HEAD"],
                cwd=cwd,
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            ).stdout.strip()
            dirty = subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                cwd=cwd,
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            ).stdout.strip()
            return {"commit": commit, "dirty": bool(dirty)}
        except (OSError, subprocess.SubprocessError):
            continue
    return {"commit": "unknown", "dirty": None}


def package_versions() -> dict[str, str | None]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def devices() -> dict:
    """torch and CUDA versions and the visible GPUs (torch imported lazily)."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return {"torch": None}
    info = {
        "torch": torch.__version__,
        "cuda_runtime": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
        "gpus": [],
    }
    if torch.cuda.is_available():
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


def parse_cpuinfo(text: str) -> tuple[str | None, list[str]]:
    """The CPU model and its SIMD flags from the text of Linux's /proc/cpuinfo.

    Parameters
    ----------
    text : str
        The file's content (its first processor suffices).

    Returns
    -------
    (model, simd) : the first processor's model name (x86 "model name", else ARM "Hardware" or
    "CPU part"), None if absent; the flags of `SIMD_FLAGS` it has, in that order.
    """
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip().lower(), value.strip())
    model = next((fields[k] for k in ("model name", "hardware", "cpu part") if fields.get(k)), None)
    flags = set((fields.get("flags") or fields.get("features") or "").split())
    return model, [f for f in SIMD_FLAGS if f in flags]


def cpu() -> dict:
    """The CPU: model, architecture, cores, SIMD flags, and the kernels torch dispatches to.

    ``torch_capability`` is what torch's CPU kernels use (``ATEN_CPU_CAPABILITY`` may lower
    it); ``simd`` is what /proc/cpuinfo reports (Linux only, else empty).
    """
    try:
        model, simd = parse_cpuinfo(Path("/proc/cpuinfo").read_text())
    except OSError:  # not Linux
        model, simd = None, []
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count()
    info = {
        "model": model or platform.processor() or None,
        "machine": platform.machine(),
        "logical_cores": os.cpu_count(),
        "usable_cores": usable,
        "simd": simd,
    }
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return info
    capability = getattr(getattr(torch.backends, "cpu", None), "get_cpu_capability", None)
    return info | {"torch_capability": capability() if capability else None}


def parse_torch_config(text: str) -> dict[str, str | None]:
    """The BLAS, LAPACK, MKL, oneDNN and OpenMP of a torch build, from ``torch.__config__.show()``.

    Returns
    -------
    dict with keys blas, lapack (BLAS_INFO, LAPACK_INFO), mkl, onednn, openmp (their version
    lines) and cpu_capability_usage; None where the text does not say.
    """

    def search(pattern: str) -> str | None:
        m = re.search(pattern, text)
        return m.group(1).strip() if m else None

    return {
        "blas": search(r"BLAS_INFO=([^,\s]+)"),
        "lapack": search(r"LAPACK_INFO=([^,\s]+)"),
        "mkl": search(r"Math Kernel Library Version ([^\n]+?) for"),
        "onednn": search(r"(?:MKL-DNN|oneDNN)[^\n]*?\b(v[\d.]+)"),
        "openmp": search(r"OpenMP (\d+)"),
        "cpu_capability_usage": search(r"CPU capability usage: (\S+)"),
    }


def _numpy_blas() -> dict | None:
    """numpy's BLAS (name, version, configuration) as its build recorded it."""
    import numpy as np

    try:
        deps = np.show_config(mode="dicts")["Build Dependencies"]  # numpy >= 1.26
    except (TypeError, KeyError):
        return None
    blas = deps.get("blas", {})
    return {k: blas.get(k) for k in ("name", "version", "openblas configuration") if k in blas}


def _threadpools() -> list[dict] | None:
    """The BLAS/OpenMP libraries loaded in this process (threadpoolctl, when installed)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    keys = ("user_api", "internal_api", "version", "num_threads", "architecture", "prefix")
    return [{k: pool[k] for k in keys if k in pool} for pool in threadpool_info()]


def blas() -> dict:
    """numpy's and torch's linear-algebra libraries, and what is loaded (threadpoolctl)."""
    info: dict = {"numpy": _numpy_blas()}
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return info | {"threadpools": _threadpools()}
    info["torch"] = parse_torch_config(torch.__config__.show()) | {
        "mkl_available": torch.backends.mkl.is_available(),
        "onednn_available": torch.backends.mkldnn.is_available(),
    }
    return info | {"threadpools": _threadpools()}


def threads() -> dict:
    """torch's thread counts and the environment variables that set threads or the ISA."""
    info: dict = {name: os.environ.get(name) for name in THREAD_VARIABLES + ISA_VARIABLES}
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return info
    return {
        "torch_intra_op": torch.get_num_threads(),
        "torch_inter_op": torch.get_num_interop_threads(),
        "torch_parallel_backend": _parallel_backend(torch.__config__.parallel_info()),
    } | info


def _parallel_backend(text: str) -> str | None:
    m = re.search(r"ATen parallel backend: ([^\n]+)", text)
    return m.group(1).strip() if m else None


def job_record(wall_time_s: float, device: str = "cpu") -> dict:
    """What every job writes about itself into its flag file."""
    return {
        "host": socket.gethostname(),
        "device": device,
        "finished": now(),
        "wall_time_s": round(wall_time_s, 3),
        "ganplify": ganplify.__version__,
        "git": git_state(),
    }


def environment() -> dict:
    """The full environment of the current process (its CPU, BLAS and threads included)."""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "packages": package_versions(),
        **devices(),
        "cpu": cpu(),
        "blas": blas(),
        "threads": threads(),
    }
