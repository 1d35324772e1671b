"""A fine-tuning batch as training sees it, for `vmae show --recipe`: the first videos of a prepared
folder's train.csv through a fine-tuning recipe's augmentations (sampling, RandAugment, crop, flip,
repeated clips, then random erasing on the normalised clips), brought back to pixels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from vmae.config import FinetuneConfig, build_config
from vmae.data.clip_augment import ClipErasing
from vmae.data.dataset import SampleKey, TrainingClips, VideoSource
from vmae.data.manifest import DatasetInfo, read_classes
from vmae.data.transforms import normalize


def augmented_batch(folder: str | Path, recipe: str | Path, overrides: list[str], videos: int, seed: int = 0
                    ) -> tuple[list[str], list[tuple[int, np.ndarray]]]:
    """Row names and ``[(row, uint8 (T, S, S, 3)), ...]``: each of the first ``videos`` training videos'
    ``data.repeated_sampling`` clips, drawn as epoch 0 of seed ``seed`` draws them, erased as the
    training step erases them (``data.erase_p``), un-normalised for display (erased noise clipped)."""
    folder = Path(folder)
    cfg = build_config(FinetuneConfig, recipe, overrides)
    source = VideoSource(folder / "train.csv", DatasetInfo.load(folder), cfg.data, cfg.model.num_frames)
    clips = TrainingClips(source, cfg.model.img_size, cfg.data.repeated_sampling, output="uint8")
    items = [clips[SampleKey(i, seed, 0)] for i in range(min(videos, len(clips)))]
    video = normalize(torch.stack([item[0] for item in items]).flatten(0, 1), cfg.data.mean, cfg.data.std)
    if cfg.data.erase_p > 0:
        ClipErasing(cfg.data.erase_p, "cpu")(video, seed=f"{seed}/0/0/0")  # (B*k, 3, T, S, S)
    mean = torch.tensor(cfg.data.mean).view(3, 1, 1, 1)
    std = torch.tensor(cfg.data.std).view(3, 1, 1, 1)
    pixels = ((video * std + mean) * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 4, 1)
    classes, k = read_classes(folder), cfg.data.repeated_sampling
    names = [f"{classes[label]} #{j}" for _, label, _ in items for j in range(k)]
    return names, [(row, clip.numpy()) for row, clip in enumerate(pixels)]
