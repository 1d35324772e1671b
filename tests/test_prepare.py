"""Video writer and `vmae prepare`: bit-exact files, exact class balance, the folder layout."""

from __future__ import annotations

import dataclasses
import json
import os
from collections import Counter
from pathlib import Path

import av
import numpy as np
import pytest
import yaml

from vmae.cli import main as vmae
from vmae.data import prepare as prepare_module
from vmae.data.formats.common import ParsedDataset
from vmae.data.manifest import DatasetInfo, ManifestError, read_classes, read_manifest
from vmae.data.prepare import prepare_dataset
from vmae.data.registry import DatasetSpec, load_spec
from vmae.data.readers import decord_available, read_frames
from vmae.data.synthetic import CLASS_NAMES, GeneratorParams, make_video
from vmae.data.writer import write_video


def moving_square(frames: int = 12, size: int = 32) -> np.ndarray:
    """uint8 (T, H, W, 3): a grey square moving 1 px a frame on a dark background."""
    video = np.full((frames, size, size, 3), 20, np.uint8)
    for t in range(frames):
        video[t, 10:18, 4 + t:12 + t] = (200, 180, 160)
    return video


def decode(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


@pytest.mark.parametrize(("codec", "suffix"), [("mpeg4", ".avi"), ("libvpx-vp9", ".webm"), ("h264", ".mp4")])
def test_writer_is_bit_exact_and_faithful(tmp_path, codec, suffix):
    frames = moving_square()
    write_video(tmp_path / f"a{suffix}", frames, fps=25, codec=codec)
    write_video(tmp_path / f"b{suffix}", frames, fps=25, codec=codec)
    assert (tmp_path / f"a{suffix}").read_bytes() == (tmp_path / f"b{suffix}").read_bytes()
    decoded = decode(tmp_path / f"a{suffix}")
    assert decoded.shape == frames.shape
    assert np.abs(decoded.astype(int) - frames).mean() < 2.0
    with av.open(str(tmp_path / f"a{suffix}")) as container:
        stream = container.streams.video[0]
        assert stream.average_rate == 25 and stream.codec_context.name in (codec, "h264", "vp9", "libvpx-vp9")


def test_h264_bytes_do_not_depend_on_what_the_heap_held(tmp_path):
    """x264 once read memory the RGB->YUV conversion left uninitialised: after freeing buffers of
    random bytes, about 1 file in 2 differed. Each write here follows such garbage."""
    frames, rng = moving_square(), np.random.default_rng(0)
    files = set()
    for i in range(12):
        garbage = [os.urandom(int(size)) for size in rng.integers(1_000, 200_000, size=50)]
        del garbage
        write_video(tmp_path / f"{i}.mp4", frames, fps=25, codec="h264")
        files.add((tmp_path / f"{i}.mp4").read_bytes())
    assert len(files) == 1


def test_writer_other_frames_other_bytes_and_no_temporary_left(tmp_path):
    write_video(tmp_path / "a.avi", moving_square(), fps=25)
    write_video(tmp_path / "b.avi", moving_square()[::-1].copy(), fps=25)
    assert (tmp_path / "a.avi").read_bytes() != (tmp_path / "b.avi").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.avi", "b.avi"]


@pytest.mark.parametrize(
    ("frames", "name", "codec", "expected"),
    [
        (moving_square().astype(np.float32), "x.avi", "mpeg4", "expected uint8"),
        (moving_square(size=31), "x.avi", "mpeg4", "expected even height and width"),
        (moving_square(), "x.avi", "theora", "codec 'theora'"),
        (moving_square(), "x.gif", "mpeg4", "suffix '.gif'"),
    ],
)
def test_writer_errors_name_the_file(tmp_path, frames, name, codec, expected):
    with pytest.raises(ValueError, match=expected) as err:
        write_video(tmp_path / name, frames, fps=25, codec=codec)
    assert str(tmp_path / name) in str(err.value)


def small_spec(seed: int = 0, style: str = "clean", **generator) -> DatasetSpec:
    spec = load_spec(f"synthetic-{style}")
    params = {**spec.source["generator"], "train_per_class": 3, "val_per_class": 2, "test_per_class": 2,
              "unlabelled_per_class": 1, "frames": 8, "seed": seed, **generator}
    return dataclasses.replace(spec, source={"kind": "synthetic", "generator": params})


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_prepare_layout_balance_and_dataset_json(tmp_path, capsys):
    prepare_dataset(small_spec(), tmp_path)
    train, val = read_manifest(tmp_path / "train.csv"), read_manifest(tmp_path / "val.csv")
    assert Counter(label for _, label in train) == {c: 3 for c in range(10)}
    assert Counter(label for _, label in val) == {c: 2 for c in range(10)}
    test = read_manifest(tmp_path / "test.csv")
    assert Counter(label for _, label in test) == {c: 2 for c in range(10)}
    assert not {p for p, _ in test} & {p for p, _ in train + val}
    assert (tmp_path / "train.csv").read_text().splitlines()[1] == "videos/train/move_right/move_right_0000.avi,0"
    assert train[-1][0] == str(tmp_path / "videos" / "train" / "disappear" / "disappear_0002.avi")
    assert all(Path(path).is_file() for path, _ in train + val)
    assert read_classes(tmp_path) == CLASS_NAMES
    assert DatasetInfo.load(tmp_path) == DatasetInfo(
        name="synthetic-clean", domain="clean", num_classes=10, sampling_mode="dense",
        frame_stride=2, flip_allowed=True, flip_label_map=[1, 0, 2, 3, 5, 4, 6, 7, 8, 9])
    assert not (tmp_path / "missing.txt").exists()
    assert decode(Path(val[0][0])).shape == (8, 28, 28, 3)
    unlabelled = read_manifest(tmp_path / "unlabelled.csv")  # the pretraining pool beyond the training set
    assert len(unlabelled) == 10 and not {p for p, _ in unlabelled} & {p for p, _ in train + val + test}
    table = capsys.readouterr().out
    assert "move_right       3       2       2       1" in table and "total           30      20      20      10" in table


@pytest.mark.parametrize("backend", ["pyav"] + (["decord"] if decord_available() else []))
def test_prepared_synthetic_videos_decode_to_the_generated_frames(tmp_path, backend):
    """Lossless targets: every pixel of every prepared video read back equals the generator's."""
    spec = small_spec(style="clutter")
    prepare_dataset(spec, tmp_path, workers=1)
    params = GeneratorParams.from_spec(spec.source["generator"])
    for split in ("train", "test"):
        for path, label in read_manifest(tmp_path / f"{split}.csv")[::7]:
            index = int(Path(path).stem.rsplit("_", 1)[1])
            np.testing.assert_array_equal(read_frames(path, list(range(8)), backend),
                                          make_video(params, split, label, index))


def test_prepare_twice_identical_bytes_any_worker_count(tmp_path, monkeypatch):
    prepare_dataset(small_spec(style="clutter"), tmp_path / "a", workers=1)
    monkeypatch.setattr(prepare_module, "POOL_THRESHOLD", 0)
    prepare_dataset(small_spec(style="clutter"), tmp_path / "b", workers=2)
    first, second = folder_bytes(tmp_path / "a"), folder_bytes(tmp_path / "b")
    assert len(first) == 6 + 80 and first == second  # 6 lists and dataset.json, 80 videos
    prepare_dataset(small_spec(seed=5, style="clutter"), tmp_path / "c", workers=1)
    other = folder_bytes(tmp_path / "c")
    videos = [name for name in first if name.endswith(".avi")]
    assert all(other[name] != first[name] for name in videos)


def test_tiny_dataset_fixture(tiny_dataset):
    from vmae.data.readers import num_frames

    train, val = read_manifest(tiny_dataset / "train.csv"), read_manifest(tiny_dataset / "val.csv")
    assert (len(train), len(val)) == (20, 10)
    assert Counter(label for _, label in train) == {c: 2 for c in range(10)}
    assert num_frames(val[0][0]) == 16 and decode(Path(val[0][0])).shape == (16, 32, 32, 3)
    assert DatasetInfo.load(tiny_dataset).num_classes == 10


def test_prepare_real_format_through_build_split(tmp_path, tiny_dataset):
    """A `folder` dataset (another engineer's parser) whose raw files are the tiny dataset's videos."""
    data = {"name": "my-folder", "domain": "test", "num_classes": 10,
            "source": {"kind": "manual", "instructions": "put videos below --raw"}, "format": "folder",
            "sampling": {"mode": "segments"}, "flip": {"allowed": False}}
    (tmp_path / "my-folder.yaml").write_text(yaml.safe_dump(data))
    out = tmp_path / "out"
    assert vmae(["prepare", str(tmp_path / "my-folder.yaml"), "--out", str(out),
                 "--raw", str(tiny_dataset / "videos")]) == 0
    assert read_classes(out) == sorted(CLASS_NAMES)
    train = read_manifest(out / "train.csv")
    assert len(train) == 20 and train[0][0].startswith(str(tiny_dataset / "videos" / "train"))
    info = json.loads((out / "dataset.json").read_text())
    assert info["sampling"] == {"mode": "segments", "frame_stride": 2}
    assert info["flip"] == {"allowed": False, "label_map": list(range(10))}


def test_prepare_writes_missing_list(tmp_path, monkeypatch):
    spec = dataclasses.replace(small_spec(), name="fake", format="k400", flip_label_map={},
                               source={"kind": "manual", "instructions": "-"})
    parsed = ParsedDataset(train=[(str(tmp_path / "raw" / "a.mp4"), 1)], val=[(str(tmp_path / "raw" / "b.mp4"), 0)],
                           classes=[f"c{i}" for i in range(10)], missing=["x.mp4", "y.mp4"])
    monkeypatch.setattr("vmae.data.formats.build_split", lambda spec, raw_dir, split: parsed)
    prepare_dataset(spec, tmp_path / "out", raw_dir=tmp_path / "raw")
    assert (tmp_path / "out" / "missing.txt").read_text() == "x.mp4\ny.mp4\n"
    assert (tmp_path / "out" / "train.csv").read_text() == f"path,label\n{tmp_path / 'raw' / 'a.mp4'},1\n"


def test_export_list(tmp_path, tiny_dataset):
    assert vmae(["export-list", str(tiny_dataset), "--out", str(tmp_path)]) == 0
    lines = (tmp_path / "val.csv").read_text().splitlines()
    assert len(lines) == 10
    assert lines[0] == f"{tiny_dataset / 'videos' / 'val' / 'move_right' / 'move_right_0000.avi'} 0"
    assert lines[-1].endswith("disappear_0000.avi 9")
    assert len((tmp_path / "train.csv").read_text().splitlines()) == 20


def test_export_list_refuses_paths_with_spaces(tmp_path):
    from vmae.data.export import export_list
    from vmae.data.manifest import write_manifest

    write_manifest(tmp_path / "train.csv", [(str(tmp_path / "curling hair" / "a.mp4"), 0)])
    write_manifest(tmp_path / "val.csv", [])
    with pytest.raises(ValueError, match="train.csv: path .*curling hair.* contains whitespace"):
        export_list(tmp_path, tmp_path / "lists")


def test_reprepare_removes_stale_generated_videos_and_nothing_of_the_users(tmp_path, monkeypatch):
    prepare_dataset(small_spec(), tmp_path)  # 3 training videos a class
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "videos" / "train" / "mine.avi").write_bytes(b"mine too")
    prepare_dataset(small_spec(train_per_class=2), tmp_path)
    videos = {p.relative_to(tmp_path).as_posix() for p in (tmp_path / "videos").rglob("*.avi")}
    assert len(videos) == 10 * (2 + 2 + 2 + 1) + 1 and "videos/train/move_right/move_right_0002.avi" not in videos
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert (tmp_path / "videos" / "train" / "mine.avi").read_bytes() == b"mine too"
    assert DatasetInfo.load(tmp_path).allowed_roots() == [str(tmp_path)]  # synthetic: the folder only

    def fail(*args):
        raise OSError("killed")

    monkeypatch.setattr(prepare_module, "write_classes", fail)
    with pytest.raises(OSError, match="killed"):
        prepare_dataset(small_spec(train_per_class=1), tmp_path)
    with pytest.raises(Exception, match="dataset.json: not found"):  # not a usable mix of old and new
        DatasetInfo.load(tmp_path)


def test_prepare_refuses_videos_outside_the_raw_folder(tmp_path, monkeypatch):
    spec = dataclasses.replace(small_spec(), name="fake", format="k400", flip_label_map={},
                               source={"kind": "manual", "instructions": "-"})
    parsed = ParsedDataset(train=[("/etc/passwd", 1)], val=[(str(tmp_path / "raw" / "b.mp4"), 0)],
                           classes=[f"c{i}" for i in range(10)])
    monkeypatch.setattr("vmae.data.formats.build_split", lambda spec, raw_dir, split: parsed)
    with pytest.raises(ManifestError, match=r"train video '/etc/passwd': expected a file below"):
        prepare_dataset(spec, tmp_path / "out", raw_dir=tmp_path / "raw")
    assert not (tmp_path / "out" / "train.csv").exists()
