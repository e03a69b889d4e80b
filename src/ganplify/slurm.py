"""What the study's jobs ask of a SLURM cluster, and checks that fail fast when it cannot give it.

`job_resources` turns the config's `resources` and `slurm` blocks into the resource keywords
of Snakemake's SLURM executor plugin (gpu, gpu_model, cpus_per_task, mem_mb, runtime,
slurm_partition, slurm_account). `preflight` runs once when a real (not dry) run starts with
the SLURM executor: it checks that the controller answers, that the status command works (the
plugin polls `sacct` by default and waits forever when accounting is off), and asks
`sbatch --test-only` whether every kind of job could be scheduled (partition, account, GPUs,
memory, time limit), so a misconfiguration ends in one message before any job is submitted.
`job_reasons` reads why SLURM ended a job, for `ganplify status`.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# Environment variables that fill empty `slurm` config values.
ENV = {
    "partition": "GANPLIFY_SLURM_PARTITION",
    "gpu_partition": "GANPLIFY_SLURM_GPU_PARTITION",
    "account": "GANPLIFY_SLURM_ACCOUNT",
    "gpu_model": "GANPLIFY_SLURM_GPU_MODEL",
}

RULES = ("train", "evaluate", "baseline")


class SlurmError(RuntimeError):
    """The cluster cannot run the study as configured; the message says what to change."""


def setting_value(config: Mapping, key: str, env: Mapping[str, str] | None = None) -> str:
    """A `slurm` config value, else its environment variable, else ''."""
    env = os.environ if env is None else env
    value = config.get("slurm", {}).get(key, "") or env.get(ENV[key], "")
    if key == "gpu_partition" and not value:
        return setting_value(config, "partition", env)
    return value


def uses_gpu(config: Mapping, rule: str) -> bool:
    """Whether jobs of ``rule`` request a GPU (never with device: cpu)."""
    return (
        rule in ("train", "evaluate")
        and config["device"] != "cpu"
        and config["resources"][rule]["gpus"] > 0
    )


def train_minutes(
    config: Mapping, epochs: int, steps_per_epoch: int, replicas: int, dim: int
) -> int:
    """Time limit of a training job in minutes (see the schema of resources.train)."""
    r = config["resources"]["train"]
    seconds = epochs * steps_per_epoch * replicas * r["seconds_per_replica_step"]
    seconds *= 1.0 + (dim - 1) / 10.0
    return int(min(r["max_minutes"], r["min_minutes"] + math.ceil(seconds / 60.0)))


def job_resources(
    config: Mapping,
    rule: str,
    minutes: int | None = None,
    env: Mapping[str, str] | None = None,
) -> dict[str, int | str]:
    """Snakemake resource keywords of a job of ``rule`` (train, evaluate or baseline).

    Keys the cluster does not need are left out rather than set empty (the plugin passes
    every key it gets to sbatch).
    """
    r = config["resources"][rule]
    gpu = uses_gpu(config, rule)
    out: dict[str, int | str] = {
        "cpus_per_task": r["cpus"],
        "mem_mb": r["mem_mb"],
        "runtime": minutes if minutes is not None else r.get("minutes", r.get("min_minutes")),
    }
    partition = setting_value(config, "gpu_partition" if gpu else "partition", env)
    if partition:
        out["slurm_partition"] = partition
    account = setting_value(config, "account", env)
    if account:
        out["slurm_account"] = account
    if gpu:
        out["gpu"] = 1
        model = setting_value(config, "gpu_model", env)
        if model:
            out["gpu_model"] = model
        # one task: the plugin's GPU requests otherwise imply a task per GPU (notes)
        out["tasks"] = 1
    if rule == "train" and r["signal_seconds"] > 0:
        # checkpoint and stop cleanly before the time limit (SLURM's timer has ~1 min
        # resolution); the kill at the limit itself sends SIGTERM, which does the same
        out["slurm_extra"] = f"--signal=USR1@{r['signal_seconds']}"
    return out


def sbatch_flags(resources: Mapping[str, int | str]) -> list[str]:
    """The sbatch flags the plugin makes of these resources (for `sbatch --test-only`)."""
    flags = [
        f"--cpus-per-task={resources['cpus_per_task']}",
        f"--mem={resources['mem_mb']}",
        f"--time={resources['runtime']}",
    ]
    if "slurm_partition" in resources:
        flags.append(f"--partition={resources['slurm_partition']}")
    if "slurm_account" in resources:
        flags.append(f"--account={resources['slurm_account']}")
    if "slurm_extra" in resources:
        flags.extend(str(resources["slurm_extra"]).split())
    if "gpu" in resources:
        model = resources.get("gpu_model")
        flags.append(
            f"--gpus={model}:{resources['gpu']}" if model else f"--gpus={resources['gpu']}"
        )
    return flags


def _run(cmd: Sequence[str], timeout: float = 60) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise SlurmError(
            f"`{cmd[0]}` is not installed on this machine; run from a SLURM login "
            "node, or without --profile slurm"
        ) from None
    except subprocess.TimeoutExpired:
        raise SlurmError(
            f"`{' '.join(cmd)}` did not answer within {timeout:.0f} s; is the "
            "SLURM controller reachable?"
        ) from None


def _first_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "no message"


def check_status_command(status_command: str) -> None:
    """Fail when the executor plugin's status command does not work on this cluster."""
    if status_command != "sacct":
        return
    proc = _run(
        [
            "sacct",
            "--noheader",
            "--allocations",
            "--starttime",
            "now-1hours",
            "--format",
            "JobID",
            "--parsable2",
        ]
    )
    if proc.returncode != 0 or "accounting storage is disabled" in proc.stderr.lower():
        raise SlurmError(
            "sacct does not work on this cluster "
            f"({_first_line(proc.stderr or proc.stdout)}), and Snakemake's SLURM executor "
            "polls job states with it: it would wait forever. Add `slurm-status-command: "
            "squeue` to the profile (slurm/config.yaml) or pass --slurm-status-command squeue; "
            "squeue needs the cluster's MinJobAge to be at least 3x "
            "slurm-init-seconds-before-status-checks"
        )


def check_requests(config: Mapping, rules: Sequence[str], train_limit: int) -> None:
    """Ask `sbatch --test-only` whether a job of each rule could be scheduled."""
    for rule in rules:
        minutes = train_limit if rule == "train" else None
        res = job_resources(config, rule, minutes)
        cmd = [
            "sbatch",
            "--test-only",
            "--job-name=ganplify-preflight",
            *sbatch_flags(res),
            "--wrap",
            "true",
        ]
        proc = _run(cmd)
        if proc.returncode != 0:
            hint = {
                "gres": "no partition offers this GPU: set resources.train.gpus and "
                "resources.evaluate.gpus to 0 (or device: cpu), or slurm.gpu_partition "
                "/ slurm.gpu_model",
                "account": "set slurm.account or GANPLIFY_SLURM_ACCOUNT",
                "partition": "set slurm.partition / slurm.gpu_partition or "
                "GANPLIFY_SLURM_PARTITION / GANPLIFY_SLURM_GPU_PARTITION",
                "time limit": f"lower resources.{rule} time limits or choose another partition",
                "memory": f"lower resources.{rule}.mem_mb",
            }
            message = _first_line(proc.stderr or proc.stdout)
            fallback = f"check resources.{rule} (cpus, mem_mb, time) and the slurm block"
            if "gpu" in res:
                fallback = (
                    f"no node offers this combination: check the GPU request "
                    f"(resources.{rule}.gpus, slurm.gpu_model, slurm.gpu_partition; "
                    "gpus: 0 or device: cpu trains without one) and "
                    f"resources.{rule} (cpus, mem_mb)"
                )
            advice = next((v for k, v in hint.items() if k in message.lower()), fallback)
            raise SlurmError(
                f"the cluster refuses a {rule} job ({' '.join(sbatch_flags(res))}): {message}; "
                f"{advice}"
            )


def preflight(config: Mapping, rules: Sequence[str], status_command: str, train_limit: int) -> None:
    """All checks, in order: controller, status command, each kind of job."""
    proc = _run(["sinfo", "--noheader", "--format", "%P"])
    if proc.returncode != 0:
        raise SlurmError(f"sinfo fails: {_first_line(proc.stderr)}; is SLURM configured here?")
    check_status_command(status_command)
    check_requests(config, rules, train_limit)


# --------------------------------------------------------------------------- plugin fix


def normalise_plugin_job_states() -> bool:
    """Make Snakemake's SLURM executor see a job cancelled by a user as CANCELLED.

    sacct reports such a job as ``CANCELLED by <uid>``; snakemake-executor-plugin-slurm 2.8
    compares states exactly, so it takes that job for one still running and waits for it
    forever (one `scancel` hangs the whole run). This wraps the plugin's status query so that
    every state is its first word, as sacct's documentation defines the states. Returns whether
    the wrapper is in place (False when the plugin is absent or no longer has the function,
    in which case nothing is changed).
    """
    try:
        import snakemake_executor_plugin_slurm as plugin
    except ImportError:
        return False
    original = getattr(plugin, "query_job_status", None)
    if original is None:
        return False
    if getattr(original, "ganplify_normalised", False):
        return True

    async def query_job_status(command, logger):
        states, duration = await original(command, logger)
        if states:
            states = {
                job: state.split()[0] if state.strip() else state for job, state in states.items()
            }
        return states, duration

    query_job_status.ganplify_normalised = True
    plugin.query_job_status = query_job_status
    return True


# --------------------------------------------------------------------------- job outcomes


@dataclass(frozen=True)
class JobOutcome:
    """The last SLURM job of one chunk job, as found in Snakemake's SLURM logs."""

    job_id: str
    state: str  # sacct state, or what the log says, or "" when unknown
    log: Path


# Phrases SLURM (slurmstepd) and the kernel write into a job's output, and what they mean.
LOG_REASONS = [
    (re.compile(r"DUE TO TIME LIMIT", re.I), "TIMEOUT"),
    (re.compile(r"DUE TO PREEMPTION", re.I), "PREEMPTED"),
    (re.compile(r"oom[-_ ]kill|out of memory|Exceeded job memory limit", re.I), "OUT_OF_MEMORY"),
    (re.compile(r"CANCELLED AT", re.I), "CANCELLED"),
    (re.compile(r"DUE TO NODE FAILURE", re.I), "NODE_FAIL"),
]

EXPLAIN = {
    "TIMEOUT": "killed at its time limit; raise resources.train.seconds_per_replica_step or "
    "min_minutes (its checkpoint makes the rerun resume)",
    "OUT_OF_MEMORY": "killed for using more memory than requested; raise "
    "resources.<rule>.mem_mb or lower replicas_per_job",
    "PREEMPTED": "preempted; the rerun resumes from its checkpoint",
    "CANCELLED": "cancelled (scancel or the scheduler); the rerun resumes from its checkpoint",
    "NODE_FAIL": "its node failed; the rerun resumes from its checkpoint",
    "FAILED": "exited with an error; see its log",
}


def state_from_log(text: str) -> str:
    for pattern, state in LOG_REASONS:
        if pattern.search(text):
            return state
    return ""


def sacct_states(job_ids: Sequence[str]) -> dict[str, str]:
    """Final states of jobs from sacct ({} when sacct does not work)."""
    if not job_ids:
        return {}
    try:
        proc = subprocess.run(
            [
                "sacct",
                "--noheader",
                "--allocations",
                "--parsable2",
                "--format",
                "JobID,State",
                "--jobs",
                ",".join(job_ids),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return {}
    if proc.returncode != 0:
        return {}
    out = {}
    for line in proc.stdout.splitlines():
        parts = line.split("|")
        if len(parts) >= 2:
            out[parts[0]] = parts[1].split()[0]  # "CANCELLED by 0" -> CANCELLED
    return out


def job_outcomes(workdir: Path, rule: str) -> dict[str, JobOutcome]:
    """Last SLURM job per chunk of ``rule``, keyed by the chunk's flag name (seeds<a>-<b>).

    Snakemake's SLURM executor writes .snakemake/slurm_logs/rule_<rule>/<wildcards>/<id>.log;
    the newest log of a chunk is its last attempt.
    """
    base = Path(workdir) / ".snakemake" / "slurm_logs" / f"rule_{rule}"
    if not base.is_dir():
        return {}
    latest: dict[str, Path] = {}
    for log in base.rglob("*.log"):
        if not log.stem.isdigit():
            continue
        key = _chunk_key(log.parent.name)
        if key and (key not in latest or int(log.stem) > int(latest[key].stem)):
            latest[key] = log
    states = sacct_states([p.stem for p in latest.values()])
    out = {}
    for key, log in latest.items():
        state = states.get(log.stem) or state_from_log(log.read_text(errors="replace"))
        out[key] = JobOutcome(log.stem, state, log)
    return out


def _chunk_key(folder: str) -> str:
    """'<setting path with _>_seeds0-7' style wildcard folder -> 'seeds0-7' with its setting."""
    m = re.search(r"(.*?)(seeds\d+-\d+)", folder)
    return f"{m.group(1)}{m.group(2)}" if m else ""
