"""Loaders: how a batch of clips gets from the video files to the training step.

    EpochSampler    (seed, epoch)-ordered SampleKeys of this process's shard
 -> RunBatchSampler full (micro-)batches of keys, epoch after epoch, in one iteration
 -> DataLoader      workers: TrainingClips[key] decodes a video, cuts k clips (or defers the crops)
 -> RunLoader       that one iteration cut into epochs: make_loader(epoch) -> EpochBatches
 -> DevicePrefetcher (vmae.train.prefetch) pins, copies and applies batch_transform (RenderClips)

``vmae.train.batches.train_loaders`` builds the chain for a training process (its shard and batch
sizes); ``training_clips`` / ``fixed_views`` build the datasets at the model's clip size, and
``train_output`` / ``batch_transform`` decide what the workers hand over and what the device does
(``data.augment_on``). Evaluation batches come from ``build_loader`` over ``FixedViews``, put
together by ``collate_eval``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, DistributedSampler, Sampler

from vmae.config import DataConfig, ModelConfig
from vmae.data.dataset import (
    ClipOutput,
    FixedViews,
    SampleKey,
    TrainingClips,
    VideoSource,
    collate_eval,
)
from vmae.data.device_augment import RenderClips, collate_visits
from vmae.data.manifest import DatasetInfo


class EpochSampler(Sampler[SampleKey]):
    """The indices of a ``DistributedSampler`` as ``SampleKey(index, seed, epoch)``.

    ``set_epoch`` sets the epoch of both (the order and the keys). The epoch travels with each index
    to the loader's workers, which a ``set_epoch`` on the dataset would not reach: persistent workers
    hold the copy of the dataset made when they started.
    """

    def __init__(self, sampler: DistributedSampler, seed: int) -> None:
        self.sampler = sampler
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.sampler.set_epoch(epoch)

    def __iter__(self) -> Iterator[SampleKey]:
        seed, epoch = self.seed, self.epoch  # fixed when the epoch's iteration starts
        return (SampleKey(index, seed, epoch) for index in self.sampler)

    def __len__(self) -> int:
        return len(self.sampler)


class RunBatchSampler(Sampler[list[SampleKey]]):
    """Full batches of ``EpochSampler`` keys, epoch after epoch in ONE iteration: from the epoch set
    by ``set_epoch`` through epoch ``epochs - 1`` (``None``: without end), each epoch's incomplete
    last batch dropped. A DataLoader over it (``batch_sampler=``) keeps its workers decoding across
    epoch boundaries, where a loader iterated epoch by epoch waits at every epoch's start for its
    first batch. ``len()`` is one epoch's batches; ``RunLoader`` cuts the iteration into epochs.

    ``group`` (gradient accumulation): batches come in whole groups of ``group`` consecutive
    micro-batches, one optimiser step each; an epoch's keys that do not fill a whole group are
    dropped. Micro-batch j of a step holds keys ``j*b .. (j+1)*b - 1`` of the ``group * b`` keys the
    step would take at once, so the step sees the same videos with the same augmentations.
    """

    def __init__(self, sampler: EpochSampler, batch_size: int, epochs: int | None, group: int = 1) -> None:
        self.sampler = sampler
        self.batch_size = batch_size
        self.epochs = epochs
        self.group = group
        self.first_epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """The epoch the next iteration starts at."""
        self.first_epoch = epoch

    def __iter__(self) -> Iterator[list[SampleKey]]:
        epoch = self.first_epoch
        while self.epochs is None or epoch < self.epochs:
            self.sampler.set_epoch(epoch)
            keys = list(self.sampler)
            for start in range(0, len(self) * self.batch_size, self.batch_size):
                yield keys[start:start + self.batch_size]
            epoch += 1

    def __len__(self) -> int:
        return len(self.sampler) // (self.batch_size * self.group) * self.group


class RunLoader:
    """A training run's batches from one DataLoader iteration over a ``RunBatchSampler``, handed
    out an epoch at a time: ``epoch(e)`` is the iterable of epoch e's ``len()`` batches.

    Iterating the epochs in order continues that one iteration; any other epoch (the first one
    asked for, a resumed run's, or an epoch iterated again) starts a new iteration there, so the
    batches of epoch e are the same either way: a function of (seed, epoch) only.
    """

    def __init__(self, loader: DataLoader, batch_sampler: RunBatchSampler) -> None:
        self.loader = loader
        self.batch_sampler = batch_sampler
        self._iterator: Iterator | None = None
        self._next_epoch: int | None = None

    def __len__(self) -> int:
        return len(self.batch_sampler)

    def epoch(self, epoch: int) -> EpochBatches:
        return EpochBatches(self, epoch)

    def batches(self, epoch: int) -> Iterator:
        """Epoch ``epoch``'s batches, continuing the iteration where the previous epoch ended."""
        if self._iterator is None or self._next_epoch != epoch:
            self._next_epoch = None
            self.batch_sampler.set_epoch(epoch)
            self._iterator = iter(self.loader)
        for _ in range(len(self)):
            yield next(self._iterator)
        self._next_epoch = epoch + 1


class EpochBatches:
    """One epoch of a ``RunLoader``: ``len()`` batches, iterable (what the training loop takes)."""

    def __init__(self, run: RunLoader, epoch: int) -> None:
        self.run = run
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.run)

    def __iter__(self) -> Iterator:
        return self.run.batches(self.epoch)


def collate_fn(dataset: TrainingClips | FixedViews) -> Callable[[list], Any] | None:
    """How a batch of ``dataset``'s items is put together: ``collate_eval`` (fixed views),
    ``collate_visits`` (augmentation deferred to the device) or the default collate (clips)."""
    if isinstance(dataset, FixedViews):
        return collate_eval
    return collate_visits if dataset.output == "visits" else None


def _loader_options(dataset: TrainingClips | FixedViews, seed: int, num_workers: int, pin_memory: bool | None
                    ) -> dict[str, Any]:
    """What every loader of this project shares: seeded worker seeds, persistent workers, the
    dataset's collate function, and pinning (default: on with CUDA)."""
    generator = torch.Generator()
    generator.manual_seed(seed)
    return {"num_workers": num_workers, "collate_fn": collate_fn(dataset), "persistent_workers": num_workers > 0,
            "pin_memory": torch.cuda.is_available() if pin_memory is None else pin_memory, "generator": generator}


def build_loader(
    dataset: TrainingClips | FixedViews,
    batch_size: int,
    shuffle: bool,
    seed: int,
    num_workers: int,
    drop_last: bool,
    sampler: Sampler | None = None,
    pin_memory: bool | None = None,
) -> DataLoader:
    """A DataLoader over ``dataset``: seeded shuffling and worker seeds, persistent workers, and
    ``collate_eval`` for fixed views. ``pin_memory`` (default: on with CUDA) is the DataLoader's
    one-thread pinning; training loaders leave it to ``vmae.train.prefetch``."""
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle and sampler is None, sampler=sampler,
                      drop_last=drop_last, **_loader_options(dataset, seed, num_workers, pin_memory))


def build_run_loader(dataset: TrainingClips, batch_sampler: RunBatchSampler, seed: int, num_workers: int,
                     pin_memory: bool | None = None) -> RunLoader:
    """A ``RunLoader``: the run's batches from ``batch_sampler`` in one iteration, an epoch at a time."""
    loader = DataLoader(dataset, batch_sampler=batch_sampler, **_loader_options(dataset, seed, num_workers, pin_memory))
    return RunLoader(loader, batch_sampler)


def normalize_in_workers(device: torch.device) -> bool:
    """On the CPU the loader's workers normalise (in parallel with the model); on CUDA they hand
    over uint8 clips (4x fewer bytes), normalised batched on the GPU by
    ``vmae.data.transforms.to_device_normalized``."""
    return device.type != "cuda"


def augment_on_device(data_cfg: DataConfig, device: torch.device) -> bool:
    """Whether training clips are cropped, resized and flipped batched on the device
    (``data.augment_on``: "device", or "auto" on CUDA) rather than in the loader's workers."""
    return data_cfg.augment_on == "device" or (data_cfg.augment_on == "auto" and device.type == "cuda")


def train_output(data_cfg: DataConfig, device: torch.device) -> ClipOutput:
    """What a training run's loader workers hand over on ``device``: visits to cut on the device
    (``augment_on_device``), float clips (CPU) or uint8 clips (CUDA)."""
    if augment_on_device(data_cfg, device):
        return "visits"
    return "float" if normalize_in_workers(device) else "uint8"


def training_clips(manifest: Path, info: DatasetInfo, data_cfg: DataConfig, model_cfg: ModelConfig,
                   clips_per_visit: int, device: torch.device, labelled: bool = True) -> TrainingClips:
    """The training clips of ``manifest`` at the model's clip size, in the form a run on ``device``
    wants (``train_output``); ``labelled=False`` for pretraining (no augmentation reads the label)."""
    source = VideoSource(manifest, info, data_cfg, model_cfg.num_frames)
    return TrainingClips(source, model_cfg.img_size, clips_per_visit, train_output(data_cfg, device), labelled)


def batch_transform(dataset: TrainingClips, compile: bool, device: torch.device) -> RenderClips | None:
    """What the training loop applies to ``dataset``'s batches on the device: ``RenderClips`` when
    its augmentation is deferred there (compiled with the run's ``compile`` flag, on CUDA only, as
    the model), else nothing."""
    if dataset.output != "visits":
        return None
    return RenderClips(dataset.img_size, compile=compile and device.type == "cuda")


def fixed_views(manifest: Path, info: DatasetInfo, data_cfg: DataConfig, model_cfg: ModelConfig, device: torch.device,
                clips: int, crops: int) -> FixedViews:
    """``clips x crops`` fixed views of each video of ``manifest`` at the model's clip size (float on
    the CPU, uint8 on CUDA)."""
    source = VideoSource(manifest, info, data_cfg, model_cfg.num_frames)
    return FixedViews(source, model_cfg.img_size, clips, crops, "float" if normalize_in_workers(device) else "uint8")
