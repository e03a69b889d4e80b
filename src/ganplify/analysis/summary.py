"""The headline of a study: a setting-and-binning by generator table of one amplification
column with its interval, as plain text, Markdown (the README's tables) or CSV.

Each generator contributes its own precision: the asymptotic row (n_generated = inf) of a
sampling generator, the exact row of an exact one, or the rows at one chosen n_generated.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ganplify import generators


def _number(value: float) -> str:
    """Three significant digits, as the README prints them."""
    if not np.isfinite(value):
        return "inf" if value > 0 else "-"
    if value == 0:
        return "0"
    digits = max(0, 2 - math.floor(math.log10(abs(value))))
    return f"{value:.{digits}f}"


def binning_label(binning: str, n_quantiles: int, dim: int) -> str:
    """'10 quantiles', '10 quantiles of r', '7x7 joint cells', '3^5 joint cells'."""
    if binning == "joint":
        cells = "x".join([str(n_quantiles)] * dim) if dim <= 2 else f"{n_quantiles}^{dim}"
        return f"{cells} joint cells"
    if dim == 1:
        return f"{n_quantiles} quantiles"
    return f"{n_quantiles} quantiles of {binning}"


def headline(
    table: pd.DataFrame,
    column: str = "amplification",
    n_generated: float | None = None,
    *,
    interval: bool = True,
) -> pd.DataFrame:
    """One row per (target, dim, n_train, binning), one column per generator.

    Parameters
    ----------
    table : DataFrame
        tables/amplification.csv (`ganplify.analysis.amplification.read_amplification`).
    column : str
        The value to show: ``amplification``, ``amplification_robust_50``, ``n_equiv``, ...
    n_generated : float, optional
        Show the rows at this event count; default the generator's own precision (its
        asymptote, or its exact row). The truth sample has neither and is left out.
    interval : bool
        Append ``[lo, hi]`` where the table has ``<column>_lo`` and ``<column>_hi``.
    """
    rows = table[table["generator"].map(generators.is_model)]
    n = pd.to_numeric(rows["n_generated"], errors="coerce")
    if n_generated is None:
        rows = rows[n.isna() | np.isinf(n)]
    else:
        rows = rows[n == n_generated]
    has_interval = interval and f"{column}_lo" in rows and f"{column}_hi" in rows
    key = ["target", "dim", "n_train", "binning", "n_quantiles"]
    cells: dict[tuple, dict[str, str]] = {}
    for row in rows.itertuples(index=False):
        r = row._asdict()
        text = _number(r[column])
        if has_interval and np.isfinite(r[column]):
            text += f" [{_number(r[f'{column}_lo'])}, {_number(r[f'{column}_hi'])}]"
        cells.setdefault(tuple(r[k] for k in key), {})[r["generator"]] = text
    order = [g for g in generators.REGISTRY if g in set(rows["generator"])]
    order += sorted(set(rows["generator"]) - set(order))
    several_targets = table["target"].nunique() > 1
    out = []
    for (target, dim, n_train, binning, q), by_generator in sorted(
        cells.items(),
        key=lambda kv: (kv[0][0], kv[0][1], kv[0][2], kv[0][3] == "joint", kv[0][3], kv[0][4]),
    ):
        setting = f"d={dim}, n_train={n_train}" + (f", {target}" if several_targets else "")
        out.append(
            {
                "setting": setting,
                "binning": binning_label(binning, q, dim),
                **{g: by_generator.get(g, "") for g in order},
            }
        )
    return pd.DataFrame(out, columns=["setting", "binning", *order])


def to_markdown(frame: pd.DataFrame, labels: bool = True) -> str:
    """A Markdown table; generator columns get their labels."""
    names = [
        generators.REGISTRY[c].label if labels and c in generators.REGISTRY else c
        for c in frame.columns
    ]
    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.to_numpy()]
    return "\n".join(lines)


def to_text(frame: pd.DataFrame, blocks: Sequence[str] = ("setting",)) -> str:
    """Plain text: one block per setting, generators as columns."""
    if frame.empty:
        return "(no rows)"
    out = []
    for setting, part in frame.groupby(list(blocks), sort=False):
        name = setting[0] if isinstance(setting, tuple) else setting
        out.append(str(name))
        body = part.drop(columns=list(blocks)).set_index("binning")
        body.index.name = None
        out.append(body.to_string())
        out.append("")
    return "\n".join(out).rstrip()
