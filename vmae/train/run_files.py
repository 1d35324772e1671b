"""The files of a training run's folder, and when a run may resume from (or call finished) what
they hold: the same config, bar keys that do not change the numbers, and the same inputs.

``log.jsonl`` holds one JSON line an epoch; ``resume.pt`` the state after the last finished epoch
until the run ends, when it becomes ``checkpoint.pt`` (``vmae.train.loop``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vmae.atomic import write_text_atomic
from vmae.config import ConfigError

LOG_NAME = "log.jsonl"
RESUME_NAME = "resume.pt"  # the state after the last finished epoch, until the run ends

# Config keys that may differ between a run and its resumption (they do not change the numbers).
RESUME_FREE_KEYS = ("device", "compile", "data.num_workers")
# Keys added after runs were written, with the value that keeps the old behaviour: a saved config
# without the key matches a current config holding that value.
ADDED_KEYS = {"optim.micro_batch_size": 0}


def config_differences(saved: dict[str, Any], current: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two config dicts, ignoring ``RESUME_FREE_KEYS``."""
    diffs = []
    for key in sorted(set(saved) | set(current)):
        dotted = f"{prefix}{key}"
        a, b = saved.get(key), current.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            diffs += config_differences(a, b, f"{dotted}.")
        elif key not in saved and dotted in ADDED_KEYS and b == ADDED_KEYS[dotted]:
            continue  # written before the key existed, and the key keeps the old behaviour
        elif a != b and dotted not in RESUME_FREE_KEYS:
            diffs.append(f"{dotted}: {a!r} saved, {b!r} now")
    return diffs


def check_same_config(path: Path, saved: dict[str, Any], current: dict[str, Any]) -> None:
    """Refuse to resume (or to call finished) a run whose config changed."""
    diffs = config_differences(saved, current)
    if diffs:
        raise ConfigError(
            f"{path} was written by a run with a different config ({'; '.join(diffs)}); "
            "use another --out or delete the old run"
        )


def check_same_inputs(path: Path, saved: dict[str, Any] | None, current: dict[str, Any] | None) -> None:
    """Refuse to resume a run whose inputs (``--data``, manifest, ``--init``: paths and checksums)
    changed. A checkpoint written before inputs were recorded (``saved`` None) is not checked."""
    if saved is None or current is None:
        return
    diffs = [f"{key}: {saved.get(key)!r} saved, {current.get(key)!r} now"
             for key in sorted(set(saved) | set(current)) if saved.get(key) != current.get(key)]
    if diffs:
        raise ConfigError(f"{path} was written by a run with other inputs ({'; '.join(diffs)}); "
                          "use another --out or delete the old run")


def log_epoch(line: str) -> int | None:
    """The ``epoch`` of one log.jsonl line, or None for a line a kill cut short (not JSON)."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record.get("epoch") if isinstance(record, dict) and isinstance(record.get("epoch"), int) else None


def truncate_log(path: Path, epochs_done: int) -> None:
    """Keep only the log lines of epochs the checkpoint holds (a kill may leave one more, or half a
    line: unparsable lines are dropped)."""
    if not path.exists():
        return
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    kept = [ln for ln in lines if (epoch := log_epoch(ln)) is not None and epoch <= epochs_done]
    write_text_atomic(path, "".join(f"{ln}\n" for ln in kept))
