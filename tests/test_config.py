"""Typed run configs: precedence, coercion, and errors that name the key."""

from __future__ import annotations

import re

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


FLOAT_KEYS = ["optim.min_lr", "optim.weight_decay", "optim.clip_grad", "optim.base_lr", "optim.warmup_epochs",
              "optim.layer_decay", "mask_ratio", "model.mlp_ratio", "model.init_values", "model.drop_path_rate",
              "moco.temperature", "moco.momentum"]


@pytest.mark.parametrize("key", FLOAT_KEYS)
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN"])
def test_non_finite_floats_are_refused_naming_the_key(key, value):
    with pytest.raises(ConfigError, match=rf"override: {key}='{re.escape(value)}': expected a finite float"):
        build_config(PretrainConfig, overrides=[f"{key}={value}"])


@pytest.mark.parametrize(("key", "values"), [("optim.betas", ["nan", "0.5"]), ("data.scales", ["1.0", "nan"]),
                                             ("data.mean", ["0.5", "inf", "0.5"]), ("data.std", ["-inf", "1", "1"])])
def test_non_finite_floats_inside_tuples_are_refused(key, values, tmp_path):
    with pytest.raises(ConfigError, match=rf"override: {key}='.*': expected a finite float"):
        build_config(PretrainConfig, overrides=[f"{key}={','.join(values)}"])
    section, leaf = key.split(".")
    path = tmp_path / "run.yaml"
    path.write_text(f"{section}:\n  {leaf}: [{', '.join(v.replace('inf', '.inf').replace('nan', '.nan') for v in values)}]\n")
    with pytest.raises(ConfigError, match=rf"run.yaml: {key}=-?(inf|nan): expected a finite float"):
        build_config(PretrainConfig, path)


def test_non_finite_values_set_in_code_are_refused_by_validate():
    from vmae.config import OptimConfig, validate

    cfg = PretrainConfig(optim=OptimConfig(clip_grad=float("nan")))
    with pytest.raises(ConfigError, match=r"^optim.clip_grad=nan: expected finite numbers \(not nan or inf\)$"):
        validate(cfg)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optim.betas=0.9,1.0", "optim.betas=(0.9, 1.0): expected two values in [0, 1)"),
        ("optim.betas=-0.1,0.9", "optim.betas=(-0.1, 0.9): expected two values in [0, 1)"),
        ("optim.min_lr=-1e-6", "optim.min_lr=-1e-06: expected >= 0"),
        ("optim.weight_decay=-0.05", "optim.weight_decay=-0.05: expected >= 0"),
        ("optim.clip_grad=-1", "optim.clip_grad=-1.0: expected >= 0 (0 disables clipping)"),
        ("data.num_workers=-2", "data.num_workers=-2: expected >= 0 (0 = load in the main process)"),
        ("data.scales=[]", "data.scales=(): expected one or more values in (0, 1]"),
        ("data.std=0.2,0,0.2", "data.std=(0.2, 0.0, 0.2): expected values > 0"),
        ("moco.temperature=0", "moco.temperature=0.0: expected > 0"),
        ("moco.momentum=1.5", "moco.momentum=1.5: expected in [0, 1]"),
        ("moco.proj_dim=0", "moco.proj_dim=0: expected >= 1"),
        ("model.patch_size=0", "model.patch_size=0: expected >= 1"),
        ("model.tubelet_size=0", "model.tubelet_size=0: expected >= 1"),
        ("model.mlp_ratio=0", "model.mlp_ratio=0.0: expected > 0"),
    ],
)
def test_values_out_of_range_name_key_value_and_expectation(override, message):
    with pytest.raises(ConfigError) as err:
        build_config(PretrainConfig, overrides=[override])
    assert str(err.value) == message
