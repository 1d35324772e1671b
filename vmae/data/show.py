"""`vmae show NAME_OR_DATA_DIR --out FILE.png [--per-class 2] [--frames 8]`: a picture of a dataset.
With ``--recipe FINETUNE.yaml [--videos N] [key=value ...]``: a fine-tuning batch of the prepared
folder's training videos as that recipe augments them (``vmae.data.batch_view``), every frame of a
clip in a row.

One row per sample video (``per_class`` videos of every class), ``frames`` evenly spaced frames in
a row, the class name on the left. A prepared folder (or ``results/data/<name>`` when a dataset
name was given and it is prepared) is decoded from its video files; an unprepared synthetic
dataset is generated in memory.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np

from vmae.data import synthetic
from vmae.data.manifest import INFO_FILE, read_classes, read_manifest
from vmae.data.registry import load_spec

PREPARED_ROOT = Path("results") / "data"  # where the workflow prepares datasets (relative to the cwd)
CELL_INCHES = 0.55  # drawn size of one frame
LABEL_INCHES = 1.3  # left margin for class names
TOP_INCHES = 0.3  # top margin for frame numbers
GAP_PX = 2  # white gap between frames in the mosaic
DPI = 100
MAX_CELL_PX = 96  # frames larger than this are shrunk (nearest neighbour) to this height


def sample_videos(source: str, per_class: int, frames: int) -> tuple[list[str], list[tuple[int, np.ndarray]]]:
    """Class names and ``[(label, uint8 (frames, H, W, 3)), ...]`` for ``per_class`` videos a class.

    ``source`` is a prepared folder or a dataset name (see the module docstring).
    """
    folder = Path(source) if (Path(source) / INFO_FILE).is_file() else PREPARED_ROOT / source
    if (folder / INFO_FILE).is_file():
        return read_classes(folder), _decode_samples(folder, per_class, frames)
    spec = load_spec(source)
    if spec.source["kind"] != "synthetic":
        raise FileNotFoundError(f"{source}: not prepared ({folder / INFO_FILE} not found): expected a "
                                f"prepared folder; run `vmae prepare {source} --out {folder}` first")
    params = synthetic.GeneratorParams.from_spec(spec.source["generator"])
    picks = _even_indices(params.frames, frames)
    samples = [(c, synthetic.make_video(params, "val", c, i)[picks])
               for c in range(len(synthetic.CLASS_NAMES)) for i in range(per_class)]
    return list(synthetic.CLASS_NAMES), samples


def _decode_samples(folder: Path, per_class: int, frames: int) -> list[tuple[int, np.ndarray]]:
    """The first ``per_class`` videos of each class in val.csv (else train.csv), decoded."""
    from vmae.data.readers import num_frames, read_frames

    manifest = folder / "val.csv" if (folder / "val.csv").is_file() else folder / "train.csv"
    by_class: dict[int, list[str]] = defaultdict(list)
    for path, label in read_manifest(manifest):
        if len(by_class[label]) < per_class:
            by_class[label].append(path)
    return [(label, read_frames(path, _even_indices(num_frames(path), frames)))
            for label in sorted(by_class) for path in by_class[label]]


def _even_indices(length: int, count: int) -> np.ndarray:
    """``count`` evenly spaced frame indices over a video of ``length`` frames (first and last included)."""
    return np.round(np.linspace(0, length - 1, count)).astype(np.int64)


def mosaic(clips: list[np.ndarray], cell: tuple[int, int]) -> np.ndarray:
    """Tile ``clips`` (each uint8 (F, H, W, 3)) into one uint8 image, a clip a row, white gaps;
    frames are resized (nearest neighbour) to ``cell = (h, w)``."""
    h, w = cell
    cols = max(len(c) for c in clips)
    image = np.full((len(clips) * (h + GAP_PX) - GAP_PX, cols * (w + GAP_PX) - GAP_PX, 3), 255, np.uint8)
    for row, clip in enumerate(clips):
        rows_idx = np.arange(h) * clip.shape[1] // h
        cols_idx = np.arange(w) * clip.shape[2] // w
        for col, frame in enumerate(clip):
            y, x = row * (h + GAP_PX), col * (w + GAP_PX)
            image[y:y + h, x:x + w] = frame[rows_idx][:, cols_idx]
    return image


def figure_size(rows: int, cols: int) -> tuple[float, float]:
    """(width, height) in inches of a picture of ``rows`` clips of ``cols`` frames."""
    return LABEL_INCHES + cols * CELL_INCHES + 0.1, TOP_INCHES + rows * CELL_INCHES + 0.1


def render_grid(classes: list[str], samples: list[tuple[int, np.ndarray]], out: str | Path,
                title: str = "") -> tuple[int, int]:
    """Draw the samples as a grid into the PNG ``out``; returns its (width, height) in pixels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = samples[0][1]
    h = min(first.shape[1], MAX_CELL_PX)
    cell = (h, max(1, round(first.shape[2] * h / first.shape[1])))
    image = mosaic([clip for _, clip in samples], cell)
    cols = max(len(clip) for _, clip in samples)
    width, height = figure_size(len(samples), cols)
    fig = plt.figure(figsize=(width, height), dpi=DPI)
    ax = fig.add_axes((LABEL_INCHES / width, 0.1 / height, cols * CELL_INCHES / width,
                       len(samples) * CELL_INCHES / height))
    ax.imshow(image, interpolation="nearest", aspect="auto")
    ax.set_xticks([(cell[1] + GAP_PX) * (i + 0.5) - GAP_PX / 2 for i in range(cols)])
    ax.set_xticklabels([f"t{i}" for i in range(cols)], fontsize=7)
    ax.xaxis.tick_top()
    ax.set_yticks([(cell[0] + GAP_PX) * (i + 0.5) - GAP_PX / 2 for i in range(len(samples))])
    ax.set_yticklabels([classes[label] for label, _ in samples], fontsize=8)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=9, x=0.01, y=1 - 0.02 / height, ha="left", va="top")
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=DPI)
    plt.close(fig)
    return round(width * DPI), round(height * DPI)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", metavar="NAME_OR_DATA_DIR", help="dataset name or prepared folder")
    parser.add_argument("--out", required=True, type=Path, help="PNG to write")
    parser.add_argument("--per-class", type=int, default=2, help="sample videos per class")
    parser.add_argument("--frames", type=int, default=8, help="frames shown per video (evenly spaced)")
    parser.add_argument("--recipe", type=Path, default=None,
                        help="a fine-tuning config: show its augmented training clips instead (a prepared folder)")
    parser.add_argument("--videos", type=int, default=4, help="with --recipe: training videos shown")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="with --recipe: config overrides")


def main(args: argparse.Namespace) -> int:
    if args.recipe:
        from vmae.data.batch_view import augmented_batch

        folder = Path(args.dataset) if (Path(args.dataset) / INFO_FILE).is_file() else PREPARED_ROOT / args.dataset
        classes, samples = augmented_batch(folder, args.recipe, args.overrides, args.videos)
        title = f"{args.dataset}: a training batch of {args.recipe}"
    else:
        classes, samples = sample_videos(args.dataset, args.per_class, args.frames)
        title = str(args.dataset)
    size = render_grid(classes, samples, args.out, title=title)
    print(f"wrote {args.out} ({size[0]}x{size[1]} px, {len(samples)} videos)")
    return 0
