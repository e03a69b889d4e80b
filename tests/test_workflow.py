"""The Snakemake workflow: lint, dry runs, a real run of the quick default, the results folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ganplify.analysis.amplification import CONTRACT_COLUMNS
from ganplify.cli import main as ganplify_main
from tests.helpers import REPO, copy_project, env_with_venv, snakemake_cmd

pytestmark = pytest.mark.workflow


def run_snakemake(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [*snakemake_cmd(), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env_with_venv(),
        timeout=1800,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {args} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def jobs_of(dry_run_output: str) -> dict[str, int]:
    """Job counts from the 'Job stats' table of a dry run."""
    counts, inside = {}, False
    for line in dry_run_output.splitlines():
        if line.startswith("job "):
            inside = True
            continue
        if inside:
            parts = line.split()
            if len(parts) == 2 and parts[1].isdigit():
                if parts[0] == "total":
                    break
                counts[parts[0]] = int(parts[1])
    return counts


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory) -> Path:
    """One real run of the quick default config in a temporary project."""
    project = copy_project(tmp_path_factory.mktemp("quick"))
    start = time.perf_counter()
    run_snakemake(project)
    print(f"quick default study: {time.perf_counter() - start:.1f} s")
    return project


TINY_CONFIG = ".test/config/config.yaml"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """One real run of the tiny test config (.test/config/config.yaml): every generator and
    stage in d = 1, 2, 5 in a couple of minutes."""
    project = copy_project(tmp_path_factory.mktemp("tiny"))
    start = time.perf_counter()
    run_snakemake(project, "--configfile", TINY_CONFIG)
    print(f"tiny test study: {time.perf_counter() - start:.1f} s")
    return project


def test_lint_is_clean():
    proc = run_snakemake(REPO, "--lint", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Lints for" not in proc.stdout + proc.stderr


def test_dry_run_of_default_config(project):
    from ganplify.study import config as cfg

    proc = run_snakemake(project, "-n")
    jobs = jobs_of(proc.stdout)
    # the job counts follow from the config: one job per setting and chunk of seeds
    from ganplify.study import plan as study

    config = cfg.load(project / "config" / "config.yaml")
    chunks = study.plan(config)
    neural = sum(c.setting.generator in ("gan", "flow", "flow_matching") for c in chunks)
    assert jobs["baseline"] == len(chunks) - neural
    # gan, flow, flow_matching in d=1 (n50, n100), d=2, d=5
    assert jobs["train"] == jobs["evaluate"] == neural == 12
    assert jobs["aggregate"] == 1 and jobs["manifest"] == 1
    assert jobs["fit_uncertainty"] == 1  # the study runs the fit
    from ganplify.figures import planned

    for name in planned(config):
        assert jobs[f"plot_{name}"] == 1


def test_dry_run_of_the_paper_config(project):
    """The paper's protocol builds its full DAG: one job per setting and chunk of 100."""
    proc = run_snakemake(project, "-n", "--configfile", "config/paper.yaml")
    jobs = jobs_of(proc.stdout)
    # sample, fit, bootstrap, kde in d=1 (n_train 50, 100, 200, 500, 1000), d=2, d=5
    assert jobs["baseline"] == 28
    # gan, flow, flow_matching in the same 7 settings, 100 replicas per job
    assert jobs["train"] == 21 and jobs["evaluate"] == 21
    assert jobs["fit_uncertainty"] == 1
    figures = {j.removeprefix("plot_") for j in jobs if j.startswith("plot_")}
    assert figures == {
        "fig1_camel_back",
        "fig2_camel_back_mse",
        "fig4_ring_mse",
        "fig5_ring_cells",
        "fig6_shell_mse",
        "fig7_shell_cells",
        "amplification_vs_n_generated",
        "amplification_vs_n_train",
        "gan_losses",
        "league",
        "effective_parameters",
        "robustness",
        "learning_curve",
        "chi2_pass",
        "fit_uncertainty",
    }
    assert "--configfile" not in proc.stderr  # no warning about merged config files


def test_dry_run_of_the_heavy_tails_config(project):
    """Two truth families: every baseline setting once per target, and the comparison figure."""
    proc = run_snakemake(project, "-n", "--configfile", "config/heavy_tails.yaml")
    jobs = jobs_of(proc.stdout)
    assert jobs["baseline"] == 16  # sample, fit, bootstrap, kde in d=1, 2, for both targets
    assert "train" not in jobs and "evaluate" not in jobs
    figures = {j.removeprefix("plot_") for j in jobs if j.startswith("plot_")}
    assert figures == {
        "fig1_camel_back",
        "fig2_camel_back_mse",
        "fig4_ring_mse",
        "fig5_ring_cells",
        "amplification_vs_n_generated",
        "amplification_vs_n_train",
        "league",
        "effective_parameters",
        "robustness",
        "chi2_pass",
        "truth_families",
        "fit_uncertainty",
    }
    assert jobs["fit_uncertainty"] == 1  # one table over both targets
    for target in ("gaussian_shell", "student_shell"):
        assert f"results/heavy_tails/replicas/{target}-d2/n100/fit-" in proc.stdout


def test_bad_config_stops_before_any_job(project):
    proc = run_snakemake(project, "--config", "study=../escape", check=False)
    assert proc.returncode != 0
    assert "invalid config: study" in proc.stderr + proc.stdout
    assert not (project / "results").exists() and not (project.parent / "escape").exists()
    proc = run_snakemake(project, "--config", "seeds={first: -3, count: 5}", check=False)
    assert proc.returncode != 0 and "seeds.first" in proc.stderr + proc.stdout


def test_raw_config_files_are_reread_strictly(project):
    """Snakemake's own YAML reading keeps the last of duplicate keys and holds alias bombs as
    shared values; the workflow reads its config files again strictly before any job."""
    valid = (project / "config" / "config.yaml").read_text()
    bad = project / "bad.yaml"
    bad.write_text(valid + "seeds: {first: 5, count: 3}\n")
    proc = run_snakemake(project, "-n", "--configfile", "bad.yaml", check=False)
    out = proc.stderr + proc.stdout
    assert proc.returncode != 0 and "invalid config: config file '" in out
    lines = valid.splitlines()
    first = next(i for i, line in enumerate(lines, 1) if line.startswith("seeds:"))
    assert f"bad.yaml': line {len(lines) + 1}: duplicate key 'seeds' (first at line {first})" in out
    bomb = ["a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    bomb += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    bad.write_text("\n".join([*bomb, valid]))
    proc = run_snakemake(project, "-n", "--configfile", "bad.yaml", check=False)
    out = proc.stderr + proc.stdout
    assert proc.returncode != 0 and "aliases expand to more than 100,000 values" in out
    assert not (project / "results").exists()


def test_unavailable_device_stops_a_local_run_before_any_job(project):
    import torch

    if torch.cuda.device_count() > 9:
        pytest.skip("this machine has a CUDA device 9")
    (project / "cuda.yaml").write_text(
        "study: tiny\ntarget: gaussian_shell\ndevice: 'cuda:9'\nseeds: {first: 0, count: 2}\n"
        "defaults: {generators: [sample], n_train: [20], sample_sizes: [20, 40]}\n"
        "dims: {1: {quantiles: [5]}}\n"
    )
    proc = run_snakemake(project, "--cores", "1", "--configfile", "cuda.yaml", check=False)
    out = proc.stderr + proc.stdout
    assert proc.returncode != 0 and "invalid config: device = 'cuda:9'" in out
    assert not (project / "results").exists()


@pytest.mark.slow  # runs the quick default end to end (about 8 minutes on 2 cores)
def test_quick_run_produces_the_contract(quick_run):
    res = quick_run / "results" / "quick"
    from ganplify.figures import planned
    from ganplify.study import config as cfg

    figures = planned(cfg.load(res / "config.yaml"))
    assert {"fig1_camel_back", "fig2_camel_back_mse", "fig4_ring_mse", "fig6_shell_mse"} <= set(
        figures
    )
    for f in (
        "config.yaml",
        "provenance.json",
        "MANIFEST.sha256",
        "tables/mse.csv",
        "tables/amplification.csv",
        "tables/replicas.csv",
        "tables/robustness.csv",
        "tables/robustness_limits.csv",
        "tables/fit_uncertainty.csv",
        "tables/fit_parameters.csv",
        *(f"figures/{n}.{ext}" for n in figures for ext in ("png", "pdf")),
    ):
        assert (res / f).is_file(), f
    table = pd.read_csv(res / "tables" / "amplification.csv")
    assert list(table.columns[: len(CONTRACT_COLUMNS)]) == CONTRACT_COLUMNS
    # every binning of the quick default has K >= 10 cells: the strict rule never allows more
    # than N_equiv there (robustness.strict_factor)
    for col in ("amplification_robust_50", "amplification_robust_90"):
        both = table[["amplification", col]].dropna()
        assert len(both) and (both[col] <= both["amplification"]).all(), col
    uncertainty = pd.read_csv(res / "tables" / "fit_uncertainty.csv")
    assert np.allclose(
        uncertainty["bias2"] + uncertainty["variance"],
        uncertainty["mse_mean"],
        rtol=1e-12,
        atol=1e-30,
    )
    fit = table[(table["generator"] == "fit") & (table["n_train"] == 100) & (table["dim"] == 1)]
    assert sorted(fit["n_quantiles"]) == [10, 20, 50] and fit["n_generated"].isna().all()
    assert (fit["n_replicas"] == 100).all()
    # the GAN ran in every dimension, with its asymptotic rows
    gan = table[table["generator"] == "gan"]
    assert set(gan["dim"]) == {1, 2, 5} and (gan["n_generated"] == np.inf).any()
    assert (gan["n_replicas"] + gan["n_failed"] == 8).all()
    # per-replica files sit in one folder per (target, d, n_train, generator, seed)
    seeds = sorted(p for p in res.glob("replicas/gaussian_shell-d1/n100/fit-*/seed*") if p.is_dir())
    assert len(seeds) == 100
    assert {p.name for p in seeds[0].iterdir()} == {"status.json", "mse.csv", "fit.json"}
    assert ganplify_main(["verify", str(res)]) == 0


@pytest.mark.slow  # runs the quick default end to end (about 8 minutes on 2 cores)
def test_report_holds_every_figure(quick_run):
    report = quick_run / "results" / "quick" / "report.html"
    run_snakemake(quick_run, "--report", str(report))
    html = report.read_text(errors="replace")
    from ganplify.figures import planned
    from ganplify.study import config as cfg

    for name in planned(cfg.load(quick_run / "results" / "quick" / "config.yaml")):
        assert f"{name}.png" in html, name
    # the report is allowed in a results folder and does not break verification
    assert ganplify_main(["verify", str(quick_run / "results" / "quick")]) == 0


@pytest.mark.slow  # runs the tiny test config end to end
def test_tiny_config_runs_every_stage_and_verifies(tiny_run):
    res = tiny_run / "results" / "test"
    assert ganplify_main(["verify", str(res)]) == 0
    from ganplify.figures import planned
    from ganplify.study import config as cfg

    for name in planned(cfg.load(res / "config.yaml")):
        assert (res / "figures" / f"{name}.png").is_file(), name
    curve = pd.read_csv(res / "tables" / "learning_curve.csv")
    assert set(curve["generator"]) == {"gan", "flow", "flow_matching"}
    assert ganplify_main(["status", str(res), "--workdir", str(tiny_run)]) == 0


@pytest.mark.slow  # runs the tiny test config end to end
def test_rerun_does_nothing(tiny_run):
    proc = run_snakemake(tiny_run, "-n", "--configfile", TINY_CONFIG)
    assert "Nothing to be done" in proc.stdout + proc.stderr


@pytest.mark.slow  # runs the tiny test config end to end
def test_copied_results_folder_does_not_rerun_replica_jobs(tiny_run, tmp_path):
    other = copy_project(tmp_path / "other")
    shutil.copytree(tiny_run / "results", other / "results")  # fresh file times
    files = [p for p in (other / "results").rglob("*") if p.is_file()]
    now = time.time()
    for i, p in enumerate(reversed(files)):  # scramble the order of modification times
        os.utime(p, (now + i, now + i))
    assert not (other / ".snakemake").exists()
    jobs = jobs_of(run_snakemake(other, "-n", "--configfile", TINY_CONFIG).stdout)
    assert "baseline" not in jobs and "train" not in jobs and "evaluate" not in jobs
    assert all(
        j in {"aggregate", "fit_uncertainty", "provenance", "manifest", "all"}
        or j.startswith("plot_")
        for j in jobs
    ), jobs


@pytest.mark.slow  # runs the tiny test config end to end
def test_verify_catches_altered_missing_and_foreign_files(tiny_run, tmp_path, capsys):
    res = tmp_path / "copy"
    shutil.copytree(tiny_run / "results" / "test", res)
    assert ganplify_main(["verify", str(res)]) == 0
    table = res / "tables" / "amplification.csv"
    table.write_text(table.read_text().replace(",fit,x,10,", ",fit,x,11,", 1))
    (res / "figures" / "notes.txt").write_text("mine")
    victim = next(res.glob("replicas/*/*/fit-*/seed3/fit.json"))
    victim.unlink()
    capsys.readouterr()
    assert ganplify_main(["verify", str(res)]) == 1
    err = capsys.readouterr().err
    assert "tables/amplification.csv: altered" in err
    assert "figures/notes.txt: foreign file" in err
    assert "seed3/fit.json: missing" in err


@pytest.mark.slow  # runs the tiny test config end to end
def test_summary_prints_the_table(tiny_run, capsys):
    assert ganplify_main(["summary", str(tiny_run / "results" / "test"), "--generator", "fit"]) == 0
    out = capsys.readouterr().out
    assert "amplification" in out and "fit" in out and "gan" not in out
