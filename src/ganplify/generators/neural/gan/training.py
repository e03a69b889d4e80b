"""Training the paper's GAN as an ensemble of independent replicas, and generating from it.

The protocol (paper section 2, defaults of `GanConfig`): Adam (lr 5e-5, betas (0.5, 0.9)),
lr x 0.9 every 1000 epochs, 10,000 epochs, batch 10, training set reshuffled every epoch,
strictly alternating one discriminator step and one generator step, the gradient penalty of
Roth et al. 2017 with gamma = 0.01, and uniform noise in [-0.1, 0.1] added to the training data
at every discriminator evaluation.

* Losses work on logits. Discriminator: BCE(real = 1) + BCE(fake = 0) + gamma / 2 * Omega with
  Omega = E_real[(1 - D(x))^2 |grad_x logit(x)|^2] + E_fake[D(x)^2 |grad_x logit(x)|^2]; the
  gradient is autograd's (double backward) of the summed logits w.r.t. the [K, 2, B, d] inputs,
  and because every logit depends only on its own replica and set, one gradient call serves
  all. Generator: the non-saturating -log D(G(z)).
* K replicas train as one batched ensemble (see `ganplify.generators.neural.layers`).
  Per-replica losses are summed, so every replica's gradient is its own; one Adam over the
  stacked [K, ...] parameters is exactly K independent Adams because Adam is elementwise.
* Every random draw comes from `ganplify.rng`, keyed by the replica's seed, with a stream id per
  use (`ganplify.streams.GanStream`) and the global step as counter (a device tensor
  incremented in place). Replica k's trajectory is therefore the same in any ensemble, up to
  floating-point rounding, which on a CPU depends on the replica's place: an elementwise
  kernel (the losses' softplus over K x batch values) runs its vector loop over 2 x the SIMD
  width and its remainder in scalar code, so on AVX2 and AVX-512 the replicas whose values
  fall in AVX-512's remainder round differently (none when K x batch is a multiple of 32),
  and a chaotic training grows that.
* Epochs have floor(n_train / batch) steps; a remainder of the shuffled set is dropped for that
  epoch (n_train is a multiple of the batch size in the paper's settings).
* A non-finite loss marks its replica failed ("non-finite discriminator loss at epoch 37",
  epochs counted from 1); from then on its loss is masked out with torch.where, so the other
  replicas are unaffected. The finiteness flags live on the device and are read once per
  epoch, together with the epoch's mean losses (the loss history: d_loss, g_loss and the
  penalty Omega, before the factor gamma / 2).
* Checkpoints: one safetensors + JSON pair per replica, written atomically every
  ``checkpoint_every`` epochs, at the end, and on SIGTERM / SIGUSR1 (after the current step;
  then `Interrupted` is raised). A resumed run ends bit-identical to an uninterrupted one on
  the same device.
* CUDA (see `make_step_runner`): TF32 matmuls and the whole training step
  captured in a CUDA graph, with an eager fallback.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from ganplify import rng
from ganplify.generators.neural import layers as ens_layers
from ganplify.generators.neural.core import (
    EpochHook,
    Progress,
    ReplicaStatus,
    TrainResult,
    check_generate_args,
    generate_in_chunks,
    run_epochs,
)
from ganplify.generators.neural.device import enable_tf32, resolve_device, tune_cpu_allocator
from ganplify.generators.neural.gan import networks as models
from ganplify.generators.neural.gan.checkpoints import (
    checkpoint_files,
    load_state_,
    read_checkpoints,
    save_checkpoints,
)
from ganplify.generators.neural.gan.config import GanConfig
from ganplify.generators.neural.gan.graphs import make_step_runner
from ganplify.generators.neural.gan.step import TrainState, begin_epoch, end_epoch, new_state
from ganplify.generators.neural.io import training_set_digest
from ganplify.streams import GanStream

log = logging.getLogger(__name__)


def train_ensemble(
    train_sets: np.ndarray,
    seeds: Sequence[int],
    config: GanConfig,
    *,
    device: str = "auto",
    checkpoints: Sequence[Path] | None = None,
    config_hash: str = "",
    progress: bool | None = None,
    log_every: float = 60.0,
    hook: EpochHook | None = None,
    hook_epochs: Collection[int] = (),
) -> TrainResult:
    """Train K independent GAN replicas as one batched ensemble.

    Parameters
    ----------
    train_sets : ndarray [K, n_train, d]
        Replica k's training set (float64 truth samples; the networks run in float32).
    seeds : sequence of int
        Replica k's RNG key: its initial weights and every random draw of its training.
    config : GanConfig
    device : str
        "auto", "cpu", "cuda" or "cuda:N" (see `resolve_device`).
    checkpoints : sequence of Path, optional
        One base path per replica; files ``<base>.safetensors`` and ``<base>.json``. When all
        exist with the same step, this ``config_hash``, the same seed and training data, the run
        resumes from them; otherwise it starts fresh and logs why.
    config_hash : str
        The caller's hash of the training parameters, stored in and checked against checkpoints.
    progress : bool, optional
        Progress bar on stderr (default: when stderr is a terminal); otherwise log lines.
    log_every : float
        Seconds between log lines when there is no bar.
    hook, hook_epochs
        ``hook(epoch, weights)`` after each epoch (1-based) in ``hook_epochs``, with every
        replica's generator weights (as `generate` takes them).

    Raises
    ------
    Interrupted
        On SIGTERM or SIGUSR1, after the current step, once the checkpoints are written.
    """
    t0 = time.monotonic()
    dev = resolve_device(device)
    train_sets = np.asarray(train_sets)
    if dev.type == "cuda":
        enable_tf32()
    else:
        tune_cpu_allocator()
    use_graphs = dev.type == "cuda" and config.cuda_graphs != "off"
    state = new_state(train_sets, seeds, config, dev, graphs=use_graphs)
    k, spe = state.n_replicas, state.steps_per_epoch
    history = np.full((config.epochs, k, 3), np.nan)
    statuses = [ReplicaStatus() for _ in range(k)]
    bases = [Path(p) for p in checkpoints] if checkpoints is not None else None
    if bases is not None and len(bases) != k:
        raise ValueError(f"got {len(bases)} checkpoint paths for {k} replicas")
    digests = [training_set_digest(train_sets[i]) for i in range(k)]
    start_epoch = _maybe_resume(state, bases, history, statuses, seeds, config_hash, digests)

    def save() -> None:
        if bases is not None:
            save_checkpoints(
                state,
                bases,
                history,
                statuses,
                seeds=seeds,
                config_hash=config_hash,
                digests=digests,
            )

    runner, graphed = make_step_runner(state, config.cuda_graphs)
    bar = Progress(config.epochs, start_epoch, progress, log_every, LOSS_COLUMNS)

    def run_epoch(epoch: int, stop: Callable[[], None]) -> bool:
        begin_epoch(state, epoch)
        for pos in range(int(state.step.item()) - epoch * spe, spe):
            runner()
            # at an epoch's last step the stop waits until the epoch is booked, so that a
            # checkpoint at an epoch boundary always holds the whole history
            if pos < spe - 1:
                stop()
        _book_epoch(state, epoch, history, statuses, bar)
        return False

    def snapshot(epoch: int) -> None:
        hook(epoch, [ens_layers.replica_state_dict(state.generator, i) for i in range(k)])

    try:
        run_epochs(
            start_epoch,
            config.epochs,
            run_epoch,
            position=lambda: int(state.step.item()),
            save=save if bases is not None else None,
            checkpoint_every=config.checkpoint_every,
            hook=snapshot if hook is not None else None,
            hook_epochs=hook_epochs,
        )
        for st in statuses:
            if st.status == "running":
                st.status = "done"
        save()
    finally:
        bar.close()
    return TrainResult(
        **TrainResult.outcomes(statuses),
        generator_weights=tuple(
            ens_layers.replica_state_dict(state.generator, i) for i in range(k)
        ),
        history=history,
        wall_time=time.monotonic() - t0,
        device=str(dev),
        resumed_from_epoch=start_epoch,
        cuda_graph=graphed,
        architecture=state.arch,
    )


def _update_statuses(
    statuses: Sequence[ReplicaStatus],
    alive: np.ndarray,
    d_failed: np.ndarray,
    epoch: int,
) -> None:
    """Mark replicas that stopped being alive during ``epoch`` (1-based) as failed."""
    for k, st in enumerate(statuses):
        if st.status != "failed" and not alive[k]:
            which = "discriminator" if d_failed[k] else "generator"
            st.status, st.failed_epoch = "failed", epoch
            st.reason = f"non-finite {which} loss at epoch {epoch}"
            log.warning("replica %d failed: %s", k, st.reason)


def _book_epoch(
    state: TrainState,
    epoch: int,
    history: np.ndarray,
    statuses: Sequence[ReplicaStatus],
    bar: Progress,
) -> None:
    """Record a finished epoch (0-based): losses, newly failed replicas, progress."""
    means, alive, d_failed = end_epoch(state)
    _update_statuses(statuses, alive, d_failed, epoch + 1)
    means[~alive] = np.nan
    history[epoch] = means
    bar.update(epoch + 1, means, int(alive.sum()))


def _maybe_resume(
    state: TrainState,
    bases: Sequence[Path] | None,
    history: np.ndarray,
    statuses: list[ReplicaStatus],
    seeds: Sequence[int],
    config_hash: str,
    digests: Sequence[str],
) -> int:
    """Resume from checkpoints when they are consistent; returns the epoch to start in."""
    if bases is None:
        return 0
    if not any(checkpoint_files(b)[1].exists() for b in bases):
        return 0
    loaded, why = read_checkpoints(bases, seeds=seeds, config_hash=config_hash, digests=digests)
    if loaded is None:
        log.info("starting fresh: %s", why)
        return 0
    step = int(loaded[0][0]["step"])
    if step > state.config.epochs * state.steps_per_epoch:
        log.info(
            "starting fresh: the checkpoints are at step %d, beyond the %d epochs asked for",
            step,
            state.config.epochs,
        )
        return 0
    past = load_state_(state, loaded)
    n_done = min(past.shape[0], history.shape[0])
    history[:n_done] = past[:n_done]
    for st, (meta, _) in zip(statuses, loaded, strict=True):
        st.status = "failed" if meta["status"] == "failed" else "running"
        st.reason, st.failed_epoch = meta["reason"], meta["failed_epoch"]
    log.info("resuming from step %d (epoch %d)", step, step // state.steps_per_epoch)
    return step // state.steps_per_epoch


LOSS_COLUMNS = ("d_loss", "g_loss", "penalty")


def generator_architecture(
    weights: Mapping[str, torch.Tensor], dropout: float
) -> models.Architecture:
    """The generator architecture a PlainGenerator state dict belongs to."""
    layers = sum(1 for name in weights if name.startswith("hidden.") and name.endswith(".weight"))
    first = weights["hidden.0.weight"]
    return models.Architecture(
        dim=int(weights["out.weight"].shape[0]),
        noise_dim=int(first.shape[1]),
        hidden=int(first.shape[0]),
        layers=layers,
        dropout=dropout,
    )


def stack_generators(
    weights: Sequence[Mapping[str, torch.Tensor]],
    device: str | torch.device = "cpu",
    dropout: float = 0.5,
) -> models.EnsembleGenerator:
    """One ensemble from K replicas' generator weights (PlainGenerator state dicts)."""
    arch = generator_architecture(weights[0], dropout)
    gen = models.EnsembleGenerator(arch, len(weights), resolve_device(device))
    ens_layers.load_replica_state_dicts_(gen, weights)
    return gen


def generate(
    generator_weights: Sequence[Mapping[str, torch.Tensor]],
    seeds: Sequence[int],
    n: int,
    chunk_size: int = 1024,
    device: str = "auto",
    *,
    dropout: float = 0.5,
) -> Iterator[np.ndarray]:
    """Generate ``n`` events per replica, in chunks, with dropout active (as the paper).

    Parameters
    ----------
    generator_weights : sequence of dict
        K replicas' PlainGenerator state dicts (e.g. `TrainResult.generator_weights` or
        `load_generator`).
    seeds : sequence of int
        Replica k's RNG key. Its draws use dedicated evaluation streams indexed by event number,
        so replica k's events depend only on its weights and seed: not on the training draws,
        on the other replicas, or on ``chunk_size`` (beyond float32 rounding of the matmuls).
    n : int
        Events per replica.
    chunk_size : int
        Events per replica per chunk. Memory is about K * chunk_size * (20 noise_dim +
        10 layers * hidden) bytes.
    device : str
        See `resolve_device`.
    dropout : float
        Dropout probability (the architecture's; the paper's is 0.5).

    Yields
    ------
    ndarray, float64, [K, m, d] with m <= chunk_size; the chunks concatenate to [K, n, d].
    """
    check_generate_args(len(seeds), len(generator_weights), n, chunk_size)
    dev = resolve_device(device)
    gen = stack_generators(generator_weights, dev, dropout)
    arch = gen.arch
    keys = rng.replica_keys(seeds, dev)

    def draw(start: int, m: int) -> torch.Tensor:
        z = rng.uniform_range(
            keys,
            GanStream.EVAL_NOISE,
            0,
            (m, arch.noise_dim),
            -1.0,
            1.0,
            offset=start * arch.noise_dim,
        )
        masks = (
            torch.stack(
                [
                    rng.keep_mask(
                        keys,
                        GanStream.EVAL_DROPOUT,
                        layer,
                        (m, arch.hidden),
                        dropout,
                        offset=start * arch.hidden,
                    )
                    for layer in range(arch.layers)
                ],
                dim=1,
            )
            .to(torch.float32)
            .mul_(1.0 / (1.0 - dropout))
        )
        return gen(z, masks).to(torch.float64)

    yield from generate_in_chunks(n, chunk_size, draw)
