"""VideoViT: sin-cos table, shapes, SDPA attention, visible-token gathering, layer ids, sizes."""

from __future__ import annotations

import math

import pytest
import torch

from vmae.config import ModelConfig
from vmae.models import build_encoder
from vmae.models.masking import make_mask, split_mask
from vmae.models.pos_embed import resize_grid_table, sincos_table
from vmae.models.vit import MODEL_SIZES, VideoViT, gather_tubelets, layer_id


def test_sincos_table_matches_hand_computation():
    table = sincos_table(5, 6)
    assert table.shape == (5, 6) and table.dtype == torch.float32
    pos, i = 3, 4  # even channel -> sin(3 / 10000 ** (4 / 6))
    assert table[pos, i].item() == pytest.approx(math.sin(3 / 10000 ** (4 / 6)), abs=1e-7)
    pos, i = 2, 3  # odd channel -> cos(2 / 10000 ** (2 / 6))
    assert table[pos, i].item() == pytest.approx(math.cos(2 / 10000 ** (2 / 6)), abs=1e-7)
    assert table[0].tolist() == [0.0, 1.0] * 3


def test_resize_grid_table_keeps_constant_and_shape():
    table = torch.full((1, 2 * 3 * 3, 4), 0.5)
    out = resize_grid_table(table, (2, 3, 3), (4, 6, 6))
    assert out.shape == (1, 144, 4) and torch.allclose(out, torch.full_like(out, 0.5))
    ramp = torch.arange(2.0).repeat_interleave(9)[None, :, None]  # varies over time only
    same = resize_grid_table(ramp, (2, 3, 3), (2, 3, 3))
    assert torch.allclose(same, ramp)


def test_shapes_grid_and_position_buffer_not_in_state_dict(tiny_vit):
    model = tiny_vit(num_classes=5)
    x = torch.randn(2, 3, 4, 16, 16)
    assert model.grid == (2, 4, 4) and model.num_tokens == 32
    assert model.forward_features(x).shape == (2, 32, 32)
    assert model(x).shape == (2, 5)
    assert model.forward_head(model.forward_features(x), pre_logits=True).shape == (2, 32)
    assert "pos_embed" not in model.state_dict()
    assert torch.equal(model.pos_embed[0], sincos_table(32, 32))


def test_other_frame_count_and_resolution_work(tiny_vit):
    model = tiny_vit(num_classes=3)
    assert model(torch.randn(1, 3, 8, 24, 24)).shape == (1, 3)  # 4 x 6 x 6 = 144 tokens > 32


def test_attention_uses_sdpa(tiny_vit):
    model = tiny_vit()
    assert all(block.attn.fused_attn for block in model.blocks)
    calls = []
    original = torch.nn.functional.scaled_dot_product_attention

    def spy(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    torch.nn.functional.scaled_dot_product_attention = spy
    try:
        model(torch.randn(1, 3, 4, 16, 16))
    finally:
        torch.nn.functional.scaled_dot_product_attention = original
    assert len(calls) == 2


def test_visible_idx_runs_blocks_on_gathered_tokens_only(tiny_vit):
    model = tiny_vit().eval()
    x = torch.randn(2, 3, 4, 16, 16)
    visible = torch.tensor([[0, 5, 9], [1, 2, 31]])
    out = model.forward_features(x, visible)
    assert out.shape == (2, 3, 32)
    tokens = model.patch_embed(x) + model.pos_embed
    expected = torch.stack([tokens[b, visible[b]] for b in range(2)])
    for block in model.blocks:
        expected = block(expected)
    assert torch.allclose(out, expected, atol=1e-6)


def test_gather_tubelets_reads_the_indexed_cubes():
    video = torch.randn(2, 3, 4, 16, 16)
    index = torch.tensor([[0, 27], [31, 6]])
    cubes = gather_tubelets(video, index, 4, 2)
    assert cubes.shape == (2, 2, 3, 2, 4, 4)
    # token 27 = (t'=1, h'=2, w'=3): frames 2..3, rows 8..11, cols 12..15; token 6 = (0, 1, 2)
    assert torch.equal(cubes[0, 1], video[0, :, 2:4, 8:12, 12:16])
    assert torch.equal(cubes[1, 1], video[1, :, 0:2, 4:8, 8:12])
    assert torch.equal(cubes[1, 0], video[1, :, 2:4, 12:16, 12:16])


def _conv_then_gather(model: VideoViT, x: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
    """The reference visible-token path: Conv3d over every tubelet, positions, then the visible rows."""
    tokens = model.patch_embed(x)
    tokens = tokens + sincos_table(tokens.shape[1], tokens.shape[2])[None]
    return tokens.gather(1, visible[..., None].expand(-1, -1, tokens.shape[-1]))


@pytest.mark.parametrize("kind", ["tube", "random", "frame"])
def test_visible_path_equals_conv_over_all_tokens_then_gather(tiny_vit, kind):
    torch.manual_seed(0)
    model = tiny_vit(num_frames=8).eval()
    torch.nn.init.normal_(model.patch_embed.proj.bias)  # a non-zero bias is exercised too
    x = torch.randn(3, 3, 8, 16, 16)
    mask = make_mask(kind, 3, model.grid, 0.75, torch.Generator().manual_seed(1))
    visible = split_mask(mask)[0]
    embedded = model.patch_embed.forward_at(x, visible) + model.pos_embed[0][visible]
    reference = _conv_then_gather(model, x, visible)
    assert embedded.shape == (3, visible.shape[1], 32)
    assert torch.allclose(embedded, reference, rtol=1e-5, atol=1e-6)

    proj = model.patch_embed.proj
    out = model.forward_features(x, visible)
    grads = torch.autograd.grad(out.square().sum(), [proj.weight, proj.bias])
    expected = reference
    for block in model.blocks:
        expected = block(expected)
    expected = model.norm(expected)
    ref_grads = torch.autograd.grad(expected.square().sum(), [proj.weight, proj.bias])
    assert torch.allclose(out, expected, rtol=1e-5, atol=1e-6)
    for grad, ref_grad in zip(grads, ref_grads):
        scale = ref_grad.abs().max().item()  # fp32 sums over all tokens: tolerance relative to the largest entry
        assert scale > 0 and torch.allclose(grad, ref_grad, rtol=1e-5, atol=1e-6 * scale)


def test_visible_path_drops_remainder_like_the_conv(tiny_vit):
    model = tiny_vit()
    x = torch.randn(1, 3, 5, 18, 17)  # one frame, two rows and one column fill no tubelet: grid (2, 4, 4)
    visible = torch.tensor([[3, 17, 30]])
    assert torch.allclose(model.patch_embed.forward_at(x, visible), _conv_then_gather(model, x, visible)
                          - sincos_table(32, 32)[visible], rtol=1e-5, atol=1e-6)


def test_visible_path_leaves_state_dict_unchanged(tiny_vit):
    model = tiny_vit()
    assert isinstance(model.patch_embed.proj, torch.nn.Conv3d)
    assert [k for k in model.state_dict() if k.startswith("patch_embed")] == [
        "patch_embed.proj.weight", "patch_embed.proj.bias"]


def test_mean_pooling_vs_mae_encoder_norms(tiny_vit):
    pooled, mae_encoder = tiny_vit(num_classes=4), tiny_vit(use_mean_pooling=False)
    assert isinstance(pooled.norm, torch.nn.Identity) and isinstance(pooled.fc_norm, torch.nn.LayerNorm)
    assert isinstance(mae_encoder.fc_norm, torch.nn.Identity) and mae_encoder.norm.eps == 1e-6
    assert isinstance(mae_encoder.head, torch.nn.Identity)


def test_layer_scale_and_drop_path_options(tiny_vit):
    model = tiny_vit(init_values=0.1, drop_path_rate=0.2)
    assert torch.allclose(model.blocks[0].ls1.gamma, torch.full((32,), 0.1))
    assert model.blocks[1].drop_path1.drop_prob == pytest.approx(0.2)
    assert "blocks.0.ls1.gamma" not in tiny_vit().state_dict()


def test_init_is_xavier_with_zero_biases(tiny_vit):
    model = tiny_vit()
    fc1 = model.blocks[0].mlp.fc1
    bound = math.sqrt(6 / (fc1.in_features + fc1.out_features))
    assert fc1.weight.abs().max() <= bound and fc1.weight.std() > bound / 3
    assert torch.count_nonzero(fc1.bias) == 0


def test_layer_id():
    assert layer_id("patch_embed.proj.weight", 12) == 0
    assert layer_id("blocks.0.attn.qkv.weight", 12) == 1
    assert layer_id("blocks.11.mlp.fc2.bias", 12) == 12
    assert layer_id("encoder.blocks.3.norm1.weight", 12) == 4
    assert layer_id("fc_norm.weight", 12) == 13
    assert layer_id("head.bias", 12) == 13


def test_model_sizes_and_build_encoder():
    assert MODEL_SIZES["vit_micro"] == dict(embed_dim=128, depth=4, num_heads=4)
    assert MODEL_SIZES["vit_base"] == dict(embed_dim=768, depth=12, num_heads=12)
    model = build_encoder(ModelConfig(), num_classes=7)
    assert (model.embed_dim, model.depth, model.grid) == (128, 4, (4, 8, 8))
    assert model.head.out_features == 7
