"""The maximum-likelihood fits: the paper's 5-parameter fit of the camel back, and (beyond the
paper) the 2-parameter fit of the radial profile in d >= 2 with the angles taken as known.

(The truth sample needs no code of its own: it is the truth used as a generator, see
`ganplify.generators.Sample`.)

The fit model is f N(x; mu1, sigma1) + (1 - f) N(x; mu2, sigma2), fitted unbinned with iminuit
(MIGRAD, then HESSE for the covariance). A fit that does not converge is reported as failed
with Minuit's reason and must never be averaged in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import ClassVar

import numpy as np
from iminuit import Minuit
from scipy import special

from ganplify.generators.base import Generator, ReplicaFit
from ganplify.metrics.quantiles import CellCounter
from ganplify.results import layout
from ganplify.truth.shells import GaussianShell, Shell


class Fit(Generator):
    """Maximum-likelihood fits: the paper's 5-parameter fit of the camel back (d = 1); beyond
    the paper, in d >= 2, the 2-parameter fit of the radial profile with the angles taken as
    known (uniform), the physics-informed upper reference."""

    name: ClassVar[str] = "fit"
    label: ClassVar[str] = "5-parameter fit"
    color: ClassVar[str] = "tab:green"
    order: ClassVar[int] = 10
    description: ClassVar[str] = (
        "max.-likelihood fit (iminuit): 5-parameter camel back in d=1, radial profile in d>=2"
    )
    exact: ClassVar[bool] = True
    fit_parameters: ClassVar[bool] = True
    replica_files: ClassVar[tuple[str, ...]] = (layout.FIT_INFO,)

    def label_for(self, dim: int | None) -> str:
        return "radial fit (2 parameters)" if dim is not None and dim > 1 else self.label

    @staticmethod
    def parameters(dim: int) -> tuple[str, ...]:
        """Names of the fitted parameters in dimension ``dim``, in the order of the fit's
        covariance matrix (fit.json stores ``values`` with sorted keys, the matrix in this
        order)."""
        return PARAMETERS if dim == 1 else RADIAL_PARAMETERS

    def fit(
        self, target: Shell, train_sets: np.ndarray, seeds: Sequence[int], options: dict
    ) -> list[ReplicaFit]:
        fit_one = fit_camel_back if target.dim == 1 else fit_radius
        out = []
        for seed, x in zip(seeds, train_sets, strict=True):
            result = fit_one(x)
            out.append(ReplicaFit(int(seed), result.ok, result.reason, result.to_json()))
        return out

    def probabilities(
        self, target: Shell, replica: ReplicaFit, counter: CellCounter
    ) -> list[np.ndarray]:
        return fit_probabilities(target, replica.info["values"], counter)


def fit_probabilities(
    target: Shell, values: Mapping[str, float], counter: CellCounter
) -> list[np.ndarray]:
    """Exact cell probabilities of the fitted density with parameters ``values``.

    Parameters
    ----------
    target : Shell
        The truth (its angles are the fit's in d >= 2).
    values : mapping
        Fitted parameters by name (`Fit.parameters`).
    counter : CellCounter
        The binnings; one array of probabilities per binning.
    """
    if target.dim == 1:
        return counter.probabilities({"x": lambda e: mixture_cdf(e, **values)})
    # the fitted radius, the true angles: independent, so joint cells are products
    fitted = GaussianShell(target.dim, mu=values["mu"], sigma=values["sigma"])
    cdfs = {name: (lambda e, n=name: target.cdf(n, e)) for name in target.coordinates}
    cdfs["r"] = fitted.radial_cdf
    return counter.probabilities(cdfs)


PARAMETERS = ("mu1", "sigma1", "mu2", "sigma2", "frac")


RADIAL_PARAMETERS = ("mu", "sigma")


_LOG_SQRT_2PI = 0.5 * np.log(2.0 * np.pi)


@dataclass
class FitResult:
    """Outcome of one fit.

    Attributes
    ----------
    ok : bool
        True when MIGRAD converged with an accurate, positive-definite covariance and no
        parameter at a limit.
    reason : str
        Why the fit failed ('' when ok).
    values, errors : dict
        Best-fit values and their HESSE errors.
    covariance : list of list
        Covariance matrix in the order of ``values``.
    nll : float
        Negative log-likelihood at the minimum.
    n_calls : int
        Function evaluations used.
    """

    ok: bool
    reason: str
    values: dict[str, float]
    errors: dict[str, float] = field(default_factory=dict)
    covariance: list[list[float]] = field(default_factory=list)
    nll: float = float("nan")
    n_calls: int = 0

    def to_json(self) -> dict:
        return asdict(self)


def mixture_logpdf(x: np.ndarray, mu1, sigma1, mu2, sigma2, frac) -> np.ndarray:
    """log of f N(x; mu1, sigma1) + (1 - f) N(x; mu2, sigma2)."""
    a = np.log(frac) - np.log(sigma1) - _LOG_SQRT_2PI - 0.5 * ((x - mu1) / sigma1) ** 2
    b = np.log1p(-frac) - np.log(sigma2) - _LOG_SQRT_2PI - 0.5 * ((x - mu2) / sigma2) ** 2
    return np.logaddexp(a, b)


def mixture_cdf(x: np.ndarray, mu1, sigma1, mu2, sigma2, frac) -> np.ndarray:
    """CDF of the two-Gaussian mixture."""
    x = np.asarray(x, dtype=np.float64)
    return frac * special.ndtr((x - mu1) / sigma1) + (1 - frac) * special.ndtr((x - mu2) / sigma2)


def _failure_reason(m: Minuit) -> str:
    fmin = m.fmin
    reasons = []
    if fmin.has_reached_call_limit:
        reasons.append("call limit reached")
    if fmin.is_above_max_edm:
        reasons.append(f"EDM {fmin.edm:.2g} above the tolerance")
    if fmin.hesse_failed:
        reasons.append("HESSE failed")
    if not fmin.has_covariance or not fmin.has_accurate_covar:
        reasons.append("covariance not accurate")
    if not fmin.has_posdef_covar:
        reasons.append("covariance not positive definite")
    if fmin.has_parameters_at_limit:
        # iminuit's own criterion: a bound closer than half the parameter's error
        at_limit = [
            p.name
            for p in m.params
            if p.has_limits
            and min(p.value - p.lower_limit, p.upper_limit - p.value) < 0.5 * p.error
        ]
        reasons.append(f"parameter at limit: {', '.join(at_limit) or 'unknown'}")
    if not fmin.is_valid and not reasons:
        reasons.append("MIGRAD reports an invalid minimum")
    return "; ".join(reasons)


def fit_camel_back(x: np.ndarray, max_calls: int = 20_000) -> FitResult:
    """Unbinned 5-parameter maximum-likelihood fit of a two-Gaussian mixture.

    Starting values come from the data split at its median (the two halves' means and
    standard deviations, fraction 1/2); bounds keep the means inside the data range, the widths
    between 1% and 100% of the data's spread, and the fraction inside (0, 1). Component 1 is
    the one starting at the lower mean.

    Parameters
    ----------
    x : ndarray, shape (n,) or (n, 1)
        The training points.
    max_calls : int
        Call limit for MIGRAD.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    if x.size < 5 or not np.all(np.isfinite(x)):
        return FitResult(False, f"need at least 5 finite points, got {x.size}", {})
    spread = float(np.std(x))
    if spread <= 0:
        return FitResult(False, "all points are identical", {})
    xs = np.sort(x)
    lower, upper = xs[: x.size // 2], xs[x.size // 2 :]
    lo_w, hi_w = 0.01 * spread, spread
    start = {
        "mu1": float(lower.mean()),
        "sigma1": float(np.clip(lower.std(), 1.1 * lo_w, 0.9 * hi_w)),
        "mu2": float(upper.mean()),
        "sigma2": float(np.clip(upper.std(), 1.1 * lo_w, 0.9 * hi_w)),
        "frac": 0.5,
    }

    def nll(mu1, sigma1, mu2, sigma2, frac):
        return -np.sum(mixture_logpdf(x, mu1, sigma1, mu2, sigma2, frac))

    data_range = (float(xs[0]), float(xs[-1]))
    limits = {
        "mu1": data_range,
        "mu2": data_range,
        "sigma1": (lo_w, hi_w),
        "sigma2": (lo_w, hi_w),
        "frac": (1e-6, 1 - 1e-6),
    }
    return _minimise(nll, start, limits, max_calls)


def _minimise(
    nll, start: dict[str, float], limits: dict[str, tuple[float, float]], max_calls: int
) -> FitResult:
    """MIGRAD then HESSE on a negative log-likelihood; the result says why it failed."""
    m = Minuit(nll, **start)
    m.errordef = Minuit.LIKELIHOOD
    for name, bounds in limits.items():
        m.limits[name] = bounds
    m.migrad(ncall=max_calls)
    if m.fmin.is_valid:
        m.hesse()
    names = list(start)
    reason = _failure_reason(m)
    return FitResult(
        ok=not reason,
        reason=reason,
        values={p: float(m.values[p]) for p in names},
        errors={p: float(m.errors[p]) for p in names},
        covariance=np.asarray(m.covariance).tolist() if m.covariance is not None else [],
        nll=float(m.fval),
        n_calls=int(m.nfcn),
    )


def folded_normal_logpdf(r: np.ndarray, mu, sigma) -> np.ndarray:
    """log density of |N(mu, sigma)| at r >= 0: the Gaussian shell's radius in any d."""
    a = -0.5 * ((r - mu) / sigma) ** 2
    b = -0.5 * ((r + mu) / sigma) ** 2
    return np.logaddexp(a, b) - np.log(sigma) - _LOG_SQRT_2PI


def fit_radius(x: np.ndarray, max_calls: int = 20_000) -> FitResult:
    """Unbinned 2-parameter maximum-likelihood fit of the radial profile (d >= 2).

    The physics-informed reference: the angles are taken as known (uniform on the sphere),
    only the radius r = |x| is fitted, as |N(mu, sigma)| (parameters `RADIAL_PARAMETERS`).
    Starts at the radii's mean and standard deviation; mu is bounded to [0, max r], sigma to
    1% .. 100% of max r.

    Parameters
    ----------
    x : ndarray, shape (n, d)
        The training points.
    max_calls : int
        Call limit for MIGRAD.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or len(x) < 3 or not np.all(np.isfinite(x)):
        return FitResult(False, f"need at least 3 finite points of shape (n, d), got {x.shape}", {})
    r = np.linalg.norm(x, axis=1)
    r_max = float(r.max())
    if r_max <= 0 or float(np.std(r)) <= 0:
        return FitResult(False, "all radii are identical", {})
    lo_w, hi_w = 0.01 * r_max, r_max
    start = {"mu": float(r.mean()), "sigma": float(np.clip(r.std(), 1.1 * lo_w, 0.9 * hi_w))}

    def nll(mu, sigma):
        return -np.sum(folded_normal_logpdf(r, mu, sigma))

    return _minimise(nll, start, {"mu": (0.0, r_max), "sigma": (lo_w, hi_w)}, max_calls)
