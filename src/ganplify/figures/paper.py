"""The paper's figures: the camel back and its MSE (Figs. 1-2), the ring and shell MSE and cells
(Figs. 4-7), loss curves."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.transforms import ScaledTranslation

from ganplify import generators
from ganplify.figures import style
from ganplify.figures.style import (
    TEXT_WIDTH,
    _asymptotic_or_exact,
    _panel_title,
    figure_legend,
    first_with,
    generator_color,
    generator_label,
    interval_errorbar,
    log_axis,
    panel_grid,
    replica_label,
    styled,
)
from ganplify.generators.fit import mixture_logpdf
from ganplify.metrics import quantiles as qt
from ganplify.truth.shells import GaussianShell


def _band_handle(color: str, marker: str | None = "o", ls: str = "-") -> tuple:
    """A legend handle of a line over its band, as the panels draw them."""
    return (Patch(color=color, alpha=0.2, lw=0), Line2D([], [], color=color, marker=marker, ls=ls))


def mse_panel(
    ax: plt.Axes, table: pd.DataFrame, *, dim: int, n_train: int, binning: str, n_quantiles: int
) -> tuple[list[tuple[Any, str]], list[tuple[Any, str]]]:
    """One panel of quantile MSE vs number of events: bands of every generator in ``table``.

    Sampling generators are bands (mean +- standard deviation over replicas) against the number
    of generated events, with their asymptote (dotted); exact generators (the fit) are
    horizontal bands; the dashed line is the expectation for truth-sampled events,
    (1/K)(1 - 1/K)/n.

    Returns
    -------
    (series, worth) : two lists of (handle, label)
        ``series``: the dashed expectation and each generator with its number of replicas,
        the same in every panel, for one figure-wide legend. ``worth``: the equivalent number
        of truth-sampled events of each asymptote or exact value, this panel's own.
    """
    sel = table[
        (table["dim"] == dim)
        & (table["n_train"] == n_train)
        & (table["binning"] == binning)
        & (table["n_quantiles"] == n_quantiles)
    ]
    n_cells = n_quantiles**dim if binning == "joint" else n_quantiles
    finite = sel["n_generated"].replace(np.inf, np.nan).dropna()
    lo = min([finite.min(), n_train]) if len(finite) else n_train
    hi = max([finite.max(), 10 * n_train]) if len(finite) else 10 * n_train
    grid = np.geomspace(lo, hi, 50)
    ax.plot(grid, qt.expected_sample_mse(n_cells, grid), color="0.4", ls="--", lw=0.8)
    series: list[tuple[Any, str]] = [
        (
            Line2D([], [], color="0.4", ls="--", lw=0.8),
            r"$(1/K)(1-1/K)/n$, truth-sampled expectation",
        )
    ]
    worth: list[tuple[Any, str]] = []
    for i, (generator, rows) in enumerate(sel.groupby("generator", sort=False)):
        color = generator_color(generator, i)
        label = replica_label(generator, dim, int(rows["n_replicas"].max()))
        if rows["n_generated"].isna().all():
            row = rows.iloc[0]
            if not np.isfinite(row["n_equiv"]):
                continue  # exact by construction (the radial fit on angles): MSE is round-off
            m, s = row["mse_mean"], row["mse_std"]
            ax.axhline(m, color=color)
            ax.axhspan(max(m - s, m * 1e-3), m + s, color=color, alpha=0.2, lw=0)
            series.append((_band_handle(color, None), label))
            worth.append((Line2D([], [], color=color), f"{row['n_equiv']:,.0f}"))
            continue
        curve = rows[np.isfinite(rows["n_generated"])].sort_values("n_generated")
        n, m, s = (curve[c].to_numpy(float) for c in ("n_generated", "mse_mean", "mse_std"))
        ax.plot(n, m, color=color, marker="o", ms=2.5)
        ax.fill_between(n, np.maximum(m - s, m * 1e-3), m + s, color=color, alpha=0.2, lw=0)
        series.append((_band_handle(color), label))
        asym = rows[np.isinf(rows["n_generated"])]
        if len(asym):
            row = asym.iloc[0]
            ax.axhline(row["mse_mean"], color=color, ls=":", lw=0.9)
            worth.append((Line2D([], [], color=color, ls=":"), f"{row['n_equiv']:,.0f}"))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("number of events")
    ax.set_ylabel("quantile MSE")
    ax.set_title(_panel_title(binning, n_quantiles, dim))
    ax.grid(True, which="major")
    return series, worth


# Below a panel's x label: its own legend of equivalent events.
_BELOW_XLABEL_PT = 30


def _worth_legend(ax: plt.Axes, worth: Sequence[tuple[Any, str]]) -> None:
    """The panel's equivalent events per asymptote or exact value, below its x label."""
    if not worth:
        return
    below = ax.transAxes + ScaledTranslation(0, -_BELOW_XLABEL_PT / 72, ax.figure.dpi_scale_trans)
    handles, labels = zip(*worth, strict=True)
    ax.legend(
        handles,
        labels,
        title="worth (truth-sampled events)",
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        bbox_transform=below,
        ncol=3,
        handlelength=1.4,
        columnspacing=0.8,
        handletextpad=0.4,
    )


_MSE_KEYS = [
    (Patch(color="0.4", alpha=0.25, lw=0), r"band: $\pm 1\sigma$ of the replicas"),
    (Line2D([], [], color="0.4", ls=":", lw=0.9), r"dotted: asymptote, $n \to \infty$"),
]


def _mse_legend(fig: plt.Figure, series: Sequence[tuple[Any, str]]) -> None:
    """One legend of the generators (first entry of each label) and the line styles."""
    unique: dict[str, Any] = {}
    for handle, label in series:
        unique.setdefault(label, handle)
    figure_legend(fig, [(h, label) for label, h in unique.items()] + _MSE_KEYS)


@styled
def mse_figure(
    table: pd.DataFrame,
    stem: str | Path,
    *,
    dim: int,
    n_train: int,
    panels: Sequence[tuple[str, int]],
    title: str,
) -> list[Path]:
    """A row (or grid) of `mse_panel`s, one per (binning, n_quantiles), three to a row, with one
    legend of the generators below them and each panel's equivalent events below it."""
    fig, axes = panel_grid(len(panels), cols=3, panel_height=3.5)
    series: list[tuple[Any, str]] = []
    for ax, (binning, q) in zip(axes, panels, strict=False):
        own, worth = mse_panel(ax, table, dim=dim, n_train=n_train, binning=binning, n_quantiles=q)
        series += own
        _worth_legend(ax, worth)
    fig.suptitle(title)
    _mse_legend(fig, series)
    return style.save(fig, stem)


@styled
def shell_cells_figure(
    table: pd.DataFrame,
    stem: str | Path,
    *,
    dim: int,
    n_train: int,
    fine: Sequence[int],
    title: str,
) -> list[Path]:
    """Paper Fig. 7: an `mse_panel` of joint cells per quantile count in ``fine``, and the
    amplification against the quantiles per dimension (`amplification_vs_quantiles_panel`)."""
    fig, axes = panel_grid(len(fine) + 1, cols=len(fine) + 1, panel_height=3.8)
    series: list[tuple[Any, str]] = []
    for ax, q in zip(axes, fine, strict=False):
        own, worth = mse_panel(ax, table, dim=dim, n_train=n_train, binning="joint", n_quantiles=q)
        series += own
        _worth_legend(ax, worth)
    amplification_vs_quantiles_panel(axes[-1], table, dim=dim, n_train=n_train)
    fig.suptitle(title)
    _mse_legend(fig, series)
    return style.save(fig, stem)


@styled
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
    fig, ax = plt.subplots(figsize=(TEXT_WIDTH, 2.8))
    ax.plot(x, target.pdf(x[:, None]), color="black", lw=1.3, label="truth")
    bins = np.linspace(-8.5, 8.5, 35)
    ax.hist(
        train.ravel(),
        bins=bins,
        density=True,
        histtype="stepfilled",
        alpha=0.35,
        color=generator_color(first_with("truth_sample")),
        label=f"training sample ({train.size} points)",
    )
    if generated is not None:
        ax.hist(
            generated.ravel(),
            bins=bins,
            density=True,
            histtype="step",
            lw=1.2,
            color=generated_color,
            label=f"{generated_label or 'generated'} ({generated.size:,} events)",
        )
    if fit_values is not None:
        fit = first_with("fit_parameters")
        ax.plot(
            x,
            np.exp(mixture_logpdf(x, **fit_values)),
            color=generator_color(fit),
            lw=1.3,
            label=generator_label(fit, 1),
        )
    for e in qt.edges(target, "x", n_quantiles)[1:-1]:
        ax.axvline(e, color="0.5", ls=":", lw=0.8)
    ax.plot([], [], color="0.5", ls=":", lw=0.8, label=f"{n_quantiles} quantile edges")
    ax.set_xlim(x[0], x[-1])
    ax.set_xlabel("$x$")
    ax.set_ylabel("density")
    ax.set_title(title)
    # beside the panel: inside, it would cover a peak or the quantile edges
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0))
    return style.save(fig, stem)


def amplification_vs_quantiles_panel(
    ax: plt.Axes, table: pd.DataFrame, *, dim: int, n_train: int
) -> None:
    """Amplification of joint cells against the quantiles per dimension (paper Fig. 7 right).

    Every generator but the truth sample, at its asymptote (or exact), with its interval over
    replicas; a log axis, as they differ by orders of magnitude (the radial fit on 6^5 cells:
    ~6000), and a tick at each quantile count. The generators' colours are the figure's legend.
    """
    own = _asymptotic_or_exact(
        table[
            table["generator"].map(generators.is_model)
            & (table["dim"] == dim)
            & (table["n_train"] == n_train)
            & (table["binning"] == "joint")
        ]
    )
    own = own[np.isfinite(own["amplification"])]
    for i, (gen, rows) in enumerate(own.groupby("generator", sort=True)):
        rows = rows.sort_values("n_quantiles")
        interval_errorbar(
            ax,
            rows["n_quantiles"],
            rows["amplification"],
            rows["amplification_lo"],
            rows["amplification_hi"],
            color=generator_color(gen, i),
            marker="o",
        )
    ax.axhline(1.0, color="0.4", ls="--", lw=0.8)
    ax.set_xlabel(f"quantiles per dimension (d={dim})")
    ax.set_ylabel("amplification (asymptotic or exact)")
    ax.set_title(f"joint cells, $n_{{train}}$ = {n_train}")
    ax.grid(True)
    if len(own):
        log_axis(ax.yaxis, ax.set_yscale)
        quantiles = sorted(own["n_quantiles"].unique())
        ax.set_xticks(quantiles, [str(int(q)) for q in quantiles])
        ax.set_xlim(quantiles[0] - 0.5, quantiles[-1] + 0.5)
    else:
        ax.text(
            0.5,
            0.5,
            "no sampling generator in this study",
            ha="center",
            va="center",
            transform=ax.transAxes,
        )


@styled
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
    fig, axes = plt.subplots(
        1, len(devs), figsize=(TEXT_WIDTH, 3.0), subplot_kw={"projection": "polar"}, squeeze=False
    )
    mesh = None
    # subdivide each angular cell so that its edges are drawn as arcs, not chords
    sub = 24
    fine_phi = np.concatenate(
        [np.linspace(a, b, sub, endpoint=False) for a, b in itertools.pairwise(phi_edges)]
        + [phi_edges[-1:]]
    )
    for ax, (title, dev) in zip(axes.flat, devs, strict=True):
        theta, radius = np.meshgrid(fine_phi, r_plot)
        mesh = ax.pcolormesh(
            theta, radius, np.repeat(dev, sub, axis=1), cmap="RdBu_r", vmin=-vmax, vmax=vmax
        )
        ax.set_title(title)
        ax.set_yticklabels([])
        # four angle labels: eight put 0 degrees of one map on 180 degrees of the next
        ax.set_thetagrids([0, 90, 180, 270])
        ax.tick_params(axis="x", pad=1)
        ax.grid(True, lw=0.4, alpha=0.5)
    fig.colorbar(mesh, ax=list(axes.flat), shrink=0.8, label=r"relative deviation $(x_j - 1/K)\,K$")
    return style.save(fig, stem)


@styled
def loss_figure(stem: str | Path, histories: Sequence[tuple[str, pd.DataFrame]]) -> list[Path]:
    """GAN loss curves: median and 16-84% band over replicas per setting, one row each.

    ``histories`` holds (setting label, long table with columns seed, epoch, d_loss, g_loss).
    """
    fig, axes = plt.subplots(
        len(histories), 2, squeeze=False, figsize=(TEXT_WIDTH, 1.7 * max(len(histories), 1) + 0.4)
    )
    for row, (label, hist) in enumerate(histories):
        n_rep = hist["seed"].nunique()
        for col, (key, name) in enumerate((("d_loss", "discriminator"), ("g_loss", "generator"))):
            ax = axes[row, col]
            stats = hist.groupby("epoch")[key].describe(percentiles=[0.16, 0.5, 0.84])
            ax.plot(stats.index, stats["50%"], color=f"C{col}", lw=0.9)
            ax.fill_between(
                stats.index, stats["16%"], stats["84%"], color=f"C{col}", alpha=0.25, lw=0
            )
            ax.set_xlabel("epoch")
            ax.set_ylabel(f"{name} loss")
            ax.set_title(f"{label} ({n_rep} replicas)")
            ax.grid(True)
    figure_legend(
        fig,
        [
            (Line2D([], [], color="0.3", lw=0.9), "median over replicas"),
            (Patch(color="0.3", alpha=0.25, lw=0), "16-84% of replicas"),
        ],
    )
    return style.save(fig, stem)
