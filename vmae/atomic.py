"""The one way this package writes a result file: atomically.

Every output a later step reads (manifests, ``classes.txt``, ``dataset.json``, ``features.npz``,
``metrics.json``, checkpoints, predictions) is written to a hidden temporary file in the same folder,
flushed to disk, and renamed onto its name with ``os.replace``. A kill at any moment leaves either the
old file or the new one, never a half-written file that parses (a manifest row cut mid-label, say).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


@contextmanager
def atomic_path(path: str | Path, fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix, so writers that pick a format by suffix
    work); on a clean exit it is renamed onto ``path``, on an error it is removed. ``fsync=False``
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
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_open(path: str | Path, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """``open(path, mode)`` for writing through ``atomic_path``: the file appears whole on close."""
    if not mode.startswith("w"):
        raise ValueError(f"atomic_open: mode {mode!r}: expected a write mode ('w', 'wb')")
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as handle:
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
