"""Choose the density models' defaults on seeds the studies never use (prints a table).

Run: python benchmarks/tune_density_models.py flow --grid lr=1e-3,3e-3 holdout=0,0.2 \
         [--dim 1] [--n-train 100] [--first-seed 100000] [--replicas 20] [--quantiles 20]

Trains every combination of the grid (other options at the model's defaults, or as given by
--set) on replicas seeded --first-seed, --first-seed + 1, ... (the studies' seeds start at 0
and stay far below 100000), generates --n-generated events per replica (default 20,000) and
reports the mean asymptotic amplification on --quantiles quantiles of the first binning
coordinate, with its standard error over replicas, the median best epoch and the wall time.
The chosen defaults and the table they came from are in config/README.md.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import time

import numpy as np
import torch

from ganplify.generators.neural.flows import training as flows
from ganplify.metrics.quantiles import Binning, CellCounter, asymptotic_mse, mse_from_counts
from ganplify.study.data import training_set
from ganplify.truth.shells import GaussianShell


def parse_grid(items: list[str]) -> dict[str, list[float]]:
    grid = {}
    for item in items:
        key, _, values = item.partition("=")
        if not values:
            raise SystemExit(f"grid entry {item!r} is not key=v1,v2,...")
        grid[key] = [float(v) if any(c in v for c in ".e") else int(v) for v in values.split(",")]
    return grid


def evaluate(
    name: str,
    options: dict,
    target: GaussianShell,
    sets: np.ndarray,
    seeds: list[int],
    binning: Binning,
    n_generated: int,
) -> tuple[float, float, float, float]:
    start = time.perf_counter()
    result = flows.train_ensemble(name, sets, seeds, options, device="auto", log_every=1e9)
    wall = time.perf_counter() - start
    counter = CellCounter(target, [binning])
    arch = flows.MODELS[name].config_type.from_mapping(options).architecture()
    ok = [k for k, s in enumerate(result.status) if s == "done"]
    weights = [result.generator_weights[k] for k in ok]
    x = np.concatenate(
        list(flows.generate(name, weights, [seeds[k] for k in ok], n_generated, arch)), axis=1
    )
    mse = np.array([mse_from_counts(counter.counts(xi)[0]) for xi in x])
    amp = (
        (1 / binning.n_cells)
        * (1 - 1 / binning.n_cells)
        / asymptotic_mse(mse, binning.n_cells, n_generated).mean()
        / sets.shape[1]
    )
    # standard error of the mean MSE, propagated to the amplification (first order)
    rel = (
        asymptotic_mse(mse, binning.n_cells, n_generated).std(ddof=1)
        / np.sqrt(len(mse))
        / asymptotic_mse(mse, binning.n_cells, n_generated).mean()
    )
    epochs = np.median([float(w["best_epoch"]) for w in weights])
    return float(amp), float(amp * rel), float(epochs), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=sorted(flows.MODELS))
    parser.add_argument("--grid", nargs="+", default=[], help="key=v1,v2 ...")
    parser.add_argument("--set", nargs="+", default=[], help="fixed key=value options")
    parser.add_argument("--dim", type=int, default=1)
    parser.add_argument("--n-train", type=int, default=100)
    parser.add_argument("--first-seed", type=int, default=100_000)
    parser.add_argument("--replicas", type=int, default=20)
    parser.add_argument("--quantiles", type=int, default=20)
    parser.add_argument("--n-generated", type=int, default=20_000)
    args = parser.parse_args()
    grid = parse_grid(args.grid)
    fixed = {k: v[0] for k, v in parse_grid(args.set).items()}
    target = GaussianShell(args.dim)
    binning = Binning(target.coordinates[0], args.quantiles, args.dim)
    seeds = list(range(args.first_seed, args.first_seed + args.replicas))
    sets = np.stack([training_set(target, args.n_train, s) for s in seeds])
    print(
        f"# {args.model}, d={args.dim}, n_train={args.n_train}, seeds {seeds[0]}.."
        f"{seeds[-1]}, {binning.label}, {args.n_generated:,} events per replica; "
        f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"
    )
    keys = list(grid)
    print(" ".join(f"{k:>9}" for k in keys), f"{'ampl':>7} {'+-':>6} {'epoch':>6} {'wall s':>7}")
    for values in itertools.product(*(grid[k] for k in keys)):
        options = {**fixed, **dict(zip(keys, values, strict=True))}
        amp, err, epochs, wall = evaluate(
            args.model, options, target, sets, seeds, binning, args.n_generated
        )
        print(
            " ".join(f"{v:>9g}" for v in values),
            f"{amp:7.2f} {err:6.2f} {epochs:6.0f} {wall:7.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
