"""Typed run configs: precedence, coercion, and errors that name the key."""

from __future__ import annotations

import pytest

from vmae.config import (
    ConfigError,
    FinetuneConfig,
    LinprobeConfig,
    PretrainConfig,
    build_config,
    config_from_dict,
    parse_overrides,
    to_dict,
)


def test_precedence_defaults_yaml_flags_overrides(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("seed: 5\nmask_ratio: 0.75\noptim:\n  epochs: 40\n  betas: [0.9, 0.99]\n")
    cfg = build_config(PretrainConfig, path, ["optim.epochs=7"], seed=9, **{"optim.epochs": 20})
    assert cfg.seed == 9  # flag beats YAML
    assert cfg.optim.epochs == 7  # key=value beats the flag
    assert cfg.mask_ratio == 0.75 and cfg.optim.betas == (0.9, 0.99)
    assert cfg.model.size == "vit_micro"  # untouched default
    assert build_config(PretrainConfig, path, seed=None).seed == 5  # a None flag is "not given"


def test_override_coercion():
    cfg = build_config(FinetuneConfig, overrides=["compile=false", "data.scales=0.5,1.0", "optim.base_lr=2e-3",
                                                  "model.drop_path_rate=0.1", "data.frame_cache=/tmp/x"])
    assert cfg.compile is False and cfg.data.scales == (0.5, 1.0)
    assert cfg.optim.base_lr == pytest.approx(2e-3) and cfg.model.drop_path_rate == pytest.approx(0.1)
    assert cfg.data.frame_cache == "/tmp/x"


def test_command_defaults_differ_where_the_recipes_do():
    assert PretrainConfig().optim.betas == (0.9, 0.95)
    assert FinetuneConfig().optim.betas == (0.9, 0.999)


@pytest.mark.parametrize(
    ("cls", "overrides", "message"),
    [
        (PretrainConfig, ["optim.lr=1"], r"override: unknown key 'optim\.lr'"),
        (PretrainConfig, ["mask_ratoi=0.5"], r"unknown key 'mask_ratoi'"),
        (PretrainConfig, ["optim.epochs=ten"], r"optim\.epochs='ten': expected int"),
        (PretrainConfig, ["optim.epochs=2.5"], r"optim\.epochs='2.5': expected int"),
        (PretrainConfig, ["compile=maybe"], r"compile='maybe': expected true or false"),
        (PretrainConfig, ["masking=block"], r"masking='block': expected one of \['tube', 'random', 'frame'\]"),
        (PretrainConfig, ["mask_ratio=1.0"], r"mask_ratio=1\.0: expected in \(0, 1\)"),
        (PretrainConfig, ["optim.betas=0.9"], r"optim\.betas=\[0\.9\]: expected 2 values"),
        (PretrainConfig, ["optim.warmup_epochs=-1"], r"optim\.warmup_epochs=-1\.0: expected >= 0"),
        (PretrainConfig, ["model.img_size=30"], r"model\.img_size=30: expected a multiple of model\.patch_size=4"),
        (PretrainConfig, ["method=mocov3", "data.repeated_sampling=2"], r"data\.repeated_sampling=2"),
        (FinetuneConfig, ["label_smoothing=1"], r"label_smoothing=1\.0: expected in \[0, 1\)"),
        (FinetuneConfig, ["optim.layer_decay=0"], r"optim\.layer_decay=0\.0: expected in \(0, 1\]"),
        (LinprobeConfig, ["C=0"], r"C=0\.0: expected > 0"),
        (LinprobeConfig, ["optim.epochs=3"], r"unknown key 'optim'"),
        (FinetuneConfig, ["data.test_crops=2"], r"data\.test_crops=2: expected 1 or 3"),
        (FinetuneConfig, ["mixup=0.8", "optim.batch_size=7"], r"optim\.batch_size=7: expected an even clip count"),
    ],
)
def test_errors_name_the_key(cls, overrides, message):
    with pytest.raises(ConfigError, match=message):
        build_config(cls, overrides=overrides)


def test_yaml_errors_name_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("optim: 3\n")
    with pytest.raises(ConfigError, match=rf"{path}: optim=3: expected a mapping"):
        build_config(PretrainConfig, path)
    path.write_text("- a\n")
    with pytest.raises(ConfigError, match="expected a mapping at the top level"):
        build_config(PretrainConfig, path)


def test_override_syntax_error():
    with pytest.raises(ConfigError, match=r"override 'epochs': expected key=value"):
        parse_overrides(["epochs"])


def test_round_trip_through_a_plain_dict():
    cfg = build_config(PretrainConfig, overrides=["method=mocov3", "optim.betas=[0.9,0.99]", "model.size=vit_tiny"])
    plain = to_dict(cfg)
    assert plain["optim"]["betas"] == [0.9, 0.99]
    assert config_from_dict(PretrainConfig, plain) == cfg
