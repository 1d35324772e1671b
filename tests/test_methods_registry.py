"""The method registry (vmae.methods) and the masking registry: what they hold, what they refuse, and
(slow) a method of one's own, registered from a module outside the package (tests/plugins/toy_method.py),
put through the test config's data-efficiency study beside scratch, MoCo v3 and VideoMAE."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from vmae import methods
from vmae.config import ConfigError, PretrainConfig, build_config, to_dict
from vmae.models import masking
from vmae.report import runs
from vmae.train.distributed import DistEnv

REPO = Path(__file__).resolve().parents[1]
PLUGINS = REPO / "tests" / "plugins"


@pytest.fixture()
def toy(monkeypatch: pytest.MonkeyPatch) -> methods.Method:
    """The toy method registered for this test only (the registry is restored after it)."""
    monkeypatch.setattr(methods, "METHODS", dict(methods.METHODS))
    monkeypatch.syspath_prepend(str(PLUGINS))
    sys.modules.pop("toy_method", None)
    import toy_method  # noqa: F401  (registers "toy")

    yield methods.get("toy")
    sys.modules.pop("toy_method", None)


def test_the_built_in_methods_are_registered_with_what_the_suite_asks_of_them():
    assert methods.names() == ("mocov3", "videomae", "videomaev2") == runs.PRETRAIN_METHODS
    assert runs.MASKED_METHODS == ("videomae", "videomaev2") and runs.METHODS == ("scratch", *methods.names())
    assert methods.labels() == {"mocov3": "MoCo v3", "videomae": "VideoMAE", "videomaev2": "VideoMAE V2 (dual masking)"}
    assert list(methods.sections()) == ["moco", "dual"]
    cfg = PretrainConfig()
    assert [methods.get(name).clips_a_video(cfg) for name in methods.names()] == [2, 1, 1]
    assert [methods.get(name).encoder_prefix for name in methods.names()] == ["base_encoder.", "encoder.", "encoder."]
    assert [methods.get(name).pretext_clips for name in methods.names()] == [2, 1, 1]
    with pytest.raises(methods.UnknownMethodError, match=r"method 'byol': expected one of \['mocov3', 'videomae', "
                                                         r"'videomaev2'\]"):
        methods.get("byol")


def test_a_method_name_must_be_one_word_and_not_taken(monkeypatch):
    monkeypatch.setattr(methods, "METHODS", dict(methods.METHODS))
    for bad in ("my_method", "scratch", "Big"):
        with pytest.raises(ValueError, match="method name"):
            methods.register(type("Bad", (methods.Method,), {"name": bad, "label": bad}))
    with pytest.raises(ValueError, match="registered twice"):
        methods.register(type("Again", (methods.Method,), {"name": "videomae", "label": "again"}))
    with pytest.raises(ValueError, match="config section 'moco' is taken by 'mocov3'"):
        methods.register(type("Clash", (methods.Method,), {"name": "clash", "label": "c", "section": ("moco", dict)}))


def test_a_registered_method_gets_its_config_section_and_run_names(toy):
    cfg = build_config(PretrainConfig, overrides=["method=toy", "toy.scale=2.5"])
    assert cfg.toy.scale == 2.5 and to_dict(cfg)["toy"] == {"scale": 2.5} and "sections" not in to_dict(cfg)
    with pytest.raises(ConfigError, match=r"toy.scale=-1.0: expected > 0"):
        build_config(PretrainConfig, overrides=["method=toy", "toy.scale=-1"])
    with pytest.raises(ConfigError, match=r"method='nope': expected one of \['mocov3', 'toy', 'videomae', "
                                          r"'videomaev2'\]"):
        build_config(PretrainConfig, overrides=["method=nope"])
    model = toy.trainable(cfg, DistEnv(), steps_per_epoch=1).model
    assert all(key.startswith(("backbone.", "head.")) for key in model.state_dict())


def test_masking_strategies_are_registered_functions_and_a_new_one_is_one_function(monkeypatch):
    assert list(masking.MASKINGS) == ["tube", "random", "frame"] == list(runs.MASKINGS)
    monkeypatch.setattr(masking, "MASKINGS", dict(masking.MASKINGS))

    @masking.register_masking("firsthalf")
    def first_half(batch, grid, ratio, generator):
        """The first ``int(ratio * N)`` tokens of every clip, whatever the generator."""
        tokens = grid[0] * grid[1] * grid[2]
        return (torch.arange(tokens) < int(ratio * tokens)).expand(batch, tokens)

    mask = masking.make_mask("firsthalf", 2, (2, 2, 2), 0.5, torch.Generator())
    assert mask.tolist() == [[True] * 4 + [False] * 4] * 2
    assert build_config(PretrainConfig, overrides=["masking=firsthalf"]).masking == "firsthalf"
    with pytest.raises(ValueError, match="masking name"):
        masking.register_masking("half_2")(first_half)
    with pytest.raises(ValueError, match=r"masking kind 'block': expected one of \['tube', 'random', 'frame', "
                                         r"'firsthalf'\]"):
        masking.make_mask("block", 1, (2, 2, 2), 0.5, torch.Generator())


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("snakemake") is None, reason="snakemake is not installed")
def test_a_method_from_outside_the_package_runs_the_data_efficiency_study(tmp_path):
    """README "Adding a method": the module, its recipe, a recipe entry and the study grid; one command."""
    config = yaml.safe_load((REPO / "workflow" / "config" / "test.yaml").read_text())
    config["recipes"]["toy"] = {"config": "tests/plugins/toy_test.yaml", "epochs": 1}
    config["studies"]["data_efficiency"].update(methods=["scratch", "mocov3", "videomae", "toy"],
                                                protocols=["finetune"])
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {**os.environ, "VMAE_PLUGINS": "toy_method",
           "PYTHONPATH": os.pathsep.join([str(PLUGINS), str(REPO), os.environ.get("PYTHONPATH", "")])}
    command = ["snakemake", "results/table_data_efficiency.csv", "--snakefile", str(REPO / "Snakefile"),
               "--directory", str(tmp_path), "--cores", "2", "--configfile", str(path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = tmp_path / "results"
    table = pd.read_csv(results / "table_data_efficiency.csv")
    assert table["method"].tolist() == ["scratch", "mocov3", "toy", "videomae"]  # scratch, then sorted
    toy_row = table.set_index("method").loc["toy"]
    assert toy_row["pretrain_flops"] > 0 and toy_row["pretrain_clips"] == 16 and 0 <= toy_row["top1"] <= 100
    metrics = json.loads((results / "pretrain" / "toy_tiny-clean_f1.0_s0" / "metrics.json").read_text())
    assert metrics["config"]["toy"] == {"scale": 0.5} and metrics["pretext"]["clips"] == 10
    assert toy_row["pretext_skill"] == pytest.approx(metrics["pretext"]["skill"], abs=1e-4)
    pairs = pd.read_csv(results / "table_data_efficiency_comparisons.csv")
    assert {("toy", "scratch"), ("toy", "mocov3"), ("videomae", "toy")} <= set(zip(pairs["a"], pairs["b"]))


@pytest.mark.parametrize("scale", ["cpu", "paper"])
def test_videomae_v2s_recipe_is_videomaes_with_the_decoder_masked(scale):
    """VideoMAE V2 keeps VideoMAE's optimiser and data recipe at each scale; only its decoder mask
    (the ``dual`` section) and the comments differ, so a change to one recipe that misses the other fails."""
    recipes = REPO / "workflow" / "config" / "recipes"
    v1 = yaml.safe_load((recipes / f"videomae_{scale}.yaml").read_text())
    v2 = yaml.safe_load((recipes / f"videomaev2_{scale}.yaml").read_text())
    assert v2.pop("dual") == {"decoder_mask_ratio": 0.5}
    assert v2 == v1
