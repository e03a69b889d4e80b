"""The study on a real SLURM cluster through `snakemake --profile slurm`.

One run of a small study (sample, fit and GAN in d=1, the sample baseline in d=2; one replica
per training job)
in which a training job is cancelled with scancel while it trains and one replica's job fails;
then `ganplify status` names both with their reasons, and the same command afterwards reruns
exactly those two replicas (resuming the cancelled one from its checkpoint) and finishes.
Then the preflight checks: a cluster whose sacct does not work, a GPU it does not have, a
partition it does not have, each a clear message before any job is submitted; and a training
job killed at its time limit, reported as such.
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from ganplify.cli import main as ganplify_main
from tests.helpers import copy_project, env_with_venv, snakemake_cmd
from tests.slurm.cluster import run

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

STUDY = {
    "study": "cluster",
    "target": "gaussian_shell",
    "seeds": {"first": 0, "count": 3},
    "replicas_per_job": 1,
    "defaults": {
        "n_train": [20],
        "generators": ["sample", "gan"],
        "n_generated": [100, 1000],
        "sample_sizes": [20, 40],
    },
    "dims": {
        1: {"quantiles": [5], "generators": ["sample", "fit", "gan"]},
        2: {"quantiles": [4], "joint": [3], "generators": ["sample"]},
    },
    # a small network: a job trains for tens of seconds, long enough to be cancelled
    "gan": {
        "epochs": 1500,
        "noise_dim": 8,
        "hidden": 16,
        "layers": 2,
        "embedding": 4,
        "checkpoint_every": 50,
    },
    "resources": {rule: {"cpus": 1, "mem_mb": 500} for rule in ("train", "evaluate", "baseline")},
}
# Test-only speed-ups on top of the profile: poll job states after 2 s, no automatic retry.
FAST = ["--slurm-init-seconds-before-status-checks", "2", "--retries", "0"]


def snakemake_slurm(
    project: Path, env: dict, config: Path, *extra: str, timeout: float = 900
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*snakemake_cmd(), "--profile", "slurm", "--configfile", str(config), *FAST, *extra],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def write_config(project: Path, **changes) -> Path:
    path = project / "cluster.yaml"
    path.write_text(yaml.safe_dump({**STUDY, **changes}))
    return path


def train_jobs(output: str) -> set[str]:
    """Wildcards (setting, chunk) of every `train` job in a Snakemake log."""
    jobs = set()
    for block in output.split("rule train:")[1:]:
        m = re.search(r"wildcards: setting=(\S+), chunk=(\S+)", block)
        if m:
            jobs.add(f"{m.group(1)}/{m.group(2)}")
    return jobs


@pytest.fixture
def client_env(slurm_cluster):
    env = env_with_venv()
    env.update({k: v for k, v in slurm_cluster.items() if k.startswith("SLURM")})
    return env


def test_cancel_and_failure_then_rerun_only_those(slurm_cluster, client_env, tmp_path):
    project = copy_project(tmp_path / "p")
    config = write_config(project)
    results = project / "results" / "cluster"
    # make seed 2's training job fail: its weights path is blocked by a directory
    from ganplify.study import config as cfg
    from ganplify.study import plan as study

    plan = study.plan(cfg.load(config))
    gan_d1 = next(c for c in plan if c.setting.generator == "gan" and c.setting.dim == 1)
    blocked = results / gan_d1.setting.replica_dir(2) / "generator.safetensors"
    blocked.mkdir(parents=True)
    victim_ckpt = results / gan_d1.setting.replica_dir(0) / "checkpoint.json"

    # Output to a file, not a pipe: nobody reads a pipe while we wait, and a full pipe would
    # stall Snakemake.
    first_log = tmp_path / "first-run.log"
    with first_log.open("w") as sink:
        proc = subprocess.Popen(
            [*snakemake_cmd(), "--profile", "slurm", "--configfile", str(config), *FAST],
            cwd=project,
            env=client_env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
        )
    # cancel seed 0's training job once it has written a checkpoint (it is mid-training)
    deadline = time.monotonic() + 600
    cancelled = None
    while cancelled is None:
        assert time.monotonic() < deadline, "seed 0 never wrote a checkpoint"
        assert proc.poll() is None, "snakemake ended before the cancellation"
        if victim_ckpt.is_file():
            for line in run(["squeue", "--noheader", "--format", "%i %k"], client_env).splitlines():
                job_id, _, comment = line.partition(" ")
                if "gan-" in comment and comment.endswith("seeds0-0") and "d1" in comment:
                    run(["scancel", job_id], client_env)
                    cancelled = job_id
        time.sleep(1)
    proc.wait(timeout=900)
    out = first_log.read_text()
    assert proc.returncode != 0, out  # two jobs failed, the others finished (keep-going)

    # status: both replicas with their reason, everything else done
    status = subprocess.run(
        [str(Path(snakemake_cmd()[0]).parent / "ganplify"), "status", str(results)],
        cwd=project,
        env=client_env,
        capture_output=True,
        text=True,
    )
    assert status.returncode == 1, status.stdout
    pending = [ln for ln in status.stdout.splitlines() if ": " in ln and "/seed" in ln]
    assert len(pending) == 2, status.stdout
    text = "\n".join(pending)
    assert "seed0: in progress (checkpoint at epoch" in text and "CANCELLED" in text
    # seed 2 trained to the end (its last checkpoint) and failed writing its weights
    assert "seed2: in progress (checkpoint at epoch 1500 of 1500" in text
    assert "FAILED" in text and "Is a directory" in text

    # the same command again: exactly those two training jobs, then the study finishes
    blocked.rmdir()
    again = snakemake_slurm(project, client_env, config)
    assert again.returncode == 0, again.stdout + again.stderr
    log = again.stdout + again.stderr
    trained = train_jobs(log)
    setting = gan_d1.setting.relpath.removeprefix("replicas/")
    assert trained == {f"{setting}/seeds0-0", f"{setting}/seeds2-2"}, trained
    assert "rule baseline:" not in log
    resumed = (
        results
        / "logs"
        / "train"
        / gan_d1.setting.relpath.removeprefix("replicas/")
        / "seeds0-0.log"
    ).read_text()
    assert "resuming from step" in resumed
    assert ganplify_main(["verify", str(results)]) == 0
    assert ganplify_main(["status", str(results), "--workdir", str(project)]) == 0


def test_preflight_sacct_that_does_not_work(slurm_cluster, client_env, tmp_path):
    project = copy_project(tmp_path / "p")
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "sacct").write_text(
        "#!/bin/sh\necho 'sacct: error: Slurm accounting storage is disabled' >&2\nexit 1\n"
    )
    (fake / "sacct").chmod(0o755)
    env = {**client_env, "PATH": f"{fake}:{client_env['PATH']}"}
    proc = snakemake_slurm(project, env, write_config(project), timeout=300)
    assert proc.returncode != 0
    err = proc.stdout + proc.stderr
    assert "SLURM preflight: sacct does not work" in err and "slurm-status-command" in err
    assert not (project / "results" / "cluster" / "replicas").exists()  # no job ran


@pytest.mark.parametrize(
    ("slurm_block", "words"),
    [
        ({"gpu_model": "h100"}, ["refuses a train job", "--gpus=h100:1", "GPU"]),
        ({"partition": "nosuch", "gpu_partition": "nosuch"}, ["refuses a", "partition"]),
    ],
)
def test_preflight_requests_the_cluster_cannot_serve(
    slurm_cluster, client_env, tmp_path, slurm_block, words
):
    project = copy_project(tmp_path / "p")
    proc = snakemake_slurm(
        project, client_env, write_config(project, slurm=slurm_block), timeout=300
    )
    assert proc.returncode != 0
    err = proc.stdout + proc.stderr
    assert "SLURM preflight" in err, err
    for word in words:
        assert word.lower() in err.lower(), (word, err)
    assert not (project / "results" / "cluster" / "replicas").exists()


def test_time_limit_is_reported(slurm_cluster, client_env, tmp_path):
    """A training job killed at its (1 minute) time limit: SLURM's SIGTERM makes it write its
    checkpoint, and `ganplify status` says TIMEOUT with the advice. The early SIGUSR1
    (resources.train.signal_seconds) is off here: SLURM checks signal times about every 30 s,
    so on a 1-minute job it may arrive while Python is still importing (the job then dies
    before its handler exists, losing nothing but not testable deterministically); the
    handler itself is the one SIGTERM uses (tests/test_training.py sends both for real)."""
    project = copy_project(tmp_path / "p")
    train = {"cpus": 1, "mem_mb": 500, "min_minutes": 1, "max_minutes": 1, "signal_seconds": 0}
    config = write_config(
        project,
        seeds={"first": 0, "count": 1},
        dims={1: {"quantiles": [5], "generators": ["gan"]}},
        gan={**STUDY["gan"], "epochs": 100000},
        resources={**STUDY["resources"], "train": train},
    )
    proc = snakemake_slurm(project, client_env, config, timeout=600)
    assert proc.returncode != 0
    status = subprocess.run(
        [
            str(Path(snakemake_cmd()[0]).parent / "ganplify"),
            "status",
            str(project / "results" / "cluster"),
        ],
        cwd=project,
        env=client_env,
        capture_output=True,
        text=True,
    )
    assert "in progress (checkpoint at epoch" in status.stdout, status.stdout
    assert "TIMEOUT" in status.stdout and "time limit" in status.stdout, status.stdout
    assert "received SIGTERM" in status.stdout, status.stdout  # the checkpoint of the kill
