"""Aggregation into the amplification table: columns, failures, asymptote, intervals."""

import numpy as np
import pandas as pd
import pytest

from ganplify.analysis.amplification import (
    AMPLIFICATION_COLUMNS,
    CONTRACT_COLUMNS,
    REPLICA_COLUMNS,
    amplification_table,
    format_counts,
)
from ganplify.metrics import quantiles as qt
from ganplify.metrics.evaluation import MSE_COLUMNS


def synthetic(generator, seeds, n_grid, mse_of, k=10, n_train=100):
    rows = []
    for s in seeds:
        for n in n_grid:
            rows.append(("gaussian_shell", 1, n_train, generator, s, "x", k, k, n, mse_of(s, n)))
    df = pd.DataFrame(rows, columns=MSE_COLUMNS)
    df["n_generated"] = df["n_generated"].astype("Int64")
    return df


def replicas_table(generator, seeds, failed=(), spread=None):
    spread = spread or {}
    rows = [
        ("gaussian_shell", 1, 100, generator, "h", s, "done", "", spread.get(s, 1.0), "")
        for s in seeds
    ]
    rows += [
        ("gaussian_shell", 1, 100, generator, "h", s, "failed", "diverged", np.nan, "")
        for s in failed
    ]
    return pd.DataFrame(rows, columns=REPLICA_COLUMNS)


def test_contract_columns_in_order():
    assert AMPLIFICATION_COLUMNS[: len(CONTRACT_COLUMNS)] == [
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


def test_table_values_failures_and_asymptote():
    rng = np.random.default_rng(0)
    k, n_train = 10, 100
    mse_inf = 5e-5
    # a generator with MSE_n = MSE_inf (1 - 1/n) + c/n plus noise
    values = {
        (s, n): mse_inf * (1 - 1 / n) + qt.expected_sample_mse(k, n) * rng.uniform(0.9, 1.1)
        for s in range(40)
        for n in (100, 1000, 100000)
    }
    mse = synthetic("gan", range(40), (100, 1000, 100000), lambda s, n: values[(s, n)])
    table = amplification_table(
        mse, replicas_table("gan", range(40), failed=[40, 41]), n_boot=500, seed=1
    )
    assert list(table.columns) == AMPLIFICATION_COLUMNS
    assert len(table) == 4 and np.isinf(table["n_generated"].iloc[-1])
    row = table[table["n_generated"] == 1000].iloc[0]
    expect = np.mean([values[(s, 1000)] for s in range(40)])
    assert row["mse_mean"] == pytest.approx(expect)
    assert row["n_equiv"] == pytest.approx(qt.n_equiv(expect, k))
    assert row["amplification"] == pytest.approx(row["n_equiv"] / n_train)
    assert row["n_equiv_lo"] < row["n_equiv"] < row["n_equiv_hi"]
    assert row["n_replicas"] == 40 and row["n_failed"] == 2
    asym = table.iloc[-1]
    corrected = [qt.asymptotic_mse(values[(s, 100000)], k, 100000) for s in range(40)]
    assert asym["mse_mean"] == pytest.approx(np.mean(corrected))
    assert asym["n_equiv"] == pytest.approx(qt.n_equiv(mse_inf, k), rel=0.05)
    assert list(format_counts(table["n_generated"])) == ["100", "1000", "100000", "inf"]
    # amplification at n: A_inf / (1 + A_inf n_train / n) here, so within 10% of A_inf from
    # n >= 9 A_inf n_train, i.e. at 100000 but not at 1000 (A_inf ~ 18)
    assert (table["n_saturation"] == 100000).all()


def test_collapsed_replicas_are_counted_but_kept():
    mse = synthetic("gan", range(10), [1000], lambda s, n: 1e-3 if s < 3 else 1e-4)
    reps = replicas_table("gan", range(10), spread={0: 0.01, 1: 0.2, 2: 0.49, 3: 0.51})
    table = amplification_table(mse, reps, n_boot=200)
    row = table[table["n_generated"] == 1000].iloc[0]
    assert row["n_collapsed"] == 3 and row["n_replicas"] == 10
    assert row["mse_mean"] == pytest.approx((3e-3 + 7e-4) / 10)
    # the median replica is a good one; the mean is pulled down by the collapsed three
    assert row["amplification_median"] == pytest.approx(qt.amplification(1e-4, 10, 100))
    assert row["amplification_median"] > 2 * row["amplification"]


def test_exact_generator_has_one_row_without_n_generated():
    mse = synthetic("fit", range(5), [None], lambda s, n: 1e-4 * (1 + s))
    table = amplification_table(mse, replicas_table("fit", range(5)), n_boot=200)
    assert len(table) == 1 and pd.isna(table["n_generated"].iloc[0])
    assert list(format_counts(table["n_generated"])) == [""]


def test_sample_generator_gets_no_asymptote():
    mse = synthetic("sample", range(5), [100, 200], lambda s, n: 1e-3 / n * (1 + 0.1 * s))
    table = amplification_table(mse, replicas_table("sample", range(5)), n_boot=200)
    assert np.all(np.isfinite(table["n_generated"]))


def test_bootstrap_interval_covers_the_truth_at_its_nominal_rate():
    """Sample baseline, where N_equiv is known exactly (= n): coverage of the 68% interval.

    300 simulated studies of 100 replicas each; the coverage is a binomial proportion with
    standard error sqrt(0.68 * 0.32 / 300) = 0.027, so it must lie within 3 of them of 0.68.
    """
    rng = np.random.default_rng(2024)
    k, n, studies, reps = 10, 200, 300, 100
    covered = 0
    for i in range(studies):
        counts = rng.multinomial(n, np.full(k, 1 / k), size=reps)
        m = qt.mse_from_counts(counts)
        mse = synthetic("sample", range(reps), [n], lambda s, _n, m=m: m[s], k=k)
        row = amplification_table(
            mse, replicas_table("sample", range(reps)), n_boot=1000, seed=i
        ).iloc[0]
        covered += row["n_equiv_lo"] <= n <= row["n_equiv_hi"]
    coverage = covered / studies
    assert abs(coverage - 0.68) < 3 * np.sqrt(0.68 * 0.32 / studies), coverage


def test_bootstrap_is_reproducible_and_independent_of_other_rows():
    a = synthetic("sample", range(20), [100], lambda s, n: 1e-3 * (1 + 0.05 * s))
    b = synthetic("sample", range(20), [100], lambda s, n: 2e-3 * (1 + 0.05 * s), k=20)
    alone = amplification_table(a, replicas_table("sample", range(20)), seed=3)
    both = amplification_table(pd.concat([a, b]), replicas_table("sample", range(20)), seed=3)
    pd.testing.assert_frame_equal(alone, both[both["n_cells"] == 10].reset_index(drop=True))


def test_a_rerun_lands_in_the_rerun_interval_at_its_level():
    """amplification_rerun_lo/hi: where the mean of an independent rerun (new replicas, as a
    chaotic training on other kernels gives) falls. For nearly normal replicas the interval is
    the t-based one; the interval of the mean is too narrow for that question."""
    from ganplify.analysis.amplification import bootstrap_means, rerun_interval

    rng = np.random.default_rng(7)
    n, runs, level = 8, 2000, 0.68
    a = rng.normal(1.0, 0.3, size=(runs, n))
    b = rng.normal(1.0, 0.3, size=(runs, n))
    inside = inside_ci = 0
    for x, y in zip(a, b, strict=True):
        lo, hi = rerun_interval(x, level, rng, draws=1000)
        inside += lo <= y.mean() <= hi
        boots = bootstrap_means(x, 200, rng)
        q_lo, q_hi = np.quantile(boots, [0.16, 0.84])
        inside_ci += q_lo <= y.mean() <= q_hi
    sigma = np.sqrt(level * (1 - level) / runs)
    assert abs(inside / runs - level) < 3 * sigma
    assert inside_ci / runs < level - 10 * sigma  # the mean's interval: about 0.45 here


@pytest.mark.parametrize("n", [8, 16])
def test_the_rerun_interval_holds_for_heavy_tailed_replicas(n):
    """Chaotic GAN replicas' MSEs spread over a factor of 20 (log-MSE sd about 1): there the
    symmetric t interval is too short on the side of a rerun that draws a bad replica, and the
    lognormal predictive keeps its level."""
    from scipy import stats

    from ganplify.analysis.amplification import rerun_interval

    rng = np.random.default_rng(8)
    runs, level, log_sd = 2000, 0.68, 1.5
    a = np.exp(rng.normal(0.0, log_sd, size=(runs, n)))
    b = np.exp(rng.normal(0.0, log_sd, size=(runs, n))).mean(axis=1)
    t = stats.t.ppf(0.5 + 0.5 * level, n - 1)
    inside = inside_t = 0
    for x, y in zip(a, b, strict=True):
        lo, hi = rerun_interval(x, level, rng, draws=1000)
        inside += lo <= y <= hi
        half = t * x.std(ddof=1) * np.sqrt(2.0 / n)
        inside_t += x.mean() - half <= y <= x.mean() + half
    sigma = np.sqrt(level * (1 - level) / runs)
    assert abs(inside / runs - level) < 3 * sigma
    assert inside_t / runs < level - 3 * sigma  # the t interval: about 0.61 here


@pytest.mark.parametrize("n", [8, 100])
def test_the_rerun_interval_holds_for_chi_square_like_replicas(n):
    """A fit's replica MSEs are chi-square-like (log-MSEs with a long lower tail): a lognormal
    model puts a rerun of 100 replicas far above this run (coverage about 0.07); the
    Shapiro-Wilk check hands those rows to the t interval. With 8 replicas the test cannot
    tell, and the lognormal errs on the safe side."""
    from ganplify.analysis.amplification import rerun_interval

    rng = np.random.default_rng(9)
    runs, level = 1000, 0.68
    inside = 0
    for _ in range(runs):
        x, y = rng.chisquare(1, size=n), rng.chisquare(1, size=n).mean()
        lo, hi = rerun_interval(x, level, rng, draws=1000)
        inside += lo <= y <= hi
    sigma = np.sqrt(level * (1 - level) / runs)
    assert inside / runs > level - 3 * sigma
    if n == 100:
        assert inside / runs < level + 3 * sigma


def test_the_rerun_interval_of_non_positive_values_is_the_t_interval():
    """An asymptotic MSE can be negative (finite-sample term removed): no logarithm then."""
    from scipy import stats

    from ganplify.analysis.amplification import rerun_interval

    x = np.array([-1e-4, 2e-4, 5e-4, 1e-4])
    half = stats.t.ppf(0.84, 3) * x.std(ddof=1) * np.sqrt(2.0 / 4)
    lo, hi = rerun_interval(x, 0.68, np.random.default_rng(0))
    assert lo == pytest.approx(x.mean() - half) and hi == pytest.approx(x.mean() + half)
    assert rerun_interval(np.array([3e-4, 3e-4]), 0.68, np.random.default_rng(0)) == (3e-4, 3e-4)
    assert all(np.isnan(rerun_interval(np.array([1e-3]), 0.68, np.random.default_rng(0))))


def test_the_rerun_coverage_benchmark_tells_the_intervals_apart():
    """benchmarks/rerun_coverage.py on a lognormal pool: the rerun interval holds a rerun far
    more often than the interval of the mean (about 0.68 against 0.43 on the GAN's pool)."""
    import importlib.util

    from tests.helpers import REPO

    spec = importlib.util.spec_from_file_location(
        "rerun_coverage", REPO / "benchmarks" / "rerun_coverage.py"
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    pool = {("t", 1, 100, "gan", "x", 10, 10): np.exp(np.random.default_rng(2).normal(0, 1, 48))}
    table = bench.coverage(pool, size=8, splits=200, level=0.68, seed=0)
    assert list(table["n"]) == [8] and table.loc[0, "pool"] == 48
    assert table.loc[0, "rerun"] > table.loc[0, "mean"] + 0.1
