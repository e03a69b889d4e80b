"""Schema checks of a results folder's tables and config, used by `ganplify verify`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ganplify.analysis import fit_uncertainty as fu
from ganplify.analysis import robustness as rb
from ganplify.analysis.amplification import (
    REPLICA_COLUMNS,
    amplification_columns,
    read_amplification,
)
from ganplify.metrics.evaluation import MSE_COLUMNS
from ganplify.results import layout
from ganplify.results.io import ResultsError
from ganplify.study import config as cfg


def check_config(root: Path) -> list[str]:
    path = root / layout.CONFIG
    if not path.is_file():
        return ["config.yaml: missing"]
    try:
        cfg.load(path)
    except cfg.ConfigError as exc:
        return [f"config.yaml: {exc}"]
    return []


def _aggregate_config(root: Path) -> dict | None:
    """The study's aggregate block, or None when its config is invalid (`check_config` says
    why)."""
    try:
        return cfg.load(root / layout.CONFIG)["aggregate"]
    except cfg.ConfigError:
        return None


def check_amplification(root: Path) -> list[str]:
    path = root / layout.table("amplification")
    if not path.is_file():
        return ["tables/amplification.csv: missing"]
    try:
        table = read_amplification(path)
    except (ResultsError, ValueError) as exc:
        return [f"tables/amplification.csv: {exc}"]
    problems = []
    agg = _aggregate_config(root)
    robust = [] if agg is None else rb.robust_columns(agg["pass_probability"])
    if agg is not None and list(table.columns) != amplification_columns(agg["pass_probability"]):
        problems.append(
            f"tables/amplification.csv: columns {list(table.columns)} are not "
            f"{amplification_columns(agg['pass_probability'])}"
        )
        return problems
    numeric = [
        "dim",
        "n_train",
        "n_quantiles",
        "n_cells",
        "n_replicas",
        "mse_mean",
        "n_equiv",
        "amplification",
        *robust,
    ]
    for col in numeric:
        if not pd.api.types.is_numeric_dtype(table[col]):
            problems.append(f"tables/amplification.csv: column {col} is not numeric")
    if problems or agg is None:
        return problems
    # the robust measure is the plain one times the strict rule's factor, row by row
    k = table["n_cells"].to_numpy(int)
    for pi in agg["pass_probability"]:
        col = rb.column("amplification_robust", pi)
        want = table["amplification"].to_numpy(float) * rb.strict_factor(k, agg["robust_cl"], pi)
        got = table[col].to_numpy(float)
        both = np.isfinite(want) & np.isfinite(got)
        if not np.allclose(got[both], want[both], rtol=1e-6, atol=0.0):
            problems.append(
                f"tables/amplification.csv: {col} is not amplification times the "
                f"strict chi-square factor (robustness.strict_factor)"
            )
    return problems


def check_robustness(root: Path) -> list[str]:
    """tables/robustness.csv and tables/robustness_limits.csv: columns, fractions in [0, 1]."""
    problems = []
    for name, columns in (
        ("robustness", rb.REALISED_COLUMNS),
        ("robustness_limits", rb.LIMIT_COLUMNS),
    ):
        try:
            table = rb.read_table(root / layout.table(name), columns)
        except (ResultsError, ValueError) as exc:
            problems.append(str(exc).replace(f"{root}/", ""))
            continue
        if name == "robustness":
            fractions = table[["pass_fraction", "pass_expected", "pass_at_mean_mse"]]
            if not ((fractions >= 0) & (fractions <= 1)).all().all():
                problems.append("tables/robustness.csv: a pass fraction outside [0, 1]")
    return problems


def _check_columns(root: Path, name: str, columns: list[str]) -> list[str]:
    path = root / layout.TABLES_DIR / name
    if not path.is_file():
        return [f"tables/{name}: missing"]
    try:
        header = list(pd.read_csv(path, nrows=0).columns)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        return [f"tables/{name}: not a readable CSV table ({exc})"]
    if header != columns:
        return [f"tables/{name}: columns {header} are not {columns}"]
    return []


def check_mse(root: Path) -> list[str]:
    return _check_columns(root, "mse.csv", MSE_COLUMNS)


def check_replicas(root: Path) -> list[str]:
    return _check_columns(root, "replicas.csv", REPLICA_COLUMNS)


def check_fit_tables(root: Path) -> list[str]:
    """The fit's uncertainty tables, where the study has them (only studies with the fit)."""

    columns = dict(zip(fu.TABLES, (fu.UNCERTAINTY_COLUMNS, fu.PARAMETER_COLUMNS), strict=True))
    return [
        problem
        for name, cols in columns.items()
        if (root / layout.table(name)).is_file()
        for problem in _check_columns(root, f"{name}.csv", cols)
    ]


table_checks = (
    check_config,
    check_amplification,
    check_robustness,
    check_mse,
    check_replicas,
    check_fit_tables,
)
