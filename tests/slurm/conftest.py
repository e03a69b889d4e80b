"""The ``slurm_cluster`` fixture: a real single-node SLURM cluster for the session.

Off unless GANPLIFY_SLURM_TESTS=1 (it needs root, apt and a few seconds); when that is set, a
cluster that does not come up FAILS the tests that use it, it never skips them.
GANPLIFY_SLURM_KEEP=1 leaves the cluster running at the end (to inspect it or reuse it).
"""

from __future__ import annotations

import os

import pytest

from tests.slurm import cluster

# Why the cluster did not start, kept so that the session tries only once (pytest would retry
# a failed session fixture for every test, each time up to cluster.sh's timeouts).
_start_error: list[str] = []


def _start() -> tuple[bool, str | None]:
    """Start the cluster unless it runs; return (started here, error message or None)."""
    started_here = False
    try:
        if not cluster.is_running():
            started_here = True
            cluster.start()
        return started_here, None
    except Exception as exc:
        error = str(exc)
    # End whatever part of the cluster did start (cluster.sh keeps the logs in its directory).
    try:
        cluster.stop()
    except Exception as exc:
        error += f"\n(and stopping what had started failed too: {exc})"
    return started_here, error


@pytest.fixture(scope="session")
def slurm_cluster():
    """Start the cluster (unless it already runs), yield the environment for SLURM clients
    (os.environ plus SLURM_CONF), and stop it at the end if this session started it."""
    if os.environ.get("GANPLIFY_SLURM_TESTS") != "1":
        pytest.skip(
            "SLURM tests are off: set GANPLIFY_SLURM_TESTS=1 to run them against a local "
            "single-node cluster started by tests/slurm/cluster.sh (needs root and apt)"
        )
    if _start_error:
        pytest.fail(_start_error[0], pytrace=False)
    started_here, error = _start()
    env = None
    if error is None:
        try:
            env = cluster.client_env()
        except Exception as exc:
            error = str(exc)
    if error is not None:
        _start_error.append(f"the local SLURM cluster did not start: {error}")
        # Not a skip: the SLURM tests were asked for.
        pytest.fail(_start_error[0], pytrace=False)
    try:
        yield env
    finally:
        if started_here and os.environ.get("GANPLIFY_SLURM_KEEP") != "1":
            cluster.stop()
