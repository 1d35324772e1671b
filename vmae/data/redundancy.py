"""How much of a masked tubelet its neighbours give away: the redundancy VideoMAE's masking works against.

VideoMAE predicts each masked tubelet's pixels normalised per tubelet and channel
(``vmae.models.mae``: minus the mean, over the unbiased std + 1e-6). Where a tubelet is nearly the
one at the same place a time slot earlier, a random mask leaks it and a high ratio is needed for a
hard pretext; the paper argues real video is redundant in time and so needs 90%. ``redundancy``
measures it on the model's own targets: the pooled r^2 (squared Pearson correlation over every
pixel value of every pair) between a tubelet and the one at the same position one time slot
earlier (``temporal``), and the one to its right in the same slot (``spatial``). Flat tubelets
normalise to 0 and add nothing to either.

``clip_frames`` takes a clip as the model sees it (16 frames at a stride, the short side resized
and the centre cropped to the model's size), so real videos (decoded through vmae.data.readers)
and the synthetic ones are measured the same way (README: "The synthetic datasets").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vmae.data.readers import num_frames, read_frames
from vmae.data.transforms import short_side_resize, spatial_crops
from vmae.models.mae import patch_stats, patchify


@dataclass(frozen=True)
class Redundancy:
    """Pooled r^2 of normalised tubelets with their neighbour one slot earlier and to their right."""

    temporal: float
    spatial: float
    clips: int


def normalised_tubelets(clip: torch.Tensor, patch_size: int, tubelet_size: int) -> torch.Tensor:
    """clip: uint8 (T, H, W, 3) -> (T', H', W', t*p*p*3) float targets, each tubelet and channel
    normalised as VideoMAE's loss normalises them."""
    video = clip.permute(3, 0, 1, 2)[None].float() / 255.0  # (1, C, T, H, W)
    patches = patchify(video, patch_size, tubelet_size)
    pixels, mean, scale = patch_stats(patches, 3)
    grid = (clip.shape[0] // tubelet_size, clip.shape[1] // patch_size, clip.shape[2] // patch_size)
    return ((pixels - mean) / scale).reshape(*grid, -1)


def _pooled_r2(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.reshape(-1).double(), b.reshape(-1).double()
    a, b = a - a.mean(), b - b.mean()
    return float((a @ b) ** 2 / ((a @ a) * (b @ b)))


def redundancy(clips: list[torch.Tensor], patch_size: int, tubelet_size: int) -> Redundancy:
    """Pooled over ``clips`` (each uint8 (T, H, W, 3)): r^2 of every tubelet with the one a slot
    earlier at its place, and with the one to its right."""
    now, before, left, right = [], [], [], []
    for clip in clips:
        x = normalised_tubelets(clip, patch_size, tubelet_size)  # (T', H', W', K)
        now.append(x[1:])
        before.append(x[:-1])
        left.append(x[:, :, :-1])
        right.append(x[:, :, 1:])
    cat = torch.cat
    return Redundancy(_pooled_r2(cat([t.reshape(-1) for t in now]), cat([t.reshape(-1) for t in before])),
                      _pooled_r2(cat([t.reshape(-1) for t in left]), cat([t.reshape(-1) for t in right])),
                      len(clips))


def clip_frames(frames: np.ndarray, size: int) -> torch.Tensor:
    """uint8 (T, H, W, 3) -> (T, size, size, 3): the short side resized to ``size``, the centre crop."""
    resized = short_side_resize(torch.from_numpy(np.ascontiguousarray(frames)), size)  # (T, 3, H', W')
    return spatial_crops(resized, size, 1)[0].permute(0, 2, 3, 1).contiguous()


def video_clips(path: str | Path, num_frames_a_clip: int, stride: int, size: int, max_clips: int) -> list[torch.Tensor]:
    """Up to ``max_clips`` non-overlapping clips of ``num_frames_a_clip`` frames at ``stride`` from
    the start of a video file, as the model sees them (``clip_frames``)."""
    span = num_frames_a_clip * stride
    total = num_frames(path)
    starts = range(0, total - span + 1, span)[:max_clips]
    return [clip_frames(read_frames(path, np.arange(s, s + span, stride)), size) for s in starts]
