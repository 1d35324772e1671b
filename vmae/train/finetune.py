"""`vmae finetune`: supervised training of encoder + linear head, from a checkpoint or from scratch.

    vmae finetune --data DIR --out DIR [--init CKPT] [--train-manifest CSV] [--epochs N] [--seed S]
                  [--config YAML] [key=value ...]

Without ``--init`` this is the scratch baseline. Layer-wise lr decay (``optim.layer_decay``), drop
path (``model.drop_path_rate``), head dropout (``model.head_drop_rate``), random erasing
(``data.erase_p``), timm ``Mixup`` / CutMix with label smoothing when ``mixup`` or ``cutmix`` > 0
(else cross-entropy with label smoothing), ``data.repeated_sampling`` clips a visit (the lr scales
with the videos a step, ``optim.batch_size``).
At the end (and every ``eval_every`` epochs) multi-view testing on ``--eval-manifest`` (default
DATA/val.csv): softmax averaged over each video's views. Writes ``checkpoint.pt``, ``log.jsonl``, ``predictions.csv`` and
``metrics.json`` (top1, top5 in percent, train_videos, val_videos, bad_videos, val_bad_videos, init,
epochs, optimiser steps, clips seen, wall_s, clips_per_s, final_loss).

With gradient accumulation (``optim.micro_batch_size``) an optimiser step's gradient equals the
whole batch's without mixup / CutMix (the mean cross-entropy of equal micro-batches); with them each
micro-batch draws its own mixing weight and pairs clips within itself, as each process does under DDP.
"""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path
from typing import Any

import torch
from timm.data import Mixup
from timm.loss import SoftTargetCrossEntropy
from torch import nn

from vmae.config import DataConfig, FinetuneConfig, to_dict
from vmae.data import loaders
from vmae.data.clip_augment import ClipErasing
from vmae.data.transforms import to_device_normalized
from vmae.models import build_encoder
from vmae.models.checkpoints import load_encoder_weights
from vmae.models.vit import VideoViT, layer_id
from vmae.train import cli_common
from vmae.train.batches import train_loaders
from vmae.train.distributed import DistEnv, shutdown, wrap_model
from vmae.train.flops import encoder_clip_flops
from vmae.train.evaluate import (
    VideoOutputs,
    accuracy_metrics,
    video_outputs,
    write_predictions,
)
from vmae.train.loop import train
from vmae.train.optim import param_groups
from vmae.train.step import Micro, StepFn, StepOutput, Trainable


def add_arguments(parser: argparse.ArgumentParser) -> None:
    cli_common.add_run_arguments(parser, init=True)


def video_mixup(cfg: FinetuneConfig, num_classes: int) -> Mixup | None:
    """timm Mixup / CutMix with label smoothing, or None when both alphas are 0."""
    if cfg.mixup <= 0 and cfg.cutmix <= 0:
        return None
    return Mixup(mixup_alpha=cfg.mixup, cutmix_alpha=cfg.cutmix, label_smoothing=cfg.label_smoothing,
                 num_classes=num_classes)


def mix_clips(mixup: Mixup, video: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply image Mixup / CutMix to clips: video (B, C, T, H, W) is seen as (B, C*T, H, W), so a
    CutMix box cuts the same region from every frame. -> (mixed video, soft targets (B, K))."""
    b, c, t, h, w = video.shape
    mixed, targets = mixup(video.reshape(b, c * t, h, w), labels)
    return mixed.reshape(b, c, t, h, w), targets


def classification_step(net: nn.Module, env: DistEnv, data_cfg: DataConfig, mixup: Mixup | None,
                        label_smoothing: float, erasing: ClipErasing | None = None, seed: int = 0) -> StepFn:
    """Batch ``(clips (B, k, C, T, H, W), labels (B,), bad)`` -> cross-entropy over the B*k clips;
    ``erasing`` (``data.erase_p``) erases the normalised clips before mixup, its draws seeded by
    ``seed``, the rank, the step and the micro-step."""
    criterion = SoftTargetCrossEntropy() if mixup else nn.CrossEntropyLoss(label_smoothing=label_smoothing)

    def step(batch, step_index: int, micro: Micro = Micro()) -> StepOutput:
        clips, labels, bad = batch
        k = clips.shape[1]
        # (B*k, C, T, H, W)
        video = to_device_normalized(clips.flatten(0, 1), env.device, data_cfg.mean, data_cfg.std)
        targets = labels.repeat_interleave(k).to(env.device, non_blocking=True)
        if erasing is not None:
            video = erasing(video, seed=f"{seed}/{env.rank}/{step_index}/{micro.index}")
        if mixup is not None:
            video, targets = mix_clips(mixup, video, targets)
        logits = net(video)
        # at least fp32 (bf16 under autocast), float64 kept (the accumulation tests)
        loss = criterion(logits.to(torch.promote_types(logits.dtype, torch.float32)), targets)
        return StepOutput(loss, clips=video.shape[0], bad=bad.sum())

    return step


def classifier_training(model: VideoViT, cfg: FinetuneConfig, env: DistEnv) -> Trainable:
    """What the loop trains to fine-tune ``model`` (its head sized for the target's classes): the
    model on ``env.device`` (DDP, compiled where ``cfg.compile``), its parameter groups with
    layer-wise lr decay, and the step (random erasing, mixup / CutMix where the config has them).
    The lr scales with the videos a step, not its clips (``data.repeated_sampling`` clips a video), as
    the official fine-tuning's: ``lr = base_lr x optim.batch_size / 256``."""
    net = wrap_model(model, env, cfg.compile)
    groups = param_groups(model, cfg.optim.weight_decay, cfg.optim.layer_decay,
                          layer_of=partial(layer_id, depth=model.depth), num_layers=model.depth + 1)
    erasing = ClipErasing(cfg.data.erase_p, env.device) if cfg.data.erase_p > 0 else None
    step = classification_step(net, env, cfg.data, video_mixup(cfg, model.num_classes), cfg.label_smoothing,
                               erasing, cfg.seed)
    return Trainable(model, net, groups, step, cfg.optim.batch_size)


def evaluate_classifier(model: VideoViT, dataset, env: DistEnv, cfg: FinetuneConfig) -> VideoOutputs:
    """View-averaged softmax probabilities of every readable validation video."""
    model.eval()
    return video_outputs(lambda clips: model(clips).softmax(dim=-1), dataset, env.device,
                         cfg.optim.batch_size, cfg.data.num_workers)


def main(args: argparse.Namespace) -> int:
    cfg = cli_common.load_run_config(FinetuneConfig, args)
    run_config = to_dict(cfg)
    out: Path = args.out
    if cli_common.finished(out, run_config, args):
        return 0
    env = cli_common.start(cfg.seed, cfg.device)
    train_set = cli_common.training_clips(args, cfg, cfg.data.repeated_sampling, env)
    val_set = cli_common.eval_views(args, cfg, env)
    num_classes = train_set.info.num_classes
    model = build_encoder(cfg.model, num_classes=num_classes)
    if args.init:
        for line in load_encoder_weights(model, args.init, trust=args.trust_checkpoint):
            print(line)
    run = classifier_training(model, cfg, env)

    def periodic_eval(epoch: int) -> dict[str, Any]:
        if not cfg.eval_every or epoch % cfg.eval_every or epoch == cfg.optim.epochs:
            return {}
        result = evaluate_classifier(model, val_set, env, cfg)
        return {f"val_{k}": v for k, v in accuracy_metrics(result.outputs, result.labels).items()}

    make_loader = train_loaders(train_set, cfg.optim.batch_size, cfg.data.num_workers, env, cfg.seed,
                                cfg.optim.epochs, cfg.optim.micro_batch_size)
    result = train(model, run.step, run.groups, make_loader, cfg.optim, env, out, seed=cfg.seed,
                   clips_per_step=run.clips_per_step, run_config=run_config,
                   method="finetune", on_epoch_end=periodic_eval, inputs=cli_common.input_identity(args),
                   batch_transform=loaders.batch_transform(train_set, cfg.compile, env.device), net=run.net)
    if env.is_main:
        predictions = evaluate_classifier(model, val_set, env, cfg)
        write_predictions(out / "predictions.csv", predictions)
        cli_common.write_metrics(out, cfg, args, env, {
            **accuracy_metrics(predictions.outputs, predictions.labels), "epochs": result.epochs, "steps": result.steps,
            "clips": result.clips, "train_flops": encoder_clip_flops(cfg.model, num_classes, True) * result.clips,
            "eval_flops": encoder_clip_flops(cfg.model, num_classes, False) * len(val_set) * val_set.clips * val_set.crops,
            "final_loss": result.final_loss,
            "train_videos": len(train_set), "val_videos": len(val_set), "bad_videos": result.bad_videos,
            "val_bad_videos": predictions.bad_videos,
            "lr": result.lr, "wall_s": result.wall_s, "clips_per_s": result.clips_per_s,
        })
    shutdown(env)
    return 0

