"""`vmae bench loader`: the report's fields on a tiny run, and a pytest-benchmark of the loader."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from vmae.bench import loader as bench_loader
from vmae.config import DataConfig
from vmae.data import readers
from vmae.data.dataset import ClipDataset, build_loader
from vmae.data.manifest import DatasetInfo, read_manifest


def test_bench_loader_reports_every_figure(tmp_path):
    parser = argparse.ArgumentParser()
    bench_loader.add_arguments(parser)
    args = parser.parse_args(["--folder", str(tmp_path), "--videos", "2", "--workers", "0", "--img-size", "32",
                              "--batch-clips", "4", "--seconds", "0.1"])
    result = bench_loader.run(args)
    for key in ("naive_clips_per_s", "loader_clips_per_s", "loader_float_clips_per_s", "deferred_clips_per_s",
                "cached_clips_per_s", "cached_deferred_clips_per_s"):
        assert result[key] > 0, key
    assert result["speedup"] == pytest.approx(result["loader_clips_per_s"] / result["naive_clips_per_s"], abs=0.02)
    assert (result["videos"], result["workers"], result["clips_per_visit"]) == (2, 0, 4)
    videos = read_manifest(tmp_path / "train.csv")
    assert len(videos) == 2
    for path, _ in videos:  # UCF101-like: 320x240 MPEG-4 AVI, 60-100 frames
        reader = readers.open_reader(path)
        assert 60 <= reader.num_frames <= 100 and reader.get([0]).shape == (1, 240, 320, 3)


def test_moving_frames_change_every_frame():
    frames = bench_loader.moving_frames(5, 16, 24, seed=0)
    assert frames.shape == (5, 16, 24, 3) and frames.dtype == np.uint8
    assert np.abs(np.diff(frames.astype(np.int16), axis=0)).mean(axis=(1, 2, 3)).min() > 10
    assert not np.array_equal(frames, bench_loader.moving_frames(5, 16, 24, seed=1))


def test_loader_epoch_benchmark(benchmark, tiny_dataset):
    """One epoch of the default study's training loader (k=4, 32 px, uint8 out), main process."""
    dataset = ClipDataset(tiny_dataset / "train.csv", DatasetInfo.load(tiny_dataset), DataConfig(), num_frames=16,
                          img_size=32, train=True, clips_per_visit=4, normalize=False)
    loader = build_loader(dataset, batch_size=8, shuffle=True, seed=0, num_workers=0, drop_last=False)
    clips = benchmark(lambda: sum(batch.shape[0] * batch.shape[1] for batch, _, _ in loader))
    assert clips == 4 * len(dataset) == 80
