"""The house style of the figures: generator colours and labels, panel titles, saving."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

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


def _binning_tick(binning: str, n_quantiles: int, dim: int) -> str:
    if binning == "joint":
        return f"{n_quantiles}$^{dim}$ joint cells"
    return f"{n_quantiles} quantiles of {_binning_name(binning)}"


def _target_style(target: str, k: int) -> tuple[str, str]:
    return TARGET_STYLES.get(target, ("^v<>Dp"[k % 6], ":"))
