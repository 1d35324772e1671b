"""Token masks of masked methods (VideoMAE): registered pure functions of an explicit ``torch.Generator``.

A mask is ``(B, N)`` bool with True = masked, over tokens in ``(t, h, w)`` flattened order
(the order of ``VideoViT.patch_embed``), and the same masked count in every row.

- ``tube``:   one random spatial mask per clip, shared by every time slot;
              ``int(ratio * H'W')`` masked positions per slot.
- ``random``: ``int(ratio * N)`` tokens per clip, chosen independently.
- ``frame``:  whole time slots; ``round(ratio * T')`` slots, clamped to ``[1, T' - 1]`` so at least
              one slot is masked and one stays visible (0.875 of 8 slots = 7 slots).

A strategy is one function ``(batch, grid, ratio, generator) -> (B, N) bool`` registered under its
name with ``@register_masking(name)``: the config (``masking``), the workflow schema, run names and
tables ask ``MASKINGS``, so a new strategy is that function (in a module of vmae or one named in
``VMAE_PLUGINS``, vmae.methods) and a study grid entry. ``make_mask`` checks the name and the ratio.

Masks are made on the generator's device (the CPU for a default generator); keeping them there lets
``split_mask`` find the token counts without a device sync.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

# (batch, grid (T', H', W'), ratio, generator) -> (batch, T'*H'*W') bool mask, True = masked
MaskFn = Callable[[int, tuple[int, int, int], float, torch.Generator], torch.Tensor]
MASKINGS: dict[str, MaskFn] = {}  # name -> function, in registration order (the order of tables)


def register_masking(name: str) -> Callable[[MaskFn], MaskFn]:
    """Decorator: register a masking function under ``name`` (a lowercase word, e.g. "tube")."""

    def add(fn: MaskFn) -> MaskFn:
        if not name.isalpha() or not name.islower():
            raise ValueError(f"masking name {name!r}: expected lowercase letters (run names end in <name><ratio>)")
        if name in MASKINGS and MASKINGS[name] is not fn:
            raise ValueError(f"masking {name!r} is registered twice ({MASKINGS[name].__module__}, {fn.__module__})")
        MASKINGS[name] = fn
        return fn

    return add


def _random_rows(batch: int, length: int, count: int, generator: torch.Generator) -> torch.Tensor:
    """``(batch, length)`` bool with exactly ``count`` random True entries per row."""
    noise = torch.rand(batch, length, generator=generator, device=generator.device)
    chosen = noise.argsort(dim=1)[:, :count]
    mask = torch.zeros(batch, length, dtype=torch.bool, device=generator.device)
    return mask.scatter_(1, chosen, True)


@register_masking("tube")
def tube_mask(batch: int, grid: tuple[int, int, int], ratio: float, generator: torch.Generator) -> torch.Tensor:
    """One spatial mask of ``int(ratio * H'W')`` positions repeated over all ``T'`` slots -> (B, N)."""
    slots, height, width = grid
    spatial = _random_rows(batch, height * width, int(ratio * height * width), generator)
    return spatial[:, None, :].expand(batch, slots, height * width).reshape(batch, -1)


@register_masking("random")
def random_mask(batch: int, grid: tuple[int, int, int], ratio: float, generator: torch.Generator) -> torch.Tensor:
    """``int(ratio * N)`` independently chosen tokens per clip -> (B, N)."""
    num_tokens = grid[0] * grid[1] * grid[2]
    return _random_rows(batch, num_tokens, int(ratio * num_tokens), generator)


@register_masking("frame")
def frame_mask(batch: int, grid: tuple[int, int, int], ratio: float, generator: torch.Generator) -> torch.Tensor:
    """``round(ratio * T')`` whole time slots (clamped to [1, T'-1]) per clip -> (B, N)."""
    slots, height, width = grid
    if slots < 2:
        raise ValueError(f"frame masking needs at least 2 time slots, got grid {grid}")
    count = min(max(round(ratio * slots), 1), slots - 1)
    per_slot = _random_rows(batch, slots, count, generator)
    return per_slot[:, :, None].expand(batch, slots, height * width).reshape(batch, -1)


def make_mask(
    kind: str, batch: int, grid: tuple[int, int, int], ratio: float, generator: torch.Generator
) -> torch.Tensor:
    """A ``(batch, T'*H'*W')`` bool mask (True = masked) of the registered kind; see the module docstring."""
    if kind not in MASKINGS:
        raise ValueError(f"masking kind {kind!r}: expected one of {list(MASKINGS)}")
    if not 0.0 < ratio < 1.0:
        raise ValueError(f"mask ratio {ratio!r}: expected a value in (0, 1)")
    return MASKINGS[kind](batch, tuple(grid), ratio, generator)


def split_mask(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Token indices of a mask, each in positional order.

    mask: (B, N) bool, True = masked, the same count per row.
    Returns ``(visible_idx (B, N_vis), masked_idx (B, N_masked))`` long, on ``mask.device``.
    """
    batch, num_tokens = mask.shape
    num_masked = int(mask[0].sum())
    order = mask.to(torch.uint8).argsort(dim=1, stable=True)  # visible first, then masked
    return order[:, : num_tokens - num_masked], order[:, num_tokens - num_masked :]
