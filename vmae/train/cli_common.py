"""What `vmae pretrain | finetune | linprobe` share: arguments, config, start-up, data, metrics.

Arguments: ``--data DIR --out DIR [--train-manifest CSV] [--seed S] [--config YAML] [key=value ...]``
(+ ``--epochs`` / ``--init`` / ``--method`` where a command has them). The config is built by
``vmae.config.build_config``: dataclass defaults <- ``--config`` YAML <- flags <- ``key=value``.
Argparse holds no defaults of its own (flags default to None = "not given"). The files the flags
name are checked before anything else (``check_inputs``): a missing one is a one-line error.

CPU threads: ``VMAE_THREADS`` (e.g. set by a Snakemake rule from its ``threads``) sets
``torch.set_num_threads``; unset, torch's own default is kept.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import random
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from vmae.config import build_config, to_dict
from vmae.data import loaders
from vmae.data.dataset import FixedViews, TrainingClips
from vmae.data.manifest import DatasetInfo
from vmae.errors import UserError
from vmae.runinfo import run_metadata, write_json_atomic
from vmae.train.distributed import (
    DistEnv,
    init_distributed,
)
from vmae.train.run_files import check_same_config, check_same_inputs

T = TypeVar("T")
METRICS_NAME = "metrics.json"
# argument -> what it must name (a file, or for --init also a Hugging Face model folder)
INPUT_FILES = {
    "config": "a YAML config file (--config)",
    "train_manifest": "a manifest CSV file (--train-manifest)",
    "eval_manifest": "a manifest CSV file (--eval-manifest)",
    "init": "a checkpoint file or a Hugging Face model folder (--init)",
}


class MissingInputError(UserError, FileNotFoundError):
    """A file named on the command line is not there."""


def add_run_arguments(parser: argparse.ArgumentParser, *, epochs: bool = True, init: bool = False) -> None:
    """The shared arguments; ``epochs`` / ``init`` add ``--epochs`` / ``--init``."""
    parser.add_argument("--data", required=True, type=Path, help="prepared dataset folder (train.csv, val.csv, ...)")
    parser.add_argument("--out", required=True, type=Path, help="run folder (checkpoint.pt, metrics.json, log.jsonl)")
    parser.add_argument("--train-manifest", type=Path, help="training manifest (default: DATA/train.csv), e.g. a subset")
    parser.add_argument("--seed", type=int, help="run seed (overrides the config)")
    parser.add_argument("--config", type=Path, help="YAML config (keys of the command's config dataclass)")
    if epochs:
        parser.add_argument("--epochs", type=int, help="training epochs (overrides optim.epochs)")
    if init:
        parser.add_argument("--init", type=Path, help="checkpoint to initialise the encoder from (default: random)")
        parser.add_argument("--eval-manifest", type=Path,
                            help="manifest scored at the end (default: DATA/val.csv), e.g. DATA/test.csv")
        add_trust_argument(parser)
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, dotted keys (optim.base_lr=1e-3)")


def add_trust_argument(parser: argparse.ArgumentParser) -> None:
    """``--trust-checkpoint``: the explicit opt-in to unpickle ``--init`` in full
    (``vmae.models.torch_files.load_torch_file``)."""
    parser.add_argument("--trust-checkpoint", action="store_true",
                        help="unpickle --init in full when it holds more than tensors and plain values; only for a "
                             "file you trust, as unpickling can run any code the file holds")


def check_inputs(args: argparse.Namespace) -> None:
    """Raise ``MissingInputError`` for the first of ``--config`` / ``--train-manifest`` /
    ``--eval-manifest`` / ``--init`` that is given but not there (checked before any data loads)."""
    for name, expected in INPUT_FILES.items():
        path = getattr(args, name, None)
        if path is not None and not (Path(path).is_file() or name == "init" and Path(path).is_dir()):
            raise MissingInputError(f"{path}: not found: expected {expected}")


def load_run_config(cls: type[T], args: argparse.Namespace, **flags: Any) -> T:
    """The command's config: defaults <- ``--config`` <- ``--seed`` / ``--epochs`` / ``flags`` <- overrides.
    The first step of every run command, so it checks the input files first (``check_inputs``)."""
    check_inputs(args)
    epochs = getattr(args, "epochs", None)
    return build_config(cls, args.config, args.overrides, seed=args.seed, **{"optim.epochs": epochs}, **flags)


def train_manifest(args: argparse.Namespace) -> Path:
    return args.train_manifest or args.data / "train.csv"


def eval_manifest(args: argparse.Namespace) -> Path:
    return args.eval_manifest or args.data / "val.csv"


def start(seed: int, device: str) -> DistEnv:
    """Threads from ``VMAE_THREADS``, the process group (under torchrun), and the global seeds."""
    if "VMAE_THREADS" in os.environ:
        torch.set_num_threads(int(os.environ["VMAE_THREADS"]))
    env = init_distributed(device)
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)
    return env


def run_inputs(args: argparse.Namespace) -> dict[str, str | None]:
    """The input files that identify a run besides its config (recorded in metrics.json)."""
    init = getattr(args, "init", None)
    inputs = {"train_manifest": str(train_manifest(args)), "init": str(init) if init else None}
    if hasattr(args, "eval_manifest"):  # an evaluation command: the manifest it scores
        inputs["eval_manifest"] = str(eval_manifest(args))
    return inputs


def input_identity(args: argparse.Namespace) -> dict[str, str | None]:
    """What identifies a run's inputs besides its config, compared before resuming or calling a run
    finished: the resolved ``--data`` folder, training manifest and ``--init``, with the sha256 of the
    manifest and of the init file (or of every file of an init folder)."""
    init = getattr(args, "init", None)
    manifest = train_manifest(args)
    return {
        "data": str(Path(args.data).resolve()),
        "train_manifest": str(manifest.resolve()),
        "train_manifest_sha256": path_sha256(manifest) if manifest.exists() else None,
        "init": str(Path(init).resolve()) if init else None,
        "init_sha256": path_sha256(init) if init and Path(init).exists() else None,
    }


def path_sha256(path: str | Path) -> str:
    """sha256 of a file, or of a folder's files (relative names and contents, in sorted order)."""
    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    digest = hashlib.sha256()
    for file in files:
        stat = file.stat()
        digest.update(f"{file.relative_to(path).as_posix() if path.is_dir() else ''}\0".encode())
        digest.update(_file_sha256(str(file.resolve()), stat.st_size, stat.st_mtime_ns).encode())
    return digest.hexdigest()


@functools.lru_cache(maxsize=16)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    """sha256 of one file, computed once per (path, size, mtime): a checkpoint is hashed once a run."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def finished(out_dir: Path, run_config: dict[str, Any], args: argparse.Namespace) -> bool:
    """True when ``<out>/metrics.json`` exists and was written by this same config and inputs
    (rerun = no-op); an error when it was written by another."""
    path = out_dir / METRICS_NAME
    if not path.exists():
        return False
    saved = json.loads(path.read_text())
    inputs = run_inputs(args)
    check_same_config(path, {"config": saved["config"], **{k: saved.get(k) for k in inputs}},
                      {"config": run_config, **inputs})
    check_same_inputs(path, saved.get("inputs"), input_identity(args))
    print(f"{path} exists: the run is complete, nothing to do")
    return True


def write_metrics(out_dir: Path, cfg: Any, args: argparse.Namespace, env: DistEnv, results: dict[str, Any]) -> None:
    """``<out>/metrics.json`` = run metadata + the run's inputs + ``results`` (rank 0 only)."""
    if env.is_main:
        metadata = run_metadata(to_dict(cfg), cfg.seed, env.device)
        write_json_atomic(out_dir / METRICS_NAME, {**metadata, **run_inputs(args), "inputs": input_identity(args),
                                                   **results})
        print(json.dumps(results))


def training_clips(args: argparse.Namespace, cfg: Any, clips_per_visit: int, env: DistEnv,
                   labelled: bool = True) -> TrainingClips:
    """The training clips of ``--train-manifest`` (or DATA/train.csv) (``loaders.training_clips``);
    ``labelled=False`` for pretraining."""
    return loaders.training_clips(train_manifest(args), DatasetInfo.load(args.data), cfg.data, cfg.model,
                                  clips_per_visit, env.device, labelled)


def fixed_views(args: argparse.Namespace, cfg: Any, env: DistEnv, manifest: Path, clips: int, crops: int
                ) -> FixedViews:
    """``clips x crops`` fixed views of each video of ``manifest`` (``loaders.fixed_views``)."""
    return loaders.fixed_views(manifest, DatasetInfo.load(args.data), cfg.data, cfg.model, env.device, clips, crops)


def eval_views(args: argparse.Namespace, cfg: Any, env: DistEnv) -> FixedViews:
    """The evaluation views (``data.test_clips x data.test_crops``) of ``--eval-manifest`` (default DATA/val.csv)."""
    return fixed_views(args, cfg, env, eval_manifest(args), cfg.data.test_clips, cfg.data.test_crops)
