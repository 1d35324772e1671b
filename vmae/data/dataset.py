"""The datasets a loader reads: random training clips and fixed views, over one video source.

``VideoSource`` is what both share: the videos of a manifest and how frames are read from one (the
frame cache's copy when there is one, else a decoder; frames per clip, stride, sampling mode;
unreadable files logged once per process). Over it:

- ``TrainingClips``: items ``(clips (k, C, T, H, W), label: int, skipped: int)``, ``k`` =
  ``clips_per_visit`` clips (repeated sampling) cut from ONE decode of the union of their frames,
  each with its own random start (or one shared, ``data.repeat_window``), crop (multi-scale, or
  random resized: ``data.crop``), flip and, where ``data.rand_augment`` is set, RandAugment draw; ``skipped`` counts unreadable videos
  passed over (replaced by the next index) to produce the item. ``labelled=False`` (pretraining):
  no augmentation depends on the label.
- ``FixedViews``: items ``(views (clips*crops, C, T, H, W), label: int, ok: bool)`` at fixed
  positions, what evaluation and the linear probe's features read; an unreadable video gives
  ``ok=False`` and an empty tensor, which ``collate_eval`` drops and counts.

One setting, ``output``, says what an item holds: ``"float"`` (normalised float32 clips), ``"uint8"``
(the same clips as uint8, normalised batched on the device: 4x fewer bytes through the workers'
shared memory and the host-to-device copy), or, for training only, ``"visits"``: a ``PendingVisit``
(frames + the crops and flips drawn for them) cut into clips on the device
(``vmae.data.device_augment``), with the same random draws as the other two.

Training randomness (clip starts, crops, flips) has two sources. An item asked for by a
``SampleKey(index, seed, epoch)`` (what a ``loaders.EpochSampler`` yields) draws from a generator
seeded by those three numbers: a function of (seed, epoch, index) only, whichever worker reads it and
whatever that worker read before, so one DataLoader with persistent workers serves every epoch of a
run and a resumed run repeats the augmentations exactly. An item asked for by a plain index draws
from the process's generator (``TrainingClips.rng``), seeded from the loader's worker seed.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal, NamedTuple, get_args

import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info

from vmae.config import DataConfig
from vmae.data import readers
from vmae.data.clip_augment import ClipRandAugment
from vmae.data.device_augment import PendingVisit, pending_visit
from vmae.data.frame_cache import FrameCache
from vmae.data.manifest import DatasetInfo, read_manifest
from vmae.data.sampling import sample_clips, union_indices
from vmae.data.transforms import (
    CropBox,
    eval_views,
    flip_decisions,
    multiscale_crop_box,
    random_resized_crop_box,
    normalize,
    resized_crop,
    to_model_layout,
)

log = logging.getLogger(__name__)

MAX_BAD_IN_A_ROW = 32  # training: consecutive unreadable videos tolerated before giving up

ClipOutput = Literal["float", "uint8", "visits"]
CLIP_OUTPUTS: tuple[str, ...] = get_args(ClipOutput)


class SampleKey(NamedTuple):
    """A training index with the draw it belongs to: its item's randomness is seeded by all three."""

    index: int
    seed: int
    epoch: int


class VideoSource:
    """The videos listed in ``manifest`` (a ``path,label`` CSV) and how clips of ``num_frames``
    frames are read from one; ``len()`` = videos."""

    def __init__(self, manifest: str | Path, info: DatasetInfo, cfg: DataConfig, num_frames: int) -> None:
        self.manifest = str(manifest)
        self.items = read_manifest(manifest, num_classes=info.num_classes, video_roots=info.allowed_roots())
        if not self.items:
            raise ValueError(f"{manifest}: no videos listed")
        self.info = info
        self.cfg = cfg
        self.num_frames = num_frames
        self.stride = cfg.frame_stride or info.frame_stride
        self.sampling_mode = info.sampling_mode if cfg.sampling == "dataset" else cfg.sampling
        self.cache = FrameCache(cfg.frame_cache) if FrameCache.exists(cfg.frame_cache) else None
        if cfg.frame_cache and self.cache is None:
            log.warning("frame cache %s has no index.json (build it with `vmae cache`); decoding videos",
                        cfg.frame_cache)
        self._reported: set[str] = set()

    def __len__(self) -> int:
        return len(self.items)

    def open_video(self, path: str) -> readers.VideoReader:
        """The frame cache's copy of ``path`` when the cache has it, else a decoder."""
        if self.cache is not None and path in self.cache:
            return self.cache.open(path)
        return readers.open_reader(path, self.cfg.reader)

    def decode_clips(self, path: str, num_clips: int, rng: np.random.Generator | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode the frames of ``num_clips`` clips of ``path`` in one read: training clips placed with
        ``rng`` (all in one window with ``data.repeat_window``), or, with ``rng=None``, evaluation clips
        at fixed positions.

        Returns ``(frames uint8 (F, H, W, 3), positions int64 (num_clips, T))``: the sorted union
        of the clips' frames, and clip j = ``frames[positions[j]]``.
        """
        reader = self.open_video(path)
        one_window = rng is not None and self.cfg.repeat_window
        clips = sample_clips(
            self.sampling_mode, reader.num_frames, self.num_frames, self.stride, 1 if one_window else num_clips,
            train=rng is not None, rng=rng,
        )
        clips = clips * num_clips if one_window else clips
        frames, positions = union_indices(clips)
        return torch.from_numpy(reader.get(frames)), torch.from_numpy(np.stack(positions))

    def report_bad(self, err: readers.VideoReadError) -> None:
        """Log an unreadable video, once per path and process."""
        if err.path not in self._reported:
            self._reported.add(err.path)
            log.warning("skipping unreadable video %s: %s", err.path, err.reason)

    def finish(self, views: torch.Tensor, output: ClipOutput) -> torch.Tensor:
        """uint8 (V, 3, T, S, S) -> float32 normalised (``output="float"``), or as it is."""
        return normalize(views, self.cfg.mean, self.cfg.std) if output == "float" else views


def _check_output(output: str, allowed: tuple[str, ...], what: str) -> None:
    if output not in allowed:
        raise ValueError(f"{what} output={output!r}: expected one of {', '.join(allowed)}")


class SourceDataset(Dataset):
    """A dataset of one item a video of ``self.source`` (a ``VideoSource``)."""

    source: VideoSource

    def __len__(self) -> int:
        return len(self.source)

    @property
    def manifest(self) -> str:
        return self.source.manifest

    @property
    def info(self) -> DatasetInfo:
        return self.source.info


class TrainingClips(SourceDataset):
    """Randomly placed, cropped and flipped clips of ``source``'s videos at ``img_size`` pixels."""

    def __init__(self, source: VideoSource, img_size: int, clips_per_visit: int = 1,
                 output: ClipOutput = "float", labelled: bool = True) -> None:
        if clips_per_visit < 1:
            raise ValueError(f"clips_per_visit={clips_per_visit}: expected >= 1")
        _check_output(output, CLIP_OUTPUTS, "TrainingClips")
        self.source = source
        self.img_size = img_size
        self.clips_per_visit = clips_per_visit
        self.output = output
        self.labelled = labelled
        self.flip = source.cfg.flip and source.info.flip_allowed
        self.rand_augment = ClipRandAugment(source.cfg.rand_augment, img_size) if source.cfg.rand_augment else None
        self._rng: np.random.Generator | None = None
        self._rng_seed: int | None = None

    def rng(self) -> np.random.Generator:
        """This process's Generator (for items asked for by a plain index), seeded from torch's seed
        of the worker (or of the main process).

        DataLoader workers get ``base_seed + worker_id`` from the loader's torch Generator, so the
        augmentations are reproducible for a given loader seed, and differ between workers.
        """
        worker = get_worker_info()
        seed = worker.seed if worker is not None else torch.initial_seed()
        if self._rng is None or self._rng_seed != seed:
            self._rng = np.random.default_rng(seed)
            self._rng_seed = seed
        return self._rng

    def __getitem__(self, index: int | SampleKey) -> tuple[torch.Tensor | PendingVisit, int, int]:
        """The item of video ``index``, its randomness seeded by the key or, for a plain index, drawn
        from ``rng()``."""
        if isinstance(index, SampleKey):
            return self._item(index.index, np.random.default_rng([index.seed, index.epoch, index.index]))
        return self._item(index, self.rng())

    def _item(self, index: int, rng: np.random.Generator) -> tuple[torch.Tensor | PendingVisit, int, int]:
        items = self.source.items
        attempts = min(len(items), MAX_BAD_IN_A_ROW)
        for skipped in range(attempts):
            path, label = items[(index + skipped) % len(items)]
            try:
                frames, positions = self.source.decode_clips(path, self.clips_per_visit, rng)
            except readers.VideoReadError as err:
                self.source.report_bad(err)
                continue
            clips, label = self._augment(frames, positions, label, rng)
            return clips, label, skipped
        raise RuntimeError(
            f"{self.manifest}: {attempts} videos in a row from row {index} ({items[index][0]}) "
            "are unreadable: expected decodable video files (see the warnings above)"
        )

    def _augment(self, frames: torch.Tensor, positions: torch.Tensor, label: int, rng: np.random.Generator
                 ) -> tuple[torch.Tensor | PendingVisit, int]:
        """Clips ``frames[positions[j]]`` -> (k, C, T, S, S) (or, for ``output="visits"``, the
        ``PendingVisit`` to cut them on the device), and the label after any flip.

        With a label-swapping flip (``flip_label_map[label] != label``) the whole visit flips
        together so that every clip keeps the same label; otherwise each clip flips on its own.
        Unlabelled (``labelled=False``, pretraining) the whole visit flips together whatever its
        label: nothing a pretraining run sees depends on the label (MoCo v3's two views keep one
        direction of motion). Each clip is cropped, resized, flipped and written in the model layout
        with one copy.
        """
        k = len(positions)
        flip_map = self.info.flip_label_map
        swap = self.flip and flip_map[label] != label
        together = swap or not self.labelled
        flips = flip_decisions(k, rng, together=together) if self.flip else np.zeros(k, dtype=bool)
        height, width = frames.shape[1:3]
        boxes = [self._crop_box(height, width, rng) for _ in range(k)]
        if swap and flips[0] and self.labelled:
            label = flip_map[label]
        if self.rand_augment is not None:
            frames, positions = self._rand_augment(frames, positions, rng)
        if self.output == "visits":
            return pending_visit(frames, positions, boxes, flips), label
        clips = torch.empty((k, 3, self.source.num_frames, self.img_size, self.img_size), dtype=torch.uint8)
        for clip_out, index, box, flip in zip(clips, positions, boxes, flips):
            clip = resized_crop(frames, box, self.img_size, index)  # (T, 3, S, S)
            clip_out.copy_((clip.flip(-1) if flip else clip).movedim(-3, -4))
        return self.source.finish(clips, self.output), label

    def _crop_box(self, height: int, width: int, rng: np.random.Generator) -> CropBox:
        """One clip's crop window: ``data.crop`` "multiscale" or "resized"."""
        cfg = self.source.cfg
        if cfg.crop == "resized":
            return random_resized_crop_box(height, width, cfg.crop_area, cfg.crop_ratio, rng)
        return multiscale_crop_box(height, width, self.img_size, cfg.scales, rng)

    def _rand_augment(self, frames: torch.Tensor, positions: torch.Tensor, rng: np.random.Generator
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """Each clip's frames through its own RandAugment draw, before the crop (as the official
        fine-tuning): frames uint8 (F, H, W, 3), positions (k, T) -> the k clips' augmented frames
        uint8 (k * T, H, W, 3) and positions (k, T) into them."""
        k, t = positions.shape
        augmented = torch.cat([self.rand_augment(frames[index], rng) for index in positions])
        return augmented, torch.arange(k * t).view(k, t)


class FixedViews(SourceDataset):
    """``clips x crops`` views at fixed positions of each of ``source``'s videos, at ``img_size``
    pixels (``clips`` spread over the video, ``crops`` across its longer side)."""

    def __init__(self, source: VideoSource, img_size: int, clips: int, crops: int,
                 output: ClipOutput = "float") -> None:
        _check_output(output, ("float", "uint8"), "FixedViews")
        self.source = source
        self.img_size = img_size
        self.clips = clips
        self.crops = crops
        self.output = output

    def path(self, index: int) -> str:
        """The manifest path of video ``index``."""
        return self.source.items[index][0]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, bool]:
        path, label = self.source.items[index]
        try:
            frames, positions = self.source.decode_clips(path, self.clips)
        except readers.VideoReadError as err:
            self.source.report_bad(err)
            return torch.empty(0), label, False
        views = eval_views(frames, positions, self.img_size, self.crops)
        return self.source.finish(to_model_layout(views), self.output), label, True


def collate_eval(batch: list[tuple[torch.Tensor, int, bool]]) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Stack the readable ``FixedViews`` items: -> ``(views (B, V, C, T, H, W), labels (B,), n_bad)``.

    When every item of the batch is unreadable, ``views`` and ``labels`` have ``B = 0``.
    """
    good = [(views, label) for views, label, ok in batch if ok]
    n_bad = len(batch) - len(good)
    if not good:
        return torch.empty(0), torch.empty(0, dtype=torch.long), n_bad
    views = torch.stack([v for v, _ in good])
    labels = torch.tensor([label for _, label in good], dtype=torch.long)
    return views, labels, n_bad
