"""Clean errors (issue 25, item 3): a missing input file, a full disk and a bad workflow config are each
one line naming the file and what was expected, with exit status 2, from the real command."""

from __future__ import annotations

import copy
import errno
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from snakemake.utils import validate

from vmae.atomic import DiskFullError
from vmae.cli import main as vmae
from vmae.train.checkpoint import load_checkpoint, save_checkpoint
from vmae.workflow_config import WorkflowConfigError, load_schema, validate_config

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "workflow" / "config"
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


def error_line(capsys: pytest.CaptureFixture) -> str:
    """The command's stderr, which must be one line without a traceback."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("command, flag, expected", [
    ("pretrain", "--config", "a YAML config file (--config)"),
    ("pretrain", "--train-manifest", "a manifest CSV file (--train-manifest)"),
    ("finetune", "--eval-manifest", "a manifest CSV file (--eval-manifest)"),
    ("finetune", "--init", "a checkpoint file or a Hugging Face model folder (--init)"),
    ("linprobe", "--init", "a checkpoint file or a Hugging Face model folder (--init)"),
])
def test_a_missing_input_file_is_named_before_any_data_loads(command, flag, expected, tmp_path, capsys):
    missing = tmp_path / "missing.file"
    # --data is no prepared folder: the input files are checked before it is read
    code = vmae([command, "--data", str(tmp_path / "no-data"), "--out", str(tmp_path / "run"), flag, str(missing)])
    assert code == 2
    assert error_line(capsys) == f"vmae {command}: error: {missing}: not found: expected {expected}"
    assert not (tmp_path / "run").exists()


def test_reconstruct_names_a_missing_checkpoint(tmp_path, capsys):
    missing = tmp_path / "checkpoint.pt"
    assert vmae(["reconstruct", "--init", str(missing), "--data", str(tmp_path), "--out", str(tmp_path / "r.png")]) == 2
    assert error_line(capsys) == (f"vmae reconstruct: error: {missing}: not found: expected a VideoMAE pretraining "
                                  "checkpoint file (--init)")


def test_plot_names_a_missing_or_empty_table(tmp_path, capsys):
    missing = tmp_path / "missing.csv"
    assert vmae(["plot", "data_efficiency", "--table", str(missing), "--out", str(tmp_path / "f.png")]) == 2
    assert error_line(capsys) == (f"vmae plot: error: {missing}: not found: expected a study table written by "
                                  "`vmae table`")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert vmae(["plot", "data_efficiency", "--table", str(empty), "--out", str(tmp_path / "f.png")]) == 2
    assert error_line(capsys) == (f"vmae plot: error: {empty}: empty file: expected a study table written by "
                                  "`vmae table`")
    assert not (tmp_path / "f.png").exists()


def full_disk(code: int):
    def save(obj, handle, *args, **kwargs):
        handle.write(b"PK half a checkpoint")
        raise OSError(code, "No space left on device")
    return save


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT, errno.EFBIG])
def test_a_full_disk_keeps_the_previous_checkpoint(code, tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"epoch": 1})
    monkeypatch.setattr(torch, "save", full_disk(code))
    with pytest.raises(DiskFullError) as caught:
        save_checkpoint(path, {"epoch": 2})
    assert str(caught.value) == f"{path}: disk full while writing the checkpoint: free space and run again"
    monkeypatch.undo()
    assert load_checkpoint(path) == {"epoch": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]  # no temporary file left


def test_torch_write_failure_is_a_full_disk_and_other_errors_pass(tmp_path, monkeypatch):
    def torch_writer_failure(obj, handle, *args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . PytorchStreamWriter failed writing file "
                           "data/0: file write failed")

    monkeypatch.setattr(torch, "save", torch_writer_failure)
    with pytest.raises(DiskFullError, match="disk full while writing the checkpoint"):
        save_checkpoint(tmp_path / "a.pt", {})
    monkeypatch.setattr(torch, "save", full_disk(errno.EACCES))
    with pytest.raises(PermissionError):
        save_checkpoint(tmp_path / "a.pt", {})
    assert list(tmp_path.iterdir()) == []


def test_pretrain_on_a_full_disk_is_one_line(tiny_dataset: Path, tiny_run_args: list[str], tmp_path, monkeypatch,
                                             capsys):
    monkeypatch.setattr(torch, "save", full_disk(errno.ENOSPC))
    out = tmp_path / "run"
    assert vmae(["pretrain", "--data", str(tiny_dataset), "--out", str(out), *tiny_run_args]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == (f"vmae pretrain: error: {out / 'resume.pt'}: disk full while writing "
                                            "the checkpoint: free space and run again")
    assert not list(out.glob("*.pt")) and not list(out.glob(".*"))  # no checkpoint, no temporary file


@pytest.mark.slow
def test_a_config_typo_names_the_file_and_the_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("studies:\n  data_efficency:\n    targets: [synthetic-clean]\n")
    result = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--configfile", str(bad), "--snakefile",
                             str(REPO / "Snakefile"), "--directory", str(tmp_path)],
                            capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert (f"{bad}: studies.data_efficency: unknown key: expected one of ['data_efficiency', 'data_size', "
            "'domain_shift', 'mask_ratio', 'masking', 'masking_regime', 'methods']") in output
    assert len(output.strip().splitlines()) < 15, output


def test_a_bad_value_names_the_file_it_comes_from(tmp_path):
    default, bad = CONFIG / "config.yaml", tmp_path / "bad.yaml"
    bad.write_text("seeds: [0, -1]\n")
    config = {**yaml.safe_load(default.read_text()), "seeds": [0, -1]}
    with pytest.raises(WorkflowConfigError) as caught:
        validate_config(config, SCHEMA, [bad, default])
    assert str(caught.value) == f"{bad}: seeds.1: -1: expected >= 0"


@pytest.mark.parametrize("name", ["config.yaml", "paper.yaml", "test.yaml"])
def test_defaults_are_filled_as_snakemake_fills_them(name, tmp_path):
    config = yaml.safe_load((CONFIG / name).read_text())
    ours, snakemakes = copy.deepcopy(config), copy.deepcopy(config)
    validate_config(ours, SCHEMA, [CONFIG / name])
    filled = tmp_path / "schema.yaml"  # the registries' methods and maskings filled in, as ours checks
    filled.write_text(yaml.safe_dump(load_schema(SCHEMA)))
    validate(snakemakes, str(filled))
    assert ours == snakemakes != config
