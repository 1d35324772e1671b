"""`vmae bench model`: clips/s and MFU of full training steps (forward, backward, AdamW step).

Pretraining = VideoMAE with tube masking 0.9 on random input; fine-tuning = the encoder over all
tokens with a linear head and cross-entropy. Defaults: the study's tiny CPU model (vit_micro,
16x32x32, tubelet 4x4x4, decoder 64x2) on CPU, ViT-B/16 (16x224, tubelet 2, decoder 384x4) with bf16
autocast on CUDA. The timed loop has no host syncs until the final synchronize; FLOPs are counted
once with ``torch.utils.flop_counter.FlopCounterMode``; MFU is against 989 TFLOP/s (H100/H200 dense
bf16) and reported on CUDA only. ``--compare-hf`` times transformers' VideoMAE (SDPA) on the same
config and step.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from vmae.config import ModelConfig, config_from_dict, parse_overrides, to_dict
from vmae.models import build_encoder, build_videomae
from vmae.models.checkpoints import export_hf
from vmae.models.mae import targets_at
from vmae.models.masking import make_mask, split_mask

PEAK_FLOPS = 989e12  # dense bf16 FLOP/s of an H100 / H200 SXM
MASK_RATIO = 0.9
NUM_CLASSES = 400
CUDA_PRESET = dict(size="vit_base", img_size=224, patch_size=16, num_frames=16, tubelet_size=2,
                   decoder_embed_dim=384, decoder_depth=4, decoder_num_heads=6)

Step = Callable[[], torch.Tensor]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--size", default=None, help="model.size preset (default: vit_micro on CPU, vit_base on CUDA)")
    parser.add_argument("--batch", type=int, default=None, help="pretraining batch (default: 32 CPU, 128 CUDA)")
    parser.add_argument("--finetune-batch", type=int, default=None, help="fine-tuning batch (default: 32 CPU, 24 CUDA)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per measurement")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (compilation, caches)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    parser.add_argument("--mode", choices=["both", "pretrain", "finetune"], default="both")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                        help="torch.compile the model (default: on with CUDA, off on CPU)")
    parser.add_argument("--compare-hf", action="store_true", help="also time transformers' VideoMAE (SDPA)")
    parser.add_argument("--profile", action="store_true", help="add the top ops of one profiled step")
    parser.add_argument("overrides", nargs="*", default=[], help="model config key=value (e.g. img_size=64)")


def _model_config(args: argparse.Namespace, cuda: bool) -> ModelConfig:
    values = {**to_dict(ModelConfig()), **(CUDA_PRESET if cuda else {})}
    if args.size:
        values["size"] = args.size
    values.update(parse_overrides(args.overrides))
    return config_from_dict(ModelConfig, values, source="vmae bench model")


def _adamw(model: nn.Module) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    try:
        return torch.optim.AdamW(params, lr=1e-4, fused=True)
    except (RuntimeError, ValueError):  # fused unsupported on this device / dtype
        return torch.optim.AdamW(params, lr=1e-4, foreach=True)


def _train_step(model: nn.Module, loss_of: Callable[[nn.Module], torch.Tensor], autocast: bool) -> Step:
    """One full step: forward + loss under autocast, backward, AdamW; returns the loss tensor (no sync)."""
    optimizer = _adamw(model)
    device_type = next(model.parameters()).device.type

    def step() -> torch.Tensor:
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=autocast):
            loss = loss_of(model)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.detach()

    return step


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time(step: Step, steps: int, warmup: int, device: torch.device) -> float:
    """Seconds per step over ``steps`` steps after ``warmup`` untimed ones; one sync at each end."""
    for _ in range(warmup):
        step()
    _synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _synchronize(device)
    return (time.perf_counter() - start) / steps


def _flops(step: Step) -> float:
    counter = FlopCounterMode(display=False)
    with counter:
        step()
    return float(counter.get_total_flops())


def _profile(step: Step, device: torch.device, top: int = 12) -> list[dict[str, Any]]:
    """Self time share of the ``top`` most expensive ops in one step."""
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities) as prof:
        step()
        _synchronize(device)
    attr = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    events = sorted(prof.key_averages(), key=lambda e: getattr(e, attr), reverse=True)
    total = sum(getattr(e, attr) for e in events) or 1.0
    return [{"op": e.key, "pct": round(100 * getattr(e, attr) / total, 1)} for e in events[:top]]


def _pretrain_step(cfg: ModelConfig, batch: int, device: torch.device, compile_model: bool, autocast: bool) -> Step:
    model = build_videomae(cfg).to(device)
    forward = torch.compile(model.forward_indices) if compile_model else model.forward_indices
    video = torch.randn(batch, 3, cfg.num_frames, cfg.img_size, cfg.img_size, device=device)
    mask = make_mask("tube", batch, model.grid, MASK_RATIO, torch.Generator().manual_seed(0))
    visible_idx, masked_idx = (idx.to(device) for idx in split_mask(mask))
    target = targets_at(video, masked_idx, cfg.patch_size, cfg.tubelet_size)

    def loss_of(_: nn.Module) -> torch.Tensor:
        return F.mse_loss(forward(video, visible_idx, masked_idx).float(), target)

    return _train_step(model, loss_of, autocast)


def _finetune_step(cfg: ModelConfig, batch: int, device: torch.device, compile_model: bool, autocast: bool) -> Step:
    model = build_encoder(cfg, num_classes=NUM_CLASSES).to(device)
    forward = torch.compile(model) if compile_model else model
    video = torch.randn(batch, 3, cfg.num_frames, cfg.img_size, cfg.img_size, device=device)
    labels = torch.randint(0, NUM_CLASSES, (batch,), device=device)
    return _train_step(model, lambda _: F.cross_entropy(forward(video).float(), labels), autocast)


def _hf_steps(cfg: ModelConfig, pretrain_batch: int, finetune_batch: int, device: torch.device,
              autocast: bool) -> dict[str, Step]:
    """The same two steps with transformers' VideoMAEForPreTraining / ForVideoClassification (SDPA)."""
    import transformers

    _, pre_cfg = export_hf(build_videomae(cfg))
    hf_pre = transformers.VideoMAEForPreTraining(
        transformers.VideoMAEConfig(**pre_cfg, attn_implementation="sdpa")).to(device)
    _, cls_cfg = export_hf(build_encoder(cfg, num_classes=NUM_CLASSES))
    hf_cls = transformers.VideoMAEForVideoClassification(
        transformers.VideoMAEConfig(**cls_cfg, attn_implementation="sdpa")).to(device)
    shape = (cfg.num_frames, 3, cfg.img_size, cfg.img_size)  # HF takes (B, T, C, H, W)
    video_pre = torch.randn(pretrain_batch, *shape, device=device)
    grid = build_encoder(cfg).grid
    mask = make_mask("tube", pretrain_batch, grid, MASK_RATIO, torch.Generator().manual_seed(0)).to(device)
    video_cls = torch.randn(finetune_batch, *shape, device=device)
    labels = torch.randint(0, NUM_CLASSES, (finetune_batch,), device=device)
    return {
        "pretrain": _train_step(hf_pre, lambda m: m(video_pre, bool_masked_pos=mask).loss, autocast),
        "finetune": _train_step(hf_cls, lambda m: F.cross_entropy(m(video_cls).logits.float(), labels), autocast),
    }


def _measure(step: Step, batch: int, args: argparse.Namespace, device: torch.device,
             flops: float | None) -> dict[str, Any]:
    seconds = _time(step, args.steps, args.warmup, device)
    out: dict[str, Any] = {"batch": batch, "step_ms": round(1000 * seconds, 2), "clips_per_s": round(batch / seconds, 1)}
    if flops is not None:
        out["tflop_per_clip"] = float(f"{flops / batch / 1e12:.4g}")
        if device.type == "cuda":
            out["mfu"] = round(flops / seconds / PEAK_FLOPS, 4)
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    cuda = device.type == "cuda"
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = _model_config(args, cuda)
    compile_model = cuda if args.compile is None else args.compile
    batches = {"pretrain": args.batch or (128 if cuda else 32),
               "finetune": args.finetune_batch or (24 if cuda else 32)}
    builders = {"pretrain": _pretrain_step, "finetune": _finetune_step}
    modes = ["pretrain", "finetune"] if args.mode == "both" else [args.mode]
    result: dict[str, Any] = {
        "device": torch.cuda.get_device_name(device) if cuda else f"cpu ({torch.get_num_threads()} threads)",
        "model": to_dict(cfg), "dtype": "bf16 autocast" if cuda else "fp32", "compile": compile_model,
        "steps": args.steps, "torch": torch.__version__,
    }
    hf_steps = _hf_steps(cfg, batches["pretrain"], batches["finetune"], device, cuda) if args.compare_hf else {}
    for mode in modes:
        flops = _flops(builders[mode](cfg, batches[mode], device, False, cuda))
        step = builders[mode](cfg, batches[mode], device, compile_model, cuda)
        entry = _measure(step, batches[mode], args, device, flops)
        if args.profile:
            entry["profile"] = _profile(step, device)
        if mode in hf_steps:
            hf = _measure(hf_steps[mode], batches[mode], args, device, None)
            entry["hf_clips_per_s"] = hf["clips_per_s"]
            entry["speedup_vs_hf"] = round(entry["clips_per_s"] / hf["clips_per_s"], 3)
        result[mode] = entry
    return result
