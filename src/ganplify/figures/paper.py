"""The paper's figures: the camel back and its MSE (Figs. 1-2), the ring and shell MSE and cells
(Figs. 4-7), loss curves."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ganplify import generators
from ganplify.figures.style import (
    _asymptotic_or_exact,
    _panel_title,
    first_with,
    generator_color,
    generator_label,
    interval_errorbar,
    save,
)
from ganplify.generators.fit import mixture_logpdf
from ganplify.metrics import quantiles as qt
from ganplify.truth.shells import GaussianShell


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
    for i, (generator, rows) in enumerate(sel.groupby("generator", sort=False)):
        color = generator_color(generator, i)
        reps = int(rows["n_replicas"].max())
        label = f"{generator_label(generator, dim)} ({reps} replicas)"
        if rows["n_generated"].isna().all():
            row = rows.iloc[0]
            if not np.isfinite(row["n_equiv"]):
                continue  # exact by construction (the radial fit on angles): MSE is round-off
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
                       label=f"{generator_label(generator, dim)} asymptote: "
                             f"worth {row['n_equiv']:.0f} events")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("number of events")
    ax.set_ylabel("quantile MSE")
    ax.set_title(_panel_title(binning, n_quantiles, dim))
    ax.grid(True, which="major", alpha=0.3)
    # below the panel: with every generator drawn, a legend inside would hide the bands
    ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)


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
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 6.0 * rows), squeeze=False)
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
    generated_label: str | None = None,
    generated_color: str | None = None,
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
            color=generator_color(first_with("truth_sample")),
            label=f"training sample ({train.size} points)")
    if generated is not None:
        ax.hist(generated.ravel(), bins=bins, density=True, histtype="step", lw=1.5,
                color=generated_color, label=f"{generated_label or 'generated'} "
                                            f"({generated.size:,} events)")
    if fit_values is not None:
        fit = first_with("fit_parameters")
        ax.plot(x, np.exp(mixture_logpdf(x, **fit_values)), color=generator_color(fit),
                lw=1.5, label=generator_label(first_with("fit_parameters"), 1))
    for e in qt.edges(target, "x", n_quantiles)[1:-1]:
        ax.axvline(e, color="0.5", ls=":", lw=0.8)
    ax.plot([], [], color="0.5", ls=":", lw=0.8, label=f"{n_quantiles} quantile edges")
    ax.set_xlabel("$x$")
    ax.set_ylabel("density")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper center")
    fig.tight_layout()
    return save(fig, stem)


def amplification_vs_quantiles_panel(
    ax: plt.Axes, table: pd.DataFrame, *, dim: int, n_train: int
) -> None:
    """Amplification of joint cells against the quantiles per dimension (paper Fig. 7 right)."""
    own = _asymptotic_or_exact(table[table["generator"].map(generators.is_model)
                                     & (table["dim"] == dim)
                                     & (table["n_train"] == n_train)
                                     & (table["binning"] == "joint")])
    for i, (gen, rows) in enumerate(own.groupby("generator", sort=True)):
        rows = rows.sort_values("n_quantiles")
        interval_errorbar(ax, rows["n_quantiles"], rows["amplification"],
                          rows["amplification_lo"], rows["amplification_hi"],
                          color=generator_color(gen, i), marker="o", ms=4, capsize=2,
                          label=generator_label(gen, dim))
    ax.axhline(1.0, color="0.4", ls="--", lw=0.8)
    ax.set_xlabel(f"quantiles per dimension (d={dim})")
    ax.set_ylabel("asymptotic amplification")
    ax.set_title(f"joint cells, $n_{{train}}$ = {n_train}")
    ax.grid(True, alpha=0.3)
    if ax.has_data():
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, "no sampling generator in this study", ha="center", va="center",
                transform=ax.transAxes, fontsize=8)


def polar_cells_figure(
    stem: str | Path,
    *,
    fractions: Sequence[tuple[str, np.ndarray]],
    r_edges: np.ndarray,
    phi_edges: np.ndarray,
    r_max: float = 7.0,
) -> list[Path]:
    """Relative deviation (x_j - 1/K) K of q x q polar cells (paper Fig. 5), one map per entry.

    ``fractions`` holds (title, cell fractions in row-major (r, phi) order) pairs.
    """
    q_r, q_phi = len(r_edges) - 1, len(phi_edges) - 1
    k = q_r * q_phi
    devs = [(title, (np.asarray(f).reshape(q_r, q_phi) - 1 / k) * k) for title, f in fractions]
    vmax = max(float(np.max(np.abs(d))) for _, d in devs) or 1.0
    r_plot = np.minimum(np.asarray(r_edges, float), r_max)
    fig, axes = plt.subplots(1, len(devs), figsize=(4.4 * len(devs), 4.2),
                             subplot_kw={"projection": "polar"}, squeeze=False)
    mesh = None
    # subdivide each angular cell so that its edges are drawn as arcs, not chords
    sub = 24
    fine_phi = np.concatenate(
        [np.linspace(a, b, sub, endpoint=False) for a, b in itertools.pairwise(phi_edges)]
        + [phi_edges[-1:]]
    )
    for ax, (title, dev) in zip(axes.flat, devs, strict=True):
        theta, radius = np.meshgrid(fine_phi, r_plot)
        mesh = ax.pcolormesh(theta, radius, np.repeat(dev, sub, axis=1), cmap="RdBu_r",
                             vmin=-vmax, vmax=vmax)
        ax.set_title(title, fontsize=9)
        ax.set_yticklabels([])
    fig.colorbar(mesh, ax=list(axes.flat), shrink=0.8,
                 label=r"relative deviation $(x_j - 1/K)\,K$")
    return save(fig, stem)


def loss_figure(stem: str | Path, histories: Sequence[tuple[str, pd.DataFrame]]) -> list[Path]:
    """GAN loss curves: mean and 16-84% band over replicas per setting.

    ``histories`` holds (setting label, long table with columns seed, epoch, d_loss, g_loss).
    """
    fig, axes = plt.subplots(len(histories), 2, figsize=(9, 2.8 * max(len(histories), 1)),
                             squeeze=False)
    for row, (label, hist) in enumerate(histories):
        n_rep = hist["seed"].nunique()
        for col, (key, name) in enumerate((("d_loss", "discriminator"), ("g_loss", "generator"))):
            ax = axes[row, col]
            stats = hist.groupby("epoch")[key].describe(percentiles=[0.16, 0.5, 0.84])
            ax.plot(stats.index, stats["50%"], color=f"C{col}", lw=1,
                    label=f"median of {n_rep} replicas")
            ax.fill_between(stats.index, stats["16%"], stats["84%"], color=f"C{col}",
                            alpha=0.25, lw=0, label="16-84%")
            ax.set_xlabel("epoch")
            ax.set_ylabel(f"{name} loss")
            ax.set_title(label, fontsize=9)
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=7)
    fig.tight_layout()
    return save(fig, stem)
