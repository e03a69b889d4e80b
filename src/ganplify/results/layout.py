"""Where every file of a results folder lives: the one owner of the layout.

    results/<study>/
      config.yaml  provenance.json  MANIFEST.sha256  merged_from.json  report.html (optional)
      MANIFEST.sha256.sig  (optional: `ganplify sign`)
      journal/<random>.sha256  (what the workflow wrote since the manifest; gone at its end)
      replicas/<target>-d<d>/n<n_train>/<generator>-<phash>/        a setting
          params.json  seeds<a>-<b>.trained.json  seeds<a>-<b>.eval-<ehash>.json
          seed<k>/                                                  a replica
              status.json  mse.csv  + the generator's own files (`Generator.replica_files`)
              snapshots/epoch<e>.safetensors                        (neural: learning curve)
              member<m>/                                            (reserved: several models
                                                                     trained on one set)
      tables/<name>.csv  (`TABLES`)
      figures/<name>.png|.pdf
      logs/...  (job logs; not checksummed)

Study planning (setting folders, flag names), `ganplify verify`'s contract, the workflow's
wildcard patterns and the files the jobs write all take their names from here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

CONFIG = "config.yaml"
PROVENANCE = "provenance.json"
MANIFEST = "MANIFEST.sha256"
SIGNATURE = f"{MANIFEST}.sig"  # ssh-keygen -Y sign of the manifest (`ganplify sign`)
JOURNAL = "journal"  # one file per writing process: "<sha256>  <path>" of every write
MERGED_FROM = "merged_from.json"
REPLICAS = "replicas"
TABLES_DIR = "tables"
FIGURES_DIR = "figures"
LOGS_DIR = "logs"

PARAMS = "params.json"  # a setting's parameters (those its hash is taken of)
STATUS = "status.json"  # a replica's outcome
MSE = "mse.csv"  # a replica's MSE at every binning and event count
FIT_INFO = "fit.json"  # what fitting a replica found (fitted parameters, a bandwidth)
LOSSES = "losses.csv"  # a trained replica's loss history
LEARNING = "learning_curve.csv"  # a trained replica's MSE at its snapshot epochs
SNAPSHOTS = "snapshots"  # a trained replica's generator at chosen epochs (learning curve)
CHECKPOINT = "checkpoint"  # base name of a training checkpoint (.safetensors + .json)
CHECKPOINT_FILES = (f"{CHECKPOINT}.safetensors", f"{CHECKPOINT}.json")

# Every table a study can write (tables/<name>.csv).
TABLES = (
    "mse",
    "amplification",
    "replicas",
    "fit_uncertainty",
    "fit_parameters",
    "robustness",
    "robustness_limits",
    "learning_curve",
)

PHASH_LENGTH = 10  # hex digits of a setting's parameter hash
EHASH_LENGTH = 8  # hex digits of a chunk's evaluation hash

NAME_PATTERN = r"[A-Za-z0-9_]+"
CHUNK_PATTERN = r"seeds\d+-\d+"
EHASH_PATTERN = rf"[0-9a-f]{{{EHASH_LENGTH}}}"


def setting_dir(target: str, dim: int, n_train: int, generator: str, phash: str) -> str:
    """A setting's folder, relative to the results folder."""
    return f"{REPLICAS}/{target}-d{dim}/n{n_train}/{generator}-{phash}"


def replica_dir(setting: str, seed: int) -> str:
    """A replica's folder inside its setting's folder ``setting``."""
    return f"{setting}/seed{seed}"


def member_dir(replica: str, member: int) -> str:
    """A member's folder inside a replica's: one of several models trained on its set."""
    return f"{replica}/member{member}"


def snapshot(replica: str, epoch: int) -> str:
    """A replica's generator saved after ``epoch`` (1-based) of its training."""
    return f"{replica}/{SNAPSHOTS}/epoch{epoch}.safetensors"


def chunk_name(seeds: Iterable[int]) -> str:
    """The name of a job's chunk of consecutive replica seeds."""
    seeds = list(seeds)
    return f"seeds{seeds[0]}-{seeds[-1]}"


def trained_flag(setting: str, chunk: str) -> str:
    return f"{setting}/{chunk}.trained.json"


def evaluated_flag(setting: str, chunk: str, ehash: str) -> str:
    return f"{setting}/{chunk}.eval-{ehash}.json"


def table(name: str) -> str:
    """tables/<name>.csv"""
    return f"{TABLES_DIR}/{name}.csv"


def figure(name: str, suffix: str) -> str:
    """figures/<name>.<suffix>"""
    return f"{FIGURES_DIR}/{name}.{suffix}"


def setting_pattern(generators: Iterable[str], *, literal: bool = True) -> str:
    """Regex of a setting folder below replicas/ whose generator is one of ``generators``
    (names, or regexes with ``literal=False``): the workflow's ``setting`` wildcard."""
    names = "|".join(re.escape(g) if literal else g for g in generators) or "(?!)"
    return rf"{NAME_PATTERN}-d\d+/n\d+/(?:{names})-[0-9a-f]{{{PHASH_LENGTH}}}"


def contract_patterns(generators: Mapping[str, Any]) -> list[str]:
    """Regexes of every file a results folder may hold, relative to its root.

    ``generators`` is the registry: their `replica_files` are what replica folders may hold
    besides status.json and mse.csv.
    """
    setting = rf"{REPLICAS}/{setting_pattern([NAME_PATTERN], literal=False)}"
    replica_files = sorted(
        {STATUS, MSE, *(f for g in generators.values() for f in g.replica_files)}
    )
    return [
        re.escape(CONFIG),
        re.escape(PROVENANCE),
        re.escape(MERGED_FROM),
        re.escape(MANIFEST),
        re.escape(SIGNATURE),
        rf"{JOURNAL}/[0-9a-f]{{32}}\.sha256",
        r"report\.(html|zip)",
        rf"{TABLES_DIR}/({'|'.join(TABLES)})\.csv",
        rf"{FIGURES_DIR}/{NAME_PATTERN}\.(png|pdf)",
        rf"{setting}/{re.escape(PARAMS)}",
        rf"{setting}/{CHUNK_PATTERN}\.(trained|eval-{EHASH_PATTERN})\.json",
        rf"{setting}/seed\d+/({'|'.join(map(re.escape, replica_files))})",
        rf"{setting}/seed\d+/{SNAPSHOTS}/epoch\d+\.safetensors",
        rf"{LOGS_DIR}/.+",
    ]


def unlisted_pattern() -> str:
    """Files that MANIFEST.sha256 does not list: itself and its signature, the journal, logs, a
    report made after the run, and training checkpoints (they exist only while a replica is
    unfinished, and carry their own checksums)."""
    checkpoints = "|".join(map(re.escape, CHECKPOINT_FILES))
    return (
        rf"{re.escape(MANIFEST)}|{re.escape(SIGNATURE)}|{JOURNAL}/.+|{LOGS_DIR}/.+"
        rf"|report\.(html|zip)|.*/({checkpoints})"
    )


def unchecked_pattern() -> str:
    """Files that neither the manifest nor `ganplify verify` checks, and `merge` never copies:
    job logs and the Snakemake report (HTML with scripts, made by Snakemake)."""
    return rf"{LOGS_DIR}/.+|report\.(html|zip)"
