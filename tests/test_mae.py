"""VideoMAE: patch layout, normalised targets, visible-only encoding, output order, overfitting."""

from __future__ import annotations

import pytest
import torch

from vmae.config import ModelConfig
from vmae.models import build_encoder, build_videomae
from vmae.models.mae import patchify, unpatchify
from vmae.models.masking import make_mask, split_mask

P, TUB = 4, 2  # patch, tubelet


def _mask(batch: int, ratio: float = 0.75, seed: int = 0, kind: str = "tube") -> torch.Tensor:
    return make_mask(kind, batch, (2, 4, 4), ratio, torch.Generator().manual_seed(seed))


def test_patchify_layout_and_unpatchify_round_trip():
    video = torch.randn(2, 3, 4, 16, 16)
    patches = patchify(video, P, TUB)
    assert patches.shape == (2, 32, TUB * P * P * 3)
    # token (t'=1, h'=2, w'=3) -> index 1*16 + 2*4 + 3; vector entry (dt=1, dy=2, dx=0, c=2)
    entry = ((1 * P + 2) * P + 0) * 3 + 2
    assert patches[1, 16 + 8 + 3, entry] == video[1, 2, 1 * TUB + 1, 2 * P + 2, 3 * P + 0]
    assert torch.equal(unpatchify(patches, (2, 4, 4), P, TUB), video)


def test_normalised_target_matches_hand_computation(tiny_mae):
    model = tiny_mae()
    video = torch.randn(1, 3, 4, 16, 16)
    mask = torch.zeros(1, 32, dtype=torch.bool)
    mask[0, [5, 20]] = True
    target = model.targets(video, split_mask(mask)[1])
    assert target.shape == (1, 2, 96)
    # token 20 = (t'=1, h'=1, w'=0): frames 2..3, rows 4..7, cols 0..3
    cube = video[0, :, 2:4, 4:8, 0:4].reshape(3, -1)  # (C, t*p*p)
    mean, std = cube.mean(dim=1, keepdim=True), cube.std(dim=1, unbiased=True, keepdim=True)
    hand = ((cube - mean) / (std + 1e-6)).t()  # (t*p*p, C), vectors laid out (t, p, p, C)
    by_pixel = target[0, 1].view(TUB, P, P, 3).permute(3, 0, 1, 2).reshape(3, -1).t()
    assert torch.allclose(by_pixel, hand, atol=1e-5)
    raw = model.targets(video, split_mask(mask)[1], norm_pix=False)
    assert torch.equal(raw[0, 0], patchify(video, P, TUB)[0, 5])


@pytest.mark.parametrize("kind", ["tube", "random", "frame"])
@pytest.mark.parametrize("norm_pix", [True, False])
def test_targets_equal_normalising_every_tubelet_then_gathering(tiny_mae, kind, norm_pix):
    video = torch.randn(3, 3, 4, 16, 16) * 2 + 0.5
    masked = split_mask(_mask(3, kind=kind, seed=2))[1]
    patches = patchify(video, P, TUB)  # the previous formula: all N tubelets, then the masked rows
    if norm_pix:
        pixels = patches.reshape(3, 32, -1, 3)
        mean = pixels.mean(dim=-2, keepdim=True)
        scale = pixels.var(dim=-2, unbiased=True, keepdim=True).sqrt() + 1e-6
        patches = ((pixels - mean) / scale).flatten(2)
    reference = patches.gather(1, masked[..., None].expand(-1, -1, patches.shape[-1]))
    assert torch.equal(tiny_mae().targets(video, masked, norm_pix), reference)


def test_predictions_ignore_masked_pixels(tiny_mae):
    model = tiny_mae().eval()
    video, mask = torch.randn(2, 3, 4, 16, 16), _mask(2)
    pred = model(video, mask)
    assert pred.shape == (2, 24, 96)
    pixel_mask = unpatchify(mask[..., None].float().expand(-1, -1, 96), (2, 4, 4), P, TUB).bool()
    changed = torch.where(pixel_mask, torch.randn_like(video) * 5, video)
    assert torch.allclose(model(changed, mask), pred, atol=1e-6)
    visible_changed = torch.where(pixel_mask, video, video + 1.0)
    assert not torch.allclose(model(visible_changed, mask), pred, atol=1e-3)


def test_output_rows_follow_positional_order_of_masked_tokens(tiny_mae):
    model = tiny_mae().eval()
    video, mask = torch.randn(2, 3, 4, 16, 16), _mask(2, kind="random", seed=3)
    pred = model(video, mask)
    # Reference: the decoder over all 32 tokens in positional order (attention is permutation
    # equivariant), then the masked rows taken in that order by boolean indexing.
    with torch.no_grad():
        visible = model.encoder_to_decoder(model.encoder.forward_features(video, (~mask).nonzero()[:, 1].view(2, -1)))
        full = model.mask_token.expand(2, 32, -1).clone()
        full[~mask] = visible.reshape(-1, 16)
        x = full + model.decoder_pos_embed
        for block in model.decoder.blocks:
            x = block(x)
        reference = model.decoder.head(model.decoder.norm(x))[mask].view(2, 24, 96)
    assert torch.allclose(pred, reference, atol=1e-5)


def test_reconstruct_inverts_normalised_targets(tiny_mae):
    model = tiny_mae()
    video, mask = torch.randn(2, 3, 4, 16, 16), _mask(2)
    perfect = model.targets(video, split_mask(mask)[1])
    assert torch.allclose(model.reconstruct(perfect, video, mask), video, atol=1e-4)
    zeros = model.reconstruct(torch.zeros_like(perfect), video, mask)
    assert torch.equal(patchify(zeros, P, TUB)[~mask], patchify(video, P, TUB)[~mask])


def test_tiny_batch_overfits(tiny_mae):
    torch.manual_seed(0)
    model = tiny_mae(decoder_embed_dim=32, decoder_depth=2)
    video, mask = torch.randn(2, 3, 4, 16, 16), _mask(2, ratio=0.5)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(50):
        loss = model.loss(video, *split_mask(mask))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]  # stated factor: below half in 50 steps (measured: 1.53 -> 0.40)


def test_encoder_state_dict_loads_into_videovit_except_head_and_norms():
    cfg = ModelConfig()
    mae = build_videomae(cfg)
    assert (mae.decoder.head.out_features, mae.encoder_to_decoder.bias) == (192, None)
    assert mae.mask_token.shape == (1, 1, 64) and 0.005 < mae.mask_token.std() < 0.04
    keys = mae.state_dict().keys()
    assert "decoder_pos_embed" not in keys and "decoder.norm.weight" in keys and "encoder.norm.weight" in keys
    encoder = build_encoder(cfg, num_classes=5)
    result = encoder.load_state_dict(mae.encoder.state_dict(), strict=False)
    assert sorted(result.missing_keys) == ["fc_norm.bias", "fc_norm.weight", "head.bias", "head.weight"]
    assert sorted(result.unexpected_keys) == ["norm.bias", "norm.weight"]
    assert torch.equal(encoder.blocks[3].attn.qkv.weight, mae.encoder.blocks[3].attn.qkv.weight)


@pytest.mark.parametrize("norm_pix", [True, False])
def test_loss_is_mse_over_masked_targets(tiny_mae, norm_pix):
    model = tiny_mae().eval()
    video, (visible, masked) = torch.randn(1, 3, 4, 16, 16), split_mask(_mask(1))
    squared = (model.forward_indices(video, visible, masked) - model.targets(video, masked, norm_pix)) ** 2
    assert squared.shape == (1, 24, 96)  # 24 of 32 tubelets masked, 2*4*4*3 values each
    assert model.loss(video, visible, masked, norm_pix).item() == pytest.approx(squared.mean().item(), rel=1e-6)
