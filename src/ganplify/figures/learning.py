"""Amplification along training (tables/learning_curve.csv): per neural generator and
setting, the asymptotic amplification of the replica-mean MSE against the epoch, with its
interval, beside the median replica's."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ganplify.figures.style import _binning_name, generator_label, save

# binnings shown: one coordinate (x, r) and the joint cells; the angles add little here
SHOWN = ("x", "r", "joint")


def _binning(binning: str, q: int, dim: int) -> str:
    if binning == "joint":
        return f"{q}$^{dim}$ cells"
    return f"{q} q. of {_binning_name(binning)}"


def learning_curve_figure(table: pd.DataFrame, stem: str | Path) -> list[Path]:
    """One panel per (dimension, n_train, generator): amplification against epoch, one colour
    per binning; solid with band: the replica-mean MSE (its interval), dashed: the median
    replica. A log epoch axis, since snapshots are log-spaced."""
    rows = table[table["binning"].isin(SHOWN)]
    panels = sorted({(d, n, g) for d, n, g in rows[["dim", "n_train", "generator"]]
                     .itertuples(index=False)})
    if not panels:
        raise ValueError("no learning-curve rows to draw")
    ncols = min(3, len(panels))
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.5 * nrows), squeeze=False)
    for ax, (dim, n_train, gen) in zip(axes.flat, panels, strict=False):
        sel = rows[(rows["dim"] == dim) & (rows["n_train"] == n_train)
                   & (rows["generator"] == gen)]
        keys = sorted({(b, int(q)) for b, q in sel[["binning", "n_quantiles"]]
                       .itertuples(index=False)}, key=lambda k: (k[0] == "joint", k))
        for i, (binning, q) in enumerate(keys):
            part = sel[(sel["binning"] == binning) & (sel["n_quantiles"] == q)]
            part = part.sort_values("epoch")
            color = f"C{i % 10}"
            ax.plot(part["epoch"], part["amplification"], color=color, lw=1.4, marker="o",
                    ms=3, label=_binning(binning, q, dim))
            ax.fill_between(part["epoch"], part["amplification_lo"], part["amplification_hi"],
                            color=color, alpha=0.2, lw=0)
            ax.plot(part["epoch"], part["amplification_median"], color=color, lw=1, ls="--")
        reps = int(sel["n_replicas"].max())
        ax.axhline(1.0, color="0.4", ls=":", lw=0.8)
        ax.set_xscale("log")
        positive = sel[["amplification", "amplification_median"]].to_numpy(dtype=float)
        if np.any(positive > 0):
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel("amplification")
        ax.set_title(f"{generator_label(gen, dim)}, d={dim}, $n_{{train}}$={n_train} "
                     f"({reps} replicas)", fontsize=9)
        ax.grid(True, which="both", alpha=0.25)
        ax.legend(fontsize=7, loc="best")
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    fig.text(0.5, 0.0, "solid, band: the replica-mean MSE and its interval; dashed: the median "
             "replica; dotted: worth its training set", ha="center", va="top", fontsize=8)
    fig.tight_layout()
    return save(fig, stem)
