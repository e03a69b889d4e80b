"""Every generator behind one interface, and the registry that names them.

A generator is fitted on a batch of K training sets (one per replica seed) and then either
samples events per replica (evaluated on n_generated events) or gives exact cell
probabilities. Neural generators are trained as an ensemble in their own job (GPU when present,
`ganplify.generators.neural`) and evaluated in another; the others are fitted and evaluated in
one cheap CPU job.

The registry finds every generator by itself: adding one is one module here with a `Generator`
subclass (`ganplify.generators.base` lists what it declares), and nothing else.
"""

from __future__ import annotations

import importlib
import pkgutil

from ganplify.generators.base import Generator

# modules here that hold no generator: the protocol itself, and the neural core (torch)
_NOT_GENERATORS = {"base", "neural"}


def _discover() -> dict[str, Generator]:
    """One instance of every `Generator` subclass defined in a module of this package."""
    found: list[type[Generator]] = []
    for info in pkgutil.iter_modules(__path__):
        if info.name in _NOT_GENERATORS or info.name.startswith("_") or info.ispkg:
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        found += [
            obj
            for obj in vars(module).values()
            if isinstance(obj, type)
            and issubclass(obj, Generator)
            and obj.__module__ == module.__name__
            and "name" in vars(obj)
        ]
    found.sort(key=lambda cls: (cls.order, cls.name))
    names = [cls.name for cls in found]
    if len(set(names)) != len(names):
        raise RuntimeError(f"two generators share a name: {sorted(names)}")
    return {cls.name: cls() for cls in found}


REGISTRY: dict[str, Generator] = _discover()


def get(name: str):
    """The generator called ``name``."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown generator {name!r}; allowed: {sorted(REGISTRY)}") from None


def having(capability: str) -> list[str]:
    """Names of the generators with a capability (a true `Generator` attribute), in order."""
    return [name for name, gen in REGISTRY.items() if getattr(gen, capability)]


def is_model(name: str) -> bool:
    """Every generator but the truth itself (which has no asymptote and no amplification)."""
    gen = REGISTRY.get(name)
    return gen is None or not gen.truth_sample
