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
import pandas as pd

from ganplify import generators
from ganplify.analysis.learning_curve import snapshot_epochs
from ganplify.metrics.evaluation import (
    PrefixMSE,
    draw_in_chunks,
    evaluate_stream,
    exact_mse,
    replica_table,
)
from ganplify.metrics.quantiles import CellCounter
from ganplify.results import layout
from ganplify.results.io import ResultsError, read_json, write_csv, write_json
from ganplify.results.provenance import job_record
from ganplify.study.data import evaluation_rng, training_set
from ganplify.study.plan import Chunk

log = logging.getLogger(__name__)


class JobError(RuntimeError):
    """A job cannot run as asked (bad spec, wrong output path)."""


def _check_output(chunk: Chunk, results: Path, output: Path, flag: str) -> None:
    expected = (results / flag).resolve()
    if output.resolve() != expected:
        raise JobError(f"output {output} does not match the job spec; expected {results / flag}")


def write_status(results: Path, chunk: Chunk, seed: int, ok: bool, reason: str, **extra) -> dict:
    # no timestamp (the job's flag has it): the same replica made twice gives the same file,
    # which is how `ganplify merge` recognises it
    status = {
        "seed": seed,
        "status": "done" if ok else "failed",
        "reason": reason,
        "phash": chunk.setting.phash,
        "params": chunk.setting.params(),
        **extra,
    }
    write_json(results / chunk.setting.replica_dir(seed) / layout.STATUS, status)
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
    write_json(results / setting.relpath / layout.PARAMS, setting.params())
    statuses = {}
    extra: dict[int, dict] = {}
    for fit in fits:
        rdir = results / setting.replica_dir(fit.seed)
        if fit.info:
            write_json(rdir / layout.FIT_INFO, fit.info)
        if fit.ok:
            if gen.exact:
                values = exact_mse(gen.probabilities(target, fit, counter))
            else:
                rng = evaluation_rng(fit.seed, setting)
                draw = gen.sampler(target, fit)
                stream = draw_in_chunks(
                    lambda m, d=draw, r=rng: d(m, r), max(chunk.n_generated), chunk.chunk_size
                )
                acc = evaluate_stream(stream, counter, chunk.n_generated)
                values = acc.result()
                extra[fit.seed] = {"spread_ratio": acc.spread() / target.total_std()}
            table = replica_table(
                target=setting.target,
                dim=setting.dim,
                n_train=setting.n_train,
                generator=setting.generator,
                seed=fit.seed,
                binnings=chunk.binnings,
                n_grid=chunk.n_generated,
                values=values,
            )
            write_csv(rdir / layout.MSE, table)
        else:
            (rdir / layout.MSE).unlink(missing_ok=True)
            log.warning("replica %s seed %d failed: %s", setting.relpath, fit.seed, fit.reason)
        statuses[fit.seed] = write_status(
            results,
            chunk,
            fit.seed,
            fit.ok,
            fit.reason,
            ehash=chunk.ehash,
            **extra.get(fit.seed, {}),
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


def _neural(chunk: Chunk):
    gen = generators.get(chunk.setting.generator)
    if not gen.neural:
        raise JobError(f"generator {gen.name!r} is not trained in a training job")
    return gen


def replica_defect(results: Path, chunk: Chunk, seed: int) -> str | None:
    """Why a replica of a neural chunk has not finished training under this setting, naming
    the file (None when it has): no status, a status of another setting, or a done replica
    whose weights are missing, truncated or another replica's."""
    from ganplify.generators.neural.io import binding_mismatch, generator_metadata

    rdir = results / chunk.setting.replica_dir(seed)
    try:
        status = read_json(rdir / layout.STATUS)
    except ResultsError as exc:
        return str(exc)
    if status.get("phash") != chunk.setting.phash or status.get("seed") != seed:
        return f"{rdir / layout.STATUS}: of another setting or seed"
    if status.get("status") != "done":
        return None
    weights = rdir / generators.get(chunk.setting.generator).weights_file
    try:
        meta = generator_metadata(weights)
    except ResultsError as exc:
        return str(exc)
    mismatch = binding_mismatch(meta, {"seed": seed, "phash": chunk.setting.phash})
    return None if mismatch is None else f"{weights}: {mismatch}"


def replica_finished(results: Path, chunk: Chunk, seed: int) -> dict | None:
    """The status of a replica whose training finished under this setting, else None."""
    if replica_defect(results, chunk, seed) is not None:
        return None
    return read_json(results / chunk.setting.replica_dir(seed) / layout.STATUS)


def replica_binding(setting, seed: int) -> dict[str, object]:
    """The metadata a replica's saved weights must carry: its seed, its setting's parameter
    hash and its training set's digest (`ganplify.generators.neural.io.load_generator`)."""
    from ganplify.generators.neural.io import training_set_digest

    data = training_set(setting.make_target(), setting.n_train, seed)
    return {"seed": seed, "phash": setting.phash, "data_sha256": training_set_digest(data)}


def snapshot_epochs_of(chunk: Chunk) -> list[int]:
    """The epochs whose generators a neural chunk saves and evaluates (its ``snapshots``)."""
    gen = generators.get(chunk.setting.generator)
    epochs = gen.training_epochs(chunk.setting.options)
    return snapshot_epochs(chunk.runtime.get("snapshots", "auto"), epochs)


def run_train(spec: dict, results: str | Path, output: str | Path) -> dict:
    """Train the unfinished replicas of a chunk of a neural generator as one ensemble.

    Replicas already finished under the same parameters are skipped (a rerun after a crash,
    a re-chunked study, a merged folder); the others resume from their checkpoints when they
    have matching ones. Each finished replica gets its generator weights (safetensors), its
    loss history and its status; checkpoints are removed once a replica is finished.
    """
    from ganplify.generators.neural import io as neural_io
    from ganplify.generators.neural.gan import checkpoints as gan_checkpoints

    results, output = Path(results), Path(output)
    chunk = Chunk.from_spec(spec)
    _check_output(chunk, results, output, chunk.trained_flag)
    gen = _neural(chunk)
    setting = chunk.setting
    start = time.perf_counter()
    write_json(results / setting.relpath / layout.PARAMS, setting.params())
    todo = [s for s in chunk.seeds if replica_finished(results, chunk, s) is None]
    runtime = {k: v for k, v in chunk.runtime.items() if k not in ("device", "snapshots")}
    device = chunk.runtime.get("device", "auto")
    info: dict = {"trained": todo, "skipped": [s for s in chunk.seeds if s not in todo]}
    if todo:
        target = setting.make_target()
        train_sets = np.stack([training_set(target, setting.n_train, s) for s in todo])
        bases = [results / setting.replica_dir(s) / layout.CHECKPOINT for s in todo]
        metadata = {
            "phash": setting.phash,
            "generator": gen.name,
            **gen.weights_metadata(dict(setting.options)),
        }

        bound = {  # what binds each replica's weights to it (checked on every load)
            seed: {**metadata, "seed": seed, "data_sha256": neural_io.training_set_digest(x)}
            for seed, x in zip(todo, train_sets, strict=True)
        }

        def save_snapshots(epoch: int, weights: list) -> None:
            for seed, w in zip(todo, weights, strict=True):
                path = results / layout.snapshot(setting.replica_dir(seed), epoch)
                neural_io.save_generator(path, w, {**bound[seed], "epoch": epoch})

        result = gen.train(
            train_sets,
            todo,
            dict(setting.options),
            runtime,
            device,
            bases,
            setting.phash,
            hook=save_snapshots,
            hook_epochs=snapshot_epochs_of(chunk),
        )
        device = result.device
        info.update(resumed_from_epoch=result.resumed_from_epoch, cuda_graph=result.cuda_graph)
        for k, seed in enumerate(todo):
            rdir = results / setting.replica_dir(seed)
            neural_io.write_losses_csv(
                rdir / layout.LOSSES, result.history[:, k], gen.history_columns
            )
            ok = result.status[k] == "done"
            if ok:
                neural_io.save_generator(
                    rdir / gen.weights_file, result.generator_weights[k], bound[seed]
                )
            else:
                (rdir / gen.weights_file).unlink(missing_ok=True)
            write_status(
                results,
                chunk,
                seed,
                ok,
                result.reason[k],
                failed_epoch=result.failed_epoch[k],
                device=result.device,
            )
            for f in gan_checkpoints.checkpoint_files(bases[k]):
                f.unlink(missing_ok=True)
    statuses = {
        str(s): (replica_finished(results, chunk, s) or {}).get("status", "missing")
        for s in chunk.seeds
    }
    flag = {
        "job": "train",
        "chunk": chunk.name,
        "spec": spec,
        "replicas": statuses,
        **info,
        **job_record(time.perf_counter() - start, str(device)),
    }
    write_json(output, flag)
    return flag


def run_evaluate(
    spec: dict, results: str | Path, output: str | Path, memory_mb: int = 2048
) -> dict:
    """Generate events from every finished replica of a chunk (batched) and bin them.

    Events come in chunks of at most `chunk_size` per replica, fewer when the ensemble's
    activations would exceed ``memory_mb``; each replica's events depend only on its weights
    and seed, not on the chunking.
    """
    from ganplify.generators.neural import device as neural_device
    from ganplify.generators.neural import io as neural_io

    results, output = Path(results), Path(output)
    chunk = Chunk.from_spec(spec)
    _check_output(chunk, results, output, chunk.evaluated_flag)
    gen = _neural(chunk)
    setting = chunk.setting
    start = time.perf_counter()
    target = setting.make_target()
    counter = CellCounter(target, chunk.binnings)
    statuses, done = {}, []
    for seed in chunk.seeds:
        why = replica_defect(results, chunk, seed)
        if why is not None:
            raise JobError(
                f"replica {setting.replica_dir(seed)} has not finished training ({why}); run "
                f"its training job: add --forcerun {results / chunk.trained_flag} to the "
                "snakemake command"
            )
        statuses[seed] = read_json(results / setting.replica_dir(seed) / layout.STATUS)
        if statuses[seed]["status"] == "done":
            done.append(seed)
    device = neural_device.resolve_device(chunk.runtime.get("device", "auto"))
    options = dict(setting.options)

    def evaluate(paths: list[Path], seeds: list[int], **extra: int) -> list[PrefixMSE]:
        """Generate events from these replicas' weights (batched) and bin them; the weights
        must be these replicas' (seed, parameters, training set, and ``extra``: the epoch)."""
        weights = [
            neural_io.load_generator(p, {**replica_binding(setting, s), **extra})
            for p, s in zip(paths, seeds, strict=True)
        ]
        per_event = gen.bytes_per_event(options, setting.dim)
        step = max(256, min(chunk.chunk_size, memory_mb * 2**20 // (len(seeds) * per_event)))
        accs = [PrefixMSE(counter, chunk.n_generated) for _ in seeds]
        for x in gen.generate(weights, seeds, max(chunk.n_generated), step, str(device), options):
            for acc, events in zip(accs, x, strict=True):
                acc.feed(events)
        return accs

    def table_of(seed: int, acc: PrefixMSE):
        return replica_table(
            target=setting.target,
            dim=setting.dim,
            n_train=setting.n_train,
            generator=setting.generator,
            seed=seed,
            binnings=chunk.binnings,
            n_grid=chunk.n_generated,
            values=acc.result(),
        )

    if done:
        accs = evaluate([results / setting.replica_dir(s) / gen.weights_file for s in done], done)
        for seed, acc in zip(done, accs, strict=True):
            rdir = results / setting.replica_dir(seed)
            write_csv(rdir / layout.MSE, table_of(seed, acc))
            status = {
                **statuses[seed],
                "spread_ratio": acc.spread() / target.total_std(),
                "ehash": chunk.ehash,
            }
            write_json(rdir / layout.STATUS, status)
        curves: dict[int, list] = {seed: [] for seed in done}
        for epoch in snapshot_epochs_of(chunk):
            paths = {s: results / layout.snapshot(setting.replica_dir(s), epoch) for s in done}
            have = [s for s in done if paths[s].is_file()]
            if not have:
                continue
            accs = evaluate([paths[s] for s in have], have, epoch=epoch)
            for seed, acc in zip(have, accs, strict=True):
                curves[seed].append(
                    table_of(seed, acc).assign(
                        epoch=epoch, spread_ratio=acc.spread() / target.total_std()
                    )
                )
        for seed, tables in curves.items():
            path = results / setting.replica_dir(seed) / layout.LEARNING
            if tables:
                write_csv(path, pd.concat(tables, ignore_index=True))
            else:
                path.unlink(missing_ok=True)
    flag = {
        "job": "evaluate",
        "chunk": chunk.name,
        "spec": spec,
        "replicas": {str(s): statuses[s]["status"] for s in chunk.seeds},
        **job_record(time.perf_counter() - start, str(device)),
    }
    write_json(output, flag)
    remove_stale_flags(results, chunk)
    return flag
