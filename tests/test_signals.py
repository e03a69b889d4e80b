"""Stop signals that arrive while a training job is still starting are not lost."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

from ganplify import flows, signals, training
from ganplify.targets import GaussianShell


def _sets(k: int, n: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.stack([GaussianShell(1).sample(n, rng) for _ in range(k)])


def test_an_early_signal_is_recorded_handed_on_and_the_handlers_restored():
    before = signal.getsignal(signal.SIGUSR1)
    with signals.install_early():
        os.kill(os.getpid(), signal.SIGUSR1)  # would kill the process with the default action
        with signals.catch_signals() as flag:
            assert flag.received == signal.SIGUSR1
    assert signal.getsignal(signal.SIGUSR1) is before
    assert signals.PENDING.received is None
    with signals.catch_signals() as flag:
        assert flag.received is None


def test_gan_training_checkpoints_and_stops_on_a_signal_from_before_it_started(tmp_path):
    config = training.GanConfig(epochs=5, noise_dim=8, hidden=16, layers=2, embedding=4)
    bases = [tmp_path / "a", tmp_path / "b"]
    with signals.install_early():
        os.kill(os.getpid(), signal.SIGTERM)
        with pytest.raises(training.Interrupted, match=r"SIGTERM in epoch 1 .*checkpoints written"):
            training.train_ensemble(_sets(2, 20), [0, 1], config, device="cpu",
                                    checkpoints=bases, progress=False)
    for base in bases:
        assert all(f.is_file() for f in training.checkpoint_files(base))


def test_flow_training_stops_on_a_signal_from_before_it_started():
    with signals.install_early():
        os.kill(os.getpid(), signal.SIGUSR1)
        with pytest.raises(training.Interrupted, match=r"SIGUSR1 .*the rerun retrains"):
            flows.train_ensemble("flow", _sets(2, 20), [0, 1], {"epochs": 5}, device="cpu")
