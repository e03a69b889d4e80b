"""Every random stream id of the study, in one place, so that no two uses share numbers.

Two kinds of random numbers are keyed by a replica's seed:

* numpy generators seeded with ``[seed, stream, ...]`` (`DataStream`): training sets and the
  events of the cheap generators (`ganplify.study.data`);
* counter-based draws (`ganplify.rng`) with a stream id per use: the GAN's (`GanStream`) and
  the density models' (`FlowStream`).

Changing a value changes results: the parameter hashes do not see it.
"""

from __future__ import annotations

from enum import IntEnum


class DataStream(IntEnum):
    """numpy streams derived from a replica seed."""

    TRAIN_DATA = 1  # the replica's training set, shared by every generator
    EVALUATE = 2  # the events a cheap generator samples for evaluation


class GanStream(IntEnum):
    """The GAN's counter-based streams."""

    INIT_GENERATOR = 1
    INIT_DISCRIMINATOR = 2
    PERMUTATION = 3  # counter: epoch
    D_STEP_NOISE = 4  # the rest of the training streams: counter = global step
    D_STEP_GENERATOR_DROPOUT = 5
    D_STEP_DATA_NOISE = 6
    D_STEP_DISCRIMINATOR_DROPOUT = 7
    G_STEP_NOISE = 8
    G_STEP_GENERATOR_DROPOUT = 9
    G_STEP_DISCRIMINATOR_DROPOUT = 10
    EVAL_NOISE = 1001  # generation for evaluation: counter 0, offset = event index
    EVAL_DROPOUT = 1002  # counter = layer, offset = event index


class FlowStream(IntEnum):
    """The spline flow's and flow matching's counter-based streams (apart from the GAN's)."""

    INIT = 101
    SPLIT = 102
    NOISE = 103  # flow matching: x0 of every training step
    TIME = 104  # flow matching: t of every training step
    VAL_NOISE = 105
    VAL_TIME = 106
    EVAL = 107  # base-distribution draws when generating
