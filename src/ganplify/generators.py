"""Every generator behind one small interface, and the registry that names them.

A generator is fitted on a batch of K training sets (one per replica seed) and then either
samples events per replica (`exact = False`: evaluated on n_generated events) or gives exact
cell probabilities (`exact = True`). Neural generators (`neural = True`) are trained as an
ensemble in their own job (GPU when present) and evaluated in another; the others are fitted
and evaluated in one cheap CPU job. `truth_sample = True` marks the truth itself, the control
of the tests (asymptotic MSE exactly 0). Adding a generator is one class here plus its module.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ganplify.baselines import (
    PARAMETERS,
    RADIAL_PARAMETERS,
    fit_camel_back,
    fit_radius,
    mixture_cdf,
)
from ganplify.quantiles import CellCounter
from ganplify.targets import GaussianShell, Shell


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


class Sample:
    """The truth itself: n truth-sampled events, the paper's sample band."""

    name: ClassVar[str] = "sample"
    exact: ClassVar[bool] = False
    neural: ClassVar[bool] = False
    truth_sample: ClassVar[bool] = True
    dims: ClassVar[frozenset[int] | None] = None
    description: ClassVar[str] = "truth-sampled events (the sample baseline)"
    operational: ClassVar[frozenset[str]] = frozenset({"replicas"})

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


def _training_set(setting: Any, seed: int) -> np.ndarray:
    from ganplify import study  # study imports this module

    return study.training_set(setting.make_target(), setting.n_train, seed)


class Bootstrap:
    """Resampling the training set with replacement.

    It carries no information beyond its training set, so its amplification cannot exceed 1:
    a control of the whole pipeline.
    """

    name: ClassVar[str] = "bootstrap"
    exact: ClassVar[bool] = False
    neural: ClassVar[bool] = False
    truth_sample: ClassVar[bool] = False
    dims: ClassVar[frozenset[int] | None] = None
    description: ClassVar[str] = "the training set resampled with replacement (a control)"
    operational: ClassVar[frozenset[str]] = frozenset({"replicas"})

    def fit(
        self, target: Shell, train_sets: np.ndarray, seeds: Sequence[int], options: dict
    ) -> list[ReplicaFit]:
        return [ReplicaFit(int(s), data=x) for s, x in zip(seeds, train_sets, strict=True)]

    def sampler(
        self, target: Shell, replica: ReplicaFit
    ) -> Callable[[int, np.random.Generator], np.ndarray]:
        x = replica.data

        def draw(n: int, rng: np.random.Generator) -> np.ndarray:
            return x[rng.integers(len(x), size=n)]

        return draw

    def load_sampler(
        self, setting: Any, seed: int, replica_dir: Path
    ) -> Callable[[int, np.random.Generator], np.ndarray]:
        return self.sampler(None, ReplicaFit(seed, data=_training_set(setting, seed)))


def cv_bandwidth_factor(x: np.ndarray) -> float:
    """KDE bandwidth factor maximising the leave-one-out log-likelihood of the training set.

    The kernel covariance is the data covariance times factor**2 (as in scipy's
    gaussian_kde). The factor is searched between 1/50 and 2 times Scott's rule: a coarse log
    grid, then Brent's method around the best grid point. Unlike Scott's or Silverman's rule
    it does not assume a unimodal density (on the camel back those rules smooth the two peaks
    into one).

    Parameters
    ----------
    x : ndarray, shape (n, d)
        The training set.
    """
    from scipy.optimize import minimize_scalar
    from scipy.special import logsumexp

    n, d = x.shape
    cov = np.atleast_2d(np.cov(x.T))
    z = np.linalg.solve(np.linalg.cholesky(cov), (x - x.mean(axis=0)).T).T  # whitened
    sq = np.sum(z**2, axis=1)
    half_d2 = 0.5 * np.maximum(sq[:, None] + sq[None, :] - 2.0 * z @ z.T, 0.0)
    np.fill_diagonal(half_d2, np.inf)  # leave one out

    def loss(log_h: float) -> float:
        # minus the log-likelihood, up to terms that do not depend on the factor
        h = np.exp(log_h)
        return -(logsumexp(-half_d2 / (h * h), axis=1).sum() - n * d * log_h)

    grid = np.log(n ** (-1.0 / (d + 4)) * np.geomspace(0.02, 2.0, 12))
    best = int(np.argmin([loss(g) for g in grid]))
    lo, hi = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    result = minimize_scalar(loss, bounds=(lo, hi), method="bounded",
                             options={"xatol": 1e-3})
    return float(np.exp(result.x if result.fun <= loss(grid[best]) else grid[best]))


class Kde:
    """A Gaussian kernel density estimate in Cartesian coordinates (scipy.stats.gaussian_kde).

    The kernel covariance is the training set's covariance times factor**2, the factor chosen
    by leave-one-out likelihood cross-validation (default, `cv_bandwidth_factor`), by Scott's
    rule n**(-1/(d+4)), Silverman's rule, or fixed (`kde.bandwidth`).
    """

    name: ClassVar[str] = "kde"
    exact: ClassVar[bool] = False
    neural: ClassVar[bool] = False
    truth_sample: ClassVar[bool] = False
    dims: ClassVar[frozenset[int] | None] = None
    description: ClassVar[str] = "Gaussian kernel density estimate (cross-validated bandwidth)"
    operational: ClassVar[frozenset[str]] = frozenset({"replicas"})

    @staticmethod
    def _kde(x: np.ndarray, options: dict):
        from scipy.stats import gaussian_kde

        bandwidth = options.get("bandwidth", "cv")
        if bandwidth == "cv":
            bandwidth = cv_bandwidth_factor(x)
        return gaussian_kde(x.T, bw_method=bandwidth)

    def fit(
        self, target: Shell, train_sets: np.ndarray, seeds: Sequence[int], options: dict
    ) -> list[ReplicaFit]:
        out = []
        for seed, x in zip(seeds, train_sets, strict=True):
            kde = self._kde(x, options)
            out.append(ReplicaFit(int(seed), info={"bandwidth_factor": float(kde.factor)},
                                  data=kde))
        return out

    def sampler(
        self, target: Shell, replica: ReplicaFit
    ) -> Callable[[int, np.random.Generator], np.ndarray]:
        kde = replica.data

        def draw(n: int, rng: np.random.Generator) -> np.ndarray:
            return kde.resample(n, seed=rng).T

        return draw

    def load_sampler(
        self, setting: Any, seed: int, replica_dir: Path
    ) -> Callable[[int, np.random.Generator], np.ndarray]:
        x = _training_set(setting, seed)
        return self.sampler(setting.make_target(), ReplicaFit(seed, data=self._kde(
            x, dict(setting.options))))


class Fit:
    """Maximum-likelihood fits: the paper's 5-parameter fit of the camel back (d = 1); beyond
    the paper, in d >= 2, the 2-parameter fit of the radial profile with the angles taken as
    known (uniform), the physics-informed upper reference."""

    name: ClassVar[str] = "fit"
    exact: ClassVar[bool] = True
    neural: ClassVar[bool] = False
    truth_sample: ClassVar[bool] = False
    dims: ClassVar[frozenset[int] | None] = None
    description: ClassVar[str] = ("max.-likelihood fit (iminuit): 5-parameter camel back in "
                                  "d=1, radial profile in d>=2")
    operational: ClassVar[frozenset[str]] = frozenset({"replicas"})

    @staticmethod
    def parameters(dim: int) -> tuple[str, ...]:
        """Names of the fitted parameters in dimension ``dim``, in the order of the fit's
        covariance matrix (fit.json stores ``values`` with sorted keys, the matrix in this
        order)."""
        return PARAMETERS if dim == 1 else RADIAL_PARAMETERS

    def fit(
        self, target: Shell, train_sets: np.ndarray, seeds: Sequence[int], options: dict
    ) -> list[ReplicaFit]:
        fit_one = fit_camel_back if target.dim == 1 else fit_radius
        out = []
        for seed, x in zip(seeds, train_sets, strict=True):
            result = fit_one(x)
            out.append(ReplicaFit(int(seed), result.ok, result.reason, result.to_json()))
        return out

    def probabilities(
        self, target: Shell, replica: ReplicaFit, counter: CellCounter
    ) -> list[np.ndarray]:
        return fit_probabilities(target, replica.info["values"], counter)


def fit_probabilities(
    target: Shell, values: Mapping[str, float], counter: CellCounter
) -> list[np.ndarray]:
    """Exact cell probabilities of the fitted density with parameters ``values``.

    Parameters
    ----------
    target : Shell
        The truth (its angles are the fit's in d >= 2).
    values : mapping
        Fitted parameters by name (`Fit.parameters`).
    counter : CellCounter
        The binnings; one array of probabilities per binning.
    """
    if target.dim == 1:
        return counter.probabilities({"x": lambda e: mixture_cdf(e, **values)})
    # the fitted radius, the true angles: independent, so joint cells are products
    fitted = GaussianShell(target.dim, mu=values["mu"], sigma=values["sigma"])
    cdfs = {name: (lambda e, n=name: target.cdf(n, e)) for name in target.coordinates}
    cdfs["r"] = fitted.radial_cdf
    return counter.probabilities(cdfs)


def trained_sampler(
    gen: Any, setting: Any, replica_dir: Path
) -> Callable[[int, np.random.Generator], np.ndarray]:
    """Sampler of one trained replica of a neural generator from its saved weights (for
    figures): each call generates on the CPU with a fresh seed drawn from ``rng``."""
    from ganplify import training

    weights = training.load_generator(Path(replica_dir) / gen.weights_file)
    options = dict(setting.options)

    def draw(n: int, rng: np.random.Generator) -> np.ndarray:
        chunks = gen.generate([weights], [int(rng.integers(2**62))], n, 8192, "cpu", options)
        return np.concatenate([c[0] for c in chunks])

    return draw


class Gan:
    """The paper's GAN with its DeepSets discriminator, trained as an ensemble of replicas.

    Training and generation live in `ganplify.training` (torch is imported only when used).
    """

    name: ClassVar[str] = "gan"
    exact: ClassVar[bool] = False
    neural: ClassVar[bool] = True
    truth_sample: ClassVar[bool] = False
    dims: ClassVar[frozenset[int] | None] = None
    description: ClassVar[str] = "the paper's GAN (DeepSets discriminator), ensemble-trained"
    operational: ClassVar[frozenset[str]] = frozenset({"replicas", "checkpoint_every",
                                                       "cuda_graphs"})
    weights_file: ClassVar[str] = "generator.safetensors"
    history_columns: ClassVar[tuple[str, ...]] = ("d_loss", "g_loss", "penalty")

    def train(self, train_sets: np.ndarray, seeds: Sequence[int], options: dict,
              runtime: dict, device: str, checkpoints: Sequence[Path], config_hash: str):
        """Train the replicas as one ensemble (`ganplify.training.train_ensemble`)."""
        from ganplify import training

        config = training.GanConfig.from_mapping({**options, **runtime})
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
        """Events of trained replicas, [K, m, d] chunks (`ganplify.training.generate`)."""
        from ganplify import training

        return training.generate(weights, seeds, n, chunk_size=chunk_size, device=device,
                                 dropout=options.get("dropout", 0.5))

    def load_sampler(
        self, setting: Any, seed: int, replica_dir: Path
    ) -> Callable[[int, np.random.Generator], np.ndarray]:
        return trained_sampler(self, setting, replica_dir)


class Flow:
    """A masked autoregressive rational-quadratic spline flow (`ganplify.flows`), trained by
    maximum likelihood (a fixed schedule by default; early stopping with ``holdout > 0``)."""

    name: ClassVar[str] = "flow"
    exact: ClassVar[bool] = False
    neural: ClassVar[bool] = True
    truth_sample: ClassVar[bool] = False
    dims: ClassVar[frozenset[int] | None] = None
    description: ClassVar[str] = ("normalizing flow: autoregressive rational-quadratic splines "
                                  "(zuko), maximum likelihood, ensemble-trained")
    operational: ClassVar[frozenset[str]] = frozenset({"replicas"})
    weights_file: ClassVar[str] = "model.safetensors"
    history_columns: ClassVar[tuple[str, ...]] = ("train_loss", "val_loss")

    def train(self, train_sets: np.ndarray, seeds: Sequence[int], options: dict,
              runtime: dict, device: str, checkpoints: Sequence[Path], config_hash: str):
        """Train the replicas as one ensemble; short, so no checkpoints."""
        from ganplify import flows

        return flows.train_ensemble(self.name, train_sets, seeds, options, device=device)

    def weights_metadata(self, options: dict) -> dict[str, str]:
        from ganplify import flows

        return flows.weights_metadata(self.name, options)

    def _architecture(self, options: dict) -> dict:
        from ganplify import flows

        return flows.MODELS[self.name].config_type.from_mapping(options).architecture()

    def bytes_per_event(self, options: dict, dim: int) -> int:
        from ganplify import flows

        return flows.bytes_per_event(self.name, self._architecture(options), dim)

    def generate(self, weights: Sequence[dict], seeds: Sequence[int], n: int, chunk_size: int,
                 device: str, options: dict):
        from ganplify import flows

        return flows.generate(self.name, weights, seeds, n, self._architecture(options),
                              chunk_size=chunk_size, device=device)

    def load_sampler(
        self, setting: Any, seed: int, replica_dir: Path
    ) -> Callable[[int, np.random.Generator], np.ndarray]:
        return trained_sampler(self, setting, replica_dir)


class FlowMatching(Flow):
    """Conditional flow matching with straight paths (rectified flow), sampled with RK4
    (`ganplify.flows`); trained like `Flow`, on the flow-matching loss."""

    name: ClassVar[str] = "flow_matching"
    description: ClassVar[str] = ("conditional flow matching (rectified flow), RK4 sampling, "
                                  "ensemble-trained")


REGISTRY: dict[str, Any] = {g.name: g() for g in (Sample, Fit, Bootstrap, Kde, Gan, Flow,
                                                  FlowMatching)}


def get(name: str):
    """The generator called ``name``."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown generator {name!r}; allowed: {sorted(REGISTRY)}") from None
