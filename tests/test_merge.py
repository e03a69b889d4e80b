"""Merging results folders of one study made with different seeds (real workflow runs of the
tiny test config, .test/config/config.yaml)."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import pandas as pd
import pytest
import yaml

from ganplify.cli import main as ganplify_main
from ganplify.results.merge import MergeError, merged_config, same_content
from ganplify.study import config as cfg
from tests.helpers import REPO, TINY_CONFIG, copy_project, run_snakemake

pytestmark = pytest.mark.workflow

# The tiny test config, for the unit tests of merged_config.
TINY = cfg.read(REPO / TINY_CONFIG)


def write_config(project: Path, name: str, first: int, count: int) -> Path:
    """The tiny test config as study ``name`` with seeds first .. first + count - 1."""
    path = project / f"{name}.yaml"
    path.write_text(
        yaml.safe_dump({**TINY, "study": name, "seeds": {"first": first, "count": count}})
    )
    return path


@pytest.fixture(scope="module")
def halves(tiny_run, tmp_path_factory) -> Path:
    """A project with the tiny study run as two halves, alice (seeds 0-1) and bob (2-3), and
    the whole (results/both: a copy of the session's tiny run, seeds 0-3)."""
    project = copy_project(tmp_path_factory.mktemp("halves"))
    for name, first in (("alice", 0), ("bob", 2)):
        run_snakemake(project, "--configfile", str(write_config(project, name, first, 2)))
    shutil.copytree(tiny_run / "results" / "test", project / "results" / "both", symlinks=True)
    return project


def merge(*args: Path | str) -> int:
    *sources, into = map(str, args)
    return ganplify_main(["merge", *sources, "--into", into])


@pytest.mark.slow  # two real study runs
def test_two_folders_merge_into_the_study_of_all_seeds(halves, tmp_path):
    project = copy_project(tmp_path / "p")
    shutil.copytree(halves / "results", project / "results", symlinks=True)
    res = project / "results"
    assert merge(res / "alice", res / "bob", res / "merged") == 0
    assert not (res / "merged" / "logs").exists()  # logs are never merged
    dry = run_snakemake(project, "-n", "--configfile", "results/merged/config.yaml").stdout
    for rule in ("baseline", "train", "evaluate"):
        assert f"rule {rule}:" not in dry, dry
    run_snakemake(project, "--configfile", "results/merged/config.yaml")
    assert ganplify_main(["verify", str(res / "merged")]) == 0
    merged = pd.read_csv(res / "merged" / "tables" / "amplification.csv")
    direct = pd.read_csv(res / "both" / "tables" / "amplification.csv")
    assert (merged["n_replicas"] == 4).all()
    # the same replicas, so the same numbers: exactly for the baselines (same per-replica
    # tables; the bootstrap draws the same resamples), to float rounding for the neural
    # generators, whose replicas were trained in ensembles of another composition
    cols = ["target", "dim", "n_train", "generator", "binning", "n_quantiles", "n_generated"]
    both = merged.merge(direct, on=cols, suffixes=("", "_direct"))
    assert len(both) == len(direct)
    base = both[~both["generator"].isin(["gan", "flow", "flow_matching"])]
    pd.testing.assert_series_equal(base["mse_mean"], base["mse_mean_direct"], check_names=False)
    neural = both[both["generator"].isin(["gan", "flow", "flow_matching"])]
    pd.testing.assert_series_equal(
        neural["mse_mean"], neural["mse_mean_direct"], check_names=False, rtol=1e-3
    )


@pytest.mark.slow  # two real study runs
def test_identical_overlapping_replicas_merge(halves, tmp_path):
    res = tmp_path / "results"
    shutil.copytree(halves / "results" / "alice", res / "alice")
    shutil.copytree(halves / "results" / "alice", res / "alice_again")
    shutil.copytree(halves / "results" / "bob", res / "bob")
    assert merge(res / "alice", res / "alice_again", res / "bob", res / "merged") == 0


@pytest.mark.slow  # two real study runs
def test_merge_refuses_unverified_linked_or_conflicting_sources(halves, tmp_path, capsys):
    res = tmp_path / "results"
    for name in ("alice", "bob"):
        shutil.copytree(halves / "results" / name, res / name)
    mse = next((res / "alice").glob("replicas/gaussian_shell-d1/n20/fit-*/seed1/mse.csv"))
    original = mse.read_text()
    # an edit: refused, naming the source and the file
    mse.write_text(original + "0\n")
    assert merge(res / "alice", res / "bob", res / "m1") == 2
    err = capsys.readouterr().err
    assert f"{res / 'alice'}: `ganplify verify` finds" in err and "seed1/mse.csv: altered" in err
    # the same edit accepted: alice verifies, but her seed 1 now conflicts with a copy of it
    assert ganplify_main(["accept", str(res / "alice"), str(mse)]) == 0
    shutil.copytree(halves / "results" / "alice", res / "alice_orig")
    capsys.readouterr()
    assert merge(res / "alice", res / "alice_orig", res / "bob", res / "m2") == 2
    assert "seed1/mse.csv differs between" in capsys.readouterr().err
    # a link to a private file outside: refused, never followed
    private = tmp_path / "private.txt"
    private.write_text("private")
    shutil.rmtree(res / "alice_orig")
    mse.unlink()
    mse.symlink_to(private)
    assert merge(res / "alice", res / "bob", res / "m3") == 2
    assert "mse.csv: a symbolic link" in capsys.readouterr().err
    for name in ("m1", "m2", "m3"):
        assert not (res / name).exists() or not any((res / name).iterdir())


def _safetensors_blob(header: dict, data: bytes) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def test_same_content_ignores_header_order_and_old_timestamps():
    data = struct.pack("<2f", 1.0, 2.0)
    tensor = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
    a = _safetensors_blob({"__metadata__": {"seed": "1", "phash": "ab"}, "w": tensor}, data)
    b = _safetensors_blob({"w": tensor, "__metadata__": {"phash": "ab", "seed": "1"}}, data)
    assert a != b and same_content(a, b, "generator.safetensors")
    c = _safetensors_blob({"w": tensor, "__metadata__": {"phash": "ab", "seed": "2"}}, data)
    assert not same_content(a, c, "generator.safetensors")
    d = _safetensors_blob(
        {"w": tensor, "__metadata__": {"seed": "1", "phash": "ab"}}, struct.pack("<2f", 1.0, 3.0)
    )
    assert not same_content(a, d, "generator.safetensors")
    s1 = b'{"seed": 1, "status": "done", "written": "2026-01-01"}'
    s2 = b'{"status": "done", "seed": 1, "written": "2026-02-02"}'
    assert same_content(s1, s2, "status.json")
    assert not same_content(s1, s2.replace(b"done", b"failed"), "status.json")
    assert not same_content(b"a,b\n1,2\n", b"a,b\n1,3\n", "mse.csv")


def test_merge_refuses_what_it_cannot_join(tmp_path):
    def conf(first, count, **extra):
        return cfg.validate(
            {**TINY, "study": "s", "seeds": {"first": first, "count": count}, **extra}
        )

    with pytest.raises(MergeError, match=r"miss \[2, 3\]"):
        merged_config([conf(0, 2), conf(4, 2)], "m")
    with pytest.raises(MergeError, match=r"differ in 'gan\.epochs'"):
        merged_config(
            [conf(0, 2), conf(2, 2, gan={**TINY["gan"], "epochs": TINY["gan"]["epochs"] + 1})], "m"
        )
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
