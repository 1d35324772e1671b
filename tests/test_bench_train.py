"""`vmae bench train`: the real loader feeding the real pretraining step, on a tiny CPU run."""

from __future__ import annotations

import argparse

import pytest

from vmae.bench import train as bench_train
from vmae.data.manifest import read_manifest


@pytest.mark.slow
@pytest.mark.parametrize("augment_on", ["worker", "device"])
def test_bench_train_reports_model_data_and_cache_rates(tmp_path, fixed_step_times, augment_on):
    # model, loader alone, loader + model, cached loader + model, model again: 4 clips a step
    fixed_step_times(bench_train, [0.1, 0.05, 0.2, 0.125, 0.1])
    parser = argparse.ArgumentParser()
    bench_train.add_arguments(parser)
    args = parser.parse_args(["--device", "cpu", "--folder", str(tmp_path), "--videos", "4", "--batch", "4",
                              "--clips-per-visit", "2", "--workers", "0", "--steps", "2", "--warmup", "1",
                              "--frame-cache", "--augment-on", augment_on,
                              "img_size=16", "num_frames=8", "decoder_depth=1"])
    result = bench_train.run(args)
    assert (result["batch_clips"], result["clips_per_visit"], result["videos"], result["clip"]) == (4, 2, 4, "8x16x16")
    assert result["augment_on"] == augment_on
    assert (result["model_clips_per_s"], result["loader_clips_per_s"], result["data_clips_per_s"],
            result["cached_clips_per_s"], result["model_clips_per_s_end"]) == (40, 80, 20, 32, 40)
    assert (result["data_fraction"], result["cached_fraction"]) == (0.5, 0.8)
    assert len(read_manifest(tmp_path / "train.csv")) == 4


def test_batch_must_be_a_multiple_of_clips_per_visit():
    parser = argparse.ArgumentParser()
    bench_train.add_arguments(parser)
    with pytest.raises(ValueError, match="--batch 6 is not a multiple of --clips-per-visit 4"):
        bench_train.run(parser.parse_args(["--device", "cpu", "--batch", "6"]))
