"""Stop signals that arrive while a training job is still starting are not lost."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

from ganplify import signals
from ganplify.generators.neural import core as neural_core
from ganplify.generators.neural.flows import training as flows
from ganplify.generators.neural.gan import checkpoints as gan_checkpoints
from ganplify.generators.neural.gan import config as gan_config
from ganplify.generators.neural.gan import training
from ganplify.truth.shells import GaussianShell


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
    config = gan_config.GanConfig(epochs=5, noise_dim=8, hidden=16, layers=2, embedding=4)
    bases = [tmp_path / "a", tmp_path / "b"]
    with signals.install_early():
        os.kill(os.getpid(), signal.SIGTERM)
        written = r"SIGTERM in epoch 1 .*checkpoints written"
        with pytest.raises(neural_core.Interrupted, match=written):
            training.train_ensemble(
                _sets(2, 20), [0, 1], config, device="cpu", checkpoints=bases, progress=False
            )
    for base in bases:
        assert all(f.is_file() for f in gan_checkpoints.checkpoint_files(base))


def test_flow_training_stops_on_a_signal_from_before_it_started():
    with signals.install_early():
        os.kill(os.getpid(), signal.SIGUSR1)
        with pytest.raises(neural_core.Interrupted, match=r"SIGUSR1 .*the rerun retrains"):
            flows.train_ensemble("flow", _sets(2, 20), [0, 1], {"epochs": 5}, device="cpu")
