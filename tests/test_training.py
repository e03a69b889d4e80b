"""Training protocol, equivalences, divergence, checkpoints/signals, generation, quality."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import safetensors.torch
import torch

from ganplify.bench import measure as bench
from ganplify.bench import plain as plain_ref
from ganplify.generators.neural import core as neural_core
from ganplify.generators.neural import device as neural_device
from ganplify.generators.neural import io as neural_io
from ganplify.generators.neural import layers as ens_layers
from ganplify.generators.neural.gan import config as gan_config
from ganplify.generators.neural.gan import graphs as gan_graphs
from ganplify.generators.neural.gan import networks as models
from ganplify.generators.neural.gan import step as gan_step
from ganplify.generators.neural.gan import training
from ganplify.metrics.quantiles import Binning, CellCounter, mse_from_counts
from ganplify.results.io import ResultsError
from ganplify.streams import GanStream
from ganplify.truth.shells import GaussianShell
from tests import helpers

CPU = torch.device("cpu")
# small networks for everything that trains; the paper's sizes are tested in test_models.py
TINY = gan_config.GanConfig(
    epochs=3, noise_dim=16, hidden=24, layers=2, embedding=6, lr=1e-3, checkpoint_every=0
)


def _data(k: int, n: int = 40, d: int = 1, seed: int = 0) -> np.ndarray:
    shell = GaussianShell(d)
    rng = np.random.default_rng(seed)
    return np.stack([shell.sample(n, rng) for _ in range(k)])


def _train(data, seeds, config=TINY, **kwargs) -> neural_core.TrainResult:
    return training.train_ensemble(data, seeds, config, device="cpu", progress=False, **kwargs)


# --------------------------------------------------------------------------- configuration


def test_config_defaults_are_the_papers():
    c = gan_config.GanConfig()
    assert (c.epochs, c.batch_size, c.lr, c.betas) == (10_000, 10, 5e-5, (0.5, 0.9))
    assert (c.lr_decay, c.lr_decay_every, c.gamma, c.data_noise) == (0.9, 1000, 0.01, 0.1)
    assert (c.noise_dim, c.hidden, c.layers, c.dropout, c.embedding) == (1000, 256, 7, 0.5, 32)
    assert c.set_input == "differences"
    assert c.learning_rate(999) == 5e-5
    assert c.learning_rate(1000) == pytest.approx(4.5e-5)
    assert c.learning_rate(9999) == pytest.approx(5e-5 * 0.9**9)


def test_config_from_mapping_and_hash_fields():
    c = gan_config.GanConfig.from_mapping({"epochs": 5, "betas": [0.4, 0.8], "set_input": "points"})
    assert c.betas == (0.4, 0.8) and c.epochs == 5
    params = c.training_parameters()
    assert "checkpoint_every" not in params and "cuda_graphs" not in params
    assert params["betas"] == [0.4, 0.8]
    json.dumps(params)  # hashable as JSON
    with pytest.raises(ValueError, match="unknown"):
        gan_config.GanConfig.from_mapping({"epoch": 5})
    with pytest.raises(ValueError):
        gan_config.GanConfig(set_input="pairs")
    with pytest.raises(ValueError):
        gan_config.GanConfig(cuda_graphs="maybe")
    with pytest.raises(ValueError):
        gan_config.GanConfig(batch_size=1)


def test_resolve_device():
    assert neural_device.resolve_device("cpu") == CPU
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert neural_device.resolve_device("auto").type == expected
    with pytest.raises(ValueError, match="unknown device"):
        neural_device.resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            neural_device.resolve_device("cuda:0")


def test_cuda_graphs_modes_on_cpu():
    state = gan_step.new_state(_data(1), [1], TINY, CPU)
    runner, graphed = gan_graphs.make_step_runner(state, "auto")
    assert not graphed
    runner()
    assert int(state.step) == 1
    with pytest.raises(ValueError, match="CUDA"):
        gan_graphs.make_step_runner(state, "on")


class _FakeGraph:
    """Stands in for a CUDA graph: replay runs the step eagerly, optionally corrupted."""

    def __init__(self, state, corrupt: bool = False) -> None:
        self.state, self.corrupt = state, corrupt

    def replay(self) -> None:
        gan_step.train_step(self.state)
        if self.corrupt:
            with torch.no_grad():
                self.state.generator.weight[0].add_(1.0)


def test_checked_graph_runner_accepts_an_agreeing_graph():
    state = gan_step.new_state(_data(2), [1, 2], TINY, CPU)
    gan_step.begin_epoch(state, 0)
    before = [t.clone() for t in gan_graphs._state_tensors(state)]
    runner, graphed = gan_graphs.checked_graph_runner(state, "auto", _FakeGraph)
    assert graphed
    # the check ran one graph step and one eager step, then restored the state exactly
    for a, b in zip(before, gan_graphs._state_tensors(state), strict=True):
        assert torch.equal(a, b)
    runner()
    assert int(state.step) == 1


def test_checked_graph_runner_falls_back(caplog):
    state = gan_step.new_state(_data(2), [1, 2], TINY, CPU)
    gan_step.begin_epoch(state, 0)
    before = [t.clone() for t in gan_graphs._state_tensors(state)]
    with caplog.at_level(logging.WARNING, logger="ganplify"):
        _, graphed = gan_graphs.checked_graph_runner(
            state, "auto", lambda s: _FakeGraph(s, corrupt=True)
        )
    assert not graphed and "disagrees" in caplog.text
    for a, b in zip(before, gan_graphs._state_tensors(state), strict=True):
        assert torch.equal(a, b)

    def broken(s):
        raise RuntimeError("capture not supported")

    _, graphed = gan_graphs.checked_graph_runner(state, "auto", broken)
    assert not graphed
    with pytest.raises(RuntimeError, match="capture not supported"):
        gan_graphs.checked_graph_runner(state, "on", broken)
    with pytest.raises(RuntimeError, match="disagrees"):
        gan_graphs.checked_graph_runner(state, "on", lambda s: _FakeGraph(s, corrupt=True))


def test_compare_snapshots():
    a = [torch.tensor([1.0, 2.0]), torch.tensor(3), torch.tensor([True])]
    assert gan_graphs._compare_snapshots(a, [t.clone() for t in a], lr=1e-4) is None
    b = [torch.tensor([1.0, 2.5]), torch.tensor(3), torch.tensor([True])]
    assert "differs" in gan_graphs._compare_snapshots(a, b, lr=1e-4)
    c = [a[0], torch.tensor(4), a[2]]
    assert "differs" in gan_graphs._compare_snapshots(a, c, lr=1e-4)


# --------------------------------------------------------------------------- losses


def test_gradient_penalty_matches_direct_autograd():
    """Omega from the batched double-backward path equals a float64 Jacobian computation."""
    config = replace(TINY, gamma=0.3)
    arch = config.architecture(2)
    keys = torch.tensor([5, 6])
    disc = models.EnsembleDiscriminator(arch, 2)
    ens_layers.init_replicas_(disc, keys, 2)
    gen = torch.Generator().manual_seed(0)
    real, fake = torch.randn(2, 4, 2, generator=gen), torch.randn(2, 4, 2, generator=gen) * 3
    loss, omega = gan_step.ensemble_discriminator_loss(disc, real, fake, None, config.gamma)
    for k in range(2):
        plain = plain_ref.PlainDiscriminator(arch)
        plain_ref.copy_replica_to_plain(disc, k, plain)
        plain = plain.double()
        terms, bce = [], 0.0
        no_dropout = torch.ones(arch.layers, 4, arch.hidden, dtype=torch.float64)

        def net(x, plain=plain, no_dropout=no_dropout):
            return plain(x, no_dropout)

        for x, is_real in ((real[k].double(), True), (fake[k].double(), False)):
            logits = net(x)
            jac = torch.autograd.functional.jacobian(net, x)  # [n, n, d]: d logit_j / d x_i
            grad = jac.sum(0)  # gradient of the summed logits w.r.t. each point
            d = torch.sigmoid(logits)
            weight = (1 - d) ** 2 if is_real else d**2
            terms.append((weight * grad.square().sum(1)).mean())
            target = 1.0 if is_real else 0.0
            bce += torch.nn.functional.binary_cross_entropy(d, torch.full_like(d, target))
        expected = terms[0] + terms[1]
        torch.testing.assert_close(omega[k].double(), expected, rtol=1e-4, atol=1e-9)
        torch.testing.assert_close(
            loss[k].double(), bce + 0.5 * config.gamma * expected, rtol=1e-5, atol=1e-7
        )


# --------------------------------------------------------------------------- equivalences


def test_ensemble_k1_matches_plain_modules():
    """(a) Same weights and draws: ensemble K=1 and plain nn.Modules agree step by step."""
    config = replace(TINY, set_input="differences")
    state = gan_step.new_state(_data(1, d=2), [7], config, CPU)
    arch = state.arch
    gen, disc = plain_ref.PlainGenerator(arch), plain_ref.PlainDiscriminator(arch)
    plain_ref.copy_replica_to_plain(state.generator, 0, gen)
    plain_ref.copy_replica_to_plain(state.discriminator, 0, disc)
    opt_g = torch.optim.Adam(gen.parameters(), lr=config.lr, betas=config.betas)
    opt_d = torch.optim.Adam(disc.parameters(), lr=config.lr, betas=config.betas)
    gan_step.begin_epoch(state, 0)
    for step in range(4):
        draws = gan_step.draw_step(state.keys, step, arch, config).replica(0)
        real = gan_step.current_batch(state)[0]
        before = state.sums.clone()
        gan_step.train_step(state)
        ensemble = (state.sums - before)[0].float()
        plain = torch.stack(
            plain_ref.plain_train_step(gen, disc, opt_g, opt_d, real, config, draws)
        )
        torch.testing.assert_close(ensemble, plain, rtol=1e-5, atol=1e-6)
    # Adam moves each weight by up to ~lr per step whatever the gradient's size, so a weight
    # layout or gradient error shows as differences of order lr; rounding stays far below 1% of it
    for ens, plain in ((state.generator, gen), (state.discriminator, disc)):
        for name, tensor in ens_layers.replica_state_dict(ens, 0).items():
            expected = plain.state_dict()[name]
            torch.testing.assert_close(tensor, expected, rtol=0, atol=1e-2 * TINY.lr)


def test_replica_in_ensemble_matches_replica_alone():
    """(b) Replica k trained among others equals the same seed trained alone."""
    data = _data(4, d=2, seed=1)
    seeds = [11, 7, 12, 13]
    together = _train(data, seeds)
    alone = _train(data[1:2], [7])
    np.testing.assert_allclose(together.history[:, 1], alone.history[:, 0], rtol=1e-5, atol=1e-6)
    for name, tensor in alone.generator_weights[0].items():
        torch.testing.assert_close(
            together.generator_weights[1][name], tensor, rtol=0, atol=1e-2 * TINY.lr
        )


def _ops_per_step(k: int, config: gan_config.GanConfig) -> int:
    state = gan_step.new_state(_data(k), list(range(k)), config, CPU)
    gan_step.begin_epoch(state, 0)
    gan_step.train_step(state)
    counter = bench.OpCounter()
    with counter:
        gan_step.train_step(state)
    return counter.total


def test_dispatched_ops_do_not_grow_with_k():
    """(c) One step dispatches the same aten ops for K = 1, 4, 16: no loop over replicas."""
    counts = {k: _ops_per_step(k, TINY) for k in (1, 4, 16)}
    assert len(set(counts.values())) == 1, counts
    assert counts[1] < 2000


def test_flop_count_of_one_plain_layer():
    layer = torch.nn.Linear(7, 5)
    x = torch.randn(3, 7, requires_grad=True)
    counter = bench.OpCounter()
    with counter:
        layer(x).sum().backward()
    # forward 2*3*7*5, backward: grad input and grad weight, each the same
    assert counter.flops == 3 * 2 * 3 * 7 * 5


# --------------------------------------------------------------------------- divergence


def test_non_finite_replica_is_failed_and_others_unaffected():
    data = _data(3, seed=2)
    poisoned = data.copy()
    poisoned[1, 5, 0] = np.nan  # used in epoch 1's first pass over the data
    seeds = [21, 22, 23]
    bad = _train(poisoned, seeds)
    good = _train(data, seeds)
    assert bad.status == ("done", "failed", "done")
    assert bad.failed_epoch == (None, 1, None)
    assert bad.reason[1] == "non-finite discriminator loss at epoch 1"
    assert np.isnan(bad.history[:, 1]).all()
    for k in (0, 2):  # the same ensemble without the poison: identical
        np.testing.assert_array_equal(bad.history[:, k], good.history[:, k])
        for name, tensor in good.generator_weights[k].items():
            assert torch.equal(bad.generator_weights[k][name], tensor), name
    # and a run without the failing replica at all: equal to floating-point rounding
    without = _train(data[[0, 2]], [21, 23])
    np.testing.assert_allclose(bad.history[:, [0, 2]], without.history, rtol=1e-5, atol=1e-6)


def test_failure_epoch_is_reported(monkeypatch):
    """A replica whose weights become NaN in epoch 3 fails with that epoch."""
    original = gan_step.begin_epoch

    def poison(state, epoch):
        original(state, epoch)
        if epoch == 2:
            with torch.no_grad():
                state.generator.weight[-1][0].fill_(float("nan"))

    monkeypatch.setattr(training, "begin_epoch", poison)
    result = _train(_data(2), [1, 2], replace(TINY, epochs=4))
    assert result.status == ("failed", "done")
    assert result.failed_epoch == (3, None)
    assert result.reason[0] == "non-finite discriminator loss at epoch 3"
    assert np.isfinite(result.history[:2, 0]).all() and np.isnan(result.history[2:, 0]).all()
    assert np.isfinite(result.history[:, 1]).all()


# --------------------------------------------------------------------------- history


def test_history_shape_and_csv(tmp_path):
    result = _train(_data(2), [1, 2])
    assert result.history.shape == (TINY.epochs, 2, 3)
    assert np.isfinite(result.history).all()
    assert (result.history[:, :, 2] >= 0).all()  # Omega is a sum of squares
    path = tmp_path / "losses.csv"
    neural_io.write_losses_csv(path, result.history[:, 1], training.LOSS_COLUMNS)
    lines = path.read_text().splitlines()
    assert lines[0] == "epoch,d_loss,g_loss,penalty"
    assert lines[1].startswith("1,") and len(lines) == TINY.epochs + 1
    table = pd.read_csv(path)
    np.testing.assert_array_equal(
        table[list(training.LOSS_COLUMNS)].to_numpy(), result.history[:, 1]
    )
    with pytest.raises(ValueError):
        neural_io.write_losses_csv(path, result.history, training.LOSS_COLUMNS)


def test_remainder_of_the_training_set_is_dropped():
    result = _train(_data(1, n=25), [3])  # 2 steps of 10 per epoch, 5 points unused
    assert result.status == ("done",)
    state = gan_step.new_state(_data(1, n=25), [3], TINY, CPU)
    assert state.steps_per_epoch == 2


def test_log_lines_without_a_terminal(caplog):
    with caplog.at_level(logging.INFO, logger="ganplify"):
        training.train_ensemble(_data(1), [1], TINY, device="cpu", progress=False, log_every=0)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch")]
    assert len(lines) == TINY.epochs
    assert "d_loss" in lines[-1] and "remaining" in lines[-1] and "alive 1/1" in lines[-1]


def test_progress_bar(capsys):
    pytest.importorskip("tqdm")
    training.train_ensemble(_data(1), [1], TINY, device="cpu", progress=True)
    err = capsys.readouterr().err
    assert "epoch" in err and f"{TINY.epochs}/{TINY.epochs}" in err


# --------------------------------------------------------------------------- checkpoints


def _bases(root: Path, k: int) -> list[Path]:
    return [root / f"seed{i}" / "checkpoint" for i in range(k)]


def _checkpoint_tensors(bases: list[Path]) -> list[dict[str, torch.Tensor]]:
    return [safetensors.torch.load_file(str(b) + ".safetensors") for b in bases]


def test_checkpoint_files_and_resume_of_a_finished_run(tmp_path, caplog):
    bases = _bases(tmp_path, 2)
    first = _train(_data(2), [1, 2], checkpoints=bases, config_hash="abc")
    for base in bases:
        meta = json.loads(base.with_suffix(".json").read_text())
        assert meta["epoch"] == TINY.epochs and meta["status"] == "done"
        assert meta["config_hash"] == "abc"
        assert not list(base.parent.glob(".*tmp"))
    again = _train(_data(2), [1, 2], checkpoints=bases, config_hash="abc")
    assert again.resumed_from_epoch == TINY.epochs
    for a, b in zip(first.generator_weights, again.generator_weights, strict=True):
        assert all(torch.equal(a[n], b[n]) for n in a)
    np.testing.assert_array_equal(first.history, again.history)
    # another config hash: start fresh and say why
    with caplog.at_level(logging.INFO, logger="ganplify"):
        fresh = _train(_data(2), [1, 2], checkpoints=bases, config_hash="xyz")
    assert fresh.resumed_from_epoch == 0
    assert any(
        "starting fresh" in r.getMessage() and "config_hash" in r.getMessage()
        for r in caplog.records
    )


def test_missing_replica_checkpoint_starts_fresh(tmp_path, caplog):
    bases = _bases(tmp_path, 2)
    _train(_data(2), [1, 2], checkpoints=bases)
    bases[1].with_suffix(".json").unlink()
    with caplog.at_level(logging.INFO, logger="ganplify"):
        result = _train(_data(2), [1, 2], checkpoints=bases)
    assert result.resumed_from_epoch == 0
    assert any("no checkpoint for replica 1" in r.getMessage() for r in caplog.records)


def _retrain_after_editing(tmp_path, caplog, edit, replicas=(1,)) -> str:
    """Train, apply ``edit`` to the checkpoint JSON of each replica index in ``replicas``
    (edit(meta, tensor_blob)), train again: assert a fresh start, return the log."""
    bases = _bases(tmp_path, 2)
    _train(_data(2), [1, 2], checkpoints=bases)
    for k in replicas:
        path = bases[k].with_suffix(".json")
        meta = json.loads(path.read_text())
        edit(meta, bases[k].with_suffix(".safetensors").read_bytes())
        path.write_text(json.dumps(meta))
    with caplog.at_level(logging.INFO, logger="ganplify"):
        result = _train(_data(2), [1, 2], checkpoints=bases)
    assert result.resumed_from_epoch == 0
    return caplog.text


def test_an_edited_checkpoint_step_is_refused(tmp_path, caplog):
    """The step lies inside the checksum: a replica stopped early cannot be passed off as done."""

    def edit(meta, blob):
        meta["step"] -= 1

    log = _retrain_after_editing(tmp_path, caplog, edit)
    assert f"checkpoint {tmp_path / 'seed1' / 'checkpoint.json'} has sha256=" in log


def test_a_checkpoint_of_an_earlier_format_is_not_resumed_from(tmp_path, caplog):
    """Version 1 left its metadata outside the checksum: such a training restarts."""

    def edit(meta, blob):
        meta["format"] = "ganplify-gan-checkpoint-1"

    log = _retrain_after_editing(tmp_path, caplog, edit, replicas=(0, 1))
    assert "format='ganplify-gan-checkpoint-1'" in log


def test_replicas_at_different_steps_start_fresh(tmp_path, caplog):
    from ganplify.generators.neural.gan import checkpoints

    def edit(meta, blob):
        meta["step"] -= 1  # with a consistent checksum: a checkpoint of another step
        meta["sha256"] = checkpoints._checksum(blob, meta)

    assert "different steps" in _retrain_after_editing(tmp_path, caplog, edit)


def test_signal_in_process_checkpoints_and_raises(tmp_path, monkeypatch):
    """SIGUSR1 mid-epoch: checkpoint after the current step, Interrupted, then exact resume."""
    config = replace(TINY, epochs=4)
    original, calls = gan_step.train_step, []

    def step_then_signal(state):
        original(state)
        calls.append(1)
        if len(calls) == 6:  # epoch 2 (4 steps per epoch), second step
            os.kill(os.getpid(), signal.SIGUSR1)

    monkeypatch.setattr(gan_graphs, "train_step", step_then_signal)
    bases = _bases(tmp_path / "a", 2)
    with pytest.raises(neural_core.Interrupted, match="SIGUSR1"):
        _train(_data(2), [1, 2], config, checkpoints=bases)
    meta = json.loads(bases[0].with_suffix(".json").read_text())
    assert meta["step"] == 6 and meta["status"] == "running"
    monkeypatch.setattr(gan_graphs, "train_step", original)
    resumed = _train(_data(2), [1, 2], config, checkpoints=bases)
    assert resumed.resumed_from_epoch == 1
    straight = _train(_data(2), [1, 2], config, checkpoints=_bases(tmp_path / "b", 2))
    np.testing.assert_array_equal(resumed.history, straight.history)
    for a, b in zip(
        _checkpoint_tensors(bases), _checkpoint_tensors(_bases(tmp_path / "b", 2)), strict=True
    ):
        assert a.keys() == b.keys()
        assert all(torch.equal(a[n], b[n]) for n in a)


SCRIPT = textwrap.dedent(
    """
    import logging, sys
    from pathlib import Path
    import numpy as np, torch
    from ganplify.generators.neural.gan import graphs as gan_graphs
    from ganplify.generators.neural import core as neural_core
    from ganplify.generators.neural.gan import training
    from ganplify.generators.neural.gan import step as gan_step
    from ganplify.generators.neural.gan import config as gan_config
    from ganplify.generators.neural import io as neural_io
    from ganplify.bench import plain as plain_ref
    from ganplify.generators.neural import device as neural_device
    from ganplify import rng
    from ganplify.truth.shells import GaussianShell

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(1)
    root = Path(sys.argv[1])
    config = gan_config.GanConfig(epochs=int(sys.argv[2]), noise_dim=16, hidden=24, layers=2,
                                embedding=6, lr=1e-3, checkpoint_every=7)
    rng = np.random.default_rng(0)
    data = np.stack([GaussianShell(1).sample(40, rng) for _ in range(2)])
    bases = [root / f"seed{k}" / "checkpoint" for k in range(2)]
    try:
        training.train_ensemble(data, [5, 6], config, device="cpu", checkpoints=bases,
                                config_hash="h", progress=False, log_every=0)
    except neural_core.Interrupted as exc:
        print(exc, file=sys.stderr)
        sys.exit(3)
    """
)


def _script(tmp_path: Path) -> list[str]:
    path = tmp_path / "train.py"
    path.write_text(SCRIPT)
    return [sys.executable, str(path)]


def test_sigterm_resume_is_bit_identical(tmp_path):
    """A real SIGTERM to a training process; the resumed run ends bit-identical."""
    epochs = "150"
    cmd = _script(tmp_path)
    straight = subprocess.Popen(
        [*cmd, str(tmp_path / "straight"), epochs], stderr=subprocess.DEVNULL
    )
    victim = subprocess.Popen(
        [*cmd, str(tmp_path / "victim"), epochs], stderr=subprocess.PIPE, text=True
    )
    for line in victim.stderr:
        if line.startswith("epoch 20/"):
            victim.send_signal(signal.SIGTERM)
            break
    rest = victim.stderr.read()
    assert victim.wait(timeout=60) == 3, rest
    assert "received SIGTERM" in rest
    meta = json.loads((tmp_path / "victim" / "seed0" / "checkpoint.json").read_text())
    assert 20 <= meta["epoch"] < int(epochs)
    resumed = subprocess.run(
        [*cmd, str(tmp_path / "victim"), epochs], capture_output=True, text=True, timeout=120
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from step" in resumed.stderr
    assert straight.wait(timeout=120) == 0
    for k in range(2):
        a = safetensors.torch.load_file(
            str(tmp_path / "victim" / f"seed{k}" / "checkpoint.safetensors")
        )
        b = safetensors.torch.load_file(
            str(tmp_path / "straight" / f"seed{k}" / "checkpoint.safetensors")
        )
        assert a.keys() == b.keys()
        for name in a:
            assert torch.equal(a[name], b[name]), name


# --------------------------------------------------------------------------- generation


def _weights(k: int, dim: int = 2) -> tuple[list[dict[str, torch.Tensor]], models.Architecture]:
    arch = TINY.architecture(dim)
    gen = models.EnsembleGenerator(arch, k)
    ens_layers.init_replicas_(gen, torch.arange(k) + 100, GanStream.INIT_GENERATOR)
    return [ens_layers.replica_state_dict(gen, i) for i in range(k)], arch


def test_generate_chunks_reproducibility_and_independence():
    weights, _ = _weights(3)
    full = np.concatenate(list(training.generate(weights, [1, 2, 3], 50, 50, "cpu")), axis=1)
    assert full.shape == (3, 50, 2) and full.dtype == np.float64
    chunks = list(training.generate(weights, [1, 2, 3], 50, 16, "cpu"))
    assert [c.shape[1] for c in chunks] == [16, 16, 16, 2]
    np.testing.assert_allclose(np.concatenate(chunks, axis=1), full, rtol=1e-5, atol=1e-6)
    again = np.concatenate(list(training.generate(weights, [1, 2, 3], 50, 50, "cpu")), axis=1)
    np.testing.assert_array_equal(full, again)
    alone = next(training.generate(weights[1:2], [2], 50, 50, "cpu"))
    np.testing.assert_allclose(alone[0], full[1], rtol=1e-5, atol=1e-6)
    other_seed = next(training.generate(weights[1:2], [9], 50, 50, "cpu"))
    assert not np.allclose(other_seed[0], full[1])


def test_generation_keeps_dropout_active():
    weights, arch = _weights(1)
    with_dropout = next(training.generate(weights, [1], 200, 200, "cpu"))[0]
    gen = plain_ref.PlainGenerator(arch)
    gen.load_state_dict(weights[0])
    z = torch.rand(200, arch.noise_dim) * 2 - 1
    without = gen(z, masks=torch.ones(arch.layers, 200, arch.hidden)).detach().numpy()
    # dropout spreads the output: its variance is larger than that of the noise-only output
    assert with_dropout.var(0).sum() > without.var(0).sum()


def test_generation_is_independent_of_training_draws():
    weights, arch = _weights(1)
    events = next(training.generate(weights, [1], 10, 10, "cpu"))[0]
    z_train = gan_step.draw_step(torch.tensor([1]), 0, arch, TINY).d_noise[0]
    gen = plain_ref.PlainGenerator(arch)
    gen.load_state_dict(weights[0])
    assert not np.allclose(gen(z_train, None).detach().numpy(), events)


def test_save_and_load_generator(tmp_path):
    weights, _ = _weights(2)
    path = tmp_path / "g" / "generator.safetensors"
    neural_io.save_generator(path, weights[0], {"seed": "1", "epochs": "3"})
    loaded = neural_io.load_generator(path, {"seed": 1})
    assert loaded.keys() == weights[0].keys()
    assert all(torch.equal(loaded[n], weights[0][n]) for n in loaded)
    meta = helpers.generator_metadata(path)
    assert meta["seed"] == "1" and meta["format"] == neural_io.GENERATOR_FORMAT
    stacked = training.stack_generators([loaded, weights[1]], "cpu")
    assert torch.equal(
        ens_layers.replica_state_dict(stacked, 1)["out.weight"], weights[1]["out.weight"]
    )


def test_weights_of_another_replica_or_a_truncated_file_are_refused(tmp_path):
    weights, _ = _weights(1)
    path = tmp_path / "generator.safetensors"
    neural_io.save_generator(path, weights[0], {"seed": 1, "phash": "ab", "data_sha256": "d1"})
    for key, value in (("seed", 0), ("phash", "cd"), ("data_sha256", "d0")):
        with pytest.raises(ResultsError, match=f"made for {key} = .*copied from another"):
            neural_io.load_generator(path, {"seed": 1, "phash": "ab", key: value})
    blob = path.read_bytes()
    path.write_bytes(blob[:-7])
    with pytest.raises(ResultsError, match=f"{path}: truncated or padded"):
        neural_io.load_generator(path, {"seed": 1})
    path.write_bytes(b"\x05")
    with pytest.raises(ResultsError, match=f"{path}: not a safetensors file"):
        neural_io.load_generator(path, {"seed": 1})
    path.unlink()
    with pytest.raises(ResultsError, match=f"{path}: missing"):
        neural_io.load_generator(path, {"seed": 1})


def test_weights_saved_before_the_data_digest_are_checked_on_seed_and_parameters(tmp_path):
    weights, _ = _weights(1)
    path = tmp_path / "generator.safetensors"
    neural_io.save_generator(path, weights[0], {"seed": 1, "phash": "ab"})
    neural_io.load_generator(path, {"seed": 1, "phash": "ab", "data_sha256": "any"})
    with pytest.raises(ResultsError, match="made for phash"):
        neural_io.load_generator(path, {"seed": 1, "phash": "cd", "data_sha256": "any"})


def test_the_training_set_digest_is_canonical():
    x = np.arange(6, dtype=np.float64).reshape(3, 2)
    d = neural_io.training_set_digest(x)
    assert neural_io.training_set_digest(np.asfortranarray(x)) == d  # memory layout
    assert neural_io.training_set_digest(x.astype(">f8")) == d  # byte order
    assert neural_io.training_set_digest(x.reshape(2, 3)) != d  # shape
    assert neural_io.training_set_digest(x + 1e-12) != d


# --------------------------------------------------------------------------- it learns


def test_short_training_lowers_the_quantile_mse():
    """16 replicas, d = 1: training beats the untrained generator by more than its spread."""
    k, n_gen = 16, 2000
    config = gan_config.GanConfig(
        epochs=30, noise_dim=16, hidden=64, layers=3, embedding=16, lr=1e-3, checkpoint_every=0
    )
    seeds = list(range(100, 100 + k))
    data = _data(k, n=100, d=1, seed=3)
    untrained = gan_step.new_state(data, seeds, config, CPU)
    before = [ens_layers.replica_state_dict(untrained.generator, i) for i in range(k)]
    result = _train(data, seeds, config)
    assert result.status == ("done",) * k
    counter = CellCounter(GaussianShell(1), [Binning("x", 10, 1)])

    def mses(weights):
        events = next(training.generate(weights, seeds, n_gen, n_gen, "cpu"))
        return np.array([mse_from_counts(counter.counts(e)[0]) for e in events])

    delta = mses(before) - mses(result.generator_weights)  # paired by replica
    # the improvement must exceed 3 standard errors of its replica-to-replica spread
    assert delta.mean() > 3 * delta.std(ddof=1) / np.sqrt(k), delta


def test_epoch_hook_sees_the_generator_of_chosen_epochs():
    seen = {}
    config = replace(TINY, epochs=4)
    result = _train(
        _data(2), [1, 2], config, hook=lambda e, w: seen.setdefault(e, w), hook_epochs=(1, 4)
    )
    assert sorted(seen) == [1, 4]
    for final, hooked in zip(result.generator_weights, seen[4], strict=True):
        assert final.keys() == hooked.keys()
        assert all(torch.equal(final[k], hooked[k]) for k in final)
    assert not all(torch.equal(seen[1][0][k], seen[4][0][k]) for k in seen[1][0])
