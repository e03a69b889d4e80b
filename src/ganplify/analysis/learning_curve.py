"""Amplification along training: every neural generator's replicas are saved at chosen epochs
(snapshots, written by the training job through the neural core's epoch hook), evaluated like
the final weights by the evaluation job (same event streams, same binnings), and aggregated
here into tables/learning_curve.csv.

Each epoch's row is the same statistic as the league's: the asymptotic amplification of the
replica-mean MSE with its bootstrap interval, beside the median replica's and the count of
collapsed replicas (`ganplify.analysis.amplification.amplification_table`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ganplify import generators
from ganplify.analysis import amplification as amp
from ganplify.metrics.evaluation import MSE_COLUMNS
from ganplify.results import layout
from ganplify.results.io import ResultsError, read_json, read_table
from ganplify.study.plan import Chunk

# per replica (learning_curve.csv): its MSE rows at every snapshot epoch, with the spread of
# the snapshot's events (for the collapse count)
REPLICA_COLUMNS = [*MSE_COLUMNS, "epoch", "spread_ratio"]

COLUMNS = [
    "target",
    "dim",
    "n_train",
    "generator",
    "epoch",
    "binning",
    "n_quantiles",
    "n_cells",
    "n_replicas",
    "amplification",
    "amplification_lo",
    "amplification_hi",
    "amplification_median",
    "n_collapsed",
]

AUTO_POINTS = 10


def snapshot_epochs(spec: str | Sequence[int], epochs: int) -> list[int]:
    """The epochs (1-based) whose generators are saved: ``"auto"`` gives about ten log-spaced
    epochs from 1 to ``epochs``, the last included; a list keeps its epochs up to ``epochs``."""
    if isinstance(spec, str):
        if spec != "auto":
            raise ValueError(f"snapshots must be 'auto' or a list of epochs, got {spec!r}")
        grid = np.round(np.geomspace(1, epochs, min(AUTO_POINTS, epochs))).astype(int)
        return sorted({int(e) for e in grid} | {epochs})
    return sorted({int(e) for e in spec if 1 <= int(e) <= epochs})


def collect(results: str | Path, chunks: Sequence[Chunk]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every finished replica's learning_curve.csv, as (MSE rows with their epoch, one replica
    row per (replica, epoch) with status and spread, as `amplification_table` reads them)."""
    results = Path(results)
    tables, rows = [], []
    for chunk in chunks:
        s = chunk.setting
        if not generators.get(s.generator).neural:
            continue
        for seed in chunk.seeds:
            rdir = results / s.replica_dir(seed)
            if read_json(rdir / layout.STATUS).get("status") != "done":
                continue
            path = rdir / layout.LEARNING
            if not path.is_file():  # trained with snapshots: [] (or before they existed)
                continue
            table = read_table(path, REPLICA_COLUMNS)
            if (table["seed"] != seed).any() or (table["generator"] != s.generator).any():
                raise ResultsError(f"{path}: belongs to another replica")
            tables.append(table)
            for epoch, part in table.groupby("epoch"):
                spread = float(part["spread_ratio"].iloc[0])
                rows.append((*amp.replica_row(s, seed, "done", "", spread), int(epoch)))
    mse = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=REPLICA_COLUMNS)
    mse["n_generated"] = mse["n_generated"].astype("Int64")
    return mse, pd.DataFrame(rows, columns=[*amp.REPLICA_COLUMNS, "epoch"])


def learning_table(
    mse: pd.DataFrame,
    replicas: pd.DataFrame,
    *,
    n_boot: int,
    interval: float,
    seed: int,
    collapse_spread: float,
    saturation: float,
) -> pd.DataFrame:
    """tables/learning_curve.csv: per setting, generator, epoch and binning, the asymptotic
    amplification of the replica-mean MSE with its interval, the median replica's, and the
    collapsed replicas."""
    out = []
    for epoch in sorted(set(mse["epoch"])):
        part = mse[mse["epoch"] == epoch].drop(columns=["epoch", "spread_ratio"])
        reps = replicas[replicas["epoch"] == epoch].drop(columns=["epoch"])
        table = amp.amplification_table(
            part,
            reps,
            n_boot=n_boot,
            interval=interval,
            seed=seed + int(epoch),
            collapse_spread=collapse_spread,
            saturation=saturation,
            pass_probabilities=(),
        )
        n = pd.to_numeric(table["n_generated"], errors="coerce")
        out.append(table[np.isinf(n)].assign(epoch=int(epoch)))
    if not out:
        return pd.DataFrame(columns=COLUMNS)
    return pd.concat(out, ignore_index=True)[COLUMNS].sort_values(
        ["target", "dim", "n_train", "generator", "binning", "n_quantiles", "epoch"],
        ignore_index=True,
    )
