"""HMDB51: 153 files ``<class>_test_split{1,2,3}.txt`` (``testTrainMulti_7030_splits/``).

Each line is ``<video>.avi <0|1|2> `` (trailing space): 1 = train, 2 = test, 0 = unused. The class is
the file name minus ``_test_splitN.txt`` (never split on ``_``: ``kick`` / ``kick_ball``). Video
names contain ``! [ ] ( ) & ;``. Labels follow ``sorted()`` of the class names.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from vmae.data.formats.common import (
    FileIndex,
    FormatError,
    MissingFilesError,
    ParsedDataset,
    locate_all,
    option,
    read_lines,
)

if TYPE_CHECKING:
    from vmae.data.registry import DatasetSpec

SPLITS = (1, 2, 3)
SPLIT_FILE = re.compile(r"^(?P<cls>.+)_test_split(?P<split>[1-9])\.txt$")
TRAIN, TEST, UNUSED = "1", "2", "0"


def split_files(index: FileIndex, split: int) -> dict[str, Path]:
    """Class name -> its ``<class>_test_split<split>.txt`` found below the index root."""
    files: dict[str, Path] = {}
    for name in index.names():
        match = SPLIT_FILE.match(name)
        if match and int(match["split"]) == split:
            files[match["cls"]] = index.find(name)
    if not files:
        raise MissingFilesError(index.root, [f"<class>_test_split{split}.txt (testTrainMulti_7030_splits/)"],
                                "HMDB51 split files")
    return files


def read_split_file(path: Path, label: int) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """(train, test) lists of (video name, label) of one class's split file; 0-flagged videos dropped."""
    train: list[tuple[str, int]] = []
    test: list[tuple[str, int]] = []
    for line_no, line in read_lines(path):
        fields = line.strip().rsplit(maxsplit=1)
        if len(fields) != 2 or fields[1] not in (TRAIN, TEST, UNUSED) or not fields[0].endswith(".avi"):
            raise FormatError.at(path, line_no, line, "'<video>.avi <0|1|2>'")
        if fields[1] == TRAIN:
            train.append((fields[0], label))
        elif fields[1] == TEST:
            test.append((fields[0], label))
    return train, test


def parse_hmdb51(spec: DatasetSpec, raw_dir: Path, split: int) -> ParsedDataset:
    """HMDB51 split ``split`` (1-3): flag 1 -> train, 2 -> val; every listed video must exist
    (unless ``format_options.allow_missing``)."""
    index = FileIndex(raw_dir)
    files = split_files(index, split)
    classes = sorted(files)
    train: list[tuple[str, int]] = []
    val: list[tuple[str, int]] = []
    for label, name in enumerate(classes):
        class_train, class_test = read_split_file(files[name], label)
        train += class_train
        val += class_test
    allow_missing = option(spec.format_options, "allow_missing", False, bool)
    return locate_all(train, val, classes, index.lookup, raw_dir, allow_missing)
