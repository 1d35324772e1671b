"""`vmae prepare NAME_OR_YAML --out DIR [--raw DIR] [--split N]`: write a prepared dataset folder.

DIR gets ``train.csv``, ``val.csv`` (``path,label``), ``classes.txt``, ``dataset.json`` and, where
annotations list videos that are absent, ``missing.txt``. Synthetic datasets are generated into
``DIR/videos/<split>/<class>/<class>_<index>.avi`` (same seed, same bytes); other datasets are
parsed by ``vmae.data.formats.build_split`` from the files under ``--raw``.

Preparing again into the same folder replaces the dataset: ``dataset.json`` (which makes the folder
a prepared dataset) is removed first and written last, so an interrupted run leaves no usable mix of
old and new files, and videos that the previous preparation generated below ``DIR/videos`` and the
new one does not are deleted. Nothing else in DIR is touched.
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing
import os
import time
from pathlib import Path

from vmae.data import synthetic
from vmae.atomic import write_text_atomic
from vmae.data.manifest import (
    INFO_FILE, MISSING_FILE, DatasetInfo, ManifestError, is_below, read_manifest, write_classes, write_manifest,
)
from vmae.data.registry import DatasetSpec, flip_label_indices, load_spec, override_source
from vmae.data.writer import write_video

POOL_THRESHOLD = 50  # generate in worker processes when a dataset has more videos than this


def prepare_dataset(spec: DatasetSpec, out_dir: str | Path, raw_dir: str | Path | None = None,
                    split: int | None = None, workers: int | None = None) -> None:
    """Write the prepared folder of ``spec`` into ``out_dir`` (see the module docstring).

    ``split`` selects an official split (ucf101/hmdb51); ``workers`` caps the processes that
    generate synthetic videos (default: the CPUs available; the output does not depend on it).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    previous = generated_videos(out_dir)
    (out_dir / INFO_FILE).unlink(missing_ok=True)  # not a prepared dataset until it is written again
    if spec.source["kind"] == "synthetic":
        classes = list(synthetic.CLASS_NAMES)
        params = synthetic.GeneratorParams.from_spec(spec.source["generator"])
        splits = {name: generate_synthetic(params, name, out_dir, workers) for name in synthetic.SPLITS}
        missing: list[str] = []
    else:
        from vmae.data.formats import build_split

        parsed = build_split(spec, raw_dir, split)
        classes, missing = parsed.classes, parsed.missing
        splits = {"train": parsed.train, "val": parsed.val}
        if len(classes) != spec.num_classes:
            raise ValueError(f"{spec.path}: num_classes: {spec.num_classes}: the {spec.format} parser "
                             f"found {len(classes)} classes under {raw_dir}")
    video_roots = [os.path.abspath(raw_dir)] if raw_dir is not None else []
    check_inside(splits, [os.path.abspath(out_dir), *video_roots], spec)
    for name, rows in splits.items():
        write_manifest(out_dir / f"{name}.csv", rows)
    remove_stale(previous - {os.path.abspath(p) for rows in splits.values() for p, _ in rows})
    write_classes(out_dir, classes)
    _write_missing(out_dir / MISSING_FILE, missing)
    DatasetInfo(
        name=spec.name,
        domain=spec.domain,
        num_classes=len(classes),
        sampling_mode=spec.sampling_mode,
        frame_stride=spec.frame_stride,
        flip_allowed=spec.flip_allowed,
        flip_label_map=flip_label_indices(spec.flip_label_map, classes, str(spec.path)),
        video_roots=video_roots,
    ).save(out_dir)
    print(_summary(splits, classes, missing))


def generated_videos(out_dir: Path) -> set[str]:
    """Videos an earlier preparation generated into ``out_dir/videos`` (listed in its manifests);
    unreadable old manifests count as listing none."""
    videos: set[str] = set()
    for manifest in (out_dir / f"{name}.csv" for name in synthetic.SPLITS):
        try:
            rows = read_manifest(manifest) if manifest.is_file() else []
        except (ManifestError, OSError, UnicodeDecodeError):
            rows = []
        videos.update(path for path, _ in rows if is_below(path, out_dir / "videos"))
    return videos


def remove_stale(videos: set[str]) -> None:
    """Delete generated videos the new manifests no longer list, and folders left empty."""
    for path in sorted(videos):
        Path(path).unlink(missing_ok=True)
        for folder in Path(path).parents:
            if folder.name == "videos" or not folder.is_dir() or any(folder.iterdir()):
                break
            folder.rmdir()


def check_inside(splits: dict[str, list[tuple[str, int]]], video_roots: list[str], spec: DatasetSpec) -> None:
    """Every video must lie below the prepared folder or ``--raw`` (an annotation list may name
    ``/etc/passwd`` or ``../../x``); else a ``ManifestError`` naming the video."""
    for name, rows in splits.items():
        for path, _ in rows:
            if not any(is_below(path, root) for root in video_roots):
                raise ManifestError(f"{spec.path}: {name} video {path!r}: expected a file below {video_roots} "
                                    "(the output folder or --raw)")


def generate_synthetic(params: synthetic.GeneratorParams, split: str, out_dir: Path,
                       workers: int | None = None) -> list[tuple[str, int]]:
    """Generate and encode every video of ``split``; returns the manifest rows, class-major."""
    jobs = [(params, split, c, i, str(video_path(out_dir, split, c, i)))
            for c in range(len(synthetic.CLASS_NAMES)) for i in range(params.per_class(split))]
    workers = workers or len(os.sched_getaffinity(0))
    if len(jobs) > POOL_THRESHOLD and workers > 1:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            pool.starmap(_write_one, jobs, chunksize=8)
    else:
        for job in jobs:
            _write_one(*job)
    return [(path, class_index) for _, _, class_index, _, path in jobs]


def video_path(out_dir: Path, split: str, class_index: int, index: int) -> Path:
    name = synthetic.CLASS_NAMES[class_index]
    return out_dir / "videos" / split / name / f"{name}_{index:04d}.avi"


def _write_one(params: synthetic.GeneratorParams, split: str, class_index: int, index: int, path: str) -> None:
    write_video(path, synthetic.make_video(params, split, class_index, index), params.fps, params.codec)


def _write_missing(path: Path, missing: list[str]) -> None:
    if missing:
        write_text_atomic(path, "".join(f"{m}\n" for m in missing))
    else:
        path.unlink(missing_ok=True)


def _summary(splits: dict[str, list[tuple[str, int]]], classes: list[str], missing: list[str]) -> str:
    """A table of videos per class and split."""
    counts = {name: collections.Counter(label for _, label in rows) for name, rows in splits.items()}
    width = max(len(c) for c in classes)
    lines = [f"{'class':<{width}}  " + "  ".join(f"{name:>6}" for name in splits)]
    for i, cls in enumerate(classes):
        lines.append(f"{cls:<{width}}  " + "  ".join(f"{counts[name][i]:>6}" for name in splits))
    lines.append(f"{'total':<{width}}  " + "  ".join(f"{len(rows):>6}" for rows in splits.values()))
    if missing:
        lines.append(f"missing videos (listed, not found): {len(missing)}")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", metavar="NAME_OR_YAML", help="dataset name (datasets/<name>.yaml) or a YAML path")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--raw", type=Path, default=None, help="folder of downloaded / placed raw files")
    parser.add_argument("--sources", type=Path, default=None,
                        help="YAML of dataset name -> source replacing the dataset file's (a mirror's URLs "
                             "and checksums)")
    parser.add_argument("--split", type=int, default=None, help="official split (ucf101, hmdb51: 1-3)")
    parser.add_argument("--workers", type=int, default=None, help="processes for synthetic generation")


def main(args: argparse.Namespace) -> int:
    spec = override_source(load_spec(args.dataset), args.sources)
    start = time.perf_counter()
    prepare_dataset(spec, args.out, raw_dir=args.raw, split=args.split, workers=args.workers)
    print(f"prepared {spec.name} in {args.out} ({time.perf_counter() - start:.1f} s)")
    return 0
