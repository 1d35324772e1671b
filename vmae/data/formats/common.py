"""Shared pieces of the annotation parsers: the parsed result, error types, finding files by name
anywhere below the raw folder, and checking that listed videos exist (never decoding them)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vmae.errors import UserError

# How many names an error message spells out before it only counts the rest.
MAX_NAMED = 20


@dataclass
class ParsedDataset:
    """A dataset split as the parsers return it.

    train, val: (absolute video path, 0-based label) pairs; classes: names in the dataset's official
    order (label i = classes[i]); missing: videos the annotations list but the raw folder lacks, as
    the annotations name them (e.g. ``ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi``,
    ``0wR5jVB-WPk_000417_000427.mp4``); they are left out of train/val. Kinetics-400 always
    tolerates them; other formats raise ``MissingFilesError`` unless ``format_options.allow_missing``
    is true.
    """

    train: list[tuple[str, int]]
    val: list[tuple[str, int]]
    classes: list[str]
    missing: list[str] = field(default_factory=list)


class FormatError(UserError, ValueError):
    """An annotation file is malformed or inconsistent (names the file, line and content)."""

    @classmethod
    def at(cls, path: str | Path, line_no: int, content: str, expected: str) -> FormatError:
        """``<file>:<line>: <content>: expected <what>``."""
        return cls(f"{path}:{line_no}: {content.rstrip(chr(10) + chr(13))!r}: expected {expected}")


class UnknownClassError(FormatError):
    """A split file names a class that the class list lacks."""


class MissingFilesError(UserError, FileNotFoundError):
    """Files the dataset needs are not below the raw folder (the message names each one)."""

    def __init__(self, raw_dir: str | Path, missing: list[str], what: str, instructions: str = ""):
        self.missing = list(missing)
        shown = "\n".join(f"  - {name}" for name in self.missing[:MAX_NAMED])
        more = len(self.missing) - MAX_NAMED
        if more > 0:
            shown += f"\n  ... and {more} more"
        message = f"{raw_dir}: {len(self.missing)} {what} not found below it:\n{shown}"
        if instructions:
            message += f"\n{instructions.strip()}"
        super().__init__(message)


def is_index(text: str) -> bool:
    """True for a non-negative integer in ASCII digits (``str.isdigit`` also accepts ``'²'``, which
    ``int`` then rejects)."""
    return text.isascii() and text.isdigit()


def need_dir(raw_dir: str | Path | None, dataset: str) -> Path:
    """``raw_dir`` as a Path, or an error saying that this dataset needs ``--raw``."""
    if raw_dir is None:
        raise ValueError(f"{dataset}: no raw folder given: expected --raw DIR, the folder that holds "
                         "(or, for downloads, receives) the dataset's files")
    return Path(raw_dir)


class FileIndex:
    """Every file below ``root`` by its name, so any reasonable unpacking layout works.

    Built by one walk; hidden folders (``.name``, e.g. partial extractions) are skipped. Several
    files of one name resolve to the first in sorted path order. The walk does not follow symlinked
    folders (two links to ``.`` would make it endless), and a symlinked file counts only when it
    points to a file below ``root`` (an archive may hold ``passwd.avi -> /etc/passwd``); the links
    left out are listed in ``outward_links`` and reported once on stderr.
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self._by_name: dict[str, list[str]] = {}
        self._by_lower: dict[str, list[str]] = {}
        self.outward_links: list[str] = []
        self.linked_folders: list[str] = []
        real_root = os.path.realpath(self.root)
        for path, name, kind in _walk_files(str(self.root)):
            if kind == "linked folder":
                self.linked_folders.append(path)
            elif kind == "link" and not _links_inside(path, real_root):
                self.outward_links.append(path)
            else:
                self._by_name.setdefault(name, []).append(path)
                self._by_lower.setdefault(name.lower(), []).append(path)
        for links, what in ((self.outward_links, "symlink(s) to files outside it"),
                            (self.linked_folders, "symlinked folder(s), not followed")):
            if links:
                print(f"{self.root}: ignored {len(links)} {what}, e.g. {links[0]}: expected real files "
                      f"and folders below {self.root}", file=sys.stderr, flush=True)

    def lookup(self, name: str, ignore_case: bool = False) -> str | None:
        """The path of the file called ``name`` (compared case-insensitively if asked), or None."""
        hits = self._by_lower.get(name.lower()) if ignore_case else self._by_name.get(name)
        return min(hits) if hits else None

    def find(self, name: str, ignore_case: bool = False) -> Path | None:
        """Like ``lookup``, as a Path."""
        hit = self.lookup(name, ignore_case)
        return None if hit is None else Path(hit)

    def find_first(self, names: Iterable[str]) -> Path | None:
        """The file of the first name in ``names`` that exists (alternative names of one file)."""
        for name in names:
            hit = self.find(name)
            if hit is not None:
                return hit
        return None

    def require(self, names: list[str], what: str, instructions: str = "") -> Path:
        """Like ``find_first`` but raises ``MissingFilesError`` naming the alternatives."""
        hit = self.find_first(names)
        if hit is None:
            raise MissingFilesError(self.root, [" or ".join(names)], what, instructions)
        return hit

    def video_locator(self, extensions: list[str]) -> Callable[[str], str | None]:
        """``locate(name)``: the file ``name``, else the same stem with another of ``extensions``
        (copies of one dataset differ in container: .mp4 / .mkv / .webm)."""

        def locate(name: str) -> str | None:
            stem = os.path.splitext(name)[0]
            return next(filter(None, map(self.lookup, [name] + [stem + ext for ext in extensions])), None)

        return locate

    def names(self) -> Iterator[str]:
        """All file names below the root."""
        return iter(self._by_name)


def _walk_files(root: str) -> Iterator[tuple[str, str, str]]:
    """(path, name, kind) of every file below ``root``, kind "file", "link" (a symlink, not to a
    folder) or "linked folder" (a symlink to a folder: reported, not entered). Folders are entered in
    sorted order, hidden ones (``.name``) never."""
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        subfolders = []
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                if not entry.name.startswith("."):
                    subfolders.append(entry.path)
            elif entry.is_symlink():
                yield entry.path, entry.name, "linked folder" if entry.is_dir() else "link"
            elif entry.is_file(follow_symlinks=False):
                yield entry.path, entry.name, "file"
        stack.extend(reversed(subfolders))


def _links_inside(path: str, real_root: str) -> bool:
    """True when the symlink ``path`` ends at a regular file below ``real_root``."""
    target = os.path.realpath(path)
    return os.path.isfile(target) and target.startswith(real_root.rstrip(os.sep) + os.sep)


def read_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, line without its CRLF/LF ending) of each non-blank line of a text file."""
    with open(path, encoding="utf-8", newline="") as handle:
        for line_no, line in enumerate(handle, start=1):
            line = line.rstrip("\r\n")
            if line.strip():
                yield line_no, line


def resolve_videos(
    entries: list[tuple[str, int]],
    locate: Callable[[str], str | Path | None],
    raw_dir: Path,
    allow_missing: bool,
) -> tuple[list[tuple[str, int]], list[str]]:
    """Map (video name, label) to (absolute path, label) with ``locate(name) -> path | None``.

    Returns the found rows and the names not found. Unless ``allow_missing``, any missing video
    raises ``MissingFilesError`` naming them (set ``format_options.allow_missing: true`` to go on).
    """
    rows: list[tuple[str, int]] = []
    missing: list[str] = []
    for name, label in entries:
        path = locate(name)
        if path is None:
            missing.append(name)
        else:
            rows.append((os.path.abspath(path), label))
    if missing and not allow_missing:
        raise MissingFilesError(raw_dir, missing, "listed videos",
                                "Check the extraction, or set format_options.allow_missing: true "
                                "to leave them out (they are then listed in missing.txt).")
    return rows, missing


def locate_all(
    train: list[tuple[str, int]],
    val: list[tuple[str, int]],
    classes: list[str],
    locate: Callable[[str], str | Path | None],
    raw_dir: Path,
    allow_missing: bool,
) -> ParsedDataset:
    """The ``ParsedDataset`` of (video name, label) lists, videos located by ``locate``; missing
    videos of both splits are left out and listed (or raise, see ``resolve_videos``)."""
    train_rows, train_missing = resolve_videos(train, locate, raw_dir, allow_missing)
    val_rows, val_missing = resolve_videos(val, locate, raw_dir, allow_missing)
    return ParsedDataset(train_rows, val_rows, classes, train_missing + val_missing)


def class_index(lookup: dict[str, int], name: str, source: str | Path, line_no: int, content: str) -> int:
    """``lookup[name]`` (class name -> label), or ``UnknownClassError`` naming the class, file and line."""
    try:
        return lookup[name]
    except KeyError:
        raise UnknownClassError.at(source, line_no, content,
                                   f"a known class; {name!r} is not among the {len(lookup)} classes") from None


def option(options: dict[str, Any], key: str, default: Any, kind: type | tuple[type, ...]) -> Any:
    """``options[key]`` (default if absent), checked to be of ``kind``."""
    value = options.get(key, default)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise FormatError(f"format_options.{key}: {value!r}: expected {getattr(kind, '__name__', kind)}")
    return value
