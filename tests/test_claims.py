"""The paper's claims (vmae.report.studies.CLAIMS) judged from hand-made metrics (vmae.report.claims):
each claim's own test, the pre-registered family rule (gate, then each study at alpha / studies, controls
outside), the premise check, the compute footing in FLOPs, and one verdict per claim everywhere."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from vmae.cli import main as cli_main
from vmae.report import claims, runs, stats, studies, tables

TARGET = "synthetic-clean"
OTHER = "synthetic-clutter"
SEEDS = range(10)
SEED_EFFECT = [0.0, 12.0, -7.0, 4.0, 20.0, -3.0, 8.0, 1.0, -10.0, 5.0]  # moves every arm of a seed together
JITTER = [0.5, -0.75, 0.25, 1.0, -0.5, 0.0, 0.75, -0.25, -1.0, 0.5]  # paired noise, sd ~0.65, mean 0.05


def write_eval(root: Path, protocol: str, seed: int, init: runs.PretrainRun | None, top1: float,
               target: str = TARGET) -> Path:
    path = root / runs.EvalRun(target, protocol, seed, init).path("results") / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"top1": top1, "top5": 100.0, "train_videos": 120}))
    return path


def write_pretrain(root: Path, run: runs.PretrainRun, videos: int = 120, steps: int = 350,
                   flops: float = 7.0e12, wall_s: float = 100.0) -> Path:
    path = root / "results" / "pretrain" / run.name / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"final_loss": 0.5, "train_videos": videos, "epochs": 50, "steps": steps,
                                "clips": 32 * steps, "train_flops": flops, "wall_s": wall_s,
                                "pretext": {"loss": 0.5, "trivial_loss": 1.0, "skill": 0.5}}))
    return path


def mae(seed: int, masking: str = "tube", ratio: float = 0.9, fraction: float = 1.0, source: str = TARGET):
    return runs.PretrainRun("videomae", source, fraction, seed, masking, ratio)


def claim_rows(study: str, paths: list[Path]) -> pd.DataFrame:
    return claims.evaluate(study, tables.study_records(study, paths))


def data_efficiency(root: Path, mae_gain: float = 15.0, seeds=SEEDS, slower: float = 1.0) -> list[Path]:
    """VideoMAE ``mae_gain`` above scratch and 15 above MoCo v3; MoCo v3 0.05 +- 0.65 around scratch
    (equal); the probe reversed. MoCo v3: 0.2x VideoMAE's steps at 1.05x its FLOPs (equal compute).
    ``slower``: every run's wall seconds times this (another machine)."""
    paths = []
    for seed in seeds:
        base = 30.0 + SEED_EFFECT[seed]
        moco = runs.PretrainRun("mocov3", TARGET, 1.0, seed)
        paths += [write_eval(root, "finetune", seed, None, base),
                  write_eval(root, "finetune", seed, moco, base + JITTER[seed]),
                  write_eval(root, "finetune", seed, mae(seed), base + mae_gain + 0.5 * (seed % 2)),
                  write_eval(root, "linprobe", seed, moco, 50.0 + seed),
                  write_eval(root, "linprobe", seed, mae(seed), 40.0 + seed + 0.5 * (seed % 3)),
                  write_eval(root, "linprobe", seed, None, 45.0),
                  write_pretrain(root, moco, steps=70, flops=7.35e12, wall_s=(60.0 + seed) * slower),
                  write_pretrain(root, mae(seed), wall_s=100.0 * slower)]
    return paths


def test_data_efficiency_gate_then_the_study_family_at_alpha_over_five(tmp_path):
    rows = claims.finalise(claim_rows("data_efficiency", data_efficiency(tmp_path))).set_index("claim")
    gate = rows.loc["videomae_gt_scratch"]
    assert (gate["role"], gate["family"], gate["alpha"], gate["verdict"]) == ("gate", "gate", 0.05, "holds")
    assert gate["p_adjusted"] == round(gate["p_value"], 4)  # the gate family has one row (p at 4 decimals)
    assert gate["sign_flip_p"] == pytest.approx(2 / 2 ** 10, abs=1e-4)
    assert (gate["wins"], gate["win_ci_high"]) == (10, 1.0)
    ft = rows.loc["videomae_gt_mocov3"]
    assert (ft["family"], ft["alpha"], ft["verdict"]) == ("data_efficiency", round(claims.STUDY_ALPHA, 4), "holds")
    assert (ft["a"], ft["b"], ft["target"], ft["protocol"], ft["n_seeds"]) == ("videomae", "mocov3", TARGET,
                                                                              "finetune", 10)
    assert ft["compute"] == "A: 350 steps, 11200 clips, 7 TFLOP (100 s); B: 70 steps, 2240 clips, 7.35 TFLOP (64 s)"
    assert ft["budget"] == "equal compute (B: 0.20x A's steps, 1.05x its FLOPs)"
    assert rows.loc["videomae_gt_mocov3_linprobe", "verdict"] == "reversed"
    assert rows.loc["videomae_gt_mocov3_linprobe", "diff"] == pytest.approx(-9.55)
    same = rows.loc["mocov3_gt_scratch"]  # equal arms: superiority cannot hold, and the row says what it could see
    assert same["verdict"] == "inconclusive" and same["mde"] == pytest.approx(
        stats.minimum_detectable_effect(same["sd"], 10, claims.STUDY_ALPHA / 3), abs=0.02)
    assert rows.loc["videomae_gt_scratch", "budget"] == "A only pretrained"
    # Holm within the study's family of 3 rows: the smallest p times 3
    family = rows[rows["family"] == "data_efficiency"]
    smallest = family["p_value"].astype(float).idxmin()
    assert rows.loc[smallest, "p_adjusted"] == pytest.approx(min(1.0, 3 * family["p_value"].min()), abs=1e-4)


def test_a_closed_gate_leaves_every_other_claim_untested(tmp_path):
    rows = claims.finalise(claim_rows("data_efficiency", data_efficiency(tmp_path, mae_gain=0.0)))
    verdicts = rows.set_index("claim")["verdict"]
    assert verdicts["videomae_gt_scratch"] == "inconclusive"
    assert set(verdicts.drop("videomae_gt_scratch")) == {"not tested: gate"}


def test_fewer_seeds_than_a_verdict_needs_is_inconclusive_whatever_the_p(tmp_path):
    rows = claims.finalise(claim_rows("data_efficiency", data_efficiency(tmp_path, seeds=range(5))))
    gate = rows.set_index("claim").loc["videomae_gt_scratch"]
    assert gate["p_adjusted"] < 1e-4 and gate["verdict"] == "inconclusive"
    assert gate["note"] == "fewer than the 6 seeds a verdict needs at alpha 0.05" and gate["mde"] == math.inf


def _mask_ratio(root: Path) -> list[Path]:
    """0.9 and 0.75 equal within half a point over 10 seeds; 0.5 six points lower; 0.95 ten lower."""
    paths = []
    for seed in SEEDS:
        base = 60.0 + SEED_EFFECT[seed]
        for ratio, top1 in ((0.9, base + JITTER[seed]), (0.75, base), (0.5, base - 6.0 + JITTER[9 - seed]),
                            (0.95, base - 10.0 + 0.5 * JITTER[seed])):
            paths.append(write_eval(root, "finetune", seed, mae(seed, ratio=ratio), top1))
    return paths


def test_non_inferiority_and_equivalence_are_decided_from_equal_arms(tmp_path):
    rows = claims.finalise(claim_rows("mask_ratio", _mask_ratio(tmp_path))).set_index("claim")
    ni = rows.loc["ratio_0.9_ge_0.75"]
    assert (ni["test"], ni["margin"], ni["family"]) == ("non-inferiority", 3.0, "mask_ratio")
    assert abs(ni["diff"]) < 0.5 and ni["verdict"] == "non-inferior"
    assert "conditional on the gate" in ni["note"]  # the gate lives in data_efficiency
    assert rows.loc["ratio_0.9_gt_0.5", "verdict"] == "holds"
    assert rows.loc["ratio_0.9_ge_0.95", "verdict"] == "non-inferior"  # 10 points better is not worse
    assert rows.loc["ratio_0.95_still_good", "verdict"] == "inconclusive"  # 10 points is outside +-3
    equal = claims.finalise(claim_rows("mask_ratio", _mask_ratio(tmp_path)).assign(
        claim="ratio_0.95_still_good", test="equivalence"))
    assert (equal["verdict"] == "equivalent").sum() >= 1  # 0.9 vs 0.75 as an equivalence: decided


def test_premise_that_fails_is_not_tested_and_left_out_of_the_family(tmp_path):
    """On the clutter target the in-domain set (240) is larger than the clean one (120): that row
    is not tested and does not count in the study's Holm family; the clean-target row is tested."""
    paths = []
    for seed in SEEDS:
        for target in (TARGET, OTHER):
            paths.append(write_eval(tmp_path, "finetune", seed, None, 20.0 + SEED_EFFECT[seed], target=target))
            for source in (TARGET, OTHER):
                top1 = 50.0 + SEED_EFFECT[seed] + (JITTER[seed] if source == target else 0.0)
                paths.append(write_eval(tmp_path, "finetune", seed, mae(seed, source=source), top1, target=target))
        paths += [write_pretrain(tmp_path, mae(seed, source=TARGET), videos=120),
                  write_pretrain(tmp_path, mae(seed, source=OTHER), videos=240)]
    rows = claims.finalise(claim_rows("domain_shift", paths))
    domain = rows[rows["claim"] == "in_domain_ge_out_of_domain"].set_index("target")
    assert domain.loc[TARGET, "verdict"] == "non-inferior"
    assert domain.loc[TARGET, "p_adjusted"] == round(domain.loc[TARGET, "p_value"], 4)  # a family of one tested row
    assert domain.loc[OTHER, "verdict"] == "not tested: premise" and math.isnan(domain.loc[OTHER, "p_adjusted"])
    assert "(240 videos) is not smaller than the out-of-domain one (120)" in domain.loc[OTHER, "note"]
    control = rows[rows["claim"] == "in_domain_gt_scratch"].set_index("target")
    assert set(control["verdict"]) == {"holds"} and set(control["family"]) == {"control"}
    assert (control["a"].tolist(), control["b"].tolist()) == ([f"{TARGET} videomae", f"{OTHER} videomae"],
                                                              ["scratch", "scratch"])


def test_data_size_is_a_trend_over_every_arm(tmp_path):
    paths = []
    for seed in SEEDS:
        for fraction, videos, gain in ((0.5, 60, 0.0), (1.0, 120, 2.0), (2.0, 240, 4.5), (4.0, 480, 6.0)):
            run = mae(seed, fraction=fraction)
            paths += [write_eval(tmp_path, "finetune", seed, run, 40.0 + SEED_EFFECT[seed] + gain + JITTER[seed] * (
                videos == 60)), write_pretrain(tmp_path, run, videos=videos)]
    rows = claims.finalise(claim_rows("data_size", paths)).set_index("claim")
    trend = rows.loc["more_data_helps"]
    assert trend["a"] == "60-480 videos (4 sizes): slope per doubling" and trend["test"] == "trend"
    assert 1.5 < trend["diff"] < 2.5 and trend["verdict"] == "holds" and trend["budget"] == "equal steps"
    two = claims.finalise(claim_rows("data_size", [p for p in paths if "_f0.5_" not in str(p) and "_f4.0_" not in
                                                   str(p)]))
    assert two.set_index("claim").loc["more_data_helps", "verdict"] == "not tested: premise"


def test_zero_spread_differences_give_no_verdict(tmp_path):
    paths = []
    for seed in SEEDS:
        for kind, top1 in (("tube", 70.0), ("random", 65.0), ("frame", 60.0 + JITTER[seed])):
            paths.append(write_eval(tmp_path, "finetune", seed, mae(seed, masking=kind), top1 + SEED_EFFECT[seed]))
    rows = claims.finalise(claim_rows("masking", paths)).set_index("claim")
    flat = rows.loc["tube_gt_random"]  # +5.0 on every seed
    assert flat["diff"] == 5.0 and math.isnan(flat["p_value"]) and flat["verdict"] == "inconclusive"
    assert flat["note"] == "no spread in the paired differences: the t-test says nothing"


def test_the_main_table_and_the_all_claims_table_give_the_same_verdicts(tmp_path):
    out = tmp_path / "results" / "table_data_efficiency.csv"
    assert cli_main(["table", "data_efficiency", *map(str, data_efficiency(tmp_path)), "--out", str(out)]) == 0
    ratio_out = tmp_path / "ratio" / "table_mask_ratio.csv"
    assert cli_main(["table", "mask_ratio", *map(str, _mask_ratio(tmp_path / "ratio")), "--out", str(ratio_out)]) == 0
    claims_csv = tmp_path / "results" / "table_claims.csv"
    assert cli_main(["claims", str(tables.companion(out, "claims")), str(tables.companion(ratio_out, "claims")),
                     "--out", str(claims_csv)]) == 0
    every = pd.read_csv(claims_csv, keep_default_na=False, dtype={"a": str, "b": str})
    for study_out in (out, ratio_out):
        own = pd.read_csv(tables.companion(study_out, "claims"), keep_default_na=False, dtype={"a": str, "b": str})
        merged = own.merge(every, on=["claim", "target", "a", "b"], suffixes=("_study", "_all"))
        assert len(merged) == len(own) and (merged["verdict_study"] == merged["verdict_all"]).all()
        assert (merged["p_adjusted_study"] == merged["p_adjusted_all"]).all()
    md = claims_csv.with_suffix(".md").read_text()
    assert "the gate (VideoMAE > scratch) first, Holm at 0.05" in md and f"{claims.STUDY_ALPHA:g} each" in md
    assert "| VideoMAE > scratch (fine-tuned)" in md and "non-inferiority: A >= B - 3" in md
    assert every.set_index("claim").loc["ratio_0.9_ge_0.75", "note"] == ""


def test_claims_files_are_checked(tmp_path):
    bad = tmp_path / "bad_claims.csv"
    bad.write_text("claim,study\nvideomae_gt_scratch,data_efficiency\n")
    with pytest.raises(claims.ClaimsError, match=r"bad_claims.csv: missing columns"):
        claims.read_claims([bad])
    assert cli_main(["claims", str(tmp_path / "absent.csv"), "--out", str(tmp_path / "x.csv")]) == 2


def test_every_claim_declares_a_test_and_a_margin_and_every_study_has_one():
    assert {c.test for c in studies.CLAIMS} <= set(stats.TESTS)
    assert all(c.margin > 0 for c in studies.CLAIMS)
    assert [c.key for c in studies.CLAIMS if c.role == studies.GATE] == ["videomae_gt_scratch"]
    assert {c.study for c in studies.CLAIMS} == set(studies.STUDY_NAMES)


def test_vmae_power_plans_seeds_from_a_pilot(tmp_path):
    """Seeds at each claim's margin and level from the pilot's paired SDs: the gate at 0.05 (one row),
    the study's rows at 0.05 / 6 studies / 3, never fewer than the sign-flip test needs there."""
    out = tmp_path / "results" / "table_data_efficiency.csv"
    assert cli_main(["table", "data_efficiency", *map(str, data_efficiency(tmp_path)), "--out", str(out)]) == 0
    plan_csv = tmp_path / "power.csv"
    assert cli_main(["power", str(tables.companion(out, "claims")), "--out", str(plan_csv)]) == 0
    plan = pd.read_csv(plan_csv).set_index("claim")
    gate = plan.loc["videomae_gt_scratch"]
    assert (gate["alpha"], gate["pilot_seeds"]) == (0.05, 10)
    assert gate["seeds_needed"] == stats.seeds_needed(3.0, gate["pilot_sd"], 0.05) == 6  # sd 0.26: the floor
    same = plan.loc["mocov3_gt_scratch"]  # equal arms, sd ~0.65, level 0.05 / 6 / 3: the sign-flip floor, 10
    assert same["alpha"] == pytest.approx(claims.STUDY_ALPHA / 3, abs=1e-5) and same["seeds_needed"] == 10
    assert same["seeds_at_pilot_effect"] > 1000  # at the pilot's own 0.05 points: out of any reach
    assert "| videomae_gt_scratch" in plan_csv.with_suffix(".md").read_text()


def test_readme_power_command_runs_as_written(tmp_path):
    """The README's `vmae power pilot/results/table_*_claims.csv ...` (section "The five studies"),
    run as written in a folder holding a pilot's claims files."""
    import re
    import subprocess

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, re.DOTALL)
    command = next(line for block in blocks for line in block.splitlines() if line.startswith("vmae power "))
    out = tmp_path / "pilot" / "results" / "table_data_efficiency.csv"
    assert cli_main(["table", "data_efficiency", *map(str, data_efficiency(tmp_path / "runs")), "--out", str(out)]) == 0
    result = subprocess.run(["bash", "-c", command], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "pilot" / "results" / "power.md").read_text().count("| videomae_gt") == 3


def test_a_trend_whose_sizes_got_different_steps_names_each_sizes_budget(tmp_path):
    """Epoch-based pretraining (steps grow with the set): the budget compares every size with the
    smallest, never a size with itself, and the compute names each size's steps."""
    paths = []
    for seed in SEEDS:
        for fraction, videos in ((0.5, 60), (1.0, 120), (2.0, 240)):
            run = mae(seed, fraction=fraction)
            paths += [write_eval(tmp_path, "finetune", seed, run, 40.0 + seed),
                      write_pretrain(tmp_path, run, videos=videos, steps=videos, flops=videos * 1e10)]
    trend = claims.evaluate("data_size", tables.study_records("data_size", paths)).iloc[0]
    assert trend["budget"] == ("120 vs 60 videos: B: 2.00x A's steps, 2.00x its FLOPs; "
                               "240 vs 60 videos: B: 4.00x A's steps, 4.00x its FLOPs")
    assert trend["compute"].startswith("60 videos: 60 steps, 1920 clips, 0.6 TFLOP") and "240 videos: 240 steps" in \
        trend["compute"]


def test_the_claims_table_is_the_same_on_a_machine_with_other_seconds(tmp_path):
    """Only the seconds in ``compute`` may differ when every run took 2.7x longer (another machine):
    the budget, the p-values and the verdicts come from top-1, steps and FLOPs."""
    here = claims.finalise(claim_rows("data_efficiency", data_efficiency(tmp_path / "here")))
    there = claims.finalise(claim_rows("data_efficiency", data_efficiency(tmp_path / "there", slower=2.7)))
    assert not here["compute"].equals(there["compute"])  # the seconds shown do differ
    strip = lambda table: table.assign(compute=table["compute"].str.replace(r" \(\d+ s\)", "", regex=True))
    pd.testing.assert_frame_equal(strip(here), strip(there))
    assert set(here["budget"]) >= {"equal compute (B: 0.20x A's steps, 1.05x its FLOPs)"}


def test_the_all_claims_table_adjusts_the_studies_unrounded_p_values(tmp_path):
    """Six seeds all for A: sign-flip p = 2/64 = 0.03125, Holm x3 in the study = 0.09375 in both
    tables (not 3 x the 4-decimal 0.0312)."""
    out = tmp_path / "results" / "table_data_efficiency.csv"
    assert cli_main(["table", "data_efficiency", *map(str, data_efficiency(tmp_path, seeds=range(6))),
                     "--out", str(out)]) == 0
    claims_csv = tmp_path / "results" / "table_claims.csv"
    assert cli_main(["claims", str(tables.companion(out, "claims")), "--out", str(claims_csv)]) == 0
    own = pd.read_csv(tables.companion(out, "claims")).set_index("claim")
    every = pd.read_csv(claims_csv).set_index("claim")
    assert own.loc["videomae_gt_scratch", "sign_flip_p"] == every.loc["videomae_gt_scratch", "sign_flip_p"] == 0.03125
    assert (own["sign_flip_p_adjusted"] == every["sign_flip_p_adjusted"]).all()
    assert (own["p_adjusted"] == every["p_adjusted"]).all()
