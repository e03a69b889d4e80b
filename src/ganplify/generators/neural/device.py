"""Choosing the device (CUDA when present, overridable) and tuning it for training."""

from __future__ import annotations

import ctypes
import sys

import torch

from ganplify.signals import STOP_SIGNALS, SignalFlag, catch_signals  # noqa: F401 (API)


def resolve_device(spec: str | torch.device = "auto") -> torch.device:
    """Turn "auto", "cpu", "cuda" or "cuda:N" into a torch.device.

    "auto" is CUDA when available, else the CPU. Asking for CUDA where there is none is an
    error that says so, rather than a silent fallback.
    """
    text = str(spec).strip().lower()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if text == "cpu":
        return torch.device("cpu")
    if text == "cuda" or text.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise RuntimeError(
                f"device {spec!r} was requested but CUDA is not available (torch "
                f"{torch.__version__}, built for CUDA {torch.version.cuda}); "
                "use device 'cpu' or 'auto'"
            )
        device = torch.device(text)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise RuntimeError(
                f"device {spec!r} was requested but only {torch.cuda.device_count()} "
                "CUDA device(s) are visible"
            )
        return device
    raise ValueError(f"unknown device {spec!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'")


def enable_tf32() -> None:
    """Let float32 matmuls use TF32 tensor cores on CUDA (about 10 mantissa bits per product)."""
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.set_float32_matmul_precision("high")


def tune_cpu_allocator() -> bool:
    """Keep freed memory in glibc's heap instead of returning it to the OS after every op.

    With glibc's defaults every multi-megabyte tensor is a fresh mmap whose pages fault in on
    first touch, which on CPU can cost more than the arithmetic. Raising the mmap and trim
    thresholds (a process-wide setting) removes that. Returns whether it was applied (glibc
    on Linux only).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    ok = libc.mallopt(m_mmap_threshold, 1 << 30) == 1
    ok = libc.mallopt(m_trim_threshold, 1 << 31) == 1 and ok
    return ok
