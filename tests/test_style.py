"""The style checks CI runs: ruff's lint and format, snakefmt (snakemake --lint is in
test_workflow.py). Run as tests so that the README's test command and the everyday suite run
them too."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    path = BIN / name
    found = str(path) if path.exists() else shutil.which(name)
    assert found, f"{name} is not installed: pip install -e '.[test]'"
    return found


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "src", "tests", "benchmarks"],
        ["ruff", "format", "--check", "src", "tests", "benchmarks"],
        ["snakefmt", "--check", "Snakefile", "workflow/"],
    ],
    ids=["ruff-check", "ruff-format", "snakefmt"],
)
def test_style(command):
    proc = subprocess.run(
        [_tool(command[0]), *command[1:]], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
