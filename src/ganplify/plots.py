"""The study's figures, drawn from its tables (and, for Fig. 1, one replica's files).

Every function takes data and an output path stem and writes <stem>.png and <stem>.pdf. Colours
follow the paper: sample blue, fit green, GAN orange.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on cluster nodes
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from ganplify import quantiles as qt
from ganplify.baselines import mixture_logpdf
from ganplify.targets import GaussianShell

COLORS = {"sample": "tab:blue", "fit": "tab:green", "gan": "tab:orange",
          "bootstrap": "tab:gray", "kde": "tab:purple", "flow": "tab:red",
          "flow_matching": "tab:brown"}
LABELS = {"sample": "sample", "fit": "5-parameter fit", "gan": "GAN",
          "bootstrap": "bootstrap", "kde": "KDE", "flow": "spline flow",
          "flow_matching": "flow matching"}
# Truth targets in figures that compare them: a marker and a line style each.
TARGET_STYLES = {"gaussian_shell": ("o", "-"), "student_shell": ("s", "--")}
TARGET_LABELS = {"gaussian_shell": "Gaussian shell", "student_shell": "Student-t shell"}


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


def _binning_name(binning: str) -> str:
    if binning == "joint":
        return "joint cells"
    return {"x": "$x$", "r": "$r$"}.get(binning, f"$\\varphi_{{{binning[3:]}}}$")


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
        label = f"{_label(generator, dim)} ({reps} replicas)"
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
                       label=f"{_label(generator, dim)} asymptote: "
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
                color=COLORS["gan"], label=f"{generated_label or 'generated'} "
                                            f"({generated.size:,} events)")
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


def _label(generator: str, dim: int | None = None) -> str:
    if generator == "fit" and dim is not None and dim > 1:
        return "radial fit (2 parameters)"
    return LABELS.get(generator, generator)


def _color(generator: str, i: int) -> str:
    return COLORS.get(generator, f"C{(i + 3) % 10}")


def _asymptotic_or_exact(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows giving a generator's own precision: its asymptote (inf) or exact value (empty)."""
    n = rows["n_generated"]
    return rows[n.isna() | np.isinf(n)]


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
    models = table[(table["generator"] != "sample") & np.isfinite(table["n_generated"])]
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
                        & (table["generator"] != "sample")]
            for i, (gen, rows) in enumerate(sel.groupby("generator", sort=True)):
                color = _color(gen, i)
                curve = rows[np.isfinite(rows["n_generated"])].sort_values("n_generated")
                if len(curve):
                    n = curve["n_generated"].to_numpy(float)
                    ax.plot(n, curve["amplification"], color=color, marker="o", ms=3,
                            label=_label(gen, dim))
                    ax.fill_between(n, curve["amplification_lo"], curve["amplification_hi"],
                                    color=color, alpha=0.2, lw=0)
                for _, r in _asymptotic_or_exact(rows).iterrows():
                    if not np.isfinite(r["amplification"]):
                        continue  # exact by construction: nothing to draw
                    exact = pd.isna(r["n_generated"])
                    kind = "exact" if exact else "asymptote"
                    ax.axhline(r["amplification"], color=color, ls="-" if exact else ":",
                               lw=1, label=f"{_label(gen, dim)} {kind}")
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
            ax.errorbar(rows["n_train"], rows["amplification"],
                        yerr=[rows["amplification"] - rows["amplification_lo"],
                              rows["amplification_hi"] - rows["amplification"]],
                        color=_color(gen, i), marker="o", ms=4, capsize=2, label=_label(gen, dim))
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
    """Every generator's own (asymptotic or exact) rows, without the sample baseline and
    without infinite amplification (a generator exact on a binning by construction, like the
    radial fit on the angles: nothing to draw)."""
    own = _asymptotic_or_exact(table[table["generator"] != "sample"])
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
                ax.errorbar([r["amplification"]], [y],
                            xerr=[[r["amplification"] - r["amplification_lo"]],
                                  [r["amplification_hi"] - r["amplification"]]],
                            color=_color(gen, i), marker="o", ms=4, capsize=2,
                            label=None if labelled
                            else f"{_label(gen, dim)} ({int(r['n_replicas'])} replicas)")
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
                ax.errorbar(part["n_cells"], part["n_params_eff"],
                            yerr=[part["n_params_eff"] - k / part["amplification_hi"],
                                  k / part["amplification_lo"] - part["n_params_eff"]],
                            color=_color(gen, i), marker=markers.get(binning, "o"), ms=4,
                            capsize=2, ls=":" if binning == "joint" else "-",
                            label=_label(gen, dim) if len(binnings) == 1
                            else f"{_label(gen, dim)}, {_binning_name(binning)}")
        if (sel["generator"] == "fit").any():
            ax.axhline(5, color=COLORS["fit"], ls="--", lw=0.8, label="5 fit parameters")
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
            color = _color(gen, i)
            ax.plot(rows.index, rows["amplification"], color=color, marker="o", ms=3,
                    label=f"{_label(gen, dim)}: MSE")
            ax.plot(rows.index, rows["amplification_robust"], color=color, marker="v", ms=3,
                    ls="--", label=f"{_label(gen, dim)}: $\\chi^2$ at {cl:.0%}")
        ax.axhline(1.0, color="0.4", ls=":", lw=0.8)
        _log_axis(ax.xaxis, ax.set_xscale)
        _log_axis(ax.yaxis, ax.set_yscale)
        ax.set_xlabel("cells $K$")
        ax.set_ylabel("amplification")
        ax.set_title(f"d={dim}, n_train={n_train}", fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=6)
    return finish(stem)


def _binning_tick(binning: str, n_quantiles: int, dim: int) -> str:
    if binning == "joint":
        return f"{n_quantiles}$^{dim}$ joint cells"
    return f"{n_quantiles} quantiles of {_binning_name(binning)}"


def _target_style(target: str, k: int) -> tuple[str, str]:
    return TARGET_STYLES.get(target, ("^v<>Dp"[k % 6], ":"))


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
                a = part["amplification"].to_numpy(float)
                lo = a - part["amplification_lo"].to_numpy(float)
                hi = part["amplification_hi"].to_numpy(float) - a
                x = [slot[(binning, q)] - 0.35 + width * (s + 0.5) for q in part["n_quantiles"]]
                ax.errorbar(x, a, yerr=[np.clip(lo, 0, None),
                                        np.where(np.isfinite(hi), np.clip(hi, 0, None), 0.0)],
                            color=_color(gen, i), marker=marker, ls=ls, lw=1, ms=4, capsize=2,
                            mfc="white" if k else None)
        handles = [matplotlib.lines.Line2D([], [], color=_color(g, i), lw=1.5,
                                           label=_label(g, dim))
                   for i, g in enumerate(gens) if (sel["generator"] == g).any()]
        handles += [matplotlib.lines.Line2D([], [], color="0.3", lw=1,
                                            marker=_target_style(t, k)[0],
                                            ls=_target_style(t, k)[1],
                                            mfc="white" if k else None,
                                            label=TARGET_LABELS.get(t, t))
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


def amplification_vs_quantiles_panel(
    ax: plt.Axes, table: pd.DataFrame, *, dim: int, n_train: int
) -> None:
    """Amplification of joint cells against the quantiles per dimension (paper Fig. 7 right)."""
    own = _asymptotic_or_exact(table[(table["generator"] != "sample") & (table["dim"] == dim)
                                     & (table["n_train"] == n_train)
                                     & (table["binning"] == "joint")])
    for i, (gen, rows) in enumerate(own.groupby("generator", sort=True)):
        rows = rows.sort_values("n_quantiles")
        ax.errorbar(rows["n_quantiles"], rows["amplification"],
                    yerr=[rows["amplification"] - rows["amplification_lo"],
                          rows["amplification_hi"] - rows["amplification"]],
                    color=_color(gen, i), marker="o", ms=4, capsize=2, label=_label(gen, dim))
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
    measured = _asymptotic_or_exact(amplification[amplification["generator"] == "fit"])
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
    handles = [Line2D([], [], color=f"C{i % 10}", lw=1.2,
                      label=f"{_label('fit', d)}, d={d}, $n_{{train}}$={n}")
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
