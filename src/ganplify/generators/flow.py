"""The masked autoregressive spline flow as a generator of the study
(networks and training in `ganplify.generators.neural.flows`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ganplify.generators.neural.sampling import trained_sampler


class Flow:
    """A masked autoregressive rational-quadratic spline flow
    (`ganplify.generators.neural.flows`), trained by maximum likelihood (a fixed schedule by
    default; early stopping with ``holdout > 0``)."""

    name: ClassVar[str] = "flow"
    exact: ClassVar[bool] = False
    neural: ClassVar[bool] = True
    dims: ClassVar[frozenset[int] | None] = None
    description: ClassVar[str] = ("normalizing flow: autoregressive rational-quadratic splines "
                                  "(zuko), maximum likelihood, ensemble-trained")
    operational: ClassVar[frozenset[str]] = frozenset({"replicas"})
    weights_file: ClassVar[str] = "model.safetensors"
    history_columns: ClassVar[tuple[str, ...]] = ("train_loss", "val_loss")

    def train(self, train_sets: np.ndarray, seeds: Sequence[int], options: dict,
              runtime: dict, device: str, checkpoints: Sequence[Path], config_hash: str):
        """Train the replicas as one ensemble; short, so no checkpoints."""
        from ganplify.generators.neural.flows import training as flows

        return flows.train_ensemble(self.name, train_sets, seeds, options, device=device)

    def weights_metadata(self, options: dict) -> dict[str, str]:
        from ganplify.generators.neural.flows import training as flows

        return flows.weights_metadata(self.name, options)

    def _architecture(self, options: dict) -> dict:
        from ganplify.generators.neural.flows import training as flows

        return flows.MODELS[self.name].config_type.from_mapping(options).architecture()

    def bytes_per_event(self, options: dict, dim: int) -> int:
        from ganplify.generators.neural.flows import training as flows

        return flows.bytes_per_event(self.name, self._architecture(options), dim)

    def generate(self, weights: Sequence[dict], seeds: Sequence[int], n: int, chunk_size: int,
                 device: str, options: dict):
        from ganplify.generators.neural.flows import training as flows

        return flows.generate(self.name, weights, seeds, n, self._architecture(options),
                              chunk_size=chunk_size, device=device)

    def load_sampler(
        self, setting: Any, seed: int, replica_dir: Path
    ) -> Callable[[int, np.random.Generator], np.ndarray]:
        return trained_sampler(self, setting, replica_dir)
