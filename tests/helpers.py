"""Helpers shared by the workflow tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import safetensors

from ganplify.generators.neural.gan.networks import Architecture
from ganplify.generators.neural.layers import LayerSpec
from ganplify.metrics.evaluation import evaluate_stream
from ganplify.metrics.quantiles import CellCounter

REPO = Path(__file__).resolve().parents[1]
# Files a workflow run needs, copied into a temporary project folder.
WORKFLOW_FILES = ("Snakefile", "workflow", "config", "profiles", "slurm", "envs", ".test")


def copy_project(dest: Path) -> Path:
    """Copy the workflow (no results, no .snakemake) into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_FILES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, symlinks=True)
        else:
            shutil.copy2(src, dest / name)
    return dest


def snakemake_cmd() -> list[str]:
    """The snakemake of the running interpreter's environment."""
    exe = Path(sys.executable).parent / "snakemake"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "snakemake"]


def env_with_venv() -> dict[str, str]:
    """Environment whose PATH finds this interpreter's `ganplify` and `snakemake`."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


# The tiny test config (the catalog's .test convention): what the real-workflow tests run.
TINY_CONFIG = ".test/config/config.yaml"


def run_snakemake(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run snakemake in a project folder; with ``check``, fail with its output unless it
    succeeds."""
    proc = subprocess.run(
        [*snakemake_cmd(), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env_with_venv(),
        timeout=1800,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {args} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


# --------------------------------------------------------------------------- test-only helpers


def prefix_mse(
    chunks: Iterable[np.ndarray], counter: CellCounter, n_grid: Sequence[int]
) -> np.ndarray:
    """MSE of the first n events for every n in ``n_grid`` (sorted) and every binning."""
    return evaluate_stream(chunks, counter, n_grid).result()


def generator_metadata(path: Path) -> dict[str, str]:
    """The metadata stored by `save_generator`."""
    with safetensors.safe_open(str(path), framework="pt") as f:
        return dict(f.metadata() or {})


def parameter_count(layers: Sequence[LayerSpec]) -> int:
    """Number of parameters (weights and biases) of a list of layers."""
    return sum((s.fan_in + 1) * s.fan_out for s in layers)


def generator_parameter_count(arch: Architecture) -> int:
    """Closed form: (N + 1) H + (L - 1)(H + 1) H + (H + 1) d (651,265 for the paper's d = 1)."""
    n, h, layers, d = arch.noise_dim, arch.hidden, arch.layers, arch.dim
    return (n + 1) * h + (layers - 1) * (h + 1) * h + (h + 1) * d


def discriminator_parameter_count(arch: Architecture) -> int:
    """Closed form (478,241 for the paper's d = 1):

    Phi: (d + 1) H + (H + 1) H + (H + 1) m; main: (d + m + 1) H + (L - 1)(H + 1) H + (H + 1).
    """
    h, m, layers, d = arch.hidden, arch.embedding, arch.layers, arch.dim
    phi = (d + 1) * h + (h + 1) * h + (h + 1) * m
    return phi + (d + m + 1) * h + (layers - 1) * (h + 1) * h + (h + 1)
