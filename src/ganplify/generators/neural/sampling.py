"""Generating events from trained replicas: the argument checks every neural generator's
`generate` makes, and a sampler of one saved replica for figures.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def trained_sampler(
    gen: Any, setting: Any, replica_dir: Path
) -> Callable[[int, np.random.Generator], np.ndarray]:
    """Sampler of one trained replica of a neural generator from its saved weights (for
    figures): each call generates on the CPU with a fresh seed drawn from ``rng``."""
    from ganplify.generators.neural import io as training
    from ganplify.study.jobs import replica_binding

    seed = int(Path(replica_dir).name.removeprefix("seed"))
    weights = training.load_generator(
        Path(replica_dir) / gen.weights_file, replica_binding(setting, seed)
    )
    options = dict(setting.options)

    def draw(n: int, rng: np.random.Generator) -> np.ndarray:
        chunks = gen.generate([weights], [int(rng.integers(2**62))], n, 8192, "cpu", options)
        return np.concatenate([c[0] for c in chunks])

    return draw
