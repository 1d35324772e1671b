"""MoCo v3: momentum schedule and update, loss value, symmetry, gradients only to the base."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from vmae.config import PretrainConfig
from vmae.methods.mocov3 import build_moco
from vmae.models.moco import MoCoV3, cosine_momentum
from vmae.models.vit import VideoViT


@pytest.fixture()
def tiny_moco(tiny_vit) -> MoCoV3:
    return MoCoV3(tiny_vit(depth=1), proj_dim=8, hidden_dim=16, temperature=0.2)


def test_cosine_momentum():
    assert cosine_momentum(0, 100, 0.99) == pytest.approx(0.99)
    assert cosine_momentum(50, 100, 0.99) == pytest.approx(0.995)
    assert cosine_momentum(100, 100, 0.99) == pytest.approx(1.0)


def test_forward_updates_momentum_weights_first(tiny_moco):
    model = tiny_moco
    with torch.no_grad():
        for p in [*model.momentum_encoder.parameters(), *model.momentum_projector.parameters()]:
            p.zero_()
    base = [p.detach().clone() for p in [*model.base_encoder.parameters(), *model.projector.parameters()]]
    views = torch.randn(2, 4, 3, 4, 16, 16)
    model(views[0], views[1], momentum=0.9)
    momentum = [*model.momentum_encoder.parameters(), *model.momentum_projector.parameters()]
    assert len(momentum) == len(base)
    for m, b in zip(momentum, base):
        assert torch.allclose(m, 0.1 * b, atol=1e-7)
        assert not m.requires_grad


def test_contrastive_loss_value_is_scaled_infonce(tiny_moco):
    model = tiny_moco
    q = torch.eye(3)
    expected = -math.log(math.exp(5) / (math.exp(5) + 2)) * 0.4  # logits 1/T on the diagonal, x 2T
    assert model.contrastive_loss(q, q.clone()).item() == pytest.approx(expected, rel=1e-5)


def test_loss_is_symmetric_in_the_views(tiny_moco):
    model = tiny_moco
    views = torch.randn(2, 4, 3, 4, 16, 16)
    a = copy.deepcopy(model)(views[0], views[1], momentum=0.99)
    b = copy.deepcopy(model)(views[1], views[0], momentum=0.99)
    assert a.item() == pytest.approx(b.item(), rel=1e-5)
    assert a.item() > 0


def test_gradients_reach_base_encoder_and_heads_only(tiny_moco):
    model = tiny_moco
    views = torch.randn(2, 4, 3, 4, 16, 16)
    model(views[0], views[1], momentum=0.99).backward()
    assert model.base_encoder.blocks[0].attn.qkv.weight.grad.abs().sum() > 0
    assert model.predictor[0].weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.momentum_encoder.parameters())


def test_build_moco_from_config():
    cfg = PretrainConfig(method="mocov3")
    model = build_moco(cfg)
    assert isinstance(model.base_encoder, VideoViT) and model.temperature == 0.2
    assert model.projector[0].in_features == 128 and model.projector[-1].num_features == 256
    assert not model.projector[-1].affine and not model.predictor[-1].affine
    assert model.predictor[0].out_features == cfg.moco.hidden_dim
