"""MANIFEST.sha256, the guard that keeps a rerun from blessing edits, and `ganplify verify`.

Every file of a results folder belongs to its contract (`ganplify.results.layout`) and matches
its checksum. Between two manifests, the files the workflow writes are entered in the folder's
journal (`ganplify.results.io.recording`); `changes` is what a run refuses to start on (and
what the next manifest refuses to cover): a file whose content is neither the manifest's nor
one the workflow wrote, a file outside the contract, a link, a hidden folder.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ganplify import generators
from ganplify.results import layout
from ganplify.results.io import (
    TMP_SUFFIX,
    ResultsError,
    atomic_write_text,
    record_digests,
    record_existing,
    recording,
    sha256_file,
)

MANIFEST = layout.MANIFEST
CONTRACT_PATTERNS = layout.contract_patterns(generators.REGISTRY)
_CONTRACT_RE = re.compile("|".join(f"(?:{p})" for p in CONTRACT_PATTERNS))
_UNLISTED_RE = re.compile(layout.unlisted_pattern())
_UNCHECKED_RE = re.compile(layout.unchecked_pattern())
_LINE_RE = re.compile(r"([0-9a-f]{64})  (.+)")
_TMP_RE = re.compile(rf"\..+\.[A-Za-z0-9_]+{re.escape(TMP_SUFFIX)}")


@dataclass
class Scan:
    """What a results folder holds, as POSIX paths relative to it; nothing is followed."""

    files: list[str] = field(default_factory=list)  # regular files, hidden ones excluded
    links: list[str] = field(default_factory=list)  # symbolic links to files or folders
    hidden: list[str] = field(default_factory=list)  # hidden files and folders (.snakemake/)
    leftovers: list[str] = field(default_factory=list)  # temporary files of killed writes
    other: list[str] = field(default_factory=list)  # sockets, pipes, devices


def scan(root: str | Path) -> Scan:
    """Walk ``root`` without following links; hidden folders are reported, not entered."""
    root = Path(root)
    out = Scan()
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        keep = []
        for name in dirnames:
            rel = (here / name).relative_to(root).as_posix()
            if (here / name).is_symlink():
                out.links.append(rel)
            elif name.startswith("."):
                out.hidden.append(f"{rel}/")
            else:
                keep.append(name)
        dirnames[:] = keep
        for name in filenames:
            path = here / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                out.links.append(rel)
            elif _TMP_RE.fullmatch(name):
                out.leftovers.append(rel)
            elif name.startswith("."):
                out.hidden.append(rel)
            elif not path.is_file():
                out.other.append(rel)
            else:
                out.files.append(rel)
    for part in (out.files, out.links, out.hidden, out.leftovers, out.other):
        part.sort()
    return out


def folder_files(root: str | Path) -> list[str]:
    """All regular, visible files under ``root`` as sorted POSIX paths relative to it."""
    return scan(root).files


def is_contract_file(path: str) -> bool:
    """Whether a relative path is one a results folder may hold."""
    return bool(_CONTRACT_RE.fullmatch(path))


def is_unchecked(path: str) -> bool:
    """Job logs and the report: neither checksummed nor verified, and never merged."""
    return bool(_UNCHECKED_RE.fullmatch(path))


def read_manifest(root: str | Path) -> dict[str, str]:
    path = Path(root) / MANIFEST
    if not path.is_file():
        raise ResultsError(f"{path}: missing (run the workflow to the end, or `ganplify manifest`)")
    entries = {}
    for i, line in enumerate(path.read_text().splitlines(), 1):
        m = _LINE_RE.fullmatch(line)
        if not m:
            raise ResultsError(f"{path}, line {i}: not '<sha256>  <path>'")
        entries[m.group(2)] = m.group(1)
    return entries


def journal_files(root: str | Path) -> list[Path]:
    folder = Path(root) / layout.JOURNAL
    return (
        sorted(p for p in folder.glob("*.sha256") if not p.is_symlink()) if folder.is_dir() else []
    )


def read_journal(root: str | Path) -> dict[str, set[str]]:
    """Every checksum the workflow wrote each file with since the last manifest.

    A last line without its newline (a process killed while appending) is skipped; any other
    malformed line is an error naming the journal file.
    """
    out: dict[str, set[str]] = {}
    for path in journal_files(root):
        text = path.read_text(errors="replace")
        lines = text.split("\n")
        for i, line in enumerate(lines, 1):
            if not line:
                continue
            m = _LINE_RE.fullmatch(line)
            if m is None:
                if i == len(lines):  # torn last line
                    continue
                raise ResultsError(f"{path}, line {i}: not '<sha256>  <path>'")
            out.setdefault(m.group(2), set()).add(m.group(1))
    return out


def _layout_problems(root: Path, found: Scan) -> list[str]:
    """Links, hidden entries and files outside the contract: never part of a results folder."""
    problems = [
        f"{f}: a symbolic link (results folders hold regular files only; replace it by the "
        "file, or remove it)"
        for f in found.links
    ]
    problems += [
        f"{f}: hidden or tool file inside a results folder; remove it" for f in found.hidden
    ]
    problems += [f"{f}: not a regular file; remove it" for f in found.other]
    problems += [
        f"{f}: foreign file, not part of the results-folder contract (move it out)"
        for f in found.files
        if not is_contract_file(f)
    ]
    return problems


def changes(root: str | Path) -> list[str]:
    """Why a run must not start on this folder, or a manifest not cover it (empty: none).

    A listed file (`layout.unlisted_pattern` excepted) passes when its content is the one in
    MANIFEST.sha256 or one the workflow wrote since (the journal). Missing files pass: the
    workflow remakes them.
    """
    return _audit(Path(root))[0]


def _audit(root: Path) -> tuple[list[str], dict[str, str]]:
    """`changes`'s problems, and the digest of every listed file it read (so that a manifest
    written right after reads each file once)."""
    if not root.is_dir():
        return [], {}
    found = scan(root)
    problems = _layout_problems(root, found)
    try:
        manifest = read_manifest(root) if (root / MANIFEST).is_file() else {}
        journal = read_journal(root)
    except ResultsError as exc:
        return [*problems, str(exc)], {}
    digests = {}
    for f in found.files:
        if not is_contract_file(f) or _UNLISTED_RE.fullmatch(f):
            continue
        known = journal.get(f, set()) | ({manifest[f]} if f in manifest else set())
        digests[f] = sha256_file(root / f)
        if digests[f] in known:
            continue
        if f in manifest:
            problems.append(f"{f}: changed since {MANIFEST}, and not by the workflow")
        else:
            problems.append(f"{f}: not written by the workflow, nor listed in {MANIFEST}")
    return problems, digests


def refusal(root: str | Path, problems: Sequence[str]) -> str:
    """The one message of a refused run or manifest: every problem, and what to do."""
    lines = "\n".join(f"  {p}" for p in problems)
    return (
        f"{root}: {len(problems)} file(s) changed outside the workflow:\n{lines}\n"
        "Restore or delete them (the workflow remakes a deleted table or figure, and names "
        "the job that remakes a deleted replica file), or accept intended edits with: "
        f"ganplify accept {root} FILE... (every file of a folder an earlier ganplify wrote "
        f"and did not finish: ganplify accept {root} --all)"
    )


def write_manifest(root: str | Path) -> int:
    """Checksum every listed file into MANIFEST.sha256 and clear the journal; return how many.

    Refuses (`ResultsError`, naming the files) when `changes` finds anything: a manifest
    never covers an edit the workflow did not make. Temporary files of killed writes are
    removed; a signature of an older manifest is removed with a notice on stderr.
    """
    root = Path(root)
    problems, digests = _audit(root)
    if problems:
        raise ResultsError(refusal(root, problems))
    found = scan(root)
    for f in found.leftovers:
        (root / f).unlink(missing_ok=True)
    files = [f for f in found.files if not _UNLISTED_RE.fullmatch(f)]
    text = "".join(f"{digests.get(f) or sha256_file(root / f)}  {f}\n" for f in files)
    old = (root / MANIFEST).read_text() if (root / MANIFEST).is_file() else None
    atomic_write_text(root / MANIFEST, text)
    signature = root / layout.SIGNATURE
    if old != text and signature.exists():
        signature.unlink()
        print(f"{signature}: removed, it signed the previous manifest; sign again", flush=True)
    for path in journal_files(root):
        path.unlink()
    with contextlib.suppress(OSError):  # gone, or holding something else: verify says what
        (root / layout.JOURNAL).rmdir()
    return len(files)


def carry_forward(root: str | Path) -> None:
    """Enter MANIFEST.sha256's entries in the journal (a run starting on a folder that
    `changes` passed): the manifest's vouchers survive Snakemake deleting it before its rule
    reruns."""
    root = Path(root)
    if (root / MANIFEST).is_file():
        with recording(root):
            record_digests((root / rel, digest) for rel, digest in read_manifest(root).items())


def accept(root: str | Path, files: Iterable[str], *, every: bool = False) -> list[str]:
    """Enter files as they are now in the journal, so that the next manifest covers them.

    Each must be a regular contract file that the manifest lists (`ResultsError` otherwise,
    naming it). With ``every``, each such file the guard finds changed (`changes`) is accepted
    instead (a folder written by a version without the journal, interrupted before its
    manifest); links, hidden and foreign files are still refused. Returns the relative paths
    accepted.
    """
    root = Path(root)
    found = scan(root)
    present = set(found.files)
    if every:
        layout_problems = _layout_problems(root, found)
        if layout_problems:
            raise ResultsError(refusal(root, layout_problems))
        files = [p.split(": ", 1)[0] for p in changes(root)]
    rels = []
    for name in files:
        # a path relative to the folder, or one (relative to here, or absolute) inside it
        inside = Path(os.path.relpath(os.path.abspath(name), os.path.abspath(root))).as_posix()
        relative = not Path(name).is_absolute() and (root / name).exists()
        rel = Path(name).as_posix() if relative else inside
        if rel not in present:
            raise ResultsError(f"{root}/{rel}: not a regular file of this results folder")
        if not is_contract_file(rel) or _UNLISTED_RE.fullmatch(rel):
            raise ResultsError(
                f"{root}/{rel}: not a file the manifest lists, so there is nothing to accept"
            )
        rels.append(rel)
    with recording(root):
        for rel in rels:
            record_existing(root / rel)
    return rels


def verify(root: str | Path, check_tables: Iterable = ()) -> list[str]:
    """Problems found in a results folder (empty when it is intact).

    Checks that it holds only regular contract files (no links, hidden folders or leftovers of
    killed writes), that no run is unfinished (a journal), that every file listed in the
    manifest exists with its checksum, that no file is missing from the manifest, and runs the
    table checks given in ``check_tables`` (callables root -> list of problems). Logs and the
    report are not checked (`is_unchecked`).
    """
    root = Path(root)
    if not root.is_dir():
        return [f"{root}: not a directory"]
    found = scan(root)
    problems = _layout_problems(root, found)
    problems += [
        f"{f}: left by an interrupted write; the next run removes it" for f in found.leftovers
    ]
    problems += [
        f"{p.relative_to(root).as_posix()}: a run wrote files after {MANIFEST} and has not "
        "finished; run the workflow to the end"
        for p in journal_files(root)
    ]
    try:
        manifest = read_manifest(root)
    except ResultsError as exc:
        return [*problems, str(exc)]
    present_set = set(found.files)
    for f, digest in manifest.items():
        if f not in present_set:
            problems.append(f"{f}: missing (listed in {MANIFEST})")
        elif sha256_file(root / f) != digest:
            problems.append(f"{f}: altered (checksum differs from {MANIFEST})")
    for f in found.files:
        if f not in manifest and not _UNLISTED_RE.fullmatch(f) and is_contract_file(f):
            problems.append(f"{f}: not listed in {MANIFEST} (added after the run?)")
    for check in check_tables:
        problems += check(root)
    return problems
