"""Counter-based random numbers: exactness, distribution, independence, reproducibility."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from ganplify import rng

KEYS = [0, 1, 2, 12345, 2**63 - 1, 2**64 - 1, -7]


def test_words_match_pure_python_reference():
    """int64 torch arithmetic (wrapping multiply, masked shifts) reproduces splitmix64 exactly."""
    keys = rng.replica_keys(KEYS)
    for stream, counter, first in [(0, 0, 0), (3, 7, 0), (1001, 123456789, 10), (5, 2**40, 3)]:
        words = rng.random_words(keys, stream, counter, 4, first)
        for k, key in enumerate(KEYS):
            expected = [
                rng.to_int64(rng.reference_word(key % 2**64, stream, counter, first + i))
                for i in range(4)
            ]
            assert words[k].tolist() == expected


def test_counter_tensor_equals_int():
    keys = rng.replica_keys([3, 4])
    for counter in (0, 5, 2**33):
        a = rng.uniform(keys, 2, counter, (100,))
        b = rng.uniform(keys, 2, torch.tensor(counter), (100,))
        assert torch.equal(a, b)


def test_uniform_dtype_range_and_grid():
    keys = rng.replica_keys([1, 2, 3])
    u = rng.uniform(keys, 1, 0, (50, 40))
    assert u.dtype == torch.float32 and u.device == keys.device and u.shape == (3, 50, 40)
    assert u.min() >= 0.0 and u.max() < 1.0
    scaled = u.double() * 2**24
    assert torch.equal(scaled, scaled.round())  # multiples of 2**-24
    r = rng.uniform_range(keys, 1, 0, (50, 40), -0.1, 0.1)
    assert r.min() >= -0.1 and r.max() < 0.1


def test_uniform_ks():
    """Kolmogorov-Smirnov at a fixed seed: 200k draws are consistent with U[0, 1)."""
    u = rng.uniform(rng.replica_keys([2024]), 9, 0, (200_000,))[0].double().numpy()
    assert stats.kstest(u, "uniform").pvalue > 1e-3
    # and the (top-24-bit) grid does not bias the mean: E = 1/2 - 2**-25
    assert abs(u.mean() - 0.5) < 5 * np.sqrt(1 / 12 / u.size)


def _max_abs_corr(a: np.ndarray, b: np.ndarray) -> float:
    return abs(np.corrcoef(a, b)[0, 1])


def test_independence_across_keys_streams_counters():
    """Sequences of neighbouring keys, streams and counters are uncorrelated and jointly uniform."""
    n = 100_000
    limit = 5.0 / np.sqrt(n)  # 5 sigma of a correlation coefficient under independence
    base = rng.uniform(rng.replica_keys([0]), 0, 0, (n,))[0].double().numpy()
    others = {
        "key": rng.uniform(rng.replica_keys([1]), 0, 0, (n,))[0],
        "stream": rng.uniform(rng.replica_keys([0]), 1, 0, (n,))[0],
        "counter": rng.uniform(rng.replica_keys([0]), 0, 1, (n,))[0],
        "shifted": rng.uniform(rng.replica_keys([0]), 0, 0, (n,), offset=1)[0],
    }
    for name, other in others.items():
        other = other.double().numpy()
        assert _max_abs_corr(base, other) < limit, name
        # joint uniformity of pairs on a 10 x 10 grid (chi-square, 81 degrees of freedom)
        hist, _, _ = np.histogram2d(base, other, bins=10, range=[[0, 1], [0, 1]])
        assert stats.chisquare(hist.ravel()).pvalue > 1e-4, name


def test_replica_draws_do_not_depend_on_the_ensemble():
    together = rng.uniform(rng.replica_keys([5, 6, 7]), 4, 11, (30,))
    alone = rng.uniform(rng.replica_keys([6]), 4, 11, (30,))
    assert torch.equal(together[1], alone[0])
    assert not torch.equal(together[0], together[1])


def test_reproducible_and_chunkable():
    keys = rng.replica_keys([8, 9])
    full = rng.uniform(keys, 3, 2, (25,))
    assert torch.equal(full, rng.uniform(keys, 3, 2, (25,)))
    head, tail = rng.uniform(keys, 3, 2, (10,)), rng.uniform(keys, 3, 2, (15,), offset=10)
    parts = torch.cat([head, tail], 1)
    assert torch.equal(full, parts)
    # the shape only arranges the sequence
    assert torch.equal(rng.uniform(keys, 3, 2, (5, 5)).flatten(1), full)


def test_keep_mask_lanes_match_reference():
    """Element i uses 16-bit lane i % 4 (low lane first) of word i // 4."""
    p = 0.3
    keep = rng.keep_mask(rng.replica_keys([77]), 2, 5, (12,), p)[0].tolist()
    expected = []
    for i in range(12):
        lane = (rng.reference_word(77, 2, 5, i // 4) >> (16 * (i % 4))) & 0xFFFF
        expected.append(lane >= round(p * 2**16))
    assert keep == expected


@pytest.mark.parametrize("p", [0.5, 0.3, 0.0])
def test_keep_mask_frequency_and_offsets(p):
    keys = rng.replica_keys([10, 11])
    n = 200_000
    keep = rng.keep_mask(keys, 1, 0, (n,), p)
    assert keep.dtype == torch.bool and keep.shape == (2, n)
    rate = keep.double().mean(1)
    sigma = np.sqrt(p * (1 - p) / n)
    assert torch.all((rate - (1 - p)).abs() <= 5 * sigma + 1e-12)
    # chunks at offsets that are not multiples of the four lanes per word
    parts = [rng.keep_mask(keys, 1, 0, (m,), p, offset=o) for o, m in [(0, 3), (3, 6), (9, 11)]]
    assert torch.equal(torch.cat(parts, 1), keep[:, :20])


def test_permutations():
    keys = rng.replica_keys([1, 2, 3])
    perms = rng.permutations(keys, 3, 0, 50)
    assert perms.dtype == torch.int64 and perms.shape == (3, 50)
    for row in perms:
        assert sorted(row.tolist()) == list(range(50))
    assert not torch.equal(perms[0], perms[1])
    assert torch.equal(perms, rng.permutations(keys, 3, 0, 50))
    assert torch.equal(perms[2], rng.permutations(rng.replica_keys([3]), 3, 0, 50)[0])
    # where element 0 lands is uniform over positions (chi-square over 4000 counters)
    first = torch.stack([rng.permutations(keys[:1], 3, c, 5)[0] for c in range(4000)])
    position = (first == 0).int().argmax(1).numpy()
    assert stats.chisquare(np.bincount(position, minlength=5)).pvalue > 1e-4


def test_seeds_are_reduced_modulo_2_64():
    assert torch.equal(rng.replica_keys([-1]), rng.replica_keys([2**64 - 1]))
    assert rng.replica_keys([2**64 + 5]).item() == 5


def test_keep_threshold_validates():
    assert rng.keep_threshold(0.5) == 2**15
    with pytest.raises(ValueError):
        rng.keep_threshold(1.0)
