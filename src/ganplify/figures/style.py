"""The house style of the figures: one set of matplotlib settings applied by every figure
(`styled`), figure-wide legends outside the panels, generator colours and labels, panel titles,
saving.

Figures are drawn at the size they print, a page's text width (`TEXT_WIDTH`), with fonts of
7-8 pt, so the PDF needs no scaling. Our own settings rather than mplhep's: its experiment
styles are drawn for one 10 x 10 inch panel at 26 pt and would need overriding for every
multi-panel figure here, which adds a dependency for little.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.legend import Legend

from ganplify import generators
from ganplify.results.io import atomic_write_bytes
from ganplify.truth import TARGETS

# A page's text width in inches: every figure is this wide, and prints at 100%.
TEXT_WIDTH = 7.0

HOUSE_STYLE: dict[str, Any] = {
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "legend.title_fontsize": 7,
    "figure.titlesize": 9,
    # ticks inside, on all four sides, as in HEP figures
    "xtick.direction": "in",
    "ytick.direction": "in",
    "xtick.top": True,
    "ytick.right": True,
    "axes.linewidth": 0.6,
    "grid.linewidth": 0.4,
    "grid.alpha": 0.4,
    "lines.linewidth": 1.1,
    "lines.markersize": 3.5,
    "errorbar.capsize": 1.5,
    "legend.frameon": False,
    "legend.handlelength": 1.6,
    "legend.columnspacing": 1.0,
    # constrained layout keeps titles, colour bars and legends outside one another
    "figure.constrained_layout.use": True,
    "figure.constrained_layout.h_pad": 0.03,
    "figure.constrained_layout.w_pad": 0.03,
    # TrueType in the PDF: text stays text (searchable, editable)
    "pdf.fonttype": 42,
}

F = TypeVar("F", bound=Callable[..., Any])


def house_style() -> Any:
    """A context in which figures are drawn in the house style (`HOUSE_STYLE`)."""
    return plt.rc_context(HOUSE_STYLE)


def styled(draw: F) -> F:
    """Draw a figure function's figure in the house style; marks it ``house_style = True``."""

    @functools.wraps(draw)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with house_style():
            return draw(*args, **kwargs)

    wrapper.house_style = True  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


def save(fig: plt.Figure, stem: str | Path) -> list[Path]:
    """Write <stem>.png and <stem>.pdf (atomically, like every results file) and close the
    figure."""
    stem = Path(stem)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    # a fixed creation date keeps the PDF byte-identical when the figure is redrawn
    options = ({"dpi": 150}, {"metadata": {"CreationDate": None}})
    for path, extra in zip(paths, options, strict=True):
        buffer = io.BytesIO()
        fig.savefig(buffer, format=path.suffix[1:], bbox_inches="tight", **extra)
        atomic_write_bytes(path, buffer.getvalue())
    plt.close(fig)
    return paths


def panel_grid(
    n_panels: int,
    *,
    cols: int,
    panel_height: float,
    width: float = TEXT_WIDTH,
    **subplots: Any,
) -> tuple[plt.Figure, list[plt.Axes]]:
    """A figure of ``n_panels`` panels, ``cols`` to a row, the unused ones hidden.

    Parameters
    ----------
    n_panels : int
        Panels to draw; at least one axis is returned (for a "nothing to show" note).
    cols : int
        Most panels per row.
    panel_height : float
        Height of a row in inches (the width is shared).
    width : float
        Figure width in inches.
    **subplots
        Passed to `matplotlib.pyplot.subplots`.

    Returns
    -------
    (Figure, list of Axes)
        The figure and its first ``max(n_panels, 1)`` axes, row by row.
    """
    n = max(n_panels, 1)
    cols = max(1, min(cols, n))
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(
        rows, cols, figsize=(width, panel_height * rows), squeeze=False, **subplots
    )
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat)[:n]


def unique_entries(axes: Iterable[plt.Axes]) -> list[tuple[Any, str]]:
    """(handle, label) of every labelled artist of ``axes``, the first of each label."""
    seen: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            seen.setdefault(label, handle)
    return [(h, label) for label, h in seen.items()]


def figure_legend(
    fig: plt.Figure,
    entries: Sequence[tuple[Any, str]] | None = None,
    *,
    ncol: int | None = None,
    where: str = "lower center",
    **kwargs: Any,
) -> Legend | None:
    """One legend for the whole figure, outside every panel (below them by default).

    Parameters
    ----------
    fig : Figure
        A figure drawn with constrained layout (the house style), which makes room for it.
    entries : sequence of (handle, label), optional
        The entries; by default `unique_entries` of the figure's visible axes.
    ncol : int, optional
        Columns; by default up to 3, as many as fit a text-wide figure.
    where : str
        Side of the figure: "lower center", "upper center", "right upper", ...
    **kwargs
        Passed to `Figure.legend`.
    """
    if entries is None:
        entries = unique_entries(ax for ax in fig.axes if ax.get_visible())
    if not entries:
        return None
    handles, labels = zip(*entries, strict=True)
    return fig.legend(
        handles, labels, loc=f"outside {where}", ncol=ncol or min(len(entries), 3), **kwargs
    )


class _ShortRangeMinor(matplotlib.ticker.Formatter):
    """Labels the minor ticks at 2 and 5 (x 10^k) of a log axis spanning under 1.5 decades,
    which would otherwise show one label or none."""

    def __call__(self, x: float, pos: int | None = None) -> str:
        lo, hi = sorted(self.axis.get_view_interval())
        if lo <= 0 or hi / lo > 30 or x <= 0:
            return ""
        mantissa = x / 10 ** np.floor(np.log10(x) + 1e-9)
        return f"{x:g}" if np.isclose(mantissa, 2) or np.isclose(mantissa, 5) else ""


def log_axis(axis: Any, set_scale: Callable[[str], None]) -> None:
    """Log scale with plain numbers as tick labels (1, 10, 100; not 10^0, 10^1, 10^2)."""
    set_scale("log")
    axis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(_ShortRangeMinor())


def replica_label(generator: str, dim: int | None, n_replicas: int) -> str:
    """A generator's legend label with its number of replicas: "KDE (100 replicas)"."""
    label = generator_label(generator, dim)
    if label.endswith(")"):  # "radial fit (2 parameters; 100 replicas)", one pair of brackets
        return f"{label[:-1]}; {n_replicas} replicas)"
    return f"{label} ({n_replicas} replicas)"


def _binning_name(binning: str) -> str:
    if binning == "joint":
        return "joint cells"
    return {"x": "$x$", "r": "$r$"}.get(binning, f"$\\varphi_{{{binning[3:]}}}$")


def _panel_title(binning: str, n_quantiles: int, dim: int) -> str:
    if binning == "joint":
        return f"{n_quantiles}$^{dim}$ = {n_quantiles**dim} joint cells"
    name = {"x": "$x$", "r": "$r$"}.get(binning, f"$\\varphi_{{{binning[3:]}}}$")
    return f"{n_quantiles} quantiles in {name}"


def setting_title(dim: int, n_train: int) -> str:
    """A panel title naming a setting: "d=5, $n_{train}$ = 500"."""
    return f"d={dim}, $n_{{train}}$ = {n_train}"


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


def interval_errorbar(ax: plt.Axes, x, y, lo, hi, *, horizontal: bool = False, **style) -> None:
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
    bars = {
        "fmt": "none",
        "ecolor": style.get("color"),
        "capsize": style.get("capsize", 0),
        "elinewidth": style.get("lw"),
    }
    if horizontal:
        ax.errorbar(mid, y, xerr=half, **bars)
    else:
        ax.errorbar(x, mid, yerr=half, **bars)
