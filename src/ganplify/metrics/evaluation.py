"""Quantile MSE of generated events, counted in bounded chunks at a grid of event counts.

The MSE at n events uses the first n events of one generated stream, so a whole grid
(10^2 .. 10^7) costs only its largest count, and memory stays at one chunk.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np
import pandas as pd

from ganplify.metrics.quantiles import Binning, CellCounter, mse, mse_from_counts

# Columns of a per-replica MSE table (and of tables/mse.csv).
MSE_COLUMNS = [
    "target",
    "dim",
    "n_train",
    "generator",
    "seed",
    "binning",
    "n_quantiles",
    "n_cells",
    "n_generated",
    "mse",
]


class PrefixMSE:
    """Accumulate cell counts of a stream of events; record the MSE at each grid count.

    Parameters
    ----------
    counter : CellCounter
        The binnings.
    n_grid : sequence of int
        Event counts at which to record the MSE (any order; duplicates ignored).
    """

    def __init__(self, counter: CellCounter, n_grid: Sequence[int]) -> None:
        self.counter = counter
        self.n_grid = sorted(set(int(n) for n in n_grid))
        self.counts = [np.zeros(b.n_cells, dtype=np.int64) for b in counter.binnings]
        self.seen = 0
        self.values: list[np.ndarray] = []  # one row per grid count reached
        # running sums for the spread of the events (collapse diagnostics)
        self._sum = np.zeros(counter.target.dim)
        self._sum_sq = np.zeros(counter.target.dim)

    @property
    def done(self) -> bool:
        return len(self.values) == len(self.n_grid)

    @property
    def needed(self) -> int:
        """Events still needed to reach the largest grid count."""
        return self.n_grid[-1] - self.seen if self.n_grid else 0

    def _add(self, x: np.ndarray) -> None:
        if len(x):
            for acc, c in zip(self.counts, self.counter.counts(x), strict=True):
                acc += c
            self.seen += len(x)
            self._sum += x.sum(axis=0)
            self._sum_sq += (x**2).sum(axis=0)

    def feed(self, x: np.ndarray) -> None:
        """Add a chunk of events (n, d); events beyond the largest grid count are ignored."""
        while not self.done and len(x):
            target = self.n_grid[len(self.values)]
            take = min(len(x), target - self.seen)
            self._add(x[:take])
            x = x[take:]
            if self.seen == target:
                self.values.append(np.array([mse_from_counts(c) for c in self.counts]))

    def spread(self) -> float:
        """Total standard deviation sqrt(sum_i Var x_i) of the events seen so far."""
        if self.seen < 2:
            return float("nan")
        mean = self._sum / self.seen
        var = np.maximum(self._sum_sq / self.seen - mean**2, 0.0) * self.seen / (self.seen - 1)
        return float(np.sqrt(var.sum()))

    def result(self) -> np.ndarray:
        """MSE array of shape (len(n_grid), n_binnings)."""
        if not self.done:
            raise RuntimeError(
                f"the event stream ended after {self.seen} events, before n_generated = "
                f"{self.n_grid[len(self.values)]}"
            )
        return np.vstack(self.values)


def draw_in_chunks(
    draw: Callable[[int], np.ndarray], n_total: int, chunk_size: int
) -> Iterator[np.ndarray]:
    """Yield ``n_total`` events from ``draw(m)`` in chunks of at most ``chunk_size``."""
    done = 0
    while done < n_total:
        m = min(chunk_size, n_total - done)
        yield draw(m)
        done += m


def evaluate_stream(
    chunks: Iterable[np.ndarray], counter: CellCounter, n_grid: Sequence[int]
) -> PrefixMSE:
    """Feed a stream of events into a `PrefixMSE` until its largest grid count is reached."""
    acc = PrefixMSE(counter, n_grid)
    for x in chunks:
        acc.feed(x)
        if acc.done:
            break
    return acc


def exact_mse(probabilities: Sequence[np.ndarray]) -> np.ndarray:
    """MSE of exact cell probabilities, one value per binning, shape (1, n_binnings)."""
    return np.array([[float(mse(p)) for p in probabilities]])


def replica_table(
    *,
    target: str,
    dim: int,
    n_train: int,
    generator: str,
    seed: int,
    binnings: Sequence[Binning],
    n_grid: Sequence[int],
    values: np.ndarray,
) -> pd.DataFrame:
    """Per-replica MSE table in long format (`MSE_COLUMNS`).

    ``values`` has shape (len(n_grid), len(binnings)); for exact generators n_grid is empty and
    values has one row, written with an empty n_generated.
    """
    grid = sorted(n_grid) if n_grid else [np.nan]
    rows = []
    for i, n in enumerate(grid):
        for j, b in enumerate(binnings):
            rows.append(
                (
                    target,
                    dim,
                    n_train,
                    generator,
                    seed,
                    b.coordinate,
                    b.n_quantiles,
                    b.n_cells,
                    n,
                    float(values[i, j]),
                )
            )
    df = pd.DataFrame(rows, columns=MSE_COLUMNS)
    df["n_generated"] = df["n_generated"].astype("Int64" if n_grid else "float64")
    return df
