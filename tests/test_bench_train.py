"""`vmae bench train`: the real loader feeding the real pretraining step, on a tiny CPU run."""

from __future__ import annotations

import argparse

import pytest

from vmae.bench import train as bench_train
from vmae.data.manifest import read_manifest


@pytest.mark.slow
@pytest.mark.parametrize("augment_on", ["worker", "device"])
def test_bench_train_reports_model_data_and_cache_rates(tmp_path, augment_on):
    parser = argparse.ArgumentParser()
    bench_train.add_arguments(parser)
    args = parser.parse_args(["--device", "cpu", "--folder", str(tmp_path), "--videos", "4", "--batch", "4",
                              "--clips-per-visit", "2", "--workers", "0", "--steps", "2", "--warmup", "1",
                              "--frame-cache", "--augment-on", augment_on,
                              "img_size=16", "num_frames=8", "decoder_depth=1"])
    result = bench_train.run(args)
    assert (result["batch_clips"], result["clips_per_visit"], result["videos"], result["clip"]) == (4, 2, 4, "8x16x16")
    assert result["augment_on"] == augment_on
    for key in ("model_clips_per_s", "loader_clips_per_s", "data_clips_per_s", "cached_clips_per_s",
                "model_clips_per_s_end"):
        assert result[key] > 0, key
    assert result["data_fraction"] == pytest.approx(result["data_clips_per_s"] / result["model_clips_per_s"], abs=2e-3)
    assert len(read_manifest(tmp_path / "train.csv")) == 4


def test_batch_must_be_a_multiple_of_clips_per_visit():
    parser = argparse.ArgumentParser()
    bench_train.add_arguments(parser)
    with pytest.raises(ValueError, match="--batch 6 is not a multiple of --clips-per-visit 4"):
        bench_train.run(parser.parse_args(["--device", "cpu", "--batch", "6"]))
