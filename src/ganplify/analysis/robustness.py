"""The Matchev-Shyamsundar robustness test done strictly: the chi-square rule and its check.

Matchev and Shyamsundar ask that N_required generated events be consistent with the truth
within the errors of N_required events: a chi-square test of their histogram, strict as
N_required grows. For K equiprobable cells the Pearson chi-square of n events against the truth
is exactly n K^2 MSE_n, with MSE_n the quantile MSE of their histogram (`realised_chi2`). For a
generator whose own (asymptotic or exact) MSE is MSE_inf it is, to a good approximation,
noncentral chi-square with K - 1 degrees of freedom and noncentrality lambda = n K^2 MSE_inf
(to ~0.002 in pass probability with n/K >= 28; in sparse cells, n < K, off by up to ~0.02).

The strict rule (`strict_factor`, `n_robust`): N events pass when

    P(chi2_{K-1}(lambda = N K^2 MSE_inf) <= c_CL) >= pi,

c_CL the critical value at confidence level CL and pi the required pass probability
(pi <= CL: a perfect generator, lambda = 0, passes with probability exactly CL). N_robust is
the largest such N. With N_equiv = (1/K)(1 - 1/K)/MSE_inf, lambda = N (K - 1)/N_equiv, so
N_robust / N_equiv = lambda*(K, CL, pi) / (K - 1), a function of K, CL and pi alone.

Which MSE_inf: the replica mean, the statistic of the plain amplification, so that the two
columns differ only by that factor (robust <= plain wherever it is <= 1) and the mean's
bootstrap interval carries over. Averaging P(pass) over replicas instead would feed each
replica's own estimation noise into a nonlinear function (a replica's asymptotic MSE estimate
is unbiased only on average and can be negative); that per-replica reading is what the
realised check measures directly (`realised_table`: pass_expected next to pass_fraction).

The realised check (`realised_table`): for every replica and every n_generated evaluated, the
Pearson chi-square of its generated histogram from its stored prefix MSE, and the fraction of
replicas that pass at c_CL. The truth sample passes with probability CL (its MSE_inf is exactly
0): the control. `limits_table` takes the strictest reading, the minimum of N_robust over a
setting's binnings, and names the binning that limits it.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from ganplify import generators
from ganplify.metrics import quantiles as qt
from ganplify.results import io as results_io

# The default required pass probabilities (aggregate.pass_probability).
PASS_PROBABILITIES = (0.5, 0.9)

SETTING = ["target", "dim", "n_train", "generator"]
BINNING = ["binning", "n_quantiles", "n_cells"]

# tables/robustness.csv: the realised check, one row per setting x binning x n_generated of the
# generators evaluated on generated (or, for the truth sample, sampled) events.
REALISED_COLUMNS = [
    *SETTING,
    *BINNING,
    "n_generated",
    "n_replicas",
    "chi2_critical",
    "chi2_mean",
    "n_pass",
    "pass_fraction",
    "pass_expected",
    "pass_fraction_err",
    "pass_at_mean_mse",
]

# tables/robustness_limits.csv: per setting and pass probability, the binning with the
# smallest N_robust among the generator's own (asymptotic or exact) rows.
LIMIT_COLUMNS = [
    *SETTING,
    "n_generated",
    "pass_probability",
    *BINNING,
    "n_binnings",
    "n_equiv",
    "amplification",
    "n_robust",
    "amplification_robust",
]


# --------------------------------------------------------------------------- the chi-square rule


def critical_value(n_cells: int | np.ndarray, cl: float) -> np.ndarray:
    """c_CL: the ``cl`` quantile of a chi-square with K - 1 degrees of freedom."""
    from scipy.stats import chi2

    return chi2.ppf(cl, np.asarray(n_cells, dtype=np.float64) - 1.0)


def noncentrality(
    mse_inf: np.ndarray, n_cells: int | np.ndarray, n: float | np.ndarray
) -> np.ndarray:
    """lambda = n K^2 max(MSE_inf, 0): the chi-square's noncentrality for n events.

    A negative MSE_inf (a noisy asymptotic estimate) is clipped at 0, the truth's value.
    """
    k = np.asarray(n_cells, dtype=np.float64)
    return np.asarray(n, dtype=np.float64) * k * k * np.maximum(np.asarray(mse_inf), 0.0)


def realised_chi2(mse: np.ndarray, n_cells: int | np.ndarray, n: float | np.ndarray) -> np.ndarray:
    """Pearson chi-square of a histogram of n events against K equiprobable truth cells.

    sum_j (n_j - n/K)^2 / (n/K) = n K^2 MSE exactly, MSE the histogram's quantile MSE.
    """
    k = np.asarray(n_cells, dtype=np.float64)
    return np.asarray(n, dtype=np.float64) * k * k * np.asarray(mse, dtype=np.float64)


def pass_probability(lam: np.ndarray, n_cells: int | np.ndarray, cl: float) -> np.ndarray:
    """P(chi2_{K-1}(lam) <= c_CL): the probability that a histogram passes the test.

    CL exactly at ``lam`` = 0 (the truth); falls monotonically as ``lam`` grows.
    """
    from scipy.stats import ncx2

    k = np.asarray(n_cells, dtype=np.float64)
    return ncx2.cdf(critical_value(k, cl), k - 1.0, np.maximum(np.asarray(lam), 0.0))


@lru_cache(maxsize=4096)
def _critical_noncentrality(n_cells: int, cl: float, pi: float) -> float:
    from scipy.optimize import brentq

    if not 0.0 < pi <= cl < 1.0:
        raise ValueError(f"need 0 < pass probability {pi} <= confidence level {cl} < 1")
    if pi == cl:
        return 0.0
    c = float(critical_value(n_cells, cl))
    hi = 1.0
    while pass_probability(hi, n_cells, cl) > pi:  # bracket the root; P falls with lambda
        hi *= 2.0
    return float(
        brentq(
            lambda lam: pass_probability(lam, n_cells, cl) - pi,
            0.0,
            hi,
            xtol=1e-10 * max(c, 1.0),
            rtol=1e-12,
        )
    )


def critical_noncentrality(n_cells: int | np.ndarray, cl: float, pi: float) -> np.ndarray:
    """lambda*: the noncentrality at which the pass probability has fallen to ``pi``.

    Raises
    ------
    ValueError
        Unless 0 < ``pi`` <= ``cl`` < 1 (a perfect generator passes with probability CL).
    """
    k = np.asarray(n_cells)
    out = [_critical_noncentrality(int(v), float(cl), float(pi)) for v in k.ravel()]
    return np.asarray(out, dtype=np.float64).reshape(k.shape)


def strict_factor(n_cells: int | np.ndarray, cl: float, pi: float) -> np.ndarray:
    """N_robust / N_equiv = lambda*(K, CL, pi) / (K - 1) under the strict rule.

    At CL = 95%: 0.156 (K = 10), 0.070 (K = 50), 0.0058 (K = 7776) for pi = 0.9; for
    pi = 0.5, 0.979 (K = 10), 0.370 (K = 50), 0.0266 (K = 7776), and above 1 for K <= 9
    (1.05 at K = 9, 1.25 at K = 7): with so few cells a generator may get more events than it
    is worth and still pass half the time. For pi = 0.9 it is below 1 for every K >= 2.
    """
    return critical_noncentrality(n_cells, cl, pi) / (np.asarray(n_cells, np.float64) - 1.0)


def expected_rule_factor(n_cells: int | np.ndarray, cl: float) -> np.ndarray:
    """N / N_equiv at which the expected chi-square reaches c_CL (the former rule; a reference).

    N events of a generator worth N_equiv have an expected chi-square of about
    (K - 1)(1 + N / N_equiv); it reaches c_CL at N = N_equiv (c_CL / (K - 1) - 1): 0.880 N_equiv
    for K = 10 at 95%, 0.354 for K = 50, 0.0265 for K = 7776. The realised chi-square there is
    noncentral with lambda = c_CL - (K - 1), so those events pass only about half the time
    (0.550, 0.525, 0.502), where a truth sample passes 95% of the time: `strict_factor` is the
    rule that fixes the pass probability instead.
    """
    dof = np.asarray(n_cells, dtype=np.float64) - 1.0
    return critical_value(n_cells, cl) / dof - 1.0


def n_robust(mse_mean: np.ndarray, n_cells: int | np.ndarray, cl: float, pi: float) -> np.ndarray:
    """N_robust = N_equiv(MSE) lambda* / (K - 1): the largest N that passes with probability
    ``pi`` at confidence level ``cl``, for a generator whose own MSE is ``mse_mean``.

    Infinite where N_equiv is (an MSE <= 0 or at round-off: such a generator passes with
    probability CL >= pi at any N).
    """
    n_eq = qt.n_equiv(mse_mean, n_cells)
    with np.errstate(invalid="ignore"):
        return np.where(np.isinf(n_eq), np.inf, n_eq * strict_factor(n_cells, cl, pi))


def column(name: str, pi: float) -> str:
    """The amplification table's column ``name`` at pass probability ``pi``:
    ``amplification_robust`` at 0.9 is ``amplification_robust_90`` (0.925: ``..._92p5``)."""
    return f"{name}_{round(100 * pi, 6):g}".replace(".", "p")


def robust_columns(pass_probabilities: Sequence[float]) -> list[str]:
    """n_robust_<pct>, amplification_robust_<pct> for each pass probability, in order."""
    return [
        column(c, pi) for pi in pass_probabilities for c in ("n_robust", "amplification_robust")
    ]


# --------------------------------------------------------------------------- the realised check


def replica_asymptote(mse: pd.DataFrame, truth: Collection[str]) -> pd.Series:
    """Each row's replica MSE_inf: its asymptotic estimate at the replica's largest n_generated
    (`quantiles.asymptotic_mse`), and exactly 0 for generators in ``truth``.

    ``mse`` holds sampled rows only (tables/mse.csv with n_generated set).
    """
    key = [*SETTING, *BINNING, "seed"]
    n = mse["n_generated"].astype(float)
    last = n == n.groupby([mse[c] for c in key]).transform("max")
    asym = mse[last].assign(
        mse_inf=qt.asymptotic_mse(
            mse.loc[last, "mse"].to_numpy(float),
            mse.loc[last, "n_cells"].to_numpy(float),
            n[last].to_numpy(),
        )
    )
    out = mse[key].merge(asym[[*key, "mse_inf"]], on=key, how="left")["mse_inf"]
    out.index = mse.index
    return out.where(~mse["generator"].isin(truth), 0.0)


def realised_table(
    mse: pd.DataFrame, cl: float = 0.95, truth: Collection[str] | None = None
) -> pd.DataFrame:
    """The realised chi-square check (`REALISED_COLUMNS`) from tables/mse.csv.

    Per setting, binning and n_generated N, over the R replicas: the realised chi-square
    N K^2 MSE_N of each replica's histogram, its mean (``chi2_mean``), the number and fraction
    that pass at c_CL (``n_pass``, ``pass_fraction``); ``pass_expected``, the mean over
    replicas of P(pass) at each replica's lambda = N K^2 MSE_inf,r (what ``pass_fraction``
    estimates; MSE_inf,r from the replica's own largest n_generated, so near that N its noise
    blurs it; exactly CL for the truth sample) and ``pass_fraction_err``, the binomial standard
    error of ``pass_fraction`` about it, sqrt(sum_r P_r (1 - P_r)) / R; ``pass_at_mean_mse``,
    P(pass) at the replica-mean lambda, the reading behind n_robust (it falls to pi at
    N = N_robust). Exact generators (no generated events) have no rows.

    Parameters
    ----------
    mse : DataFrame
        tables/mse.csv (`evaluation.MSE_COLUMNS`).
    cl : float
        Confidence level of the test.
    truth : collection of str, optional
        Generators that sample the truth itself (default: those with the `truth_sample` capability).
    """
    truth = frozenset(generators.having("truth_sample")) if truth is None else truth
    sampled = mse[mse["n_generated"].notna()]
    if sampled.empty:
        return pd.DataFrame(columns=REALISED_COLUMNS)
    n = sampled["n_generated"].to_numpy(float)
    k = sampled["n_cells"].to_numpy(float)
    mse_inf = replica_asymptote(sampled, truth).to_numpy(float)
    p = pass_probability(noncentrality(mse_inf, k, n), k, cl)
    crit = critical_value(k, cl)
    stat = realised_chi2(sampled["mse"].to_numpy(float), k, n)
    rows = sampled[[*SETTING, *BINNING, "n_generated"]].assign(
        chi2=stat, passed=stat <= crit, p=p, pq=p * (1.0 - p), mse_inf=mse_inf
    )
    out = (
        rows.groupby([*SETTING, *BINNING, "n_generated"], sort=True)
        .agg(
            n_replicas=("chi2", "size"),
            chi2_mean=("chi2", "mean"),
            n_pass=("passed", "sum"),
            pass_expected=("p", "mean"),
            pq=("pq", "sum"),
            mse_inf=("mse_inf", "mean"),
        )
        .reset_index()
    )
    out["n_generated"] = out["n_generated"].astype("Int64")
    n_out = out["n_generated"].to_numpy(float)
    k_out = out["n_cells"].to_numpy(float)
    out["chi2_critical"] = critical_value(k_out, cl)
    out["pass_fraction"] = out["n_pass"] / out["n_replicas"]
    out["pass_fraction_err"] = np.sqrt(out["pq"]) / out["n_replicas"]
    out["pass_at_mean_mse"] = pass_probability(
        noncentrality(out["mse_inf"].to_numpy(float), k_out, n_out), k_out, cl
    )
    return out[REALISED_COLUMNS]


# --------------------------------------------------------------------------- every distribution


def limits_table(
    amplification: pd.DataFrame, pass_probabilities: Sequence[float] = PASS_PROBABILITIES
) -> pd.DataFrame:
    """The strictest reading (`LIMIT_COLUMNS`): per setting and pass probability, the binning
    whose N_robust is smallest, among the generator's own (asymptotic or exact) rows.

    All of a setting's histograms passing together is stricter still (the probability of all
    passing is at most the smallest one's): this minimum is an upper bound on that N.

    Parameters
    ----------
    amplification : DataFrame
        The amplification table with its robust columns (`robust_columns`), n_generated as
        numbers (inf for the asymptote, NaN for exact generators).
    pass_probabilities : sequence of float
        The pass probabilities of its robust columns.
    """
    own = amplification[~np.isfinite(amplification["n_generated"].astype(float))]
    rows = []
    for _, group in own.groupby(SETTING, sort=True):
        for pi in pass_probabilities:
            n_col = column("n_robust", pi)
            values = group[n_col].astype(float)
            if values.isna().all():
                continue
            best = group.loc[values.idxmin()]
            rows.append(
                {
                    **{c: best[c] for c in [*SETTING, "n_generated", *BINNING]},
                    "pass_probability": pi,
                    "n_binnings": len(group),
                    "n_equiv": best["n_equiv"],
                    "amplification": best["amplification"],
                    "n_robust": best[n_col],
                    "amplification_robust": best[column("amplification_robust", pi)],
                }
            )
    return pd.DataFrame(rows, columns=LIMIT_COLUMNS)


def read_table(path: str | Path, columns: Sequence[str]) -> pd.DataFrame:
    """Read tables/robustness.csv or tables/robustness_limits.csv back, checking its columns
    (n_generated: a number, inf for the asymptote, NaN for exact generators)."""
    table = results_io.read_table(path, columns)
    table["n_generated"] = pd.to_numeric(table["n_generated"], errors="raise")
    return table
