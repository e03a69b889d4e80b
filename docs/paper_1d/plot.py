"""Redraw the figures of the paper-protocol 1D study (config/paper_1d.yaml) from its committed
tables, without its replicas or a rerun:

    python docs/paper_1d/plot.py          # writes docs/paper_1d/figures/<name>.png|pdf

docs/paper_1d/ holds the study's config.yaml, provenance.json and small tables (tables/); a
change of the tables' columns needs only `ganplify aggregate` on the full results folder and a
copy of its tables here, not a new training.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ganplify import figures
from ganplify.study import config as cfg

ROOT = Path(__file__).resolve().parent
# The figures drawn from tables alone (fig1 and the loss curves need the replicas' files).
NAMES = (
    "fig2_camel_back_mse",
    "amplification_vs_n_generated",
    "league",
    "learning_curve",
    "robustness",
)


def main() -> int:
    config = cfg.load(ROOT / "config.yaml")
    for name in NAMES:
        for path in figures.draw(name, ROOT, config, ROOT / "figures" / name):
            print(path.relative_to(ROOT.parents[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
