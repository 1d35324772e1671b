"""Clip sampling: dense and segment indices in training and at test time, short videos, unions."""

from __future__ import annotations

import numpy as np
import pytest

from vmae.data.sampling import dense_span, sample_clips, union_indices


def test_dense_train_is_a_strided_run_inside_the_video():
    rng = np.random.default_rng(0)
    starts = set()
    for _ in range(200):
        (clip,) = sample_clips("dense", 100, 16, 4, 1, train=True, rng=rng)
        assert clip.dtype == np.int64 and clip.shape == (16,)
        np.testing.assert_array_equal(np.diff(clip), np.full(15, 4))
        assert 0 <= clip[0] <= 100 - dense_span(16, 4) and clip[-1] <= 99
        starts.add(int(clip[0]))
    assert min(starts) == 0 and max(starts) == 100 - 61  # the whole range of starts is reachable
    assert len(starts) > 20


def test_dense_train_clips_of_one_visit_are_independent():
    clips = sample_clips("dense", 200, 8, 2, 4, train=True, rng=np.random.default_rng(1))
    assert len(clips) == 4 and len({int(c[0]) for c in clips}) > 1


def test_dense_test_starts_are_evenly_spaced_and_deterministic():
    clips = sample_clips("dense", 100, 16, 4, 3, train=False)
    assert [int(c[0]) for c in clips] == [0, 20, 39]  # last start = 100 - 61 = 39
    again = sample_clips("dense", 100, 16, 4, 3, train=False)
    assert all(np.array_equal(a, b) for a, b in zip(clips, again))
    (centre,) = sample_clips("dense", 100, 16, 4, 1, train=False)
    assert centre[0] == 19


@pytest.mark.parametrize("train", [True, False])
def test_dense_short_video_loops(train):
    (clip,) = sample_clips("dense", 10, 8, 3, 1, train=train, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(clip, [0, 3, 6, 9, 2, 5, 8, 1])  # (3 * i) mod 10


def test_single_frame_video_never_fails():
    for mode in ("dense", "segments"):
        (clip,) = sample_clips(mode, 1, 16, 4, 1, train=True, rng=np.random.default_rng(0))
        np.testing.assert_array_equal(clip, np.zeros(16))


def test_segments_train_takes_one_random_frame_per_segment():
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(100):
        (clip,) = sample_clips("segments", 64, 8, 0, 1, train=True, rng=rng)
        segment = np.arange(8) * 8
        assert np.all(clip >= segment) and np.all(clip < segment + 8)
        seen.update((clip - segment).tolist())
    assert seen == set(range(8))  # every offset inside a segment occurs


def test_segments_test_takes_the_middle_and_spreads_several_clips():
    (clip,) = sample_clips("segments", 64, 8, 0, 1, train=False)
    np.testing.assert_array_equal(clip, np.arange(8) * 8 + 4)
    two = sample_clips("segments", 64, 8, 0, 2, train=False)
    np.testing.assert_array_equal(two[0], np.arange(8) * 8 + 2)
    np.testing.assert_array_equal(two[1], np.arange(8) * 8 + 6)


def test_segments_short_video_repeats_frames_in_order():
    (clip,) = sample_clips("segments", 5, 8, 0, 1, train=False)
    np.testing.assert_array_equal(clip, [0, 0, 1, 2, 2, 3, 4, 4])  # floor((i + .5) * 5 / 8)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="video_frames=0"):
        sample_clips("dense", 0, 8, 2, 1, train=False)
    with pytest.raises(ValueError, match="numpy Generator"):
        sample_clips("dense", 50, 8, 2, 1, train=True)
    with pytest.raises(ValueError, match="'zigzag'"):
        sample_clips("zigzag", 50, 8, 2, 1, train=False)


def test_union_indices_round_trips():
    clips = [np.array([4, 6, 8]), np.array([8, 2, 2]), np.array([0, 4, 12])]
    frames, positions = union_indices(clips)
    np.testing.assert_array_equal(frames, [0, 2, 4, 6, 8, 12])
    for clip, pos in zip(clips, positions):
        np.testing.assert_array_equal(frames[pos], clip)
