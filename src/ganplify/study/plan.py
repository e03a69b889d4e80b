"""Expand a validated config into the study's jobs, their parameters and their paths.

A *setting* is one (target, dim, n_train, generator) with the generator's training options; its
folder name carries a short hash of exactly those parameters, so that outputs made with other
training parameters are never taken as up to date, also in a copied results folder where
Snakemake has no metadata. A *chunk* is up to `replicas_per_job` consecutive replica seeds of a
setting, trained and evaluated together in one job; its evaluation flag carries a hash of the
evaluation parameters (binnings, event counts).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from ganplify import generators
from ganplify.metrics.quantiles import Binning, binnings_for
from ganplify.results import layout
from ganplify.slurm import train_minutes as minutes
from ganplify.study import config as cfg
from ganplify.truth import make_target
from ganplify.truth.shells import Shell

# Bump when a change of code changes what training or evaluation produce for the same config.
PARAMS_VERSION = 1


EVAL_VERSION = 1


class SpecError(ValueError):
    """A job spec that is incomplete or does not match its own hashes."""


def short_hash(obj: object, length: int = 10) -> str:
    """Stable short hex hash of a JSON-serialisable object."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def runtime_options(config: Mapping, generator: str, dim: int) -> dict:
    """How a generator's jobs run: the device and its operational options."""
    keep = generators.get(generator).operational - {"replicas"}
    block = cfg.generator_block(config, generator, dim)
    return {"device": config["device"], **{k: block[k] for k in sorted(keep) if k in block}}


def generator_options(config: Mapping, generator: str, dim: int) -> dict:
    """Training options of a generator in one dimension, without operational keys.

    Operational keys (how many replicas, how often to checkpoint) do not change what a replica
    learns, so they stay out of the parameter hash.
    """
    skip = generators.get(generator).operational
    return {k: v for k, v in cfg.generator_block(config, generator, dim).items() if k not in skip}


@dataclass(frozen=True)
class Setting:
    """One (target, dim, n_train, generator) with the generator's training options."""

    target: str
    dim: int
    n_train: int
    generator: str
    options: Mapping = field(default_factory=dict, compare=False, hash=False)

    def params(self) -> dict:
        """Everything that determines the trained replicas (besides the seed)."""
        return {
            "target": self.target,
            "dim": self.dim,
            "n_train": self.n_train,
            "generator": self.generator,
            "options": dict(self.options),
            "version": PARAMS_VERSION,
        }

    @cached_property
    def phash(self) -> str:
        return short_hash(self.params(), layout.PHASH_LENGTH)

    @property
    def relpath(self) -> str:
        """Folder of the setting inside the results folder."""
        return layout.setting_dir(self.target, self.dim, self.n_train, self.generator, self.phash)

    def replica_dir(self, seed: int) -> str:
        return layout.replica_dir(self.relpath, seed)

    def make_target(self) -> Shell:
        return make_target(self.target, self.dim)


@dataclass(frozen=True)
class Chunk:
    """Consecutive replica seeds of one setting, run as one job, with what to evaluate."""

    setting: Setting
    seeds: tuple[int, ...]
    binnings: tuple[Binning, ...]
    n_generated: tuple[int, ...]
    chunk_size: int
    # how to run (device, checkpoint interval, ...): never part of a hash
    runtime: Mapping = field(default_factory=dict, compare=False, hash=False)

    @property
    def name(self) -> str:
        return layout.chunk_name(self.seeds)

    def eval_params(self) -> dict:
        return {
            "setting": self.setting.phash,
            "binnings": [[b.coordinate, b.n_quantiles] for b in self.binnings],
            "n_generated": list(self.n_generated),
            "chunk_size": self.chunk_size,
            "version": EVAL_VERSION,
        }

    @cached_property
    def ehash(self) -> str:
        return short_hash(self.eval_params(), layout.EHASH_LENGTH)

    @property
    def trained_flag(self) -> str:
        return layout.trained_flag(self.setting.relpath, self.name)

    @property
    def evaluated_flag(self) -> str:
        return layout.evaluated_flag(self.setting.relpath, self.name, self.ehash)

    def spec(self, stage: str = "evaluate") -> dict:
        """Everything a job needs, as JSON-serialisable data (passed to the CLI).

        A ``stage="train"`` spec leaves out the evaluation parameters, so that changing a
        binning never looks like a change of a training job's parameters to Snakemake.
        """
        out = {
            **self.setting.params(),
            "seeds": list(self.seeds),
            "runtime": dict(self.runtime),
            "relpath": self.setting.relpath,
            "name": self.name,
            "phash": self.setting.phash,
        }
        if stage == "train":
            return out
        return {
            **out,
            "binnings": [[b.coordinate, b.n_quantiles] for b in self.binnings],
            "n_generated": list(self.n_generated),
            "chunk_size": self.chunk_size,
            "ehash": self.ehash,
        }

    @classmethod
    def from_spec(cls, spec: Mapping) -> Chunk:
        """Rebuild a chunk from `spec()` output, checking its hashes.

        Raises
        ------
        SpecError
            When a key is missing or malformed, or a hash does not match the parameters.
        """
        try:
            return cls._from_spec(spec)
        except KeyError as exc:
            raise SpecError(f"job spec lacks the key {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise SpecError(f"job spec is malformed: {exc}") from None

    @classmethod
    def _from_spec(cls, spec: Mapping) -> Chunk:
        setting = Setting(
            spec["target"],
            int(spec["dim"]),
            int(spec["n_train"]),
            spec["generator"],
            dict(spec.get("options", {})),
        )
        chunk = cls(
            setting=setting,
            seeds=tuple(int(s) for s in spec["seeds"]),
            binnings=tuple(Binning(c, int(q), setting.dim) for c, q in spec.get("binnings", [])),
            n_generated=tuple(int(n) for n in spec.get("n_generated", [])),
            chunk_size=int(spec.get("chunk_size", 1)),
            runtime=dict(spec.get("runtime", {})),
        )
        for key, value in (("phash", setting.phash), ("ehash", chunk.ehash)):
            if key in spec and spec[key] != value:
                raise SpecError(
                    f"job spec {key} {spec[key]} does not match its parameters ({value}); "
                    "the spec was edited or comes from another ganplify version"
                )
        return chunk


def settings(config: Mapping) -> list[Setting]:
    """All settings of a validated config, in a stable order (target, dim, n_train, generator)."""
    out = []
    for target in cfg.targets(config):
        for key in config["dims"]:
            dim = int(key)
            ax = cfg.axes(config, dim)
            for n_train in sorted(ax["n_train"]):
                for gen in ax["generators"]:
                    out.append(
                        Setting(target, dim, n_train, gen, generator_options(config, gen, dim))
                    )
    return out


def seed_chunks(config: Mapping, setting: Setting) -> list[tuple[int, ...]]:
    """A setting's replica seeds split into consecutive groups of `replicas_per_job`."""
    seeds = cfg.replica_seeds(config, setting.dim, setting.generator)
    per_job = config["replicas_per_job"]
    return [tuple(seeds[i : i + per_job]) for i in range(0, len(seeds), per_job)]


def event_counts(config: Mapping, setting: Setting) -> tuple[int, ...]:
    """The n_generated grid of a setting: sample sizes for the truth itself, none for exact
    generators."""
    ax = cfg.axes(config, setting.dim)
    if generators.get(setting.generator).truth_sample:
        return tuple(sorted(ax["sample_sizes"]))
    if generators.get(setting.generator).exact:
        return ()
    return tuple(sorted(ax["n_generated"]))


def plan(config: Mapping) -> list[Chunk]:
    """Every chunk job of the study."""
    chunks = []
    for setting in settings(config):
        ax = cfg.axes(config, setting.dim)
        binnings = tuple(binnings_for(setting.dim, ax["quantiles"], ax["joint"]))
        counts = event_counts(config, setting)
        for seeds in seed_chunks(config, setting):
            chunks.append(
                Chunk(
                    setting,
                    seeds,
                    binnings,
                    counts,
                    config["evaluation"]["chunk_size"],
                    runtime_options(config, setting.generator, setting.dim),
                )
            )
    return chunks


def train_minutes(config: Mapping, chunk: Chunk) -> int:
    """Time limit of a chunk's training job (see ganplify.slurm.train_minutes)."""

    opts = chunk.setting.options
    # minibatch epochs (the GAN) have n_train / batch_size steps; full-batch models one
    steps = max(1, chunk.setting.n_train // int(opts["batch_size"])) if "batch_size" in opts else 1
    return minutes(config, int(opts.get("epochs", 1)), steps, len(chunk.seeds), chunk.setting.dim)
