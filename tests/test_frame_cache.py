"""Frame cache: same clips as decoding, shrinking, bad videos recorded, the `vmae cache` command."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from vmae.bench.loader import moving_frames
from vmae.cli import main as vmae_main
from vmae.config import DataConfig
from vmae.data import readers
from vmae.data.dataset import FixedViews, TrainingClips, VideoSource
from vmae.data.frame_cache import FrameCache, build_cache, shrink_short_side
from vmae.data.manifest import DatasetInfo, read_manifest, write_manifest
from vmae.data.writer import write_video

INFO = DatasetInfo(name="toy", domain="clean", num_classes=2, sampling_mode="dense", frame_stride=2)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, bad_videos) -> Path:
    """Two readable 32x40 videos (one in a subfolder) and three unreadable ones in train.csv."""
    root = tmp_path_factory.mktemp("data")
    write_video(root / "a.avi", moving_frames(20, 32, 40, seed=0), fps=25)
    write_video(root / "sub" / "b.avi", moving_frames(28, 32, 40, seed=1), fps=25)
    bad = bad_videos(root, root / "a.avi")
    write_manifest(root / "train.csv", [(str(root / "a.avi"), 0), (str(bad["zero"]), 1),
                                        (str(bad["truncated"]), 1), (str(bad["text"]), 1)])
    write_manifest(root / "val.csv", [(str(root / "sub" / "b.avi"), 1)])
    return root


@pytest.fixture(scope="module")
def native_cache(data_dir, tmp_path_factory) -> FrameCache:
    return build_cache(data_dir, tmp_path_factory.mktemp("cache"), size=32)


def test_cache_index_lists_videos_and_bad_files(native_cache):
    assert set(native_cache.videos) == {"a.avi", "sub/b.avi"}
    assert native_cache.videos["sub/b.avi"] == {"file": "sub/b.npy", "frames": 28, "height": 32, "width": 40}
    assert set(native_cache.bad) == {"zero.avi", "truncated.avi", "text.avi"}
    frames = np.load(native_cache.folder / "a.npy", mmap_mode="r")
    assert isinstance(frames, np.memmap) and frames.shape == (20, 32, 40, 3) and frames.dtype == np.uint8


@pytest.mark.parametrize("train, manifest", [(True, "train.csv"), (False, "val.csv")])
def test_cached_items_equal_decoded_items(data_dir, native_cache, monkeypatch, train, manifest):
    def items(frame_cache: str):
        torch.manual_seed(5)  # the dataset's Generator is seeded from torch's seed
        source = VideoSource(data_dir / manifest, INFO, DataConfig(frame_cache=frame_cache), num_frames=4)
        ds = TrainingClips(source, 32, clips_per_visit=3) if train else FixedViews(source, 32, clips=1, crops=3)
        return [ds[0] for _ in range(3)]

    decoded = items("")
    monkeypatch.setattr(readers, "open_reader", pytest.fail)  # no decoder may be opened
    cached = items(str(native_cache.folder))
    for (x, label, flag), (y, label2, flag2) in zip(decoded, cached):
        assert (label, flag) == (label2, flag2)
        torch.testing.assert_close(x, y, rtol=0, atol=0)


def test_cache_records_bad_videos_for_the_dataset(data_dir, native_cache, monkeypatch, caplog):
    monkeypatch.setattr(readers, "open_reader", pytest.fail)
    ds = TrainingClips(VideoSource(data_dir / "train.csv", INFO, DataConfig(frame_cache=str(native_cache.folder)),
                                   num_frames=4), 32)
    with caplog.at_level(logging.WARNING, logger="vmae.data.dataset"):
        _, label, bad = ds[1]  # zero, truncated, text, then wraps to a.avi
    assert (label, bad) == (0, 3)
    assert sum("recorded by the frame cache" in r.getMessage() for r in caplog.records) == 3


def test_videos_missing_from_the_cache_are_decoded(data_dir, native_cache, tmp_path):
    extra = tmp_path / "c.avi"
    write_video(extra, moving_frames(12, 32, 32, seed=2), fps=25)
    write_manifest(tmp_path / "extra.csv", [(str(extra), 1)])
    source = VideoSource(tmp_path / "extra.csv", INFO, DataConfig(frame_cache=str(native_cache.folder)), num_frames=4)
    ds = FixedViews(source, 32, clips=1, crops=1)
    assert str(extra) not in native_cache and ds[0][2] is True


def test_missing_cache_folder_falls_back_with_a_warning(data_dir, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="vmae.data.dataset"):
        source = VideoSource(data_dir / "val.csv", INFO, DataConfig(frame_cache=str(tmp_path / "none")), num_frames=4)
    ds = FixedViews(source, 32, clips=1, crops=1)
    assert source.cache is None and "has no index.json" in caplog.text and ds[0][2] is True


def test_shrink_short_side_never_upscales():
    frames = moving_frames(3, 32, 48, seed=0)
    small = shrink_short_side(frames, 16)
    assert small.shape == (3, 16, 24, 3) and small.dtype == np.uint8
    box_mean = frames.reshape(3, 16, 2, 24, 2, 3).mean(axis=(2, 4))  # antialiased 2x downscale
    assert np.abs(small - box_mean).mean() < 2.0
    assert shrink_short_side(frames, 64) is frames


def test_vmae_cache_command(tiny_dataset, tmp_path, capsys):
    args = ["cache", str(tiny_dataset), "--out", str(tmp_path / "c"), "--size", "16", "--workers", "2"]
    assert vmae_main(args) == 0
    index = json.loads((tmp_path / "c" / "index.json").read_text())
    videos = {p for csv in ("train.csv", "val.csv") for p, _ in read_manifest(tiny_dataset / csv)}
    assert len(index["videos"]) == len(videos) == 30 and index["bad"] == {} and index["size"] == 16
    entry = next(iter(index["videos"].values()))
    assert (entry["frames"], entry["height"], entry["width"]) == (16, 16, 16)
    assert "30 videos cached" in capsys.readouterr().out
