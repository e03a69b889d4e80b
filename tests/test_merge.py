"""Merging results folders of one study made with different seeds (real workflow runs)."""

from __future__ import annotations

import subprocess

import pandas as pd
import pytest
import yaml

from ganplify.cli import main as ganplify_main
from ganplify.results.merge import MergeError, merged_config
from tests.helpers import copy_project, env_with_venv, snakemake_cmd

pytestmark = pytest.mark.workflow

TINY = {
    "target": "gaussian_shell",
    "device": "cpu",
    "replicas_per_job": 2,
    "defaults": {
        "n_train": [20],
        "generators": ["sample", "gan"],
        "n_generated": [100, 1000],
        "sample_sizes": [20, 40],
    },
    "dims": {1: {"quantiles": [5], "generators": ["sample", "fit", "gan"]}},
    "gan": {"epochs": 2, "noise_dim": 8, "hidden": 16, "layers": 2, "embedding": 4},
}


def write_config(project, name, first, count):
    path = project / f"{name}.yaml"
    path.write_text(
        yaml.safe_dump({**TINY, "study": name, "seeds": {"first": first, "count": count}})
    )
    return path


def snakemake(project, *args):
    proc = subprocess.run(
        [*snakemake_cmd(), *args],
        cwd=project,
        capture_output=True,
        text=True,
        env=env_with_venv(),
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


@pytest.mark.slow  # two real study runs
def test_two_folders_merge_into_the_study_of_all_seeds(tmp_path):
    project = copy_project(tmp_path / "p")
    for name, first in (("alice", 0), ("bob", 2), ("both", 0)):
        count = 4 if name == "both" else 2
        snakemake(project, "--configfile", str(write_config(project, name, first, count)))
    res = project / "results"
    assert (
        ganplify_main(
            ["merge", str(res / "alice"), str(res / "bob"), "--into", str(res / "merged")]
        )
        == 0
    )
    dry = snakemake(project, "-n", "--configfile", "results/merged/config.yaml")
    for rule in ("baseline", "train", "evaluate"):
        assert f"rule {rule}:" not in dry, dry
    snakemake(project, "--configfile", "results/merged/config.yaml")
    assert ganplify_main(["verify", str(res / "merged")]) == 0
    merged = pd.read_csv(res / "merged" / "tables" / "amplification.csv")
    direct = pd.read_csv(res / "both" / "tables" / "amplification.csv")
    assert (merged["n_replicas"] == 4).all()
    # the same replicas, so the same numbers: exactly for the baselines (same per-replica
    # tables; the bootstrap draws the same resamples), to float rounding for the GAN, whose
    # replicas were trained in ensembles of another composition
    cols = ["generator", "binning", "n_quantiles", "n_generated"]
    both = merged.merge(direct, on=cols, suffixes=("", "_direct"))
    assert len(both) == len(direct)
    base = both[both["generator"] != "gan"]
    pd.testing.assert_series_equal(base["mse_mean"], base["mse_mean_direct"], check_names=False)
    gan = both[both["generator"] == "gan"]
    pd.testing.assert_series_equal(
        gan["mse_mean"], gan["mse_mean_direct"], check_names=False, rtol=1e-3
    )


def test_merge_refuses_what_it_cannot_join(tmp_path):
    from ganplify.study import config as cfg

    def conf(first, count, **extra):
        return cfg.validate(
            {**TINY, "study": "s", "seeds": {"first": first, "count": count}, **extra}
        )

    with pytest.raises(MergeError, match=r"miss \[2, 3\]"):
        merged_config([conf(0, 2), conf(4, 2)], "m")
    with pytest.raises(MergeError, match=r"differ in 'gan\.epochs'"):
        merged_config([conf(0, 2), conf(2, 2, gan={**TINY["gan"], "epochs": 3})], "m")
    out = merged_config([conf(0, 2), conf(2, 3)], "m")
    assert out["seeds"] == {"first": 0, "count": 5} and out["study"] == "m"
    # a GAN capped at 1 replica in each folder uses seeds 0 and 2: they do not join
    with pytest.raises(MergeError, match="d=1 gan"):
        merged_config(
            [
                conf(0, 2, gan={**TINY["gan"], "replicas": 1}),
                conf(2, 2, gan={**TINY["gan"], "replicas": 1}),
            ],
            "m",
        )


def test_merge_errors_are_clear(tmp_path, capsys):
    res = tmp_path / "results"
    (res / "a").mkdir(parents=True)
    assert ganplify_main(["merge", str(res / "a"), str(res / "b"), "--into", str(res / "c")]) == 2
    assert "config.yaml: missing" in capsys.readouterr().err
    assert ganplify_main(["merge", str(res / "a"), "--into", str(res / "c")]) == 2
    assert "at least two" in capsys.readouterr().err
