"""The study's figures, drawn from its tables (and, for Fig. 1, one replica's files).

Every function takes data and an output path stem and writes <stem>.png and <stem>.pdf. Colours
follow the paper: sample blue, fit green, GAN orange.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on cluster nodes
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ganplify import quantiles as qt
from ganplify.baselines import mixture_logpdf
from ganplify.targets import GaussianShell

COLORS = {"sample": "tab:blue", "fit": "tab:green", "gan": "tab:orange"}
LABELS = {"sample": "sample", "fit": "5-parameter fit", "gan": "GAN"}


def save(fig: plt.Figure, stem: str | Path) -> list[Path]:
    """Write <stem>.png and <stem>.pdf and close the figure."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    fig.savefig(paths[0], dpi=150, bbox_inches="tight")
    # a fixed creation date keeps the PDF byte-identical when the figure is redrawn
    fig.savefig(paths[1], bbox_inches="tight", metadata={"CreationDate": None})
    plt.close(fig)
    return paths


def _panel_title(binning: str, n_quantiles: int, dim: int) -> str:
    if binning == "joint":
        return f"{n_quantiles}$^{dim}$ = {n_quantiles**dim} joint cells"
    name = {"x": "$x$", "r": "$r$"}.get(binning, f"$\\varphi_{{{binning[3:]}}}$")
    return f"{n_quantiles} quantiles in {name}"


def mse_panel(
    ax: plt.Axes, table: pd.DataFrame, *, dim: int, n_train: int, binning: str, n_quantiles: int
) -> None:
    """One panel of quantile MSE vs number of events: bands of every generator in ``table``.

    Sampling generators are bands (mean +- standard deviation over replicas) against the number
    of generated events; exact generators (the fit) are horizontal bands; the dashed line is
    the expectation for truth-sampled events, (1/K)(1 - 1/K)/n.
    """
    sel = table[
        (table["dim"] == dim) & (table["n_train"] == n_train)
        & (table["binning"] == binning) & (table["n_quantiles"] == n_quantiles)
    ]
    n_cells = n_quantiles**dim if binning == "joint" else n_quantiles
    finite = sel["n_generated"].replace(np.inf, np.nan).dropna()
    lo = min([finite.min(), n_train]) if len(finite) else n_train
    hi = max([finite.max(), 10 * n_train]) if len(finite) else 10 * n_train
    grid = np.geomspace(lo, hi, 50)
    ax.plot(grid, qt.expected_sample_mse(n_cells, grid), color="0.4", ls="--", lw=1,
            label=r"$(1/K)(1-1/K)/n$")
    for generator, rows in sel.groupby("generator", sort=False):
        color = COLORS.get(generator, None)
        reps = int(rows["n_replicas"].max())
        label = f"{LABELS.get(generator, generator)} ({reps} replicas)"
        if rows["n_generated"].isna().all():
            row = rows.iloc[0]
            m, s = row["mse_mean"], row["mse_std"]
            ax.axhline(m, color=color, lw=1.5,
                       label=f"{label}: worth {row['n_equiv']:.0f} events")
            ax.axhspan(max(m - s, m * 1e-3), m + s, color=color, alpha=0.2, lw=0)
            continue
        curve = rows[np.isfinite(rows["n_generated"])].sort_values("n_generated")
        n, m, s = (curve[c].to_numpy(float) for c in ("n_generated", "mse_mean", "mse_std"))
        ax.plot(n, m, color=color, lw=1.5, marker="o", ms=3, label=label)
        ax.fill_between(n, np.maximum(m - s, m * 1e-3), m + s, color=color, alpha=0.2, lw=0)
        asym = rows[np.isinf(rows["n_generated"])]
        if len(asym):
            row = asym.iloc[0]
            ax.axhline(row["mse_mean"], color=color, ls=":", lw=1,
                       label=f"{LABELS.get(generator, generator)} asymptote: "
                             f"worth {row['n_equiv']:.0f} events")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("number of events")
    ax.set_ylabel("quantile MSE")
    ax.set_title(_panel_title(binning, n_quantiles, dim))
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")


def mse_figure(
    table: pd.DataFrame,
    stem: str | Path,
    *,
    dim: int,
    n_train: int,
    panels: Sequence[tuple[str, int]],
    title: str,
) -> list[Path]:
    """A row (or grid) of `mse_panel`s, one per (binning, n_quantiles)."""
    n = len(panels)
    cols = min(n, 3)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.8 * rows), squeeze=False)
    for ax, (binning, q) in zip(axes.flat, panels, strict=False):
        mse_panel(ax, table, dim=dim, n_train=n_train, binning=binning, n_quantiles=q)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    fig.suptitle(title)
    fig.tight_layout()
    return save(fig, stem)


def truth_figure(
    stem: str | Path,
    *,
    train: np.ndarray,
    fit_values: dict | None,
    generated: np.ndarray | None = None,
    n_quantiles: int = 10,
    title: str = "",
) -> list[Path]:
    """Paper Fig. 1: truth, training histogram, fit, generated sample and quantile edges (d=1)."""
    target = GaussianShell(1)
    x = np.linspace(-8.5, 8.5, 600)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.plot(x, target.pdf(x[:, None]), color="black", lw=1.5, label="truth")
    bins = np.linspace(-8.5, 8.5, 35)
    ax.hist(train.ravel(), bins=bins, density=True, histtype="stepfilled", alpha=0.35,
            color=COLORS["sample"], label=f"training sample ({train.size} points)")
    if generated is not None:
        ax.hist(generated.ravel(), bins=bins, density=True, histtype="step", lw=1.5,
                color=COLORS["gan"], label=f"GAN ({generated.size:,} events)")
    if fit_values is not None:
        ax.plot(x, np.exp(mixture_logpdf(x, **fit_values)), color=COLORS["fit"], lw=1.5,
                label="5-parameter fit")
    for e in qt.edges(target, "x", n_quantiles)[1:-1]:
        ax.axvline(e, color="0.5", ls=":", lw=0.8)
    ax.plot([], [], color="0.5", ls=":", lw=0.8, label=f"{n_quantiles} quantile edges")
    ax.set_xlabel("$x$")
    ax.set_ylabel("density")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper center")
    fig.tight_layout()
    return save(fig, stem)
