"""The pretraining methods: one module a method, registered under its name in ``METHODS``.

Everything that differs between self-supervised methods is declared by the method's class (a
``Method``), and everything that lists, names, configures, trains or measures a method asks this
registry: the `vmae pretrain` command (``--method`` choices, the model, its step, the clips a video,
FLOPs, the pretext measure), the config (``PretrainConfig.method`` and the method's own section),
the workflow schema's enums, run names (vmae.report.runs), tables, plots and the memory benchmark.

A method is a subclass of ``Method`` decorated with ``@register``::

    @register
    class MyMethod(Method):
        name, label = "mymethod", "My method"
        section = ("mine", MineConfig)    # a typed dataclass, validated like the others (or None)
        ...

Built-in: every module of this package (vmae/methods/<name>.py) registers one. A method of one's
own may also live in any importable module: the modules named in the environment variable
``VMAE_PLUGINS`` (comma-separated, e.g. ``VMAE_PLUGINS=mylab.methods``) are imported with this
registry, so the CLI and every Snakemake job (which inherit the variable) know their methods and
masking strategies (``vmae.models.masking.register_masking``).
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import re
from typing import TYPE_CHECKING, Any, ClassVar

from vmae.errors import UserError

if TYPE_CHECKING:
    import torch

    from vmae.config import PretrainConfig
    from vmae.data.dataset import FixedViews
    from vmae.train.distributed import DistEnv
    from vmae.train.step import Trainable

PLUGINS_ENV = "VMAE_PLUGINS"
NAME_PATTERN = r"[a-z][a-z0-9]*"  # no "_" or "-": a run name splits on "_" and datasets use "-"


class Method:
    """What a pretraining method declares; subclasses set the class attributes and the methods.

    The loop (vmae.train.loop) owns the optimiser, schedule, checkpoints and logging; a method only
    what differs: its config section, its model and step, the clips it cuts from a video, its FLOPs
    and its pretext measure.
    """

    name: ClassVar[str]  # run names, --method, config `method`, tables (vmae.report.runs)
    label: ClassVar[str]  # how figures name it, e.g. "MoCo v3"
    section: ClassVar[tuple[str, type] | None] = None  # (config key, dataclass): its own config section
    masked: ClassVar[bool] = False  # its runs take `masking` and `mask_ratio` (run name, command)
    reconstructs: ClassVar[bool] = False  # its checkpoint is a VideoMAE (`vmae reconstruct` pictures)
    encoder_prefix: ClassVar[str]  # the state-dict prefix of the encoder fine-tuning and probing take
    pretext_clips: ClassVar[int] = 0  # clips a held-out video its `pretext` measure takes (0: no measure)

    def validate(self, cfg: PretrainConfig) -> None:
        """Raise ``ConfigError`` for a setting of the shared config this method cannot run with."""

    def clips_a_video(self, cfg: PretrainConfig) -> int:
        """Clips the loader cuts from one visit of a video (the batch is (B, clips, C, T, H, W))."""
        raise NotImplementedError

    def trainable(self, cfg: PretrainConfig, env: DistEnv, steps_per_epoch: int) -> Trainable:
        """Model, wrapped net, parameter groups, step function and lr batch on ``env.device``;
        ``steps_per_epoch``: optimiser steps an epoch (for schedules of the method's own)."""
        raise NotImplementedError

    def train_flops(self, cfg: PretrainConfig, clips: int) -> float:
        """FLOPs of training on ``clips`` loader clips (``TrainResult.clips``), from the config alone."""
        raise NotImplementedError

    def pretext(self, model: torch.nn.Module, views: FixedViews, cfg: PretrainConfig, device: torch.device
                ) -> dict[str, Any]:
        """Its pretext measure on held-out videos (``views``: ``pretext_clips`` clips spread over each
        video, centre crop; a batch is (B, pretext_clips, C, T, H, W)) next to a trivial baseline's,
        written to metrics.json as ``pretext`` (with a ``skill``: 0 = the baseline, 1 = perfect)."""
        raise NotImplementedError


METHODS: dict[str, Method] = {}


class UnknownMethodError(UserError, KeyError):
    """A method name that no module registered."""

    def __str__(self) -> str:
        return str(self.args[0])


def register(cls: type[Method]) -> type[Method]:
    """Class decorator: add one instance of ``cls`` to ``METHODS`` under ``cls.name``."""
    if not re.fullmatch(NAME_PATTERN, cls.name) or cls.name == "scratch":
        raise ValueError(f"method name {cls.name!r}: expected {NAME_PATTERN} and not 'scratch'")
    if cls.name in METHODS and type(METHODS[cls.name]) is not cls:
        raise ValueError(f"method {cls.name!r} is registered twice ({type(METHODS[cls.name]).__module__}, "
                         f"{cls.__module__})")
    keys = {m.section[0]: m.name for m in METHODS.values() if m.section and m.name != cls.name}
    if cls.section and cls.section[0] in keys:
        raise ValueError(f"method {cls.name!r}: config section {cls.section[0]!r} is taken by {keys[cls.section[0]]!r}")
    METHODS[cls.name] = cls()
    return cls


def names() -> tuple[str, ...]:
    """The registered methods, sorted (the order of tables and figures)."""
    return tuple(sorted(METHODS))


def get(name: str) -> Method:
    """The registered method ``name``; an ``UnknownMethodError`` naming the known ones otherwise."""
    if name not in METHODS:
        raise UnknownMethodError(f"method {name!r}: expected one of {list(names())}")
    return METHODS[name]


def sections() -> dict[str, type]:
    """Config key -> dataclass of every registered method's own section (``PretrainConfig``)."""
    return {m.section[0]: m.section[1] for m in map(get, names()) if m.section}


def labels() -> dict[str, str]:
    """Method name -> its label (figures)."""
    return {name: METHODS[name].label for name in names()}


def _load_plugins() -> None:
    for module in filter(None, (m.strip() for m in os.environ.get(PLUGINS_ENV, "").split(","))):
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise UserError(f"{PLUGINS_ENV}={os.environ[PLUGINS_ENV]!r}: cannot import {module!r} ({error})") from None


def _load_builtins() -> None:
    """Import every module of this package: each registers its method."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


_load_builtins()
_load_plugins()

__all__ = ["METHODS", "Method", "get", "labels", "names", "register", "sections"]
