"""Print the README's tables (Markdown) from a results folder, so that every number the README
quotes comes from one run of the commit that carries it.

    python docs/readme_tables.py results/quick > /tmp/tables.md

Blocks: the league (asymptotic or exact amplification with its interval), the same with the
rerun interval, the strict robust amplification at each pass probability, the rows at 10^4
generated events, and the learning curves' first, best and last epochs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from ganplify.analysis import summary
from ganplify.analysis.amplification import read_amplification
from ganplify.results import layout
from ganplify.results.io import read_json


def _block(title: str, frame: pd.DataFrame) -> str:
    return f"### {title}\n\n{summary.to_markdown(frame)}\n"


def _with_rerun(table: pd.DataFrame) -> pd.DataFrame:
    """The amplification with the rerun interval in brackets (rename the columns so that
    `summary.headline` shows them)."""
    return table.assign(
        rerun=table["amplification"],
        rerun_lo=table["amplification_rerun_lo"],
        rerun_hi=table["amplification_rerun_hi"],
    )


def learning_summary(curve: pd.DataFrame) -> pd.DataFrame:
    """Per setting, generator and binning: the first, best and last epochs' amplification."""
    rows = []
    keys = ["dim", "n_train", "generator", "binning", "n_quantiles"]
    for key, part in curve.groupby(keys, sort=True):
        part = part.sort_values("epoch")
        best = part.loc[part["amplification"].idxmax()]
        first, last = part.iloc[0], part.iloc[-1]
        dim, n_train, gen, binning, q = key
        rows.append(
            {
                "setting": f"d={dim}, n_train={n_train}",
                "generator": gen,
                "binning": summary.binning_label(binning, int(q), int(dim)),
                "first epoch": f"{int(first['epoch'])}: {summary._number(first['amplification'])}",
                "best epoch": f"{int(best['epoch'])}: {summary._number(best['amplification'])}",
                "last epoch": f"{int(last['epoch'])}: {summary._number(last['amplification'])}"
                f" (median replica {summary._number(last['amplification_median'])})",
            }
        )
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", type=Path)
    args = parser.parse_args(argv)
    table = read_amplification(args.results / layout.table("amplification"))
    provenance = read_json(args.results / layout.PROVENANCE)
    git = provenance.get("git", {})
    cpu = provenance.get("environment", {}).get("cpu", {})
    print(
        f"<!-- {args.results}: commit {git.get('commit', '?')}, CPU {cpu.get('model', '?')}, "
        f"torch capability {cpu.get('torch_capability', '?')}, total job time "
        f"{provenance.get('total_job_wall_time_s', '?')} s -->\n"
    )
    print(
        _block(
            "League: amplification (asymptotic or exact) [interval of the mean]",
            summary.headline(table),
        )
    )
    print(
        _block(
            "Where a rerun with new replicas lands [rerun interval]",
            summary.headline(_with_rerun(table), "rerun"),
        )
    )
    robust = [c for c in table.columns if c.startswith("amplification_robust_")]
    for column in robust:
        print(
            _block(
                f"Strict robust amplification ({column})",
                summary.headline(table, column, interval=False),
            )
        )
    print(
        _block(
            "At 10^4 generated events: amplification [interval]",
            summary.headline(table, n_generated=10_000),
        )
    )
    curve_path = args.results / layout.table("learning_curve")
    if curve_path.is_file():
        curve = pd.read_csv(curve_path, dtype={"binning": str, "generator": str})
        if len(curve):
            print("### Learning curves: amplification at the first, best and last epoch\n")
            print(summary.to_markdown(learning_summary(curve), labels=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
