"""Neural density models beyond the paper, trained as ensembles of independent replicas.

* `flow`: a masked autoregressive flow (MAF, Papamakarios et al. 2017) whose transforms are
  monotonic rational-quadratic splines (neural spline flows, Durkan et al. 2019; the spline is
  zuko's `MonotonicRQSTransform`), trained by maximum likelihood.
* `flow_matching`: a conditional flow-matching / rectified-flow model (Lipman et al. 2023,
  Liu et al. 2023): a velocity field v(x, t) regressed on x1 - x0 along straight paths from
  x0 ~ N(0, 1) to the data, sampled by integrating dx/dt = v with fixed-step RK4.

Both run in standardised coordinates (each replica's training-set mean and standard deviation
per coordinate, stored with its weights) and train like the GAN ensemble (`ganplify.models`):
K replicas' weights stacked [K, ...] and applied with batched matmuls, per-replica losses
summed so that one Adam over the stack is K independent Adams, every random draw from
`ganplify.rng` keyed by the replica's seed.

Training is full-batch, by default on the whole training set for a fixed ``epochs`` (the
defaults were chosen on seeds no study uses: config/README.md). With ``holdout > 0`` that
fraction of each training set (a random subset per replica) is held out instead, the held-out
loss is checked every `CHECK_EVERY` epochs, the weights of the best check are kept, and
``patience`` epochs without improvement end a replica's search (early stopping). Training is
short, so there are no checkpoints: SIGTERM or SIGUSR1 stops it at once (`training.Interrupted`,
exit status 75) and the rerun retrains its unfinished replicas.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from enum import IntEnum

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganplify import rng
from ganplify.models import LayerSpec, _EnsembleLayers, init_replicas_
from ganplify.signals import catch_signals
from ganplify.training import Interrupted, TrainResult, check_generate_args, resolve_device

log = logging.getLogger(__name__)

CHECK_EVERY = 10  # epochs between held-out evaluations (and best-weight snapshots)


class Stream(IntEnum):
    """Random stream ids of these models (distinct from the GAN's, for clarity only)."""

    INIT = 101
    SPLIT = 102
    NOISE = 103  # flow matching: x0 of every training step
    TIME = 104  # flow matching: t of every training step
    VAL_NOISE = 105
    VAL_TIME = 106
    EVAL = 107  # base-distribution draws when generating


# --------------------------------------------------------------------------- configuration


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
            raise ValueError(f"unknown {cls.__name__} option(s) {unknown}; allowed: "
                             f"{sorted(names)}")
        return cls(**dict(values))

    def architecture(self) -> dict:
        """The fields that define the network (stored with the weights)."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name not in {g.name for g in fields(Schedule)}}


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


# --------------------------------------------------------------------------- networks


class EnsembleMLP(_EnsembleLayers):
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

    def __init__(self, dim: int, config: FlowConfig, n_replicas: int,
                 device: torch.device | str | None = None) -> None:
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
        return MonotonicRQSTransform(p[..., :b], p[..., b:2 * b], p[..., 2 * b:],
                                     bound=self.config.bound)

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

    def __init__(self, dim: int, config: FlowMatchingConfig, n_replicas: int,
                 device: torch.device | str | None = None) -> None:
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


# --------------------------------------------------------------------------- objectives


def flow_matching_loss(
    model: EnsembleVelocity, x1: torch.Tensor, keys: torch.Tensor, stream: tuple[int, int],
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


# --------------------------------------------------------------------------- training


@dataclass(frozen=True)
class Model:
    """What distinguishes the two models to the shared training and generation code."""

    name: str
    config_type: type
    network: Callable  # (dim, config, n_replicas, device) -> nn.Module with .inverse


MODELS = {
    "flow": Model("flow", FlowConfig, EnsembleFlow),
    "flow_matching": Model("flow_matching", FlowMatchingConfig, EnsembleVelocity),
}


def _model(name: str) -> Model:
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown density model {name!r}; allowed: {sorted(MODELS)}") from None


def holdout_split(
    x: torch.Tensor, keys: torch.Tensor, fraction: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """A random held-out subset of each replica's training set (round(fraction n) points)."""
    n = x.shape[1]
    n_val = round(fraction * n)
    if fraction > 0 and not 1 <= n_val <= n - 2:
        raise ValueError(f"holdout {fraction} of {n} training points leaves no usable split")
    perm = rng.permutations(keys, Stream.SPLIT, 0, n).to(x.device)
    idx = perm.unsqueeze(-1).expand(-1, -1, x.shape[2])
    shuffled = torch.gather(x, 1, idx)
    return shuffled[:, n_val:], shuffled[:, :n_val]


def standardisation(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-replica, per-coordinate mean and standard deviation, each [K, 1, d]."""
    shift = x.mean(axis=1, keepdims=True)
    scale = x.std(axis=1, keepdims=True)
    if not np.all(scale > 0):
        raise ValueError("a training set has a coordinate with zero spread")
    return shift, scale


def objectives(model: Model, net: nn.Module, keys: torch.Tensor, val: torch.Tensor):
    """(training loss(x, step), held-out loss()) per replica, both [K]."""
    if model.name == "flow":
        return (lambda x, step: -net.log_prob(x).mean(-1)), (lambda: -net.log_prob(val).mean(-1))
    # flow matching: fresh draws every step; fixed draws (8 per point) for the held-out loss
    val8 = val.repeat(1, 8, 1)
    return (
        lambda x, step: flow_matching_loss(net, x, keys, (Stream.NOISE, Stream.TIME), step),
        lambda: flow_matching_loss(net, val8, keys, (Stream.VAL_NOISE, Stream.VAL_TIME), 0),
    )


def train_ensemble(
    name: str,
    train_sets: np.ndarray,
    seeds: Sequence[int],
    options: Mapping[str, object],
    *,
    device: str = "auto",
    log_every: float = 30.0,
) -> TrainResult:
    """Train K replicas of a density model as one batched ensemble.

    Parameters
    ----------
    name : "flow" or "flow_matching"
    train_sets : ndarray [K, n_train, d]
    seeds : sequence of int
        Replica k's RNG key (initial weights, held-out split, every draw).
    options : mapping
        The generator's config block (`FlowConfig` / `FlowMatchingConfig` fields).
    device : str
        See `ganplify.training.resolve_device`.
    log_every : float
        Seconds between progress lines.

    Returns
    -------
    TrainResult
        ``generator_weights[k]`` holds replica k's weights (plain [in, out] / [out] tensors)
        with its standardisation ("shift", "scale"), the best epoch and the architecture
        (`weights_metadata`); ``history`` is [epochs run, K, 2]: training and held-out loss
        (the held-out loss every `CHECK_EVERY` epochs, NaN in between, without a held-out
        set, and once a replica failed).
    """
    model = _model(name)
    config = model.config_type.from_mapping(options)
    start_time = time.perf_counter()
    dev = resolve_device(device)
    data = np.asarray(train_sets, dtype=np.float64)
    k, _, dim = data.shape
    if len(seeds) != k:
        raise ValueError(f"got {len(seeds)} seeds for {k} training sets")
    shift, scale = standardisation(data)
    x = torch.as_tensor((data - shift) / scale, dtype=torch.float32, device=dev)
    keys = rng.replica_keys(seeds, dev)
    train, val = holdout_split(x, keys, config.holdout) if config.holdout > 0 else (x, x[:, :0])
    net = model.network(dim, config, k, dev)
    for i, sub in enumerate(net.nets):
        init_replicas_(sub, keys, Stream.INIT * 100 + i)
        _zero_last_layer_(sub)
    params = list(net.parameters())
    opt = torch.optim.Adam(params, lr=config.lr, foreach=True)
    loss_fn, val_fn = objectives(model, net, keys, val)
    use_val = val.shape[1] > 0
    best = [p.detach().clone() for p in params]
    best_val = torch.full((k,), math.inf, device=dev)
    best_epoch = torch.zeros(k, dtype=torch.int64, device=dev)
    failed = torch.zeros(k, dtype=torch.bool, device=dev)
    failed_epoch = torch.zeros(k, dtype=torch.int64, device=dev)
    history = torch.full((config.epochs, k, 2), math.nan, device=dev)
    last_log, epoch = time.monotonic(), 0
    with catch_signals() as stop:
        for epoch in range(1, config.epochs + 1):
            if stop.received is not None:
                raise Interrupted(stop.received, epoch - 1, epoch - 1, False,
                                  "no checkpoints (a short training: the rerun retrains)")
            loss = loss_fn(train, epoch)
            bad = ~torch.isfinite(loss)
            failed_epoch = torch.where(bad & ~failed, epoch, failed_epoch)
            failed |= bad
            opt.zero_grad(set_to_none=True)
            torch.where(failed, 0.0, loss).sum().backward()
            opt.step()
            history[epoch - 1, :, 0] = torch.where(failed, math.nan, loss.detach())
            if use_val and epoch % CHECK_EVERY == 0:
                with torch.no_grad():
                    v = torch.where(failed, math.nan, val_fn())
                    history[epoch - 1, :, 1] = v
                    # the weights before this step gave `loss`; held-out loss is of the new ones
                    better = (v < best_val) & ~failed
                    best_val = torch.where(better, v, best_val)
                    best_epoch = torch.where(better, epoch, best_epoch)
                    for b, p in zip(best, params, strict=True):
                        b.copy_(torch.where(better.view(-1, *[1] * (p.dim() - 1)), p, b))
            # the host reads device state only now and then (no sync per step on GPUs)
            if epoch % 50 == 0 or epoch == config.epochs:
                done = failed | (epoch - best_epoch > config.patience) if use_val else failed
                now = time.monotonic()
                if now - last_log > log_every or epoch == config.epochs:
                    last_log = now
                    h = history[max(epoch - CHECK_EVERY, 0):epoch].cpu().numpy()
                    means = [float(np.mean(c[np.isfinite(c)])) if np.isfinite(c).any() else math.nan
                             for c in (h[..., 0], h[..., 1])]
                    log.info("%s epoch %d/%d  train %.4f  held-out %.4f  stopped %d/%d",
                             name, epoch, config.epochs, *means, int(done.sum()), k)
                if use_val and bool(done.all()):
                    break
    final = best if use_val else [p.detach() for p in params]
    if not use_val:
        best_epoch = torch.full((k,), epoch, dtype=torch.int64, device=dev)
    # a replica that never improved on its held-out loss has no weights worth keeping
    failed |= best_epoch == 0
    weights = replica_weights(net, final, shift, scale)
    status, reason, fail_at = [], [], []
    for r in range(k):
        fe = int(failed_epoch[r])
        if bool(failed[r]):
            status.append("failed")
            reason.append(f"non-finite training loss at epoch {fe}" if fe else
                          "held-out loss never finite")
            fail_at.append(fe or None)
        else:
            status.append("done")
            reason.append("")
            fail_at.append(None)
        weights[r]["best_epoch"] = torch.tensor([int(best_epoch[r])])
    return TrainResult(
        status=tuple(status), reason=tuple(reason), failed_epoch=tuple(fail_at),
        generator_weights=tuple(weights), history=history[:epoch].cpu().numpy(),
        wall_time=time.perf_counter() - start_time, device=str(dev),
    )


def replica_weights(
    net: nn.Module, tensors: Sequence[torch.Tensor], shift: np.ndarray, scale: np.ndarray
) -> list[dict[str, torch.Tensor]]:
    """Split stacked parameters (in `net.parameters()` order) into per-replica state dicts."""
    names = [n for n, _ in net.named_parameters()]
    out = []
    for r in range(len(shift)):
        w = {n: t[r].detach().to("cpu").clone() for n, t in zip(names, tensors, strict=True)}
        w["shift"] = torch.as_tensor(shift[r, 0], dtype=torch.float64)
        w["scale"] = torch.as_tensor(scale[r, 0], dtype=torch.float64)
        out.append(w)
    return out


def weights_metadata(name: str, options: Mapping[str, object]) -> dict[str, str]:
    """String metadata saved with a replica's weights: enough to rebuild its network."""
    config = _model(name).config_type.from_mapping(options)
    return {"model": name, "architecture": json.dumps(config.architecture(), sort_keys=True)}


# --------------------------------------------------------------------------- generation


def stack_replicas(
    name: str, weights: Sequence[Mapping[str, torch.Tensor]], architecture: Mapping,
    device: torch.device,
) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """An ensemble network from K replicas' saved weights, with their shift and scale."""
    model = _model(name)
    config = model.config_type(**dict(architecture))
    dim = int(weights[0]["shift"].numel())
    net = model.network(dim, config, len(weights), device)
    expected = {n: tuple(p.shape[1:]) for n, p in net.named_parameters()}
    for k, w in enumerate(weights):
        got = {n: tuple(t.shape) for n, t in w.items() if n in expected}
        if got != expected:
            raise ValueError(f"replica {k}'s weights do not match a {name} with {architecture}")
    with torch.no_grad():
        for n, p in net.named_parameters():
            p.copy_(torch.stack([w[n] for w in weights]).to(device))
    shift = torch.stack([w["shift"] for w in weights]).to(device).unsqueeze(1)
    scale = torch.stack([w["scale"] for w in weights]).to(device).unsqueeze(1)
    return net, shift, scale


def generate(
    name: str,
    weights: Sequence[Mapping[str, torch.Tensor]],
    seeds: Sequence[int],
    n: int,
    architecture: Mapping,
    chunk_size: int = 65536,
    device: str = "auto",
) -> Iterator[np.ndarray]:
    """Generate ``n`` events per replica, in chunks.

    Replica k's base draws come from its seed's evaluation stream, indexed by event number,
    so its events do not depend on ``chunk_size`` or on the other replicas (beyond float32
    rounding of the batched matmuls).

    Yields
    ------
    ndarray, float64, [K, m, d] with m <= chunk_size; the chunks concatenate to [K, n, d].
    """
    check_generate_args(len(seeds), len(weights), n, chunk_size)
    dev = resolve_device(device)
    net, shift, scale = stack_replicas(name, weights, architecture, dev)
    keys = rng.replica_keys(seeds, dev)
    dim = shift.shape[-1]
    for start in range(0, n, chunk_size):
        m = min(chunk_size, n - start)
        with torch.inference_mode():
            z = rng.normal(keys, Stream.EVAL, 0, (m, dim), offset=start * dim)
            x = net.inverse(z).to(torch.float64)
        yield (x * scale + shift).cpu().numpy()


def bytes_per_event(name: str, architecture: Mapping, dim: int) -> int:
    """Peak memory per generated event and replica (activations), for chunking.

    The flow's is dominated by zuko's spline intermediates, ~40 float32 per spline parameter
    (3 bins per coordinate; 13.7 kB measured in d = 5 with 8 bins, estimated 23 kB); flow
    matching's by the RK4 stages of the velocity field (~16 hidden-sized tensors).
    """
    hidden = int(architecture.get("hidden", 64))
    if name == "flow":
        return 4 * (40 * dim * 3 * int(architecture.get("bins", 8)) + 8 * hidden)
    return 4 * 16 * hidden
