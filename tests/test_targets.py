"""Truth targets: sampling, density, transforms and exact CDFs."""

import numpy as np
import pytest
from scipy import integrate, stats

from ganplify.targets import (
    GaussianShell,
    angle_cdf,
    angle_ppf,
    make_target,
    to_cartesian,
    to_hyperspherical,
)

N_SAMPLE = 20_000
# Family-wise false-alarm probability of all KS tests below (Bonferroni over 16 coordinates).
ALPHA = 1e-3 / 16


@pytest.mark.parametrize("dim", [1, 2, 5, 8])
def test_sampling_matches_exact_cdfs(dim):
    target = GaussianShell(dim)
    x = target.sample(N_SAMPLE, np.random.default_rng(1000 + dim))
    coords = target.to_coordinates(x)
    for j, name in enumerate(target.coordinates):
        result = stats.kstest(coords[:, j], lambda v, n=name: target.cdf(n, v))
        assert result.pvalue > ALPHA, (dim, name, result)


def test_camel_back_is_the_paper_density():
    x = np.linspace(-9, 9, 101)
    expected = 0.5 * (stats.norm.pdf(x, -4, 1) + stats.norm.pdf(x, 4, 1))
    np.testing.assert_allclose(GaussianShell(1).pdf(x[:, None]), expected, rtol=1e-12)


def test_ring_density_integrates_to_one():
    target = GaussianShell(2)

    def polar(r, phi):
        x = np.array([[r * np.cos(phi), r * np.sin(phi)]])
        return target.pdf(x)[0] * r

    total, _ = integrate.dblquad(polar, 0, 2 * np.pi, 0, 15, epsabs=1e-10)
    assert total == pytest.approx(1.0, abs=1e-7)


@pytest.mark.parametrize("dim", [2, 3, 5, 8])
def test_density_matches_radial_profile(dim):
    """pdf(x) * surface(|x|) = radial pdf, i.e. the direction is uniform."""
    from scipy.special import gammaln

    target = GaussianShell(dim)
    x = target.sample(50, np.random.default_rng(dim))
    r = np.linalg.norm(x, axis=1)
    area = np.exp(np.log(2) + 0.5 * dim * np.log(np.pi) - gammaln(dim / 2)) * r ** (dim - 1)
    np.testing.assert_allclose(target.pdf(x) * area, target.radial_pdf(r), rtol=1e-10)


@pytest.mark.parametrize("dim", [2, 3, 5, 8])
def test_transforms_round_trip(dim):
    rng = np.random.default_rng(dim)
    x = rng.normal(size=(1000, dim)) * rng.uniform(0.1, 10, size=(1000, 1))
    r, angles = to_hyperspherical(x)
    np.testing.assert_allclose(to_cartesian(r, angles), x, atol=1e-12, rtol=1e-12)
    assert np.all(angles[:, :-1] >= 0) and np.all(angles[:, :-1] <= np.pi)
    assert np.all(angles[:, -1] >= 0) and np.all(angles[:, -1] < 2 * np.pi)
    # and the other way round, from coordinates inside their ranges
    r2 = rng.uniform(0.5, 8, 1000)
    a2 = np.column_stack(
        [rng.uniform(0.01, np.pi - 0.01, 1000) for _ in range(dim - 2)]
        + [rng.uniform(0, 2 * np.pi, 1000)]
    )
    r3, a3 = to_hyperspherical(to_cartesian(r2, a2))
    np.testing.assert_allclose(r3, r2, rtol=1e-12)
    np.testing.assert_allclose(a3, a2, atol=1e-10)


def test_polar_convention_for_the_ring():
    r, angles = to_hyperspherical(np.array([[0.0, 2.0], [-1.0, 0.0], [0.0, -3.0]]))
    np.testing.assert_allclose(r, [2, 1, 3])
    np.testing.assert_allclose(angles[:, 0], [np.pi / 2, np.pi, 1.5 * np.pi])


@pytest.mark.parametrize("power", [1, 2, 3, 4, 7])
def test_angle_cdf_against_numerical_integration(power):
    norm = integrate.quad(lambda t: np.sin(t) ** power, 0, np.pi, epsabs=1e-14)[0]
    for phi in [1e-3, 0.3, 1.0, np.pi / 2 - 1e-6, 2.0, 3.1]:
        expected = integrate.quad(lambda t: np.sin(t) ** power, 0, phi, epsabs=1e-14)[0] / norm
        assert angle_cdf(phi, power) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("power", [1, 2, 3, 6])
def test_angle_ppf_inverts_cdf(power):
    u = np.concatenate([np.linspace(0, 1, 1001), [1e-12, 0.5 - 1e-13, 0.5 + 1e-13, 1 - 1e-12]])
    np.testing.assert_allclose(angle_cdf(angle_ppf(u, power), power), u, atol=1e-13)


@pytest.mark.parametrize("dim", [1, 2, 5, 8])
def test_ppf_inverts_cdf_to_1e10(dim):
    target = GaussianShell(dim)
    u = np.linspace(0, 1, 201)[1:-1]
    for name in target.coordinates:
        np.testing.assert_allclose(target.cdf(name, target.ppf(name, u)), u, atol=1e-10)


def test_radial_cdf_closed_form():
    target = GaussianShell(3)
    r = np.linspace(0, 10, 41)
    expected = stats.norm.cdf(r - 4) + stats.norm.cdf(r + 4) - 1
    np.testing.assert_allclose(target.radial_cdf(r), expected, atol=1e-15)
    np.testing.assert_allclose(target.radial_sf(r), 1 - expected, atol=1e-15)


def test_support_bounds_and_errors():
    target = GaussianShell(3)
    assert target.ppf("r", np.array([0.0, 1.0])).tolist() == [0.0, np.inf]
    assert target.ppf("phi1", np.array([0.0, 1.0])).tolist() == [0.0, np.pi]
    assert target.ppf("phi2", np.array([1.0]))[0] == pytest.approx(2 * np.pi)
    with pytest.raises(ValueError, match="unknown coordinate"):
        target.cdf("phi3", 0.0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        target.ppf("r", np.array([1.5]))
    with pytest.raises(ValueError, match="dim must be"):
        GaussianShell(0)
    with pytest.raises(ValueError, match="unknown target"):
        make_target("camel", 1)


def test_sampling_is_reproducible_from_the_seed():
    t = GaussianShell(5)
    a = t.sample(10, np.random.default_rng(7))
    b = t.sample(10, np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
