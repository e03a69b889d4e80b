"""The flows' configurations and networks: stacked MLPs with MADE masks, the spline flow,
the flow-matching velocity field and its loss.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from ganplify import rng
from ganplify.generators.neural.gan.networks import EnsembleLayers
from ganplify.generators.neural.layers import LayerSpec


@dataclass(frozen=True)
class Schedule:
    """How a density model is trained (shared by both models).

    Parameters
    ----------
    epochs : int
        Full-batch Adam steps at most.
    lr : float
        Adam learning rate (betas 0.9, 0.999).
    holdout : float
        Fraction of each training set held out for early stopping, in [0, 0.5]; 0 trains on
        everything for exactly ``epochs`` steps.
    patience : int
        Steps without a better held-out loss after which a replica's search ends.
    """

    epochs: int = 1000
    lr: float = 1e-3
    holdout: float = 0.0
    patience: int = 200

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.patience < 1:
            raise ValueError("epochs and patience must be >= 1")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not 0.0 <= self.holdout <= 0.5:
            raise ValueError(f"holdout must be in [0, 0.5], got {self.holdout}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, object]):
        """Build from a generator's config block; unknown keys are an error."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(
                f"unknown {cls.__name__} option(s) {unknown}; allowed: {sorted(names)}"
            )
        return cls(**dict(values))

    def architecture(self) -> dict:
        """The fields that define the network (stored with the weights)."""
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name not in {g.name for g in fields(Schedule)}
        }


@dataclass(frozen=True)
class FlowConfig(Schedule):
    """Masked autoregressive spline flow (defaults: see config/README.md)."""

    transforms: int = 3
    bins: int = 8
    hidden: int = 64
    layers: int = 2
    bound: float = 5.0  # splines act on [-bound, bound] standard deviations, identity outside

    def __post_init__(self) -> None:
        super().__post_init__()
        if min(self.transforms, self.bins, self.hidden, self.layers) < 1 or self.bins < 2:
            raise ValueError("transforms, hidden and layers must be >= 1 and bins >= 2")


@dataclass(frozen=True)
class FlowMatchingConfig(Schedule):
    """Conditional flow matching with straight (rectified-flow) paths."""

    lr: float = 3e-3  # its noisier objective wants larger steps (tuned like the rest)
    hidden: int = 64
    layers: int = 3
    ode_steps: int = 16  # RK4 steps from t = 0 to 1 when sampling (4 network calls each)

    def __post_init__(self) -> None:
        super().__post_init__()
        if min(self.hidden, self.layers, self.ode_steps) < 1:
            raise ValueError("hidden, layers and ode_steps must be >= 1")


class EnsembleMLP(EnsembleLayers):
    """K replicas of an MLP (SiLU between layers), optionally with fixed connectivity masks.

    Parameters
    ----------
    sizes : sequence of int
        Input, hidden ..., output widths.
    n_replicas : int
    masks : sequence of Tensor [in, out] or None
        0/1 masks per layer (MADE); None: dense.
    device : torch.device or str, optional
    """

    def __init__(
        self,
        sizes: Sequence[int],
        n_replicas: int,
        masks: Sequence[torch.Tensor] | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        specs = [LayerSpec(f"l{i}", a, b) for i, (a, b) in enumerate(itertools.pairwise(sizes))]
        super().__init__(specs, n_replicas, device)
        self.masked = masks is not None
        for i, m in enumerate(masks or []):
            self.register_buffer(f"mask{i}", m.to(device=device, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [K, n, in] -> [K, n, out]."""
        h = x
        last = len(self.specs) - 1
        for i in range(last + 1):
            w = self.weight[i]
            if self.masked:
                w = w * getattr(self, f"mask{i}")
            h = torch.baddbmm(self.bias[i], h, w)
            if i < last:
                h = F.silu(h)
        return h


def made_masks(dim: int, hidden: int, layers: int, per_dim: int) -> list[torch.Tensor]:
    """Connectivity masks of a MADE (Germain et al. 2015) with outputs grouped per dimension.

    Output block i (``per_dim`` units, dimension i in 0-based order) depends only on inputs
    0 .. i - 1; in d = 1 the single block depends on nothing (its biases are the parameters).

    Returns
    -------
    list of Tensor [in, out], one per layer (``layers`` hidden layers, then the output).
    """
    deg_in = torch.arange(1, dim + 1)
    deg_hidden = torch.arange(hidden) % max(dim - 1, 1) + 1
    deg_out = torch.arange(dim).repeat_interleave(per_dim) + 1
    degrees = [deg_in] + [deg_hidden] * layers + [deg_out]
    masks = [b[None, :] >= a[:, None] for a, b in itertools.pairwise(degrees[:-1])]
    masks.append(deg_out[None, :] > degrees[-2][:, None])
    return [m.float() for m in masks]


def _zero_last_layer_(net: EnsembleMLP) -> None:
    # a zero output layer makes every spline the identity (and every velocity 0) at the start
    with torch.no_grad():
        net.weight[-1].zero_()
        net.bias[-1].zero_()


class EnsembleFlow(nn.Module):
    """K replicas of a masked autoregressive rational-quadratic spline flow.

    The transform maps data x (standardised) to the latent z ~ N(0, 1): each of the
    ``transforms`` layers applies, coordinate by coordinate, a spline whose knots a MADE
    computes from the preceding coordinates, then reverses the coordinate order.
    """

    def __init__(
        self,
        dim: int,
        config: FlowConfig,
        n_replicas: int,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        self.dim, self.config, self.n_replicas = dim, config, n_replicas
        self.per_dim = 3 * config.bins - 1
        # in d = 1 the splines depend on nothing: their knots are free parameters (the output
        # biases), and hidden layers would be masked off entirely
        layers = config.layers if dim > 1 else 0
        sizes = [dim] + [config.hidden] * layers + [dim * self.per_dim]
        masks = made_masks(dim, config.hidden, layers, self.per_dim)
        self.nets = nn.ModuleList(
            [EnsembleMLP(sizes, n_replicas, masks, device) for _ in range(config.transforms)]
        )

    def _spline(self, t: int, x: torch.Tensor):
        from zuko.transforms import MonotonicRQSTransform

        p = self.nets[t](x).unflatten(-1, (self.dim, self.per_dim))
        b = self.config.bins
        return MonotonicRQSTransform(
            p[..., :b], p[..., b : 2 * b], p[..., 2 * b :], bound=self.config.bound
        )

    def transform(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Latent points z [K, n, d] of standardised points x and log|det dz/dx| [K, n]."""
        z, ladj = x, x.new_zeros(x.shape[:-1])
        for t in range(self.config.transforms):
            z, lt = self._spline(t, z).call_and_ladj(z)
            ladj = ladj + lt.sum(-1)
            z = z.flip(-1)
        return z, ladj

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Log-density of standardised points x [K, n, d] -> [K, n]."""
        z, ladj = self.transform(x)
        return ladj - 0.5 * (z * z).sum(-1) - 0.5 * self.dim * math.log(2 * math.pi)

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        """Standardised points from latent points z [K, n, d] (d passes per transform)."""
        y = z
        for t in reversed(range(self.config.transforms)):
            y = y.flip(-1)
            x = torch.zeros_like(y)
            # autoregressive: pass i fixes coordinate i, the earlier ones stay as they are
            for _ in range(self.dim):
                x = self._spline(t, x).inv(y)
            y = x
        return y


class EnsembleVelocity(nn.Module):
    """K replicas of a velocity field v(x, t) for flow matching."""

    def __init__(
        self,
        dim: int,
        config: FlowMatchingConfig,
        n_replicas: int,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        self.dim, self.config, self.n_replicas = dim, config, n_replicas
        sizes = [dim + 1] + [config.hidden] * config.layers + [dim]
        self.nets = nn.ModuleList([EnsembleMLP(sizes, n_replicas, None, device)])

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """v(x, t) for x [K, n, d] and t [K, n, 1] (or broadcastable)."""
        return self.nets[0](torch.cat([x, t.expand(*x.shape[:-1], 1)], dim=-1))

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        """Integrate dx/dt = v(x, t) from t = 0 (x = z) to 1 with fixed-step RK4."""
        steps = self.config.ode_steps
        h = 1.0 / steps
        x = z
        for i in range(steps):
            t = z.new_full((1, 1, 1), i * h)
            k1 = self(x, t)
            k2 = self(x + 0.5 * h * k1, t + 0.5 * h)
            k3 = self(x + 0.5 * h * k2, t + 0.5 * h)
            k4 = self(x + h * k3, t + h)
            x = x + (h / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
        return x


def flow_matching_loss(
    model: EnsembleVelocity,
    x1: torch.Tensor,
    keys: torch.Tensor,
    stream: tuple[int, int],
    counter: int | torch.Tensor,
) -> torch.Tensor:
    """Per-replica conditional flow-matching loss, mean over points of |v - (x1 - x0)|^2.

    Parameters
    ----------
    x1 : Tensor [K, n, d]
        Standardised data.
    stream : (noise stream, time stream)
    counter : the draw's counter (the step; fixed for held-out losses).
    """
    _, n, d = x1.shape
    x0 = rng.normal(keys, stream[0], counter, (n, d))
    t = rng.uniform(keys, stream[1], counter, (n, 1))
    xt = (1.0 - t) * x0 + t * x1
    return ((model(xt, t) - (x1 - x0)) ** 2).sum(-1).mean(-1)
