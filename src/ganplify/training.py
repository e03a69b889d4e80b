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
* K replicas train as one batched ensemble (see `ganplify.models`). Per-replica losses are
  summed, so every replica's gradient is its own; one Adam over the stacked [K, ...] parameters
  is exactly K independent Adams because Adam is elementwise.
* Every random draw comes from `ganplify.rng`, keyed by the replica's seed, with a stream id per
  use (`Stream`) and the global step as counter (a device tensor incremented in place). Replica
  k's trajectory is therefore the same in any ensemble, up to floating-point rounding of the
  batched matmuls.
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
* CUDA (untested on hardware, see `make_step_runner`): TF32 matmuls and the whole training step
  captured in a CUDA graph, with an eager fallback.
"""

from __future__ import annotations

import contextlib
import csv
import ctypes
import hashlib
import json
import logging
import math
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from enum import IntEnum
from pathlib import Path

import numpy as np
import safetensors.torch
import torch
import torch.nn.functional as F

from ganplify import models, rng
from ganplify.signals import STOP_SIGNALS, SignalFlag, catch_signals  # noqa: F401 (API)

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "ganplify-gan-checkpoint-1"
GENERATOR_FORMAT = "ganplify-generator-1"
CUDA_GRAPH_MODES = ("auto", "on", "off")


class Stream(IntEnum):
    """Random stream ids: one per use, so that no two uses share numbers."""

    INIT_GENERATOR = 1
    INIT_DISCRIMINATOR = 2
    PERMUTATION = 3  # counter: epoch
    D_STEP_NOISE = 4  # the rest of the training streams: counter = global step
    D_STEP_GENERATOR_DROPOUT = 5
    D_STEP_DATA_NOISE = 6
    D_STEP_DISCRIMINATOR_DROPOUT = 7
    G_STEP_NOISE = 8
    G_STEP_GENERATOR_DROPOUT = 9
    G_STEP_DISCRIMINATOR_DROPOUT = 10
    EVAL_NOISE = 1001  # generation for evaluation: counter 0, offset = event index
    EVAL_DROPOUT = 1002  # counter = layer, offset = event index


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class GanConfig:
    """The training protocol; defaults are the paper's.

    Parameters
    ----------
    epochs : int
        Passes over the training set (10,000).
    batch_size : int
        Points per batch (10); also the set size the discriminator aggregates over.
    lr : float
        Adam learning rate (5e-5) of both networks.
    betas : tuple of float
        Adam betas (0.5, 0.9).
    lr_decay, lr_decay_every : float, int
        The learning rate is multiplied by ``lr_decay`` (0.9) every ``lr_decay_every`` (1000)
        epochs.
    gamma : float
        Weight of the Roth et al. gradient penalty (0.01); the loss adds gamma / 2 * Omega.
    data_noise : float
        Half-width of the uniform noise added to the training data at every discriminator
        evaluation (0.1).
    noise_dim, hidden, layers, dropout, embedding, set_input
        Architecture (see `ganplify.models.Architecture`).
    checkpoint_every : int
        Checkpoint interval in epochs (0: only at the end and on signals). Does not change
        results.
    cuda_graphs : {"auto", "on", "off"}
        Capture the training step in a CUDA graph: "auto" on CUDA with an eager fallback, "on"
        required (error when impossible), "off" never. Does not change results beyond
        floating-point rounding.
    """

    epochs: int = 10_000
    batch_size: int = 10
    lr: float = 5e-5
    betas: tuple[float, float] = (0.5, 0.9)
    lr_decay: float = 0.9
    lr_decay_every: int = 1000
    gamma: float = 0.01
    data_noise: float = 0.1
    noise_dim: int = 1000
    hidden: int = 256
    layers: int = 7
    dropout: float = 0.5
    embedding: int = 32
    set_input: str = "differences"
    checkpoint_every: int = 500
    cuda_graphs: str = "auto"

    def __post_init__(self) -> None:
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        for name in ("epochs", "batch_size", "lr_decay_every"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.checkpoint_every < 0:
            raise ValueError(f"checkpoint_every must be >= 0, got {self.checkpoint_every}")
        if not (self.lr > 0 and self.lr_decay > 0 and self.gamma >= 0 and self.data_noise >= 0):
            raise ValueError("lr and lr_decay must be positive, gamma and data_noise >= 0")
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas}")
        if self.cuda_graphs not in CUDA_GRAPH_MODES:
            raise ValueError(f"cuda_graphs must be one of {CUDA_GRAPH_MODES}")
        if self.batch_size < 2:
            raise ValueError("batch_size must be >= 2 (the discriminator takes a set's std)")
        self.architecture(1)  # validates the architecture fields

    @classmethod
    def from_mapping(cls, values: Mapping[str, object]) -> GanConfig:
        """Build from a mapping (e.g. a YAML section); unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown GAN config keys {unknown}; allowed: {sorted(known)}")
        return cls(**values)  # type: ignore[arg-type]

    def training_parameters(self) -> dict[str, object]:
        """The fields that change results (for hashing): all but checkpoint_every, cuda_graphs."""
        out = asdict(self)
        del out["checkpoint_every"], out["cuda_graphs"]
        out["betas"] = list(self.betas)
        return out

    def architecture(self, dim: int) -> models.Architecture:
        """The networks' sizes for phase-space dimension ``dim``."""
        return models.Architecture(
            dim=dim,
            noise_dim=self.noise_dim,
            hidden=self.hidden,
            layers=self.layers,
            dropout=self.dropout,
            embedding=self.embedding,
            set_input=self.set_input,
        )

    def learning_rate(self, epoch: int) -> float:
        """Learning rate during ``epoch`` (0-based)."""
        return self.lr * self.lr_decay ** (epoch // self.lr_decay_every)


# --------------------------------------------------------------------------- device


def resolve_device(spec: str | torch.device = "auto") -> torch.device:
    """Turn "auto", "cpu", "cuda" or "cuda:N" into a torch.device.

    "auto" is CUDA when available, else the CPU. Asking for CUDA where there is none is an
    error that says so, rather than a silent fallback.
    """
    text = str(spec).strip().lower()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if text == "cpu":
        return torch.device("cpu")
    if text == "cuda" or text.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise RuntimeError(
                f"device {spec!r} was requested but CUDA is not available (torch "
                f"{torch.__version__}, built for CUDA {torch.version.cuda}); "
                "use device 'cpu' or 'auto'"
            )
        device = torch.device(text)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise RuntimeError(
                f"device {spec!r} was requested but only {torch.cuda.device_count()} "
                "CUDA device(s) are visible"
            )
        return device
    raise ValueError(f"unknown device {spec!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'")


def enable_tf32() -> None:
    """Let float32 matmuls use TF32 tensor cores on CUDA (about 10 mantissa bits per product)."""
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.set_float32_matmul_precision("high")


def tune_cpu_allocator() -> bool:
    """Keep freed memory in glibc's heap instead of returning it to the OS after every op.

    With glibc's defaults every multi-megabyte tensor is a fresh mmap whose pages fault in on
    first touch, which on CPU can cost more than the arithmetic. Raising the mmap and trim
    thresholds (a process-wide setting) removes that. Returns whether it was applied (glibc
    on Linux only).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    ok = libc.mallopt(m_mmap_threshold, 1 << 30) == 1
    ok = libc.mallopt(m_trim_threshold, 1 << 31) == 1 and ok
    return ok


# --------------------------------------------------------------------------- random draws


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
        d_noise=rng.uniform_range(keys, Stream.D_STEP_NOISE, counter, (b, n), -1.0, 1.0),
        d_generator_masks=dropout_masks(
            keys, Stream.D_STEP_GENERATOR_DROPOUT, counter, (layers, b, h), p
        ),
        data_noise=rng.uniform_range(
            keys, Stream.D_STEP_DATA_NOISE, counter, (b, arch.dim),
            -config.data_noise, config.data_noise,
        ),
        d_masks=dropout_masks(
            keys, Stream.D_STEP_DISCRIMINATOR_DROPOUT, counter, (layers, 2 * b, h), p
        ),
        g_noise=rng.uniform_range(keys, Stream.G_STEP_NOISE, counter, (b, n), -1.0, 1.0),
        g_generator_masks=dropout_masks(
            keys, Stream.G_STEP_GENERATOR_DROPOUT, counter, (layers, b, h), p
        ),
        g_masks=dropout_masks(
            keys, Stream.G_STEP_DISCRIMINATOR_DROPOUT, counter, (layers, b, h), p
        ),
    )


# --------------------------------------------------------------------------- losses


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
    return discriminator_objective(
        logits[:, 0], logits[:, 1], grad_sq[:, 0], grad_sq[:, 1], gamma
    )


# --------------------------------------------------------------------------- ensemble state


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
    models.init_replicas_(gen, keys, Stream.INIT_GENERATOR)
    models.init_replicas_(disc, keys, Stream.INIT_DISCRIMINATOR)
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
    perm = rng.permutations(state.keys, Stream.PERMUTATION, epoch, state.data.shape[1])
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


# --------------------------------------------------------------------------- plain reference


def plain_train_step(
    gen: models.PlainGenerator,
    disc: models.PlainDiscriminator,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    real: torch.Tensor,
    config: GanConfig,
    draws: StepDraws | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The same training step for one replica as plain nn.Modules (reference and baseline).

    Parameters
    ----------
    real : Tensor [B, d]
        The real batch (before the data noise).
    draws : StepDraws, optional
        One replica's draws (replica axis of length 1, see `StepDraws.replica`). Without them
        the step draws from torch's global generator, with F.dropout, like ordinary code.

    Returns
    -------
    (d_loss, g_loss, Omega) as 0-d tensors.
    """
    b, arch = real.shape[0], gen.arch
    if draws is None:
        dev = real.device  # the plain path ran on the CPU only until a GPU run found this
        z_d = torch.rand(b, arch.noise_dim, device=dev) * 2 - 1
        noise = (torch.rand(b, arch.dim, device=dev) * 2 - 1) * config.data_noise
        z_g = torch.rand(b, arch.noise_dim, device=dev) * 2 - 1
        gm_d = dm = gm_g = gmd = None
        dm_real = dm_fake = None
    else:
        z_d, noise, z_g = draws.d_noise[0], draws.data_noise[0], draws.g_noise[0]
        gm_d, dm, gm_g, gmd = (
            draws.d_generator_masks[0], draws.d_masks[0],
            draws.g_generator_masks[0], draws.g_masks[0],
        )
        dm_real, dm_fake = dm[:, :b], dm[:, b:]

    with torch.no_grad():
        fake = gen(z_d, gm_d)
    x_real = (real + noise).requires_grad_(True)
    x_fake = fake.detach().requires_grad_(True)
    logit_real = disc(x_real, dm_real)
    logit_fake = disc(x_fake, dm_fake)
    g_real, g_fake = torch.autograd.grad(
        logit_real.sum() + logit_fake.sum(), (x_real, x_fake), create_graph=True
    )
    d_loss, omega = discriminator_objective(
        logit_real, logit_fake, g_real.square().sum(-1), g_fake.square().sum(-1), config.gamma
    )
    opt_d.zero_grad(set_to_none=True)
    d_loss.backward(inputs=list(disc.parameters()))
    opt_d.step()

    g_loss = generator_objective(disc(gen(z_g, gm_g), gmd))
    opt_g.zero_grad(set_to_none=True)
    g_loss.backward(inputs=list(gen.parameters()))
    opt_g.step()
    return d_loss.detach(), g_loss.detach(), omega.detach()


# --------------------------------------------------------------------------- CUDA graphs


def _state_tensors(state: TrainState) -> list[torch.Tensor]:
    """Every tensor the training step modifies (parameters, Adam state, counters, flags)."""
    out: list[torch.Tensor] = [*state.generator.parameters(), *state.discriminator.parameters()]
    for opt in (state.opt_g, state.opt_d):
        for p in opt.param_groups[0]["params"]:
            out.extend(opt.state[p][name] for name in ("step", "exp_avg", "exp_avg_sq"))
    out.extend([state.step, state.alive, state.d_failed, state.g_failed, state.sums])
    return out


def _snapshot(state: TrainState) -> list[torch.Tensor]:
    with torch.no_grad():
        return [t.detach().clone() for t in _state_tensors(state)]


def _restore(state: TrainState, snapshot: Sequence[torch.Tensor]) -> None:
    with torch.no_grad():
        for t, saved in zip(_state_tensors(state), snapshot, strict=True):
            t.copy_(saved)


def _capture_graph(state: TrainState, warmup: int = 3) -> torch.cuda.CUDAGraph:
    """Capture `train_step` in a CUDA graph; the state is left as it was before.

    As the torch docs require, a few eager warm-up steps run on a side stream first (they
    create the autograd and cuBLAS workspaces); they change the state, so it is snapshotted
    before and restored in place (same tensors, so the graph's addresses stay valid) after.
    """
    before = _snapshot(state)
    side = torch.cuda.Stream(device=state.device)
    side.wait_stream(torch.cuda.current_stream(state.device))
    with torch.cuda.stream(side):
        for _ in range(warmup):
            train_step(state)
    torch.cuda.current_stream(state.device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        train_step(state)
    torch.cuda.synchronize(state.device)
    _restore(state, before)
    return graph


def _compare_snapshots(
    graph: Sequence[torch.Tensor], eager: Sequence[torch.Tensor], lr: float
) -> str | None:
    """Why a graph-replayed step disagrees with an eager one, or None when they agree.

    Adam normalises updates, so parameters may differ by up to ~2 lr where a gradient's sign
    is decided by rounding; everything else must agree to float32 rounding (relative 1e-4).
    """
    for i, (a, b) in enumerate(zip(graph, eager, strict=True)):
        if a.dtype == torch.bool or a.dtype == torch.int64:
            if not torch.equal(a, b):
                return f"state tensor {i} (integer/flag) differs"
            continue
        a64, b64 = a.double(), b.double()
        if not torch.equal(torch.isfinite(a64), torch.isfinite(b64)):
            return f"state tensor {i}: finiteness differs"
        diff = (a64 - b64).nan_to_num().abs().max().item() if a.numel() else 0.0
        scale = b64.nan_to_num().abs().max().item() if b.numel() else 0.0
        if diff > max(1e-4 * scale, 2.5 * lr):
            return f"state tensor {i} differs by {diff:.3g} (scale {scale:.3g})"
    return None


def make_step_runner(state: TrainState, mode: str) -> tuple[Callable[[], None], bool]:
    """The function that runs one training step, and whether it replays a CUDA graph.

    On CUDA with ``mode`` "auto" or "on", the whole step (D step, G step, both optimiser
    steps) is captured in one CUDA graph, which removes the per-kernel launch overhead. Before
    it is trusted, one replayed step is compared with one eager step from the same state; the
    state is then put back, so the graph changes nothing but speed. Under "auto" any failure
    (capture error, disagreement) logs a warning and falls back to eager execution; under
    "on" it raises.

    UNTESTED ON HARDWARE: this path was written without access to a GPU. It follows the torch
    documentation for whole-network capture (static input tensors, counters and learning rates
    as device tensors updated in place, Adam(capturable=True), warm-up on a side stream) and
    checks itself as described, but it has never been run.
    """
    if state.device.type != "cuda" or mode == "off":
        if mode == "on":
            raise ValueError("cuda_graphs='on' needs a CUDA device")
        return _eager_runner(state), False
    return checked_graph_runner(state, mode, _capture_graph)


def _eager_runner(state: TrainState) -> Callable[[], None]:
    def eager() -> None:
        train_step(state)

    return eager


def checked_graph_runner(
    state: TrainState, mode: str, capture: Callable[[TrainState], object]
) -> tuple[Callable[[], None], bool]:
    """Capture with ``capture`` (returns an object with ``replay()``), check, or fall back.

    One replayed step is compared with one eager step from the same state, and the state is
    then restored, so the first training step of the run is the graph's. Any failure raises
    under ``mode == "on"`` and otherwise logs a warning and returns the eager runner.
    (Separated from `make_step_runner` so that this logic can be tested without a GPU.)
    """
    before = _snapshot(state)
    try:
        graph = capture(state)
        graph.replay()
        after_graph = _snapshot(state)
        _restore(state, before)
        train_step(state)
        problem = _compare_snapshots(after_graph, _snapshot(state), state.config.lr)
        _restore(state, before)
        if problem is not None:
            raise RuntimeError(f"graph replay disagrees with eager execution: {problem}")
    except Exception as exc:
        _restore(state, before)
        if mode == "on":
            raise
        log.warning("CUDA graph capture failed (%s); training eagerly instead", exc)
        return _eager_runner(state), False
    log.info("training step captured in a CUDA graph (checked against an eager step)")
    return graph.replay, True


# --------------------------------------------------------------------------- replica status


@dataclass
class ReplicaStatus:
    """Outcome of one replica so far."""

    status: str = "running"  # "running", then "done" or "failed"
    reason: str = ""
    failed_epoch: int | None = None


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


def end_epoch(state: TrainState) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read and reset the epoch's accumulators: (mean losses [K, 3], alive, d_failed).

    This is the one host synchronisation per epoch.
    """
    means = (state.sums / state.steps_per_epoch).cpu().numpy()
    alive, d_failed = state.alive.cpu().numpy(), state.d_failed.cpu().numpy()
    state.sums.zero_()
    return means, alive, d_failed


# --------------------------------------------------------------------------- checkpoints


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every file system lets a directory be opened
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: temp file in the same folder, fsync, rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    _fsync_dir(path.parent)


def checkpoint_files(base: Path) -> tuple[Path, Path]:
    """(tensor file, JSON file) of a checkpoint base (a .safetensors/.json suffix is dropped)."""
    base = Path(base)
    if base.suffix in (".safetensors", ".json"):
        base = base.with_suffix("")
    return base.with_name(base.name + ".safetensors"), base.with_name(base.name + ".json")


def data_digest(data: np.ndarray) -> str:
    """sha256 of one replica's training set as float32 (what the networks see)."""
    return hashlib.sha256(np.ascontiguousarray(data, dtype=np.float32).tobytes()).hexdigest()


def _replica_tensors(state: TrainState, k: int, history: np.ndarray) -> dict[str, torch.Tensor]:
    """Replica k's full training state as named CPU tensors (plain-module layout)."""
    out: dict[str, torch.Tensor] = {}
    nets = (("generator", state.generator, state.opt_g), ("discriminator", state.discriminator,
                                                          state.opt_d))
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
            "tensors_sha256": hashlib.sha256(blob).hexdigest(),
            **asdict(statuses[k]),
            "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        atomic_write_bytes(json_path, (json.dumps(meta, indent=2) + "\n").encode())


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
            "tensors_sha256": hashlib.sha256(blob).hexdigest(),
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
        nets = (("generator", state.generator, state.opt_g),
                ("discriminator", state.discriminator, state.opt_d))
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


# --------------------------------------------------------------------------- signals


class Interrupted(RuntimeError):
    """Training stopped on a signal after writing its checkpoints."""

    def __init__(self, signum: int, epoch: int, step: int, saved: bool,
                 unsaved: str = "no checkpoint paths were given") -> None:
        name = signal.Signals(signum).name
        where = "checkpoints written" if saved else unsaved
        super().__init__(f"received {name} in epoch {epoch + 1} (step {step}); {where}")
        self.signum, self.epoch, self.step, self.saved = signum, epoch, step, saved


# --------------------------------------------------------------------------- progress


def _format_seconds(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = round(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    """A tqdm bar on a terminal, else a log line every ``log_every`` seconds."""

    def __init__(
        self, total: int, start: int, enabled: bool | None, log_every: float
    ) -> None:
        self.total, self.start, self.log_every = total, start, log_every
        self.t0 = self.last_log = time.monotonic()
        self.bar = None
        use_bar = sys.stderr.isatty() if enabled is None else enabled
        if use_bar:
            try:
                from tqdm.auto import tqdm
            except ImportError:  # pragma: no cover - tqdm is a dependency
                tqdm = None
            if tqdm is not None:
                self.bar = tqdm(total=total, initial=start, unit="epoch", dynamic_ncols=True)

    def update(self, epoch: int, means: np.ndarray, n_alive: int) -> None:
        """Report that ``epoch`` (1-based, completed) had per-replica mean losses ``means``."""
        with np.errstate(all="ignore"):
            d, g, pen = (np.nanmean(means[:, i]) if np.isfinite(means[:, i]).any() else np.nan
                         for i in range(3))
        k = means.shape[0]
        if self.bar is not None:
            self.bar.set_postfix_str(f"d {d:.3f} g {g:.3f} pen {pen:.3g} alive {n_alive}/{k}")
            self.bar.update(1)
            return
        now = time.monotonic()
        if now - self.last_log < self.log_every and epoch < self.total:
            return
        self.last_log = now
        elapsed = now - self.t0
        rate = (epoch - self.start) / elapsed if elapsed > 0 else float("nan")
        remaining = (self.total - epoch) / rate if rate > 0 else float("nan")
        log.info(
            "epoch %d/%d  d_loss %.4f  g_loss %.4f  penalty %.4g  alive %d/%d  "
            "elapsed %s  remaining %s",
            epoch, self.total, d, g, pen, n_alive, k,
            _format_seconds(elapsed), _format_seconds(remaining),
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# --------------------------------------------------------------------------- public API


@dataclass(frozen=True)
class TrainResult:
    """What `train_ensemble` returns (index k = replica k, in the order of the seeds)."""

    status: tuple[str, ...]  # "done" or "failed"
    reason: tuple[str, ...]  # "" for done replicas
    failed_epoch: tuple[int | None, ...]  # 1-based epoch of the first non-finite loss
    generator_weights: tuple[dict[str, torch.Tensor], ...]  # PlainGenerator state dicts, CPU
    history: np.ndarray  # [epochs, K, 3]: mean d_loss, g_loss, Omega; NaN once failed
    wall_time: float  # seconds spent in this call
    device: str
    resumed_from_epoch: int = 0  # epochs already done when this call started
    cuda_graph: bool = False
    architecture: models.Architecture | None = field(default=None, compare=False)


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
    digests = [data_digest(train_sets[i]) for i in range(k)]
    start_epoch = _maybe_resume(state, bases, history, statuses, seeds, config_hash, digests)

    def save() -> None:
        if bases is not None:
            save_checkpoints(state, bases, history, statuses, seeds=seeds,
                             config_hash=config_hash, digests=digests)

    runner, graphed = make_step_runner(state, config.cuda_graphs)
    bar = Progress(config.epochs, start_epoch, progress, log_every)
    try:
        with catch_signals() as flag:

            def stop_if_signalled(epoch: int) -> None:
                if flag.received is not None:
                    save()
                    step = int(state.step.item())
                    raise Interrupted(flag.received, epoch, step, bases is not None)

            for epoch in range(start_epoch, config.epochs):
                begin_epoch(state, epoch)
                for pos in range(int(state.step.item()) - epoch * spe, spe):
                    runner()
                    # at an epoch's last step the stop waits until the epoch is booked, so that
                    # a checkpoint at an epoch boundary always holds the whole history
                    if pos < spe - 1:
                        stop_if_signalled(epoch)
                _book_epoch(state, epoch, history, statuses, bar)
                stop_if_signalled(epoch)
                if config.checkpoint_every and (epoch + 1) % config.checkpoint_every == 0:
                    save()
            for st in statuses:
                if st.status == "running":
                    st.status = "done"
            save()
    finally:
        bar.close()
    return TrainResult(
        status=tuple(s.status for s in statuses),
        reason=tuple(s.reason for s in statuses),
        failed_epoch=tuple(s.failed_epoch for s in statuses),
        generator_weights=tuple(models.replica_state_dict(state.generator, i) for i in range(k)),
        history=history,
        wall_time=time.monotonic() - t0,
        device=str(dev),
        resumed_from_epoch=start_epoch,
        cuda_graph=graphed,
        architecture=state.arch,
    )


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
        log.info("starting fresh: the checkpoints are at step %d, beyond the %d epochs asked for",
                 step, state.config.epochs)
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


def write_losses_csv(
    path: Path, history: np.ndarray, columns: Sequence[str] = LOSS_COLUMNS
) -> None:
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


def read_losses_csv(path: Path) -> np.ndarray:
    """Read a file written by `write_losses_csv` back as [epochs, 3]."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return np.array([[float(r["d_loss"]), float(r["g_loss"]), float(r["penalty"])]
                     for r in rows]).reshape(-1, 3)


# --------------------------------------------------------------------------- generation


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
    models.load_replica_state_dicts_(gen, weights)
    return gen


def check_generate_args(n_seeds: int, n_replicas: int, n: int, chunk_size: int) -> None:
    """The arguments every neural generator's `generate` checks first."""
    if n_seeds != n_replicas:
        raise ValueError(f"got {n_seeds} seeds for {n_replicas} replicas' weights")
    if chunk_size < 1 or n < 0:
        raise ValueError("chunk_size must be >= 1 and n >= 0")


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
    for start in range(0, n, chunk_size):
        m = min(chunk_size, n - start)
        with torch.inference_mode():
            z = rng.uniform_range(
                keys, Stream.EVAL_NOISE, 0, (m, arch.noise_dim), -1.0, 1.0,
                offset=start * arch.noise_dim,
            )
            masks = torch.stack(
                [
                    rng.keep_mask(keys, Stream.EVAL_DROPOUT, layer, (m, arch.hidden), dropout,
                                  offset=start * arch.hidden)
                    for layer in range(arch.layers)
                ],
                dim=1,
            ).to(torch.float32).mul_(1.0 / (1.0 - dropout))
            x = gen(z, masks)
        yield x.to(torch.float64).cpu().numpy()


def save_generator(
    path: Path, weights: Mapping[str, torch.Tensor], metadata: Mapping[str, str] | None = None
) -> None:
    """Save one replica's generator weights (safetensors, atomically) with string metadata."""
    meta = {"format": GENERATOR_FORMAT, **{str(k): str(v) for k, v in (metadata or {}).items()}}
    tensors = {name: t.detach().to("cpu").contiguous() for name, t in weights.items()}
    atomic_write_bytes(Path(path), safetensors.torch.save(tensors, metadata=meta))


def load_generator(path: Path) -> dict[str, torch.Tensor]:
    """Load generator weights saved by `save_generator` (safetensors: no code is executed)."""
    return safetensors.torch.load_file(str(path), device="cpu")


def generator_metadata(path: Path) -> dict[str, str]:
    """The metadata stored by `save_generator`."""
    with safetensors.safe_open(str(path), framework="pt") as f:
        return dict(f.metadata() or {})
