"""Amplification figures beyond the paper: against n_generated and n_train, the league, effective
parameters, robustness."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from ganplify import generators
from ganplify.figures import style
from ganplify.figures.style import (
    TEXT_WIDTH,
    _asymptotic_or_exact,
    _panel_title,
    figure_legend,
    generator_color,
    interval_errorbar,
    log_axis,
    panel_grid,
    replica_label,
    setting_title,
    styled,
)

matplotlib.use("Agg")  # no display on cluster nodes

# The paper states its values at 10,000 generated events; the league shows them beside the
# asymptote where the study evaluated that many.
LEAGUE_N_GENERATED = 10_000


def interval_key(interval: float | None, what: str = "band") -> tuple[Any, str]:
    """A legend entry saying what a band (or error bar) of amplification is."""
    level = "" if interval is None else f"{interval:.0%} "
    handle = (
        Patch(color="0.4", alpha=0.25, lw=0)
        if what == "band"
        else Line2D([], [], color="0.4", marker="|", ls="none", ms=6)
    )
    return handle, f"{what}: {level}interval of the replica mean"


@styled
def amplification_vs_events_figure(
    table: pd.DataFrame,
    stem: str | Path,
    *,
    settings: Sequence[tuple[int, int]],
    interval: float | None = None,
) -> list[Path]:
    """Amplification against the number of generated events, one panel per setting (dim,
    n_train) and binning, four to a row, with one legend below.

    Every generator but the truth sample is a line with its interval band over replicas, its
    asymptote (dotted) or exact value (solid) a horizontal line with its band. ``interval``
    (the configured aggregate.interval) names the bands' level in the legend.
    """
    panels = [
        (dim, n_train, b, q)
        for dim, n_train in settings
        for b, q in sorted(
            {
                (b, q)
                for b, q in table[(table["dim"] == dim) & (table["n_train"] == n_train)][
                    ["binning", "n_quantiles"]
                ].itertuples(index=False)
            },
            key=lambda bq: (bq[0] == "joint", bq[0], bq[1]),
        )
    ]
    models = table[table["generator"].map(generators.is_model) & np.isfinite(table["n_generated"])]
    n_gen = models["n_generated"]
    x_range = (n_gen.min() / 2, n_gen.max() * 2) if len(n_gen) else (1e2, 1e6)
    fig, axes = panel_grid(len(panels), cols=4, panel_height=1.75)
    for ax, (dim, n_train, binning, q) in zip(axes, panels, strict=False):
        sel = table[
            (table["dim"] == dim)
            & (table["n_train"] == n_train)
            & (table["binning"] == binning)
            & (table["n_quantiles"] == q)
            & table["generator"].map(generators.is_model)
        ]
        for i, (gen, rows) in enumerate(sel.groupby("generator", sort=True)):
            color = generator_color(gen, i)
            label = replica_label(gen, dim, int(rows["n_replicas"].max()))
            curve = rows[np.isfinite(rows["n_generated"])].sort_values("n_generated")
            if len(curve):
                n = curve["n_generated"].to_numpy(float)
                ax.plot(
                    n, curve["amplification"], color=color, marker="o", ms=2, lw=0.9, label=label
                )
                ax.fill_between(
                    n,
                    curve["amplification_lo"],
                    curve["amplification_hi"],
                    color=color,
                    alpha=0.2,
                    lw=0,
                )
            for _, r in _asymptotic_or_exact(rows).iterrows():
                if not np.isfinite(r["amplification"]):
                    continue  # exact by construction: nothing to draw
                exact = pd.isna(r["n_generated"])
                ax.axhline(
                    r["amplification"],
                    color=color,
                    ls="-" if exact else ":",
                    lw=0.9,
                    label=label if exact else None,
                )
                if np.isfinite(r["amplification_hi"]):
                    ax.axhspan(
                        r["amplification_lo"], r["amplification_hi"], color=color, alpha=0.1, lw=0
                    )
        ax.axhline(1.0, color="0.4", ls="--", lw=0.7)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        # generators differ by orders of magnitude (the radial fit on 6^5 cells: ~6000)
        log_axis(ax.yaxis, ax.set_yscale)
        ax.set_xlim(*x_range)
        ax.set_title(f"{setting_title(dim, n_train)}\n{_panel_title(binning, q, dim)}")
        ax.set_xlabel("generated events")
        ax.set_ylabel("amplification")
        ax.grid(True)
    figure_legend(
        fig,
        [
            *style.unique_entries(axes),
            (Line2D([], [], color="0.4", ls=":"), "dotted: asymptote"),
            (Line2D([], [], color="0.4"), "solid: exact (no generated events)"),
            interval_key(interval),
        ],
    )
    return style.save(fig, stem)


@styled
def amplification_vs_n_train_figure(
    table: pd.DataFrame, stem: str | Path, *, interval: float | None = None
) -> list[Path]:
    """Amplification (asymptotic, or exact for the fit) against the training size.

    One panel per (dim, binning), three to a row; a line per generator with its interval over
    replicas; one legend below.
    """
    own = _own_rows(table)
    # dimensions with a training-size scan; all of them when none has one
    scanned = [d for d, g in own.groupby("dim") if g["n_train"].nunique() > 1]
    if scanned:
        own = own[own["dim"].isin(scanned)]
    panels = sorted(
        {(d, b, q) for d, b, q in own[["dim", "binning", "n_quantiles"]].itertuples(index=False)},
        key=lambda p: (p[0], p[1] == "joint", p[1], p[2]),
    )
    fig, axes = panel_grid(len(panels), cols=3, panel_height=2.2)
    for ax, (dim, binning, q) in zip(axes, panels, strict=False):
        sel = own[(own["dim"] == dim) & (own["binning"] == binning) & (own["n_quantiles"] == q)]
        for i, (gen, rows) in enumerate(sel.groupby("generator", sort=True)):
            rows = rows.sort_values("n_train")
            interval_errorbar(
                ax,
                rows["n_train"],
                rows["amplification"],
                rows["amplification_lo"],
                rows["amplification_hi"],
                color=generator_color(gen, i),
                marker="o",
                label=replica_label(gen, dim, int(rows["n_replicas"].max())),
            )
        ax.axhline(1.0, color="0.4", ls="--", lw=0.7)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xticks(sorted(sel["n_train"].unique()))
        ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.set_xlabel("training events $n_{train}$")
        ax.set_ylabel("amplification")
        ax.set_title(f"d={dim}, " + _panel_title(binning, q, dim))
        ax.grid(True)
    if not panels:
        axes[0].text(
            0.5,
            0.5,
            "no generator besides the sample baseline",
            ha="center",
            va="center",
            transform=axes[0].transAxes,
        )
    figure_legend(fig, [*style.unique_entries(axes), interval_key(interval, "error bar")])
    return style.save(fig, stem)


def _binning_order(row: tuple) -> tuple:
    dim, binning, q = row
    return (dim, binning == "joint", binning, q)


def _own_rows(table: pd.DataFrame) -> pd.DataFrame:
    """Every generator's own (asymptotic or exact) rows, without the truth sample and
    without infinite amplification (a generator exact on a binning by construction, like the
    radial fit on the angles: nothing to draw)."""
    own = _asymptotic_or_exact(table[table["generator"].map(generators.is_model)])
    return own[np.isfinite(own["amplification"])]


def _setting_panels(own: pd.DataFrame, *, cols: int = 2, panel_height: float = 2.5):
    """A grid of panels, one per (dim, n_train) in ``own``, ``cols`` to a row.

    Returns the figure, (axis, (dim, n_train)) pairs and a function that adds the figure's
    legend (the axes' labelled artists, then ``keys``) below the panels and saves it to
    ``stem``.
    """
    panels = sorted({(d, n) for d, n in own[["dim", "n_train"]].itertuples(index=False)})
    fig, axes = panel_grid(len(panels), cols=cols, panel_height=panel_height)

    def finish(stem: str | Path, keys: Sequence[tuple[Any, str]] = ()) -> list[Path]:
        figure_legend(fig, [*style.unique_entries(axes), *keys])
        return style.save(fig, stem)

    return fig, list(zip(axes, panels, strict=False)), finish


def _balanced_split(heights: Sequence[int]) -> int:
    """Where to split panels of these heights, in order, into two columns of equal height."""
    top = np.cumsum(heights)[:-1]  # height of the first column, split after each panel
    return int(np.argmin(np.maximum(top, sum(heights) - top))) + 1


def _league_axes(
    fig: plt.Figure, panels: Sequence[tuple[int, int]], heights: Sequence[int], n_cols: int
) -> list[tuple[plt.Axes, tuple[int, int]]]:
    """One axis per panel, stacked in ``n_cols`` columns, each as tall as its binnings."""
    split = _balanced_split(heights) if n_cols == 2 else len(panels)
    columns = [range(0, split), range(split, len(panels))][:n_cols]
    outer = fig.add_gridspec(1, n_cols)
    out = []
    for c, col in enumerate(columns):
        sub = outer[0, c].subgridspec(len(col), 1, height_ratios=[heights[k] for k in col])
        out += [(fig.add_subplot(sub[r, 0]), panels[k]) for r, k in enumerate(col)]
    return out


@styled
def league_figure(
    table: pd.DataFrame, stem: str | Path, *, interval: float | None = None
) -> list[Path]:
    """The league table: every generator's amplification at its asymptote (filled; exact for
    the fit) and at `LEAGUE_N_GENERATED` generated events (open, where the study evaluated that
    many), with intervals over replicas, one row per binning, one panel per (dim, n_train).

    Parameters
    ----------
    table : DataFrame
        The amplification table (`ganplify.analysis.amplification.read_amplification`).
    stem : path
        Output path without suffix.
    interval : float, optional
        The intervals' level (aggregate.interval), named in the legend.
    """
    own = _own_rows(table)
    models = table[table["generator"].map(generators.is_model)]
    at_n = models[
        (models["n_generated"] == LEAGUE_N_GENERATED) & np.isfinite(models["amplification"])
    ]
    panels = sorted({(d, n) for d, n in own[["dim", "n_train"]].itertuples(index=False)})
    gens = sorted(own["generator"].unique())
    bins_of = {
        p: sorted(
            {
                (p[0], b, q)
                for b, q in own[(own["dim"] == p[0]) & (own["n_train"] == p[1])][
                    ["binning", "n_quantiles"]
                ].itertuples(index=False)
            },
            key=_binning_order,
        )
        for p in panels
    }
    heights = [len(bins_of[p]) for p in panels]
    # a second column once the binnings would not fit a page in one
    n_cols = 2 if len(panels) > 1 and sum(heights) > 10 else 1
    per_col = (
        sum(heights)
        if n_cols == 1
        else max(sum(heights[: _balanced_split(heights)]), sum(heights[_balanced_split(heights) :]))
    )
    row_in = 0.09 * max(len(gens), 1) + 0.12  # inches per binning: a slot per generator
    fig = plt.figure(figsize=(TEXT_WIDTH, 1.2 + 0.35 * len(panels) / n_cols + row_in * per_col))
    step = 0.8 / max(len(gens), 1)
    dy = 0.2 * step if len(at_n) else 0.0  # the open marker beside the filled one
    pairs = _league_axes(fig, panels, heights, n_cols) if panels else []
    for ax, (dim, n_train) in pairs:
        sel = own[(own["dim"] == dim) & (own["n_train"] == n_train)]
        sel_n = at_n[(at_n["dim"] == dim) & (at_n["n_train"] == n_train)]
        bins = bins_of[(dim, n_train)]
        for i, gen in enumerate(gens):
            color = generator_color(gen, i)
            for j, (_, binning, q) in enumerate(bins):
                y = j - 0.4 + step * (i + 0.5)
                for rows, shift, face in ((sel, -dy, color), (sel_n, dy, "white")):
                    row = rows[
                        (rows["generator"] == gen)
                        & (rows["binning"] == binning)
                        & (rows["n_quantiles"] == q)
                    ]
                    if row.empty:
                        continue
                    r = row.iloc[0]
                    interval_errorbar(
                        ax,
                        [r["amplification"]],
                        [y + shift],
                        [r["amplification_lo"]],
                        [r["amplification_hi"]],
                        horizontal=True,
                        color=color,
                        mfc=face,
                        marker="o",
                        ms=3,
                        lw=0.8,
                        label=replica_label(gen, dim, int(r["n_replicas"]))
                        if face == color
                        else None,
                    )
        ax.axvline(1.0, color="0.4", ls="--", lw=0.7)
        log_axis(ax.xaxis, ax.set_xscale)
        ax.set_yticks(range(len(bins)))
        ax.set_yticklabels([_panel_title(b, q, dim) for _, b, q in bins])
        ax.tick_params(axis="y", which="both", left=False, right=False)
        ax.set_ylim(len(bins) - 0.5, -0.5)  # first binning on top
        ax.set_title(setting_title(dim, n_train))
        ax.grid(True, axis="x")
        ax.set_xlabel("amplification")
    if not pairs:
        ax = fig.add_subplot()
        ax.text(
            0.5,
            0.5,
            "no generator besides the sample baseline",
            ha="center",
            va="center",
            transform=ax.transAxes,
        )
    keys = [
        (
            Line2D([], [], color="0.3", marker="o", ls="none"),
            r"filled: asymptote ($n_{generated} \to \infty$), or exact",
        )
    ]
    if len(at_n):
        keys.append(
            (
                Line2D([], [], color="0.3", mfc="white", marker="o", ls="none"),
                f"open: at {LEAGUE_N_GENERATED:,} generated events",
            )
        )
    figure_legend(
        fig,
        [*style.unique_entries(a for a, _ in pairs), *keys, interval_key(interval, "error bar")],
    )
    return style.save(fig, stem)


@styled
def effective_parameters_figure(
    table: pd.DataFrame, stem: str | Path, *, interval: float | None = None
) -> list[Path]:
    """Effective number of parameters (K - 1) / amplification against the number of cells K,
    per generator; one panel per (dim, n_train), projected binnings (circles, solid) and joint
    cells (squares, dotted) together. A fit with k parameters approaches k as K grows."""
    own = _own_rows(table).dropna(subset=["n_params_eff"])
    _, panels, finish = _setting_panels(own)
    fit_lines: dict[int, str] = {}
    for ax, (dim, n_train) in panels:
        sel = own[(own["dim"] == dim) & (own["n_train"] == n_train)]
        for i, (gen, rows) in enumerate(sel.groupby("generator", sort=True)):
            label = replica_label(gen, dim, int(rows["n_replicas"].max()))
            for binning, part in rows.groupby("binning", sort=True):
                part = part.sort_values("n_cells")
                k = part["n_cells"] - 1
                joint = binning == "joint"
                interval_errorbar(
                    ax,
                    part["n_cells"],
                    part["n_params_eff"],
                    k / part["amplification_hi"],
                    k / part["amplification_lo"],
                    color=generator_color(gen, i),
                    marker="s" if joint else "o",
                    ls=":" if joint else "-",
                    label=label,
                )
                label = None
        for gen in sorted(set(sel["generator"])):  # a fit's own parameter count, for scale
            if gen in generators.REGISTRY and generators.REGISTRY[gen].fit_parameters:
                n_par = len(generators.REGISTRY[gen].parameters(dim))
                ax.axhline(n_par, color=generator_color(gen), ls="--", lw=0.7)
                fit_lines.setdefault(n_par, generator_color(gen))
        log_axis(ax.xaxis, ax.set_xscale)
        log_axis(ax.yaxis, ax.set_yscale)
        ax.set_xlabel("cells $K$")
        ax.set_ylabel("$(K - 1)$ / amplification")
        ax.set_title(setting_title(dim, n_train))
        ax.grid(True)
    return finish(
        stem,
        [
            (
                Line2D([], [], color="0.3", marker="o"),
                "circles, solid: quantiles of one coordinate",
            ),
            (Line2D([], [], color="0.3", marker="s", ls=":"), "squares, dotted: joint cells"),
            *(
                (Line2D([], [], color=c, ls="--", lw=0.7), f"dashed: {n} fit parameters")
                for n, c in sorted(fit_lines.items())
            ),
            interval_key(interval, "error bar"),
        ],
    )


@styled
def robustness_figure(table: pd.DataFrame, stem: str | Path, cl: float) -> list[Path]:
    """The Matchev-Shyamsundar robustness test against the MSE measure: per generator, the
    amplification (solid) and the robust amplification N_robust / n_train (dashed) against the
    number of cells, one panel per (dim, n_train), one legend below."""
    own = _own_rows(table).dropna(subset=["amplification_robust"])
    _, panels, finish = _setting_panels(own)
    for ax, (dim, n_train) in panels:
        sel = own[(own["dim"] == dim) & (own["n_train"] == n_train)]
        for i, (gen, rows) in enumerate(sel.groupby("generator", sort=True)):
            label = replica_label(gen, dim, int(rows["n_replicas"].max()))
            # one point per K: where binnings share K (r, phi1, ...), the first by name
            rows = rows.sort_values(["n_cells", "binning"]).groupby("n_cells").first()
            color = generator_color(gen, i)
            ax.plot(rows.index, rows["amplification"], color=color, marker="o", label=label)
            ax.plot(rows.index, rows["amplification_robust"], color=color, marker="v", ls="--")
        ax.axhline(1.0, color="0.4", ls=":", lw=0.7)
        log_axis(ax.xaxis, ax.set_xscale)
        log_axis(ax.yaxis, ax.set_yscale)
        ax.set_xlabel("cells $K$")
        ax.set_ylabel("amplification")
        ax.set_title(setting_title(dim, n_train))
        ax.grid(True)
    return finish(
        stem,
        [
            (Line2D([], [], color="0.3", marker="o"), "solid: from the quantile MSE"),
            (
                Line2D([], [], color="0.3", marker="v", ls="--"),
                f"dashed: $\\chi^2$ test at {cl:.0%} ($N_{{robust}}/n_{{train}}$)",
            ),
        ],
    )
