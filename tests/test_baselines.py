"""The sample baseline, the 5-parameter fit and the radial fit (d >= 2)."""

import numpy as np
import pytest

from ganplify.generators.base import ReplicaFit
from ganplify.generators.fit import PARAMETERS, Fit, fit_camel_back, fit_radius, mixture_cdf
from ganplify.metrics import quantiles as qt
from ganplify.metrics.evaluation import draw_in_chunks
from ganplify.study.data import training_set
from ganplify.truth.shells import GaussianShell
from tests.helpers import prefix_mse

TRUTH = {"mu1": -4.0, "sigma1": 1.0, "mu2": 4.0, "sigma2": 1.0, "frac": 0.5}


@pytest.mark.parametrize(
    ("dim", "binning", "q"),
    [(1, "x", 10), (1, "x", 50), (2, "joint", 7), (5, "joint", 3), (5, "phi2", 10)],
)
def test_sample_baseline_mean_mse_is_the_exact_expectation(dim, binning, q):
    """Mean MSE of N truth-sampled events = (1/K)(1-1/K)/N within its statistical error."""
    target = GaussianShell(dim)
    b = qt.Binning(binning, q, dim)
    counter = qt.CellCounter(target, [b])
    grid = [100, 300, 1000]
    reps = 400
    values = []
    for s in range(reps):
        rng = np.random.default_rng([7, s])
        stream = draw_in_chunks(lambda m, r=rng: target.sample(m, r), max(grid), 250)
        values.append(prefix_mse(stream, counter, grid)[:, 0])
    values = np.stack(values)
    mean = values.mean(axis=0)
    stderr = values.std(axis=0, ddof=1) / np.sqrt(reps)
    expected = qt.expected_sample_mse(b.n_cells, np.array(grid))
    assert np.all(np.abs(mean - expected) < 4 * stderr), (mean, expected, stderr)


def test_fit_recovers_truth_on_a_large_sample():
    x = training_set(GaussianShell(1), 20_000, seed=5)
    result = fit_camel_back(x)
    assert result.ok, result.reason
    for p in PARAMETERS:
        assert abs(result.values[p] - TRUTH[p]) < 4 * result.errors[p], p
    cov = np.array(result.covariance)
    assert cov.shape == (5, 5) and np.all(np.linalg.eigvalsh(cov) > 0)


def test_fit_ensemble_is_calibrated():
    """Over 200 training sets of 100 points, pulls have mean ~0 and unit spread.

    ML estimates are biased at O(1/n): the widths by about -sigma/(2 n_k) with n_k ~ 50
    points per component, i.e. about -0.1 of their error; the tolerance adds that bias to
    3 standard errors of the mean pull (3/sqrt(200) = 0.21).
    """
    target = GaussianShell(1)
    reps = 200
    fits = [fit_camel_back(training_set(target, 100, s)) for s in range(reps)]
    assert all(f.ok for f in fits), [f.reason for f in fits if not f.ok]
    values = np.array([[f.values[p] for p in PARAMETERS] for f in fits])
    errors = np.array([[f.errors[p] for p in PARAMETERS] for f in fits])
    pulls = (values - np.array([TRUTH[p] for p in PARAMETERS])) / errors
    assert np.all(np.abs(pulls.mean(axis=0)) < 3 / np.sqrt(reps) + 0.1), pulls.mean(axis=0)
    # the spread of pulls of a unit normal has standard error 1/sqrt(2(R-1))
    assert np.all(np.abs(pulls.std(axis=0, ddof=1) - 1) < 3 / np.sqrt(2 * (reps - 1)) + 0.05)


def test_failed_fits_carry_a_reason():
    for x, words in [
        (np.full(100, 1.0), "identical"),
        (np.array([1.0, 2.0]), "at least 5"),
        (np.array([0.0, 1.0, np.nan, 2.0, 3.0, 4.0]), "finite"),
    ]:
        result = fit_camel_back(x)
        assert not result.ok and words in result.reason
    # a call limit far too small for MIGRAD
    limited = fit_camel_back(training_set(GaussianShell(1), 100, 0), max_calls=5)
    assert not limited.ok and limited.reason


def test_fit_generator_probabilities_are_the_mixture_integrals():
    target = GaussianShell(1)
    b = qt.Binning("x", 10, 1)
    counter = qt.CellCounter(target, [b])
    fit = fit_camel_back(training_set(target, 100, 3))
    probs = Fit().probabilities(target, ReplicaFit(3, True, "", fit.to_json()), counter)[0]
    e = qt.edges(target, "x", 10)
    np.testing.assert_allclose(probs, np.diff(mixture_cdf(e, **fit.values)), atol=1e-15)
    assert probs.sum() == pytest.approx(1.0)
    # the truth's own parameters give exactly uniform cells
    exact = Fit().probabilities(target, ReplicaFit(0, True, "", {"values": TRUTH}), counter)[0]
    np.testing.assert_allclose(exact, 0.1, atol=1e-12)


@pytest.mark.parametrize("dim", [2, 5])
def test_radial_fit_recovers_the_shell_and_its_cells(dim):
    """The 2-parameter fit of |x| recovers mu = 4, sigma = 1 within 4 errors; its joint cell
    probabilities are the radial bins' times (1/q)^(d-1), the angles being taken as known."""
    x = training_set(GaussianShell(dim), 20_000, seed=6)
    result = fit_radius(x)
    assert result.ok, result.reason
    assert abs(result.values["mu"] - 4.0) < 4 * result.errors["mu"]
    assert abs(result.values["sigma"] - 1.0) < 4 * result.errors["sigma"]
    target = GaussianShell(dim)
    counter = qt.CellCounter(
        target, [qt.Binning("r", 10, dim), qt.Binning("phi1", 10, dim), qt.Binning("joint", 3, dim)]
    )
    fit = ReplicaFit(6, info=result.to_json())
    p_r, p_phi, p_joint = Fit().probabilities(target, fit, counter)
    assert np.allclose(p_phi, 0.1, rtol=1e-12)
    assert qt.n_equiv(qt.mse(p_phi), 10) == np.inf  # exact by construction
    radial = Fit().probabilities(target, fit, qt.CellCounter(target, [qt.Binning("r", 3, dim)]))[0]
    assert np.allclose(p_joint.reshape(3, -1), radial[:, None] / 3 ** (dim - 1))
    assert p_r.sum() == pytest.approx(1.0) and abs(p_r - 0.1).max() < 0.01


def test_radial_fit_failures_carry_a_reason():
    assert "at least 3" in fit_radius(np.zeros((2, 2))).reason
    assert "identical" in fit_radius(np.ones((10, 3))).reason


def test_a_fit_at_a_limit_names_the_parameter():
    """A ring whose radii are mostly near 4 but one far out in a heavy tail: |N(mu, sigma)|
    fits them best as a half-normal, mu at its bound 0 (within half its error)."""
    rng = np.random.default_rng(21)
    r = np.concatenate([np.abs(4.0 + rng.standard_t(3, size=99)), [41.0]])
    phi = rng.uniform(0, 2 * np.pi, size=100)
    result = fit_radius(np.column_stack([r * np.cos(phi), r * np.sin(phi)]))
    assert not result.ok
    assert "parameter at limit: mu" in result.reason, result.reason
