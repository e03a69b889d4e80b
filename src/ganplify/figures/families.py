"""Figures across truth families, and the fit's uncertainty decomposition."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from ganplify.figures.amplification import _binning_order, _log_axis, _own_rows, _setting_panels
from ganplify.figures.style import (
    _asymptotic_or_exact,
    _binning_tick,
    _target_style,
    first_with,
    generator_color,
    generator_label,
    interval_errorbar,
    save,
    target_label,
)


def truth_families_figure(
    table: pd.DataFrame, stem: str | Path, *, targets: Sequence[str]
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
    """
    own = _own_rows(table)
    targets = [t for t in targets if t in set(own["target"])]
    gens = sorted(own["generator"].unique())
    series = [(g, t) for g in gens for t in targets]
    width = 0.7 / max(len(series), 1)  # the series of one binning sit side by side
    _, panels, finish = _setting_panels(own)
    for ax, (dim, n_train) in panels:
        sel = own[(own["dim"] == dim) & (own["n_train"] == n_train)]
        bins = sorted({(dim, b, q) for b, q in sel[["binning", "n_quantiles"]]
                       .itertuples(index=False)}, key=_binning_order)
        slot = {(b, q): j for j, (_, b, q) in enumerate(bins)}
        for s, (gen, target) in enumerate(series):
            i, k = gens.index(gen), targets.index(target)
            marker, ls = _target_style(target, k)
            rows = sel[(sel["generator"] == gen) & (sel["target"] == target)]
            for binning, part in rows.groupby("binning", sort=False):
                part = part.sort_values("n_quantiles")
                x = [slot[(binning, q)] - 0.35 + width * (s + 0.5) for q in part["n_quantiles"]]
                interval_errorbar(ax, x, part["amplification"], part["amplification_lo"],
                                  part["amplification_hi"], color=generator_color(gen, i),
                                  marker=marker, ls=ls, lw=1, ms=4, capsize=2,
                                  mfc="white" if k else None)
        handles = [matplotlib.lines.Line2D([], [], color=generator_color(g, i), lw=1.5,
                                           label=generator_label(g, dim))
                   for i, g in enumerate(gens) if (sel["generator"] == g).any()]
        handles += [matplotlib.lines.Line2D([], [], color="0.3", lw=1,
                                            marker=_target_style(t, k)[0],
                                            ls=_target_style(t, k)[1],
                                            mfc="white" if k else None,
                                            label=target_label(t))
                    for k, t in enumerate(targets)]
        ax.axhline(1.0, color="0.4", ls=":", lw=0.8)
        _log_axis(ax.yaxis, ax.set_yscale)
        ax.set_xticks(range(len(bins)))
        ax.set_xticklabels([_binning_tick(b, q, dim) for _, b, q in bins], fontsize=7)
        ax.set_xlim(-0.5, len(bins) - 0.5)
        ax.set_ylabel("amplification (asymptotic; exact for the fit)", fontsize=8)
        ax.set_title(f"d={dim}, n_train={n_train}", fontsize=9)
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(handles=handles, fontsize=6)
    return finish(stem)


def fit_uncertainty_figure(
    uncertainty: pd.DataFrame, parameters: pd.DataFrame, amplification: pd.DataFrame,
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
    fig, axes = plt.subplots(1, 3, figsize=(13.0, 4.4), squeeze=True,
                             gridspec_kw={"width_ratios": [1.0, 1.0, 0.5]})
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
            ax_mse.plot(k, part["bias2"], color=color, ls="--", marker="v", ms=3, lw=1)
            ax_mse.plot(k, part["variance"], color=color, ls=":", marker="^", ms=3, lw=1)
            ax_mse.plot(k, part["bias2"] + part["variance"], color=color, lw=1.2)
            got = measured[(measured["dim"] == dim) & (measured["n_train"] == n_train)
                           & (measured["binning"] == binning)]
            got = got[got["n_quantiles"].isin(part["n_quantiles"])].sort_values("n_cells")
            ax_mse.plot(got["n_cells"], got["mse_mean"], ls="none", marker="o", ms=7,
                        mfc="none", color=color)
            ax_ratio.errorbar(k, part["variance_ratio"], yerr=part["variance_ratio_err"],
                              color=color, marker=marker, ms=4, capsize=2, lw=1)
        par = parameters[(parameters["dim"] == dim) & (parameters["n_train"] == n_train)]
        x = [names.index(p) + 0.6 * (i + 0.5) / len(settings) - 0.3 for p in par["parameter"]]
        ax_par.plot(x, par["error_ratio"] ** 2, ls="none", marker="D", ms=4, color=color)
    for ax in (ax_mse, ax_ratio):
        _log_axis(ax.xaxis, ax.set_xscale)
        ax.set_xlabel("cells $K$")
        ax.grid(True, alpha=0.3)
    _log_axis(ax_mse.yaxis, ax_mse.set_yscale)
    ax_mse.set_ylabel("mean quantile MSE over replicas")
    ax_mse.set_title("fit MSE = bias$^2$ + variance", fontsize=9)
    ax_ratio.axhline(1.0, color="0.4", ls="--", lw=0.8)
    ax_ratio.set_ylabel("predicted / measured variance")
    ax_ratio.set_title("HESSE covariance propagated to the cells", fontsize=9)
    ax_par.axhline(1.0, color="0.4", ls="--", lw=0.8)
    ax_par.set_xticks(range(len(names)))
    ax_par.set_xticklabels(names, rotation=90, fontsize=8)
    ax_par.set_xlim(-0.5, len(names) - 0.5)
    ax_par.set_title("parameters: (HESSE error\n/ replica std)$^2$", fontsize=9)
    ax_par.tick_params(labelleft=False)
    ax_par.grid(True, axis="y", alpha=0.3)
    fit = first_with("fit_parameters")
    handles = [Line2D([], [], color=f"C{i % 10}", lw=1.2,
                      label=f"{generator_label(fit, d)}, d={d}, $n_{{train}}$={n}")
               for i, (d, n) in enumerate(settings)]
    handles += [Line2D([], [], color="0.3", ls="--", marker="v", ms=3, label="bias$^2$"),
                Line2D([], [], color="0.3", ls=":", marker="^", ms=3, label="variance"),
                Line2D([], [], color="0.3", lw=1.2, label="bias$^2$ + variance"),
                Line2D([], [], color="0.3", ls="none", marker="o", mfc="none", ms=7,
                       label="mean MSE (amplification table)")]
    ax_mse.legend(handles=handles, fontsize=6)
    ax_ratio.legend(handles=[
        Line2D([], [], color="0.3", marker="o", ls="none", ms=4, label="projected binning"),
        Line2D([], [], color="0.3", marker="s", ls="none", ms=4, label="joint cells")],
        fontsize=6)
    if not settings:
        ax_mse.text(0.5, 0.5, "no binning the fit does not reproduce exactly",
                    ha="center", va="center", transform=ax_mse.transAxes, fontsize=8)
    fig.tight_layout()
    return save(fig, stem)
