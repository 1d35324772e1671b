"""VideoMAE V2's dual masking (vmae/methods/videomaev2.py): the running-cell decoder mask, a loss that
is VideoMAE's when the decoder decodes what the encoder masked, fewer FLOPs, and a pretraining run
whose encoder fine-tunes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from vmae.cli import main as vmae
from vmae.config import PretrainConfig, build_config
from vmae.methods import get
from vmae.methods.videomae import videomae_clip_flops
from vmae.methods.videomaev2 import dual_loss, running_cell_mask
from vmae.models.masking import make_mask, split_mask


def test_the_running_cell_leaves_half_of_every_2x2_cell_out_and_moves_one_place_a_slot():
    mask = running_cell_mask(3, (4, 4, 6), 0.5, torch.Generator().manual_seed(0)).view(3, 4, 4, 6)
    assert mask.sum(dim=(2, 3)).eq(12).all()  # half of the 24 positions of every slot, every clip
    cells = mask.view(3, 4, 2, 2, 3, 2).permute(0, 1, 2, 4, 3, 5).reshape(3, 4, 6, 4)  # (clip, slot, cell, 4)
    assert (cells == cells[:, :, :1]).all()  # the same pattern in every cell of a slot
    pattern = cells[:, :, 0].int()  # (clip, slot, position in the cell)
    assert pattern.sum(dim=2).eq(2).all()
    assert torch.equal(pattern[:, 1:], pattern[:, :-1].roll(-1, dims=2))  # one place further each slot
    assert pattern[:, :, 0].sum(dim=1).eq(2).all()  # each position decoded in 2 of 4 consecutive slots
    quarter = running_cell_mask(1, (2, 2, 2), 0.25, torch.Generator().manual_seed(0))
    assert quarter.view(2, 4).sum(dim=1).tolist() == [1, 1]


def test_decoding_exactly_the_encoders_masked_tubelets_is_videomaes_loss(tiny_mae):
    torch.manual_seed(0)
    mae, video = tiny_mae(), torch.randn(2, 3, 4, 16, 16)
    visible, masked = split_mask(make_mask("tube", 2, mae.grid, 0.75, torch.Generator().manual_seed(1)))
    torch.testing.assert_close(dual_loss(mae, video, visible, masked, True), mae.loss(video, visible, masked, True))
    decoded = split_mask(running_cell_mask(2, mae.grid, 0.5, torch.Generator().manual_seed(2)))[0]  # 16 of 32
    loss = dual_loss(mae, video, visible, decoded, True)
    loss.backward()
    assert loss.ndim == 0 and loss > 0 and mae.mask_token.grad.abs().sum() > 0


def test_a_clip_costs_fewer_flops_than_videomaes_and_the_config_is_checked():
    model = ["model.size=vit_nano", "model.img_size=24", "model.patch_size=4", "model.num_frames=16",
             "model.tubelet_size=2"]
    cfg = build_config(PretrainConfig, overrides=[*model, "method=videomaev2"])
    ratio = get("videomaev2").train_flops(cfg, 1) / videomae_clip_flops(cfg)
    assert 0.55 < ratio < 0.65  # config.yaml's model: 582 steps match VideoMAE's 350 in FLOPs
    assert cfg.dual.decoder_mask_ratio == 0.5
    with pytest.raises(Exception, match=r"dual.decoder_mask_ratio=0.1: expected in \[0.25, 1\)"):
        build_config(PretrainConfig, overrides=["method=videomaev2", "dual.decoder_mask_ratio=0.1"])
    with pytest.raises(Exception, match=r"model.img_size=20: expected an even number of patches a side"):
        build_config(PretrainConfig, overrides=["method=videomaev2", "model.img_size=20", "model.patch_size=4"])


def test_pretrain_writes_its_pretext_skill_and_its_encoder_fine_tunes(tiny_dataset: Path, tmp_path: Path,
                                                                      tiny_run_args: list[str]):
    out = tmp_path / "v2"
    assert vmae(["pretrain", "--data", str(tiny_dataset), "--out", str(out), "--method", "videomaev2",
                 "mask_ratio=0.75", *tiny_run_args]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["method"] == "videomaev2" and metrics["config"]["dual"] == {"decoder_mask_ratio": 0.5}
    assert metrics["pretext"]["clips"] == 10 and metrics["pretext"]["trivial_loss"] > 0
    cfg = build_config(PretrainConfig, overrides=["method=videomaev2", "mask_ratio=0.75", "model.num_frames=8"])
    assert metrics["train_flops"] == pytest.approx(get("videomaev2").train_flops(cfg, metrics["clips"]))
    assert vmae(["finetune", "--data", str(tiny_dataset), "--out", str(tmp_path / "ft"), "--init",
                 str(out / "checkpoint.pt"), *tiny_run_args]) == 0
    log = (tmp_path / "ft" / "metrics.json").read_text()
    assert json.loads(log)["top1"] >= 0
