"""The paper's GAN as a generator of the study (training lives in
`ganplify.generators.neural.gan`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ganplify.generators.neural.sampling import trained_sampler


class Gan:
    """The paper's GAN with its DeepSets discriminator, trained as an ensemble of replicas.

    Training and generation live in `ganplify.generators.neural.gan` (torch is imported only when
    used).
    """

    name: ClassVar[str] = "gan"
    exact: ClassVar[bool] = False
    neural: ClassVar[bool] = True
    dims: ClassVar[frozenset[int] | None] = None
    description: ClassVar[str] = "the paper's GAN (DeepSets discriminator), ensemble-trained"
    operational: ClassVar[frozenset[str]] = frozenset({"replicas", "checkpoint_every",
                                                       "cuda_graphs"})
    weights_file: ClassVar[str] = "generator.safetensors"
    history_columns: ClassVar[tuple[str, ...]] = ("d_loss", "g_loss", "penalty")

    def train(self, train_sets: np.ndarray, seeds: Sequence[int], options: dict,
              runtime: dict, device: str, checkpoints: Sequence[Path], config_hash: str):
        """Train the replicas as one ensemble
        (`ganplify.generators.neural.gan.training.train_ensemble`)."""
        from ganplify.generators.neural.gan import config as gan_config
        from ganplify.generators.neural.gan import training

        config = gan_config.GanConfig.from_mapping({**options, **runtime})
        return training.train_ensemble(train_sets, seeds, config, device=device,
                                       checkpoints=checkpoints, config_hash=config_hash)

    def weights_metadata(self, options: dict) -> dict[str, str]:
        return {}

    def bytes_per_event(self, options: dict, dim: int) -> int:
        """Peak activation memory per generated event and replica (for chunking)."""
        return 20 * options.get("noise_dim", 1000) + 10 * options.get("layers", 7) * \
            options.get("hidden", 256)

    def generate(self, weights: Sequence[dict], seeds: Sequence[int], n: int, chunk_size: int,
                 device: str, options: dict):
        """Events of trained replicas, [K, m, d] chunks
        (`ganplify.generators.neural.gan.training.generate`)."""
        from ganplify.generators.neural.gan import training

        return training.generate(weights, seeds, n, chunk_size=chunk_size, device=device,
                                 dropout=options.get("dropout", 0.5))

    def load_sampler(
        self, setting: Any, seed: int, replica_dir: Path
    ) -> Callable[[int, np.random.Generator], np.ndarray]:
        return trained_sampler(self, setting, replica_dir)
