"""Counter-based random numbers for ensembles of independently seeded replicas.

Every random number is a pure function of (replica key, stream id, counter, word index):

    seed   = mix(mix(mix(key + G) + (stream + 1) G) + (counter + 1) G)     per replica, [K]
    word_j = mix(seed + (j + 1) G)                                         per 64-bit word

with ``mix`` the splitmix64 finaliser and ``G`` = 0x9E3779B97F4A7C15, the golden-ratio
increment of splitmix64: for fixed (key, stream, counter) the words are exactly the splitmix64
sequence seeded with ``seed``. Everything runs as batched int64 tensor ops on the keys' device,
with no Python loop over replicas and no host synchronisation. So replica k's numbers do not
depend on which other replicas share the batch, and the same code can be captured in a CUDA
graph with ``counter`` an int64 device tensor that is incremented in place.

How words become numbers:

* `uniform`: one float32 per word, the word's top 24 bits times 2**-24 (in [0, 1)).
* `keep_mask` (dropout): four Bernoulli draws per word, one per 16-bit lane (lane 0 = the low
  bits); a lane keeps its unit when lane / 2**16 >= p, i.e. with probability 1 - p rounded to
  a multiple of 2**-16 (exact for the paper's p = 0.5). Packing four draws per word makes the
  masks, the bulk of all draws, four times cheaper.
* `permutations`: argsort of 63-bit words.

int64 multiplication wraps modulo 2**64 on every torch backend (two's complement); right shifts
are made logical with a mask, and constants above 2**63 are written as negative int64. The
tests pin all of this against a pure-Python reference (`reference_word`). The arithmetic is done
in place on one scratch buffer: on CPU, allocating fresh multi-megabyte tensors costs more than
the hashing itself (page faults).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import torch

# splitmix64 constants as signed int64 (the unsigned values are > 2**63).
GOLDEN = -7046029254386353131  # 0x9E3779B97F4A7C15
MIX1 = -4658895280553007687  # 0xBF58476D1CE4E5B9
MIX2 = -7723592293110705685  # 0x94D049BB133111EB
_MASK64 = (1 << 64) - 1
_LANES = 4  # 16-bit Bernoulli lanes per 64-bit word

Counter = int | torch.Tensor


def to_int64(value: int) -> int:
    """Wrap any Python int to the signed int64 range (i.e. reduce it modulo 2**64)."""
    value &= _MASK64
    return value - (1 << 64) if value >= 1 << 63 else value


def _mix_(z: torch.Tensor, scratch: torch.Tensor) -> torch.Tensor:
    """splitmix64 finaliser applied in place to ``z`` (int64), using ``scratch`` (same shape)."""
    for shift, factor in ((30, MIX1), (27, MIX2), (31, None)):
        torch.bitwise_right_shift(z, shift, out=scratch)
        scratch.bitwise_and_((1 << (64 - shift)) - 1)  # logical, not arithmetic, shift
        z.bitwise_xor_(scratch)
        if factor is not None:
            z.mul_(factor)
    return z


def mix64(z: torch.Tensor) -> torch.Tensor:
    """splitmix64 finaliser (a bijection of 64-bit words with full avalanche); returns a copy."""
    out = z.to(torch.int64, copy=True)
    return _mix_(out, torch.empty_like(out))


def replica_keys(seeds: Sequence[int], device: torch.device | str = "cpu") -> torch.Tensor:
    """RNG keys (int64 tensor [K]) of replicas from their integer seeds (taken modulo 2**64)."""
    return torch.tensor([to_int64(int(s)) for s in seeds], dtype=torch.int64, device=device)


def stream_seeds(keys: torch.Tensor, stream: int, counter: Counter) -> torch.Tensor:
    """Per-replica 64-bit seed of one (stream, counter) pair, int64 tensor [K].

    ``counter`` may be a Python int or an int64 tensor on the keys' device (0-d, or
    broadcastable to [K]); a tensor is read when the op runs, which is what lets a captured
    CUDA graph advance it in place.
    """
    h = mix64(keys + GOLDEN)
    h = mix64(h + to_int64((stream + 1) * GOLDEN))
    if isinstance(counter, torch.Tensor):
        return mix64(h + (counter + 1) * GOLDEN)
    return mix64(h + to_int64((counter + 1) * GOLDEN))


def random_words(
    keys: torch.Tensor, stream: int, counter: Counter, n_words: int, first: int = 0
) -> torch.Tensor:
    """Words ``first .. first + n_words - 1`` of each replica's sequence, int64 tensor [K, n].

    Parameters
    ----------
    keys : Tensor, int64 [K]
        Replica keys (see `replica_keys`).
    stream : int
        What the numbers are for; different streams give independent sequences.
    counter : int or Tensor
        E.g. the training step; different counters give independent sequences.
    n_words : int
        Number of 64-bit words per replica.
    first : int
        Index of the first word, so that a long sequence can be drawn in chunks.
    """
    seeds = stream_seeds(keys, stream, counter)
    z = torch.arange(first + 1, first + n_words + 1, dtype=torch.int64, device=keys.device)
    z = z.mul_(GOLDEN).unsqueeze(0).repeat(keys.shape[0], 1).add_(seeds.unsqueeze(1))
    return _mix_(z, torch.empty_like(z))


def _numel(shape: Sequence[int]) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


def uniform(
    keys: torch.Tensor, stream: int, counter: Counter, shape: Sequence[int], offset: int = 0
) -> torch.Tensor:
    """Uniform float32 numbers in [0, 1), multiples of 2**-24, tensor [K, *shape].

    Element i is the top 24 bits of word ``offset + i``; arguments as for `random_words`.
    """
    words = random_words(keys, stream, counter, _numel(shape), offset)
    words.bitwise_right_shift_(40).bitwise_and_(0xFFFFFF)  # logical shift: drop copied sign bits
    return words.to(torch.float32).mul_(2.0**-24).view(keys.shape[0], *shape)


def uniform_range(
    keys: torch.Tensor,
    stream: int,
    counter: Counter,
    shape: Sequence[int],
    low: float,
    high: float,
    offset: int = 0,
) -> torch.Tensor:
    """Uniform float32 numbers in [low, high), tensor [K, *shape] (see `uniform`)."""
    return uniform(keys, stream, counter, shape, offset).mul_(high - low).add_(low)


def normal(
    keys: torch.Tensor, stream: int, counter: Counter, shape: Sequence[int], offset: int = 0
) -> torch.Tensor:
    """Standard normal float32 numbers, tensor [K, *shape], by the Box-Muller transform.

    Element i uses the uniforms of words ``2 (offset + i)`` and ``2 (offset + i) + 1``
    (24 bits each, so |values| stay below sqrt(2 log 2**24) = 5.77: a tail cut at probability
    ~1e-8, irrelevant at the event counts here).
    """
    n = _numel(shape)
    u = uniform(keys, stream, counter, (n, 2), 2 * offset)
    radius = torch.log1p(-u[..., 0]).mul_(-2.0).sqrt_()  # 1 - u is in (0, 1]
    return radius.mul_(torch.cos(u[..., 1] * (2.0 * torch.pi))).view(keys.shape[0], *shape)


def keep_threshold(p: float) -> int:
    """16-bit threshold of `keep_mask`: a lane keeps when its value is >= this."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"drop probability must be in [0, 1), got {p}")
    return round(p * 2**16)


def keep_mask(
    keys: torch.Tensor,
    stream: int,
    counter: Counter,
    shape: Sequence[int],
    p: float,
    offset: int = 0,
) -> torch.Tensor:
    """Dropout keep decisions, bool tensor [K, *shape], True with probability 1 - p.

    Element i uses 16-bit lane (offset + i) % 4 of word (offset + i) // 4 (lane 0 = low bits),
    read as an unsigned number u; it is kept when u >= round(p * 2**16).
    """
    n = _numel(shape)
    first = offset // _LANES
    n_words = -(-(offset + n) // _LANES) - first
    words = random_words(keys, stream, counter, n_words, first)
    lanes = _lanes16(words)[:, offset - first * _LANES :][:, :n]
    # lanes are signed int16; flipping the sign bit maps unsigned order onto signed order
    lanes = lanes.bitwise_xor(-(1 << 15))
    return (lanes >= keep_threshold(p) - (1 << 15)).view(keys.shape[0], *shape)


def _lanes16(words: torch.Tensor) -> torch.Tensor:
    """The four 16-bit lanes of each word, low lane first, int16 tensor [K, 4 n]."""
    if sys.byteorder != "little":  # pragma: no cover - torch runs on little-endian machines
        raise RuntimeError("ganplify.rng.keep_mask assumes a little-endian machine")
    return words.view(torch.int16)


def permutations(keys: torch.Tensor, stream: int, counter: Counter, n: int) -> torch.Tensor:
    """One random permutation of range(n) per replica, int64 tensor [K, n].

    The argsort of 63-bit words; ties (probability ~n**2 / 2**64) are broken by index (stable
    sort), so the result is deterministic on every device.
    """
    words = random_words(keys, stream, counter, n).bitwise_and_((1 << 63) - 1)
    return torch.argsort(words, dim=1, stable=True)


def reference_word(key: int, stream: int, counter: int, index: int) -> int:
    """Pure-Python reference of word ``index`` of a sequence, as an unsigned 64-bit int."""
    gamma = GOLDEN & _MASK64

    def mix(z: int) -> int:
        z &= _MASK64
        z = ((z ^ (z >> 30)) * (MIX1 & _MASK64)) & _MASK64
        z = ((z ^ (z >> 27)) * (MIX2 & _MASK64)) & _MASK64
        return z ^ (z >> 31)

    h = mix(key + gamma)
    h = mix(h + (stream + 1) * gamma)
    h = mix(h + (counter + 1) * gamma)
    return mix(h + (index + 1) * gamma)
