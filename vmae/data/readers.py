"""Video readers: decord by default, PyAV as the fallback; both give uint8 RGB ``(T, H, W, 3)``.

``backend="auto"`` picks decord when it can be imported (it has no wheels for macOS or aarch64),
PyAV otherwise, and falls back to PyAV for a file decord cannot open or decode (decord 0.6 fails
on some frame widths, e.g. 48 px). Every read decodes the sorted union of the requested indices once and then
returns the frames in the requested order (repeats and any order allowed). A file that cannot be
opened or decoded raises ``VideoReadError`` naming the path.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Literal, Protocol, Sequence

import numpy as np

from vmae.errors import UserError

Backend = Literal["auto", "decord", "pyav"]


class VideoReadError(UserError, RuntimeError):
    """A video file could not be opened or decoded."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{path}: cannot read video: {reason}")
        self.path = str(path)
        self.reason = reason


class VideoReader(Protocol):
    """An open video: its frame count and random access to frames."""

    path: str
    num_frames: int

    def get(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """uint8 (len(indices), H, W, 3) RGB frames, in the order of ``indices``."""
        ...


def decord_available() -> bool:
    return importlib.util.find_spec("decord") is not None


def resolve_backend(backend: Backend) -> Literal["decord", "pyav"]:
    """The concrete backend for ``backend`` ("auto" -> decord when importable, else pyav)."""
    if backend == "auto":
        return "decord" if decord_available() else "pyav"
    if backend not in ("decord", "pyav"):
        raise ValueError(f"reader backend {backend!r}: expected 'auto', 'decord' or 'pyav'")
    if backend == "decord" and not decord_available():
        raise ValueError("reader backend 'decord' requested but decord is not installed; use 'pyav'")
    return backend


def _unique_request(
    path: str, indices: Sequence[int] | np.ndarray, num_frames: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """Sorted unique indices to decode and the inverse map back to the request order (None when
    the request is already sorted and unique, so no reordering copy is needed)."""
    wanted = np.asarray(indices, dtype=np.int64).reshape(-1)
    if wanted.size == 0:
        raise ValueError(f"{path}: no frame indices requested")
    if wanted.min() < 0 or wanted.max() >= num_frames:
        raise VideoReadError(path, f"frame indices {wanted.min()}..{wanted.max()} outside 0..{num_frames - 1}")
    unique, inverse = np.unique(wanted, return_inverse=True)
    return unique, None if np.array_equal(unique, wanted) else inverse.reshape(-1)


class DecordReader:
    """decord ``VideoReader`` on the CPU with one thread; ``get_batch`` on the union of indices."""

    def __init__(self, path: str | Path) -> None:
        import decord

        self.path = str(path)
        try:
            self._reader = decord.VideoReader(self.path, ctx=decord.cpu(0), num_threads=1)
            self.num_frames = len(self._reader)
        except Exception as err:  # decord raises its own DECORDError / RuntimeError variants
            raise VideoReadError(self.path, f"decord could not open it ({err})") from None
        if self.num_frames < 1:
            raise VideoReadError(self.path, "no frames")

    def get(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        unique, inverse = _unique_request(self.path, indices, self.num_frames)
        try:
            frames = self._reader.get_batch(unique.tolist()).asnumpy()
        except Exception as err:
            raise VideoReadError(self.path, f"decord failed to decode frames ({err})") from None
        return frames if inverse is None else frames[inverse]


class PyAVReader:
    """PyAV: decodes sequentially from the start up to the largest requested index."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.num_frames = self._count_frames()
        if self.num_frames < 1:
            raise VideoReadError(self.path, "no frames")

    def _open(self):
        import av

        try:
            return av.open(self.path)
        except Exception as err:  # av.error.* (InvalidDataError, ...) and OSError
            raise VideoReadError(self.path, f"PyAV could not open it ({err})") from None

    def _count_frames(self) -> int:
        """The stream's frame count, or (when the header has none) the number of decoded frames."""
        with self._open() as container:
            if not container.streams.video:
                raise VideoReadError(self.path, "no video stream")
            stream = container.streams.video[0]
            if stream.frames > 0:
                return int(stream.frames)
            try:
                return sum(1 for _ in container.decode(stream))
            except Exception as err:
                raise VideoReadError(self.path, f"PyAV failed to decode while counting frames ({err})") from None

    def get(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        unique, inverse = _unique_request(self.path, indices, self.num_frames)
        wanted = set(unique.tolist())
        last = int(unique[-1])
        kept: list[np.ndarray] = []
        decoded = 0
        with self._open() as container:
            try:
                for frame in container.decode(container.streams.video[0]):
                    if decoded in wanted:
                        kept.append(frame.to_ndarray(format="rgb24"))
                    decoded += 1
                    if decoded > last:
                        break
            except Exception as err:
                raise VideoReadError(self.path, f"PyAV failed to decode ({err})") from None
        if len(kept) != len(unique):
            raise VideoReadError(self.path, f"stream ended after {decoded} frames, needed frame {last}")
        frames = np.stack(kept)
        return frames if inverse is None else frames[inverse]


class AutoReader:
    """decord first; PyAV for a file that decord cannot open or decode."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        try:
            self._reader: VideoReader = DecordReader(path)
        except VideoReadError:
            self._reader = PyAVReader(path)
        self.num_frames = self._reader.num_frames

    def get(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        try:
            return self._reader.get(indices)
        except VideoReadError:
            if isinstance(self._reader, PyAVReader):
                raise
            self._reader = PyAVReader(self.path)
            return self._reader.get(indices)


def open_reader(path: str | Path, backend: Backend = "auto") -> VideoReader:
    """Open ``path`` with ``backend``; raises ``VideoReadError`` if it cannot be opened."""
    if not Path(path).is_file():
        raise VideoReadError(path, "no such file")
    concrete = resolve_backend(backend)
    if concrete == "pyav":
        return PyAVReader(path)
    return AutoReader(path) if backend == "auto" else DecordReader(path)


def read_frames(path: str | Path, indices: Sequence[int] | np.ndarray, backend: Backend = "auto") -> np.ndarray:
    """uint8 (len(indices), H, W, 3) RGB frames of ``path`` at ``indices`` (any order, repeats ok)."""
    return open_reader(path, backend).get(indices)


def num_frames(path: str | Path, backend: Backend = "auto") -> int:
    """Number of frames of ``path`` (PyAV counts by decoding when the stream has no count)."""
    return open_reader(path, backend).num_frames
