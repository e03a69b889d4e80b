"""Neural density models beyond the paper, trained as ensembles of independent replicas.

* `flow`: a masked autoregressive flow (MAF, Papamakarios et al. 2017) whose transforms are
  monotonic rational-quadratic splines (neural spline flows, Durkan et al. 2019; the spline is
  zuko's `MonotonicRQSTransform`), trained by maximum likelihood.
* `flow_matching`: a conditional flow-matching / rectified-flow model (Lipman et al. 2023,
  Liu et al. 2023): a velocity field v(x, t) regressed on x1 - x0 along straight paths from
  x0 ~ N(0, 1) to the data, sampled by integrating dx/dt = v with fixed-step RK4.

Both run in standardised coordinates (each replica's training-set mean and standard deviation
per coordinate, stored with its weights) and train like the GAN ensemble
(`ganplify.generators.neural.layers`):
K replicas' weights stacked [K, ...] and applied with batched matmuls, per-replica losses
summed so that one Adam over the stack is K independent Adams, every random draw from
`ganplify.rng` keyed by the replica's seed.

Training is full-batch, by default on the whole training set for a fixed ``epochs`` (the
defaults were chosen on seeds no study uses: config/README.md). With ``holdout > 0`` that
fraction of each training set (a random subset per replica) is held out instead, the held-out
loss is checked every `CHECK_EVERY` epochs, the weights of the best check are kept, and
``patience`` epochs without improvement end a replica's search (early stopping). Training is
short, so there are no checkpoints: SIGTERM or SIGUSR1 stops it before the next step
(`ganplify.generators.neural.core.Interrupted`, exit status 75) and the rerun retrains its
unfinished replicas.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ganplify import rng
from ganplify.generators.flow import Flow
from ganplify.generators.flow_matching import FlowMatching
from ganplify.generators.neural.core import (
    EpochHook,
    ReplicaStatus,
    TrainResult,
    check_generate_args,
    generate_in_chunks,
    run_epochs,
)
from ganplify.generators.neural.device import resolve_device
from ganplify.generators.neural.flows.networks import (
    EnsembleFlow,
    EnsembleVelocity,
    FlowConfig,
    FlowMatchingConfig,
    _zero_last_layer_,
    flow_matching_loss,
)
from ganplify.generators.neural.layers import init_replicas_
from ganplify.streams import FlowStream

log = logging.getLogger(__name__)


CHECK_EVERY = 10  # epochs between held-out evaluations (and best-weight snapshots)


@dataclass(frozen=True)
class Model:
    """What distinguishes the two models to the shared training and generation code."""

    name: str
    config_type: type
    network: Callable  # (dim, config, n_replicas, device) -> nn.Module with .inverse
    likelihood: bool  # trained by maximum likelihood (else on the flow-matching loss)


# keyed by the generators' names, which their own modules own
MODELS = {
    Flow.name: Model(Flow.name, FlowConfig, EnsembleFlow, likelihood=True),
    FlowMatching.name: Model(
        FlowMatching.name, FlowMatchingConfig, EnsembleVelocity, likelihood=False
    ),
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
    perm = rng.permutations(keys, FlowStream.SPLIT, 0, n).to(x.device)
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
    if model.likelihood:
        return (lambda x, step: -net.log_prob(x).mean(-1)), (lambda: -net.log_prob(val).mean(-1))
    # flow matching: fresh draws every step; fixed draws (8 per point) for the held-out loss
    val8 = val.repeat(1, 8, 1)
    return (
        lambda x, step: flow_matching_loss(net, x, keys, (FlowStream.NOISE, FlowStream.TIME), step),
        lambda: flow_matching_loss(net, val8, keys, (FlowStream.VAL_NOISE, FlowStream.VAL_TIME), 0),
    )


def train_ensemble(
    name: str,
    train_sets: np.ndarray,
    seeds: Sequence[int],
    options: Mapping[str, object],
    *,
    device: str = "auto",
    log_every: float = 30.0,
    hook: EpochHook | None = None,
    hook_epochs: Collection[int] = (),
) -> TrainResult:
    """Train K replicas of a density model as one batched ensemble.

    Parameters
    ----------
    name : str
        A key of `MODELS`.
    train_sets : ndarray [K, n_train, d]
    seeds : sequence of int
        Replica k's RNG key (initial weights, held-out split, every draw).
    options : mapping
        The generator's config block (`FlowConfig` / `FlowMatchingConfig` fields).
    device : str
        See `ganplify.generators.neural.device.resolve_device`.
    log_every : float
        Seconds between progress lines.
    hook, hook_epochs
        ``hook(epoch, weights)`` after each epoch in ``hook_epochs``, with every replica's
        current weights (as `generate` takes them).

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
        init_replicas_(sub, keys, FlowStream.INIT * 100 + i)
        _zero_last_layer_(sub)
    params = list(net.parameters())
    opt = torch.optim.Adam(params, lr=config.lr, foreach=True)
    loss_fn, val_fn = objectives(model, net, keys, val)
    use_val = val.shape[1] > 0
    best = [p.detach().clone() for p in params]
    # per-replica device state the loop replaces (torch.where returns new tensors)
    st = {
        "best_val": torch.full((k,), math.inf, device=dev),
        "best_epoch": torch.zeros(k, dtype=torch.int64, device=dev),
        "failed": torch.zeros(k, dtype=torch.bool, device=dev),
        "failed_epoch": torch.zeros(k, dtype=torch.int64, device=dev),
    }
    history = torch.full((config.epochs, k, 2), math.nan, device=dev)
    last_log, steps = [time.monotonic()], [0]

    def run_epoch(e: int, stop: Callable[[], None]) -> bool:
        epoch = e + 1  # one full-batch step per epoch, counted from 1
        loss = loss_fn(train, epoch)
        bad = ~torch.isfinite(loss)
        st["failed_epoch"] = torch.where(bad & ~st["failed"], epoch, st["failed_epoch"])
        st["failed"] = failed = st["failed"] | bad
        opt.zero_grad(set_to_none=True)
        torch.where(failed, 0.0, loss).sum().backward()
        opt.step()
        steps[0] = epoch
        history[epoch - 1, :, 0] = torch.where(failed, math.nan, loss.detach())
        if use_val and epoch % CHECK_EVERY == 0:
            with torch.no_grad():
                v = torch.where(failed, math.nan, val_fn())
                history[epoch - 1, :, 1] = v
                # the weights before this step gave `loss`; held-out loss is of the new ones
                better = (v < st["best_val"]) & ~failed
                st["best_val"] = torch.where(better, v, st["best_val"])
                st["best_epoch"] = torch.where(better, epoch, st["best_epoch"])
                for b, p in zip(best, params, strict=True):
                    b.copy_(torch.where(better.view(-1, *[1] * (p.dim() - 1)), p, b))
        # the host reads device state only now and then (no sync per step on GPUs)
        if epoch % 50 == 0 or epoch == config.epochs:
            done = failed | (epoch - st["best_epoch"] > config.patience) if use_val else failed
            now = time.monotonic()
            if now - last_log[0] > log_every or epoch == config.epochs:
                last_log[0] = now
                h = history[max(epoch - CHECK_EVERY, 0) : epoch].cpu().numpy()
                means = [
                    float(np.mean(c[np.isfinite(c)])) if np.isfinite(c).any() else math.nan
                    for c in (h[..., 0], h[..., 1])
                ]
                log.info(
                    "%s epoch %d/%d  train %.4f  held-out %.4f  stopped %d/%d",
                    name,
                    epoch,
                    config.epochs,
                    *means,
                    int(done.sum()),
                    k,
                )
            return use_val and bool(done.all())
        return False

    def snapshot(epoch: int) -> None:
        hook(epoch, replica_weights(net, [p.detach() for p in params], shift, scale))

    epoch = run_epochs(
        0,
        config.epochs,
        run_epoch,
        position=lambda: steps[0],
        unsaved="no checkpoints (a short training: the rerun retrains)",
        hook=snapshot if hook is not None else None,
        hook_epochs=hook_epochs,
    )
    final = best if use_val else [p.detach() for p in params]
    best_epoch, failed, failed_epoch = st["best_epoch"], st["failed"], st["failed_epoch"]
    if not use_val:
        best_epoch = torch.full((k,), epoch, dtype=torch.int64, device=dev)
    # a replica that never improved on its held-out loss has no weights worth keeping
    failed |= best_epoch == 0
    weights = replica_weights(net, final, shift, scale)
    statuses = []
    for r in range(k):
        fe = int(failed_epoch[r])
        if bool(failed[r]):
            reason = (
                f"non-finite training loss at epoch {fe}" if fe else "held-out loss never finite"
            )
            statuses.append(ReplicaStatus("failed", reason, fe or None))
        else:
            statuses.append(ReplicaStatus("done"))
        weights[r]["best_epoch"] = torch.tensor([int(best_epoch[r])])
    return TrainResult(
        **TrainResult.outcomes(statuses),
        generator_weights=tuple(weights),
        history=history[:epoch].cpu().numpy(),
        wall_time=time.perf_counter() - start_time,
        device=str(dev),
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


def stack_replicas(
    name: str,
    weights: Sequence[Mapping[str, torch.Tensor]],
    architecture: Mapping,
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

    def draw(start: int, m: int) -> torch.Tensor:
        z = rng.normal(keys, FlowStream.EVAL, 0, (m, dim), offset=start * dim)
        return net.inverse(z).to(torch.float64) * scale + shift

    yield from generate_in_chunks(n, chunk_size, draw)


def bytes_per_event(name: str, architecture: Mapping, dim: int) -> int:
    """Peak memory per generated event and replica (activations), for chunking.

    The flow's is dominated by zuko's spline intermediates, ~40 float32 per spline parameter
    (3 bins per coordinate; 13.7 kB measured in d = 5 with 8 bins, estimated 23 kB); flow
    matching's by the RK4 stages of the velocity field (~16 hidden-sized tensors).
    """
    hidden = int(architecture["hidden"])
    if _model(name).likelihood:
        return 4 * (40 * dim * 3 * int(architecture["bins"]) + 8 * hidden)
    return 4 * 16 * hidden
