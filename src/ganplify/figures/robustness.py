"""The realised chi-square check as a figure (tables/robustness.csv): pass fraction against N."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from matplotlib.lines import Line2D

from ganplify.figures import amplification, style


@style.styled
def pass_fraction_figure(
    table: pd.DataFrame,
    stem: str | Path,
    *,
    cl: float = 0.95,
    pass_probabilities: Sequence[float] = (0.5, 0.9),
) -> list[Path]:
    """Fraction of replicas whose N events pass the chi-square test against the truth.

    One panel per (dim, n_train, binning), four to a row; per generator, the realised pass
    fraction with its binomial error (points) and P(pass) at the replica-mean noncentrality,
    the reading behind n_robust (dashed): where it crosses a required pass probability pi
    (thin lines) lies N_robust. The truth sample's points sit at the confidence level (dotted):
    the control. One legend below the panels.

    Parameters
    ----------
    table : DataFrame
        tables/robustness.csv of one target (`robustness.REALISED_COLUMNS`).
    stem : path
        Output path without suffix; <stem>.png and <stem>.pdf are written.
    cl : float
        The test's confidence level.
    pass_probabilities : sequence of float
        The required pass probabilities to mark.
    """
    keys = sorted(
        {
            (d, n, b, q)
            for d, n, b, q in table[["dim", "n_train", "binning", "n_quantiles"]].itertuples(
                index=False
            )
        },
        key=lambda k: (k[1], *amplification._binning_order((k[0], k[2], k[3]))),
    )
    fig, axes = style.panel_grid(len(keys), cols=4, panel_height=1.8)
    for ax, (dim, n_train, binning, q) in zip(axes, keys, strict=False):
        sel = table[
            (table["dim"] == dim)
            & (table["n_train"] == n_train)
            & (table["binning"] == binning)
            & (table["n_quantiles"] == q)
        ]
        for i, (gen, rows) in enumerate(sel.groupby("generator", sort=True)):
            rows = rows.sort_values("n_generated")
            color = style.generator_color(gen, i)
            ax.errorbar(
                rows["n_generated"],
                rows["pass_fraction"],
                yerr=rows["pass_fraction_err"],
                color=color,
                marker="o",
                ms=2.5,
                ls="none",
                label=style.replica_label(gen, dim, int(rows["n_replicas"].max())),
            )
            ax.plot(rows["n_generated"], rows["pass_at_mean_mse"], color=color, ls="--", lw=0.8)
        ax.axhline(cl, color="0.3", ls=":", lw=0.8)
        for pi in pass_probabilities:
            ax.axhline(pi, color="0.6", ls="-", lw=0.5)
        style.log_axis(ax.xaxis, ax.set_xscale)
        ax.set_ylim(-0.03, 1.03)
        ax.set_xlabel("events $N$")
        ax.set_ylabel(f"pass fraction at {cl:.0%}")
        ax.set_title(f"{style.setting_title(dim, n_train)}\n{style._panel_title(binning, q, dim)}")
        ax.grid(True)
    pis = ", ".join(f"{pi:g}" for pi in pass_probabilities)
    style.figure_legend(
        fig,
        [
            *style.unique_entries(axes),
            (
                Line2D([], [], color="0.3", marker="o", ls="none"),
                "points: realised pass fraction (binomial error)",
            ),
            (
                Line2D([], [], color="0.3", ls="--", lw=0.8),
                "dashed: P(pass) at the replica-mean MSE",
            ),
            (Line2D([], [], color="0.3", ls=":", lw=0.8), f"dotted: confidence level {cl:.0%}"),
            (Line2D([], [], color="0.6", lw=0.5), f"thin: required pass probability {pis}"),
        ],
    )
    return style.save(fig, stem)
