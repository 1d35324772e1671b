"""A step budget (optim.steps): pretraining sets of any size get the same optimiser steps."""

from __future__ import annotations

import json

import pytest

from vmae.cli import main as vmae
from vmae.config import ConfigError, OptimConfig
from vmae.data.manifest import read_manifest, write_manifest
from vmae.train.optim import fit_to_step_budget


def test_epochs_and_warm_up_follow_the_budget():
    cfg = OptimConfig(epochs=100, warmup_epochs=10, steps=700, batch_size=32)
    assert fit_to_step_budget(cfg, 240) == OptimConfig(epochs=100, warmup_epochs=10, steps=700, batch_size=32)
    half = fit_to_step_budget(cfg, 120)  # 3 full batches an epoch
    assert (half.epochs, half.warmup_epochs) == (234, pytest.approx(23.4))  # 702 steps, warm-up 10 % of them
    quarter = fit_to_step_budget(cfg, 60)  # 1 full batch an epoch
    assert (quarter.epochs, quarter.warmup_epochs) == (700, pytest.approx(70.0))
    clutter = fit_to_step_budget(cfg, 600)  # 18 an epoch
    assert (clutter.epochs, clutter.warmup_epochs) == (39, pytest.approx(3.9))
    assert fit_to_step_budget(OptimConfig(epochs=7), 60).epochs == 7  # no budget: epochs as given


def test_a_budget_without_a_full_batch_names_the_field():
    with pytest.raises(ConfigError, match="optim.steps=10: 20 training videos make no full batch of optim.batch_size=32"):
        fit_to_step_budget(OptimConfig(steps=10, batch_size=32), 20)


@pytest.mark.slow
def test_pretraining_on_a_subset_takes_the_full_sets_steps(tiny_dataset, tiny_run_args, tmp_path):
    """20 videos (2 batches of 10 an epoch) and a 10-video subset (1 an epoch): 4 steps each."""
    subset = tmp_path / "subset.csv"
    write_manifest(subset, read_manifest(tiny_dataset / "train.csv")[::2])
    budget = [*tiny_run_args, "optim.steps=4", "optim.epochs=2", "optim.warmup_epochs=1"]
    for name, manifest in (("full", tiny_dataset / "train.csv"), ("subset", subset)):
        assert vmae(["pretrain", "--data", str(tiny_dataset), "--out", str(tmp_path / name),
                     "--train-manifest", str(manifest), *budget]) == 0
    full, half = (json.loads((tmp_path / name / "metrics.json").read_text()) for name in ("full", "subset"))
    assert (full["train_videos"], full["epochs"], full["steps"]) == (20, 2, 4)
    assert (half["train_videos"], half["epochs"], half["steps"]) == (10, 4, 4)
    assert half["clips"] == full["clips"]
