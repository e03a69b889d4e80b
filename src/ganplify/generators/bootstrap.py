"""The training set resampled with replacement: a control that cannot amplify."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ganplify.generators.base import Generator, ReplicaFit, replica_training_set
from ganplify.truth.shells import Shell


class Bootstrap(Generator):
    """Resampling the training set with replacement.

    It carries no information beyond its training set, so its amplification cannot exceed 1:
    a control of the whole pipeline.
    """

    name: ClassVar[str] = "bootstrap"
    label: ClassVar[str] = "bootstrap"
    color: ClassVar[str] = "tab:gray"
    order: ClassVar[int] = 20
    description: ClassVar[str] = "the training set resampled with replacement (a control)"

    def fit(
        self, target: Shell, train_sets: np.ndarray, seeds: Sequence[int], options: dict
    ) -> list[ReplicaFit]:
        return [ReplicaFit(int(s), data=x) for s, x in zip(seeds, train_sets, strict=True)]

    def sampler(
        self, target: Shell, replica: ReplicaFit
    ) -> Callable[[int, np.random.Generator], np.ndarray]:
        x = replica.data

        def draw(n: int, rng: np.random.Generator) -> np.ndarray:
            return x[rng.integers(len(x), size=n)]

        return draw

    def load_sampler(
        self, setting: Any, seed: int, replica_dir: Path
    ) -> Callable[[int, np.random.Generator], np.ndarray]:
        return self.sampler(None, ReplicaFit(seed, data=replica_training_set(setting, seed)))
