"""MANIFEST.sha256 and `ganplify verify`: every file of a results folder belongs to its
contract (`ganplify.results.layout`) and matches its checksum."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from ganplify import generators
from ganplify.results import layout
from ganplify.results.io import ResultsError, atomic_write_text, sha256_file

MANIFEST = layout.MANIFEST
CONTRACT_PATTERNS = layout.contract_patterns(generators.REGISTRY)
_CONTRACT_RE = re.compile("|".join(f"(?:{p})" for p in CONTRACT_PATTERNS))
_UNLISTED_RE = re.compile(layout.unlisted_pattern())


def folder_files(root: str | Path) -> list[str]:
    """All regular files under ``root`` as sorted POSIX paths relative to it."""
    root = Path(root)
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".snakemake"]
        for name in filenames:
            out.append((Path(dirpath) / name).relative_to(root).as_posix())
    return sorted(out)


def write_manifest(root: str | Path) -> int:
    """Checksum every listed file of the folder into MANIFEST.sha256; return how many."""
    root = Path(root)
    files = [f for f in folder_files(root) if not _UNLISTED_RE.fullmatch(f)]
    lines = [f"{sha256_file(root / f)}  {f}\n" for f in files]
    atomic_write_text(root / MANIFEST, "".join(lines))
    return len(files)


def read_manifest(root: str | Path) -> dict[str, str]:
    path = Path(root) / MANIFEST
    if not path.is_file():
        raise ResultsError(f"{path}: missing (run the workflow to the end, or `ganplify manifest`)")
    entries = {}
    for i, line in enumerate(path.read_text().splitlines(), 1):
        m = re.fullmatch(r"([0-9a-f]{64})  (.+)", line)
        if not m:
            raise ResultsError(f"{path}, line {i}: not '<sha256>  <path>'")
        entries[m.group(2)] = m.group(1)
    return entries


def verify(root: str | Path, check_tables: Iterable = ()) -> list[str]:
    """Problems found in a results folder (empty when it is intact).

    Checks that every file belongs to the contract, that every file listed in the manifest
    exists with its checksum, that no file is missing from the manifest, and runs the table
    checks given in ``check_tables`` (callables root -> list of problems).
    """
    root = Path(root)
    if not root.is_dir():
        return [f"{root}: not a directory"]
    problems = []
    present = folder_files(root)
    for f in present:
        if not _CONTRACT_RE.fullmatch(f):
            problems.append(f"{f}: foreign file, not part of the results-folder contract")
    try:
        manifest = read_manifest(root)
    except ResultsError as exc:
        return [*problems, str(exc)]
    present_set = set(present)
    for f, digest in manifest.items():
        if f not in present_set:
            problems.append(f"{f}: missing (listed in {MANIFEST})")
        elif sha256_file(root / f) != digest:
            problems.append(f"{f}: altered (checksum differs from {MANIFEST})")
    for f in present:
        if f not in manifest and not _UNLISTED_RE.fullmatch(f) and _CONTRACT_RE.fullmatch(f):
            problems.append(f"{f}: not listed in {MANIFEST} (added after the run?)")
    for check in check_tables:
        problems += check(root)
    return problems
