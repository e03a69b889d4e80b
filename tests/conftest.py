"""Shared fixtures for the test suite."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import copy_project


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the workflow in a temporary folder (no results, no .snakemake)."""
    return copy_project(tmp_path / "project")
