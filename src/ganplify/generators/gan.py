"""The paper's GAN as a generator of the study (training lives in
`ganplify.generators.neural.gan`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ganplify.generators.base import (
    SNAPSHOTS_SCHEMA,
    Generator,
    affine_parameters,
    schema_fragment,
)
from ganplify.generators.neural.sampling import trained_sampler
from ganplify.results import layout


class Gan(Generator):
    """The paper's GAN with its DeepSets discriminator, trained as an ensemble of replicas.

    Training and generation live in `ganplify.generators.neural.gan` (torch is imported only when
    used).
    """

    name: ClassVar[str] = "gan"
    label: ClassVar[str] = "GAN"
    color: ClassVar[str] = "tab:orange"
    order: ClassVar[int] = 40
    description: ClassVar[str] = (
        "the paper's GAN (DeepSets discriminator), ensemble-trained; "
        "every default is the paper's protocol (section 2)"
    )
    neural: ClassVar[bool] = True
    paper_model: ClassVar[bool] = True
    adversarial: ClassVar[bool] = True
    dim_options: ClassVar[bool] = True
    operational: ClassVar[frozenset[str]] = frozenset(
        {"replicas", "checkpoint_every", "cuda_graphs", "snapshots"}
    )
    history_columns: ClassVar[tuple[str, ...]] = ("d_loss", "g_loss", "penalty")
    weights_file: ClassVar[str] = "generator.safetensors"
    replica_files: ClassVar[tuple[str, ...]] = (
        "generator.safetensors",
        layout.LOSSES,
        layout.LEARNING,
        *layout.CHECKPOINT_FILES,
    )
    options_schema: ClassVar[dict] = {
        **schema_fragment("""
      epochs:
        type: integer
        minimum: 1
        default: 10000
        description: >-
          training epochs, >= 1 (paper: 10000)
      batch_size:
        type: integer
        minimum: 2
        default: 10
        description: >-
          batch size, >= 2 (paper: 10)
      lr:
        type: number
        exclusiveMinimum: 0
        default: 5.0e-05
        description: >-
          Adam learning rate, > 0 (paper: 5e-5)
      betas:
        type: array
        minItems: 2
        maxItems: 2
        items: {exclusiveMaximum: 1, minimum: 0, type: number}
        default: [0.5, 0.9]
        description: >-
          Adam betas, two numbers in [0, 1) (paper: [0.5, 0.9])
      lr_decay:
        type: number
        exclusiveMinimum: 0
        default: 0.9
        description: >-
          learning-rate factor per decay period, > 0 (paper: 0.9)
      lr_decay_every:
        type: integer
        minimum: 1
        default: 1000
        description: >-
          epochs per learning-rate decay, >= 1 (paper: 1000)
      gamma:
        type: number
        minimum: 0
        default: 0.01
        description: >-
          weight of the Roth et al. gradient penalty, >= 0 (paper: 0.01)
      data_noise:
        type: number
        minimum: 0
        default: 0.1
        description: >-
          half-width of the uniform noise on training data at every discriminator evaluation, >=
          0 (paper: 0.1)
      noise_dim:
        type: integer
        minimum: 1
        default: 1000
        description: >-
          generator input size, >= 1 (paper: 1000)
      hidden:
        type: integer
        minimum: 1
        default: 256
        description: >-
          hidden layer width, >= 1 (paper: 256)
      layers:
        type: integer
        minimum: 1
        default: 7
        description: >-
          hidden layers of both networks, >= 1 (paper: 7)
      dropout:
        type: number
        minimum: 0
        exclusiveMaximum: 1
        default: 0.5
        description: >-
          dropout probability in [0, 1) (paper: 0.5; active when generating)
      embedding:
        type: integer
        minimum: 1
        default: 32
        description: >-
          DeepSets embedding size, >= 1 (paper: 32)
      set_input:
        type: string
        enum: [differences, points]
        default: differences
        description: >-
          what the DeepSets embedding sees: 'differences' B - x (the paper's text) or 'points' B
      checkpoint_every:
        type: integer
        minimum: 0
        default: 500
        description: >-
          epochs between checkpoints (0: only at the end and on signals); does not change
          results
      cuda_graphs:
        type: string
        enum: [auto, 'on', 'off']
        default: auto
        description: >-
          capture the training step in a CUDA graph on GPUs (auto falls back to eager); does not
          change results
    """),
        "snapshots": SNAPSHOTS_SCHEMA,
    }

    def check_options(self, options: Mapping[str, Any], n_train: int) -> str | None:
        batch_size = {**self.option_defaults(), **options}["batch_size"]
        if n_train < batch_size:
            # an epoch is n_train // batch_size batches: none at all below one batch
            return (
                f"batch_size = {batch_size}: larger than the training set; a batch is "
                "batch_size distinct training points, so use batch_size <= n_train"
            )
        return None

    def parameter_count(self, options: Mapping[str, Any], dim: int) -> int:
        """Generator and discriminator (`ganplify.generators.neural.gan.networks.Architecture`):
        the generator maps noise_dim through `layers` hidden layers to d; the discriminator's
        Phi maps d -> hidden -> hidden -> embedding, then d + embedding through `layers`
        hidden layers to 1."""
        o = {**self.option_defaults(), **options}
        h, layers, m = o["hidden"], o["layers"], o["embedding"]
        generator = affine_parameters([o["noise_dim"], *[h] * layers, dim])
        phi = affine_parameters([dim, h, h, m])
        main = affine_parameters([dim + m, *[h] * layers, 1])
        return generator + phi + main

    def train(
        self,
        train_sets: np.ndarray,
        seeds: Sequence[int],
        options: dict,
        runtime: dict,
        device: str,
        checkpoints: Sequence[Path],
        config_hash: str,
        hook=None,
        hook_epochs=(),
    ):
        """Train the replicas as one ensemble
        (`ganplify.generators.neural.gan.training.train_ensemble`)."""
        from ganplify.generators.neural.gan import config as gan_config
        from ganplify.generators.neural.gan import training

        config = gan_config.GanConfig.from_mapping({**options, **runtime})
        return training.train_ensemble(
            train_sets,
            seeds,
            config,
            device=device,
            checkpoints=checkpoints,
            config_hash=config_hash,
            hook=hook,
            hook_epochs=hook_epochs,
        )

    def weights_metadata(self, options: dict) -> dict[str, str]:
        return {}

    def bytes_per_event(self, options: dict, dim: int) -> int:
        """Peak activation memory per generated event and replica (for chunking)."""
        opts = {**self.option_defaults(), **options}
        return 20 * opts["noise_dim"] + 10 * opts["layers"] * opts["hidden"]

    def generate(
        self,
        weights: Sequence[dict],
        seeds: Sequence[int],
        n: int,
        chunk_size: int,
        device: str,
        options: dict,
    ):
        """Events of trained replicas, [K, m, d] chunks
        (`ganplify.generators.neural.gan.training.generate`)."""
        from ganplify.generators.neural.gan import training

        return training.generate(
            weights,
            seeds,
            n,
            chunk_size=chunk_size,
            device=device,
            dropout={**self.option_defaults(), **options}["dropout"],
        )

    def load_sampler(
        self, setting: Any, seed: int, replica_dir: Path
    ) -> Callable[[int, np.random.Generator], np.ndarray]:
        return trained_sampler(self, setting, replica_dir)
