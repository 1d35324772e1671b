"""VideoMAE: an encoder on visible tubelets, a narrow decoder predicting the masked tubelets' pixels.

Patch vectors are laid out ``(t, p, p, C)`` (channel last), as the official targets and the
official / Hugging Face decoder heads are, so their weights transfer unchanged.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.layers import trunc_normal_

from vmae.models.masking import split_mask
from vmae.models.pos_embed import sincos_rows, sincos_table
from vmae.models.vit import (
    EncoderConfig,
    LayerNorm,
    VideoViT,
    gather_tubelets,
    init_weights,
    make_blocks,
)

NORM_EPS = 1e-6  # target normalisation: (x - mean) / (unbiased std + 1e-6), as the official VideoMAE


def patchify(video: torch.Tensor, patch_size: int, tubelet_size: int) -> torch.Tensor:
    """video: (B, C, T, H, W) -> (B, N, t*p*p*C), tokens in (T', H', W') order, vectors (t, p, p, C)."""
    b, c, t, h, w = video.shape
    slots, rows, cols = t // tubelet_size, h // patch_size, w // patch_size
    x = video.reshape(b, c, slots, tubelet_size, rows, patch_size, cols, patch_size)
    x = x.permute(0, 2, 4, 6, 3, 5, 7, 1)  # (B, T', H', W', t, p, p, C)
    return x.reshape(b, slots * rows * cols, tubelet_size * patch_size * patch_size * c)


def unpatchify(
    patches: torch.Tensor, grid: tuple[int, int, int], patch_size: int, tubelet_size: int
) -> torch.Tensor:
    """Inverse of ``patchify``: (B, N, t*p*p*C) with N = T'*H'*W' -> video (B, C, T, H, W)."""
    b = patches.shape[0]
    slots, rows, cols = grid
    c = patches.shape[-1] // (tubelet_size * patch_size * patch_size)
    x = patches.reshape(b, slots, rows, cols, tubelet_size, patch_size, patch_size, c)
    x = x.permute(0, 7, 1, 4, 2, 5, 3, 6)  # (B, C, T', t, H', p, W', p)
    return x.reshape(b, c, slots * tubelet_size, rows * patch_size, cols * patch_size)


def patch_stats(patches: torch.Tensor, channels: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """patches: (B, N, t*p*p*C) -> pixels (B, N, t*p*p, C), their per-channel mean and std + eps."""
    pixels = patches.reshape(*patches.shape[:2], -1, channels)
    mean = pixels.mean(dim=-2, keepdim=True)
    scale = pixels.var(dim=-2, unbiased=True, keepdim=True).sqrt() + NORM_EPS
    return pixels, mean, scale


def _gather_tokens(tokens: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """tokens: (B, N, K), index: (B, M) -> (B, M, K)."""
    index = index.to(tokens.device)
    return tokens.gather(1, index[..., None].expand(-1, -1, tokens.shape[-1]))


class MAEDecoder(nn.Module):
    """timm Blocks + norm + head predicting t*p*p*C pixels. x: (B, N, D_dec) -> (B, num_masked, out)."""

    def __init__(self, embed_dim: int, depth: int, num_heads: int, out_dim: int, mlp_ratio: float,
                 qkv_bias: bool, init_values: float | None):
        super().__init__()
        self.blocks = make_blocks(embed_dim, depth, num_heads, mlp_ratio, qkv_bias, init_values)
        self.norm = LayerNorm(embed_dim)
        self.head = nn.Linear(embed_dim, out_dim)

    def forward(self, x: torch.Tensor, num_masked: int) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x[:, -num_masked:]))


class VideoMAE(nn.Module):
    """VideoMAE pretraining model: an encoder of ``EncoderConfig`` and a decoder of the given width,
    depth and heads (official keyword names). ``loss`` is the pretraining objective; ``targets``
    gives its pixel targets and ``reconstruct`` puts predictions back into the clip.

    ``forward(video (B, C, T, H, W), mask (B, N) bool, True = masked)`` -> predictions
    ``(B, N_masked, 3 * t * p * p)`` in the positional order of the masked tokens. Keep ``mask`` on
    the CPU (as ``make_mask`` makes it) to avoid a device sync; ``forward_indices`` takes indices.
    ``encoder`` is a ``VideoViT`` (with ``norm``, no pooling head) whose weights load into a
    fine-tuning ``VideoViT``.
    """

    def __init__(self, encoder: EncoderConfig, decoder_embed_dim: int, decoder_depth: int, decoder_num_heads: int):
        super().__init__()
        self.patch_size, self.tubelet_size = encoder.patch_size, encoder.tubelet_size
        self.encoder = VideoViT(encoder, num_classes=0, use_mean_pooling=False)
        self.encoder_to_decoder = nn.Linear(encoder.embed_dim, decoder_embed_dim, bias=False)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_embed_dim))
        out_dim = encoder.in_chans * encoder.tubelet_size * encoder.patch_size * encoder.patch_size
        self.decoder = MAEDecoder(decoder_embed_dim, decoder_depth, decoder_num_heads, out_dim, encoder.mlp_ratio,
                                  encoder.qkv_bias, encoder.init_values)
        self.register_buffer("decoder_pos_embed", sincos_table(self.encoder.num_tokens, decoder_embed_dim)[None],
                             persistent=False)
        self.encoder_to_decoder.apply(init_weights)
        self.decoder.apply(init_weights)
        trunc_normal_(self.mask_token, std=0.02)

    @property
    def grid(self) -> tuple[int, int, int]:
        return self.encoder.grid

    def forward(self, video: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        visible_idx, masked_idx = split_mask(mask)
        device = video.device
        return self.forward_indices(video, visible_idx.to(device, non_blocking=True),
                                    masked_idx.to(device, non_blocking=True))

    def forward_indices(self, video: torch.Tensor, visible_idx: torch.Tensor, masked_idx: torch.Tensor) -> torch.Tensor:
        """video: (B, C, T, H, W); visible_idx: (B, N_vis), masked_idx: (B, N_masked), each in
        positional order -> (B, N_masked, 3*t*p*p)."""
        x = self.encoder_to_decoder(self.encoder.forward_features(video, visible_idx))  # (B, N_vis, D_dec)
        num_tokens = visible_idx.shape[1] + masked_idx.shape[1]
        pos = sincos_rows(self.decoder_pos_embed, num_tokens).expand(x.shape[0], -1, -1).to(x.dtype)
        mask_tokens = self.mask_token.to(x.dtype) + _gather_tokens(pos, masked_idx)
        x = torch.cat([x + _gather_tokens(pos, visible_idx), mask_tokens], dim=1)  # (B, N, D_dec)
        return self.decoder(x, masked_idx.shape[1])

    def targets(self, video: torch.Tensor, masked_idx: torch.Tensor, norm_pix: bool = True) -> torch.Tensor:
        """video: (B, C, T, H, W), masked_idx: (B, N_masked) -> the pixel targets of the masked
        tubelets, in their positional order, on the video's device (no sync): (B, N_masked, t*p*p*C).
        Only those tubelets are gathered (through a strided view).

        ``norm_pix``: each tubelet's pixels, per channel, minus their mean and divided by their unbiased
        std + 1e-6 (the official ``var(unbiased=True).sqrt() + 1e-6``, not MAE's ``sqrt(var + 1e-6)``);
        otherwise the input pixels as given (already mean/std normalised by the data layer).
        """
        cubes = gather_tubelets(video, masked_idx, self.patch_size, self.tubelet_size)  # (B, M, C, t, p, p)
        patches = cubes.permute(0, 1, 3, 4, 5, 2).flatten(2)  # (B, M, t*p*p*C), vectors (t, p, p, C)
        if norm_pix:
            pixels, mean, scale = patch_stats(patches, video.shape[1])
            patches = ((pixels - mean) / scale).flatten(2)
        return patches

    def loss(self, video: torch.Tensor, visible_idx: torch.Tensor, masked_idx: torch.Tensor,
             norm_pix: bool = True) -> torch.Tensor:
        """The pretraining loss: the mean squared error between the predicted and the target pixels of
        the masked tubelets (fp32 scalar). video: (B, C, T, H, W); indices as ``forward_indices``."""
        return F.mse_loss(self.forward_indices(video, visible_idx, masked_idx).float(),
                          self.targets(video, masked_idx, norm_pix))

    def reconstruct(self, pred: torch.Tensor, video: torch.Tensor, mask: torch.Tensor,
                    norm_pix: bool = True) -> torch.Tensor:
        """pred: (B, N_masked, t*p*p*C) (``forward``), video: (B, C, T, H, W), mask: (B, N) bool ->
        the clip with its masked tubelets replaced by the predictions (B, C, T, H, W).

        With ``norm_pix`` the predictions are mapped back to pixels with each target tubelet's own
        mean and std (as the official visualiser does), so only their structure is the model's.
        """
        patch_size, tubelet_size = self.patch_size, self.tubelet_size
        patches = patchify(video, patch_size, tubelet_size)
        masked_idx = split_mask(mask)[1].to(video.device)
        pred = pred.float().reshape(*masked_idx.shape, -1)
        if norm_pix:
            _, mean, scale = patch_stats(_gather_tokens(patches, masked_idx), video.shape[1])
            pred = (pred.reshape(*pred.shape[:2], -1, video.shape[1]) * scale + mean).flatten(2)
        filled = patches.scatter(1, masked_idx[..., None].expand(-1, -1, patches.shape[-1]), pred.to(patches.dtype))
        return unpatchify(filled, self.grid, patch_size, tubelet_size)
