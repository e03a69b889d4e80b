"""The realised chi-square check as a figure (tables/robustness.csv): pass fraction against N."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ganplify.figures import amplification, style


def pass_fraction_figure(table: pd.DataFrame, stem: str | Path, *, cl: float = 0.95,
                         pass_probabilities: Sequence[float] = (0.5, 0.9)) -> list[Path]:
    """Fraction of replicas whose N events pass the chi-square test against the truth.

    One panel per (dim, n_train, binning); per generator, the realised pass fraction with its
    binomial error (points) and P(pass) at the replica-mean noncentrality, the reading behind
    n_robust (dashed): where it crosses a required pass probability pi (thin lines) lies
    N_robust. The truth sample's points sit at the confidence level (dotted): the control.

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
    import matplotlib.pyplot as plt

    keys = sorted({(d, n, b, q) for d, n, b, q in
                   table[["dim", "n_train", "binning", "n_quantiles"]].itertuples(index=False)},
                  key=lambda k: (k[1], *amplification._binning_order((k[0], k[2], k[3]))))
    cols = min(max(len(keys), 1), 4)
    rows_n = int(np.ceil(max(len(keys), 1) / cols))
    fig, axes = plt.subplots(rows_n, cols, figsize=(3.8 * cols, 3.0 * rows_n), squeeze=False)
    for ax, (dim, n_train, binning, q) in zip(axes.flat, keys, strict=False):
        sel = table[(table["dim"] == dim) & (table["n_train"] == n_train)
                    & (table["binning"] == binning) & (table["n_quantiles"] == q)]
        for i, (gen, rows) in enumerate(sel.groupby("generator", sort=True)):
            rows = rows.sort_values("n_generated")
            color = style.generator_color(gen, i)
            ax.errorbar(rows["n_generated"], rows["pass_fraction"],
                        yerr=rows["pass_fraction_err"], color=color, marker="o", ms=3,
                        capsize=2, ls="none", label=style.generator_label(gen, dim))
            ax.plot(rows["n_generated"], rows["pass_at_mean_mse"], color=color, ls="--", lw=1)
        ax.axhline(cl, color="0.3", ls=":", lw=0.8)
        for pi in pass_probabilities:
            ax.axhline(pi, color="0.6", ls="-", lw=0.5)
        amplification._log_axis(ax.xaxis, ax.set_xscale)
        ax.set_ylim(-0.03, 1.03)
        ax.set_xlabel("events $N$")
        ax.set_ylabel(f"pass fraction at {cl:.0%}")
        ax.set_title(f"d={dim}, n_train={n_train}: {style._panel_title(binning, q, dim)}",
                     fontsize=8)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=6)
    for ax in list(axes.flat)[len(keys):]:
        ax.set_visible(False)
    fig.tight_layout()
    return style.save(fig, stem)
