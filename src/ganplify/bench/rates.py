"""What this machine's matmuls achieve, for `ganplify bench`: a large sgemm and the step's own
products, each run alone, so that a step's GFLOP/s can be read as a fraction of them.

* The sgemm rate: one float32 [n, n] x [n, n] product (n = 2048 on CPU, 8192 on CUDA by
  default) repeated; near the machine's peak for float32 matmuls (TF32 on CUDA where the
  step enables it, since the step's matmuls run in the same mode).
* The products rate: every matmul-like aten call a step dispatched (mm, addmm, bmm, baddbmm,
  convolution and its backward), recorded with its operands' shapes, strides and dtypes
  (`product`), replayed alone on random operands of the same layout and timed
  (`time_products`). Their FLOPs over the time they need alone is the rate the step's
  products could reach at this K; a step's GFLOP/s over it is the share of the step's time
  that its products would need at that rate (the rest is elementwise work, the optimiser,
  memory traffic and overhead). On CUDA the products are replayed as separate launches, so
  at small K, where launches dominate, a CUDA-graph step can exceed its products' rate.
"""

from __future__ import annotations

import math
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

aten = torch.ops.aten

# Default sgemm sizes: large enough to approach the device's peak, small enough to take
# about a second (CPU) or milliseconds (GPU).
SGEMM_SIZE = {"cpu": 2048, "cuda": 8192}

# Each timing is the median over this many windows of repeated calls, each window long
# enough for the clock's resolution and launch overheads not to matter.
WINDOWS = 5
WINDOW_S = 0.005


def _conv_flops(x_shape: torch.Size, w_shape: torch.Size, out_shape: torch.Size) -> int:
    """2 * output elements * (input channels per group * kernel size)."""
    per_output = int(np.prod(w_shape[1:]))
    return 2 * int(np.prod(out_shape)) * per_output


def matmul_flops(func: object, args: tuple, out: object) -> int:
    """FLOPs of one matmul-like aten op (mm, addmm, bmm, baddbmm, convolution), else 0."""
    packet = getattr(func, "overloadpacket", None)
    if packet in (aten.mm, aten.bmm, aten.addmm, aten.baddbmm):
        a, b = (args[0], args[1]) if packet in (aten.mm, aten.bmm) else (args[1], args[2])
        batch = a.shape[0] if a.dim() == 3 else 1
        return 2 * batch * a.shape[-2] * a.shape[-1] * b.shape[-1]
    if packet is aten.convolution:
        return _conv_flops(args[0].shape, args[1].shape, out.shape)
    if packet is aten.convolution_backward:
        grad_out, x, w = args[0], args[1], args[2]
        mask = args[-1]
        forward = _conv_flops(x.shape, w.shape, grad_out.shape)
        return forward * (int(bool(mask[0])) + int(bool(mask[1])))
    return 0


@dataclass(frozen=True)
class Operand:
    """A tensor argument's layout: enough to make another tensor like it."""

    shape: tuple[int, ...]
    stride: tuple[int, ...]
    dtype: torch.dtype
    device: str

    def make(self) -> torch.Tensor:
        """Random values (normal) with exactly this shape, stride, dtype and device."""
        # the storage a strided view needs: one past its furthest element
        size = 1 + sum((n - 1) * s for n, s in zip(self.shape, self.stride, strict=True) if n)
        if self.dtype.is_floating_point:
            base = torch.randn(size, dtype=self.dtype, device=self.device)
        else:
            base = torch.zeros(size, dtype=self.dtype, device=self.device)
        return base.as_strided(self.shape, self.stride)

    def __str__(self) -> str:
        dims = "x".join(map(str, self.shape))
        contiguous = self.stride == tuple(torch.empty(self.shape, device="meta").stride())
        return dims if contiguous else f"{dims}[{','.join(map(str, self.stride))}]"


@dataclass(frozen=True)
class Product:
    """One matmul-like aten call, by its op and operands' layouts (hashable, so calls of the
    same shape count together)."""

    func: object  # the aten OpOverload
    args: tuple
    kwargs: tuple[tuple[str, object], ...]
    flops: int

    def call(self) -> Callable[[], object]:
        """A closure that runs the op on fresh random operands of the recorded layouts."""
        args = _make(self.args)
        kwargs = {k: _make(v) for k, v in self.kwargs}
        return lambda: self.func(*args, **kwargs)

    @property
    def operands(self) -> str:
        """The tensor operands' shapes (and strides where not contiguous), e.g. 16x10x256."""
        return " ".join(str(a) for a in self.args if isinstance(a, Operand))

    @property
    def name(self) -> str:
        return str(getattr(self.func, "overloadpacket", self.func)).removeprefix("aten.")


def _meta(value: object) -> object:
    """A hashable record of an argument: tensors by layout, lists as tuples."""
    if isinstance(value, torch.Tensor):
        return Operand(tuple(value.shape), tuple(value.stride()), value.dtype, str(value.device))
    if isinstance(value, list | tuple):
        return tuple(_meta(v) for v in value)
    return value


def _make(value: object) -> object:
    """Inverse of `_meta`: random tensors for operands."""
    if isinstance(value, Operand):
        return value.make()
    if isinstance(value, tuple):
        return [_make(v) for v in value]
    return value


def product(func: object, args: tuple, kwargs: dict | None, flops: int) -> Product | None:
    """The record of a matmul-like call (None when it has no FLOPs)."""
    if flops <= 0:
        return None
    kw = tuple(sorted((k, _meta(v)) for k, v in (kwargs or {}).items()))
    return Product(func, _meta(args), kw, flops)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def seconds_per_call(
    fn: Callable[[], object],
    device: torch.device,
    windows: int = WINDOWS,
    window_s: float = WINDOW_S,
) -> float:
    """Median seconds per call of ``fn`` over ``windows`` windows of repeated calls.

    One untimed call first; the number of calls per window is chosen from one timed call so
    that a window lasts about ``window_s`` (at least one call).
    """
    fn()
    _sync(device)
    t0 = time.perf_counter()
    fn()
    _sync(device)
    reps = max(1, math.ceil(window_s / max(time.perf_counter() - t0, 1e-9)))
    times = []
    for _ in range(windows):
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        _sync(device)
        times.append((time.perf_counter() - t0) / reps)
    return statistics.median(times)


def sgemm_gflops(n: int, device: torch.device) -> float:
    """GFLOP/s of one float32 [n, n] x [n, n] matmul on ``device`` (2 n^3 FLOPs per call)."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    out = torch.empty(n, n, device=device)
    seconds = seconds_per_call(lambda: torch.mm(a, b, out=out), device)
    return 2 * n**3 / seconds / 1e9


@dataclass(frozen=True)
class ProductTiming:
    """One distinct product of a step, timed alone."""

    op: str
    operands: str
    calls: int  # per step
    mflop: float  # per call
    us_per_call: float

    @property
    def gflops(self) -> float:
        return self.mflop * 1e3 / max(self.us_per_call, 1e-9)

    @property
    def seconds(self) -> float:
        """Seconds per step that these calls need alone."""
        return self.calls * self.us_per_call * 1e-6


def time_products(products: Counter[Product], device: torch.device) -> list[ProductTiming]:
    """Time each distinct product alone; the slowest (by seconds per step) first."""
    out = []
    for prod, calls in products.items():
        seconds = seconds_per_call(prod.call(), device)
        out.append(ProductTiming(prod.name, prod.operands, calls, prod.flops / 1e6, seconds * 1e6))
    return sorted(out, key=lambda t: -t.seconds)


def products_gflops(timings: list[ProductTiming]) -> float:
    """The step's products' FLOPs over the time they need alone, GFLOP/s."""
    flops = sum(t.calls * t.mflop * 1e6 for t in timings)
    seconds = sum(t.seconds for t in timings)
    return flops / seconds / 1e9 if seconds > 0 else float("nan")


def format_products(label: str, timings: list[ProductTiming], top: int) -> str:
    """The ``top`` products that need the most time alone, with their share of it."""
    total = sum(t.seconds for t in timings) or float("nan")
    head = (
        f"{'op':<22}{'operands':<48}{'calls':>6}{'MFLOP':>9}{'us/call':>10}"
        f"{'GFLOP/s':>9}{'share':>7}"
    )
    lines = [
        f"{label}: the step's products alone, slowest first "
        f"({len(timings)} distinct, {products_gflops(timings):.1f} GFLOP/s together)",
        head,
        "-" * len(head),
    ]
    for t in timings[:top]:
        lines.append(
            f"{t.op:<22}{t.operands:<48}{t.calls:>6}{t.mflop:>9.2f}"
            f"{t.us_per_call:>10.1f}{t.gflops:>9.1f}{t.seconds / total:>7.1%}"
        )
    return "\n".join(lines)
