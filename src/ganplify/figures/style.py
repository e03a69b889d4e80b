"""The house style of the figures: generator colours and labels, panel titles, saving."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ganplify import generators
from ganplify.truth import TARGETS


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


def interval_errorbar(ax: plt.Axes, x, y, lo, hi, *, horizontal: bool = False,
                      **style) -> None:
    """Points ``y`` at ``x`` (with their line and label: ``style`` goes to `Axes.errorbar`)
    and their intervals [lo, hi] as error bars (``horizontal``: ``x`` and ``lo``, ``hi`` are
    the values, ``y`` the positions).

    Matplotlib wants error bars as lengths from the point, and a negative length is an error.
    An interval need not hold its point: a narrow bootstrap interval of a few replicas
    collapses onto the point, where a quantity derived from both sides differs by round-off,
    and a skewed one may miss it. So the bars are drawn from lo to hi themselves. A non-finite
    bound (an infinite N_equiv) draws that side to the point.
    """
    x, y, lo, hi = (np.asarray(v, dtype=float) for v in (x, y, lo, hi))
    value = x if horizontal else y
    lo = np.where(np.isfinite(lo), lo, value)
    hi = np.where(np.isfinite(hi), hi, value)
    lo, hi = np.minimum(lo, hi), np.maximum(lo, hi)
    mid, half = (lo + hi) / 2, (hi - lo) / 2
    ax.errorbar(x, y, **style)
    bars = {"fmt": "none", "ecolor": style.get("color"), "capsize": style.get("capsize", 0),
            "elinewidth": style.get("lw")}
    if horizontal:
        ax.errorbar(mid, y, xerr=half, **bars)
    else:
        ax.errorbar(x, mid, yerr=half, **bars)


def _binning_name(binning: str) -> str:
    if binning == "joint":
        return "joint cells"
    return {"x": "$x$", "r": "$r$"}.get(binning, f"$\\varphi_{{{binning[3:]}}}$")


def _panel_title(binning: str, n_quantiles: int, dim: int) -> str:
    if binning == "joint":
        return f"{n_quantiles}$^{dim}$ = {n_quantiles**dim} joint cells"
    name = {"x": "$x$", "r": "$r$"}.get(binning, f"$\\varphi_{{{binning[3:]}}}$")
    return f"{n_quantiles} quantiles in {name}"


def generator_label(generator: str, dim: int | None = None) -> str:
    """A generator's legend label (its own, `Generator.label_for`)."""
    gen = generators.REGISTRY.get(generator)
    return generator if gen is None else gen.label_for(dim)


def generator_color(generator: str, i: int = 0) -> str:
    """A generator's colour (its own); an unknown one gets a colour by position ``i``."""
    gen = generators.REGISTRY.get(generator)
    return f"C{(i + 3) % 10}" if gen is None else gen.color


def first_with(capability: str) -> str:
    """The first registered generator with a capability (e.g. ``"truth_sample"``)."""
    return generators.having(capability)[0]


def target_label(target: str) -> str:
    cls = TARGETS.get(target)
    return target if cls is None else cls.label


def _asymptotic_or_exact(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows giving a generator's own precision: its asymptote (inf) or exact value (empty)."""
    n = rows["n_generated"]
    return rows[n.isna() | np.isinf(n)]


def _binning_tick(binning: str, n_quantiles: int, dim: int) -> str:
    if binning == "joint":
        return f"{n_quantiles}$^{dim}$ joint cells"
    return f"{n_quantiles} quantiles of {_binning_name(binning)}"


def _target_style(target: str, k: int) -> tuple[str, str]:
    cls = TARGETS.get(target)
    return (cls.marker, cls.linestyle) if cls is not None else ("^v<>Dp"[k % 6], ":")
