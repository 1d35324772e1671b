"""FLOPs of a run's training, from its config alone: the unit in which "equal compute" is judged.

Seconds depend on the machine and on whatever else it runs; FLOPs of the same config do not.
``count_flops`` takes a run's model (a pretraining method's ``train_flops``, vmae.methods, or the
classifier here), moves it to the ``meta`` device (shapes only, no arithmetic) and counts the FLOPs of one forward and backward pass (``torch.utils.flop_counter.FlopCounterMode``: matrix products, convolutions and attention, 2 FLOPs a multiply-add) for a batch of two clips, per
clip. metrics.json records ``train_flops`` = this x the clips (or pairs) the run trained on.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from vmae.config import ModelConfig
from vmae.models import build_encoder

_BATCH = 2  # clips counted at once (MoCo's BatchNorm heads need more than one)


def count_flops(model: nn.Module, loss_of: Callable[[nn.Module, torch.Tensor], torch.Tensor], cfg: ModelConfig,
                backward: bool) -> float:
    """FLOPs of ``loss_of(model, clips (2, C, T, H, W))`` (+ its backward) per clip, on the meta device."""
    model = model.to("meta")
    clips = torch.empty(_BATCH, 3, cfg.num_frames, cfg.img_size, cfg.img_size, device="meta")
    with FlopCounterMode(display=False) as counter:
        with torch.set_grad_enabled(backward):
            loss = loss_of(model, clips)
            if backward:
                loss.backward()
    return counter.get_total_flops() / _BATCH


def encoder_clip_flops(cfg: ModelConfig, num_classes: int, backward: bool) -> float:
    """One clip through the classifier (fine-tuning: ``backward``; evaluation and features: not)."""
    return count_flops(build_encoder(cfg, num_classes), lambda encoder, clips: encoder(clips).sum(), cfg, backward)
