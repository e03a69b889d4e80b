"""Smoke tests of the local SLURM cluster: what the Snakemake SLURM executor relies on."""

from __future__ import annotations

import pytest

from tests.slurm.cluster import run, sacct_state, sbatch, wait_for_state

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def test_wrap_job_completes(slurm_cluster, tmp_path):
    out = tmp_path / "hello.out"
    job = sbatch(slurm_cluster, f"--output={out}", "--wrap", "echo hello from $SLURM_JOB_ID")
    assert wait_for_state(slurm_cluster, job) == ("COMPLETED", "0:0")
    assert out.read_text().strip() == f"hello from {job}"


@pytest.mark.parametrize("gpu_flag", ["--gpus=1", "--gres=gpu:1"])
def test_gpu_job_sees_its_gpu(slurm_cluster, tmp_path, gpu_flag):
    out = tmp_path / "gpu.out"
    job = sbatch(
        slurm_cluster,
        gpu_flag,
        f"--output={out}",
        "--wrap",
        'echo "CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-unset}"',
    )
    assert wait_for_state(slurm_cluster, job) == ("COMPLETED", "0:0")
    assert out.read_text().strip() == "CUDA_VISIBLE_DEVICES=0"


def test_failing_job_reports_exit_code(slurm_cluster, tmp_path):
    job = sbatch(slurm_cluster, f"--output={tmp_path / 'fail.out'}", "--wrap", "exit 3")
    assert wait_for_state(slurm_cluster, job) == ("FAILED", "3:0")


def test_scancel_running_job(slurm_cluster, tmp_path):
    job = sbatch(slurm_cluster, f"--output={tmp_path / 'sleep.out'}", "--wrap", "sleep 300")
    try:
        wait_for_state(slurm_cluster, job, {"RUNNING"}, timeout=60, poll=0.5)
        run(["scancel", job], slurm_cluster)
        state, _ = wait_for_state(slurm_cluster, job, timeout=60)
        assert state == "CANCELLED"
    finally:
        # Never leave a 5-minute job behind if an assertion above failed.
        state = sacct_state(slurm_cluster, job)
        if state is None or state[0] in {"PENDING", "RUNNING"}:
            run(["scancel", job], slurm_cluster)
