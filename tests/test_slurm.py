"""What jobs ask of SLURM and the preflight messages, with fake SLURM commands on PATH.

The real cluster tests are under tests/slurm; these check the pure parts and every message of
the preflight without one.
"""

from __future__ import annotations

import copy

import pytest

from ganplify import slurm
from ganplify.study import config as cfg
from tests.test_config import BASE


def config(**changes) -> dict:
    raw = copy.deepcopy(BASE)
    raw.update(changes)
    return cfg.validate(raw)


def test_train_jobs_ask_for_one_gpu_and_one_task_others_for_none():
    c = config(
        slurm={"partition": "cpu", "gpu_partition": "gpu", "account": "phys", "gpu_model": "a100"}
    )
    train = slurm.job_resources(c, "train", minutes=42, env={})
    assert train["gpu"] == 1 and train["gpu_model"] == "a100" and train["tasks"] == 1
    assert train["slurm_partition"] == "gpu" and train["slurm_account"] == "phys"
    assert train["runtime"] == 42
    assert train["slurm_extra"] == "--signal=USR1@120"  # checkpoint before the time limit
    base = slurm.job_resources(c, "baseline", env={})
    assert "gpu" not in base and base["slurm_partition"] == "cpu"
    assert slurm.sbatch_flags(train)[-1] == "--gpus=a100:1"


def test_device_cpu_or_zero_gpus_requests_no_gpu():
    assert "gpu" not in slurm.job_resources(config(device="cpu"), "train", 5, env={})
    c = config(resources={"train": {"gpus": 0, "signal_seconds": 0}})
    assert not {"gpu", "slurm_extra"} & set(slurm.job_resources(c, "train", 5, env={}))


def test_partition_and_account_from_the_environment_never_invented():
    c = config()
    assert "slurm_partition" not in slurm.job_resources(c, "train", 5, env={})
    assert "slurm_account" not in slurm.job_resources(c, "train", 5, env={})
    env = {"GANPLIFY_SLURM_PARTITION": "short", "GANPLIFY_SLURM_ACCOUNT": "acc"}
    res = slurm.job_resources(c, "train", 5, env=env)
    # no GPU partition given: the GPU jobs use the general one
    assert res["slurm_partition"] == "short" and res["slurm_account"] == "acc"
    # the config wins over the environment
    c = config(slurm={"partition": "long"})
    assert slurm.job_resources(c, "baseline", env=env)["slurm_partition"] == "long"


def test_train_time_limit_grows_with_work_and_dimension_and_is_capped():
    c = config(
        resources={
            "train": {"min_minutes": 10, "seconds_per_replica_step": 1e-3, "max_minutes": 600}
        }
    )
    # 1000 epochs x 10 steps x 10 replicas x 1e-3 s = 100 s -> 2 minutes on top of 10
    assert slurm.train_minutes(c, 1000, 10, 10, dim=1) == 12
    assert slurm.train_minutes(c, 1000, 10, 10, dim=5) == 10 + 3  # x1.4 -> 140 s
    assert slurm.train_minutes(c, 10**6, 50, 100, dim=5) == 600


@pytest.mark.parametrize(
    ("text", "state"),
    [
        (
            "slurmstepd: error: *** JOB 12 ON n1 CANCELLED AT 2026-11-23T10:00:00 DUE TO TIME "
            "LIMIT ***",
            "TIMEOUT",
        ),
        (
            "slurmstepd: error: *** JOB 12 ON n1 CANCELLED AT 2026-11-23T10:00:00 DUE TO "
            "PREEMPTION ***",
            "PREEMPTED",
        ),
        ("slurmstepd: error: Detected 1 oom_kill event in StepId=12.batch.", "OUT_OF_MEMORY"),
        ("slurmstepd: error: *** JOB 12 ON n1 CANCELLED AT 2026-11-23T10:00:00 ***", "CANCELLED"),
        ("Traceback ... ValueError", ""),
    ],
)
def test_state_from_job_log(text, state):
    assert slurm.state_from_log(text) == state
    assert state == "" or state in slurm.EXPLAIN


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch):
    """Put fake sinfo/sacct/sbatch on PATH; returns a function that sets one's script."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")

    def make(name: str, body: str) -> None:
        path = bin_dir / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)

    make("sinfo", "echo 'main*'")
    make("sacct", "exit 0")
    make("sbatch", "echo 'sbatch: Job 1 to start at now'")
    return make


def test_preflight_passes_on_a_cluster_that_can_run_the_jobs(fake_slurm):
    slurm.preflight(config(), slurm.RULES, "sacct", train_limit=30)


def test_preflight_without_slurm_installed(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(slurm.SlurmError, match="`sinfo` is not installed"):
        slurm.preflight(config(), slurm.RULES, "sacct", train_limit=30)


def test_preflight_sacct_without_accounting_suggests_squeue(fake_slurm):
    fake_slurm("sacct", "echo 'sacct: error: Slurm accounting storage is disabled' >&2; exit 1")
    with pytest.raises(slurm.SlurmError, match="slurm-status-command: squeue"):
        slurm.preflight(config(), slurm.RULES, "sacct", train_limit=30)
    # with squeue as the status command sacct is not needed
    slurm.preflight(config(), slurm.RULES, "squeue", train_limit=30)


@pytest.mark.parametrize(
    ("message", "advice"),
    [
        (
            "sbatch: error: Batch job submission failed: Invalid generic resource (gres) "
            "specification",
            "resources.train.gpus",
        ),
        (
            "sbatch: error: Batch job submission failed: Invalid account or account/partition "
            "combination specified",
            "slurm.account",
        ),
        (
            "sbatch: error: Batch job submission failed: Invalid partition name specified",
            "slurm.partition",
        ),
        (
            "sbatch: error: Batch job submission failed: Requested time limit is invalid (missing "
            "or exceeds some limit)",
            "resources.train time limits",
        ),
    ],
)
def test_preflight_names_the_config_key_to_change(fake_slurm, message, advice):
    fake_slurm("sbatch", f"echo '{message}' >&2; exit 1")
    with pytest.raises(slurm.SlurmError) as err:
        slurm.preflight(config(), slurm.RULES, "sacct", train_limit=30)
    text = str(err.value)
    assert "refuses a train job" in text and "--gpus=1" in text and advice in text


def test_job_outcomes_from_the_executor_logs_and_sacct(tmp_path, fake_slurm):
    logs = tmp_path / ".snakemake" / "slurm_logs" / "rule_train"
    folder = logs / "gaussian_shell-d1_n100_gan-abc_seeds0-7"
    folder.mkdir(parents=True)
    (folder / "17.log").write_text(
        "slurmstepd: error: *** JOB 17 CANCELLED AT x DUE TO TIME LIMIT ***\n"
    )
    (folder / "23.log").write_text("training ...\n")
    other = logs / "gaussian_shell-d1_n100_gan-abc_seeds8-15"
    other.mkdir()
    (other / "31.log").write_text("slurmstepd: error: Detected 1 oom_kill event\n")
    fake_slurm("sacct", "echo '23|CANCELLED by 0'; echo '23.batch|CANCELLED'")
    out = slurm.job_outcomes(tmp_path, "train")
    # the newest attempt counts, sacct's state first, the log's words otherwise
    assert out["gaussian_shell-d1_n100_gan-abc_seeds0-7"].job_id == "23"
    assert out["gaussian_shell-d1_n100_gan-abc_seeds0-7"].state == "CANCELLED"
    assert out["gaussian_shell-d1_n100_gan-abc_seeds8-15"].state == "OUT_OF_MEMORY"


def test_plugin_sees_a_job_cancelled_by_a_user_as_cancelled(monkeypatch):
    import asyncio

    import snakemake_executor_plugin_slurm as plugin

    async def fake_query(command, logger):
        return {"1": "CANCELLED by 0", "2": "COMPLETED", "3": "FAILED"}, 0.01

    monkeypatch.setattr(plugin, "query_job_status", fake_query)
    assert slurm.normalise_plugin_job_states()
    assert slurm.normalise_plugin_job_states()  # a second call does not wrap twice
    states, _ = asyncio.run(plugin.query_job_status("sacct", None))
    assert states == {"1": "CANCELLED", "2": "COMPLETED", "3": "FAILED"}
