"""The one way this package writes a result file: atomically.

Every output a later step reads (manifests, ``classes.txt``, ``dataset.json``, ``features.npz``,
``metrics.json``, checkpoints, predictions) is written to a hidden temporary file in the same folder,
flushed to disk, and renamed onto its name with ``os.replace``. A kill at any moment leaves either the
old file or the new one, never a half-written file that parses (a manifest row cut mid-label, say).
A full disk (or quota) while writing is a ``DiskFullError`` naming the file; the temporary file is
removed, the old file (if any) stays.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from vmae.errors import UserError

DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT})
# torch.save reports a failed write of its C++ zip writer as a RuntimeError with these words
TORCH_WRITE_FAILURES = ("enforce fail at inline_container", "file write failed")


class DiskFullError(UserError, OSError):
    """The disk or the quota filled up while a result file was written."""


def is_disk_full(err: BaseException) -> bool:
    """Whether ``err`` says a write failed for want of space: an ``OSError`` with ENOSPC / EFBIG /
    EDQUOT, or torch's ``RuntimeError`` for a failed write."""
    if isinstance(err, OSError):
        return err.errno in DISK_FULL_ERRNOS
    return isinstance(err, RuntimeError) and any(words in str(err) for words in TORCH_WRITE_FAILURES)


@contextmanager
def atomic_path(path: str | Path, fsync: bool = True, what: str = "the file") -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix, so writers that pick a format by suffix
    work); on a clean exit it is renamed onto ``path``, on an error it is removed, and a full disk
    becomes ``DiskFullError`` ("<path>: disk full while writing <what>: ..."). ``fsync=False``
    skips flushing to the disk (still whole or absent after a kill; for many small files that are
    cheap to redo, e.g. generated videos and frame-cache entries)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if fsync:
            _fsync(tmp)
        os.replace(tmp, path)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if is_disk_full(err):
            raise DiskFullError(f"{path}: disk full while writing {what}: free space and run again") from err
        raise


@contextmanager
def atomic_open(path: str | Path, mode: str = "w", what: str = "the file", **kwargs: Any) -> Iterator[IO]:
    """``open(path, mode)`` for writing through ``atomic_path`` (``what`` names the file in a
    disk-full error): the file appears whole on close."""
    if not mode.startswith("w"):
        raise ValueError(f"atomic_open: mode {mode!r}: expected a write mode ('w', 'wb')")
    with atomic_path(path, what=what) as tmp, open(tmp, mode, **kwargs) as handle:
        yield handle


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)


def write_json_atomic(path: str | Path, data: Any, indent: int | None = 2) -> None:
    """Write ``data`` as JSON (plus a final newline) to ``path`` atomically."""
    write_text_atomic(path, json.dumps(data, indent=indent) + "\n")


def _fsync(path: Path) -> None:
    """Flush ``path``'s bytes to the disk before it is renamed into place."""
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())
