"""Prefix MSE of event streams."""

import numpy as np
import pytest

from ganplify.metrics import quantiles as qt
from ganplify.metrics.evaluation import PrefixMSE, draw_in_chunks, replica_table
from ganplify.truth.shells import GaussianShell
from tests.helpers import prefix_mse


def test_prefix_mse_equals_direct_computation_for_any_chunking():
    target = GaussianShell(2)
    binnings = qt.binnings_for(2, [10], [4])
    counter = qt.CellCounter(target, binnings)
    x = target.sample(5000, np.random.default_rng(0))
    grid = [7, 100, 1234, 5000]
    direct = np.array([[qt.mse_from_counts(c) for c in counter.counts(x[:n])] for n in grid])
    for size in (1, 99, 1000, 5000, 7000):
        chunks = (x[i : i + size] for i in range(0, len(x), size))
        np.testing.assert_allclose(prefix_mse(chunks, counter, grid), direct, rtol=1e-13)


def test_stream_too_short_is_an_error():
    target = GaussianShell(1)
    counter = qt.CellCounter(target, [qt.Binning("x", 10, 1)])
    acc = PrefixMSE(counter, [10, 100])
    acc.feed(target.sample(50, np.random.default_rng(0)))
    assert acc.needed == 50
    with pytest.raises(RuntimeError, match="before n_generated = 100"):
        acc.result()


def test_draw_in_chunks_sizes():
    sizes = [len(c) for c in draw_in_chunks(lambda m: np.zeros((m, 1)), 2500, 1000)]
    assert sizes == [1000, 1000, 500]


def test_replica_table_layout():
    bins = qt.binnings_for(1, [10, 20], [])
    t = replica_table(
        target="gaussian_shell",
        dim=1,
        n_train=100,
        generator="sample",
        seed=3,
        binnings=bins,
        n_grid=[200, 100],
        values=np.arange(4.0).reshape(2, 2),
    )
    assert list(t["n_generated"]) == [100, 100, 200, 200]
    assert list(t["n_quantiles"]) == [10, 20, 10, 20]
    exact = replica_table(
        target="gaussian_shell",
        dim=1,
        n_train=100,
        generator="fit",
        seed=3,
        binnings=bins,
        n_grid=[],
        values=np.array([[1.0, 2.0]]),
    )
    assert exact["n_generated"].isna().all() and len(exact) == 2


def test_spread_of_truth_events_matches_the_truth():
    """Total std of truth events = sqrt(mu^2 + sigma^2); a collapsed stream has a tiny one."""
    target = GaussianShell(5)
    counter = qt.CellCounter(target, [qt.Binning("r", 10, 5)])
    acc = PrefixMSE(counter, [200_000])
    acc.feed(target.sample(200_000, np.random.default_rng(1)))
    # Var of the variance estimate of a sum is small: 1% is > 10 standard errors here
    assert acc.spread() == pytest.approx(target.total_std(), rel=0.01)
    flat = PrefixMSE(counter, [100])
    flat.feed(np.full((100, 5), 0.3))
    assert flat.spread() == pytest.approx(0.0, abs=1e-7)
