"""The one home of the study definitions (vmae.report.studies): grids, claims, and the config schema
that must agree with them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from vmae import methods
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
    assert STUDY_SCHEMAS["required"] == list(studies.STUDY_NAMES)
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
    names = [(target, seed, init.name) for target, seed, init in studies.evaluations("data_size", section, [0, 1])]
    assert names == [("t", 0, "videomae_t_f0.25_tube0.9_s0"), ("t", 1, "videomae_t_f0.25_tube0.9_s1"),
                     ("t", 0, "videomae_t_f1.0_tube0.9_s0"), ("t", 1, "videomae_t_f1.0_tube0.9_s1")]
    efficiency = {"targets": ["t"], "methods": ["scratch", "mocov3", "videomae"], "masking": "tube",
                  "mask_ratio": 0.9, "mask_ratio_by_target": {"t": 0.75}}
    inits = [init.name if init else None for _, _, init in studies.evaluations("data_efficiency", efficiency, [3])]
    assert inits == [None, "mocov3_t_f1.0_s3", "videomae_t_f1.0_tube0.75_s3"]  # per-target ratio, MoCo unmasked


@pytest.mark.parametrize("claim", studies.CLAIMS, ids=lambda c: c.key)
def test_every_claim_names_a_study_and_its_columns(claim):
    study = studies.STUDIES[claim.study]
    selected = set(claim.a) | set(claim.b)
    assert selected <= set(study.columns)  # A and B select the study's rows by its own columns
    assert claim.test == "trend" or set(claim.a) & set(study.varied)  # a pair differs in what the study varies
    assert set(claim.fixed) <= set(study.keys)
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
