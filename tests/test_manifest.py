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
    info = DatasetInfo(name="ssv2", domain="ssv2", num_classes=3, frames_per_clip=16, sampling_mode="segments",
                       frame_stride=1, flip_allowed=False, flip_label_map=[0, 2, 1])
    info.save(tmp_path)
    assert json.loads((tmp_path / "dataset.json").read_text()) == {
        "name": "ssv2", "domain": "ssv2", "num_classes": 3, "frames_per_clip": 16,
        "sampling": {"mode": "segments", "frame_stride": 1},
        "flip": {"allowed": False, "label_map": [0, 2, 1]},
    }
    assert DatasetInfo.load(tmp_path) == info
    assert DatasetInfo(name="x", domain="x", num_classes=4).flip_label_map == [0, 1, 2, 3]


def test_dataset_info_errors(tmp_path):
    with pytest.raises(ManifestError, match="dataset.json: not found"):
        DatasetInfo.load(tmp_path)
    layout = DatasetInfo(name="x", domain="x", num_classes=2).to_json()
    del layout["sampling"]
    (tmp_path / "dataset.json").write_text(json.dumps(layout))
    with pytest.raises(ManifestError, match="dataset.json: missing or malformed field 'sampling'"):
        DatasetInfo.load(tmp_path)
    layout = DatasetInfo(name="x", domain="x", num_classes=2).to_json()
    layout["flip"]["label_map"] = [1, 0, 2]
    (tmp_path / "dataset.json").write_text(json.dumps(layout))
    with pytest.raises(ManifestError, match="label_map has 3 entries: expected num_classes=2"):
        DatasetInfo.load(tmp_path)
