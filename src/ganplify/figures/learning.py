"""Amplification along training (tables/learning_curve.csv): per neural generator and
setting, the asymptotic amplification of the replica-mean MSE against the epoch, with its
interval, beside the median replica's."""

from __future__ import annotations

from pathlib import Path

import matplotlib.lines
import numpy as np
import pandas as pd

from ganplify.figures import style
from ganplify.figures.style import (
    _binning_name,
    figure_legend,
    generator_label,
    log_axis,
    panel_grid,
    styled,
    unique_entries,
)

# binnings shown: one coordinate (x, r) and the joint cells; the angles add little here
SHOWN = ("x", "r", "joint")


def _binning(binning: str, q: int, dim: int) -> str:
    if binning == "joint":
        return f"{q}$^{dim}$ cells"
    return f"{q} quantiles of {_binning_name(binning)}"


@styled
def learning_curve_figure(
    table: pd.DataFrame, stem: str | Path, interval: float = 0.68
) -> list[Path]:
    """One panel per (dimension, n_train, generator): amplification against epoch (log), one
    colour per binning; solid with band: the replica-mean MSE with its interval, dashed: the
    median replica; dotted: worth its training set."""
    rows = table[table["binning"].isin(SHOWN)]
    panels = sorted(
        {(d, n, g) for d, n, g in rows[["dim", "n_train", "generator"]].itertuples(index=False)}
    )
    fig, axes = panel_grid(len(panels), cols=3, panel_height=2.3)
    for ax, (dim, n_train, gen) in zip(axes, panels, strict=False):
        sel = rows[(rows["dim"] == dim) & (rows["n_train"] == n_train) & (rows["generator"] == gen)]
        keys = sorted(
            {(b, int(q)) for b, q in sel[["binning", "n_quantiles"]].itertuples(index=False)},
            key=lambda k: (k[0] == "joint", k),
        )
        for i, (binning, q) in enumerate(keys):
            part = sel[(sel["binning"] == binning) & (sel["n_quantiles"] == q)]
            part = part.sort_values("epoch")
            color = f"C{i % 10}"
            ax.plot(
                part["epoch"],
                part["amplification"],
                color=color,
                marker="o",
                ms=2.5,
                label=_binning(binning, q, dim),
            )
            ax.fill_between(
                part["epoch"],
                part["amplification_lo"],
                part["amplification_hi"],
                color=color,
                alpha=0.2,
                lw=0,
            )
            ax.plot(part["epoch"], part["amplification_median"], color=color, ls="--", lw=0.8)
        ax.axhline(1.0, color="0.4", ls=":", lw=0.7)
        log_axis(ax.xaxis, ax.set_xscale)
        values = sel[["amplification", "amplification_median"]].to_numpy(dtype=float)
        if np.any(values > 0):
            log_axis(ax.yaxis, ax.set_yscale)
        ax.set_xlabel("epoch")
        ax.set_ylabel("amplification")
        reps = int(sel["n_replicas"].max())
        ax.set_title(
            # two lines: three panels side by side leave too little width for one
            f"{generator_label(gen, dim)} ({reps} replicas)\nd={dim}, $n_{{train}}$={n_train}"
        )
    keys = [
        (
            matplotlib.lines.Line2D([], [], color="0.3"),
            f"replica-mean MSE, band: {interval:.0%} interval",
        ),
        (matplotlib.lines.Line2D([], [], color="0.3", ls="--"), "median replica"),
        (matplotlib.lines.Line2D([], [], color="0.4", ls=":"), "worth its training set"),
    ]
    figure_legend(fig, [*unique_entries(axes), *keys])
    return style.save(fig, stem)
