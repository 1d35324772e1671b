"""Frame cache: every video of a prepared dataset pre-decoded to uint8 frames, memory-mapped.

``vmae cache DATA_DIR --out DIR [--size S]`` decodes all frames of the videos listed in
``DATA_DIR/{train,val}.csv`` (and any extra ``--manifest``), resizes them so the short side is at
most ``S`` (never upscaled; antialiased bilinear), and writes one ``.npy`` of shape
``uint8 (N, H, W, 3)`` per video under ``DIR``, mirroring the video's path below ``DATA_DIR``.
``DIR/index.json`` is written last and marks a complete cache:
``{"data_dir", "size", "videos": {key: {"file", "frames", "height", "width"}}, "bad": {key: reason}}``
where ``key`` is the video path relative to ``data_dir`` (absolute for videos outside it).

``VideoSource`` reads through ``FrameCache.open(path)`` when ``DataConfig.frame_cache`` names a
folder with an ``index.json``; videos missing from the cache are decoded as usual, and videos the
cache recorded as unreadable raise ``VideoReadError`` just as decoding them would.
"""

from __future__ import annotations

import argparse
import json
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from vmae.atomic import atomic_path
from vmae.config import ModelConfig
from vmae.data import readers
from vmae.data.manifest import read_manifest
from vmae.runinfo import write_json_atomic

INDEX_FILE = "index.json"


def cache_key(video: str | Path, data_dir: str | Path) -> str:
    """``video`` relative to ``data_dir`` (POSIX) when below it, else its absolute path."""
    absolute = Path(os.path.abspath(video))
    try:
        return absolute.relative_to(os.path.abspath(data_dir)).as_posix()
    except ValueError:
        return str(absolute)


def shrink_short_side(frames: np.ndarray, size: int) -> np.ndarray:
    """uint8 (N, H, W, 3) -> uint8 (N, H', W', 3) with short side ``min(size, min(H, W))``."""
    h, w = frames.shape[1:3]
    if min(h, w) <= size:
        return frames
    scale = size / min(h, w)
    new_hw = (size, round(w * scale)) if h <= w else (round(h * scale), size)
    x = torch.from_numpy(frames).permute(0, 3, 1, 2)  # channels-last view: torch's uint8 kernel
    x = F.interpolate(x, size=new_hw, mode="bilinear", align_corners=False, antialias=True)
    return x.permute(0, 2, 3, 1).contiguous().numpy()


class CachedReader:
    """A cached video as a ``readers.VideoReader``: ``num_frames`` and ``get(indices)``."""

    def __init__(self, path: str, file: Path) -> None:
        self.path = path
        self._frames = np.load(file, mmap_mode="r")  # (N, H, W, 3)
        self.num_frames = int(self._frames.shape[0])

    def get(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        wanted = np.asarray(indices, dtype=np.int64).reshape(-1)
        if wanted.size == 0 or wanted.min() < 0 or wanted.max() >= self.num_frames:
            raise readers.VideoReadError(self.path, f"cached frame indices {wanted.tolist()} outside "
                                                    f"0..{self.num_frames - 1}")
        return np.ascontiguousarray(self._frames[wanted])


class FrameCache:
    """A built frame cache folder (see the module docstring)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        index_path = self.folder / INDEX_FILE
        if not index_path.is_file():
            raise FileNotFoundError(f"{index_path}: not found: expected a frame cache built by `vmae cache`")
        index = json.loads(index_path.read_text())
        self.data_dir = index["data_dir"]
        self.size = int(index["size"])
        self.videos: dict[str, dict] = index["videos"]
        self.bad: dict[str, str] = index["bad"]

    @staticmethod
    def exists(folder: str | Path) -> bool:
        return bool(folder) and (Path(folder) / INDEX_FILE).is_file()

    def __contains__(self, video: str | Path) -> bool:
        key = cache_key(video, self.data_dir)
        return key in self.videos or key in self.bad

    def open(self, video: str | Path) -> CachedReader:
        """The cached frames of ``video``; ``VideoReadError`` if the cache recorded it unreadable."""
        key = cache_key(video, self.data_dir)
        if key in self.bad:
            raise readers.VideoReadError(video, f"{self.bad[key]} (recorded by the frame cache {self.folder})")
        if key not in self.videos:
            raise KeyError(f"{video}: not in the frame cache {self.folder}")
        return CachedReader(str(video), self.folder / self.videos[key]["file"])


def _cache_one(video: str, target: Path, size: int, backend: str) -> dict:
    """Decode all frames of ``video``, shrink, save to ``target``; -> an index entry or {"bad": reason}."""
    try:
        reader = readers.open_reader(video, backend)
        frames = reader.get(np.arange(reader.num_frames))
    except readers.VideoReadError as err:
        return {"bad": err.reason}
    frames = shrink_short_side(frames, size)
    with atomic_path(target, fsync=False) as tmp:
        np.save(tmp, frames)
    return {"frames": int(frames.shape[0]), "height": int(frames.shape[1]), "width": int(frames.shape[2])}


def build_cache(
    data_dir: str | Path,
    out_dir: str | Path,
    size: int,
    manifests: Sequence[str | Path] = (),
    workers: int = 1,
    backend: readers.Backend = "auto",
) -> FrameCache:
    """Pre-decode every video listed in ``data_dir``'s train.csv / val.csv and ``manifests``."""
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    lists = [p for p in (data_dir / "train.csv", data_dir / "val.csv") if p.is_file()] + [Path(m) for m in manifests]
    if not lists:
        raise FileNotFoundError(f"{data_dir}: no train.csv or val.csv: expected a folder prepared by `vmae prepare`")
    videos = sorted({path for manifest in lists for path, _ in read_manifest(manifest)})
    keys = [cache_key(v, data_dir) for v in videos]
    files = [Path(k.lstrip("/")).with_suffix(".npy").as_posix() for k in keys]
    jobs = [(v, out_dir / f, size, backend) for v, f in zip(videos, files)]
    progress = dict(total=len(jobs), desc=f"cache {data_dir.name}", unit="video")
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            entries = list(tqdm(pool.map(_cache_one, *zip(*jobs), chunksize=4), **progress))
    else:
        entries = [_cache_one(*job) for job in tqdm(jobs, **progress)]
    index = {"data_dir": os.path.abspath(data_dir), "size": size, "videos": {}, "bad": {}}
    for key, file, entry in zip(keys, files, entries):
        if "bad" in entry:
            index["bad"][key] = entry["bad"]
        else:
            index["videos"][key] = {"file": file, **entry}
    write_json_atomic(out_dir / INDEX_FILE, index)
    return FrameCache(out_dir)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data_dir", help="a prepared dataset folder (train.csv, val.csv)")
    parser.add_argument("--out", required=True, help="cache folder to write (index.json + one .npy a video)")
    parser.add_argument("--size", type=int, default=ModelConfig.img_size,
                        help="short side of the cached frames, normally the training model.img_size "
                             f"(default: its default, {ModelConfig.img_size})")
    parser.add_argument("--manifest", action="append", default=[],
                        help="an extra manifest whose videos to cache (repeatable)")
    parser.add_argument("--workers", type=int, default=1, help="decoding processes (default 1)")
    parser.add_argument("--reader", choices=["auto", "decord", "pyav"], default="auto")


def main(args: argparse.Namespace) -> int:
    cache = build_cache(args.data_dir, args.out, args.size, args.manifest, args.workers, args.reader)
    print(f"{cache.folder}: {len(cache.videos)} videos cached at short side <= {cache.size}, "
          f"{len(cache.bad)} unreadable")
    return 0
