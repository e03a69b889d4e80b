"""Exact quantile binnings, cell assignment and the MSE conversions."""

import numpy as np
import pytest
from scipy import integrate, stats

from ganplify.metrics import quantiles as qt
from ganplify.truth.shells import GaussianShell


@pytest.mark.parametrize("dim", [1, 2, 5, 8])
@pytest.mark.parametrize("q", [3, 10, 50])
def test_projected_cells_have_probability_one_over_k(dim, q):
    target = GaussianShell(dim)
    for name in target.coordinates:
        e = qt.edges(target, name, q)
        assert e[0] == target.support(name)[0] and e[-1] == target.support(name)[1]
        np.testing.assert_allclose(np.diff(target.cdf(name, e)), 1.0 / q, atol=1e-12)


def test_ring_joint_cells_by_exact_integration():
    """Integrate the Cartesian density over each 7x7 polar cell (no factorisation assumed)."""
    target = GaussianShell(2)
    er = qt.edges(target, "r", 7)
    er[-1] = 4 + 40  # the density is 0 to float precision beyond
    ephi = qt.edges(target, "phi1", 7)

    def integrand(r, phi):
        return target.pdf(np.array([[r * np.cos(phi), r * np.sin(phi)]]))[0] * r

    for i in range(7):
        for j in range(7):
            p, _ = integrate.dblquad(
                integrand, ephi[j], ephi[j + 1], er[i], er[i + 1], epsabs=1e-12, epsrel=1e-10
            )
            assert p == pytest.approx(1 / 49, abs=1e-9), (i, j)


def test_shell_joint_cells_by_exact_integration_d3():
    """Spherical-coordinate integral of the Cartesian density over a few 3^3 cells."""
    target = GaussianShell(3)
    e = [qt.edges(target, n, 3) for n in target.coordinates]
    e[0][-1] = 44.0

    def integrand(phi2, phi1, r):
        x = r * np.array([[np.cos(phi1), np.sin(phi1) * np.cos(phi2), np.sin(phi1) * np.sin(phi2)]])
        return target.pdf(x)[0] * r**2 * np.sin(phi1)

    for i, j, k in [(0, 0, 0), (1, 1, 1), (2, 0, 2), (1, 2, 0)]:
        p, _ = integrate.tplquad(
            integrand,
            e[0][i],
            e[0][i + 1],
            e[1][j],
            e[1][j + 1],
            e[2][k],
            e[2][k + 1],
            epsabs=1e-11,
            epsrel=1e-9,
        )
        assert p == pytest.approx(1 / 27, abs=1e-8), (i, j, k)


@pytest.mark.parametrize(("dim", "q"), [(1, 50), (2, 7), (5, 3), (5, 6), (8, 2)])
def test_large_sample_fills_cells_uniformly(dim, q):
    target = GaussianShell(dim)
    binning = qt.Binning("x" if dim == 1 else "joint", q, dim)
    x = target.sample(1_000_000, np.random.default_rng(42 + dim))
    counts = qt.CellCounter(target, [binning]).counts(x)[0]
    assert counts.sum() == 1_000_000 and counts.size == binning.n_cells
    # chi2 goodness of fit against 1/K per cell; alpha = 1e-3 per test
    assert stats.chisquare(counts).pvalue > 1e-3


def test_projected_binnings_of_a_large_sample():
    target = GaussianShell(5)
    binnings = qt.binnings_for(5, [10], [])
    assert [b.coordinate for b in binnings] == ["r", "phi1", "phi2", "phi3", "phi4"]
    x = target.sample(500_000, np.random.default_rng(3))
    for counts in qt.CellCounter(target, binnings).counts(x):
        assert stats.chisquare(counts).pvalue > 1e-3 / 5


def test_assign_cells_edges_and_order():
    inner = [np.array([1.0, 2.0]), np.array([0.5])]
    coords = np.array([[0.0, 0.0], [1.0, 0.0], [2.5, 0.5], [1.5, 0.7]])
    # a point on an edge belongs to the upper cell; row-major flat index
    np.testing.assert_array_equal(qt.assign_cells(coords, inner, [0, 1]), [0, 2, 5, 3])


def test_binnings_for():
    b1 = qt.binnings_for(1, [10, 20], [7])
    assert [(b.coordinate, b.n_quantiles, b.n_cells) for b in b1] == [("x", 10, 10), ("x", 20, 20)]
    b2 = qt.binnings_for(2, [10], [7])
    assert [(b.coordinate, b.n_cells) for b in b2] == [("r", 10), ("phi1", 10), ("joint", 49)]
    with pytest.raises(ValueError):
        qt.Binning("r", 1, 2)


def test_mse_definition():
    assert qt.mse(np.full(10, 0.1)) == pytest.approx(0.0)
    x = np.array([0.5, 0.5, 0.0, 0.0])
    assert qt.mse(x) == pytest.approx(np.mean((x - 0.25) ** 2))
    assert qt.mse_from_counts(np.array([5, 5, 0, 0])) == pytest.approx(qt.mse(x))
    with pytest.raises(ValueError, match="empty"):
        qt.mse_from_counts(np.zeros(4))


def test_conversions_are_consistent():
    for k in (10, 49, 7776):
        for n in (100, 1234.5):
            m = qt.expected_sample_mse(k, n)
            assert m == pytest.approx((1 / k) * (1 - 1 / k) / n)
            assert qt.n_equiv(m, k) == pytest.approx(n)
            assert qt.amplification(m, k, 100) == pytest.approx(n / 100)
    assert np.isinf(qt.n_equiv(0.0, 10)) and np.isinf(qt.n_equiv(-1e-6, 10))


def test_asymptotic_correction_is_unbiased():
    """Multinomial samples of a known distribution: the corrected MSE averages to MSE_inf."""
    rng = np.random.default_rng(11)
    k, n, reps = 20, 500, 20_000
    p = rng.dirichlet(np.full(k, 50.0))
    mse_inf = qt.mse(p)
    counts = rng.multinomial(n, p, size=reps)
    corrected = qt.asymptotic_mse(qt.mse_from_counts(counts), k, n)
    stderr = corrected.std(ddof=1) / np.sqrt(reps)
    assert abs(corrected.mean() - mse_inf) < 4 * stderr
    # the naive MSE is biased by about (1/K)(1-1/K)/n, far beyond the error
    assert qt.mse_from_counts(counts).mean() - mse_inf > 20 * stderr


def test_exact_probabilities_of_the_truth_are_uniform():
    target = GaussianShell(3)
    binnings = qt.binnings_for(3, [5], [4])
    counter = qt.CellCounter(target, binnings)
    cdfs = {n: (lambda v, n=n: target.cdf(n, v)) for n in target.coordinates}
    probs = counter.probabilities(cdfs)
    for b, p in zip(binnings, probs, strict=True):
        np.testing.assert_allclose(p, 1 / b.n_cells, atol=1e-13)
