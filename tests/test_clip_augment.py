"""The official fine-tuning's augmentations (issue 34): RandAugment and random erasing the same in
every frame of a clip, the random resized crop, one temporal window for repeated clips, a sampling
mode per phase, head dropout, the fine-tuning init, and the lr scaled by videos."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest
import torch
from torch import nn

from vmae.config import ConfigError, FinetuneConfig, ModelConfig, build_config
from vmae.data.clip_augment import ClipErasing, ClipRandAugment
from vmae.data.dataset import SampleKey
from vmae.data.device_augment import collate_visits, render_clips
from vmae.data.transforms import random_resized_crop_box
from vmae.models import build_encoder
from vmae.train.distributed import DistEnv
from vmae.train.finetune import classifier_training

PAPER_RA = "rand-m7-n4-mstd0.5-inc1"


def still_clip(frames: int = 6) -> torch.Tensor:
    """uint8 (T, 40, 48, 3): one random picture repeated, so any per-frame difference is the augmentation's."""
    picture = torch.from_numpy(np.random.default_rng(1).integers(0, 256, (1, 40, 48, 3), dtype=np.uint8))
    return picture.repeat(frames, 1, 1, 1)


def test_rand_augment_is_one_draw_for_every_frame_of_a_clip():
    augment, clip = ClipRandAugment(PAPER_RA, 224), still_clip()
    state = random.getstate()
    outs = [augment(clip, np.random.default_rng(seed)) for seed in range(4)]
    assert random.getstate() == state  # Python's global generator left as it was
    for out in outs:
        assert out.shape == clip.shape and out.dtype == torch.uint8
        assert all(torch.equal(out[0], frame) for frame in out[1:])  # the same ops and magnitudes in each frame
    assert sum(not torch.equal(out, clip) for out in outs) >= 3  # 4 ops a clip: it changes them
    assert len({out.float().mean().item() for out in outs}) == 4  # a clip's own draw
    assert torch.equal(augment(clip, np.random.default_rng(2)), outs[2])  # reproducible from the item's generator


def test_erasing_is_one_box_a_clip_in_every_frame_with_fresh_noise():
    video = torch.randn(8, 3, 4, 32, 32)
    erased = ClipErasing(1.0, "cpu")(video.clone(), seed="0/0/0/0")
    changed = erased != video  # (B, C, T, H, W)
    for clip in changed:
        box = clip[0, 0]
        assert 0.02 * 32 * 32 <= box.sum() <= 32 * 32 / 3 + 32  # area share 0.02-1/3 (timm's), rounding
        rows, cols = box.any(1).nonzero(), box.any(0).nonzero()
        assert box.sum() == len(rows) * len(cols)  # a rectangle
        assert all(torch.equal(box, clip[c, t]) for c in range(3) for t in range(4))  # same place in every frame
    b0 = changed[0, 0, 0]
    assert not torch.equal(erased[0, 0, 0][b0], erased[0, 0, 1][b0])  # noise drawn per frame
    assert torch.equal(ClipErasing(1.0, "cpu")(video.clone(), seed="0/0/0/0") != video, changed)  # boxes seeded
    assert torch.equal(ClipErasing(0.0, "cpu")(video.clone(), seed="x"), video)
    quarter = ClipErasing(0.25, "cpu")(torch.zeros(400, 1, 1, 8, 8), seed="s")
    assert 0.18 < (quarter != 0).flatten(1).any(1).float().mean() < 0.32  # p: the share of clips erased


def test_random_resized_crop_draws_area_and_ratio_inside_the_frame():
    rng = np.random.default_rng(0)
    boxes = [random_resized_crop_box(240, 320, (0.08, 1.0), (0.75, 1.3333), rng) for _ in range(500)]
    shares = np.array([b.height * b.width / (240 * 320) for b in boxes])
    assert all(b.top >= 0 and b.left >= 0 and b.top + b.height <= 240 and b.left + b.width <= 320 for b in boxes)
    assert shares.min() < 0.15 and shares.max() > 0.9  # the whole 0.08-1 range, unlike the multi-scale crop's >= 0.44
    assert all(0.7 < b.width / b.height < 1.4 for b in boxes)
    # nothing fits (a strip): the centred crop clamped to the ratio
    strip = random_resized_crop_box(10, 400, (0.9, 1.0), (0.75, 1.3333), np.random.default_rng(0))
    assert (strip.height, strip.width, strip.top, strip.left) == (10, 13, 0, 193)


def test_a_clips_rand_augment_reaches_the_device_path_unchanged(toy_videos):
    """uint8 clips cut in the worker equal the device path's (visits) within a grey level, with
    RandAugment, the random resized crop and one window for both repeated clips."""
    cfg = dict(rand_augment=PAPER_RA, crop="resized", repeat_window=True)
    key = SampleKey(1, 5, 0)
    worker = toy_videos.dataset(toy_videos.folder / "train.csv", train=True, k=2, output="uint8", **cfg)[key][0]
    visits, _, _ = collate_visits([toy_videos.dataset(toy_videos.folder / "train.csv", train=True, k=2,
                                                      output="visits", **cfg)[key]])
    device = render_clips(visits, toy_videos.size)[0]
    assert worker.shape == device.shape == (2, 3, 4, 32, 32)
    assert (worker.int() - device.int()).abs().max() <= 1
    assert not torch.equal(worker[0], worker[1])  # each clip its own RandAugment draw and crop


def test_repeat_window_and_sampling_mode(toy_videos):
    same = toy_videos.dataset(toy_videos.folder / "train.csv", train=True, k=3, repeat_window=True)
    frames, positions = same.source.decode_clips(str(toy_videos.folder / "v2.avi"), 3, np.random.default_rng(0))
    assert all(torch.equal(positions[0], p) for p in positions) and len(frames) == 4
    own = toy_videos.dataset(toy_videos.folder / "train.csv", train=True, k=3)
    _, positions = own.source.decode_clips(str(toy_videos.folder / "v2.avi"), 3, np.random.default_rng(0))
    assert not all(torch.equal(positions[0], p) for p in positions)
    segments = dataclasses.replace(toy_videos.info, sampling_mode="segments")
    assert toy_videos.dataset(toy_videos.folder / "train.csv", True, info=segments).source.sampling_mode == "segments"
    dense = toy_videos.dataset(toy_videos.folder / "train.csv", True, info=segments, sampling="dense").source
    _, positions = dense.decode_clips(str(toy_videos.folder / "v2.avi"), 1, np.random.default_rng(0))
    frames, _ = dense.decode_clips(str(toy_videos.folder / "v2.avi"), 1, np.random.default_rng(0))
    assert dense.sampling_mode == "dense" and len(frames) == 4  # 4 frames at stride 2


def test_head_dropout_and_trunc_normal_init():
    base = dict(size="vit_small", img_size=32, patch_size=8, num_frames=4, tubelet_size=2)
    model = build_encoder(ModelConfig(**base, head_drop_rate=0.5, linear_init="trunc_normal"), num_classes=5)
    assert isinstance(model.head_drop, nn.Dropout) and model.head_drop.p == 0.5
    fc = model.blocks[0].mlp.fc1.weight
    assert fc.std().item() == pytest.approx(0.02, rel=0.05)  # timm trunc_normal_ (cut at +-2, as the official)
    xavier = build_encoder(ModelConfig(**base), num_classes=5)
    assert isinstance(xavier.head_drop, nn.Identity)
    assert xavier.blocks[0].mlp.fc1.weight.std().item() == pytest.approx((2 / (384 + 1536)) ** 0.5, rel=0.05)
    model.eval()
    x = torch.randn(2, 3, 4, 32, 32)
    assert torch.equal(model(x), model(x))  # dropout only in training


def test_finetuning_lr_scales_with_videos_not_clips():
    cfg = build_config(FinetuneConfig, None, ["device=cpu", "compile=false", "optim.batch_size=16",
                                               "data.repeated_sampling=2", "model.size=vit_nano", "model.img_size=16",
                                               "model.num_frames=4", "model.tubelet_size=2"])
    run = classifier_training(build_encoder(cfg.model, num_classes=3), cfg, DistEnv(device=torch.device("cpu")))
    assert run.clips_per_step == 16  # 16 videos x 2 clips: lr = base_lr x 16 / 256


@pytest.mark.parametrize(("override", "message"), [
    ("data.erase_p=1.5", r"data.erase_p=1.5: expected in \[0, 1\]"),
    ("data.crop_area=[0.5,0.2]", r"data.crop_area=\(0.5, 0.2\): expected two shares"),
    ("data.rand_augment=augmix-m5", r"data.rand_augment='augmix-m5': expected '' \(off\) or a timm RandAugment"),
    ("data.crop=inception", r"data.crop='inception': expected one of \['multiscale', 'resized'\]"),
    ("data.sampling=sparse", r"expected one of \['dataset', 'dense', 'segments'\]"),
    ("model.head_drop_rate=1", r"model.head_drop_rate=1.0: expected in \[0, 1\)"),
])
def test_new_knobs_are_validated(override, message):
    with pytest.raises(ConfigError, match=message):
        build_config(FinetuneConfig, None, [override])
