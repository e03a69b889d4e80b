"""Memory and time estimates behind the config's caps.

Each estimate is a simple upper bound of what one job holds or does, stated in the message
that refuses a config: a job that cannot fit is refused before it starts rather than failing
(or swapping for hours) inside it.

* A job's training sets: replicas x n_train x d float64 values.
* A neural job's training state: replicas x parameters x 4 bytes (float32) x 4 copies (the
  weights, their gradients and Adam's two moments); activations are not counted.
* A baseline job's evaluation chunk: events x d float64 values x `CHUNK_COPIES`.
* The aggregation's bootstrap: per table row, resamples x replicas draws of an int64 index and
  the float64 value it picks (16 bytes each); over all rows, about `SECONDS_PER_DRAW` each.
"""

from __future__ import annotations

from dataclasses import dataclass

FLOAT64 = 8
PARAMETER_BYTES = 4  # float32 weights
PARAMETER_COPIES = 4  # weights, gradients, Adam's first and second moments
CHUNK_COPIES = 4  # a chunk's events, their projected coordinates, cell indices, scratch

BOOTSTRAP_DRAW_BYTES = 16  # an int64 index and the float64 value it picks
# One row's resamples live at once on the machine that runs the workflow (a local rule).
BOOTSTRAP_MAX_BYTES = 2 * 10**9
SECONDS_PER_DRAW = 1e-8  # measured: 10 to 40 ns per draw on one core
BOOTSTRAP_MAX_SECONDS = 3600.0


@dataclass(frozen=True)
class Estimate:
    """An estimate and how it was made.

    Attributes
    ----------
    amount : float
        Bytes or seconds.
    how : str
        The product it is, with its numbers (for the message that refuses it).
    """

    amount: float
    how: str


def training_sets_bytes(replicas: int, n_train: int, dim: int) -> Estimate:
    """The training sets a job holds: one [n_train, d] float64 array per replica."""
    return Estimate(
        replicas * n_train * dim * FLOAT64,
        f"{replicas} replicas x {n_train:,} points x {dim} coordinates x 8 bytes",
    )


def training_state_bytes(parameters: int, replicas: int) -> Estimate:
    """An ensemble's float32 weights, gradients and Adam moments."""
    return Estimate(
        parameters * replicas * PARAMETER_BYTES * PARAMETER_COPIES,
        f"{replicas} replicas x {parameters:,} parameters x 4 bytes x 4 (weights, "
        "gradients, two Adam moments)",
    )


def chunk_bytes(events: int, dim: int) -> Estimate:
    """One evaluation chunk of ``events`` events in ``dim`` dimensions."""
    return Estimate(
        events * dim * FLOAT64 * CHUNK_COPIES,
        f"{events:,} events x {dim} coordinates x 8 bytes x {CHUNK_COPIES} copies",
    )


def bootstrap_bytes(resamples: int, replicas: int) -> Estimate:
    """One table row's bootstrap: ``resamples`` x ``replicas`` draws at once."""
    return Estimate(
        resamples * replicas * BOOTSTRAP_DRAW_BYTES,
        f"{resamples:,} resamples x {replicas:,} replicas x {BOOTSTRAP_DRAW_BYTES} bytes",
    )


def bootstrap_seconds(resamples: int, replicas: int, rows: int) -> Estimate:
    """The whole bootstrap: ``rows`` table rows of ``resamples`` x ``replicas`` draws."""
    return Estimate(
        resamples * replicas * rows * SECONDS_PER_DRAW,
        f"{resamples:,} resamples x {replicas:,} replicas x up to {rows:,} table "
        f"rows x {SECONDS_PER_DRAW:g} s",
    )


def table_rows(binnings: int, settings: int, grid: int) -> int:
    """An upper bound of the amplification table's rows of one dimension: every setting
    (target x n_train x generator) and binning at every event count and the asymptote."""
    return settings * binnings * (grid + 1)


def gigabytes(n_bytes: float) -> str:
    """``n_bytes`` as text in GB (10**9 bytes), e.g. '1.5 GB'."""
    return f"{n_bytes / 1e9:,.1f} GB"
