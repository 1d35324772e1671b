"""The prepared dataset folder: manifests (train.csv / val.csv), classes.txt and dataset.json.

A manifest is a CSV with header ``path,label``: 0-based integer labels, paths relative to the
CSV's folder (or absolute). ``dataset.json`` holds what a loader needs to know about the dataset
(sampling, flip rules, the folders its videos may live in), mirrored by ``DatasetInfo``.

Reading is strict, since manifests and annotation lists come from elsewhere: a label is ASCII digits
below the class count, a relative path stays below the CSV's folder, and (for a prepared dataset) an
absolute path lies in one of the dataset's ``video_roots``. All files are written atomically.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vmae.atomic import atomic_open, write_json_atomic, write_text_atomic
from vmae.errors import UserError

MANIFEST_HEADER = ["path", "label"]
CLASSES_FILE = "classes.txt"
INFO_FILE = "dataset.json"
MISSING_FILE = "missing.txt"


class ManifestError(UserError, ValueError):
    """A manifest, classes.txt or dataset.json is malformed."""


@dataclass
class DatasetInfo:
    """What ``dataset.json`` says about a prepared dataset.

    ``flip_label_map[i]`` is the class a horizontal flip turns class ``i`` into (identity where the
    flip does not swap it).
    """

    name: str
    domain: str
    num_classes: int
    sampling_mode: str  # dense | segments
    frame_stride: int  # dense sampling's stride (the dataset file's sampling.frame_stride, schema default)
    flip_allowed: bool = True
    flip_label_map: list[int] = field(default_factory=list)
    # absolute folders besides the dataset's own that its videos may lie in (--raw, recorded by
    # `vmae prepare`); None = not recorded (a hand-made dataset.json): absolute paths go unchecked
    video_roots: list[str] | None = field(default=None, compare=False)
    folder: str | None = field(default=None, compare=False, repr=False)  # where load() read it

    def allowed_roots(self) -> list[str] | None:
        """The folders a manifest's absolute paths may lie in: this dataset's folder and its
        ``video_roots``; None when no roots were recorded (then they are not checked)."""
        if self.video_roots is None:
            return None
        return ([self.folder] if self.folder else []) + list(self.video_roots)

    def __post_init__(self) -> None:
        if not self.flip_label_map:
            self.flip_label_map = list(range(self.num_classes))

    def to_json(self) -> dict[str, Any]:
        data = {
            "name": self.name,
            "domain": self.domain,
            "num_classes": self.num_classes,
            "sampling": {"mode": self.sampling_mode, "frame_stride": self.frame_stride},
            "flip": {"allowed": self.flip_allowed, "label_map": list(self.flip_label_map)},
        }
        if self.video_roots is not None:
            data["video_roots"] = list(self.video_roots)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any], source: str = INFO_FILE) -> DatasetInfo:
        try:
            info = cls(
                name=data["name"],
                domain=data["domain"],
                num_classes=int(data["num_classes"]),
                sampling_mode=data["sampling"]["mode"],
                frame_stride=int(data["sampling"]["frame_stride"]),
                flip_allowed=bool(data["flip"]["allowed"]),
                flip_label_map=[int(c) for c in data["flip"]["label_map"]],
                video_roots=[str(r) for r in data["video_roots"]] if "video_roots" in data else None,
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ManifestError(f"{source}: missing or malformed field {err}: expected the dataset.json "
                                "layout {name, domain, num_classes, sampling{mode, "
                                "frame_stride}, flip{allowed, label_map}}") from None
        if len(info.flip_label_map) != info.num_classes:
            raise ManifestError(f"{source}: flip.label_map has {len(info.flip_label_map)} entries: "
                                f"expected num_classes={info.num_classes}")
        return info

    @classmethod
    def load(cls, data_dir: str | Path) -> DatasetInfo:
        path = Path(data_dir) / INFO_FILE
        if not path.is_file():
            raise ManifestError(f"{path}: not found: expected a folder prepared by `vmae prepare`")
        info = cls.from_json(json.loads(path.read_text()), source=str(path))
        info.folder = os.path.abspath(data_dir)
        return info

    def save(self, data_dir: str | Path) -> None:
        write_json_atomic(Path(data_dir) / INFO_FILE, self.to_json())


def read_manifest(csv_path: str | Path, num_classes: int | None = None,
                  video_roots: list[str] | None = None) -> list[tuple[str, int]]:
    """``[(absolute path, label), ...]`` from a ``path,label`` CSV; relative paths resolve against
    the CSV's folder and must stay below it.

    num_classes: labels must be below it (else any ASCII integer >= 0). video_roots: absolute
    paths must lie below the CSV's folder or one of these (None: absolute paths are not checked).
    A bad row raises ``ManifestError`` naming the file, the line, the value and what was expected.
    """
    csv_path = Path(csv_path)
    base = Path(os.path.abspath(csv_path)).parent
    rows: list[tuple[str, int]] = []
    with open(csv_path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header != MANIFEST_HEADER:
            raise ManifestError(f"{csv_path}:1: header {header}: expected {MANIFEST_HEADER}")
        for line_no, row in enumerate(reader, start=2):
            if len(row) != 2:
                raise ManifestError(f"{csv_path}:{line_no}: {row}: expected 2 fields (path,label)")
            path, label = row
            where = f"{csv_path}:{line_no}"
            rows.append((_checked_path(path, base, video_roots, where), _checked_label(label, num_classes, where)))
    return rows


def _checked_label(label: str, num_classes: int | None, where: str) -> int:
    """``label`` as an int: ASCII digits (``'²'`` and ``'-1'`` are refused), below ``num_classes``."""
    if not (label.isascii() and label.isdigit()):
        raise ManifestError(f"{where}: label {label!r}: expected a 0-based integer")
    value = int(label)
    if num_classes is not None and value >= num_classes:
        raise ManifestError(f"{where}: label {label!r}: expected a 0-based integer below num_classes={num_classes}")
    return value


def is_below(path: str | Path, folder: str | Path) -> bool:
    """True when ``path`` is ``folder`` or lies below it (lexically, after normalisation)."""
    path, folder = os.path.normpath(os.path.abspath(path)), os.path.normpath(os.path.abspath(folder))
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _checked_path(path: str, base: Path, video_roots: list[str] | None, where: str) -> str:
    """``path`` made absolute against ``base``; a relative one must stay below ``base``, an absolute
    one below ``base`` or one of ``video_roots`` (when given)."""
    resolved = os.path.normpath(base / path)
    if not path or not os.path.isabs(path) and not is_below(resolved, base):
        raise ManifestError(f"{where}: path {path!r}: expected a video path below the manifest's folder {base}")
    if os.path.isabs(path) and video_roots is not None and not any(
            is_below(resolved, root) for root in [str(base), *video_roots]):
        raise ManifestError(f"{where}: path {path!r}: expected a video below the dataset's folders "
                            f"{[str(base), *video_roots]} (dataset.json video_roots)")
    return resolved


def write_manifest(csv_path: str | Path, rows: list[tuple[str, int]]) -> None:
    """Write ``rows`` as a ``path,label`` CSV; paths below the CSV's folder are stored relative to it
    (POSIX separators), others absolute."""
    csv_path = Path(csv_path)
    base = Path(os.path.abspath(csv_path)).parent
    with atomic_open(csv_path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(MANIFEST_HEADER)
        for path, label in rows:
            writer.writerow([_relative_if_below(path, base), int(label)])


def _relative_if_below(path: str | Path, base: Path) -> str:
    """``path`` (absolute, or relative to the working directory) relative to ``base`` if below it."""
    absolute = Path(os.path.abspath(path))
    try:
        return absolute.relative_to(base).as_posix()
    except ValueError:
        return str(absolute)


def read_classes(data_dir: str | Path) -> list[str]:
    """Class names from ``classes.txt`` (line i = class i)."""
    path = Path(data_dir) / CLASSES_FILE
    if not path.is_file():
        raise ManifestError(f"{path}: not found: expected one class name a line")
    names = path.read_text().splitlines()
    if not names or any(not n.strip() for n in names):
        raise ManifestError(f"{path}: empty line or empty file: expected one class name a line")
    return names


def write_classes(data_dir: str | Path, names: list[str]) -> None:
    write_text_atomic(Path(data_dir) / CLASSES_FILE, "".join(f"{n}\n" for n in names))
