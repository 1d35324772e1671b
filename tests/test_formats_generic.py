"""User-dataset formats: folder (sub-folder or seeded stratified split), csv, videomae_list."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from fixtures.specs import user_spec

from vmae.data.formats import FormatError, MissingFilesError, UnknownClassError, build_split
from vmae.data.formats.generic import read_videomae_list, write_videomae_list
from vmae.data.registry import DatasetSpecError, load_spec


def _touch(root: Path, names: list[str]) -> None:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).touch()


def test_folder_seeded_stratified_split(tmp_path):
    raw = tmp_path / "raw"
    _touch(raw, [f"jump/j{i}.mp4" for i in range(10)] + [f"wave/w{i}.avi" for i in range(5)] + ["wave/notes.txt"])
    spec = user_spec(tmp_path, "mine", format_options={"val_fraction": 0.2, "seed": 3})
    parsed = build_split(spec, raw, None)
    assert parsed.classes == ["jump", "wave"]
    assert sorted(lab for _, lab in parsed.val) == [0, 0, 1]  # round(10*0.2), round(5*0.2)
    assert len(parsed.train) == 12 and not set(parsed.train) & set(parsed.val)
    assert parsed == build_split(spec, raw, None)  # same seed, same split
    other = build_split(user_spec(tmp_path, "mine", format_options={"val_fraction": 0.2, "seed": 4}), raw, None)
    assert other.val != parsed.val


def test_folder_train_val_subfolders_and_unknown_val_class(tmp_path):
    raw = tmp_path / "raw"
    _touch(raw / "clips", ["train/a/1.mp4", "train/a/2.mp4", "train/b/3.webm", "val/b/4.mkv"])
    spec = user_spec(tmp_path, "mine", format_options={"root": "clips"})
    parsed = build_split(spec, raw, None)
    assert [(Path(p).name, lab) for p, lab in parsed.train] == [("1.mp4", 0), ("2.mp4", 0), ("3.webm", 1)]
    assert [(Path(p).name, lab) for p, lab in parsed.val] == [("4.mkv", 1)]
    _touch(raw / "clips", ["val/c/5.mp4"])
    with pytest.raises(UnknownClassError, match=r"val/c: class folder 'c': expected one of .*\['a', 'b'\]"):
        build_split(spec, raw, None)


def test_csv_single_file_with_names_and_split_column(tmp_path):
    raw = tmp_path / "raw"
    _touch(raw / "vids", ["x.mp4", "y.mp4", "z.mp4"])
    (raw / "ann.csv").write_text("path,label,split\nvids/x.mp4,run,train\nvids/y.mp4,sit,train\nvids/z.mp4,run,val\n")
    spec = user_spec(tmp_path, "mine", format="csv", format_options={"file": "ann.csv"})
    parsed = build_split(spec, raw, None)
    assert parsed.classes == ["run", "sit"]
    assert parsed.train == [(str(raw / "vids/x.mp4"), 0), (str(raw / "vids/y.mp4"), 1)]
    assert parsed.val == [(str(raw / "vids/z.mp4"), 0)]
    (raw / "ann.csv").write_text("path,label,split\nvids/x.mp4,run,train\nvids/y.mp4,sit,test\n")
    with pytest.raises(FormatError, match=r"ann\.csv:3: 'vids/y\.mp4,sit,test': expected a split column"):
        build_split(spec, raw, None)


def test_csv_two_files_with_index_labels_and_video_root(tmp_path):
    raw = tmp_path / "raw"
    _touch(raw / "media", ["a.mp4", "b.mp4"])
    (raw / "meta").mkdir()
    (raw / "meta" / "train.csv").write_text("path,label\na.mp4,1\n")
    (raw / "meta" / "val.csv").write_text("path,label\nb.mp4,0\n")
    spec = user_spec(tmp_path, "mine", format="csv", format_options={"video_root": "media"})
    parsed = build_split(spec, raw, None)
    assert parsed.classes == ["0", "1"] and parsed.train == [(str(raw / "media/a.mp4"), 1)]
    (raw / "meta" / "val.csv").write_text("path,label\nb.mp4,2\n")
    with pytest.raises(UnknownClassError, match=r"val\.csv:2: 'b\.mp4,2': expected a class index in 0\.\.1"):
        build_split(spec, raw, None)
    (raw / "meta" / "val.csv").write_text("path,label\nb.mp4\n")
    with pytest.raises(FormatError, match=r"val\.csv:2: 'b\.mp4': expected 2 fields"):
        build_split(spec, raw, None)


def test_videomae_list_round_trip_classes_and_missing(tmp_path):
    raw = tmp_path / "raw"
    _touch(raw, ["v/clip one.mp4", "v/b.mp4"])
    (raw / "names.txt").write_text("open\nclose\n")
    write_videomae_list(raw / "train.csv", [(str(raw / "v/clip one.mp4"), 1)])
    write_videomae_list(raw / "val.csv", [("v/b.mp4", 0)])
    assert (raw / "train.csv").read_text() == f"{raw / 'v/clip one.mp4'} 1\n"
    spec = user_spec(tmp_path, "mine", format="videomae_list", format_options={"classes": "names.txt"})
    parsed = build_split(spec, raw, None)
    assert parsed.classes == ["open", "close"]
    assert parsed.train == [(str(raw / "v/clip one.mp4"), 1)] and parsed.val == [(str(raw / "v/b.mp4"), 0)]
    assert read_videomae_list(raw / "val.csv") == [("v/b.mp4", 0)]
    (raw / "val.csv").write_text("v/b.mp4 0\nv/gone.mp4 1\n")
    with pytest.raises(MissingFilesError, match=r"v/gone\.mp4"):
        build_split(spec, raw, None)
    (raw / "val.csv").write_text("v/b.mp4 0\nv/b.mp4,1\n")
    with pytest.raises(FormatError, match=r"val\.csv:2: 'v/b\.mp4,1': expected '<path> <0-based label>'"):
        build_split(spec, raw, None)


def test_yaml_with_missing_or_wrong_field_is_named(tmp_path):
    data = {"name": "mine", "domain": "test", "format": "folder",
            "source": {"kind": "manual", "instructions": "x"}, "sampling": {"mode": "dense"}}
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(DatasetSpecError, match=r"mine\.yaml: num_classes: missing"):
        load_spec(tmp_path / "mine.yaml")
    with pytest.raises(DatasetSpecError, match=r"format: 'folders': expected one of"):
        user_spec(tmp_path, "mine", format="folders")


def test_no_raw_folder_says_to_pass_raw(tmp_path):
    with pytest.raises(ValueError, match=r"mine: no raw folder given: expected --raw DIR"):
        build_split(user_spec(tmp_path, "mine"), None, None)


def test_file_index_follows_no_symlinked_folders_and_ignores_outward_file_links(tmp_path, capsys):
    import time

    from vmae.data.formats.common import FileIndex

    raw = tmp_path / "raw"
    _touch(raw, ["a/v1.avi", "b/v2.avi"])
    (raw / "loop1").symlink_to(".")  # with followlinks=True these two made a walk of 325,732 folders
    (raw / "loop2").symlink_to(".")
    (tmp_path / "secret.txt").write_text("root:x:0:0")
    (raw / "a" / "passwd.avi").symlink_to(tmp_path / "secret.txt")  # as an unpacked archive may hold
    (raw / "b" / "alias.avi").symlink_to(raw / "a" / "v1.avi")  # a link inside the root is fine
    start = time.perf_counter()
    index = FileIndex(raw)
    assert time.perf_counter() - start < 2.0
    assert sorted(index.names()) == ["alias.avi", "v1.avi", "v2.avi"]
    assert index.find("v1.avi") == raw / "a" / "v1.avi" and index.find("passwd.avi") is None
    assert index.outward_links == [str(raw / "a" / "passwd.avi")]
    assert sorted(index.linked_folders) == [str(raw / "loop1"), str(raw / "loop2")]
    err = capsys.readouterr().err
    assert f"{raw}: ignored 1 symlink(s) to files outside it, e.g. {raw / 'a' / 'passwd.avi'}" in err


def test_superscript_digits_are_not_labels(tmp_path):
    """'²'.isdigit() is True but int('²') fails: such a label is a format error naming file and line."""
    (tmp_path / "train.txt").write_text("a.mp4 0\nb.mp4 ²\n", encoding="utf-8")
    with pytest.raises(FormatError, match=r"train\.txt:2: 'b\.mp4 ²': expected '<path> <0-based label>'"):
        read_videomae_list(tmp_path / "train.txt", num_classes=3)
