"""A results folder's integrity: the journal of what the workflow wrote, the guard a run starts
with (`manifest.changes`), `ganplify accept`, `verify` and SSH signatures.

Each tampering case below is one class of edit a careless or hostile collaborator makes; each
legitimate case is one the workflow itself leaves behind.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from ganplify.cli import main as ganplify_main
from ganplify.results import layout, manifest, signature
from ganplify.results.io import ResultsError, atomic_write_text, recording, sha256_file

SETTING = "replicas/gaussian_shell-d1/n100/fit-0123456789"


def workflow_writes(root: Path, files: dict[str, str]) -> None:
    """Write files as a `ganplify` command of the workflow does (journaled)."""
    with recording(root):
        for rel, text in files.items():
            atomic_write_text(root / rel, text)


@pytest.fixture
def finished(tmp_path: Path) -> Path:
    """A small finished folder: contract files written by the workflow, then its manifest."""
    root = tmp_path / "study"
    workflow_writes(
        root,
        {
            "config.yaml": "study: study\n",
            "tables/amplification.csv": "a,b\n1,2\n",
            "figures/fig1.png": "png",
            f"{SETTING}/params.json": "{}\n",
            f"{SETTING}/seed0/mse.csv": "x\n1\n",
            f"{SETTING}/seed0/status.json": "{}\n",
        },
    )
    manifest.write_manifest(root)
    assert not manifest.journal_files(root)
    return root


@pytest.fixture
def no_table_checks(monkeypatch):
    """`ganplify verify` and `sign` without the table schema checks: these folders are small
    stand-ins whose tables are not a study's."""
    monkeypatch.setattr("ganplify.results.checks.table_checks", ())


# --------------------------------------------------------------------------- tampering


def test_an_edited_table_stops_the_rerun_and_the_manifest(finished):
    table = finished / "tables/amplification.csv"
    table.write_text("a,b\n1,3\n")
    assert manifest.changes(finished) == [
        "tables/amplification.csv: changed since MANIFEST.sha256, and not by the workflow"
    ]
    before = (finished / layout.MANIFEST).read_text()
    with pytest.raises(ResultsError, match="ganplify accept"):
        manifest.write_manifest(finished)
    assert (finished / layout.MANIFEST).read_text() == before


def test_a_replica_edited_then_rewritten_by_hand_with_the_same_bytes_passes(finished):
    path = finished / f"{SETTING}/seed0/mse.csv"
    text = path.read_text()
    path.write_text("edited")
    path.write_text(text)
    assert manifest.changes(finished) == []


def test_a_figure_replaced_by_a_link_outside_the_folder_is_refused(finished, tmp_path):
    secret = tmp_path / "private.txt"
    secret.write_text("secret")
    figure = finished / "figures/fig1.png"
    figure.unlink()
    figure.symlink_to(secret)
    problems = manifest.changes(finished)
    assert len(problems) == 1 and problems[0].startswith("figures/fig1.png: a symbolic link")


def test_a_linked_folder_is_refused_and_not_entered(finished, tmp_path):
    outside = tmp_path / "outside"
    (outside / "seed0").mkdir(parents=True)
    (outside / "seed0" / "mse.csv").write_text("x\n")
    (finished / "replicas/gaussian_shell-d1/n100/fit-abcdefabcd").symlink_to(outside)
    problems = manifest.changes(finished)
    assert problems == [
        "replicas/gaussian_shell-d1/n100/fit-abcdefabcd: a symbolic link (results folders hold "
        "regular files only; replace it by the file, or remove it)"
    ]


def test_a_seed_folder_added_by_hand_is_refused(finished):
    src = finished / f"{SETTING}/seed0"
    shutil.copytree(src, finished / f"{SETTING}/seed7")
    problems = manifest.changes(finished)
    assert sorted(problems) == [
        f"{SETTING}/seed7/mse.csv: not written by the workflow, nor listed in MANIFEST.sha256",
        f"{SETTING}/seed7/status.json: not written by the workflow, nor listed in MANIFEST.sha256",
    ]


def test_hidden_tool_folders_and_foreign_files_are_refused(finished):
    (finished / ".snakemake" / "metadata").mkdir(parents=True)
    (finished / "figures" / ".notes").write_text("x")
    (finished / "tables" / "run.sh").write_text("rm -rf ~")
    problems = manifest.changes(finished)
    assert problems == [
        ".snakemake/: hidden or tool file inside a results folder; remove it",
        "figures/.notes: hidden or tool file inside a results folder; remove it",
        "tables/run.sh: foreign file, not part of the results-folder contract (move it out)",
    ]


def test_a_named_pipe_is_refused(finished):
    os.mkfifo(finished / "tables" / "mse.csv")
    assert manifest.changes(finished) == ["tables/mse.csv: not a regular file; remove it"]


def test_a_malformed_journal_is_refused_naming_it(finished):
    journal = finished / layout.JOURNAL / ("0" * 32 + ".sha256")
    journal.parent.mkdir()
    journal.write_text("not a line\n" + "f" * 64 + "  tables/mse.csv\n")
    problems = manifest.changes(finished)
    assert problems == [f"{journal}, line 1: not '<sha256>  <path>'"]


# --------------------------------------------------------------------------- legitimate cases


def test_a_first_run_without_a_manifest_passes(tmp_path):
    root = tmp_path / "new"
    assert manifest.changes(root) == []  # nothing yet
    workflow_writes(root, {"config.yaml": "study: new\n", f"{SETTING}/seed0/mse.csv": "x\n"})
    assert manifest.changes(root) == []  # interrupted before its manifest


def test_a_run_interrupted_after_rewriting_tables_and_adding_seeds_passes(finished):
    workflow_writes(
        finished,
        {"tables/amplification.csv": "a,b\n5,6\n", f"{SETTING}/seed1/mse.csv": "x\n2\n"},
    )
    assert manifest.changes(finished) == []
    n = manifest.write_manifest(finished)
    assert n == 7 and not manifest.journal_files(finished)
    assert manifest.verify(finished) == []


def test_deleted_files_do_not_stop_a_run(finished):
    (finished / "tables/amplification.csv").unlink()  # the workflow remakes it
    assert manifest.changes(finished) == []


def test_a_torn_last_journal_line_is_skipped(tmp_path):
    root = tmp_path / "study"
    workflow_writes(root, {"config.yaml": "a\n"})
    [journal] = manifest.journal_files(root)
    with open(journal, "a") as fh:
        fh.write("abc")  # a process killed while appending
    assert manifest.changes(root) == []


def test_a_killed_writes_temporary_file_is_reported_then_removed(finished):
    leftover = finished / "tables" / ".mse.csv.k3j_x9.tmp"
    leftover.write_text("half")
    assert manifest.changes(finished) == []
    assert manifest.verify(finished) == [
        "tables/.mse.csv.k3j_x9.tmp: left by an interrupted write; the next run removes it"
    ]
    manifest.write_manifest(finished)
    assert not leftover.exists() and manifest.verify(finished) == []


def test_verify_reports_an_unfinished_run(finished):
    workflow_writes(finished, {"tables/amplification.csv": "a,b\n5,6\n"})
    problems = manifest.verify(finished)
    assert any("has not finished" in p for p in problems)
    assert "tables/amplification.csv: altered (checksum differs from MANIFEST.sha256)" in problems


def test_accept_takes_an_intended_edit_in(finished, capsys):
    (finished / "tables/amplification.csv").write_text("a,b\n1,9\n")
    assert ganplify_main(["accept", str(finished), "tables/amplification.csv"]) == 0
    out = capsys.readouterr().out
    assert "accepted" in out and "MANIFEST.sha256: 6 files" in out
    assert manifest.changes(finished) == [] and manifest.verify(finished) == []


def test_accept_refuses_files_outside_the_manifests_reach(finished, capsys):
    (finished / "tables" / "run.sh").write_text("x")
    for name in ("tables/run.sh", "tables/none.csv", "logs/x.log"):
        assert ganplify_main(["accept", str(finished), name]) == 2
        err = capsys.readouterr().err
        assert name in err, err
    assert "foreign file" in manifest.changes(finished)[0]


def test_accept_takes_paths_relative_to_here_too(finished, monkeypatch):
    (finished / "tables/amplification.csv").write_text("edited\n")
    monkeypatch.chdir(finished.parent)
    assert manifest.accept(finished.name, ["study/tables/amplification.csv"]) == [
        "tables/amplification.csv"
    ]


def test_logs_and_report_are_neither_checked_nor_refused(finished, capsys, no_table_checks):
    (finished / "logs").mkdir()
    (finished / "logs" / "job.log").write_text("anything")
    (finished / "report.html").write_text("<script>alert(1)</script>")
    assert manifest.changes(finished) == [] and manifest.verify(finished) == []
    assert ganplify_main(["verify", str(finished)]) == 0
    assert "not checked: 2 log/report file(s)" in capsys.readouterr().out


# --------------------------------------------------------------------------- signatures


@pytest.fixture
def ssh_key(tmp_path: Path) -> Path:
    if shutil.which("ssh-keygen") is None:  # .ci/run installs it; a bare machine may lack it
        pytest.skip("ssh-keygen (OpenSSH, Debian: openssh-client) is not installed")
    key = tmp_path / "keys" / "id_ed25519"
    key.parent.mkdir()
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "alice", "-f", str(key)], check=True
    )
    return key


def allowed_signers(key: Path, principal: str) -> Path:
    path = key.parent / "allowed_signers"
    path.write_text(f"{principal} {key.with_suffix('.pub').read_text()}")
    return path


def test_a_signed_folder_says_who_signed_it(finished, ssh_key, capsys, no_table_checks):
    assert ganplify_main(["sign", str(finished), "--key", str(ssh_key)]) == 0
    fingerprint = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(ssh_key.with_suffix(".pub"))],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[1]
    capsys.readouterr()
    assert ganplify_main(["verify", str(finished)]) == 0
    assert f"signed by ssh-ed25519 key {fingerprint}" in capsys.readouterr().out
    allowed = allowed_signers(ssh_key, "alice@example.org")
    assert ganplify_main(["verify", str(finished), "--allowed-signers", str(allowed)]) == 0
    assert "(alice@example.org)" in capsys.readouterr().out


def test_a_rewritten_manifest_no_longer_matches_its_signature(
    finished, ssh_key, capsys, no_table_checks
):
    signature.sign(finished, ssh_key)
    # the hostile collaborator's edit: a table, and the manifest recomputed to match it
    (finished / "tables/amplification.csv").write_text("a,b\n1,3\n")
    lines = [f"{sha256_file(finished / f)}  {f}\n" for f in manifest.read_manifest(finished)]
    (finished / layout.MANIFEST).write_text("".join(lines))
    assert manifest.verify(finished) == []  # checksums alone cannot tell
    capsys.readouterr()
    assert ganplify_main(["verify", str(finished)]) == 1
    assert "MANIFEST.sha256.sig: does not sign this MANIFEST.sha256" in capsys.readouterr().err


def test_an_untrusted_key_or_a_missing_signature_fails_with_allowed_signers(
    finished, ssh_key, tmp_path, capsys, no_table_checks
):
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    allowed = allowed_signers(other, "bob")
    assert ganplify_main(["verify", str(finished), "--allowed-signers", str(allowed)]) == 1
    assert "the folder is not signed" in capsys.readouterr().err
    signature.sign(finished, ssh_key)
    assert ganplify_main(["verify", str(finished), "--allowed-signers", str(allowed)]) == 1
    assert "a key" in capsys.readouterr().err


def test_a_new_manifest_removes_the_signature_of_the_old_one(finished, ssh_key):
    signature.sign(finished, ssh_key)
    manifest.write_manifest(finished)  # unchanged content: the signature still holds
    assert (finished / layout.SIGNATURE).exists()
    signature.signer(finished)
    workflow_writes(finished, {"tables/amplification.csv": "a,b\n7,8\n"})
    manifest.write_manifest(finished)
    assert not (finished / layout.SIGNATURE).exists()


def test_signing_refuses_a_folder_that_does_not_verify(finished, ssh_key, capsys, no_table_checks):
    (finished / "tables/amplification.csv").write_text("edited")
    assert ganplify_main(["sign", str(finished), "--key", str(ssh_key)]) == 2
    assert "not signed" in capsys.readouterr().err
    assert not (finished / layout.SIGNATURE).exists()


def test_accept_all_adopts_an_unfinished_folder_of_an_earlier_version(tmp_path, capsys):
    root = tmp_path / "old"
    for rel in ("config.yaml", f"{SETTING}/seed0/mse.csv", f"{SETTING}/seed0/status.json"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("written before the journal\n")  # no journal, no manifest
    assert len(manifest.changes(root)) == 3
    assert ganplify_main(["accept", str(root), "--all"]) == 0
    assert manifest.changes(root) == []
    (root / "tables").mkdir()
    (root / "tables" / "notes.txt").write_text("x")  # foreign files are never adopted
    (root / "config.yaml").write_text("edited\n")
    assert ganplify_main(["accept", str(root), "--all"]) == 2
    assert "tables/notes.txt: foreign file" in capsys.readouterr().err
    assert ganplify_main(["accept", str(root)]) == 2  # neither files nor --all


def test_a_config_snapshot_that_is_not_the_studys_is_removed(tmp_path):
    """A copied folder carries no .snakemake records: the parse-time check removes its
    config.yaml when the study's config changed, so that the workflow writes it again."""
    from ganplify.results.io import config_text
    from ganplify.study import config as cfg
    from ganplify.study.repair import stale_config

    config = cfg.load(Path(__file__).parents[1] / ".test" / "config" / "config.yaml")
    snapshot = tmp_path / layout.CONFIG
    assert stale_config(tmp_path, config) is None  # no snapshot yet
    snapshot.write_text(config_text(config))
    assert stale_config(tmp_path, config) is None and snapshot.exists()
    wider = cfg.validate({**config, "aggregate": {**config["aggregate"], "interval": 0.9}})
    assert stale_config(tmp_path, wider) == f"{snapshot}: not the study's config: written again"
    assert not snapshot.exists()
