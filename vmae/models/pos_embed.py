"""Position tables: the official fixed 1-D sin-cos table and resizing of learned 3-D tables."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def sincos_table(num_positions: int, dim: int) -> torch.Tensor:
    """The official VideoMAE table over the flattened token index -> (num_positions, dim) float32.

    ``angle[pos, i] = pos / 10000 ** (2 * (i // 2) / dim)``; sin on even channels, cos on odd ones
    (computed in float64 like the official numpy code, then cast).
    """
    position = torch.arange(num_positions, dtype=torch.float64)[:, None]
    exponent = 2 * (torch.arange(dim, dtype=torch.float64) // 2) / dim
    angle = position / torch.pow(10000.0, exponent)[None, :]
    table = torch.empty_like(angle)
    table[:, 0::2] = torch.sin(angle[:, 0::2])
    table[:, 1::2] = torch.cos(angle[:, 1::2])
    return table.float()


def resize_grid_table(
    table: torch.Tensor, old_grid: tuple[int, int, int], new_grid: tuple[int, int, int]
) -> torch.Tensor:
    """Trilinearly resize a learned table laid out over a (T', H', W') token grid.

    table: (1, T'*H'*W', D) or (T'*H'*W', D) -> same rank, with ``new_grid`` tokens.
    """
    squeeze = table.dim() == 2
    flat = table[None] if squeeze else table
    slots, height, width = old_grid
    if flat.shape[1] != slots * height * width:
        raise ValueError(f"position table has {flat.shape[1]} rows, expected {slots * height * width} for grid {old_grid}")
    volume = flat.reshape(flat.shape[0], slots, height, width, -1).permute(0, 4, 1, 2, 3)
    resized = F.interpolate(volume.float(), size=tuple(new_grid), mode="trilinear", align_corners=False)
    out = resized.permute(0, 2, 3, 4, 1).reshape(flat.shape[0], -1, flat.shape[-1]).to(table.dtype)
    return out[0] if squeeze else out


def sincos_rows(cached: torch.Tensor, num_tokens: int) -> torch.Tensor:
    """The first ``num_tokens`` rows of a cached (1, M, D) sin-cos table, built afresh when M is short.

    The 1-D table's rows do not depend on its length, so any frame count / resolution just works.
    """
    if num_tokens <= cached.shape[1]:
        return cached[:, :num_tokens]
    return sincos_table(num_tokens, cached.shape[-1])[None].to(cached.device)
