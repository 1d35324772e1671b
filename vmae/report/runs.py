"""Run names: the one place that says how a run's directory name is written and read back.

A pretraining run is named only by what makes it different::

    videomae_synthetic-clean_f1.0_tube0.9_s0        method, source data, fraction, masking + ratio, seed
    <method>_synthetic-clean_f0.25_s1               a method that masks nothing has no masking part
    videomae_synthetic-clean_f0.3_tube0.9_n1400_s0  a step budget of its own (else the recipe's)

The methods and masking strategies are the registered ones (vmae.methods, vmae.models.masking): a
method's ``masked`` says whether its runs carry the masking part.

An evaluation lives at ``<root>/eval/<target>/<protocol>/<init>/metrics.json`` where ``<init>`` is
the pretraining run's name (its seed is the evaluation's seed) or ``scratch_s<seed>``.
The workflow (workflow/rules/common.smk) formats names with these functions and the table builder
(vmae.report.tables) parses them back; neither spells the pattern anywhere else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from vmae import methods
from vmae.errors import UserError
from vmae.models import masking

PRETRAIN_METHODS = methods.names()
METHODS = ("scratch", *PRETRAIN_METHODS)
MASKED_METHODS = tuple(name for name in PRETRAIN_METHODS if methods.get(name).masked)
PROTOCOLS = ("finetune", "linprobe")
MASKINGS = tuple(masking.MASKINGS)

DATASET_PATTERN = r"[a-z0-9][a-z0-9_-]*"  # datasets/<name>.yaml names (dataset.schema.yaml)
_NUMBER = r"[0-9]+(?:\.[0-9]+)?"
PRETRAIN_PATTERN = (
    rf"(?P<method>{'|'.join(PRETRAIN_METHODS)})_(?P<source>{DATASET_PATTERN})"
    rf"_f(?P<fraction>{_NUMBER})"
    rf"(?:_(?P<masking>{'|'.join(MASKINGS)})(?P<mask_ratio>{_NUMBER}))?"
    r"(?:_n(?P<steps>[1-9][0-9]*))?"
    r"_s(?P<seed>[0-9]+)"
)
SCRATCH_PATTERN = r"scratch_s(?P<seed>[0-9]+)"


def _unnamed(pattern: str) -> str:
    """The same regex without named groups (Snakemake wraps wildcard constraints in its own)."""
    return re.sub(r"\(\?P<\w+>", "(?:", pattern)


def _either(names: tuple[str, ...]) -> str:
    return "|".join(names) if names else r"(?!)"  # (?!) matches nothing


# Wildcard constraints of the workflow's {run} (pretraining) and {init} (evaluation) wildcards:
# exact, i.e. a masking part for a masked method and none for the others.
_RUN_BODY = rf"{DATASET_PATTERN}_f{_NUMBER}"
PRETRAIN_WILDCARD = (
    rf"(?:(?:{_either(MASKED_METHODS)})_{_RUN_BODY}_(?:{'|'.join(MASKINGS)}){_NUMBER}"
    rf"|(?:{_either(tuple(m for m in PRETRAIN_METHODS if m not in MASKED_METHODS))})_{_RUN_BODY})"
    r"(?:_n[1-9][0-9]*)?_s[0-9]+"
)
INIT_WILDCARD = f"(?:{PRETRAIN_WILDCARD}|{_unnamed(SCRATCH_PATTERN)})"

_PRETRAIN_RE = re.compile(rf"^{PRETRAIN_PATTERN}$")
_SCRATCH_RE = re.compile(rf"^{SCRATCH_PATTERN}$")


class RunNameError(UserError, ValueError):
    """A directory name or path does not follow the run naming scheme."""


def format_number(value: float) -> str:
    """``1 -> '1.0'``, ``0.25 -> '0.25'``, ``0.875 -> '0.875'``: the shortest exact float text."""
    return repr(float(value))


@dataclass(frozen=True)
class PretrainRun:
    """One pretraining run; ``masking``/``mask_ratio`` are None for a method that masks nothing;
    ``steps`` is the run's own optimiser-step budget (None: its recipe's, ``recipes.<method>.steps``)."""

    method: str
    source: str
    fraction: float
    seed: int
    masking: str | None = None
    mask_ratio: float | None = None
    steps: int | None = None

    def __post_init__(self) -> None:
        if self.method not in PRETRAIN_METHODS:
            raise RunNameError(f"method {self.method!r}: expected one of {PRETRAIN_METHODS}")
        if not re.fullmatch(DATASET_PATTERN, self.source):
            raise RunNameError(f"source {self.source!r}: expected a dataset name ({DATASET_PATTERN})")
        if not self.fraction > 0.0:
            raise RunNameError(f"fraction {self.fraction!r}: expected a value > 0 (the pretraining set's size "
                               "relative to the training set; above 1 it draws unlabelled videos too)")
        masked = self.method in MASKED_METHODS
        if masked and (self.masking not in MASKINGS or self.mask_ratio is None):
            raise RunNameError(
                f"{self.method} run needs masking in {MASKINGS} and a mask_ratio, "
                f"got {self.masking!r}, {self.mask_ratio!r}"
            )
        if not masked and (self.masking is not None or self.mask_ratio is not None):
            raise RunNameError(f"{self.method} run takes no masking, got {self.masking!r}, {self.mask_ratio!r}")
        if self.steps is not None and not (isinstance(self.steps, int) and self.steps > 0):
            raise RunNameError(f"steps {self.steps!r}: expected a whole number of optimiser steps > 0, "
                               "or None for the recipe's budget")

    @property
    def name(self) -> str:
        mask = f"_{self.masking}{format_number(self.mask_ratio)}" if self.method in MASKED_METHODS else ""
        budget = "" if self.steps is None else f"_n{self.steps}"
        return f"{self.method}_{self.source}_f{format_number(self.fraction)}{mask}{budget}_s{self.seed}"


@dataclass(frozen=True)
class EvalRun:
    """One evaluation of an initialisation (a pretraining run or scratch) on a target."""

    target: str
    protocol: str
    seed: int
    init: PretrainRun | None = None  # None = from scratch (random init)

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise RunNameError(f"protocol {self.protocol!r}: expected one of {PROTOCOLS}")
        if self.init is not None and self.init.seed != self.seed:
            raise RunNameError(f"evaluation seed {self.seed} differs from its init run {self.init.name}")

    @property
    def method(self) -> str:
        return "scratch" if self.init is None else self.init.method

    @property
    def init_name(self) -> str:
        return f"scratch_s{self.seed}" if self.init is None else self.init.name

    def path(self, root: str | Path = "results") -> str:
        """``<root>/eval/<target>/<protocol>/<init>`` (the folder holding metrics.json)."""
        return f"{root}/eval/{self.target}/{self.protocol}/{self.init_name}"


def parse_pretrain(name: str) -> PretrainRun:
    """Read a pretraining run back from its name (the inverse of ``PretrainRun.name``)."""
    m = _PRETRAIN_RE.match(name)
    if not m:
        raise RunNameError(
            f"pretraining run name {name!r}: expected "
            f"<{'|'.join(PRETRAIN_METHODS)}>_<source>_f<fraction>[_<{'|'.join(MASKINGS)}><ratio>][_n<steps>]_s<seed>"
        )
    ratio = m["mask_ratio"]
    return PretrainRun(
        method=m["method"],
        source=m["source"],
        fraction=float(m["fraction"]),
        seed=int(m["seed"]),
        masking=m["masking"],
        mask_ratio=None if ratio is None else float(ratio),
        steps=None if m["steps"] is None else int(m["steps"]),
    )


def parse_init(name: str) -> tuple[PretrainRun | None, int]:
    """``'scratch_s1' -> (None, 1)``; a pretraining run name -> (run, run.seed)."""
    m = _SCRATCH_RE.match(name)
    if m:
        return None, int(m["seed"])
    run = parse_pretrain(name)
    return run, run.seed


def parse_eval_path(path: str | Path) -> EvalRun:
    """``.../eval/<target>/<protocol>/<init>[/metrics.json]`` -> EvalRun."""
    parts = Path(path).parts
    if parts and parts[-1].endswith(".json"):
        parts = parts[:-1]
    if len(parts) < 4 or parts[-4] != "eval":
        raise RunNameError(f"{path}: expected .../eval/<target>/<protocol>/<init>/metrics.json")
    target, protocol, init_name = parts[-3:]
    init, seed = parse_init(init_name)
    return EvalRun(target=target, protocol=protocol, seed=seed, init=init)


def parse_pretrain_path(path: str | Path) -> PretrainRun:
    """``.../pretrain/<run>[/metrics.json]`` -> PretrainRun."""
    parts = Path(path).parts
    if parts and parts[-1].endswith(".json"):
        parts = parts[:-1]
    if len(parts) < 2 or parts[-2] != "pretrain":
        raise RunNameError(f"{path}: expected .../pretrain/<run>/metrics.json")
    return parse_pretrain(parts[-1])
