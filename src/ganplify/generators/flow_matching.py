"""Conditional flow matching as a generator of the study
(networks and training in `ganplify.generators.neural.flows`).
"""

from __future__ import annotations

from typing import ClassVar

from ganplify.generators.base import schema_fragment
from ganplify.generators.flow import Flow


class FlowMatching(Flow):
    """Conditional flow matching with straight paths (rectified flow), sampled with RK4
    (`ganplify.generators.neural.flows`); trained like `Flow`, on the flow-matching loss."""

    name: ClassVar[str] = "flow_matching"
    label: ClassVar[str] = "flow matching"
    color: ClassVar[str] = "tab:brown"
    order: ClassVar[int] = 60
    description: ClassVar[str] = ("conditional flow matching with straight paths (rectified "
                                  "flow), RK4 sampling, ensemble-trained; defaults chosen on "
                                  "seeds 100000+ (benchmarks/tune_density_models.py)")
    options_schema: ClassVar[dict] = schema_fragment("""
      epochs:
        type: integer
        minimum: 1
        default: 1000
        description: >-
          full-batch Adam steps (at most, with holdout > 0), >= 1
      lr:
        type: number
        exclusiveMinimum: 0
        default: 0.003
        description: >-
          Adam learning rate, > 0
      holdout:
        type: number
        minimum: 0
        maximum: 0.5
        default: 0.0
        description: >-
          fraction of each training set held out for early stopping (the best held-out epoch is
          kept), 0 .. 0.5; 0: train on all of it for exactly `epochs` steps
      patience:
        type: integer
        minimum: 1
        default: 200
        description: >-
          steps without a better held-out loss that end a replica's training, >= 1
      hidden:
        type: integer
        minimum: 1
        default: 64
        description: >-
          hidden layer width, >= 1
      layers:
        type: integer
        minimum: 1
        default: 3
        description: >-
          hidden layers of the velocity field, >= 1
      ode_steps:
        type: integer
        minimum: 1
        default: 16
        description: >-
          RK4 steps from noise to data when sampling (4 network calls each), >= 1
    """)
