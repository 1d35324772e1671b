"""Annotation parsers of real and user datasets, and ``build_split``, their one entry point.

``build_split(spec, raw_dir, split)`` makes the raw files present (``source.kind: download``:
download + verify + extract, skipping what is complete; ``kind: manual``: check that the
``expected`` files are below ``raw_dir``), then runs the parser of ``spec.format`` (``PARSERS``) and
checks the class count. It only checks that videos exist; it never decodes them.

Already-extracted copies (``kind: download``): labs keep UCF101 and HMDB51 unpacked on shared
storage, so what is below ``raw_dir`` is used as it is and only what is missing is downloaded, in
three steps (``parse_downloaded``): (1) if the parser finds every file it needs (annotations and
every listed video), nothing is fetched; (2) else the entries whose ``provides`` names (the
annotation files an archive unpacks to) are not all below ``raw_dir`` are fetched, and the parser
tries again; (3) else the remaining entries (the videos) are fetched. An archive already downloaded
is verified and its finished extraction kept, as before.

Missing videos: Kinetics-400 copies always lack some, so its parser leaves them out and lists them
in ``ParsedDataset.missing``. For every other format a listed video that is absent is an error
naming it (a broken download or extraction), unless ``format_options.allow_missing: true``.
"""

from __future__ import annotations

import fnmatch
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vmae.data.download import RemoteFile, download
from vmae.data.extract import archive_suffix, extract_archive
from vmae.data.formats import generic, hmdb51, k400, ssv2, ucf101
from vmae.data.formats.common import (
    FileIndex,
    FormatError,
    MissingFilesError,
    ParsedDataset,
    UnknownClassError,
    need_dir,
)

if TYPE_CHECKING:
    from vmae.data.registry import DatasetSpec

__all__ = ["PARSERS", "FormatError", "MissingFilesError", "ParsedDataset", "Parser", "UnknownClassError",
           "build_split", "check_expected", "fetch_source",
           "parse_downloaded"]


@dataclass(frozen=True)
class Parser:
    """A format's parser ``parse(spec, raw_dir, split) -> ParsedDataset`` and its official splits."""

    parse: Callable[[DatasetSpec, Path, int], ParsedDataset]
    splits: tuple[int, ...]


PARSERS: dict[str, Parser] = {
    "ucf101": Parser(ucf101.parse_ucf101, ucf101.SPLITS),
    "hmdb51": Parser(hmdb51.parse_hmdb51, hmdb51.SPLITS),
    "ssv2": Parser(ssv2.parse_ssv2, ssv2.SPLITS),
    "k400": Parser(k400.parse_k400, k400.SPLITS),
    "folder": Parser(generic.parse_folder, generic.SPLITS),
    "csv": Parser(generic.parse_csv, generic.SPLITS),
    "videomae_list": Parser(generic.parse_videomae_list, generic.SPLITS),
}


def check_expected(spec: DatasetSpec, raw_dir: Path) -> None:
    """``source.kind: manual``: every ``source.expected`` name must be a file below ``raw_dir``
    (``a|b`` accepts either name); otherwise ``MissingFilesError`` naming each missing file and
    repeating ``source.instructions``."""
    expected = spec.source.get("expected", [])
    if not expected:
        return
    index = FileIndex(raw_dir) if raw_dir.is_dir() else None
    missing = [names for names in expected
               if index is None or index.find_first(names.split("|")) is None]
    if missing:
        raise MissingFilesError(raw_dir, [names.replace("|", " or ") for names in missing],
                                f"file(s) of {spec.name}", spec.source.get("instructions", ""))


def fetch_entry(entry: dict, raw_dir: Path) -> None:
    """Download + verify one ``source.files`` entry and unpack it (unless ``extract: false``)."""
    path = download(RemoteFile.from_dict(entry), raw_dir)
    if entry.get("extract", True) and archive_suffix(path):
        extract_archive(path)


def provided(entry: dict, index: FileIndex | None) -> bool:
    """True when every ``provides`` pattern of ``entry`` (a file name, ``*`` / ``?`` / ``[...]``
    allowed) matches a file below the index root; False for an entry without ``provides`` or
    without an index (no raw folder yet)."""
    patterns = entry.get("provides", [])
    names = list(index.names()) if patterns and index is not None else []
    return bool(patterns) and all(fnmatch.filter(names, pattern) for pattern in patterns)


def fetch_source(spec: DatasetSpec, raw_dir: Path) -> None:
    """Make the raw files present: download + verify + extract every entry, or check a manual
    placement (``build_split`` fetches downloads by ``parse_downloaded`` instead)."""
    kind = spec.source["kind"]
    if kind == "download":
        for entry in spec.source["files"]:
            fetch_entry(entry, raw_dir)
    elif kind == "manual":
        check_expected(spec, raw_dir)
    else:
        raise FormatError(f"{spec.path}: source.kind: {kind!r}: expected 'download' or 'manual' for format "
                          f"{spec.format!r} (synthetic data is made by vmae.data.synthetic)")


def resolve_split(spec: DatasetSpec, split: int | None) -> int:
    """``split``, else ``format_options.split``, else 1; checked against the format's splits."""
    parser = PARSERS[spec.format]
    chosen = split if split is not None else spec.format_options.get("split", 1)
    if chosen not in parser.splits:
        raise FormatError(f"{spec.path}: split {chosen!r}: expected one of {list(parser.splits)} "
                          f"for format {spec.format!r}")
    return chosen


def build_split(spec: DatasetSpec, raw_dir: str | Path | None, split: int | None = None) -> ParsedDataset:
    """Fetch or check the raw files of ``spec`` below ``raw_dir`` and parse split ``split``.

    Returns ``ParsedDataset(train, val, classes, missing)`` with absolute video paths and 0-based
    labels in the official class order. Raises ``MissingFilesError`` (files absent; the message
    names each), ``FormatError`` (malformed annotations: file, line, content), ``DownloadError``.
    """
    if spec.format not in PARSERS:
        raise FormatError(f"{spec.path}: format: {spec.format!r}: expected one of {sorted(PARSERS)}")
    raw = need_dir(raw_dir, spec.name)
    chosen = resolve_split(spec, split)
    if spec.source["kind"] == "download":
        parsed = parse_downloaded(spec, raw, chosen)
    else:
        fetch_source(spec, raw)
        parsed = PARSERS[spec.format].parse(spec, raw, chosen)
    if len(parsed.classes) != spec.num_classes:
        raise FormatError(f"{spec.path}: num_classes: {spec.num_classes}: the {spec.format} annotations below "
                          f"{raw} give {len(parsed.classes)} classes ({parsed.classes[:5]}...)")
    return parsed


def _parse_complete(spec: DatasetSpec, raw_dir: Path, split: int) -> ParsedDataset | None:
    """The parse of what is below ``raw_dir`` if it lacks nothing (no missing annotation file, no
    missing listed video), else None."""
    if not raw_dir.is_dir():
        return None
    try:
        parsed = PARSERS[spec.format].parse(spec, raw_dir, split)
    except MissingFilesError:
        return None
    return None if parsed.missing else parsed


def parse_downloaded(spec: DatasetSpec, raw_dir: Path, split: int) -> ParsedDataset:
    """A ``kind: download`` dataset: use what is below ``raw_dir``, fetch only what is missing (the
    three steps of the module docstring), then parse."""
    parsed = _parse_complete(spec, raw_dir, split)
    if parsed is not None:
        print(f"{spec.name}: every file the {spec.format} split {split} needs is below {raw_dir}: "
              "nothing downloaded", file=sys.stderr, flush=True)
        return parsed
    index = FileIndex(raw_dir) if raw_dir.is_dir() else None
    needed = [entry for entry in spec.source["files"] if not provided(entry, index)]
    annotations = [entry for entry in needed if entry.get("provides")]
    videos = [entry for entry in needed if not entry.get("provides")]
    for entry in annotations:
        fetch_entry(entry, raw_dir)
    if annotations and videos:
        parsed = _parse_complete(spec, raw_dir, split)
        if parsed is not None:
            return parsed
    for entry in videos:
        fetch_entry(entry, raw_dir)
    return PARSERS[spec.format].parse(spec, raw_dir, split)
