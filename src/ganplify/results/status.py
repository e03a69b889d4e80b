"""Where every replica of a study stands: done, failed, in progress or missing, and why.

Read from the results folder alone (status.json, checkpoints, job flags, job logs), plus the
SLURM executor's logs and sacct when the study ran on a cluster, so it works on a login node
while jobs run, after a crash, and on a copied folder.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ganplify import generators, slurm
from ganplify.results import layout
from ganplify.results.io import ResultsError, read_json
from ganplify.study import plan as study

# The states, in the order they are reported.
STATES = ("done", "failed", "trained", "in progress", "missing")


@dataclass(frozen=True)
class ReplicaState:
    setting: str  # the setting's folder below replicas/
    seed: int
    state: str  # one of STATES
    reason: str = ""


def _json_or_none(path: Path) -> dict | None:
    try:
        return read_json(path) if path.is_file() else None
    except ResultsError:
        return None


def _log_tail(results: Path, chunk: study.Chunk, rule: str) -> str:
    """The last line of a chunk job's log that says what went wrong, or ''."""
    setting = chunk.setting.relpath.removeprefix(f"{layout.REPLICAS}/")
    name = chunk.name if rule == "train" else f"{chunk.name}.eval-{chunk.ehash}"
    log = results / layout.LOGS_DIR / rule / setting / f"{name}.log"
    if not log.is_file():
        return ""
    lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    for line in reversed(lines):
        if line.startswith("ganplify") or "Error" in line or "error" in line:
            return line[:300]
    return ""


def replica_states(
    results: Path, chunks: Sequence[study.Chunk], workdir: Path | None = None
) -> list[ReplicaState]:
    """Classify every replica of the study's chunks."""
    outcomes: dict[str, slurm.JobOutcome] = {}
    if workdir is not None:
        for rule in ("train", "evaluate", "baseline"):
            outcomes.update(
                {f"{rule}:{k}": v for k, v in slurm.job_outcomes(workdir, rule).items()}
            )
    out = []
    for chunk in chunks:
        s = chunk.setting
        gen = generators.get(s.generator)
        key = f"{s.relpath.removeprefix('replicas/').replace('/', '_')}_{chunk.name}"
        evaluated = (results / chunk.evaluated_flag).is_file()
        for seed in chunk.seeds:
            rdir = results / s.replica_dir(seed)
            status = _json_or_none(rdir / layout.STATUS)
            if status is not None and status.get("phash") != s.phash:
                status = None
            if status is not None and status["status"] == "failed":
                out.append(ReplicaState(s.relpath, seed, "failed", status.get("reason", "")))
                continue
            if status is not None and (evaluated or status.get("ehash") == chunk.ehash):
                out.append(ReplicaState(s.relpath, seed, "done"))
                continue
            rule = "train" if gen.neural else "baseline"
            if status is not None:  # trained, not evaluated with today's parameters
                rule = "evaluate"
            checkpoint = _json_or_none(rdir / layout.CHECKPOINT_FILES[1])
            why = []
            job = outcomes.get(f"{rule}:{key}")
            if job is not None and job.state and job.state != "COMPLETED":
                why.append(
                    f"SLURM job {job.job_id} {job.state}: "
                    f"{slurm.EXPLAIN.get(job.state, 'see ' + str(job.log))}"
                )
            tail = _log_tail(results, chunk, rule)
            if tail:
                why.append(tail)
            if status is not None:
                state = "trained"
                why.insert(0, "trained, not evaluated")
            elif checkpoint is not None:
                state = "in progress"
                total = s.options.get("epochs", "?")
                why.insert(0, f"checkpoint at epoch {checkpoint.get('epoch')} of {total}")
            else:
                state = "missing"
            out.append(ReplicaState(s.relpath, seed, state, "; ".join(why)))
    return out


def summary_lines(states: Sequence[ReplicaState]) -> list[str]:
    """Counts per setting, then every replica that is not done, with its reason."""
    lines = []
    by_setting: dict[str, Counter] = {}
    for st in states:
        by_setting.setdefault(st.setting, Counter())[st.state] += 1
    width = max((len(s) for s in by_setting), default=10)
    lines.append(f"{'setting':<{width}}  " + "  ".join(f"{s:>11}" for s in STATES))
    for setting, counts in by_setting.items():
        lines.append(f"{setting:<{width}}  " + "  ".join(f"{counts[s]:>11}" for s in STATES))
    pending = [st for st in states if st.state != "done"]
    if pending:
        lines.append("")
        for st in pending:
            lines.append(
                f"{st.setting}/seed{st.seed}: {st.state}" + (f" ({st.reason})" if st.reason else "")
            )
    return lines


def incomplete(states: Sequence[ReplicaState]) -> bool:
    """True while some replica still has to run (failed replicas are final)."""
    return any(st.state in ("trained", "in progress", "missing") for st in states)


def study_status(results: Path, config: Mapping, workdir: Path | None) -> list[ReplicaState]:
    return replica_states(results, study.plan(config), workdir)
