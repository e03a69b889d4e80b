"""`ganplify bench`: cost of a training step, plain modules vs batched ensembles.

The GAN (default) and, with --generators, the other neural generators (flow,
flow_matching: one full-batch step on 100 training points per replica,
`ganplify.generators.neural.flows`).

For one replica as plain nn.Modules (torch's own RNG and F.dropout, fused Adam; the reference)
and for ensembles of K replicas (`ganplify.generators.neural.gan.step.train_step`; on CUDA
replayed from a CUDA graph when capture works), it reports seconds per step and per replica-
step, the speed-up per replica-step over the plain replica, the aten ops dispatched per step,
the matmul/convolution FLOPs per replica-step (counted by a TorchDispatchMode from the operands'
shapes: torch's FlopCounterMode fails on gradients w.r.t. inputs), peak memory, and the paper
protocol's time extrapolated from the best K.

Achieved rates (`ganplify.bench.rates`, unless --no-rates): in the same process as each row, a
large float32 sgemm and the row's own products (every matmul the step dispatched, replayed
alone with the same shapes and layouts) are timed; the step's GFLOP/s is reported as a
fraction of each. The fraction of the products' rate is the share of the step's time its
matmuls would need at the rate they reach alone.

Peak memory: on CUDA torch.cuda.max_memory_allocated; on CPU the peak resident set size of a
fresh child process (getrusage ru_maxrss) minus its resident size before the networks were
built, so it includes everything the step allocated (activations, gradients, Adam state,
random draws) but not the Python/torch runtime. Each configuration runs in its own child
process unless --no-isolate is given (then CPU memory is not reported).

On CPU every row runs with `ganplify.generators.neural.device.tune_cpu_allocator` applied (as
training does), which makes the plain reference faster too.
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing
import resource
import statistics
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from ganplify import generators
from ganplify.bench import rates
from ganplify.bench.rates import matmul_flops  # noqa: F401 (API: the FLOP count per op)
from ganplify.generators.gan import Gan

# The paper's protocol: replicas x optimiser steps per replica (10,000 epochs).
PAPER_PROTOCOL = {1: 100 * 100_000, 2: 100 * 100_000, 5: 100 * 500_000}


DEFAULT_KS = (1, 4, 16, 64, 256)


class OpCounter(TorchDispatchMode):
    """Counts dispatched aten ops (by name) and matmul/convolution FLOPs, and records each
    matmul-like call's operand layouts (`rates.Product`, to replay them alone)."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter[str] = Counter()
        self.flops = 0
        self.products: Counter[rates.Product] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.ops[str(func)] += 1
        flops = rates.matmul_flops(func, args, out)
        self.flops += flops
        if (prod := rates.product(func, args, kwargs, flops)) is not None:
            self.products[prod] += 1
        return out

    @property
    def total(self) -> int:
        return sum(self.ops.values())


@dataclass(frozen=True)
class Spec:
    """One configuration to measure."""

    impl: str  # "plain" or "ensemble"
    k: int
    generator: str
    dim: int
    steps: int
    warmup: int
    device: str
    set_input: str
    threads: int
    rates: bool = True  # also time the sgemm and the step's products alone
    sgemm_size: int = 0  # 0: rates.SGEMM_SIZE of the device type


@dataclass(frozen=True)
class Row:
    """One measured configuration."""

    generator: str
    impl: str
    k: int
    s_per_step: float
    s_per_replica_step: float
    ops_per_step: int
    mflop_per_replica_step: float
    gflops: float
    peak_mib: float | None
    speedup: float | None = None
    products_gflops: float | None = None  # the step's products, each run alone
    sgemm_gflops: float | None = None  # one large float32 matmul
    of_products: float | None = None  # gflops / products_gflops
    of_sgemm: float | None = None  # gflops / sgemm_gflops


@dataclass(frozen=True)
class Measured:
    """A row and its step's products as timed alone (slowest first; empty without rates)."""

    row: Row
    products: list[rates.ProductTiming]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rss_mib() -> float:
    """Current resident set size (Linux /proc), MiB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def _peak_rss_mib() -> float:
    """Peak resident set size of this process, MiB (ru_maxrss: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def _plain_step(spec: Spec, device: torch.device):
    from ganplify.bench import plain as models
    from ganplify.bench import plain as plain_ref
    from ganplify.generators.neural.gan import config as gan_config

    config = gan_config.GanConfig(set_input=spec.set_input)
    arch = config.architecture(spec.dim)
    gen = models.PlainGenerator(arch).to(device)
    disc = models.PlainDiscriminator(arch).to(device)
    opt_g = torch.optim.Adam(gen.parameters(), lr=config.lr, betas=config.betas, fused=True)
    opt_d = torch.optim.Adam(disc.parameters(), lr=config.lr, betas=config.betas, fused=True)
    real = torch.randn(config.batch_size, spec.dim, device=device)

    def step() -> None:
        plain_ref.plain_train_step(gen, disc, opt_g, opt_d, real, config)

    return step


def _ensemble_step(spec: Spec, device: torch.device):
    from ganplify.generators.neural.gan import config as gan_config
    from ganplify.generators.neural.gan import graphs as gan_graphs
    from ganplify.generators.neural.gan import step as gan_step

    config = gan_config.GanConfig(set_input=spec.set_input)
    data = np.random.default_rng(0).normal(size=(spec.k, 100, spec.dim))
    graphs = device.type == "cuda"
    state = gan_step.new_state(data, list(range(spec.k)), config, device, graphs=graphs)
    gan_step.begin_epoch(state, 0)
    runner, _ = gan_graphs.make_step_runner(state, "auto" if graphs else "off")
    return runner, (lambda: gan_step.train_step(state))


def _density_step(spec: Spec, device: torch.device):
    from ganplify import rng
    from ganplify.generators.neural.flows import training as flows

    model = flows.MODELS[spec.generator]
    config = model.config_type()
    data = np.random.default_rng(0).normal(size=(spec.k, 100, spec.dim))
    x = torch.as_tensor(data, dtype=torch.float32, device=device)
    net = model.network(spec.dim, config, spec.k, device)
    keys = rng.replica_keys(range(spec.k), device)
    for i, sub in enumerate(net.nets):
        flows.init_replicas_(sub, keys, i)
    opt = torch.optim.Adam(list(net.parameters()), lr=config.lr, foreach=True)
    loss_fn, _ = flows.objectives(model, net, keys, x[:, :0])
    counter = [0]

    def step() -> None:
        counter[0] += 1
        opt.zero_grad(set_to_none=True)
        loss_fn(x, counter[0]).sum().backward()
        opt.step()

    return step, step


def measure(spec: Spec) -> Measured:
    """Measure one configuration in this process."""
    from ganplify.generators.neural import device as neural_device

    torch.set_num_threads(spec.threads)
    device = neural_device.resolve_device(spec.device)
    if device.type == "cpu":
        neural_device.tune_cpu_allocator()
    else:
        neural_device.enable_tf32()
        torch.cuda.reset_peak_memory_stats(device)
    rss0 = _rss_mib() if device.type == "cpu" else 0.0
    if spec.generator != Gan.name:
        step, eager = _density_step(spec, device)
    elif spec.impl == "plain":
        step = _plain_step(spec, device)
        eager = step
    else:
        step, eager = _ensemble_step(spec, device)
    for _ in range(max(spec.warmup, 1)):  # at least one: the first step also creates state
        step()
    _sync(device)
    counter = OpCounter()
    with counter:
        eager()  # counted eagerly: a graph replay dispatches nothing
    _sync(device)
    times = []
    for _ in range(spec.steps):
        t0 = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - t0)
    per_step = statistics.median(times)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        peak = _peak_rss_mib() - rss0
    flops = counter.flops / spec.k
    gflops = counter.flops / per_step / 1e9
    row = Row(
        generator=spec.generator,
        impl=spec.impl,
        k=spec.k,
        s_per_step=per_step,
        s_per_replica_step=per_step / spec.k,
        ops_per_step=counter.total,
        mflop_per_replica_step=flops / 1e6,
        gflops=gflops,
        peak_mib=peak,
    )
    if not spec.rates:
        return Measured(row, [])
    # after the step's timing and peak memory, so that neither sees the replayed operands
    timings = rates.time_products(counter.products, device)
    products = rates.products_gflops(timings)
    sgemm = rates.sgemm_gflops(spec.sgemm_size or rates.SGEMM_SIZE[device.type], device)
    row = Row(
        **{
            **asdict(row),
            "products_gflops": products,
            "sgemm_gflops": sgemm,
            "of_products": gflops / products,
            "of_sgemm": gflops / sgemm,
        }
    )
    return Measured(row, timings)


def _child(spec: Spec, queue: multiprocessing.Queue) -> None:
    queue.put(measure(spec))


def measure_isolated(spec: Spec) -> Measured:
    """Measure one configuration in a fresh child process (clean peak memory)."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(spec, queue))
    proc.start()
    measured = queue.get()
    proc.join()
    return measured


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


def format_table(rows: list[Row], device: str) -> str:
    """The rows as a plain-text table."""
    head = (
        f"{'generator':<14}{'impl':<9}{'K':>5}{'s/step':>10}{'ms/replica-step':>17}{'speed-up':>10}"
        f"{'ops/step':>10}{'MFLOP/replica-step':>20}{'GFLOP/s':>9}{'peak MiB':>10}"
    )
    lines = [f"device: {device}", head, "-" * len(head)]
    for r in rows:
        speed = f"{r.speedup:.2f}x" if r.speedup is not None else "-"
        peak = f"{r.peak_mib:.0f}" if r.peak_mib is not None else "-"
        lines.append(
            f"{r.generator:<14}{r.impl:<9}{r.k:>5}{r.s_per_step:>10.4f}"
            f"{r.s_per_replica_step * 1e3:>17.2f}"
            f"{speed:>10}{r.ops_per_step:>10}{r.mflop_per_replica_step:>20.1f}"
            f"{r.gflops:>9.1f}{peak:>10}"
        )
    return "\n".join(lines)


def format_rates(rows: list[Row], sgemm_size: str) -> str:
    """The step's GFLOP/s as fractions of the sgemm's and of its own products' rates."""
    head = (
        f"{'generator':<14}{'impl':<9}{'K':>5}{'step GFLOP/s':>14}{'products':>10}"
        f"{'sgemm':>8}{'of products':>13}{'of sgemm':>10}"
    )
    lines = [
        f"achieved GFLOP/s against this machine's matmul rates, measured in the same "
        f"process: the step's own products run alone, and a {sgemm_size} float32 sgemm",
        head,
        "-" * len(head),
    ]
    for r in rows:
        if r.sgemm_gflops is None:
            continue
        lines.append(
            f"{r.generator:<14}{r.impl:<9}{r.k:>5}{r.gflops:>14.1f}"
            f"{r.products_gflops:>10.1f}{r.sgemm_gflops:>8.1f}{r.of_products:>13.1%}"
            f"{r.of_sgemm:>10.1%}"
        )
    return "\n".join(lines)


def format_extrapolation(best: Row, dim: int) -> str:
    """The paper protocol's time at the best K's cost per replica-step."""
    lines = [
        f"paper protocol at the best K = {best.k} "
        f"({best.s_per_replica_step * 1e3:.2f} ms per replica-step, measured at d = {dim}; "
        "d changes only the first and last layers):"
    ]
    for d, replica_steps in PAPER_PROTOCOL.items():
        lines.append(
            f"  d={d}: {replica_steps:.0e} replica-steps -> "
            f"{_hours(replica_steps * best.s_per_replica_step)}"
        )
    return "\n".join(lines)


def write_csv(path: Path, rows: list[Row]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(asdict(rows[0])))
        writer.writeheader()
        for r in rows:
            writer.writerow(asdict(r))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `ganplify bench`."""
    parser.add_argument("--dim", type=int, default=1, help="phase-space dimension (default 1)")
    parser.add_argument(
        "--ks",
        default=",".join(map(str, DEFAULT_KS)),
        help="comma-separated ensemble sizes (default 1,4,16,64,256)",
    )
    parser.add_argument("--steps", type=int, default=10, help="timed steps per size (median)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument(
        "--set-input",
        choices=("differences", "points"),
        default="differences",
        help="what the discriminator's Phi sees (default: the paper's differences)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=torch.get_num_threads(),
        help="torch intra-op threads (default: torch's default here)",
    )
    parser.add_argument(
        "--generators",
        default=Gan.name,
        help=f"comma-separated neural generators to measure: "
        f"{', '.join(generators.having('neural'))} (default {Gan.name}; the plain "
        "reference is the GAN's)",
    )
    parser.add_argument("--no-plain", action="store_true", help="skip the plain reference")
    parser.add_argument(
        "--no-isolate",
        action="store_true",
        help="measure in this process (faster; no CPU peak memory)",
    )
    parser.add_argument(
        "--no-rates",
        action="store_true",
        help="skip timing the sgemm and the step's products alone (faster)",
    )
    parser.add_argument(
        "--sgemm-size",
        type=int,
        default=0,
        help=f"n of the n x n x n float32 sgemm (default {rates.SGEMM_SIZE['cpu']} on CPU, "
        f"{rates.SGEMM_SIZE['cuda']} on CUDA)",
    )
    parser.add_argument(
        "--products",
        type=int,
        default=0,
        metavar="N",
        help="also print each row's N products that take the most time alone",
    )
    parser.add_argument("--output", type=Path, help="also write the table as CSV")


def run(args: argparse.Namespace) -> int:
    """Run the benchmark and print the table; returns the exit code."""
    from ganplify.generators.neural.device import resolve_device

    device = resolve_device(args.device)
    ks = [int(k) for k in str(args.ks).split(",") if k.strip()]
    names = [g.strip() for g in str(args.generators).split(",") if g.strip()]
    allowed = generators.having("neural")
    if not names or any(g not in allowed for g in names):
        print(
            f"ganplify bench: --generators {args.generators!r}: allowed are {', '.join(allowed)}",
            file=sys.stderr,
        )
        return 2
    impls = [(Gan.name, "plain", 1)] if Gan.name in names and not args.no_plain else []
    impls += [(g, "ensemble", k) for g in names for k in ks]
    rows: list[Row] = []
    details: list[str] = []
    for gen, impl, k in impls:
        spec = Spec(
            impl,
            k,
            gen,
            args.dim,
            args.steps,
            args.warmup,
            str(device),
            args.set_input,
            args.threads,
            not args.no_rates,
            args.sgemm_size,
        )
        measured = measure(spec) if args.no_isolate else measure_isolated(spec)
        row = measured.row
        if args.products > 0 and measured.products:
            details.append(
                rates.format_products(f"{gen} {impl} K={k}", measured.products, args.products)
            )
        if args.no_isolate and device.type == "cpu":
            row = Row(**{**asdict(row), "peak_mib": None})  # the process peak says nothing
        rows.append(row)
        print(
            f"measured {gen} {impl} K={k}: {row.s_per_replica_step * 1e3:.2f} ms per replica-step",
            file=sys.stderr,
            flush=True,
        )
    plain = next((r for r in rows if r.impl == "plain"), None)
    if plain is not None:
        rows = [
            Row(**{**asdict(r), "speedup": plain.s_per_replica_step / r.s_per_replica_step})
            if r.generator == Gan.name
            else r
            for r in rows
        ]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(
        format_table(
            rows,
            f"{device} ({name}), {args.threads} threads, set_input={args.set_input}, d={args.dim}",
        )
    )
    if not args.no_rates:
        n = args.sgemm_size or rates.SGEMM_SIZE[device.type]
        print("\n" + format_rates(rows, f"{n}^3"))
    for detail in details:
        print("\n" + detail)
    ensembles = [r for r in rows if r.impl == "ensemble" and r.generator == Gan.name]
    if ensembles:
        print(format_extrapolation(min(ensembles, key=lambda r: r.s_per_replica_step), args.dim))
    if args.output is not None:
        write_csv(args.output, rows)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (`python -m ganplify.bench.measure`)."""
    parser = argparse.ArgumentParser(prog="ganplify bench", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
