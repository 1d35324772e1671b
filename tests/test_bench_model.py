"""`vmae bench model`: the JSON it returns on a tiny CPU config, and a benchmarked tiny step."""

from __future__ import annotations

import argparse

import pytest
import torch

from vmae.bench import model as bench_model
from vmae.config import ModelConfig
from vmae.errors import UserError
from vmae.models import build_videomae
from vmae.models.masking import make_mask, split_mask

MODEL_OVERRIDES = ["img_size=16", "num_frames=8", "decoder_embed_dim=32", "decoder_depth=1"]


def _args(*extra: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    bench_model.add_arguments(parser)
    return parser.parse_args(["--device", "cpu", "--batch", "2", "--finetune-batch", "2", "--steps", "1",
                              "--warmup", "0", *extra, *MODEL_OVERRIDES])


def test_run_reports_both_steps_with_flops_and_no_mfu_on_cpu():
    result = bench_model.run(_args())
    assert result["model"]["img_size"] == 16 and result["dtype"] == "fp32"
    for mode in ("pretrain", "finetune"):
        entry = result[mode]
        assert entry["batch"] == 2 and entry["clips_per_s"] > 0 and "mfu" not in entry
        assert entry["tflop_per_clip"] > 0
    # fine-tuning runs the encoder on all 4x4x2 = 32 tokens, pretraining on 10% of them + a decoder
    assert result["finetune"]["tflop_per_clip"] > result["pretrain"]["tflop_per_clip"]


def test_flop_count_matches_linear_layer_arithmetic():
    layer = torch.nn.Linear(8, 4)
    x = torch.randn(3, 8, requires_grad=True)

    def step():
        layer(x).sum().backward()

    assert bench_model._flops(step) == 3 * (2 * 3 * 8 * 4)  # forward + grad input + grad weight


def test_unknown_override_is_an_error():
    with pytest.raises(ValueError, match="img_sise"):
        bench_model.model_config(_args("img_sise=3"), cuda=False)


def test_cuda_preset_is_vit_base_16x224():
    parser = argparse.ArgumentParser()
    bench_model.add_arguments(parser)
    cfg = bench_model.model_config(parser.parse_args([]), cuda=True)
    assert isinstance(cfg, ModelConfig)
    assert (cfg.size, cfg.img_size, cfg.patch_size, cfg.tubelet_size, cfg.decoder_embed_dim) == ("vit_base", 224, 16, 2, 384)


@pytest.mark.slow
def test_hf_comparison_runs_when_transformers_is_installed():
    pytest.importorskip("transformers")
    result = bench_model.run(_args("--mode", "pretrain", "--compare-hf"))
    assert result["pretrain"]["hf_clips_per_s"] > 0 and result["pretrain"]["speedup_vs_hf"] > 0
    assert "finetune" not in result


def test_benchmark_tiny_pretrain_step(benchmark):
    cfg = bench_model.model_config(_args(), cuda=False)
    step = bench_model._pretrain_step(cfg, 2, torch.device("cpu"), compile_model=False, autocast=False)
    loss = benchmark(step)
    assert torch.isfinite(loss)


def test_official_targets_equal_ours():
    """The official engine normalises un-normalised pixels per tubelet; per-channel affine input
    normalisation cancels out, so its targets equal ``VideoMAE.targets`` on the normalised clip."""
    cfg = bench_model.model_config(_args(), cuda=False)
    video = bench_model.baseline_inputs(cfg, {"pretrain": 3, "finetune": 1}, torch.device("cpu")).video_pre
    mask = make_mask("tube", 3, (2, 4, 4), 0.75, torch.Generator().manual_seed(1))
    ours = build_videomae(cfg).targets(video, split_mask(mask)[1])
    theirs = bench_model.official_targets(video, mask, cfg)
    assert theirs.shape == (3, 24, 4 * 4 * 4 * 3)
    torch.testing.assert_close(theirs, ours, atol=1e-3, rtol=1e-3)


def test_compare_official_names_the_missing_files(tmp_path):
    (tmp_path / "modeling_finetune.py").write_text("")
    with pytest.raises(UserError, match="modeling_pretrain.py; fetch them from https://github.com/MCG-NJU"):
        bench_model.run(_args("--compare-official", str(tmp_path)))


STUB_PRETRAIN = """
import torch, torch.nn as nn
CALLS = []
class PretrainVisionTransformer(nn.Module):
    def __init__(self, **kwargs):
        super().__init__()
        CALLS.append(kwargs)
        self.head = nn.Linear(1, kwargs["decoder_num_classes"])
    def forward(self, x, mask):
        n_masked = int(mask[0].sum())
        return self.head(x.mean(dim=(1, 2, 3, 4))[:, None, None].expand(-1, n_masked, 1))
"""
STUB_FINETUNE = """
import torch, torch.nn as nn
CALLS = []
class VisionTransformer(nn.Module):
    def __init__(self, **kwargs):
        super().__init__()
        CALLS.append(kwargs)
        self.head = nn.Linear(1, kwargs["num_classes"])
    def forward(self, x):
        return self.head(x.mean(dim=(1, 2, 3, 4))[:, None])
"""


def test_compare_official_builds_the_official_classes_at_our_sizes(tmp_path, monkeypatch, fixed_step_times):
    fixed_step_times(bench_model, [0.01, 0.04, 0.02, 0.05])  # ours, official; pretrain, finetune
    (tmp_path / "modeling_pretrain.py").write_text(STUB_PRETRAIN)
    (tmp_path / "modeling_finetune.py").write_text(STUB_FINETUNE)
    monkeypatch.setattr("sys.path", list(__import__("sys").path))
    for name in ("modeling_pretrain", "modeling_finetune"):
        monkeypatch.delitem(__import__("sys").modules, name, raising=False)
    result = bench_model.run(_args("--compare-official", str(tmp_path)))
    pretrain, finetune = result["pretrain"], result["finetune"]  # batches of 2 clips
    assert (pretrain["clips_per_s"], pretrain["official_clips_per_s"], pretrain["speedup_vs_official"]) == (200, 50, 4)
    assert (finetune["clips_per_s"], finetune["official_clips_per_s"], finetune["speedup_vs_official"]) == (100, 40, 2.5)
    import modeling_finetune
    import modeling_pretrain

    pre, = modeling_pretrain.CALLS
    assert (pre["img_size"], pre["patch_size"], pre["tubelet_size"]) == (16, 4, 4)
    assert (pre["encoder_embed_dim"], pre["encoder_depth"], pre["encoder_num_heads"]) == (128, 4, 4)
    assert (pre["decoder_embed_dim"], pre["decoder_depth"], pre["decoder_num_classes"]) == (32, 1, 4 * 4 * 4 * 3)
    cls, = modeling_finetune.CALLS
    assert (cls["all_frames"], cls["num_classes"], cls["embed_dim"], cls["use_mean_pooling"]) == (8, 400, 128, True)
