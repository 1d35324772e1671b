"""Clip sampling: which frame indices of a video make a clip. Pure functions over frame counts.

Two modes, as in the paper's data pipelines:

- ``dense`` (Kinetics, UCF101, HMDB51): ``num_frames`` frames at a fixed ``stride``; a random start
  in training, ``num_clips`` evenly spaced starts at test time. A video shorter than the span
  ``(num_frames - 1) * stride + 1`` starts at frame 0 and its indices **loop** (wrap around modulo
  the video length), so every clip has exactly ``num_frames`` valid indices.
- ``segments`` (TSN, Something-Something): the video is cut into ``num_frames`` equal segments and
  one frame is taken from each: a random frame in training, the middle at test time (for
  ``num_clips > 1`` the ``num_clips`` clips take offsets spread evenly inside each segment). A video
  with fewer frames than segments repeats frames (neighbouring segments share a frame), keeping
  temporal order.

Indices are always in ``[0, video_frames)``; randomness comes from a ``numpy.random.Generator``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

SamplingMode = Literal["dense", "segments"]


def _check_counts(video_frames: int, num_frames: int) -> None:
    if video_frames < 1:
        raise ValueError(f"video_frames={video_frames}: expected a video with at least one frame")
    if num_frames < 1:
        raise ValueError(f"num_frames={num_frames}: expected >= 1")


def dense_span(num_frames: int, stride: int) -> int:
    """Frames covered by a dense clip: ``(num_frames - 1) * stride + 1``."""
    return (num_frames - 1) * stride + 1


def dense_clip(video_frames: int, num_frames: int, stride: int, start: int) -> np.ndarray:
    """Indices ``start, start + stride, ...`` (``num_frames`` of them), looped modulo the length.

    Returns: int64 (num_frames,)
    """
    _check_counts(video_frames, num_frames)
    if stride < 1:
        raise ValueError(f"stride={stride}: expected >= 1")
    return (start + np.arange(num_frames, dtype=np.int64) * stride) % video_frames


def dense_starts_train(
    video_frames: int, num_frames: int, stride: int, count: int, rng: np.random.Generator
) -> np.ndarray:
    """``count`` independent uniform random starts in ``[0, video_frames - span]`` (0 when short)."""
    last_start = max(video_frames - dense_span(num_frames, stride), 0)
    return rng.integers(0, last_start + 1, size=count)


def dense_starts_test(video_frames: int, num_frames: int, stride: int, num_clips: int) -> np.ndarray:
    """``num_clips`` evenly spaced starts from 0 to ``video_frames - span``; one clip is centred."""
    last_start = max(video_frames - dense_span(num_frames, stride), 0)
    if num_clips == 1:
        return np.array([last_start // 2], dtype=np.int64)
    return np.round(np.linspace(0, last_start, num_clips)).astype(np.int64)


def segment_clip(video_frames: int, num_frames: int, offsets: np.ndarray) -> np.ndarray:
    """One frame per segment at relative position ``offsets[i]`` in ``[0, 1)`` of segment ``i``.

    Returns: int64 (num_frames,)
    """
    _check_counts(video_frames, num_frames)
    segment = video_frames / num_frames
    positions = (np.arange(num_frames) + offsets) * segment
    return np.minimum(np.floor(positions).astype(np.int64), video_frames - 1)


def sample_clips(
    mode: SamplingMode,
    video_frames: int,
    num_frames: int,
    stride: int,
    num_clips: int,
    train: bool,
    rng: np.random.Generator | None = None,
) -> list[np.ndarray]:
    """Indices of ``num_clips`` clips of one video.

    Training draws every clip independently (``rng`` required); test time is deterministic.
    ``stride`` is used by ``dense`` only. Returns ``num_clips`` int64 arrays of shape (num_frames,).
    """
    if num_clips < 1:
        raise ValueError(f"num_clips={num_clips}: expected >= 1")
    if train and rng is None:
        raise ValueError("training clip sampling needs a numpy Generator (rng)")
    if mode == "dense":
        if train:
            starts = dense_starts_train(video_frames, num_frames, stride, num_clips, rng)
        else:
            starts = dense_starts_test(video_frames, num_frames, stride, num_clips)
        return [dense_clip(video_frames, num_frames, stride, int(s)) for s in starts]
    if mode == "segments":
        if train:
            return [segment_clip(video_frames, num_frames, rng.random(num_frames)) for _ in range(num_clips)]
        spread = (np.arange(num_clips) + 0.5) / num_clips
        return [segment_clip(video_frames, num_frames, np.full(num_frames, o)) for o in spread]
    raise ValueError(f"sampling mode {mode!r}: expected 'dense' or 'segments'")


def union_indices(clips: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Frames to decode once for several clips, and where each clip's frames sit in that decode.

    Returns ``(frames, positions)``: ``frames`` sorted unique int64 indices; ``positions[j]`` such
    that ``frames[positions[j]] == clips[j]``.
    """
    if not clips:
        raise ValueError("union_indices needs at least one clip")
    frames, inverse = np.unique(np.concatenate(clips), return_inverse=True)
    bounds = np.cumsum([len(c) for c in clips])[:-1]
    return frames, np.split(inverse.reshape(-1), bounds)
