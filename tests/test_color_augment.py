"""MoCo v3's appearance augmentations (vmae.data.color_augment) and the views moco_step trains on."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from vmae.config import PretrainConfig
from vmae.data.color_augment import ViewAugment, adjust_hue, gaussian_blur, grayscale
from vmae.methods.mocov3 import MocoConfig, moco_views
from vmae.train.distributed import DistEnv
from vmae.train.step import Micro

OFF = MocoConfig(jitter_p=0.0, grayscale_p=0.0, blur_p=(0.0, 0.0), solarize_p=(0.0, 0.0))


def clips(batch: int = 6, seed: int = 0) -> torch.Tensor:
    """Smooth random colour clips (B, 3, 4, 16, 16) in [0, 1], each with its own colours."""
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(batch, 3, 1, 4, 4, generator=g)
    return torch.nn.functional.interpolate(base, size=(4, 16, 16), mode="trilinear").clamp(0, 1)


def test_every_augmentation_off_leaves_the_clips_unchanged():
    x = clips()
    torch.testing.assert_close(ViewAugment(OFF)(x, 0, torch.Generator().manual_seed(1)), x)


def test_grayscale_has_equal_channels_and_keeps_luma():
    x = clips()
    g = grayscale(x)
    assert torch.equal(g[:, 0], g[:, 1]) and torch.equal(g[:, 1], g[:, 2])
    torch.testing.assert_close(g[:, 0], 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2])


def test_hue_rotation_keeps_luma_and_a_full_turn_is_the_identity():
    x = clips()
    half = adjust_hue(x, torch.full((6,), 0.5))
    torch.testing.assert_close(grayscale(half), grayscale(x), atol=1e-5, rtol=0)
    assert (half - x).abs().max() > 0.05  # the colours did move
    torch.testing.assert_close(adjust_hue(x, torch.ones(6)), x, atol=1e-5, rtol=0)


def test_blur_keeps_the_mean_of_a_constant_and_smooths_an_edge_per_clip():
    flat = torch.full((2, 3, 2, 8, 8), 0.3)
    torch.testing.assert_close(gaussian_blur(flat, torch.tensor([0.5, 2.0])), flat)
    edge = torch.zeros(2, 3, 2, 8, 8)
    edge[..., 4:] = 1.0
    out = gaussian_blur(edge, torch.tensor([0.1, 1.5]))
    assert out[0, 0, 0, 0, 3] < 1e-3 and 0.1 < out[1, 0, 0, 0, 3] < 0.5  # only the second clip smeared


def test_each_clip_gets_its_own_colour_the_same_in_every_frame():
    cfg = dataclasses.replace(OFF, jitter_p=1.0)
    x = clips(batch=8).clone()
    x[:, :, 1:] = x[:, :, :1]  # every frame of a clip equal
    out = ViewAugment(cfg)(x, 0, torch.Generator().manual_seed(3))
    assert torch.allclose(out[:, :, 1:], out[:, :, :1].expand_as(out[:, :, 1:]), atol=1e-6)  # no flicker
    change = (out - x).abs().mean(dim=(1, 2, 3, 4))
    assert change.min() > 0 and change.std() > 0  # every clip changed, by different amounts


def test_solarisation_only_on_the_second_view_by_default():
    cfg = dataclasses.replace(MocoConfig(), jitter_p=0.0, grayscale_p=0.0, blur_p=(0.0, 0.0), solarize_p=(0.0, 1.0))
    x = clips()
    torch.testing.assert_close(ViewAugment(cfg)(x, 0, torch.Generator().manual_seed(0)), x)
    second = ViewAugment(cfg)(x, 1, torch.Generator().manual_seed(0))
    torch.testing.assert_close(second, torch.where(x >= 0.5, 1 - x, x))


def test_moco_views_differ_in_colour_are_reproducible_and_normalised():
    cfg = PretrainConfig(method="mocov3", seed=4)
    batch = (clips(batch=4) * 255).round().to(torch.uint8).view(2, 2, 3, 4, 16, 16)  # 2 videos x 2 views
    a = moco_views(batch, cfg, DistEnv(), step_index=7, micro=Micro())
    b = moco_views(batch, cfg, DistEnv(), step_index=7, micro=Micro())
    torch.testing.assert_close(a, b)  # seeded by (seed, step, rank, micro-step)
    plain_moco = dataclasses.replace(cfg.moco, augment=False)
    plain = moco_views(batch, dataclasses.replace(cfg, sections={**cfg.sections, "moco": plain_moco}),
                       DistEnv(), step_index=7, micro=Micro())
    assert a.shape == plain.shape == (2, 2, 3, 4, 16, 16) and (a - plain).abs().mean() > 0.05
    other_step = moco_views(batch, cfg, DistEnv(), step_index=8, micro=Micro())
    assert not torch.allclose(a, other_step)


def test_bad_augmentation_settings_are_refused():
    from vmae.config import ConfigError, build_config

    with pytest.raises(ConfigError, match=r"moco.blur_sigma"):
        build_config(PretrainConfig, overrides=["moco.blur_sigma=[2.0,0.5]"])
    with pytest.raises(ConfigError, match=r"moco.jitter_p=1.5"):
        build_config(PretrainConfig, overrides=["moco.jitter_p=1.5"])
