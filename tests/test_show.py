"""`vmae show`: sample selection, the mosaic, and a PNG of the expected size."""

from __future__ import annotations

import matplotlib.image
import numpy as np
import pytest
import yaml

from vmae.cli import main as vmae
from vmae.data import show
from vmae.data.synthetic import CLASS_NAMES, GeneratorParams, make_video


def test_mosaic_layout_gaps_and_nearest_resize():
    clips = [np.full((3, 4, 6, 3), 10 * (i + 1), np.uint8) for i in range(2)]
    clips[1][2, 0, 0] = 99  # top-left pixel of the last frame of the second clip
    image = show.mosaic(clips, cell=(4, 6))
    gap = show.GAP_PX
    assert image.shape == (2 * 4 + gap, 3 * 6 + 2 * gap, 3)
    assert (image[4:4 + gap] == 255).all() and (image[:, 6:6 + gap] == 255).all()
    assert image[0, 0, 0] == 10 and image[4 + gap, 0, 0] == 20 and image[4 + gap, 2 * (6 + gap), 0] == 99
    small = show.mosaic(clips, cell=(2, 3))
    assert small.shape == (2 * 2 + gap, 3 * 3 + 2 * gap, 3) and small[2 + gap, 2 * (3 + gap), 0] == 99


def test_samples_from_a_prepared_folder(tiny_dataset):
    classes, samples = show.sample_videos(str(tiny_dataset), per_class=1, frames=4)
    assert classes == CLASS_NAMES
    assert [label for label, _ in samples] == list(range(10))
    assert all(clip.shape == (4, 32, 32, 3) and clip.dtype == np.uint8 for _, clip in samples)


def test_unprepared_synthetic_name_is_generated_in_memory(tmp_path, monkeypatch):
    monkeypatch.setattr(show, "PREPARED_ROOT", tmp_path)
    classes, samples = show.sample_videos("synthetic-clean", per_class=2, frames=5)
    assert classes == CLASS_NAMES and [label for label, _ in samples] == [c for c in range(10) for _ in range(2)]
    expected = make_video(GeneratorParams(style="clean", seed=0, size=28), "val", 0, 1)[[0, 8, 16, 23, 31]]
    assert np.array_equal(samples[1][1], expected)


def test_prepared_name_is_read_from_results_data(tiny_dataset, monkeypatch):
    monkeypatch.setattr(show, "PREPARED_ROOT", tiny_dataset.parent)
    _, samples = show.sample_videos(tiny_dataset.name, per_class=1, frames=3)
    assert len(samples) == 10 and samples[0][1].shape == (3, 32, 32, 3)


def test_unprepared_real_dataset_says_how_to_prepare(tmp_path, monkeypatch):
    spec = {"name": "mine", "domain": "x", "num_classes": 2, "format": "folder", "sampling": {"mode": "dense"},
            "source": {"kind": "manual", "instructions": "-"}}
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(spec))
    monkeypatch.setenv("VMAE_DATASETS", str(tmp_path))
    monkeypatch.setattr(show, "PREPARED_ROOT", tmp_path / "results")
    with pytest.raises(FileNotFoundError, match="run `vmae prepare mine --out"):
        show.sample_videos("mine", per_class=1, frames=2)


def test_cli_writes_png_of_expected_size(tmp_path, tiny_dataset, capsys):
    out = tmp_path / "pics" / "tiny.png"
    assert vmae(["show", str(tiny_dataset), "--out", str(out), "--per-class", "1", "--frames", "4"]) == 0
    width, height = show.figure_size(rows=10, cols=4)
    pixels = matplotlib.image.imread(out)
    assert pixels.shape[:2] == (round(height * show.DPI), round(width * show.DPI))
    assert pixels[..., :3].std() > 0.1  # frames drawn, not a blank canvas
    assert f"({round(width * show.DPI)}x{round(height * show.DPI)} px, 10 videos)" in capsys.readouterr().out


def test_a_recipes_training_batch_with_its_augmentations(tmp_path, tiny_dataset, capsys):
    """`--recipe`: the first videos' repeated clips as paper.yaml's UCF101 fine-tuning recipe draws them,
    every frame of a clip in a row."""
    from vmae.data.batch_view import augmented_batch

    tiny = ["model.img_size=32", "model.patch_size=8", "model.num_frames=8", "data.erase_p=1.0"]
    names, samples = augmented_batch(tiny_dataset, "workflow/config/recipes/finetune_paper_small.yaml", tiny, 3)
    classes = [line.strip() for line in (tiny_dataset / "classes.txt").read_text().splitlines()]
    assert len(names) == len(samples) == 6 and all(n.rsplit(" #", 1)[0] in classes for n in names)
    assert [n[-2:] for n in names] == ["#0", "#1"] * 3  # two repeated clips a video
    assert all(clip.shape == (8, 32, 32, 3) and clip.dtype == np.uint8 for _, clip in samples)
    out = tmp_path / "batch.png"
    assert vmae(["show", str(tiny_dataset), "--out", str(out), "--recipe",
                 "workflow/config/recipes/finetune_paper_small.yaml", "--videos", "2", *tiny]) == 0
    assert "4 videos" in capsys.readouterr().out and matplotlib.image.imread(out).shape[0] > 100
