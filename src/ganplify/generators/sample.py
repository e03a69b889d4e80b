"""The truth itself as a generator: n truth-sampled events, the paper's sample band."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ganplify.generators.base import ReplicaFit
from ganplify.truth.shells import Shell


class Sample:
    """The truth itself: n truth-sampled events, the paper's sample band."""

    name: ClassVar[str] = "sample"
    exact: ClassVar[bool] = False
    neural: ClassVar[bool] = False
    dims: ClassVar[frozenset[int] | None] = None
    description: ClassVar[str] = "truth-sampled events (the sample baseline)"
    operational: ClassVar[frozenset[str]] = frozenset({"replicas"})

    def fit(
        self, target: Shell, train_sets: np.ndarray, seeds: Sequence[int], options: dict
    ) -> list[ReplicaFit]:
        return [ReplicaFit(int(s)) for s in seeds]

    def sampler(
        self, target: Shell, replica: ReplicaFit
    ) -> Callable[[int, np.random.Generator], np.ndarray]:
        return target.sample

    def load_sampler(
        self, setting: Any, seed: int, replica_dir: Path
    ) -> Callable[[int, np.random.Generator], np.ndarray]:
        """Sampler of a finished replica of a `study.Setting` (for figures)."""
        return setting.make_target().sample
