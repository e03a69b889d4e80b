"""Truth targets: sampling, density, transforms and exact CDFs."""

import numpy as np
import pytest
from scipy import integrate, stats

from ganplify.metrics.quantiles import Binning, CellCounter, binnings_for
from ganplify.truth import TARGETS, make_target
from ganplify.truth.shells import (
    GaussianShell,
    StudentShell,
    angle_cdf,
    angle_ppf,
    to_cartesian,
    to_hyperspherical,
)

N_SAMPLE = 20_000
# Family-wise false-alarm probability of all KS tests below (Bonferroni over the 24
# coordinates: 1 + 2 + 5 + 8 of the Gaussian shells, 1 + 2 + 5 of the Student-t shells).
ALPHA = 1e-3 / 24


@pytest.mark.parametrize(
    ("family", "dim", "seed"),
    [
        *((GaussianShell, d, 1000 + d) for d in (1, 2, 5, 8)),
        *((StudentShell, d, 2000 + d) for d in (1, 2, 5)),
    ],
)
def test_sampling_matches_exact_cdfs(family, dim, seed):
    target = family(dim)
    x = target.sample(N_SAMPLE, np.random.default_rng(seed))
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


# --------------------------------------------------------------------------- the Student-t shell


def test_targets_registry():
    assert list(TARGETS) == ["gaussian_shell", "student_shell"]
    assert make_target("student_shell", 3) == StudentShell(3)
    assert StudentShell(1).nu == 3.0 and (StudentShell(1).mu, StudentShell(1).sigma) == (4, 1)


def test_student_camel_back_density_and_cdf():
    """d = 1 is [t3(x; -4, 1) + t3(x; 4, 1)] / 2, radial F(r) = T3(r - 4) + T3(r + 4) - 1."""
    target = StudentShell(1)
    x = np.linspace(-60, 60, 241)
    expected = 0.5 * (stats.t.pdf(x, 3, -4, 1) + stats.t.pdf(x, 3, 4, 1))
    np.testing.assert_allclose(target.pdf(x[:, None]), expected, rtol=1e-12)
    np.testing.assert_allclose(
        target.cdf("x", x), 0.5 * (stats.t.cdf(x, 3, -4, 1) + stats.t.cdf(x, 3, 4, 1)), atol=1e-15
    )
    r = np.linspace(0, 1000, 401)
    cdf = stats.t.cdf(r - 4, 3) + stats.t.cdf(r + 4, 3) - 1
    np.testing.assert_allclose(target.radial_cdf(r), cdf, atol=1e-15)
    np.testing.assert_allclose(
        target.radial_sf(r), stats.t.sf(r - 4, 3) + stats.t.sf(r + 4, 3), rtol=1e-12
    )


@pytest.mark.parametrize("cls", [GaussianShell, StudentShell])
def test_radial_cdf_is_the_integral_of_the_radial_pdf(cls):
    target = cls(2)
    for r in [0.3, 2.0, 3.9, 4.0, 4.5, 7.0, 15.0, 80.0]:
        # split at the peak so that quad sees it; the remaining tail mass is checked separately
        integral = sum(
            integrate.quad(target.radial_pdf, a, b, epsabs=1e-14, limit=200)[0]
            for a, b in [(0.0, min(r, 4.0)), (min(r, 4.0), r)]
        )
        assert target.radial_cdf(r) == pytest.approx(integral, abs=1e-12), r
    tail = integrate.quad(target.radial_pdf, 80.0, np.inf, epsabs=1e-15)[0]
    assert target.radial_sf(80.0) == pytest.approx(tail, rel=1e-8)


def test_student_tail_is_heavy_and_variance_finite():
    student, gauss = StudentShell(1), GaussianShell(1)
    # P(|x| > 10): ~4e-3 for t3 (power law), ~1e-9 for the Gaussian
    assert student.radial_sf(10.0) > 1e-3 > 1e6 * gauss.radial_sf(10.0)
    assert student.total_std() == pytest.approx(np.sqrt(16 + 3))  # Var t3 = 3
    x = student.sample(400_000, np.random.default_rng(5))
    # the sample variance of t3 converges slowly (infinite fourth moment): a loose check
    assert np.sqrt(np.mean(x**2)) == pytest.approx(student.total_std(), rel=0.05)
    with pytest.raises(ValueError, match="nu must exceed 2"):
        StudentShell(1, nu=2.0)


@pytest.mark.parametrize("dim", [1, 2, 5])
def test_student_ppf_inverts_cdf_to_1e10_also_far_in_the_tail(dim):
    target = StudentShell(dim)
    u = np.concatenate(
        [np.linspace(0, 1, 201)[1:-1], [1e-12, 1e-6, 1 - 1e-6, 1 - 1e-9, 1 - 1e-12, 1 - 1e-15]]
    )
    for name in target.coordinates:
        v = target.ppf(name, u)
        assert np.all(np.diff(v[:199]) > 0), name
        np.testing.assert_allclose(target.cdf(name, v), u, atol=1e-10, err_msg=name)
    if dim > 1:  # upper edges of the radius far out in the tail, to relative precision
        u = np.array([1 - 1e-9, 1 - 1e-15])
        r = target.ppf("r", u)
        np.testing.assert_allclose(target.radial_sf(r), 1 - u, rtol=1e-9)
        assert r[-1] > 1e4  # a power-law tail: far beyond the Gaussian's 40 sigma


# Chi-square test of equiprobable cells: the family-wise false-alarm probability over the
# parametrised cases below is at most 1e-4 (each test at 1e-4 / 8).
CHI2_ALPHA = 1e-4 / 8
N_CELLS_SAMPLE = 200_000


@pytest.mark.parametrize(
    ("cls", "dim", "q"),
    [
        (StudentShell, 1, 50),
        (StudentShell, 2, 10),
        (StudentShell, 3, 6),
        (StudentShell, 5, 3),
        (GaussianShell, 1, 50),
        (GaussianShell, 2, 10),
        (GaussianShell, 3, 6),
        (GaussianShell, 5, 3),
    ],
)
def test_every_product_cell_has_probability_one_over_k(cls, dim, q):
    """Binning coordinates are independent under the truth: joint cells (and each projected
    binning) are equiprobable, tested with a chi-square of a large sample (fixed seed)."""
    target = cls(dim)
    binnings = binnings_for(dim, [q], [q])
    x = target.sample(N_CELLS_SAMPLE, np.random.default_rng(3000 + 10 * dim + q))
    for binning, counts in zip(binnings, CellCounter(target, binnings).counts(x), strict=True):
        expected = N_CELLS_SAMPLE / binning.n_cells
        assert expected >= 20  # the chi-square approximation holds
        stat = float(np.sum((counts - expected) ** 2 / expected))
        p_value = stats.chi2.sf(stat, binning.n_cells - 1)
        assert p_value > CHI2_ALPHA, (cls.name, binning, stat, p_value)


def test_exact_cell_probabilities_are_one_over_k():
    """From the exact CDFs: every product cell of the Student shell holds 1/K to rounding."""
    target = StudentShell(3)
    counter = CellCounter(target, [Binning("joint", 5, 3), Binning("r", 50, 3)])
    cdfs = {name: (lambda e, n=name: target.cdf(n, e)) for name in target.coordinates}
    for probs in counter.probabilities(cdfs):
        np.testing.assert_allclose(probs, 1.0 / len(probs), atol=1e-13)
