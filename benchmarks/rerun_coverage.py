"""How often a rerun with new replicas lands in a run's intervals, measured on a replica pool.

    python benchmarks/rerun_coverage.py results/pool48 --generator gan --sizes 8 16

A study run with many replicas of a generator (a pool, e.g. the quick default with
``gan: {replicas: 48}``) is split at random into two disjoint groups of n replicas: the first
plays the run, the second its rerun elsewhere (a chaotic training on other kernels gives new
replicas). For every asymptotic row of the generator it counts how often the rerun's mean MSE
falls inside the run's interval of the mean (bootstrap), the symmetric t rerun interval, and the
rerun interval of the amplification table (lognormal predictive). Disjoint random groups of a
finite pool are the permutation test's setting: the spread of their difference is that of two
independent draws with the pool's variance, so the counts estimate the coverage for fresh
replicas. Prints a Markdown table per row and in all.

    python benchmarks/rerun_coverage.py results/quick --against ../avx2/results/quick

compares two runs of one study instead (e.g. the same commit on two kernel paths): for every
asymptotic row of the generator, whether each run's amplification lies in the other's interval
of the mean and rerun interval, both aggregated here from the runs' MSE tables with this
checkout's code and the first run's aggregation settings.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from ganplify.analysis.amplification import (
    GROUP,
    amplification_table,
    bootstrap_means,
    replica_asymptotes,
    rerun_interval,
    table_options,
)
from ganplify.analysis.summary import to_markdown
from ganplify.metrics.evaluation import MSE_COLUMNS
from ganplify.results import layout
from ganplify.results.io import read_table
from ganplify.study import config as cfg

METHODS = ("mean", "t", "rerun")


def asymptotic_pool(mse: pd.DataFrame, generator: str) -> dict[tuple, np.ndarray]:
    """Per group of `GROUP`: every replica's asymptotic MSE (as the amplification table)."""
    rows = mse[mse["generator"] == generator]
    pool = {}
    for key, group in rows.groupby(GROUP, sort=True):
        pool[key] = replica_asymptotes(group.sort_values("seed"), key[-1])
    return pool


def inside(values: np.ndarray, rerun: float, level: float, rng: np.random.Generator) -> dict:
    """Whether ``rerun`` lies in each method's interval computed from ``values``."""
    tail = 0.5 * (1.0 - level)
    n = len(values)
    lo, hi = np.quantile(bootstrap_means(values, 1000, rng), [tail, 1.0 - tail])
    half = stats.t.ppf(1.0 - tail, n - 1) * values.std(ddof=1) * np.sqrt(2.0 / n)
    r_lo, r_hi = rerun_interval(values, level, rng)
    return {
        "mean": lo <= rerun <= hi,
        "t": abs(rerun - values.mean()) <= half,
        "rerun": r_lo <= rerun <= r_hi,
    }


def coverage(
    pool: dict[tuple, np.ndarray], size: int, splits: int, level: float, seed: int
) -> pd.DataFrame:
    """Per row: the fraction of ``splits`` random disjoint pairs of groups of ``size`` replicas
    whose second group's mean lies in the first group's intervals."""
    rng = np.random.default_rng(seed)
    out = []
    for key, values in pool.items():
        if len(values) < 2 * size:
            raise SystemExit(f"{key}: {len(values)} replicas, fewer than two groups of {size}")
        hits = dict.fromkeys(METHODS, 0)
        for _ in range(splits):
            order = rng.permutation(len(values))
            run, rerun = values[order[:size]], values[order[size : 2 * size]]
            for method, ok in inside(run, float(rerun.mean()), level, rng).items():
                hits[method] += ok
        dim, n_train, binning, n_quantiles = key[1], key[2], key[4], key[5]
        log_sd = float(np.std(np.log(values), ddof=1)) if np.all(values > 0) else np.nan
        out.append(
            {
                "n": size,
                "setting": f"d={dim} n_train={n_train}",
                "binning": f"{binning} {n_quantiles}",
                "pool": len(values),
                "log_sd": round(log_sd, 2),
                **{m: hits[m] / splits for m in METHODS},
            }
        )
    return pd.DataFrame(out)


def asymptotic_rows(results: Path, generator: str, agg: dict) -> pd.DataFrame:
    """A run's asymptotic amplification rows of ``generator``, aggregated with this code."""
    tables = results / layout.TABLES_DIR
    mse = read_table(tables / "mse.csv", MSE_COLUMNS)
    mse["n_generated"] = mse["n_generated"].astype("Int64")
    replicas = read_table(tables / "replicas.csv")
    table = amplification_table(mse[mse["generator"] == generator], replicas, **table_options(agg))
    return table[np.isinf(table["n_generated"])].set_index(GROUP)


def cross_coverage(first: Path, second: Path, generator: str, level: float) -> pd.DataFrame:
    """Per asymptotic row: both runs' amplification, and whether each lies in the other's
    interval of the mean (``mean``) and rerun interval (``rerun``) at ``level``, as counts of
    0-2 (the first run's other aggregation settings)."""
    agg = cfg.validate(cfg.read(first / layout.CONFIG))["aggregate"] | {"interval": level}
    a, b = (asymptotic_rows(r, generator, agg) for r in (first, second))
    out = []
    for key in a.index.intersection(b.index):
        x, y = a.loc[key], b.loc[key]
        row = {"setting": f"d={key[1]} n_train={key[2]}", "binning": f"{key[4]} {key[5]}"}
        row |= {"first": round(x["amplification"], 3), "second": round(y["amplification"], 3)}
        for name, lo, hi in (
            ("mean", "amplification_lo", "amplification_hi"),
            ("rerun", "amplification_rerun_lo", "amplification_rerun_hi"),
        ):
            row[name] = int(x[lo] <= y["amplification"] <= x[hi]) + int(
                y[lo] <= x["amplification"] <= y[hi]
            )
        out.append(row)
    return pd.DataFrame(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path, help="a results folder with a replica pool")
    parser.add_argument("--generator", default="gan")
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--splits", type=int, default=400)
    parser.add_argument("--level", type=float, default=0.68)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--against", type=Path, help="a second run of the same study")
    args = parser.parse_args(argv)
    if args.against is not None:
        table = cross_coverage(args.results, args.against, args.generator, args.level)
        print(
            f"Each run's amplification inside the other's {args.level:.0%} intervals "
            "(0-2 per row)\n"
        )
        print(to_markdown(table.astype(object), labels=False))
        comparisons = 2 * len(table)
        print(
            f"\nin all: interval of the mean {table['mean'].sum()}/{comparisons}, "
            f"rerun interval {table['rerun'].sum()}/{comparisons}"
        )
        return
    mse = read_table(args.results / layout.TABLES_DIR / "mse.csv", MSE_COLUMNS)
    pool = asymptotic_pool(mse, args.generator)
    tables = [coverage(pool, n, args.splits, args.level, args.seed) for n in args.sizes]
    table = pd.concat(tables, ignore_index=True)
    print(
        f"Coverage of {args.level:.0%} intervals by a rerun of n new replicas "
        f"({args.splits} random splits of the pool per row)\n"
    )
    print(to_markdown(table.round(3), labels=False))
    summary = table.groupby("n")[list(METHODS)].mean().round(3).reset_index()
    summary.insert(1, "rows", table.groupby("n").size().to_numpy())
    print("\nAll rows (mean coverage)\n")
    print(to_markdown(summary.astype(object), labels=False))


if __name__ == "__main__":
    main()
