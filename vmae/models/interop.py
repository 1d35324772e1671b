"""Key mapping between this project's state dicts and the official MCG-NJU VideoMAE and Hugging
Face ``transformers`` VideoMAE layouts; export to the Hugging Face layout.

Layouts:
- this project: timm blocks with one ``qkv`` Linear (``attn.qkv.{weight,bias}``) and layer scale as
  ``ls1.gamma`` / ``ls2.gamma``; a ``VideoMAE`` keeps its encoder under ``encoder.``.
- official MCG-NJU: pretraining keys under ``encoder.`` / ``decoder.``, fine-tuned keys bare (or
  under ``backbone.``); attention bias as ``q_bias`` / ``v_bias`` (the k bias is zero) and layer
  scale as ``gamma_1`` / ``gamma_2``.
- Hugging Face ``transformers`` VideoMAE: ``videomae.*`` keys with separate query / key / value
  tensors; ``q_bias`` / ``v_bias`` of hub files or ``query.bias`` / ``value.bias`` of transformers 5;
  no layer scale.

A key bias adds the same score to every key of a query, so softmax ignores it: dropping it on
export is exact. Layer scale is folded into the layer before it on export (also exact).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from vmae.atomic import atomic_path, write_json_atomic
from vmae.models.mae import VideoMAE
from vmae.models.vit import VideoViT

StateDict = dict[str, torch.Tensor]
WRAPPER_PREFIXES = ("module.", "_orig_mod.")  # DDP / torch.compile wrappers


def strip_prefixes(sd: StateDict, prefixes: tuple[str, ...]) -> StateDict:
    """``sd`` with each of ``prefixes`` (in order) removed from the start of its keys."""
    out = {}
    for key, value in sd.items():
        for prefix in prefixes:
            if key.startswith(prefix):
                key = key[len(prefix):]
        out[key] = value
    return out


# --------------------------------------------------------------------------- attention layouts


def _fuse_qkv_bias(q_bias: torch.Tensor, v_bias: torch.Tensor) -> torch.Tensor:
    """Separate q / v biases -> one qkv bias with a zero k bias."""
    return torch.cat([q_bias, torch.zeros_like(q_bias), v_bias])


# --------------------------------------------------------------------------- official layout


def convert_official(sd: StateDict) -> StateDict:
    """An official MCG-NJU state dict -> this project's key names.

    Pretraining layout (``encoder.*`` / ``decoder.*``) -> keys of ``VideoMAE`` (load strictly);
    fine-tuned layout (bare or ``backbone.``-prefixed) -> keys of ``VideoViT``.
    """
    sd = strip_prefixes(sd, WRAPPER_PREFIXES + ("backbone.",))
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
