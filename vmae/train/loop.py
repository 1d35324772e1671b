"""The one training loop behind every method (VideoMAE, MoCo v3, supervised fine-tuning).

A method supplies a ``step_fn(batch, step, micro) -> StepOutput`` (forward + loss of one batch) and
the parameter groups; the loop owns everything else: AdamW, ``lr = base_lr * clips / 256`` (computed once
and printed), the per-step warm-up + cosine schedule with per-group ``lr_scale``, gradient clipping,
bf16 autocast on CUDA (fp32 on CPU), resume after a kill, one JSON line an epoch in ``<out>/log.jsonl``,
and a stop with a clear error on a non-finite loss. A person watching sees ``vmae.train.monitor``'s
readable line an epoch on stdout, a tqdm bar on a terminal (plain progress lines in a log instead)
and TensorBoard event files in ``<out>/tb/``.

Files: every epoch's state goes to ``<out>/resume.pt``; when the last epoch is done it is renamed
to ``<out>/checkpoint.pt``. So ``checkpoint.pt`` exists only for a finished run (a Snakemake output:
Snakemake deletes a rerun job's outputs first), while the state a kill leaves behind is not an output
and survives into the rerun, which resumes from it (from ``checkpoint.pt`` where there is no
``resume.pt``). A run whose config changed refuses either file (``check_same_config``); a fresh start
empties ``log.jsonl``, so the log always describes one run.

Randomness is a function of (seed, epoch, rank): every epoch starts with
``torch.manual_seed(derive_seed(seed, epoch, rank))`` and iterates ``make_loader(epoch)``, whose
batches (order and augmentations) are a function of (seed, epoch) only (``vmae.train.batches.train_loaders``
cuts one DataLoader iteration into epochs, so its workers start once and never wait at an epoch's
start). numpy / python states come back from the checkpoint. So a run killed and resumed ends bit-identical on CPU.

Batches reach ``step_fn`` with their tensors already on the device: on CUDA a
``vmae.train.prefetch.DevicePrefetcher`` copies the next batch on a side stream while the current
step computes (and applies ``batch_transform`` there, e.g. the deferred crops of
``vmae.data.device_augment``). The loss and the skipped-video count are accumulated on the device
and read once an epoch (no per-step host sync on CUDA); the first non-finite step is tracked on the
device too, and read every ``FINITE_CHECK_EVERY`` micro-steps (one small sync), so a nan / inf loss
stops training within a few steps and the error names the step. The checkpoint is rewritten only
after an epoch whose losses were all finite, so the last good one is kept.

Resuming needs the same config (``check_same_config``) and the same inputs (``inputs``: the resolved
``--data``, the training manifest and ``--init`` with their checksums, ``cli_common.input_identity``).

Gradient accumulation (``optim.micro_batch_size``, ``distributed.accumulation_steps``): an optimiser
step is ``k`` micro-steps, each a forward and a backward of one micro-batch of the loader (the
loader yields micro-batches: ``vmae.train.batches.train_loaders``); gradients add up in ``.grad`` (zeroed
before the first micro-step), each micro-step backpropagates ``loss / k``, and the lr is set, the
gradient clipped and the optimiser stepped once, after the last. DDP all-reduces only in the last
micro-step's backward (``no_sync`` on the others). ``step`` (the schedule, the masks' seeds, the log,
the checkpoint) counts optimiser steps and ``clips`` counts clips, exactly as without accumulation.
The state (``resume.pt``) is written at epoch ends only, and an epoch is a whole number of optimiser
steps, so it never falls inside an accumulation cycle: a killed run resumes at the start of the epoch
after the last one saved (the micro-steps done since are repeated, as the steps are without
accumulation).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from vmae.config import OptimConfig
from vmae.errors import UserError
from vmae.train import optim
from vmae.train.checkpoint import (
    CHECKPOINT_NAME,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from vmae.train.distributed import DistEnv, all_reduce, barrier, no_sync
from vmae.train.monitor import EpochProgress, RunMonitor
from vmae.train.prefetch import DevicePrefetcher
from vmae.train.run_files import (
    LOG_NAME,
    RESUME_NAME,
    check_same_config,
    check_same_inputs,
    truncate_log,
)
from vmae.train.schedule import Schedule
from vmae.train.step import Micro, StepFn, derive_seed

FINITE_CHECK_EVERY = 8  # micro-steps between reads of the device-side non-finite flag (a host sync each)


class NonFiniteLossError(UserError, RuntimeError):
    """The loss became NaN or infinite; training stopped and the last good checkpoint was kept."""


@dataclass
class TrainResult:
    """Totals over the whole run (all processes, all resumptions)."""

    epochs: int
    steps: int  # optimiser steps
    clips: int  # training clips seen, all processes
    lr: float  # the peak lr actually used
    final_loss: float  # mean loss of the last epoch
    wall_s: float  # training time only (sum of epoch times)
    clips_per_s: float
    bad_videos: int


def _stop_if_non_finite(first_bad: torch.Tensor, total_steps: int, env: DistEnv, epoch: int,
                        resume_path: Path) -> None:
    """Raise ``NonFiniteLossError`` when any process saw a non-finite loss (``first_bad`` < the run's
    steps); one host sync. Every process must call it at the same micro-step (it all-reduces)."""
    bad_step = int(all_reduce(first_bad.clone(), env, dist.ReduceOp.MIN).item())
    if bad_step < total_steps:
        kept = (f"the last good checkpoint {resume_path} (after epoch {epoch}) is kept" if epoch
                else "no checkpoint was written")
        raise NonFiniteLossError(
            f"non-finite loss at epoch {epoch + 1}, step {bad_step} (global); training stopped, {kept}"
        )


def train(
    model: nn.Module,
    step_fn: StepFn,
    groups: list[dict],
    make_loader: Callable[[int], Iterable],
    cfg: OptimConfig,
    env: DistEnv,
    out_dir: str | Path,
    *,
    seed: int,
    clips_per_step: int,
    run_config: dict[str, Any],
    method: str,
    on_epoch_end: Callable[[int], dict[str, Any]] | None = None,
    batch_transform: Callable[[Any], Any] | None = None,
    net: nn.Module | None = None,
    inputs: dict[str, Any] | None = None,
) -> TrainResult:
    """Train ``model`` for ``cfg.epochs`` epochs, resuming from ``<out_dir>/resume.pt`` (else
    ``checkpoint.pt``) if present; the last epoch's state ends as ``checkpoint.pt``.

    model: the unwrapped module (its state dict is checkpointed); ``step_fn`` may call a DDP /
    compiled wrapper of it; it gets each batch with its tensors on ``env.device`` (moved by a
    ``DevicePrefetcher``). groups: from ``optim.param_groups``. make_loader(epoch): the batches
    of one epoch for ``step_fn`` (the same length every epoch), a function of (seed, epoch) only.
    clips_per_step: clips of one optimiser step over all processes (the
    lr scaling batch). on_epoch_end(epoch) (rank 0 only, 1-based epoch) returns extra log fields.
    batch_transform: applied to each batch on the device before ``step_fn`` (``DevicePrefetcher``),
    e.g. ``vmae.data.loaders.batch_transform``'s ``RenderClips``.

    With ``cfg.micro_batch_size`` (k = ``accumulation_steps`` > 1 micro-steps an optimiser step) the
    loader's batches are micro-batches, ``k`` times as many an epoch, and ``step_fn`` gets each with
    ``Micro(index, k)``. net: the module ``step_fn`` calls (DDP, maybe compiled; default ``model``):
    its ``no_sync()`` keeps the gradients local on the micro-steps that do not step.
    inputs: what identifies the run's data and init besides its config (saved in the checkpoint;
    resuming with other inputs is refused).
    """
    schedule = Schedule.of(cfg, len(make_loader(0)), clips_per_step, env)  # type: ignore[arg-type]
    run = Trainer(model, groups, cfg, env, Path(out_dir), schedule, net)
    run.resume(run_config, inputs)
    for epoch in range(run.start_epoch, cfg.epochs):
        torch.manual_seed(derive_seed(seed, epoch, env.rank))
        sums = run.run_epoch(step_fn, make_loader(epoch), epoch, batch_transform)
        run.finish_epoch(epoch, sums, on_epoch_end, {"config": run_config, "method": method, "inputs": inputs})
    return run.finish()


@dataclass
class Totals:
    """Sums over a run's finished epochs (all processes, all resumptions); saved in the checkpoint."""

    wall_s: float = 0.0
    clips: int = 0
    bad_videos: int = 0
    final_loss: float = math.nan  # mean loss of the last finished epoch


@dataclass
class EpochSums:
    """One epoch's running sums, kept on the device (read once, at the epoch's end)."""

    loss: torch.Tensor  # sum of the optimiser steps' mean losses
    first_bad: torch.Tensor  # first step with a non-finite loss (total_steps: none)
    bad: torch.Tensor  # unreadable videos skipped
    started: float  # perf_counter at the epoch's start
    lr: float  # the lr of the last optimiser step
    clips: int = 0


class Trainer:
    """The state of one run of ``train``: model, optimiser, step, totals and the files of
    ``out_dir``; ``resume`` -> (``run_epoch`` -> ``finish_epoch``) per epoch -> ``finish``."""

    def __init__(self, model: nn.Module, groups: list[dict], cfg: OptimConfig, env: DistEnv, out_dir: Path,
                 schedule: Schedule, net: nn.Module | None) -> None:
        self.model, self.cfg, self.env, self.schedule = model, cfg, env, schedule
        self.net = net if net is not None else model  # whose no_sync() keeps micro-steps local
        self.optimizer = optim.build_optimizer(groups, cfg, schedule.peak_lr, env.device)
        self.params = [p for g in groups for p in g["params"]]
        self.ckpt_path, self.log_path = out_dir / CHECKPOINT_NAME, out_dir / LOG_NAME
        self.resume_path = out_dir / RESUME_NAME
        self.step, self.start_epoch, self.totals = 0, 0, Totals()
        self.monitor: RunMonitor | None = None  # rank 0's readable lines and event files (``resume``)
        self.autocast = torch.autocast(env.device.type, dtype=torch.bfloat16, enabled=env.device.type == "cuda")

    def resume(self, run_config: dict[str, Any], inputs: dict[str, Any] | None) -> None:
        """Continue from ``resume.pt`` (else ``checkpoint.pt``) when there is one, after checking its
        config and inputs; a fresh start (epoch 0) empties the log of an earlier run. Rank 0 starts
        its ``RunMonitor`` here."""
        state_path = self.resume_path if self.resume_path.exists() else self.ckpt_path
        if state_path.exists():
            ckpt = load_checkpoint(state_path)
            check_same_config(state_path, ckpt["config"], run_config)
            check_same_inputs(state_path, ckpt.get("inputs"), inputs)
            self.model.load_state_dict(ckpt["model"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
            self.step, self.start_epoch, self.totals = ckpt["step"], ckpt["epoch"], Totals(**ckpt["totals"])
            set_rng_state(ckpt["rng"])
            if self.env.is_main:
                print(f"resumed {state_path} after epoch {self.start_epoch} (step {self.step})", flush=True)
        if self.env.is_main:
            truncate_log(self.log_path, self.start_epoch)
            self.monitor = RunMonitor(self.log_path.parent, self.cfg.epochs, self.schedule.total_steps,
                                      self.start_epoch)

    def run_epoch(self, step_fn: StepFn, loader: Iterable, epoch: int,
                  batch_transform: Callable[[Any], Any] | None) -> EpochSums:
        """Every (micro-)step of one epoch: forward + backward, and an optimiser step after each
        step's last micro-step; a non-finite loss stops the run within ``FINITE_CHECK_EVERY``. Rank 0
        shows a tqdm bar on a terminal, else a plain progress line every ``monitor.PROGRESS_EVERY_S``."""
        env, k = self.env, self.schedule.accumulate
        self.model.train()
        sums = EpochSums(loss=torch.zeros((), device=env.device), started=time.perf_counter(),
                         first_bad=torch.full((), self.schedule.total_steps, dtype=torch.long, device=env.device),
                         bad=torch.zeros((), dtype=torch.long, device=env.device), lr=self.schedule.peak_lr)
        label = f"epoch {epoch + 1}/{self.cfg.epochs}"
        progress = tqdm(DevicePrefetcher(loader, env.device, batch_transform), desc=label, mininterval=10,
                        leave=False, disable=None if env.is_main else True)
        plain = EpochProgress(label, self.schedule.steps_per_epoch, env.is_main and progress.disable)
        for index, batch in enumerate(progress):
            micro = Micro(index % k, k)
            self._micro_step(step_fn, batch, micro, sums)
            if (index + 1) % FINITE_CHECK_EVERY == 0:
                _stop_if_non_finite(sums.first_bad, self.schedule.total_steps, env, epoch, self.resume_path)
            if micro.last:
                sums.lr = self._optimizer_step()
                plain.update((index + 1) // k, sums.clips * env.world_size)
        return sums

    def _micro_step(self, step_fn: StepFn, batch: Any, micro: Micro, sums: EpochSums) -> None:
        """Forward and backward of one micro-batch (gradients kept local unless ``micro.last``)."""
        k, step = micro.count, self.step
        with no_sync(self.net, micro.last):
            with self.autocast:
                out = step_fn(batch, step, micro)
            if micro.index == 0:
                self.optimizer.zero_grad(set_to_none=True)
            # 1/k: the accumulated gradient is that of the mean of the k micro-batch means
            (out.loss if k == 1 else out.loss / k).backward()
        loss = out.loss.detach().float()
        sums.loss += loss if k == 1 else loss / k
        sums.first_bad = torch.where(torch.isfinite(loss) | (sums.first_bad < step), sums.first_bad,
                                     torch.full_like(sums.first_bad, step))
        sums.clips += out.clips
        sums.bad += out.bad

    def _optimizer_step(self) -> float:
        """Set the step's lr, clip the gradient, step the optimiser -> the lr used."""
        lr = self.schedule.lr(self.step)
        optim.set_lr(self.optimizer, lr)
        if self.cfg.clip_grad > 0:
            nn.utils.clip_grad_norm_(self.params, self.cfg.clip_grad)
        self.optimizer.step()
        self.step += 1
        return lr

    def finish_epoch(self, epoch: int, sums: EpochSums, on_epoch_end: Callable[[int], dict[str, Any]] | None,
                     identity: dict[str, Any]) -> None:
        """Reduce the epoch's sums over processes, stop on a non-finite loss, add to the totals, and
        (rank 0) show the epoch (``RunMonitor.epoch_done``), append the log line and write
        ``resume.pt`` (with ``identity``: config, method, inputs)."""
        env = self.env
        counts = torch.stack([torch.tensor(sums.clips, dtype=torch.float64, device=env.device), sums.bad.double()])
        counts = all_reduce(counts, env)
        loss_sum = all_reduce(sums.loss, env) / env.world_size
        _stop_if_non_finite(sums.first_bad, self.schedule.total_steps, env, epoch, self.resume_path)
        wall = time.perf_counter() - sums.started
        mean_loss = loss_sum.item() / self.schedule.steps_per_epoch
        clips, bad = int(counts[0].item()), int(counts[1].item())
        self.totals = Totals(self.totals.wall_s + wall, self.totals.clips + clips, self.totals.bad_videos + bad,
                             mean_loss)
        record = {"epoch": epoch + 1, "step": self.step, "loss": mean_loss, "lr": sums.lr,
                  "clips_per_s": counts[0].item() / wall, "wall_s": wall, "bad_videos": bad}
        if env.is_main:
            if on_epoch_end is not None:
                record.update(on_epoch_end(epoch + 1))
            # shown and in the event files before the checkpoint, like the log line (see _save):
            # a resume hides the points of epochs its checkpoint lacks (RunMonitor's purge_step)
            self.monitor.epoch_done(record)
            self._save(epoch, record, identity)
        barrier(env)

    def _save(self, epoch: int, record: dict[str, Any], identity: dict[str, Any]) -> None:
        # the log line first: a kill before the checkpoint leaves a line for an epoch the
        # checkpoint lacks, dropped on resume (truncate_log) and written again; the other way
        # round the line would be lost
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("a") as log:
            log.write(json.dumps(record) + "\n")
        save_checkpoint(self.resume_path, {
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(), "step": self.step,
            "epoch": epoch + 1, "rng": rng_state(), "config": identity["config"], "method": identity["method"],
            "totals": dataclasses.asdict(self.totals), "inputs": identity["inputs"],
        })

    def finish(self) -> TrainResult:
        """The last epoch's state becomes ``checkpoint.pt`` and the event files are closed; the run's
        totals."""
        if self.env.is_main:
            self.monitor.close()
            if self.resume_path.exists():
                os.replace(self.resume_path, self.ckpt_path)
        barrier(self.env)
        totals = self.totals
        return TrainResult(
            epochs=self.cfg.epochs, steps=self.step, clips=totals.clips, lr=self.schedule.peak_lr,
            final_loss=totals.final_loss, wall_s=totals.wall_s, bad_videos=totals.bad_videos,
            clips_per_s=totals.clips / totals.wall_s if totals.wall_s > 0 else 0.0,
        )
