"""Checkpoint loading: this project's formats, the official MCG-NJU layout, learned positions."""

from __future__ import annotations

import argparse
import os
import shlex
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vmae.cli import main as vmae
from vmae.config import PretrainConfig, to_dict
from vmae.methods.mocov3 import build_moco
from vmae.models import build_encoder, build_videomae
from vmae.models.checkpoints import load_encoder_weights
from vmae.models.interop import convert_official
from vmae.models.torch_files import UntrustedCheckpointError, load_torch_file

D, DEPTH, HEADS, DEC, HID = 32, 2, 2, 16, 128


def _official_block(prefix: str, dim: int, hidden: int, layer_scale: bool) -> dict[str, torch.Tensor]:
    """Exactly the official block keys and shapes (q_bias / v_bias, optional gamma_1 / gamma_2)."""
    r = torch.randn
    sd = {
        f"{prefix}norm1.weight": 1 + 0.1 * r(dim), f"{prefix}norm1.bias": 0.1 * r(dim),
        f"{prefix}attn.qkv.weight": 0.2 * r(3 * dim, dim),
        f"{prefix}attn.q_bias": 0.1 * r(dim), f"{prefix}attn.v_bias": 0.1 * r(dim),
        f"{prefix}attn.proj.weight": 0.2 * r(dim, dim), f"{prefix}attn.proj.bias": 0.1 * r(dim),
        f"{prefix}norm2.weight": 1 + 0.1 * r(dim), f"{prefix}norm2.bias": 0.1 * r(dim),
        f"{prefix}mlp.fc1.weight": 0.2 * r(hidden, dim), f"{prefix}mlp.fc1.bias": 0.1 * r(hidden),
        f"{prefix}mlp.fc2.weight": 0.1 * r(dim, hidden), f"{prefix}mlp.fc2.bias": 0.1 * r(dim),
    }
    if layer_scale:
        sd[f"{prefix}gamma_1"] = 0.5 + r(dim).abs()
        sd[f"{prefix}gamma_2"] = 0.5 + r(dim).abs()
    return sd


def _official_pretrain_sd(layer_scale: bool = False) -> dict[str, torch.Tensor]:
    sd = {"encoder.patch_embed.proj.weight": 0.1 * torch.randn(D, 3, 2, 4, 4), "encoder.patch_embed.proj.bias": torch.zeros(D)}
    for i in range(DEPTH):
        sd.update(_official_block(f"encoder.blocks.{i}.", D, 4 * D, layer_scale))
    sd.update({"encoder.norm.weight": torch.ones(D), "encoder.norm.bias": torch.zeros(D),
               "encoder_to_decoder.weight": torch.randn(DEC, D), "mask_token": torch.randn(1, 1, DEC),
               "decoder.norm.weight": torch.ones(DEC), "decoder.norm.bias": torch.zeros(DEC),
               "decoder.head.weight": torch.randn(96, DEC), "decoder.head.bias": torch.zeros(96)})
    sd.update(_official_block("decoder.blocks.0.", DEC, 4 * DEC, layer_scale))
    return sd


def _official_finetune_sd(num_classes: int = 5) -> dict[str, torch.Tensor]:
    sd = {k.removeprefix("encoder."): v for k, v in _official_pretrain_sd().items() if k.startswith("encoder.")}
    del sd["norm.weight"], sd["norm.bias"]
    sd.update({"fc_norm.weight": torch.ones(D), "fc_norm.bias": torch.zeros(D),
               "head.weight": torch.randn(num_classes, D), "head.bias": torch.zeros(num_classes)})
    return sd


def test_official_pretraining_layout_loads_strictly_into_videomae(tiny_mae):
    for layer_scale in (False, True):
        model = tiny_mae(init_values=0.1 if layer_scale else 0.0)
        converted = convert_official(_official_pretrain_sd(layer_scale))
        model.load_state_dict(converted, strict=True)
        state = model.state_dict()
        assert state.keys() == converted.keys()
        assert all(torch.equal(state[key], value) for key, value in converted.items())
        qkv_bias = converted["encoder.blocks.1.attn.qkv.bias"]
        assert torch.count_nonzero(qkv_bias[D:2 * D]) == 0


def test_official_finetuned_layout_loads_strictly_into_videovit(tiny_vit):
    model = tiny_vit(num_classes=5)
    official = _official_finetune_sd()
    model.load_state_dict(convert_official({f"backbone.{k}": v for k, v in official.items()}), strict=True)
    assert torch.equal(model.head.weight, official["head.weight"])


def _reference_official_block(x: torch.Tensor, sd: dict[str, torch.Tensor], p: str, heads: int) -> torch.Tensor:
    """The official block by hand: q/v biases, zero k bias, explicit softmax attention, layer scale."""
    def ln(t, name):
        return F.layer_norm(t, t.shape[-1:], sd[f"{p}{name}.weight"], sd[f"{p}{name}.bias"], eps=1e-6)

    b, n, d = x.shape
    h = ln(x, "norm1")
    bias = torch.cat([sd[f"{p}attn.q_bias"], torch.zeros(d), sd[f"{p}attn.v_bias"]])
    q, k, v = (h @ sd[f"{p}attn.qkv.weight"].t() + bias).reshape(b, n, 3, heads, d // heads).permute(2, 0, 3, 1, 4)
    attn = ((q * (d // heads) ** -0.5) @ k.transpose(-2, -1)).softmax(dim=-1)
    out = (attn @ v).transpose(1, 2).reshape(b, n, d) @ sd[f"{p}attn.proj.weight"].t() + sd[f"{p}attn.proj.bias"]
    x = x + sd[f"{p}gamma_1"] * out
    h = F.gelu(ln(x, "norm2") @ sd[f"{p}mlp.fc1.weight"].t() + sd[f"{p}mlp.fc1.bias"])
    return x + sd[f"{p}gamma_2"] * (h @ sd[f"{p}mlp.fc2.weight"].t() + sd[f"{p}mlp.fc2.bias"])


def test_q_v_bias_and_layer_scale_match_reference_attention(tiny_mae):
    official = _official_pretrain_sd(layer_scale=True)
    model = tiny_mae(init_values=0.1).eval()
    model.load_state_dict(convert_official(official), strict=True)
    x = torch.randn(2, 7, D)
    expected = _reference_official_block(x, official, "encoder.blocks.0.", HEADS)
    assert torch.allclose(model.encoder.blocks[0](x), expected, atol=1e-5)


def test_official_checkpoint_file_with_args_namespace(tiny_vit, tmp_path):
    path = tmp_path / "checkpoint-799.pth"
    torch.save({"model": _official_pretrain_sd(), "epoch": 799, "args": argparse.Namespace(mask_ratio=0.9)}, path)
    model = tiny_vit(num_classes=4)
    log = load_encoder_weights(model, path)  # weights only: argparse.Namespace is on the allowlist
    assert "official VideoMAE checkpoint" in log[0] and not any("unpickled" in line for line in log)
    assert any("norm.bias" in line and "dropped" in line for line in log)
    assert any("fc_norm.weight" in line and "fresh" in line for line in log)


def _project_checkpoint(model: torch.nn.Module, cfg: PretrainConfig) -> dict:
    return {"model": model.state_dict(), "config": to_dict(cfg), "epoch": 3}


def test_project_pretrain_checkpoint_gives_the_encoder(tmp_path):
    cfg = PretrainConfig()
    mae = build_videomae(cfg.model)
    torch.save(_project_checkpoint(mae, cfg), tmp_path / "checkpoint.pt")
    encoder = build_encoder(cfg.model, num_classes=3)
    log = load_encoder_weights(encoder, tmp_path / "checkpoint.pt")
    assert "vmae checkpoint; loading its VideoMAE encoder" in log[0]
    for key, value in mae.encoder.state_dict().items():
        if not key.startswith("norm."):
            assert torch.equal(encoder.state_dict()[key], value), key


def test_project_moco_and_finetune_checkpoints(tmp_path):
    cfg = PretrainConfig(method="mocov3")
    moco = build_moco(cfg)
    encoder = build_encoder(cfg.model, num_classes=3)
    log = load_encoder_weights(encoder, _project_checkpoint(moco, cfg))
    assert "MoCo v3 base encoder" in log[0]
    assert torch.equal(encoder.fc_norm.weight, moco.base_encoder.fc_norm.weight)
    finetuned = build_encoder(cfg.model, num_classes=10)
    other_head = build_encoder(cfg.model, num_classes=3)
    log = load_encoder_weights(other_head, {"model": finetuned.state_dict(), "config": to_dict(cfg)})
    assert any("head.weight" in line and "dropped" in line for line in log)
    same_head = build_encoder(cfg.model, num_classes=10)
    load_encoder_weights(same_head, {"model": finetuned.state_dict(), "config": to_dict(cfg)})
    assert torch.equal(same_head.head.weight, finetuned.head.weight)


def test_other_grid_is_logged_and_runs():
    cfg = PretrainConfig()
    mae = build_videomae(cfg.model)
    cfg_big = PretrainConfig()
    cfg_big.model.num_frames = 32
    encoder = build_encoder(cfg_big.model, num_classes=2)
    log = load_encoder_weights(encoder, _project_checkpoint(mae, cfg))
    assert any("(4, 8, 8) -> (8, 8, 8)" in line for line in log)
    assert encoder(torch.randn(1, 3, 32, 32, 32)).shape == (1, 2)


def test_learned_position_table_is_interpolated(tiny_vit):
    official = _official_finetune_sd()
    official["pos_embed"] = torch.randn(1, 2 * 4 * 4, D)
    model = tiny_vit(num_frames=8, img_size=32, num_classes=5)
    log = load_encoder_weights(model, {"module": official})
    assert any("interpolated (trilinear) from grid (2, 4, 4) to (4, 8, 8)" in line for line in log)
    assert model.pos_embed.shape == (1, 256, D) and "pos_embed" in model.state_dict()


def test_mismatched_model_is_an_error_naming_keys(tiny_vit):
    model = tiny_vit(depth=1, num_classes=5)
    with pytest.raises(ValueError, match="blocks.1"):
        load_encoder_weights(model, {"model": _official_finetune_sd()})
    with pytest.raises(FileNotFoundError, match="nowhere.pt"):
        load_encoder_weights(model, "nowhere.pt")


class RunsCode:
    """Unpickling this runs ``touch <marker>`` (what a malicious checkpoint does)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


class TrainingState:
    """A class of the training code that wrote a checkpoint (harmless, but not on the allowlist)."""

    def __init__(self, epoch: int):
        self.epoch = epoch


def _evil_checkpoint(tmp_path: Path) -> tuple[Path, Path]:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"model": _official_pretrain_sd(), "args": RunsCode(marker)}, path)
    return path, marker


def test_malicious_checkpoint_runs_nothing_and_names_the_flag(tiny_vit, tmp_path):
    path, marker = _evil_checkpoint(tmp_path)
    with pytest.raises(UntrustedCheckpointError) as err:
        load_encoder_weights(tiny_vit(num_classes=4), path)
    assert not marker.exists()
    message = str(err.value)
    assert message.startswith(f"{path}: not loadable as weights only (it needs posix.system)")
    assert "--trust-checkpoint" in message and "\n" not in message


def test_finetune_init_with_a_malicious_checkpoint_runs_nothing(tmp_path, tiny_dataset, capsys):
    path, marker = _evil_checkpoint(tmp_path)
    args = ["--data", str(tiny_dataset), "--out", str(tmp_path / "run"), "--init", str(path), "data.num_workers=0"]
    for command in ("finetune", "linprobe"):
        assert vmae([command, *args]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"vmae {command}: error: {path}: not loadable as weights only")
        assert "pass --trust-checkpoint" in err[0]
    assert vmae(["reconstruct", "--init", str(path), "--data", str(tiny_dataset), "--out", str(tmp_path / "r.png")]) == 2
    assert "--trust-checkpoint" in capsys.readouterr().err
    assert not marker.exists() and not (tmp_path / "r.png").exists()


def test_trust_checkpoint_unpickles_a_file_the_user_trusts(tiny_vit, tmp_path):
    path = tmp_path / "checkpoint-799.pth"
    torch.save({"model": _official_pretrain_sd(), "state": TrainingState(799)}, path)
    with pytest.raises(UntrustedCheckpointError, match=r"it needs test_checkpoints\.TrainingState"):
        load_encoder_weights(tiny_vit(num_classes=4), path)
    log = load_encoder_weights(tiny_vit(num_classes=4), path, trust=True)
    assert log[1] == f"{path}: unpickled in full (--trust-checkpoint)" and "loaded" in " ".join(log)


def test_numpy_scalars_load_as_weights_only_and_garbage_is_one_line(tmp_path):
    path = tmp_path / "np.pth"
    torch.save({"model": _official_pretrain_sd(), "epoch": np.int64(3), "max_accuracy": np.float64(81.5)}, path)
    state = load_torch_file(path)
    assert state["epoch"] == 3 and state["max_accuracy"] == 81.5
    (tmp_path / "junk.pth").write_bytes(b"<html>not found</html>")
    with pytest.raises(UntrustedCheckpointError, match=r"junk\.pth: not loadable as weights only") as err:
        load_torch_file(tmp_path / "junk.pth")
    assert "\n" not in str(err.value)
