"""Amplification figures beyond the paper: against n_generated and n_train, the league, effective
parameters, robustness."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ganplify import generators
from ganplify.figures.style import (
    _asymptotic_or_exact,
    _binning_name,
    _panel_title,
    generator_color,
    generator_label,
    interval_errorbar,
    save,
)

matplotlib.use("Agg")  # no display on cluster nodes


def amplification_vs_events_figure(
    table: pd.DataFrame, stem: str | Path, *, settings: Sequence[tuple[int, int]]
) -> list[Path]:
    """Amplification against the number of generated events, one row per (dim, n_train).

    Each panel is one binning; every non-sample generator is a line with its bootstrap band,
    its asymptote (or exact value) a horizontal line with its band.
    """
    binnings = {
        key: sorted(
            {(b, q) for b, q in table[(table["dim"] == key[0]) & (table["n_train"] == key[1])]
             [["binning", "n_quantiles"]].itertuples(index=False)},
            key=lambda bq: (bq[0] == "joint", bq[0], bq[1]),
        )
        for key in settings
    }
    cols = max((len(v) for v in binnings.values()), default=1)
    models = table[table["generator"].map(generators.is_model) & np.isfinite(table["n_generated"])]
    n_gen = models["n_generated"]
    x_range = (n_gen.min() / 2, n_gen.max() * 2) if len(n_gen) else (1e2, 1e6)
    fig, axes = plt.subplots(len(settings), cols, figsize=(3.6 * cols, 3.2 * len(settings)),
                             squeeze=False)
    for row, key in enumerate(settings):
        dim, n_train = key
        for col in range(cols):
            ax = axes[row, col]
            if col >= len(binnings[key]):
                ax.set_visible(False)
                continue
            binning, q = binnings[key][col]
            sel = table[(table["dim"] == dim) & (table["n_train"] == n_train)
                        & (table["binning"] == binning) & (table["n_quantiles"] == q)
                        & table["generator"].map(generators.is_model)]
            for i, (gen, rows) in enumerate(sel.groupby("generator", sort=True)):
                color = generator_color(gen, i)
                curve = rows[np.isfinite(rows["n_generated"])].sort_values("n_generated")
                if len(curve):
                    n = curve["n_generated"].to_numpy(float)
                    ax.plot(n, curve["amplification"], color=color, marker="o", ms=3,
                            label=generator_label(gen, dim))
                    ax.fill_between(n, curve["amplification_lo"], curve["amplification_hi"],
                                    color=color, alpha=0.2, lw=0)
                for _, r in _asymptotic_or_exact(rows).iterrows():
                    if not np.isfinite(r["amplification"]):
                        continue  # exact by construction: nothing to draw
                    exact = pd.isna(r["n_generated"])
                    kind = "exact" if exact else "asymptote"
                    ax.axhline(r["amplification"], color=color, ls="-" if exact else ":",
                               lw=1, label=f"{generator_label(gen, dim)} {kind}")
                    if np.isfinite(r["amplification_hi"]):
                        ax.axhspan(r["amplification_lo"], r["amplification_hi"], color=color,
                                   alpha=0.1, lw=0)
            ax.axhline(1.0, color="0.4", ls="--", lw=0.8)
            ax.set_xscale("log")
            # generators differ by orders of magnitude (the radial fit on 6^5 cells: ~6000)
            _log_axis(ax.yaxis, ax.set_yscale)
            ax.set_xlim(*x_range)
            ax.set_title(f"d={dim}, " + _panel_title(binning, q, dim), fontsize=9)
            ax.set_xlabel("generated events")
            ax.set_ylabel(f"amplification (n_train={n_train})")
            ax.grid(True, alpha=0.3)
            if ax.has_data():
                ax.legend(fontsize=6)
    fig.tight_layout()
    return save(fig, stem)


def amplification_vs_n_train_figure(table: pd.DataFrame, stem: str | Path) -> list[Path]:
    """Amplification (asymptotic, or exact for the fit) against the training size.

    One panel per (dim, binning); a line per generator with its bootstrap interval.
    """
    own = _own_rows(table)
    # dimensions with a training-size scan; all of them when none has one
    scanned = [d for d, g in own.groupby("dim") if g["n_train"].nunique() > 1]
    if scanned:
        own = own[own["dim"].isin(scanned)]
    panels = sorted({(d, b, q) for d, b, q in own[["dim", "binning", "n_quantiles"]]
                     .itertuples(index=False)}, key=lambda p: (p[0], p[1] == "joint", p[1], p[2]))
    cols = min(max(len(panels), 1), 4)
    rows_n = int(np.ceil(max(len(panels), 1) / cols))
    fig, axes = plt.subplots(rows_n, cols, figsize=(3.8 * cols, 3.2 * rows_n), squeeze=False)
    for ax, (dim, binning, q) in zip(axes.flat, panels, strict=False):
        sel = own[(own["dim"] == dim) & (own["binning"] == binning) & (own["n_quantiles"] == q)]
        for i, (gen, rows) in enumerate(sel.groupby("generator", sort=True)):
            rows = rows.sort_values("n_train")
            interval_errorbar(ax, rows["n_train"], rows["amplification"],
                              rows["amplification_lo"], rows["amplification_hi"],
                              color=generator_color(gen, i), marker="o", ms=4, capsize=2,
                              label=generator_label(gen, dim))
        ax.axhline(1.0, color="0.4", ls="--", lw=0.8)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xticks(sorted(sel["n_train"].unique()))
        ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.set_xlabel("training events $n_{train}$")
        ax.set_ylabel("amplification")
        ax.set_title(f"d={dim}, " + _panel_title(binning, q, dim), fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    if not panels:
        axes[0, 0].set_visible(True)
        axes[0, 0].text(0.5, 0.5, "no generator besides the sample baseline",
                        ha="center", va="center", transform=axes[0, 0].transAxes)
    fig.tight_layout()
    return save(fig, stem)


def _binning_order(row: tuple) -> tuple:
    dim, binning, q = row
    return (dim, binning == "joint", binning, q)


def _own_rows(table: pd.DataFrame) -> pd.DataFrame:
    """Every generator's own (asymptotic or exact) rows, without the truth sample and
    without infinite amplification (a generator exact on a binning by construction, like the
    radial fit on the angles: nothing to draw)."""
    own = _asymptotic_or_exact(table[table["generator"].map(generators.is_model)])
    return own[np.isfinite(own["amplification"])]


def _log_axis(axis, set_scale) -> None:
    """Log scale with plain numbers as tick labels."""
    set_scale("log")
    axis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(matplotlib.ticker.NullFormatter())


def _setting_panels(own: pd.DataFrame):
    """A grid of panels, one per (dim, n_train) in ``own``, at most 4 per row.

    Returns the figure, (axis, (dim, n_train)) pairs and a function that hides the unused
    axes, lays the figure out and saves it to ``stem``.
    """
    panels = sorted({(d, n) for d, n in own[["dim", "n_train"]].itertuples(index=False)})
    cols = min(max(len(panels), 1), 4)
    rows_n = int(np.ceil(max(len(panels), 1) / cols))
    fig, axes = plt.subplots(rows_n, cols, figsize=(3.8 * cols, 3.2 * rows_n), squeeze=False)

    def finish(stem: str | Path) -> list[Path]:
        for ax in list(axes.flat)[len(panels):]:
            ax.set_visible(False)
        fig.tight_layout()
        return save(fig, stem)

    return fig, list(zip(axes.flat, panels, strict=False)), finish


def league_figure(table: pd.DataFrame, stem: str | Path) -> list[Path]:
    """The league table: every generator's amplification (asymptotic, or exact for the fit)
    with its bootstrap interval, one row per binning, one panel per (dim, n_train)."""
    own = _own_rows(table)
    panels = sorted({(d, n) for d, n in own[["dim", "n_train"]].itertuples(index=False)})
    gens = sorted(own["generator"].unique())
    heights = [max(1, own[(own["dim"] == d) & (own["n_train"] == n)]
                   [["binning", "n_quantiles"]].drop_duplicates().shape[0]) for d, n in panels]
    fig, axes = plt.subplots(
        max(len(panels), 1), 1, figsize=(7.0, 1.0 + 0.45 * max(sum(heights), 1)
                                          * (1 + 0.15 * len(gens))),
        squeeze=False, gridspec_kw={"height_ratios": heights or [1]},
    )
    for ax, (dim, n_train) in zip(axes[:, 0], panels, strict=False):
        sel = own[(own["dim"] == dim) & (own["n_train"] == n_train)]
        bins = sorted({(dim, b, q) for b, q in sel[["binning", "n_quantiles"]]
                       .itertuples(index=False)}, key=_binning_order)
        step = 0.8 / max(len(gens), 1)
        for i, gen in enumerate(gens):
            labelled = False
            for j, (_, binning, q) in enumerate(bins):
                row = sel[(sel["generator"] == gen) & (sel["binning"] == binning)
                          & (sel["n_quantiles"] == q)]
                if row.empty:
                    continue
                r = row.iloc[0]
                y = j - 0.4 + step * (i + 0.5)
                interval_errorbar(ax, [r["amplification"]], [y], [r["amplification_lo"]],
                                  [r["amplification_hi"]], horizontal=True,
                                  color=generator_color(gen, i), marker="o", ms=4, capsize=2,
                                  label=None if labelled else
                                  f"{generator_label(gen, dim)} ({int(r['n_replicas'])} replicas)")
                labelled = True
        ax.axvline(1.0, color="0.4", ls="--", lw=0.8)
        _log_axis(ax.xaxis, ax.set_xscale)
        ax.set_yticks(range(len(bins)))
        ax.set_yticklabels([_panel_title(b, q, dim) for _, b, q in bins], fontsize=8)
        ax.set_ylim(len(bins) - 0.5, -0.5)  # first binning on top
        ax.set_title(f"d={dim}, n_train={n_train}", fontsize=9)
        ax.grid(True, axis="x", alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    axes[-1, 0].set_xlabel("amplification (asymptotic; exact for the fit)")
    fig.tight_layout()
    return save(fig, stem)


def effective_parameters_figure(table: pd.DataFrame, stem: str | Path) -> list[Path]:
    """Effective number of parameters (K - 1) / amplification against the number of cells K,
    per generator; one panel per (dim, n_train), projected and joint binnings together. A
    fit with k parameters approaches k as K grows."""
    own = _own_rows(table).dropna(subset=["n_params_eff"])
    _, panels, finish = _setting_panels(own)
    for ax, (dim, n_train) in panels:
        sel = own[(own["dim"] == dim) & (own["n_train"] == n_train)]
        binnings = sorted(sel["binning"].unique(), key=lambda b: (b == "joint", b))
        markers = dict(zip(binnings, "osD^v<>p*h", strict=False))
        for i, (gen, rows) in enumerate(sel.groupby("generator", sort=True)):
            for binning, part in rows.groupby("binning", sort=False):
                part = part.sort_values("n_cells")
                k = part["n_cells"] - 1
                # the interval's ends from the amplification's (a lower amplification
                # means more effective parameters)
                interval_errorbar(ax, part["n_cells"], part["n_params_eff"],
                                  k / part["amplification_hi"], k / part["amplification_lo"],
                                  color=generator_color(gen, i),
                                  marker=markers.get(binning, "o"), ms=4, capsize=2,
                                  ls=":" if binning == "joint" else "-",
                                  label=generator_label(gen, dim) if len(binnings) == 1
                                  else f"{generator_label(gen, dim)}, {_binning_name(binning)}")
        for gen in sorted(set(sel["generator"])):  # a fit's own parameter count, for scale
            if gen in generators.REGISTRY and generators.REGISTRY[gen].fit_parameters:
                n_par = len(generators.REGISTRY[gen].parameters(dim))
                ax.axhline(n_par, color=generator_color(gen), ls="--", lw=0.8,
                           label=f"{n_par} fit parameters")
        _log_axis(ax.xaxis, ax.set_xscale)
        _log_axis(ax.yaxis, ax.set_yscale)
        ax.set_xlabel("cells $K$")
        ax.set_ylabel("$(K - 1)$ / amplification")
        ax.set_title(f"d={dim}, n_train={n_train}", fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=6)
    return finish(stem)


def robustness_figure(table: pd.DataFrame, stem: str | Path, cl: float) -> list[Path]:
    """The Matchev-Shyamsundar robustness test against the MSE measure: per generator, the
    amplification (solid) and the robust amplification N_robust / n_train (dashed) against the
    number of cells, one panel per (dim, n_train)."""
    own = _own_rows(table).dropna(subset=["amplification_robust"])
    _, panels, finish = _setting_panels(own)
    for ax, (dim, n_train) in panels:
        sel = own[(own["dim"] == dim) & (own["n_train"] == n_train)]
        for i, (gen, rows) in enumerate(sel.groupby("generator", sort=True)):
            # one point per K: where binnings share K (r, phi1, ...), the first by name
            rows = rows.sort_values(["n_cells", "binning"]).groupby("n_cells").first()
            color = generator_color(gen, i)
            ax.plot(rows.index, rows["amplification"], color=color, marker="o", ms=3,
                    label=f"{generator_label(gen, dim)}: MSE")
            ax.plot(rows.index, rows["amplification_robust"], color=color, marker="v", ms=3,
                    ls="--", label=f"{generator_label(gen, dim)}: $\\chi^2$ at {cl:.0%}")
        ax.axhline(1.0, color="0.4", ls=":", lw=0.8)
        _log_axis(ax.xaxis, ax.set_xscale)
        _log_axis(ax.yaxis, ax.set_yscale)
        ax.set_xlabel("cells $K$")
        ax.set_ylabel("amplification")
        ax.set_title(f"d={dim}, n_train={n_train}", fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=6)
    return finish(stem)
