"""Truth targets: radial shells in any dimension d >= 1.

The radius is |X| with X = mu + sigma Z for a standardised law of Z symmetric about 0, and the
direction is uniform on the unit sphere. Two families (`TARGETS`):

* ``gaussian_shell`` (the paper's): Z ~ N(0, 1), radial density N(r; mu, sigma) +
  N(r; -mu, sigma) for r >= 0. d = 1 is the camel back P(x) = [N(x; -4, 1) + N(x; 4, 1)] / 2,
  d = 2 the ring, d = 5 the spherical shell.
* ``student_shell``: Z ~ Student-t with 3 degrees of freedom, radial density t3(r; 4, 1) +
  t3(r; -4, 1): heavy tails that the paper's 5-parameter Gaussian fit cannot describe.

Binning coordinates are x for d = 1 and hyperspherical (r, phi1, ..., phi{d-1}) for d >= 2 with

    x_1 = r cos(phi1)
    x_k = r sin(phi1) ... sin(phi{k-1}) cos(phi{k})      (k < d)
    x_d = r sin(phi1) ... sin(phi{d-1})

phi1 .. phi{d-2} lie in [0, pi] with densities proportional to sin^(d-1-k)(phi_k); phi{d-1}
is uniform in [0, 2 pi). Under the truth all binning coordinates are independent, and every CDF
and inverse CDF here is exact (closed form, or inverted by bisection to machine precision).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy import special

TWO_PI = 2.0 * np.pi


def to_hyperspherical(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cartesian points to hyperspherical coordinates.

    Parameters
    ----------
    x : ndarray, shape (n, d), d >= 2
        Cartesian points.

    Returns
    -------
    r : ndarray, shape (n,)
        Radii.
    angles : ndarray, shape (n, d - 1)
        phi1 .. phi{d-2} in [0, pi] and phi{d-1} in [0, 2 pi).
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] < 2:
        raise ValueError(f"expected points of shape (n, d) with d >= 2, got {x.shape}")
    d = x.shape[1]
    # tail[:, k] = |(x_k, ..., x_d)|; arctan2 of (tail, x_k) stays accurate near 0 and pi,
    # where arccos(x_k / tail) would lose half the digits.
    tail = np.sqrt(np.cumsum(x[:, ::-1] ** 2, axis=1))[:, ::-1]
    angles = np.empty((x.shape[0], d - 1))
    for k in range(d - 2):
        angles[:, k] = np.arctan2(tail[:, k + 1], x[:, k])
    last = np.arctan2(x[:, d - 1], x[:, d - 2])
    last = np.where(last < 0.0, last + TWO_PI, last)
    # x + 2 pi can round up to exactly 2 pi for tiny negative angles; fold it back.
    angles[:, d - 2] = np.where(last >= TWO_PI, 0.0, last)
    return tail[:, 0], angles


def to_cartesian(r: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """Hyperspherical coordinates to Cartesian points, the exact inverse of to_hyperspherical.

    Parameters
    ----------
    r : ndarray, shape (n,)
    angles : ndarray, shape (n, d - 1), d >= 2

    Returns
    -------
    ndarray, shape (n, d)
    """
    r = np.asarray(r, dtype=np.float64)
    angles = np.atleast_2d(np.asarray(angles, dtype=np.float64))
    n, m = angles.shape
    sines = np.cumprod(np.sin(angles), axis=1)
    x = np.empty((n, m + 1))
    x[:, 0] = np.cos(angles[:, 0])
    x[:, 1:m] = sines[:, : m - 1] * np.cos(angles[:, 1:])
    x[:, m] = sines[:, m - 1]
    return r[:, None] * x


def _bisect(cdf, u: np.ndarray, lo: float, hi: float, iterations: int = 200) -> np.ndarray:
    """Vectorised bisection for cdf(x) = u on [lo, hi]; converges to the float64 spacing."""
    u = np.asarray(u, dtype=np.float64)
    a = np.full(u.shape, lo)
    b = np.full(u.shape, hi)
    for _ in range(iterations):
        mid = 0.5 * (a + b)
        below = cdf(mid) < u
        a = np.where(below, mid, a)
        b = np.where(below, b, mid)
        if np.all((b - a) <= 4 * np.finfo(float).eps * np.maximum(1.0, np.abs(a))):
            break
    return 0.5 * (a + b)


def _check_unit_interval(u: np.ndarray) -> np.ndarray:
    u = np.asarray(u, dtype=np.float64)
    if np.any((u < 0.0) | (u > 1.0)) or np.any(np.isnan(u)):
        raise ValueError("probabilities must lie in [0, 1]")
    return u


def angle_cdf(phi: np.ndarray, power: int) -> np.ndarray:
    """CDF of an angle on [0, pi] with density proportional to sin(phi)**power.

    Uses the regularised incomplete beta function, switching to the complementary form near
    pi / 2 so that the result stays accurate to rounding everywhere.
    """
    phi = np.clip(np.asarray(phi, dtype=np.float64), 0.0, np.pi)
    a = 0.5 * (power + 1)
    folded = np.minimum(phi, np.pi - phi)  # distance from the nearer pole, in [0, pi/2]
    s2 = np.sin(folded) ** 2
    c2 = np.cos(folded) ** 2
    half = np.where(
        s2 <= 0.5, 0.5 * special.betainc(a, 0.5, s2), 0.5 - 0.5 * special.betainc(0.5, a, c2)
    )
    return np.where(phi <= 0.5 * np.pi, half, 1.0 - half)


def angle_ppf(u: np.ndarray, power: int) -> np.ndarray:
    """Inverse of angle_cdf, accurate to ~1e-14 (closed form plus a Newton polish)."""
    u = _check_unit_interval(u)
    a = 0.5 * (power + 1)
    v = np.minimum(u, 1.0 - u)  # fold onto [0, 1/2]
    with np.errstate(invalid="ignore", divide="ignore"):
        use_sin = 2.0 * v <= 0.5
        s2 = np.where(use_sin, special.betaincinv(a, 0.5, 2.0 * v), np.nan)
        c2 = np.where(use_sin, np.nan, special.betaincinv(0.5, a, 1.0 - 2.0 * v))
        s2 = np.where(use_sin, s2, 1.0 - c2)
        c2 = np.where(use_sin, 1.0 - s2, c2)
    phi = np.arctan2(np.sqrt(np.maximum(s2, 0.0)), np.sqrt(np.maximum(c2, 0.0)))
    norm = special.beta(a, 0.5)
    for _ in range(2):  # Newton polish where the density is not vanishingly small
        dens = np.sin(phi) ** power / norm
        step = np.where(dens > 1e-8, (angle_cdf(phi, power) - v) / np.maximum(dens, 1e-300), 0.0)
        phi = np.clip(phi - step, 0.0, 0.5 * np.pi)
    return np.where(u <= 0.5, phi, np.pi - phi)


@dataclass(frozen=True)
class Shell(ABC):
    """A radial shell in ``dim`` dimensions: radius |X| with X = mu + sigma Z, direction uniform.

    Z follows a standardised law symmetric about 0 (its CDF G satisfies G(-z) = 1 - G(z)),
    which a subclass fixes with `_law_cdf`, `_law_pdf`, `_law_variance`, `_draw_x` and
    `_tail_z`. Everything else (density, binning coordinates, exact CDFs and their inverses)
    is shared. Under the truth the radius and the direction are independent, so every product
    cell of per-coordinate quantiles has probability exactly 1/K for every law.

    Parameters
    ----------
    dim : int
        Number of dimensions, >= 1.
    mu, sigma : float
        Location and scale of X, whose absolute value is the radius.
    """

    dim: int
    mu: float = 4.0
    sigma: float = 1.0
    name: ClassVar[str] = ""
    # how figures that compare truth families draw it
    label: ClassVar[str] = ""
    marker: ClassVar[str] = "o"
    linestyle: ClassVar[str] = "-"

    def __post_init__(self) -> None:
        if not isinstance(self.dim, int | np.integer) or self.dim < 1:
            raise ValueError(f"dim must be an integer >= 1, got {self.dim!r}")
        if not self.sigma > 0:
            raise ValueError(f"sigma must be positive, got {self.sigma!r}")

    # ---- the standardised law of Z (subclasses)

    @abstractmethod
    def _law_cdf(self, z: np.ndarray) -> np.ndarray:
        """CDF G of Z."""

    @abstractmethod
    def _law_pdf(self, z: np.ndarray) -> np.ndarray:
        """Density g of Z."""

    @abstractmethod
    def _law_variance(self) -> float:
        """Var Z (finite)."""

    @abstractmethod
    def _draw_x(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n draws of X = mu + sigma Z."""

    @abstractmethod
    def _tail_z(self) -> float:
        """A z with 1 - G(z) below float64 resolution of a probability (brackets `ppf`)."""

    # ---- sampling and density

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``n`` points, shape (n, dim), float64."""
        r = np.abs(self._draw_x(n, rng))
        g = rng.standard_normal((n, self.dim))
        norm = np.linalg.norm(g, axis=1, keepdims=True)
        return r[:, None] * (g / norm)

    def total_std(self) -> float:
        """sqrt(sum_i Var x_i) = sqrt(E r^2) = sqrt(mu^2 + sigma^2 Var Z); the mean is 0."""
        return float(np.sqrt(self.mu**2 + self.sigma**2 * self._law_variance()))

    def radial_pdf(self, r: np.ndarray) -> np.ndarray:
        """Density of the radius, [g((r - mu)/sigma) + g((r + mu)/sigma)] / sigma for r >= 0."""
        r = np.asarray(r, dtype=np.float64)
        s = self.sigma
        dens = self._law_pdf((r - self.mu) / s) + self._law_pdf((r + self.mu) / s)
        return np.where(r >= 0, dens / s, 0.0)

    def radial_cdf(self, r: np.ndarray) -> np.ndarray:
        """F(r) = G((r - mu)/sigma) + G((r + mu)/sigma) - 1 for r >= 0."""
        r = np.maximum(np.asarray(r, dtype=np.float64), 0.0)
        s = self.sigma
        return self._law_cdf((r - self.mu) / s) - self._law_cdf((-r - self.mu) / s)

    def radial_sf(self, r: np.ndarray) -> np.ndarray:
        """1 - F(r), accurate in the upper tail."""
        r = np.maximum(np.asarray(r, dtype=np.float64), 0.0)
        s = self.sigma
        return self._law_cdf((self.mu - r) / s) + self._law_cdf((-r - self.mu) / s)

    def pdf(self, x: np.ndarray) -> np.ndarray:
        """Density in Cartesian coordinates, f_R(|x|) / (S_{d-1} |x|^(d-1))."""
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        d = self.dim
        r = np.linalg.norm(x, axis=1)
        log_area = np.log(2.0) + 0.5 * d * np.log(np.pi) - special.gammaln(0.5 * d)
        with np.errstate(divide="ignore"):
            log_p = np.log(self.radial_pdf(r)) - log_area
            if d > 1:  # (d - 1) * log(0) would be 0 * -inf for d = 1
                log_p = log_p - (d - 1) * np.log(r)
        return np.exp(log_p)

    # ---- binning coordinates

    @property
    def coordinates(self) -> tuple[str, ...]:
        """Names of the binning coordinates: ('x',) or ('r', 'phi1', ..., 'phi{d-1}')."""
        if self.dim == 1:
            return ("x",)
        return ("r", *(f"phi{k}" for k in range(1, self.dim)))

    def to_coordinates(self, x: np.ndarray) -> np.ndarray:
        """Cartesian points (n, dim) to binning coordinates (n, dim), in `coordinates` order."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"expected points of shape (n, {self.dim}), got {x.shape}")
        if self.dim == 1:
            return x.copy()
        r, angles = to_hyperspherical(x)
        return np.column_stack([r, angles])

    def _angle_power(self, name: str) -> int | None:
        """sin power of an angle's density; None for the uniform last angle."""
        k = int(name[3:])
        return None if k == self.dim - 1 else self.dim - 1 - k

    def support(self, name: str) -> tuple[float, float]:
        """Closed-open range of a binning coordinate."""
        self._check_coordinate(name)
        if name == "x":
            return (-np.inf, np.inf)
        if name == "r":
            return (0.0, np.inf)
        return (0.0, TWO_PI) if self._angle_power(name) is None else (0.0, np.pi)

    def cdf(self, name: str, values: np.ndarray) -> np.ndarray:
        """Exact marginal CDF of binning coordinate ``name``."""
        self._check_coordinate(name)
        v = np.asarray(values, dtype=np.float64)
        if name == "x":
            s = self.sigma
            return 0.5 * (self._law_cdf((v - self.mu) / s) + self._law_cdf((v + self.mu) / s))
        if name == "r":
            return self.radial_cdf(v)
        power = self._angle_power(name)
        if power is None:
            return np.clip(v, 0.0, TWO_PI) / TWO_PI
        return angle_cdf(v, power)

    def ppf(self, name: str, u: np.ndarray) -> np.ndarray:
        """Exact inverse of `cdf` (bisection to float64 spacing or closed form)."""
        self._check_coordinate(name)
        u = _check_unit_interval(u)
        lo, hi = self.support(name)
        span = abs(self.mu) + self._tail_z() * self.sigma  # beyond it the CDF is 1 in float64
        if name == "x":
            out = _bisect(lambda v: self.cdf("x", v), u, -span, span)
        elif name == "r":
            # bisection on the survival function above the median keeps upper edges exact
            upper = u > 0.5
            out = np.where(
                upper,
                _bisect(lambda v: -self.radial_sf(v), -(1.0 - u), 0.0, span),
                _bisect(self.radial_cdf, u, 0.0, span),
            )
        elif self._angle_power(name) is None:
            out = u * TWO_PI
        else:
            out = angle_ppf(u, self._angle_power(name))
        out = np.where(u <= 0.0, lo, out)
        return np.where(u >= 1.0, hi, out)

    def _check_coordinate(self, name: str) -> None:
        if name not in self.coordinates:
            raise ValueError(
                f"unknown coordinate {name!r} for dim={self.dim}; allowed: {self.coordinates}"
            )


@dataclass(frozen=True)
class GaussianShell(Shell):
    """The Gaussian shell (the paper's family): Z ~ N(0, 1), so the radius has density
    N(r; mu, sigma) + N(r; -mu, sigma); the camel back for dim = 1, the ring for dim = 2."""

    name: ClassVar[str] = "gaussian_shell"
    label: ClassVar[str] = "Gaussian shell"

    def _law_cdf(self, z: np.ndarray) -> np.ndarray:
        return special.ndtr(z)

    def _law_pdf(self, z: np.ndarray) -> np.ndarray:
        return np.exp(-0.5 * z * z) / np.sqrt(TWO_PI)

    def _law_variance(self) -> float:
        return 1.0

    def _draw_x(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.normal(self.mu, self.sigma, size=n)

    def _tail_z(self) -> float:
        return 40.0  # 1 - Phi(40) ~ 1e-350


@dataclass(frozen=True)
class StudentShell(Shell):
    """A heavy-tailed shell: Z ~ Student-t with ``nu`` degrees of freedom (default 3), so the
    radius has density t(r; mu, sigma) + t(r; -mu, sigma); dim = 1 is the heavy-tailed camel
    back [t(x; -4, 1) + t(x; 4, 1)] / 2.

    Its tails fall like r^-(nu + 1), so the paper's 5-parameter fit (two Gaussians) is
    misspecified on it by construction. ``nu`` must exceed 2 for a finite variance (the
    generated-spread diagnostic divides by `total_std`).
    """

    nu: float = 3.0
    name: ClassVar[str] = "student_shell"
    label: ClassVar[str] = "Student-t shell"
    marker: ClassVar[str] = "s"
    linestyle: ClassVar[str] = "--"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.nu > 2:
            raise ValueError(f"nu must exceed 2 (finite variance), got {self.nu!r}")

    def _law_cdf(self, z: np.ndarray) -> np.ndarray:
        return special.stdtr(self.nu, z)  # what scipy.stats.t.cdf evaluates

    def _law_pdf(self, z: np.ndarray) -> np.ndarray:
        nu = self.nu
        log_norm = (
            special.gammaln(0.5 * (nu + 1)) - special.gammaln(0.5 * nu) - 0.5 * np.log(nu * np.pi)
        )
        return np.exp(log_norm - 0.5 * (nu + 1) * np.log1p(np.asarray(z) ** 2 / nu))

    def _law_variance(self) -> float:
        return self.nu / (self.nu - 2.0)

    def _draw_x(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.mu + self.sigma * rng.standard_t(self.nu, size=n)

    def _tail_z(self) -> float:
        # the tail falls like z^-nu: 1 - G(z) = 1e-20 at z ~ 5e6 for nu = 3 (not at 40)
        return float(-special.stdtrit(self.nu, 1e-20))
