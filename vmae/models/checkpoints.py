"""Load encoder weights into a ``VideoViT`` from this project's, the official VideoMAE and Hugging
Face checkpoints.

Formats (detected from the keys; ``vmae.models.interop`` maps the foreign layouts):
- this project: ``{"model": state_dict, "config": {...}, ...}``; a VideoMAE pretraining state
  (``encoder.*``, decoder dropped), MoCo v3 (``base_encoder.*``) or a fine-tuned ``VideoViT``.
- official MCG-NJU: ``{"model" | "module": state_dict}`` or its bare state dict.
- Hugging Face ``transformers`` VideoMAE: a folder with ``config.json`` + ``model.safetensors`` or
  ``pytorch_model.bin``, or its state dict (``videomae.*`` keys).

Torch files are read weights only (``vmae.models.torch_files.load_torch_file``) unless the user
passes ``--trust-checkpoint``.

Positions are fixed sin-cos tables rebuilt for any grid, so a different frame count or resolution
just works; a learned table found in a foreign checkpoint is interpolated (trilinear) to the model's
grid and kept fixed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from vmae.models.interop import (
    WRAPPER_PREFIXES,
    StateDict,
    convert_hf,
    convert_official,
    strip_prefixes,
)
from vmae.models.pos_embed import resize_grid_table
from vmae.models.torch_files import TRUST_FLAG, load_torch_file
from vmae.models.vit import VideoViT

HF_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


# --------------------------------------------------------------------------- reading and detecting


def _read_hf_folder(folder: Path, trust: bool = False) -> tuple[StateDict, dict[str, Any]]:
    config = json.loads((folder / "config.json").read_text())
    for name in HF_WEIGHT_FILES:
        path = folder / name
        if path.exists():
            if name.endswith(".safetensors"):
                from safetensors.torch import load_file

                return load_file(str(path)), config
            return load_torch_file(path, trust), config
    raise FileNotFoundError(f"{folder}: Hugging Face folder without weights; expected one of {list(HF_WEIGHT_FILES)}")


def _read_file(path: Path, log: list[str], trust: bool = False) -> Any:
    """A checkpoint file's contents (safetensors, or a torch file through ``load_torch_file``)."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    if trust:
        log.append(f"{path}: unpickled in full ({TRUST_FLAG})")
    return load_torch_file(path, trust)


def _is_hf(sd: StateDict) -> bool:
    return any(k.startswith("videomae.") or ".attention.attention." in k for k in sd)


def _encoder_part(sd: StateDict) -> tuple[StateDict, str]:
    """A project-named state dict -> (the encoder's tensors with bare VideoViT keys, which part): the
    part under a registered method's ``encoder_prefix`` (vmae.methods), e.g. "MoCo v3 base encoder"."""
    from vmae import methods  # the methods build their models from this package

    for method in map(methods.get, methods.names()):
        prefix = method.encoder_prefix
        what = f"{method.label} {prefix.rstrip('.').replace('_', ' ')}"
        if any(k.startswith(prefix) for k in sd):
            return {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}, what
    return sd, "encoder"


def read_encoder_state(source: str | Path | dict, trust: bool = False
                       ) -> tuple[StateDict, list[str], tuple[int, int, int] | None]:
    """Any supported checkpoint -> (bare VideoViT-keyed tensors, log lines, source grid if known).
    ``trust``: unpickle torch files in full (``--trust-checkpoint``; see ``load_torch_file``)."""
    log: list[str] = []
    grid = None
    if isinstance(source, dict):
        raw, name = source, "state dict"
    else:
        name = str(source)
        path = Path(source)
        if path.is_dir():
            if not (path / "config.json").exists():
                raise FileNotFoundError(f"{path}: a folder must be a Hugging Face model with config.json")
            raw, hf_config = _read_hf_folder(path, trust)
            side = hf_config.get("image_size", 224) // hf_config.get("patch_size", 16)
            grid = (hf_config.get("num_frames", 16) // hf_config.get("tubelet_size", 2), side, side)
        elif path.exists():
            raw = _read_file(path, log, trust)
        else:
            raise FileNotFoundError(f"checkpoint {path} does not exist")
    if "model" in raw and "config" in raw:  # this project
        sd = strip_prefixes(raw["model"], WRAPPER_PREFIXES)
        model_cfg = raw["config"].get("model", {})
        if {"img_size", "patch_size", "num_frames", "tubelet_size"} <= model_cfg.keys():
            side = model_cfg["img_size"] // model_cfg["patch_size"]
            grid = (model_cfg["num_frames"] // model_cfg["tubelet_size"], side, side)
        fmt = "vmae checkpoint"
    elif "model" in raw or "module" in raw:  # official
        sd = convert_official(raw["model"] if "model" in raw else raw["module"])
        fmt = "official VideoMAE checkpoint"
    elif _is_hf(raw):
        sd = convert_hf(strip_prefixes(raw, WRAPPER_PREFIXES))
        fmt = "Hugging Face VideoMAE weights"
    elif any(k.endswith((".attn.q_bias", ".gamma_1")) for k in raw):
        sd = convert_official(raw)
        fmt = "official VideoMAE state dict"
    else:
        sd = strip_prefixes(raw, WRAPPER_PREFIXES)
        fmt = "vmae state dict"
    sd, part = _encoder_part(sd)
    log.insert(0, f"{name}: {fmt}; loading its {part}")
    return sd, log, grid


# --------------------------------------------------------------------------- installing


def _infer_grid(num_tokens: int, model: VideoViT) -> tuple[int, int, int]:
    """The (T', H', W') of a learned table with ``num_tokens`` rows (square frames, the model's T' first)."""
    slots = model.grid[0]
    for t in [slots] + [s for s in range(1, num_tokens + 1) if s != slots]:
        side = round((num_tokens / t) ** 0.5)
        if num_tokens % t == 0 and side * side * t == num_tokens:
            return (t, side, side)
    raise ValueError(f"learned position table with {num_tokens} rows is not T' x S x S")


def _install_learned_positions(model: VideoViT, table: torch.Tensor, log: list[str]) -> None:
    """Resize a learned (1, N, D) table to the model's grid and keep it (fixed, saved with the model)."""
    table = table.reshape(1, -1, table.shape[-1]).float()
    if table.shape[1] != model.num_tokens:
        source = _infer_grid(table.shape[1], model)
        table = resize_grid_table(table, source, model.grid)
        log.append(f"learned position table interpolated (trilinear) from grid {source} to {model.grid}")
    else:
        log.append("learned position table loaded (replaces the sin-cos table)")
    model.pos_embed = table.to(model.pos_embed.device)
    model._non_persistent_buffers_set.discard("pos_embed")


def load_encoder_weights(model: VideoViT, source: str | Path | dict, trust: bool = False) -> list[str]:
    """Load any supported checkpoint's encoder into ``model``; returns log lines. ``trust``: see
    ``read_encoder_state``.

    Every encoder tensor must be used and every model tensor filled, except: ``head`` (kept fresh
    when absent or shaped differently), ``fc_norm`` (fresh when the source has none) and a
    pretraining ``norm`` the pooling model does not have (dropped, as the official fine-tuning does).
    """
    sd, log, grid = read_encoder_state(source, trust)
    own = model.state_dict()
    learned_positions = "pos_embed" in sd
    if learned_positions:
        _install_learned_positions(model, sd.pop("pos_embed"), log)
    dropped = []
    for key in list(sd):
        optional = key.startswith(("head.", "norm.", "fc_norm."))
        if optional and (key not in own or own[key].shape != sd[key].shape):
            dropped.append(key)
            del sd[key]
        elif key in own and own[key].shape != sd[key].shape:
            raise ValueError(f"{log[0]}: {key}: checkpoint shape {tuple(sd[key].shape)} != model shape {tuple(own[key].shape)}")
    result = model.load_state_dict(sd, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith(("head.", "fc_norm.", "pos_embed"))]
    if missing or result.unexpected_keys:
        raise ValueError(f"{log[0]}: does not match the model: missing {missing}, unexpected {result.unexpected_keys}")
    log.append(f"loaded {len(sd)} tensors")
    if dropped:
        log.append(f"dropped (absent or differently shaped in the model): {sorted(dropped)}")
    fresh = [k for k in result.missing_keys if k != "pos_embed"]
    if fresh:
        log.append(f"kept freshly initialised: {sorted(fresh)}")
    if grid is not None and tuple(grid) != model.grid and not learned_positions:
        log.append(f"token grid {tuple(grid)} -> {model.grid}: sin-cos positions rebuilt for the new grid")
    return log
