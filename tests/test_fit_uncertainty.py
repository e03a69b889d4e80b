"""The fit's MSE as bias and variance, and its HESSE covariance against its replica spread."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ganplify.analysis import fit_uncertainty as fu
from ganplify.cli import main as ganplify_main
from ganplify.figures import planned
from ganplify.generators.fit import Fit, fit_camel_back, fit_probabilities, fit_radius
from ganplify.metrics import quantiles as qt
from ganplify.results.io import ResultsError, recording, write_json
from ganplify.study import config as cfg
from ganplify.study import data as study_data
from ganplify.study import jobs
from ganplify.study import plan as study
from ganplify.truth.shells import GaussianShell

# --------------------------------------------------------------------------- (a) decomposition


def test_mse_is_bias_plus_variance_exactly():
    rng = np.random.default_rng(1)
    k, reps = 13, 37
    # biased, noisy probabilities: a fixed offset from 1/K plus replica noise, rows sum to 1
    offset = rng.normal(0, 0.01, k)
    p = 1 / k + offset - offset.mean() + rng.normal(0, 0.005, (reps, k))
    p /= p.sum(axis=1, keepdims=True)
    mse_mean, bias2, variance = fu.decompose(p)
    assert mse_mean == pytest.approx(np.mean(qt.mse(p)), rel=1e-14)
    assert bias2 + variance == pytest.approx(mse_mean, rel=1e-13)
    assert variance == pytest.approx(np.mean(np.var(p, axis=0, ddof=0)), rel=1e-14)
    assert bias2 > 0.1 * mse_mean and variance > 0.1 * mse_mean  # both parts exercised


def test_truth_has_neither_bias_nor_variance_and_a_constant_fit_only_bias():
    assert fu.decompose(np.full((5, 10), 0.1)) == pytest.approx((0.0, 0.0, 0.0), abs=1e-30)
    p = np.tile(np.linspace(0.05, 0.15, 10) / np.linspace(0.05, 0.15, 10).sum(), (4, 1))
    mse_mean, bias2, variance = fu.decompose(p)
    assert variance == pytest.approx(0.0, abs=1e-30) and bias2 == pytest.approx(mse_mean)


# --------------------------------------------------------------------------- (b) propagation


def radial_jacobian(edges: np.ndarray, mu: float, sigma: float) -> np.ndarray:
    """Analytic d p_j / d(mu, sigma) of the radial fit's cells, p_j = F(e_j+1) - F(e_j) with
    F(r) = Phi((r - mu)/sigma) - Phi((-r - mu)/sigma)."""
    r = edges[1:-1]  # F is 0 and 1 at the support bounds whatever the parameters
    a, b = stats.norm.pdf((r - mu) / sigma), stats.norm.pdf((r + mu) / sigma)
    d_mu = (b - a) / sigma
    d_sigma = -((r - mu) * a + (r + mu) * b) / sigma**2
    dcdf = np.column_stack([d_mu, d_sigma])
    dcdf = np.vstack([np.zeros(2), dcdf, np.zeros(2)])
    return np.diff(dcdf, axis=0)


def test_jacobian_of_the_radial_fit_is_the_analytic_one():
    dim, q = 2, 10
    target = GaussianShell(dim)
    result = fit_radius(study_data.training_set(target, 300, 4))
    assert result.ok
    theta = np.array([result.values[n] for n in Fit.parameters(dim)])
    errors = np.array([result.errors[n] for n in Fit.parameters(dim)])
    counter = qt.CellCounter(target, [qt.Binning("r", q, dim), qt.Binning("joint", q, dim)])

    def probabilities(t):
        return fit_probabilities(target, dict(zip(Fit.parameters(dim), t, strict=True)), counter)

    jac_r, jac_joint = fu.jacobian(probabilities, theta, fu.STEP * errors)
    exact = radial_jacobian(qt.edges(target, "r", q), *theta)
    np.testing.assert_allclose(jac_r, exact, rtol=1e-5, atol=1e-8 * np.abs(exact).max())
    # joint cells are the radial bins times the known angles' 1/q
    np.testing.assert_allclose(
        jac_joint, np.repeat(exact, q, axis=0) / q, rtol=1e-5, atol=1e-8 * np.abs(exact).max()
    )
    cov = np.array(result.covariance)
    assert fu.propagated_variance(jac_r, cov) == pytest.approx(
        np.trace(exact @ cov @ exact.T) / q, rel=1e-5
    )


def test_propagated_variance_of_a_linear_model_is_its_monte_carlo_variance():
    rng = np.random.default_rng(3)
    k, p = 8, 3
    jac = rng.normal(size=(k, p))
    jac -= jac.mean(axis=0)  # probabilities that still sum to 1
    a = rng.normal(size=(p, p))
    cov = a @ a.T + 0.1 * np.eye(p)
    assert fu.propagated_variance(jac, cov) == pytest.approx(
        sum(jac[j] @ cov @ jac[j] for j in range(k)) / k, rel=1e-13
    )
    # a linear model's central differences are exact, whatever the step
    theta0 = rng.normal(size=p)
    (num,) = fu.jacobian(lambda t: [1 / k + jac @ t], theta0, np.array([0.3, 1.0, 2.0]))
    np.testing.assert_allclose(num, jac, rtol=1e-10, atol=1e-12)
    # and the measured variance of its probabilities approaches the prediction
    draws = rng.multivariate_normal(theta0, cov, size=200_000)
    _, _, variance = fu.decompose(1 / k + draws @ jac.T)
    assert variance == pytest.approx(fu.propagated_variance(jac, cov), rel=0.02)


def test_ratio_error_covers_at_its_nominal_rate():
    """The ratio's standard error from the delta method: over 400 synthetic studies of 100
    replicas (2-parameter linear model, noisy per-replica predictions), the interval ratio +-
    error holds the expected ratio R/(R - 1) (ddof 0) in 68% of them, within 3 binomial
    standard errors (3 sqrt(0.68 * 0.32 / 400) = 0.07)."""
    rng = np.random.default_rng(11)
    k, reps, studies = 10, 100, 400
    jac = rng.normal(size=(k, 2))
    jac -= jac.mean(axis=0)
    truth = fu.propagated_variance(jac, np.eye(2))
    covered = 0
    for _ in range(studies):
        p = 1 / k + rng.normal(size=(reps, 2)) @ jac.T
        predicted = truth * rng.chisquare(20, reps) / 20  # noisy, unbiased predictions
        ratio, error = fu.ratio_with_error(predicted, p)
        covered += abs(ratio - reps / (reps - 1)) <= error
    assert abs(covered / studies - 0.68) < 3 * np.sqrt(0.68 * 0.32 / studies), covered / studies


def write_fits(tmp_path, dim, n_train, reps, fitter):
    """Fit ``reps`` training sets and read them back from fit.json files (sorted keys)."""
    target = GaussianShell(dim)
    names = Fit.parameters(dim)
    out = []
    for seed in range(reps):
        result = fitter(study_data.training_set(target, n_train, seed))
        assert result.ok, result.reason
        path = tmp_path / f"seed{seed}" / "fit.json"
        write_json(path, result.to_json())
        out.append(fu.read_fit(path, names))
    return [np.stack(x) for x in zip(*out, strict=True)]


@pytest.mark.parametrize(
    ("dim", "fitter", "binnings"),
    [
        (1, fit_camel_back, [("x", 10), ("x", 50)]),
        (2, fit_radius, [("r", 10), ("joint", 5)]),
    ],
)
def test_hesse_predicts_the_replica_variance_for_large_training_sets(
    tmp_path, dim, fitter, binnings
):
    """With n_train = 1000 the fit is in its asymptotic regime: the propagated HESSE
    covariance must predict the measured variance of the cell probabilities, the ratio 1 within
    3 of its standard errors (300 replicas give errors of ~0.05), and each parameter's median
    HESSE error its replica spread within 3 standard errors of a spread, 3/sqrt(2(R - 1))."""
    reps = 300
    values, errors, covs = write_fits(tmp_path, dim, 1000, reps, fitter)
    setting = study.Setting("gaussian_shell", dim, 1000, "fit")
    fits = fu.FitReplicas(
        setting, tuple(qt.Binning(c, q, dim) for c, q in binnings), values, errors, covs, n_failed=0
    )
    for row in fu.binning_rows(fits):
        assert row["n_replicas"] == reps
        assert row["variance_ratio_err"] < 0.1, row
        assert abs(row["variance_ratio"] - 1) < 3 * row["variance_ratio_err"], row
        assert row["bias2"] + row["variance"] == pytest.approx(row["mse_mean"], rel=1e-12)
    for row in fu.parameter_rows(fits):
        assert abs(row["error_ratio"] - 1) < 3 / np.sqrt(2 * (reps - 1)), row


# --------------------------------------------------------------------------- reading fit.json


@pytest.fixture
def good_fit(tmp_path):
    result = fit_camel_back(study_data.training_set(GaussianShell(1), 200, 1))
    assert result.ok
    path = tmp_path / "fit.json"
    write_json(path, result.to_json())
    return path, json.loads(path.read_text())


def test_read_fit_takes_the_covariance_in_the_fits_parameter_order(good_fit):
    path, data = good_fit
    values, errors, cov = fu.read_fit(path, Fit.parameters(1))
    assert list(data["values"]) == sorted(Fit.parameters(1))  # stored with sorted keys
    np.testing.assert_array_equal(values, [data["values"][n] for n in Fit.parameters(1)])
    np.testing.assert_allclose(np.sqrt(np.diag(cov)), errors, rtol=0.01)


def test_read_fit_accepts_errors_of_a_parameter_near_its_limit(good_fit):
    # near a limit iminuit's error and sqrt(cov) differ by a few per cent (3.3% seen on the
    # Student-t camel back); that is not a covariance in the wrong order
    path, data = good_fit
    data["errors"]["sigma2"] *= 0.967
    path.write_text(json.dumps(data))
    fu.read_fit(path, Fit.parameters(1))


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda d: "not json {", "not valid JSON"),
        (lambda d: [1, 2], "not a JSON object"),
        (lambda d: d | {"ok": False, "reason": "EDM too large"}, "records a failed fit"),
        (
            lambda d: d | {"values": {k: v for k, v in d["values"].items() if k != "frac"}},
            "'values' must map the parameters",
        ),
        (lambda d: d | {"errors": d["errors"] | {"mu1": "wide"}}, "not a number"),
        (lambda d: d | {"values": d["values"] | {"mu1": None}}, "not a number"),
        (lambda d: d | {"covariance": d["covariance"][:4]}, "5 x 5 matrix"),
        (lambda d: d | {"covariance": [[1, 2], [3]]}, "5 x 5 matrix"),
        (lambda d: d | {"covariance": [[float("nan")] * 5] * 5}, "finite"),
        # the matrix in the sorted-key order of 'values' instead of the fit's order
        (
            lambda d: (
                d
                | {
                    "covariance": np.array(d["covariance"])[
                        np.ix_([4, 0, 2, 1, 3], [4, 0, 2, 1, 3])
                    ].tolist()
                }
            ),
            "does not match 'errors'",
        ),
    ],
)
def test_malformed_fit_json_gets_one_clear_error_naming_the_file(good_fit, change, words):
    path, data = good_fit
    bad = change(data)
    path.write_text(bad if isinstance(bad, str) else json.dumps(bad))
    with pytest.raises(ResultsError, match=words) as exc:
        fu.read_fit(path, Fit.parameters(1))
    assert str(path) in str(exc.value)


def test_missing_fit_json_is_named(tmp_path):
    with pytest.raises(ResultsError, match="missing") as exc:
        fu.read_fit(tmp_path / "seed3" / "fit.json", Fit.parameters(2))
    assert str(tmp_path / "seed3" / "fit.json") in str(exc.value)


# --------------------------------------------------------------------------- a small study


def fit_config(**changes) -> dict:
    raw = {
        "study": "fitunc",
        "target": "gaussian_shell",
        "seeds": {"first": 0, "count": 8},
        "replicas_per_job": 4,
        "defaults": {"generators": ["fit"], "n_train": [200]},
        "dims": {1: {"quantiles": [5, 10]}, 2: {"quantiles": [5], "joint": [3]}},
    }
    raw.update(changes)
    return cfg.validate(raw)


@pytest.fixture
def fit_study(tmp_path):
    """A results folder whose fit jobs ran (2 settings, 2 chunks of 4 replicas each)."""
    config = fit_config()
    res = tmp_path / "results" / "fitunc"
    assert (
        ganplify_main(
            ["write-config", "--json", json.dumps(config), "--output", str(res / "config.yaml")]
        )
        == 0
    )
    with recording(res):  # as the workflow's jobs do (ganplify baseline)
        for chunk in study.plan(config):
            jobs.run_baseline(chunk.spec(), res, res / chunk.evaluated_flag)
    return res


def test_cli_writes_both_tables_consistent_with_the_amplification_table(fit_study):
    res = fit_study
    assert ganplify_main(["aggregate", "--results", str(res)]) == 0
    assert ganplify_main(["fit-uncertainty", "--results", str(res)]) == 0
    table = fu.read_table(res / "tables" / "fit_uncertainty.csv", fu.UNCERTAINTY_COLUMNS)
    params = fu.read_table(res / "tables" / "fit_parameters.csv", fu.PARAMETER_COLUMNS)
    # d=1: x 5, x 10; d=2: r 5, phi1 5, joint 3^2
    assert len(table) == 5 and (table["n_replicas"] == 8).all()
    assert sorted(params["parameter"]) == sorted(Fit.parameters(1) + Fit.parameters(2))
    np.testing.assert_allclose(
        table["bias2"] + table["variance"], table["mse_mean"], rtol=1e-12, atol=1e-30
    )
    # p_jk recomputed from fit.json gives the MSE the baseline job evaluated
    amp = pd.read_csv(res / "tables" / "amplification.csv")
    both = table.merge(
        amp, on=["dim", "n_train", "generator", "binning", "n_quantiles"], suffixes=("", "_amp")
    )
    assert len(both) == 5
    np.testing.assert_allclose(both["mse_mean"], both["mse_mean_amp"], rtol=1e-12)
    finite = table[np.isfinite(table["n_equiv"])]
    np.testing.assert_allclose(
        1 / finite["n_equiv"],
        1 / finite["n_equiv_bias2"] + 1 / finite["n_equiv_variance"],
        rtol=1e-9,
    )
    assert finite["variance_ratio"].between(0.2, 5).all()
    # the angle is exact by construction: no bias fraction, no ratio
    phi = table[table["binning"] == "phi1"].iloc[0]
    assert np.isinf(phi["n_equiv"]) and np.isnan(phi["variance_ratio"])
    assert np.isnan(phi["bias2_fraction"])


def test_figure_manifest_and_verify(fit_study):
    res = fit_study
    config = cfg.load(res / "config.yaml")
    assert fu.applies(config) and "fit_uncertainty" in planned(config)
    assert ganplify_main(["aggregate", "--results", str(res)]) == 0
    assert ganplify_main(["fit-uncertainty", "--results", str(res)]) == 0
    stem = res / "figures" / "fit_uncertainty"
    assert (
        ganplify_main(["plot", "fit_uncertainty", "--results", str(res), "--output", str(stem)])
        == 0
    )
    assert stem.with_suffix(".png").is_file() and stem.with_suffix(".pdf").is_file()
    assert ganplify_main(["manifest", "--results", str(res)]) == 0
    assert ganplify_main(["verify", str(res)]) == 0


def test_failed_replicas_are_counted_and_bad_files_named(fit_study, capsys):
    res = fit_study
    setting = next(c.setting for c in study.plan(fit_config()) if c.setting.dim == 1)
    status = res / setting.replica_dir(5) / "status.json"
    status.write_text(json.dumps(json.loads(status.read_text()) | {"status": "failed"}))
    assert ganplify_main(["fit-uncertainty", "--results", str(res)]) == 0
    table = pd.read_csv(res / "tables" / "fit_uncertainty.csv")
    d1 = table[table["dim"] == 1]
    assert (d1["n_replicas"] == 7).all() and (d1["n_failed"] == 1).all()
    victim = res / setting.replica_dir(2) / "fit.json"
    victim.write_text('{"ok": true, "values": {}}')
    capsys.readouterr()
    assert ganplify_main(["fit-uncertainty", "--results", str(res)]) == 2
    err = capsys.readouterr().err
    assert str(victim) in err and "'values' must map the parameters" in err
    victim.unlink()
    assert ganplify_main(["fit-uncertainty", "--results", str(res)]) == 2
    assert f"{victim}: missing" in capsys.readouterr().err


def test_a_study_without_the_fit_has_no_fit_tables(tmp_path, capsys):
    config = fit_config(defaults={"generators": ["sample"], "n_train": [200]})
    assert not fu.applies(config) and "fit_uncertainty" not in planned(config)
    res = tmp_path / "results" / "fitunc"
    assert (
        ganplify_main(
            ["write-config", "--json", json.dumps(config), "--output", str(res / "config.yaml")]
        )
        == 0
    )
    assert ganplify_main(["fit-uncertainty", "--results", str(res)]) == 2
    assert "runs no 'fit' generator" in capsys.readouterr().err
