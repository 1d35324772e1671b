"""Kinetics-400: annotation CSVs ``label,youtube_id,time_start,time_end,split,is_cc``.

Files are ``kinetics-400_{train,val}.csv`` or ``{train,val|validate}.csv`` (CVDF mirror). Labels with
spaces are double-quoted and contain ``( ) '``, so the file is read with the csv module. Videos are
``<youtube_id>_<start:06d>_<end:06d>.mp4`` anywhere below the raw folder. Every copy of K400 lacks
some videos: those are counted, returned in ``missing`` and left out. Labels follow sorted names.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from vmae.data.formats.common import (
    FileIndex,
    FormatError,
    ParsedDataset,
    class_index,
    locate_all,
    option,
)

if TYPE_CHECKING:
    from vmae.data.registry import DatasetSpec

SPLITS = (1,)
TRAIN = ["kinetics-400_train.csv", "train.csv"]
VAL = ["kinetics-400_val.csv", "val.csv", "validate.csv"]
COLUMNS = ("label", "youtube_id", "time_start", "time_end")


def video_name(youtube_id: str, start: int, end: int, extension: str = ".mp4") -> str:
    """The file name of a clip in the CVDF copy, e.g. ``0wR5jVB-WPk_000417_000427.mp4``."""
    return f"{youtube_id}_{start:06d}_{end:06d}{extension}"


class Row(NamedTuple):
    """One annotated clip: its label, video file name, and where the CSV lists it."""

    label: str
    video: str
    line_no: int
    content: str


def read_annotations(path: Path) -> list[Row]:
    """The rows of an annotation CSV."""
    rows: list[Row] = []
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        absent = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if absent:
            raise FormatError.at(path, 1, ",".join(reader.fieldnames or []),
                                 f"a header with columns {list(COLUMNS)} (missing {absent})")
        for row in reader:
            content = ",".join(str(v) for v in row.values())
            try:
                start, end = int(float(row["time_start"])), int(float(row["time_end"]))
            except (TypeError, ValueError):
                start = end = -1
            if start < 0 or end < start or not row["label"] or not row["youtube_id"]:
                raise FormatError.at(path, reader.line_num, content,
                                     "'label,youtube_id,time_start,time_end,...' with integer times")
            rows.append(Row(row["label"], video_name(row["youtube_id"], start, end), reader.line_num, content))
    return rows


def parse_k400(spec: DatasetSpec, raw_dir: Path, split: int) -> ParsedDataset:
    """K400 train / val; classes = sorted train labels; a val label outside them is an error;
    videos absent from the copy go to ``missing``. ``format_options.video_extensions`` (default
    [".mp4", ".mkv", ".webm"]) lists the containers a copy may use."""
    index = FileIndex(raw_dir)
    instructions = spec.source.get("instructions", "")
    train_path = index.require(TRAIN, "K400 train annotations", instructions)
    val_path = index.require(VAL, "K400 val annotations", instructions)
    train_rows = read_annotations(train_path)
    val_rows = read_annotations(val_path)
    classes = sorted({row.label for row in train_rows})
    lookup = {name: i for i, name in enumerate(classes)}

    def labelled(rows: list[Row], path: Path) -> list[tuple[str, int]]:
        return [(row.video, class_index(lookup, row.label, path, row.line_no, row.content)) for row in rows]

    extensions = option(spec.format_options, "video_extensions", [".mp4", ".mkv", ".webm"], list)
    return locate_all(labelled(train_rows, train_path), labelled(val_rows, val_path), classes,
                      index.video_locator(extensions), raw_dir, allow_missing=True)
