"""The paper's generator and DeepSets discriminator, as K-replica ensembles and as plain modules.

Generator (paper section 2): ``noise_dim`` (1000) uniform[-1, 1] inputs -> ``layers`` (7) x
[Linear(hidden=256) + ELU + Dropout(0.5)] -> Linear(d). Dropout stays active when generating.

Discriminator (DeepSets): for a set (batch) B of n points,

* an embedding Phi, three kernel-1 Conv1d (d -> hidden -> hidden -> embedding=32), each followed
  by LeakyReLU(0.01), applied point by point;
* ``set_input="differences"`` (the paper's text, default): for every point x of B, Phi is
  applied to the n difference vectors B - x (x - x = 0 included) and aggregated by their standard
  deviation over those n, so every point gets its own summary; ``set_input="points"`` (the
  reading of DESIGN.md): Phi is applied to the points of B and the one summary is shared by all
  points of the set. The parameter count is the same;
* the aggregate is torch's default standard deviation, i.e. with Bessel's correction
  (``unbiased=True``, divisor n - 1), as the paper's PyTorch code would have had by default;
* concatenation [x, summary] (d + 32) -> ``layers`` x [Linear(hidden) + LeakyReLU(0.01) +
  Dropout(0.5)] -> Linear(1): a logit (the sigmoid is left to the losses, which work on logits).

Ensemble form: each layer's weight is a [K, in, out] tensor (stored [K, out, in] where that
saves gradient copies) and its bias [K, 1, out]; inputs are [K, rows, features] and each layer
is one ``torch.baddbmm``, so K replicas cost one batched matmul per layer. A kernel-1 Conv1d is
a linear map on the feature axis, so Phi is built the same way. Dropout masks are inputs (float
tensors holding 0 or 1/(1-p)), drawn by the caller from the replicas' own random streams; the
plain modules accept the same masks, or draw their own with ``F.dropout`` when given none.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ganplify import rng

SET_INPUTS = ("differences", "points")
LEAKY_SLOPE = 0.01


@dataclass(frozen=True)
class LayerSpec:
    """One affine layer: its name in the plain module and its sizes."""

    name: str
    fan_in: int
    fan_out: int
    conv: bool = False  # a kernel-1 Conv1d in the plain module (weight [out, in, 1])


@dataclass(frozen=True)
class Architecture:
    """Sizes of the paper's networks (defaults: the paper's).

    Parameters
    ----------
    dim : int
        Phase-space dimension d.
    noise_dim, hidden, layers, dropout, embedding : see the module docstring.
    set_input : {"differences", "points"}
        What the discriminator's Phi sees (see the module docstring).
    """

    dim: int
    noise_dim: int = 1000
    hidden: int = 256
    layers: int = 7
    dropout: float = 0.5
    embedding: int = 32
    set_input: str = "differences"

    def __post_init__(self) -> None:
        for name in ("dim", "noise_dim", "hidden", "layers", "embedding"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.set_input not in SET_INPUTS:
            raise ValueError(f"set_input must be one of {SET_INPUTS}, got {self.set_input!r}")

    @property
    def generator_layers(self) -> tuple[LayerSpec, ...]:
        """The generator's layers in order: hidden.0 .. hidden.{L-1}, out."""
        sizes = [self.noise_dim] + [self.hidden] * self.layers
        hidden = [LayerSpec(f"hidden.{i}", sizes[i], sizes[i + 1]) for i in range(self.layers)]
        return (*hidden, LayerSpec("out", self.hidden, self.dim))

    @property
    def phi_layers(self) -> tuple[LayerSpec, ...]:
        """The discriminator's embedding Phi: phi.0 .. phi.2 (kernel-1 convolutions)."""
        sizes = (self.dim, self.hidden, self.hidden, self.embedding)
        return tuple(LayerSpec(f"phi.{i}", sizes[i], sizes[i + 1], conv=True) for i in range(3))

    @property
    def discriminator_layers(self) -> tuple[LayerSpec, ...]:
        """The discriminator's layers in order: phi.0 .. phi.2, hidden.0 .. hidden.{L-1}, out."""
        sizes = [self.dim + self.embedding] + [self.hidden] * self.layers
        hidden = [LayerSpec(f"hidden.{i}", sizes[i], sizes[i + 1]) for i in range(self.layers)]
        return (*self.phi_layers, *hidden, LayerSpec("out", self.hidden, 1))


def parameter_count(layers: Sequence[LayerSpec]) -> int:
    """Number of parameters (weights and biases) of a list of layers."""
    return sum((s.fan_in + 1) * s.fan_out for s in layers)


def generator_parameter_count(arch: Architecture) -> int:
    """Closed form: (N + 1) H + (L - 1)(H + 1) H + (H + 1) d (651,265 for the paper's d = 1)."""
    n, h, layers, d = arch.noise_dim, arch.hidden, arch.layers, arch.dim
    return (n + 1) * h + (layers - 1) * (h + 1) * h + (h + 1) * d


def discriminator_parameter_count(arch: Architecture) -> int:
    """Closed form (478,241 for the paper's d = 1):

    Phi: (d + 1) H + (H + 1) H + (H + 1) m; main: (d + m + 1) H + (L - 1)(H + 1) H + (H + 1).
    """
    h, m, layers, d = arch.hidden, arch.embedding, arch.layers, arch.dim
    phi = (d + 1) * h + (h + 1) * h + (h + 1) * m
    return phi + (d + m + 1) * h + (layers - 1) * (h + 1) * h + (h + 1)


# --------------------------------------------------------------------------- ensembles


class _EnsembleLayers(nn.Module):
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
        shapes = [(s.fan_out, s.fan_in) if self.out_major else (s.fan_in, s.fan_out)
                  for s in self.specs]
        self.weight = nn.ParameterList(
            [nn.Parameter(torch.empty(n_replicas, *shape, device=device)) for shape in shapes]
        )
        self.bias = nn.ParameterList(
            [nn.Parameter(torch.empty(n_replicas, 1, s.fan_out, device=device))
             for s in self.specs]
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


class EnsembleGenerator(_EnsembleLayers):
    """K replicas of the paper's generator as batched matmuls (weights stored [K, in, out]).

    Parameters
    ----------
    arch : Architecture
    n_replicas : int
    device : torch.device, optional
        The parameters are allocated uninitialised; see `init_replicas_`.
    """

    def __init__(
        self, arch: Architecture, n_replicas: int, device: torch.device | str | None = None
    ) -> None:
        super().__init__(arch.generator_layers, n_replicas, device)
        self.arch = arch

    def forward(self, z: torch.Tensor, masks: torch.Tensor | None) -> torch.Tensor:
        """Generate points.

        Parameters
        ----------
        z : Tensor [K, R, noise_dim]
            Input noise, uniform in [-1, 1].
        masks : Tensor [K, layers, R, hidden] or None
            Dropout multipliers (0 or 1/(1-p)); None switches dropout off.

        Returns
        -------
        Tensor [K, R, dim]
        """
        h = z
        last = len(self.specs) - 1
        for i in range(last):
            h = F.elu(self.affine(i, h))
            if masks is not None:
                h = h * masks[:, i]
        return self.affine(last, h)


class EnsembleDiscriminator(_EnsembleLayers):
    """K replicas of the paper's DeepSets discriminator as batched matmuls (returns logits).

    Weights are stored [K, out, in]: the gradient-penalty's double backward returns weight
    gradients in that memory order.
    """

    out_major = True

    def __init__(
        self, arch: Architecture, n_replicas: int, device: torch.device | str | None = None
    ) -> None:
        super().__init__(arch.discriminator_layers, n_replicas, device)
        self.arch = arch

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Per-point set summary F(Phi(.)), Tensor [K, S, n, embedding] for sets x [K, S, n, d]."""
        k, s, n, d = x.shape
        if self.arch.set_input == "differences":
            # h[k, s, i, j] = x_j - x_i: the set seen from point i
            h = (x.unsqueeze(2) - x.unsqueeze(3)).reshape(k, s * n * n, d)
        else:
            h = x.reshape(k, s * n, d)
        for i in range(3):
            h = F.leaky_relu(self.affine(i, h), LEAKY_SLOPE)
        m = self.arch.embedding
        if self.arch.set_input == "differences":
            return h.view(k, s, n, n, m).std(dim=3)
        return h.view(k, s, n, m).std(dim=2, keepdim=True).expand(k, s, n, m)

    def forward(self, x: torch.Tensor, masks: torch.Tensor | None) -> torch.Tensor:
        """Logits of every point of S sets per replica.

        Parameters
        ----------
        x : Tensor [K, S, n, d]
            S sets (batches) of n points per replica; each set is aggregated on its own.
        masks : Tensor [K, layers, S * n, hidden] or None
            Dropout multipliers of the main network (Phi has no dropout); None: no dropout.

        Returns
        -------
        Tensor [K, S, n] of logits.
        """
        k, s, n, d = x.shape
        h = torch.cat([x, self.embed(x)], dim=-1).reshape(k, s * n, d + self.arch.embedding)
        last = len(self.specs) - 1
        for j, i in enumerate(range(3, last)):
            h = F.leaky_relu(self.affine(i, h), LEAKY_SLOPE)
            if masks is not None:
                h = h * masks[:, j]
        return self.affine(last, h).view(k, s, n)


def init_replicas_(module: _EnsembleLayers, keys: torch.Tensor, stream: int) -> None:
    """Initialise every replica like torch's nn.Linear / nn.Conv1d, from its own stream.

    Weights and biases are U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (torch's kaiming-uniform default
    with a = sqrt(5)); parameter number i of the module uses ``counter = i`` of ``stream``.
    """
    with torch.no_grad():
        for i, (_, param, spec) in enumerate(module.layout()):
            bound = 1.0 / math.sqrt(spec.fan_in)
            draws = rng.uniform_range(keys, stream, i, param.shape[1:], -bound, bound)
            param.copy_(draws)


# --------------------------------------------------------------------------- plain modules


def _dropout(h: torch.Tensor, mask: torch.Tensor | None, p: float) -> torch.Tensor:
    return F.dropout(h, p, training=True) if mask is None else h * mask


class PlainGenerator(nn.Module):
    """One replica of the generator as ordinary nn.Linear layers (reference and baseline)."""

    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        self.arch = arch
        specs = arch.generator_layers
        self.hidden = nn.ModuleList([nn.Linear(s.fan_in, s.fan_out) for s in specs[:-1]])
        self.out = nn.Linear(specs[-1].fan_in, specs[-1].fan_out)

    def forward(self, z: torch.Tensor, masks: torch.Tensor | None = None) -> torch.Tensor:
        """z [R, noise_dim], masks [layers, R, hidden] or None (F.dropout) -> [R, dim]."""
        h = z
        for i, layer in enumerate(self.hidden):
            h = _dropout(F.elu(layer(h)), None if masks is None else masks[i], self.arch.dropout)
        return self.out(h)


class PlainDiscriminator(nn.Module):
    """One replica of the discriminator: Phi as nn.Conv1d (kernel 1), the rest nn.Linear."""

    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        self.arch = arch
        specs = arch.discriminator_layers
        self.phi = nn.ModuleList([nn.Conv1d(s.fan_in, s.fan_out, 1) for s in specs[:3]])
        self.hidden = nn.ModuleList([nn.Linear(s.fan_in, s.fan_out) for s in specs[3:-1]])
        self.out = nn.Linear(specs[-1].fan_in, specs[-1].fan_out)

    def forward(self, x: torch.Tensor, masks: torch.Tensor | None = None) -> torch.Tensor:
        """Logits [n] of the points of one set x [n, d]; masks [layers, n, hidden] or None."""
        n = x.shape[0]
        if self.arch.set_input == "differences":
            h = (x.unsqueeze(0) - x.unsqueeze(1)).transpose(1, 2)  # [i, d, j] = x_j - x_i
        else:
            h = x.T.unsqueeze(0)  # one set: [1, d, n]
        for conv in self.phi:
            h = F.leaky_relu(conv(h), LEAKY_SLOPE)
        summary = h.std(dim=2).expand(n, self.arch.embedding)
        h = torch.cat([x, summary], dim=1)
        for i, layer in enumerate(self.hidden):
            h = F.leaky_relu(layer(h), LEAKY_SLOPE)
            h = _dropout(h, None if masks is None else masks[i], self.arch.dropout)
        return self.out(h).squeeze(1)


# --------------------------------------------------------------------------- layouts


def replica_state_dict(module: _EnsembleLayers, k: int) -> dict[str, torch.Tensor]:
    """Replica k's weights as a state dict of the matching plain module (CPU copies)."""
    return {
        name: module.to_plain(param.detach()[k], name, spec).to("cpu", copy=True).contiguous()
        for name, param, spec in module.layout()
    }


def load_replica_state_dicts_(
    module: _EnsembleLayers, states: Sequence[Mapping[str, torch.Tensor]]
) -> None:
    """Fill the K replicas of an ensemble from K plain-module state dicts."""
    if len(states) != module.n_replicas:
        raise ValueError(f"expected {module.n_replicas} state dicts, got {len(states)}")
    with torch.no_grad():
        for name, param, spec in module.layout():
            stacked = torch.stack([module.to_ensemble(s[name], name, spec) for s in states])
            param.copy_(stacked)


def copy_replica_to_plain(module: _EnsembleLayers, k: int, plain: nn.Module) -> None:
    """Copy replica k of an ensemble into a plain module of the same architecture."""
    plain.load_state_dict(replica_state_dict(module, k))
