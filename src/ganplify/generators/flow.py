"""The masked autoregressive spline flow as a generator of the study
(networks and training in `ganplify.generators.neural.flows`).
"""

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


class Flow(Generator):
    """A masked autoregressive rational-quadratic spline flow
    (`ganplify.generators.neural.flows`), trained by maximum likelihood (a fixed schedule by
    default; early stopping with ``holdout > 0``)."""

    name: ClassVar[str] = "flow"
    label: ClassVar[str] = "spline flow"
    color: ClassVar[str] = "tab:red"
    order: ClassVar[int] = 50
    description: ClassVar[str] = (
        "normalizing flow: autoregressive rational-quadratic splines "
        "(zuko), maximum likelihood, ensemble-trained; defaults chosen "
        "on seeds 100000+ (benchmarks/tune_density_models.py)"
    )
    neural: ClassVar[bool] = True
    dim_options: ClassVar[bool] = True
    operational: ClassVar[frozenset[str]] = frozenset({"replicas", "snapshots"})
    history_columns: ClassVar[tuple[str, ...]] = ("train_loss", "val_loss")
    weights_file: ClassVar[str] = "model.safetensors"
    replica_files: ClassVar[tuple[str, ...]] = ("model.safetensors", layout.LOSSES, layout.LEARNING)
    options_schema: ClassVar[dict] = {
        **schema_fragment("""
      epochs:
        type: integer
        minimum: 1
        default: 1000
        description: >-
          full-batch Adam steps (at most, with holdout > 0), >= 1
      lr:
        type: number
        exclusiveMinimum: 0
        default: 0.001
        description: >-
          Adam learning rate, > 0
      holdout:
        type: number
        minimum: 0
        maximum: 0.5
        default: 0.0
        description: >-
          fraction of each training set held out for early stopping (the best held-out epoch is
          kept), 0 .. 0.5; 0: train on all of it for exactly `epochs` steps
      patience:
        type: integer
        minimum: 1
        default: 200
        description: >-
          steps without a better held-out loss that end a replica's training, >= 1
      hidden:
        type: integer
        minimum: 1
        default: 64
        description: >-
          hidden layer width, >= 1
      layers:
        type: integer
        minimum: 1
        default: 2
        description: >-
          hidden layers of each MADE conditioner (unused in d = 1), >= 1
      transforms:
        type: integer
        minimum: 1
        default: 3
        description: >-
          autoregressive spline transforms, >= 1
      bins:
        type: integer
        minimum: 2
        default: 8
        description: >-
          spline bins, >= 2
      bound:
        type: number
        exclusiveMinimum: 0
        default: 5.0
        description: >-
          splines act on [-bound, bound] training-set standard deviations (identity outside), >
          0
    """),
        "snapshots": SNAPSHOTS_SCHEMA,
    }

    def check_options(self, options: Mapping[str, Any], n_train: int) -> str | None:
        holdout = {**self.option_defaults(), **options}["holdout"]
        if holdout > 0 and not 1 <= round(holdout * n_train) <= n_train - 2:
            return (
                f"holdout = {holdout}: the held-out part must be 1 .. n_train - 2 points; "
                "use holdout 0 (a fixed schedule) or a larger n_train"
            )
        return None

    def parameter_count(self, options: Mapping[str, Any], dim: int) -> int:
        """`transforms` MADEs (`ganplify.generators.neural.flows.networks.EnsembleFlow`): d
        inputs, `layers` hidden layers (none in d = 1), 3 bins - 1 spline parameters per
        coordinate out."""
        o = {**self.option_defaults(), **options}
        layers = o["layers"] if dim > 1 else 0
        made = affine_parameters([dim, *[o["hidden"]] * layers, dim * (3 * o["bins"] - 1)])
        return o["transforms"] * made

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
        """Train the replicas as one ensemble; short, so no checkpoints."""
        from ganplify.generators.neural.flows import training as flows

        return flows.train_ensemble(
            self.name, train_sets, seeds, options, device=device, hook=hook, hook_epochs=hook_epochs
        )

    def weights_metadata(self, options: dict) -> dict[str, str]:
        from ganplify.generators.neural.flows import training as flows

        return flows.weights_metadata(self.name, options)

    def _architecture(self, options: dict) -> dict:
        from ganplify.generators.neural.flows import training as flows

        return flows.MODELS[self.name].config_type.from_mapping(options).architecture()

    def bytes_per_event(self, options: dict, dim: int) -> int:
        from ganplify.generators.neural.flows import training as flows

        return flows.bytes_per_event(self.name, self._architecture(options), dim)

    def generate(
        self,
        weights: Sequence[dict],
        seeds: Sequence[int],
        n: int,
        chunk_size: int,
        device: str,
        options: dict,
    ):
        from ganplify.generators.neural.flows import training as flows

        return flows.generate(
            self.name,
            weights,
            seeds,
            n,
            self._architecture(options),
            chunk_size=chunk_size,
            device=device,
        )

    def load_sampler(
        self, setting: Any, seed: int, replica_dir: Path
    ) -> Callable[[int, np.random.Generator], np.ndarray]:
        return trained_sampler(self, setting, replica_dir)
