"""Something-Something V2: a labels json and train / validation json lists.

``something-something-v2-labels.json`` (or ``labels.json`` in newer repackagings) maps each class
name to its id as a string, ``{"Approaching something with your camera": "0", ...}``. The lists
``something-something-v2-{train,validation}.json`` (or ``{train,validation}.json``) hold
``{"id": "74225", "template": "Spinning [something] that ...", ...}``; the class is the template
with ``[`` and ``]`` removed. Videos are ``<id>.webm``. Labels follow the ids of the labels json.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vmae.data.formats.common import (
    FileIndex,
    FormatError,
    ParsedDataset,
    UnknownClassError,
    is_index,
    locate_all,
    option,
)

if TYPE_CHECKING:
    from vmae.data.registry import DatasetSpec

SPLITS = (1,)
LABELS = ["something-something-v2-labels.json", "labels.json"]
TRAIN = ["something-something-v2-train.json", "train.json"]
VAL = ["something-something-v2-validation.json", "validation.json"]


def load_json(path: Path) -> Any:
    """The parsed file, or ``FormatError`` naming the file, line and content of a syntax error."""
    text = path.read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        line = text.splitlines()[err.lineno - 1] if text.strip() else ""
        raise FormatError.at(path, err.lineno, line[:200], f"valid JSON ({err.msg}, column {err.colno})") from None


def read_labels(path: Path) -> list[str]:
    """Class names ordered by their id (ids must be the strings "0".."N-1")."""
    data = load_json(path)
    if not isinstance(data, dict):
        raise FormatError(f"{path}: a JSON {type(data).__name__}: expected an object {{class name: id string}}")
    ids = {}
    for name, value in data.items():
        if not (isinstance(value, str) and is_index(value)):
            raise FormatError(f"{path}: {name!r}: {value!r}: expected an id string such as \"0\"")
        ids[int(value)] = name
    if sorted(ids) != list(range(len(data))):
        raise FormatError(f"{path}: ids {sorted(ids)[:5]}...: expected each of \"0\"..\"{len(data) - 1}\" once")
    return [ids[i] for i in range(len(data))]


def read_entries(path: Path, lookup: dict[str, int], extension: str) -> list[tuple[str, int]]:
    """(``<id><extension>``, label) of a train/validation list; the class is the template without
    brackets."""
    data = load_json(path)
    if not isinstance(data, list):
        raise FormatError(f"{path}: a JSON {type(data).__name__}: expected a list of entries")
    entries: list[tuple[str, int]] = []
    for number, entry in enumerate(data):
        if not (isinstance(entry, dict) and isinstance(entry.get("id"), str)
                and isinstance(entry.get("template"), str)):
            raise FormatError(f"{path}: entry {number}: {entry!r}: expected an object with string "
                              "'id' and 'template'")
        name = entry["template"].replace("[", "").replace("]", "")
        if name not in lookup:
            raise UnknownClassError(f"{path}: entry {number}: {entry!r}: expected a known class; "
                                    f"{name!r} is not in the labels json")
        entries.append((entry["id"] + extension, lookup[name]))
    return entries


def parse_ssv2(spec: DatasetSpec, raw_dir: Path, split: int) -> ParsedDataset:
    """SSv2 train / validation; videos ``<id><ext>`` for ext in ``format_options.video_extensions``
    (default [".webm"]), all required unless ``format_options.allow_missing``."""
    index = FileIndex(raw_dir)
    instructions = spec.source.get("instructions", "")
    classes = read_labels(index.require(LABELS, "SSv2 labels file", instructions))
    lookup = {name: i for i, name in enumerate(classes)}
    extensions = option(spec.format_options, "video_extensions", [".webm"], list)
    train = read_entries(index.require(TRAIN, "SSv2 train list", instructions), lookup, extensions[0])
    val = read_entries(index.require(VAL, "SSv2 validation list", instructions), lookup, extensions[0])
    allow_missing = option(spec.format_options, "allow_missing", False, bool)
    return locate_all(train, val, classes, index.video_locator(extensions), raw_dir, allow_missing)
