"""The one home of the study definitions (vmae.report.studies): grids, claims, and the config schema
that must agree with them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from vmae import methods
from vmae.errors import UserError
from vmae.models.masking import MASKINGS
from vmae.models.vit import MODEL_SIZES
from vmae.report import runs, studies
from vmae.workflow_config import load_schema

REPO = Path(__file__).resolve().parents[1]
SCHEMA_PATH = REPO / "workflow" / "schemas" / "config.schema.yaml"
SCHEMA = load_schema(SCHEMA_PATH)
STUDY_SCHEMAS = SCHEMA["properties"]["studies"]


def test_schema_names_the_studies_masking_kinds_protocols_methods_and_sizes_of_the_python_module():
    assert list(STUDY_SCHEMAS["properties"]) == list(studies.STUDY_NAMES)
    assert STUDY_SCHEMAS["required"] == list(studies.DEFAULT_STUDIES)  # an on-demand study's section is optional
    definitions = SCHEMA["definitions"]
    assert definitions["masking"]["enum"] == list(runs.MASKINGS) == ["tube", "random", "frame"]
    assert definitions["protocols"]["items"]["enum"] == list(runs.PROTOCOLS)
    efficiency = STUDY_SCHEMAS["properties"]["data_efficiency"]["properties"]["methods"]
    assert SCHEMA["definitions"][efficiency["items"]["$ref"].split("/")[-1]]["enum"] == list(runs.METHODS)
    assert efficiency["default"] == list(runs.METHODS) == ["scratch", *methods.names()]
    shift = STUDY_SCHEMAS["properties"]["domain_shift"]["properties"]["methods"]
    assert SCHEMA["definitions"][shift["items"]["$ref"].split("/")[-1]]["enum"] == list(runs.PRETRAIN_METHODS)
    assert SCHEMA["properties"]["model"]["properties"]["size"]["enum"] == list(MODEL_SIZES)


def test_the_schema_file_names_no_method_or_masking_strategy_the_registries_fill_them_in():
    text = SCHEMA_PATH.read_text()
    assert not any(f"enum: [{name}" in text or f", {name}]" in text for name in [*methods.names(), *MASKINGS])
    recipes = SCHEMA["properties"]["recipes"]
    assert recipes["required"] == [*methods.names(), "finetune", "linprobe"]
    assert set(recipes["properties"]) == {*methods.names(), "finetune", "linprobe"}


def test_default_config_has_a_section_for_every_study():
    config = yaml.safe_load((REPO / "workflow" / "config" / "config.yaml").read_text())
    assert list(config["studies"]) == list(studies.STUDY_NAMES)


def test_grids_are_plain_functions_of_a_config_section():
    section = {"target": "t", "fractions": [0.25, 1.0], "masking": "tube", "mask_ratio": 0.9}
    names = [(target, seed, init.name) for target, seed, init in studies.evaluations("data_size", section, [0, 1], {})]
    assert names == [("t", 0, "videomae_t_f0.25_tube0.9_s0"), ("t", 1, "videomae_t_f0.25_tube0.9_s1"),
                     ("t", 0, "videomae_t_f1.0_tube0.9_s0"), ("t", 1, "videomae_t_f1.0_tube0.9_s1")]
    efficiency = {"targets": ["t"], "methods": ["scratch", "mocov3", "videomae"], "masking": "tube",
                  "mask_ratio": 0.9, "mask_ratio_by_target": {"t": 0.75}}
    inits = [init.name if init else None for _, _, init in studies.evaluations("data_efficiency", efficiency, [3], {})]
    assert inits == [None, "mocov3_t_f1.0_s3", "videomae_t_f1.0_tube0.75_s3"]  # per-target ratio, MoCo unmasked


@pytest.mark.parametrize("claim", studies.CLAIMS, ids=lambda c: c.key)
def test_every_claim_names_a_study_and_its_columns(claim):
    study = studies.STUDIES[claim.study]
    selected = set(claim.a) | set(claim.b)
    assert selected <= set(study.columns)  # A and B select the study's rows by its own columns
    assert claim.test == "trend" or set(claim.a) & set(study.varied)  # a pair differs in what the study varies
    assert set(claim.fixed) <= set(study.keys)
    assert (claim.test == "interaction") == (claim.across in study.group)  # an interaction spans a group column
    assert claim.family in studies.FAMILIES
    assert claim.paper and claim.text and claim.wording


def test_claim_keys_are_unique_and_cover_the_issue_list():
    assert len(set(studies.CLAIM_KEYS)) == len(studies.CLAIMS)
    assert {c.study for c in studies.CLAIMS} == set(studies.STUDY_NAMES)


def test_study_columns_split_into_keys_varied_and_group():
    masking = studies.STUDIES["masking"]
    assert masking.keys == ("target", "masking", "mask_ratio", "method", "protocol")
    assert masking.group == ("target", "method", "protocol")
    assert masking.label({"masking": "frame", "mask_ratio": 0.875}) == "frame 0.875"
    assert studies.STUDIES["data_size"].keys == ("target", "fraction", "method", "protocol")  # counts dropped


MODEL = yaml.safe_load((REPO / "workflow" / "config" / "config.yaml").read_text())["model"]
REGIME = {"target": "t", "steps": [150, 600], "settings": [
    {"masking": "tube", "mask_ratio": 0.9}, {"masking": "random", "mask_ratio": 0.9}, {"masking": "tube", "mask_ratio": 0.5}]}


def test_the_masking_regime_gives_the_05_arm_the_steps_of_the_09_arms_flops_and_names_every_budget():
    from vmae.report.equal_flops import clip_flops

    inits = [init for _, _, init in studies.evaluations("masking_regime", REGIME, [0, 1], MODEL)]
    assert [i.name for i in inits if i.seed == 0] == [
        "videomae_t_f1.0_tube0.9_n150_s0", "videomae_t_f1.0_tube0.9_n600_s0", "videomae_t_f1.0_random0.9_n150_s0",
        "videomae_t_f1.0_random0.9_n600_s0", "videomae_t_f1.0_tube0.5_n84_s0", "videomae_t_f1.0_tube0.5_n336_s0"]
    cost = clip_flops(MODEL, "tube", 0.5) / clip_flops(MODEL, "tube", 0.9)
    assert cost == pytest.approx(1.7845, abs=1e-4)  # a 0.5 clip: 1.78x a 0.9 clip of vit_nano at 24 px
    assert (84, 336) == (round(150 / cost), round(600 / cost))  # the nearest whole steps of equal FLOPs
    assert abs(84 * cost - 150) <= cost / 2 and abs(336 * cost - 600) <= cost / 2
    assert len(inits) == 12 and {i.seed for i in inits} == {0, 1}


def test_the_masking_regime_refuses_lengths_that_give_an_arm_one_budget_twice():
    with pytest.raises(UserError, match=r"tube 0.5 gets \[1, 1\] steps"):
        list(studies.evaluations("masking_regime", {**REGIME, "steps": [1, 2]}, [0], MODEL))


def test_regime_lengths_pair_each_arms_budgets_with_the_largest_ratios_by_rank():
    records = pd.DataFrame({"masking": ["tube", "tube", "random", "random", "tube", "tube"],
                            "mask_ratio": [0.9, 0.9, 0.9, 0.9, 0.5, 0.5],
                            "budget_steps": [600, 150, 150, 600, 84, 336]})
    assert studies.regime_lengths(records)["length"].tolist() == [600, 150, 150, 600, 150, 600]
    with pytest.raises(UserError, match="tube 0.5 ran budgets \\[84\\]"):
        studies.regime_lengths(records.iloc[:5])


def test_on_demand_studies_are_outside_the_default_target_and_the_papers_family():
    assert studies.STUDY_NAMES[-1] == "masking_regime" and studies.STUDIES["masking_regime"].on_demand
    assert "masking_regime" not in studies.DEFAULT_STUDIES
    assert studies.DEFAULT_STUDIES == studies.STUDY_NAMES[:-1]
    regime = studies.FAMILIES[studies.REGIME]
    assert regime.keys == ("regime_ratio_moves", "regime_tube_moves") and regime.gate is None
    assert not set(regime.keys) & set(studies.FAMILIES[studies.PAPER].keys)
    assert not {e.source for e in studies.RULE_EDGES} & set(regime.keys)  # not in the paper's graph
    assert [(e.source, e.target, e.weight) for e in regime.edges] == [("regime_ratio_moves", "regime_tube_moves", 1.0)]
