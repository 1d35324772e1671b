"""Run names (vmae.report.runs) and study tables (vmae.report.tables) from metrics.json files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
import yaml

from vmae.cli import main as cli_main
from vmae.report import claims, runs, studies, tables

REPO = Path(__file__).resolve().parents[1]


def videomae(source: str, seed: int, fraction: float = 1.0, masking: str = "tube", ratio: float = 0.9):
    return runs.PretrainRun("videomae", source, fraction, seed, masking, ratio)


def write_eval(root: Path, target: str, protocol: str, seed: int, init, top1: float,
               top5: float = 95.0, train_videos: int = 240) -> Path:
    path = root / runs.EvalRun(target, protocol, seed, init).path("results") / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"top1": top1, "top5": top5, "train_videos": train_videos, "seed": seed}))
    return path


def write_pretrain(root: Path, run: runs.PretrainRun, loss: float, videos: int, **compute) -> Path:
    path = root / "results" / "pretrain" / run.name / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"final_loss": loss, "train_videos": videos, **compute}))
    return path


def table_of(study: str, paths: list[Path], specs: Path) -> pd.DataFrame:
    return tables.build_table(study, tables.study_records(study, paths), specs_dir=specs)


@pytest.fixture()
def specs(tmp_path: Path) -> Path:
    """A datasets folder: synthetic-clean (no paper counterpart) and stand-ins named like the
    paper's datasets (same generator spec, with paper_name set)."""
    folder = tmp_path / "datasets"
    folder.mkdir()
    base = yaml.safe_load((REPO / "datasets" / "synthetic-clean.yaml").read_text())
    stand_ins = {"synthetic-clean": None, "ssv2-like": "Something-Something V2", "k400-like": "Kinetics-400",
                 "ucf-like": "UCF101"}
    for name, paper_name in stand_ins.items():
        spec = dict(base, name=name)
        if paper_name:
            spec["paper_name"] = paper_name
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(spec))
    return folder


# --------------------------------------------------------------------------- run names


@pytest.mark.parametrize(
    "run, name",
    [
        (videomae("synthetic-clean", 0), "videomae_synthetic-clean_f1.0_tube0.9_s0"),
        (videomae("k400", 3, 0.25, "frame", 0.875), "videomae_k400_f0.25_frame0.875_s3"),
        (runs.PretrainRun("mocov3", "hmdb51", 0.5, 1), "mocov3_hmdb51_f0.5_s1"),
        (videomae("my_data-v2", 12, 1.0, "random", 0.95), "videomae_my_data-v2_f1.0_random0.95_s12"),
        (runs.PretrainRun("videomae", "a", 0.3, 7, "tube", 0.5, steps=1400), "videomae_a_f0.3_tube0.5_n1400_s7"),
        (runs.PretrainRun("mocov3", "a", 1.0, 0, steps=224), "mocov3_a_f1.0_n224_s0"),
    ],
)
def test_pretrain_names_round_trip(run, name):
    assert run.name == name
    assert runs.parse_pretrain(name) == run


def test_eval_paths_round_trip():
    init = videomae("synthetic-clutter", 1)
    run = runs.EvalRun("synthetic-clean", "finetune", 1, init)
    assert run.path() == "results/eval/synthetic-clean/finetune/videomae_synthetic-clutter_f1.0_tube0.9_s1"
    assert runs.parse_eval_path(run.path() + "/metrics.json") == run
    scratch = runs.parse_eval_path("x/results/eval/ucf101/linprobe/scratch_s4/metrics.json")
    assert (scratch.target, scratch.protocol, scratch.seed, scratch.init, scratch.method) == (
        "ucf101", "linprobe", 4, None, "scratch")


@pytest.mark.parametrize(
    "name", ["videomae_x_f1.0_s0", "mocov3_x_f1.0_tube0.9_s0", "videomae_x_f0.0_tube0.9_s0", "byol_x_f1.0_s0",
             "videomae_x_f1.0_tube0.9", "videomae_x_f1.0_tube0.9_n0_s0", "videomae_x_f1.0_tube0.9_n035_s0",
             "videomae_x_f1.0_n350_tube0.9_s0"],
)
def test_bad_pretrain_names_are_rejected(name):
    with pytest.raises(runs.RunNameError):
        runs.parse_pretrain(name)


def test_eval_seed_must_match_its_init():
    with pytest.raises(runs.RunNameError, match="seed"):
        runs.EvalRun("t", "finetune", 1, videomae("t", 0))


def test_wildcard_patterns_accept_names_and_nothing_else():
    import re

    assert re.fullmatch(runs.PRETRAIN_WILDCARD, "videomae_a_f0.5_tube0.75_s2")
    assert re.fullmatch(runs.INIT_WILDCARD, "scratch_s0")
    assert not re.fullmatch(runs.INIT_WILDCARD, "scratch_0")
    assert not re.fullmatch(runs.PRETRAIN_WILDCARD, "videomae_a_f0.5_s2")
    assert re.fullmatch(runs.PRETRAIN_WILDCARD, "videomae_a_f0.5_tube0.75_n1400_s2")
    assert re.fullmatch(runs.INIT_WILDCARD, "mocov3_a_f1.0_n56_s2")
    assert not re.fullmatch(runs.PRETRAIN_WILDCARD, "videomae_a_f0.5_tube0.75_n0_s2")


def test_a_run_budget_must_be_a_positive_whole_number():
    with pytest.raises(runs.RunNameError, match="steps 0"):
        runs.PretrainRun("videomae", "a", 1.0, 0, "tube", 0.9, steps=0)
    with pytest.raises(runs.RunNameError, match="steps 3.5"):
        runs.PretrainRun("videomae", "a", 1.0, 0, "tube", 0.9, steps=3.5)


# --------------------------------------------------------------------------- tables


DATA_EFFICIENCY_TOP1 = {"scratch": (40.0, 50.0, 45.0), "mocov3": (55.0, 57.0, 50.0), "videomae": (60.0, 70.0, 68.0)}


def data_efficiency_metrics(root: Path) -> list[Path]:
    """Three seeds of the data-efficiency grid, compute recorded for VideoMAE and derived for MoCo v3."""
    paths = []
    for seed in (0, 1, 2):
        inits = {"scratch": None, "mocov3": runs.PretrainRun("mocov3", "synthetic-clean", 1.0, seed),
                 "videomae": videomae("synthetic-clean", seed)}
        for method, init in inits.items():
            paths.append(write_eval(root, "synthetic-clean", "finetune", seed, init, DATA_EFFICIENCY_TOP1[method][seed]))
            paths.append(write_eval(root, "synthetic-clean", "linprobe", seed, init, 30.0 + seed))
        paths.append(write_pretrain(root, inits["videomae"], loss=0.2 + 0.1 * seed, videos=240,
                                    epochs=50, steps=350, clips=11200, wall_s=100.0 + seed))
        paths.append(write_pretrain(root, inits["mocov3"], loss=1.0, videos=240, epochs=10, wall_s=150.0,
                                    clips_per_s=4480 / 150.0, config={"optim": {"batch_size": 32}}))
    return paths


@pytest.mark.parametrize("top1, expected", [
    ([62.3, 65.0, 60.7, 61.3, 59.7, 57.0, 42.0, 45.7, 42.7], "6/9"),  # the pilot's R0 VideoMAE: median 59.7
    ([50.0, 40.0, 60.0], "3/3"),  # exactly at the floor counts
    ([50.0, 39.9, 60.0], "2/3"),
    ([48.0], "1/1"),
])
def test_take_off_counts_the_seeds_within_the_floor_of_the_median(top1, expected):
    assert tables.TAKE_OFF_FLOOR == 10.0
    assert tables.take_off(top1) == expected


def test_data_efficiency_rows_intervals_compute_and_pretrain_loss(tmp_path, specs):
    table = table_of("data_efficiency", data_efficiency_metrics(tmp_path), specs)

    assert list(table.columns) == ["target", "train_videos", "method", "protocol", "n_seeds", "top1", "top1_ci_low",
                                   "top1_ci_high", "top1_std", "take_off", "top5", "pretrain_loss", "pretext_skill",
                                   "pretext_train_skill", "pretrain_steps", "pretrain_clips", "pretrain_flops", "pretrain_s", "eval_steps",
                                   "eval_flops", "eval_s", "seeds", "top1_by_seed", "paper_dataset", "paper_top1"]
    assert list(zip(table["method"], table["protocol"])) == [
        ("scratch", "finetune"), ("scratch", "linprobe"), ("mocov3", "finetune"), ("mocov3", "linprobe"),
        ("videomae", "finetune"), ("videomae", "linprobe")]
    videomae_ft = table.iloc[4]
    assert videomae_ft["top1"] == 66.0
    assert videomae_ft["top1_std"] == pytest.approx(math.sqrt(28.0), abs=0.005)  # ddof=1
    # Student t with 2 degrees of freedom: 66 +- 4.3027 * sqrt(28 / 3)
    assert videomae_ft["top1_ci_low"] == pytest.approx(66.0 - 4.302653 * math.sqrt(28 / 3), abs=0.006)
    assert videomae_ft["top1_ci_high"] == pytest.approx(66.0 + 4.302653 * math.sqrt(28 / 3), abs=0.006)
    assert videomae_ft["pretrain_loss"] == pytest.approx(0.3)
    assert (videomae_ft["seeds"], videomae_ft["n_seeds"], videomae_ft["train_videos"]) == ("0,1,2", 3, 240)
    assert videomae_ft["top1_by_seed"] == "0:60;1:70;2:68"
    assert videomae_ft[["pretrain_steps", "pretrain_clips", "pretrain_s"]].tolist() == [350.0, 11200.0, 101.0]
    # MoCo v3 wrote no steps / clips: 10 epochs x (240 // 32) full batches, rate x time
    assert table.iloc[2][["pretrain_steps", "pretrain_clips", "pretrain_s"]].tolist() == [70.0, 4480.0, 150.0]
    assert math.isnan(table.iloc[0]["pretrain_loss"]) and math.isnan(table.iloc[0]["pretrain_steps"])  # scratch
    assert table["paper_top1"].isna().all() and table["paper_dataset"].isna().all()  # synthetic: no paper


def test_data_efficiency_comparisons_are_paired_by_seed(tmp_path, specs):
    records = tables.study_records("data_efficiency", data_efficiency_metrics(tmp_path))
    comparisons = tables.build_comparisons("data_efficiency", records)
    finetune = comparisons[comparisons["protocol"] == "finetune"].set_index(["a", "b"])
    assert list(finetune.index) == [("mocov3", "scratch"), ("videomae", "scratch"), ("videomae", "mocov3")]
    row = finetune.loc[("videomae", "mocov3")]  # differences 5, 13, 18
    assert row["diff"] == 12.0 and row["n_seeds"] == 3 and row["seeds"] == "0,1,2"
    sd = math.sqrt(((5 - 12) ** 2 + (13 - 12) ** 2 + (18 - 12) ** 2) / 2)
    assert row["diff_ci_low"] == pytest.approx(12 - 4.302653 * sd / math.sqrt(3), abs=0.006)
    assert row["wins"] == "3/3"  # VideoMAE beat MoCo v3 on every seed
    linprobe = comparisons[comparisons["protocol"] == "linprobe"]
    assert (linprobe["diff"] == 0.0).all() and linprobe["p_value"].isna().all()  # identical arms: no spread


def test_single_seed_leaves_interval_empty_and_paper_numbers_merge(tmp_path, specs):
    paths = [
        write_eval(tmp_path, "ucf-like", "finetune", 0, None, 20.0),
        write_eval(tmp_path, "ucf-like", "finetune", 0, videomae("ucf-like", 0, ratio=0.75), 33.0),
    ]
    records = tables.study_records("data_efficiency", paths)
    table = tables.build_table("data_efficiency", records, specs_dir=specs)
    assert table[["top1_std", "top1_ci_low", "top1_ci_high"]].isna().all().all()
    assert table["paper_dataset"].tolist() == ["UCF101", "UCF101"]
    assert table["paper_top1"].tolist() == [51.4, 91.3]  # PAPER.md Table 2

    out = tmp_path / "table.csv"
    comparisons = tables.build_comparisons("data_efficiency", records)
    claim_rows = claims.finalise(claims.evaluate("data_efficiency", records))
    md = tables.write_study(out, "data efficiency", table, comparisons, claim_rows)
    csv_line = out.read_text().splitlines()[1]
    assert csv_line.startswith("ucf-like,240,scratch,finetune,1,20.0,,,,1/1,95.0,")
    assert csv_line.endswith(",0,0:20,UCF101,51.4")
    assert pd.read_csv(tables.companion(out, "comparisons"))[["a", "b", "diff"]].values.tolist() == [
        ["videomae", "scratch", 13.0]]
    verdicts = pd.read_csv(tables.companion(out, "claims")).set_index("claim")["verdict"]
    assert verdicts["videomae_gt_scratch"] == "inconclusive"  # one seed: the gate stays closed
    assert set(verdicts.drop("videomae_gt_scratch")) == {"not tested: gate"}
    text = md.read_text()
    assert text.startswith("## data efficiency\n") and "nan" not in text and "| UCF101" in text
    assert "### Comparisons" in text and "### The paper's claims" in text


def test_ablation_settings_match_the_paper(tmp_path, specs):
    mask = [write_eval(tmp_path, "ssv2-like", "finetune", 0, videomae("ssv2-like", 0, ratio=r), 50.0 + r)
            for r in (0.5, 0.9)]
    ratio_table = table_of("mask_ratio", mask, specs)
    assert ratio_table["mask_ratio"].tolist() == [0.5, 0.9]
    assert ratio_table["paper_top1"].tolist()[1] == 69.6 and math.isnan(ratio_table["paper_top1"].tolist()[0])

    masking = [write_eval(tmp_path, "ssv2-like", "finetune", 0, videomae("ssv2-like", 0, masking=m, ratio=r), 40.0)
               for m, r in (("frame", 0.875), ("random", 0.9))]
    masking_table = table_of("masking", masking, specs)
    assert masking_table["masking"].tolist() == ["random", "frame"]  # tube / random / frame order
    assert masking_table["paper_top1"].tolist() == [68.3, 61.5]

    shift = [write_eval(tmp_path, "ucf-like", "finetune", 0, videomae("k400-like", 0), 41.0),
             write_pretrain(tmp_path, videomae("k400-like", 0), 0.3, 600)]
    shift_table = table_of("domain_shift", shift, specs)
    assert shift_table[["source", "source_videos", "target", "paper_top1"]].values.tolist() == [
        ["k400-like", 600, "ucf-like", 96.1]]  # Table 4: K400 -> UCF101

    size = [write_eval(tmp_path, "ssv2-like", "finetune", 0, videomae("ssv2-like", 0, fraction=f), 30.0)
            for f in (0.25, 0.5)]
    size += [write_pretrain(tmp_path, videomae("ssv2-like", 0, fraction=f), 0.4, int(240 * f)) for f in (0.25, 0.5)]
    size_table = table_of("data_size", size, specs)
    assert size_table[["fraction", "pretrain_videos", "train_videos"]].values.tolist() == [[0.25, 60, 240], [0.5, 120, 240]]
    assert size_table["paper_top1"].tolist()[0] == 68.7  # 42k of 169k SSv2 videos


def test_errors_name_the_file(tmp_path, specs):
    bad = write_eval(tmp_path, "synthetic-clean", "finetune", 0, None, 1.0)
    bad.write_text(json.dumps({"top5": 1.0, "train_videos": 1}))
    with pytest.raises(tables.TableError, match=r"metrics.json.*'top1'"):
        table_of("data_efficiency", [bad], specs)
    stray = tmp_path / "results" / "eval" / "t" / "finetune" / "lucky_s0" / "metrics.json"
    stray.parent.mkdir(parents=True)
    stray.write_text("{}")
    with pytest.raises(runs.RunNameError, match="lucky_s0"):
        table_of("data_efficiency", [stray], specs)
    with pytest.raises(tables.TableError, match="scratch"):
        table_of("mask_ratio", [write_eval(tmp_path, "synthetic-clean", "finetune", 1, None, 1.0)], specs)


def test_cli_writes_csv_markdown_comparisons_and_claims(tmp_path, specs):
    paths = [write_eval(tmp_path, "synthetic-clean", "finetune", s, videomae("synthetic-clean", s), 10.0 * (s + 1))
             for s in (0, 1, 2)]
    out = tmp_path / "out" / "table_data_efficiency.csv"
    assert cli_main(["table", "data_efficiency", *map(str, paths), "--out", str(out),
                     "--datasets", str(specs)]) == 0
    table = pd.read_csv(out)
    assert table[["top1", "top1_std", "seeds", "n_seeds"]].values.tolist() == [[20.0, 10.0, "0,1,2", 3]]
    assert out.with_suffix(".md").is_file()
    assert pd.read_csv(tables.companion(out, "comparisons")).empty  # one arm: nothing to compare
    claim_rows = pd.read_csv(tables.companion(out, "claims"))
    assert claim_rows["claim"].tolist() == list(studies.CLAIM_KEYS[:4])  # the study's claims, none testable
    assert (claim_rows["n_seeds"] == 0).all() and (claim_rows["note"] == "arms not run").all()
    assert claim_rows["verdict"].tolist() == ["inconclusive"] + ["not tested: gate"] * 3  # no gate arms


def test_paper_csv_holds_the_papers_main_numbers():
    paper = tables.read_paper()
    rows = paper.set_index(["study", "paper_dataset", "method", "protocol", "setting"])["top1"]
    assert rows[("data_efficiency", "Something-Something V2", "videomae", "finetune", "")] == 69.6
    assert rows[("data_efficiency", "HMDB51", "scratch", "finetune", "")] == 18.0
    assert rows[("domain_shift", "HMDB51", "videomae", "finetune", "Kinetics-400")] == 73.3
    assert not rows.index.duplicated().any()
