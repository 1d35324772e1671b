"""SSv2 parser: labels json with string ids, train/validation lists, both naming schemes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fixtures.official import SSV2_VAL_TOTAL, ssv2_templates, write_ssv2
from fixtures.specs import offline_spec

from vmae.data.formats import FormatError, MissingFilesError, UnknownClassError, build_split


def test_official_validation_count_and_classes(tmp_path):
    lists = write_ssv2(tmp_path)
    parsed = build_split(offline_spec("ssv2"), tmp_path, None)
    assert len(parsed.val) == SSV2_VAL_TOTAL == 24777 and len(parsed.train) == 2 * 174
    assert len(parsed.classes) == 174
    assert parsed.classes[0] == "Approaching something with your camera"
    assert parsed.classes == [t.replace("[", "").replace("]", "") for t in ssv2_templates()]
    assert [Path(p).name for p, _ in parsed.val[:3]] == [f"{vid}.webm" for vid in lists["validation"][:3]]
    assert [label for _, label in parsed.val[:175]] == list(range(174)) + [0]


def test_newer_file_names_and_spec_forbids_flip(tmp_path):
    write_ssv2(tmp_path, train_per_class=1, new_names=True, touch_videos=False)
    spec = offline_spec("ssv2", allow_missing=True)
    assert spec.flip_allowed is False and spec.sampling_mode == "segments" and spec.frame_stride == 2
    parsed = build_split(spec, tmp_path, None)
    assert (len(parsed.train), len(parsed.val), len(parsed.missing)) == (0, 0, 174 + SSV2_VAL_TOTAL)
    assert parsed.missing[0] == "1.webm"


def test_unknown_template_and_bad_json(tmp_path):
    labels = {"Pushing something from left to right": "0", "Pushing something from right to left": "1"}
    (tmp_path / "labels.json").write_text(json.dumps(labels))
    (tmp_path / "validation.json").write_text("[]")
    (tmp_path / "train.json").write_text(json.dumps([{"id": "7", "template": "Pushing [something] upwards"}]))
    with pytest.raises(UnknownClassError, match=r"train\.json: entry 0: .*'Pushing something upwards' is not"):
        build_split(offline_spec("ssv2", num_classes=2), tmp_path, None)
    (tmp_path / "train.json").write_text('[\n{"id": "7",\n "template": oops}\n]')
    with pytest.raises(FormatError, match=r"train\.json:3: ' \"template\": oops}': expected valid JSON"):
        build_split(offline_spec("ssv2", num_classes=2), tmp_path, None)


def test_manual_placement_names_each_missing_file(tmp_path):
    (tmp_path / "labels.json").write_text("{}")
    from vmae.data.registry import load_spec

    with pytest.raises(MissingFilesError) as err:
        build_split(load_spec("ssv2"), tmp_path, None)
    message = str(err.value)
    assert "something-something-v2-train.json or train.json" in message
    assert "something-something-v2-validation.json or validation.json" in message
    assert "labels.json" not in message.split("not found below it:")[1].split("Something-Something V2 needs")[0]
    assert "https://developer.qualcomm.com/software/ai-datasets/something-something" in message
