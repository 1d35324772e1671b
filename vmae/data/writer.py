"""Encode uint8 RGB frames to a video file with PyAV, byte-for-byte reproducibly.

The container follows the file suffix (.avi, .mp4, .webm, .mkv); the default codec is MPEG-4 Part 2
in AVI, as UCF101 ships. "ffv1" is lossless: FFV1 in 8-bit BGR (bgr0) decodes to exactly the frames
written, through decord and PyAV alike (the synthetic datasets' clean targets; tests/test_formats_codecs.py).
Encoders and muxers run in bit-exact mode on one thread, so the same frames always give the same
file bytes (no version strings, no time stamps of the wall clock).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vmae.atomic import atomic_path

# codec name -> encoder options (high quality: small motion must survive at 32 px).
CODEC_OPTIONS: dict[str, dict[str, str]] = {
    "mpeg4": {"qmin": "2", "qmax": "2"},  # fixed quantiser 2 (ffmpeg -q:v 2; scale 1..31)
    "libvpx-vp9": {"crf": "10", "b": "0", "deadline": "good", "cpu-used": "4", "row-mt": "0"},
    # One thread in all (x264's own too), and no macroblock tree: with it, x264's output depended on
    # what the heap held before (about 1 file in 30 after filling freed malloc blocks with garbage;
    # 0 of 150 without it). See also the frame conversion in _encode.
    "libx264": {"crf": "12", "preset": "medium",
                "x264-params": "threads=1:lookahead-threads=1:sliced-threads=0:mbtree=0"},
    "ffv1": {},  # lossless; its pixel format below keeps RGB exact (yuv444p is off by 1-2 levels)
}
# codec -> pixel format it encodes; every other codec gets 4:2:0, which needs even H and W
PIXEL_FORMATS = {"ffv1": "bgr0"}
LOSSY_PIXEL_FORMAT = "yuv420p"
CODEC_ALIASES = {"h264": "libx264", "vp9": "libvpx-vp9"}
SUFFIXES = (".avi", ".mp4", ".webm", ".mkv")


def write_video(path: str | Path, frames: np.ndarray, fps: int, codec: str = "mpeg4") -> None:
    """Write ``frames: uint8 (T, H, W, 3)`` RGB to ``path`` at ``fps`` with ``codec``.

    ``codec`` is "mpeg4" (default), "libvpx-vp9" (or "vp9"), "libx264" (or "h264"), all in 4:2:0
    (H and W must be even), or "ffv1" (lossless RGB, any size). The file is written through a temporary name and renamed into place.
    """
    path = Path(path)
    codec = CODEC_ALIASES.get(codec, codec)
    if codec not in CODEC_OPTIONS:
        raise ValueError(f"{path}: codec {codec!r}: expected one of {sorted(CODEC_OPTIONS) + sorted(CODEC_ALIASES)}")
    if path.suffix not in SUFFIXES:
        raise ValueError(f"{path}: suffix {path.suffix!r}: expected one of {list(SUFFIXES)}")
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise ValueError(f"{path}: frames {frames.dtype} {frames.shape}: expected uint8 (T>0, H, W, 3)")
    _, height, width, _ = frames.shape
    pixel_format = PIXEL_FORMATS.get(codec, LOSSY_PIXEL_FORMAT)
    if pixel_format == LOSSY_PIXEL_FORMAT and (height % 2 or width % 2):
        raise ValueError(f"{path}: frame size {height}x{width}: expected even height and width")

    with atomic_path(path, fsync=False) as tmp:
        _encode(tmp, frames, fps, codec, pixel_format)


def _encode(path: Path, frames: np.ndarray, fps: int, codec: str, pixel_format: str) -> None:
    """Encode into ``path`` (container picked by its suffix); see ``write_video``."""
    with av.open(str(path), mode="w", options={"fflags": "+bitexact"}) as container:
        stream = container.add_stream(codec, rate=Fraction(fps))
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = pixel_format
        ctx = stream.codec_context
        ctx.time_base = Fraction(1, fps)
        ctx.thread_count = 1
        ctx.flags |= av.codec.context.Flags.bitexact
        ctx.qscale = codec == "mpeg4"  # fixed quantiser (qmin = qmax above)
        stream.options = dict(CODEC_OPTIONS[codec])
        for index, rgb in enumerate(frames):
            # converted here, not by the encoder: when PyAV's encode converted the RGB frames,
            # x264's output depended on what the heap held before (1 file in 2 after freeing random
            # buffers; with this conversion 150 of 150 were identical)
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24").reformat(format=pixel_format)
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
