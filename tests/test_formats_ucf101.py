"""UCF101 parser on full-size split files in the official format (CRLF, case quirk)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures.official import UCF_TOTAL, ucf101_classes, write_ucf101
from fixtures.specs import offline_spec

from vmae.data.formats import FormatError, MissingFilesError, UnknownClassError, build_split


@pytest.fixture(scope="module")
def ucf_root(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, list[str]]]:
    root = tmp_path_factory.mktemp("ucf")
    return root, write_ucf101(root)


@pytest.mark.parametrize(("split", "n_train", "n_test"), [(1, 9537, 3783), (2, 9586, 3734), (3, 9624, 3696)])
def test_official_counts_per_split(ucf_root, split, n_train, n_test):
    root, lists = ucf_root
    parsed = build_split(offline_spec("ucf101"), root, split)
    assert (len(parsed.train), len(parsed.val)) == (n_train, n_test)
    assert len(parsed.train) + len(parsed.val) == UCF_TOTAL
    assert parsed.classes == ucf101_classes() and parsed.missing == []
    # Paths are absolute files of the extracted tree, in split-file order.
    expected = [str(root / "UCF-101" / rel) for rel in lists[f"test{split}"]]
    assert [path for path, _ in parsed.val] == expected


def test_labels_follow_class_ind_and_case_quirk(ucf_root):
    root, _ = ucf_root
    parsed = build_split(offline_spec("ucf101"), root, None)  # format_options.split = 1
    assert len(parsed.train) == 9537
    labels = {Path(path).parent.name: label for path, label in parsed.train + parsed.val}
    assert labels["ApplyEyeMakeup"] == 0 and labels["HandstandPushups"] == 3 and labels["Zaction096"] == 100
    handstand = [Path(p).name for p, label in parsed.val if label == 3]
    assert handstand and all(name.startswith("v_HandStandPushups_g0") for name in handstand)
    assert (root / "ucfTrainTestlist" / "testlist01.txt").read_bytes().count(b"\r\n") == 3783


def test_video_names_match_case_insensitively(tmp_path):
    _write_tiny(tmp_path, train=["HandstandPushups/v_HandStandPushups_g08_c01.avi 1"],
                test=["HandstandPushups/v_HandStandPushups_g01_c01.avi"])
    (tmp_path / "UCF-101" / "HandstandPushups" / "v_HandStandPushups_g01_c01.avi").rename(
        tmp_path / "UCF-101" / "HandstandPushups" / "v_HandstandPushups_g01_c01.avi")
    parsed = build_split(offline_spec("ucf101", num_classes=2), tmp_path, 1)
    assert Path(parsed.val[0][0]).name == "v_HandstandPushups_g01_c01.avi" and parsed.val[0][1] == 0


def test_malformed_line_names_file_line_and_content(tmp_path):
    _write_tiny(tmp_path, train=["HandstandPushups/v_HandStandPushups_g08_c01.avi 1",
                                 "HandstandPushups/v_HandStandPushups_g09_c01.avi"], test=[])
    with pytest.raises(FormatError, match=r"trainlist01\.txt:2: 'HandstandPushups/v_HandStandPushups_g09_c01\.avi'"):
        build_split(offline_spec("ucf101", num_classes=2), tmp_path, 1)


def test_label_disagreeing_with_folder_is_an_error(tmp_path):
    _write_tiny(tmp_path, train=["HandstandPushups/v_HandStandPushups_g08_c01.avi 2"], test=[])
    with pytest.raises(FormatError, match=r"trainlist01\.txt:1: .*expected id 1 for class folder 'HandstandPushups'"):
        build_split(offline_spec("ucf101", num_classes=2), tmp_path, 1)


def test_unknown_class_in_test_list_is_named(tmp_path):
    _write_tiny(tmp_path, train=[], test=["Juggling/v_Juggling_g01_c01.avi"])
    with pytest.raises(UnknownClassError, match=r"testlist01\.txt:1: .*'juggling' is not among the 2 classes"):
        build_split(offline_spec("ucf101", num_classes=2), tmp_path, 1)


def test_missing_video_is_named_unless_allowed(tmp_path):
    _write_tiny(tmp_path, train=["Archery/v_Archery_g08_c01.avi 2"], test=["Archery/v_Archery_g01_c07.avi"])
    with pytest.raises(MissingFilesError, match=r"1 listed videos not found .*\n  - Archery/v_Archery_g01_c07\.avi"):
        build_split(offline_spec("ucf101", num_classes=2), tmp_path, 1)
    parsed = build_split(offline_spec("ucf101", num_classes=2, allow_missing=True), tmp_path, 1)
    assert (len(parsed.train), len(parsed.val), parsed.missing) == (1, 0, ["Archery/v_Archery_g01_c07.avi"])
    with pytest.raises(FormatError, match="num_classes: 101: .* give 2 classes"):
        build_split(offline_spec("ucf101", allow_missing=True), tmp_path, 1)


def test_missing_split_files_are_named(tmp_path):
    with pytest.raises(MissingFilesError, match=r"classInd\.txt"):
        build_split(offline_spec("ucf101", num_classes=2), tmp_path, 1)
    with pytest.raises(FormatError, match=r"split 4: expected one of \[1, 2, 3\]"):
        build_split(offline_spec("ucf101"), tmp_path, 4)


def _write_tiny(root: Path, train: list[str], test: list[str]) -> None:
    """Two classes (HandstandPushups = 1, Archery = 2), CRLF lists, videos for the listed names only
    (the last test entry's video is left out when its name ends in c07)."""
    lists = root / "ucfTrainTestlist"
    lists.mkdir()
    (lists / "classInd.txt").write_bytes(b"1 HandstandPushups\r\n2 Archery\r\n")
    (lists / "trainlist01.txt").write_bytes("".join(f"{line}\r\n" for line in train).encode())
    (lists / "testlist01.txt").write_bytes("".join(f"{line}\r\n" for line in test).encode())
    for line in train + test:
        rel = line.split()[0]
        if not rel.endswith("c07.avi"):
            (root / "UCF-101" / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / "UCF-101" / rel).touch()
