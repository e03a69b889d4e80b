"""Which figures a study makes, and how each is drawn from the study's files.

Kept apart from `plots` so that the workflow can list the figures without importing
matplotlib. Each figure is one rule of the workflow (workflow/rules/plots.smk), one caption in
workflow/report/<name>.rst, and one entry here.

A study may have several truth targets. Every figure but `truth_families` shows one of them,
`shown_target`: the paper's Gaussian shell when the study has it, else its first target. The
paper's figures (fig*) need the Gaussian shell and are left out of a study without it;
`truth_families` compares the targets and is made only when there are several.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ganplify import generators
from ganplify.analysis import fit_uncertainty, learning_curve
from ganplify.analysis import fit_uncertainty as fu
from ganplify.analysis import robustness as rb
from ganplify.analysis.amplification import read_amplification
from ganplify.metrics.quantiles import Binning, CellCounter, edges
from ganplify.results import layout
from ganplify.results.io import ResultsError, read_json, read_table
from ganplify.study import config as cfg
from ganplify.study import data as study_data
from ganplify.study import plan as study
from ganplify.truth import make_target

# The paper's truth family.
PAPER_TARGET = "gaussian_shell"


def shown_target(config: Mapping) -> str:
    """The target every figure but `truth_families` shows."""
    names = cfg.targets(config)
    return PAPER_TARGET if PAPER_TARGET in names else names[0]


def _paper(applies: Callable[[Mapping], bool]) -> Callable[[Mapping], bool]:
    """A paper figure applies only to a study of the paper's target."""
    return lambda config: PAPER_TARGET in cfg.targets(config) and applies(config)


def _several_targets(config: Mapping) -> bool:
    return len(cfg.targets(config)) > 1


def _dims_with(config: Mapping, predicate: Callable[[dict], bool]) -> list[int]:
    return [int(d) for d in config["dims"] if predicate(cfg.axes(config, int(d)))]


def _has_dim(dim: int) -> Callable[[Mapping], bool]:
    return lambda config: str(dim) in config["dims"]


def _has_generator(predicate: Callable[[str], bool]) -> Callable[[Mapping], bool]:
    return lambda config: bool(
        _dims_with(config, lambda ax: any(predicate(g) for g in ax["generators"]))
    )


def _applies_fit_uncertainty(config: Mapping) -> bool:

    return fit_uncertainty.applies(config)


@dataclass(frozen=True)
class Figure:
    """A figure: when it applies to a config, how to draw it (its caption, saying what it
    shows, is workflow/report/<name>.rst), and the tables (tables/<name>.csv) it is drawn
    from, the inputs of its rule. ``draw`` gets the amplification table of `shown_target`
    only, or of every target when ``all_targets``."""

    applies: Callable[[Mapping], bool]
    draw: Callable[[Path, Mapping, object, Path], list[Path]]
    tables: tuple[str, ...] = ("amplification",)
    all_targets: bool = False


def _first(config: Mapping, dim: int, axis: str) -> int:
    return min(cfg.axes(config, dim)[axis])


# The paper's training sizes; a figure of one setting shows this one when the study has it.
PAPER_N_TRAIN = {1: 100, 2: 100, 5: 500}


def _n_train(config: Mapping, dim: int) -> int:
    sizes = cfg.axes(config, dim)["n_train"]
    return PAPER_N_TRAIN[dim] if PAPER_N_TRAIN.get(dim) in sizes else min(sizes)


def _first_seed(config: Mapping, dim: int) -> int:
    return cfg.axes(config, dim)["seeds"]["first"]


def _setting(config: Mapping, dim: int, n_train: int, generator: str):

    key = (shown_target(config), dim, n_train, generator)
    for s in study.settings(config):
        if (s.target, s.dim, s.n_train, s.generator) == key:
            return s
    return None


def _done(results: Path, setting, seed: int) -> bool:
    path = results / setting.replica_dir(seed) / layout.STATUS
    return path.is_file() and read_json(path).get("status") == "done"


def _model_sample(results: Path, config: Mapping, dim: int, n_train: int, seed: int, n: int):
    """(name, events) of the first sampling model of a setting with a finished replica."""

    # the paper's own model first, then the other sampling models by name
    order = sorted(generators.REGISTRY, key=lambda n: (not generators.REGISTRY[n].paper_model, n))
    for name in order:
        gen = generators.REGISTRY[name]
        if gen.exact or gen.truth_sample:
            continue
        setting = _setting(config, dim, n_train, name)
        if setting is None or not _done(results, setting, seed):
            continue
        draw = gen.load_sampler(setting, seed, results / setting.replica_dir(seed))
        return name, draw(n, study_data.evaluation_rng(seed, setting))
    return None


def _fig1(results: Path, config: Mapping, table, stem: Path) -> list[Path]:
    from ganplify.figures import paper, style

    n_train = _n_train(config, 1)
    seed = _first_seed(config, 1)
    fit_values = None
    fit = _setting(config, 1, n_train, style.first_with("fit_parameters"))
    if fit is not None and _done(results, fit, seed):
        fit_values = read_json(results / fit.replica_dir(seed) / layout.FIT_INFO)["values"]
    model = _model_sample(results, config, 1, n_train, seed, 100_000)
    train = study_data.training_set(make_target(shown_target(config), 1), n_train, seed)
    return paper.truth_figure(
        stem,
        train=train,
        fit_values=fit_values,
        generated=None if model is None else model[1],
        generated_label=None if model is None else style.generator_label(model[0], 1),
        generated_color=None if model is None else style.generator_color(model[0]),
        n_quantiles=10,
        title=f"camel back, replica seed {seed}",
    )


def _mse(dim: int, title: str, panels: Callable[[Mapping], list[tuple[str, int]]]):
    def draw(results: Path, config: Mapping, table, stem: Path) -> list[Path]:
        from ganplify.figures import paper

        n_train = _n_train(config, dim)
        return paper.mse_figure(
            table,
            stem,
            dim=dim,
            n_train=n_train,
            panels=panels(config),
            title=f"{title}, $n_{{train}}$ = {n_train}",
        )

    return draw


def _projected_and_joint(dim: int, joint: Callable[[list[int]], list[int]]):
    def panels(config: Mapping) -> list[tuple[str, int]]:
        ax = cfg.axes(config, dim)
        names = ["r", *(f"phi{k}" for k in range(1, dim))]
        out = [(n, min(ax["quantiles"])) for n in names] if ax["quantiles"] else []
        return out + [("joint", q) for q in joint(sorted(ax["joint"]))]

    return panels


def _fig5(results: Path, config: Mapping, table, stem: Path) -> list[Path]:
    from ganplify.figures import paper, style

    target = make_target(shown_target(config), 2)
    q = 7 if 7 in cfg.axes(config, 2)["joint"] else _first(config, 2, "joint")
    n_train = _n_train(config, 2)
    seed = _first_seed(config, 2)
    counter = CellCounter(target, [Binning("joint", q, 2)])
    train = study_data.training_set(target, n_train, seed)
    maps = [(f"training sample ({n_train} events)", counter.counts(train)[0] / n_train)]
    model = _model_sample(results, config, 2, n_train, seed, 100_000)
    if model is not None:
        name, x = model
        maps.append(
            (f"{style.generator_label(name, 2)} ({len(x):,} events)", counter.counts(x)[0] / len(x))
        )
    return paper.polar_cells_figure(
        stem, fractions=maps, r_edges=edges(target, "r", q), phi_edges=edges(target, "phi1", q)
    )


def _fig7(results: Path, config: Mapping, table, stem: Path) -> list[Path]:
    from ganplify.figures import paper

    n_train = _n_train(config, 5)
    fine = [q for q in sorted(cfg.axes(config, 5)["joint"]) if q >= 4]
    return paper.shell_cells_figure(
        table,
        stem,
        dim=5,
        n_train=n_train,
        fine=fine,
        title=f"spherical shell (d=5), $n_{{train}}$ = {n_train}",
    )


def _interval(config: Mapping) -> float:
    """The level of every amplification interval (aggregate.interval), for the legends."""
    return float(config["aggregate"]["interval"])


def _vs_events(results: Path, config: Mapping, table, stem: Path) -> list[Path]:
    from ganplify.figures import amplification as plots

    settings = sorted(
        {
            (d, n)
            for d, n, g in table[["dim", "n_train", "generator"]].itertuples(index=False)
            if generators.is_model(g)
        }
    )
    return plots.amplification_vs_events_figure(
        table, stem, settings=settings, interval=_interval(config)
    )


def _vs_n_train(results: Path, config: Mapping, table, stem: Path) -> list[Path]:
    from ganplify.figures import amplification as plots

    return plots.amplification_vs_n_train_figure(table, stem, interval=_interval(config))


def _losses(results: Path, config: Mapping, table, stem: Path) -> list[Path]:

    from ganplify.figures import paper

    histories = []
    for s in study.settings(config):
        gen = generators.REGISTRY[s.generator]
        if not gen.adversarial or s.target != shown_target(config):
            continue
        frames = []
        for seed in cfg.replica_seeds(config, s.dim, s.generator):
            path = results / s.replica_dir(seed) / layout.LOSSES
            if path.is_file():
                frames.append(pd.read_csv(path).assign(seed=seed))
        if frames:
            histories.append(
                (f"{gen.label_for(s.dim)}, d={s.dim}, n_train={s.n_train}", pd.concat(frames))
            )
    if not histories:
        raise ResultsError("no adversarial loss history (losses.csv) in this study")
    return paper.loss_figure(stem, histories)


def _league(results: Path, config: Mapping, table, stem: Path) -> list[Path]:
    from ganplify.figures import amplification as plots

    return plots.league_figure(table, stem, interval=_interval(config))


def _effective_parameters(results: Path, config: Mapping, table, stem: Path) -> list[Path]:
    from ganplify.figures import amplification as plots

    return plots.effective_parameters_figure(table, stem, interval=_interval(config))


def _robustness(results: Path, config: Mapping, table, stem: Path) -> list[Path]:
    from ganplify.figures import amplification as plots

    agg = config["aggregate"]  # the strict rule at the first required pass probability
    robust = table[rb.column("amplification_robust", agg["pass_probability"][0])]
    return plots.robustness_figure(
        table.assign(amplification_robust=robust), stem, agg["robust_cl"]
    )


def _learning_curve(results: Path, config: Mapping, table, stem: Path) -> list[Path]:
    from ganplify.figures import learning

    curve = read_table(results / layout.table("learning_curve"), learning_curve.COLUMNS)
    curve = curve[curve["target"] == shown_target(config)]
    if curve.empty:
        raise ResultsError(
            "tables/learning_curve.csv has no rows: every neural generator ran with snapshots: []"
        )
    return learning.learning_curve_figure(curve, stem, config["aggregate"]["interval"])


def _chi2_pass(results: Path, config: Mapping, table, stem: Path) -> list[Path]:
    from ganplify.figures import robustness as robustness_plot

    agg = config["aggregate"]
    realised = rb.read_table(results / layout.table("robustness"), rb.REALISED_COLUMNS)
    return robustness_plot.pass_fraction_figure(
        realised[realised["target"] == shown_target(config)],
        stem,
        cl=agg["robust_cl"],
        pass_probabilities=agg["pass_probability"],
    )


def _fit_uncertainty(results: Path, config: Mapping, table, stem: Path) -> list[Path]:
    from ganplify.figures import families

    uncertainty, parameters = (
        fu.read_table(results / layout.table(name), columns)
        for name, columns in zip(
            fu.TABLES, (fu.UNCERTAINTY_COLUMNS, fu.PARAMETER_COLUMNS), strict=True
        )
    )
    shown = shown_target(config)  # like the table it gets, one target
    return families.fit_uncertainty_figure(
        uncertainty[uncertainty["target"] == shown],
        parameters[parameters["target"] == shown],
        table,
        stem,
    )


def _truth_families(results: Path, config: Mapping, table, stem: Path) -> list[Path]:
    from ganplify.figures import families

    return families.truth_families_figure(
        table, stem, targets=cfg.targets(config), interval=_interval(config)
    )


FIGURES: dict[str, Figure] = {
    "fig1_camel_back": Figure(_paper(_has_dim(1)), _fig1),
    "fig2_camel_back_mse": Figure(
        _paper(_has_dim(1)),
        _mse(1, "camel back", lambda c: [("x", q) for q in sorted(cfg.axes(c, 1)["quantiles"])]),
    ),
    "fig4_ring_mse": Figure(_paper(_has_dim(2)), _mse(2, "ring", _projected_and_joint(2, sorted))),
    "fig5_ring_cells": Figure(
        _paper(lambda c: _has_dim(2)(c) and bool(cfg.axes(c, 2)["joint"])), _fig5
    ),
    "fig6_shell_mse": Figure(
        _paper(_has_dim(5)),
        _mse(5, "spherical shell", _projected_and_joint(5, lambda qs: [3] if 3 in qs else qs[:1])),
    ),
    "fig7_shell_cells": Figure(
        _paper(lambda c: _has_dim(5)(c) and any(q >= 4 for q in cfg.axes(c, 5)["joint"])), _fig7
    ),
    "amplification_vs_n_generated": Figure(_has_generator(generators.is_model), _vs_events),
    "amplification_vs_n_train": Figure(_has_generator(generators.is_model), _vs_n_train),
    "gan_losses": Figure(_has_generator(lambda g: generators.REGISTRY[g].adversarial), _losses),
    "league": Figure(_has_generator(generators.is_model), _league),
    "effective_parameters": Figure(_has_generator(generators.is_model), _effective_parameters),
    "robustness": Figure(_has_generator(generators.is_model), _robustness),
    "chi2_pass": Figure(
        _has_generator(generators.is_model), _chi2_pass, ("amplification", "robustness")
    ),
    "learning_curve": Figure(
        _has_generator(lambda g: generators.REGISTRY[g].neural),
        _learning_curve,
        ("learning_curve",),
    ),
    "fit_uncertainty": Figure(
        _applies_fit_uncertainty,
        _fit_uncertainty,
        ("amplification", "fit_uncertainty", "fit_parameters"),
    ),
    "truth_families": Figure(
        lambda c: _several_targets(c) and _has_generator(generators.is_model)(c),
        _truth_families,
        all_targets=True,
    ),
}


def planned(config: Mapping) -> list[str]:
    """Names of the figures this config produces."""
    return [name for name, fig in FIGURES.items() if fig.applies(config)]


def draw(name: str, results: Path, config: Mapping, stem: Path) -> list[Path]:
    """Draw figure ``name`` of the study in ``results`` to <stem>.png/.pdf."""

    if name not in FIGURES:
        raise ResultsError(f"unknown figure {name!r}; allowed: {', '.join(FIGURES)}")
    if name not in planned(config):
        raise ResultsError(f"figure {name!r} does not apply to study {config['study']!r}")
    figure = FIGURES[name]
    table = read_amplification(results / layout.table("amplification"))
    if not figure.all_targets:
        table = table[table["target"] == shown_target(config)]
    return figure.draw(results, config, table, stem)
