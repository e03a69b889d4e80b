"""Drive tests/slurm/cluster.sh from Python, and small sbatch/sacct helpers for tests.

Every call here has a timeout: a SLURM client that cannot reach its daemon, or a job that never
leaves PENDING, fails the test instead of hanging the session.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from pathlib import Path

CLUSTER_SH = Path(__file__).resolve().with_name("cluster.sh")

# `start` may install packages with apt-get (about 25 s from scratch, minutes on a slow mirror).
START_TIMEOUT = 900
STOP_TIMEOUT = 180
COMMAND_TIMEOUT = 60
# sacct states after which a job never changes again.
FINAL_STATES = frozenset(
    {
        "COMPLETED",
        "FAILED",
        "CANCELLED",
        "TIMEOUT",
        "OUT_OF_MEMORY",
        "NODE_FAIL",
        "PREEMPTED",
        "BOOT_FAIL",
        "DEADLINE",
    }
)


class ClusterError(RuntimeError):
    """cluster.sh failed; the message holds its stderr."""


def cluster_sh(*args: str, timeout: float = COMMAND_TIMEOUT) -> subprocess.CompletedProcess:
    """Run ``cluster.sh ARGS``; raise ClusterError with its output if it fails."""
    try:
        proc = subprocess.run(
            ["bash", str(CLUSTER_SH), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        raise ClusterError(
            f"cluster.sh {' '.join(args)} did not finish in {timeout} s:\n{exc.stderr or ''}"
        ) from exc
    if proc.returncode != 0:
        raise ClusterError(
            f"cluster.sh {' '.join(args)} failed (exit {proc.returncode}):\n"
            f"{proc.stdout}{proc.stderr}"
        )
    return proc


def is_running() -> bool:
    """True if every daemon of the cluster is up (`cluster.sh status` exits 0)."""
    proc = subprocess.run(
        ["bash", str(CLUSTER_SH), "status"],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    return proc.returncode == 0


def start() -> None:
    cluster_sh("start", timeout=START_TIMEOUT)


def stop(purge: bool = False) -> None:
    cluster_sh("stop", *(["--purge"] if purge else []), timeout=STOP_TIMEOUT)


def client_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: os.environ) plus what `cluster.sh env` says a SLURM client needs."""
    env = dict(os.environ if base is None else base)
    for line in cluster_sh("env").stdout.splitlines():
        words = shlex.split(line)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            key, value = words[1].split("=", 1)
            env[key] = value
    return env


def run(cmd: list[str], env: dict[str, str], timeout: float = COMMAND_TIMEOUT, **kw) -> str:
    """Run a SLURM client command; return stdout, raise with its stderr on failure."""
    proc = subprocess.run(
        cmd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        **kw,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{shlex.join(cmd)} failed (exit {proc.returncode}): {proc.stderr}")
    return proc.stdout


def sbatch(env: dict[str, str], *args: str, cwd: Path | str | None = None) -> str:
    """Submit with ``sbatch --parsable ARGS``; return the job id."""
    out = run(["sbatch", "--parsable", *args], env, cwd=cwd)
    return out.strip().split(";")[0]


def sacct_state(env: dict[str, str], job_id: str) -> tuple[str, str] | None:
    """(State, ExitCode) of the job's allocation in sacct, or None while sacct has no record."""
    out = run(["sacct", "-n", "-X", "-P", "-j", job_id, "-o", "State,ExitCode"], env)
    lines = [line for line in out.splitlines() if line.strip()]
    if not lines:
        return None
    state, exit_code = lines[0].split("|")
    return state.strip(), exit_code.strip()


def wait_for_state(
    env: dict[str, str],
    job_id: str,
    states: set[str] | frozenset[str] = FINAL_STATES,
    timeout: float = 120,
    poll: float = 1.0,
) -> tuple[str, str]:
    """Poll sacct until the job's state (first word: "CANCELLED by 0" -> CANCELLED) is in
    ``states``; return (state, exit code). Raises TimeoutError naming the last state seen."""
    deadline = time.monotonic() + timeout
    last: tuple[str, str] | None = None
    while True:
        last = sacct_state(env, job_id)
        if last is not None and last[0].split()[0] in states:
            return last[0].split()[0], last[1]
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"job {job_id} not in {sorted(states)} after {timeout} s; sacct says {last}"
            )
        time.sleep(poll)
