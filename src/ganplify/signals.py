"""Stop signals of training jobs, caught from the moment a job starts.

SLURM sends SIGTERM on scancel, preemption or at the time limit, and SIGUSR1 ahead of the
limit when asked (``--signal=USR1@<seconds>``); the default action of both is to kill the
process. `install_early` replaces it, before the job imports torch (seconds), by a handler
that only records the signal, so a signal that lands while the job is still starting is not
lost: `catch_signals` hands it to the training loop, which stops at its first chance (the
GAN after writing its checkpoints). This module must not import torch.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

STOP_SIGNALS = tuple(
    s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGUSR1", None)) if s
)


@dataclass
class SignalFlag:
    """Set by a signal handler; read by the training loop after every step."""

    received: int | None = None

    def handler(self, signum: int, frame: object) -> None:
        self.received = signum


# what arrived between `install_early` and the training loop's own handlers
PENDING = SignalFlag()


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def install_early(signals: Sequence[int] = STOP_SIGNALS) -> Iterator[SignalFlag]:
    """Record stop signals in `PENDING` while the block runs (main thread only), then restore
    the previous handlers and clear `PENDING`."""
    previous = {s: signal.signal(s, PENDING.handler) for s in signals} if _main_thread() else {}
    try:
        yield PENDING
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        PENDING.received = None


@contextlib.contextmanager
def catch_signals(signals: Sequence[int] = STOP_SIGNALS) -> Iterator[SignalFlag]:
    """Install handlers that only set a flag; restore the previous handlers on exit.

    The flag starts with a signal already recorded by `install_early`. Outside the main
    thread (where Python cannot install handlers) only that one can be set.
    """
    flag = SignalFlag(PENDING.received)
    if not _main_thread():
        yield flag
        return
    previous = {s: signal.signal(s, flag.handler) for s in signals}
    try:
        yield flag
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
