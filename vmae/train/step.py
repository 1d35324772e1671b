"""What a training method hands the loop (``vmae.train.loop.train``, ``Trainable``) and gets back
each step: ``step_fn(batch, step, micro) -> StepOutput``, and the seeds of a run's epochs and steps."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class StepOutput:
    """What one training (micro-)step returns to the loop.

    ``loss`` is the mean over this (micro-)batch. The loop backpropagates ``loss / k`` for each of
    the ``k`` micro-steps of an optimiser step, so the gradient is that of the mean of the k
    micro-batch means, which is the mean over the whole batch when every micro-batch's mean is over
    the same count: the same clips a micro-batch (cross-entropy), and for VideoMAE the same number of
    masked tokens a clip (``vmae.models.masking``: a fixed count a row), so the mean of the k means
    over ``b * n_masked`` tokens each is the mean over all ``k * b * n_masked``. DDP then averages over
    processes of equal batches: the global mean.
    """

    loss: torch.Tensor  # scalar, differentiable: the mean over this (micro-)batch
    clips: int  # clips in this process's (micro-)batch (for clips/s)
    bad: int | torch.Tensor = 0  # unreadable videos skipped to build this batch (a device scalar: no sync)


@dataclass(frozen=True)
class Micro:
    """Where a micro-step sits in its optimiser step: ``index`` of ``count`` (1 = no accumulation)."""

    index: int = 0
    count: int = 1

    @property
    def last(self) -> bool:
        """True for the micro-step whose backward all-reduces and after which the optimiser steps."""
        return self.index == self.count - 1


# (batch with its tensors on the device, global optimiser step, micro-step) -> StepOutput
StepFn = Callable[[Any, int, Micro], StepOutput]


@dataclass
class Trainable:
    """Everything a method hands ``vmae.train.loop.train`` besides the data: built by
    ``vmae.train.pretrain.pretraining`` and ``vmae.train.finetune.classifier_training``."""

    model: torch.nn.Module  # unwrapped: its state dict is checkpointed
    net: torch.nn.Module  # what ``step`` calls: on the device, DDP-wrapped, compiled where the config says
    groups: list[dict]  # optimiser parameter groups (``vmae.train.optim.param_groups``)
    step: StepFn
    clips_per_step: int  # the lr-scaling batch of one optimiser step, all processes (fine-tuning: its videos)


def derive_seed(seed: int, index: int, rank: int = 0) -> int:
    """The seed of one epoch (or step) ``index`` of process ``rank`` in a run seeded ``seed``."""
    return (seed * 1_000_003 + index * 1_009 + rank) % 2**63
