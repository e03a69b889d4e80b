"""Reading and writing a results folder's files: one atomic write, JSON, CSV, checksums.

Every file is written atomically (`atomic_write_bytes`), so a crash leaves either the old or
the complete new content, never a torn file. Nothing here unpickles: every file is CSV, JSON,
YAML or safetensors.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


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


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` so that ``path`` holds either the old or the complete new content.

    A temporary file in the same folder is written, flushed to disk, renamed over ``path``, and
    the folder is synced, so the new content survives a power cut once this returns. The file
    gets the mode an ordinary ``open`` would give it (0666 less the umask; mkstemp's own 0600
    would hide shared results from the group).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
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
