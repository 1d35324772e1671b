"""`vmae bench loader`: the report's fields on a tiny run, and a pytest-benchmark of the loader."""

from __future__ import annotations

import argparse

import numpy as np

from vmae.bench import loader as bench_loader
from vmae.config import DataConfig
from vmae.data import readers
from vmae.data.dataset import TrainingClips, VideoSource
from vmae.data.loaders import build_loader
from vmae.data.manifest import DatasetInfo, read_manifest


def test_bench_loader_reports_every_figure(tmp_path, monkeypatch):
    """Each method's dataset, timed by a stub at fixed rates: the speedups are those rates' ratios."""
    rates = iter([10.0, 35.0, 20.0, 50.0, 70.0, 90.0])
    measured = []

    def fixed_rate(dataset: TrainingClips, args) -> float:
        measured.append((dataset.clips_per_visit, dataset.output, dataset.source.cache is not None))
        return next(rates)

    monkeypatch.setattr(bench_loader, "clips_per_second", fixed_rate)
    parser = argparse.ArgumentParser()
    bench_loader.add_arguments(parser)
    args = parser.parse_args(["--folder", str(tmp_path), "--videos", "2", "--workers", "0", "--img-size", "32",
                              "--batch-clips", "4", "--seconds", "0.1"])
    result = bench_loader.run(args)
    # (k, output, cached): naive, loader, loader float, deferred, cached, cached deferred
    assert measured == [(1, "float", False), (4, "uint8", False), (4, "float", False),
                        (4, "visits", False), (4, "uint8", True), (4, "visits", True)]
    assert (result["naive_clips_per_s"], result["loader_clips_per_s"], result["loader_float_clips_per_s"],
            result["deferred_clips_per_s"], result["cached_clips_per_s"],
            result["cached_deferred_clips_per_s"]) == (10.0, 35.0, 20.0, 50.0, 70.0, 90.0)
    assert (result["speedup"], result["deferred_speedup"], result["cached_speedup"]) == (3.5, 5.0, 7.0)
    assert (result["videos"], result["workers"], result["clips_per_visit"]) == (2, 0, 4)
    videos = read_manifest(tmp_path / "train.csv")
    assert len(videos) == 2
    for path, _ in videos:  # UCF101-like: 320x240 MPEG-4 AVI, 60-100 frames
        reader = readers.open_reader(path)
        assert 60 <= reader.num_frames <= 100 and reader.get([0]).shape == (1, 240, 320, 3)


def test_clips_per_second_counts_every_clip_of_a_batch(tiny_dataset):
    source = VideoSource(tiny_dataset / "train.csv", DatasetInfo.load(tiny_dataset), DataConfig(), num_frames=8)
    dataset = TrainingClips(source, img_size=32, clips_per_visit=2, output="uint8")
    args = argparse.Namespace(batch_clips=4, workers=0, seconds=0.05)
    assert bench_loader.clips_per_second(dataset, args) > 0


def test_moving_frames_change_every_frame():
    frames = bench_loader.moving_frames(5, 16, 24, seed=0)
    assert frames.shape == (5, 16, 24, 3) and frames.dtype == np.uint8
    assert np.abs(np.diff(frames.astype(np.int16), axis=0)).mean(axis=(1, 2, 3)).min() > 10
    assert not np.array_equal(frames, bench_loader.moving_frames(5, 16, 24, seed=1))


def test_loader_epoch_benchmark(benchmark, tiny_dataset):
    """One epoch of the default study's training loader (k=4, 32 px, uint8 out), main process."""
    source = VideoSource(tiny_dataset / "train.csv", DatasetInfo.load(tiny_dataset), DataConfig(), num_frames=16)
    dataset = TrainingClips(source, img_size=32, clips_per_visit=4, output="uint8")
    loader = build_loader(dataset, batch_size=8, shuffle=True, seed=0, num_workers=0, drop_last=False)
    clips = benchmark(lambda: sum(batch.shape[0] * batch.shape[1] for batch, _, _ in loader))
    assert clips == 4 * len(dataset) == 80
