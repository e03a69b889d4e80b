"""The headline table of `ganplify summary`: each generator's own precision, by setting."""

from __future__ import annotations

import math

import pandas as pd

from ganplify.analysis import summary


def _row(generator, binning, q, n_generated, value, lo, hi, dim=1):
    return {
        "target": "gaussian_shell",
        "dim": dim,
        "n_train": 100,
        "generator": generator,
        "binning": binning,
        "n_quantiles": q,
        "n_generated": n_generated,
        "amplification": value,
        "amplification_lo": lo,
        "amplification_hi": hi,
    }


TABLE = pd.DataFrame(
    [
        _row("sample", "x", 10, 1000, 10.0, 9, 11),  # the truth itself: never in the headline
        _row("gan", "x", 10, 1000, 0.5, 0.4, 0.6),
        _row("gan", "x", 10, math.inf, 0.25, 0.2, 0.31),
        _row("fit", "x", 10, math.nan, 2.36, 2.22, 2.55),  # exact: its only row
        _row("gan", "x", 50, math.inf, 0.94, 0.74, 1.27),
        _row("gan", "joint", 7, math.inf, 1.18, 1.09, 1.30, dim=2),
    ]
)


def test_each_generator_shows_its_asymptote_or_exact_value_with_its_interval():
    frame = summary.headline(TABLE)
    assert list(frame.columns) == ["setting", "binning", "fit", "gan"]
    first = frame.iloc[0]
    assert (first["binning"], first["gan"], first["fit"]) == (
        "10 quantiles",
        "0.250 [0.200, 0.310]",
        "2.36 [2.22, 2.55]",
    )
    assert frame.iloc[1]["fit"] == ""  # no fit at 50 quantiles
    assert frame.iloc[2]["binning"] == "7x7 joint cells"


def test_rows_at_a_chosen_event_count_and_markdown():
    frame = summary.headline(TABLE, n_generated=1000, interval=False)
    assert frame.to_dict("records") == [
        {"setting": "d=1, n_train=100", "binning": "10 quantiles", "gan": "0.500"}
    ]
    lines = summary.to_markdown(frame).splitlines()
    assert lines[0] == "| setting | binning | GAN |" and len(lines) == 3
