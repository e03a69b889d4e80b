"""A Gaussian kernel density estimate with a cross-validated bandwidth."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ganplify.generators.base import Generator, ReplicaFit, replica_training_set, schema_fragment
from ganplify.results import layout
from ganplify.truth.shells import Shell

# The cross-validation search holds about this many n_train x n_train float64 arrays at once
# (distances, their scaled copy, logsumexp's temporaries); it is refused above CV_MAX_BYTES.
CV_ARRAYS = 5
CV_MAX_BYTES = 4 * 10**9


def cv_bandwidth_factor(x: np.ndarray) -> float:
    """KDE bandwidth factor maximising the leave-one-out log-likelihood of the training set.

    The kernel covariance is the data covariance times factor**2 (as in scipy's
    gaussian_kde). The factor is searched between 1/50 and 2 times Scott's rule: a coarse log
    grid, then Brent's method around the best grid point. Unlike Scott's or Silverman's rule
    it does not assume a unimodal density (on the camel back those rules smooth the two peaks
    into one).

    Parameters
    ----------
    x : ndarray, shape (n, d)
        The training set.
    """
    from scipy.optimize import minimize_scalar
    from scipy.special import logsumexp

    n, d = x.shape
    cov = np.atleast_2d(np.cov(x.T))
    z = np.linalg.solve(np.linalg.cholesky(cov), (x - x.mean(axis=0)).T).T  # whitened
    sq = np.sum(z**2, axis=1)
    half_d2 = 0.5 * np.maximum(sq[:, None] + sq[None, :] - 2.0 * z @ z.T, 0.0)
    np.fill_diagonal(half_d2, np.inf)  # leave one out

    def loss(log_h: float) -> float:
        # minus the log-likelihood, up to terms that do not depend on the factor
        h = np.exp(log_h)
        return -(logsumexp(-half_d2 / (h * h), axis=1).sum() - n * d * log_h)

    grid = np.log(n ** (-1.0 / (d + 4)) * np.geomspace(0.02, 2.0, 12))
    best = int(np.argmin([loss(g) for g in grid]))
    lo, hi = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    result = minimize_scalar(loss, bounds=(lo, hi), method="bounded", options={"xatol": 1e-3})
    return float(np.exp(result.x if result.fun <= loss(grid[best]) else grid[best]))


class Kde(Generator):
    """A Gaussian kernel density estimate in Cartesian coordinates (scipy.stats.gaussian_kde).

    The kernel covariance is the training set's covariance times factor**2, the factor chosen
    by leave-one-out likelihood cross-validation (default, `cv_bandwidth_factor`), by Scott's
    rule n**(-1/(d+4)), Silverman's rule, or fixed (`kde.bandwidth`).
    """

    name: ClassVar[str] = "kde"
    label: ClassVar[str] = "KDE"
    color: ClassVar[str] = "tab:purple"
    order: ClassVar[int] = 30
    description: ClassVar[str] = "Gaussian kernel density estimate in Cartesian coordinates"
    options_schema: ClassVar[dict] = schema_fragment("""
      bandwidth:
        oneOf: [{enum: [cv, scott, silverman], type: string}, {exclusiveMinimum: 0, type: number}]
        default: cv
        description: >-
          kernel bandwidth factor (times the training set's covariance): cv (leave-one-out
          likelihood cross-validation), scott (n**(-1/(d+4))), silverman, or a number > 0
    """)
    replica_files: ClassVar[tuple[str, ...]] = (layout.FIT_INFO,)  # the chosen bandwidth

    def check_options(self, options: Mapping[str, Any], n_train: int) -> str | None:
        bandwidth = {**self.option_defaults(), **options}["bandwidth"]
        need = CV_ARRAYS * 8 * n_train**2
        if bandwidth == "cv" and need > CV_MAX_BYTES:
            n_max = math.isqrt(CV_MAX_BYTES // (CV_ARRAYS * 8))
            return (
                f"bandwidth = cv: its leave-one-out search holds about {CV_ARRAYS} x "
                f"n_train^2 float64 values, {need / 1e9:,.0f} GB (at most "
                f"{CV_MAX_BYTES / 1e9:.0f} GB: n_train <= {n_max:,}); use scott, silverman "
                "or a number"
            )
        return None

    @staticmethod
    def _kde(x: np.ndarray, options: dict):
        from scipy.stats import gaussian_kde

        bandwidth = {**Kde.option_defaults(), **options}["bandwidth"]
        if bandwidth == "cv":
            bandwidth = cv_bandwidth_factor(x)
        return gaussian_kde(x.T, bw_method=bandwidth)

    def fit(
        self, target: Shell, train_sets: np.ndarray, seeds: Sequence[int], options: dict
    ) -> list[ReplicaFit]:
        out = []
        for seed, x in zip(seeds, train_sets, strict=True):
            kde = self._kde(x, options)
            out.append(
                ReplicaFit(int(seed), info={"bandwidth_factor": float(kde.factor)}, data=kde)
            )
        return out

    def sampler(
        self, target: Shell, replica: ReplicaFit
    ) -> Callable[[int, np.random.Generator], np.ndarray]:
        kde = replica.data

        def draw(n: int, rng: np.random.Generator) -> np.ndarray:
            return kde.resample(n, seed=rng).T

        return draw

    def load_sampler(
        self, setting: Any, seed: int, replica_dir: Path
    ) -> Callable[[int, np.random.Generator], np.ndarray]:
        x = replica_training_set(setting, seed)
        return self.sampler(
            setting.make_target(), ReplicaFit(seed, data=self._kde(x, dict(setting.options)))
        )
