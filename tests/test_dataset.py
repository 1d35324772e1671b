"""TrainingClips and FixedViews: item shapes, one decode per visit, flips and label maps, bad videos, the loader."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DistributedSampler

from vmae.config import DataConfig
from vmae.data import readers, transforms
from vmae.data.dataset import SampleKey, TrainingClips, collate_eval
from vmae.data.loaders import EpochSampler, build_loader
from vmae.data.manifest import DatasetInfo, write_manifest


def is_flipped(clip: torch.Tensor) -> bool:
    """clip: (C, T, H, W) normalised; bright half on the right means flipped."""
    half = clip.shape[-1] // 2
    return bool(clip[..., half:].mean() > clip[..., :half].mean())


def test_train_item_shapes_and_values(toy_videos):
    ds = toy_videos.dataset(toy_videos.folder / "train.csv", train=True, k=3)
    assert len(ds) == 3 and ds.source.stride == 2  # frame_stride 0 -> the dataset's own
    clips, label, bad = ds[2]
    assert clips.shape == (3, 3, 4, 32, 32) and clips.dtype == torch.float32
    assert label == 2 and bad == 0
    assert -2.2 < clips.min() < clips.max() < 2.7  # (0..1 - mean) / std


@pytest.mark.parametrize("train", [True, False])
def test_uint8_output_normalises_to_the_float_output(toy_videos, train):
    def item(output: str):
        torch.manual_seed(3)
        return toy_videos.dataset(toy_videos.folder / "train.csv", train=train, k=2, test_clips=2, output=output)[0]

    floats, raw = item("float"), item("uint8")
    assert raw[0].dtype == torch.uint8 and raw[0].shape == floats[0].shape and raw[1] == floats[1]
    cfg = DataConfig()
    torch.testing.assert_close(transforms.normalize(raw[0], cfg.mean, cfg.std), floats[0])


def test_k_clips_come_from_one_decode(toy_videos, monkeypatch):
    calls: list[np.ndarray] = []
    open_reader = readers.open_reader

    def spy(path, backend="auto"):
        reader = open_reader(path, backend)
        get = reader.get
        reader.get = lambda indices: calls.append(np.asarray(indices)) or get(indices)
        return reader

    monkeypatch.setattr(readers, "open_reader", spy)
    ds = toy_videos.dataset(toy_videos.folder / "train.csv", train=True, k=4, frame_stride=3)
    clips, _, _ = ds[2]
    assert len(calls) == 1  # one open, one decode call for all 4 clips
    assert len(calls[0]) == len(np.unique(calls[0])) <= 4 * 4  # the union, each frame once
    assert clips.shape[0] == 4
    assert len({tuple(c.flatten()[:64].tolist()) for c in clips}) > 1  # different starts / crops


def test_eval_item_views_are_deterministic(toy_videos):
    ds = toy_videos.dataset(toy_videos.folder / "train.csv", train=False, test_clips=2, test_crops=3)
    views, label, ok = ds[1]
    assert ok and label == 1 and views.shape == (6, 3, 4, 32, 32)
    torch.testing.assert_close(views, ds[1][0])


def test_label_swapping_flip_moves_the_whole_visit(toy_videos):
    ds = toy_videos.dataset(toy_videos.folder / "train.csv", train=True, k=3)
    labels = set()
    for _ in range(20):
        clips, label, _ = ds[0]  # class 0 flips into class 1
        states = {is_flipped(c) for c in clips}
        assert len(states) == 1  # all k clips share one flip
        assert label == (1 if states.pop() else 0)
        labels.add(label)
    assert labels == {0, 1}


def test_label_preserving_flip_is_per_clip(toy_videos):
    ds = toy_videos.dataset(toy_videos.folder / "train.csv", train=True, k=3)
    mixed = 0
    for _ in range(20):
        clips, label, _ = ds[2]  # class 2 maps to itself
        assert label == 2
        mixed += len({is_flipped(c) for c in clips}) == 2
    assert mixed > 0


def test_pretraining_augmentation_never_reads_the_label(toy_videos):
    """Unlabelled (pretraining): every video's visit flips together, whether its class swaps under a
    flip (0) or not (2), and the same draw gives the same clips whatever the label says."""
    from vmae.data.dataset import SampleKey

    ds = toy_videos.dataset(toy_videos.folder / "train.csv", train=True, k=3, labelled=False)
    for index, expected_label in ((0, 0), (2, 2)):
        flips = []
        for epoch in range(20):
            clips, label, _ = ds[SampleKey(index, 0, epoch)]
            states = {is_flipped(c) for c in clips}
            assert len(states) == 1 and label == expected_label  # one flip a visit; the label untouched
            flips.append(states.pop())
        assert set(flips) == {True, False}
    relabelled = [(path, 0) for path, _ in ds.source.items]  # class 0 swaps under a flip, class 2 does not
    clips_a = ds[SampleKey(2, 0, 3)][0]
    ds.source.items = relabelled
    torch.testing.assert_close(ds[SampleKey(2, 0, 3)][0], clips_a)


@pytest.mark.parametrize("allowed, cfg_flip", [(False, True), (True, False)])
def test_flip_off_never_flips(toy_videos, allowed, cfg_flip):
    info = DatasetInfo(**{**toy_videos.info.__dict__, "flip_allowed": allowed})
    ds = toy_videos.dataset(toy_videos.folder / "train.csv", train=True, k=2, info=info, flip=cfg_flip)
    for _ in range(10):
        clips, label, _ = ds[0]
        assert label == 0 and not any(is_flipped(c) for c in clips)


@pytest.fixture()
def with_bad(toy_videos, bad_videos, tmp_path) -> Path:
    bad = bad_videos(tmp_path, toy_videos.folder / "v0.avi")
    manifest = tmp_path / "mixed.csv"
    write_manifest(manifest, [(str(toy_videos.folder / "v0.avi"), 0), (str(bad["zero"]), 1), (str(bad["truncated"]), 1),
                              (str(bad["text"]), 1), (str(toy_videos.folder / "v2.avi"), 2)])
    return manifest


def test_train_replaces_bad_videos_and_logs_each_once(toy_videos, with_bad, caplog):
    ds = toy_videos.dataset(with_bad, train=True, k=2)
    with caplog.at_level(logging.WARNING, logger="vmae.data.dataset"):
        clips, label, bad = ds[1]
        assert (label, bad) == (2, 3) and clips.shape == (2, 3, 4, 32, 32)
        assert ds[3][1:] == (2, 1)
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 3
    for name in ("zero.avi", "truncated.avi", "text.avi"):
        assert sum(name in m for m in warned) == 1


def test_train_gives_up_when_everything_is_bad(tmp_path, toy_videos, bad_videos):
    bad = bad_videos(tmp_path, toy_videos.folder / "v0.avi")
    manifest = tmp_path / "bad.csv"
    write_manifest(manifest, [(str(p), 0) for p in bad.values()])
    with pytest.raises(RuntimeError, match=r"bad.csv: 3 videos in a row from row 0 .*zero.avi"):
        toy_videos.dataset(manifest, train=True)[0]


def test_eval_reports_bad_videos_and_collate_drops_them(toy_videos, with_bad):
    ds = toy_videos.dataset(with_bad, train=False, test_clips=1)
    views, label, ok = ds[2]
    assert not ok and views.numel() == 0 and label == 1
    loader = build_loader(ds, batch_size=3, shuffle=False, seed=0, num_workers=0, drop_last=False)
    batches = list(loader)
    assert [len(labels) for _, labels, _ in batches] == [1, 1]
    assert sum(n_bad for _, _, n_bad in batches) == 3
    assert batches[0][0].shape == (1, 1, 3, 4, 32, 32) and batches[1][1].tolist() == [2]
    assert collate_eval([(torch.empty(0), 1, False)])[0].shape == (0,)


def test_segments_mode_eval(toy_videos):
    info = DatasetInfo(**{**toy_videos.info.__dict__, "sampling_mode": "segments", "flip_allowed": False})
    views, _, ok = toy_videos.dataset(toy_videos.folder / "train.csv", train=False, info=info, test_clips=2)[0]
    assert ok and views.shape == (2, 3, 4, 32, 32) and not torch.equal(views[0], views[1])


def first_batch(ds: TrainingClips, seed: int, workers: int) -> torch.Tensor:
    loader = build_loader(ds, batch_size=3, shuffle=True, seed=seed, num_workers=workers, drop_last=True)
    clips, labels, bad = next(iter(loader))
    assert clips.shape == (3, 2, 3, 4, 32, 32) and labels.shape == bad.shape == (3,)
    return clips


def test_loader_is_reproducible_for_a_seed_with_workers(toy_videos):
    ds = toy_videos.dataset(toy_videos.folder / "train.csv", train=True, k=2)
    a, b, c = first_batch(ds, 1, 1), first_batch(ds, 1, 1), first_batch(ds, 2, 1)
    torch.testing.assert_close(a, b)
    assert not torch.equal(a, c)


def inner_order(ds: TrainingClips, seed: int, epoch: int) -> list[int]:
    inner = DistributedSampler(ds, num_replicas=1, rank=0, shuffle=True, seed=seed)
    inner.set_epoch(epoch)
    return list(inner)


def test_epoch_sampler_tags_the_sampler_order_with_seed_and_epoch(toy_videos):
    ds = toy_videos.dataset(toy_videos.folder / "train.csv", train=True)
    sampler = EpochSampler(DistributedSampler(ds, num_replicas=1, rank=0, shuffle=True, seed=4), seed=4)
    for epoch in (0, 3):
        sampler.set_epoch(epoch)
        keys = iter(sampler)
        sampler.set_epoch(epoch + 1)  # a later set_epoch does not change an iteration under way
        assert list(keys) == [SampleKey(i, 4, epoch) for i in inner_order(ds, 4, epoch)]
    assert len(sampler) == 3


def test_keyed_items_depend_on_seed_epoch_and_index_only(toy_videos):
    ds = toy_videos.dataset(toy_videos.folder / "train.csv", train=True, k=2)
    first = ds[SampleKey(1, 0, 5)][0]
    ds[SampleKey(2, 0, 5)], ds[0]  # other draws in between leave no trace
    torch.testing.assert_close(toy_videos.dataset(toy_videos.folder / "train.csv", train=True, k=2)[SampleKey(1, 0, 5)][0], first)
    torch.testing.assert_close(ds[SampleKey(1, 0, 5)][0], first)
    assert not torch.equal(ds[SampleKey(1, 0, 6)][0], first)  # another epoch
    assert not torch.equal(ds[SampleKey(1, 1, 5)][0], first)  # another seed
    assert ds[SampleKey(1, 0, 5)][1:] == (1, 0)


def epoch_batches(loader, sampler: EpochSampler, epochs: range) -> list[torch.Tensor]:
    out = []
    for epoch in epochs:
        sampler.set_epoch(epoch)
        out += [clips for clips, _, _ in loader]
    return out


def test_one_persistent_loader_repeats_fresh_loaders_epoch_by_epoch(toy_videos):
    """Workers started once serve epochs 0-2 exactly as a loader started at each epoch (a resumed
    run) and as the main process alone."""
    ds = toy_videos.dataset(toy_videos.folder / "train.csv", train=True, k=2)

    def loader(workers: int):
        sampler = EpochSampler(DistributedSampler(ds, num_replicas=1, rank=0, shuffle=True, seed=9), seed=9)
        return build_loader(ds, 1, shuffle=False, seed=0, num_workers=workers, drop_last=True,
                            sampler=sampler), sampler

    persistent = epoch_batches(*loader(2), range(3))
    fresh = [b for epoch in range(3) for b in epoch_batches(*loader(2), range(epoch, epoch + 1))]
    single = epoch_batches(*loader(0), range(3))
    assert len(persistent) == 9
    for a, b, c in zip(persistent, fresh, single):
        torch.testing.assert_close(a, b)
        torch.testing.assert_close(a, c)
    assert not torch.equal(torch.stack(persistent[:3]).sum(0), torch.stack(persistent[3:6]).sum(0))
