"""paper.yaml against the official MCG-NJU/VideoMAE scripts (issue 34): docs/official_recipes.csv holds
every official value with its source (script path and line), the value paper.yaml resolves to, and,
where the two differ, the reason. Each row is compared with the config the workflow builds for that
dataset and phase (``vmae.recipes``: paper.yaml over config.yaml, the recipe file, its overrides), so
a change to paper.yaml or a recipe file that drifts from the table fails here."""

from __future__ import annotations

import csv
import dataclasses
import math
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
import yaml

from vmae.config import FinetuneConfig, ModelConfig, PretrainConfig, build_config
from vmae.data.dataset import collate_eval
from vmae.data.registry import load_spec
from vmae.data.transforms import resize
from vmae.models import build_encoder
from vmae.recipes import load_workflow_config, model_overrides, recipe
from vmae.train.distributed import DistEnv
from vmae.train.finetune import classifier_training
from vmae.train.optim import lr_at
from vmae.train.pretrain import pretraining

REPO = Path(__file__).resolve().parents[1]
TABLE = REPO / "docs" / "official_recipes.csv"
DATASETS = ["k400", "ssv2", "ucf101", "hmdb51"]
PHASES = {"pretrain": ("videomae", PretrainConfig), "finetune": ("finetune", FinetuneConfig)}
# the keys every dataset's phase must have a row for (so that a row cannot go missing unnoticed)
REQUIRED = {
    "pretrain": {"epochs", "optim.batch_size", "lr", "optim.min_lr", "optim.warmup_epochs", "optim.betas",
                 "optim.weight_decay", "optim.clip_grad", "mask_ratio", "masking", "model.decoder_depth",
                 "norm_pix_loss", "sampling", "frame_stride", "flip", "data.scales"},
    "finetune": {"epochs", "optim.batch_size", "data.repeated_sampling", "lr", "optim.min_lr", "optim.layer_decay",
                 "model.drop_path_rate", "model.head_drop_rate", "optim.warmup_epochs", "optim.betas",
                 "optim.weight_decay", "optim.clip_grad", "mixup", "cutmix", "label_smoothing", "data.rand_augment",
                 "data.erase_p", "data.crop", "data.crop_area", "data.crop_ratio", "flip", "sampling",
                 "data.repeat_window", "model.linear_init", "data.test_clips", "data.test_crops"},
}
TINY = ModelConfig(size="vit_nano", img_size=16, patch_size=8, num_frames=4, tubelet_size=2, decoder_embed_dim=16,
                   decoder_depth=1, decoder_num_heads=2)


def table() -> list[dict[str, str]]:
    with TABLE.open(newline="") as fh:
        return list(csv.DictReader(fh))


def parse(text: str) -> Any:
    """A table cell: a number (``8e-05`` too, which YAML 1.1 reads as text), else as YAML reads it
    (booleans, lists), else the text."""
    try:
        return float(text)
    except ValueError:
        return yaml.safe_load(text)


def same(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool) | isinstance(b, bool):
        return math.isclose(a, b, rel_tol=1e-9)
    return a == b


@pytest.fixture(scope="module")
def paper() -> dict[str, Any]:
    return load_workflow_config(REPO / "workflow" / "config" / "paper.yaml")


def resolve(paper: dict[str, Any], dataset: str, phase: str) -> tuple[Any, Any]:
    """The run config of ``phase`` on ``dataset`` as the workflow's rules build it (recipe file, the
    model section, the recipe's overrides, its epochs; pretraining with the data-efficiency study's
    mask ratio and masking), and the dataset's spec."""
    kind, cls = PHASES[phase]
    r = recipe(paper, kind, dataset)
    overrides = [*model_overrides(paper), *r.overrides, f"optim.epochs={r.epochs}"]
    if phase == "pretrain":
        study = paper["studies"]["data_efficiency"]
        ratio = study["mask_ratio_by_target"].get(dataset, study["mask_ratio"])
        overrides += ["method=videomae", f"mask_ratio={ratio}", f"masking={study['masking']}"]
    return build_config(cls, REPO / r.config, overrides), load_spec(dataset, REPO / paper["datasets"]["specs"])


def lr_batch(cfg: Any, phase: str) -> int:
    """The batch the training code scales the lr by (its ``Trainable.clips_per_step``), on a tiny model."""
    small = dataclasses.replace(cfg, model=TINY, device="cpu", compile=False)
    if phase == "pretrain":
        return pretraining(small, DistEnv(), steps_per_epoch=1).clips_per_step
    return classifier_training(build_encoder(TINY, num_classes=3), small, DistEnv()).clips_per_step


def value(cfg: Any, spec: Any, phase: str, key: str) -> Any:
    """What a table key means in a resolved config: a dotted config key, or one of the derived ones."""
    if key == "epochs":
        return cfg.optim.epochs
    if key == "lr":
        return cfg.optim.base_lr * lr_batch(cfg, phase) / 256
    if key == "sampling":
        return spec.sampling_mode if cfg.data.sampling == "dataset" else cfg.data.sampling
    if key == "frame_stride":
        return cfg.data.frame_stride or spec.frame_stride
    if key == "flip":
        return cfg.data.flip and spec.flip_allowed
    node = cfg
    for part in key.split("."):
        node = getattr(node, part)
    return list(node) if isinstance(node, tuple) else node


def behaviour(key: str) -> Any:
    """What the code does where no config key says it."""
    if key == "warmup_start_lr":
        return lr_at(0, total_steps=100, warmup_steps=10, peak_lr=1e-3, min_lr=1e-6)
    if key == "unreadable_eval_video":
        views, labels, bad = collate_eval([(torch.ones(1, 3, 2, 4, 4), 0, True), (torch.empty(0), 1, False)])
        assert (len(views), bad) == (1, 1)
        return "dropped and counted"
    if key == "resize_antialias":
        frames = (torch.arange(64 * 64 * 3) % 251).to(torch.uint8).view(1, 3, 64, 64)
        plain = F.interpolate(frames, size=(16, 16), mode="bilinear", align_corners=False, antialias=False)
        return "no antialias" if torch.equal(resize(frames, (16, 16)), plain) else "antialias"
    raise KeyError(f"{TABLE}: no way to resolve behaviour key {key!r}")


def test_the_table_has_every_row_once_with_a_source():
    rows = table()
    assert rows and list(rows[0]) == ["dataset", "phase", "key", "official", "source", "project", "departure", "note"]
    keys = [(r["dataset"], r["phase"], r["key"]) for r in rows]
    assert len(keys) == len(set(keys)), "a (dataset, phase, key) row twice"
    for phase, required in REQUIRED.items():
        for dataset in DATASETS:
            have = {key for d, p, key in keys if d == dataset and p == phase}
            assert required <= have, f"{dataset} {phase}: no rows for {sorted(required - have)}"
    assert all(r["source"] for r in rows), "every official value names its source"


@pytest.mark.parametrize("dataset", DATASETS)
@pytest.mark.parametrize("phase", list(PHASES))
def test_paper_yaml_resolves_to_the_table(paper, dataset, phase):
    """Each row: the resolved value is the table's project value; that is the official value, or the
    row gives the reason it is not (and a reason with no difference is stale)."""
    cfg, spec = resolve(paper, dataset, phase)
    rows = [r for r in table() if r["dataset"] == dataset and r["phase"] == phase]
    for row in rows:
        where = f"{TABLE.name}: {dataset} {phase} {row['key']}"
        got, project, official = value(cfg, spec, phase, row["key"]), parse(row["project"]), parse(row["official"])
        assert same(got, project), f"{where}: paper.yaml resolves to {got!r}, the table says {project!r}"
        if row["departure"]:
            assert not same(project, official), f"{where}: a departure reason, but the official value"
        else:
            assert same(project, official), f"{where}: {project!r} is not the official {official!r} and no reason"


def test_behaviour_rows_match_the_code_and_say_why():
    rows = [r for r in table() if r["phase"] == "all" or r["dataset"] == "all"]
    assert {r["key"] for r in rows} == {"warmup_start_lr", "unreadable_eval_video", "resize_antialias"}
    for row in rows:
        assert same(behaviour(row["key"]), parse(row["project"])), row["key"]
        assert row["departure"] and not same(parse(row["project"]), parse(row["official"])), row["key"]


def test_the_finetuning_lr_counts_videos(paper):
    """UCF101: 128 videos x 2 clips at base 5e-4 is 2.5e-4 (the official peak), not 5e-4."""
    cfg, spec = resolve(paper, "ucf101", "finetune")
    assert cfg.data.repeated_sampling == 2 and value(cfg, spec, "finetune", "lr") == pytest.approx(2.5e-4)
