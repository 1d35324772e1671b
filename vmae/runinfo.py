"""What every run records beside its results: versions, git commit, device, wall time.

``metrics.json`` of every run = ``run_metadata(...)`` + the run's own results; the table builder
reads only these files.
"""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch

from vmae import atomic


def git_commit() -> str:
    """The commit of the source tree this package was imported from ('' outside a git checkout)."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip()


def versions() -> dict[str, str]:
    """Versions of the libraries that decide the numbers."""
    import numpy
    import timm

    import vmae

    return {
        "vmae": vmae.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "timm": timm.__version__,
        "numpy": numpy.__version__,
    }


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({os.cpu_count()} cores, {torch.get_num_threads()} threads)"


def run_metadata(config: dict[str, Any], seed: int, device: torch.device) -> dict[str, Any]:
    """The fixed part of a metrics.json: resolved config, seed, versions, commit, device."""
    return {
        "config": config,
        "seed": seed,
        "versions": versions(),
        "git_commit": git_commit(),
        "device": device_name(device),
        "host": platform.node(),
    }


def write_json_atomic(path: str | Path, data: dict[str, Any]) -> None:
    """Write JSON through a temporary file and rename, so readers never see half a file."""
    atomic.write_json_atomic(path, data)
