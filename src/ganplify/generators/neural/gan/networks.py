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

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ganplify.generators.neural.layers import EnsembleLayers, LayerSpec

SET_INPUTS = ("differences", "points")


LEAKY_SLOPE = 0.01


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


class EnsembleGenerator(EnsembleLayers):
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


class EnsembleDiscriminator(EnsembleLayers):
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


def _dropout(h: torch.Tensor, mask: torch.Tensor | None, p: float) -> torch.Tensor:
    return F.dropout(h, p, training=True) if mask is None else h * mask
