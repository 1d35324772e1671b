"""`vmae bench loader`: clips/s of naive decoding vs the project's loader and its frame cache.

Generates UCF101-like videos (320x240 MPEG-4 Part 2 AVIs of 60-100 frames, 25 fps) with
``vmae.data.writer.write_video`` and times three ways of producing training clips (16 frames at
stride 4, multi-scale crop, flip, normalisation), all through ``build_loader`` with the same
worker processes and the same clips per batch:

- ``naive``: one clip per video open, decord decoding just that clip's frames, normalised float32
  out of the worker (what the official VideoMAE loader does; its per-frame PIL augmentation is
  slower than ours, so this baseline is generous);
- ``loader``: ``TrainingClips`` with repeated sampling, ``k`` clips cut from one decode of the union
  of their frames, uint8 out of the worker (normalised batched on the device by the training
  step); ``loader_float`` is the same with float32 normalised in the worker;
- ``deferred``: ``loader`` with the crops, resizes and flips left to the device
  (``data.augment_on: device``, the CUDA default): the workers' output of decoded frame unions,
  counted in the clips they carry; cutting them (``RenderClips``) is not timed here, as on a GPU it
  runs on the prefetcher's side stream (``vmae bench train`` times it there);
- ``cached``: ``loader`` with ``data.frame_cache`` built by ``vmae cache`` at the training size;
  ``cached_deferred`` is ``deferred`` over it.

Each is timed after its first batch (worker start-up excluded) for ``--seconds``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from vmae.config import DataConfig
from vmae.data.dataset import ClipOutput, TrainingClips, VideoSource
from vmae.data.device_augment import Visits
from vmae.data.frame_cache import build_cache
from vmae.data.loaders import build_loader
from vmae.data.manifest import DatasetInfo, write_manifest
from vmae.data.writer import write_video


def moving_frames(num_frames: int, height: int, width: int, seed: int) -> np.ndarray:
    """A smooth, textured pattern that drifts and changes colour over time: uint8 (T, H, W, 3).

    Smooth enough to survive lossy codecs closely, different in every frame (so frame order is
    testable) and across seeds.
    """
    rng = np.random.default_rng(seed)
    freq = rng.uniform(0.05, 0.2, size=(3, 2)).astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi, size=3).astype(np.float32)
    speed = rng.uniform(0.5, 2.0, size=2).astype(np.float32)
    t = np.arange(num_frames, dtype=np.float32)[:, None, None]
    y = np.arange(height, dtype=np.float32)[None, :, None]
    x = np.arange(width, dtype=np.float32)[None, None, :]
    frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    for c in range(3):
        angle = freq[c, 0] * (y + speed[0] * t) + (freq[c, 1] * (x + speed[1] * t) + (phase[c] + 0.2 * t))
        frames[..., c] = np.sin(angle) * 120 + 128  # 8..248, truncation rounds
    return frames


def _write_one(path: Path, length: int, seed: int) -> None:
    if not path.is_file():
        write_video(path, moving_frames(length, 240, 320, seed=seed), fps=25, codec="mpeg4")


def write_ucf_like(folder: Path, videos: int, seed: int = 0, workers: int = 1) -> list[tuple[str, int]]:
    """``videos`` 320x240 MPEG-4 AVIs of 60-100 frames in ``folder`` (kept if already there), written
    by ``workers`` processes -> manifest rows ``(path, label)`` with labels alternating 0 / 1."""
    lengths = np.random.default_rng(seed).integers(60, 101, size=videos)
    paths = [folder / f"v_{i:04d}.avi" for i in range(videos)]
    jobs = [(path, int(length), seed + i) for i, (path, length) in enumerate(zip(paths, lengths))]
    if workers > 1:
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            pool.starmap(_write_one, jobs)
    else:
        for job in jobs:
            _write_one(*job)
    return [(str(path), i % 2) for i, path in enumerate(paths)]


def write_ucf_like_dataset(folder: Path, videos: int, stride: int, workers: int = 1) -> DatasetInfo:
    """``write_ucf_like`` videos plus ``folder/train.csv`` listing them -> the dataset's DatasetInfo
    (2 classes, dense clips at ``stride``)."""
    write_manifest(folder / "train.csv", write_ucf_like(folder, videos, workers=workers))
    return DatasetInfo(name="ucf-like", domain="bench", num_classes=2, sampling_mode="dense", frame_stride=stride)


def clips_per_second(dataset: TrainingClips, args: argparse.Namespace) -> float:
    """Training clips/s delivered by a loader over ``dataset``, after its first batch."""
    visits_per_batch = min(max(args.batch_clips // dataset.clips_per_visit, 1), len(dataset))
    loader = build_loader(dataset, visits_per_batch, shuffle=True, seed=0, num_workers=args.workers,
                          drop_last=True)
    clips, started = 0, None
    while started is None or time.perf_counter() - started < args.seconds:
        for batch, _, _ in loader:
            if started is None:
                started = time.perf_counter()  # workers are up; start counting
                continue
            clips += batch.frame_index.shape[0] * batch.frame_index.shape[1] if isinstance(batch, Visits) \
                else batch.shape[0] * batch.shape[1]
            if time.perf_counter() - started >= args.seconds:
                break
    return clips / (time.perf_counter() - started)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--folder", help="where to write (or reuse) the videos; default: a temporary folder")
    parser.add_argument("--videos", type=int, default=24, help="number of generated videos (default 24)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="DataLoader workers for every method (default: all cores)")
    parser.add_argument("--clips-per-visit", type=int, default=4, help="repeated sampling k (default 4)")
    parser.add_argument("--frames", type=int, default=16, help="frames per clip (default 16)")
    parser.add_argument("--stride", type=int, default=4, help="frame stride (default 4)")
    parser.add_argument("--img-size", type=int, default=224, help="training crop size (default 224)")
    parser.add_argument("--batch-clips", type=int, default=8, help="clips per batch (default 8)")
    parser.add_argument("--seconds", type=float, default=5.0, help="timed seconds per method (default 5)")


def run(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="vmae-bench-loader-") as tmp:
        folder = Path(args.folder or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        info = write_ucf_like_dataset(folder, args.videos, args.stride, args.workers)

        def measure(k: int, output: ClipOutput, frame_cache: str = "") -> float:
            cfg = DataConfig(frame_cache=frame_cache, num_workers=args.workers)
            source = VideoSource(folder / "train.csv", info, cfg, num_frames=args.frames)
            return clips_per_second(TrainingClips(source, args.img_size, clips_per_visit=k, output=output), args)

        naive = measure(1, "float")
        loader = measure(args.clips_per_visit, "uint8")
        loader_float = measure(args.clips_per_visit, "float")
        deferred = measure(args.clips_per_visit, "visits")
        cache_dir = Path(tmp) / "frame_cache"
        started = time.perf_counter()
        build_cache(folder, cache_dir, size=args.img_size, workers=args.workers)
        cache_build_s = time.perf_counter() - started
        cached = measure(args.clips_per_visit, "uint8", frame_cache=str(cache_dir))
        cached_deferred = measure(args.clips_per_visit, "visits", frame_cache=str(cache_dir))
    return {
        "naive_clips_per_s": round(naive, 1),
        "loader_clips_per_s": round(loader, 1),
        "speedup": round(loader / naive, 2),
        "loader_float_clips_per_s": round(loader_float, 1),
        "deferred_clips_per_s": round(deferred, 1),
        "deferred_speedup": round(deferred / naive, 2),
        "cached_clips_per_s": round(cached, 1),
        "cached_speedup": round(cached / naive, 2),
        "cached_deferred_clips_per_s": round(cached_deferred, 1),
        "cache_build_s": round(cache_build_s, 1),
        "videos": args.videos,
        "workers": args.workers,
        "clips_per_visit": args.clips_per_visit,
        "clip": f"{args.frames}x{args.img_size}x{args.img_size}, stride {args.stride}",
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
