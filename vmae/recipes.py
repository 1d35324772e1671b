"""The training recipes of a workflow config: the command config file, epochs and ``key=value``
overrides a registered method (vmae.methods, e.g. ``videomae``) or protocol (``finetune``,
``linprobe``) gets for one dataset. workflow/rules/common.smk builds every training command from ``recipe`` and
``model_overrides``; ``vmae bench memory`` builds the same configs outside Snakemake, from the config
file as Snakemake merges it (``load_workflow_config``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from vmae.data.registry import REPO_ROOT
from vmae.errors import UserError
from vmae.workflow_config import validate_config

DEFAULT_CONFIG = REPO_ROOT / "workflow" / "config" / "config.yaml"
SCHEMA = REPO_ROOT / "workflow" / "schemas" / "config.schema.yaml"


@dataclass(frozen=True)
class Recipe:
    """How one method or protocol trains on one dataset."""

    config: str  # the command's YAML (``--config``), as the workflow config names it
    epochs: int | None  # ``--epochs`` (None: the YAML's own)
    overrides: list[str]  # ``key=value`` after the model's: the recipe's, then the dataset's, then its step budget


def recipe(config: dict[str, Any], kind: str, dataset: str) -> Recipe:
    """``config["recipes"][kind]`` for ``dataset``: its ``by_dataset`` entry wins over the recipe's
    own config file, epochs and step budget, and adds its overrides after the recipe's; a step budget
    (``steps``) becomes the override ``optim.steps``."""
    base = config["recipes"][kind]
    local = base.get("by_dataset", {}).get(dataset, {})
    steps = local.get("steps", base.get("steps"))
    return Recipe(
        config=local.get("config", base["config"]),
        epochs=local.get("epochs", base.get("epochs")),
        overrides=[*base.get("overrides", []), *local.get("overrides", []), *([f"optim.steps={steps}"] if steps else [])],
    )


def model_overrides(config: dict[str, Any]) -> list[str]:
    """The workflow's model section as ``model.<key>=<value>`` overrides (every run command gets them)."""
    return [f"model.{key}={value}" for key, value in config["model"].items()]


def load_workflow_config(path: str | Path) -> dict[str, Any]:
    """The config the Snakefile runs with for ``--configfile path``: workflow/config/config.yaml, the
    file ``extends`` names above it, ``path`` on top (``merge_into``), then the schema's defaults
    filled and checked."""
    files = [DEFAULT_CONFIG]
    config = _read(DEFAULT_CONFIG)
    top = _read(Path(path))
    if "extends" in top:
        if not isinstance(top["extends"], str):
            raise UserError(f"{path}: extends: expected the path of a workflow config file, got {top['extends']!r}")
        files.append(REPO_ROOT / top["extends"])
        merge_into(config, _read(files[-1]))
    files.append(Path(path))
    merge_into(config, top)
    validate_config(config, SCHEMA, files)
    return config


def merge_into(config: dict[str, Any], overwrite: dict[str, Any]) -> None:
    """Merge ``overwrite`` into ``config`` in place as Snakemake merges config files
    (``snakemake.utils.update_config``): mappings merge key by key, any other value replaces.
    Written out here so that `vmae bench memory` runs where Snakemake is not installed (the GPU
    machine); tests/test_recipes.py checks it against Snakemake's."""
    for key, value in overwrite.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            merge_into(config[key], value)
        else:
            config[key] = value


def _read(path: Path) -> dict[str, Any]:
    """A workflow config file as a mapping; a one-line error naming it otherwise."""
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as error:
        raise UserError(f"{path}: cannot read the workflow config ({error.strerror})") from None
    except yaml.YAMLError as error:
        raise UserError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of config keys, got {type(data).__name__}")
    return data
