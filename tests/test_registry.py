"""Dataset registry: the shipped YAMLs load with defaults; bad files name file, field and expectation."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from vmae.data.registry import REPO_ROOT, DatasetSpecError, datasets_dir, flip_label_indices, list_specs, load_spec
from vmae.data.synthetic import CLASS_NAMES, GeneratorParams
from vmae.data.writer import CODEC_ALIASES, CODEC_OPTIONS

CLEAN = yaml.safe_load((datasets_dir() / "synthetic-clean.yaml").read_text())


def write_spec(folder: Path, data: dict, name: str = "synthetic-clean") -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def edited(**changes) -> dict:
    """The clean spec with dotted-key changes; a value of None deletes the key."""
    data = copy.deepcopy(CLEAN)
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        node = data
        for part in parents:
            node = node[part]
        if value is None:
            del node[leaf]
        else:
            node[leaf] = value
    return data


def test_shipped_specs_load():
    assert {"synthetic-clean", "synthetic-clutter"} <= set(list_specs())
    clean, clutter = load_spec("synthetic-clean"), load_spec("synthetic-clutter")
    assert (clean.domain, clutter.domain) == ("clean", "clutter")
    assert clean.source["generator"] == {"style": "clean", "train_per_class": 12, "val_per_class": 30,
                                         "test_per_class": 100, "unlabelled_per_class": 36, "size": 28, "frames": 32,
                                         "fps": 25, "seed": 0, "noise": 0.0, "codec": "ffv1"}
    assert clutter.source["generator"]["train_per_class"] == 12  # N in-domain videos on both targets
    assert (clutter.source["generator"]["noise"], clutter.source["generator"]["codec"]) == (0.0, "ffv1")
    assert (clean.report_split, clutter.report_split) == ("test", "test")
    for spec in (clean, clutter):
        assert (spec.format, spec.sampling_mode, spec.frame_stride) == ("synthetic", "dense", 2)
        assert spec.num_classes == len(CLASS_NAMES) == 10
        assert spec.flip_allowed and spec.flip_label_map["rotate_cw"] == "rotate_ccw"
        assert spec.description


def test_defaults_filled_from_schema(tmp_path):
    minimal = edited(sampling={"mode": "dense"}, flip=None,
                     source={"kind": "synthetic", "generator": {"style": "clutter"}})
    spec = load_spec(write_spec(tmp_path, minimal))
    assert spec.source["generator"] == {"style": "clutter", "train_per_class": 20, "val_per_class": 20,
                                        "test_per_class": 20, "unlabelled_per_class": 0, "size": 32, "frames": 32,
                                        "fps": 25, "seed": 0, "noise": 0.0, "codec": "ffv1"}
    # the schema's defaults are the generator's own
    assert GeneratorParams.from_spec(spec.source["generator"]) == GeneratorParams(style="clutter")
    assert (spec.frame_stride, spec.flip_allowed, spec.flip_label_map) == (2, True, {})
    assert spec.format_options == {}
    assert spec.paper_name is None


def test_root_argument_and_env_var(tmp_path, monkeypatch):
    write_spec(tmp_path, CLEAN)
    assert load_spec("synthetic-clean", root=tmp_path).path == tmp_path / "synthetic-clean.yaml"
    monkeypatch.setenv("VMAE_DATASETS", str(tmp_path))
    assert list_specs() == ["synthetic-clean"]
    assert load_spec("synthetic-clean").path == tmp_path / "synthetic-clean.yaml"


@pytest.mark.parametrize(
    ("changes", "field", "expected"),
    [
        ({"domain": None}, "domain", "missing"),
        ({"source__generator__style": None}, "source.generator.style", "missing"),
        ({"source__generator__size": "big"}, "source.generator.size", "type integer"),
        ({"source__generator__size": 8}, "source.generator.size", ">= 16"),
        ({"source__generator__style": "noir"}, "source.generator.style", "one of ['clean', 'clutter']"),
        ({"sampling__mode": "uniform"}, "sampling.mode", "one of ['dense', 'segments']"),
        ({"source__generator__colour": "red"}, "source.generator.colour", "unknown key"),
        ({"colour": "red"}, "colour", "unknown key"),
        ({"num_classes": "ten"}, "num_classes", "type integer"),
        ({"format": "avi"}, "format", "one of"),
        ({"source__kind": "synth"}, "source.kind", "expected one of ['synthetic', 'download', 'manual']"),
        ({"source__kind": None}, "source.kind", "missing: expected one of ['synthetic', 'download', 'manual']"),
    ],
)
def test_schema_errors_name_file_and_field(tmp_path, changes, field, expected):
    path = write_spec(tmp_path, edited(**changes))
    with pytest.raises(DatasetSpecError) as err:
        load_spec(path)
    message = str(err.value)
    assert message.startswith(f"{path}: {field}: ")
    assert expected in message


def test_download_source_errors_point_into_the_files_list(tmp_path):
    data = edited(format="ucf101", num_classes=101, flip={"allowed": True},
                  source={"kind": "download", "files": [{"url": "https://example.org/a.zip",
                                                         "filename": "a.zip", "sha256": "xyz"}]})
    path = write_spec(tmp_path, data, name="synthetic-clean")
    with pytest.raises(DatasetSpecError, match=r"source\.files\.0\.sha256: 'xyz': expected a string matching"):
        load_spec(path)
    data["source"]["files"][0]["sha256"] = "0" * 64
    spec = load_spec(write_spec(tmp_path, data))
    assert spec.source["files"][0]["extract"] is True  # default filled inside the matching oneOf branch


def test_consistency_errors(tmp_path):
    cases = [
        (edited(name="other"), "name: 'other': expected the file name without .yaml, 'synthetic-clean'"),
        (edited(num_classes=7), "num_classes: 7: expected 10"),
        (edited(flip={"allowed": True, "label_map": {"move_right": "go_left"}}),
         "flip.label_map.move_right: class 'go_left' unknown"),
        (edited(flip={"allowed": True, "label_map": {"move_right": "move_left"}}),
         "flip.label_map.move_left: expected 'move_right' (symmetric pairs"),
    ]
    for data, expected in cases:
        path = write_spec(tmp_path, data)
        with pytest.raises(DatasetSpecError) as err:
            load_spec(path)
        assert str(err.value).startswith(f"{path}: {expected}")


def test_unknown_name_lists_known_datasets(tmp_path):
    write_spec(tmp_path, CLEAN)
    with pytest.raises(DatasetSpecError, match="no such dataset file .*synthetic-clean"):
        load_spec("ucf999", root=tmp_path)


def test_flip_label_indices():
    classes = ["a", "b", "c"]
    assert flip_label_indices({"a": "c", "c": "a"}, classes, "x.yaml") == [2, 1, 0]
    assert flip_label_indices({}, classes, "x.yaml") == [0, 1, 2]


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"filename": "../../../../home/user/.bashrc", "sha256": "0" * 64},
         r"source\.files\.0\.filename: '\.\./\.\./\.\./\.\./home/user/\.bashrc': expected a string matching"),
        ({"filename": "/etc/cron.d/x", "sha256": "0" * 64}, r"source\.files\.0\.filename: '/etc/cron\.d/x'"),
        ({"filename": ".bashrc", "md5": "0" * 32}, r"source\.files\.0\.filename: '\.bashrc'"),
        ({"filename": "a.zip"}, r"source\.files\.0: .*expected one of: a sha256 \| an md5 \| insecure: true"),
        ({"filename": "a.zip", "insecure": False},
         r"source\.files\.0\.insecure: False: expected True \(no sha256 or md5 given: add one, or set insecure: true\)"),
    ],
)
def test_download_entries_need_a_plain_filename_and_a_checksum(tmp_path, entry, expected):
    data = edited(format="ucf101", num_classes=101, flip={"allowed": True},
                  source={"kind": "download", "files": [{"url": "https://example.org/a.zip", **entry}]})
    with pytest.raises(DatasetSpecError, match=expected):
        load_spec(write_spec(tmp_path, data))


def test_insecure_download_entry_is_accepted_and_defaults_to_false(tmp_path):
    files = [{"url": "https://example.org/a.zip", "filename": "a.zip", "insecure": True},
             {"url": "https://example.org/b.zip", "filename": "b.zip", "md5": "0" * 32}]
    data = edited(format="ucf101", num_classes=101, flip={"allowed": True}, source={"kind": "download", "files": files})
    spec = load_spec(write_spec(tmp_path, data))
    assert [f["insecure"] for f in spec.source["files"]] == [True, False]


def test_synthetic_codecs_are_the_writers():
    schema = yaml.safe_load((REPO_ROOT / "workflow/schemas/dataset.schema.yaml").read_text())
    synthetic = next(o for o in schema["properties"]["source"]["oneOf"] if o["properties"]["kind"].get("const") == "synthetic")
    codecs = synthetic["properties"]["generator"]["properties"]["codec"]["enum"]
    assert sorted(codecs) == sorted([*CODEC_OPTIONS, *CODEC_ALIASES])
