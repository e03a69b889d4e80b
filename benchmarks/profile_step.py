"""Profile GAN training steps with torch.profiler and print the top operations.

``python benchmarks/profile_step.py --k 16 --steps 5 --out docs/profile-cpu-step.txt``
profiles `ganplify.generators.neural.gan.step.train_step` at the paper's sizes (d = 1 unless
--dim) after a few warm-up steps, eagerly, and writes the table (self time, sorted) under --out
with the command line and the machine at the top.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

from ganplify.generators.neural import device as neural_device
from ganplify.generators.neural.gan import config as gan_config
from ganplify.generators.neural.gan import step as gan_step
from ganplify.results.provenance import cpu

# Groups of aten ops for the summary line: what kind of work the step's time goes to.
GROUPS = {
    "matmuls": ("aten::bmm", "aten::baddbmm", "aten::mm", "aten::addmm"),
    "Adam": ("aten::_fused_adam_",),
    "gradient sums": ("aten::add",),
}


def summary(averages: list, steps: int) -> str:
    """Self time per step of each op group in `GROUPS` and of the rest, with shares."""
    total = sum(e.self_cpu_time_total for e in averages)
    parts, rest = [], total
    for name, ops in GROUPS.items():
        t = sum(e.self_cpu_time_total for e in averages if e.key in ops)
        rest -= t
        parts.append(f"{name} {t / total:.0%}")
    parts.append(f"everything else {rest / total:.0%}")
    return f"self CPU time {total / steps / 1e3:.1f} ms per step: " + ", ".join(parts)


def profile_steps(k: int, steps: int, dim: int, device: torch.device, row_limit: int) -> str:
    """The profile table of ``steps`` eager GAN steps of K replicas, sorted by self time,
    after a summary line (`summary`)."""
    if device.type == "cpu":
        neural_device.tune_cpu_allocator()  # as training does
    config = gan_config.GanConfig(cuda_graphs="off")
    data = np.random.default_rng(0).normal(size=(k, 100, dim))
    state = gan_step.new_state(data, list(range(k)), config, device)
    gan_step.begin_epoch(state, 0)
    for _ in range(3):
        gan_step.train_step(state)
    cuda = device.type == "cuda"
    activities = [ProfilerActivity.CPU, *([ProfilerActivity.CUDA] if cuda else [])]
    with profile(activities=activities) as prof:
        for _ in range(steps):
            gan_step.train_step(state)
        if cuda:
            torch.cuda.synchronize(device)
    sort = "self_cuda_time_total" if cuda else "self_cpu_time_total"
    averages = prof.key_averages()
    return summary(averages, steps) + "\n" + averages.table(sort_by=sort, row_limit=row_limit)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--k", type=int, default=16, help="replicas (default 16)")
    parser.add_argument("--steps", type=int, default=5, help="profiled steps (default 5)")
    parser.add_argument("--dim", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--rows", type=int, default=25, help="table rows (default 25)")
    parser.add_argument("--out", type=Path, help="also write the table here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = neural_device.resolve_device(args.device)
    table = profile_steps(args.k, args.steps, args.dim, device, args.rows)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    head = (
        f"$ python benchmarks/profile_step.py {' '.join(sys.argv[1:])}\n"
        f"{cpu()['model'] or platform.machine()} ({cpu()['torch_capability']}), "
        f"{os.cpu_count()} logical CPUs (load average {load:.1f} "
        f"at the end), torch {torch.__version__}, {args.threads} threads, K={args.k}, "
        f"d={args.dim}, {args.steps} steps\n"
    )
    print(head + table)
    if args.out is not None:
        args.out.write_text(head + table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
