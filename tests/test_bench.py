"""`ganplify bench`'s achieved rates: the sgemm's and the step's own products' GFLOP/s."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from ganplify.bench import measure as bench
from ganplify.bench import rates

CPU = torch.device("cpu")


def test_operand_makes_a_tensor_of_the_same_layout():
    t = torch.randn(3, 5, 4).transpose(1, 2)  # a transposed view, as autograd passes them
    op = rates._meta(t)
    made = op.make()
    assert made.shape == t.shape and made.stride() == t.stride() and made.dtype == t.dtype
    assert str(op) == "3x4x5[20,1,4]" and str(rates._meta(torch.zeros(2, 3))) == "2x3"
    expanded = rates._meta(torch.zeros(1, 4).expand(3, 4)).make()  # stride 0
    assert expanded.stride() == (0, 1)


def test_counter_records_each_product_once_per_layout():
    layer = torch.nn.Linear(7, 5)
    x = torch.randn(3, 7, requires_grad=True)
    counter = bench.OpCounter()
    with counter:
        layer(x).sum().backward()
    assert sum(p.flops * n for p, n in counter.products.items()) == counter.flops
    assert {p.name for p in counter.products} == {"addmm", "mm"}
    timings = rates.time_products(counter.products, CPU)
    assert sum(t.calls for t in timings) == 3
    assert all(t.us_per_call > 0 and t.gflops > 0 for t in timings)
    assert rates.products_gflops(timings) > 0
    assert "mm" in rates.format_products("linear", timings, 2)


def test_sgemm_rate_is_positive():
    assert rates.sgemm_gflops(32, CPU) > 0


def test_bench_reports_fractions_of_the_matmul_rates(tmp_path, capsys):
    out = tmp_path / "bench.csv"
    assert (
        bench.main(
            [
                "--ks",
                "1",
                "--steps",
                "1",
                "--warmup",
                "0",
                "--no-isolate",
                "--no-plain",
                "--threads",
                "1",
                "--sgemm-size",
                "64",
                "--products",
                "3",
                "--output",
                str(out),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "64^3 float32 sgemm" in text and "the step's products alone" in text
    row = pd.read_csv(out).iloc[0]
    assert row["products_gflops"] > 0 and row["sgemm_gflops"] > 0
    assert row["of_products"] == pytest.approx(row["gflops"] / row["products_gflops"])
    assert row["of_sgemm"] == pytest.approx(row["gflops"] / row["sgemm_gflops"])


def test_bench_without_rates_leaves_their_columns_empty(tmp_path, capsys):
    out = tmp_path / "bench.csv"
    assert (
        bench.main(
            [
                "--ks",
                "1",
                "--steps",
                "1",
                "--warmup",
                "0",
                "--no-isolate",
                "--no-plain",
                "--threads",
                "1",
                "--no-rates",
                "--output",
                str(out),
            ]
        )
        == 0
    )
    assert "sgemm" not in capsys.readouterr().out
    table = pd.read_csv(out)
    assert {"of_products", "of_sgemm"} <= set(table.columns)
    assert table[["products_gflops", "sgemm_gflops", "of_products", "of_sgemm"]].isna().all().all()
