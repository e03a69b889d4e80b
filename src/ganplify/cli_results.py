"""The `ganplify` commands that look after a results folder as a whole: its manifest, the check
a collaborator runs (verify), accepting an intended edit, signing, status and merge.

`ganplify.cli` registers them (`add_commands`) and turns their errors into one line on stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from ganplify.results import layout


def study_config(results: Path) -> dict:
    """A results folder's validated config.yaml (`ResultsError` naming it when it is missing
    or invalid)."""
    from ganplify.results.io import ResultsError
    from ganplify.study import config as cfg

    path = Path(results) / layout.CONFIG
    if not path.is_file():
        raise ResultsError(f"{path}: missing; is {results} a ganplify results folder?")
    try:
        return cfg.load(path)
    except cfg.ConfigError as exc:
        raise ResultsError(f"{path}: {exc}") from None


def cmd_manifest(args: argparse.Namespace) -> int:
    from ganplify.results.manifest import write_manifest

    n = write_manifest(args.results)
    print(f"{args.results}/{layout.MANIFEST}: {n} files")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from ganplify.results import signature
    from ganplify.results.checks import table_checks
    from ganplify.results.io import ResultsError
    from ganplify.results.manifest import is_unchecked, read_manifest, scan, verify

    root = Path(args.results)
    problems = verify(root, table_checks)
    signed = None
    if not problems and ((root / layout.SIGNATURE).exists() or args.allowed_signers):
        try:
            signed = signature.signer(root, args.allowed_signers)
        except ResultsError as exc:
            problems.append(str(exc))
    if problems:
        for p in problems:
            print(p if p.startswith(str(root)) else f"{root}/{p}", file=sys.stderr)
        print(f"verify: {len(problems)} problem(s) in {root}", file=sys.stderr)
        return 1
    print(f"{root}: OK, {len(read_manifest(root))} files match {layout.MANIFEST}")
    if signed is not None:
        who = f" ({', '.join(signed.principals)})" if signed.principals else ""
        trust = (
            "" if signed.principals else " (not checked against trusted keys: --allowed-signers)"
        )
        print(f"  signed by {signed.key_type} key {signed.fingerprint}{who}{trust}")
    else:
        print("  not signed (ganplify sign)")
    skipped = [f for f in scan(root).files if is_unchecked(f)]
    if skipped:
        print(f"  not checked: {len(skipped)} log/report file(s) (logs/, report.html)")
    return 0


def cmd_accept(args: argparse.Namespace) -> int:
    from ganplify.results.io import ResultsError
    from ganplify.results.manifest import accept, write_manifest

    if bool(args.files) == args.all:
        raise ResultsError("name the files to accept, or give --all (not both)")
    accepted = accept(args.results, args.files, every=args.all)
    for rel in accepted:
        print(f"accepted {args.results}/{rel} as it is now")
    if (Path(args.results) / layout.MANIFEST).is_file():
        n = write_manifest(args.results)
        print(f"{args.results}/{layout.MANIFEST}: {n} files")
    return 0


def cmd_sign(args: argparse.Namespace) -> int:
    from ganplify.results import signature
    from ganplify.results.checks import table_checks
    from ganplify.results.io import ResultsError
    from ganplify.results.manifest import verify

    problems = verify(args.results, table_checks)
    if problems:
        raise ResultsError(
            f"{args.results}: not signed, `ganplify verify` finds {len(problems)} problem(s), "
            f"the first: {problems[0]}"
        )
    who = signature.sign(args.results, args.key)
    print(f"{args.results}/{layout.SIGNATURE}: signed by {who.key_type} key {who.fingerprint}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from ganplify.results import status

    results = Path(args.results)
    states = status.study_status(results, study_config(results), args.workdir)
    print("\n".join(status.summary_lines(states)))
    return 1 if status.incomplete(states) else 0


def cmd_merge(args: argparse.Namespace) -> int:
    from ganplify.results.merge import merge

    out = merge(args.sources, args.into)
    print(
        f"merged {len(args.sources)} folders into {args.into}: {out['files']} files, "
        f"{out['flags']} job flags; now run\n"
        f"  snakemake --configfile {args.into}/config.yaml"
    )
    return 0


def add_commands(add: Callable[[str, Callable, str], argparse.ArgumentParser]) -> None:
    """Register these commands with `ganplify.cli.build_parser`'s ``add``."""
    p = add("manifest", cmd_manifest, "write MANIFEST.sha256 of a results folder (workflow)")
    p.add_argument("--results", required=True, type=Path)

    p = add("verify", cmd_verify, "check a results folder against its manifest and contract")
    p.add_argument("results", type=Path)
    p.add_argument(
        "--allowed-signers",
        type=Path,
        help="OpenSSH allowed-signers file: the folder must be signed by one of its keys",
    )

    p = add(
        "accept",
        cmd_accept,
        "accept intended edits of a results folder's files: they enter the manifest as they are",
    )
    p.add_argument("results", type=Path)
    p.add_argument("files", nargs="*", help="files to accept (relative to the folder, or paths)")
    p.add_argument(
        "--all",
        action="store_true",
        help="every changed contract file (a folder an earlier ganplify wrote and did not finish)",
    )

    p = add("sign", cmd_sign, "sign a verified folder's MANIFEST.sha256 with an SSH key")
    p.add_argument("results", type=Path)
    p.add_argument("--key", required=True, type=Path, help="SSH private key (ssh-keygen -Y sign)")

    p = add(
        "status",
        cmd_status,
        "list done, failed, in-progress and missing replicas "
        "with reasons (exit 1 while some still have to run)",
    )
    p.add_argument("results", type=Path)
    p.add_argument(
        "--workdir",
        type=Path,
        default=Path("."),
        help="where Snakemake ran (for .snakemake/slurm_logs; default .)",
    )

    p = add("merge", cmd_merge, "merge results folders of one study made with other seeds")
    p.add_argument("sources", nargs="+", type=Path, help="results folders to merge")
    p.add_argument("--into", required=True, type=Path, help="results/<new study>")
