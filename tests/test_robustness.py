"""The strict chi-square rule, the realised chi-square check and the strictest binning."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2, ncx2

from ganplify import generators
from ganplify.analysis import robustness as rb
from ganplify.analysis.amplification import REPLICA_COLUMNS, amplification_table
from ganplify.cli import main as ganplify_main
from ganplify.metrics import quantiles as qt
from ganplify.metrics.evaluation import MSE_COLUMNS
from ganplify.results.checks import check_amplification
from ganplify.results.io import recording
from ganplify.study import config as cfg
from ganplify.study import jobs
from ganplify.study import plan as study

CL = 0.95
# generators chosen by their capabilities, never by name
TRUTH = next(n for n, g in generators.REGISTRY.items() if g.truth_sample)
SAMPLER = next(
    n for n, g in generators.REGISTRY.items() if not (g.exact or g.neural or g.truth_sample)
)
EXACT = next(n for n, g in generators.REGISTRY.items() if g.exact)
TOY = "toy_model"  # a synthetic generator in tables built here


def alternating(k: int, n_equiv: float) -> np.ndarray:
    """Cell probabilities 1/K +- delta whose MSE is worth ``n_equiv`` truth events."""
    mse_inf = qt.sample_variance_term(k) / n_equiv
    return 1 / k + np.sqrt(mse_inf) * np.where(np.arange(k) % 2 == 0, 1.0, -1.0)


def prefix_rows(generator, p, grid, replicas, rng, n_train=100):
    """tables/mse.csv rows of ``replicas`` event streams from cell probabilities ``p``, with
    the MSE of each stream's first n events for n in ``grid`` (as the evaluation records)."""
    k = len(p)
    counts = np.zeros((replicas, k))
    rows, prev = [], 0
    for n in grid:
        counts += rng.multinomial(n - prev, p, size=replicas)
        prev = n
        for seed, m in enumerate(qt.mse_from_counts(counts)):
            rows.append(("gaussian_shell", 1, n_train, generator, seed, "x", k, k, n, m))
    return rows


def mse_frame(rows) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=MSE_COLUMNS)
    df["n_generated"] = df["n_generated"].astype("Int64")
    return df


def done(generator, replicas, n_train=100) -> pd.DataFrame:
    return pd.DataFrame(
        [
            ("gaussian_shell", 1, n_train, generator, "h", s, "done", "", 1.0, "")
            for s in range(replicas)
        ],
        columns=REPLICA_COLUMNS,
    )


def test_realised_chi2_is_the_pearson_statistic_of_the_histogram():
    rng = np.random.default_rng(5)
    counts = rng.multinomial(300, alternating(20, 100.0), size=50)
    pearson = ((counts - 300 / 20) ** 2 / (300 / 20)).sum(axis=1)
    np.testing.assert_allclose(
        rb.realised_chi2(qt.mse_from_counts(counts), 20, 300), pearson, rtol=1e-12
    )


@pytest.mark.parametrize(("k", "n_equiv"), [(10, 2000.0), (50, 20000.0)])
def test_strict_rule_against_a_simulation(k, n_equiv):
    """Histograms of N_robust(pi) events of a generator worth N_equiv pass the test at 95% in
    a fraction pi of 4000 simulated histograms, within 3 binomial standard errors (0.024 at
    pi = 0.5, 0.014 at 0.9). N_equiv is chosen so that N/K >= 28, where the noncentral
    approximation holds to 0.0015 (4e5 histograms; in sparse cells it does not: at K = 50,
    N = 35 they pass 0.881, not 0.900). At the expected-chi-square rule's N they pass only
    about half the time."""
    rng = np.random.default_rng(100 + k)
    p = alternating(k, n_equiv)
    mse_inf = qt.mse(p)
    crit = rb.critical_value(k, CL)
    assert crit == pytest.approx(chi2.ppf(CL, k - 1))
    cases = [(pi, rb.n_robust(mse_inf, k, CL, pi)) for pi in (0.5, 0.9)]
    cases.append(
        (float(ncx2.cdf(crit, k - 1, crit - (k - 1))), n_equiv * rb.expected_rule_factor(k, CL))
    )
    assert 0.5 < cases[-1][0] < 0.56
    for pi, n_rob in cases:
        n = int(np.rint(n_rob))
        counts = rng.multinomial(n, p, size=4000)
        passed = rb.realised_chi2(qt.mse_from_counts(counts), k, n) <= crit
        predicted = rb.pass_probability(rb.noncentrality(mse_inf, k, n), k, CL)
        assert predicted == pytest.approx(pi, abs=0.01)  # N rounded to an integer
        assert abs(passed.mean() - predicted) < 3 * np.sqrt(pi * (1 - pi) / len(passed))


def test_the_truth_sample_passes_at_the_confidence_level():
    """The control: 4000 replicas of N truth-sampled events pass at 95% within 3 binomial
    standard errors (0.010), for 10 and 50 cells, 100 and 1000 events; the formula gives
    exactly CL (MSE_inf = 0 by definition, not estimated)."""
    rng = np.random.default_rng(7)
    rows = []
    for k in (10, 50):
        rows += prefix_rows(TRUTH, np.full(k, 1 / k), [100, 1000], 4000, rng)
    table = rb.realised_table(mse_frame(rows), CL)
    assert list(table.columns) == rb.REALISED_COLUMNS and len(table) == 4
    assert (table["n_replicas"] == 4000).all()
    np.testing.assert_allclose(table["pass_expected"], CL, rtol=1e-12)
    np.testing.assert_allclose(table["pass_at_mean_mse"], CL, rtol=1e-12)
    np.testing.assert_allclose(table["pass_fraction_err"], np.sqrt(CL * (1 - CL) / 4000))
    z = (table["pass_fraction"] - CL) / table["pass_fraction_err"]
    assert (z.abs() < 3).all(), table[["n_cells", "n_generated", "pass_fraction"]]


def test_realised_fractions_agree_with_the_formula_and_n_robust():
    """A homogeneous toy generator (N_equiv = 2000 in 10 cells), 4000 replicas, events at
    N_robust(0.9) = 312, N_robust(0.5) = 1958 and 10^6 (its asymptote): the realised pass
    fractions match the formula's within 3 binomial standard errors, and the formula, fed each
    replica's asymptotic MSE estimate, matches the exact one (the estimates' noise at 10^6
    events moves lambda by ~1e-3 relative). The asymptotic row's n_robust is where
    pass_at_mean_mse = pi."""
    rng = np.random.default_rng(3)
    k, p = 10, alternating(10, 2000.0)
    mse_inf = qt.mse(p)
    n90, n50 = (int(np.rint(rb.n_robust(mse_inf, k, CL, pi))) for pi in (0.9, 0.5))
    mse = mse_frame(prefix_rows(TOY, p, [n90, n50, 10**6], 4000, rng))
    table = rb.realised_table(mse, CL, truth=())
    finite = table[table["n_generated"] < 10**6]
    exact = rb.pass_probability(rb.noncentrality(mse_inf, k, finite["n_generated"]), k, CL)
    np.testing.assert_allclose(finite["pass_expected"], exact, atol=1e-3)
    np.testing.assert_allclose(finite["pass_at_mean_mse"], exact, atol=1e-3)
    z = (finite["pass_fraction"] - finite["pass_expected"]) / finite["pass_fraction_err"]
    assert (z.abs() < 3).all(), finite
    assert table["n_pass"].iloc[-1] == 0  # lambda = 4500 at 10^6 events
    amp = amplification_table(mse, done(TOY, 4000), n_boot=100)
    asym = amp[np.isinf(amp["n_generated"])].iloc[0]
    assert asym["n_robust_90"] == pytest.approx(n90, rel=0.01)
    assert asym["n_robust_50"] == pytest.approx(n50, rel=0.01)


def test_robust_is_never_above_plain_from_ten_cells_on():
    """robust / plain = lambda*(K) / (K - 1): at pi = 0.9 below 1 for every K; at pi = 0.5
    above 1 exactly for K <= 9, below from K = 10 (every binning of the quick default)."""
    ks = np.array([*range(2, 301), 343, 1024, 7776])
    f50, f90 = rb.strict_factor(ks, CL, 0.5), rb.strict_factor(ks, CL, 0.9)
    assert (f90 < 1).all() and (f90 < f50).all()
    assert list(ks[f50 > 1]) == list(range(2, 10))
    assert np.all(np.diff(f50) < 0) and np.all(np.diff(f90) < 0)  # stricter as cells get finer


def test_robust_columns_share_the_plain_statistic():
    """Skewed per-replica MSEs (log-normal, sigma 1.5) for an exact and a sampling toy in
    binnings of 10 to 7776 cells: on every row the robust amplification is the plain one times
    the rule's factor, so never above it; the former measure (median of per-replica N_equiv
    times the expected-rule factor) came out above the plain one here."""
    rng = np.random.default_rng(11)
    rows = []
    for k in (10, 20, 49, 50, 7776):
        base = qt.sample_variance_term(k) / 2000.0
        scale = np.exp(1.5 * rng.standard_normal(30))
        for s in range(30):
            rows.append(
                ("gaussian_shell", 1, 100, "toy_exact", s, "x", k, k, None, base * scale[s])
            )
            for n in (1000, 10**5):
                m = base * scale[s] * (1 - 1 / n) + qt.expected_sample_mse(k, n)
                rows.append(("gaussian_shell", 1, 100, TOY, s, "x", k, k, n, m))
    mse = mse_frame(rows)
    reps = pd.concat([done("toy_exact", 30), done(TOY, 30)])
    table = amplification_table(mse, reps, n_boot=100)
    own = table[~np.isfinite(table["n_generated"])]
    assert len(own) == 10
    assert table.loc[np.isfinite(table["n_generated"]), "n_robust_50"].isna().all()
    for pi in (0.5, 0.9):
        robust = own[rb.column("amplification_robust", pi)]
        factor = rb.strict_factor(own["n_cells"].to_numpy(), CL, pi)
        np.testing.assert_allclose(robust, own["amplification"] * factor, rtol=1e-12)
        assert (robust <= own["amplification"]).all()
    exact10 = own[(own["generator"] == "toy_exact") & (own["n_cells"] == 10)].iloc[0]
    per_replica = mse[(mse["generator"] == "toy_exact") & (mse["n_cells"] == 10)]["mse"]
    former = np.median(qt.n_equiv(per_replica.to_numpy(), 10)) * rb.expected_rule_factor(10, CL)
    assert former > exact10["n_equiv"] > exact10["n_robust_50"]


def test_docstrings_quote_the_code():
    """Every number the rules' docstrings quote is what the code gives, to the digits quoted
    (the former docstring said 0.04 at K = 7776 where the code gave 0.0265)."""

    def quoted(value: float, text: str, doc: str) -> None:
        digits = len(text.split(".")[1])
        assert f"{float(value):.{digits}f}" == text and re.search(rf"\b{text}\b", doc), text

    doc = rb.expected_rule_factor.__doc__
    for k, factor, passing in (
        (10, "0.880", "0.550"),
        (50, "0.354", "0.525"),
        (7776, "0.0265", "0.502"),
    ):
        c = rb.critical_value(k, CL)
        quoted(rb.expected_rule_factor(k, CL), factor, doc)
        quoted(ncx2.cdf(c, k - 1, c - (k - 1)), passing, doc)
    doc = rb.strict_factor.__doc__
    for k, pi, text in (
        (10, 0.9, "0.156"),
        (50, 0.9, "0.070"),
        (7776, 0.9, "0.0058"),
        (10, 0.5, "0.979"),
        (50, 0.5, "0.370"),
        (7776, 0.5, "0.0266"),
        (9, 0.5, "1.05"),
        (7, 0.5, "1.25"),
    ):
        quoted(rb.strict_factor(k, CL, pi), text, doc)


def test_pass_probability_at_most_the_confidence_level():
    assert rb.strict_factor(10, CL, CL) == 0.0
    assert np.isinf(rb.n_robust(0.0, 10, CL, CL)) and rb.n_robust(1e-4, 10, CL, CL) == 0.0
    with pytest.raises(ValueError, match="confidence level"):
        rb.strict_factor(10, CL, 0.96)
    assert rb.column("amplification_robust", 0.9) == "amplification_robust_90"
    assert rb.column("n_robust", 0.925) == "n_robust_92p5"


def test_limits_table_names_the_strictest_binning():
    """Plain N_equiv 800 at 10 quantiles, 1000 at 20 and 50: the plain measure is limited by
    the coarse binning, the strict one by the finest (0.370 x 1000 < 0.979 x 800)."""
    worth = {10: 800.0, 20: 1000.0, 50: 1000.0}
    rows = [
        ("gaussian_shell", 1, 100, "toy_exact", s, "x", k, k, None, qt.sample_variance_term(k) / n)
        for k, n in worth.items()
        for s in range(3)
    ]
    table = amplification_table(mse_frame(rows), done("toy_exact", 3), n_boot=100)
    limits = rb.limits_table(table, (0.5, 0.9))
    assert list(limits.columns) == rb.LIMIT_COLUMNS and len(limits) == 2
    assert list(limits["pass_probability"]) == [0.5, 0.9]
    assert (limits["n_quantiles"] == 50).all() and (limits["n_binnings"] == 3).all()
    np.testing.assert_allclose(
        limits["n_robust"], [1000 * rb.strict_factor(50, CL, pi) for pi in (0.5, 0.9)]
    )
    np.testing.assert_allclose(limits["amplification"], 10.0)


def test_aggregate_writes_the_tables_draws_the_figures_and_verifies(tmp_path):
    config = cfg.validate(
        {
            "study": "robust",
            "target": "gaussian_shell",
            "seeds": {"first": 0, "count": 4},
            "replicas_per_job": 4,
            "defaults": {
                "generators": [TRUTH, SAMPLER, EXACT],
                "n_train": [50],
                "n_generated": [100, 1000],
                "sample_sizes": [50, 100],
            },
            "dims": {1: {"quantiles": [5, 10]}},
        }
    )
    assert config["aggregate"]["pass_probability"] == list(rb.PASS_PROBABILITIES)
    res = tmp_path / "results" / "robust"
    assert (
        ganplify_main(
            ["write-config", "--json", json.dumps(config), "--output", str(res / "config.yaml")]
        )
        == 0
    )
    with recording(res):  # as the workflow's jobs do (ganplify baseline)
        for chunk in study.plan(config):
            jobs.run_baseline(chunk.spec(), res, res / chunk.evaluated_flag)
    assert ganplify_main(["aggregate", "--results", str(res)]) == 0
    realised = rb.read_table(res / "tables" / "robustness.csv", rb.REALISED_COLUMNS)
    # sampled generators only: 2 binnings x 2 counts each
    assert realised.groupby("generator").size().to_dict() == {TRUTH: 4, SAMPLER: 4}
    limits = rb.read_table(res / "tables" / "robustness_limits.csv", rb.LIMIT_COLUMNS)
    assert sorted(limits["generator"]) == sorted([SAMPLER, EXACT] * 2)
    for name in ("chi2_pass", "robustness"):
        stem = res / "figures" / name
        assert ganplify_main(["plot", name, "--results", str(res), "--output", str(stem)]) == 0
        assert stem.with_suffix(".png").is_file() and stem.with_suffix(".pdf").is_file()
    assert ganplify_main(["manifest", "--results", str(res)]) == 0
    assert ganplify_main(["verify", str(res)]) == 0
    # a robust column that is not the plain one times the rule's factor is caught
    path = res / "tables" / "amplification.csv"
    table = pd.read_csv(path)
    table["amplification_robust_90"] *= 1.5
    table.to_csv(path, index=False)
    assert any("amplification_robust_90" in p for p in check_amplification(res))
