"""Weights and loss histories of trained replicas on disk (safetensors and CSV, atomically),
and the digest that binds weights to their training set.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import safetensors
import safetensors.torch
import torch

from ganplify.results.io import ResultsError, atomic_write_bytes, safetensors_metadata
from ganplify.signals import STOP_SIGNALS, SignalFlag, catch_signals  # noqa: F401 (API)

GENERATOR_FORMAT = "ganplify-generator-1"
DIGEST_FORMAT = "ganplify-training-set-1"


def training_set_digest(data: np.ndarray) -> str:
    """The one digest of a replica's training set, wherever it is recorded (weights,
    checkpoints): sha256 of a header naming this format and the array's shape, then the values
    as little-endian float64 in C order, so it does not depend on the machine or the array's
    memory layout."""
    values = np.ascontiguousarray(data, dtype="<f8")
    digest = hashlib.sha256(f"{DIGEST_FORMAT} shape={list(values.shape)}\n".encode())
    digest.update(values.tobytes())
    return digest.hexdigest()


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


def generator_metadata(path: Path) -> dict[str, str]:
    """The metadata of saved weights, after checking that the file is complete, without
    reading its tensors (`ResultsError` naming it when it is missing, truncated or not
    safetensors)."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            head = fh.read(8)
            if len(head) == 8:
                head += fh.read(min(struct.unpack("<Q", head)[0], size))
    except FileNotFoundError:
        raise ResultsError(f"{path}: missing") from None
    return safetensors_metadata(head, size, path)


def binding_mismatch(meta: Mapping[str, str], expected: Mapping[str, object]) -> str | None:
    """The first key whose value in saved weights' metadata is not the replica's, as "made for
    <key> = <saved>, not <needed>" (None when all match). Weights saved before the training-set
    digest was recorded carry no ``data_sha256``; it is then not compared."""
    for key, value in expected.items():
        if key == "data_sha256" and key not in meta:
            continue
        if meta.get(key) != str(value):
            return f"made for {key} = {meta.get(key)!r}, not {str(value)!r}"
    return None


def load_generator(path: Path, expected: Mapping[str, object]) -> dict[str, torch.Tensor]:
    """Load weights saved by `save_generator` after checking they are this replica's.

    ``expected`` maps metadata keys (seed, phash, data_sha256, epoch) to the values the replica
    needs; a mismatch is a `ResultsError` naming the file (weights copied from another replica
    or setting). Weights saved before the training-set digest was recorded carry no
    ``data_sha256``: their seed and parameter hash, which fix the training set, are checked.
    safetensors only: no code is executed.
    """
    path = Path(path)
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        raise ResultsError(f"{path}: missing") from None
    meta = safetensors_metadata(blob, len(blob), path)
    if meta.get("format") != GENERATOR_FORMAT:
        raise ResultsError(f"{path}: format {meta.get('format')!r}, not {GENERATOR_FORMAT!r}")
    mismatch = binding_mismatch(meta, expected)
    if mismatch is not None:
        raise ResultsError(
            f"{path}: its weights were {mismatch} (copied from another replica or setting?)"
        )
    try:
        return safetensors.torch.load(blob)
    except safetensors.SafetensorError as exc:
        raise ResultsError(f"{path}: unreadable safetensors ({exc})") from None
