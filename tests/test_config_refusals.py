"""Every bad config is refused up front with one message naming the key (issue 14, item 7).

A table of mutations of a valid config, one class of problem at a time: integral types,
non-finite numbers, anchored names, memory and time caps, settings a dimension would ignore,
constraints between keys, and the config's shape. Then the strict YAML reader (duplicate keys,
alias bombs) and the device check.
"""

from __future__ import annotations

import copy
import re
import sys

import pytest

from ganplify.study import budget, yaml_safe
from ganplify.study import config as cfg
from tests.test_config import BASE

# Every generator's block, so that each option can be mutated.
FULL = {
    **copy.deepcopy(BASE),
    "flow": {"replicas": 2},
    "flow_matching": {"replicas": 2},
    "kde": {},
    "fit": {},
}
FULL["dims"][2]["seeds"] = {"first": 0, "count": 100}


def add_generator(c: dict, name: str) -> None:
    c["defaults"]["generators"] = [*c["defaults"]["generators"], name]


def at(path: tuple, value):
    """A change setting ``value`` at ``path`` (mappings on the way are created)."""

    def change(c: dict) -> None:
        node = c
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value

    return change


def validate_changed(change) -> str:
    """The message of the ConfigError that the changed config raises."""
    c = copy.deepcopy(FULL)
    change(c)
    with pytest.raises(cfg.ConfigError) as info:
        cfg.validate(c)
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message, message
    return message


def test_the_base_of_the_table_is_valid():
    cfg.validate(FULL)


# --------------------------------------------------------------------- integral types are strict

INTEGER_KEYS = [
    ("seeds", "first"),
    ("seeds", "count"),
    ("replicas_per_job",),
    ("evaluation", "chunk_size"),
    ("aggregate", "bootstrap"),
    ("aggregate", "seed"),
    ("gan", "epochs"),
    ("gan", "batch_size"),
    ("gan", "lr_decay_every"),
    ("gan", "noise_dim"),
    ("gan", "hidden"),
    ("gan", "layers"),
    ("gan", "embedding"),
    ("gan", "checkpoint_every"),
    ("gan", "replicas"),
    ("flow", "epochs"),
    ("flow", "patience"),
    ("flow", "hidden"),
    ("flow", "layers"),
    ("flow", "transforms"),
    ("flow", "bins"),
    ("flow_matching", "ode_steps"),
    ("resources", "train", "gpus"),
    ("resources", "train", "cpus"),
    ("resources", "train", "mem_mb"),
    ("resources", "train", "min_minutes"),
    ("resources", "train", "signal_seconds"),
    ("resources", "train", "max_minutes"),
    ("resources", "evaluate", "minutes"),
    ("resources", "baseline", "mem_mb"),
    ("dims", 5, "gan", "epochs"),
    ("dims", 2, "seeds", "count"),
]
# an integer written as a float, and a bool (Python's True == 1)
INTEGRAL = [(p, v) for p in INTEGER_KEYS for v in (2.0, True)]
INTEGER_LISTS = [
    ("defaults", "n_train"),
    ("defaults", "quantiles"),
    ("dims", 2, "joint"),
    ("defaults", "n_generated"),
    ("dims", 5, "sample_sizes"),
]
INTEGRAL += [(p, [20.0]) for p in INTEGER_LISTS] + [(p, [False]) for p in INTEGER_LISTS]


def _key(path: tuple) -> str:
    return ".".join(map(str, path))


@pytest.mark.parametrize(("path", "value"), INTEGRAL, ids=[f"{_key(p)}={v!r}" for p, v in INTEGRAL])
def test_integers_are_strict(path, value):
    message = validate_changed(at(path, value))
    key = _key(path) + ("[0]" if isinstance(value, list) else "")
    assert message.startswith(f"{key} = "), message
    assert re.search(r"\(a (float|bool), not an integer\) is invalid; allowed: ", message)


# ------------------------------------------------------------ no NaN or infinity anywhere

NUMBER_KEYS = [
    ("aggregate", "interval"),
    ("aggregate", "collapse_spread"),
    ("aggregate", "saturation"),
    ("aggregate", "robust_cl"),
    ("gan", "lr"),
    ("gan", "lr_decay"),
    ("gan", "gamma"),
    ("gan", "data_noise"),
    ("gan", "dropout"),
    ("flow", "lr"),
    ("flow", "holdout"),
    ("flow", "bound"),
    ("flow_matching", "lr"),
    ("kde", "bandwidth"),
    ("resources", "train", "seconds_per_replica_step"),
    ("dims", 1, "flow", "lr"),
    # where an integer is expected, and where nothing is (an unknown key)
    ("seeds", "count"),
    ("aggregate", "bootstrap"),
    ("mystery",),
]
NON_FINITE = [(p, v) for p in NUMBER_KEYS for v in (float("nan"), float("inf"))]
NON_FINITE += [
    (("gan", "betas"), [0.5, float("-inf")]),
    (("aggregate", "pass_probability"), [float("nan")]),
]


@pytest.mark.parametrize(
    ("path", "value"), NON_FINITE, ids=[f"{_key(p)}={v!r}" for p, v in NON_FINITE]
)
def test_no_nan_or_infinity_anywhere(path, value):
    message = validate_changed(at(path, value))
    key = _key(path) + ("[1]" if path[-1] == "betas" else "[0]" if isinstance(value, list) else "")
    assert message.startswith(f"{key} = "), message
    assert "NaN and infinity are not allowed" in message


# ------------------------------------------------------------------ names are anchored patterns

NAMES = [
    (at(("study",), "quick\n"), "study"),
    (at(("study",), "quick\nrm -rf x"), "study"),
    (at(("device",), "cpu\n"), "device"),
    (at(("device",), "cuda:0\n"), "device"),
    (at(("slurm", "gpu_model"), "a100\n"), "slurm.gpu_model"),
    (at(("slurm", "partition"), "gpu\n"), "slurm.partition"),
    (at(("slurm", "partition"), "gpu; rm -rf x"), "slurm.partition"),
    (at(("slurm", "gpu_partition"), "a b"), "slurm.gpu_partition"),
    (at(("slurm", "account"), "me\n"), "slurm.account"),
    (lambda c: c["dims"].update({"3\n": {}}), "dims"),
    (at(("target",), "gaussian_shell\n"), "target"),
]


@pytest.mark.parametrize(
    ("change", "key"), NAMES, ids=[f"{k}-{i}" for i, (_, k) in enumerate(NAMES)]
)
def test_names_are_anchored(change, key):
    message = validate_changed(change)
    assert message.startswith(key), message
    assert re.search(r"is invalid; allowed|is not allowed|unknown target", message), message


def test_patterns_are_anchored_like_json_schema():
    assert cfg._anchored("^a$").search("a") and not cfg._anchored("^a$").search("a\n")
    assert cfg._anchored(r"^a\$$").search("a$")  # an escaped dollar stays a dollar


# ----------------------------------------------- caps from a memory and time estimate

CAPS = [
    (
        at(("aggregate", "bootstrap"), 10**9),
        "aggregate.bootstrap",
        r"1,600\.0 GB \(1,000,000,000 resamples x 100 replicas x 16 bytes\), more than 2\.0 GB",
    ),
    (
        lambda c: (
            c.update(aggregate={"bootstrap": 10**6}),
            c["defaults"].update(n_generated=list(range(100, 20100, 100))),
        ),
        "aggregate.bootstrap",
        r"minutes \(1,000,000 resamples x 100 replicas x up to [\d,]+ table rows x 1e-08 s\), "
        r"more than 60 minutes; use at most",
    ),
    (
        at(("gan", "hidden"), 100_000),
        "gan",
        r"a train job of gan in d=1 .* parameters x 4 bytes x 4 \(weights, gradients, two Adam "
        r"moments\)\), more than resources.train.mem_mb = 16000 MB",
    ),
    (at(("gan", "noise_dim"), 10**9), "gan", r"more than resources.train.mem_mb"),
    (at(("gan", "layers"), 100_000), "gan", r"more than resources.train.mem_mb"),
    (at(("dims", 5, "gan", "hidden"), 100_000), "dims.5.gan", r"a train job of gan in d=5"),
    (
        lambda c: (add_generator(c, "flow"), c["flow"].update(hidden=200_000)),
        "flow",
        r"a train job of flow in d=2 .* more than resources.train.mem_mb",
    ),  # no layers in d = 1
    (
        lambda c: (add_generator(c, "flow"), c["flow"].update(bins=10**8, transforms=50)),
        "flow",
        r"2 replicas x [\d,]+ parameters x 4 bytes",
    ),
    (
        lambda c: (
            add_generator(c, "flow_matching"),
            c["flow_matching"].update(hidden=100_000, layers=10),
        ),
        "flow_matching",
        r"more than resources.train.mem_mb",
    ),
    (
        lambda c: c["dims"][5].update(n_train=[10**7]),
        "dims.5.n_train",
        r"a baseline job of sample in d=5 .*\(100 replicas x 10,000,000 points x 5 coordinates x "
        r"8 bytes",
    ),
    (
        lambda c: (
            c.update(evaluation={"chunk_size": 10**9}),
            c["defaults"].update(n_generated=[10**9]),
        ),
        "evaluation.chunk_size",
        r"1,000,000,000 events x 1 coordinates x 8 bytes x 4 copies\), more than "
        r"resources.baseline.mem_mb = 4000 MB",
    ),
    (
        lambda c: (
            c.update(resources={"baseline": {"mem_mb": 100}}),
            c["dims"][1].update(n_train=[200_000]),
        ),
        "dims.1.n_train",
        r"more than resources.baseline.mem_mb = 100 MB",
    ),
    (
        lambda c: c["dims"][1].update(generators=["kde"], n_train=[20_000]),
        "kde.bandwidth",
        r"kde.bandwidth = cv with dims.1.n_train = 20000: .* 16 GB \(at most 4 GB: n_train <= "
        r"10,000\); use scott",
    ),
]


@pytest.mark.parametrize(
    ("change", "key", "pattern"), CAPS, ids=[f"{k}-{i}" for i, (_, k, _) in enumerate(CAPS)]
)
def test_caps_state_their_estimate(change, key, pattern):
    message = validate_changed(change)
    assert message.startswith(key), message
    assert re.search(pattern, message), message


def test_the_estimates():
    assert budget.training_state_bytes(1000, 10).amount == 1000 * 10 * 4 * 4
    assert budget.training_sets_bytes(10, 100, 2).amount == 10 * 100 * 2 * 8
    assert budget.bootstrap_bytes(1000, 100).amount == 1000 * 100 * 16
    assert budget.bootstrap_seconds(1000, 100, 10).amount == pytest.approx(1e-2)
    assert budget.table_rows(binnings=3, settings=2, grid=4) == 30
    assert budget.gigabytes(1.5e9) == "1.5 GB"


def test_parameter_counts_are_those_of_the_networks():
    from ganplify.generators import REGISTRY
    from ganplify.generators.neural.flows import networks as flows
    from ganplify.generators.neural.gan import networks as gan

    def count(module) -> int:
        return sum(p.numel() for p in module.parameters())

    small = {"hidden": 7, "layers": 3, "bins": 5, "transforms": 2}
    for dim in (1, 2, 5):
        arch = gan.Architecture(dim=dim)
        assert REGISTRY["gan"].parameter_count({}, dim) == (
            count(gan.EnsembleGenerator(arch, 1)) + count(gan.EnsembleDiscriminator(arch, 1))
        )
        for options in ({}, small):
            assert REGISTRY["flow"].parameter_count(options, dim) == count(
                flows.EnsembleFlow(dim, flows.FlowConfig(**options), 1)
            )
            fm = {k: v for k, v in options.items() if k in ("hidden", "layers")}
            assert REGISTRY["flow_matching"].parameter_count(fm, dim) == count(
                flows.EnsembleVelocity(dim, flows.FlowMatchingConfig(**fm), 1)
            )
    assert REGISTRY["gan"].parameter_count({}, 1) == 651_265 + 478_241  # the paper's d = 1
    assert REGISTRY["sample"].parameter_count({}, 1) == 0


# ------------------------------------------------- settings that do not apply to a dimension

IGNORED = [
    (at(("dims", 1, "joint"), [5]), "dims.1.joint", r"joint cells apply to d >= 2 only"),
    (at(("defaults", "joint"), [3]), "defaults.joint", r"set dims.1.joint: \[\]"),
    (
        at(("dims", 5, "generators"), ["sample"]),
        "dims.5.gan",
        r"gan is not among the generators of d=5 \(sample\)",
    ),
    (at(("dims", 1, "flow"), {"epochs": 5}), "dims.1.flow", r"flow is not among the generators"),
    (
        lambda c: c["dims"][1].update(generators=["fit", "gan"], sample_sizes=[100]),
        "dims.1.sample_sizes",
        r"no generator of d=1 samples the truth",
    ),
    (
        lambda c: c["dims"][1].update(generators=["sample", "fit"], n_generated=[100]),
        "dims.1.n_generated",
        r"no generator of d=1 samples a model",
    ),
]


@pytest.mark.parametrize(("change", "key", "pattern"), IGNORED, ids=[k for _, k, _ in IGNORED])
def test_settings_a_dimension_ignores_are_refused(change, key, pattern):
    message = validate_changed(change)
    assert message.startswith(key), message
    assert re.search(pattern, message), message


# ---------------------------------------------------------------- constraints between keys

BETWEEN = [
    (
        at(("defaults", "n_train"), [5]),
        "gan.batch_size",
        r"gan.batch_size = 10 with defaults.n_train = 5: larger than the training set",
    ),
    (at(("dims", 1, "n_train"), [8]), "gan.batch_size", r"with dims.1.n_train = 8"),
    (
        at(("dims", 5, "gan"), {"epochs": 30, "batch_size": 600}),
        "dims.5.gan.batch_size",
        r"dims.5.gan.batch_size = 600 with dims.5.n_train = 500",
    ),
    (at(("gan", "batch_size"), 101), "gan.batch_size", r"use batch_size <= n_train"),
    (
        lambda c: (add_generator(c, "flow"), c["flow"].update(holdout=0.001)),
        "flow.holdout",
        r"flow.holdout = 0.001 with defaults.n_train = 100: the held-out part",
    ),
    (
        at(("resources", "train", "signal_seconds"), 1800),
        "resources.train.signal_seconds",
        r"not shorter than the shortest training time limit, 30 minutes",
    ),
    (
        lambda c: c.update(resources={"train": {"max_minutes": 1, "signal_seconds": 60}}),
        "resources.train.signal_seconds",
        r"1 minutes",
    ),
    (
        at(("aggregate", "pass_probability"), [0.97]),
        "aggregate.pass_probability",
        r"above aggregate.robust_cl",
    ),
    (lambda c: c["dims"].update({"1": {}}), "dims", r"dimension 1 is given twice"),
    (at(("seeds", "first"), 2**60), "seeds.first", r"<= 2\*\*52"),
]


@pytest.mark.parametrize(
    ("change", "key", "pattern"), BETWEEN, ids=[f"{k}-{i}" for i, (_, k, _) in enumerate(BETWEEN)]
)
def test_constraints_between_keys(change, key, pattern):
    message = validate_changed(change)
    assert message.startswith(key), message
    assert re.search(pattern, message), message


# ---------------------------------------------------------------------- the config's shape


def _recursive(c: dict) -> None:
    loop: list = [1]
    loop.append(loop)
    c["defaults"]["n_train"] = loop


def _shared_bomb(c: dict) -> None:
    value: list = [100]
    for _ in range(30):  # 2**30 values once expanded, 31 lists in memory
        value = [value, value]
    c["defaults"]["n_train"] = value


def _deep(c: dict) -> None:
    value: list = [100]
    for _ in range(100):
        value = [value]
    c["defaults"]["n_train"] = value


SHAPE = [
    (_recursive, "the config", r"a value contains itself"),
    (_shared_bomb, "the config", r"more than 100,000 values"),
    (_deep, "defaults.n_train[0]", r"nested deeper than 16 levels"),
    (at(("defaults", "n_train"), [2**70]), "defaults.n_train[0]", r"71 bits, beyond the 64-bit"),
    (at(("gan", "lr"), 10**400), "gan.lr", r"beyond the 64-bit"),
    (at(("dims",), [1, 2]), "dims", r"is invalid"),
]


@pytest.mark.parametrize(
    ("change", "key", "pattern"), SHAPE, ids=[f"{k}-{i}" for i, (_, k, _) in enumerate(SHAPE)]
)
def test_the_shape_is_bounded(change, key, pattern):
    message = validate_changed(change)
    assert message.startswith(key), message
    assert re.search(pattern, message), message


def test_the_table_has_over_a_hundred_bad_configs():
    from tests.test_config import BAD

    tables = [INTEGRAL, NON_FINITE, NAMES, CAPS, IGNORED, BETWEEN, SHAPE, BAD]
    assert sum(map(len, tables)) >= 100


# ------------------------------------------------------------ the strict YAML file reader

VALID = "study: s\ntarget: gaussian_shell\nseeds: {first: 0, count: 2}\ndims: {1: {}}\n"


def test_duplicate_keys_are_refused(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text(VALID + "seeds: {first: 5, count: 3}\n")
    with pytest.raises(
        cfg.ConfigError,
        match=r"line 5: duplicate key 'seeds' \(first at "
        r"line 3\)",
    ):
        cfg.load(path)
    path.write_text(VALID.replace("{1: {}}", "{1: {n_train: [20], n_train: [30]}}"))
    with pytest.raises(cfg.ConfigError, match="duplicate key 'n_train'"):
        cfg.load(path)


def test_merge_keys_may_override(tmp_path):
    path = tmp_path / "merge.yaml"
    path.write_text(VALID + "gan: &g {epochs: 3, hidden: 8}\nflow: {<<: *g, epochs: 5}\n")
    config = cfg.load(path)
    assert config["flow"]["epochs"] == 5 and config["flow"]["hidden"] == 8


def test_alias_bombs_are_refused(tmp_path):
    lines = ["a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    path = tmp_path / "bomb.yaml"
    path.write_text(VALID + "\n".join(lines) + "\n")
    with pytest.raises(
        cfg.ConfigError,
        match=r"bomb.yaml.*aliases expand to more than "
        r"100,000 values",
    ):
        cfg.load(path)
    many = [f"k{i}: *x" for i in range(yaml_safe.MAX_ALIASES + 1)]
    path.write_text("x: &x 1\n" + "\n".join(many) + "\n")
    with pytest.raises(cfg.ConfigError, match=r"more than 100 aliases"):
        cfg.load(path)
    path.write_text("a: &a [*a]\n")
    with pytest.raises(cfg.ConfigError, match=r"recursive alias"):
        cfg.load(path)


def test_unreadable_yaml_is_one_message(tmp_path):
    path = tmp_path / "bad.yaml"
    for text, words in [
        ("[" * 5000 + "]" * 5000, "nested too deeply"),
        ("a: " + "9" * 5000 + "\n", "cannot be read"),
        ("a: !!python/object:os.system x\n", "not valid YAML"),
        ("a: [1\n", "not valid YAML"),
    ]:
        path.write_text(text)
        with pytest.raises(cfg.ConfigError, match=words) as info:
            cfg.load(path)
        assert "\n" not in str(info.value)
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(cfg.ConfigError, match="cannot be read"):
        cfg.load(path)


# ---------------------------------------------------------------------------- the device


def test_device_availability(monkeypatch):
    import torch

    config = cfg.validate(FULL)
    cfg.check_device({**config, "device": "cpu"})
    cfg.check_device({**config, "device": "auto"})
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(cfg.ConfigError, match=r"device = 'cuda': CUDA is not available"):
        cfg.check_device({**config, "device": "cuda"})
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    cfg.check_device({**config, "device": "cuda:1"})
    with pytest.raises(
        cfg.ConfigError,
        match=r"device = 'cuda:9': this machine has 2 CUDA "
        r"device\(s\), cuda:0 .. cuda:1",
    ):
        cfg.check_device({**config, "device": "cuda:9"})


def test_device_check_imports_torch_only_for_cuda():
    import subprocess

    code = (
        "import sys; from ganplify.study import config as c; "
        "c.check_device({'device': 'cpu'}); c.check_device({'device': 'auto'}); "
        "assert 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
