"""Training augmentation deferred to the device: workers decode, the batch is cropped on the GPU.

With ``data.augment_on: device`` (the default on CUDA) a training worker makes every random
choice of a visit exactly as when it augments itself (clip starts, crop windows, flips, from the
same generator in the same order) but hands over the decoded frame union and those choices
(``PendingVisit``) instead of the clips. ``collate_visits`` joins a batch of visits into one
``Visits`` (in the worker, in shared memory), the ``DevicePrefetcher`` moves it to the device, and
``render_clips`` cuts every clip of the batch there at once: crop, bilinear resize, flip.

``render_clips`` computes what ``vmae.data.transforms.resized_crop`` computes per clip in the
worker (``F.interpolate`` bilinear, ``align_corners=False``, no antialias, sampling only inside
the crop window), in float32 instead of torch's uint8 kernel: results differ by at most one grey
level. Each output pixel is a blend of four gathered source pixels, so the work is proportional
to the output (no per-clip kernel launches, no float copy of the frames).

What this saves: the resize, a large share of a worker's time per visit (docs/design-notes.md);
a visit's frame union is about as many bytes as its clips.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.utils.data import get_worker_info

from vmae.data.transforms import CropBox


class PendingVisit(NamedTuple):
    """One visit's decoded frames and the clips to cut from them (what a worker returns)."""

    frames: torch.Tensor  # uint8 (F, H, W, 3): the sorted union of the clips' frames
    positions: torch.Tensor  # int64 (k, T): clip j = frames[positions[j]]
    boxes: torch.Tensor  # int64 (k, 4): crop window of clip j, (top, left, height, width) in pixels
    flips: torch.Tensor  # bool (k,): clip j is flipped horizontally


class Visits(NamedTuple):
    """A batch of ``PendingVisit``s in a few tensors (what the DataLoader yields)."""

    frames: torch.Tensor  # uint8 (N, H, W, 3): every visit's frames in batch order, padded to the largest H, W
    frame_index: torch.Tensor  # int64 (B, k, T): clip j of visit b = frames[frame_index[b, j]]
    boxes: torch.Tensor  # int64 (B, k, 4): (top, left, height, width) within the visit's own frames
    flips: torch.Tensor  # bool (B, k)


def pending_visit(frames: torch.Tensor, positions: torch.Tensor, boxes: Sequence[CropBox], flips: np.ndarray
                  ) -> PendingVisit:
    """Pack a worker's choices: frames uint8 (F, H, W, 3), positions int64 (k, T), k boxes, k flips."""
    box_tensor = torch.tensor([[b.top, b.left, b.height, b.width] for b in boxes], dtype=torch.long)
    return PendingVisit(frames, positions, box_tensor.view(-1, 4), torch.from_numpy(np.asarray(flips, dtype=bool)))


def _empty(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """An uninitialised CPU tensor; in a DataLoader worker, in shared memory (as the default collate
    allocates), so handing it to the main process costs no copy."""
    if get_worker_info() is None:
        return torch.empty(shape, dtype=dtype)
    numel = int(np.prod(shape))
    storage = torch.UntypedStorage._new_shared(numel * dtype.itemsize)
    return torch.empty(0, dtype=dtype).set_(storage, 0, shape)


def collate_visits(batch: list[tuple[PendingVisit, int, int]]) -> tuple[Visits, torch.Tensor, torch.Tensor]:
    """Training items ``(PendingVisit, label, bad)`` -> ``(Visits, labels int64 (B,), bad int64 (B,))``.

    Frames of all visits go into one tensor with one copy each; visits smaller than the batch's
    largest frame are padded (the padding is never sampled: boxes stay inside each visit's frames).
    """
    visits = [item[0] for item in batch]
    height = max(v.frames.shape[1] for v in visits)
    width = max(v.frames.shape[2] for v in visits)
    counts = [v.frames.shape[0] for v in visits]
    frames = _empty((sum(counts), height, width, 3), torch.uint8)
    offsets = np.cumsum([0] + counts[:-1])
    for visit, offset, count in zip(visits, offsets, counts):
        target = frames[offset:offset + count]
        h, w = visit.frames.shape[1:3]
        if (h, w) != (height, width):
            target.zero_()
        target[:, :h, :w].copy_(visit.frames)
    frame_index = torch.stack([v.positions + int(offset) for v, offset in zip(visits, offsets)])
    labels = torch.tensor([item[1] for item in batch], dtype=torch.long)
    bad = torch.tensor([item[2] for item in batch], dtype=torch.long)
    return Visits(frames, frame_index, torch.stack([v.boxes for v in visits]),
                  torch.stack([v.flips for v in visits])), labels, bad


def bilinear_taps(start: torch.Tensor, length: torch.Tensor, size: int, flip: torch.Tensor | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Source pixels of resizing windows ``[start, start + length)`` to ``size`` samples, as
    ``F.interpolate(mode="bilinear", align_corners=False, antialias=False)`` places them.

    start, length: int64 (n,); flip: bool (n,), reverses a window's samples.
    Returns ``(lo, hi, frac)``, each (n, size): sample i = ``(1 - frac) * x[lo] + frac * x[hi]``,
    ``lo`` / ``hi`` absolute pixel indices inside the window.
    """
    out = torch.arange(size, dtype=torch.float32, device=start.device)
    scale = length.float()[:, None] / size
    src = ((out + 0.5) * scale - 0.5).clamp_(min=0)  # (n, size), window coordinates
    lo = src.long()  # floor (src >= 0), and <= length - 1
    hi = torch.minimum(lo + 1, (length - 1)[:, None])  # the last pixel repeats at the window's edge
    frac = src - lo
    lo, hi = lo + start[:, None], hi + start[:, None]
    if flip is not None:
        flipped = flip[:, None]
        lo, hi, frac = (torch.where(flipped, t.flip(-1), t) for t in (lo, hi, frac))
    return lo, hi, frac


def render_clips(visits: Visits, img_size: int) -> torch.Tensor:
    """Every clip of a batch of visits, cropped, resized to ``img_size`` and flipped, on the
    visits' device -> uint8 (B, k, 3, T, S, S), the layout the workers produce themselves."""
    b, k, t = visits.frame_index.shape
    boxes, n = visits.boxes.view(b * k, 4), b * k
    y_lo, y_hi, y_frac = bilinear_taps(boxes[:, 0], boxes[:, 2], img_size)
    x_lo, x_hi, x_frac = bilinear_taps(boxes[:, 1], boxes[:, 3], img_size, visits.flips.view(n))
    frame = visits.frame_index.view(n, t, 1, 1)

    def tap(rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:  # -> float (n, T, S, S, 3)
        return visits.frames[frame, rows.view(n, 1, img_size, 1), cols.view(n, 1, 1, img_size)].float()

    wx = x_frac.view(n, 1, 1, img_size, 1)
    top = tap(y_lo, x_lo).lerp_(tap(y_lo, x_hi), wx)  # in place: at most four float clips at a time
    bottom = tap(y_hi, x_lo).lerp_(tap(y_hi, x_hi), wx)
    clips = top.lerp_(bottom, y_frac.view(n, 1, img_size, 1, 1)).round_().clamp_(0, 255)
    clips = clips.to(torch.uint8).permute(0, 4, 1, 2, 3)  # (n, 3, T, S, S)
    return clips.contiguous().view(b, k, 3, t, img_size, img_size)


class RenderClips:
    """The training loop's batch transform for deferred augmentation:
    ``(Visits, labels, bad)`` -> ``(clips uint8 (B, k, 3, T, S, S), labels, bad)``.

    ``compile=True`` runs ``render_clips`` through ``torch.compile`` (dynamic shapes: the number
    of frames changes every batch), which fuses the four gathers and the blends into one kernel:
    about 4x faster than eager on CPU (2 threads); on a GPU it leaves out the eager version's float
    temporaries (each four times the uint8 output, several written and read per clip).
    """

    def __init__(self, img_size: int, compile: bool = False) -> None:
        self.img_size = img_size
        self.render = torch.compile(render_clips, dynamic=True, fullgraph=True) if compile else render_clips

    def __call__(self, batch: tuple[Visits, Any, Any]) -> tuple[torch.Tensor, Any, Any]:
        visits, labels, bad = batch
        return self.render(visits, self.img_size), labels, bad
