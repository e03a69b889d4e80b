"""Checks of a drawn figure's content and layout, and small synthetic tables to draw from."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from matplotlib.transforms import Bbox

from ganplify import generators

TRUTH = generators.having("truth_sample")[0]
FIT = generators.having("fit_parameters")[0]
MODEL = generators.having("paper_model")[0]  # a sampling model with rows at 10^4 events
OTHER = next(
    n for n, g in generators.REGISTRY.items() if not (g.exact or g.truth_sample or g.paper_model)
)  # one without them
N_TRAIN = 50
BINNINGS = {1: [("x", 5), ("x", 10)], 2: [("r", 5), ("phi1", 5), ("joint", 3), ("joint", 4)]}
REPLICAS = {TRUTH: 20, FIT: 20, MODEL: 8, OTHER: 10}
ASYMPTOTE = {MODEL: 1.5, OTHER: 0.8}


def _row(target, dim, gen, binning, q, n_generated, amp) -> dict:
    k = q**dim if binning == "joint" else q
    n_eq = amp * N_TRAIN
    mse = (1 / k) * (1 - 1 / k) / n_eq if np.isfinite(n_eq) else 0.0
    own = not np.isfinite(n_generated)
    return {
        "target": target,
        "dim": dim,
        "n_train": N_TRAIN,
        "generator": gen,
        "binning": binning,
        "n_quantiles": q,
        "n_cells": k,
        "n_generated": n_generated,
        "n_replicas": REPLICAS[gen],
        "mse_mean": mse,
        "mse_std": 0.5 * mse,
        "n_equiv": n_eq,
        "n_equiv_lo": 0.8 * n_eq,
        "n_equiv_hi": 1.25 * n_eq,
        "amplification": amp,
        "amplification_lo": 0.8 * amp,
        "amplification_hi": 1.25 * amp,
        "n_params_eff": (k - 1) / amp if own else np.nan,
        "amplification_robust": 0.5 * amp if own else np.nan,
    }


def amplification_table(target: str = "gaussian_shell", with_10k: bool = True) -> pd.DataFrame:
    """An amplification table of two dimensions, one training size and four generators: the
    truth sample (a curve), the fit (exact; exact by construction on the angle), a sampling
    model with rows at 100, 1000 and 10^4 events and its asymptote, and another without 10^4."""
    rows = []
    for dim, binnings in BINNINGS.items():
        for binning, q in binnings:
            k = q**dim if binning == "joint" else q
            for n in (50, 100, 200):
                rows.append(_row(target, dim, TRUTH, binning, q, float(n), n / N_TRAIN))
            fit = np.inf if binning.startswith("phi") else 3 * np.sqrt(k)
            rows.append(_row(target, dim, FIT, binning, q, np.nan, fit))
            for gen, a in ASYMPTOTE.items():
                grid = (100, 1000, 10_000) if gen == MODEL and with_10k else (100, 1000)
                rows += [
                    _row(target, dim, gen, binning, q, float(n), a * n / (n + 300)) for n in grid
                ]
                rows.append(_row(target, dim, gen, binning, q, np.inf, a * np.sqrt(k) / 2))
    return pd.DataFrame(rows)


def _ticklabels(axis) -> list:
    # the ticks drawn (a locator also returns some outside the view)
    return [
        label
        for tick in axis._update_ticks()
        for label in (tick.label1, tick.label2)
        if label.get_visible() and label.get_text()
    ]


def texts(fig) -> list:
    """Every visible, non-empty text of the figure: titles, axis and tick labels, legends."""
    out = [t for t in (fig._suptitle,) if t is not None and t.get_text()]
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        out += [
            t
            for t in (
                ax.title,
                ax._left_title,
                ax._right_title,
                ax.xaxis.label,
                ax.yaxis.label,
                *ax.texts,
            )
            if t.get_visible() and t.get_text()
        ]
        out += _ticklabels(ax.xaxis) + _ticklabels(ax.yaxis)
    for legend in legends(fig):
        out += [t for t in (*legend.get_texts(), legend.get_title()) if t.get_text()]
    return out


def legends(fig) -> list:
    return [
        *fig.legends,
        *(ax.get_legend() for ax in fig.axes if ax.get_visible() and ax.get_legend() is not None),
    ]


def legend_labels(fig) -> list[str]:
    return [t.get_text() for legend in fig.legends for t in legend.get_texts()]


def _shrunk(bbox, px: float = 1.0) -> Bbox:
    """Touching is not overlapping: a pixel off every side."""
    return Bbox.from_extents(bbox.x0 + px, bbox.y0 + px, bbox.x1 - px, bbox.y1 - px)


def check_layout(fig) -> None:
    """Nothing outside the canvas, no legend over a panel, no two texts on one another."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    canvas = fig.bbox.expanded(1.0, 1.0).padded(1.0)
    panels = [ax.get_window_extent(renderer) for ax in fig.axes if ax.get_visible()]
    boxes = [(t, t.get_window_extent(renderer)) for t in texts(fig)]
    for legend in legends(fig):
        extent = legend.get_window_extent(renderer)
        assert canvas.contains(extent.x0, extent.y0) and canvas.contains(extent.x1, extent.y1), (
            f"legend outside the canvas: {extent} not in {fig.bbox}"
        )
        for panel in panels:
            assert not _shrunk(extent).overlaps(panel), (
                f"legend {[t.get_text() for t in legend.get_texts()][:3]} covers a panel"
            )
    for text, extent in boxes:
        assert canvas.contains(extent.x0, extent.y0) and canvas.contains(extent.x1, extent.y1), (
            f"{text.get_text()!r} outside the canvas"
        )
    for (a, ea), (b, eb) in itertools.combinations(boxes, 2):
        assert not _shrunk(ea).overlaps(_shrunk(eb)), f"{a.get_text()!r} overlaps {b.get_text()!r}"


def visible_axes(fig) -> list:
    return [ax for ax in fig.axes if ax.get_visible()]
