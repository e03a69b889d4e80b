"""The training machinery every neural generator shares.

The epoch loop (`run_epochs`: stop on SIGTERM/SIGUSR1 after the current step, periodic
checkpoints, a hook at chosen epochs), per-replica failure status and the result of training
an ensemble (`ReplicaStatus`, `TrainResult`), progress reporting, and chunked generation of
events (`generate_in_chunks`). The GAN (`gan/`) and the density models (`flows/`) build their
training and generation on these.
"""

from __future__ import annotations

import logging
import math
import signal
import sys
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ganplify.signals import catch_signals

log = logging.getLogger(__name__)


@dataclass
class ReplicaStatus:
    """Outcome of one replica so far."""

    status: str = "running"  # "running", then "done" or "failed"
    reason: str = ""
    failed_epoch: int | None = None


class Interrupted(RuntimeError):
    """Training stopped on a signal after writing its checkpoints."""

    def __init__(
        self,
        signum: int,
        epoch: int,
        step: int,
        saved: bool,
        unsaved: str = "no checkpoint paths were given",
    ) -> None:
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
        self,
        total: int,
        start: int,
        enabled: bool | None,
        log_every: float,
        columns: Sequence[str],
    ) -> None:
        self.total, self.start, self.log_every = total, start, log_every
        self.columns = tuple(columns)
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
        """Report that ``epoch`` (1-based, completed) had per-replica mean losses ``means``
        ([K, len(columns)])."""
        with np.errstate(all="ignore"):
            values = [
                np.nanmean(means[:, i]) if np.isfinite(means[:, i]).any() else np.nan
                for i in range(len(self.columns))
            ]
        k = means.shape[0]
        text = "  ".join(
            f"{name} {value:.4g}" for name, value in zip(self.columns, values, strict=True)
        )
        if self.bar is not None:
            self.bar.set_postfix_str(f"{text}  alive {n_alive}/{k}")
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
            "epoch %d/%d  %s  alive %d/%d  elapsed %s  remaining %s",
            epoch,
            self.total,
            text,
            n_alive,
            k,
            _format_seconds(elapsed),
            _format_seconds(remaining),
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
    generator_weights: tuple[dict[str, torch.Tensor], ...]  # what `generate` takes, on the CPU
    history: np.ndarray  # [epochs, K, C]: the generator's history_columns; NaN once failed
    wall_time: float  # seconds spent in this call
    device: str
    resumed_from_epoch: int = 0  # epochs already done when this call started
    cuda_graph: bool = False
    architecture: Any = field(default=None, compare=False)

    @staticmethod
    def outcomes(statuses: Sequence[ReplicaStatus]) -> dict[str, tuple]:
        """The status, reason and failed_epoch fields from the replicas' statuses."""
        return {
            "status": tuple(s.status for s in statuses),
            "reason": tuple(s.reason for s in statuses),
            "failed_epoch": tuple(s.failed_epoch for s in statuses),
        }


def check_generate_args(n_seeds: int, n_replicas: int, n: int, chunk_size: int) -> None:
    """The arguments every neural generator's `generate` checks first."""
    if n_seeds != n_replicas:
        raise ValueError(f"got {n_seeds} seeds for {n_replicas} replicas' weights")
    if chunk_size < 1 or n < 0:
        raise ValueError("chunk_size must be >= 1 and n >= 0")


# The hook every neural training calls after chosen epochs (1-based), with every replica's
# current weights in the layout its `generate` takes (for learning curves).
EpochHook = Callable[[int, Sequence[dict[str, torch.Tensor]]], None]


def run_epochs(
    start: int,
    epochs: int,
    run_epoch: Callable[[int, Callable[[], None]], bool],
    *,
    position: Callable[[], int],
    save: Callable[[], None] | None = None,
    checkpoint_every: int = 0,
    unsaved: str = "no checkpoint paths were given",
    hook: Callable[[int], None] | None = None,
    hook_epochs: Collection[int] = (),
) -> int:
    """The epoch loop of every neural training; returns the number of epochs completed.

    Parameters
    ----------
    start, epochs : int
        Run epochs ``start`` .. ``epochs - 1`` (0-based; a resumed training starts later).
    run_epoch : callable (epoch, stop) -> bool
        Runs one epoch; calls ``stop()`` between steps where it may stop, and returns True to
        end training early (early stopping).
    position : callable () -> int
        The current step, for the message of a stop.
    save : callable, optional
        Writes checkpoints (every ``checkpoint_every`` epochs, on a stop, and not at the end:
        the caller saves its final state).
    unsaved : str
        What a stop says when there is no ``save``.
    hook, hook_epochs
        ``hook(epoch)`` runs after each completed epoch (1-based) in ``hook_epochs``.

    Raises
    ------
    Interrupted
        On SIGTERM or SIGUSR1: before the next epoch or at a ``stop()`` inside one, after
        ``save``.
    """
    done = start
    with catch_signals() as flag:

        def stop(epoch: int) -> None:
            if flag.received is not None:
                if save is not None:
                    save()
                raise Interrupted(flag.received, epoch, position(), save is not None, unsaved)

        for epoch in range(start, epochs):
            stop(epoch)
            early = run_epoch(epoch, lambda e=epoch: stop(e))
            done = epoch + 1
            if hook is not None and done in hook_epochs:
                hook(done)
            if early:
                break
            if save is not None and checkpoint_every and done % checkpoint_every == 0:
                save()
    return done


def generate_in_chunks(
    n: int, chunk_size: int, draw: Callable[[int, int], torch.Tensor]
) -> Iterator[np.ndarray]:
    """Events in chunks: ``draw(start, m)`` gives events start .. start + m - 1 of every
    replica ([K, m, d], float64); yields them as numpy arrays on the host."""
    for start in range(0, n, chunk_size):
        m = min(chunk_size, n - start)
        with torch.inference_mode():
            x = draw(start, m)
        yield x.cpu().numpy()
