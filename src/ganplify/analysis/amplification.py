"""Aggregate per-replica MSE tables into tables/mse.csv and tables/amplification.csv.

For every (target, dim, n_train, generator, binning, n_quantiles, n_generated) the mean MSE over
the replicas that did not fail converts to N_equiv = (1/K)(1 - 1/K)/MSE and the amplification
N_equiv / n_train, with a bootstrap interval over replicas. Rows with n_generated = inf hold the
asymptotic estimate: each replica's MSE at its largest n_generated with the finite-sample term
removed, then averaged. Failed replicas are counted (n_failed) and listed in
tables/replicas.csv, never averaged in. The robust columns apply the strict chi-square rule of
`ganplify.robustness` to the same mean MSE.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ganplify import generators
from ganplify.analysis import robustness as rb
from ganplify.metrics import quantiles as qt
from ganplify.metrics.evaluation import MSE_COLUMNS
from ganplify.results import layout
from ganplify.results.io import ResultsError, read_json, read_table
from ganplify.study.data import stable_id
from ganplify.study.plan import Chunk, Setting

# The contract's columns of tables/amplification.csv, in this order (DESIGN.md).
CONTRACT_COLUMNS = [
    "target",
    "dim",
    "n_train",
    "generator",
    "binning",
    "n_quantiles",
    "n_cells",
    "n_generated",
    "n_replicas",
    "mse_mean",
    "mse_std",
    "n_equiv",
    "n_equiv_lo",
    "n_equiv_hi",
    "amplification",
    "amplification_lo",
    "amplification_hi",
]


# Added after the contract's columns: replicas left out because they failed; replicas kept in
# the mean although their generated spread collapsed; the median of per-replica amplification;
# the smallest n_generated whose amplification is within `saturation` of the asymptote;
# the effective number of parameters (n_cells - 1) / amplification of exact and asymptotic
# rows (a fit with k parameters approaches k as the cells get finer). Then, per required pass
# probability pi (`robustness.robust_columns`), the strict Matchev-Shyamsundar measure on exact
# and asymptotic rows: n_robust_<100 pi>, the largest N whose histogram passes a chi-square
# test against the truth, with the errors of N events, with probability pi (`robustness.n_robust`
# of the same mean MSE as n_equiv), and amplification_robust_<100 pi> = that over n_train.
EXTRA_COLUMNS = [
    "n_failed",
    "n_collapsed",
    "amplification_median",
    "n_saturation",
    "n_params_eff",
    "amplification_rerun_lo",
    "amplification_rerun_hi",
]


def amplification_columns(pass_probabilities: Sequence[float] = rb.PASS_PROBABILITIES) -> list[str]:
    """The amplification table's columns with robust columns at ``pass_probabilities``."""
    return CONTRACT_COLUMNS + EXTRA_COLUMNS + rb.robust_columns(pass_probabilities)


AMPLIFICATION_COLUMNS = amplification_columns()


REPLICA_COLUMNS = [
    "target",
    "dim",
    "n_train",
    "generator",
    "phash",
    "seed",
    "status",
    "reason",
    "spread_ratio",
    "path",
]


GROUP = ["target", "dim", "n_train", "generator", "binning", "n_quantiles", "n_cells"]


# Generators whose asymptote is not estimated (the truth's asymptotic MSE is 0 by definition).
NO_ASYMPTOTE = frozenset(generators.having("truth_sample"))


def replica_row(setting: Setting, seed: int, status: str, reason: str, spread: float) -> tuple:
    """One replica's row of tables/replicas.csv (`REPLICA_COLUMNS`)."""
    s = setting
    return (
        s.target,
        s.dim,
        s.n_train,
        s.generator,
        s.phash,
        seed,
        status,
        reason,
        spread,
        s.replica_dir(seed),
    )


def collect(results: str | Path, chunks: Sequence[Chunk]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read every replica's status and MSE table.

    Returns
    -------
    mse : DataFrame
        tables/mse.csv, one row per replica x binning x n_generated (replicas that did not fail).
    replicas : DataFrame
        tables/replicas.csv, one row per replica with its status and reason.

    Raises
    ------
    ResultsError
        Naming the file, when a replica's record is missing or does not match the study.
    """
    results = Path(results)
    tables, rows = [], []
    for chunk in chunks:
        s = chunk.setting
        for seed in chunk.seeds:
            rdir = results / s.replica_dir(seed)
            status = read_json(rdir / layout.STATUS)
            if status.get("phash") != s.phash or status.get("seed") != seed:
                raise ResultsError(
                    f"{rdir / 'status.json'}: belongs to another setting or seed "
                    f"(phash {status.get('phash')}, seed {status.get('seed')})"
                )
            rows.append(
                replica_row(
                    s,
                    seed,
                    status["status"],
                    status.get("reason", ""),
                    status.get("spread_ratio", np.nan),
                )
            )
            if status["status"] != "done":
                continue
            table = read_mse_table(rdir / layout.MSE)
            expected = {
                (b.coordinate, b.n_quantiles, n)
                for b in chunk.binnings
                for n in (chunk.n_generated or [None])
            }
            got = {
                (c, int(q), None if pd.isna(n) else int(n))
                for c, q, n in table[["binning", "n_quantiles", "n_generated"]].itertuples(
                    index=False
                )
            }
            if got != expected:
                raise ResultsError(
                    f"{rdir / 'mse.csv'}: holds other binnings or event counts than the study "
                    f"asks for ({len(got)} rows vs {len(expected)} expected); rerun its evaluation"
                )
            tables.append(table)
    mse = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=MSE_COLUMNS)
    mse["n_generated"] = mse["n_generated"].astype("Int64")
    return mse, pd.DataFrame(rows, columns=REPLICA_COLUMNS)


def read_mse_table(path: Path) -> pd.DataFrame:
    table = read_table(path, MSE_COLUMNS)
    if not np.all(np.isfinite(table["mse"].to_numpy(dtype=float))):
        raise ResultsError(f"{path}: non-finite MSE values")
    return table


def bootstrap_means(values: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Means of ``n_boot`` resamples (with replacement) of ``values``."""
    idx = rng.integers(0, len(values), size=(n_boot, len(values)))
    return values[idx].mean(axis=1)


# Posterior draws behind a rerun interval: the 16th percentile's Monte Carlo error is then
# about 1% of the interval's width.
RERUN_DRAWS = 4000
# The lognormal model is used unless a Shapiro-Wilk test rejects normal log-MSEs at this level.
LOGNORMAL_TEST_LEVEL = 0.05


def rerun_interval(
    values: np.ndarray, interval: float, rng: np.random.Generator, draws: int = RERUN_DRAWS
) -> tuple[float, float]:
    """Where the mean MSE of a rerun with as many independent replicas lands, with
    probability ``interval``.

    A rerun elsewhere (another CPU's kernels, a GPU) does not reproduce a chaotic training: its
    replicas are new draws, and its mean differs from this one by the sampling error of both.
    The interval of the mean (amplification_lo/hi) does not say this: it is where the true mean
    lies, not where another run's mean falls.

    A chaotic generator's replica MSEs are heavy-tailed (a few replicas far worse than the
    rest), which a handful of replicas does not show in their standard deviation. So the
    interval is the posterior predictive of a lognormal model of the replicas (Jeffreys prior:
    sigma^2 ~ (n-1) s^2 / chi^2_{n-1}, mu ~ N(ybar, sigma^2 / n) for y = log MSE): ``draws``
    Monte Carlo reruns of n replicas, whose means' central quantiles are returned. Where the
    logs are plainly not normal (a Shapiro-Wilk test rejects them at `LOGNORMAL_TEST_LEVEL`:
    the chi-square-like MSEs of a fit, whose logs have a long lower tail, and where the
    lognormal would be confidently wrong with many replicas), and where a value is not
    positive (an asymptotic MSE can be) or n < 3, it is mean +- t_{n-1} s sqrt(2/n).

    Parameters
    ----------
    values : ndarray [n]
        The replicas' MSEs.
    interval : float
        Probability content, in (0, 1).
    rng : numpy.random.Generator
        Stream of the Monte Carlo draws (the table derives one per row).
    draws : int
        Monte Carlo reruns.

    Returns
    -------
    (lo, hi) : bounds of the rerun's mean MSE; NaN for fewer than two replicas.
    """
    from scipy import stats

    values = np.asarray(values, dtype=float)
    n = len(values)
    if n < 2:
        return float("nan"), float("nan")
    tail = 0.5 * (1.0 - interval)
    if np.all(values > 0) and n >= 3:
        y = np.log(values)
        if np.ptp(y) == 0.0:
            return float(values[0]), float(values[0])
        s = float(np.std(y, ddof=1))
        if stats.shapiro(y).pvalue >= LOGNORMAL_TEST_LEVEL:
            sigma = s * np.sqrt((n - 1) / rng.chisquare(n - 1, draws))
            mu = float(np.mean(y)) + sigma * rng.standard_normal(draws) / np.sqrt(n)
            with np.errstate(over="ignore"):  # a posterior sigma of hundreds: inf
                reruns = np.exp(mu[:, None] + sigma[:, None] * rng.standard_normal((draws, n)))
            # no interpolation: two infinite neighbours would give NaN
            lo, hi = np.quantile(reruns.mean(axis=1), [tail, 1 - tail], method="inverted_cdf")
            return float(lo), float(hi)
    mean, s = float(np.mean(values)), float(np.std(values, ddof=1))
    half = float(stats.t.ppf(1.0 - tail, n - 1)) * s * np.sqrt(2.0 / n)
    return mean - half, mean + half


def _amplification_of(mse_value: float, n_cells: int, n_train: int) -> float:
    """Amplification of an MSE bound; a bound at or below zero means no finite limit, an
    infinite one a limit of zero."""
    if np.isnan(mse_value):
        return float("nan")
    if np.isposinf(mse_value):
        return 0.0
    if mse_value <= 0:
        return float("inf")
    return float(qt.n_equiv(mse_value, n_cells)) / n_train


def _summary_row(
    key,
    n_generated,
    values,
    counts,
    n_boot,
    interval,
    rng,
    robust_cl: float = 0.95,
    pass_probabilities: Sequence[float] = rb.PASS_PROBABILITIES,
) -> dict:
    target, dim, n_train, generator, binning, n_quantiles, n_cells = key
    mean = float(np.mean(values))
    std = float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")
    tail = 0.5 * (1.0 - interval)
    if len(values) > 1:
        boots = bootstrap_means(values, n_boot, rng)
        mse_lo, mse_hi = np.quantile(boots, [tail, 1.0 - tail])
    else:
        mse_lo = mse_hi = float("nan")
    n_eq = float(qt.n_equiv(mean, n_cells))
    # the generator's own precision (exact, or asymptotic): finite n_generated rows mix in the
    # generated events' sampling noise
    own = bool(np.isnan(n_generated) or np.isinf(n_generated))
    robust = {}
    for pi in pass_probabilities:
        n_rob = float(rb.n_robust(mean, n_cells, robust_cl, pi)) if own else np.nan
        robust[rb.column("n_robust", pi)] = n_rob
        robust[rb.column("amplification_robust", pi)] = n_rob / n_train
    # N_equiv falls as the MSE rises: the upper MSE bound gives the lower N_equiv bound
    n_lo = float(qt.n_equiv(mse_hi, n_cells)) if np.isfinite(mse_hi) else float("nan")
    n_hi = float(qt.n_equiv(mse_lo, n_cells)) if np.isfinite(mse_lo) else float("nan")
    # its own stream, so that the bootstrap's draws stay those of the row alone
    rerun_lo, rerun_hi = rerun_interval(values, interval, rng.spawn(1)[0])
    return {
        "target": target,
        "dim": dim,
        "n_train": n_train,
        "generator": generator,
        "binning": binning,
        "n_quantiles": n_quantiles,
        "n_cells": n_cells,
        "n_generated": n_generated,
        "n_replicas": len(values),
        "mse_mean": mean,
        "mse_std": std,
        "n_equiv": n_eq,
        "n_equiv_lo": n_lo,
        "n_equiv_hi": n_hi,
        "amplification": n_eq / n_train,
        "amplification_lo": n_lo / n_train,
        "amplification_hi": n_hi / n_train,
        **counts,
        "amplification_median": float(np.median(qt.amplification(values, n_cells, n_train))),
        "n_saturation": np.nan,
        "n_params_eff": (n_cells - 1) * n_train / n_eq if own and n_eq > 0 else np.nan,
        "amplification_rerun_lo": _amplification_of(rerun_hi, n_cells, n_train),
        "amplification_rerun_hi": _amplification_of(rerun_lo, n_cells, n_train),
        **robust,
    }


def replica_asymptotes(group: pd.DataFrame, n_cells: int) -> np.ndarray:
    """Each replica's asymptotic MSE, in the rows' order: its MSE at the group's largest
    n_generated with the finite-sample term removed (`quantiles.asymptotic_mse`)."""
    n_max = group["n_generated"].max()
    last = group[group["n_generated"] == n_max]
    return qt.asymptotic_mse(last["mse"].to_numpy(float), n_cells, float(n_max))


def saturation_point(rows: list[dict], tolerance: float) -> float:
    """Smallest n_generated whose amplification is within ``tolerance`` of the asymptote.

    ``rows`` are one group's summary rows (finite n_generated, then the asymptote). NaN when
    there is no finite asymptote or no count reaches it.
    """
    finite = sorted(
        (r for r in rows if np.isfinite(r["n_generated"])), key=lambda r: r["n_generated"]
    )
    asym = [r for r in rows if np.isinf(r["n_generated"])]
    if not asym or not np.isfinite(asym[0]["amplification"]) or asym[0]["amplification"] <= 0:
        return float("nan")
    target = asym[0]["amplification"]
    for r in finite:
        if abs(r["amplification"] - target) <= tolerance * target:
            return float(r["n_generated"])
    return float("nan")


def table_options(agg: dict) -> dict:
    """`amplification_table`'s keyword arguments from a config's ``aggregate`` block ``agg`` (the
    bootstrap, interval and collapse settings every amplification-like table shares)."""
    return {
        "n_boot": agg["bootstrap"],
        "interval": agg["interval"],
        "seed": agg["seed"],
        "collapse_spread": agg["collapse_spread"],
        "saturation": agg["saturation"],
    }


def amplification_table(
    mse: pd.DataFrame,
    replicas: pd.DataFrame,
    *,
    n_boot: int = 1000,
    interval: float = 0.68,
    seed: int = 0,
    collapse_spread: float = 0.5,
    saturation: float = 0.1,
    robust_cl: float = 0.95,
    pass_probabilities: Sequence[float] = rb.PASS_PROBABILITIES,
) -> pd.DataFrame:
    """The amplification table (`amplification_columns`) from the long MSE table.

    Each group gets its own bootstrap stream derived from ``seed`` and the group's key, so a
    row does not change when other generators or binnings are added to the study.
    """
    setting = ["target", "dim", "n_train", "generator"]
    failed = replicas[replicas["status"] != "done"].groupby(setting).size().to_dict()
    spread = pd.to_numeric(replicas["spread_ratio"], errors="coerce")
    collapsed = (
        replicas[(replicas["status"] == "done") & (spread < collapse_spread)]
        .groupby(setting)
        .size()
        .to_dict()
    )
    rows = []
    for key, group in mse.groupby(GROUP, sort=True):
        target, dim, n_train, generator, _, _, n_cells = key
        counts = {
            "n_failed": int(failed.get((target, dim, n_train, generator), 0)),
            "n_collapsed": int(collapsed.get((target, dim, n_train, generator), 0)),
        }
        rng = np.random.default_rng([seed, stable_id(repr(tuple(map(str, key))))])
        if group["n_generated"].isna().all():  # exact generator
            rows.append(
                _summary_row(
                    key,
                    np.nan,
                    group["mse"].to_numpy(),
                    counts,
                    n_boot,
                    interval,
                    rng,
                    robust_cl,
                    pass_probabilities,
                )
            )
            continue
        group_rows = [
            _summary_row(
                key,
                float(n),
                sub["mse"].to_numpy(),
                counts,
                n_boot,
                interval,
                rng,
                robust_cl,
                pass_probabilities,
            )
            for n, sub in group.groupby("n_generated", sort=True)
        ]
        if generator not in NO_ASYMPTOTE:
            asym = replica_asymptotes(group, n_cells)
            group_rows.append(
                _summary_row(
                    key, np.inf, asym, counts, n_boot, interval, rng, robust_cl, pass_probabilities
                )
            )
            n_sat = saturation_point(group_rows, saturation)
            for r in group_rows:
                r["n_saturation"] = n_sat
        rows += group_rows
    return pd.DataFrame(rows, columns=amplification_columns(pass_probabilities))


def format_counts(values: pd.Series) -> pd.Series:
    """n_generated as text: integers, 'inf' for the asymptote, '' for exact generators."""

    def fmt(v):
        if pd.isna(v):
            return ""
        if np.isinf(v):
            return "inf"
        return str(int(v))

    return values.map(fmt)


def read_amplification(path: str | Path) -> pd.DataFrame:
    """Read tables/amplification.csv back, checking its columns (n_generated: float, inf ok)."""
    path = Path(path)
    try:
        table = pd.read_csv(
            path, dtype={"binning": str, "generator": str, "target": str}, keep_default_na=True
        )
    except FileNotFoundError:
        raise ResultsError(f"{path}: missing") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ResultsError(f"{path}: not a readable CSV table ({exc})") from None
    if list(table.columns[: len(CONTRACT_COLUMNS)]) != CONTRACT_COLUMNS:
        raise ResultsError(
            f"{path}: the first columns must be {CONTRACT_COLUMNS}, got {list(table.columns)}"
        )
    table["n_generated"] = pd.to_numeric(table["n_generated"], errors="raise")
    return table
