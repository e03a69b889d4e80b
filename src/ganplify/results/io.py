"""Reading and writing a results folder's files: one atomic write, JSON, CSV, checksums.

Every file is written atomically (`atomic_write_bytes`), so a crash leaves either the old or
the complete new content, never a torn file. Inside `recording(root)` (every `ganplify` command
that writes into a results folder), each write is first entered in the folder's journal with
its checksum: what the workflow wrote since the last MANIFEST.sha256 is then known, and a
file changed by anyone else is not (`ganplify.results.manifest.changes`). Nothing here
unpickles: every file is CSV, JSON, YAML or safetensors.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import struct
import tempfile
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


from ganplify.results import layout

JOURNAL_DIR = layout.JOURNAL
TMP_SUFFIX = ".tmp"  # an atomic write's temporary file: .<name>.<random>.tmp

# Columns of the tables that hold names, never numbers (a binning "x", a parameter "mu").
TEXT_COLUMNS = ("target", "generator", "binning", "parameter")


class ResultsError(RuntimeError):
    """A results folder (or a file in it) is missing, corrupt or foreign."""


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every file system lets a directory be opened
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# The results folder being written and this process's journal file in it (`recording`).
_recording: list[tuple[Path, Path]] = []


@contextlib.contextmanager
def recording(root: str | Path) -> Iterator[None]:
    """Enter every file written below ``root`` in its journal, ``journal/<random>.sha256``.

    One journal file per process, so parallel jobs (also on other nodes of a cluster, on a
    shared file system) never write to the same file. Each line, "<sha256>  <path>", is on
    disk before the file it describes: a crash between the two leaves an entry for content
    that never landed, which is harmless, never a file without its entry.
    """
    root = Path(os.path.abspath(root))
    journal = root / JOURNAL_DIR / f"{uuid.uuid4().hex}.sha256"
    _recording.append((root, journal))
    try:
        yield
    finally:
        _recording.remove((root, journal))


def _record(path: Path, data: bytes) -> None:
    record_digests([(path, hashlib.sha256(data).hexdigest())])


def record_digests(entries: Iterable[tuple[str | Path, str]]) -> None:
    """Enter files' checksums, (path, sha256) pairs, in the journal of every folder being
    recorded that holds them: one append and one sync per call."""
    entries = [(Path(os.path.abspath(p)), d) for p, d in entries]
    for root, journal in _recording:
        lines = "".join(
            f"{digest}  {path.relative_to(root).as_posix()}\n"
            for path, digest in entries
            if root in path.parents and journal.parent != path.parent
        )
        if lines:
            journal.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
            try:
                os.write(fd, lines.encode())
                os.fsync(fd)
            finally:
                os.close(fd)


def lock_folder(root: str | Path) -> int:
    """Hold an exclusive lock on a results folder for as long as this process lives; returns
    the descriptor that holds it (keep it open).

    A Snakemake interrupted once (SIGINT) releases its own lock but can live on until its
    running jobs end; a second run must not start on their half-made outputs meanwhile.
    `ResultsError` when another process holds the lock.
    """
    import fcntl

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise ResultsError(
            f"{root}: another run is still writing it (a Snakemake interrupted with Ctrl-C "
            "waits for its running jobs); let it end, or stop it, then run again"
        ) from None
    return fd


def record_existing(path: str | Path) -> None:
    """Enter a file as it is now in the journal of the folder being recorded (`recording`):
    how `ganplify accept` takes an edit in."""
    _record(Path(path), Path(path).read_bytes())


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` so that ``path`` holds either the old or the complete new content.

    A temporary file in the same folder is written, flushed to disk, renamed over ``path``, and
    the folder is synced, so the new content survives a power cut once this returns. The file
    gets the mode an ordinary ``open`` would give it (0666 less the umask; mkstemp's own 0600
    would hide shared results from the group).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _record(path, data)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n")


def config_text(config: dict) -> str:
    """The text of a results folder's config.yaml for a validated config (one writer, so a
    snapshot compares equal to the config it was written from)."""
    import yaml

    return yaml.safe_dump(config, sort_keys=False)


def safetensors_metadata(head: bytes, size: int, path: str | Path) -> dict[str, str]:
    """The string metadata of a safetensors file from its first bytes (its length prefix and
    header, or the whole file) and its size, after checking that the file is complete: the
    header parses and the file is exactly as long as the tensors it declares (`ResultsError`
    naming ``path`` otherwise). Reads no tensors and needs no torch."""
    try:
        (n,) = struct.unpack("<Q", head[:8])
        header = json.loads(head[8 : 8 + n])
        ends = [t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"]
        meta = {str(k): str(v) for k, v in (header.get("__metadata__") or {}).items()}
    except (struct.error, ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise ResultsError(f"{path}: not a safetensors file ({exc})") from None
    if size != 8 + n + max(ends, default=0):
        raise ResultsError(
            f"{path}: truncated or padded ({size} bytes, its header declares "
            f"{8 + n + max(ends, default=0)})"
        )
    return meta


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def read_json(path: str | Path) -> Any:
    """Read a JSON file; a clear error names the file when it is missing or corrupt."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ResultsError(f"{path}: missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ResultsError(f"{path}: not valid JSON ({exc})") from None


def write_csv(path: str | Path, df) -> None:
    atomic_write_text(path, df.to_csv(index=False, na_rep=""))


def read_table(path: str | Path, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Read a CSV table of a results folder (text columns stay text); a clear error names the
    file when it is missing, unreadable, or its columns are not ``columns``."""
    import pandas as pd

    path = Path(path)
    try:
        table = pd.read_csv(path, dtype={name: str for name in TEXT_COLUMNS})
    except FileNotFoundError:
        raise ResultsError(f"{path}: missing") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ResultsError(f"{path}: not a readable CSV table ({exc})") from None
    if columns is not None and list(table.columns) != list(columns):
        raise ResultsError(f"{path}: columns {list(table.columns)} are not {list(columns)}")
    return table


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
