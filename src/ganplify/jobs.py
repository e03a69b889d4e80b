"""Bodies of the workflow's jobs; each writes its replicas' files, then its flag file last.

A job's flag file is the only output Snakemake knows about. Replica files (status, MSE table,
fitted parameters, weights) are written atomically before it, so a job killed half-way leaves
no flag, and its rerun overwrites whatever it had written.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from ganplify import generators
from ganplify.evaluation import draw_in_chunks, evaluate_stream, exact_mse, replica_table
from ganplify.provenance import job_record, now
from ganplify.quantiles import CellCounter
from ganplify.results import write_csv, write_json
from ganplify.study import Chunk, evaluation_rng, training_set

log = logging.getLogger(__name__)


class JobError(RuntimeError):
    """A job cannot run as asked (bad spec, wrong output path)."""


def _check_output(chunk: Chunk, results: Path, output: Path, flag: str) -> None:
    expected = (results / flag).resolve()
    if output.resolve() != expected:
        raise JobError(
            f"output {output} does not match the job spec; expected {results / flag}"
        )


def write_status(results: Path, chunk: Chunk, seed: int, ok: bool, reason: str, **extra) -> dict:
    status = {
        "seed": seed,
        "status": "done" if ok else "failed",
        "reason": reason,
        "phash": chunk.setting.phash,
        "params": chunk.setting.params(),
        "written": now(),
        **extra,
    }
    write_json(results / chunk.setting.replica_dir(seed) / "status.json", status)
    return status


def remove_stale_flags(results: Path, chunk: Chunk) -> None:
    """Drop evaluation flags of this chunk from earlier evaluation parameters."""
    folder = results / chunk.setting.relpath
    keep = Path(chunk.evaluated_flag).name
    for old in folder.glob(f"{chunk.name}.eval-*.json"):
        if old.name != keep:
            old.unlink()


def run_baseline(spec: dict, results: str | Path, output: str | Path) -> dict:
    """Fit and evaluate a chunk of replicas of a cheap (non-neural) generator.

    Parameters
    ----------
    spec : dict
        `Chunk.spec()` of the job.
    results : path
        The study's results folder.
    output : path
        The job's flag file (must be the chunk's evaluation flag).

    Returns
    -------
    dict
        The flag's content.
    """
    results, output = Path(results), Path(output)
    chunk = Chunk.from_spec(spec)
    _check_output(chunk, results, output, chunk.evaluated_flag)
    setting = chunk.setting
    gen = generators.get(setting.generator)
    if gen.neural:
        raise JobError(f"generator {gen.name!r} is trained in its own job, not as a baseline")
    start = time.perf_counter()
    target = setting.make_target()
    train_sets = np.stack([training_set(target, setting.n_train, s) for s in chunk.seeds])
    fits = gen.fit(target, train_sets, chunk.seeds, dict(setting.options))
    counter = CellCounter(target, chunk.binnings)
    write_json(results / setting.relpath / "params.json", setting.params())
    statuses = {}
    extra: dict[int, dict] = {}
    for fit in fits:
        rdir = results / setting.replica_dir(fit.seed)
        if fit.info:
            write_json(rdir / "fit.json", fit.info)
        if fit.ok:
            if gen.exact:
                values = exact_mse(gen.probabilities(target, fit, counter))
            else:
                rng = evaluation_rng(fit.seed, setting)
                draw = gen.sampler(target, fit)
                stream = draw_in_chunks(lambda m, d=draw, r=rng: d(m, r),
                                        max(chunk.n_generated), chunk.chunk_size)
                acc = evaluate_stream(stream, counter, chunk.n_generated)
                values = acc.result()
                extra[fit.seed] = {"spread_ratio": acc.spread() / target.total_std()}
            table = replica_table(
                target=setting.target, dim=setting.dim, n_train=setting.n_train,
                generator=setting.generator, seed=fit.seed, binnings=chunk.binnings,
                n_grid=chunk.n_generated, values=values,
            )
            write_csv(rdir / "mse.csv", table)
        else:
            (rdir / "mse.csv").unlink(missing_ok=True)
            log.warning("replica %s seed %d failed: %s", setting.relpath, fit.seed, fit.reason)
        statuses[fit.seed] = write_status(
            results, chunk, fit.seed, fit.ok, fit.reason, **extra.get(fit.seed, {})
        )["status"]
    flag = {
        "job": "baseline",
        "chunk": chunk.name,
        "spec": spec,
        "replicas": {str(k): v for k, v in statuses.items()},
        **job_record(time.perf_counter() - start),
    }
    write_json(output, flag)
    remove_stale_flags(results, chunk)
    return flag
