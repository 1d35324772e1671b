"""FLOPs of a run's training, from its config alone: the unit in which "equal compute" is judged.

Seconds depend on the machine and on whatever else it runs; FLOPs of the same config do not. Each
function builds the run's model, moves it to the ``meta`` device (shapes only, no arithmetic) and
counts the FLOPs of one forward and backward pass (``torch.utils.flop_counter.FlopCounterMode``:
matrix products, convolutions and attention, 2 FLOPs a multiply-add) for a batch of two clips, per
clip. metrics.json records ``train_flops`` = this x the clips (or pairs) the run trained on.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from vmae.config import ModelConfig, PretrainConfig
from vmae.models import build_encoder, build_moco, build_videomae
from vmae.models.masking import make_mask, split_mask

_BATCH = 2  # clips counted at once (MoCo's BatchNorm heads need more than one)


def _count(model: nn.Module, loss_of: Callable[[nn.Module, torch.Tensor], torch.Tensor], cfg: ModelConfig,
           backward: bool) -> float:
    """FLOPs of ``loss_of(model, clips)`` (+ its backward) per clip, on the meta device."""
    model = model.to("meta")
    clips = torch.empty(_BATCH, 3, cfg.num_frames, cfg.img_size, cfg.img_size, device="meta")
    with FlopCounterMode(display=False) as counter:
        with torch.set_grad_enabled(backward):
            loss = loss_of(model, clips)
            if backward:
                loss.backward()
    return counter.get_total_flops() / _BATCH


def videomae_clip_flops(cfg: PretrainConfig) -> float:
    """One VideoMAE training clip: the encoder on the visible tubelets, the decoder on all, backward."""
    def loss(mae, clips):
        mask = make_mask(cfg.masking, _BATCH, mae.grid, cfg.mask_ratio, torch.Generator().manual_seed(0))
        visible, masked = (index.to("meta") for index in split_mask(mask))
        return mae.loss(clips, visible, masked, cfg.norm_pix_loss)

    return _count(build_videomae(cfg.model), loss, cfg.model, backward=True)


def moco_pair_flops(cfg: PretrainConfig) -> float:
    """One MoCo v3 training pair: both views through the encoder and heads (forward and backward)
    and through the momentum encoder (forward)."""
    return _count(build_moco(cfg), lambda moco, clips: moco(clips, clips, cfg.moco.momentum), cfg.model,
                  backward=True)


def encoder_clip_flops(cfg: ModelConfig, num_classes: int, backward: bool) -> float:
    """One clip through the classifier (fine-tuning: ``backward``; evaluation and features: not)."""
    return _count(build_encoder(cfg, num_classes), lambda encoder, clips: encoder(clips).sum(), cfg, backward)
