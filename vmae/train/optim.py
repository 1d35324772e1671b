"""Optimiser pieces: parameter groups (weight-decay split, layer-wise lr decay), AdamW, lr schedule.

The schedule is a pure function of the global step, so resuming needs only the step number.
Each parameter group carries an ``lr_scale`` (layer decay); the loop sets
``group["lr"] = lr_at(step) * group["lr_scale"]`` before every optimiser step.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import torch
from torch import nn

from vmae.config import ConfigError, OptimConfig


def fit_to_step_budget(cfg: OptimConfig, videos: int) -> OptimConfig:
    """``cfg`` for a run over ``videos`` training videos (full batches of ``cfg.batch_size``): with a
    step budget (``cfg.steps`` > 0), the fewest epochs that take at least ``cfg.steps`` optimiser steps,
    and a warm-up that keeps its share of the run (``warmup_epochs / epochs``); else ``cfg`` as is.

    Pretraining sets of different sizes (nested subsets, other domains) then get the same number of
    optimiser steps, within one epoch: 700 steps are 100 epochs of 240 videos (7 steps each), 234
    epochs of 120 (702 steps), 700 epochs of 60 (1 step each: 32 of the 60 videos an epoch)."""
    if not cfg.steps:
        return cfg
    per_epoch = videos // cfg.batch_size
    if per_epoch == 0:
        raise ConfigError(f"optim.steps={cfg.steps}: {videos} training videos make no full batch of "
                          f"optim.batch_size={cfg.batch_size}")
    epochs = math.ceil(cfg.steps / per_epoch)
    return dataclasses.replace(cfg, epochs=epochs, warmup_epochs=cfg.warmup_epochs * epochs / cfg.epochs)


def scaled_lr(base_lr: float, batch_size: int) -> float:
    """The linear scaling rule: ``lr = base_lr * batch_size / 256`` (batch = clips per step, all processes)."""
    return base_lr * batch_size / 256


# Parameter names (last component) never decayed, whatever their shape: position tables and tokens.
NO_DECAY = frozenset({"pos_embed", "mask_token", "cls_token"})


def no_decay_names(model: nn.Module) -> set[str]:
    """Names that get no weight decay besides 1-D tensors: ``NO_DECAY`` plus the model's own list
    (timm convention ``model.no_weight_decay()``)."""
    hook = getattr(model, "no_weight_decay", None)
    return set(NO_DECAY) | (set(hook()) if callable(hook) else set())


def param_groups(
    model: nn.Module,
    weight_decay: float,
    layer_decay: float = 1.0,
    layer_of: Callable[[str], int] | None = None,
    num_layers: int = 0,
) -> list[dict]:
    """Split trainable parameters into AdamW groups.

    No weight decay for norms, biases, position tables and tokens (``ndim <= 1`` or a name in
    ``no_decay_names``). With ``layer_decay < 1`` and ``layer_of(name) -> 0..num_layers`` (0 = the
    embedding, ``num_layers`` = the head), a parameter at layer ``i`` gets
    ``lr_scale = layer_decay ** (num_layers - i)`` (BEiT / MAE fine-tuning recipe).
    Returns groups with keys ``params``, ``weight_decay``, ``lr_scale``, ``name`` (for logs).
    """
    if layer_decay < 1.0 and layer_of is None:
        raise ValueError(f"layer_decay={layer_decay} needs a layer_of(name) function")
    skip = no_decay_names(model)
    groups: dict[tuple[int, bool], dict] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        decay = param.ndim > 1 and name not in skip and not name.endswith(tuple(f".{s}" for s in skip))
        layer = layer_of(name) if layer_decay < 1.0 else num_layers
        key = (layer, decay)
        if key not in groups:
            groups[key] = {
                "name": f"layer{layer}_{'decay' if decay else 'no_decay'}",
                "params": [],
                "weight_decay": weight_decay if decay else 0.0,
                "lr_scale": layer_decay ** (num_layers - layer),
            }
        groups[key]["params"].append(param)
    return [groups[k] for k in sorted(groups)]


def build_optimizer(groups: list[dict], cfg: OptimConfig, lr: float, device: torch.device) -> torch.optim.AdamW:
    """AdamW over ``groups`` with ``cfg.betas``, the fused kernel on every device (on the CPU it takes
    half the time of torch's default per-tensor loop for the default model)."""
    return torch.optim.AdamW(groups, lr=lr, betas=tuple(cfg.betas), fused=device.type in ("cuda", "cpu"))


def lr_at(step: int, total_steps: int, warmup_steps: int, peak_lr: float, min_lr: float) -> float:
    """Linear warm-up from 0 to ``peak_lr`` over ``warmup_steps``, then half-cosine down to ``min_lr``
    at ``total_steps``. ``step`` counts optimiser steps from 0."""
    if step < warmup_steps:
        return peak_lr * step / warmup_steps
    span = max(total_steps - warmup_steps, 1)
    progress = min((step - warmup_steps) / span, 1.0)
    return min_lr + (peak_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set every group's lr to ``lr * group["lr_scale"]``."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)
