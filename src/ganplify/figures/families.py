"""Figures across truth families, and the fit's uncertainty decomposition."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from ganplify.figures import style
from ganplify.figures.amplification import (
    _binning_order,
    _own_rows,
    _setting_panels,
    interval_key,
)
from ganplify.figures.style import (
    TEXT_WIDTH,
    _asymptotic_or_exact,
    _binning_tick,
    _target_style,
    figure_legend,
    first_with,
    generator_color,
    interval_errorbar,
    log_axis,
    replica_label,
    setting_title,
    styled,
    target_label,
)


@styled
def truth_families_figure(
    table: pd.DataFrame,
    stem: str | Path,
    *,
    targets: Sequence[str],
    interval: float | None = None,
) -> list[Path]:
    """Amplification of every generator on every truth target against the binning.

    One panel per (dim, n_train); per generator (colour) and target (marker and line style),
    the amplification (asymptotic, or exact for the fit) with its bootstrap interval at each
    binning, points of one coordinate joined across quantile counts. A generator whose form
    matches one family but not the other (the 5-parameter fit: two Gaussians) shows it as a
    gap between its two series. An infinite upper bound (a bootstrap mean MSE <= 0) is drawn
    without its upper bar.

    Parameters
    ----------
    table : DataFrame
        The amplification table (`ganplify.amplification.read_amplification`).
    stem : path
        Output path without suffix.
    targets : sequence of str
        The study's targets, in the order of their styles and legend entries.
    interval : float, optional
        The intervals' level (aggregate.interval), named in the legend.
    """
    own = _own_rows(table)
    targets = [t for t in targets if t in set(own["target"])]
    gens = sorted(own["generator"].unique())
    series = [(g, t) for g in gens for t in targets]
    width = 0.7 / max(len(series), 1)  # the series of one binning sit side by side
    _, panels, finish = _setting_panels(own, panel_height=3.0)
    for ax, (dim, n_train) in panels:
        sel = own[(own["dim"] == dim) & (own["n_train"] == n_train)]
        bins = sorted(
            {(dim, b, q) for b, q in sel[["binning", "n_quantiles"]].itertuples(index=False)},
            key=_binning_order,
        )
        slot = {(b, q): j for j, (_, b, q) in enumerate(bins)}
        for s, (gen, target) in enumerate(series):
            i, k = gens.index(gen), targets.index(target)
            marker, ls = _target_style(target, k)
            rows = sel[(sel["generator"] == gen) & (sel["target"] == target)]
            for binning, part in rows.groupby("binning", sort=False):
                part = part.sort_values("n_quantiles")
                x = [slot[(binning, q)] - 0.35 + width * (s + 0.5) for q in part["n_quantiles"]]
                interval_errorbar(
                    ax,
                    x,
                    part["amplification"],
                    part["amplification_lo"],
                    part["amplification_hi"],
                    color=generator_color(gen, i),
                    marker=marker,
                    ls=ls,
                    lw=0.9,
                    mfc="white" if k else None,
                )
        for i, g in enumerate(gens):  # one entry per generator: its colour
            rows = sel[sel["generator"] == g]
            if len(rows):
                ax.plot(
                    [],
                    [],
                    color=generator_color(g, i),
                    lw=1.5,
                    label=replica_label(g, dim, int(rows["n_replicas"].max())),
                )
        ax.axhline(1.0, color="0.4", ls=":", lw=0.7)
        log_axis(ax.yaxis, ax.set_yscale)
        ax.set_xticks(range(len(bins)))
        # slanted: the names of nine binnings side by side would run into one another
        ax.set_xticklabels(
            [_binning_tick(b, q, dim) for _, b, q in bins],
            rotation=35,
            ha="right",
            rotation_mode="anchor",
        )
        ax.tick_params(axis="x", which="both", top=False, bottom=False)
        ax.set_xlim(-0.5, len(bins) - 0.5)
        ax.set_ylabel("amplification")
        ax.set_title(setting_title(dim, n_train))
        ax.grid(True, axis="y")
    targets_keys = [
        (
            Line2D(
                [],
                [],
                color="0.3",
                lw=1,
                marker=_target_style(t, k)[0],
                ls=_target_style(t, k)[1],
                mfc="white" if k else None,
            ),
            target_label(t),
        )
        for k, t in enumerate(targets)
    ]
    return finish(stem, [*targets_keys, interval_key(interval, "error bar")])


@styled
def fit_uncertainty_figure(
    uncertainty: pd.DataFrame,
    parameters: pd.DataFrame,
    amplification: pd.DataFrame,
    stem: str | Path,
) -> list[Path]:
    """The fit's bias and variance, and its HESSE uncertainty against its replica spread.

    Left: bias^2 (dashed), variance (dotted) and their sum (solid) against the number of
    cells K, one colour per fit setting, with the measured mean MSE of tables/amplification.csv
    (open circles). Middle: the HESSE covariance's predicted variance over the measured one,
    with its standard error. Right, on the same axis: (median HESSE error / replica std)^2 of
    each parameter. Binnings the fit reproduces by construction (the radial fit's angles) are
    left out; projected and joint binnings are separate lines.
    """
    rows = uncertainty[np.isfinite(uncertainty["n_equiv"])]
    settings = sorted({(d, n) for d, n in rows[["dim", "n_train"]].itertuples(index=False)})
    fig, axes = plt.subplots(
        1, 3, figsize=(TEXT_WIDTH, 2.9), squeeze=True, gridspec_kw={"width_ratios": [1.0, 1.0, 0.5]}
    )
    ax_mse, ax_ratio, ax_par = axes
    ax_par.sharey(ax_ratio)
    fit = first_with("fit_parameters")
    measured = _asymptotic_or_exact(amplification[amplification["generator"] == fit])
    names = list(dict.fromkeys(parameters["parameter"]))
    for i, (dim, n_train) in enumerate(settings):
        color = f"C{i % 10}"
        sel = rows[(rows["dim"] == dim) & (rows["n_train"] == n_train)]
        for binning, part in sel.groupby("binning", sort=True):
            part = part.sort_values("n_cells")
            k = part["n_cells"].to_numpy(float)
            marker = "s" if binning == "joint" else "o"
            ax_mse.plot(k, part["bias2"], color=color, ls="--", marker="v", ms=2.5, lw=0.8)
            ax_mse.plot(k, part["variance"], color=color, ls=":", marker="^", ms=2.5, lw=0.8)
            ax_mse.plot(k, part["bias2"] + part["variance"], color=color)
            got = measured[
                (measured["dim"] == dim)
                & (measured["n_train"] == n_train)
                & (measured["binning"] == binning)
            ]
            got = got[got["n_quantiles"].isin(part["n_quantiles"])].sort_values("n_cells")
            ax_mse.plot(
                got["n_cells"],
                got["mse_mean"],
                ls="none",
                marker="o",
                ms=5,
                mfc="none",
                mew=0.7,
                color=color,
            )
            ax_ratio.errorbar(
                k,
                part["variance_ratio"],
                yerr=part["variance_ratio_err"],
                color=color,
                marker=marker,
                lw=0.9,
            )
        par = parameters[(parameters["dim"] == dim) & (parameters["n_train"] == n_train)]
        x = [names.index(p) + 0.6 * (i + 0.5) / len(settings) - 0.3 for p in par["parameter"]]
        ax_par.plot(x, par["error_ratio"] ** 2, ls="none", marker="D", ms=3, color=color)
    for ax in (ax_mse, ax_ratio):
        log_axis(ax.xaxis, ax.set_xscale)
        ax.set_xlabel("cells $K$")
        ax.grid(True)
    log_axis(ax_mse.yaxis, ax_mse.set_yscale)
    ax_mse.set_ylabel("mean quantile MSE over replicas")
    ax_mse.set_title("fit MSE = bias$^2$ + variance")
    ax_ratio.axhline(1.0, color="0.4", ls="--", lw=0.7)
    ax_ratio.set_ylabel("predicted / measured variance")
    ax_ratio.set_title("HESSE covariance\npropagated to the cells")
    ax_par.axhline(1.0, color="0.4", ls="--", lw=0.7)
    ax_par.set_xticks(range(len(names)))
    ax_par.set_xticklabels(names, rotation=90)
    ax_par.tick_params(axis="x", which="both", top=False, bottom=False)
    ax_par.set_xlim(-0.5, len(names) - 0.5)
    ax_par.set_title("parameters:\n(HESSE error /\nreplica std)$^2$")
    ax_par.tick_params(labelleft=False)
    ax_par.grid(True, axis="y")
    fit = first_with("fit_parameters")
    counts = uncertainty.groupby(["dim", "n_train"])["n_replicas"].max()
    entries = [
        (
            Line2D([], [], color=f"C{i % 10}"),
            f"{replica_label(fit, d, int(counts.get((d, n), 0)))}, d={d}, $n_{{train}}$={n}",
        )
        for i, (d, n) in enumerate(settings)
    ]
    entries += [
        (Line2D([], [], color="0.3", ls="--", marker="v", ms=2.5, lw=0.8), "bias$^2$"),
        (Line2D([], [], color="0.3", ls=":", marker="^", ms=2.5, lw=0.8), "variance"),
        (Line2D([], [], color="0.3"), "bias$^2$ + variance"),
        (
            Line2D([], [], color="0.3", ls="none", marker="o", mfc="none", ms=5),
            "mean MSE (amplification table)",
        ),
        (Line2D([], [], color="0.3", marker="o", ls="none"), "middle: projected binning"),
        (Line2D([], [], color="0.3", marker="s", ls="none"), "middle: joint cells"),
    ]
    if not settings:
        ax_mse.text(
            0.5,
            0.5,
            "no binning the fit does not reproduce exactly",
            ha="center",
            va="center",
            transform=ax_mse.transAxes,
        )
    figure_legend(fig, entries)
    return style.save(fig, stem)
