"""Helpers shared by the workflow tests."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Files a workflow run needs, copied into a temporary project folder.
WORKFLOW_FILES = ("Snakefile", "workflow", "config", "profiles", "slurm", "envs")


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
