"""`vmae pretrain`: self-supervised pretraining, VideoMAE (masked tubelet reconstruction) or MoCo v3.

    vmae pretrain --data DIR --out DIR [--train-manifest CSV] [--eval-manifest CSV]
                  [--method videomae|mocov3] [--epochs N] [--seed S] [--config YAML] [key=value ...]

A step budget (``optim.steps``) sets the epochs from the training set's size (``fit_to_step_budget``).
Writes ``<out>/resume.pt`` every epoch (rerunning resumes from it; it becomes ``<out>/checkpoint.pt``
when training ends), ``<out>/log.jsonl`` and
``<out>/metrics.json`` (method, epochs, optimiser steps, clips seen, train_flops, final_loss, train_videos,
wall_s, clips_per_s, bad_videos; VideoMAE also ``pretext``: its loss on the held-out videos of
``--eval-manifest`` (default DATA/val.csv, one centre clip each) next to the trivial predictor's, and
the skill 1 - loss / trivial, vmae.train.pretext).
Labels are ignored. VideoMAE: ``data.repeated_sampling`` clips a decoded video, all in the batch, so
one step sees ``optim.batch_size * repeated_sampling`` clips (the lr-scaling batch); masks come from a
CPU generator seeded by (seed, step, rank), and their token indices reach the GPU in one asynchronous
copy from pinned memory (``mask_indices``). MoCo v3: the two views are two clips of one visit, each
with its own crop and MoCo v3's colour jitter, grayscale, blur and solarisation (``moco_views``).

With gradient accumulation (``optim.micro_batch_size``) a VideoMAE micro-step takes its rows of the
masks its optimiser step would draw at once, so an accumulated step sees the same clips and the same
masks as the step without accumulation. MoCo v3 updates its momentum encoder once an optimiser step
(at the first micro-step, as without accumulation); its InfoNCE and its BatchNorm heads see one
micro-step's micro-batch (x processes), not the global batch (README).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import torch
from torch import nn

from vmae.config import PretrainConfig, to_dict
from vmae.data import loaders
from vmae.data.color_augment import ViewAugment
from vmae.data.transforms import normalize, to_device_normalized
from vmae.models import build_moco, build_videomae
from vmae.models.mae import VideoMAE
from vmae.models.masking import make_mask, split_mask
from vmae.models.moco import cosine_momentum
from vmae.train import cli_common
from vmae.train.batches import train_loaders
from vmae.train.distributed import DistEnv, accumulation_steps, shutdown, wrap_model
from vmae.train.flops import moco_pair_flops, videomae_clip_flops
from vmae.train.loop import train
from vmae.train.optim import fit_to_step_budget, param_groups
from vmae.train.pretext import pretext_skill
from vmae.train.step import Micro, StepFn, StepOutput, Trainable, derive_seed


def add_arguments(parser: argparse.ArgumentParser) -> None:
    cli_common.add_run_arguments(parser)
    parser.add_argument("--method", choices=["videomae", "mocov3"], help="pretraining method (overrides the config)")
    parser.add_argument("--eval-manifest", type=Path,
                        help="held-out videos VideoMAE's pretext skill is measured on (default: DATA/val.csv)")


def mask_indices(mask: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """A CPU mask (B, N) -> ``(visible_idx (B, N_vis), masked_idx (B, N_masked))`` on ``device``.

    Split on the CPU (no device sync), written into one pinned buffer on CUDA and moved by one
    ``non_blocking`` copy: truly asynchronous, where a copy from pageable memory would first wait
    for everything queued on the GPU.
    """
    visible, masked = split_mask(mask)
    flat = torch.empty(mask.numel(), dtype=torch.long, pin_memory=device.type == "cuda")
    torch.cat([visible.flatten(), masked.flatten()], out=flat)
    flat = flat.to(device, non_blocking=True)
    return flat[: visible.numel()].view_as(visible), flat[visible.numel():].view_as(masked)


class VideoMAEObjective(nn.Module):
    """The whole VideoMAE training objective as one module, so ``torch.compile`` fuses the input
    normalisation, the model and the targets into one graph, and DDP wraps it.

    forward(clips (B, C, T, H, W) uint8 from the loader, or float already normalised,
    visible_idx (B, N_vis), masked_idx (B, N_masked) on the clips' device) -> the MSE between the
    predicted and the target pixels of the masked tubelets (fp32 scalar). Its state dict is the
    VideoMAE's under ``mae.``; checkpoint the VideoMAE itself.
    """

    def __init__(self, mae: VideoMAE, cfg: PretrainConfig):
        super().__init__()
        self.mae = mae
        self.mean, self.std = cfg.data.mean, cfg.data.std
        self.norm_pix = cfg.norm_pix_loss

    def forward(self, clips: torch.Tensor, visible_idx: torch.Tensor, masked_idx: torch.Tensor) -> torch.Tensor:
        video = normalize(clips, self.mean, self.std) if clips.dtype == torch.uint8 else clips
        return self.mae.loss(video, visible_idx, masked_idx, self.norm_pix)


def videomae_step(net: nn.Module, cfg: PretrainConfig, env: DistEnv, grid: tuple[int, int, int]) -> StepFn:
    """Batch ``(clips (B, k, C, T, H, W), labels, bad)`` -> masked-reconstruction loss over B*k clips.

    net: ``wrap_model`` of a ``VideoMAEObjective``. The masks of optimiser step ``s`` are drawn for
    all ``micro.count * B*k`` clips of the step from a generator seeded by (seed, s, rank); micro-step
    j takes rows ``j*B*k .. (j+1)*B*k - 1`` (without accumulation: all of them)."""

    def step(batch, step_index: int, micro: Micro = Micro()) -> StepOutput:
        clips, _, bad = batch
        clips = clips.flatten(0, 1).to(env.device, non_blocking=True)  # (B*k, C, T, H, W)
        rows = clips.shape[0]
        generator = torch.Generator().manual_seed(derive_seed(cfg.seed, step_index, env.rank))
        mask = make_mask(cfg.masking, rows * micro.count, grid, cfg.mask_ratio, generator)  # on the CPU
        mask = mask[micro.index * rows:(micro.index + 1) * rows]  # (B*k, N)
        loss = net(clips, *mask_indices(mask, clips.device))
        return StepOutput(loss, clips=clips.shape[0], bad=bad.sum())

    return step


def moco_views(clips: torch.Tensor, cfg: PretrainConfig, env: DistEnv, step_index: int, micro: Micro
               ) -> torch.Tensor:
    """A loader batch (B, 2, C, T, H, W) -> the two views normalised on the device, each with MoCo
    v3's appearance augmentations (``moco.augment``) drawn from a generator seeded by (seed, step,
    rank, micro-step): a resumed run draws the same."""
    mean, std = cfg.data.mean, cfg.data.std
    views = to_device_normalized(clips, env.device, mean, std)
    if not cfg.moco.augment:
        return views
    shape = (1, 3, 1, 1, 1)
    mean_t, std_t = (torch.tensor(v, device=views.device).view(shape) for v in (mean, std))
    generator = torch.Generator().manual_seed(derive_seed(cfg.seed, step_index * micro.count + micro.index, env.rank))
    augment = ViewAugment(cfg.moco)
    pixels = [augment(views[:, v] * std_t + mean_t, v, generator) for v in (0, 1)]  # [0, 1]
    return torch.stack([(p - mean_t) / std_t for p in pixels], dim=1)


def moco_step(net: torch.nn.Module, env: DistEnv, cfg: PretrainConfig, total_steps: int) -> StepFn:
    """Batch ``(clips (B, 2, C, T, H, W), labels, bad)`` -> symmetric InfoNCE of the two views
    (``moco_views``); the momentum encoder follows ``cosine_momentum(step, total_steps)`` (optimiser
    steps), updated at an optimiser step's first micro-step only (momentum 1 = unchanged on the others)."""

    def step(batch, step_index: int, micro: Micro = Micro()) -> StepOutput:
        clips, _, bad = batch
        views = moco_views(clips, cfg, env, step_index, micro)
        momentum = cosine_momentum(step_index, total_steps, cfg.moco.momentum) if micro.index == 0 else 1.0
        loss = net(views[:, 0], views[:, 1], momentum)
        return StepOutput(loss, clips=2 * views.shape[0], bad=bad.sum())

    return step


def pretraining(cfg: PretrainConfig, env: DistEnv, steps_per_epoch: int) -> Trainable:
    """The model, its wrapper, parameter groups and step function of ``cfg.method`` on ``env.device``;
    ``steps_per_epoch``: optimiser steps an epoch (MoCo v3's momentum schedule runs over the run's steps)."""
    videomae = cfg.method == "videomae"
    model = build_videomae(cfg.model) if videomae else build_moco(cfg)
    # MoCo's in-forward EMA update stays eager
    net = wrap_model(VideoMAEObjective(model, cfg) if videomae else model, env, cfg.compile and videomae)
    groups = param_groups(model, cfg.optim.weight_decay)
    if videomae:
        return Trainable(model, net, groups, videomae_step(net, cfg, env, model.grid),
                         cfg.optim.batch_size * cfg.data.repeated_sampling)
    # MoCo scales lr by pairs (its batch = videos)
    return Trainable(model, net, groups, moco_step(net, env, cfg, cfg.optim.epochs * steps_per_epoch),
                     cfg.optim.batch_size)


def main(args: argparse.Namespace) -> int:
    cfg = cli_common.load_run_config(PretrainConfig, args, method=args.method)
    run_config = to_dict(cfg)
    out: Path = args.out
    if cli_common.finished(out, run_config, args):
        return 0
    env = cli_common.start(cfg.seed, cfg.device)
    videomae = cfg.method == "videomae"
    dataset = cli_common.training_clips(args, cfg, cfg.data.repeated_sampling if videomae else 2, env,
                                        labelled=False)
    cfg = dataclasses.replace(cfg, optim=fit_to_step_budget(cfg.optim, len(dataset)))
    make_loader = train_loaders(dataset, cfg.optim.batch_size, cfg.data.num_workers, env, cfg.seed,
                                cfg.optim.epochs, cfg.optim.micro_batch_size)
    run = pretraining(cfg, env, len(make_loader(0)) // accumulation_steps(cfg.optim.batch_size,
                                                                            cfg.optim.micro_batch_size, env))
    model = run.model
    result = train(model, run.step, run.groups, make_loader, cfg.optim, env, out,
                   seed=cfg.seed, clips_per_step=run.clips_per_step, run_config=run_config, method=cfg.method,
                   batch_transform=loaders.batch_transform(dataset, cfg.compile, env.device), net=run.net,
                   inputs=cli_common.input_identity(args))
    # MoCo v3 counts both views of a pair as clips; its FLOPs are per pair
    flops = videomae_clip_flops(cfg) * result.clips if videomae else moco_pair_flops(cfg) * result.clips / 2
    pretext = {}
    if videomae and env.is_main:
        views = cli_common.fixed_views(args, cfg, env, cli_common.eval_manifest(args), clips=1, crops=1)
        pretext = {"pretext": pretext_skill(model, views, cfg, env.device).as_dict()}
    cli_common.write_metrics(out, cfg, args, env, {
        "method": cfg.method, "epochs": result.epochs, "steps": result.steps, "clips": result.clips,
        "train_flops": flops, "final_loss": result.final_loss, **pretext,
        "train_videos": len(dataset), "lr": result.lr, "wall_s": result.wall_s,
        "clips_per_s": result.clips_per_s, "bad_videos": result.bad_videos,
    })
    shutdown(env)
    return 0
