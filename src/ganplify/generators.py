"""Every generator behind one small interface, and the registry that names them.

A generator is fitted on a batch of K training sets (one per replica seed) and then either
samples events per replica (`exact = False`: evaluated on n_generated events) or gives exact
cell probabilities (`exact = True`). Neural generators (`neural = True`) are trained as an
ensemble in their own job (GPU when present) and evaluated in another; the others are fitted
and evaluated in one cheap CPU job. Adding a generator is one class here plus its module.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ganplify.baselines import fit_camel_back, mixture_cdf
from ganplify.quantiles import CellCounter
from ganplify.targets import GaussianShell


@dataclass
class ReplicaFit:
    """What fitting one replica produced.

    Attributes
    ----------
    seed : int
    ok : bool
        False marks a failed replica; it is counted and listed, never averaged in.
    reason : str
        Why it failed ('' when ok).
    info : dict
        JSON-serialisable outcome (e.g. fitted parameters), written next to the replica.
    """

    seed: int
    ok: bool = True
    reason: str = ""
    info: dict[str, Any] = field(default_factory=dict)


class Sample:
    """The truth itself: n truth-sampled events, the paper's sample band."""

    name: ClassVar[str] = "sample"
    exact: ClassVar[bool] = False
    neural: ClassVar[bool] = False
    dims: ClassVar[frozenset[int] | None] = None
    description: ClassVar[str] = "truth-sampled events (the sample baseline)"
    operational: ClassVar[frozenset[str]] = frozenset({"replicas"})

    def fit(
        self, target: GaussianShell, train_sets: np.ndarray, seeds: Sequence[int], options: dict
    ) -> list[ReplicaFit]:
        return [ReplicaFit(int(s)) for s in seeds]

    def sampler(
        self, target: GaussianShell, replica: ReplicaFit
    ) -> Callable[[int, np.random.Generator], np.ndarray]:
        return target.sample

    def load_sampler(
        self, target: GaussianShell, replica_dir: Path, options: dict
    ) -> Callable[[int, np.random.Generator], np.ndarray]:
        """Sampler of a finished replica from its folder (for figures)."""
        return target.sample


class Fit:
    """The 5-parameter maximum-likelihood fit of the camel back (d = 1)."""

    name: ClassVar[str] = "fit"
    exact: ClassVar[bool] = True
    neural: ClassVar[bool] = False
    dims: ClassVar[frozenset[int] | None] = frozenset({1})
    description: ClassVar[str] = "5-parameter maximum-likelihood fit (iminuit)"
    operational: ClassVar[frozenset[str]] = frozenset({"replicas"})

    def fit(
        self, target: GaussianShell, train_sets: np.ndarray, seeds: Sequence[int], options: dict
    ) -> list[ReplicaFit]:
        out = []
        for seed, x in zip(seeds, train_sets, strict=True):
            result = fit_camel_back(x)
            out.append(ReplicaFit(int(seed), result.ok, result.reason, result.to_json()))
        return out

    def probabilities(
        self, target: GaussianShell, replica: ReplicaFit, counter: CellCounter
    ) -> list[np.ndarray]:
        values = replica.info["values"]
        return counter.probabilities({"x": lambda e: mixture_cdf(e, **values)})


class Gan:
    """The paper's GAN with its DeepSets discriminator, trained as an ensemble of replicas.

    Training and generation live in `ganplify.training` (torch is imported only when used).
    """

    name: ClassVar[str] = "gan"
    exact: ClassVar[bool] = False
    neural: ClassVar[bool] = True
    dims: ClassVar[frozenset[int] | None] = None
    description: ClassVar[str] = "the paper's GAN (DeepSets discriminator), ensemble-trained"
    operational: ClassVar[frozenset[str]] = frozenset({"replicas", "checkpoint_every",
                                                       "cuda_graphs"})
    weights_file: ClassVar[str] = "generator.safetensors"

    def load_sampler(
        self, target: GaussianShell, replica_dir: Path, options: dict
    ) -> Callable[[int, np.random.Generator], np.ndarray]:
        """Sampler of a trained replica from its saved weights (for figures)."""
        from ganplify import training

        weights = training.load_generator(Path(replica_dir) / self.weights_file)
        dropout = float(options.get("dropout", 0.5))

        def draw(n: int, rng: np.random.Generator) -> np.ndarray:
            seed = int(rng.integers(2**62))
            chunks = training.generate([weights], [seed], n, chunk_size=8192, device="cpu",
                                       dropout=dropout)
            return np.concatenate([c[0] for c in chunks])

        return draw


REGISTRY: dict[str, Any] = {g.name: g() for g in (Sample, Fit, Gan)}


def get(name: str):
    """The generator called ``name``."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown generator {name!r}; allowed: {sorted(REGISTRY)}") from None
