"""Config validation: defaults, resolved axes, and one clear message per bad input."""

import copy
from pathlib import Path

import pytest
import yaml

from ganplify.study import config as cfg
from ganplify.study import plan as study

REPO = Path(__file__).resolve().parents[1]
# A fixed config for these tests (the shipped defaults may change without breaking them).
BASE = yaml.safe_load("""
study: quick
target: gaussian_shell
seeds: {first: 0, count: 100}
replicas_per_job: 100
defaults:
  n_train: [100]
  quantiles: [10]
  joint: []
  generators: [sample, gan]
  n_generated: [100, 1000, 10000]
dims:
  1: {quantiles: [10, 20, 50], generators: [sample, fit, gan]}
  2: {joint: [7]}
  5: {n_train: [500], joint: [3], sample_sizes: [500, 1000, 2000, 5000], gan: {epochs: 30}}
gan: {replicas: 8, epochs: 150, lr: 5.0e-4}
""")


def with_change(change):
    c = copy.deepcopy(BASE)
    change(c)
    return c


@pytest.mark.parametrize("name", ["config.yaml", "paper.yaml", "gan_pool.yaml"])
def test_shipped_configs_are_valid_and_stable(name):
    c = cfg.load(REPO / "config" / name)
    assert set(c["dims"]) == {"1", "2", "5"}
    assert cfg.axes(c, 5)["n_train"] == [500] and 100 in cfg.axes(c, 1)["n_train"]
    # the validated config validates again unchanged (it is what the results folder keeps)
    assert cfg.validate(c) == c


def test_paper_config_is_the_papers_protocol():
    c = cfg.load(REPO / "config" / "paper.yaml")
    gan = c["gan"]
    assert (gan["epochs"], gan["batch_size"], gan["lr"], gan["betas"]) == (
        10000,
        10,
        5e-5,
        [0.5, 0.9],
    )
    assert (gan["lr_decay"], gan["lr_decay_every"], gan["gamma"], gan["data_noise"]) == (
        0.9,
        1000,
        0.01,
        0.1,
    )
    assert c["seeds"]["count"] == 100 and "replicas" not in gan
    assert cfg.axes(c, 1)["quantiles"] == [10, 20, 50] and cfg.axes(c, 2)["joint"] == [7]
    assert {3, 4, 6} <= set(cfg.axes(c, 5)["joint"])
    assert max(cfg.axes(c, 1)["n_generated"]) >= 10**6
    assert max(cfg.axes(c, 5)["n_generated"]) >= 10**7


def test_heavy_tails_config_compares_two_truth_families_on_cpu():
    c = cfg.load(REPO / "config" / "heavy_tails.yaml")
    assert cfg.targets(c) == ["gaussian_shell", "student_shell"]
    assert set(c["dims"]) == {"1", "2"} and c["seeds"]["count"] == 100
    assert cfg.axes(c, 1)["n_train"] == [100] and cfg.axes(c, 1)["quantiles"] == [10, 20, 50]
    assert cfg.axes(c, 2)["joint"] == [7]
    for dim in (1, 2):
        assert cfg.axes(c, dim)["generators"] == ["sample", "fit", "bootstrap", "kde"]
    assert cfg.validate(c) == c
    # its Gaussian-shell settings are the quick default's: same hashes, same folders
    quick = {s.relpath for s in study.settings(cfg.load(REPO / "config" / "config.yaml"))}
    gauss = {s.relpath for s in study.settings(c) if s.target == "gaussian_shell"}
    assert gauss and gauss <= quick


def test_base_config_resolves_axes():
    c = cfg.validate(BASE)
    assert c["evaluation"]["chunk_size"] > 0
    ax = cfg.axes(c, 5)
    assert ax["n_train"] == [500] and ax["joint"] == [3]
    assert cfg.axes(c, 2)["n_train"] == [100]


def test_minimal_config_takes_builtin_defaults():
    c = cfg.validate(
        {
            "study": "s",
            "target": "gaussian_shell",
            "seeds": {"first": 0, "count": 2},
            "dims": {1: None},
        }
    )
    assert c["defaults"] == cfg.AXIS_DEFAULTS
    assert c["replicas_per_job"] == 100 and c["device"] == "auto"


BAD = [
    # (description, change, words the message must contain)
    (
        "unknown target",
        lambda c: c.update(target="camel"),
        ["target", "'camel'", "gaussian_shell, student_shell"],
    ),
    (
        "unknown target in a list",
        lambda c: c.update(target=["gaussian_shell", "studnt_shell"]),
        ["target[1]", "'studnt_shell'", "did you mean 'student_shell'", "gaussian_shell"],
    ),
    ("empty target list", lambda c: c.update(target=[]), ["target", "student_shell"]),
    (
        "repeated target",
        lambda c: c.update(target=["student_shell", "student_shell"]),
        ["target", "distinct"],
    ),
    ("target not a name", lambda c: c.update(target=3), ["target = 3", "gaussian_shell"]),
    ("d < 1", lambda c: c["dims"].update({0: {}}), ["dims", "'0'", "1 .. 99"]),
    ("d not an integer", lambda c: c["dims"].update({"two": {}}), ["dims", "'two'"]),
    ("n_train < 2", lambda c: c["dims"][1].update(n_train=[1]), ["dims.1.n_train", ">= 2"]),
    ("one quantile", lambda c: c["defaults"].update(quantiles=[1]), ["defaults.quantiles", ">= 2"]),
    ("joint q < 2", lambda c: c["dims"][2].update(joint=[1]), ["dims.2.joint", ">= 2"]),
    (
        "too many joint cells",
        lambda c: c["dims"][5].update(joint=[40]),
        ["dims.5.joint", "40^5", "q <= 36"],
    ),
    (
        "zero generated events",
        lambda c: c["defaults"].update(n_generated=[0, 100]),
        ["defaults.n_generated", ">= 2"],
    ),
    (
        "negative sample size",
        lambda c: c["dims"][5].update(sample_sizes=[-5]),
        ["dims.5.sample_sizes", ">= 2"],
    ),
    ("negative seed", lambda c: c["seeds"].update(first=-1), ["seeds.first", ">= 0"]),
    ("zero replicas", lambda c: c["seeds"].update(count=0), ["seeds.count"]),
    ("missing key", lambda c: c.pop("seeds"), ["missing key", "seeds"]),
    ("missing nested key", lambda c: c["seeds"].pop("count"), ["missing key", "seeds.count"]),
    (
        "misspelled key",
        lambda c: c.update(studdy=c.pop("study")),
        ["unknown key", "studdy", "did you mean 'study'"],
    ),
    (
        "misspelled axis",
        lambda c: c["dims"][1].update(quantile=[3]),
        ["unknown key", "'quantile'", "did you mean 'quantiles'", "in dims.1"],
    ),
    ("study escapes results/", lambda c: c.update(study="../elsewhere"), ["study", "'..'"]),
    ("study with a slash", lambda c: c.update(study="a/b"), ["study", "no '/'"]),
    ("absolute study path", lambda c: c.update(study="/tmp/x"), ["study"]),
    (
        "unknown generator",
        lambda c: c["dims"][1].update(generators=["vae"]),
        ["dims.1.generators", "'vae'", "sample"],
    ),
    ("wrong type", lambda c: c["seeds"].update(count="ten"), ["seeds.count", "'ten'"]),
    ("bad device", lambda c: c.update(device="gpu"), ["device", "cuda"]),
    ("bad interval", lambda c: c.update(aggregate={"interval": 1.5}), ["aggregate.interval"]),
    (
        "pass probability above the confidence level",
        lambda c: c.update(aggregate={"pass_probability": [0.5, 0.99]}),
        ["aggregate.pass_probability", "0.99", "robust_cl"],
    ),
    ("dims not a mapping", lambda c: c.update(dims=[1, 2]), ["dims"]),
    ("no binning", lambda c: c["dims"][1].update(quantiles=[]), ["quantiles", "no binning"]),
]


@pytest.mark.parametrize(("what", "change", "words"), BAD, ids=[b[0] for b in BAD])
def test_bad_config_gives_one_clear_message(what, change, words):
    with pytest.raises(cfg.ConfigError) as info:
        cfg.validate(with_change(change))
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    for word in words:
        assert word in message, (what, message)


def test_not_a_mapping_and_bad_files(tmp_path):
    with pytest.raises(cfg.ConfigError, match="mapping"):
        cfg.validate([1, 2])
    with pytest.raises(cfg.ConfigError, match="does not exist"):
        cfg.load(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("study: [unclosed\n")
    with pytest.raises(cfg.ConfigError, match="not valid YAML"):
        cfg.load(bad)


def test_target_is_one_name_or_a_list():
    single = cfg.validate(BASE)
    assert single["target"] == "gaussian_shell"  # kept as written (the results' config.yaml)
    assert cfg.targets(single) == ["gaussian_shell"]
    listed = cfg.validate(with_change(lambda c: c.update(target=["gaussian_shell"])))
    assert listed["target"] == ["gaussian_shell"] and cfg.targets(listed) == ["gaussian_shell"]
    # the same jobs, hashes and paths either way
    assert [ch.spec() for ch in study.plan(listed)] == [ch.spec() for ch in study.plan(single)]


def test_schema_names_every_registered_target():
    from ganplify.truth import TARGETS

    description = cfg.schema()["properties"]["target"]["description"]
    assert all(name in description for name in TARGETS)


def test_plan_expands_over_targets():
    single = study.plan(cfg.validate(BASE))
    both = study.plan(
        cfg.validate(with_change(lambda c: c.update(target=["gaussian_shell", "student_shell"])))
    )
    assert len(both) == 2 * len(single)
    gauss, student = both[: len(single)], both[len(single) :]
    # the first target's jobs are those of the single-target study, hashes and paths included
    assert gauss == single
    assert [c.evaluated_flag for c in gauss] == [c.evaluated_flag for c in single]

    def axes_of(chunks):
        return [
            (
                c.setting.dim,
                c.setting.n_train,
                c.setting.generator,
                c.seeds,
                c.binnings,
                c.n_generated,
                dict(c.setting.options),
            )
            for c in chunks
        ]

    assert axes_of(student) == axes_of(single)
    assert all(c.setting.target == "student_shell" for c in student)
    assert all(c.setting.relpath.startswith("replicas/student_shell-d") for c in student)
    assert not {c.setting.phash for c in student} & {c.setting.phash for c in single}
    rebuilt = study.Chunk.from_spec(student[0].spec())
    assert rebuilt == student[0] and rebuilt.setting.make_target().name == "student_shell"


def test_plan_expands_axes_and_chunks():
    c = cfg.validate(with_change(lambda c: c.update(replicas_per_job=30)))
    chunks = study.plan(c)
    settings = study.settings(c)
    assert [(s.dim, s.generator) for s in settings] == [
        (1, "sample"),
        (1, "fit"),
        (1, "gan"),
        (2, "sample"),
        (2, "gan"),
        (5, "sample"),
        (5, "gan"),
    ]
    # 100 seeds in jobs of 30 for the baselines; the GAN's 8 replicas in one job
    assert len(chunks) == 4 * 4 + 3
    assert [ch.seeds for ch in chunks[:4]] == [
        tuple(range(0, 30)),
        tuple(range(30, 60)),
        tuple(range(60, 90)),
        tuple(range(90, 100)),
    ]
    gan = [ch for ch in chunks if ch.setting.generator == "gan"]
    assert [ch.seeds for ch in gan] == [tuple(range(8))] * 3
    assert [ch.setting.options["epochs"] for ch in gan] == [150, 150, 30]  # d=5 override
    fit = next(ch for ch in chunks if ch.setting.generator == "fit")
    assert fit.n_generated == ()  # exact generator
    sample5 = next(ch for ch in chunks if ch.setting.dim == 5)
    assert sample5.n_generated == (500, 1000, 2000, 5000)
    names = [b.coordinate for b in sample5.binnings]
    assert names == ["r", "phi1", "phi2", "phi3", "phi4", "joint"]


def test_hashes_follow_parameters_only():
    c = cfg.validate(BASE)
    a = {ch.setting.relpath: ch for ch in study.plan(c)}
    more_seeds = cfg.validate(with_change(lambda c: c["seeds"].update(count=200)))
    b = {ch.setting.relpath: ch for ch in study.plan(more_seeds)}
    assert set(a) == set(b)  # seeds do not change training parameters
    other_n = cfg.validate(with_change(lambda c: c["dims"][1].update(n_train=[200])))
    assert not any("d1/n100" in p for p in (ch.setting.relpath for ch in study.plan(other_n)))
    q_changed = cfg.validate(with_change(lambda c: c["dims"][1].update(quantiles=[10, 20])))
    d1 = [ch for ch in study.plan(q_changed) if ch.setting.dim == 1]
    for ch in d1:  # same training folder, new evaluation flag
        old = a[ch.setting.relpath]
        assert ch.setting.phash == old.setting.phash and ch.ehash != old.ehash


def test_chunk_spec_round_trip_and_tamper_check():
    chunk = study.plan(cfg.validate(BASE))[1]
    spec = chunk.spec()
    assert study.Chunk.from_spec(spec) == chunk
    spec["n_train"] = 50
    with pytest.raises(ValueError, match="phash"):
        study.Chunk.from_spec(spec)


def test_seeds_per_dimension_and_replica_caps():
    c = cfg.validate(
        with_change(
            lambda c: (
                c.update(fit={"replicas": 10}),
                c["dims"][5].update(seeds={"first": 50, "count": 20}),
            )
        )
    )
    seeds = {(ch.setting.dim, ch.setting.generator): ch.seeds for ch in study.plan(c)}
    assert seeds[(1, "sample")] == tuple(range(100))
    assert seeds[(1, "fit")] == tuple(range(10))  # the first 10 of the dimension's seeds
    assert seeds[(5, "sample")] == tuple(range(50, 70))
    # the cap is operational: same training folder as without it
    base = {ch.setting.generator: ch.setting.phash for ch in study.plan(cfg.validate(BASE))}
    fit = next(ch for ch in study.plan(c) if ch.setting.generator == "fit")
    assert fit.setting.phash == base["fit"]
    with pytest.raises(cfg.ConfigError, match="did you mean 'replicas'"):
        cfg.validate(with_change(lambda c: c.update(fit={"replica": 3})))


def test_workflow_schema_file_is_the_assembled_schema():
    """workflow/schemas/config.schema.yaml is generated: `ganplify schema` rewrites it."""
    path = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"
    assert path.read_text() == cfg.schema_yaml(), "run `ganplify schema --output " + str(path) + "`"


def test_every_generator_block_comes_from_its_generator():
    from ganplify import generators

    schema = cfg.schema()
    for name, gen in generators.REGISTRY.items():
        block = schema["properties"][name]
        assert set(block["properties"]) == {"replicas", *gen.options_schema}
        assert cfg.validate({**BASE, name: {}})[name] == gen.option_defaults()


def test_option_defaults_are_those_of_the_training_dataclasses():
    """The generators' schema fragments are the one source of defaults; the training code's
    dataclasses must agree with them."""
    import dataclasses

    from ganplify.generators import REGISTRY
    from ganplify.generators.gan import Gan
    from ganplify.generators.neural.flows import training as flows
    from ganplify.generators.neural.gan.config import GanConfig

    pairs = [(Gan.name, GanConfig)] + [(n, m.config_type) for n, m in flows.MODELS.items()]
    for name, config_type in pairs:
        fields = {f.name: f.default for f in dataclasses.fields(config_type)}
        defaults = REGISTRY[name].option_defaults()
        del defaults["snapshots"]  # the training job's, not the training's (learning curve)
        assert set(defaults) == set(fields), name
        for key, value in defaults.items():
            expected = list(fields[key]) if isinstance(fields[key], tuple) else fields[key]
            assert value == expected, f"{name}.{key}: schema {value!r}, dataclass {expected!r}"
