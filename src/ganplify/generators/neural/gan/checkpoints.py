"""Per-replica checkpoints of GAN training (safetensors + JSON), written atomically and
checked against seed, parameter hash, training data and tensor checksum on resume.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import safetensors.torch
import torch

from ganplify.generators.neural import layers as models
from ganplify.generators.neural.core import ReplicaStatus
from ganplify.results.io import atomic_write_bytes
from ganplify.signals import STOP_SIGNALS, SignalFlag, catch_signals  # noqa: F401 (API)

# 2: the checksum covers the metadata (step, statuses) as well as the tensors; a version-1
# checkpoint is not resumed from (its training restarts).
CHECKPOINT_FORMAT = "ganplify-gan-checkpoint-2"

if TYPE_CHECKING:
    from ganplify.generators.neural.gan.step import TrainState


def checkpoint_files(base: Path) -> tuple[Path, Path]:
    """(tensor file, JSON file) of a checkpoint base (a .safetensors/.json suffix is dropped)."""
    base = Path(base)
    if base.suffix in (".safetensors", ".json"):
        base = base.with_suffix("")
    return base.with_name(base.name + ".safetensors"), base.with_name(base.name + ".json")


def _replica_tensors(state: TrainState, k: int, history: np.ndarray) -> dict[str, torch.Tensor]:
    """Replica k's full training state as named CPU tensors (plain-module layout)."""
    out: dict[str, torch.Tensor] = {}
    nets = (
        ("generator", state.generator, state.opt_g),
        ("discriminator", state.discriminator, state.opt_d),
    )
    for prefix, net, opt in nets:
        for name, param, spec in net.layout():
            out[f"{prefix}/{name}"] = net.to_plain(param.detach()[k], name, spec)
            for moment in ("exp_avg", "exp_avg_sq"):
                tensor = opt.state[param][moment][k]
                out[f"adam_{prefix}/{moment}/{name}"] = net.to_plain(tensor, name, spec)
        out[f"adam_{prefix}/step"] = opt.state[next(net.parameters())]["step"].reshape(1)
    out["history"] = torch.from_numpy(np.ascontiguousarray(history[:, k]))
    out["epoch_sums"] = state.sums[k]
    out["flags"] = torch.stack([state.alive[k], state.d_failed[k], state.g_failed[k]])
    return {name: t.detach().to("cpu").contiguous().clone() for name, t in out.items()}


def save_checkpoints(
    state: TrainState,
    bases: Sequence[Path],
    history: np.ndarray,
    statuses: Sequence[ReplicaStatus],
    *,
    seeds: Sequence[int],
    config_hash: str,
    digests: Sequence[str],
) -> None:
    """Write every replica's checkpoint (tensors, then the JSON that points at them)."""
    step = int(state.step.item())
    for k, base in enumerate(bases):
        tensor_path, json_path = checkpoint_files(base)
        blob = safetensors.torch.save(
            _replica_tensors(state, k, history[: step // state.steps_per_epoch]),
            metadata={"format": CHECKPOINT_FORMAT},
        )
        atomic_write_bytes(tensor_path, blob)
        meta = {
            "format": CHECKPOINT_FORMAT,
            "config_hash": config_hash,
            "seed": int(seeds[k]),
            "step": step,
            "epoch": step // state.steps_per_epoch,
            "steps_per_epoch": state.steps_per_epoch,
            "data_sha256": digests[k],
            **asdict(statuses[k]),
            "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        meta["sha256"] = _checksum(blob, meta)
        atomic_write_bytes(json_path, (json.dumps(meta, indent=2) + "\n").encode())


def _checksum(blob: bytes, meta: Mapping) -> str:
    """sha256 of a checkpoint's tensors and of its metadata (but the checksum itself), so that
    neither can change alone."""
    digest = hashlib.sha256(blob)
    rest = {k: v for k, v in meta.items() if k != "sha256"}
    digest.update(json.dumps(rest, sort_keys=True, separators=(",", ":")).encode())
    return digest.hexdigest()


def read_checkpoints(
    bases: Sequence[Path], *, seeds: Sequence[int], config_hash: str, digests: Sequence[str]
) -> tuple[list[tuple[dict, dict[str, torch.Tensor]]] | None, str]:
    """Load all replicas' checkpoints if they form one consistent resumable state.

    Returns (list of (metadata, tensors), "") or (None, why not). Loading never executes code:
    JSON and safetensors only.
    """
    loaded = []
    for k, base in enumerate(bases):
        tensor_path, json_path = checkpoint_files(base)
        if not json_path.exists() or not tensor_path.exists():
            return None, f"no checkpoint for replica {k} at {json_path}"
        try:
            meta = json.loads(json_path.read_text())
            blob = tensor_path.read_bytes()
        except (OSError, ValueError) as exc:
            return None, f"unreadable checkpoint {json_path}: {exc}"
        expected = {
            "format": CHECKPOINT_FORMAT,
            "config_hash": config_hash,
            "seed": int(seeds[k]),
            "data_sha256": digests[k],
            "sha256": _checksum(blob, meta) if isinstance(meta, dict) else None,
        }
        for key, value in expected.items():
            if meta.get(key) != value:
                return None, f"checkpoint {json_path} has {key}={meta.get(key)!r}, need {value!r}"
        loaded.append((meta, safetensors.torch.load(blob)))
    steps = {meta["step"] for meta, _ in loaded}
    if len(steps) != 1:
        return None, f"replica checkpoints are at different steps {sorted(steps)}"
    return loaded, ""


def load_state_(
    state: TrainState, loaded: Sequence[tuple[dict, Mapping[str, torch.Tensor]]]
) -> np.ndarray:
    """Put checkpointed tensors into the state (in place); returns the history [epochs, K, 3]."""
    if loaded[0][0]["steps_per_epoch"] != state.steps_per_epoch:
        raise ValueError("checkpoint has a different number of steps per epoch")
    with torch.no_grad():
        nets = (
            ("generator", state.generator, state.opt_g),
            ("discriminator", state.discriminator, state.opt_d),
        )
        for prefix, net, opt in nets:
            for name, param, spec in net.layout():

                def stacked(key: str, net=net, name: str = name, spec: models.LayerSpec = spec):
                    return torch.stack([net.to_ensemble(t[key], name, spec) for _, t in loaded])

                param.copy_(stacked(f"{prefix}/{name}"))
                for moment in ("exp_avg", "exp_avg_sq"):
                    opt.state[param][moment].copy_(stacked(f"adam_{prefix}/{moment}/{name}"))
                opt.state[param]["step"].copy_(loaded[0][1][f"adam_{prefix}/step"][0])
        state.step.fill_(loaded[0][0]["step"])
        state.sums.copy_(torch.stack([t["epoch_sums"] for _, t in loaded]))
        flags = torch.stack([t["flags"] for _, t in loaded]).to(state.device)
        state.alive.copy_(flags[:, 0])
        state.d_failed.copy_(flags[:, 1])
        state.g_failed.copy_(flags[:, 2])
    return np.stack([t["history"].numpy() for _, t in loaded], axis=1)
