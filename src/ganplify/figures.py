"""Which figures a study makes, and how each is drawn from the study's files.

Kept apart from `plots` so that the workflow can list the figures without importing
matplotlib. Each figure is one rule of the workflow and one entry here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ganplify import config as cfg
from ganplify.results import ResultsError, read_json


@dataclass(frozen=True)
class Figure:
    """A figure: when it applies to a config, and its caption for the report."""

    applies: Callable[[Mapping], bool]
    caption: str


def _has_dim(dim: int) -> Callable[[Mapping], bool]:
    return lambda config: str(dim) in config["dims"]


FIGURES: dict[str, Figure] = {
    "fig1_camel_back": Figure(
        _has_dim(1),
        "Paper Fig. 1: the camel back (d=1) truth, the training sample of the first replica "
        "seed, its 5-parameter fit and the 10 quantile edges.",
    ),
    "fig2_camel_back_mse": Figure(
        _has_dim(1),
        "Paper Fig. 2: quantile MSE vs number of events for the camel back (d=1), one panel "
        "per quantile count. Bands are the mean +- standard deviation over replicas; the "
        "dashed line is the expectation for truth-sampled events.",
    ),
}


def planned(config: Mapping) -> list[str]:
    """Names of the figures this config produces."""
    return [name for name, fig in FIGURES.items() if fig.applies(config)]


def _first_n_train(config: Mapping, dim: int) -> int:
    return min(cfg.axes(config, dim)["n_train"])


def draw(name: str, results: Path, config: Mapping, stem: Path) -> list[Path]:
    """Draw figure ``name`` of the study in ``results`` to <stem>.png/.pdf."""
    from ganplify import plots, study
    from ganplify.amplification import read_amplification

    if name not in planned(config):
        raise ResultsError(f"figure {name!r} does not apply to study {config['study']!r}")
    table = read_amplification(results / "tables" / "amplification.csv")
    if name == "fig1_camel_back":
        n_train = _first_n_train(config, 1)
        seed = cfg.replica_seeds(config, 1, "sample")[0]
        target_name = config["target"]
        fit_values = None
        for s in study.settings(config):
            if s.dim == 1 and s.n_train == n_train and s.generator == "fit":
                status = read_json(results / s.replica_dir(seed) / "status.json")
                if status["status"] == "done":
                    fit_values = read_json(results / s.replica_dir(seed) / "fit.json")["values"]
        from ganplify.targets import make_target

        train = study.training_set(make_target(target_name, 1), n_train, seed)
        return plots.truth_figure(
            stem, train=train, fit_values=fit_values, n_quantiles=10,
            title=f"camel back, replica seed {seed}",
        )
    if name == "fig2_camel_back_mse":
        n_train = _first_n_train(config, 1)
        qs = sorted(cfg.axes(config, 1)["quantiles"])
        return plots.mse_figure(
            table, stem, dim=1, n_train=n_train, panels=[("x", q) for q in qs],
            title=f"camel back, $n_{{train}}$ = {n_train}",
        )
    raise ResultsError(f"no drawing for figure {name!r}")  # pragma: no cover
