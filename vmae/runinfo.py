"""What every run records beside its results: versions, git commit (and whether the tree had
uncommitted changes), device, wall time.

``metrics.json`` of every run = ``run_metadata(...)`` + the run's own results; the table builder
reads only these files.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch

from vmae import atomic


PACKAGE_DIR = Path(__file__).resolve().parent
# distributions whose version is recorded beside torch / timm / numpy (decord: None where not installed)
LIBRARIES = ("decord", "av", "scikit-learn", "scipy", "statsmodels", "pandas")


def _git(folder: Path, *args: str) -> str | None:
    """stdout of ``git ARGS`` run in ``folder``; None outside a git checkout (or without git).
    ``--no-optional-locks``: never takes the index lock, so runs do not disturb a commit in progress."""
    try:
        out = subprocess.run(["git", "--no-optional-locks", *args], cwd=folder, capture_output=True, text=True,
                             timeout=5, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout


def git_commit(folder: Path = PACKAGE_DIR) -> str:
    """The commit of the source tree of ``folder`` (default: this package's) ('' outside a git checkout)."""
    return (_git(folder, "rev-parse", "HEAD") or "").strip()


def git_dirty(folder: Path = PACKAGE_DIR) -> bool | None:
    """Whether that source tree differs from its commit (``git status --porcelain`` lists anything:
    changed, staged or untracked files); None outside a git checkout."""
    status = _git(folder, "status", "--porcelain")
    return None if status is None else bool(status.strip())


def _distribution_version(name: str) -> str | None:
    """The installed version of the distribution ``name``; None where it is not installed."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def versions() -> dict[str, str | None]:
    """Versions of the libraries that decide the numbers (None: not installed)."""
    import numpy
    import timm

    import vmae

    return {
        "vmae": vmae.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "timm": timm.__version__,
        "numpy": numpy.__version__,
        **{name: _distribution_version(name) for name in LIBRARIES},
    }


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({os.cpu_count()} cores, {torch.get_num_threads()} threads)"


def run_metadata(config: dict[str, Any], seed: int, device: torch.device) -> dict[str, Any]:
    """The fixed part of a metrics.json: resolved config, seed, versions, commit (and ``git_dirty``),
    device."""
    return {
        "config": config,
        "seed": seed,
        "versions": versions(),
        "git_commit": git_commit(),
        "git_dirty": git_dirty(),
        "device": device_name(device),
        "host": platform.node(),
    }


def write_json_atomic(path: str | Path, data: dict[str, Any]) -> None:
    """Write JSON through a temporary file and rename, so readers never see half a file."""
    atomic.write_json_atomic(path, data)
