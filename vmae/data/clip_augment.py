"""The official fine-tuning's clip augmentations, on timm's: RandAugment and random erasing, each the
same in every frame of a clip (MCG-NJU/VideoMAE kinetics.py ``_aug_frame``; docs/official_recipes.md).

- ``ClipRandAugment``: timm's ``rand_augment_transform`` (PIL ops) applied to every frame of a clip
  with ONE draw: the ops are chosen once a clip and each frame replays the same ``random`` state, so
  every op's probability, magnitude and sign come out equal in all frames (the official
  ``rand_augment.py`` passes the frame list to each op instead). In a worker, on the decoded frames
  before the crop, as the official code runs it.
- ``ClipErasing``: timm's ``RandomErasing`` (mode ``pixel``, one box) on a normalised clip seen as
  one image of ``C * T`` channels, so one box a clip sits at the same place in every frame and is
  filled with fresh per-pixel noise in each: the official ``random_erasing.py`` ``_erase_cube``
  (``cube=True``). On the training device, after normalisation, before mixup.

Both keep Python's global ``random`` state as they found it: their draws come from a seed of their
own (a clip's from the item's generator; a batch's boxes from the run's seed, rank and step).
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import numpy as np
import torch
from PIL import Image
from timm.data.auto_augment import rand_augment_transform
from timm.data.random_erasing import RandomErasing


@contextlib.contextmanager
def python_random_seeded(seed: int | str) -> Iterator[None]:
    """Python's ``random`` seeded with ``seed`` inside the block, restored to its state after it."""
    state = random.getstate()
    random.seed(seed)
    try:
        yield
    finally:
        random.setstate(state)


class ClipRandAugment:
    """timm RandAugment (``config``, e.g. ``rand-m7-n4-mstd0.5-inc1``) with one draw a clip.

    ``hparams`` as the official ``create_random_augment``: translations relative to the frame (timm's
    default 45 %), ``translate_const`` = 45 % of ``img_size``, bicubic resampling, grey fill.
    """

    def __init__(self, config: str, img_size: int) -> None:
        hparams = {"translate_const": int(img_size * 0.45), "interpolation": Image.BICUBIC}
        self.transform = rand_augment_transform(config, hparams)

    def __call__(self, frames: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """frames: uint8 (T, H, W, 3) of one clip -> uint8 (T, H, W, 3), every frame through the same ops."""
        ops = [self.transform.ops[i] for i in rng.integers(len(self.transform.ops), size=self.transform.num_layers)]
        seed = int(rng.integers(2**63))
        out = []
        for frame in frames.numpy():
            image = Image.fromarray(frame)
            with python_random_seeded(seed):
                for op in ops:
                    image = op(image)
            out.append(np.asarray(image))
        return torch.from_numpy(np.stack(out))


class ClipErasing:
    """timm RandomErasing of one box a clip, with probability ``p``, on normalised clips in place."""

    def __init__(self, p: float, device: torch.device | str) -> None:
        self.erase = RandomErasing(p, mode="pixel", max_count=1, device=str(device))

    def __call__(self, video: torch.Tensor, seed: str) -> torch.Tensor:
        """video: float (B, C, T, H, W), normalised -> the same tensor, each clip's box filled with
        N(0, 1) noise; the boxes are drawn from ``seed`` (run seed, rank, step, micro-step), the noise
        from torch's generator on the device (seeded by the training loop each epoch)."""
        b, c, t, h, w = video.shape
        with python_random_seeded(seed):
            for clip in video:
                self.erase(clip.view(c * t, h, w))  # one image of C*T channels: one box in every frame
        return video
