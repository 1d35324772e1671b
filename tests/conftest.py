"""Shared test setup: one thread (the machine has two cores), deterministic seeds, a tiny dataset."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch


@pytest.fixture(autouse=True)
def _deterministic_torch():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A prepared synthetic-clean folder: 10 classes, 2 train + 1 val video a class, 16 frames of
    32x32 (train.csv, val.csv, classes.txt, dataset.json, videos/). Treat it as read-only."""
    from vmae.data.prepare import prepare_dataset
    from vmae.data.registry import load_spec

    spec = load_spec("synthetic-clean")
    generator = {**spec.source["generator"], "train_per_class": 2, "val_per_class": 1, "frames": 16, "size": 32}
    spec = dataclasses.replace(spec, source={**spec.source, "generator": generator})
    out = tmp_path_factory.mktemp("tiny_dataset")
    prepare_dataset(spec, out, workers=1)
    return out
