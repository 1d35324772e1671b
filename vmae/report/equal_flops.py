"""Step budgets at equal pretraining FLOPs: how many VideoMAE steps at one mask ratio cost what a
number of steps at another costs.

A VideoMAE step's FLOPs are its clips x one clip's (``vmae.methods.videomae.videomae_clip_flops``:
the encoder on the visible tubelets, the decoder on all, forward and backward, as ``train_flops``
counts them for metrics.json). Two arms of one recipe see the same clips a step, so equal FLOPs are
steps in the inverse ratio of their clip FLOPs. The model is the workflow config's ``model``
section (the architecture every run gets as ``model.<key>=<value>``).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from vmae.config import PretrainConfig, build_config
from vmae.methods.videomae import videomae_clip_flops


def clip_flops(model: Mapping[str, Any], masking: str, mask_ratio: float) -> float:
    """FLOPs of one VideoMAE training clip (forward + backward) of ``model`` masked by ``masking``
    at ``mask_ratio``."""
    return _clip_flops(tuple(sorted(model.items())), masking, float(mask_ratio))


@lru_cache(maxsize=None)
def _clip_flops(model: tuple[tuple[str, Any], ...], masking: str, mask_ratio: float) -> float:
    overrides = [f"model.{key}={value}" for key, value in model] + [f"masking={masking}", f"mask_ratio={mask_ratio}"]
    return videomae_clip_flops(build_config(PretrainConfig, None, overrides))


def equal_flops_steps(steps: int, model: Mapping[str, Any], masking: str, mask_ratio: float,
                      reference_ratio: float) -> int:
    """The whole steps (nearest, at least 1) at which ``masking`` at ``mask_ratio`` spends the FLOPs
    of ``steps`` steps of the same masking at ``reference_ratio``; e.g. vit_nano at 24 px: 150 steps
    at 0.9 -> 84 at 0.5 (a 0.5 clip costs 1.78x a 0.9 clip)."""
    ratio = clip_flops(model, masking, reference_ratio) / clip_flops(model, masking, mask_ratio)
    return max(1, round(steps * ratio))
