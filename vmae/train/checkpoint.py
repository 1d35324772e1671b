"""Atomic training checkpoints with everything needed to resume bit-exactly.

A checkpoint is a dict: ``model`` (state dict), ``optimizer``, ``step`` (optimiser steps done; the lr
schedule is a function of it), ``epoch`` (epochs completed), ``rng`` (torch / numpy / python / cuda
states), ``config`` (the resolved run config as a plain dict), ``method``, plus whatever extra keys
the caller adds. It is written through ``vmae.atomic`` (a temporary file + ``os.replace``), so a kill at any moment
leaves either the previous checkpoint or the new one, never half a file; a full disk is a one-line
``DiskFullError`` naming the checkpoint.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vmae.atomic import atomic_open
from vmae.models.torch_files import load_torch_file

CHECKPOINT_NAME = "checkpoint.pt"


def rng_state() -> dict[str, Any]:
    """The state of every random generator a training step may draw from, as tensors and plain
    Python values (so the checkpoint loads with ``torch.load(weights_only=True)``)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)],
        "python": random.getstate(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the generators saved by ``rng_state``."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    random.setstate(state["python"])


def save_checkpoint(path: str | Path, checkpoint: dict[str, Any]) -> None:
    """Write ``checkpoint`` to ``path`` atomically (temporary file in the same folder + rename); a
    full disk raises ``vmae.atomic.DiskFullError`` and leaves the previous checkpoint as it was."""
    with atomic_open(path, "wb", what="the checkpoint") as handle:
        torch.save(checkpoint, handle)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by ``save_checkpoint`` onto the CPU (tensors and plain values only,
    through ``load_torch_file``: a damaged or foreign file is a one-line error)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no checkpoint there")
    return load_torch_file(path)
