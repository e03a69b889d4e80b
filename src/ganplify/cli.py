"""The `ganplify` command line: what the workflow's rules call, and tools for results folders.

Every subcommand turns bad input (a config, a spec, a corrupt or foreign file) into one line on
stderr naming the problem and exits with status 2; it never prints a traceback for those.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from ganplify import cli_results
from ganplify.results import layout
from ganplify.results.io import ResultsError, recording
from ganplify.study import config as cfg

log = logging.getLogger("ganplify")

EXIT_BAD_INPUT = 2


class UsageError(ValueError):
    """Bad command-line input."""


# --------------------------------------------------------------------------- helpers


def _load_spec(text: str) -> dict:
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"--spec is not valid JSON: {exc}") from None
    if not isinstance(spec, dict):
        raise UsageError("--spec must be a JSON object")
    return spec


# Commands that write into a study's results folder: every file they write is entered in its
# journal (`ganplify.results.io.recording`), so a rerun knows the workflow wrote it.
_WRITERS = ("baseline", "train", "evaluate", "aggregate", "fit-uncertainty", "plot", "provenance")


def _written_folder(args: argparse.Namespace) -> Path | None:
    if args.command == "write-config":
        return Path(args.output).parent
    return Path(args.results) if args.command in _WRITERS else None


# --------------------------------------------------------------------------- subcommands


def cmd_check_config(args: argparse.Namespace) -> int:
    from ganplify.study import plan as study

    config = cfg.load(args.config)
    chunks = study.plan(config)
    print(f"{args.config}: valid; study {config['study']!r} -> results/{config['study']}/")
    for s in study.settings(config):
        print(f"  d={s.dim} n_train={s.n_train} {s.generator:<9} {s.relpath}")
    print(f"  {len(chunks)} replica jobs, {config['seeds']['count']} replicas per setting")
    return 0


def cmd_write_config(args: argparse.Namespace) -> int:
    from ganplify.results.io import atomic_write_text, config_text

    config = cfg.validate(json.loads(args.json))
    atomic_write_text(args.output, config_text(config))
    return 0


def cmd_baseline(args: argparse.Namespace) -> int:
    from ganplify.study.jobs import run_baseline

    flag = run_baseline(_load_spec(args.spec), args.results, args.output)
    failed = [s for s, v in flag["replicas"].items() if v != "done"]
    print(
        f"{flag['chunk']}: {len(flag['replicas']) - len(failed)} replicas done, "
        f"{len(failed)} failed, {flag['wall_time_s']:.1f} s"
    )
    return 0


def _set_threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


# Exit status of a training job stopped by SIGTERM/SIGUSR1 after writing its checkpoints
# (EX_TEMPFAIL): rerunning the job resumes it.
EXIT_INTERRUPTED = 75


def cmd_train(args: argparse.Namespace) -> int:
    from ganplify import signals

    # before torch is imported: a stop signal during the import is kept for the training loop
    with signals.install_early():
        from ganplify.generators.neural import core as training
        from ganplify.study.jobs import run_train

        _set_threads(args.threads)
        try:
            flag = run_train(_load_spec(args.spec), args.results, args.output)
        except training.Interrupted as exc:
            print(f"ganplify train: {exc}; rerun the same command to resume", file=sys.stderr)
            return EXIT_INTERRUPTED
    failed = [s for s, v in flag["replicas"].items() if v != "done"]
    print(
        f"{flag['chunk']}: trained {len(flag['trained'])}, skipped {len(flag['skipped'])} "
        f"finished earlier, {len(failed)} failed, {flag['wall_time_s']:.1f} s on "
        f"{flag['device']}"
    )
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ganplify.study.jobs import run_evaluate

    _set_threads(args.threads)
    flag = run_evaluate(_load_spec(args.spec), args.results, args.output, args.memory_mb)
    print(
        f"{flag['chunk']}: evaluated {len(flag['replicas'])} replicas in "
        f"{flag['wall_time_s']:.1f} s on {flag['device']}"
    )
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    # the benchmark's own parser, built here so that other commands never import torch
    from ganplify.bench import measure as bench

    parser = argparse.ArgumentParser(prog="ganplify bench", description=bench.__doc__)
    bench.add_arguments(parser)
    return bench.run(parser.parse_args(args.bench_args))


def cmd_aggregate(args: argparse.Namespace) -> int:
    from ganplify.analysis import amplification as amp
    from ganplify.analysis import learning_curve
    from ganplify.analysis import robustness as rb
    from ganplify.results.io import write_csv
    from ganplify.study import plan as study

    results = Path(args.results)
    config = cli_results.study_config(results)
    chunks = study.plan(config)
    mse, replicas = amp.collect(results, chunks)
    agg = config["aggregate"]
    table = amp.amplification_table(
        mse,
        replicas,
        **amp.table_options(agg),
        robust_cl=agg["robust_cl"],
        pass_probabilities=agg["pass_probability"],
    )
    limits = rb.limits_table(table, agg["pass_probability"])
    for t in (table, limits):
        t["n_generated"] = amp.format_counts(t["n_generated"])
    (results / layout.TABLES_DIR).mkdir(exist_ok=True)
    write_csv(results / layout.table("mse"), mse)
    write_csv(results / layout.table("replicas"), replicas)
    write_csv(results / layout.table("amplification"), table)
    write_csv(results / layout.table("robustness"), rb.realised_table(mse, agg["robust_cl"]))
    write_csv(results / layout.table("robustness_limits"), limits)
    curve_mse, curve_replicas = learning_curve.collect(results, chunks)
    curve = learning_curve.learning_table(curve_mse, curve_replicas, **amp.table_options(agg))
    write_csv(results / layout.table("learning_curve"), curve)
    n_failed = int((replicas["status"] != "done").sum())
    print(
        f"aggregated {len(replicas)} replicas ({n_failed} failed) into {len(table)} rows; "
        f"learning curves: {len(curve)} rows"
    )
    return 0


def cmd_fit_uncertainty(args: argparse.Namespace) -> int:
    from ganplify.analysis import fit_uncertainty as fu
    from ganplify.results.io import write_csv
    from ganplify.study import plan as study

    results = Path(args.results)
    config = cli_results.study_config(results)
    if not fu.applies(config):
        raise ResultsError(
            f"study {config['study']!r} runs no {fu.GENERATOR!r} generator: no fit tables to write"
        )
    uncertainty, parameters = fu.fit_tables(results, study.plan(config))
    (results / layout.TABLES_DIR).mkdir(exist_ok=True)
    for name, table in zip(fu.TABLES, (uncertainty, parameters), strict=True):
        write_csv(results / layout.table(name), table)
    print(f"fit uncertainty: {len(uncertainty)} binning rows, {len(parameters)} parameter rows")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from ganplify import figures

    results = Path(args.results)
    config = cli_results.study_config(results)
    figures.draw(args.figure, results, config, args.output)
    return 0


def cmd_provenance(args: argparse.Namespace) -> int:
    from ganplify.results.io import read_json, write_json
    from ganplify.results.provenance import environment, git_state, now
    from ganplify.study import plan as study

    results = Path(args.results)
    config = cli_results.study_config(results)
    jobs = []
    for chunk in study.plan(config):
        flag = read_json(results / chunk.evaluated_flag)
        jobs.append(
            {
                k: flag.get(k)
                for k in ("job", "chunk", "host", "device", "finished", "wall_time_s", "git")
            }
            | {"setting": chunk.setting.relpath}
        )
        trained = results / chunk.trained_flag
        if trained.is_file():
            t = read_json(trained)
            jobs.append(
                {
                    k: t.get(k)
                    for k in ("job", "chunk", "host", "device", "finished", "wall_time_s", "git")
                }
                | {"setting": chunk.setting.relpath}
            )
    write_json(
        args.output,
        {
            "study": config["study"],
            "written": now(),
            "git": git_state(),
            "environment": environment(),
            "seeds": config["seeds"],
            "total_job_wall_time_s": round(sum(j["wall_time_s"] or 0 for j in jobs), 3),
            "jobs": jobs,
        },
    )
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    import pandas as pd

    from ganplify.analysis import summary
    from ganplify.analysis.amplification import read_amplification

    table = read_amplification(Path(args.results) / layout.table("amplification"))
    if args.generator:
        table = table[table["generator"].isin(args.generator)]
    if args.column not in table.columns:
        numeric = [c for c in table.columns if pd.api.types.is_numeric_dtype(table[c])]
        raise UsageError(
            f"--column {args.column!r} is not a column of the table; allowed: {', '.join(numeric)}"
        )
    if args.long:
        cols = [
            "dim",
            "n_train",
            "generator",
            "binning",
            "n_quantiles",
            "n_generated",
            "n_replicas",
            "n_equiv",
            "amplification",
            "amplification_lo",
            "amplification_hi",
        ]
        if table["target"].nunique() > 1:  # a study of several truth families
            cols.insert(0, "target")
        cols += [c for c in ("n_failed",) if c in table.columns]
        if args.format == "csv":
            sys.stdout.write(table[cols].to_csv(index=False))
            return 0
        with pd.option_context(
            "display.max_rows", None, "display.width", 200, "display.float_format", "{:.3g}".format
        ):
            print(table[cols].to_string(index=False))
        return 0
    frame = summary.headline(table, args.column, args.n_generated)
    if args.format == "csv":
        sys.stdout.write(frame.to_csv(index=False))
    elif args.format == "markdown":
        print(summary.to_markdown(frame))
    else:
        what = (
            f"at n_generated = {args.n_generated:g}"
            if args.n_generated is not None
            else "asymptotic or exact"
        )
        print(f"{args.column} ({what}; 68% or the configured interval in brackets)\n")
        print(summary.to_text(frame))
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    text = cfg.schema_yaml()
    if args.output is None:
        sys.stdout.write(text)
    else:
        from ganplify.results.io import atomic_write_text

        atomic_write_text(args.output, text)
    return 0


def cmd_generators(args: argparse.Namespace) -> int:
    from ganplify import generators

    for name, g in generators.REGISTRY.items():
        dims = "any d" if g.dims is None else "d in " + ",".join(map(str, sorted(g.dims)))
        kind = "exact" if g.exact else "sampled"
        print(f"{name:<14} {kind:<8} {dims:<12} {g.description}")
    return 0


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ganplify",
        description="How many truth-sampled events is a generative model worth?",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func: Callable, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(func=func)
        return p

    p = add("check-config", cmd_check_config, "validate a study config and list its settings")
    p.add_argument("config", type=Path)

    p = add("write-config", cmd_write_config, "write the validated config snapshot (workflow)")
    p.add_argument("--json", required=True, help="the config as JSON")
    p.add_argument("--output", required=True, type=Path)

    p = add("baseline", cmd_baseline, "fit and evaluate a chunk of a cheap generator (workflow)")
    p.add_argument("--spec", required=True, help="job spec as JSON (from the workflow)")
    p.add_argument("--results", required=True, type=Path, help="results folder of the study")
    p.add_argument("--output", required=True, type=Path, help="the job's flag file")

    for name, func, what in (
        ("train", cmd_train, "train a chunk of replicas of a neural generator (workflow)"),
        ("evaluate", cmd_evaluate, "generate and bin events of a trained chunk (workflow)"),
    ):
        p = add(name, func, what)
        p.add_argument("--spec", required=True, help="job spec as JSON (from the workflow)")
        p.add_argument("--results", required=True, type=Path, help="results folder")
        p.add_argument("--output", required=True, type=Path, help="the job's flag file")
        p.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
        if name == "evaluate":
            p.add_argument(
                "--memory-mb",
                type=int,
                default=2048,
                help="memory budget for generated activations (default 2048)",
            )

    p = sub.add_parser("bench", add_help=False, help="benchmark GAN training steps (a table)")
    p.set_defaults(func=cmd_bench)  # its options are parsed by cmd_bench

    p = add("aggregate", cmd_aggregate, "aggregate replica tables into tables/*.csv")
    p.add_argument("--results", required=True, type=Path)

    p = add(
        "fit-uncertainty",
        cmd_fit_uncertainty,
        "the fit's MSE as bias and variance, and its HESSE errors against its replica "
        "spread, into tables/fit_uncertainty.csv and tables/fit_parameters.csv",
    )
    p.add_argument("--results", required=True, type=Path)

    from ganplify.figures import FIGURES

    p = add("plot", cmd_plot, "draw one figure of a study")
    p.add_argument("figure", choices=sorted(FIGURES))
    p.add_argument("--results", required=True, type=Path)
    p.add_argument("--output", required=True, type=Path, help="output path stem (.png/.pdf)")

    p = add("provenance", cmd_provenance, "write provenance.json of a study")
    p.add_argument("--results", required=True, type=Path)
    p.add_argument("--output", required=True, type=Path)

    p = add(
        "summary",
        cmd_summary,
        "print a study's headline: a setting-by-generator table of "
        "the asymptotic or exact amplification with its interval",
    )
    p.add_argument("results", type=Path)
    p.add_argument("--generator", action="append", help="only these generators (repeatable)")
    p.add_argument(
        "--column",
        default="amplification",
        help="the value shown (default amplification; e.g. amplification_robust_90, n_equiv)",
    )
    p.add_argument(
        "--n-generated",
        type=float,
        default=None,
        help="the rows at this n_generated (default: each generator's asymptote or exact value)",
    )
    p.add_argument("--format", choices=("text", "markdown", "csv"), default="text")
    p.add_argument("--long", action="store_true", help="every row of the table instead")

    cli_results.add_commands(add)

    add("generators", cmd_generators, "list the available generators")

    p = add(
        "schema",
        cmd_schema,
        "print the config schema assembled from the generators' "
        "options (workflow/schemas/config.schema.yaml holds it)",
    )
    p.add_argument("--output", type=Path, help="write it to this file instead")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command == "bench":
        args.bench_args = extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from ganplify.study.jobs import JobError
    from ganplify.study.plan import SpecError

    try:
        root = _written_folder(args)
        if root is None:
            return args.func(args)
        with recording(root):
            return args.func(args)
    except (cfg.ConfigError, UsageError, ResultsError, JobError, SpecError) as exc:
        print(f"ganplify {args.command}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # output piped into `head`
        sys.stderr.close()
        return 0
    except OSError as exc:  # a full disk, a path that is not writable: say so in one line
        print(f"ganplify {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
