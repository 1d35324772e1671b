"""The decoders read each real dataset's codec: XviD / MPEG-4 AVI (UCF101, HMDB51), VP9 WebM (SSv2),
H.264 MP4 (K400). Tiny files are encoded with vmae.data.writer and read back with every backend."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from vmae.data.readers import decord_available, num_frames, read_frames
from vmae.data.writer import write_video

BACKENDS = ["pyav"] + (["decord"] if decord_available() else [])
# dataset -> (suffix, writer codec, codec name in the file, (height, width) in the dataset's aspect ratio)
CODECS = {
    "ucf101-xvid": (".avi", "mpeg4", "mpeg4", (48, 64)),
    "ssv2-vp9": (".webm", "vp9", "vp9", (32, 56)),
    "k400-h264": (".mp4", "h264", "h264", (36, 64)),
}


def _frames(height: int, width: int, count: int = 8) -> np.ndarray:
    """uint8 (T, H, W, 3): smooth ramps that move with t, so each frame differs."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([np.stack([(x * 3 + t * 20) % 256, y * 4, np.full_like(x, 30 + t * 25)], -1)
                     for t in range(count)]).astype(np.uint8)


def _retag_xvid(src: Path, dst: Path) -> None:
    """Copy an MPEG-4 Part 2 AVI's packets into a new AVI whose FourCC is XVID (as UCF101 ships)."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        stream = out.add_stream_from_template(inp.streams.video[0])
        stream.codec_tag = "XVID"
        for packet in inp.demux(inp.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", sorted(CODECS))
def test_codec_round_trip(tmp_path, name, backend):
    suffix, codec, codec_name, (height, width) = CODECS[name]
    frames = _frames(height, width)
    path = tmp_path / f"clip{suffix}"
    write_video(path, frames, fps=25, codec=codec)
    if name == "ucf101-xvid":
        _retag_xvid(path, tmp_path / "xvid.avi")
        path = tmp_path / "xvid.avi"
    with av.open(str(path)) as container:
        ctx = container.streams.video[0].codec_context
        assert ctx.name == codec_name
        if name == "ucf101-xvid":
            assert ctx.codec_tag == "XVID"
    assert num_frames(path, backend) == 8
    got = read_frames(path, [7, 0, 3, 3], backend)
    assert got.shape == (4, height, width, 3) and got.dtype == np.uint8
    error = np.abs(got.astype(int) - frames[[7, 0, 3, 3]].astype(int)).mean(axis=(1, 2, 3))
    assert (error < 8).all(), error
    # Frames differ enough that a wrong index would show: frame 7 read as frame 0 would be far off.
    assert np.abs(got[0].astype(int) - frames[0].astype(int)).mean() > 20


@pytest.mark.parametrize("backend", BACKENDS)
def test_ffv1_is_lossless_at_any_size(tmp_path, backend):
    """The synthetic datasets' codec: every decoded pixel equals the written one, odd sizes too."""
    frames = _frames(33, 31)
    frames[2, 5:9, 7:12] = [255, 0, 1]  # a saturated edge, where 4:2:0 and the DCT err most
    path = tmp_path / "clip.avi"
    write_video(path, frames, fps=25, codec="ffv1")
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.name == "ffv1"
    assert num_frames(path, backend) == 8
    np.testing.assert_array_equal(read_frames(path, list(range(8)), backend), frames)


def test_ffv1_bytes_are_reproducible(tmp_path):
    frames = _frames(32, 32)
    write_video(tmp_path / "a.avi", frames, fps=25, codec="ffv1")
    write_video(tmp_path / "b.avi", frames, fps=25, codec="ffv1")
    assert (tmp_path / "a.avi").read_bytes() == (tmp_path / "b.avi").read_bytes()
