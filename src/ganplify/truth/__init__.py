"""The truth: the exact distributions that training sets are drawn from, by name.

A target knows its exact quantiles, so cell probabilities are known, not estimated. The
registry maps a config's ``target`` name to its class; a truth backed by a file can join it.
"""

from __future__ import annotations

from ganplify.truth.shells import GaussianShell, Shell, StudentShell

TARGETS: dict[str, type[Shell]] = {cls.name: cls for cls in (GaussianShell, StudentShell)}


def make_target(name: str, dim: int) -> Shell:
    """Build a truth target by name (see `TARGETS`)."""
    try:
        cls = TARGETS[name]
    except KeyError:
        raise ValueError(f"unknown target {name!r}; allowed: {sorted(TARGETS)}") from None
    return cls(dim=dim)
