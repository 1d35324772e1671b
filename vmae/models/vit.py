"""The video ViT encoder: tubelet embedding, fixed sin-cos positions, timm ``Block``s, mean pooling.

Key names follow the official VideoMAE code where timm allows (``patch_embed.proj``, ``blocks.{i}``,
``norm``, ``fc_norm``, ``head``); attention is timm's, which calls
``F.scaled_dot_product_attention`` (timm's ``fused_attn``), with one ``qkv`` Linear and layer scale
as ``ls1.gamma`` / ``ls2.gamma`` (``vmae.models.interop`` maps the official layout onto this).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.layers import trunc_normal_
from timm.models.vision_transformer import Block

from vmae.models.pos_embed import sincos_rows, sincos_table


@dataclass(frozen=True)
class EncoderConfig:
    """The encoder's architecture (official keyword names). ``vmae.models.encoder_config`` makes it
    from a ``vmae.config.ModelConfig``, which holds the defaults; here there are none but RGB input."""

    img_size: int  # input side (square)
    patch_size: int  # spatial patch side
    num_frames: int  # frames a clip
    tubelet_size: int  # frames a token
    embed_dim: int
    depth: int
    num_heads: int
    mlp_ratio: float
    qkv_bias: bool
    init_values: float | None  # layer scale init; 0 / None: no layer scale
    drop_path_rate: float
    in_chans: int = 3
    head_drop_rate: float = 0.0  # dropout before the head (official fc_drop_rate)
    linear_init: str = "xavier"  # the blocks' Linear layers: "xavier" (uniform) or "trunc_normal" (std 0.02)


# name -> encoder width, depth, heads (paper sizes plus small ones for CPU runs)
MODEL_SIZES: dict[str, dict[str, int]] = {
    "vit_nano": dict(embed_dim=96, depth=3, num_heads=4),
    "vit_micro": dict(embed_dim=128, depth=4, num_heads=4),
    "vit_tiny": dict(embed_dim=192, depth=12, num_heads=3),
    "vit_small": dict(embed_dim=384, depth=12, num_heads=6),
    "vit_base": dict(embed_dim=768, depth=12, num_heads=12),
    "vit_large": dict(embed_dim=1024, depth=24, num_heads=16),
    "vit_huge": dict(embed_dim=1280, depth=32, num_heads=16),
}

LayerNorm = partial(nn.LayerNorm, eps=1e-6)


def make_blocks(
    dim: int,
    depth: int,
    num_heads: int,
    mlp_ratio: float,
    qkv_bias: bool,
    init_values: float | None,
    drop_path_rate: float = 0.0,
) -> nn.ModuleList:
    """``depth`` timm Blocks with stochastic depth rising linearly from 0 to ``drop_path_rate``."""
    rates = torch.linspace(0, drop_path_rate, depth).tolist()
    return nn.ModuleList(
        Block(dim, num_heads, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, init_values=init_values or None,
              drop_path=rate, norm_layer=LayerNorm)
        for rate in rates
    )


def init_weights(module: nn.Module) -> None:
    """Official initialisation: xavier-uniform Linear with zero bias, LayerNorm weight 1 / bias 0."""
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def init_weights_trunc_normal(module: nn.Module) -> None:
    """The official fine-tuning model's initialisation: truncated-normal (std 0.02) Linear with zero
    bias, LayerNorm weight 1 / bias 0."""
    if isinstance(module, nn.Linear):
        trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


LINEAR_INITS = {"xavier": init_weights, "trunc_normal": init_weights_trunc_normal}


def gather_tubelets(video: torch.Tensor, index: torch.Tensor, patch_size: int, tubelet_size: int) -> torch.Tensor:
    """The indexed (t, p, p) tubelets of each clip, read through a strided view (no copy of the clip).

    video: (B, C, T, H, W); index: (B, M) token indices in (T', H', W') order -> (B, M, C, t, p, p).
    Like the Conv3d, a remainder of frames / pixels that fills no whole tubelet is dropped.
    """
    b, c, t, h, w = video.shape
    slots, rows, cols = t // tubelet_size, h // patch_size, w // patch_size
    video = video[:, :, : slots * tubelet_size, : rows * patch_size, : cols * patch_size]
    cubes = video.reshape(b, c, slots, tubelet_size, rows, patch_size, cols, patch_size)
    cubes = cubes.permute(0, 2, 4, 6, 1, 3, 5, 7)  # (B, T', H', W', C, t, p, p), a view
    index = index.to(video.device)
    batch = torch.arange(b, device=video.device)[:, None]
    return cubes[batch, index // (rows * cols), index // cols % rows, index % cols]


class TubeletEmbed(nn.Module):
    """Non-overlapping (t, p, p) tubelets -> tokens by one Conv3d. x: (B, C, T, H, W) -> (B, N, D)."""

    def __init__(self, patch_size: int, tubelet_size: int, in_chans: int, embed_dim: int):
        super().__init__()
        self.patch_size, self.tubelet_size = patch_size, tubelet_size
        kernel = (tubelet_size, patch_size, patch_size)
        self.proj = nn.Conv3d(in_chans, embed_dim, kernel_size=kernel, stride=kernel)
        nn.init.xavier_uniform_(self.proj.weight.view(embed_dim, -1))  # like a Linear
        nn.init.zeros_(self.proj.bias)

    def num_tokens(self, x: torch.Tensor) -> int:
        """Token count T'*H'*W' of a clip x: (B, C, T, H, W)."""
        _, _, t, h, w = x.shape
        return (t // self.tubelet_size) * (h // self.patch_size) * (w // self.patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)

    def forward_at(self, x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Tokens of the indexed tubelets only: x: (B, C, T, H, W), index: (B, M) -> (B, M, D).

        The Conv3d applied as a linear map to the gathered tubelets: vectors laid out (C, t, p, p)
        match the flattened (D, C, t, p, p) weight, so equal to ``forward(x)`` gathered at ``index``.
        """
        cubes = gather_tubelets(x, index, self.patch_size, self.tubelet_size).flatten(2)  # (B, M, C*t*p*p)
        return F.linear(cubes, self.proj.weight.flatten(1), self.proj.bias)


class VideoViT(nn.Module):
    """Video ViT without a CLS token (the VideoMAE encoder / fine-tuning model).

    ``use_mean_pooling=True`` (fine-tuning, probing): ``norm`` is Identity and pooled features go
    through ``fc_norm``; ``False`` (the VideoMAE pretraining encoder): tokens go through ``norm``.
    Any input whose frames / size are divisible by the tubelet works: the sin-cos table (never
    stored in the state dict) is rebuilt for the token count.
    """

    def __init__(self, cfg: EncoderConfig, num_classes: int = 0, use_mean_pooling: bool = True,
                 head_init_scale: float = 0.001):  # official fine-tuning: head ~ N(0, .02) x 0.001
        super().__init__()
        self.cfg = cfg
        self.patch_size, self.tubelet_size = cfg.patch_size, cfg.tubelet_size
        self.img_size, self.num_frames = cfg.img_size, cfg.num_frames
        self.embed_dim, self.depth, self.num_classes = cfg.embed_dim, cfg.depth, num_classes
        embed_dim = cfg.embed_dim
        self.patch_embed = TubeletEmbed(cfg.patch_size, cfg.tubelet_size, cfg.in_chans, embed_dim)
        self.register_buffer("pos_embed", sincos_table(self.num_tokens, embed_dim)[None], persistent=False)
        self.blocks = make_blocks(embed_dim, cfg.depth, cfg.num_heads, cfg.mlp_ratio, cfg.qkv_bias, cfg.init_values,
                                  cfg.drop_path_rate)
        self.norm = nn.Identity() if use_mean_pooling else LayerNorm(embed_dim)
        self.fc_norm = LayerNorm(embed_dim) if use_mean_pooling else nn.Identity()
        self.head_drop = nn.Dropout(cfg.head_drop_rate) if cfg.head_drop_rate > 0 else nn.Identity()
        self.head = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        self.blocks.apply(LINEAR_INITS[cfg.linear_init])
        if num_classes > 0:
            trunc_normal_(self.head.weight, std=0.02)
            self.head.weight.data.mul_(head_init_scale)
            nn.init.zeros_(self.head.bias)

    @property
    def grid(self) -> tuple[int, int, int]:
        """Token grid (T', H', W') of the configured input size."""
        side = self.img_size // self.patch_size
        return (self.num_frames // self.tubelet_size, side, side)

    @property
    def num_tokens(self) -> int:
        slots, height, width = self.grid
        return slots * height * width

    def forward_features(self, x: torch.Tensor, visible_idx: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, C, T, H, W) -> tokens (B, N, D); with ``visible_idx: (B, N_vis)`` only those tubelets
        are embedded (``TubeletEmbed.forward_at``), get their position rows and pass the blocks -> (B, N_vis, D)."""
        if visible_idx is None:
            tokens = self.patch_embed(x)
            tokens = tokens + sincos_rows(self.pos_embed, tokens.shape[1]).to(tokens.dtype)
        else:
            visible_idx = visible_idx.to(x.device)
            tokens = self.patch_embed.forward_at(x, visible_idx)
            pos = sincos_rows(self.pos_embed, self.patch_embed.num_tokens(x))[0]  # (N, D)
            tokens = tokens + pos[visible_idx].to(tokens.dtype)
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens)

    def forward_head(self, tokens: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """tokens: (B, N, D) -> logits (B, num_classes), or pooled normed features (B, D)."""
        pooled = self.fc_norm(tokens.mean(dim=1))
        return pooled if pre_logits else self.head(self.head_drop(pooled))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, T, H, W) -> (B, num_classes) (pooled features when num_classes=0)."""
        return self.forward_head(self.forward_features(x))


_BLOCK_INDEX = re.compile(r"(?:^|\.)blocks\.(\d+)\.")


def layer_id(param_name: str, depth: int) -> int:
    """Layer of a parameter for layer-wise lr decay: embedding/positions 0, ``blocks.i`` i+1, rest depth+1."""
    match = _BLOCK_INDEX.search(param_name)
    if match:
        return int(match.group(1)) + 1
    if "patch_embed" in param_name or "pos_embed" in param_name:
        return 0
    return depth + 1
