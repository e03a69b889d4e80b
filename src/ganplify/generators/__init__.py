"""Every generator behind one interface, and the registry that names them.

A generator is fitted on a batch of K training sets (one per replica seed) and then either
samples events per replica (evaluated on n_generated events) or gives exact cell
probabilities. Neural generators are trained as an ensemble in their own job (GPU when present,
`ganplify.generators.neural`) and evaluated in another; the others are fitted and evaluated in
one cheap CPU job.
"""

from __future__ import annotations

from typing import Any

from ganplify.generators.bootstrap import Bootstrap
from ganplify.generators.fit import Fit
from ganplify.generators.flow import Flow
from ganplify.generators.flow_matching import FlowMatching
from ganplify.generators.gan import Gan
from ganplify.generators.kde import Kde
from ganplify.generators.sample import Sample

REGISTRY: dict[str, Any] = {g.name: g() for g in (Sample, Fit, Bootstrap, Kde, Gan, Flow,
                                                  FlowMatching)}


def get(name: str):
    """The generator called ``name``."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown generator {name!r}; allowed: {sorted(REGISTRY)}") from None
