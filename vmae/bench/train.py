"""`vmae bench train`: is VideoMAE pretraining data-bound? The real step fed by the real loader vs
the same step on a batch already on the device.

Generates UCF101-like videos (``vmae.bench.loader.write_ucf_like_dataset``: 320x240 MPEG-4 AVIs,
decoded by decord), then times, on one model and optimiser, ``vmae.train.pretrain.videomae_step``:

- ``model_clips_per_s``: on a random uint8 batch already on the device (``vmae bench model``),
  timed before the loader runs and again after them (``model_clips_per_s_end``: the two should agree);
- ``loader_clips_per_s``: the training loader alone (``vmae.train.batches.train_loaders``:
  worker processes decoding each video once per visit and cutting ``k`` clips from it, or with
  ``--augment-on device``, the CUDA default, handing over the frames for the device to cut), its
  batches moved to the device as the training loop moves them (``DevicePrefetcher``), no model;
- ``data_clips_per_s``: the step fed by that loader (the same workers, already started);
- ``cached_clips_per_s`` (``--frame-cache``): the same with a frame cache built by ``vmae cache``.

``data_fraction`` = data / model: 1.0 means the loader keeps up with the model.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from vmae.bench.loader import write_ucf_like_dataset
from vmae.bench.model import (
    model_config,
    pretrain_step_fn,
    random_batch,
    resolve_device,
    time_steps,
    train_step,
)
from vmae.config import DataConfig, OptimConfig
from vmae.data import loaders
from vmae.data.dataset import TrainingClips, VideoSource
from vmae.data.frame_cache import build_cache
from vmae.train.batches import train_loaders
from vmae.train.distributed import DistEnv
from vmae.train.optim import param_groups
from vmae.train.prefetch import DevicePrefetcher


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--size", default=None, help="model.size preset (default: vit_micro on CPU, vit_base on CUDA)")
    parser.add_argument("--batch", type=int, default=None, help="clips per step (default: 32 CPU, 128 CUDA)")
    parser.add_argument("--clips-per-visit", type=int, default=4, help="repeated sampling k (default 4)")
    parser.add_argument("--videos", type=int, default=None, help="generated videos (default: 4 batches' worth)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="loader workers (default: all cores)")
    parser.add_argument("--folder", help="where to write (or reuse) the videos; default: a temporary folder")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per measurement")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first (compilation, worker start)")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                        help="torch.compile the model (default: on with CUDA, off on CPU)")
    parser.add_argument("--frame-cache", action="store_true", help="also time the loader over a frame cache")
    parser.add_argument("--augment-on", choices=["auto", "worker", "device"], default="auto",
                        help="data.augment_on: crops in the workers or batched on the device (default auto)")
    parser.add_argument("overrides", nargs="*", default=[], help="model config key=value (e.g. img_size=64)")


def loader_batches(dataset: TrainingClips, clips: int, workers: int, device: torch.device, compile_render: bool
                   ) -> Iterator[tuple]:
    """Endless training batches of ``clips`` clips (``clips / k`` videos), epoch after epoch, as
    ``vmae.train.loop.train`` receives them (one persistent loader, ``DevicePrefetcher`` and, with
    deferred augmentation, its ``RenderClips``)."""
    env = DistEnv(device=device)
    make_loader = train_loaders(dataset, clips // dataset.clips_per_visit, workers, env, seed=0, epochs=None)
    transform = loaders.batch_transform(dataset, compile_render, device)
    epoch = 0
    while True:
        yield from DevicePrefetcher(make_loader(epoch), device, transform)
        epoch += 1


def run(args: argparse.Namespace) -> dict[str, Any]:
    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    cfg = model_config(args, cuda)
    compile_model = cuda if args.compile is None else args.compile
    clips = args.batch or (128 if cuda else 32)
    k = args.clips_per_visit
    if clips % k:
        raise ValueError(f"--batch {clips} is not a multiple of --clips-per-visit {k}")
    videos = args.videos or 4 * clips // k
    augment_on = "device" if loaders.augment_on_device(DataConfig(augment_on=args.augment_on), device) else "worker"
    with tempfile.TemporaryDirectory(prefix="vmae-bench-train-") as tmp:
        folder = Path(args.folder or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        info = write_ucf_like_dataset(folder, videos, stride=4, workers=args.workers)
        generate_s = time.perf_counter() - started

        model, step_fn = pretrain_step_fn(cfg, device, compile_model)
        groups = param_groups(model, OptimConfig().weight_decay)

        def clips_per_s(batches: Iterator[tuple]) -> float:
            step = train_step(model, lambda index: step_fn(next(batches), index).loss, cuda, groups)
            return clips / time_steps(step, args.steps, args.warmup, device)

        def dataset(frame_cache: str = "") -> TrainingClips:
            data_cfg = DataConfig(num_workers=args.workers, frame_cache=frame_cache, augment_on=args.augment_on)
            source = VideoSource(folder / "train.csv", info, data_cfg, cfg.num_frames)
            return TrainingClips(source, cfg.img_size, k, loaders.train_output(data_cfg, device))

        fixed = random_batch(cfg, clips // k, device, clips_per_video=k)
        model_rate = clips_per_s(iter(lambda: fixed, None))
        batches = loader_batches(dataset(), clips, args.workers, device, compile_model)
        loader_rate = clips / time_steps(lambda: next(batches)[0], args.steps, args.warmup, device)
        data_rate = clips_per_s(batches)
        result: dict[str, Any] = {
            "device": torch.cuda.get_device_name(device) if cuda else f"cpu ({torch.get_num_threads()} threads)",
            "model": cfg.size, "clip": f"{cfg.num_frames}x{cfg.img_size}x{cfg.img_size}", "batch_clips": clips,
            "clips_per_visit": k, "augment_on": augment_on, "workers": args.workers,
            "videos": videos, "generate_s": round(generate_s, 1),
            "compile": compile_model, "model_clips_per_s": round(model_rate, 1),
            "loader_clips_per_s": round(loader_rate, 1), "data_clips_per_s": round(data_rate, 1), "data_fraction": round(data_rate / model_rate, 3),
        }
        if args.frame_cache:
            cache_dir = Path(tmp) / "frame_cache"
            started = time.perf_counter()
            build_cache(folder, cache_dir, size=cfg.img_size, workers=args.workers)
            result["cache_build_s"] = round(time.perf_counter() - started, 1)
            cached_rate = clips_per_s(loader_batches(dataset(str(cache_dir)), clips, args.workers, device,
                                                     compile_model))
            result["cached_clips_per_s"] = round(cached_rate, 1)
            result["cached_fraction"] = round(cached_rate / model_rate, 3)
        result["model_clips_per_s_end"] = round(clips_per_s(iter(lambda: fixed, None)), 1)
    return result
