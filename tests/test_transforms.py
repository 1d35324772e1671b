"""uint8 clip transforms: multi-scale crop choices, resize, flip, normalisation, test-time views."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vmae.data.transforms import (
    eval_views,
    fixed_crop_offsets,
    flip_decisions,
    CropBox,
    multiscale_crop_box,
    normalize,
    resized_crop,
    short_side_resize,
    spatial_crops,
    to_device_normalized,
    to_model_layout,
)

SCALES = (1.0, 0.875, 0.75, 0.66)


def clip_uint8(t=4, h=48, w=64, seed=0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (t, h, w, 3), dtype=np.uint8))


def test_multiscale_crop_sizes_and_distortion():
    rng = np.random.default_rng(0)
    allowed = {int(48 * s) for s in SCALES}  # short side 48 -> {48, 42, 36, 31}
    order = sorted(allowed, reverse=True)
    pairs = set()
    for _ in range(500):
        box = multiscale_crop_box(48, 64, 20, SCALES, rng)  # no size near 20: no snapping
        assert box.height in allowed and box.width in allowed
        assert abs(order.index(box.height) - order.index(box.width)) <= 1  # max_distort 1
        assert 0 <= box.top <= 48 - box.height and 0 <= box.left <= 64 - box.width
        pairs.add((box.height, box.width))
    assert len(pairs) == 10  # 4 square + 2 * 3 neighbouring pairs


def test_crop_sizes_near_the_output_snap_to_it():
    rng = np.random.default_rng(0)
    sizes = {multiscale_crop_box(34, 34, 32, (1.0,), rng).height for _ in range(10)}
    assert sizes == {32}  # 34 is within 3 px of img_size=32


def test_fixed_offsets_cover_corners_centre_and_grid():
    offsets = fixed_crop_offsets(48, 64, 32, 32)  # steps: h 4, w 8
    assert len(offsets) == 13
    assert {(0, 0), (0, 32), (16, 0), (16, 32), (8, 16)} <= set(offsets)


def test_resized_crop_output_is_a_resized_uint8_window():
    clip = clip_uint8()
    box = multiscale_crop_box(48, 64, 32, SCALES, np.random.default_rng(0))
    out = resized_crop(clip, box, 32)
    assert out.shape == (4, 3, 32, 32) and out.dtype == torch.uint8
    window = clip[:, box.top:box.top + box.height, box.left:box.left + box.width].permute(0, 3, 1, 2).float()
    expected = torch.nn.functional.interpolate(window, size=(32, 32), mode="bilinear", align_corners=False)
    assert (out.float() - expected).abs().max() <= 1.0  # uint8 kernel: at most one grey level off


def test_full_crop_of_right_size_is_the_clip_itself():
    clip = clip_uint8(h=32, w=32)
    box = multiscale_crop_box(32, 32, 32, (1.0,), np.random.default_rng(0))
    assert box == CropBox(0, 0, 32, 32)
    torch.testing.assert_close(resized_crop(clip, box, 32), clip.permute(0, 3, 1, 2))


def test_flip_decisions_independent_or_together():
    rng = np.random.default_rng(0)
    single = flip_decisions(400, rng)
    assert single.dtype == bool and 150 < single.sum() < 250
    together = [flip_decisions(3, rng, together=True) for _ in range(50)]
    assert all(len(set(d.tolist())) == 1 for d in together)
    assert 10 < sum(d[0] for d in together) < 40
    assert not flip_decisions(5, rng, p=0.0).any() and flip_decisions(5, rng, p=1.0).all()


def test_model_layout_then_normalize():
    x = torch.full((2, 4, 3, 8, 8), 255, dtype=torch.uint8)  # (k, T, 3, H, W)
    x[:, :, 1] = 0
    x[0, 1, 2, 5, 6] = 51
    clips = to_model_layout(x)
    assert clips.shape == (2, 3, 4, 8, 8) and clips.dtype == torch.uint8 and clips.is_contiguous()
    assert clips[0, 2, 1, 5, 6] == 51
    out = normalize(clips, (0.5, 0.5, 0.5), (0.25, 0.5, 1.0))
    assert out.shape == (2, 3, 4, 8, 8) and out.dtype == torch.float32
    assert out[:, 0].unique().tolist() == pytest.approx([2.0])  # (1 - .5) / .25
    assert out[:, 1].unique().tolist() == pytest.approx([-1.0])  # (0 - .5) / .5
    assert out[0, 2, 1, 5, 6].item() == pytest.approx(-0.3)  # (.2 - .5) / 1
    assert out[1, 2].unique().tolist() == pytest.approx([0.5])


def test_short_side_resize_keeps_aspect():
    out = short_side_resize(clip_uint8(t=2, h=48, w=64).unsqueeze(0), 24)
    assert out.shape == (2, 3, 24, 32)
    tall = short_side_resize(clip_uint8(t=2, h=64, w=48), 24)
    assert tall.shape == (2, 3, 32, 24)


def test_three_crops_run_along_the_long_side():
    frames = torch.arange(24 * 32, dtype=torch.float32).reshape(1, 1, 24, 32)
    left, centre, right = spatial_crops(frames, 24, 3)
    assert left[0, 0, 0, 0] == 0 and centre[0, 0, 0, 0] == 4 and right[0, 0, 0, 0] == 8
    tall = frames.transpose(-1, -2)  # 32 x 24
    top, _, bottom = spatial_crops(tall, 24, 3)
    assert top[0, 0, 0, 0] == 0 and bottom[0, 0, 0, 0] == 8  # tall[8, 0] = frames[0, 8]
    (only,) = spatial_crops(frames, 24, 1)
    torch.testing.assert_close(only, centre)


def test_eval_views_shape_and_order():
    frames = clip_uint8(t=6, h=48, w=64)
    positions = torch.tensor([[0, 1, 2, 3], [2, 3, 4, 5]])
    views = eval_views(frames, positions, 32, 3)
    assert views.shape == (6, 4, 3, 32, 32) and views.dtype == torch.uint8
    resized = short_side_resize(frames, 32)  # (6, 3, 32, 43)
    torch.testing.assert_close(views[3], resized[2:6, ..., :32])  # clip 1, left crop
    torch.testing.assert_close(views[4], spatial_crops(resized, 32, 1)[0][2:6])  # clip 1, centre


def test_crop_gathers_clip_frames_after_cropping():
    frames = clip_uint8(t=6, h=32, w=32)
    index = torch.tensor([5, 0, 0])
    out = resized_crop(frames, CropBox(0, 0, 32, 32), 32, index)
    torch.testing.assert_close(out, frames[index].permute(0, 3, 1, 2))


def test_to_device_normalized_normalises_uint8_and_passes_float_through():
    clips = torch.randint(0, 256, (2, 3, 4, 8, 8), dtype=torch.uint8)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    out = to_device_normalized(clips, torch.device("cpu"), mean, std)
    expected = (clips.float() / 255 - torch.tensor(mean).view(3, 1, 1, 1)) / torch.tensor(std).view(3, 1, 1, 1)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    assert to_device_normalized(out, torch.device("cpu"), mean, std) is out
