"""Aggregate the paper-protocol 1D study's amplification table again from its committed MSE
table, with this checkout's code, when the aggregation changed but the replicas did not:

    python docs/paper_1d/reaggregate.py    # rewrites docs/paper_1d/tables/amplification.csv

It prints the columns whose values changed, and refuses to write when a column of the run's
table disappeared or the rows differ, so a change of method shows as exactly the columns it
touches; every other number stays the run's (provenance.json).
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pandas as pd

from ganplify.analysis import amplification as amp
from ganplify.metrics.evaluation import MSE_COLUMNS
from ganplify.results.io import read_table, write_csv
from ganplify.study import config as cfg

ROOT = Path(__file__).resolve().parent
TABLE = ROOT / "tables" / "amplification.csv"


def reaggregated() -> pd.DataFrame:
    """The amplification table of the committed mse.csv and replicas.csv."""
    agg = cfg.validate(cfg.read(ROOT / "config.yaml"))["aggregate"]
    mse = read_table(ROOT / "tables" / "mse.csv", MSE_COLUMNS)
    mse["n_generated"] = mse["n_generated"].astype("Int64")
    replicas = read_table(ROOT / "tables" / "replicas.csv")
    table = amp.amplification_table(
        mse,
        replicas,
        **amp.table_options(agg),
        robust_cl=agg["robust_cl"],
        pass_probabilities=agg["pass_probability"],
    )
    table["n_generated"] = amp.format_counts(table["n_generated"])
    return table


def main() -> int:
    new = reaggregated()
    text = io.StringIO()
    new.to_csv(text, index=False)
    as_text = {"dtype": str, "keep_default_na": False}
    before = pd.read_csv(TABLE, **as_text)
    after = pd.read_csv(io.StringIO(text.getvalue()), **as_text)
    lost = [c for c in before.columns if c not in after.columns]
    if lost or len(before) != len(after):
        print(f"{TABLE}: not written: columns {lost} or rows changed", file=sys.stderr)
        return 1
    changed = [c for c in before.columns if not before[c].equals(after[c])]
    added = [c for c in after.columns if c not in before.columns]
    write_csv(TABLE, new)
    print(f"{TABLE}: changed columns {changed or 'none'}; new columns {added or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
