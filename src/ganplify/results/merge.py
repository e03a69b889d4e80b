"""Merge results folders of the same study made with different replica seeds.

Two collaborators run the same config with different seeds (say 0-49 and 50-99). `merge`
verifies every source (`ganplify verify`: complete, unaltered, nothing foreign), checks that
the configs agree on everything but the study name and the seeds, that the seeds join into
contiguous ranges, and that a replica present in both has the same content (`same_content`:
timestamps and the order of a safetensors header do not count); then it copies the replicas'
contract files (regular files only, never through a link; no logs, checkpoints or reports)
into a new results folder, writes the merged config, and writes job flags for the merged
study's chunks whose replicas are all finished, so that running the workflow on the merged
folder only aggregates and plots:

    ganplify merge results/alice results/bob --into results/both
    snakemake --configfile results/both/config.yaml
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from ganplify import generators
from ganplify.results import layout
from ganplify.results.io import (
    ResultsError,
    atomic_write_bytes,
    atomic_write_text,
    config_text,
    read_json,
    recording,
    safetensors_metadata,
    write_json,
)
from ganplify.results.manifest import is_contract_file, scan, verify
from ganplify.results.provenance import now
from ganplify.study import config as cfg
from ganplify.study import plan as study

# Keys that may differ between the folders being merged.
SEED_KEYS = ("study", "seeds")


# Timestamps that older status.json files carried (not part of a replica's results).
_TIMES = ("written", "evaluated")

# The sources' provenance, kept in the merged folder.
MERGED_FROM = layout.MERGED_FROM


class MergeError(ResultsError):
    """Folders that cannot be merged; the message says why."""


def _strip_seeds(config: Mapping) -> dict:
    out = copy.deepcopy(dict(config))
    for key in SEED_KEYS:
        out.pop(key, None)
    for dim in out["dims"].values():
        dim.pop("seeds", None)
    out["defaults"].pop("seeds", None)
    for gen in generators.REGISTRY:
        if isinstance(out.get(gen), dict):
            out[gen].pop("replicas", None)
    return out


def _first_difference(a, b, path: str = "") -> str:
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        for key in sorted(set(a) | set(b), key=str):
            if key not in a or key not in b:
                return f"{path}{key}"
            diff = _first_difference(a[key], b[key], f"{path}{key}.")
            if diff:
                return diff
        return ""
    return "" if a == b else path.rstrip(".")


def _contiguous(seeds: set[int], what: str) -> tuple[int, int]:
    lo, hi = min(seeds), max(seeds)
    if len(seeds) != hi - lo + 1:
        missing = sorted(set(range(lo, hi + 1)) - seeds)
        raise MergeError(
            f"{what}: the merged seeds {lo}..{hi} miss {missing[:5]}"
            f"{' ...' if len(missing) > 5 else ''}; merge folders whose seeds join up"
        )
    return lo, hi - lo + 1


def merged_config(configs: Sequence[Mapping], study_name: str) -> dict:
    """The config of the merged study (seeds joined per dimension and generator)."""
    base = _strip_seeds(configs[0])
    for other in configs[1:]:
        diff = _first_difference(base, _strip_seeds(other))
        if diff:
            raise MergeError(
                f"the configs differ in {diff!r}; only the study name and the seeds may differ"
            )
    out = copy.deepcopy(dict(configs[0]))
    out["study"] = study_name
    dims_seeds = {}
    used_counts: dict[str, dict[int, int]] = {}  # generator -> dim -> replicas used
    for key in out["dims"]:
        dim = int(key)
        seeds = {
            s
            for c in configs
            for s in range(
                cfg.axes(c, dim)["seeds"]["first"],
                cfg.axes(c, dim)["seeds"]["first"] + cfg.axes(c, dim)["seeds"]["count"],
            )
        }
        first, count = _contiguous(seeds, f"d={dim}")
        dims_seeds[key] = {"first": first, "count": count}
        for gen in cfg.axes(out, dim)["generators"]:
            used = {s for c in configs for s in cfg.replica_seeds(c, dim, gen)}
            g_first, g_count = _contiguous(used, f"d={dim} {gen}")
            if g_first != first:
                raise MergeError(
                    f"d={dim} {gen}: its seeds start at {g_first}, the others' "
                    f"at {first}; merge folders whose seeds join up"
                )
            used_counts.setdefault(gen, {})[dim] = g_count
    for gen, per_dim in used_counts.items():
        # one `replicas` cap per generator must give every dimension the replicas it has
        capped = {n for d, n in per_dim.items() if n < dims_seeds[str(d)]["count"]}
        block = out.setdefault(gen, {})
        block.pop("replicas", None)
        if not capped:
            continue
        cap = capped.pop()
        if capped or any(min(dims_seeds[str(d)]["count"], cap) != n for d, n in per_dim.items()):
            raise MergeError(
                f"{gen}: the folders use different numbers of its replicas per "
                "dimension, which one `replicas` cap cannot express"
            )
        block["replicas"] = cap
    firsts = {v["first"] for v in dims_seeds.values()}
    counts = {v["count"] for v in dims_seeds.values()}
    out["defaults"].pop("seeds", None)
    if len(firsts) == 1 and len(counts) == 1:
        out["seeds"] = next(iter(dims_seeds.values()))
        for dim in out["dims"].values():
            dim.pop("seeds", None)
    else:
        out["seeds"] = dims_seeds[min(dims_seeds, key=int)]
        for key, value in dims_seeds.items():
            out["dims"][key]["seeds"] = value
    return cfg.validate(out)


def same_content(a: bytes, b: bytes, name: str) -> bool:
    """Whether two versions of a replica file hold the same results: safetensors by their
    tensors and metadata (the header's key order is arbitrary), JSON by value, else bytes."""
    if a == b:
        return True
    if name.endswith(".safetensors"):
        import safetensors
        import safetensors.numpy

        try:
            ta, tb = safetensors.numpy.load(a), safetensors.numpy.load(b)
            meta_a = safetensors_metadata(a, len(a), name)
            meta_b = safetensors_metadata(b, len(b), name)
        except (safetensors.SafetensorError, ResultsError):
            return False
        return (
            meta_a == meta_b
            and ta.keys() == tb.keys()
            and all(ta[k].dtype == tb[k].dtype and (ta[k] == tb[k]).all() for k in ta)
        )
    if name.endswith(".json"):
        try:
            ja, jb = json.loads(a), json.loads(b)
        except ValueError:
            return False
        if name == layout.STATUS and isinstance(ja, dict) and isinstance(jb, dict):
            # statuses written before they dropped their timestamps
            ja, jb = ({k: v for k, v in j.items() if k not in _TIMES} for j in (ja, jb))
        return ja == jb
    return False


def _read_regular(path: Path) -> bytes:
    """A file's bytes, refusing to follow a link (even one made after the sources verified)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise MergeError(f"{path}: cannot be read without following a link ({exc})") from None
    with os.fdopen(fd, "rb") as fh:
        return fh.read()


def _plan_copies(sources: Sequence[Path]) -> dict[str, Path]:
    """Relative path -> source file of every replica file to copy: the sources' replica
    contract files but job flags (rewritten for the merged chunks) and checkpoints. A file
    present in several sources must hold the same results in each (`same_content`)."""
    copies: dict[str, Path] = {}
    for src in sources:
        for rel in scan(src).files:
            name = rel.rsplit("/", 1)[-1]
            if (
                not rel.startswith(f"{layout.REPLICAS}/")
                or not is_contract_file(rel)
                or name.startswith("seeds")
                or name in layout.CHECKPOINT_FILES
            ):
                continue
            if rel not in copies:
                copies[rel] = src / rel
            elif not same_content(_read_regular(copies[rel]), _read_regular(src / rel), name):
                raise MergeError(
                    f"{rel} differs between {copies[rel].parents[rel.count('/')]} and {src}"
                    " (the same replica made twice with different results)"
                )
    return copies


def _verified(src: Path) -> None:
    """Refuse a source that `ganplify verify` does not pass, naming its first problems."""
    from ganplify.results.checks import table_checks

    problems = verify(src, table_checks)
    if problems:
        shown = "\n".join(f"  {p}" for p in problems[:5])
        more = f"\n  ... and {len(problems) - 5} more" if len(problems) > 5 else ""
        raise MergeError(
            f"{src}: `ganplify verify` finds {len(problems)} problem(s); merge only complete, "
            f"unaltered folders:\n{shown}{more}"
        )


def _finished(into: Path, chunk: study.Chunk, evaluated: bool) -> bool:
    for seed in chunk.seeds:
        path = into / chunk.setting.replica_dir(seed) / layout.STATUS
        if not path.is_file():
            return False
        status = read_json(path)
        if status.get("phash") != chunk.setting.phash:
            return False
        if evaluated and status["status"] == "done" and status.get("ehash") != chunk.ehash:
            return False
    return True


def merge(sources: Sequence[Path], into: Path) -> dict:
    """Merge results folders into ``into`` (results/<new study>); return a summary."""
    sources = [Path(s) for s in sources]
    into = Path(into)
    if len(sources) < 2:
        raise MergeError("give at least two results folders to merge")
    if into.parent.name != "results" or into.name in ("", ".", ".."):
        raise MergeError(f"--into must be results/<new study>, got {into}")
    if into.exists() and any(into.iterdir()):
        raise MergeError(f"{into} exists and is not empty")
    configs = []
    for src in sources:
        path = src / layout.CONFIG
        if not path.is_file():
            raise MergeError(f"{path}: missing; is {src} a ganplify results folder?")
        try:
            configs.append(cfg.load(path))
        except cfg.ConfigError as exc:
            raise MergeError(f"{path}: {exc}") from None
    config = merged_config(configs, into.name)
    for src in sources:
        _verified(src)
    with recording(into):
        return _write(sources, into, config, _plan_copies(sources))


def _write(sources: Sequence[Path], into: Path, config: dict, copies: dict[str, Path]) -> dict:
    for rel, path in copies.items():
        atomic_write_bytes(into / rel, _read_regular(path))
    atomic_write_text(into / layout.CONFIG, config_text(config))
    write_json(
        into / MERGED_FROM,
        {
            "merged": now(),
            "sources": [
                {
                    "path": str(src),
                    "provenance": read_json(src / layout.PROVENANCE)
                    if (src / layout.PROVENANCE).is_file()
                    else None,
                }
                for src in sources
            ],
        },
    )
    flags = 0
    record = {"job": "merge", "merged_from": [str(s) for s in sources], "finished": now()}
    for chunk in study.plan(config):
        neural = generators.get(chunk.setting.generator).neural
        if neural and _finished(into, chunk, evaluated=False):
            write_json(into / chunk.trained_flag, {**record, "chunk": chunk.name})
            flags += 1
        if _finished(into, chunk, evaluated=True):
            write_json(
                into / chunk.evaluated_flag, {**record, "chunk": chunk.name, "wall_time_s": 0.0}
            )
            flags += 1
    return {"files": len(copies), "flags": flags, "config": config}
