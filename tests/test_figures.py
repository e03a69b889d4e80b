"""Studies of several targets: the figures they plan, the rows each figure and summary show."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ganplify import figures
from ganplify.cli import main as ganplify_main
from ganplify.figures import amplification as plots
from ganplify.figures import families, paper
from ganplify.study import config as cfg
from ganplify.study import jobs
from ganplify.study import plan as study

PAPER_FIGURES = {"fig1_camel_back", "fig2_camel_back_mse", "fig4_ring_mse", "fig5_ring_cells"}


def small_config(target, generators=("sample", "fit", "kde"), **changes) -> dict:
    raw = {
        "study": "small", "target": target, "device": "cpu",
        "seeds": {"first": 0, "count": 4}, "replicas_per_job": 4,
        "defaults": {"generators": list(generators), "n_train": [50],
                     "n_generated": [100, 1000], "sample_sizes": [50, 100]},
        "dims": {1: {"quantiles": [5, 10]}, 2: {"quantiles": [5], "joint": [3]}},
    }
    raw.update(changes)
    return cfg.validate(raw)


def test_one_target_plans_the_papers_figures_and_no_comparison():
    planned = set(figures.planned(small_config("gaussian_shell")))
    assert PAPER_FIGURES <= planned and "league" in planned
    assert "truth_families" not in planned
    assert "truth_families" not in figures.planned(small_config(["student_shell"]))


def test_a_study_without_the_gaussian_shell_skips_the_papers_figures():
    planned = set(figures.planned(small_config("student_shell")))
    assert not any(name.startswith("fig") for name in planned)
    assert {"league", "amplification_vs_n_generated", "robustness"} <= planned
    assert figures.shown_target(small_config("student_shell")) == "student_shell"


def test_two_targets_keep_the_papers_figures_for_the_gaussian_shell():
    config = small_config(["student_shell", "gaussian_shell"])
    assert PAPER_FIGURES | {"truth_families"} <= set(figures.planned(config))
    assert figures.shown_target(config) == "gaussian_shell"
    # nothing to compare without a generator besides the truth's own samples
    only_sample = small_config(["student_shell", "gaussian_shell"], generators=["sample"])
    assert "truth_families" not in figures.planned(only_sample)


@pytest.fixture(scope="module")
def two_target_study(tmp_path_factory) -> tuple[Path, dict]:
    """A tiny two-target study run job by job (4 replicas, d=1 and 2), then aggregated."""
    config = small_config(["gaussian_shell", "student_shell"])
    results = tmp_path_factory.mktemp("results") / "small"
    results.mkdir()
    (results / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    for chunk in study.plan(config):
        jobs.run_baseline(chunk.spec(), results, results / chunk.evaluated_flag)
    assert ganplify_main(["aggregate", "--results", str(results)]) == 0
    return results, config


def test_figures_of_one_target_get_its_rows_only(two_target_study, monkeypatch, tmp_path):
    results, config = two_target_study
    seen = {}

    def spy(name, real):
        def draw(table, *args, **kwargs):
            seen[name] = set(table["target"])
            return real(table, *args, **kwargs)
        return draw

    monkeypatch.setattr(paper, "mse_figure", spy("fig2", paper.mse_figure))
    monkeypatch.setattr(plots, "league_figure", spy("league", plots.league_figure))
    for name in ("fig2_camel_back_mse", "league"):
        paths = figures.draw(name, results, config, tmp_path / name)
        assert all(p.is_file() and p.stat().st_size > 0 for p in paths)
    assert seen == {"fig2": {"gaussian_shell"}, "league": {"gaussian_shell"}}


def test_truth_families_figure_draws_every_target(two_target_study, monkeypatch, tmp_path):
    results, config = two_target_study
    seen = {}
    real = families.truth_families_figure

    def spy(table, *args, **kwargs):
        seen["targets"] = set(table["target"])
        seen["order"] = kwargs["targets"]
        return real(table, *args, **kwargs)

    monkeypatch.setattr(families, "truth_families_figure", spy)
    paths = figures.draw("truth_families", results, config, tmp_path / "truth_families")
    assert [p.suffix for p in paths] == [".png", ".pdf"]
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths)
    assert seen == {"targets": {"gaussian_shell", "student_shell"},
                    "order": ["gaussian_shell", "student_shell"]}


def test_truth_families_figure_marks_each_target(two_target_study, monkeypatch, tmp_path):
    """One panel per (dim, n_train); each target keeps its own marker and legend entry."""
    import matplotlib.pyplot as plt

    from ganplify.analysis.amplification import read_amplification

    results, _ = two_target_study
    table = read_amplification(results / "tables" / "amplification.csv")
    saved = {}
    monkeypatch.setattr(plots, "save", lambda fig, stem: saved.setdefault("fig", fig) and [])
    families.truth_families_figure(table, tmp_path / "x", targets=["gaussian_shell",
                                                                   "student_shell"])
    fig = saved["fig"]
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["d=1, n_train=50", "d=2, n_train=50"]
    for ax in axes:
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert legend[-2:] == ["Gaussian shell", "Student-t shell"]
        markers = {line.get_marker() for line in ax.get_lines() if line.get_marker() != "None"}
        assert {"o", "s"} <= markers
    plt.close(fig)


def test_summary_names_the_target_of_each_row(two_target_study, capsys):
    results, _ = two_target_study
    assert ganplify_main(["summary", str(results), "--generator", "fit", "--long"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[0] == "target"
    assert {line.split()[0] for line in lines[1:]} == {"gaussian_shell", "student_shell"}
    assert ganplify_main(["summary", str(results), "--format", "csv"]) == 0
    settings = {line.split(",")[0] for line in capsys.readouterr().out.splitlines()[1:]}
    assert {s.rsplit(", ", 1)[-1] for s in settings} == {"gaussian_shell", "student_shell"}


def _few_replica_table(interval: float):
    """An amplification table of an exact generator with 2 replicas per row: a narrow
    bootstrap interval then collapses onto the point estimate."""
    import numpy as np
    import pandas as pd

    from ganplify.analysis.amplification import REPLICA_COLUMNS, amplification_table

    rng = np.random.default_rng(1)
    rows = [{"target": "gaussian_shell", "dim": 1, "n_train": 100, "generator": "fit",
             "binning": "x", "n_quantiles": q, "n_cells": q, "n_generated": pd.NA,
             "seed": seed, "mse": float(rng.lognormal(-8, 2.0))}
            for q in (5, 10, 20) for seed in range(2)]
    mse = pd.DataFrame(rows)
    mse["n_generated"] = mse["n_generated"].astype("Int64")
    return amplification_table(mse, pd.DataFrame(columns=REPLICA_COLUMNS), interval=interval)


@pytest.mark.parametrize("interval", [0.01, 0.2, 0.68, 0.99])
def test_interval_figures_draw_any_interval(interval, tmp_path):
    """Issue 14, item 8: with interval 0.2 the effective-parameters figure computed its error
    bars as differences of two expressions of the same number, -4e-16 by round-off, and
    matplotlib refused the negative length."""
    table = _few_replica_table(interval)
    for draw in (plots.effective_parameters_figure, plots.league_figure,
                 plots.amplification_vs_n_train_figure):
        paths = draw(table, tmp_path / draw.__name__)
        assert all(p.is_file() and p.stat().st_size > 0 for p in paths)


def test_interval_errorbar_draws_the_interval_itself():
    """Bars run from lo to hi even where the interval misses the point; an infinite bound
    draws that side to the point."""
    import matplotlib.pyplot as plt
    import numpy as np

    from ganplify.figures.style import interval_errorbar

    fig, ax = plt.subplots()
    interval_errorbar(ax, [1, 2, 3], [1.0, 1.0, 1.0], [1.2, 0.5, 0.8], [1.5, 0.9, np.inf],
                      color="k", marker="o", capsize=2)
    bars = next(c for c in ax.containers if not c.has_xerr and c.has_yerr)
    segments = bars.lines[2][0].get_segments()
    ends = [y for s in segments for y in (s[0][1], s[1][1])]
    assert ends == pytest.approx([1.2, 1.5, 0.5, 0.9, 0.8, 1.0])
    plt.close(fig)
