"""Mask invariants: exact counts, tube shared over time, frame masks whole slots, seeded."""

from __future__ import annotations

import pytest
import torch

from vmae.models.masking import make_mask, split_mask

GRID = (4, 8, 8)  # T', H', W' of 16x32x32 with tubelet 4x4x4


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize(
    "kind, ratio, expected_masked",
    [("tube", 0.9, 4 * 57), ("tube", 0.75, 4 * 48), ("random", 0.9, 230), ("frame", 0.75, 3 * 64)],
)
def test_exact_masked_count_per_row(kind, ratio, expected_masked):
    mask = make_mask(kind, 5, GRID, ratio, _gen(0))
    assert mask.shape == (5, 256) and mask.dtype == torch.bool
    assert mask.sum(dim=1).tolist() == [expected_masked] * 5


def test_tube_mask_is_identical_across_time_and_differs_across_clips():
    mask = make_mask("tube", 3, GRID, 0.9, _gen(1)).view(3, 4, 64)
    assert torch.equal(mask, mask[:, :1].expand_as(mask))
    assert not torch.equal(mask[0, 0], mask[1, 0])


def test_frame_mask_hides_whole_slots_7_of_8():
    mask = make_mask("frame", 6, (8, 4, 4), 0.875, _gen(2)).view(6, 8, 16)
    per_slot = mask.sum(dim=2)
    assert set(per_slot.unique().tolist()) == {0, 16}  # whole slots only
    assert (per_slot == 16).sum(dim=1).tolist() == [7] * 6


def test_frame_mask_keeps_one_slot_visible():
    mask = make_mask("frame", 2, (4, 2, 2), 0.99, _gen(0)).view(2, 4, 4)
    assert (mask.sum(dim=2) == 0).sum(dim=1).tolist() == [1, 1]


def test_random_mask_is_not_tube_shaped():
    mask = make_mask("random", 1, GRID, 0.9, _gen(3)).view(4, 64)
    assert not torch.equal(mask[0], mask[1])


@pytest.mark.parametrize("kind", ["tube", "random", "frame"])
def test_deterministic_per_seed_and_different_across_seeds(kind):
    a = make_mask(kind, 4, GRID, 0.75, _gen(7))
    b = make_mask(kind, 4, GRID, 0.75, _gen(7))
    c = make_mask(kind, 4, GRID, 0.75, _gen(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_bad_kind_and_ratio_are_errors():
    with pytest.raises(ValueError, match="cube"):
        make_mask("cube", 1, GRID, 0.9, _gen(0))
    with pytest.raises(ValueError, match="1.5"):
        make_mask("tube", 1, GRID, 1.5, _gen(0))


def test_split_mask_gives_sorted_visible_and_masked_indices():
    mask = torch.tensor([[True, False, False, True, True], [False, True, True, False, True]])
    visible, masked = split_mask(mask)
    assert visible.tolist() == [[1, 2], [0, 3]]
    assert masked.tolist() == [[0, 3, 4], [1, 2, 4]]
