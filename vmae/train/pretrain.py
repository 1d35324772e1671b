"""`vmae pretrain`: self-supervised pretraining by a registered method (vmae.methods).

    vmae pretrain --data DIR --out DIR [--train-manifest CSV] [--eval-manifest CSV]
                  [--method NAME] [--epochs N] [--seed S] [--config YAML] [key=value ...]

A step budget (``optim.steps``) sets the epochs from the training set's size (``fit_to_step_budget``).
Writes ``<out>/resume.pt`` every epoch (rerunning resumes from it; it becomes ``<out>/checkpoint.pt``
when training ends), ``<out>/log.jsonl`` and
``<out>/metrics.json`` (method, epochs, optimiser steps, clips seen, train_flops, final_loss, train_videos,
wall_s, clips_per_s, bad_videos; and, for a method that measures one, ``pretext``: its pretext measure
on the held-out videos of ``--eval-manifest`` (default DATA/val.csv, centre crops) next to a trivial
baseline's, with its ``skill``, and ``pretext_train``: the same on the run's own training videos with
fresh masks, whose gap to the held-out skill says how far the run overfit its set). Labels are ignored.

What differs between methods (the clips a video the loader cuts, the model, its step and lr batch,
FLOPs, the pretext measure, and how gradient accumulation and several processes meet the method's
batch) is its module's (vmae.methods.<name>); this command is the same for all.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from vmae import methods
from vmae.config import PretrainConfig, to_dict
from vmae.data import loaders
from vmae.train import cli_common
from vmae.train.batches import train_loaders
from vmae.train.distributed import DistEnv, accumulation_steps, shutdown
from vmae.train.loop import train
from vmae.train.optim import fit_to_step_budget
from vmae.train.step import Trainable


def add_arguments(parser: argparse.ArgumentParser) -> None:
    cli_common.add_run_arguments(parser)
    parser.add_argument("--method", choices=methods.names(), help="pretraining method (overrides the config)")
    parser.add_argument("--eval-manifest", type=Path,
                        help="held-out videos the pretext measure is taken on (default: DATA/val.csv)")


def pretraining(cfg: PretrainConfig, env: DistEnv, steps_per_epoch: int) -> Trainable:
    """The model, its wrapper, parameter groups and step function of ``cfg.method`` on ``env.device``;
    ``steps_per_epoch``: optimiser steps an epoch (for a method's schedules over the run's steps)."""
    return methods.get(cfg.method).trainable(cfg, env, steps_per_epoch)


def main(args: argparse.Namespace) -> int:
    cfg = cli_common.load_run_config(PretrainConfig, args, method=args.method)
    run_config = to_dict(cfg)
    out: Path = args.out
    if cli_common.finished(out, run_config, args):
        return 0
    env = cli_common.start(cfg.seed, cfg.device)
    method = methods.get(cfg.method)
    dataset = cli_common.training_clips(args, cfg, method.clips_a_video(cfg), env, labelled=False)
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
    flops = method.train_flops(cfg, result.clips)
    pretext = {}
    if method.pretext_clips and env.is_main:
        def measure(manifest: Path) -> dict:
            views = cli_common.fixed_views(args, cfg, env, manifest, method.pretext_clips, crops=1)
            return method.pretext(model, views, cfg, env.device)

        # held out, and on the run's own training videos (fixed views, fresh masks): their gap is overfitting
        pretext = {"pretext": measure(cli_common.eval_manifest(args)),
                   "pretext_train": measure(cli_common.train_manifest(args))}
    cli_common.write_metrics(out, cfg, args, env, {
        "method": cfg.method, "epochs": result.epochs, "steps": result.steps, "clips": result.clips,
        "train_flops": flops, "final_loss": result.final_loss, **pretext,
        "train_videos": len(dataset), "lr": result.lr, "wall_s": result.wall_s,
        "clips_per_s": result.clips_per_s, "bad_videos": result.bad_videos,
    })
    shutdown(env)
    return 0
