"""Watching a run: what the training loop shows a person besides ``log.jsonl`` (main process only).

- one readable line an epoch on stdout (the job's log under Snakemake)::

    2026-12-02 04:10:11 epoch 12/117 step 36/351 loss 0.4213 lr 1.42e-03 clips/s 95.1 elapsed 0:00:41 eta 0:06:05

  then the fields a method adds (``val_top1 45.2``) and the skipped videos where there were any;
  elapsed counts from this process's first epoch (a resumed job from its resume), the ETA is the
  mean epoch time so far (evaluation and checkpoint included) times the epochs left;
- a plain progress line every ``PROGRESS_EVERY_S`` seconds within an epoch where no tqdm bar shows
  (stderr is not a terminal, e.g. a Snakemake job)::

    epoch 3/40: step 120/280 (43%), 12.1 clips/s

- TensorBoard event files in ``<out>/tb/`` (loss, lr, clips_per_s and the numeric fields a method
  adds, one point an epoch) where ``tensorboard`` is installed (``pip install -e '.[tensorboard]'``).
  Like ``log.jsonl`` they are written from the first finished epoch on, before its checkpoint, and
  describe one run: a fresh start deletes the old event files, a resume hides the points after its
  checkpoint's epoch (``purge_step``: a kill between an epoch's points and its checkpoint).
"""

from __future__ import annotations

import datetime
import time
from pathlib import Path
from typing import Any

PROGRESS_EVERY_S = 30.0  # wall seconds between plain progress lines within an epoch (no progress bar)
EVENTS_DIR = "tb"  # <out>/tb/: TensorBoard event files
SCALARS = ("loss", "lr", "clips_per_s")  # the loop's log fields that become TensorBoard scalars
OWN_FIELDS = ("epoch", "step", *SCALARS, "wall_s", "bad_videos")  # every field the loop itself logs


def clock(seconds: float) -> str:
    """``41.4 -> '0:00:41'``, ``90061 -> '1 day, 1:01:01'``."""
    return str(datetime.timedelta(seconds=round(seconds)))


def compact(value: Any) -> str:
    """A float in 4 significant digits, anything else as it prints."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def epoch_line(record: dict[str, Any], epochs: int, total_steps: int, elapsed_s: float, eta_s: float,
               now: datetime.datetime) -> str:
    """The readable line of one epoch's log ``record`` (the loop's fields, then a method's extras)."""
    line = (f"{now:%Y-%m-%d %H:%M:%S} epoch {record['epoch']}/{epochs} step {record['step']}/{total_steps}"
            f" loss {record['loss']:.4g} lr {record['lr']:.2e} clips/s {record['clips_per_s']:.1f}"
            f" elapsed {clock(elapsed_s)} eta {clock(eta_s)}")
    extras = [f"{key} {compact(value)}" for key, value in record.items() if key not in OWN_FIELDS]
    if record.get("bad_videos"):
        extras.append(f"bad_videos {record['bad_videos']}")
    return " ".join([line, *extras])


def summary_writer_class() -> type | None:
    """torch's ``SummaryWriter``, or None with one line saying so when tensorboard is missing."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        print("TensorBoard event files are off: tensorboard is not installed "
              "(pip install -e '.[tensorboard]' turns them on)", flush=True)
        return None
    return SummaryWriter


def open_events(writer_class: type, folder: Path, start_epoch: int):
    """A ``writer_class`` on ``folder``: a resume at ``start_epoch`` hides the points after it, a
    fresh start deletes old event files."""
    if start_epoch == 0:
        for old in folder.glob("events.out.tfevents.*"):
            old.unlink()
    return writer_class(str(folder), purge_step=start_epoch + 1 if start_epoch else None)


def event_scalars(record: dict[str, Any]) -> dict[str, float]:
    """The scalars of an epoch's log record: loss, lr, clips_per_s and every numeric extra field."""
    return {key: value for key, value in record.items()
            if key in SCALARS or (key not in OWN_FIELDS and isinstance(value, (int, float))
                                  and not isinstance(value, bool))}


class RunMonitor:
    """The readable epoch lines and the event files of one run of the loop, from ``start_epoch``."""

    def __init__(self, out_dir: Path, epochs: int, total_steps: int, start_epoch: int) -> None:
        self.epochs, self.total_steps, self.start_epoch = epochs, total_steps, start_epoch
        self.started = time.perf_counter()
        self.events_dir, self.writer_class = out_dir / EVENTS_DIR, summary_writer_class()
        self.events = None  # opened at the first finished epoch

    def epoch_done(self, record: dict[str, Any]) -> None:
        """Print the epoch's readable line and write its scalars (step = the 1-based epoch)."""
        elapsed = time.perf_counter() - self.started
        done = record["epoch"]
        eta = elapsed / (done - self.start_epoch) * (self.epochs - done)
        print(epoch_line(record, self.epochs, self.total_steps, elapsed, eta, datetime.datetime.now()), flush=True)
        if self.writer_class is None:
            return
        if self.events is None:
            self.events = open_events(self.writer_class, self.events_dir, self.start_epoch)
        for key, value in event_scalars(record).items():
            self.events.add_scalar(key, value, done)
        self.events.flush()

    def close(self) -> None:
        if self.events is not None:
            self.events.close()


class EpochProgress:
    """Plain progress lines within one epoch, every ``PROGRESS_EVERY_S`` seconds, where ``enabled``
    (the main process, when no tqdm bar shows)."""

    def __init__(self, label: str, steps: int, enabled: bool) -> None:
        self.label, self.steps, self.enabled = label, steps, enabled
        self.started = self.last = time.perf_counter()

    def update(self, step: int, clips: int) -> None:
        """After ``step`` optimiser steps of the epoch and ``clips`` clips (all processes)."""
        now = time.perf_counter()
        if not self.enabled or now - self.last < PROGRESS_EVERY_S:
            return
        self.last = now
        print(f"  {self.label}: step {step}/{self.steps} ({step / self.steps:.0%}),"
              f" {clips / (now - self.started):.1f} clips/s", flush=True)
