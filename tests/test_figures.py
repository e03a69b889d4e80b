"""Studies of several targets: the figures they plan, the rows each figure and summary show."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest
import yaml

from ganplify import figures, generators
from ganplify.cli import main as ganplify_main
from ganplify.figures import amplification as plots
from ganplify.figures import families, learning, paper
from ganplify.study import config as cfg
from ganplify.study import jobs
from ganplify.study import plan as study

PAPER_FIGURES = {"fig1_camel_back", "fig2_camel_back_mse", "fig4_ring_mse", "fig5_ring_cells"}


def small_config(target, generators=("sample", "fit", "kde"), **changes) -> dict:
    raw = {
        "study": "small",
        "target": target,
        "device": "cpu",
        "seeds": {"first": 0, "count": 4},
        "replicas_per_job": 4,
        "defaults": {
            "generators": list(generators),
            "n_train": [50],
            "n_generated": [100, 1000],
            "sample_sizes": [50, 100],
        },
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
    assert seen == {
        "targets": {"gaussian_shell", "student_shell"},
        "order": ["gaussian_shell", "student_shell"],
    }


def test_truth_families_figure_marks_each_target(two_target_study, monkeypatch, tmp_path):
    """One panel per (dim, n_train); each target keeps its own marker and legend entry."""
    import matplotlib.pyplot as plt

    from ganplify.analysis.amplification import read_amplification
    from ganplify.figures import style

    results, _ = two_target_study
    table = read_amplification(results / "tables" / "amplification.csv")
    saved = {}
    monkeypatch.setattr(style, "save", lambda fig, stem: saved.setdefault("fig", fig) and [])
    families.truth_families_figure(
        table, tmp_path / "x", targets=["gaussian_shell", "student_shell"]
    )
    fig = saved["fig"]
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == [style.setting_title(d, 50) for d in (1, 2)]
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert {"Gaussian shell", "Student-t shell"} <= set(legend)
    for ax in axes:
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
    headline = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert {s.rsplit(", ", 1)[-1] for s in headline["setting"]} == {
        "gaussian_shell",
        "student_shell",
    }


# ---- what each figure draws, from small synthetic tables (tests/figure_checks.py) ----

import matplotlib  # noqa: E402
import numpy as np  # noqa: E402

from ganplify.figures import robustness as robustness_plot  # noqa: E402
from ganplify.figures import style  # noqa: E402
from tests.figure_checks import (  # noqa: E402
    ASYMPTOTE,
    BINNINGS,
    FIT,
    MODEL,
    N_TRAIN,
    OTHER,
    REPLICAS,
    TRUTH,
    amplification_table,
    check_layout,
    legend_labels,
    visible_axes,
)

FIGURE_FUNCTIONS = [
    paper.truth_figure,
    paper.mse_figure,
    paper.shell_cells_figure,
    paper.polar_cells_figure,
    paper.loss_figure,
    plots.amplification_vs_events_figure,
    plots.amplification_vs_n_train_figure,
    plots.league_figure,
    plots.effective_parameters_figure,
    plots.robustness_figure,
    robustness_plot.pass_fraction_figure,
    families.fit_uncertainty_figure,
    families.truth_families_figure,
    learning.learning_curve_figure,
]


@pytest.fixture
def drawn(monkeypatch):
    """Draw a figure and return it open instead of saving it; checks its layout, closes it."""
    import matplotlib.pyplot as plt

    figs = []
    monkeypatch.setattr(style, "save", lambda fig, stem: figs.append(fig) or [])

    def draw(function, *args, **kwargs):
        function(*args, stem="unused", **kwargs)
        assert len(figs) == 1
        fig = figs.pop()
        check_layout(fig)
        return fig

    yield draw
    plt.close("all")


def test_every_figure_is_drawn_in_the_house_style():
    import matplotlib.pyplot as plt

    assert all(getattr(f, "house_style", False) for f in FIGURE_FUNCTIONS)
    with style.house_style():
        fig = plt.figure()
        assert fig.get_layout_engine() is not None  # constrained: legends outside the panels
        assert matplotlib.rcParams["font.size"] == style.HOUSE_STYLE["font.size"]
        plt.close(fig)


def _rows(table, dim, binning, q, gen=None):
    sel = table[(table["dim"] == dim) & (table["binning"] == binning) & (table["n_quantiles"] == q)]
    return sel if gen is None else sel[sel["generator"] == gen]


def test_mse_figure_draws_every_generator_and_its_worth(drawn):
    table = amplification_table()
    panels = BINNINGS[1]
    fig = drawn(paper.mse_figure, table, dim=1, n_train=N_TRAIN, panels=panels, title="t")
    axes = visible_axes(fig)
    assert len(axes) == len(panels)
    for ax, (binning, q) in zip(axes, panels, strict=True):
        rows = _rows(table, 1, binning, q)
        # the expectation, three curves (truth sample and two models), their two asymptotes,
        # the fit's exact value
        assert len(ax.get_lines()) == 1 + 3 + 2 + 1
        assert len(ax.collections) == 3  # a +-1 sigma band per curve
        assert ax.get_xscale() == ax.get_yscale() == "log"
        finite = rows[np.isfinite(rows["n_generated"])]["n_generated"]
        lo, hi = ax.get_xlim()
        assert lo <= finite.min() and hi >= finite.max()
        lo, hi = ax.get_ylim()
        assert lo <= rows["mse_mean"][rows["mse_mean"] > 0].min() <= rows["mse_mean"].max() <= hi
        own = rows[rows["n_generated"].isna() | np.isinf(rows["n_generated"])]
        worth = [t.get_text() for t in ax.get_legend().get_texts()]
        assert sorted(worth) == sorted(f"{n:,.0f}" for n in own["n_equiv"])
    labels = legend_labels(fig)
    for gen in (TRUTH, FIT, MODEL, OTHER):
        assert style.replica_label(gen, 1, REPLICAS[gen]) in labels
    assert any("1\\sigma" in label for label in labels)
    assert any("asymptote" in label for label in labels)


def test_shell_cells_figure_has_a_log_axis_and_integer_ticks(drawn):
    table = amplification_table()
    fig = drawn(paper.shell_cells_figure, table, dim=2, n_train=N_TRAIN, fine=[3, 4], title="t")
    *mse, right = visible_axes(fig)
    assert len(mse) == 2 and right.get_yscale() == "log"
    assert list(right.get_xticks()) == [3, 4]
    assert [t.get_text() for t in right.get_xticklabels()] == ["3", "4"]
    own = table[
        (table["dim"] == 2)
        & (table["binning"] == "joint")
        & (table["generator"] != TRUTH)
        & (table["n_generated"].isna() | np.isinf(table["n_generated"]))
    ]
    lo, hi = right.get_ylim()
    assert lo <= own["amplification_lo"].min() and hi >= own["amplification_hi"].max()
    # one interval bar per series: the fit and two models, the truth sample left out
    assert sum(c.has_yerr for c in right.containers) == 3


def test_polar_cells_keep_their_angle_labels_apart(drawn):
    q = 7
    rng = np.random.default_rng(0)
    maps = [(name, rng.dirichlet(np.ones(q * q))) for name in ("training", "generated")]
    fig = drawn(
        paper.polar_cells_figure,
        fractions=maps,
        r_edges=np.linspace(0, 8, q + 1),
        phi_edges=np.linspace(0, 2 * np.pi, q + 1),
    )
    polar = [ax for ax in visible_axes(fig) if ax.name == "polar"]
    assert [ax.get_title() for ax in polar] == ["training", "generated"]
    for ax in polar:  # four angles; check_layout found no label on another
        assert [t.get_text() for t in ax.get_xticklabels()] == ["0°", "90°", "180°", "270°"]
        mesh = ax.collections[0]
        assert np.abs(mesh.get_array()).max() <= max(mesh.get_clim()) + 1e-12


def test_truth_figure_shows_truth_sample_fit_and_edges(drawn):
    rng = np.random.default_rng(1)
    fit = dict(mu1=-4.0, sigma1=1.0, mu2=4.0, sigma2=1.0, frac=0.5)
    fig = drawn(
        paper.truth_figure,
        train=rng.normal(4, 1, (100, 1)),
        fit_values=fit,
        generated=rng.normal(4, 1, (1000, 1)),
        generated_label="model",
        generated_color="C1",
        n_quantiles=10,
    )
    (ax,) = visible_axes(fig)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert sorted(labels) == sorted(
        [
            "truth",
            style.generator_label(FIT, 1),
            "10 quantile edges",
            "training sample (100 points)",
            "model (1,000 events)",
        ]
    )
    edges = [line for line in ax.get_lines() if line.get_linestyle() == ":"]
    assert len(edges) == 9 + 1  # nine inner edges and the legend's sample line


def test_loss_figure_names_its_replicas(drawn):
    epochs = np.arange(1, 11)
    hist = pd.DataFrame(
        [
            {"seed": s, "epoch": e, "d_loss": 1.0 + s, "g_loss": 2.0 - s}
            for s in range(3)
            for e in epochs
        ]
    )
    fig = drawn(paper.loss_figure, histories=[("setting A", hist), ("setting B", hist)])
    axes = visible_axes(fig)
    assert len(axes) == 4
    assert all(ax.get_title().endswith("(3 replicas)") for ax in axes)
    assert all(len(ax.get_lines()) == 1 and len(ax.collections) == 1 for ax in axes)
    assert legend_labels(fig) == ["median over replicas", "16-84% of replicas"]


def test_amplification_vs_events_has_a_panel_per_binning(drawn):
    table = amplification_table()
    fig = drawn(
        plots.amplification_vs_events_figure,
        table,
        settings=[(1, N_TRAIN), (2, N_TRAIN)],
        interval=0.68,
    )
    axes = visible_axes(fig)
    assert len(axes) == sum(len(b) for b in BINNINGS.values())
    for ax in axes:
        curves = [line for line in ax.get_lines() if line.get_marker() == "o"]
        assert len(curves) == len(ASYMPTOTE)  # the models; the truth sample is the reference
        assert ax.get_yscale() == "log"
    labels = legend_labels(fig)
    assert style.replica_label(MODEL, 1, REPLICAS[MODEL]) in labels
    assert "band: 68% interval of the replica mean" in labels


def test_amplification_vs_n_train_draws_each_generator(drawn):
    table = amplification_table()
    fig = drawn(plots.amplification_vs_n_train_figure, table, interval=0.68)
    axes = visible_axes(fig)
    assert len(axes) == sum(len(b) for b in BINNINGS.values())
    # interval bars per panel: no fit on the angle
    assert [sum(c.has_yerr for c in ax.containers) for ax in axes] == [3, 3, 2, 3, 3, 3]
    assert "error bar: 68% interval of the replica mean" in legend_labels(fig)


def _markers(ax):
    """(amplification, open?) of every point of a league panel."""
    out = []
    for container in ax.containers:
        line = container.lines[0]
        if line is None:  # the interval bars drawn on their own (style.interval_errorbar)
            continue
        face = matplotlib.colors.to_rgba(line.get_markerfacecolor())
        out += [(float(x), face == (1.0, 1.0, 1.0, 1.0)) for x in line.get_xdata()]
    return out


@pytest.mark.parametrize("with_10k", [True, False])
def test_league_shows_ten_thousand_events_beside_the_asymptote(drawn, with_10k):
    table = amplification_table(with_10k=with_10k)
    fig = drawn(plots.league_figure, table, interval=0.68)
    axes = visible_axes(fig)
    assert [ax.get_title() for ax in axes] == [style.setting_title(d, N_TRAIN) for d in (1, 2)]
    for ax, dim in zip(axes, (1, 2), strict=True):
        rows = table[(table["dim"] == dim) & (table["generator"] != TRUTH)]
        own = rows[rows["n_generated"].isna() | np.isinf(rows["n_generated"])]
        own = own[np.isfinite(own["amplification"])]
        at_10k = rows[rows["n_generated"] == 10_000]
        points = _markers(ax)
        assert sorted(x for x, is_open in points if not is_open) == pytest.approx(
            sorted(own["amplification"])
        )
        assert sorted(x for x, is_open in points if is_open) == pytest.approx(
            sorted(at_10k["amplification"])
        )
        assert len(ax.get_yticks()) == len(BINNINGS[dim])
        lo, hi = ax.get_xlim()
        assert lo <= own["amplification_lo"].min() and hi >= own["amplification_hi"].max()
    labels = legend_labels(fig)
    assert ("open: at 10,000 generated events" in labels) == with_10k
    assert any(label.startswith("filled: asymptote") for label in labels)
    assert style.replica_label(OTHER, 1, REPLICAS[OTHER]) in labels


def test_effective_parameters_mark_projected_and_joint_cells(drawn):
    table = amplification_table()
    fig = drawn(plots.effective_parameters_figure, table, interval=0.68)
    axes = visible_axes(fig)
    assert len(axes) == 2
    markers = {line.get_marker() for line in axes[1].get_lines()}
    assert {"o", "s"} <= markers
    labels = legend_labels(fig)
    for dim in (1, 2):
        n_par = len(generators.REGISTRY[FIT].parameters(dim))
        assert f"dashed: {n_par} fit parameters" in labels


def test_robustness_figure_pairs_each_measure(drawn):
    table = amplification_table()
    fig = drawn(plots.robustness_figure, table, cl=0.95)
    for ax in visible_axes(fig):
        solid = [line for line in ax.get_lines() if line.get_marker() == "o"]
        dashed = [line for line in ax.get_lines() if line.get_marker() == "v"]
        assert len(solid) == len(dashed) == 3  # fit and two models
    labels = legend_labels(fig)
    assert "solid: from the quantile MSE" in labels
    assert any(label.startswith("dashed: $\\chi^2$ test at 95%") for label in labels)


def test_pass_fraction_figure_has_a_panel_per_binning(drawn):
    rows = [
        {
            "target": "gaussian_shell",
            "dim": 1,
            "n_train": N_TRAIN,
            "generator": gen,
            "binning": "x",
            "n_quantiles": q,
            "n_cells": q,
            "n_generated": float(n),
            "n_replicas": REPLICAS[gen],
            "pass_fraction": p,
            "pass_fraction_err": 0.05,
            "pass_at_mean_mse": p,
        }
        for gen, p in ((TRUTH, 0.95), (MODEL, 0.4))
        for q in (5, 10)
        for n in (100, 1000)
    ]
    fig = drawn(
        robustness_plot.pass_fraction_figure,
        pd.DataFrame(rows),
        cl=0.95,
        pass_probabilities=[0.5, 0.9],
    )
    axes = visible_axes(fig)
    assert len(axes) == 2
    assert all(len(ax.containers) == 2 and ax.get_ylim() == (-0.03, 1.03) for ax in axes)
    labels = legend_labels(fig)
    assert style.replica_label(TRUTH, 1, REPLICAS[TRUTH]) in labels
    assert "thin: required pass probability 0.5, 0.9" in labels


def test_fit_uncertainty_figure_shows_each_fit_setting(drawn):
    settings = [(1, 50), (1, 100)]
    uncertainty = pd.DataFrame(
        [
            {
                "target": "gaussian_shell",
                "dim": d,
                "n_train": n,
                "generator": FIT,
                "binning": "x",
                "n_quantiles": q,
                "n_cells": q,
                "n_replicas": 20,
                "bias2": 1e-6,
                "variance": 1e-5,
                "n_equiv": 500.0,
                "variance_ratio": 1.05,
                "variance_ratio_err": 0.1,
            }
            for d, n in settings
            for q in (5, 10)
        ]
    )
    parameters = pd.DataFrame(
        [
            {
                "target": "gaussian_shell",
                "dim": d,
                "n_train": n,
                "generator": FIT,
                "parameter": p,
                "error_ratio": 1.0,
            }
            for d, n in settings
            for p in generators.REGISTRY[FIT].parameters(1)
        ]
    )
    fig = drawn(families.fit_uncertainty_figure, uncertainty, parameters, amplification_table())
    ax_mse, ax_ratio, ax_par = visible_axes(fig)
    assert len(ax_mse.get_lines()) == len(settings) * 4  # bias^2, variance, sum, measured
    assert len(ax_ratio.containers) == len(settings)
    assert [t.get_text() for t in ax_par.get_xticklabels()] == list(
        generators.REGISTRY[FIT].parameters(1)
    )
    labels = legend_labels(fig)
    assert sum(f"d=1, $n_{{train}}$={n}" in label for n in (50, 100) for label in labels) == 2


def test_truth_families_figure_keys_both_targets(drawn):
    from ganplify.truth import TARGETS

    other = next(t for t in TARGETS if t != figures.PAPER_TARGET)
    table = pd.concat([amplification_table(), amplification_table(other)])
    fig = drawn(
        families.truth_families_figure, table, targets=[figures.PAPER_TARGET, other], interval=0.68
    )
    axes = visible_axes(fig)
    assert len(axes) == 2
    labels = legend_labels(fig)
    assert {style.target_label(figures.PAPER_TARGET), style.target_label(other)} <= set(labels)
    for ax in axes:
        markers = {line.get_marker() for line in ax.get_lines()} - {"None", "_", "|"}
        assert len(markers) == 2  # one per target (not the error bars' caps)


def _few_replica_table(interval: float):
    """An amplification table of an exact generator with 2 replicas per row: a narrow
    bootstrap interval then collapses onto the point estimate."""
    import numpy as np
    import pandas as pd

    from ganplify.analysis.amplification import REPLICA_COLUMNS, amplification_table

    rng = np.random.default_rng(1)
    rows = [
        {
            "target": "gaussian_shell",
            "dim": 1,
            "n_train": 100,
            "generator": "fit",
            "binning": "x",
            "n_quantiles": q,
            "n_cells": q,
            "n_generated": pd.NA,
            "seed": seed,
            "mse": float(rng.lognormal(-8, 2.0)),
        }
        for q in (5, 10, 20)
        for seed in range(2)
    ]
    mse = pd.DataFrame(rows)
    mse["n_generated"] = mse["n_generated"].astype("Int64")
    return amplification_table(mse, pd.DataFrame(columns=REPLICA_COLUMNS), interval=interval)


@pytest.mark.parametrize("interval", [0.01, 0.2, 0.68, 0.99])
def test_interval_figures_draw_any_interval(interval, tmp_path):
    """Issue 14, item 8: with interval 0.2 the effective-parameters figure computed its error
    bars as differences of two expressions of the same number, -4e-16 by round-off, and
    matplotlib refused the negative length."""
    table = _few_replica_table(interval)
    for draw in (
        plots.effective_parameters_figure,
        plots.league_figure,
        plots.amplification_vs_n_train_figure,
    ):
        paths = draw(table, tmp_path / draw.__name__)
        assert all(p.is_file() and p.stat().st_size > 0 for p in paths)


def test_interval_errorbar_draws_the_interval_itself():
    """Bars run from lo to hi even where the interval misses the point; an infinite bound
    draws that side to the point."""
    import matplotlib.pyplot as plt
    import numpy as np

    from ganplify.figures.style import interval_errorbar

    fig, ax = plt.subplots()
    interval_errorbar(
        ax,
        [1, 2, 3],
        [1.0, 1.0, 1.0],
        [1.2, 0.5, 0.8],
        [1.5, 0.9, np.inf],
        color="k",
        marker="o",
        capsize=2,
    )
    bars = next(c for c in ax.containers if not c.has_xerr and c.has_yerr)
    segments = bars.lines[2][0].get_segments()
    ends = [y for s in segments for y in (s[0][1], s[1][1])]
    assert ends == pytest.approx([1.2, 1.5, 0.5, 0.9, 0.8, 1.0])
    plt.close(fig)


def test_learning_curve_draws_mean_band_and_median_per_binning(drawn):
    rows = []
    for epoch, a in ((1, 0.1), (10, 0.5), (100, 1.5)):
        for binning, q in (("x", 10), ("x", 50)):
            rows.append(
                {
                    "target": figures.PAPER_TARGET,
                    "dim": 1,
                    "n_train": 100,
                    "generator": MODEL,
                    "epoch": epoch,
                    "binning": binning,
                    "n_quantiles": q,
                    "n_cells": q,
                    "n_replicas": 8,
                    "amplification": a,
                    "amplification_lo": 0.8 * a,
                    "amplification_hi": 1.3 * a,
                    "amplification_median": 0.9 * a,
                    "n_collapsed": 0,
                }
            )
    fig = drawn(learning.learning_curve_figure, pd.DataFrame(rows), interval=0.68)
    (ax,) = visible_axes(fig)
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    solid = [
        line
        for line in ax.get_lines()
        if line.get_linestyle() == "-" and len(line.get_xdata()) == 3
    ]
    dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert len(solid) == 2 and len(dashed) == 2 and len(ax.collections) == 2
    lo, hi = ax.get_ylim()
    assert lo <= 0.08 and hi >= 1.95
    assert "(8 replicas)" in ax.get_title()
    assert "replica-mean MSE, band: 68% interval" in legend_labels(fig)
