"""Benchmark: assigning generated events to quantile cells (prints a table).

Run: python benchmarks/binning.py [--n 1000000] [--repeat 5]

Times `CellCounter.counts` (hyperspherical transform, cell assignment, bincount) for the
paper's binnings, as the median of --repeat runs on the current machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from ganplify.metrics.quantiles import Binning, CellCounter
from ganplify.truth.shells import GaussianShell

CASES = [
    (1, "x", 50),
    (2, "joint", 7),
    (5, "r", 10),
    (5, "joint", 3),
    (5, "joint", 6),
    (8, "joint", 3),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="events per run")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"numpy {np.__version__}, {args.n:,} events, median of {args.repeat}"
    )
    print(f"{'d':>2} {'binning':>8} {'q':>3} {'cells':>7} {'seconds':>8} {'Mevents/s':>10}")
    for dim, coordinate, q in CASES:
        target = GaussianShell(dim)
        binning = Binning(coordinate, q, dim)
        counter = CellCounter(target, [binning])
        x = target.sample(args.n, np.random.default_rng(0))
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            counter.counts(x)
            times.append(time.perf_counter() - start)
        t = float(np.median(times))
        print(
            f"{dim:>2} {coordinate:>8} {q:>3} {binning.n_cells:>7} {t:>8.3f} "
            f"{args.n / t / 1e6:>10.1f}"
        )


if __name__ == "__main__":
    main()
