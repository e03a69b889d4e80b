"""The truth itself as a generator: n truth-sampled events, the paper's sample band."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ganplify.generators.base import Generator, ReplicaFit
from ganplify.truth.shells import Shell


class Sample(Generator):
    """The truth itself: n truth-sampled events, the paper's sample band."""

    name: ClassVar[str] = "sample"
    label: ClassVar[str] = "sample"
    color: ClassVar[str] = "tab:blue"
    order: ClassVar[int] = 0
    description: ClassVar[str] = "truth-sampled events (the paper's sample band)"
    truth_sample: ClassVar[bool] = True

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
