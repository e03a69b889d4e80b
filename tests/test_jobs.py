"""Job bodies: training and evaluating a chunk of GAN replicas, skipping finished replicas."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import safetensors

from ganplify.cli import main as ganplify_main
from ganplify.study import config as cfg
from ganplify.study import jobs
from ganplify.study import plan as study

# A tiny GAN (same code path as the paper's, small sizes) so that jobs take seconds.
TINY_GAN = {
    "epochs": 3,
    "noise_dim": 8,
    "hidden": 16,
    "layers": 2,
    "embedding": 4,
    "lr": 1e-3,
    "checkpoint_every": 1,
}


def tiny_config(**changes) -> dict:
    raw = {
        "study": "tiny",
        "target": "gaussian_shell",
        "device": "cpu",
        "seeds": {"first": 0, "count": 3},
        "replicas_per_job": 3,
        "defaults": {"generators": ["gan"], "n_generated": [100, 1000], "n_train": [20]},
        "dims": {1: {"quantiles": [10]}, 2: {"quantiles": [5], "joint": [3]}},
        "gan": dict(TINY_GAN),
    }
    raw.update(changes)
    return cfg.validate(raw)


def gan_chunks(config, dim):
    return [c for c in study.plan(config) if c.setting.generator == "gan" and c.setting.dim == dim]


def test_train_then_evaluate_writes_every_replica_file(tmp_path):
    config = tiny_config()
    (chunk,) = gan_chunks(config, 2)
    flag = jobs.run_train(chunk.spec("train"), tmp_path, tmp_path / chunk.trained_flag)
    assert flag["trained"] == [0, 1, 2] and flag["replicas"] == {
        "0": "done",
        "1": "done",
        "2": "done",
    }
    for seed in chunk.seeds:
        rdir = tmp_path / chunk.setting.replica_dir(seed)
        assert {p.name for p in rdir.iterdir()} == {
            "status.json",
            "generator.safetensors",
            "losses.csv",
            "snapshots",
        }
        # snapshots (auto): about ten log-spaced epochs of 3, the last included
        assert sorted(p.name for p in (rdir / "snapshots").iterdir()) == [
            "epoch1.safetensors",
            "epoch2.safetensors",
            "epoch3.safetensors",
        ]
        with safetensors.safe_open(str(rdir / "generator.safetensors"), framework="pt") as f:
            assert f.metadata()["phash"] == chunk.setting.phash
        assert len(pd.read_csv(rdir / "losses.csv")) == TINY_GAN["epochs"]
    jobs.run_evaluate(chunk.spec(), tmp_path, tmp_path / chunk.evaluated_flag)
    for seed in chunk.seeds:
        rdir = tmp_path / chunk.setting.replica_dir(seed)
        table = pd.read_csv(rdir / "mse.csv")
        assert set(table["binning"]) == {"r", "phi1", "joint"}
        assert sorted(set(table["n_generated"])) == [100, 1000]
        status = json.loads((rdir / "status.json").read_text())
        assert status["status"] == "done" and status["spread_ratio"] > 0


def test_rerun_skips_finished_replicas_and_rechunking_reuses_them(tmp_path):
    config = tiny_config()
    (chunk,) = gan_chunks(config, 1)
    jobs.run_train(chunk.spec("train"), tmp_path, tmp_path / chunk.trained_flag)
    weights = {
        s: (tmp_path / chunk.setting.replica_dir(s) / "generator.safetensors").read_bytes()
        for s in chunk.seeds
    }
    again = jobs.run_train(chunk.spec("train"), tmp_path, tmp_path / chunk.trained_flag)
    assert again["trained"] == [] and again["skipped"] == [0, 1, 2]
    # one replica per job now: every new chunk finds its replica finished
    for small in gan_chunks(tiny_config(replicas_per_job=1), 1):
        flag = jobs.run_train(small.spec("train"), tmp_path, tmp_path / small.trained_flag)
        assert flag["trained"] == []
    for s in chunk.seeds:
        assert (
            tmp_path / chunk.setting.replica_dir(s) / "generator.safetensors"
        ).read_bytes() == weights[s]


def test_replica_does_not_depend_on_its_ensemble(tmp_path):
    """Seed 1 trained with seeds 0 and 2 equals seed 1 trained alone (to float32 rounding)."""
    import torch

    from ganplify.generators.neural import io as training

    together = tiny_config()
    alone = tiny_config(seeds={"first": 1, "count": 1})
    (a,) = gan_chunks(together, 1)
    (b,) = gan_chunks(alone, 1)
    a_weights = "generator.safetensors"
    jobs.run_train(a.spec("train"), tmp_path / "a", tmp_path / "a" / a.trained_flag)
    jobs.run_train(b.spec("train"), tmp_path / "b", tmp_path / "b" / b.trained_flag)
    binding = jobs.replica_binding(a.setting, 1)
    wa = training.load_generator(tmp_path / "a" / a.setting.replica_dir(1) / a_weights, binding)
    wb = training.load_generator(tmp_path / "b" / b.setting.replica_dir(1) / a_weights, binding)
    for name in wa:
        torch.testing.assert_close(wa[name], wb[name], rtol=1e-4, atol=1e-5)


def test_evaluate_refuses_untrained_replicas(tmp_path):
    (chunk,) = gan_chunks(tiny_config(), 1)
    with pytest.raises(jobs.JobError, match="has not finished training"):
        jobs.run_evaluate(chunk.spec(), tmp_path, tmp_path / chunk.evaluated_flag)


def test_spec_and_output_mismatch_are_clear_errors(tmp_path, capsys):
    (chunk,) = gan_chunks(tiny_config(), 1)
    spec = chunk.spec("train")
    code = ganplify_main(
        [
            "train",
            "--spec",
            json.dumps(spec),
            "--results",
            str(tmp_path),
            "--output",
            str(tmp_path / "elsewhere.json"),
        ]
    )
    assert code == 2 and "does not match the job spec" in capsys.readouterr().err
    spec["options"]["epochs"] = 99
    code = ganplify_main(
        [
            "train",
            "--spec",
            json.dumps(spec),
            "--results",
            str(tmp_path),
            "--output",
            str(tmp_path / chunk.trained_flag),
        ]
    )
    assert code == 2 and "phash" in capsys.readouterr().err
    code = ganplify_main(
        [
            "train",
            "--spec",
            "{not json",
            "--results",
            str(tmp_path),
            "--output",
            str(tmp_path / chunk.trained_flag),
        ]
    )
    assert code == 2 and "not valid JSON" in capsys.readouterr().err


def test_gan_sampler_for_figures(tmp_path):
    from ganplify import generators

    config = tiny_config()
    (chunk,) = gan_chunks(config, 1)
    jobs.run_train(chunk.spec("train"), tmp_path, tmp_path / chunk.trained_flag)
    draw = generators.get("gan").load_sampler(
        chunk.setting, 0, tmp_path / chunk.setting.replica_dir(0)
    )
    x = draw(500, np.random.default_rng(0))
    assert x.shape == (500, 1) and np.all(np.isfinite(x))


def test_status_names_done_in_progress_failed_and_missing_replicas(tmp_path):
    from ganplify.results import status
    from ganplify.results.io import write_json

    config = tiny_config(dims={1: {"quantiles": [10]}})
    (chunk,) = gan_chunks(config, 1)
    rdir = {s: tmp_path / chunk.setting.replica_dir(s) for s in chunk.seeds}
    before = status.replica_states(tmp_path, [chunk])
    assert [st.state for st in before] == ["missing"] * 3 and status.incomplete(before)

    jobs.run_train(chunk.spec("train"), tmp_path, tmp_path / chunk.trained_flag)
    trained = status.replica_states(tmp_path, [chunk])
    assert {st.state for st in trained} == {"trained"}
    jobs.run_evaluate(chunk.spec(), tmp_path, tmp_path / chunk.evaluated_flag)
    assert {st.state for st in status.replica_states(tmp_path, [chunk])} == {"done"}

    # seed 1 diverged (final), seed 2 only has a checkpoint (an interrupted job)
    failed = json.loads((rdir[1] / "status.json").read_text())
    write_json(
        rdir[1] / "status.json", {**failed, "status": "failed", "reason": "loss is nan at epoch 2"}
    )
    (rdir[2] / "status.json").unlink()
    write_json(rdir[2] / "checkpoint.json", {"epoch": 2})
    (tmp_path / chunk.evaluated_flag).unlink()
    states = {st.seed: st for st in status.replica_states(tmp_path, [chunk])}
    assert states[0].state == "done"
    assert states[1].state == "failed" and "nan" in states[1].reason
    assert states[2].state == "in progress" and "checkpoint at epoch 2 of 3" in states[2].reason
    lines = status.summary_lines(list(states.values()))
    assert any(line.endswith("seed2: in progress (checkpoint at epoch 2 of 3)") for line in lines)
    assert status.incomplete(list(states.values()))


def test_learning_curve_from_snapshots_ends_at_the_final_weights(tmp_path):
    """Snapshots are evaluated like the final weights: the last epoch's rows are mse.csv's,
    and aggregation gives one asymptotic row per epoch and binning."""
    from ganplify.analysis import learning_curve

    config = tiny_config(gan={**TINY_GAN, "epochs": 4, "snapshots": [1, 3, 4, 9]})
    (chunk,) = gan_chunks(config, 1)
    jobs.run_train(chunk.spec("train"), tmp_path, tmp_path / chunk.trained_flag)
    jobs.run_evaluate(chunk.spec(), tmp_path, tmp_path / chunk.evaluated_flag)
    rdir = tmp_path / chunk.setting.replica_dir(0)
    curve = pd.read_csv(rdir / "learning_curve.csv")
    assert sorted(set(curve["epoch"])) == [1, 3, 4]  # epoch 9 is past the training
    last = curve[curve["epoch"] == 4].drop(columns=["epoch", "spread_ratio"])
    pd.testing.assert_frame_equal(last.reset_index(drop=True), pd.read_csv(rdir / "mse.csv"))
    assert not curve[curve["epoch"] == 1]["mse"].equals(curve[curve["epoch"] == 4]["mse"])
    mse, replicas = learning_curve.collect(tmp_path, [chunk])
    table = learning_curve.learning_table(
        mse, replicas, n_boot=100, interval=0.68, seed=0, collapse_spread=0.5, saturation=0.1
    )
    assert list(table.columns) == learning_curve.COLUMNS
    assert set(table["epoch"]) == {1, 3, 4} and (table["n_replicas"] == 3).all()
    assert len(table) == 3 * len(chunk.binnings)


def test_snapshot_epochs():
    from ganplify.analysis.learning_curve import snapshot_epochs

    assert snapshot_epochs("auto", 150) == [1, 2, 3, 5, 9, 16, 28, 49, 86, 150]
    assert snapshot_epochs("auto", 3) == [1, 2, 3]
    assert snapshot_epochs([5, 0, 200, 5], 150) == [5]
    assert snapshot_epochs([], 150) == []
