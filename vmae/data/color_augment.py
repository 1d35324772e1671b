"""MoCo v3's appearance augmentations for video clips, batched on the training device.

MoCo v3 (Chen, Xie, He 2021; its ViT recipe, after BYOL) makes its two views differ in appearance
as well as in crop: colour jitter (brightness 0.4, contrast 0.4, saturation 0.2, hue 0.1) with
probability 0.8, grayscale with probability 0.2, Gaussian blur (probability 1.0 on the first view,
0.1 on the second) and solarisation (0 on the first, 0.2 on the second). Without them two clips of
one video match by colour alone. Each clip gets its own draw, the same for all of its frames (a
video's colour does not flicker), from a ``torch.Generator`` the caller seeds.

``ViewAugment(cfg)(clips, view, generator)``: clips float (B, C, T, H, W) in [0, 1] -> the same
shape, augmented. The blur's sigma is given in pixels at the clip's own size (``AugmentSettings``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F


class AugmentSettings(Protocol):
    """The fields a method's config section gives ``ViewAugment`` (e.g. MoCo v3's, vmae.methods)."""

    jitter_p: float  # probability of colour jitter, each view
    brightness: float  # jitter strengths (torchvision ColorJitter's)
    contrast: float
    saturation: float
    hue: float  # turns of the hue circle
    grayscale_p: float
    blur_p: tuple[float, float]  # Gaussian blur probability of view 1, view 2
    blur_sigma: tuple[float, float]  # sigma range, pixels at the clip's size
    solarize_p: tuple[float, float]  # solarisation probability of view 1, view 2


_LUMA = (0.299, 0.587, 0.114)  # ITU-R 601, as torchvision's rgb_to_grayscale


def _per_clip(values: torch.Tensor) -> torch.Tensor:
    """(B,) -> (B, 1, 1, 1, 1), to broadcast over (B, C, T, H, W)."""
    return values.view(-1, 1, 1, 1, 1)


def _uniform(count: int, low: float, high: float, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    return (torch.rand(count, generator=generator) * (high - low) + low).to(device)


def grayscale(clips: torch.Tensor) -> torch.Tensor:
    """(B, 3, T, H, W) -> its luma, repeated over the 3 channels."""
    weights = clips.new_tensor(_LUMA).view(1, 3, 1, 1, 1)
    return (clips * weights).sum(dim=1, keepdim=True).expand_as(clips)


def adjust_hue(clips: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotate each clip's hue by ``shift`` (B,) turns (a rotation of the chroma plane in YIQ space)."""
    to_yiq = clips.new_tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
    yiq = torch.einsum("ij,bjthw->bithw", to_yiq, clips)
    angle = 2 * math.pi * shift
    cos, sin = _per_clip(torch.cos(angle)).squeeze(1), _per_clip(torch.sin(angle)).squeeze(1)
    i, q = yiq[:, 1], yiq[:, 2]
    yiq = torch.stack([yiq[:, 0], cos * i - sin * q, sin * i + cos * q], dim=1)
    return torch.einsum("ij,bjthw->bithw", torch.linalg.inv(to_yiq), yiq)


def gaussian_blur(clips: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Blur every frame of each clip with its own ``sigma`` (B,) pixels (separable, reflect padding)."""
    b, c, t, h, w = clips.shape
    radius = max(1, math.ceil(3 * float(sigma.max())))
    offsets = torch.arange(-radius, radius + 1, device=clips.device, dtype=clips.dtype)
    kernels = torch.exp(-0.5 * (offsets[None] / sigma[:, None].to(clips.dtype)) ** 2)
    kernels = kernels / kernels.sum(dim=1, keepdim=True)  # (B, K)
    frames = clips.permute(0, 2, 1, 3, 4).reshape(1, b * t * c, h, w)
    weight = kernels.repeat_interleave(t * c, dim=0)  # one kernel a (clip, frame, channel)
    frames = F.pad(frames, (radius, radius, 0, 0), mode="reflect")
    frames = F.conv2d(frames, weight[:, None, None, :], groups=b * t * c)
    frames = F.pad(frames, (0, 0, radius, radius), mode="reflect")
    frames = F.conv2d(frames, weight[:, None, :, None], groups=b * t * c)
    return frames.reshape(b, t, c, h, w).permute(0, 2, 1, 3, 4)


@dataclass(frozen=True)
class ViewAugment:
    """MoCo v3's appearance augmentations of one view (0 or 1) of a batch of clips."""

    cfg: AugmentSettings

    def __call__(self, clips: torch.Tensor, view: int, generator: torch.Generator) -> torch.Tensor:
        """clips: float (B, C, T, H, W) in [0, 1] -> augmented, clamped to [0, 1]."""
        cfg, count, device = self.cfg, clips.shape[0], clips.device

        def chosen(p: float) -> torch.Tensor:
            return _per_clip((torch.rand(count, generator=generator) < p).to(device))

        jitter = chosen(cfg.jitter_p)
        brightness = _uniform(count, 1 - cfg.brightness, 1 + cfg.brightness, generator, device)
        contrast = _uniform(count, 1 - cfg.contrast, 1 + cfg.contrast, generator, device)
        saturation = _uniform(count, 1 - cfg.saturation, 1 + cfg.saturation, generator, device)
        hue = _uniform(count, -cfg.hue, cfg.hue, generator, device)
        jittered = (clips * _per_clip(brightness)).clamp(0, 1)
        mean = grayscale(jittered).mean(dim=(2, 3, 4), keepdim=True)
        jittered = ((jittered - mean) * _per_clip(contrast) + mean).clamp(0, 1)
        gray = grayscale(jittered)
        jittered = ((jittered - gray) * _per_clip(saturation) + gray).clamp(0, 1)
        jittered = adjust_hue(jittered, hue).clamp(0, 1)
        clips = torch.where(jitter, jittered, clips)
        clips = torch.where(chosen(cfg.grayscale_p), grayscale(clips), clips)
        sigma = _uniform(count, *cfg.blur_sigma, generator, device)
        clips = torch.where(chosen(cfg.blur_p[view]), gaussian_blur(clips, sigma), clips)
        clips = torch.where(chosen(cfg.solarize_p[view]) & (clips >= 0.5), 1.0 - clips, clips)
        return clips
