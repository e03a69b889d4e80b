"""The GAN's training step captured in a CUDA graph, checked against an eager step before it
is trusted, with an eager fallback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import torch

from ganplify.generators.neural.gan.step import TrainState, train_step
from ganplify.signals import STOP_SIGNALS, SignalFlag, catch_signals  # noqa: F401 (API)

log = logging.getLogger(__name__)


def _state_tensors(state: TrainState) -> list[torch.Tensor]:
    """Every tensor the training step modifies (parameters, Adam state, counters, flags)."""
    out: list[torch.Tensor] = [*state.generator.parameters(), *state.discriminator.parameters()]
    for opt in (state.opt_g, state.opt_d):
        for p in opt.param_groups[0]["params"]:
            out.extend(opt.state[p][name] for name in ("step", "exp_avg", "exp_avg_sq"))
    out.extend([state.step, state.alive, state.d_failed, state.g_failed, state.sums])
    return out


def _snapshot(state: TrainState) -> list[torch.Tensor]:
    with torch.no_grad():
        return [t.detach().clone() for t in _state_tensors(state)]


def _restore(state: TrainState, snapshot: Sequence[torch.Tensor]) -> None:
    with torch.no_grad():
        for t, saved in zip(_state_tensors(state), snapshot, strict=True):
            t.copy_(saved)


def _capture_graph(state: TrainState, warmup: int = 3) -> torch.cuda.CUDAGraph:
    """Capture `train_step` in a CUDA graph; the state is left as it was before.

    As the torch docs require, a few eager warm-up steps run on a side stream first (they
    create the autograd and cuBLAS workspaces); they change the state, so it is snapshotted
    before and restored in place (same tensors, so the graph's addresses stay valid) after.
    """
    before = _snapshot(state)
    side = torch.cuda.Stream(device=state.device)
    side.wait_stream(torch.cuda.current_stream(state.device))
    with torch.cuda.stream(side):
        for _ in range(warmup):
            train_step(state)
    torch.cuda.current_stream(state.device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        train_step(state)
    torch.cuda.synchronize(state.device)
    _restore(state, before)
    return graph


def _compare_snapshots(
    graph: Sequence[torch.Tensor], eager: Sequence[torch.Tensor], lr: float
) -> str | None:
    """Why a graph-replayed step disagrees with an eager one, or None when they agree.

    Adam normalises updates, so parameters may differ by up to ~2 lr where a gradient's sign
    is decided by rounding; everything else must agree to float32 rounding (relative 1e-4).
    """
    for i, (a, b) in enumerate(zip(graph, eager, strict=True)):
        if a.dtype == torch.bool or a.dtype == torch.int64:
            if not torch.equal(a, b):
                return f"state tensor {i} (integer/flag) differs"
            continue
        a64, b64 = a.double(), b.double()
        if not torch.equal(torch.isfinite(a64), torch.isfinite(b64)):
            return f"state tensor {i}: finiteness differs"
        diff = (a64 - b64).nan_to_num().abs().max().item() if a.numel() else 0.0
        scale = b64.nan_to_num().abs().max().item() if b.numel() else 0.0
        if diff > max(1e-4 * scale, 2.5 * lr):
            return f"state tensor {i} differs by {diff:.3g} (scale {scale:.3g})"
    return None


def make_step_runner(state: TrainState, mode: str) -> tuple[Callable[[], None], bool]:
    """The function that runs one training step, and whether it replays a CUDA graph.

    On CUDA with ``mode`` "auto" or "on", the whole step (D step, G step, both optimiser
    steps) is captured in one CUDA graph, which removes the per-kernel launch overhead. Before
    it is trusted, one replayed step is compared with one eager step from the same state; the
    state is then put back, so the graph changes nothing but speed. Under "auto" any failure
    (capture error, disagreement) logs a warning and falls back to eager execution; under
    "on" it raises.

    UNTESTED ON HARDWARE: this path was written without access to a GPU. It follows the torch
    documentation for whole-network capture (static input tensors, counters and learning rates
    as device tensors updated in place, Adam(capturable=True), warm-up on a side stream) and
    checks itself as described, but it has never been run.
    """
    if state.device.type != "cuda" or mode == "off":
        if mode == "on":
            raise ValueError("cuda_graphs='on' needs a CUDA device")
        return _eager_runner(state), False
    return checked_graph_runner(state, mode, _capture_graph)


def _eager_runner(state: TrainState) -> Callable[[], None]:
    def eager() -> None:
        train_step(state)

    return eager


def checked_graph_runner(
    state: TrainState, mode: str, capture: Callable[[TrainState], object]
) -> tuple[Callable[[], None], bool]:
    """Capture with ``capture`` (returns an object with ``replay()``), check, or fall back.

    One replayed step is compared with one eager step from the same state, and the state is
    then restored, so the first training step of the run is the graph's. Any failure raises
    under ``mode == "on"`` and otherwise logs a warning and returns the eager runner.
    (Separated from `make_step_runner` so that this logic can be tested without a GPU.)
    """
    before = _snapshot(state)
    try:
        graph = capture(state)
        graph.replay()
        after_graph = _snapshot(state)
        _restore(state, before)
        train_step(state)
        problem = _compare_snapshots(after_graph, _snapshot(state), state.config.lr)
        _restore(state, before)
        if problem is not None:
            raise RuntimeError(f"graph replay disagrees with eager execution: {problem}")
    except Exception as exc:
        _restore(state, before)
        if mode == "on":
            raise
        log.warning("CUDA graph capture failed (%s); training eagerly instead", exc)
        return _eager_runner(state), False
    log.info("training step captured in a CUDA graph (checked against an eager step)")
    return graph.replay, True
