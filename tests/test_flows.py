"""The density models beyond the paper: the spline flow and flow matching (ganplify.flows)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from ganplify import rng
from ganplify.generators.neural.flows import networks as flow_networks
from ganplify.generators.neural.flows import training as flows
from ganplify.results import manifest as results
from ganplify.study import config as cfg
from ganplify.study import data as study_data
from ganplify.study import jobs
from ganplify.study import plan as study
from ganplify.truth.shells import GaussianShell

FAST = {"epochs": 300, "patience": 300, "hidden": 16}


def _random_flow(dim: int, k: int = 2, seed: int = 0) -> flow_networks.EnsembleFlow:
    net = flow_networks.EnsembleFlow(dim, flow_networks.FlowConfig(hidden=16, bins=6), k)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    return net


def _camel_sets(k: int, n: int, dim: int = 1, first: int = 500) -> np.ndarray:
    target = GaussianShell(dim)
    return np.stack([study_data.training_set(target, n, s) for s in range(first, first + k)])


def test_made_masks_make_output_block_i_depend_only_on_earlier_inputs():
    dim, per = 4, 3
    net = flow_networks.EnsembleMLP(
        [dim, 12, 12, dim * per], 1, flow_networks.made_masks(dim, 12, 2, per)
    )
    with torch.no_grad():
        for p in net.parameters():
            p.normal_()
    jac = torch.autograd.functional.jacobian(
        lambda x: net(x.view(1, 1, dim)).view(-1), torch.randn(dim)
    )
    depends = (jac.abs() > 0).view(dim, per, dim).any(dim=1)  # [output dim, input dim]
    assert torch.equal(depends, torch.ones(dim, dim, dtype=torch.bool).tril(-1))


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_flow_inverse_undoes_the_transform(dim):
    # float64: random weights make splines steep enough (slopes down to 1e-3) that float32
    # round-off, amplified by the inverse's flat regions, would hide the algorithm's accuracy
    net = _random_flow(dim).double()
    x = torch.randn(2, 50, dim, dtype=torch.float64) * 2
    z, _ = net.transform(x)
    assert torch.allclose(net.inverse(z), x, atol=1e-5)


def test_flow_density_is_normalised_and_matches_its_samples():
    net = _random_flow(1, k=1, seed=3)
    grid = torch.linspace(-12, 12, 24001).view(1, -1, 1)
    with torch.no_grad():
        density = net.log_prob(grid).exp().view(-1).double().numpy()
    dx = 24 / 24000
    assert np.trapezoid(density, dx=dx) == pytest.approx(1.0, abs=1e-3)
    # samples through the inverse follow the density (KS against its numerical CDF)
    cdf = np.concatenate([[0.0], np.cumsum((density[1:] + density[:-1]) / 2 * dx)])
    with torch.no_grad():
        x = net.inverse(torch.randn(1, 5000, 1, generator=torch.Generator().manual_seed(1)))
    p = stats.kstest(x.view(-1).numpy(), lambda v: np.interp(v, grid.view(-1).numpy(), cdf))
    assert p.pvalue > 1e-3


def test_normal_draws_are_standard_normal_and_chunkable():
    keys = rng.replica_keys([1, 2])
    z = rng.normal(keys, 9, 0, (20000,))
    for row in z.numpy():
        assert stats.kstest(row, "norm").pvalue > 1e-3
    whole = rng.normal(keys, 9, 0, (10, 3))
    assert torch.equal(whole[:, 4:], rng.normal(keys, 9, 0, (6, 3), offset=12))


@pytest.mark.parametrize("name", ["flow", "flow_matching"])
def test_replica_does_not_depend_on_its_ensemble(name):
    sets = _camel_sets(3, 40)
    together = flows.train_ensemble(name, sets, [500, 501, 502], {**FAST, "epochs": 40})
    alone = flows.train_ensemble(name, sets[1:2], [501], {**FAST, "epochs": 40})
    a, b = together.generator_weights[1], alone.generator_weights[0]
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key].double(), b[key].double(), atol=1e-5), key


@pytest.mark.parametrize("name", ["flow", "flow_matching"])
def test_trained_models_reproduce_the_camel_back(name):
    # 2000 training points: a learned model should be close to the truth. The KS distance
    # of the training set itself is ~0.87 / sqrt(2000) = 0.02 on average; allow 3x that.
    sets = _camel_sets(1, 2000)
    result = flows.train_ensemble(name, sets, [500], {"epochs": 800, "patience": 200})
    assert result.status == ("done",)
    arch = flows.MODELS[name].config_type().architecture()
    x = np.concatenate(
        list(flows.generate(name, result.generator_weights, [7], 20000, arch, chunk_size=7000)),
        axis=1,
    )[0, :, 0]
    truth = GaussianShell(1)
    assert stats.kstest(x, lambda v: truth.cdf("x", v)).statistic < 0.06


def test_generation_does_not_depend_on_the_chunk_size():
    sets = _camel_sets(2, 40, dim=2)
    result = flows.train_ensemble("flow", sets, [1, 2], {**FAST, "epochs": 20})
    arch = flow_networks.FlowConfig(**FAST).architecture()
    whole = next(flows.generate("flow", result.generator_weights, [1, 2], 900, arch))
    parts = np.concatenate(
        list(flows.generate("flow", result.generator_weights, [1, 2], 900, arch, chunk_size=250)),
        axis=1,
    )
    np.testing.assert_allclose(parts, whole, atol=1e-5)


def test_early_stopping_keeps_the_best_held_out_epoch():
    sets = _camel_sets(2, 50)
    result = flows.train_ensemble(
        "flow",
        sets,
        [3, 4],
        {"epochs": 400, "patience": 50, "lr": 3e-2, "hidden": 16, "holdout": 0.2},
    )
    val = result.history[:, :, 1]
    for k, w in enumerate(result.generator_weights):
        best = int(w["best_epoch"])
        checked = np.flatnonzero(np.isfinite(val[:, k])) + 1
        assert best in checked and val[best - 1, k] == np.nanmin(val[:, k])
        # training went on for `patience` epochs without improvement (or to the end)
        assert len(val) >= min(best + 50, 400)


def test_schema_defaults_are_the_dataclass_defaults():
    config = cfg.validate(
        {
            "study": "s",
            "target": "gaussian_shell",
            "seeds": {"first": 0, "count": 1},
            "dims": {1: {"generators": ["flow", "flow_matching"]}},
        }
    )
    for name in ("flow", "flow_matching"):
        block = {k: v for k, v in config[name].items() if k not in ("replicas", "snapshots")}
        assert (
            flows.MODELS[name].config_type.from_mapping(block) == flows.MODELS[name].config_type()
        )


def test_unknown_options_and_an_impossible_holdout_are_clear_errors():
    with pytest.raises(ValueError, match="unknown FlowConfig option"):
        flow_networks.FlowConfig.from_mapping({"hiden": 3})
    with pytest.raises(cfg.ConfigError, match=r"flow.holdout = 0.5 .*n_train = 3"):
        cfg.validate(
            {
                "study": "s",
                "target": "gaussian_shell",
                "seeds": {"first": 0, "count": 1},
                "flow": {"holdout": 0.5},
                "dims": {1: {"generators": ["flow"], "n_train": [3]}},
            }
        )


@pytest.mark.parametrize("name", ["flow", "flow_matching"])
def test_train_and_evaluate_jobs(tmp_path, name):
    config = cfg.validate(
        {
            "study": "tiny",
            "target": "gaussian_shell",
            "device": "cpu",
            "seeds": {"first": 0, "count": 2},
            "replicas_per_job": 2,
            "defaults": {"generators": [name], "n_generated": [100, 1000], "n_train": [20]},
            "dims": {2: {"quantiles": [5], "joint": [3]}},
            name: {**FAST, "epochs": 30},
        }
    )
    (chunk,) = study.plan(config)
    flag = jobs.run_train(chunk.spec("train"), tmp_path, tmp_path / chunk.trained_flag)
    assert flag["replicas"] == {"0": "done", "1": "done"}
    for seed in chunk.seeds:
        rdir = tmp_path / chunk.setting.replica_dir(seed)
        assert {p.name for p in rdir.iterdir()} == {
            "status.json",
            "model.safetensors",
            "losses.csv",
            "snapshots",
        }
        losses = pd.read_csv(rdir / "losses.csv")
        assert list(losses.columns) == ["epoch", "train_loss", "val_loss"]
    jobs.run_evaluate(chunk.spec(), tmp_path, tmp_path / chunk.evaluated_flag)
    for seed in chunk.seeds:
        rdir = tmp_path / chunk.setting.replica_dir(seed)
        table = pd.read_csv(rdir / "mse.csv")
        assert set(table["binning"]) == {"r", "phi1", "joint"}
        assert json.loads((rdir / "status.json").read_text())["spread_ratio"] > 0
    # every file written belongs to the results-folder contract (ganplify verify)
    for path in results.folder_files(tmp_path):
        assert results._CONTRACT_RE.fullmatch(path), path


def test_bench_measures_the_density_models_and_rejects_unknown_ones(capsys):
    from ganplify.bench import measure as bench

    assert (
        bench.main(
            [
                "--generators",
                "flow,flow_matching",
                "--ks",
                "2",
                "--steps",
                "1",
                "--warmup",
                "1",
                "--no-isolate",
                "--threads",
                "1",
            ]
        )
        == 0
    )
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert {(r[0], r[1], r[2]) for r in rows if r and r[0] in flows.MODELS} == {
        ("flow", "ensemble", "2"),
        ("flow_matching", "ensemble", "2"),
    }
    assert bench.main(["--generators", "kde"]) == 2
    assert "allowed are gan, flow, flow_matching" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(flows.MODELS))
def test_epoch_hook_sees_the_weights_of_chosen_epochs(name):
    """The shared epoch loop calls the hook after each chosen epoch with weights that
    `generate` takes; at the last epoch they are the final weights."""
    data = np.random.default_rng(3).normal(size=(2, 30, 2))
    seen = {}
    result = flows.train_ensemble(
        name,
        data,
        [4, 5],
        {"epochs": 6, "hidden": 8},
        device="cpu",
        hook=lambda e, w: seen.setdefault(e, w),
        hook_epochs={2, 6, 99},
    )
    assert sorted(seen) == [2, 6]
    for final, hooked in zip(result.generator_weights, seen[6], strict=True):
        for key, value in hooked.items():
            torch.testing.assert_close(value, final[key], rtol=0, atol=0)
    assert any(
        not torch.equal(seen[2][0][k], seen[6][0][k])
        for k in seen[2][0]
        if k not in ("shift", "scale")
    )
