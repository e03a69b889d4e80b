"""One-GPU check of the CUDA path, in under five minutes; prints a table at the end.

Run on a machine with one CUDA GPU (``python benchmarks/gpu_check.py --out DIR``):

1. counter-based random draws: bit-identical on the GPU and the CPU;
2. the GAN's CUDA-graph training path against eager execution from the same seeds;
3. the workflow's own jobs on CUDA: train and evaluate 16 replicas of the GAN (200 epochs),
   the flow and flow matching at n_train = 100 in 1D, with amplification at 10/20/50 quantiles;
4. `ganplify bench` at K = 1, 16, 100 and 256 (GAN, flow, flow matching);
5. a profile of one GAN step at K = 100 (top CUDA kernels);
6. the paper protocol's time extrapolated from the best K.

Everything is written under --out (log, JSON); the table is printed last.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ganplify import rng
from ganplify.generators.neural import device as neural_device
from ganplify.generators.neural.gan import config as gan_config
from ganplify.generators.neural.gan import graphs as gan_graphs
from ganplify.generators.neural.gan import step as gan_step
from ganplify.generators.neural.gan import training
from ganplify.study import config as cfg
from ganplify.study import plan as study
from ganplify.study.jobs import run_evaluate, run_train

ROWS: list[tuple[str, str]] = []


def row(what: str, value: str) -> None:
    ROWS.append((what, value))
    print(f"[gpu_check] {what}: {value}", flush=True)


def check_rng(device: torch.device) -> None:
    keys_cpu = rng.replica_keys(range(16), torch.device("cpu"))
    keys_gpu = rng.replica_keys(range(16), device)
    for name, draw in (
        ("uniform", lambda k: rng.uniform_range(k, 4, 123, (10, 1000), -1.0, 1.0)),
        ("keep_mask", lambda k: rng.keep_mask(k, 5, 7, (7, 10, 256), 0.5)),
        ("permutations", lambda k: rng.permutations(k, 3, 11, 100)),
        ("normal", lambda k: rng.normal(k, 9, 3, (1000, 5))),
    ):
        a = draw(keys_cpu)
        b = draw(keys_gpu).cpu()
        diff = (a.double() - b.double()).abs().max().item()
        row(
            f"rng {name} GPU vs CPU",
            "bit-identical" if torch.equal(a, b) else f"differ by at most {diff:.3g}",
        )


def graph_vs_eager(device: torch.device, epochs: int) -> None:
    data = np.random.default_rng(0).normal(size=(16, 100, 1))
    results = {}
    for mode in ("on", "off") if device.type == "cuda" else ("off",):
        config = gan_config.GanConfig(epochs=epochs, lr=5e-4, cuda_graphs=mode, checkpoint_every=0)
        t0 = time.perf_counter()
        results[mode] = training.train_ensemble(
            data, list(range(16)), config, device=str(device), progress=False
        )
        row(
            f"GAN 16 replicas x {epochs} epochs, cuda_graphs={mode}",
            f"{time.perf_counter() - t0:.2f} s (graph used: {results[mode].cuda_graph})",
        )
    if "on" not in results:
        return
    on, off = results["on"], results["off"]
    worst = max(
        (a - b).abs().max().item() / max(b.abs().max().item(), 1e-30)
        for wa, wb in zip(on.generator_weights, off.generator_weights, strict=True)
        for a, b in ((wa[n], wb[n]) for n in wa)
    )
    hist = np.nanmax(np.abs(on.history - off.history))
    # one step agrees to rounding (make_step_runner checks that before it trusts the graph);
    # capturable (foreach) and fused Adam differ in the last bit, which chaotic training grows
    row(
        f"graph vs eager after {epochs} epochs",
        f"max rel. weight diff {worst:.3g}, "
        f"max loss-history diff {hist:.3g}, status equal {on.status == off.status}",
    )


def step_timing(device: torch.device, ks: tuple[int, ...], steps: int) -> None:
    """Seconds per step, CUDA graph against eager, from the same fresh state."""
    for k in ks:
        data = np.random.default_rng(0).normal(size=(k, 100, 1))
        times = {}
        for mode in ("on", "off") if device.type == "cuda" else ("off",):
            config = gan_config.GanConfig(cuda_graphs=mode)
            state = gan_step.new_state(data, list(range(k)), config, device, graphs=mode == "on")
            gan_step.begin_epoch(state, 0)
            runner, graphed = gan_graphs.make_step_runner(state, mode)
            for _ in range(5):
                runner()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t0 = time.perf_counter()
            for _ in range(steps):
                runner()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times[mode] = (time.perf_counter() - t0) / steps
            row(
                f"GAN step K={k}, cuda_graphs={mode}",
                f"{times[mode] * 1e3:.3f} ms/step, {times[mode] / k * 1e3:.4f} ms/replica-step"
                f" (graph used and checked against eager: {graphed})",
            )
        if "on" in times:
            row(f"GAN step K={k}: graph speed-up over eager", f"{times['off'] / times['on']:.2f}x")


def jobs_end_to_end(device: torch.device, out: Path, epochs: int) -> None:
    raw = {
        "study": "gpu_check",
        "target": "gaussian_shell",
        "device": str(device),
        "seeds": {"first": 0, "count": 16},
        "replicas_per_job": 16,
        "defaults": {
            "generators": ["gan", "flow", "flow_matching"],
            "n_generated": [1000, 10000, 100000],
            "n_train": [100],
        },
        "dims": {1: {"quantiles": [10, 20, 50]}},
        "gan": {"epochs": epochs, "lr": 5e-4, "checkpoint_every": 100},
    }
    config = cfg.validate(raw)
    results = out / "study"
    for chunk in study.plan(config):
        name = chunk.setting.generator
        t0 = time.perf_counter()
        flag = run_train(chunk.spec("train"), results, results / chunk.trained_flag)
        t_train = time.perf_counter() - t0
        t0 = time.perf_counter()
        run_evaluate(chunk.spec(), results, results / chunk.evaluated_flag, memory_mb=8192)
        t_eval = time.perf_counter() - t0
        row(
            f"job {name}: train / evaluate 16 replicas",
            f"{t_train:.1f} s / {t_eval:.1f} s on {flag['device']}, "
            f"cuda_graph={flag.get('cuda_graph')}, "
            f"replicas {sorted(set(flag['replicas'].values()))}",
        )
    from ganplify.analysis import amplification as amp

    agg = config["aggregate"]
    table_mse, replicas = amp.collect(results, study.plan(config))
    table = amp.amplification_table(
        table_mse, replicas, **amp.table_options(agg), robust_cl=agg["robust_cl"]
    )
    table.to_csv(out / "amplification.csv", index=False)
    for gen, grp in table.groupby("generator"):
        top = grp[grp["n_generated"] == grp["n_generated"].max()]
        vals = ", ".join(
            f"{int(q)}q {a:.2f}"
            for q, a in zip(top["n_quantiles"], top["amplification"], strict=True)
        )
        row(f"amplification at the largest n_generated, {gen}", vals)


def bench(out: Path, device: torch.device) -> None:
    ks = "1,16,100,256" if device.type == "cuda" else "1,4"
    cmd = [
        sys.executable,
        "-m",
        "ganplify.cli",
        "bench",
        "--ks",
        ks,
        "--dim",
        "1",
        "--device",
        str(device),
        "--steps",
        "30",
        "--warmup",
        "5",
        "--generators",
        "gan,flow,flow_matching",
        "--no-isolate",
        "--output",
        str(out / "bench.csv"),
    ]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=400)
    (out / "bench.txt").write_text(proc.stdout + "\n" + proc.stderr)
    print(proc.stdout, flush=True)
    row(
        "ganplify bench",
        f"exit {proc.returncode} in {time.perf_counter() - t0:.0f} s "
        "(table above and in bench.txt)",
    )
    if proc.returncode != 0:
        print(proc.stderr[-3000:], flush=True)


def profile_step(device: torch.device, out: Path, k: int) -> None:
    """One GAN step's profile at K replicas (benchmarks/profile_step.py's, five steps)."""
    from profile_step import profile_steps  # benchmarks/ is on the path of this script

    table = profile_steps(k, steps=5, dim=1, device=device, row_limit=15)
    (out / "profile.txt").write_text(table)
    print(table, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("gpu_check_out"))
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--skip", default="", help="comma-separated parts to skip")
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu (a smoke test)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    device = neural_device.resolve_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    row("device", f"{name}, torch {torch.__version__}, CUDA {torch.version.cuda}")
    skip = set(args.skip.split(","))
    k_profile = 100 if device.type == "cuda" else 4
    parts = [
        ("rng", lambda: check_rng(device)),
        ("graph", lambda: graph_vs_eager(device, 30)),
        ("steps", lambda: step_timing(device, (16, 100, 256), 200)),
        ("jobs", lambda: jobs_end_to_end(device, args.out, args.epochs)),
        ("bench", lambda: bench(args.out, device)),
        ("profile", lambda: profile_step(device, args.out, k_profile)),
    ]
    for name, part in parts:
        if name in skip:
            continue
        t0 = time.perf_counter()
        try:
            part()
        except Exception as exc:  # report and go on: one broken part must not hide the rest
            import traceback

            traceback.print_exc()
            row(f"part {name}", f"FAILED: {type(exc).__name__}: {exc}"[:300])
        row(f"part {name} wall time", f"{time.perf_counter() - t0:.1f} s")
    width = max(len(w) for w, _ in ROWS)
    table = "\n".join(f"{w:<{width}}  {v}" for w, v in ROWS)
    (args.out / "gpu_check.txt").write_text(table + "\n")
    (args.out / "gpu_check.json").write_text(json.dumps(ROWS, indent=1))
    print("\n" + table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
