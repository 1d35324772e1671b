"""Clip transforms on uint8 frame tensors, vectorised over frames (no per-frame PIL).

Training: multi-scale crop as the official ``GroupMultiScaleCrop`` (crop width and height each
chosen from ``scales`` x short side, at most ``max_distort`` scale steps apart, at one of 13 fixed
positions; the pretraining crop) or an Inception-style random resized crop (the official
fine-tuning's), bilinear resize to ``img_size`` x ``img_size``, optional horizontal flip (decided by
``flip_decisions``, applied as ``x.flip(-1)`` while the clip is copied into its output).
Test: short-side resize to ``img_size``, then 1 (centre) or 3 (start/centre/end along the long
side) square crops. ``normalize`` turns uint8 ``(C, T, H, W)`` clips into mean/std-normalised floats.

Layouts: frames ``uint8 (T, H, W, 3)`` in; ``uint8 (T, 3, H, W)`` views between steps (what
``torch.nn.functional.interpolate`` wants, channels-last in memory, resized by torch's uint8
kernel); ``to_model_layout`` -> uint8 ``(..., 3, T, H, W)``; ``float32`` only out of ``normalize``,
the last step (in the worker, or batched on the GPU).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class CropBox:
    """A crop window in pixels."""

    top: int
    left: int
    height: int
    width: int


def fixed_crop_offsets(image_h: int, image_w: int, crop_h: int, crop_w: int) -> list[tuple[int, int]]:
    """The 13 ``(top, left)`` positions of the official multi-scale crop (``more_fix_crop``).

    Corners, centre, edge midpoints and the four quarter points of a 4 x 4 step grid.
    """
    h_step = (image_h - crop_h) // 4
    w_step = (image_w - crop_w) // 4
    grid = [(0, 0), (0, 4), (4, 0), (4, 4), (2, 2),  # corners and centre
            (2, 0), (2, 4), (4, 2), (0, 2),  # edge midpoints
            (1, 1), (1, 3), (3, 1), (3, 3)]  # quarter points
    return [(i * h_step, j * w_step) for i, j in grid]


def multiscale_crop_box(
    image_h: int,
    image_w: int,
    img_size: int,
    scales: Sequence[float],
    rng: np.random.Generator,
    max_distort: int = 1,
) -> CropBox:
    """Draw a multi-scale crop window.

    Candidate sizes are ``int(short_side * scale)``; a size within 3 px of ``img_size`` snaps to
    ``img_size`` (as the official code does). Height and width take scale indices ``i`` and ``j``
    with ``|i - j| <= max_distort``, so the aspect ratio changes only a little.
    """
    short = min(image_h, image_w)
    sizes = [int(short * s) for s in scales]
    sizes = [img_size if abs(s - img_size) < 3 else s for s in sizes]
    sizes = [min(max(s, 1), short) for s in sizes]
    pairs = [(h, w) for i, h in enumerate(sizes) for j, w in enumerate(sizes) if abs(i - j) <= max_distort]
    crop_h, crop_w = pairs[int(rng.integers(len(pairs)))]
    offsets = fixed_crop_offsets(image_h, image_w, crop_h, crop_w)
    top, left = offsets[int(rng.integers(len(offsets)))]
    return CropBox(top, left, crop_h, crop_w)


def random_resized_crop_box(
    image_h: int,
    image_w: int,
    area: Sequence[float],
    ratio: Sequence[float],
    rng: np.random.Generator,
    attempts: int = 10,
) -> CropBox:
    """Draw an Inception-style crop window (torchvision ``RandomResizedCrop``; the official
    fine-tuning's ``random_resized_crop``): a share of the frame's area uniform in ``area``, a
    width / height ratio log-uniform in ``ratio``, at a uniform position; after ``attempts`` draws
    that do not fit, the centred crop of the whole frame clamped to ``ratio``."""
    log_ratio = (np.log(ratio[0]), np.log(ratio[1]))
    for _ in range(attempts):
        target = rng.uniform(area[0], area[1]) * image_h * image_w
        aspect = float(np.exp(rng.uniform(*log_ratio)))
        w = int(round(np.sqrt(target * aspect)))
        h = int(round(np.sqrt(target / aspect)))
        if 0 < w <= image_w and 0 < h <= image_h:
            return CropBox(int(rng.integers(0, image_h - h + 1)), int(rng.integers(0, image_w - w + 1)), h, w)
    in_ratio = image_w / image_h
    h, w = image_h, image_w
    if in_ratio < min(ratio):
        h = int(round(image_w / min(ratio)))
    elif in_ratio > max(ratio):
        w = int(round(image_h * max(ratio)))
    return CropBox((image_h - h) // 2, (image_w - w) // 2, h, w)


def channels_first(frames: torch.Tensor) -> torch.Tensor:
    """uint8 (..., T, H, W, 3) -> a (..., T, 3, H, W) view (channels-last memory, no copy)."""
    return frames.movedim(-1, -3)


def resize(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of uint8 (N, 3, H, W) to (N, 3, *size), antialias off, still uint8.

    Resizing in uint8 (as PIL does in the official pipeline) uses torch's vectorised uint8 kernel,
    several times faster than float; results differ from a float resize by at most 1 grey level.
    """
    if tuple(frames.shape[-2:]) == tuple(size):
        return frames
    return F.interpolate(frames, size=size, mode="bilinear", align_corners=False, antialias=False)


def resized_crop(frames: torch.Tensor, box: CropBox, img_size: int, index: torch.Tensor | None = None) -> torch.Tensor:
    """Cut ``box`` from ``frames[index]`` and resize it to ``img_size`` x ``img_size``.

    frames: uint8 (F, H, W, 3); index: int64 (T,) frames of the clip (default: all F), gathered
    after cropping so only the window is copied. Returns uint8 (T, 3, S, S).
    """
    window = frames[:, box.top:box.top + box.height, box.left:box.left + box.width]
    window = window[index] if index is not None else window.contiguous()
    return resize(channels_first(window), (img_size, img_size))


def flip_decisions(count: int, rng: np.random.Generator, together: bool = False, p: float = 0.5) -> np.ndarray:
    """Which of ``count`` clips to flip horizontally (``x.flip(-1)``), each with probability ``p``;
    ``together=True`` draws once for all (a visit whose flip swaps its label). -> bool (count,)"""
    if together:
        return np.full(count, rng.random() < p)
    return rng.random(count) < p


def short_side_resize(frames: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (..., T, H, W, 3) -> uint8 (N, 3, H', W') with min(H', W') == size, N = all frames."""
    h, w = frames.shape[-3:-1]
    scale = size / min(h, w)
    new_hw = (size, max(size, round(w * scale))) if h <= w else (max(size, round(h * scale)), size)
    return resize(channels_first(frames.reshape(-1, h, w, 3)), new_hw)


def spatial_crops(frames: torch.Tensor, size: int, num_crops: int) -> list[torch.Tensor]:
    """1 centre crop, or 3 crops (start, centre, end) along the long side, of (N, 3, H, W) frames.

    Returns ``num_crops`` tensors (N, 3, size, size).
    """
    if num_crops not in (1, 3):
        raise ValueError(f"num_crops={num_crops}: expected 1 or 3")
    h, w = frames.shape[-2:]
    centre = ((h - size) // 2, (w - size) // 2)
    if num_crops == 1:
        positions = [centre]
    elif w >= h:
        positions = [(centre[0], 0), centre, (centre[0], w - size)]
    else:
        positions = [(0, centre[1]), centre, (h - size, centre[1])]
    return [frames[..., t:t + size, l:l + size] for t, l in positions]


def eval_views(frames: torch.Tensor, positions: torch.Tensor, img_size: int, num_crops: int) -> torch.Tensor:
    """Test-time views of several clips of one video, each decoded frame resized once.

    frames: uint8 (F, H, W, 3); positions: int64 (n, T), clip j = ``frames[positions[j]]``.
    Returns uint8 (n * num_crops, T, 3, S, S), clip-major (clip 0 crop 0, clip 0 crop 1, ...).
    """
    n, t = positions.shape
    resized = short_side_resize(frames, img_size)  # (F, 3, H', W')
    views = torch.stack([crop[positions] for crop in spatial_crops(resized, img_size, num_crops)], dim=1)
    return views.reshape(n * num_crops, t, 3, img_size, img_size)


def to_model_layout(x: torch.Tensor) -> torch.Tensor:
    """uint8 (..., T, 3, H, W) -> contiguous uint8 (..., 3, T, H, W), the model's clip layout.

    The channel de-interleave is done on bytes, 4x less memory traffic than on floats.
    """
    return x.movedim(-3, -4).contiguous()


def normalize(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 (..., 3, T, H, W) -> float32 ``(x / 255 - mean) / std``, on ``x``'s device.

    Works per clip in a worker or on a whole batch ``(B, k, 3, T, H, W)`` on the GPU.
    """
    std_t = torch.tensor(std, dtype=torch.float32, device=x.device) * 255.0
    scale = (1.0 / std_t).view(3, 1, 1, 1)
    bias = (-torch.tensor(mean, dtype=torch.float32, device=x.device) * 255.0).view(3, 1, 1, 1) * scale
    return x.float().mul_(scale).add_(bias)


def to_device_normalized(
    clips: torch.Tensor, device: torch.device, mean: Sequence[float], std: Sequence[float]
) -> torch.Tensor:
    """A loader batch (..., 3, T, H, W) -> float32 normalised clips on ``device``: uint8 batches
    (``output="uint8"``, the CUDA path) are normalised there, float ones were
    normalised by the workers already."""
    clips = clips.to(device, non_blocking=True)
    return normalize(clips, mean, std) if clips.dtype == torch.uint8 else clips
