"""Load and validate a study configuration, with one clear message per problem.

Validation runs the JSON schema shipped with the package (the workflow's
workflow/schemas/config.schema.yaml links to it), fills in defaults, then checks what a schema
cannot express (memory needed by joint cells, generators available for a dimension). Errors
name the offending key and what is allowed, and are raised before any job starts.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from ganplify import generators
from ganplify import targets as truth

# Built-in values of the per-dimension axes, below the config's `defaults` block.
AXIS_DEFAULTS: dict[str, list] = {
    "n_train": [100],
    "quantiles": [10],
    "joint": [],
    "generators": ["sample"],
    "n_generated": [100, 1000, 10000],
    "sample_sizes": [100, 200, 300, 500, 700, 1000],
}

# A count array of this many int64 cells is 512 MiB; several live at once per replica.
MAX_CELLS = 2**26



class ConfigError(ValueError):
    """An invalid configuration; the message names the key and what is allowed."""


def schema() -> dict:
    """The configuration's JSON schema (a dict)."""
    text = resources.files("ganplify").joinpath("config.schema.yaml").read_text()
    return yaml.safe_load(text)


def load(path: str | Path) -> dict:
    """Read a YAML config file and validate it (see `validate`)."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {str(path)!r} does not exist") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid YAML: {exc}") from None
    return validate(raw)


def _key_path(parts) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "<top level>"


def _subschema(root: dict, parts) -> dict:
    """Follow a key path through the schema (properties, $ref, items).

    The returned node carries the nearest description on the way, so that an array item
    reports its array's description.
    """

    def deref(node: dict) -> dict:
        while "$ref" in node:
            node = root["$defs"][node["$ref"].split("/")[-1]]
        return node

    node = deref(root)
    description = node.get("description")
    for p in parts:
        if isinstance(p, int):
            node = node.get("items", {})
        elif p in node.get("properties", {}):
            node = node["properties"][p]
        elif isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]
        else:
            return {"description": description}
        description = node.get("description", description)
        node = deref(node)
        if not isinstance(p, int):
            description = node.get("description", description)
    return {**node, "description": " ".join(str(description or "").split())}


def _message(error: jsonschema.ValidationError, root: dict) -> str:
    parts = list(error.absolute_path)
    key = _key_path(parts)
    if error.validator == "additionalProperties":
        allowed = sorted(_subschema(root, parts).get("properties", {}))
        extra = [k for k in error.instance if k not in allowed]
        hints = []
        for k in extra:
            close = difflib.get_close_matches(str(k), allowed, n=1)
            hints.append(f"{k!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        where = f" in {key}" if parts else ""
        return f"unknown key {', '.join(hints)}{where}; allowed keys: {', '.join(allowed)}"
    if error.validator == "required":
        missing = error.message.split("'")[1]
        sub = _subschema(root, [*parts, missing])
        where = _key_path([*parts, missing])
        return f"missing key {where!r}: {sub.get('description', 'required')}"
    if "propertyNames" in error.schema_path:
        sub = _subschema(root, parts)
        return f"{key}: key {error.instance!r} is not allowed; allowed: {sub['description']}"
    sub = _subschema(root, parts)
    allowed = sub.get("description")
    if error.validator == "enum" and "oneOf" not in error.absolute_schema_path:
        allowed = f"one of {', '.join(map(str, error.validator_value))}"
    got = repr(error.instance)
    if len(got) > 60:
        got = got[:57] + "..."
    return f"{key} = {got} is invalid; allowed: {allowed or error.message}"


def _fill_defaults(instance: Any, node: dict, root: dict) -> None:
    """Insert schema defaults for missing object properties (recursively)."""
    while "$ref" in node:
        node = root["$defs"][node["$ref"].split("/")[-1]]
    if not isinstance(instance, dict):
        return
    for key, sub in node.get("properties", {}).items():
        if key not in instance and "default" in sub:
            instance[key] = copy.deepcopy(sub["default"])
        if key in instance:
            _fill_defaults(instance[key], sub, root)


def validate(raw: Any) -> dict:
    """Validate a config mapping; return a copy with defaults filled in and axes resolved.

    The returned config keeps the input's shape (so it can be written out and read back) with
    `defaults` completed from the built-in axis defaults and `dims` keys as strings.

    Raises
    ------
    ConfigError
        With one message naming the first offending key and what is allowed.
    """
    if not isinstance(raw, Mapping):
        raise ConfigError("the config must be a YAML mapping of keys to values")
    config = copy.deepcopy(dict(raw))
    if isinstance(config.get("dims"), Mapping):
        # YAML reads `1:` as an integer key; the schema speaks of strings
        config["dims"] = {str(k): ({} if v is None else v) for k, v in config["dims"].items()}
    root = schema()
    validator = jsonschema.Draft202012Validator(root)
    errors = sorted(validator.iter_errors(config), key=lambda e: (len(e.absolute_path), e.path))
    if errors:
        best = jsonschema.exceptions.best_match(errors)
        raise ConfigError(_message(best, root))
    _fill_defaults(config, root, root)
    config["defaults"] = {**AXIS_DEFAULTS, **config["defaults"]}
    config["dims"] = dict(sorted(config["dims"].items(), key=lambda kv: int(kv[0])))
    _check_semantics(config)
    return config


def targets(config: Mapping) -> list[str]:
    """The study's truth targets, in config order (`target` is one name or a list)."""
    value = config["target"]
    return [value] if isinstance(value, str) else list(value)


def axes(config: Mapping, dim: int) -> dict[str, Any]:
    """The axes of one dimension: built-in defaults < top-level seeds < `defaults` < `dims[dim]`."""
    return {
        **AXIS_DEFAULTS, "seeds": config["seeds"], **config["defaults"], **config["dims"][str(dim)]
    }


def replica_seeds(config: Mapping, dim: int, generator: str) -> list[int]:
    """Seeds of a generator in one dimension: the dimension's seeds, capped by `replicas`."""
    seeds = axes(config, dim)["seeds"]
    count = seeds["count"]
    cap = config.get(generator, {}).get("replicas")
    if cap is not None:
        count = min(count, cap)
    return list(range(seeds["first"], seeds["first"] + count))


# Generators whose options a dimension may override (its axes key has the generator's name).
OVERRIDABLE = ("gan", "flow", "flow_matching")


def generator_block(config: Mapping, generator: str, dim: int) -> dict:
    """A generator's options for one dimension: the top-level block < the dimension's overrides."""
    block = dict(config.get(generator, {}))
    if generator in OVERRIDABLE:
        block.update(config["dims"][str(dim)].get(generator, {}))
    return block


def _check_overrides(config: Mapping, key: str, root: dict) -> None:
    for gen in OVERRIDABLE:
        if gen in config["defaults"]:
            raise ConfigError(
                f"defaults.{gen}: set the options of every dimension in the top-level "
                f"`{gen}` block; only a dimension's entry under `dims` may override them"
            )
        override = config["dims"][key].get(gen)
        if not override:
            continue
        allowed = sorted(set(root["properties"][gen]["properties"]) - {"replicas"})
        for name in override:
            if name not in allowed:
                close = difflib.get_close_matches(str(name), allowed, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ConfigError(f"unknown key {name!r}{hint} in dims.{key}.{gen}; "
                                  f"allowed keys: {', '.join(allowed)}")
        merged = {**config[gen], **override}
        sub_schema = {**root["properties"][gen], "$defs": root["$defs"]}
        error = jsonschema.exceptions.best_match(
            jsonschema.Draft202012Validator(sub_schema).iter_errors(merged)
        )
        if error is not None:
            message = _message(error, sub_schema)
            raise ConfigError(f"dims.{key}.{gen}.{message}")


def _check_targets(config: Mapping) -> None:
    listed = not isinstance(config["target"], str)
    for i, name in enumerate(targets(config)):
        if name not in truth.TARGETS:
            key = f"target[{i}]" if listed else "target"
            close = difflib.get_close_matches(name, list(truth.TARGETS), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{key}: unknown target {name!r}{hint}; "
                              f"allowed: {', '.join(truth.TARGETS)}")


def _check_pass_probability(config: Mapping) -> None:
    agg = config["aggregate"]
    for pi in agg["pass_probability"]:
        # a perfect generator passes with probability robust_cl: no rule can demand more
        if pi > agg["robust_cl"]:
            raise ConfigError(
                f"aggregate.pass_probability = {pi}: above aggregate.robust_cl = "
                f"{agg['robust_cl']}, which even the truth passes with; use values <= it"
            )


def _check_semantics(config: Mapping) -> None:
    root = schema()
    _check_targets(config)
    _check_pass_probability(config)
    for key in config["dims"]:
        _check_overrides(config, key, root)
        dim = int(key)
        ax = axes(config, dim)

        def where(axis: str, key: str = key) -> str:
            return f"dims.{key}.{axis}" if axis in config["dims"][key] else f"defaults.{axis}"

        for q in ax["joint"]:
            if dim > 1 and q**dim > MAX_CELLS:
                q_max = int(MAX_CELLS ** (1.0 / dim))
                while (q_max + 1) ** dim <= MAX_CELLS:
                    q_max += 1
                raise ConfigError(
                    f"{where('joint')} = {q}: {q}^{dim} = {q**dim:,} joint cells do not fit in "
                    f"memory (at most {MAX_CELLS:,} cells); allowed for d={dim}: q <= {q_max}"
                )
        for gen in ax["generators"]:
            if gen not in generators.REGISTRY:
                raise ConfigError(
                    f"{where('generators')}: unknown generator {gen!r}; "
                    f"allowed: {', '.join(generators.REGISTRY)}"
                )
            dims_ok = generators.REGISTRY[gen].dims
            if dims_ok is not None and dim not in dims_ok:
                raise ConfigError(
                    f"{where('generators')}: {gen!r} is not available for d={dim}; "
                    f"allowed dimensions for {gen!r}: {sorted(dims_ok)}"
                )
        for gen in set(ax["generators"]) & {"flow", "flow_matching"}:
            holdout = generator_block(config, gen, dim).get("holdout", 0.0)
            for n in ax["n_train"]:
                if holdout > 0 and not 1 <= round(holdout * n) <= n - 2:
                    raise ConfigError(
                        f"{gen}.holdout = {holdout} with {where('n_train')} = {n}: the held-out "
                        f"part must be 1 .. n_train - 2 points; use holdout 0 (a fixed "
                        f"schedule) or a larger n_train"
                    )
        if not ax["quantiles"] and not (dim > 1 and ax["joint"]):
            raise ConfigError(
                f"{where('quantiles')}: d={dim} has no binning; give at least one quantile count"
            )
