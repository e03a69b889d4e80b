"""The one atomic write: complete content or the old one, and modes that follow the umask."""

from __future__ import annotations

import os
import stat

import pytest

from ganplify.results.io import ResultsError, atomic_write_bytes, read_table


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_files_get_the_mode_the_umask_gives(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        atomic_write_bytes(tmp_path / "sub" / "a.csv", b"x\n")
        atomic_write_bytes(tmp_path / "sub" / "a.csv", b"y\n")  # a replaced file too
    finally:
        os.umask(old)
    path = tmp_path / "sub" / "a.csv"
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert path.read_bytes() == b"y\n"
    assert [p.name for p in path.parent.iterdir()] == ["a.csv"]  # no temporary file left


def test_a_failed_write_leaves_the_old_content_and_no_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "t.json"
    atomic_write_bytes(path, b"old")

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["t.json"]


def test_read_table_names_the_file_and_the_columns(tmp_path):
    path = tmp_path / "x.csv"
    with pytest.raises(ResultsError, match=r"x\.csv: missing"):
        read_table(path)
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ResultsError, match=r"x\.csv: columns \['a', 'b'\] are not \['a'\]"):
        read_table(path, ["a"])
    assert read_table(path, ["a", "b"])["b"].tolist() == [2]


def test_a_results_folder_is_locked_by_one_run_at_a_time(tmp_path):
    import os

    from ganplify.results.io import ResultsError, lock_folder

    fd = lock_folder(tmp_path / "study")  # creates the folder
    with pytest.raises(ResultsError, match="another run is still writing it"):
        lock_folder(tmp_path / "study")
    os.close(fd)
    os.close(lock_folder(tmp_path / "study"))  # free again once the holder is gone


@pytest.mark.parametrize(
    "blob, message",
    [
        (b"\x05\x00\x00\x00\x00\x00\x00\x00[1,2]", "not a safetensors file"),
        (b"\x02\x00\x00\x00\x00\x00\x00\x00{}", None),
        (b"\x02\x00\x00\x00\x00\x00\x00\x00{}xx", "truncated or padded"),
        (b"\x03\x00", "not a safetensors file"),
        (b'\x15\x00\x00\x00\x00\x00\x00\x00{"__metadata__": [1]}', "not a safetensors file"),
    ],
)
def test_safetensors_metadata_names_the_file_of_a_broken_header(blob, message):
    from ganplify.results.io import safetensors_metadata

    if message is None:
        assert safetensors_metadata(blob, len(blob), "w.safetensors") == {}
        return
    with pytest.raises(ResultsError, match=f"w.safetensors: {message}"):
        safetensors_metadata(blob, len(blob), "w.safetensors")
