"""Shared fixtures for the test suite."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.helpers import TINY_CONFIG, copy_project, run_snakemake


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the workflow in a temporary folder (no results, no .snakemake)."""
    return copy_project(tmp_path / "project")


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """One real run of the tiny test config (.test/config/config.yaml) for the whole session:
    every generator and stage in d = 1, 2, 5 in a couple of minutes. Tests copy it before they
    change anything."""
    project = copy_project(tmp_path_factory.mktemp("tiny"))
    start = time.perf_counter()
    run_snakemake(project, "--configfile", TINY_CONFIG)
    print(f"tiny test study: {time.perf_counter() - start:.1f} s")
    return project
