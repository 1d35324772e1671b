"""Deferred augmentation: workers hand over frames + crops, ``render_clips`` cuts the batch at once.

The reference is the worker path: ``resized_crop`` (torch's uint8 bilinear kernel) and a flip per
clip. ``render_clips`` must equal torch's float bilinear resize of each crop exactly, the worker's
uint8 resize to one grey level, and deferred ``TrainingClips`` must make the same random draws.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DistributedSampler

from vmae.cli import main as vmae
from vmae.config import ConfigError, DataConfig, PretrainConfig, build_config
from vmae.data import loaders
from vmae.data.dataset import SampleKey, TrainingClips
from vmae.data.device_augment import (
    RenderClips,
    Visits,
    bilinear_taps,
    collate_visits,
    pending_visit,
    render_clips,
)
from vmae.data.loaders import EpochSampler, build_loader
from vmae.data.transforms import CropBox, multiscale_crop_box, resized_crop
from vmae.train.distributed import DistEnv
from vmae.train.prefetch import DevicePrefetcher

SIZE = 32  # clip side, as the toy videos' (conftest.ToyVideos)


def frames_uint8(f: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (f, h, w, 3), dtype=np.uint8))


# windows that downscale, upscale, keep the size, touch every edge, and change the aspect ratio
BOXES = [CropBox(3, 5, 30, 30), CropBox(0, 0, 40, 40), CropBox(10, 20, 20, 28), CropBox(0, 10, 40, 40),
         CropBox(7, 18, 33, 32)]
FLIPS = np.array([False, True, True, False, True])
POSITIONS = torch.tensor([[0, 2, 4, 6], [1, 3, 5, 7], [2, 3, 4, 5], [9, 8, 7, 6], [0, 0, 9, 9]])


def float_reference(frames: torch.Tensor, positions: torch.Tensor, box: CropBox, flip: bool) -> torch.Tensor:
    """torch's float bilinear resize of one crop, rounded: uint8 (3, T, S, S)."""
    window = frames[positions][:, box.top:box.top + box.height, box.left:box.left + box.width]
    resized = F.interpolate(window.permute(0, 3, 1, 2).float(), size=(SIZE, SIZE), mode="bilinear",
                            align_corners=False).round().to(torch.uint8)
    return (resized.flip(-1) if flip else resized).movedim(0, 1)


def test_taps_reproduce_interpolate_source_pixels():
    lo, hi, frac = bilinear_taps(torch.tensor([5, 0]), torch.tensor([8, 2]), 4, torch.tensor([False, True]))
    # downscale 8 -> 4: samples at 0.5, 2.5, 4.5, 6.5 of the window, offset by its start 5
    assert lo[0].tolist() == [5, 7, 9, 11] and hi[0].tolist() == [6, 8, 10, 12]
    assert frac[0].tolist() == [0.5] * 4
    # upscale 2 -> 4, flipped: samples at 0 (clamped), 0.25, 0.75, 1.25 -> reversed; the last pixel repeats
    assert lo[1].tolist() == [1, 0, 0, 0] and hi[1].tolist() == [1, 1, 1, 1]
    assert frac[1].tolist() == [0.25, 0.75, 0.25, 0.0]


def test_render_equals_float_resize_and_the_worker_path_to_one_grey_level():
    frames = frames_uint8(10, 40, 50)
    visits, _, _ = collate_visits([(pending_visit(frames, POSITIONS, BOXES, FLIPS), 1, 0)])
    clips = render_clips(visits, SIZE)
    assert clips.shape == (1, 5, 3, 4, SIZE, SIZE) and clips.dtype == torch.uint8 and clips.is_contiguous()
    for j, (box, flip) in enumerate(zip(BOXES, FLIPS)):
        torch.testing.assert_close(clips[0, j], float_reference(frames, POSITIONS[j], box, flip), rtol=0, atol=0)
        worker = resized_crop(frames, box, SIZE, POSITIONS[j])  # (T, 3, S, S), torch's uint8 kernel
        worker = (worker.flip(-1) if flip else worker).movedim(0, 1)
        assert (clips[0, j].int() - worker.int()).abs().max() <= 1


SMALL, LARGE = frames_uint8(6, 30, 36, seed=1), frames_uint8(10, 40, 50, seed=2)
# (frames, positions, boxes, flips) of two visits of different frame counts and sizes
MIXED = [(SMALL, POSITIONS[:2] % 6, [CropBox(0, 4, 30, 32), CropBox(2, 0, 28, 28)], FLIPS[:2]),
         (LARGE, POSITIONS[2:4], BOXES[2:4], FLIPS[2:4])]


def test_collate_pads_mixed_frame_sizes_and_offsets_the_frame_index():
    visits, labels, bad = collate_visits([(pending_visit(*MIXED[0]), 4, 0), (pending_visit(*MIXED[1]), 7, 2)])
    assert visits.frames.shape == (16, 40, 50, 3)
    assert torch.equal(visits.frames[:6, :30, :36], SMALL) and visits.frames[:6, 30:].eq(0).all()
    assert torch.equal(visits.frame_index[1], MIXED[1][1] + 6)
    assert labels.tolist() == [4, 7] and bad.tolist() == [0, 2] and visits.flips.dtype == torch.bool
    clips = render_clips(visits, SIZE)
    for b, (frames, positions, boxes, flips) in enumerate(MIXED):
        for j in range(2):
            expected = float_reference(frames, positions[j], boxes[j], flips[j])
            torch.testing.assert_close(clips[b, j], expected, rtol=0, atol=0)


def mixed_batches() -> list[Visits]:
    """Two batches: the two visits of ``MIXED``, then two of ``LARGE`` alone (another frame count)."""
    second = [(pending_visit(LARGE, POSITIONS[j:j + 2], BOXES[j:j + 2], FLIPS[j:j + 2]), 0, 0) for j in (0, 3)]
    return [collate_visits([(pending_visit(*visit), 0, 0) for visit in MIXED])[0], collate_visits(second)[0]]


def test_compiled_render_equals_eager_across_batch_shapes():
    render = RenderClips(SIZE, compile=True)
    for visits in mixed_batches():
        clips, _, _ = render((visits, None, None))
        assert (clips.int() - render_clips(visits, SIZE).int()).abs().max() <= 1  # fused arithmetic


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("compile", [False, True])
def test_render_on_cuda_equals_the_cpu(compile):
    render = RenderClips(SIZE, compile=compile)
    for visits in mixed_batches():
        on_gpu = Visits(*(t.cuda() for t in visits))
        clips, _, _ = render((on_gpu, None, None))
        assert clips.is_cuda and (clips.cpu().int() - render_clips(visits, SIZE).int()).abs().max() <= 1


def test_deferred_items_make_the_worker_items_draws(toy_videos):
    worker_ds = toy_videos.dataset(toy_videos.folder / "train.csv", train=True, k=3, output="uint8")
    deferred_ds = toy_videos.dataset(toy_videos.folder / "train.csv", train=True, k=3, output="visits")
    flipped_labels = set()
    for index in range(3):
        for epoch in range(8):
            key = SampleKey(index, seed=6, epoch=epoch)
            expected, label, bad = worker_ds[key]
            visit, deferred_label, deferred_bad = deferred_ds[key]
            assert (deferred_label, deferred_bad) == (label, bad)
            flipped_labels.add((index, label))
            assert visit.frames.shape[1:] == (SIZE, SIZE, 3) and visit.positions.shape == (3, 4)
            clips = render_clips(collate_visits([(visit, label, bad)])[0], SIZE)[0]
            assert (clips.int() - expected.int()).abs().max() <= 1
    assert {(0, 0), (0, 1)} <= flipped_labels  # class 0's label-swapping flip happened both ways


def test_deferred_loader_in_workers_equals_the_main_process(toy_videos):
    """Keyed items collated in worker processes (shared memory) render the same clips as in the
    main process; and, rendered, as the worker path's keyed items (to one grey level)."""
    manifest = toy_videos.folder / "train.csv"
    deferred_ds = toy_videos.dataset(manifest, train=True, k=2, output="visits")
    worker_ds = toy_videos.dataset(manifest, train=True, k=2, output="uint8")

    def batches(ds: TrainingClips, workers: int) -> list[tuple]:
        sampler = EpochSampler(DistributedSampler(ds, num_replicas=1, rank=0, shuffle=True, seed=9), seed=9)
        sampler.set_epoch(2)
        loader = build_loader(ds, 3, shuffle=False, seed=0, num_workers=workers, drop_last=True, sampler=sampler)
        transform = loaders.batch_transform(ds, compile=True, device=torch.device("cpu"))
        assert (transform is None) is (ds is worker_ds)
        return list(DevicePrefetcher(loader, torch.device("cpu"), transform))

    [(main_clips, main_labels, _)] = batches(deferred_ds, 0)
    [(pooled_clips, pooled_labels, _)] = batches(deferred_ds, 2)
    [(worker_clips, worker_labels, _)] = batches(worker_ds, 2)
    assert main_clips.shape == (3, 2, 3, 4, SIZE, SIZE) and main_clips.dtype == torch.uint8
    assert torch.equal(main_clips, pooled_clips) and torch.equal(main_labels, pooled_labels)
    assert torch.equal(main_labels, worker_labels) and (main_clips.int() - worker_clips.int()).abs().max() <= 1


def test_only_training_clips_defer_and_outputs_are_checked(toy_videos):
    with pytest.raises(ValueError, match=r"FixedViews output='visits': expected one of float, uint8"):
        toy_videos.dataset(toy_videos.folder / "train.csv", train=False, output="visits")
    with pytest.raises(ValueError, match=r"TrainingClips output='half': expected one of float, uint8, visits"):
        toy_videos.dataset(toy_videos.folder / "train.csv", train=True, output="half")


def test_prefetcher_applies_the_transform_off_cuda():
    batches = [(torch.full((2,), i), i) for i in range(3)]
    out = list(DevicePrefetcher(batches, torch.device("cpu"), lambda b: (b[0] * 10, b[1])))
    assert [(b[0].tolist(), b[1]) for b in out] == [([0, 0], 0), ([10, 10], 1), ([20, 20], 2)]


@pytest.mark.parametrize("setting, device, expected", [
    ("auto", "cpu", False), ("auto", "cuda", True), ("device", "cpu", True), ("worker", "cuda", False)])
def test_augment_on_resolves_by_device(setting, device, expected):
    env = DistEnv(device=torch.device(device))
    assert loaders.augment_on_device(DataConfig(augment_on=setting), env.device) is expected


def test_bad_augment_on_names_the_choices():
    with pytest.raises(ConfigError, match=r"data.augment_on='gpu': expected one of \['auto', 'worker', 'device'\]"):
        build_config(PretrainConfig, None, ["data.augment_on=gpu"])


def test_pretraining_with_deferred_augmentation_matches_the_worker_path(tiny_dataset: Path, tmp_path: Path,
                                                                        tiny_run_args: list[str]):
    losses = {}
    for where in ("worker", "device"):
        out = tmp_path / where
        assert vmae(["pretrain", "--data", str(tiny_dataset), "--out", str(out), *tiny_run_args,
                     f"data.augment_on={where}"]) == 0
        losses[where] = json.loads((out / "log.jsonl").read_text())["loss"]
    # same draws; inputs differ by at most one grey level, so the losses agree closely but not bitwise
    assert losses["device"] == pytest.approx(losses["worker"], rel=1e-3)


def test_render_benchmark(benchmark):
    """Cutting 8 clips of 16x112 from two visits' 33 frames of 320x240 (eager, this process)."""
    rng = np.random.default_rng(0)
    starts = torch.tensor([0, 1, 2, 2])[:, None] + 2 * torch.arange(16)  # 4 clips at stride 2 in 33 frames
    visits = collate_visits([
        (pending_visit(frames_uint8(33, 240, 320, seed=v), starts,
                       [multiscale_crop_box(240, 320, 112, (1.0, 0.875, 0.75, 0.66), rng) for _ in range(4)],
                       rng.random(4) < 0.5), 0, 0) for v in range(2)])[0]
    clips = benchmark(render_clips, visits, 112)
    assert clips.shape == (2, 4, 3, 16, 112, 112)
