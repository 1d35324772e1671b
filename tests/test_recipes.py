"""vmae.recipes: a workflow config's recipes for a dataset, and the config file as Snakemake merges it."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from vmae.errors import UserError
from vmae.recipes import Recipe, load_workflow_config, merge_into, model_overrides, recipe


def test_a_dataset_entry_wins_and_appends_its_overrides():
    config = {"recipes": {"finetune": {
        "config": "a.yaml", "epochs": 50, "steps": 300, "overrides": ["optim.micro_batch_size=16"],
        "by_dataset": {"ssv2": {"epochs": 40, "overrides": ["optim.base_lr=5e-4"]},
                       "k400": {"config": "b.yaml", "steps": 0}}}}}
    assert recipe(config, "finetune", "ssv2") == Recipe(
        "a.yaml", 40, ["optim.micro_batch_size=16", "optim.base_lr=5e-4", "optim.steps=300"])
    assert recipe(config, "finetune", "k400") == Recipe("b.yaml", 50, ["optim.micro_batch_size=16"])  # no budget
    assert recipe(config, "finetune", "ucf101") == Recipe("a.yaml", 50, ["optim.micro_batch_size=16", "optim.steps=300"])


def test_paper_and_rehearsal_configs_merge_as_snakemake_merges_them():
    paper = load_workflow_config("workflow/config/paper.yaml")
    # paper.yaml over config.yaml: its epochs, no step budget (steps: 0), its micro-batch, then the
    # UCF101 script's batch and lr (HMDB51 has no script of its own)
    assert recipe(paper, "videomae", "hmdb51") == Recipe(
        "workflow/config/recipes/videomae_paper.yaml", 4800,
        ["optim.micro_batch_size=32", "optim.batch_size=192", "optim.base_lr=3e-4", "optim.min_lr=7.5e-6",
         "optim.micro_batch_size=24"])
    assert "model.size=vit_base" in model_overrides(paper) and "model.img_size=224" in model_overrides(paper)
    rehearsal = load_workflow_config("workflow/config/rehearsal.yaml")  # extends paper.yaml
    assert rehearsal["model"]["size"] == "vit_micro" and rehearsal["studies"] == paper["studies"]
    assert recipe(rehearsal, "finetune", "ssv2").overrides[:2] == ["device=cpu", "compile=false"]
    assert recipe(rehearsal, "videomae", "hmdb51").overrides[2:4] == ["optim.batch_size=4", "optim.micro_batch_size=2"]
    assert len(recipe(rehearsal, "videomae", "hmdb51").overrides) == 6  # not paper.yaml's batch of 192
    default = load_workflow_config("workflow/config/config.yaml")
    assert recipe(default, "videomae", "synthetic-clean").overrides == ["optim.steps=350"]


def test_a_bad_workflow_config_is_refused_naming_the_file(tmp_path):
    bad = tmp_path / "my config.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(UserError, match=r"my config.yaml: expected a mapping of config keys, got list"):
        load_workflow_config(bad)
    with pytest.raises(UserError, match=r"missing.yaml: cannot read the workflow config"):
        load_workflow_config(tmp_path / "missing.yaml")
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("recipes:\n  videomae:\n    epochs: many\n")
    with pytest.raises(UserError, match=r"wrong.yaml: recipes.videomae.epochs"):
        load_workflow_config(wrong)


@pytest.mark.parametrize("name", ["paper.yaml", "rehearsal.yaml", "pilot.yaml", "test.yaml"])
def test_the_merge_is_snakemakes(name):
    """``merge_into`` (written out for machines without Snakemake) merges as ``update_config``."""
    import yaml
    from snakemake.utils import update_config

    files = [yaml.safe_load(Path("workflow/config", f).read_text()) for f in ("config.yaml", name)]
    if "extends" in files[1]:
        files.insert(1, yaml.safe_load(Path(files[1]["extends"]).read_text()))
    ours, snakemakes = copy.deepcopy(files[0]), copy.deepcopy(files[0])
    for overwrite in files[1:]:
        merge_into(ours, copy.deepcopy(overwrite))
        update_config(snakemakes, copy.deepcopy(overwrite))
    assert ours == snakemakes
    nested = {"a": {"b": 1, "c": [1, 2]}, "d": None}
    merge_into(nested, {"a": {"c": [3]}, "d": {"e": 2}})
    assert nested == {"a": {"b": 1, "c": [3]}, "d": {"e": 2}}
