"""Synthetic motion videos: deterministic, the right shapes, classes that differ only in motion, and
a scene whose tubelets are mostly lit gradients well above 8-bit rounding (VideoMAE's pretext)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy import ndimage
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.model_selection import cross_val_score

from vmae.data.synthetic import (CLASS_NAMES, FLIP_LABEL_MAP, GeneratorParams, actor_hidden_probability,
                                 make_video, render, video_rng)

CLEAN = GeneratorParams(style="clean", seed=0)
CLUTTER = GeneratorParams(style="clutter", seed=1)


def test_shape_dtype_and_range():
    video = make_video(dataclasses.replace(CLUTTER, size=48, frames=20), "val", 3, 0)
    assert video.shape == (20, 48, 48, 3) and video.dtype == np.uint8
    assert video.min() < 60 and video.max() > 150  # a dark actor in its shadow, a bright lit scene
    clean = make_video(CLEAN, "unlabelled", 3, 0)
    assert clean.min() < 40 and clean.max() > 150  # a dark scene, the bright actor and its light


def test_flat_tubelets_are_a_minority_and_lit_ones_are_far_above_rounding():
    """Tubelets of 2 frames x 4 x 4 px of 16-frame clips at stride 2 (the default model): under a
    fifth are flat (the inside of the actor), and in 95% of the others every channel varies by a
    standard deviation of at least 2 grey levels (8-bit rounding adds 0.29)."""
    for params in (dataclasses.replace(CLEAN, size=24), dataclasses.replace(CLUTTER, size=24)):
        flat, weakest = [], []
        for label in range(len(CLASS_NAMES)):
            for i in range(4):
                video = make_video(params, "train", label, i)[::2].astype(np.float32)  # (16, 24, 24, 3)
                tubelets = video.reshape(8, 2, 6, 4, 6, 4, 3).transpose(0, 2, 4, 1, 3, 5, 6).reshape(-1, 32, 3)
                std = tubelets.std(axis=1)  # (288, 3)
                flat.append((std.max(axis=1) == 0).mean())
                weakest.append(std.min(axis=1)[std.max(axis=1) > 0])
        weakest = np.concatenate(weakest)
        assert np.mean(flat) < 0.2 and np.percentile(weakest, 5) > 2.0, (params.style, np.mean(flat))


def test_same_seed_same_video_other_seed_or_index_or_split_differs():
    video = make_video(CLEAN, "train", 2, 7)
    assert np.array_equal(video, make_video(CLEAN, "train", 2, 7))
    for other in (make_video(dataclasses.replace(CLEAN, seed=1), "train", 2, 7),
                  make_video(CLEAN, "train", 2, 8), make_video(CLEAN, "val", 2, 7), make_video(CLEAN, "test", 2, 7)):
        assert np.abs(other.astype(int) - video).mean() > 5


def test_noise_parameter_sets_pixel_noise_std():
    quiet = make_video(dataclasses.replace(CLUTTER, noise=0.0), "train", 0, 0).astype(float)
    noisy = make_video(dataclasses.replace(CLUTTER, noise=0.05), "train", 0, 0).astype(float)
    assert np.std(noisy - quiet) == pytest.approx(0.05 * 255, rel=0.1)


def test_flip_map_swaps_horizontal_motion_and_rotation_only():
    assert FLIP_LABEL_MAP == {"move_right": "move_left", "move_left": "move_right",
                              "rotate_cw": "rotate_ccw", "rotate_ccw": "rotate_cw"}
    assert set(FLIP_LABEL_MAP) <= set(CLASS_NAMES) and len(CLASS_NAMES) == 10


def actor_track(coverage: np.ndarray) -> np.ndarray:
    """Per frame (T, 4): centroid x, centroid y, area (px) and orientation (rad) of the largest blob
    the actor paints (``render``'s coverage over half a pixel; x right, y down); area 0 where none."""
    rows = []
    for mask in coverage > 0.5:
        labels, count = ndimage.label(mask)
        if count == 0:
            rows.append((0.0, 0.0, 0.0, 0.0))
            continue
        ys, xs = np.nonzero(labels == 1 + np.argmax(np.bincount(labels.ravel())[1:]))
        dx, dy = xs - xs.mean(), ys - ys.mean()
        rows.append((xs.mean(), ys.mean(), len(xs), 0.5 * np.arctan2(2 * (dx * dy).sum(), (dx**2 - dy**2).sum())))
    return np.array(rows)


def motion_statistic(track: np.ndarray, kind: int) -> float:
    """Positive for the forward class of pair ``kind`` (right, down, cw, grow, appear)."""
    if kind in (3, 4):  # area change (grow, appear)
        quarter = len(track) // 4
        return track[-quarter:, 2].mean() - track[:quarter, 2].mean()
    seen = track[track[:, 2] > 0]  # frames where the blob is present
    if kind == 2:  # summed change of orientation, wrapped to (-pi/2, pi/2] per step
        return ((np.diff(seen[:, 3]) + np.pi / 2) % np.pi - np.pi / 2).sum()
    quarter = max(1, len(seen) // 4)  # centroid displacement along x / y
    return seen[-quarter:, kind].mean() - seen[:quarter, kind].mean()


@pytest.mark.parametrize("params", [CLEAN, CLUTTER], ids=["clean", "clutter"])
def test_motion_statistics_separate_every_class_from_its_time_reversed_partner(params):
    params = dataclasses.replace(params, frames=16)
    per_class = 10
    for kind in range(5):
        forward, backward = 2 * kind, 2 * kind + 1
        stats = {label: np.array([motion_statistic(actor_track(render(video_rng(params.seed, "train", label, i), label,
                                                                          params)[1]), kind)
                                  for i in range(per_class)]) for label in (forward, backward)}
        accuracy = ((stats[forward] > 0).sum() + (stats[backward] < 0).sum()) / (2 * per_class)
        assert accuracy >= 0.9, f"{params.style} {CLASS_NAMES[forward]} vs {CLASS_NAMES[backward]}: {accuracy}"


@pytest.mark.parametrize("params", [CLEAN, CLUTTER], ids=["clean", "clutter"])
def test_a_single_frame_does_not_tell_a_class_from_its_time_reversed_partner(params):
    """Mean and std of the colours of one random frame cannot tell a class from its partner (each
    pair near chance, 0.5); the same classifier on the motion statistics of the same videos can."""
    params = dataclasses.replace(params, frames=16)
    per_class = 16
    for kind in range(5):
        static, motion, labels = [], [], []
        for label in (2 * kind, 2 * kind + 1):
            for i in range(per_class):
                video, coverage = render(video_rng(params.seed, "train", label, i), label, params)
                frame = video[np.random.default_rng([label, i]).integers(len(video))].astype(np.float32) / 255
                static.append([*frame.mean((0, 1)), *frame.std((0, 1))])
                motion.append([motion_statistic(actor_track(coverage), kind)])
                labels.append(label)
        classifier = LinearDiscriminantAnalysis()
        static_accuracy = cross_val_score(classifier, np.array(static), labels, cv=4).mean()
        motion_accuracy = cross_val_score(classifier, np.array(motion), labels, cv=4).mean()
        assert static_accuracy <= 0.7 and motion_accuracy >= 0.85, (CLASS_NAMES[2 * kind], static_accuracy,
                                                                     motion_accuracy)


def test_actor_hidden_probability_is_hypergeometric_over_the_touched_positions():
    """Video 0 of move_right: count the 4x4 positions the actor covers (>= 4 px in some frame) by
    hand; tube masking keeps 64 - int(64 r) positions, and the actor is hidden when none is kept."""
    coverage = render(video_rng(0, "train", 0, 0), 0, CLEAN)[1]  # (T, 32, 32)
    touched = sum(coverage[:, 4 * y:4 * y + 4, 4 * x:4 * x + 4].sum(axis=(1, 2)).max() >= 4
                  for y in range(8) for x in range(8))
    assert 20 <= touched < 64  # a moving actor sweeps a good part of the 8x8 grid
    for ratio, kept in ((0.5, 32), (0.75, 16), (0.9, 7), (0.95, 4)):
        expected = math.comb(64 - touched, kept) / math.comb(64, kept)
        assert actor_hidden_probability(CLEAN, "train", 0, 0, 4, ratio) == pytest.approx(expected)


def test_the_actor_shows_through_a_90_percent_tube_mask_in_nearly_every_clip():
    """The benchmark's premise for the mask-ratio study: P(actor hidden) averaged over 100 videos of
    each style stays below 8 % at ratio 0.9 and is negligible at 0.75 (it was 28 % / 7 % with the
    earlier, smaller actors)."""
    for params in (CLEAN, CLUTTER):
        hidden = {ratio: np.mean([actor_hidden_probability(params, "train", c, i, 4, ratio)
                                  for c in range(10) for i in range(10)]) for ratio in (0.75, 0.9)}
        assert hidden[0.75] < 0.01 and hidden[0.9] < 0.08, (params.style, hidden)
