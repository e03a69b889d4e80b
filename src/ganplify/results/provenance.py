"""Where a number came from: package versions, git commit, interpreter, host and devices."""

from __future__ import annotations

import datetime as dt
import platform
import socket
import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import ganplify

PACKAGES = (
    "ganplify", "numpy", "scipy", "torch", "iminuit", "pandas", "matplotlib", "snakemake",
    "snakemake-executor-plugin-slurm", "safetensors", "jsonschema", "pyyaml",
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
                ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True,
                timeout=10, check=True,
            ).stdout.strip()
            dirty = subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                capture_output=True, text=True, timeout=10, check=True,
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
    """The full environment of the current process."""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "packages": package_versions(),
        **devices(),
    }
