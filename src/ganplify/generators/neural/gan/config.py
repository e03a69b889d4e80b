"""The GAN's training protocol and architecture as plain data (torch-free).

Defaults are the paper's (section 2); `GanConfig.training_parameters` is what the parameter hash
sees, so the operational keys (checkpoint interval, CUDA graphs) stay out of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields

from ganplify.generators.neural.gan import networks as models
from ganplify.signals import STOP_SIGNALS, SignalFlag, catch_signals  # noqa: F401 (API)

CUDA_GRAPH_MODES = ("auto", "on", "off")


@dataclass(frozen=True)
class GanConfig:
    """The training protocol; defaults are the paper's.

    Parameters
    ----------
    epochs : int
        Passes over the training set (10,000).
    batch_size : int
        Points per batch (10); also the set size the discriminator aggregates over.
    lr : float
        Adam learning rate (5e-5) of both networks.
    betas : tuple of float
        Adam betas (0.5, 0.9).
    lr_decay, lr_decay_every : float, int
        The learning rate is multiplied by ``lr_decay`` (0.9) every ``lr_decay_every`` (1000)
        epochs.
    gamma : float
        Weight of the Roth et al. gradient penalty (0.01); the loss adds gamma / 2 * Omega.
    data_noise : float
        Half-width of the uniform noise added to the training data at every discriminator
        evaluation (0.1).
    noise_dim, hidden, layers, dropout, embedding, set_input
        Architecture (see `ganplify.generators.neural.gan.networks.Architecture`).
    checkpoint_every : int
        Checkpoint interval in epochs (0: only at the end and on signals). Does not change
        results.
    cuda_graphs : {"auto", "on", "off"}
        Capture the training step in a CUDA graph: "auto" on CUDA with an eager fallback, "on"
        required (error when impossible), "off" never. Does not change results beyond
        floating-point rounding.
    """

    epochs: int = 10_000
    batch_size: int = 10
    lr: float = 5e-5
    betas: tuple[float, float] = (0.5, 0.9)
    lr_decay: float = 0.9
    lr_decay_every: int = 1000
    gamma: float = 0.01
    data_noise: float = 0.1
    noise_dim: int = 1000
    hidden: int = 256
    layers: int = 7
    dropout: float = 0.5
    embedding: int = 32
    set_input: str = "differences"
    checkpoint_every: int = 500
    cuda_graphs: str = "auto"

    def __post_init__(self) -> None:
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        for name in ("epochs", "batch_size", "lr_decay_every"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.checkpoint_every < 0:
            raise ValueError(f"checkpoint_every must be >= 0, got {self.checkpoint_every}")
        if not (self.lr > 0 and self.lr_decay > 0 and self.gamma >= 0 and self.data_noise >= 0):
            raise ValueError("lr and lr_decay must be positive, gamma and data_noise >= 0")
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas}")
        if self.cuda_graphs not in CUDA_GRAPH_MODES:
            raise ValueError(f"cuda_graphs must be one of {CUDA_GRAPH_MODES}")
        if self.batch_size < 2:
            raise ValueError("batch_size must be >= 2 (the discriminator takes a set's std)")
        self.architecture(1)  # validates the architecture fields

    @classmethod
    def from_mapping(cls, values: Mapping[str, object]) -> GanConfig:
        """Build from a mapping (e.g. a YAML section); unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown GAN config keys {unknown}; allowed: {sorted(known)}")
        return cls(**values)  # type: ignore[arg-type]

    def training_parameters(self) -> dict[str, object]:
        """The fields that change results (for hashing): all but checkpoint_every, cuda_graphs."""
        out = asdict(self)
        del out["checkpoint_every"], out["cuda_graphs"]
        out["betas"] = list(self.betas)
        return out

    def architecture(self, dim: int) -> models.Architecture:
        """The networks' sizes for phase-space dimension ``dim``."""
        return models.Architecture(
            dim=dim,
            noise_dim=self.noise_dim,
            hidden=self.hidden,
            layers=self.layers,
            dropout=self.dropout,
            embedding=self.embedding,
            set_input=self.set_input,
        )

    def learning_rate(self, epoch: int) -> float:
        """Learning rate during ``epoch`` (0-based)."""
        return self.lr * self.lr_decay ** (epoch // self.lr_decay_every)
