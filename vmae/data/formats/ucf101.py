"""UCF101: ``classInd.txt`` + ``trainlist0N.txt`` / ``testlist0N.txt`` (``ucfTrainTestlist/``).

classInd lines are ``<1-based id> <Class>``; trainlist lines ``<Class>/<file>.avi <id>``; testlist
lines ``<Class>/<file>.avi`` (label from the class folder). CRLF endings. Class folders and file
names differ in case for one class (``HandstandPushups`` / ``v_HandStandPushups_...``), so classes
and videos are matched case-insensitively. Labels follow classInd order (id - 1).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from vmae.data.formats.common import (
    FileIndex,
    FormatError,
    ParsedDataset,
    class_index,
    is_index,
    locate_all,
    option,
    read_lines,
)

if TYPE_CHECKING:
    from vmae.data.registry import DatasetSpec

SPLITS = (1, 2, 3)


def read_class_ind(path: Path) -> list[str]:
    """Class names in classInd order; ids must run 1, 2, ... in file order."""
    classes: list[str] = []
    for line_no, line in read_lines(path):
        fields = line.split()
        if len(fields) != 2 or not is_index(fields[0]):
            raise FormatError.at(path, line_no, line, "'<1-based id> <ClassName>'")
        if int(fields[0]) != len(classes) + 1:
            raise FormatError.at(path, line_no, line, f"id {len(classes) + 1} (ids in order from 1)")
        classes.append(fields[1])
    return classes


def read_split_list(path: Path, classes: list[str], labelled: bool) -> list[tuple[str, int]]:
    """(``Class/file.avi``, 0-based label) of a trainlist (``labelled``) or testlist file."""
    by_lower = {name.lower(): i for i, name in enumerate(classes)}
    entries: list[tuple[str, int]] = []
    for line_no, line in read_lines(path):
        fields = line.split()
        shape = "'<Class>/<file>.avi <1-based id>'" if labelled else "'<Class>/<file>.avi'"
        if len(fields) != (2 if labelled else 1) or "/" not in fields[0]:
            raise FormatError.at(path, line_no, line, shape)
        folder = fields[0].split("/")[0]
        label = class_index(by_lower, folder.lower(), path, line_no, line)
        if labelled:
            if not is_index(fields[1]) or not 1 <= int(fields[1]) <= len(classes):
                raise FormatError.at(path, line_no, line, f"a class id in 1..{len(classes)}")
            if int(fields[1]) - 1 != label:
                raise FormatError.at(path, line_no, line,
                                     f"id {label + 1} for class folder {folder!r} (classInd.txt)")
        entries.append((fields[0], label))
    return entries


def parse_ucf101(spec: DatasetSpec, raw_dir: Path, split: int) -> ParsedDataset:
    """UCF101 split ``split`` (1-3): train = trainlist, val = testlist; every listed video must exist
    (unless ``format_options.allow_missing``)."""
    index = FileIndex(raw_dir)
    classes = read_class_ind(index.require(["classInd.txt"], "UCF101 class list (ucfTrainTestlist/)"))
    train = read_split_list(index.require([f"trainlist0{split}.txt"], "UCF101 train list"), classes, True)
    val = read_split_list(index.require([f"testlist0{split}.txt"], "UCF101 test list"), classes, False)
    allow_missing = option(spec.format_options, "allow_missing", False, bool)

    def locate(entry: str) -> str | None:
        return index.lookup(entry.rsplit("/", 1)[-1], ignore_case=True)

    return locate_all(train, val, classes, locate, raw_dir, allow_missing)
