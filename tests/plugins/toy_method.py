"""A toy pretraining method registered from outside the package (``VMAE_PLUGINS=toy_method`` with
tests/plugins on the path): the encoder learns to predict a clip's mean colour from its tokens.

It shows what a method of one's own writes, all in this one module: its config section (``toy``),
its model and step, the clips it takes a video, its FLOPs and its pretext measure against the
trivial predictor (the held-out clips' mean target). tests/test_methods_registry.py runs the test
config's data-efficiency study with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from vmae.config import PretrainConfig, _check
from vmae.data.dataset import FixedViews, collate_eval
from vmae.data.transforms import to_device_normalized
from vmae.methods import Method, register
from vmae.models import build_encoder
from vmae.train.distributed import DistEnv, wrap_model
from vmae.train.flops import count_flops
from vmae.train.optim import param_groups
from vmae.train.step import Micro, StepOutput, Trainable


@dataclass
class ToyConfig:
    """The toy method's section: ``toy.scale`` multiplies the colour target."""

    scale: float = 1.0

    def validate(self) -> None:
        _check(self.scale > 0, "toy.scale", self.scale, "> 0")


class MeanColour(nn.Module):
    """forward(clips (B, C, T, H, W) normalised) -> predicted mean colour (B, C)."""

    def __init__(self, cfg: PretrainConfig):
        super().__init__()
        self.backbone = build_encoder(cfg.model)
        self.head = nn.Linear(self.backbone.embed_dim, 3)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone.forward_head(self.backbone.forward_features(clips), pre_logits=True))


def _target(clips: torch.Tensor, cfg: PretrainConfig) -> torch.Tensor:
    """clips (B, C, T, H, W) normalised -> their mean colour x ``toy.scale`` (B, C)."""
    return clips.mean(dim=(2, 3, 4)) * cfg.toy.scale


@register
class Toy(Method):
    name = "toy"
    label = "Toy"
    section = ("toy", ToyConfig)
    encoder_prefix = "backbone."
    pretext_clips = 1

    def clips_a_video(self, cfg: PretrainConfig) -> int:
        return 1

    def trainable(self, cfg: PretrainConfig, env: DistEnv, steps_per_epoch: int) -> Trainable:
        model = MeanColour(cfg)
        net = wrap_model(model, env, False)

        def step(batch, step_index: int, micro: Micro = Micro()) -> StepOutput:
            clips, _, bad = batch
            video = to_device_normalized(clips.flatten(0, 1), env.device, cfg.data.mean, cfg.data.std)
            loss = (net(video) - _target(video, cfg)).pow(2).mean()
            return StepOutput(loss, clips=video.shape[0], bad=bad.sum())

        return Trainable(model, net, param_groups(model, cfg.optim.weight_decay), step, cfg.optim.batch_size)

    def train_flops(self, cfg: PretrainConfig, clips: int) -> float:
        return count_flops(MeanColour(cfg), lambda m, x: m(x).sum(), cfg.model, backward=True) * clips

    @torch.no_grad()
    def pretext(self, model: MeanColour, views: FixedViews, cfg: PretrainConfig, device: torch.device
                ) -> dict[str, Any]:
        model.eval()
        predicted, targets = [], []
        for batch, _, _ in torch.utils.data.DataLoader(views, batch_size=8, collate_fn=collate_eval):
            if not len(batch):
                continue
            video = to_device_normalized(batch.flatten(0, 1), device, cfg.data.mean, cfg.data.std)
            predicted.append(model(video).cpu())
            targets.append(_target(video, cfg).cpu())
        pred, target = torch.cat(predicted), torch.cat(targets)
        loss = float((pred - target).pow(2).mean())
        trivial = float((target - target.mean(dim=0)).pow(2).mean())
        return {"loss": loss, "trivial_loss": trivial, "skill": 1.0 - loss / trivial, "clips": len(target)}
