"""One training step of the GAN ensemble: random draws, losses, the state it updates.

`train_step` has no host synchronisation and no data-dependent control flow, so the same
function runs eagerly and inside a CUDA graph capture (`ganplify.generators.neural.gan.graphs`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
import torch
import torch.nn.functional as F

from ganplify import rng
from ganplify.generators.neural import layers as ens_layers
from ganplify.generators.neural.gan import networks as models
from ganplify.generators.neural.gan.config import GanConfig
from ganplify.signals import STOP_SIGNALS, SignalFlag, catch_signals  # noqa: F401 (API)
from ganplify.streams import GanStream


@dataclass(frozen=True)
class StepDraws:
    """All random numbers of one training step, per replica (leading axis K)."""

    d_noise: torch.Tensor  # [K, B, N]: generator input of the discriminator step
    d_generator_masks: torch.Tensor  # [K, L, B, H]
    data_noise: torch.Tensor  # [K, B, d]: added to the real batch
    d_masks: torch.Tensor  # [K, L, 2B, H]: discriminator on [real, fake]
    g_noise: torch.Tensor  # [K, B, N]: generator input of the generator step
    g_generator_masks: torch.Tensor  # [K, L, B, H]
    g_masks: torch.Tensor  # [K, L, B, H]: discriminator on fake

    def replica(self, k: int) -> StepDraws:
        """Replica k's draws with the replica axis kept (length 1)."""
        return StepDraws(**{f.name: getattr(self, f.name)[k : k + 1] for f in fields(self)})


def dropout_masks(
    keys: torch.Tensor, stream: int, counter: rng.Counter, shape: Sequence[int], p: float
) -> torch.Tensor:
    """Float dropout multipliers (0 or 1 / (1 - p)), tensor [K, *shape]."""
    keep = rng.keep_mask(keys, stream, counter, shape, p)
    return keep.to(torch.float32).mul_(1.0 / (1.0 - p))


def draw_step(
    keys: torch.Tensor, counter: rng.Counter, arch: models.Architecture, config: GanConfig
) -> StepDraws:
    """Draw every random number of training step ``counter``."""
    b, n, h, layers, p = config.batch_size, arch.noise_dim, arch.hidden, arch.layers, arch.dropout
    return StepDraws(
        d_noise=rng.uniform_range(keys, GanStream.D_STEP_NOISE, counter, (b, n), -1.0, 1.0),
        d_generator_masks=dropout_masks(
            keys, GanStream.D_STEP_GENERATOR_DROPOUT, counter, (layers, b, h), p
        ),
        data_noise=rng.uniform_range(
            keys,
            GanStream.D_STEP_DATA_NOISE,
            counter,
            (b, arch.dim),
            -config.data_noise,
            config.data_noise,
        ),
        d_masks=dropout_masks(
            keys, GanStream.D_STEP_DISCRIMINATOR_DROPOUT, counter, (layers, 2 * b, h), p
        ),
        g_noise=rng.uniform_range(keys, GanStream.G_STEP_NOISE, counter, (b, n), -1.0, 1.0),
        g_generator_masks=dropout_masks(
            keys, GanStream.G_STEP_GENERATOR_DROPOUT, counter, (layers, b, h), p
        ),
        g_masks=dropout_masks(
            keys, GanStream.G_STEP_DISCRIMINATOR_DROPOUT, counter, (layers, b, h), p
        ),
    )


def discriminator_objective(
    logit_real: torch.Tensor,
    logit_fake: torch.Tensor,
    grad_sq_real: torch.Tensor,
    grad_sq_fake: torch.Tensor,
    gamma: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Discriminator loss and penalty Omega from logits and squared input-gradient norms.

    All inputs have the batch on the last axis; means are over it. Returns (loss, Omega) with
    loss = BCE(real = 1) + BCE(fake = 0) + gamma / 2 * Omega.
    """
    d_real = torch.sigmoid(logit_real)
    d_fake = torch.sigmoid(logit_fake)
    omega = ((1.0 - d_real).square() * grad_sq_real).mean(-1) + (
        d_fake.square() * grad_sq_fake
    ).mean(-1)
    # BCE on logits: -log sigmoid(l) = softplus(-l), -log(1 - sigmoid(l)) = softplus(l)
    bce = F.softplus(-logit_real).mean(-1) + F.softplus(logit_fake).mean(-1)
    return bce + 0.5 * gamma * omega, omega


def generator_objective(logit_fake: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss -log D(G(z)), mean over the last axis."""
    return F.softplus(-logit_fake).mean(-1)


def ensemble_discriminator_loss(
    disc: models.EnsembleDiscriminator,
    real: torch.Tensor,
    fake: torch.Tensor,
    masks: torch.Tensor,
    gamma: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-replica discriminator loss and Omega, tensors [K], for batches [K, B, d]."""
    x = torch.stack([real, fake], dim=1).requires_grad_(True)  # [K, 2, B, d]
    logits = disc(x, masks)  # [K, 2, B]
    (grad,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
    grad_sq = grad.square().sum(-1)
    return discriminator_objective(logits[:, 0], logits[:, 1], grad_sq[:, 0], grad_sq[:, 1], gamma)


@dataclass
class TrainState:
    """Everything the training step reads and writes; all tensors live on one device.

    The step only updates tensors in place, so a CUDA graph captured once stays valid.
    """

    config: GanConfig
    arch: models.Architecture
    generator: models.EnsembleGenerator
    discriminator: models.EnsembleDiscriminator
    opt_g: torch.optim.Adam
    opt_d: torch.optim.Adam
    keys: torch.Tensor  # [K] int64 RNG keys
    data: torch.Tensor  # [K, n_train, d] float32
    perm: torch.Tensor  # [K, n_train] int64, this epoch's order
    step: torch.Tensor  # [] int64, global step = RNG counter
    alive: torch.Tensor  # [K] bool
    d_failed: torch.Tensor  # [K] bool, a non-finite discriminator loss was seen
    g_failed: torch.Tensor  # [K] bool
    sums: torch.Tensor  # [K, 3] float64, this epoch's sums of (d_loss, g_loss, Omega)
    batch_offsets: torch.Tensor  # [B] int64, arange(B)

    @property
    def n_replicas(self) -> int:
        return int(self.keys.shape[0])

    @property
    def steps_per_epoch(self) -> int:
        return self.data.shape[1] // self.config.batch_size

    @property
    def device(self) -> torch.device:
        return self.keys.device


def _make_adam(
    params: Sequence[torch.nn.Parameter], config: GanConfig, device: torch.device, graphs: bool
) -> torch.optim.Adam:
    """One Adam over stacked replica parameters, with its state initialised (zeros)."""
    if graphs:
        # capturable Adam keeps step and lr on the device so the graph can update them
        lr = torch.tensor(config.lr, dtype=torch.float32, device=device)
        opt = torch.optim.Adam(params, lr=lr, betas=config.betas, capturable=True, foreach=True)
    else:
        opt = torch.optim.Adam(params, lr=config.lr, betas=config.betas, fused=True)
    group = opt.param_groups[0]
    on_device = group["capturable"] or group["fused"]
    for p in params:
        opt.state[p] = {
            "step": torch.zeros((), dtype=torch.float32, device=p.device if on_device else "cpu"),
            "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
            "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format),
        }
    return opt


def new_state(
    train_sets: np.ndarray,
    seeds: Sequence[int],
    config: GanConfig,
    device: torch.device,
    *,
    graphs: bool = False,
) -> TrainState:
    """Freshly initialised ensemble for K training sets [K, n_train, d] and K seeds."""
    data = torch.as_tensor(np.asarray(train_sets), dtype=torch.float32).to(device)
    if data.ndim != 3:
        raise ValueError(f"train_sets must have shape [K, n_train, d], got {tuple(data.shape)}")
    k, n, d = data.shape
    if len(seeds) != k:
        raise ValueError(f"got {len(seeds)} seeds for {k} training sets")
    if n < config.batch_size:
        raise ValueError(f"n_train = {n} is smaller than batch_size = {config.batch_size}")
    arch = config.architecture(d)
    keys = rng.replica_keys(seeds, device)
    gen = models.EnsembleGenerator(arch, k, device)
    disc = models.EnsembleDiscriminator(arch, k, device)
    ens_layers.init_replicas_(gen, keys, GanStream.INIT_GENERATOR)
    ens_layers.init_replicas_(disc, keys, GanStream.INIT_DISCRIMINATOR)
    return TrainState(
        config=config,
        arch=arch,
        generator=gen,
        discriminator=disc,
        opt_g=_make_adam(list(gen.parameters()), config, device, graphs),
        opt_d=_make_adam(list(disc.parameters()), config, device, graphs),
        keys=keys,
        data=data,
        perm=torch.zeros(k, n, dtype=torch.int64, device=device),
        step=torch.zeros((), dtype=torch.int64, device=device),
        alive=torch.ones(k, dtype=torch.bool, device=device),
        d_failed=torch.zeros(k, dtype=torch.bool, device=device),
        g_failed=torch.zeros(k, dtype=torch.bool, device=device),
        sums=torch.zeros(k, 3, dtype=torch.float64, device=device),
        batch_offsets=torch.arange(config.batch_size, device=device),
    )


def set_learning_rate(opt: torch.optim.Optimizer, value: float) -> None:
    """Set the learning rate in place (a device tensor stays the same tensor for CUDA graphs)."""
    for group in opt.param_groups:
        if isinstance(group["lr"], torch.Tensor):
            group["lr"].fill_(value)
        else:
            group["lr"] = value


def begin_epoch(state: TrainState, epoch: int) -> None:
    """Set the epoch's learning rate and draw its batch order (outside any CUDA graph)."""
    lr = state.config.learning_rate(epoch)
    set_learning_rate(state.opt_g, lr)
    set_learning_rate(state.opt_d, lr)
    perm = rng.permutations(state.keys, GanStream.PERMUTATION, epoch, state.data.shape[1])
    state.perm.copy_(perm)


def current_batch(state: TrainState) -> torch.Tensor:
    """The real batch of the current step, [K, B, d], selected on the device."""
    pos = torch.remainder(state.step, state.steps_per_epoch)
    index = state.perm.index_select(1, pos * state.config.batch_size + state.batch_offsets)
    d = state.data.shape[2]
    return torch.gather(state.data, 1, index.unsqueeze(-1).expand(-1, -1, d))


def _record_finite(loss: torch.Tensor, alive: torch.Tensor, failed: torch.Tensor) -> None:
    """Mark replicas whose loss is not finite as failed (in place, on the device)."""
    finite = torch.isfinite(loss)
    failed.logical_or_(alive & ~finite)
    alive.logical_and_(finite)


def _set_gradients(loss: torch.Tensor, params: Sequence[torch.nn.Parameter]) -> None:
    """Set ``p.grad`` to d loss / d p for the given parameters only.

    Assigning autograd.grad's results skips AccumulateGrad, which copies every gradient once
    more, and touches no other parameter's gradient. A gradient whose memory layout differs
    from its parameter's (the double backward yields transposed weight gradients) is made
    contiguous, because the fused Adam kernel pairs elements by memory position.
    """
    grads = torch.autograd.grad(loss, params)
    for p, g in zip(params, grads, strict=True):
        p.grad = g.contiguous()  # a no-op when it already is


def train_step(state: TrainState) -> None:
    """One discriminator step then one generator step for all replicas, in place.

    No host synchronisation and no data-dependent control flow: the same function runs eagerly
    and inside a CUDA graph capture.
    """
    cfg, gen, disc = state.config, state.generator, state.discriminator
    draws = draw_step(state.keys, state.step, state.arch, cfg)

    # discriminator step
    with torch.no_grad():
        fake = gen(draws.d_noise, draws.d_generator_masks)
    real = current_batch(state) + draws.data_noise
    d_loss, omega = ensemble_discriminator_loss(disc, real, fake, draws.d_masks, cfg.gamma)
    _record_finite(d_loss, state.alive, state.d_failed)
    _set_gradients(torch.where(state.alive, d_loss, 0.0).sum(), list(disc.parameters()))
    state.opt_d.step()

    # generator step, against the updated discriminator
    fake = gen(draws.g_noise, draws.g_generator_masks)
    g_loss = generator_objective(disc(fake.unsqueeze(1), draws.g_masks)[:, 0])
    _record_finite(g_loss, state.alive, state.g_failed)
    _set_gradients(torch.where(state.alive, g_loss, 0.0).sum(), list(gen.parameters()))
    state.opt_g.step()

    state.sums.add_(torch.stack([d_loss, g_loss, omega], dim=1).detach())
    state.step.add_(1)


def end_epoch(state: TrainState) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read and reset the epoch's accumulators: (mean losses [K, 3], alive, d_failed).

    This is the one host synchronisation per epoch.
    """
    means = (state.sums / state.steps_per_epoch).cpu().numpy()
    alive, d_failed = state.alive.cpu().numpy(), state.d_failed.cpu().numpy()
    state.sums.zero_()
    return means, alive, d_failed
