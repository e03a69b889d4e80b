"""Weights and loss histories of trained replicas on disk (safetensors and CSV, atomically),
and the digest that binds weights to their training set.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import safetensors.torch
import torch

from ganplify.results.io import atomic_write_bytes
from ganplify.signals import STOP_SIGNALS, SignalFlag, catch_signals  # noqa: F401 (API)

GENERATOR_FORMAT = "ganplify-generator-1"


def data_digest(data: np.ndarray) -> str:
    """sha256 of one replica's training set as float32 (what the networks see)."""
    return hashlib.sha256(np.ascontiguousarray(data, dtype=np.float32).tobytes()).hexdigest()


def write_losses_csv(path: Path, history: np.ndarray, columns: Sequence[str]) -> None:
    """Write one replica's loss history [epochs, C] as CSV: epoch, then ``columns`` (the GAN's:
    d_loss, g_loss, penalty).

    ``history`` may also be [epochs, K, C] with K = 1. Epochs are counted from 1; the file is
    written atomically.
    """
    h = np.asarray(history, dtype=np.float64)
    if h.ndim == 3 and h.shape[1] == 1:
        h = h[:, 0]
    if h.ndim != 2 or h.shape[1] != len(columns):
        raise ValueError(f"expected a history of shape [epochs, {len(columns)}], got {h.shape}")
    lines = [",".join(["epoch", *columns])]
    lines += [",".join([str(e + 1), *map(repr, row)]) for e, row in enumerate(h.tolist())]
    atomic_write_bytes(Path(path), ("\n".join(lines) + "\n").encode())


def save_generator(
    path: Path, weights: Mapping[str, torch.Tensor], metadata: Mapping[str, str] | None = None
) -> None:
    """Save one replica's generator weights (safetensors, atomically) with string metadata."""
    meta = {"format": GENERATOR_FORMAT, **{str(k): str(v) for k, v in (metadata or {}).items()}}
    tensors = {name: t.detach().to("cpu").contiguous() for name, t in weights.items()}
    atomic_write_bytes(Path(path), safetensors.torch.save(tensors, metadata=meta))


def load_generator(path: Path) -> dict[str, torch.Tensor]:
    """Load generator weights saved by `save_generator` (safetensors: no code is executed)."""
    return safetensors.torch.load_file(str(path), device="cpu")
