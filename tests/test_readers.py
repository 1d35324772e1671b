"""Video readers: decord vs PyAV agreement on three codecs, index order and repeats, bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vmae.bench.loader import moving_frames
from vmae.data import readers
from vmae.data.writer import write_video

CODECS = [("clip.avi", "mpeg4"), ("clip.webm", "libvpx-vp9"), ("clip.mp4", "libx264")]
FRAMES = 24
# decord and PyAV both sit on FFmpeg: the same decoder and RGB conversion. We allow a mean
# absolute difference of 1 grey level (0..255) for builds with different swscale paths.
AGREEMENT_TOL = 1.0
# Lossy encoding of a 32 px clip stays within ~7 grey levels of the source; neighbouring frames
# of moving_frames differ by ~40, so 15 tells frames apart.
SOURCE_TOL = 15.0

needs_decord = pytest.mark.skipif(not readers.decord_available(), reason="decord not installed")


@pytest.fixture(scope="module")
def source() -> np.ndarray:
    return moving_frames(FRAMES, 32, 32, seed=3)


@pytest.fixture(scope="module")
def videos(tmp_path_factory, source) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("videos")
    paths = {}
    for name, codec in CODECS:
        write_video(folder / name, source, fps=25, codec=codec)
        paths[codec] = folder / name
    return paths


def mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


@needs_decord
@pytest.mark.parametrize("codec", [c for _, c in CODECS])
def test_decord_and_pyav_agree(videos, source, codec):
    indices = [17, 3, 3, 23, 0, 8]  # unsorted, repeated
    a = readers.read_frames(videos[codec], indices, backend="decord")
    b = readers.read_frames(videos[codec], indices, backend="pyav")
    assert a.shape == b.shape == (6, 32, 32, 3) and a.dtype == b.dtype == np.uint8
    assert mean_abs_diff(a, b) <= AGREEMENT_TOL
    for got, index in zip(a, indices):
        assert mean_abs_diff(got, source[index]) < SOURCE_TOL
    assert readers.num_frames(videos[codec], "decord") == readers.num_frames(videos[codec], "pyav") == FRAMES


def test_pyav_returns_requested_order_and_repeats(videos, source):
    frames = readers.read_frames(videos["mpeg4"], [5, 2, 5], backend="pyav")
    np.testing.assert_array_equal(frames[0], frames[2])
    assert mean_abs_diff(frames[1], source[2]) < SOURCE_TOL
    assert mean_abs_diff(frames[0], source[5]) < SOURCE_TOL


@pytest.mark.parametrize("backend", [pytest.param("decord", marks=needs_decord), "pyav"])
def test_unsorted_request_without_repeats_keeps_its_order(videos, source, backend):
    frames = readers.read_frames(videos["mpeg4"], [9, 1, 4], backend=backend)
    for got, index in zip(frames, [9, 1, 4]):
        assert mean_abs_diff(got, source[index]) < SOURCE_TOL


def test_open_reader_gives_count_and_frames(videos):
    reader = readers.open_reader(videos["libx264"])
    assert reader.num_frames == FRAMES
    assert reader.get(np.array([0, FRAMES - 1])).shape == (2, 32, 32, 3)
    with pytest.raises(readers.VideoReadError, match="outside 0..23"):
        reader.get([FRAMES])


def test_auto_falls_back_to_pyav_without_decord(monkeypatch, videos):
    monkeypatch.setattr(readers, "decord_available", lambda: False)
    assert readers.resolve_backend("auto") == "pyav"
    assert isinstance(readers.open_reader(videos["mpeg4"]), readers.PyAVReader)
    with pytest.raises(ValueError, match="decord is not installed"):
        readers.resolve_backend("decord")


@needs_decord
def test_auto_uses_pyav_for_a_file_decord_cannot_decode(tmp_path):
    # decord 0.6 fails on 48-px-wide frames ("from_size == to_size"); auto must still read them.
    source = moving_frames(8, 32, 48, seed=1)
    path = tmp_path / "w48.avi"
    write_video(path, source, fps=25)
    with pytest.raises(readers.VideoReadError):
        readers.read_frames(path, [0, 5], backend="decord")
    frames = readers.read_frames(path, [0, 5], backend="auto")
    assert frames.shape == (2, 32, 48, 3)
    assert mean_abs_diff(frames, readers.read_frames(path, [0, 5], backend="pyav")) == 0.0


@pytest.mark.parametrize("backend", [pytest.param("decord", marks=needs_decord), "pyav"])
@pytest.mark.parametrize("kind", ["zero", "truncated", "text", "missing"])
def test_bad_files_raise_video_read_error_with_path(tmp_path, videos, bad_videos, backend, kind):
    paths = bad_videos(tmp_path, videos["mpeg4"]) | {"missing": tmp_path / "absent.avi"}
    with pytest.raises(readers.VideoReadError) as info:
        readers.read_frames(paths[kind], [0, 1], backend=backend)
    assert info.value.path == str(paths[kind]) and str(paths[kind]) in str(info.value)
