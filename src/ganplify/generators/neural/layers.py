"""K replicas of a network's layers stacked into batched tensors, their counter-based
initialisation, and the per-replica (plain-module) layout of their weights.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ganplify import rng


@dataclass(frozen=True)
class LayerSpec:
    """One affine layer: its name in the plain module and its sizes."""

    name: str
    fan_in: int
    fan_out: int
    conv: bool = False  # a kernel-1 Conv1d in the plain module (weight [out, in, 1])


class EnsembleLayers(nn.Module):
    """Parameters of K replicas of a stack of affine layers.

    Weights are stored [K, in, out] (``out_major=False``) or [K, out, in] (``out_major=True``,
    nn.Linear's order, used through a transposed view); biases [K, 1, out]. The layout decides
    the memory order of the gradients autograd returns: choosing, per network, the one its
    gradients come out in saves a copy of every weight gradient per step (see `layout_for`).
    """

    out_major: bool = False

    def __init__(
        self, specs: Sequence[LayerSpec], n_replicas: int, device: torch.device | str | None
    ) -> None:
        super().__init__()
        self.specs = tuple(specs)
        self.n_replicas = n_replicas
        shapes = [
            (s.fan_out, s.fan_in) if self.out_major else (s.fan_in, s.fan_out) for s in self.specs
        ]
        self.weight = nn.ParameterList(
            [nn.Parameter(torch.empty(n_replicas, *shape, device=device)) for shape in shapes]
        )
        self.bias = nn.ParameterList(
            [nn.Parameter(torch.empty(n_replicas, 1, s.fan_out, device=device)) for s in self.specs]
        )

    def affine(self, i: int, x: torch.Tensor) -> torch.Tensor:
        """Layer i on x [K, rows, in]: one batched matmul, x @ W + b -> [K, rows, out]."""
        w = self.weight[i]
        return torch.baddbmm(self.bias[i], x, w.mT if self.out_major else w)

    def layout(self) -> Iterator[tuple[str, nn.Parameter, LayerSpec]]:
        """(plain state-dict name, ensemble parameter, layer) for every parameter, in order."""
        for spec, w, b in zip(self.specs, self.weight, self.bias, strict=True):
            yield f"{spec.name}.weight", w, spec
            yield f"{spec.name}.bias", b, spec

    def to_plain(self, tensor: torch.Tensor, name: str, spec: LayerSpec) -> torch.Tensor:
        """One replica's slice of a parameter (or of a tensor shaped like it) in the plain
        module's layout: weight [out, in] (Conv1d: [out, in, 1]), bias [out]."""
        if name.endswith(".bias"):
            return tensor.reshape(spec.fan_out)
        weight = tensor if self.out_major else tensor.transpose(0, 1)
        return weight.unsqueeze(-1) if spec.conv else weight

    def to_ensemble(self, tensor: torch.Tensor, name: str, spec: LayerSpec) -> torch.Tensor:
        """Inverse of `to_plain`."""
        if name.endswith(".bias"):
            return tensor.reshape(1, spec.fan_out)
        weight = tensor.squeeze(-1) if spec.conv else tensor
        return weight if self.out_major else weight.transpose(0, 1)


def init_replicas_(module: EnsembleLayers, keys: torch.Tensor, stream: int) -> None:
    """Initialise every replica like torch's nn.Linear / nn.Conv1d, from its own stream.

    Weights and biases are U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (torch's kaiming-uniform default
    with a = sqrt(5)); parameter number i of the module uses ``counter = i`` of ``stream``.
    """
    with torch.no_grad():
        for i, (_, param, spec) in enumerate(module.layout()):
            bound = 1.0 / math.sqrt(spec.fan_in)
            draws = rng.uniform_range(keys, stream, i, param.shape[1:], -bound, bound)
            param.copy_(draws)


def replica_state_dict(module: EnsembleLayers, k: int) -> dict[str, torch.Tensor]:
    """Replica k's weights as a state dict of the matching plain module (CPU copies)."""
    return {
        name: module.to_plain(param.detach()[k], name, spec).to("cpu", copy=True).contiguous()
        for name, param, spec in module.layout()
    }


def load_replica_state_dicts_(
    module: EnsembleLayers, states: Sequence[Mapping[str, torch.Tensor]]
) -> None:
    """Fill the K replicas of an ensemble from K plain-module state dicts."""
    if len(states) != module.n_replicas:
        raise ValueError(f"expected {module.n_replicas} state dicts, got {len(states)}")
    with torch.no_grad():
        for name, param, spec in module.layout():
            stacked = torch.stack([module.to_ensemble(s[name], name, spec) for s in states])
            param.copy_(stacked)
