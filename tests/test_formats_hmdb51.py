"""HMDB51 parser on 153 split files in the official format (trailing spaces, prefix class names)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures.official import HMDB_CLASSES, write_hmdb51
from fixtures.specs import offline_spec

from vmae.data.formats import FormatError, MissingFilesError, build_split


@pytest.fixture(scope="module")
def hmdb_root(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, list[str]]]:
    root = tmp_path_factory.mktemp("hmdb")
    return root, write_hmdb51(root)


@pytest.mark.parametrize("split", [1, 2, 3])
def test_official_counts_per_split(hmdb_root, split):
    root, lists = hmdb_root
    assert len(list((root / "testTrainMulti_7030_splits").iterdir())) == 153
    parsed = build_split(offline_spec("hmdb51"), root, split)
    assert (len(parsed.train), len(parsed.val)) == (3570, 1530)
    assert [Path(p).name for p, _ in parsed.train] == lists[f"train{split}"]
    assert [Path(p).name for p, _ in parsed.val] == lists[f"test{split}"]
    assert all(Path(p).is_file() and Path(p).is_absolute() for p, _ in parsed.train + parsed.val)


def test_class_order_and_prefix_classes(hmdb_root):
    root, _ = hmdb_root
    parsed = build_split(offline_spec("hmdb51"), root, None)
    assert parsed.classes == sorted(HMDB_CLASSES) and len(parsed.classes) == 51
    for cls in ("kick", "kick_ball", "sword", "sword_exercise"):
        label = parsed.classes.index(cls)
        folders = {Path(p).parent.name for p, lab in parsed.train if lab == label}
        assert folders == {cls}
    special = [p for p, _ in parsed.train if "(Teil_1)!_[HD]_&_more;" in p]
    assert len(special) > 1000
    assert (root / "testTrainMulti_7030_splits" / "kick_ball_test_split1.txt").read_text().endswith(" 0 \n")


def test_bad_flag_names_file_line_and_content(tmp_path):
    folder = tmp_path / "splits"
    folder.mkdir()
    (folder / "kick_test_split1.txt").write_text("a.avi 1 \nb.avi 3 \n")
    (folder / "kick_ball_test_split1.txt").write_text("c.avi 2 \n")
    with pytest.raises(FormatError, match=r"kick_test_split1\.txt:2: 'b\.avi 3 ': expected '<video>\.avi <0\|1\|2>'"):
        build_split(offline_spec("hmdb51", num_classes=2), tmp_path, 1)


def test_missing_video_and_missing_split_files(tmp_path):
    with pytest.raises(MissingFilesError, match=r"<class>_test_split2\.txt"):
        build_split(offline_spec("hmdb51"), tmp_path, 2)
    folder = tmp_path / "splits"
    folder.mkdir()
    (folder / "kick_test_split1.txt").write_text("a.avi 1 \nunused.avi 0 \n")
    (folder / "kick_ball_test_split1.txt").write_text("c;(1)!.avi 2 \n")
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "a.avi").touch()
    with pytest.raises(MissingFilesError, match=r"1 listed videos not found.*\n  - c;\(1\)!\.avi"):
        build_split(offline_spec("hmdb51", num_classes=2), tmp_path, 1)
    (tmp_path / "videos" / "c;(1)!.avi").touch()
    parsed = build_split(offline_spec("hmdb51", num_classes=2), tmp_path, 1)
    assert parsed.classes == ["kick", "kick_ball"]
    assert [(Path(p).name, lab) for p, lab in parsed.train + parsed.val] == [("a.avi", 0), ("c;(1)!.avi", 1)]
