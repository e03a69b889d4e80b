"""Conditional flow matching as a generator of the study
(networks and training in `ganplify.generators.neural.flows`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from ganplify.generators.base import affine_parameters, schema_fragment
from ganplify.generators.flow import Flow


class FlowMatching(Flow):
    """Conditional flow matching with straight paths (rectified flow), sampled with RK4
    (`ganplify.generators.neural.flows`); trained like `Flow`, on the flow-matching loss."""

    name: ClassVar[str] = "flow_matching"
    label: ClassVar[str] = "flow matching"
    color: ClassVar[str] = "tab:brown"
    order: ClassVar[int] = 60
    description: ClassVar[str] = (
        "conditional flow matching with straight paths (rectified "
        "flow), RK4 sampling, ensemble-trained; defaults chosen on "
        "seeds 100000+ (benchmarks/tune_density_models.py)"
    )
    # the flow's training schedule and width, with this model's learning rate
    options_schema: ClassVar[dict] = {
        **{
            key: Flow.options_schema[key]
            for key in ("epochs", "lr", "holdout", "patience", "hidden")
        },
        "lr": {**Flow.options_schema["lr"], "default": 3.0e-3},
        **schema_fragment("""
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
    """),
        "snapshots": Flow.options_schema["snapshots"],
    }

    def parameter_count(self, options: Mapping[str, Any], dim: int) -> int:
        """The velocity field (`ganplify.generators.neural.flows.networks.EnsembleVelocity`):
        (x, t) through `layers` hidden layers to d."""
        o = {**self.option_defaults(), **options}
        return affine_parameters([dim + 1, *[o["hidden"]] * o["layers"], dim])
