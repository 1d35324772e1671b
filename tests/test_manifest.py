"""Manifests, classes.txt and dataset.json: round trips, relative paths, clear errors."""

from __future__ import annotations

import json

import pytest

from vmae.data.manifest import (
    DatasetInfo, ManifestError, read_classes, read_manifest, write_classes, write_manifest,
)


def test_manifest_round_trip_relative_below_and_absolute_outside(tmp_path):
    data = tmp_path / "data"
    outside = tmp_path / "elsewhere" / "x.avi"
    rows = [(str(data / "videos" / "a b" / "v(1).avi"), 3), (str(outside), 0), (str(data / "c.mp4"), 11)]
    write_manifest(data / "train.csv", rows)
    lines = (data / "train.csv").read_text().splitlines()
    assert lines == ["path,label", "videos/a b/v(1).avi,3", f"{outside},0", "c.mp4,11"]
    assert read_manifest(data / "train.csv") == rows


def test_manifest_paths_resolve_against_the_csv_folder_not_the_cwd(tmp_path, monkeypatch):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "val.csv").write_text("path,label\nvideos/v.avi,2\n")
    monkeypatch.chdir(tmp_path)
    assert read_manifest("d/val.csv") == [(str(tmp_path / "d" / "videos" / "v.avi"), 2)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("file,label\nx.avi,0\n", r"val.csv:1: header \['file', 'label'\]: expected \['path', 'label'\]"),
        ("path,label\nx.avi,0\ny.avi\n", r"val.csv:3: \['y.avi'\]: expected 2 fields"),
        ("path,label\nx.avi,-1\n", r"val.csv:2: label '-1': expected a 0-based integer"),
    ],
)
def test_manifest_errors_name_file_and_line(tmp_path, text, expected):
    (tmp_path / "val.csv").write_text(text)
    with pytest.raises(ManifestError, match=expected):
        read_manifest(tmp_path / "val.csv")


def test_classes_round_trip_and_errors(tmp_path):
    write_classes(tmp_path, ["kick", "kick_ball", "curling hair"])
    assert (tmp_path / "classes.txt").read_text() == "kick\nkick_ball\ncurling hair\n"
    assert read_classes(tmp_path) == ["kick", "kick_ball", "curling hair"]
    (tmp_path / "classes.txt").write_text("a\n\nb\n")
    with pytest.raises(ManifestError, match="classes.txt: empty line"):
        read_classes(tmp_path)
    with pytest.raises(ManifestError, match="nowhere/classes.txt: not found"):
        read_classes(tmp_path / "nowhere")


def test_dataset_info_round_trip_and_json_layout(tmp_path):
    info = DatasetInfo(name="ssv2", domain="ssv2", num_classes=3, sampling_mode="segments",
                       frame_stride=1, flip_allowed=False, flip_label_map=[0, 2, 1])
    info.save(tmp_path)
    assert json.loads((tmp_path / "dataset.json").read_text()) == {
        "name": "ssv2", "domain": "ssv2", "num_classes": 3,
        "sampling": {"mode": "segments", "frame_stride": 1},
        "flip": {"allowed": False, "label_map": [0, 2, 1]},
    }
    assert DatasetInfo.load(tmp_path) == info
    assert DatasetInfo(name="x", domain="x", num_classes=4, sampling_mode="dense", frame_stride=2).flip_label_map == [0, 1, 2, 3]


def test_dataset_info_errors(tmp_path):
    with pytest.raises(ManifestError, match="dataset.json: not found"):
        DatasetInfo.load(tmp_path)
    layout = DatasetInfo(name="x", domain="x", num_classes=2, sampling_mode="dense", frame_stride=2).to_json()
    del layout["sampling"]
    (tmp_path / "dataset.json").write_text(json.dumps(layout))
    with pytest.raises(ManifestError, match="dataset.json: missing or malformed field 'sampling'"):
        DatasetInfo.load(tmp_path)
    layout = DatasetInfo(name="x", domain="x", num_classes=2, sampling_mode="dense", frame_stride=2).to_json()
    layout["flip"]["label_map"] = [1, 0, 2]
    (tmp_path / "dataset.json").write_text(json.dumps(layout))
    with pytest.raises(ManifestError, match="label_map has 3 entries: expected num_classes=2"):
        DatasetInfo.load(tmp_path)


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ("x.avi,²", r"val.csv:3: label '²': expected a 0-based integer$"),  # isdigit() is True for '²'
        ("x.avi,٣", r"val.csv:3: label '٣': expected a 0-based integer$"),  # an Arabic-Indic digit
        ("x.avi,3", r"val.csv:3: label '3': expected a 0-based integer below num_classes=3$"),
        ("x.avi,999", r"val.csv:3: label '999': expected a 0-based integer below num_classes=3$"),
        ("../../etc/passwd,0", r"val.csv:3: path '../../etc/passwd': expected a video path below the manifest's"),
        ("videos/../../x.avi,0", r"val.csv:3: path 'videos/../../x.avi': expected a video path below"),
        ("/etc/passwd,0", r"val.csv:3: path '/etc/passwd': expected a video below the dataset's folders"),
    ],
)
def test_hostile_manifest_rows_are_one_line_errors(tmp_path, row, expected):
    (tmp_path / "val.csv").write_text(f"path,label\nok.avi,2\n{row}\n", encoding="utf-8")
    with pytest.raises(ManifestError, match=expected) as err:
        read_manifest(tmp_path / "val.csv", num_classes=3, video_roots=[str(tmp_path / "raw")])
    assert "\n" not in str(err.value) and str(err.value).startswith(str(tmp_path / "val.csv"))


def test_absolute_paths_inside_the_video_roots_are_read(tmp_path):
    raw = tmp_path / "raw"
    write_manifest(tmp_path / "data" / "train.csv", [(str(raw / "a.avi"), 1), (str(tmp_path / "data" / "v" / "b.avi"), 0)])
    assert read_manifest(tmp_path / "data" / "train.csv", num_classes=2, video_roots=[str(raw)]) == [
        (str(raw / "a.avi"), 1), (str(tmp_path / "data" / "v" / "b.avi"), 0)]
    with pytest.raises(ManifestError, match=r"train.csv:2: path '.*raw/a.avi': expected a video below"):
        read_manifest(tmp_path / "data" / "train.csv", video_roots=[str(tmp_path / "rawer")])


def test_dataset_info_keeps_its_video_roots(tmp_path):
    info = DatasetInfo(name="x", domain="x", num_classes=2, sampling_mode="dense", frame_stride=2, video_roots=[str(tmp_path / "raw")])
    info.save(tmp_path)
    assert json.loads((tmp_path / "dataset.json").read_text())["video_roots"] == [str(tmp_path / "raw")]
    loaded = DatasetInfo.load(tmp_path)
    assert loaded == info and loaded.allowed_roots() == [str(tmp_path), str(tmp_path / "raw")]
    assert DatasetInfo(name="x", domain="x", num_classes=2, sampling_mode="dense", frame_stride=2).allowed_roots() is None  # hand-made: unchecked


def test_manifest_and_classes_are_written_atomically(tmp_path, monkeypatch):
    """A failure while writing leaves the old file whole and no temporary file behind."""
    write_manifest(tmp_path / "train.csv", [(str(tmp_path / "a.avi"), 1)])
    write_classes(tmp_path, ["a", "b"])
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    class Full(OSError):
        pass

    def fail_after_some_rows(rows):
        yield rows[0]
        raise Full("disk full")

    with pytest.raises(Full):
        write_manifest(tmp_path / "train.csv", fail_after_some_rows([(str(tmp_path / "b.avi"), 0)] * 3))
    monkeypatch.setattr("vmae.atomic.os.replace", lambda *a: (_ for _ in ()).throw(Full("no rename")))
    with pytest.raises(Full):
        write_classes(tmp_path, ["c"])
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
