"""The paper's baselines: the 5-parameter maximum-likelihood fit of the camel back.

(The sample baseline needs no code of its own: it is the truth used as a generator, see
`ganplify.generators.Sample`.)

The fit model is f N(x; mu1, sigma1) + (1 - f) N(x; mu2, sigma2), fitted unbinned with iminuit
(MIGRAD, then HESSE for the covariance). A fit that does not converge is reported as failed
with Minuit's reason and must never be averaged in.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from iminuit import Minuit
from scipy import special

PARAMETERS = ("mu1", "sigma1", "mu2", "sigma2", "frac")

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
        5x5 covariance matrix in `PARAMETERS` order.
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
        at_limit = [
            p.name for p in m.params
            if p.has_limits
            and (np.isclose(p.value, p.lower_limit) or np.isclose(p.value, p.upper_limit))
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

    m = Minuit(nll, **start)
    m.errordef = Minuit.LIKELIHOOD
    m.limits["mu1"] = m.limits["mu2"] = (float(xs[0]), float(xs[-1]))
    m.limits["sigma1"] = m.limits["sigma2"] = (lo_w, hi_w)
    m.limits["frac"] = (1e-6, 1 - 1e-6)
    m.migrad(ncall=max_calls)
    if m.fmin.is_valid:
        m.hesse()
    values = {p: float(m.values[p]) for p in PARAMETERS}
    reason = _failure_reason(m)
    ok = not reason
    return FitResult(
        ok=ok,
        reason=reason,
        values=values,
        errors={p: float(m.errors[p]) for p in PARAMETERS},
        covariance=np.asarray(m.covariance).tolist() if m.covariance is not None else [],
        nll=float(m.fval),
        n_calls=int(m.nfcn),
    )
