"""Every generator behind one small interface, and the registry that names them.

A generator is fitted on a batch of K training sets (one per replica seed) and then either
samples events per replica (`exact = False`: evaluated on n_generated events) or gives exact
cell probabilities (`exact = True`). Neural generators (`neural = True`) are trained as an
ensemble in their own job (GPU when present) and evaluated in another; the others are fitted
and evaluated in one cheap CPU job. Adding a generator is one class here plus its module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ganplify.study.data import training_set


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
    # what the replica's sampler needs in memory (e.g. its training set); never written
    data: Any = field(default=None, repr=False, compare=False)


def _training_set(setting: Any, seed: int) -> np.ndarray:
    return training_set(setting.make_target(), setting.n_train, seed)
