"""Hugging Face transformers VideoMAE <-> this project: same outputs to 1e-5 (fp32, CPU).

transformers uses LayerNorm eps 1e-5 for ``fc_norm`` / ``decoder.norm`` where the official code
(and this project) use 1e-6; the tests align those two eps values so equality is exact up to float
rounding (with stock eps the outputs still agree to about 1e-5).
"""

from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers")

from vmae.models.checkpoints import load_encoder_weights  # noqa: E402
from vmae.models.interop import convert_hf, export_hf, save_hf  # noqa: E402
from vmae.models.masking import make_mask  # noqa: E402

HF_TINY = dict(image_size=16, patch_size=4, num_frames=4, tubelet_size=2, hidden_size=32, num_hidden_layers=2,
               num_attention_heads=2, intermediate_size=128, layer_norm_eps=1e-6,
               decoder_hidden_size=16, decoder_num_hidden_layers=1, decoder_num_attention_heads=2,
               decoder_intermediate_size=64)
ATOL = 1e-5


def _hf(cls_name: str, **kw):
    config = transformers.VideoMAEConfig(**{**HF_TINY, **kw})
    model = getattr(transformers, cls_name)(config).eval()
    for name in ("fc_norm", "decoder"):
        module = getattr(model, name, None)
        norm = module if name == "fc_norm" else getattr(module, "norm", None)
        if norm is not None:
            norm.eps = 1e-6
    with torch.no_grad():  # perturb every weight (HF zero-initialises biases, q/v biases included)
        for param in model.parameters():
            param.add_(0.1 * torch.randn_like(param))
    return model


def _video() -> torch.Tensor:
    return torch.randn(2, 3, 4, 16, 16)


def _hf_input(video: torch.Tensor) -> torch.Tensor:
    return video.permute(0, 2, 1, 3, 4)  # HF takes (B, T, C, H, W)


def _mask() -> torch.Tensor:
    return make_mask("tube", 2, (2, 4, 4), 0.75, torch.Generator().manual_seed(0))


@torch.no_grad()
def test_encoder_features_match_videomae_model(tiny_vit):
    hf = _hf("VideoMAEModel", use_mean_pooling=False)  # the pretraining encoder, with its final norm
    ours = tiny_vit(use_mean_pooling=False).eval()
    ours.load_state_dict(convert_hf(hf.state_dict()), strict=True)
    video = _video()
    expected = hf(_hf_input(video)).last_hidden_state
    assert torch.allclose(ours.forward_features(video), expected, atol=ATOL)


@torch.no_grad()
def test_classification_logits_match_and_export_round_trips(tiny_vit, tmp_path):
    hf = _hf("VideoMAEForVideoClassification", num_labels=5)
    ours = tiny_vit(num_classes=5).eval()
    ours.load_state_dict(convert_hf(hf.state_dict()), strict=True)
    video = _video()
    logits = hf(_hf_input(video)).logits
    assert logits.abs().max() > 0.1
    assert torch.allclose(ours(video), logits, atol=ATOL)
    save_hf(ours, tmp_path / "hf")
    reloaded = transformers.VideoMAEForVideoClassification.from_pretrained(tmp_path / "hf").eval()
    reloaded.fc_norm.eps = 1e-6
    assert torch.allclose(reloaded(_hf_input(video)).logits, logits, atol=ATOL)
    again = tiny_vit(num_classes=5).eval()
    log = load_encoder_weights(again, tmp_path / "hf")
    assert "Hugging Face VideoMAE weights" in log[0]
    assert torch.allclose(again(video), logits, atol=ATOL)


@torch.no_grad()
def test_pretraining_predictions_match_for_the_same_mask(tiny_mae, tiny_vit, tmp_path):
    hf = _hf("VideoMAEForPreTraining", use_mean_pooling=False)
    ours = tiny_mae().eval()
    ours.load_state_dict(convert_hf(hf.state_dict()), strict=True)
    video, mask = _video(), _mask()
    expected = hf(_hf_input(video), bool_masked_pos=mask).logits
    assert torch.allclose(ours(video, mask), expected, atol=ATOL)
    save_hf(ours, tmp_path / "pre")
    reloaded = transformers.VideoMAEForPreTraining.from_pretrained(tmp_path / "pre").eval()
    reloaded.decoder.norm.eps = 1e-6
    assert torch.allclose(reloaded(_hf_input(video), bool_masked_pos=mask).logits, expected, atol=ATOL)
    encoder = tiny_vit(num_classes=3)
    log = load_encoder_weights(encoder, tmp_path / "pre")
    assert any("norm.weight" in line and "dropped" in line for line in log)


@torch.no_grad()
def test_hub_layout_q_v_bias_and_layer_scale_export_are_exact(tiny_vit):
    ours = tiny_vit(num_classes=4, init_values=0.3).eval()
    with torch.no_grad():
        for block in ours.blocks:
            block.ls1.gamma.uniform_(0.2, 1.5)
            block.attn.qkv.bias.normal_(0, 0.5)  # includes a k bias, which softmax ignores
    sd, config = export_hf(ours)
    assert "videomae.encoder.layer.0.attention.attention.q_bias" in sd
    assert not any(".ls1." in key or "key.bias" in key for key in sd)
    hub_sd = dict(sd)  # the hub layout as a state dict converts back
    back = tiny_vit(num_classes=4).eval()
    back.load_state_dict(convert_hf(hub_sd), strict=True)
    video = _video()
    assert torch.allclose(back(video), ours(video), atol=ATOL)
    assert config["architectures"] == ["VideoMAEForVideoClassification"] and config["layer_norm_eps"] == 1e-6
