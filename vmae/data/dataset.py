"""``ClipDataset``: clips of the videos of a manifest, decoded once per visit (its samplers and
loaders, and the path of a batch to the training step: ``vmae.data.loaders``).

Training items are ``(clips: float32 (k, C, T, H, W), label: int, bad: int)``: ``k`` =
``clips_per_visit`` clips (repeated sampling) cut from ONE decode of the union of their frames,
each with its own random start, multi-scale crop and flip. ``bad`` counts unreadable videos that
were skipped (replaced by the next index) to produce the item. With ``normalize=False`` the clips
are uint8; with ``defer_augmentation=True`` the item holds a ``PendingVisit`` (frames + the crops
and flips drawn for them) in place of the clips, to be cut on the device
(``vmae.data.device_augment``).

Evaluation items are ``(views: float32 (V, C, T, H, W), label: int, ok: bool)`` with
``V = test_clips * test_crops``; an unreadable video gives ``ok=False`` and an empty tensor, which
``collate_eval`` drops and counts.

Training randomness (clip starts, crops, flips) has two sources. An item asked for by a
``SampleKey(index, seed, epoch)`` (what a ``loaders.EpochSampler`` yields) draws from a generator seeded by
those three numbers: a function of (seed, epoch, index) only, whichever worker reads it and whatever
that worker read before, so one DataLoader with persistent workers serves every epoch of a run and
a resumed run repeats the augmentations exactly. An item asked for by a plain index draws from the
process's generator (``ClipDataset.rng``), seeded from the loader's worker seed.

Each unreadable file is logged once (per process) with its path. With ``DataConfig.frame_cache``
naming a built frame cache (``vmae cache``), frames come from its memory-mapped arrays instead.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info

from vmae.config import DataConfig
from vmae.data import readers
from vmae.data.frame_cache import FrameCache
from vmae.data.manifest import DatasetInfo, read_manifest
from vmae.data.sampling import sample_clips, union_indices
from vmae.data.device_augment import PendingVisit, pending_visit
from vmae.data.transforms import (
    eval_views,
    flip_decisions,
    multiscale_crop_box,
    normalize,
    resized_crop,
    to_model_layout,
)

log = logging.getLogger(__name__)

MAX_BAD_IN_A_ROW = 32  # training: consecutive unreadable videos tolerated before giving up


class SampleKey(NamedTuple):
    """A training index with the draw it belongs to: its item's randomness is seeded by all three."""

    index: int
    seed: int
    epoch: int


class ClipDataset(Dataset):
    """Clips of the videos listed in ``manifest`` (a ``path,label`` CSV); ``len()`` = videos."""

    def __init__(
        self,
        manifest: str | Path,
        info: DatasetInfo,
        cfg: DataConfig,
        num_frames: int,
        img_size: int,
        train: bool,
        clips_per_visit: int = 1,
        normalize: bool = True,
        defer_augmentation: bool = False,
    ) -> None:
        """``normalize=False`` returns uint8 clips in the same layout, to be normalised batched on the
        device with ``vmae.data.transforms.normalize(batch, cfg.mean, cfg.std)``: 4x less work,
        inter-process and host-to-device traffic per clip than float32 from the worker.
        ``defer_augmentation=True`` (training, uint8 only) returns each visit's decoded frames and
        its crops and flips instead of clips (``vmae.data.device_augment``), the same draws as
        without it: the loader's batches are ``Visits``, cut into clips by ``RenderClips``."""
        if clips_per_visit < 1:
            raise ValueError(f"clips_per_visit={clips_per_visit}: expected >= 1")
        if defer_augmentation and (normalize or not train):
            raise ValueError("defer_augmentation=True needs train=True and normalize=False (uint8 clips)")
        self.manifest = str(manifest)
        self.items = read_manifest(manifest, num_classes=info.num_classes, video_roots=info.allowed_roots())
        if not self.items:
            raise ValueError(f"{manifest}: no videos listed")
        self.info = info
        self.cfg = cfg
        self.num_frames = num_frames
        self.img_size = img_size
        self.train = train
        self.clips_per_visit = clips_per_visit
        self.normalize = normalize
        self.defer_augmentation = defer_augmentation
        self.stride = cfg.frame_stride or info.frame_stride
        self.flip = train and cfg.flip and info.flip_allowed
        self.cache = FrameCache(cfg.frame_cache) if FrameCache.exists(cfg.frame_cache) else None
        if cfg.frame_cache and self.cache is None:
            log.warning("frame cache %s has no index.json (build it with `vmae cache`); decoding videos",
                        cfg.frame_cache)
        self._rng: np.random.Generator | None = None
        self._rng_seed: int | None = None
        self._reported: set[str] = set()

    def __len__(self) -> int:
        return len(self.items)

    # ------------------------------------------------------------------ randomness

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

    # ------------------------------------------------------------------ decoding

    def open_video(self, path: str) -> readers.VideoReader:
        """The frame cache's copy of ``path`` when the cache has it, else a decoder."""
        if self.cache is not None and path in self.cache:
            return self.cache.open(path)
        return readers.open_reader(path, self.cfg.reader)

    def decode_clips(self, path: str, num_clips: int, rng: np.random.Generator | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode the frames of ``num_clips`` clips of ``path`` in one read (training clips placed
        with ``rng``, evaluation clips, ``rng=None``, at fixed positions).

        Returns ``(frames uint8 (F, H, W, 3), positions int64 (num_clips, T))``: the sorted union
        of the clips' frames, and clip j = ``frames[positions[j]]``.
        """
        reader = self.open_video(path)
        clips = sample_clips(
            self.info.sampling_mode, reader.num_frames, self.num_frames, self.stride, num_clips,
            train=self.train, rng=rng,
        )
        frames, positions = union_indices(clips)
        return torch.from_numpy(reader.get(frames)), torch.from_numpy(np.stack(positions))

    def _report_bad(self, err: readers.VideoReadError) -> None:
        if err.path not in self._reported:
            self._reported.add(err.path)
            log.warning("skipping unreadable video %s: %s", err.path, err.reason)

    # ------------------------------------------------------------------ items

    def __getitem__(self, index: int | SampleKey) -> tuple[torch.Tensor, int, Any]:
        """A training item, its randomness seeded by the key or, for a plain index, drawn from
        ``rng()``; or an evaluation item (plain indices only)."""
        if isinstance(index, SampleKey):
            return self._train_item(index.index, np.random.default_rng([index.seed, index.epoch, index.index]))
        return self._train_item(index, self.rng()) if self.train else self._eval_item(index)

    def _train_item(self, index: int, rng: np.random.Generator) -> tuple[torch.Tensor | PendingVisit, int, int]:
        attempts = min(len(self.items), MAX_BAD_IN_A_ROW)
        for bad in range(attempts):
            path, label = self.items[(index + bad) % len(self.items)]
            try:
                frames, positions = self.decode_clips(path, self.clips_per_visit, rng)
            except readers.VideoReadError as err:
                self._report_bad(err)
                continue
            views, label = self._augment(frames, positions, label, rng)
            return views, label, bad
        raise RuntimeError(
            f"{self.manifest}: {attempts} videos in a row from row {index} ({self.items[index][0]}) "
            "are unreadable: expected decodable video files (see the warnings above)"
        )

    def _augment(self, frames: torch.Tensor, positions: torch.Tensor, label: int, rng: np.random.Generator
                 ) -> tuple[torch.Tensor | PendingVisit, int]:
        """Clips ``frames[positions[j]]`` -> (k, C, T, S, S) (or, deferred, the ``PendingVisit`` to
        cut them on the device), and the label after any flip.

        With a label-swapping flip (``flip_label_map[label] != label``) the whole visit flips
        together so that every clip keeps the same label; otherwise each clip flips on its own.
        Each clip is cropped, resized, flipped and written in the model layout with one copy.
        """
        k = len(positions)
        swap = self.flip and self.info.flip_label_map[label] != label
        flips = flip_decisions(k, rng, together=swap) if self.flip else np.zeros(k, dtype=bool)
        height, width = frames.shape[1:3]
        boxes = [multiscale_crop_box(height, width, self.img_size, self.cfg.scales, rng) for _ in range(k)]
        if swap and flips[0]:
            label = self.info.flip_label_map[label]
        if self.defer_augmentation:
            return pending_visit(frames, positions, boxes, flips), label
        views = torch.empty((k, 3, self.num_frames, self.img_size, self.img_size), dtype=torch.uint8)
        for view, index, box, flip in zip(views, positions, boxes, flips):
            clip = resized_crop(frames, box, self.img_size, index)  # (T, 3, S, S)
            view.copy_((clip.flip(-1) if flip else clip).movedim(-3, -4))
        return self._finish(views), label

    def _finish(self, views: torch.Tensor) -> torch.Tensor:
        """uint8 (V, 3, T, S, S) -> float32 normalised, or as it is with ``normalize=False``."""
        return normalize(views, self.cfg.mean, self.cfg.std) if self.normalize else views

    def _eval_item(self, index: int) -> tuple[torch.Tensor, int, bool]:
        path, label = self.items[index]
        try:
            frames, positions = self.decode_clips(path, self.cfg.test_clips)
        except readers.VideoReadError as err:
            self._report_bad(err)
            return torch.empty(0), label, False
        views = eval_views(frames, positions, self.img_size, self.cfg.test_crops)
        return self._finish(to_model_layout(views)), label, True


def collate_eval(batch: list[tuple[torch.Tensor, int, bool]]) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Stack the readable eval items: -> ``(views (B, V, C, T, H, W), labels (B,), n_bad)``.

    When every item of the batch is unreadable, ``views`` and ``labels`` have ``B = 0``.
    """
    good = [(views, label) for views, label, ok in batch if ok]
    n_bad = len(batch) - len(good)
    if not good:
        return torch.empty(0), torch.empty(0, dtype=torch.long), n_bad
    views = torch.stack([v for v, _ in good])
    labels = torch.tensor([label for _, label in good], dtype=torch.long)
    return views, labels, n_bad


