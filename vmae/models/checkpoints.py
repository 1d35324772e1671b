"""Load encoder weights from this project's, the official VideoMAE and Hugging Face checkpoints;
export to the Hugging Face layout.

Formats (detected from the keys):
- this project: ``{"model": state_dict, "config": {...}, ...}``; a VideoMAE pretraining state
  (``encoder.*``, decoder dropped), MoCo v3 (``base_encoder.*``) or a fine-tuned ``VideoViT``.
- official MCG-NJU: ``{"model" | "module": state_dict}``; pretraining keys under ``encoder.`` /
  ``decoder.``, fine-tuned keys bare (or under ``backbone.``); attention bias as ``q_bias`` /
  ``v_bias`` (the k bias is zero) and layer scale as ``gamma_1`` / ``gamma_2``.
- Hugging Face ``transformers`` VideoMAE: a folder with ``config.json`` + ``model.safetensors`` or
  ``pytorch_model.bin``, or its state dict (``videomae.*`` keys; ``q_bias`` / ``v_bias`` of hub
  files or ``query.bias`` / ``value.bias`` of transformers 5).

Checkpoint files come from the internet, and unpickling one can run any code it holds. So every
torch file a user hands in is read by ``load_torch_file``: ``torch.load(weights_only=True)`` with a
short allowlist (``SAFE_GLOBALS``: the ``argparse.Namespace`` that official checkpoints keep as
``args``, numpy scalars and dtypes); a file that needs more fails with a one-line
``UntrustedCheckpointError`` naming the file and ``--trust-checkpoint``, the explicit opt-in to a
full unpickle of a file the user trusts. It never falls back to a full unpickle by itself.

Positions are fixed sin-cos tables rebuilt for any grid, so a different frame count or resolution
just works; a learned table found in a foreign checkpoint is interpolated (trilinear) to the model's
grid and kept fixed. A key bias adds the same score to every key of a query, so softmax ignores it:
dropping it on export is exact.
"""

from __future__ import annotations

import argparse
import json
import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from vmae.atomic import atomic_path, write_json_atomic
from vmae.errors import UserError
from vmae.models.mae import VideoMAE
from vmae.models.pos_embed import resize_grid_table
from vmae.models.vit import VideoViT

StateDict = dict[str, torch.Tensor]
WRAPPER_PREFIXES = ("module.", "_orig_mod.")  # DDP / torch.compile wrappers
HF_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
TRUST_FLAG = "--trust-checkpoint"


class UntrustedCheckpointError(UserError, RuntimeError):
    """A checkpoint needs a full unpickle (which can run code) and the user did not opt in."""


def _numpy_scalar_globals() -> list[Any]:
    """numpy's scalar constructor under the names numpy 1 (``numpy.core``) and 2 (``numpy._core``)
    write into pickles, ``numpy.dtype`` and its bool / int / float classes: what an ``epoch`` or
    ``max_accuracy`` saved as a numpy scalar needs (not arrays, not object dtypes)."""
    scalar = np.array(0.0)[()].__reduce__()[0]  # numpy.(_)core.multiarray.scalar
    dtype_classes = list(dict.fromkeys(type(np.dtype(code)) for code in "?bBhHiIlLqQefd"))  # bool, ints, floats
    return [np.dtype, *dtype_classes, scalar] + [(scalar, f"{module}.multiarray.scalar")
                                                 for module in ("numpy.core", "numpy._core")]


SAFE_GLOBALS: list[Any] = [argparse.Namespace, *_numpy_scalar_globals()]
"""What an untrusted checkpoint may build besides tensors and plain containers: the official
MCG-NJU checkpoints' ``args`` (an ``argparse.Namespace``) and numpy scalars. Hugging Face
``pytorch_model.bin`` files hold tensors only."""


def load_torch_file(path: str | Path, trust: bool = False) -> Any:
    """Read a torch file a user handed in, onto the CPU: weights only (tensors, plain values and
    ``SAFE_GLOBALS``), or, with ``trust`` (``--trust-checkpoint``), a full unpickle."""
    path = Path(path)
    if trust:
        return torch.load(path, map_location="cpu", weights_only=False)
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        needs = _unsafe_globals(path)
        raise UntrustedCheckpointError(
            f"{path}: not loadable as weights only{f' (it needs {needs})' if needs else ''}: expected tensors "
            f"and plain values; if you trust this file and its source, pass {TRUST_FLAG} to unpickle it in "
            "full (that can run any code it holds)") from None
    except (RuntimeError, EOFError, ValueError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UntrustedCheckpointError(f"{path}: not a readable torch checkpoint ({reason}): expected a file "
                                       "written by torch.save") from None


def _unsafe_globals(path: Path) -> str:
    """The globals outside the allowlist that ``path`` names (without running anything), or ''."""
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # an old (non-zip) torch file or no torch file at all
        return ""
    allowed = {f"{g.__module__}.{g.__qualname__}" if not isinstance(g, tuple) else g[1] for g in SAFE_GLOBALS}
    return ", ".join(name for name in names if name not in allowed)


# --------------------------------------------------------------------------- attention layouts


def _fuse_qkv_bias(q_bias: torch.Tensor, v_bias: torch.Tensor) -> torch.Tensor:
    """Separate q / v biases -> one qkv bias with a zero k bias."""
    return torch.cat([q_bias, torch.zeros_like(q_bias), v_bias])


def _strip(sd: StateDict, prefixes: tuple[str, ...]) -> StateDict:
    out = {}
    for key, value in sd.items():
        for prefix in prefixes:
            if key.startswith(prefix):
                key = key[len(prefix):]
        out[key] = value
    return out


# --------------------------------------------------------------------------- official layout


def convert_official(sd: StateDict) -> StateDict:
    """An official MCG-NJU state dict -> this project's key names.

    Pretraining layout (``encoder.*`` / ``decoder.*``) -> keys of ``VideoMAE`` (load strictly);
    fine-tuned layout (bare or ``backbone.``-prefixed) -> keys of ``VideoViT``.
    """
    sd = _strip(sd, WRAPPER_PREFIXES + ("backbone.",))
    out: StateDict = {}
    for key, value in sd.items():
        if key.endswith(".attn.v_bias"):
            continue
        if key.endswith(".attn.q_bias"):
            stem = key[: -len("q_bias")]
            out[stem + "qkv.bias"] = _fuse_qkv_bias(value, sd[stem + "v_bias"])
            continue
        key = re.sub(r"\.gamma_([12])$", r".ls\1.gamma", key)
        out[key] = value
    return out


# --------------------------------------------------------------------------- Hugging Face layout

_HF_BLOCK = {  # inside videomae.encoder.layer.{i}. / decoder.decoder_layers.{i}.
    "layernorm_before": "norm1",
    "layernorm_after": "norm2",
    "attention.output.dense": "attn.proj",
    "intermediate.dense": "mlp.fc1",
    "output.dense": "mlp.fc2",
}
_HF_TOP = {  # whole-key renames outside the blocks
    "videomae.embeddings.patch_embeddings.projection": "patch_embed.proj",
    "videomae.layernorm": "norm",
    "fc_norm": "fc_norm",
    "classifier": "head",
    "encoder_to_decoder": "encoder_to_decoder",
    "decoder.norm": "decoder.norm",
    "decoder.head": "decoder.head",
}
_HF_LAYER = re.compile(r"^(videomae\.encoder\.layer|decoder\.decoder_layers)\.(\d+)\.(.+)$")


def _hf_attention(prefix: str, parts: dict[str, torch.Tensor]) -> StateDict:
    """HF query/key/value tensors of one block -> ``{prefix}attn.qkv.{weight,bias}``."""
    weight = torch.cat([parts["query.weight"], parts["key.weight"], parts["value.weight"]])
    out = {f"{prefix}attn.qkv.weight": weight}
    q_bias = parts.get("query.bias", parts.get("q_bias"))
    if q_bias is not None:
        v_bias = parts.get("value.bias", parts.get("v_bias"))
        out[f"{prefix}attn.qkv.bias"] = _fuse_qkv_bias(q_bias, v_bias)
    return out


def convert_hf(sd: StateDict) -> StateDict:
    """A transformers VideoMAE state dict -> this project's key names.

    ``VideoMAEForPreTraining`` -> ``VideoMAE`` keys (``encoder.*``, decoder); ``VideoMAEModel`` /
    ``VideoMAEForVideoClassification`` -> ``VideoViT`` keys.
    """
    if any(k.startswith("embeddings.") for k in sd):  # a bare VideoMAEModel
        sd = {f"videomae.{k}": v for k, v in sd.items()}
    pretraining = "encoder_to_decoder.weight" in sd
    encoder_prefix = "encoder." if pretraining else ""
    out: StateDict = {}
    attention: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in sd.items():
        if key == "mask_token":
            out[key] = value
            continue
        match = _HF_LAYER.match(key)
        if match:
            owner, index, rest = match.groups()
            prefix = f"{encoder_prefix}blocks.{index}." if owner.startswith("videomae") else f"decoder.blocks.{index}."
            if rest.startswith("attention.attention."):
                attention.setdefault(prefix, {})[rest[len("attention.attention."):]] = value
                continue
            stem, leaf = rest.rsplit(".", 1)
            if stem not in _HF_BLOCK:
                raise KeyError(f"Hugging Face key {key!r}: unknown block part {stem!r}")
            out[f"{prefix}{_HF_BLOCK[stem]}.{leaf}"] = value
            continue
        stem, leaf = key.rsplit(".", 1)
        if stem not in _HF_TOP:
            raise KeyError(f"Hugging Face key {key!r}: not a VideoMAE weight this project knows")
        name = _HF_TOP[stem]
        is_encoder = stem.startswith("videomae.")
        out[f"{encoder_prefix if is_encoder else ''}{name}.{leaf}"] = value
    for prefix, parts in attention.items():
        out.update(_hf_attention(prefix, parts))
    return out


def _fold_layer_scale(sd: StateDict) -> StateDict:
    """``ls{1,2}.gamma`` folded into ``attn.proj`` / ``mlp.fc2`` rows (exact; HF has no layer scale)."""
    out = {k: v for k, v in sd.items() if not k.endswith((".ls1.gamma", ".ls2.gamma"))}
    for key, gamma in sd.items():
        match = re.match(r"^(.*)\.ls([12])\.gamma$", key)
        if match:
            layer = f"{match.group(1)}.{'attn.proj' if match.group(2) == '1' else 'mlp.fc2'}"
            out[f"{layer}.weight"] = out[f"{layer}.weight"] * gamma[:, None]
            out[f"{layer}.bias"] = out[f"{layer}.bias"] * gamma
    return out


_PROJECT_BLOCK = re.compile(r"^(encoder\.|decoder\.|)blocks\.(\d+)\.(.+)\.(weight|bias)$")


def _to_hf_keys(sd: StateDict) -> StateDict:
    """Project keys of a ``VideoViT`` or ``VideoMAE`` -> HF keys in the hub layout (``q_bias`` /
    ``v_bias``), which transformers 4 and 5 both load."""
    top = {value: key for key, value in _HF_TOP.items()}
    block = {value: key for key, value in _HF_BLOCK.items()}
    out: StateDict = {}
    for key, value in _fold_layer_scale(sd).items():
        if key == "mask_token":
            out[key] = value
            continue
        match = _PROJECT_BLOCK.match(key)
        if match:
            scope, index, stem, leaf = match.groups()
            base = f"{'decoder.decoder_layers' if scope == 'decoder.' else 'videomae.encoder.layer'}.{index}."
            if stem == "attn.qkv" and leaf == "weight":
                for name, part in zip(("query", "key", "value"), value.chunk(3)):
                    out[f"{base}attention.attention.{name}.weight"] = part
            elif stem == "attn.qkv":
                q_bias, _, v_bias = value.chunk(3)  # the k bias cancels in softmax
                out[f"{base}attention.attention.q_bias"] = q_bias
                out[f"{base}attention.attention.v_bias"] = v_bias
            else:
                out[f"{base}{block[stem]}.{leaf}"] = value
            continue
        stem, leaf = key.rsplit(".", 1)
        bare = stem.removeprefix("encoder.")
        if bare not in top:
            raise KeyError(f"key {key!r} has no Hugging Face VideoMAE counterpart")
        out[f"{top[bare]}.{leaf}"] = value
    return out


def export_hf(model: VideoViT | VideoMAE) -> tuple[StateDict, dict[str, Any]]:
    """A ``VideoViT`` (mean pooling) -> ``VideoMAEForVideoClassification`` (or ``VideoMAEModel``
    when num_classes=0), a ``VideoMAE`` -> ``VideoMAEForPreTraining``: (state dict, config.json dict)."""
    encoder = model.encoder if isinstance(model, VideoMAE) else model
    if not isinstance(encoder.norm, nn.Identity) and not isinstance(model, VideoMAE):
        raise ValueError("export_hf: a VideoViT needs use_mean_pooling=True (HF classifies from fc_norm)")
    block = encoder.blocks[0]
    config: dict[str, Any] = {
        "model_type": "videomae",
        "image_size": encoder.img_size, "patch_size": encoder.patch_size, "num_channels": encoder.patch_embed.proj.in_channels,
        "num_frames": encoder.num_frames, "tubelet_size": encoder.tubelet_size,
        "hidden_size": encoder.embed_dim, "num_hidden_layers": encoder.depth,
        "num_attention_heads": block.attn.num_heads, "intermediate_size": block.mlp.fc1.out_features,
        "hidden_act": "gelu", "layer_norm_eps": 1e-6, "qkv_bias": block.attn.qkv.bias is not None,
        "use_mean_pooling": not isinstance(model, VideoMAE),
    }
    if isinstance(model, VideoMAE):
        dec = model.decoder.blocks[0]
        config.update(
            architectures=["VideoMAEForPreTraining"], decoder_hidden_size=model.mask_token.shape[-1],
            decoder_num_hidden_layers=len(model.decoder.blocks), decoder_num_attention_heads=dec.attn.num_heads,
            decoder_intermediate_size=dec.mlp.fc1.out_features, norm_pix_loss=True,
        )
        return _to_hf_keys(model.state_dict()), config
    config.update(architectures=["VideoMAEForVideoClassification" if model.num_classes else "VideoMAEModel"])
    if model.num_classes:
        config["id2label"] = {str(i): f"LABEL_{i}" for i in range(model.num_classes)}
    sd = model.state_dict()
    if not model.num_classes:
        sd = {k: v for k, v in sd.items() if not k.startswith("fc_norm.")}
    return _to_hf_keys(sd), config


def save_hf(model: VideoViT | VideoMAE, folder: str | Path) -> Path:
    """Write ``config.json`` + ``model.safetensors`` that ``transformers`` ``from_pretrained`` reads."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sd, config = export_hf(model)
    with atomic_path(folder / "model.safetensors") as tmp:
        save_file({k: v.contiguous() for k, v in sd.items()}, str(tmp))
    write_json_atomic(folder / "config.json", config)
    return folder


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
    """A project-named state dict -> (the encoder's tensors with bare VideoViT keys, which part)."""
    for prefix, what in (("encoder.", "VideoMAE encoder"), ("base_encoder.", "MoCo v3 base encoder")):
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
        sd = _strip(raw["model"], WRAPPER_PREFIXES)
        model_cfg = raw["config"].get("model", {})
        if {"img_size", "patch_size", "num_frames", "tubelet_size"} <= model_cfg.keys():
            side = model_cfg["img_size"] // model_cfg["patch_size"]
            grid = (model_cfg["num_frames"] // model_cfg["tubelet_size"], side, side)
        fmt = "vmae checkpoint"
    elif "model" in raw or "module" in raw:  # official
        sd = convert_official(raw["model"] if "model" in raw else raw["module"])
        fmt = "official VideoMAE checkpoint"
    elif _is_hf(raw):
        sd = convert_hf(_strip(raw, WRAPPER_PREFIXES))
        fmt = "Hugging Face VideoMAE weights"
    elif any(k.endswith((".attn.q_bias", ".gamma_1")) for k in raw):
        sd = convert_official(raw)
        fmt = "official VideoMAE state dict"
    else:
        sd = _strip(raw, WRAPPER_PREFIXES)
        fmt = "vmae state dict"
    sd, part = _encoder_part(sd)
    log.insert(0, f"{name}: {fmt}; loading its {part}")
    return sd, log, grid


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
