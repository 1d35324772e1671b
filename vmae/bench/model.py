"""`vmae bench model`: clips/s and MFU of full training steps (forward, backward, AdamW step).

The steps timed are the project's own: ``vmae.train.pretrain.videomae_step`` (uint8 clips
normalised on the device, a tube mask of ratio 0.9 drawn on the CPU, normalised-pixel targets, the
loss) and ``vmae.train.finetune.classification_step`` (label-smoothed cross-entropy), each with the
project's AdamW (``vmae.train.optim.build_optimizer``: fused on CUDA) over its parameter groups, on
a random batch already on the device (no data loading; ``vmae bench train`` adds it). Defaults:
the study's tiny CPU model (vit_micro, 16x32x32, tubelet 4x4x4, decoder 64x2) on CPU, ViT-B/16
(16x224, tubelet 2, decoder 384x4) with bf16 autocast on CUDA. The timed loop has no host syncs
until the final synchronize; FLOPs are counted once with ``torch.utils.flop_counter.FlopCounterMode``;
MFU is against 989 TFLOP/s (H100/H200 dense bf16) and reported on CUDA only.

Baselines, timed in the same harness (same input, autocast and optimiser):
- ``--compare-hf``: transformers' VideoMAE (SDPA) with the same config; its loss computes its own
  normalised targets.
- ``--compare-official DIR``: the official MCG-NJU model classes (``modeling_pretrain.py`` and
  ``modeling_finetune.py`` of github.com/MCG-NJU/VideoMAE, fetched by the user into DIR; they are
  not part of this project), with the official engine's step: targets by boolean-mask indexing and
  ``loss.item()`` every step.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from vmae.config import (
    ModelConfig,
    OptimConfig,
    PretrainConfig,
    config_from_dict,
    parse_overrides,
    to_dict,
)
from vmae.data.transforms import normalize
from vmae.errors import UserError
from vmae.models import build_encoder, build_videomae
from vmae.models.interop import export_hf
from vmae.models.mae import patchify
from vmae.models.masking import make_mask
from vmae.models.vit import MODEL_SIZES
from vmae.train.distributed import DistEnv, wrap_model
from vmae.train.finetune import classification_step
from vmae.train.optim import build_optimizer, param_groups
from vmae.methods.videomae import VideoMAEObjective, videomae_step
from vmae.train.step import StepFn

PEAK_FLOPS = 989e12  # dense bf16 FLOP/s of an H100 / H200 SXM
MASK_RATIO = 0.9
NUM_CLASSES = 400
LABEL_SMOOTHING = 0.1
CUDA_PRESET = dict(size="vit_base", img_size=224, patch_size=16, num_frames=16, tubelet_size=2,
                   decoder_embed_dim=384, decoder_depth=4, decoder_num_heads=6)

Step = Callable[[], torch.Tensor]
LossOf = Callable[[int], torch.Tensor]  # step index -> loss (under autocast)


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
    parser.add_argument("--compare-official", type=Path, default=None, metavar="DIR",
                        help="also time the official VideoMAE classes from DIR (modeling_pretrain.py, "
                             "modeling_finetune.py of github.com/MCG-NJU/VideoMAE)")
    parser.add_argument("--profile", action="store_true", help="add the top ops of one profiled step")
    parser.add_argument("overrides", nargs="*", default=[], help="model config key=value (e.g. img_size=64)")


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def model_config(args: argparse.Namespace, cuda: bool) -> ModelConfig:
    """The study's default model (CPU) or the paper's ViT-B preset (CUDA), then --size and overrides."""
    values = {**to_dict(ModelConfig()), **(CUDA_PRESET if cuda else {})}
    if args.size:
        values["size"] = args.size
    values.update(parse_overrides(args.overrides))
    return config_from_dict(ModelConfig, values, source="vmae bench model")


def train_step(model: nn.Module, loss_of: LossOf, autocast: bool, groups: list[dict] | None = None,
               sync_loss: bool = False) -> Step:
    """One full step: loss under bf16 autocast (CUDA), backward, AdamW (the project's builder) over
    ``groups`` (default: all trainable parameters). ``sync_loss``: read the loss on the host every
    step (the official engine's ``loss.item()``). Returns the detached loss."""
    device = next(model.parameters()).device
    groups = groups or [{"params": [p for p in model.parameters() if p.requires_grad]}]
    optimizer = build_optimizer(groups, OptimConfig(), lr=1e-4, device=device)
    index = 0

    def step() -> torch.Tensor:
        nonlocal index
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            loss = loss_of(index)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        index += 1
        if sync_loss:
            loss.item()
        return loss.detach()

    return step


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(step: Step, steps: int, warmup: int, device: torch.device) -> float:
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


def _profile(step: Step, device: torch.device, top: int = 15) -> list[dict[str, Any]]:
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
    return [{"op": e.key[:80], "pct": round(100 * getattr(e, attr) / total, 1)} for e in events[:top]]


def random_batch(cfg: ModelConfig, videos: int, device: torch.device, clips_per_video: int = 1
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A loader-shaped batch on ``device``: uint8 clips (B, k, 3, T, H, W), labels (B,), bad (B,)."""
    generator = torch.Generator().manual_seed(0)
    shape = (videos, clips_per_video, 3, cfg.num_frames, cfg.img_size, cfg.img_size)
    clips = torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator).to(device)
    labels = torch.randint(0, NUM_CLASSES, (videos,), generator=generator)
    return clips, labels, torch.zeros(videos, dtype=torch.long)


def pretrain_step_fn(cfg: ModelConfig, device: torch.device, compile_model: bool) -> tuple[nn.Module, StepFn]:
    """The project's VideoMAE model (compiled when asked) and its training step function."""
    run_cfg = PretrainConfig(mask_ratio=MASK_RATIO, masking="tube", model=cfg)
    model = build_videomae(cfg)
    net = wrap_model(VideoMAEObjective(model, run_cfg), DistEnv(device=device), compile_model)
    return model, videomae_step(net, run_cfg, DistEnv(device=device), model.grid)


def _project_step(model: nn.Module, step_fn: StepFn, batch: tuple, autocast: bool) -> Step:
    groups = param_groups(model, OptimConfig().weight_decay)
    return train_step(model, lambda index: step_fn(batch, index).loss, autocast, groups)


def _pretrain_step(cfg: ModelConfig, batch: int, device: torch.device, compile_model: bool, autocast: bool) -> Step:
    model, step_fn = pretrain_step_fn(cfg, device, compile_model)
    return _project_step(model, step_fn, random_batch(cfg, batch, device), autocast)


def _finetune_step(cfg: ModelConfig, batch: int, device: torch.device, compile_model: bool, autocast: bool) -> Step:
    model = build_encoder(cfg, num_classes=NUM_CLASSES)
    net = wrap_model(model, DistEnv(device=device), compile_model)
    step_fn = classification_step(net, DistEnv(device=device), PretrainConfig().data, None, LABEL_SMOOTHING)
    return _project_step(model, step_fn, random_batch(cfg, batch, device), autocast)


@dataclass
class BaselineInputs:
    """The baselines' input: ``random_batch``'s values as normalised float clips, on the device."""

    video_pre: torch.Tensor  # (B_pretrain, 3, T, H, W)
    mask: torch.Tensor  # (B_pretrain, N) bool, tube mask of MASK_RATIO, True = masked
    video_cls: torch.Tensor  # (B_finetune, 3, T, H, W)
    labels: torch.Tensor  # (B_finetune,)


def baseline_inputs(cfg: ModelConfig, batches: dict[str, int], device: torch.device) -> BaselineInputs:
    """One set of inputs for every baseline, built once."""
    data = PretrainConfig().data

    def float_batch(videos: int) -> tuple[torch.Tensor, torch.Tensor]:
        clips, labels, _ = random_batch(cfg, videos, device)
        return normalize(clips.flatten(0, 1), data.mean, data.std), labels.to(device)

    video_pre, _ = float_batch(batches["pretrain"])
    video_cls, labels = float_batch(batches["finetune"])
    mask = make_mask("tube", batches["pretrain"], build_encoder(cfg).grid, MASK_RATIO, torch.Generator().manual_seed(0)).to(device)
    return BaselineInputs(video_pre, mask, video_cls, labels)


def _hf_steps(cfg: ModelConfig, inputs: BaselineInputs, device: torch.device, autocast: bool) -> dict[str, Step]:
    """The same two steps with transformers' VideoMAEForPreTraining / ForVideoClassification (SDPA)."""
    import transformers

    _, pre_cfg = export_hf(build_videomae(cfg))
    hf_pre = transformers.VideoMAEForPreTraining(
        transformers.VideoMAEConfig(**pre_cfg, attn_implementation="sdpa")).to(device)
    _, cls_cfg = export_hf(build_encoder(cfg, num_classes=NUM_CLASSES))
    hf_cls = transformers.VideoMAEForVideoClassification(
        transformers.VideoMAEConfig(**cls_cfg, attn_implementation="sdpa")).to(device)
    video_pre = inputs.video_pre.transpose(1, 2)  # HF takes (B, T, C, H, W)
    video_cls = inputs.video_cls.transpose(1, 2)
    return {
        "pretrain": train_step(hf_pre, lambda _: hf_pre(video_pre, bool_masked_pos=inputs.mask).loss, autocast),
        "finetune": train_step(hf_cls, lambda _: F.cross_entropy(
            hf_cls(video_cls).logits.float(), inputs.labels, label_smoothing=LABEL_SMOOTHING), autocast),
    }


def _import_official(folder: Path) -> tuple[Any, Any]:
    """``(modeling_pretrain, modeling_finetune)`` imported from ``folder``."""
    missing = [name for name in ("modeling_pretrain.py", "modeling_finetune.py") if not (folder / name).is_file()]
    if missing:
        raise UserError(f"--compare-official {folder}: missing {', '.join(missing)}; fetch them from "
                        "https://github.com/MCG-NJU/VideoMAE into that folder")
    sys.path.insert(0, str(folder.resolve()))
    return importlib.import_module("modeling_pretrain"), importlib.import_module("modeling_finetune")


def official_targets(video: torch.Tensor, mask: torch.Tensor, cfg: ModelConfig) -> torch.Tensor:
    """The official engine's targets: per-tubelet normalised pixels of the masked tubelets, picked by
    boolean indexing (a device sync, as there). video: (B, 3, T, H, W) -> (B, N_masked, t*p*p*3)."""
    data = PretrainConfig().data
    mean = torch.tensor(data.mean, device=video.device)[None, :, None, None, None]
    std = torch.tensor(data.std, device=video.device)[None, :, None, None, None]
    patches = patchify(video * std + mean, cfg.patch_size, cfg.tubelet_size)
    pixels = patches.reshape(*patches.shape[:2], -1, 3)
    normed = (pixels - pixels.mean(dim=-2, keepdim=True)) / (pixels.var(dim=-2, unbiased=True, keepdim=True).sqrt()
                                                             + 1e-6)
    normed = normed.flatten(2)
    return normed[mask].reshape(video.shape[0], -1, normed.shape[-1])


def _official_steps(folder: Path, cfg: ModelConfig, inputs: BaselineInputs, device: torch.device,
                    autocast: bool) -> dict[str, Step]:
    """The two steps with the official classes at the same sizes (eager, as the official code runs)."""
    modeling_pretrain, modeling_finetune = _import_official(folder)
    size = MODEL_SIZES[cfg.size]
    width, depth, heads = size["embed_dim"], size["depth"], size["num_heads"]
    shared = dict(img_size=cfg.img_size, patch_size=cfg.patch_size, mlp_ratio=4, qkv_bias=True,
                  norm_layer=partial(nn.LayerNorm, eps=1e-6), tubelet_size=cfg.tubelet_size)
    pre = modeling_pretrain.PretrainVisionTransformer(
        encoder_embed_dim=width, encoder_depth=depth, encoder_num_heads=heads, encoder_num_classes=0,
        decoder_num_classes=3 * cfg.tubelet_size * cfg.patch_size ** 2, decoder_embed_dim=cfg.decoder_embed_dim,
        decoder_depth=cfg.decoder_depth, decoder_num_heads=cfg.decoder_num_heads, **shared).to(device)
    cls = modeling_finetune.VisionTransformer(
        num_classes=NUM_CLASSES, embed_dim=width, depth=depth, num_heads=heads, all_frames=cfg.num_frames,
        use_mean_pooling=True, **shared).to(device)

    def pretrain_loss(_: int) -> torch.Tensor:
        with torch.no_grad():
            target = official_targets(inputs.video_pre, inputs.mask, cfg)
        return F.mse_loss(pre(inputs.video_pre, inputs.mask).float(), target)

    def finetune_loss(_: int) -> torch.Tensor:
        return F.cross_entropy(cls(inputs.video_cls).float(), inputs.labels, label_smoothing=LABEL_SMOOTHING)

    return {
        "pretrain": train_step(pre, pretrain_loss, autocast, sync_loss=True),
        "finetune": train_step(cls, finetune_loss, autocast, sync_loss=True),
    }


def _measure(step: Step, batch: int, args: argparse.Namespace, device: torch.device,
             flops: float | None) -> dict[str, Any]:
    seconds = time_steps(step, args.steps, args.warmup, device)
    out: dict[str, Any] = {"batch": batch, "step_ms": round(1000 * seconds, 2), "clips_per_s": round(batch / seconds, 1)}
    if flops is not None:
        out["tflop_per_clip"] = float(f"{flops / batch / 1e12:.4g}")
        if device.type == "cuda":
            out["mfu"] = round(flops / seconds / PEAK_FLOPS, 4)
    return out


def _baseline(entry: dict[str, Any], name: str, step: Step, batch: int, args: argparse.Namespace,
              device: torch.device) -> None:
    clips_per_s = _measure(step, batch, args, device, None)["clips_per_s"]
    entry[f"{name}_clips_per_s"] = clips_per_s
    entry[f"speedup_vs_{name}"] = round(entry["clips_per_s"] / clips_per_s, 3)


def run(args: argparse.Namespace) -> dict[str, Any]:
    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = model_config(args, cuda)
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
    baselines: dict[str, dict[str, Step]] = {}
    if args.compare_hf or args.compare_official:
        inputs = baseline_inputs(cfg, batches, device)
        if args.compare_hf:
            baselines["hf"] = _hf_steps(cfg, inputs, device, cuda)
        if args.compare_official:
            baselines["official"] = _official_steps(args.compare_official, cfg, inputs, device, cuda)
    for mode in modes:
        flops = _flops(builders[mode](cfg, batches[mode], device, False, cuda))
        step = builders[mode](cfg, batches[mode], device, compile_model, cuda)
        entry = _measure(step, batches[mode], args, device, flops)
        if args.profile:
            entry["profile"] = _profile(step, device)
        for name, steps in baselines.items():
            _baseline(entry, name, steps[mode], batches[mode], args, device)
        result[mode] = entry
    return result
