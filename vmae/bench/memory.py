"""`vmae bench memory`: the GPU memory one process's micro-batch of each training recipe needs, to
choose ``optim.micro_batch_size`` for a card.

The configs are the workflow's own: for each recipe of ``--config`` (default paper.yaml: VideoMAE
and MoCo v3 32 videos a GPU, fine-tuning 16 videos x 2 repeated clips) the run config is built as
workflow/rules/common.smk builds the command's (``vmae.recipes``: the recipe file, the model
section, the recipe's and the dataset's overrides), a masked method (VideoMAE) once for each mask
ratio the config's studies pretrain with (its visible tokens set the encoder's memory). Each then runs ``--steps``
optimiser steps of the real training loop (``vmae.train.loop.train``, as on one GPU: ``k`` =
batch / micro-batch micro-steps a step, bf16 autocast, the compiled objective where the recipe
compiles, fused AdamW) on random uint8 micro-batches shaped as the loader's, already cropped.

Peak: ``torch.cuda.max_memory_allocated`` over those steps (weights, gradients, AdamW's moments, one
micro-batch's activations, the prefetched next micro-batch), and ``max_memory_reserved`` (what the
caching allocator held from the card); ``allocated_at_start_gib`` is what the model's weights held
before the first step (anything above them would be left over from the previous measurement). Not
in them: the CUDA context (about 0.5 GiB) and, with the crops on the GPU (``data.augment_on``), the
decoded frames before cropping (a micro-batch of 32 videos x 16 frames at 256x340 is 0.13 GiB). On CPU the same steps run (a check of the
configs and the mechanics) and no peak is given.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vmae import methods
from vmae.bench.model import resolve_device
from vmae.config import FinetuneConfig, PretrainConfig, build_config, to_dict
from vmae.data.registry import REPO_ROOT, load_spec
from vmae.errors import UserError
from vmae.models import build_encoder
from vmae.models.masking import make_mask
from vmae.recipes import load_workflow_config, model_overrides, recipe
from vmae.report import studies
from vmae.train.distributed import DistEnv, accumulation_steps
from vmae.train.finetune import classifier_training
from vmae.train.loop import train
from vmae.train.pretrain import pretraining

PAPER_CONFIG = REPO_ROOT / "workflow" / "config" / "paper.yaml"
RECIPES = (*methods.names(), "finetune")  # every registered pretraining method, and fine-tuning
GIB = 2**30


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=PAPER_CONFIG,
                        help="workflow config whose recipes are measured (default: workflow/config/paper.yaml)")
    parser.add_argument("--dataset", default=None,
                        help="dataset whose recipe overrides and classes apply (default: the data-efficiency "
                             "study's first target)")
    parser.add_argument("--recipes", nargs="+", choices=RECIPES, default=list(RECIPES))
    parser.add_argument("--mask-ratios", nargs="+", type=float, default=None,
                        help="mask ratios of masked methods (default: every ratio the config's studies pretrain with)")
    parser.add_argument("--steps", type=int, default=2, help="optimiser steps a measurement (the first "
                        "allocates AdamW's moments)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True,
                        help="torch.compile where the recipe does (the default; CUDA only), or nowhere (--no-compile: "
                             "eager, no compile time)")


@dataclass(frozen=True)
class Measurement:
    """One recipe setting to run: ``name`` (a registered method or finetune) and its run config."""

    name: str
    config: PretrainConfig | FinetuneConfig
    num_classes: int = 0


def pretrain_mask_ratios(config: dict[str, Any]) -> list[float]:
    """Every mask ratio of the masked pretraining runs the config's studies ask for, ascending."""
    ratios = {init.mask_ratio
              for name in studies.STUDY_NAMES if name in config["studies"]
              for _, _, init in studies.evaluations(name, config["studies"][name],
                                                    config["studies"][name].get("seeds", config["seeds"]),
                                                    config["model"])
              if init is not None and init.mask_ratio is not None}
    return sorted(ratios)


def measurements(config: dict[str, Any], dataset: str, names: list[str], mask_ratios: list[float],
                 device: str, compile_model: bool = True) -> list[Measurement]:
    """The run configs of ``names`` for ``dataset`` as the workflow builds them, on ``device``, cut
    to one epoch with no warm-up (the loader of ``measure`` sets its steps); ``compile_model=False``
    turns the recipes' ``compile`` off."""
    short = [f"device={device}", "optim.epochs=1", "optim.steps=0", "optim.warmup_epochs=0",
             *([] if compile_model else ["compile=false"])]
    found = []
    for name in names:
        r = recipe(config, name, dataset)
        overrides = [*model_overrides(config), *r.overrides, *short]
        if name == "finetune":
            classes = load_spec(dataset, REPO_ROOT / config["datasets"]["specs"]).num_classes
            found.append(Measurement(name, build_config(FinetuneConfig, REPO_ROOT / r.config, overrides), classes))
        else:
            for ratio in mask_ratios if methods.get(name).masked else [None]:
                ratio_override = [] if ratio is None else [f"mask_ratio={ratio}"]
                cfg = build_config(PretrainConfig, REPO_ROOT / r.config, [*overrides, *ratio_override], method=name)
                found.append(Measurement(name, cfg))
    return found


def clips_a_video(m: Measurement) -> int:
    """Clips the loader gives a video: the method's (vmae.methods), fine-tuning's ``data.repeated_sampling``."""
    return m.config.data.repeated_sampling if m.name == "finetune" else methods.get(m.name).clips_a_video(m.config)


def random_micro_batches(m: Measurement, count: int) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """``count`` loader-shaped micro-batches: uint8 clips (b, clips a video, 3, T, H, W), labels (b,),
    bad (b,); one tensor shared by all (the loop reads, never writes, its batches)."""
    cfg, env = m.config, DistEnv()
    videos = cfg.optim.micro_batch_size or cfg.optim.batch_size // env.world_size
    generator = torch.Generator().manual_seed(0)
    shape = (videos, clips_a_video(m), 3, cfg.model.num_frames, cfg.model.img_size, cfg.model.img_size)
    clips = torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, max(m.num_classes, 1), (videos,), generator=generator)
    return [(clips, labels, torch.zeros(videos, dtype=torch.long))] * count


def measure(m: Measurement, steps: int, device: torch.device) -> dict[str, Any]:
    """Run ``steps`` optimiser steps of ``m`` through the training loop; its row of the result."""
    cfg, env = m.config, DistEnv(device=device)
    k = accumulation_steps(cfg.optim.batch_size, cfg.optim.micro_batch_size, env)
    batches = random_micro_batches(m, steps * k)
    torch.manual_seed(cfg.seed)
    if m.name == "finetune":
        run = classifier_training(build_encoder(cfg.model, num_classes=m.num_classes), cfg, env)
    else:
        run = pretraining(cfg, env, steps)
    cuda = device.type == "cuda"
    if cuda:  # the previous measurement's compiled graphs and cached blocks go first
        torch._dynamo.reset()
        gc.collect()
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        at_start = torch.cuda.memory_allocated(device)  # this model's weights; more would be a leak
    started = time.perf_counter()
    # the loop's lines go to stderr: stdout is the benchmark's JSON
    with tempfile.TemporaryDirectory(prefix="vmae-bench-memory-") as out, contextlib.redirect_stdout(sys.stderr):
        result = train(run.model, run.step, run.groups, lambda epoch: batches, cfg.optim, env, out, seed=cfg.seed,
                       clips_per_step=run.clips_per_step, run_config=to_dict(cfg), method=m.name, net=run.net)
    seconds = time.perf_counter() - started
    masked = m.name != "finetune" and methods.get(m.name).masked
    row: dict[str, Any] = {
        "recipe": m.name,
        "mask_ratio": cfg.mask_ratio if masked else None,
        "visible_tokens": _visible_tokens(run.model, cfg) if masked else None,
        "micro_batch_videos": batches[0][0].shape[0],
        "clips_a_micro_step": batches[0][0].shape[0] * batches[0][0].shape[1],
        "accumulation_steps": k,
        "optimiser_steps": result.steps,
        "compile": hasattr(run.net, "_orig_mod"),  # torch.compile's wrapper holds the module it compiled
        "dtype": "bf16 autocast" if cuda else "fp32",
        "parameters": sum(p.numel() for p in run.model.parameters() if p.requires_grad),
        "final_loss": round(result.final_loss, 4),
        "seconds": round(seconds, 1),
        "allocated_at_start_gib": round(at_start / GIB, 2) if cuda else None,
        "peak_allocated_gib": round(torch.cuda.max_memory_allocated(device) / GIB, 2) if cuda else None,
        "peak_reserved_gib": round(torch.cuda.max_memory_reserved(device) / GIB, 2) if cuda else None,
    }
    return row


def _visible_tokens(model: torch.nn.Module, cfg: PretrainConfig) -> int:
    """Tokens a clip's encoder sees under the config's masking."""
    mask = make_mask(cfg.masking, 1, model.grid, cfg.mask_ratio, torch.Generator().manual_seed(0))
    return int((~mask).sum())


def run(args: argparse.Namespace) -> dict[str, Any]:
    device = resolve_device(args.device)
    config = load_workflow_config(args.config)
    dataset = args.dataset or config["studies"]["data_efficiency"]["targets"][0]
    ratios = args.mask_ratios or pretrain_mask_ratios(config)
    settings = measurements(config, dataset, args.recipes, ratios, device.type, args.compile)
    if not settings:
        raise UserError(f"{args.config}: no setting to measure (recipes {args.recipes}, mask ratios {ratios})")
    return {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__, "config": str(args.config), "dataset": dataset, "processes": 1,
        "model": to_dict(settings[0].config.model),
        "rows": [measure(m, args.steps, device) for m in settings],
    }
