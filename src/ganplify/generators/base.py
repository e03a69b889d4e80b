"""The generator protocol: what the rest of the code may ask of a generator, and ReplicaFit.

A generator is fitted on a batch of K training sets (one per replica seed) and then either
samples events per replica (evaluated on n_generated events) or gives exact cell probabilities.
Each generator is one class, in its own module under `ganplify.generators`, that subclasses
`Generator` and sets the class attributes below; the registry finds it there. Figures, tables
and the config choose generators by these attributes (capabilities), never by name.
"""

from __future__ import annotations

import itertools
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import yaml

from ganplify.study.data import training_set

# Every generator's config block has this key besides its own options (not in the hash).
REPLICAS_SCHEMA: dict = {"$ref": "#/$defs/replicas"}


# The neural generators' learning-curve option (an operational key: it never changes what a
# replica learns, only which of its epochs are saved and evaluated).
SNAPSHOTS_SCHEMA: dict = {
    "oneOf": [
        {"type": "string", "enum": ["auto"]},
        {"type": "array", "uniqueItems": True, "items": {"type": "integer", "minimum": 1}},
    ],
    "default": "auto",
    "description": (
        "epochs after which every replica's generator is saved and evaluated like the final "
        "one, for the learning curve (tables/learning_curve.csv): auto (about ten log-spaced "
        "epochs, the last included), a list of epochs, or [] for none"
    ),
}


def schema_fragment(text: str) -> dict:
    """JSON-schema properties written as YAML (how generators declare their options)."""
    return yaml.safe_load(textwrap.dedent(text)) or {}


class Generator:
    """Base class of every generator; subclasses set these class attributes.

    Attributes
    ----------
    name : str
        The generator's name in configs, paths and tables.
    label, color : str
        Legend label and matplotlib colour in every figure.
    order : int
        Position in listings, legends and the config schema (ties: by name).
    description : str
        One line for `ganplify generators` and the config schema.
    exact : bool
        Gives exact cell probabilities (`probabilities`) instead of sampling events.
    neural : bool
        Trained as a batched ensemble in its own job (`train`, `generate`; GPU when present),
        evaluated in another; otherwise fitted and evaluated in one cheap CPU job.
    truth_sample : bool
        The truth itself: the paper's sample band, a control whose asymptotic MSE is 0.
    paper_model : bool
        The generative model the paper studies; figures that show one model's events show it.
    adversarial : bool
        Has discriminator and generator losses (the loss-curve figure).
    fit_parameters : bool
        Writes fitted parameters with their covariance (fit.json; the fit-uncertainty tables).
    dims : frozenset of int or None
        Dimensions it is available for (None: any).
    dim_options : bool
        A dimension may override its options under ``dims.<d>.<name>``.
    options_schema : dict
        JSON-schema properties of its config block, defaults included (the one source of its
        option defaults; `ganplify.study.config` assembles the config schema from them).
    operational : frozenset of str
        Option keys that change how it runs, never what a replica learns (kept out of the
        parameter hash); ``replicas`` always is one.
    history_columns : tuple of str
        Columns of its per-replica loss history (losses.csv); empty for none.
    weights_file : str or None
        Per-replica weights of a trained replica (neural generators).
    replica_files : tuple of str
        Every file it may write in a replica folder besides status.json and mse.csv.
    """

    name: ClassVar[str]
    label: ClassVar[str]
    color: ClassVar[str]
    description: ClassVar[str]
    order: ClassVar[int] = 100
    exact: ClassVar[bool] = False
    neural: ClassVar[bool] = False
    truth_sample: ClassVar[bool] = False
    paper_model: ClassVar[bool] = False
    adversarial: ClassVar[bool] = False
    fit_parameters: ClassVar[bool] = False
    dims: ClassVar[frozenset[int] | None] = None
    dim_options: ClassVar[bool] = False
    options_schema: ClassVar[dict] = {}
    operational: ClassVar[frozenset[str]] = frozenset({"replicas"})
    history_columns: ClassVar[tuple[str, ...]] = ()
    weights_file: ClassVar[str | None] = None
    replica_files: ClassVar[tuple[str, ...]] = ()

    @property
    def has_loss_history(self) -> bool:
        return bool(self.history_columns)

    def label_for(self, dim: int | None) -> str:
        """The legend label in dimension ``dim`` (a generator may name what it fits there)."""
        return self.label

    @classmethod
    def option_defaults(cls) -> dict[str, Any]:
        """Every option's default, from `options_schema`."""
        return {k: v["default"] for k, v in cls.options_schema.items() if "default" in v}

    def config_schema(self) -> dict:
        """The JSON schema of its config block."""
        return {
            "type": "object",
            "additionalProperties": False,
            "default": {},
            "description": self.description,
            "properties": {"replicas": REPLICAS_SCHEMA, **self.options_schema},
        }

    @classmethod
    def training_epochs(cls, options: Mapping[str, Any]) -> int:
        """Epochs of a neural generator's training under ``options``."""
        return int({**cls.option_defaults(), **options}["epochs"])

    def check_options(self, options: Mapping[str, Any], n_train: int) -> str | None:
        """Why these options cannot train on ``n_train`` points, as ``"<key> = <value>: why"``
        (None: they can).

        Called for every setting before any job starts, so that a bad combination of keys is
        refused up front with one message.
        """
        return None

    def parameter_count(self, options: Mapping[str, Any], dim: int) -> int:
        """Trainable parameters of one replica in dimension ``dim`` (0: not a network).

        The config's memory estimate of a training job uses it (`ganplify.study.budget`);
        counted from the options alone, without building (or importing) the networks.
        """
        return 0


def affine_parameters(sizes: Sequence[int]) -> int:
    """Weights and biases of a stack of affine layers of widths ``sizes`` (input first)."""
    return sum((a + 1) * b for a, b in itertools.pairwise(sizes))


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


def replica_training_set(setting: Any, seed: int) -> np.ndarray:
    """The training set of replica ``seed`` of a `ganplify.study.plan.Setting`."""
    return training_set(setting.make_target(), setting.n_train, seed)
