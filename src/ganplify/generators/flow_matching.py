"""Conditional flow matching as a generator of the study
(networks and training in `ganplify.generators.neural.flows`).
"""

from __future__ import annotations

from typing import ClassVar

from ganplify.generators.flow import Flow


class FlowMatching(Flow):
    """Conditional flow matching with straight paths (rectified flow), sampled with RK4
    (`ganplify.generators.neural.flows`); trained like `Flow`, on the flow-matching loss."""

    name: ClassVar[str] = "flow_matching"
    description: ClassVar[str] = ("conditional flow matching (rectified flow), RK4 sampling, "
                                  "ensemble-trained")
