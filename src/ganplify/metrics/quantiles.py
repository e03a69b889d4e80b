"""Exact quantile binnings and the paper's quantile MSE.

A binning is either one coordinate alone ("projected": q quantiles of x, r or one angle) or the
joint product of q quantiles per coordinate (K = q**d cells). Edges come from the exact truth
CDFs, so under the truth every cell has probability exactly 1/K.

The quantile MSE (paper eq. 2) of cell fractions x_j is (1/K) sum_j (x_j - 1/K)**2. For N
truth-sampled events its expectation is (1/K)(1 - 1/K)/N, which converts any MSE into an
equivalent number of sampled events and an amplification factor.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from ganplify.truth.shells import Shell

JOINT = "joint"


@dataclass(frozen=True, order=True)
class Binning:
    """One quantile binning of a d-dimensional target.

    Parameters
    ----------
    coordinate : str
        A binning coordinate ('x', 'r', 'phi1', ...) or 'joint' for product cells.
    n_quantiles : int
        Quantiles per coordinate (>= 2).
    dim : int
        Dimension of the target.
    """

    coordinate: str
    n_quantiles: int
    dim: int

    def __post_init__(self) -> None:
        if self.n_quantiles < 2:
            raise ValueError(f"n_quantiles must be >= 2, got {self.n_quantiles}")

    @property
    def n_cells(self) -> int:
        """Number of cells K."""
        if self.coordinate == JOINT:
            return self.n_quantiles**self.dim
        return self.n_quantiles

    @property
    def label(self) -> str:
        """Short human-readable name, e.g. 'r, 10 quantiles' or 'joint 6^5'."""
        if self.coordinate == JOINT:
            return f"joint {self.n_quantiles}^{self.dim}"
        return f"{self.coordinate}, {self.n_quantiles} quantiles"

    def columns(self, target: Shell) -> tuple[int, ...]:
        """Indices of the binning coordinates this binning uses."""
        if self.coordinate == JOINT:
            return tuple(range(target.dim))
        return (target.coordinates.index(self.coordinate),)


def binnings_for(dim: int, projected: Iterable[int], joint: Iterable[int]) -> list[Binning]:
    """All projected binnings (each coordinate, each q) and joint binnings for one dimension.

    For d = 1 the joint binning equals the projected one on x and is not repeated.
    """
    names = ("x",) if dim == 1 else ("r", *(f"phi{k}" for k in range(1, dim)))
    out = [Binning(name, q, dim) for q in sorted(set(projected)) for name in names]
    if dim > 1:
        out += [Binning(JOINT, q, dim) for q in sorted(set(joint))]
    return out


def edges(target: Shell, coordinate: str, n_quantiles: int) -> np.ndarray:
    """Quantile edges of one coordinate from its exact CDF, shape (n_quantiles + 1,).

    The first and last edge are the coordinate's support bounds (possibly infinite).
    """
    if n_quantiles < 2:
        raise ValueError(f"n_quantiles must be >= 2, got {n_quantiles}")
    u = np.arange(n_quantiles + 1) / n_quantiles
    return target.ppf(coordinate, u)


def interior_edges(target: Shell, binning: Binning) -> list[np.ndarray]:
    """Inner edges (without the support bounds) for each coordinate of a binning."""
    names = target.coordinates
    return [edges(target, names[c], binning.n_quantiles)[1:-1] for c in binning.columns(target)]


def assign_cells(
    coords: np.ndarray, inner_edges: Sequence[np.ndarray], columns: Sequence[int]
) -> np.ndarray:
    """Flat cell index of each point.

    Parameters
    ----------
    coords : ndarray, shape (n, d)
        Binning coordinates (see Shell.to_coordinates).
    inner_edges : sequence of ndarray
        Inner quantile edges per used coordinate (q - 1 values each).
    columns : sequence of int
        Which columns of ``coords`` the edges belong to.

    Returns
    -------
    ndarray of int64, shape (n,)
        Row-major index into the product of the used coordinates' cells.
    """
    index = np.zeros(coords.shape[0], dtype=np.int64)
    for col, inner in zip(columns, inner_edges, strict=True):
        # side='right': a point exactly on an edge belongs to the upper cell (closed-open cells)
        index *= inner.size + 1
        index += np.searchsorted(inner, coords[:, col], side="right")
    return index


class CellCounter:
    """Count points per cell for a fixed set of binnings, with edges computed once.

    Parameters
    ----------
    target : Shell
    binnings : sequence of Binning
    """

    def __init__(self, target: Shell, binnings: Sequence[Binning]) -> None:
        for b in binnings:
            if b.dim != target.dim:
                raise ValueError(f"binning {b} does not match target dim {target.dim}")
        self.target = target
        self.binnings = tuple(binnings)
        self._edges = [interior_edges(target, b) for b in self.binnings]

    def counts(self, x: np.ndarray) -> list[np.ndarray]:
        """Cell counts (int64, shape (K,)) of Cartesian points ``x`` for every binning."""
        coords = self.target.to_coordinates(x)
        return [
            np.bincount(assign_cells(coords, e, b.columns(self.target)), minlength=b.n_cells)
            for b, e in zip(self.binnings, self._edges, strict=True)
        ]

    def probabilities(self, marginal_cdfs: dict[str, callable]) -> list[np.ndarray]:
        """Exact cell probabilities of a density whose binning coordinates are independent.

        Parameters
        ----------
        marginal_cdfs : dict
            Coordinate name -> CDF of that coordinate under the density.
        """
        names = self.target.coordinates
        out = []
        for b, inner_edges in zip(self.binnings, self._edges, strict=True):
            probs = np.ones(1)
            for c, inner in zip(b.columns(self.target), inner_edges, strict=True):
                cdf = np.asarray(marginal_cdfs[names[c]](inner), dtype=np.float64)
                # the support bounds hold all the mass; the edges are the cached inner ones
                # (inverting the CDFs again on every call would dominate the cost of a fit's
                # Jacobian, see ganplify.analysis.fit_uncertainty)
                cdf = np.concatenate([[0.0], cdf, [1.0]])
                probs = np.multiply.outer(probs, np.diff(cdf)).ravel()
            out.append(probs)
        return out


def mse(fractions: np.ndarray) -> np.ndarray:
    """Paper eq. 2: (1/K) sum_j (x_j - 1/K)**2 over the last axis."""
    fractions = np.asarray(fractions, dtype=np.float64)
    k = fractions.shape[-1]
    return np.mean((fractions - 1.0 / k) ** 2, axis=-1)


def mse_from_counts(counts: np.ndarray) -> np.ndarray:
    """Quantile MSE of cell counts (last axis = cells)."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum(axis=-1, keepdims=True)
    if np.any(total <= 0):
        raise ValueError("cannot compute the MSE of an empty sample")
    return mse(counts / total)


def sample_variance_term(n_cells: int | np.ndarray) -> np.ndarray:
    """(1/K)(1 - 1/K): N times the expected MSE of N truth-sampled events."""
    k = np.asarray(n_cells, dtype=np.float64)
    return (1.0 / k) * (1.0 - 1.0 / k)


def expected_sample_mse(n_cells: int | np.ndarray, n: float | np.ndarray) -> np.ndarray:
    """E[MSE] of n truth-sampled events in K equiprobable cells: (1/K)(1 - 1/K)/n."""
    return sample_variance_term(n_cells) / np.asarray(n, dtype=np.float64)


# Beyond this many events an MSE is round-off, not information: the cell fractions of float64
# probabilities carry ~1e-16 relative error, so their MSE cannot resolve N_equiv ~ 1e30.
N_EQUIV_EXACT = 1e15


def n_equiv(mse_value: np.ndarray, n_cells: int | np.ndarray) -> np.ndarray:
    """Number of truth-sampled events with the same expected MSE: (1/K)(1 - 1/K)/MSE.

    A non-positive MSE (possible for a noisy asymptotic estimate) maps to infinity, and so
    does an MSE at the level of floating-point round-off (N_equiv above `N_EQUIV_EXACT`), such
    as that of a generator exact on a binning by construction.
    """
    m = np.asarray(mse_value, dtype=np.float64)
    with np.errstate(divide="ignore", over="ignore"):
        n = np.where(m > 0, sample_variance_term(n_cells) / np.where(m > 0, m, 1.0), np.inf)
    return np.where(n > N_EQUIV_EXACT, np.inf, n)


def amplification(mse_value: np.ndarray, n_cells: int | np.ndarray, n_train: int) -> np.ndarray:
    """Amplification factor N_equiv / n_train."""
    return n_equiv(mse_value, n_cells) / n_train


def asymptotic_mse(
    mse_value: np.ndarray, n_cells: int | np.ndarray, n_generated: float | np.ndarray
) -> np.ndarray:
    """Unbiased estimate of a generator's MSE at infinitely many generated events.

    For a generator with cell probabilities p_j, n generated events give
    E[MSE_n] = MSE_inf (1 - 1/n) + (1/K)(1 - 1/K)/n, so
    MSE_inf = (MSE_n - (1/K)(1 - 1/K)/n) / (1 - 1/n). The estimate can come out negative for
    a generator close to the truth; averaging over replicas keeps it unbiased.
    """
    n = np.asarray(n_generated, dtype=np.float64)
    return (np.asarray(mse_value) - expected_sample_mse(n_cells, n)) / (1.0 - 1.0 / n)
