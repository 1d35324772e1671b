"""Typed run configuration: dataclasses with commented defaults, YAML files and `key=value` overrides.

Defaults live here and only here. A config is built as
``defaults <- YAML file (--config) <- command-line flags <- key=value overrides``
and every step is validated: an unknown key, a wrong type, a float that is nan or infinite, or a
value out of range raises ``ConfigError`` naming the source, the dotted key, the value and what was
expected.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

from vmae.errors import UserError


class ConfigError(UserError, ValueError):
    """A configuration value is unknown, mistyped or out of range."""


# --------------------------------------------------------------------------- sections


@dataclass
class ModelConfig:
    """The ViT encoder (and VideoMAE decoder). Official keyword names."""

    size: str = "vit_micro"  # preset for embed_dim/depth/num_heads (vmae.models.vit.MODEL_SIZES)
    img_size: int = 32  # input resolution (square)
    patch_size: int = 4  # spatial patch; img_size / patch_size = tokens per side (keep >= 8)
    num_frames: int = 16  # frames per clip
    tubelet_size: int = 4  # frames per token; num_frames / tubelet_size = time slots
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    init_values: float = 0.0  # layer scale init; 0 disables layer scale
    drop_path_rate: float = 0.0  # stochastic depth (fine-tuning: 0.1 for ViT-B in the paper)
    head_drop_rate: float = 0.0  # dropout of the pooled features before the head (official fc_drop_rate)
    # init of the encoder blocks' Linear layers: "xavier" (uniform; the official pretraining model) or
    # "trunc_normal" (std 0.02; the official fine-tuning model, what a scratch run starts from)
    linear_init: Literal["xavier", "trunc_normal"] = "xavier"
    decoder_embed_dim: int = 64  # VideoMAE decoder width (ViT-B: 384)
    decoder_depth: int = 2  # VideoMAE decoder blocks (ViT-B: 4)
    decoder_num_heads: int = 4  # VideoMAE decoder heads (ViT-B: 6)

    def validate(self) -> None:
        for key in ("img_size", "patch_size", "num_frames", "tubelet_size", "decoder_embed_dim", "decoder_depth",
                    "decoder_num_heads"):
            _check(getattr(self, key) >= 1, f"model.{key}", getattr(self, key), ">= 1")
        _check(self.mlp_ratio > 0, "model.mlp_ratio", self.mlp_ratio, "> 0")
        _check(self.init_values >= 0, "model.init_values", self.init_values, ">= 0 (0 disables layer scale)")
        _check(self.img_size % self.patch_size == 0, "model.img_size", self.img_size,
               f"a multiple of model.patch_size={self.patch_size}")
        _check(self.num_frames % self.tubelet_size == 0, "model.num_frames", self.num_frames,
               f"a multiple of model.tubelet_size={self.tubelet_size}")
        _check(0.0 <= self.drop_path_rate < 1.0, "model.drop_path_rate", self.drop_path_rate, "in [0, 1)")
        _check(0.0 <= self.head_drop_rate < 1.0, "model.head_drop_rate", self.head_drop_rate, "in [0, 1)")


@dataclass
class DataConfig:
    """Decoding, clip sampling, augmentation and loading."""

    frame_stride: int = 0  # dense sampling stride; 0 = the dataset's own (dataset.json)
    repeated_sampling: int = 1  # clips cut from one decoded video per visit (MAE-ST: 4)
    # which frames make a clip: "dataset" (the dataset spec's sampling mode), or "dense" / "segments"
    # for this run whatever the dataset's (the official pretraining samples every dataset densely)
    sampling: Literal["dataset", "dense", "segments"] = "dataset"
    # training crop: "multiscale" (the official pretraining's GroupMultiScaleCrop over `scales`) or
    # "resized" (the official fine-tuning's RandomResizedCrop over `crop_area` and `crop_ratio`)
    crop: Literal["multiscale", "resized"] = "multiscale"
    scales: tuple[float, ...] = (1.0, 0.875, 0.75, 0.66)  # multi-scale crop (paper)
    crop_area: tuple[float, float] = (0.08, 1.0)  # "resized": share of the frame's area
    crop_ratio: tuple[float, float] = (0.75, 1.3333)  # "resized": width / height, log-uniform
    flip: bool = True  # horizontal flip, applied only where the dataset allows it
    # timm RandAugment of every training clip, one draw a clip (vmae.data.clip_augment); "" = off
    rand_augment: str = ""  # official fine-tuning: rand-m7-n4-mstd0.5-inc1
    erase_p: float = 0.0  # random erasing: probability of one noise box a clip, in every frame (official: 0.25)
    # repeated clips of a visit share one temporal window (the official fine-tuning: two augmentations
    # of one decoded clip) instead of a window each
    repeat_window: bool = False
    test_clips: int = 2  # temporal views at test time
    test_crops: int = 1  # spatial views at test time (1 = centre, 3 = left/centre/right)
    reader: Literal["auto", "decord", "pyav"] = "auto"
    num_workers: int = 1  # DataLoader worker processes
    frame_cache: str = ""  # folder of a frame cache (`vmae cache`); used when set and present
    # where training clips are cropped, resized and flipped: "worker" (the loader's processes),
    # "device" (batched on the training device, vmae.data.device_augment), "auto" = device on CUDA
    augment_on: Literal["auto", "worker", "device"] = "auto"
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)

    def validate(self) -> None:
        _check(self.frame_stride >= 0, "data.frame_stride", self.frame_stride, ">= 0")
        _check(self.repeated_sampling >= 1, "data.repeated_sampling", self.repeated_sampling, ">= 1")
        _check(self.test_clips >= 1, "data.test_clips", self.test_clips, ">= 1")
        _check(self.test_crops in (1, 3), "data.test_crops", self.test_crops, "1 or 3")
        _check(len(self.scales) > 0 and all(0 < s <= 1 for s in self.scales), "data.scales", self.scales,
               "one or more values in (0, 1]")
        _check(0 < self.crop_area[0] <= self.crop_area[1] <= 1, "data.crop_area", self.crop_area,
               "two shares of the frame's area, 0 < low <= high <= 1")
        _check(0 < self.crop_ratio[0] <= self.crop_ratio[1], "data.crop_ratio", self.crop_ratio,
               "two width / height ratios, 0 < low <= high")
        _check(0 <= self.erase_p <= 1, "data.erase_p", self.erase_p, "in [0, 1]")
        _check(self.rand_augment == "" or self.rand_augment.startswith("rand-"), "data.rand_augment",
               self.rand_augment, "'' (off) or a timm RandAugment config such as rand-m7-n4-mstd0.5-inc1")
        _check(self.num_workers >= 0, "data.num_workers", self.num_workers, ">= 0 (0 = load in the main process)")
        _check(all(s > 0 for s in self.std), "data.std", self.std, "values > 0")


@dataclass
class OptimConfig:
    """AdamW with a per-step cosine schedule and linear warm-up."""

    epochs: int = 100
    warmup_epochs: float = 10.0  # linear warm-up; longer than the run = the lr never peaks (warned)
    # a budget of optimiser steps instead (0 = off; pretraining): the run takes the fewest epochs that
    # reach it, and epochs / warmup_epochs above give the schedule's shape (warm-up share)
    steps: int = 0
    batch_size: int = 32  # global batch (all processes)
    base_lr: float = 1.5e-4  # lr = base_lr * batch_size / 256, computed once and logged
    min_lr: float = 1e-6
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.95)
    clip_grad: float = 0.02  # max grad norm; 0 disables clipping
    layer_decay: float = 1.0  # layer-wise lr decay (fine-tuning); 1 = off
    # videos one process holds at once (gradient accumulation): an optimiser step is
    # batch_size / (micro_batch_size x world size) micro-steps; 0 = batch_size / world size at once
    micro_batch_size: int = 0

    def validate(self) -> None:
        _check(self.epochs >= 1, "optim.epochs", self.epochs, ">= 1")
        _check(self.warmup_epochs >= 0, "optim.warmup_epochs", self.warmup_epochs, ">= 0")
        _check(self.steps >= 0, "optim.steps", self.steps, ">= 0 (0 = run optim.epochs)")
        _check(self.batch_size >= 1, "optim.batch_size", self.batch_size, ">= 1")
        _check(self.micro_batch_size >= 0, "optim.micro_batch_size", self.micro_batch_size,
               ">= 0 (0 = no gradient accumulation)")
        _check(self.micro_batch_size == 0 or self.batch_size % self.micro_batch_size == 0, "optim.micro_batch_size",
               self.micro_batch_size, f"a divisor of optim.batch_size={self.batch_size} (the global batch; "
               "it must be a multiple of micro_batch_size x world size)")
        _check(self.base_lr > 0, "optim.base_lr", self.base_lr, "> 0")
        _check(self.min_lr >= 0, "optim.min_lr", self.min_lr, ">= 0")
        _check(self.weight_decay >= 0, "optim.weight_decay", self.weight_decay, ">= 0")
        _check(self.clip_grad >= 0, "optim.clip_grad", self.clip_grad, ">= 0 (0 disables clipping)")
        _check(all(0 <= b < 1 for b in self.betas), "optim.betas", self.betas, "two values in [0, 1)")
        _check(0 < self.layer_decay <= 1, "optim.layer_decay", self.layer_decay, "in (0, 1]")


# --------------------------------------------------------------------------- commands


def _method_sections() -> dict[str, Any]:
    """Every registered method's own config section (vmae.methods), at its defaults, by its key."""
    from vmae import methods  # the registry imports this module, so it is asked only once both exist

    return {key: section() for key, section in methods.sections().items()}


@dataclass
class PretrainConfig:
    """`vmae pretrain`: a registered self-supervised method (vmae.methods) on a manifest's videos
    (labels ignored). Each method's own section is a key of the YAML and of ``key=value`` overrides
    like the others (``moco.temperature=0.2``) and an attribute (``cfg.moco``)."""

    method: str = "videomae"  # a registered method (vmae.methods.names())
    mask_ratio: float = 0.9  # of a masked method (vmae.methods.Method.masked)
    masking: str = "tube"  # a registered masking strategy (vmae.models.masking.MASKINGS)
    norm_pix_loss: bool = True  # per-tubelet normalised pixel targets
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    compile: bool = True  # torch.compile on CUDA where the method compiles (ignored on CPU)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    # the methods' own sections by key, read and written inline (``moco:``, not ``sections: {moco: ...}``)
    sections: dict[str, Any] = field(default_factory=_method_sections, metadata={"inline": True})

    def __getattr__(self, name: str) -> Any:
        """``cfg.<key>``: the method section of that key (``cfg.moco``)."""
        sections = self.__dict__.get("sections") or {}
        if name in sections:
            return sections[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def validate(self) -> None:
        from vmae import methods
        from vmae.models.masking import MASKINGS

        _check(self.method in methods.METHODS, "method", self.method, f"one of {list(methods.names())}")
        _check(self.masking in MASKINGS, "masking", self.masking, f"one of {list(MASKINGS)}")
        _check(0.0 < self.mask_ratio < 1.0, "mask_ratio", self.mask_ratio, "in (0, 1)")
        methods.get(self.method).validate(self)


@dataclass
class FinetuneConfig:
    """`vmae finetune`: supervised training of encoder + head; scratch when no --init."""

    seed: int = 0
    device: str = "auto"
    compile: bool = True
    mixup: float = 0.0  # timm Mixup alpha (paper: 0.8)
    cutmix: float = 0.0  # timm CutMix alpha (paper: 1.0)
    label_smoothing: float = 0.1
    eval_every: int = 0  # evaluate on val every N epochs (0 = only at the end)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(
        default_factory=lambda: OptimConfig(
            epochs=30, warmup_epochs=3, base_lr=1e-3, betas=(0.9, 0.999), clip_grad=0.0
        )
    )

    def validate(self) -> None:
        _check(0 <= self.label_smoothing < 1, "label_smoothing", self.label_smoothing, "in [0, 1)")
        _check(self.mixup >= 0, "mixup", self.mixup, ">= 0")
        _check(self.cutmix >= 0, "cutmix", self.cutmix, ">= 0")
        _check(self.eval_every >= 0, "eval_every", self.eval_every, ">= 0")
        clips = self.optim.batch_size * self.data.repeated_sampling
        _check(self.mixup == self.cutmix == 0 or clips % 2 == 0, "optim.batch_size", self.optim.batch_size,
               f"an even clip count a step with mixup/cutmix (x data.repeated_sampling={self.data.repeated_sampling})")
        micro_clips = self.optim.micro_batch_size * self.data.repeated_sampling
        _check(self.mixup == self.cutmix == 0 or micro_clips % 2 == 0, "optim.micro_batch_size",
               self.optim.micro_batch_size, "an even clip count a micro-step with mixup/cutmix "
               f"(x data.repeated_sampling={self.data.repeated_sampling})")


@dataclass
class LinprobeConfig:
    """`vmae linprobe`: frozen encoder, mean-pooled features, scikit-learn logistic regression."""

    seed: int = 0
    device: str = "auto"
    C: float = 1.0  # inverse L2 strength of LogisticRegression, when C_grid is empty
    C_grid: tuple[float, ...] = ()  # if given: C chosen among these by cross-validation on the training set
    cv_folds: int = 5  # stratified folds of that cross-validation
    max_iter: int = 2000
    train_clips: int = 2  # temporal views averaged per training video
    batch_size: int = 64  # feature-extraction batch
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)

    def validate(self) -> None:
        _check(self.C > 0, "C", self.C, "> 0")
        _check(all(c > 0 for c in self.C_grid), "C_grid", self.C_grid, "values > 0")
        _check(self.cv_folds >= 2, "cv_folds", self.cv_folds, ">= 2")
        _check(self.max_iter >= 1, "max_iter", self.max_iter, ">= 1")
        _check(self.train_clips >= 1, "train_clips", self.train_clips, ">= 1")
        _check(self.batch_size >= 1, "batch_size", self.batch_size, ">= 1")


# --------------------------------------------------------------------------- machinery

T = TypeVar("T")


def _check(ok: bool, key: str, value: Any, expected: str) -> None:
    if not ok:
        raise ConfigError(f"{key}={value!r}: expected {expected}")


def _coerce(value: Any, tp: Any, key: str, source: str) -> Any:
    """Convert ``value`` (from YAML or a ``key=value`` string) to the annotated type ``tp``."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            raise ConfigError(f"{source}: {key}={value!r}: expected one of {list(choices)}")
        return value
    if origin is tuple:
        if isinstance(value, str):
            value = yaml.safe_load(value if value.startswith("[") else f"[{value}]")
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{source}: {key}={value!r}: expected a list")
        args = typing.get_args(tp)
        item_types = [args[0]] * len(value) if args[-1] is Ellipsis else list(args)
        if len(item_types) != len(value):
            raise ConfigError(f"{source}: {key}={value!r}: expected {len(item_types)} values")
        return tuple(_coerce(v, t, key, source) for v, t in zip(value, item_types))
    if tp is bool:
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{source}: {key}={value!r}: expected true or false")
    if tp in (int, float):
        if isinstance(value, bool):
            raise ConfigError(f"{source}: {key}={value!r}: expected {tp.__name__}")
        try:
            number = tp(value) if isinstance(value, str) else value
        except ValueError:
            raise ConfigError(f"{source}: {key}={value!r}: expected {tp.__name__}") from None
        if tp is int and not (isinstance(number, int) or float(number).is_integer()):
            raise ConfigError(f"{source}: {key}={value!r}: expected int")
        if not isinstance(number, (int, float)):
            raise ConfigError(f"{source}: {key}={value!r}: expected {tp.__name__}")
        if not math.isfinite(number):
            raise ConfigError(f"{source}: {key}={value!r}: expected a finite {tp.__name__} (not nan or inf)")
        return tp(number)
    if tp is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{source}: {key}={value!r}: expected a string")
        return str(value)
    raise TypeError(f"unsupported config type {tp} for {key}")


def _inline(obj: Any) -> dict[str, Any]:
    """The sections of ``obj``'s inline fields (``metadata={"inline": True}``: a dict of dataclasses
    whose keys stand as keys of ``obj`` itself), by key."""
    return {key: section for f in dataclasses.fields(obj) if f.metadata.get("inline")
            for key, section in getattr(obj, f.name).items()}


def _apply(obj: Any, updates: dict[str, Any], source: str, prefix: str = "") -> None:
    hints = typing.get_type_hints(type(obj))
    inline = _inline(obj)
    names = {f.name for f in dataclasses.fields(obj) if not f.metadata.get("inline")} | inline.keys()
    for name, value in updates.items():
        key = f"{prefix}{name}"
        if name not in names:
            raise ConfigError(f"{source}: unknown key {key!r}; expected one of {sorted(names)}")
        current = inline[name] if name in inline else getattr(obj, name)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: {key}={value!r}: expected a mapping")
            _apply(current, value, source, prefix=f"{key}.")
        else:
            setattr(obj, name, _coerce(value, hints[name], key, source))


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["optim.epochs=5", "mask_ratio=0.75"]`` -> nested dict of raw strings."""
    nested: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key=value (dotted keys, e.g. optim.epochs=5)")
        key, value = item.split("=", 1)
        node = nested
        *parents, leaf = key.strip().split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value.strip()
    return nested


def validate(cfg: Any, prefix: str = "") -> None:
    """Check that every float (also inside tuples) is finite, then run ``validate()`` of the config
    and of every nested section."""
    for key, section in _inline(cfg).items():
        validate(section, f"{prefix}{key}.")
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if f.metadata.get("inline"):
            continue
        if dataclasses.is_dataclass(value):
            validate(value, f"{prefix}{f.name}.")
        else:
            numbers = value if isinstance(value, tuple) else (value,)
            _check(all(math.isfinite(v) for v in numbers if isinstance(v, float)), f"{prefix}{f.name}", value,
                   "finite numbers (not nan or inf)")
    if hasattr(cfg, "validate"):
        cfg.validate()


def build_config(
    cls: type[T],
    yaml_path: str | Path | None = None,
    overrides: list[str] | None = None,
    **flags: Any,
) -> T:
    """Build and validate a config: defaults <- YAML <- flags (not None) <- key=value overrides."""
    cfg = cls()
    if yaml_path:
        loaded = yaml.safe_load(Path(yaml_path).read_text()) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{yaml_path}: expected a mapping at the top level")
        _apply(cfg, loaded, str(yaml_path))
    given = {k: v for k, v in flags.items() if v is not None}
    if given:
        _apply(cfg, parse_overrides([f"{k}={v}" for k, v in given.items()]), "command line")
    if overrides:
        _apply(cfg, parse_overrides(overrides), "override")
    validate(cfg)
    return cfg


def config_from_dict(cls: type[T], data: dict[str, Any], source: str = "checkpoint") -> T:
    """Rebuild a config saved with ``dataclasses.asdict`` (e.g. inside a checkpoint)."""
    cfg = cls()
    _apply(cfg, data, source)
    validate(cfg)
    return cfg


def to_dict(cfg: Any) -> dict[str, Any]:
    """A plain, YAML/JSON-serialisable dict (tuples become lists; inline sections at the top level)."""
    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value

    data = dataclasses.asdict(cfg)
    for f in dataclasses.fields(cfg):
        if f.metadata.get("inline"):
            data.update(data.pop(f.name))
    return plain(data)
