"""Replica files lost or broken after their job finished, and the job that remakes them.

Snakemake knows only a job's flag file: once it exists, a replica file deleted or truncated
later (a full disk, a careless copy) is never remade, and every later job that reads it fails.
`damaged` finds them before any job starts, and `reopen` removes their jobs' flags (and what
keeps Snakemake from remaking them) so that the workflow reruns exactly those jobs.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ganplify import generators
from ganplify.results import layout
from ganplify.results.io import ResultsError, config_text, read_json
from ganplify.study.jobs import replica_defect
from ganplify.study.plan import Chunk


def damaged(results: str | Path, chunks: Iterable[Chunk]) -> list[tuple[str, str]]:
    """(problem naming the file, flag of the job that remakes it) for every replica of a chunk
    whose training or evaluation flag exists but whose files do not hold: a neural replica's
    status and weights (`ganplify.study.jobs.replica_defect`), every replica's status and, when
    done, its MSE table."""
    results = Path(results)
    out = []
    for chunk in chunks:
        gen = generators.get(chunk.setting.generator)
        trained = results / chunk.trained_flag
        if gen.neural and trained.is_file():
            for seed in chunk.seeds:
                why = replica_defect(results, chunk, seed)
                if why is not None:
                    out.append((why, str(trained)))
        evaluated = results / chunk.evaluated_flag
        if not evaluated.is_file():
            continue
        for seed in chunk.seeds:
            rdir = results / chunk.setting.replica_dir(seed)
            try:
                done = read_json(rdir / layout.STATUS).get("status") == "done"
            except ResultsError as exc:
                out.append((str(exc), str(evaluated)))
                continue
            if done and not (rdir / layout.MSE).is_file():
                out.append((f"{rdir / layout.MSE}: missing", str(evaluated)))
    return out


def reopen(results: str | Path, chunks: Iterable[Chunk]) -> list[str]:
    """Remove the flags of the jobs whose replica files `damaged` finds, so that Snakemake
    reruns exactly those jobs (a rerun keeps the replicas that are intact); return one line
    per problem for the log."""
    results = Path(results)
    chunks = list(chunks)
    found = damaged(results, chunks)
    for flag in dict.fromkeys(flag for _, flag in found):
        Path(flag).unlink(missing_ok=True)
        # Snakemake remakes a missing flag only for a job that must run: a training job's
        # evaluation must rerun with it (it reads the retrained weights)
        for chunk in chunks:
            if Path(flag) == results / chunk.trained_flag:
                (results / chunk.evaluated_flag).unlink(missing_ok=True)
    if found:
        # nor does it rerun a job whose outputs exist because an input is missing: remove one
        # of the aggregation's tables, which depends on every flag
        (results / layout.table("mse")).unlink(missing_ok=True)
    return [f"{why}: its job reruns ({flag} removed)" for why, flag in found]


def stale_config(results: str | Path, config: dict) -> str | None:
    """Remove a results folder's config.yaml when it is not the snapshot of ``config`` (the
    validated study config), so that the workflow writes it again and reaggregates.

    Snakemake reruns the snapshot when its config changed only from its own records in
    .snakemake/; a results folder copied to another checkout has none, and its tables would be
    aggregated with the old binnings. Returns a line for the log, or None.
    """
    path = Path(results) / layout.CONFIG
    try:
        old = path.read_text()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultsError(f"{path}: unreadable ({exc})") from None
    if old == config_text(config):
        return None
    path.unlink()
    return f"{path}: not the study's config: written again"
