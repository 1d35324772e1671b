"""MoCo v3 (Chen, Xie, He 2021) on the video ViT: two views of a video, a momentum encoder, InfoNCE.

Views: two clips of one visit, each with its own crop and MoCo v3's colour jitter, grayscale, blur
and solarisation (``moco_views``, vmae.data.color_augment). The lr scales with the pairs (its batch
= videos). The momentum encoder follows a cosine schedule over the run's optimiser steps, updated
once an optimiser step (at the first micro-step); its InfoNCE and its BatchNorm heads see one
micro-step's micro-batch (x processes), not the global batch (README). Its config section is
``moco`` (``MocoConfig``); its runs take no masking.

Pretext measure: instance discrimination on held-out videos (``instance_discrimination``): two
clips of each (different times, centre crop, no appearance augmentation); the query of one clip
should find the key of the other clip of its own video among all the videos' keys. Top-1 accuracy,
both directions averaged, against chance 1 / videos; skill = (top-1 - chance) / (1 - chance).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from vmae.config import PretrainConfig, _check
from vmae.data.color_augment import ViewAugment
from vmae.data.dataset import FixedViews, collate_eval
from vmae.data.transforms import to_device_normalized
from vmae.methods import Method, register
from vmae.models import build_encoder
from vmae.models.moco import MoCoV3, cosine_momentum
from vmae.train.distributed import DistEnv, wrap_model
from vmae.train.flops import count_flops
from vmae.train.optim import param_groups
from vmae.train.step import Micro, StepFn, StepOutput, Trainable, derive_seed


@dataclass
class MocoConfig:
    """MoCo v3 heads and loss, and its views' appearance augmentations (vmae.data.color_augment;
    the defaults are MoCo v3's ViT recipe, after BYOL: asymmetric blur and solarisation)."""

    proj_dim: int = 256  # output of projection / prediction MLPs
    hidden_dim: int = 1024  # hidden width of both MLPs
    temperature: float = 0.2
    momentum: float = 0.99  # start of the cosine momentum schedule (-> 1)
    augment: bool = True  # colour jitter, grayscale, blur, solarisation of the two views
    jitter_p: float = 0.8  # probability of colour jitter, each view
    brightness: float = 0.4  # jitter strengths (torchvision ColorJitter's)
    contrast: float = 0.4
    saturation: float = 0.2
    hue: float = 0.1  # turns of the hue circle
    grayscale_p: float = 0.2
    blur_p: tuple[float, float] = (1.0, 0.1)  # Gaussian blur probability of view 1, view 2
    blur_sigma: tuple[float, float] = (0.1, 2.0)  # blur sigma range, pixels at the clip's size (224 px)
    solarize_p: tuple[float, float] = (0.0, 0.2)  # solarisation probability of view 1, view 2

    def validate(self) -> None:
        _check(self.proj_dim >= 1, "moco.proj_dim", self.proj_dim, ">= 1")
        _check(self.hidden_dim >= 1, "moco.hidden_dim", self.hidden_dim, ">= 1")
        _check(self.temperature > 0, "moco.temperature", self.temperature, "> 0")
        _check(0 <= self.momentum <= 1, "moco.momentum", self.momentum, "in [0, 1]")
        for key in ("jitter_p", "grayscale_p", "brightness", "contrast", "saturation"):
            _check(0 <= getattr(self, key) <= 1, f"moco.{key}", getattr(self, key), "in [0, 1]")
        _check(0 <= self.hue <= 0.5, "moco.hue", self.hue, "in [0, 0.5]")
        for key in ("blur_p", "solarize_p"):
            _check(all(0 <= p <= 1 for p in getattr(self, key)), f"moco.{key}", getattr(self, key),
                   "two probabilities in [0, 1]")
        _check(0 < self.blur_sigma[0] <= self.blur_sigma[1], "moco.blur_sigma", self.blur_sigma,
               "two sigmas (pixels), 0 < low <= high")


def build_moco(cfg: PretrainConfig) -> MoCoV3:
    """MoCo v3 around ``build_encoder(cfg.model)`` with the heads and temperature of ``cfg.moco``."""
    return MoCoV3(build_encoder(cfg.model), proj_dim=cfg.moco.proj_dim, hidden_dim=cfg.moco.hidden_dim,
                  temperature=cfg.moco.temperature)


def moco_views(clips: torch.Tensor, cfg: PretrainConfig, env: DistEnv, step_index: int, micro: Micro
               ) -> torch.Tensor:
    """A loader batch (B, 2, C, T, H, W) -> the two views normalised on the device, each with MoCo
    v3's appearance augmentations (``moco.augment``) drawn from a generator seeded by (seed, step,
    rank, micro-step): a resumed run draws the same."""
    mean, std = cfg.data.mean, cfg.data.std
    views = to_device_normalized(clips, env.device, mean, std)
    if not cfg.moco.augment:
        return views
    shape = (1, 3, 1, 1, 1)
    mean_t, std_t = (torch.tensor(v, device=views.device).view(shape) for v in (mean, std))
    generator = torch.Generator().manual_seed(derive_seed(cfg.seed, step_index * micro.count + micro.index, env.rank))
    augment = ViewAugment(cfg.moco)
    pixels = [augment(views[:, v] * std_t + mean_t, v, generator) for v in (0, 1)]  # [0, 1]
    return torch.stack([(p - mean_t) / std_t for p in pixels], dim=1)


def moco_step(net: torch.nn.Module, env: DistEnv, cfg: PretrainConfig, total_steps: int) -> StepFn:
    """Batch ``(clips (B, 2, C, T, H, W), labels, bad)`` -> symmetric InfoNCE of the two views
    (``moco_views``); the momentum encoder follows ``cosine_momentum(step, total_steps)`` (optimiser
    steps), updated at an optimiser step's first micro-step only (momentum 1 = unchanged on the others)."""

    def step(batch, step_index: int, micro: Micro = Micro()) -> StepOutput:
        clips, _, bad = batch
        views = moco_views(clips, cfg, env, step_index, micro)
        momentum = cosine_momentum(step_index, total_steps, cfg.moco.momentum) if micro.index == 0 else 1.0
        loss = net(views[:, 0], views[:, 1], momentum)
        return StepOutput(loss, clips=2 * views.shape[0], bad=bad.sum())

    return step


def moco_pair_flops(cfg: PretrainConfig) -> float:
    """One MoCo v3 training pair: both views through the encoder and heads (forward and backward)
    and through the momentum encoder (forward)."""
    return count_flops(build_moco(cfg), lambda moco, clips: moco(clips, clips, cfg.moco.momentum), cfg.model,
                       backward=True)


@torch.no_grad()
def instance_discrimination(moco: MoCoV3, views: FixedViews, cfg: PretrainConfig, device: torch.device,
                            batch_size: int = 32) -> dict[str, Any]:
    """Top-1 instance discrimination of ``moco`` among the readable videos of ``views`` (2 clips a
    video): queries of clip 0 against keys of clip 1 and back -> top1, chance, skill, clips."""
    was_training = moco.training
    moco.eval()
    queries, keys = [], []
    for batch, _, _ in torch.utils.data.DataLoader(views, batch_size=batch_size, collate_fn=collate_eval):
        if not len(batch):
            continue
        pair = to_device_normalized(batch, device, cfg.data.mean, cfg.data.std)  # (B, 2, C, T, H, W)
        queries.append(torch.stack([F.normalize(moco._query(pair[:, v]).float(), dim=1) for v in (0, 1)], 1).cpu())
        keys.append(torch.stack([F.normalize(moco._key(pair[:, v]).float(), dim=1) for v in (0, 1)], 1).cpu())
    moco.train(was_training)
    if not queries:
        raise ValueError(f"{views.manifest}: no readable held-out clips to measure instance discrimination on")
    q, k = torch.cat(queries), torch.cat(keys)  # (V, 2, K)
    own = torch.arange(len(q))
    hits = sum(int(((q[:, a] @ k[:, 1 - a].t()).argmax(dim=1) == own).sum()) for a in (0, 1))
    top1 = hits / (2 * len(q))
    chance = 1.0 / len(q)
    skill = (top1 - chance) / (1.0 - chance) if len(q) > 1 else float("nan")
    return {"top1": top1, "chance": chance, "skill": skill, "clips": 2 * len(q)}


@register
class MoCoV3Method(Method):
    name = "mocov3"
    label = "MoCo v3"
    section = ("moco", MocoConfig)
    encoder_prefix = "base_encoder."
    pretext_clips = 2

    def validate(self, cfg: PretrainConfig) -> None:
        _check(cfg.data.repeated_sampling == 1, "data.repeated_sampling", cfg.data.repeated_sampling,
               "1 with method=mocov3 (its two views are two clips of one visit)")

    def clips_a_video(self, cfg: PretrainConfig) -> int:
        return 2

    def trainable(self, cfg: PretrainConfig, env: DistEnv, steps_per_epoch: int) -> Trainable:
        model = build_moco(cfg)
        net = wrap_model(model, env, False)  # its in-forward EMA update stays eager
        groups = param_groups(model, cfg.optim.weight_decay)
        return Trainable(model, net, groups, moco_step(net, env, cfg, cfg.optim.epochs * steps_per_epoch),
                         cfg.optim.batch_size)

    def train_flops(self, cfg: PretrainConfig, clips: int) -> float:
        return moco_pair_flops(cfg) * clips / 2  # the loop counts both views of a pair as clips

    def pretext(self, model: MoCoV3, views: FixedViews, cfg: PretrainConfig, device: torch.device
                ) -> dict[str, Any]:
        return instance_discrimination(model, views, cfg, device)
