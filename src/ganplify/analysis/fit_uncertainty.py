"""The fit's bias and variance, and its HESSE uncertainty against its replica spread.

Two referee questions about the maximum-likelihood fit (`generators.Fit`), answered per fit
setting (target, dim, n_train) and binning from the successful replicas' fit.json files (JSON
only: nothing is executed or unpickled).

(a) The MSE decomposition. With p_jk the fitted probability of cell j (K cells) in replica k,
    the mean quantile MSE over replicas splits exactly into

        mse_mean = bias2 + variance
        bias2    = (1/K) sum_j (mean_k p_jk - 1/K)**2
        variance = (1/K) sum_j var_k(p_jk)          (ddof 0, so that the identity is exact)

    and each part converts to an equivalent number of sampled events (1/K)(1 - 1/K) / part.
(b) Does the fit know its own uncertainty? Each replica's HESSE covariance C, propagated to
    the cell probabilities with the Jacobian J = dp/dtheta (central differences, each step a
    fraction `STEP` of that parameter's HESSE error), predicts the variance term
    (1/K) sum_j (J C J^T)_jj; its mean over replicas is compared with the measured
    ``variance``. Per parameter: the replica mean and spread against the median HESSE error.

Tables: tables/fit_uncertainty.csv (`UNCERTAINTY_COLUMNS`, one row per fit setting, binning
and n_quantiles) and tables/fit_parameters.csv (`PARAMETER_COLUMNS`, one row per fit setting
and parameter).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ganplify.generators.fit import Fit, fit_probabilities
from ganplify.metrics import quantiles as qt
from ganplify.metrics.quantiles import Binning, CellCounter
from ganplify.results import layout
from ganplify.results.io import ResultsError, read_json
from ganplify.results.io import read_table as _read_csv_table
from ganplify.study import config as cfg
from ganplify.study.plan import Chunk, Setting

GENERATOR = Fit.name


# The tables this module writes, under tables/<name>.csv.
TABLES = ("fit_uncertainty", "fit_parameters")


SETTING_COLUMNS = ["target", "dim", "n_train", "generator"]


UNCERTAINTY_COLUMNS = [
    *SETTING_COLUMNS,
    "binning",
    "n_quantiles",
    "n_cells",
    "n_replicas",
    "n_failed",
    "mse_mean",
    "bias2",
    "variance",
    "bias2_fraction",
    "n_equiv",
    "n_equiv_bias2",
    "n_equiv_variance",
    "predicted_variance",
    "variance_ratio",
    "variance_ratio_err",
]


PARAMETER_COLUMNS = [
    *SETTING_COLUMNS,
    "parameter",
    "n_replicas",
    "n_failed",
    "mean",
    "std",
    "error_median",
    "error_ratio",
]


# Finite-difference step in units of each parameter's HESSE error: small against the scale on
# which p(theta) curves (truncation error ~ STEP**2), large against round-off.
STEP = 0.01


# iminuit's errors and the square roots of its covariance diagonal agree to ~0.3% in the
# interior, but differ by a few per cent for a parameter close to a limit (transformed; 3.3%
# measured for sigma2 = 4.83 on a Student-t camel back). The check only guards the parameter
# order, whose mistakes swap errors that differ by factors, so it allows 25%.
_ERROR_RTOL = 0.25


def applies(config: Mapping) -> bool:
    """Whether a validated study config runs the fit in some dimension."""
    return any(GENERATOR in cfg.axes(config, int(d))["generators"] for d in config["dims"])


@dataclass(frozen=True)
class FitReplicas:
    """The successful fits of one setting, parameters in `Fit.parameters` order.

    Attributes
    ----------
    setting : Setting
    binnings : tuple of Binning
        The binnings the study evaluates the setting on.
    values, errors : ndarray, shape (R, P)
        Best-fit values and HESSE errors of the R successful replicas.
    covariances : ndarray, shape (R, P, P)
        HESSE covariance matrices.
    n_failed : int
        Replicas whose fit failed (left out).
    """

    setting: Setting
    binnings: tuple[Binning, ...]
    values: np.ndarray
    errors: np.ndarray
    covariances: np.ndarray
    n_failed: int

    @property
    def names(self) -> tuple[str, ...]:
        return Fit.parameters(self.setting.dim)


def _named_floats(data: dict, key: str, names: Sequence[str], path: Path) -> np.ndarray:
    """``data[key]`` (a mapping parameter -> number) as an array in the order of ``names``."""
    block = data.get(key)
    if not isinstance(block, dict) or set(block) != set(names):
        got = sorted(block) if isinstance(block, dict) else type(block).__name__
        raise ResultsError(
            f"{path}: '{key}' must map the parameters {list(names)} to numbers, got {got}"
        )
    try:
        out = np.array([float(block[n]) for n in names])
    except (TypeError, ValueError):
        raise ResultsError(f"{path}: '{key}' holds a value that is not a number") from None
    if not np.all(np.isfinite(out)):
        raise ResultsError(f"{path}: '{key}' holds a non-finite value")
    return out


def read_fit(path: str | Path, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Values, HESSE errors and covariance of one successful fit from its fit.json.

    Parameters
    ----------
    path : path
        The replica's fit.json (`ganplify.generators.fit.FitResult.to_json`).
    names : sequence of str
        The parameters, in the order of the covariance matrix (`Fit.parameters`).

    Returns
    -------
    values, errors : ndarray, shape (P,)
    covariance : ndarray, shape (P, P)

    Raises
    ------
    ResultsError
        Naming the file, when it is missing, not JSON, records a failed fit, lacks a
        parameter, or holds a covariance that is not a finite symmetric P x P matrix whose
        diagonal matches the errors.
    """
    path = Path(path)
    data = read_json(path)
    if not isinstance(data, dict):
        raise ResultsError(f"{path}: not a JSON object")
    if data.get("ok") is not True:
        raise ResultsError(
            f"{path}: records a failed fit ({data.get('reason', '')!r}) although "
            "the replica's status.json says done"
        )
    values = _named_floats(data, "values", names, path)
    errors = _named_floats(data, "errors", names, path)
    if np.any(errors <= 0):
        raise ResultsError(f"{path}: 'errors' must be positive")
    p = len(names)
    try:
        cov = np.array(data.get("covariance"), dtype=np.float64)
    except (TypeError, ValueError):
        cov = np.empty(0)
    if cov.shape != (p, p) or not np.all(np.isfinite(cov)):
        raise ResultsError(f"{path}: 'covariance' must be a finite {p} x {p} matrix of numbers")
    if not np.allclose(cov, cov.T, rtol=1e-6, atol=0.0):
        raise ResultsError(f"{path}: 'covariance' is not symmetric")
    diag = np.diag(cov)
    if np.any(diag <= 0) or not np.allclose(np.sqrt(diag), errors, rtol=_ERROR_RTOL, atol=0.0):
        raise ResultsError(
            f"{path}: the covariance diagonal does not match 'errors' in the "
            f"parameter order {list(names)}"
        )
    return values, errors, cov


def _replica_done(results: Path, setting: Setting, seed: int) -> bool:
    """Whether a replica finished, from its status.json (checked to belong to the setting)."""
    path = results / setting.replica_dir(seed) / layout.STATUS
    status = read_json(path)
    if (
        not isinstance(status, dict)
        or status.get("phash") != setting.phash
        or status.get("seed") != seed
    ):
        raise ResultsError(f"{path}: belongs to another setting or seed, or is malformed")
    return status.get("status") == "done"


def collect(results: str | Path, chunks: Sequence[Chunk]) -> list[FitReplicas]:
    """The successful fits of every fit setting among ``chunks``, read from fit.json files."""
    results = Path(results)
    by_setting: dict[Setting, list[Chunk]] = {}
    for chunk in chunks:
        if chunk.setting.generator == GENERATOR:
            by_setting.setdefault(chunk.setting, []).append(chunk)
    out = []
    for setting, group in by_setting.items():
        names = Fit.parameters(setting.dim)
        fits, failed = [], 0
        for seed in (s for c in group for s in c.seeds):
            if not _replica_done(results, setting, seed):
                failed += 1
                continue
            fits.append(read_fit(results / setting.replica_dir(seed) / layout.FIT_INFO, names))
        p = len(names)
        values, errors, covs = (
            (np.stack(x) for x in zip(*fits, strict=True))
            if fits
            else (np.empty((0, p)), np.empty((0, p)), np.empty((0, p, p)))
        )
        out.append(FitReplicas(setting, group[0].binnings, values, errors, covs, failed))
    return out


def decompose(p: np.ndarray) -> tuple[float, float, float]:
    """Mean quantile MSE of fitted cell probabilities and its bias and variance parts.

    Parameters
    ----------
    p : ndarray, shape (R, K)
        Cell probabilities of R replicas.

    Returns
    -------
    mse_mean, bias2, variance : float
        mse_mean = bias2 + variance (to round-off): bias2 = (1/K) sum_j (mean_k p_jk - 1/K)**2,
        variance = (1/K) sum_j var_k(p_jk) with ddof 0.
    """
    p = np.asarray(p, dtype=np.float64)
    k = p.shape[-1]
    mse_mean = float(np.mean(qt.mse(p)))
    bias2 = float(np.mean((p.mean(axis=0) - 1.0 / k) ** 2))
    variance = float(np.mean(p.var(axis=0)))
    return mse_mean, bias2, variance


def jacobian(
    func: Callable[[np.ndarray], Sequence[np.ndarray]], theta: np.ndarray, steps: np.ndarray
) -> list[np.ndarray]:
    """Central-difference Jacobians of a function returning several arrays.

    Parameters
    ----------
    func : callable
        theta (shape (P,)) -> sequence of arrays (e.g. one array of cell probabilities per
        binning).
    theta : ndarray, shape (P,)
        Where to differentiate.
    steps : ndarray, shape (P,)
        Step per parameter (> 0).

    Returns
    -------
    list of ndarray, shape (K_b, P)
        d func(theta)[b] / d theta for each output b.
    """
    theta = np.asarray(theta, dtype=np.float64)
    columns = []
    for i, h in enumerate(np.asarray(steps, dtype=np.float64)):
        up, down = theta.copy(), theta.copy()
        up[i] += h
        down[i] -= h
        columns.append([(a - b) / (2.0 * h) for a, b in zip(func(up), func(down), strict=True)])
    return [np.stack(cols, axis=-1) for cols in zip(*columns, strict=True)]


def propagated_variance(jac: np.ndarray, cov: np.ndarray) -> float:
    """(1/K) sum_j (J C J^T)_jj: the variance term a covariance C predicts for K cells.

    Parameters
    ----------
    jac : ndarray, shape (K, P)
        dp_j / dtheta.
    cov : ndarray, shape (P, P)
        Covariance of theta.
    """
    jac = np.asarray(jac, dtype=np.float64)
    return float(
        np.einsum("ja,ab,jb->", jac, np.asarray(cov, dtype=np.float64), jac) / jac.shape[0]
    )


def ratio_with_error(predicted: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """mean(predicted) / variance of ``p`` over replicas, with its standard error.

    The measured variance is itself a mean over replicas, of v_k = (1/K) sum_j (p_jk - mean_k
    p_jk)**2, so the ratio is one of two means over the same replicas; its error is the delta
    method's, with their covariance (it neglects the O(1/R) effect of estimating mean_k p_jk,
    which also makes the ddof-0 variance low by (R - 1)/R).

    Parameters
    ----------
    predicted : ndarray, shape (R,)
        Per-replica predicted variance terms (`propagated_variance`).
    p : ndarray, shape (R, K)
        Cell probabilities of the same replicas.

    Returns
    -------
    ratio, error : float
        NaN where the measured variance is not positive; error NaN for fewer than 2 replicas.
    """
    a = np.asarray(predicted, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    v = np.mean((p - p.mean(axis=0)) ** 2, axis=1)
    mean_a, mean_v = float(np.mean(a)), float(np.mean(v))
    if not mean_v > 0:
        return float("nan"), float("nan")
    ratio = mean_a / mean_v
    if len(a) < 2:
        return ratio, float("nan")
    # linearised: ratio - true ratio ~ mean_k(a_k - ratio v_k) / mean_v
    return ratio, float(np.std(a - ratio * v, ddof=1) / np.sqrt(len(a)) / mean_v)


def _setting_key(setting: Setting) -> dict:
    return {
        "target": setting.target,
        "dim": setting.dim,
        "n_train": setting.n_train,
        "generator": setting.generator,
    }


def binning_row(
    setting: Setting, binning: Binning, p: np.ndarray, predicted: np.ndarray, n_failed: int
) -> dict:
    """One row of tables/fit_uncertainty.csv from the replicas' probabilities (R, K) and
    predicted variance terms (R,).

    A binning the fit reproduces by construction (the radial fit on an angle: MSE at
    round-off, N_equiv infinite) gets no bias fraction and no variance ratio.
    """
    k = binning.n_cells
    row = {
        **_setting_key(setting),
        "binning": binning.coordinate,
        "n_quantiles": binning.n_quantiles,
        "n_cells": k,
        "n_replicas": len(p),
        "n_failed": n_failed,
    }
    if len(p) == 0:
        return row | {c: float("nan") for c in UNCERTAINTY_COLUMNS if c not in row}
    mse_mean, bias2, variance = decompose(p)
    n_eq = float(qt.n_equiv(mse_mean, k))
    exact = not np.isfinite(n_eq)
    ratio, error = (float("nan"), float("nan")) if exact else ratio_with_error(predicted, p)
    return row | {
        "mse_mean": mse_mean,
        "bias2": bias2,
        "variance": variance,
        "bias2_fraction": float("nan") if exact else bias2 / mse_mean,
        "n_equiv": n_eq,
        "n_equiv_bias2": float(qt.n_equiv(bias2, k)),
        "n_equiv_variance": float(qt.n_equiv(variance, k)),
        "predicted_variance": float(np.mean(predicted)),
        "variance_ratio": ratio,
        "variance_ratio_err": error,
    }


def parameter_rows(fits: FitReplicas) -> list[dict]:
    """Rows of tables/fit_parameters.csv: per parameter the replica mean and spread (ddof 1),
    the median HESSE error and error_ratio = error_median / std."""
    r = len(fits.values)
    rows = []
    for i, name in enumerate(fits.names):
        values, errors = fits.values[:, i], fits.errors[:, i]
        std = float(np.std(values, ddof=1)) if r > 1 else float("nan")
        median = float(np.median(errors)) if r else float("nan")
        rows.append(
            {
                **_setting_key(fits.setting),
                "parameter": name,
                "n_replicas": r,
                "n_failed": fits.n_failed,
                "mean": float(np.mean(values)) if r else float("nan"),
                "std": std,
                "error_median": median,
                "error_ratio": median / std if std > 0 else float("nan"),
            }
        )
    return rows


def binning_rows(fits: FitReplicas, step: float = STEP) -> list[dict]:
    """Rows of tables/fit_uncertainty.csv of one setting, one per binning."""
    target = fits.setting.make_target()
    counter = CellCounter(target, fits.binnings)

    def probabilities(theta: np.ndarray) -> list[np.ndarray]:
        return fit_probabilities(target, dict(zip(fits.names, theta, strict=True)), counter)

    n_b = len(fits.binnings)
    p: list[list[np.ndarray]] = [[] for _ in range(n_b)]
    predicted: list[list[float]] = [[] for _ in range(n_b)]
    for theta, errors, cov in zip(fits.values, fits.errors, fits.covariances, strict=True):
        for b, probs in enumerate(probabilities(theta)):
            p[b].append(probs)
        for b, jac in enumerate(jacobian(probabilities, theta, step * errors)):
            predicted[b].append(propagated_variance(jac, cov))
    return [
        binning_row(
            fits.setting,
            binning,
            np.array(p[b]).reshape(-1, binning.n_cells),
            np.array(predicted[b]),
            fits.n_failed,
        )
        for b, binning in enumerate(fits.binnings)
    ]


def fit_tables(
    results: str | Path, chunks: Sequence[Chunk], step: float = STEP
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """tables/fit_uncertainty.csv and tables/fit_parameters.csv of a study's fit settings.

    Raises
    ------
    ResultsError
        Naming the file, when a replica's status.json or fit.json is missing or malformed.
    """
    rows, params = [], []
    for fits in collect(results, chunks):
        rows += binning_rows(fits, step)
        params += parameter_rows(fits)
    return (
        pd.DataFrame(rows, columns=UNCERTAINTY_COLUMNS),
        pd.DataFrame(params, columns=PARAMETER_COLUMNS),
    )


def read_table(path: str | Path, columns: Sequence[str]) -> pd.DataFrame:
    """Read one of this module's tables back, checking its columns."""
    return _read_csv_table(path, columns)
