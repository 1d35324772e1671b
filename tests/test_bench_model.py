"""`vmae bench model`: the JSON it returns on a tiny CPU config, and a benchmarked tiny step."""

from __future__ import annotations

import argparse

import pytest
import torch

from vmae.bench import model as bench_model
from vmae.config import ModelConfig

TINY = ["img_size=16", "num_frames=8", "decoder_embed_dim=32", "decoder_depth=1"]


def _args(*extra: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    bench_model.add_arguments(parser)
    return parser.parse_args(["--device", "cpu", "--batch", "2", "--finetune-batch", "2", "--steps", "1",
                              "--warmup", "0", *extra, *TINY])


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
        bench_model._model_config(_args("img_sise=3"), cuda=False)


def test_cuda_preset_is_vit_base_16x224():
    parser = argparse.ArgumentParser()
    bench_model.add_arguments(parser)
    cfg = bench_model._model_config(parser.parse_args([]), cuda=True)
    assert isinstance(cfg, ModelConfig)
    assert (cfg.size, cfg.img_size, cfg.patch_size, cfg.tubelet_size, cfg.decoder_embed_dim) == ("vit_base", 224, 16, 2, 384)


@pytest.mark.slow
def test_hf_comparison_runs_when_transformers_is_installed():
    pytest.importorskip("transformers")
    result = bench_model.run(_args("--mode", "pretrain", "--compare-hf"))
    assert result["pretrain"]["hf_clips_per_s"] > 0 and result["pretrain"]["speedup_vs_hf"] > 0
    assert "finetune" not in result


def test_benchmark_tiny_pretrain_step(benchmark):
    cfg = bench_model._model_config(_args(), cuda=False)
    step = bench_model._pretrain_step(cfg, 2, torch.device("cpu"), compile_model=False, autocast=False)
    loss = benchmark(step)
    assert torch.isfinite(loss)
