"""Kinetics-400 parser: quoted labels, CVDF file names, missing videos counted and left out."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures.official import k400_classes, write_k400
from fixtures.specs import offline_spec

from vmae.data.formats import FormatError, MissingFilesError, UnknownClassError, build_split
from vmae.data.registry import load_spec


def test_400_sorted_classes_with_quoted_labels_kept_whole(tmp_path):
    write_k400(tmp_path)
    parsed = build_split(offline_spec("k400"), tmp_path, None)
    assert len(parsed.classes) == 400 and parsed.classes == sorted(parsed.classes) == k400_classes()
    for name in ("curling hair", "massaging person's head", "passing American football (in game)"):
        assert name in parsed.classes
    assert (len(parsed.train), len(parsed.val), parsed.missing) == (800, 400, [])
    curling = parsed.classes.index("curling hair")
    assert {Path(p).parent.name for p, lab in parsed.val if lab == curling} == {"curling hair"}
    assert Path(parsed.train[0][0]).name == "t000-x_0_000000_000010.mp4"


def test_missing_videos_are_counted_and_left_out(tmp_path):
    videos = write_k400(tmp_path, names="cvdf")
    gone = [videos["train"][5], videos["val"][0]]
    for name in gone:
        next(tmp_path.rglob(name)).unlink()
    parsed = build_split(offline_spec("k400"), tmp_path, None)
    assert (len(parsed.train), len(parsed.val)) == (799, 399)
    assert parsed.missing == gone


def test_other_container_is_found(tmp_path):
    videos = write_k400(tmp_path, train_per_class=1)
    mp4 = next(tmp_path.rglob(videos["train"][0]))
    mp4.rename(mp4.with_suffix(".mkv"))
    parsed = build_split(offline_spec("k400"), tmp_path, None)
    assert parsed.train[0][0].endswith(".mkv") and parsed.missing == []


def test_malformed_row_and_unknown_val_label(tmp_path):
    header = "label,youtube_id,time_start,time_end,split,is_cc\n"
    rows = '"curling hair",abc,1,11,train,0\nzumba,def,x,9,train,0\n'
    (tmp_path / "kinetics-400_train.csv").write_text(header + rows)
    (tmp_path / "kinetics-400_val.csv").write_text(header)
    with pytest.raises(FormatError, match=r"kinetics-400_train\.csv:3: 'zumba,def,x,9,train,0'"):
        build_split(offline_spec("k400", num_classes=1), tmp_path, None)
    (tmp_path / "kinetics-400_train.csv").write_text(header + '"curling hair",abc,1,11,train,0\n')
    (tmp_path / "kinetics-400_val.csv").write_text(header + '"braiding hair",ghi,3,13,val,0\n')
    with pytest.raises(UnknownClassError, match=r"kinetics-400_val\.csv:2: .*'braiding hair' is not among the 1"):
        build_split(offline_spec("k400", num_classes=1), tmp_path, None)


def test_manual_source_names_missing_annotations_and_instructions(tmp_path):
    (tmp_path / "validate.csv").write_text("label,youtube_id,time_start,time_end,split,is_cc\n")
    with pytest.raises(MissingFilesError) as err:
        build_split(load_spec("k400"), tmp_path, None)
    assert "1 file(s) of k400 not found" in str(err.value)
    assert "kinetics-400_train.csv or train.csv" in str(err.value)
    assert "https://s3.amazonaws.com/kinetics/400/annotations/train.csv" in str(err.value)
    with pytest.raises(FormatError, match="split 2: expected one of \\[1\\]"):
        build_split(load_spec("k400"), tmp_path, 2)
