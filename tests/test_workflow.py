"""The Snakemake workflow: lint, dry runs, a real run of the quick default, the results folder."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ganplify.analysis.amplification import CONTRACT_COLUMNS
from ganplify.cli import main as ganplify_main
from tests.helpers import REPO, TINY_CONFIG, copy_project, run_snakemake

pytestmark = pytest.mark.workflow


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
def test_copied_results_folder_follows_a_changed_config(tiny_run, tmp_path):
    """Without .snakemake records, Snakemake cannot see that the config changed: the stale
    config.yaml is removed at parsing, so the tables are aggregated again with the new one."""
    import yaml

    other = copy_project(tmp_path / "other")
    shutil.copytree(tiny_run / "results", other / "results")
    config = yaml.safe_load((REPO / TINY_CONFIG).read_text())
    config["aggregate"]["interval"] = 0.9
    (other / "wider.yaml").write_text(yaml.safe_dump(config))
    proc = run_snakemake(other, "--configfile", "wider.yaml", "--cores", "2")
    assert "config.yaml: not the study's config: written again" in proc.stderr
    results = other / "results" / "test"
    assert yaml.safe_load((results / "config.yaml").read_text())["aggregate"]["interval"] == 0.9
    old = pd.read_csv(tiny_run / "results" / "test" / "tables" / "amplification.csv")
    new = pd.read_csv(results / "tables" / "amplification.csv")
    wide, narrow = (t["n_equiv_hi"] - t["n_equiv_lo"] for t in (new, old))
    finite = np.isfinite(wide) & np.isfinite(narrow)  # exact fits: inf - inf
    assert finite.sum() > 200 and (wide[finite] >= narrow[finite]).all()
    assert (wide[finite] > narrow[finite]).mean() > 0.9
    assert ganplify_main(["verify", str(results)]) == 0
    again = run_snakemake(other, "-n", "--configfile", "wider.yaml")
    assert "not the study's config" not in again.stderr and jobs_of(again.stdout) == {}


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


def copy_of_run(tiny_run: Path, dest: Path) -> tuple[Path, Path]:
    """A copy of the tiny run's project and results (the collaborator's folder)."""
    other = copy_project(dest)
    shutil.copytree(tiny_run / "results", other / "results", symlinks=True)
    return other, other / "results" / "test"


def _edit_table(res: Path, tmp_path: Path) -> str:
    table = res / "tables" / "amplification.csv"
    table.write_text(table.read_text().replace(",fit,x,10,", ",fit,x,11,", 1))
    return "tables/amplification.csv: changed since MANIFEST.sha256, and not by the workflow"


def _link_figure(res: Path, tmp_path: Path) -> str:
    secret = tmp_path / "private.txt"
    secret.write_text("private")
    figure = next((res / "figures").glob("*.png"))
    figure.unlink()
    figure.symlink_to(secret)
    return f"figures/{figure.name}: a symbolic link"


def _add_seed(res: Path, tmp_path: Path) -> str:
    setting = next(res.glob("replicas/gaussian_shell-d1/n20/fit-*"))
    shutil.copytree(setting / "seed3", setting / "seed4")
    return "seed4/mse.csv: not written by the workflow, nor listed in MANIFEST.sha256"


@pytest.mark.slow  # runs the tiny test config end to end
@pytest.mark.parametrize("tamper", [_edit_table, _link_figure, _add_seed])
def test_a_rerun_refuses_a_tampered_folder_and_never_restamps_it(tiny_run, tmp_path, tamper):
    """The hostile collaborator: tamper, run the same snakemake command, see it refuse."""
    project, res = copy_of_run(tiny_run, tmp_path / "project")
    message = tamper(res, tmp_path)
    manifest = (res / "MANIFEST.sha256").read_bytes()
    for args in (["-n"], []):  # a dry run refuses too
        proc = run_snakemake(project, *args, "--configfile", TINY_CONFIG, check=False)
        out = proc.stdout + proc.stderr
        assert proc.returncode != 0
        assert message in out and "ganplify accept" in out, out
    assert (res / "MANIFEST.sha256").read_bytes() == manifest
    assert ganplify_main(["verify", str(res)]) == 1


@pytest.mark.slow  # runs the tiny test config end to end
def test_an_accepted_edit_lets_the_rerun_finish(tiny_run, tmp_path):
    project, res = copy_of_run(tiny_run, tmp_path / "project")
    _edit_table(res, tmp_path)
    assert ganplify_main(["accept", str(res), "tables/amplification.csv"]) == 0
    assert ganplify_main(["verify", str(res)]) == 0
    run_snakemake(project, "--configfile", TINY_CONFIG)  # remakes the derived files
    assert ganplify_main(["verify", str(res)]) == 0
    assert not (res / "journal").exists()


@pytest.mark.slow  # runs the tiny test config end to end
def test_replica_weights_lost_after_training_name_the_file_and_the_rerun(tiny_run, tmp_path):
    project, res = copy_of_run(tiny_run, tmp_path / "project")
    setting = next(res.glob("replicas/gaussian_shell-d1/n20/gan-*"))
    lost = setting / "seed1" / "generator.safetensors"
    lost.unlink()
    truncated = setting / "seed2" / "generator.safetensors"
    truncated.write_bytes(truncated.read_bytes()[:100])
    intact = (setting / "seed0" / "generator.safetensors").read_bytes()
    proc = run_snakemake(project, "--configfile", TINY_CONFIG, check=False)
    assert proc.returncode != 0  # a truncated file is a changed file: delete it
    out = proc.stdout + proc.stderr
    assert f"{truncated.relative_to(res)}: changed since MANIFEST.sha256" in out
    truncated.unlink()
    proc = run_snakemake(project, "--configfile", TINY_CONFIG)  # retrains seeds 1 and 2 only
    out = proc.stdout + proc.stderr
    flag = f"{setting.relative_to(project)}/seeds0-3.trained.json"
    for path in (lost, truncated):
        assert f"{path.relative_to(project)}: missing: its job reruns ({flag} removed)" in out, out
    assert lost.is_file() and truncated.is_file() and ganplify_main(["verify", str(res)]) == 0
    assert (setting / "seed0" / "generator.safetensors").read_bytes() == intact
    log = res / "logs" / "train" / setting.relative_to(res / "replicas") / "seeds0-3.log"
    assert "trained 2, skipped 2 finished earlier" in log.read_text()


@pytest.mark.slow  # runs the tiny test config end to end
def test_a_run_after_an_interrupted_one_never_reports_success_without_its_outputs(
    tiny_run, tmp_path
):
    """One SIGINT to Snakemake leaves the job it was running marked incomplete (the job itself
    goes on and writes its flag); the next run (rerun-incomplete) reran that job alone and
    exited 0 without the study's tables. Now it says so and fails; the run after completes."""
    import base64

    project, res = copy_of_run(tiny_run, tmp_path / "project")
    for path in [*(res / "tables").iterdir(), *(res / "figures").iterdir()]:
        path.unlink()
    flag = next(res.glob("replicas/gaussian_shell-d5/n50/gan-*/seeds0-3.trained.json"))
    key = str(flag.relative_to(project))
    marker = project / ".snakemake" / "incomplete" / base64.urlsafe_b64encode(key.encode()).decode()
    marker.parent.mkdir(parents=True)
    marker.write_text('{"external_jobid": null}')
    proc = run_snakemake(project, "--configfile", TINY_CONFIG, check=False)
    assert proc.returncode != 0 or (res / "tables" / "amplification.csv").is_file()
    if proc.returncode != 0:
        out = proc.stdout + proc.stderr
        assert "run the same command again to make the rest" in out, out
    run_snakemake(project, "--configfile", TINY_CONFIG)
    assert ganplify_main(["verify", str(res)]) == 0


@pytest.mark.slow  # runs the tiny test config end to end
def test_a_second_run_on_a_folder_being_written_stops(tiny_run, tmp_path):
    from ganplify.results.io import lock_folder

    project, res = copy_of_run(tiny_run, tmp_path / "project")
    fd = lock_folder(res)  # an earlier Snakemake still running its jobs
    try:
        proc = run_snakemake(
            project, "--configfile", TINY_CONFIG, "--forcerun", "aggregate", check=False
        )
    finally:
        os.close(fd)
    assert proc.returncode != 0
    assert "another run is still writing it" in proc.stdout + proc.stderr, proc.stderr
