"""Schema checks of a results folder's tables and config, used by `ganplify verify`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ganplify.analysis.amplification import REPLICA_COLUMNS, read_amplification
from ganplify.metrics.evaluation import MSE_COLUMNS
from ganplify.results.io import ResultsError
from ganplify.study import config as cfg


def check_config(root: Path) -> list[str]:
    path = root / "config.yaml"
    if not path.is_file():
        return ["config.yaml: missing"]
    try:
        cfg.load(path)
    except cfg.ConfigError as exc:
        return [f"config.yaml: {exc}"]
    return []


def check_amplification(root: Path) -> list[str]:
    path = root / "tables" / "amplification.csv"
    if not path.is_file():
        return ["tables/amplification.csv: missing"]
    try:
        table = read_amplification(path)
    except (ResultsError, ValueError) as exc:
        return [f"tables/amplification.csv: {exc}"]
    problems = []
    numeric = ["dim", "n_train", "n_quantiles", "n_cells", "n_replicas", "mse_mean",
               "n_equiv", "amplification"]
    for col in numeric:
        if not pd.api.types.is_numeric_dtype(table[col]):
            problems.append(f"tables/amplification.csv: column {col} is not numeric")
    return problems


def _check_columns(root: Path, name: str, columns: list[str]) -> list[str]:
    path = root / "tables" / name
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
    from ganplify.analysis import fit_uncertainty as fu

    columns = dict(zip(fu.TABLES, (fu.UNCERTAINTY_COLUMNS, fu.PARAMETER_COLUMNS), strict=True))
    return [problem for name, cols in columns.items()
            if (root / "tables" / f"{name}.csv").is_file()
            for problem in _check_columns(root, f"{name}.csv", cols)]


table_checks = (check_config, check_amplification, check_mse, check_replicas, check_fit_tables)
