"""The rehearsal's videos: small real encoded clips whose class is the direction a textured bar
drifts in, so a model can learn them, encoded as the real datasets ship them (XviD-tagged MPEG-4
AVI for UCF101 / HMDB51, VP9 WebM for SSv2, H.264 MP4 for Kinetics-400) by ``vmae.data.writer``.
The same seed gives the same bytes.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from vmae.data.writer import write_video

FRAMES = 32
FPS = 25


def clip(seed: int, height: int, width: int, direction: int) -> np.ndarray:
    """uint8 (FRAMES, H, W, 3): a textured bar drifting in one of four directions (0-3), noise from
    ``seed``."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    colour = rng.integers(60, 255, 3)
    frames = []
    for t in range(FRAMES):
        shift = 2 * t if direction < 2 else -2 * t
        coord = (x if direction % 2 == 0 else y) + shift
        bar = ((coord // 8) % 2).astype(np.uint8)
        frame = bar[..., None] * colour[None, None, :] + rng.integers(0, 20, (height, width, 3))
        frames.append(frame.clip(0, 255).astype(np.uint8))
    return np.stack(frames)


def encode(frames: np.ndarray, suffix: str, codec: str, scratch: Path, fourcc: str | None = None) -> bytes:
    """The bytes of ``frames`` encoded with ``codec`` into a ``suffix`` container, through files in
    ``scratch``; ``fourcc``: the stream retagged (``XVID``, as the UCF101 / HMDB51 AVIs are)."""
    scratch.mkdir(parents=True, exist_ok=True)
    path = scratch / f"clip{suffix}"
    write_video(path, frames, fps=FPS, codec=codec)
    if fourcc is None:
        return path.read_bytes()
    tagged = scratch / f"tagged{suffix}"
    with av.open(str(path)) as src, av.open(str(tagged), "w") as out:
        stream = out.add_stream_from_template(src.streams.video[0])
        stream.codec_tag = fourcc
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    return tagged.read_bytes()


def xvid(seed: int, direction: int, scratch: Path) -> bytes:
    """A 64x48 XviD AVI (UCF101 / HMDB51)."""
    return encode(clip(seed, 48, 64, direction), ".avi", "mpeg4", scratch, fourcc="XVID")


def vp9(seed: int, direction: int, scratch: Path) -> bytes:
    """A 64x48 VP9 WebM (Something-Something V2)."""
    return encode(clip(seed, 48, 64, direction), ".webm", "vp9", scratch)


def h264(seed: int, direction: int, scratch: Path) -> bytes:
    """A 64x36 H.264 MP4 (Kinetics-400)."""
    return encode(clip(seed, 36, 64, direction), ".mp4", "h264", scratch)
