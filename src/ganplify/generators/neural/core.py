"""The training machinery every neural generator shares: the result of training an ensemble,
the stop on a signal, per-replica failure status, and progress reporting.
"""

from __future__ import annotations

import logging
import math
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ganplify.generators.neural.gan import networks as models
from ganplify.signals import STOP_SIGNALS, SignalFlag, catch_signals  # noqa: F401 (API)

log = logging.getLogger(__name__)


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


class Interrupted(RuntimeError):
    """Training stopped on a signal after writing its checkpoints."""

    def __init__(self, signum: int, epoch: int, step: int, saved: bool,
                 unsaved: str = "no checkpoint paths were given") -> None:
        name = signal.Signals(signum).name
        where = "checkpoints written" if saved else unsaved
        super().__init__(f"received {name} in epoch {epoch + 1} (step {step}); {where}")
        self.signum, self.epoch, self.step, self.saved = signum, epoch, step, saved


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


def check_generate_args(n_seeds: int, n_replicas: int, n: int, chunk_size: int) -> None:
    """The arguments every neural generator's `generate` checks first."""
    if n_seeds != n_replicas:
        raise ValueError(f"got {n_seeds} seeds for {n_replicas} replicas' weights")
    if chunk_size < 1 or n < 0:
        raise ValueError("chunk_size must be >= 1 and n >= 0")
