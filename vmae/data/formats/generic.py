"""Formats for user datasets: ``folder``, ``csv`` and the official VideoMAE list (``videomae_list``).

folder          ``<root>/<class>/<video>``; split by sub-folders ``train/`` and ``val/`` when both
                exist, else a seeded stratified ``val_fraction`` of each class goes to val.
                Options: root (below --raw, default ""), val_fraction (0.2), seed (0),
                video_extensions.
csv             ``path,label[,split]`` with a header. Either one file (option ``file``) whose
                ``split`` column says train or val, or two files (options ``train`` / ``val``,
                default train.csv / val.csv). A label is a class name, or a 0-based index when it
                is all digits. Classes: option ``classes`` (a file, one name a line), else the
                sorted train label names (or "0".."N-1" for index labels).
videomae_list   ``<path> <label>`` lines, no header (options ``train`` / ``val``, default
                train.csv / val.csv; ``classes`` as for csv).
Annotation files are found by name anywhere below --raw. Relative video paths resolve against
option ``video_root`` (below --raw) or else the annotation file's folder; a missing video raises
unless ``allow_missing: true``.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from vmae.atomic import write_text_atomic
from vmae.data.formats.common import (
    FileIndex,
    FormatError,
    ParsedDataset,
    UnknownClassError,
    class_index,
    is_index,
    locate_all,
    option,
    read_lines,
)

if TYPE_CHECKING:
    from vmae.data.registry import DatasetSpec

SPLITS = (1,)
VIDEO_EXTENSIONS = [".mp4", ".avi", ".webm", ".mkv", ".mov", ".m4v", ".mpg", ".mpeg"]


# --------------------------------------------------------------------------- folder


def class_folders(root: Path, extensions: list[str]) -> dict[str, list[Path]]:
    """Class name -> sorted videos below ``root/<class>/`` (folders without videos are ignored)."""
    suffixes = {ext.lower() for ext in extensions}
    classes: dict[str, list[Path]] = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        videos = sorted(p for p in folder.rglob("*") if p.suffix.lower() in suffixes and p.is_file())
        if videos:
            classes[folder.name] = videos
    return classes


def stratified_split(videos: list[Path], val_fraction: float, rng: random.Random) -> tuple[list[Path], list[Path]]:
    """(train, val) of one class: round(n * val_fraction) shuffled videos go to val, at least one
    and at most n - 1 when the class has two or more videos and the fraction is above zero."""
    order = list(videos)
    rng.shuffle(order)
    n_val = round(len(order) * val_fraction)
    if val_fraction > 0 and len(order) >= 2:
        n_val = min(max(n_val, 1), len(order) - 1)
    return sorted(order[n_val:]), sorted(order[:n_val])


def parse_folder(spec: DatasetSpec, raw_dir: Path, split: int) -> ParsedDataset:
    """``<root>/<class>/<video>`` (or ``<root>/{train,val}/<class>/<video>``); classes sorted.

    The seeded split draws each class's validation videos with its own generator, seeded by
    (seed, class name), so adding a class never changes another class's split.
    """
    options = spec.format_options
    root = raw_dir / option(options, "root", "", str)
    extensions = option(options, "video_extensions", VIDEO_EXTENSIONS, list)
    if not root.is_dir():
        raise FormatError(f"{root}: no such folder: expected <root>/<class>/<video> (format_options.root)")
    if (root / "train").is_dir() and (root / "val").is_dir():
        train_videos = class_folders(root / "train", extensions)
        val_videos = class_folders(root / "val", extensions)
        for name in val_videos:
            if name not in train_videos:
                raise UnknownClassError(f"{root / 'val' / name}: class folder {name!r}: expected one of the "
                                        f"class folders of {root / 'train'}: {sorted(train_videos)}")
    else:
        val_fraction = option(options, "val_fraction", 0.2, (float, int))
        seed = option(options, "seed", 0, int)
        if not 0 <= val_fraction < 1:
            raise FormatError(f"format_options.val_fraction: {val_fraction}: expected a number in [0, 1)")
        train_videos, val_videos = {}, {}
        for name, videos in class_folders(root, extensions).items():
            train_videos[name], val_videos[name] = stratified_split(videos, val_fraction,
                                                                    random.Random(f"{seed}:{name}"))
    classes = sorted(train_videos)
    if not classes:
        raise FormatError(f"{root}: no class folder holds videos with extensions {extensions}: "
                          "expected <root>/<class>/<video>")

    def rows(videos: dict[str, list[Path]]) -> list[tuple[str, int]]:
        return [(str(p.absolute()), label) for label, name in enumerate(classes) for p in videos.get(name, [])]

    return ParsedDataset(rows(train_videos), rows(val_videos), classes)


# --------------------------------------------------------------------------- csv / videomae_list


class CsvRow(NamedTuple):
    """One row of a ``path,label[,split]`` CSV and where it stands."""

    path: str
    label: str
    split: str | None
    line_no: int
    content: str


def read_csv_rows(path: Path) -> list[CsvRow]:
    """The rows of a ``path,label[,split]`` CSV (header required)."""
    rows = []
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if [h.strip() for h in header or []] not in (["path", "label"], ["path", "label", "split"]):
            raise FormatError.at(path, 1, ",".join(header or []), "the header 'path,label' or 'path,label,split'")
        for fields in reader:
            content = ",".join(fields)
            if not any(f.strip() for f in fields):
                continue
            if len(fields) != len(header) or not fields[0] or not fields[1].strip():
                raise FormatError.at(path, reader.line_num, content, f"{len(header)} fields: {','.join(header)}")
            rows.append(CsvRow(fields[0], fields[1].strip(), fields[2].strip() if len(header) == 3 else None,
                               reader.line_num, content))
    return rows


def read_videomae_list(path: Path, num_classes: int | None = None) -> list[tuple[str, int]]:
    """(path, 0-based label) of each ``<path> <label>`` line of an official VideoMAE list; labels
    must be below ``num_classes`` when it is given."""
    rows = []
    for line_no, line in read_lines(path):
        fields = line.rsplit(" ", 1)
        if len(fields) != 2 or not fields[0] or not is_index(fields[1]):
            raise FormatError.at(path, line_no, line, "'<path> <0-based label>'")
        if num_classes is not None and int(fields[1]) >= num_classes:
            raise UnknownClassError.at(path, line_no, line, f"a label in 0..{num_classes - 1}")
        rows.append((fields[0], int(fields[1])))
    return rows


def write_videomae_list(path: str | Path, rows: list[tuple[str, int]]) -> None:
    """Write (path, label) rows as an official VideoMAE list: ``<path> <label>`` lines, no header."""
    write_text_atomic(path, "".join(f"{video} {label}\n" for video, label in rows))


def read_class_file(path: Path) -> list[str]:
    """One class name a line, in label order."""
    return [line.strip() for _, line in read_lines(path)]


def label_of(text: str, classes: list[str], lookup: dict[str, int], path: Path, line_no: int, content: str) -> int:
    """An all-digit label is a 0-based class index; any other is a class name."""
    if not is_index(text):
        return class_index(lookup, text, path, line_no, content)
    if int(text) >= len(classes):
        raise UnknownClassError.at(path, line_no, content, f"a class index in 0..{len(classes) - 1}")
    return int(text)


def _given_classes(spec: DatasetSpec, index: FileIndex) -> list[str] | None:
    """The class list of ``format_options.classes`` (a file found below --raw), if set."""
    name = option(spec.format_options, "classes", None, (str, type(None)))
    return None if name is None else read_class_file(index.require([name], "class list (format_options.classes)"))


def _finish(spec: DatasetSpec, raw_dir: Path, parts: list[list[tuple[str, int, Path]]],
            classes: list[str]) -> ParsedDataset:
    """(video, label, annotation file) of train and val -> ParsedDataset with existing videos.

    Relative paths resolve against ``format_options.video_root`` (below --raw) or else the
    annotation file's folder; absolute paths stay.
    """
    options = spec.format_options
    video_root = option(options, "video_root", None, (str, type(None)))
    train, val = ([(str((raw_dir / video_root if video_root is not None else source.parent) / video), label)
                   for video, label, source in part] for part in parts)
    allow_missing = option(options, "allow_missing", False, bool)
    return locate_all(train, val, classes, lambda p: Path(p) if Path(p).is_file() else None, raw_dir, allow_missing)


def parse_csv(spec: DatasetSpec, raw_dir: Path, split: int) -> ParsedDataset:
    """A ``path,label[,split]`` dataset (see the module docstring)."""
    options = spec.format_options
    index = FileIndex(raw_dir)
    single = option(options, "file", None, (str, type(None)))
    rows: dict[str, list[tuple[Path, CsvRow]]] = {"train": [], "val": []}
    if single is not None:
        path = index.require([single], "annotation CSV (format_options.file)")
        for row in read_csv_rows(path):
            if row.split not in rows:
                raise FormatError.at(path, row.line_no, row.content, "a split column of 'train' or 'val'")
            rows[row.split].append((path, row))
    else:
        for part, default in (("train", "train.csv"), ("val", "val.csv")):
            path = index.require([option(options, part, default, str)], f"{part} CSV (format_options.{part})")
            rows[part] = [(path, row) for row in read_csv_rows(path)]
    classes = _given_classes(spec, index)
    if classes is None:
        train_labels = [row.label for _, row in rows["train"]]
        by_index = all(is_index(label) for label in train_labels)
        classes = [str(i) for i in range(spec.num_classes)] if by_index else sorted(set(train_labels))
    lookup = {name: i for i, name in enumerate(classes)}
    parts = [[(row.path, label_of(row.label, classes, lookup, path, row.line_no, row.content), path)
              for path, row in rows[part]] for part in ("train", "val")]
    return _finish(spec, raw_dir, parts, classes)


def parse_videomae_list(spec: DatasetSpec, raw_dir: Path, split: int) -> ParsedDataset:
    """Official VideoMAE lists ``<path> <label>`` (see the module docstring)."""
    options = spec.format_options
    index = FileIndex(raw_dir)
    classes = _given_classes(spec, index) or [str(i) for i in range(spec.num_classes)]
    parts = []
    for part, default in (("train", "train.csv"), ("val", "val.csv")):
        path = index.require([option(options, part, default, str)], f"{part} list (format_options.{part})")
        parts.append([(video, label, path) for video, label in read_videomae_list(path, len(classes))])
    return _finish(spec, raw_dir, parts, classes)
