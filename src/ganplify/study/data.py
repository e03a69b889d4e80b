"""The random inputs of a replica: its training set and the stream its events are drawn from.

Both derive from the replica's seed alone (`ganplify.streams.DataStream`), so every generator of
a setting trains on the same points, and a replica does not depend on the study around it.
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING

import numpy as np

from ganplify.streams import DataStream

if TYPE_CHECKING:
    from ganplify.study.plan import Setting
    from ganplify.truth.shells import Shell


def stable_id(name: str) -> int:
    """A stable non-negative integer for a name (for seeding streams by generator)."""
    return zlib.crc32(name.encode())


def training_set(target: Shell, n_train: int, seed: int) -> np.ndarray:
    """The training set of replica ``seed``: n_train truth points, shared by all generators."""
    rng = np.random.default_rng([seed, int(DataStream.TRAIN_DATA), target.dim, n_train])
    return target.sample(n_train, rng)


def evaluation_rng(seed: int, setting: Setting) -> np.random.Generator:
    """numpy stream for generating a replica's events, independent of its training set."""
    return np.random.default_rng(
        [seed, int(DataStream.EVALUATE), setting.dim, setting.n_train, stable_id(setting.generator)]
    )
