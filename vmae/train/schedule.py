"""A training run's step counts and learning rates (warm-up + cosine, ``lr = base_lr x batch / 256``,
the batch in clips, or for fine-tuning in videos)."""

from __future__ import annotations

from dataclasses import dataclass

from vmae.config import OptimConfig
from vmae.train import optim
from vmae.train.distributed import DistEnv, accumulation_steps


@dataclass(frozen=True)
class Schedule:
    """A run's step counts and learning rates, computed once from its config and loader length."""

    accumulate: int  # micro-steps an optimiser step (k)
    steps_per_epoch: int  # optimiser steps
    total_steps: int
    warmup_steps: int
    peak_lr: float  # base_lr x clips_per_step / 256
    min_lr: float

    @classmethod
    def of(cls, cfg: OptimConfig, micro_steps: int, clips_per_step: int, env: DistEnv) -> Schedule:
        """micro_steps: the loader's batches an epoch; clips_per_step: an optimiser step's clips, all
        processes (the lr-scaling batch). Printed on rank 0, with warnings."""
        accumulate = accumulation_steps(cfg.batch_size, cfg.micro_batch_size, env)
        if micro_steps % accumulate:
            raise ValueError(f"the training loader yields {micro_steps} micro-batches an epoch, not a multiple of "
                             f"the {accumulate} micro-steps of an optimiser step")
        steps_per_epoch = micro_steps // accumulate
        if steps_per_epoch == 0:
            raise ValueError("the training loader yields no full batch: fewer videos than optim.batch_size")
        peak_lr = optim.scaled_lr(cfg.base_lr, clips_per_step)
        schedule = cls(accumulate, steps_per_epoch, cfg.epochs * steps_per_epoch,
                       round(cfg.warmup_epochs * steps_per_epoch), peak_lr, min(cfg.min_lr, peak_lr))
        if env.is_main:
            schedule.announce(cfg, clips_per_step, env)
        return schedule

    def announce(self, cfg: OptimConfig, clips_per_step: int, env: DistEnv) -> None:
        print(f"lr = base_lr {cfg.base_lr:g} x batch {clips_per_step} / 256 = {self.peak_lr:.3g}; "
              f"{self.steps_per_epoch} steps/epoch, {self.warmup_steps} warm-up of {self.total_steps} steps",
              flush=True)
        if self.accumulate > 1:
            print(f"gradient accumulation: {self.accumulate} micro-steps of optim.micro_batch_size="
                  f"{cfg.micro_batch_size} videos x {env.world_size} process(es) = optim.batch_size="
                  f"{cfg.batch_size} a step", flush=True)
        if self.warmup_steps > self.total_steps:
            print(f"warning: optim.warmup_epochs={cfg.warmup_epochs:g} > optim.epochs={cfg.epochs}: "
                  "the lr never reaches its peak", flush=True)

    def lr(self, step: int) -> float:
        return optim.lr_at(step, self.total_steps, self.warmup_steps, self.peak_lr, self.min_lr)
