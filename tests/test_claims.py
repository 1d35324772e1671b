"""The paper's claims (vmae.report.studies.CLAIMS) judged from hand-made metrics (vmae.report.claims)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from vmae.cli import main as cli_main
from vmae.report import claims, runs, studies, tables

TARGET = "synthetic-clean"


def write_eval(root: Path, protocol: str, seed: int, init: runs.PretrainRun | None, top1: float,
               target: str = TARGET) -> Path:
    path = root / runs.EvalRun(target, protocol, seed, init).path("results") / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"top1": top1, "top5": 100.0, "train_videos": 240}))
    return path


def write_pretrain(root: Path, run: runs.PretrainRun, videos: int = 240, steps: int = 350,
                   wall_s: float = 100.0) -> Path:
    path = root / "results" / "pretrain" / run.name / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"final_loss": 0.5, "train_videos": videos, "epochs": 50, "steps": steps,
                                "clips": 32 * steps, "wall_s": wall_s}))
    return path


def mae(seed: int, masking: str = "tube", ratio: float = 0.75, fraction: float = 1.0, source: str = TARGET):
    return runs.PretrainRun("videomae", source, fraction, seed, masking, ratio)


SEEDS = range(5)
SEED_EFFECT = [0.0, 12.0, -7.0, 4.0, 20.0]  # moves every arm of a seed together


def claim_rows(study: str, paths: list[Path]) -> pd.DataFrame:
    return claims.evaluate(study, tables.study_records(study, paths))


def data_efficiency(root: Path) -> list[Path]:
    """VideoMAE 15 points above MoCo v3, MoCo v3 0.5 +- 3 around scratch; the probe reversed."""
    paths = []
    noise = [0.5, -3.0, 2.5, 1.0, 1.5]
    for seed in SEEDS:
        base = 30.0 + SEED_EFFECT[seed]
        moco = runs.PretrainRun("mocov3", TARGET, 1.0, seed)
        paths += [write_eval(root, "finetune", seed, None, base),
                  write_eval(root, "finetune", seed, moco, base + noise[seed]),
                  write_eval(root, "finetune", seed, mae(seed), base + 15.0 + seed % 2),
                  write_eval(root, "linprobe", seed, moco, 50.0 + seed),
                  write_eval(root, "linprobe", seed, mae(seed), 40.0 + seed + 0.5 * (seed % 2)),
                  write_eval(root, "linprobe", seed, None, 45.0),
                  write_pretrain(root, moco, steps=70, wall_s=95.0 + seed), write_pretrain(root, mae(seed))]
    return paths


def test_data_efficiency_claims_hold_are_reversed_or_inconclusive_as_the_data_say(tmp_path):
    rows = claims.finalise(claim_rows("data_efficiency", data_efficiency(tmp_path))).set_index("claim")
    assert rows.loc["videomae_gt_scratch", "verdict"] == "holds"
    assert rows.loc["videomae_gt_mocov3", "verdict"] == "holds"
    assert rows.loc["mocov3_gt_scratch", "verdict"] == "inconclusive"
    assert rows.loc["videomae_gt_mocov3_linprobe", "verdict"] == "reversed"
    ft = rows.loc["videomae_gt_mocov3"]
    assert (ft["a"], ft["b"], ft["target"], ft["protocol"], ft["n_seeds"]) == ("videomae", "mocov3", TARGET,
                                                                              "finetune", 5)
    assert ft["diff"] == pytest.approx(15.4 - 1.0 / 5 * (0.5 - 3.0 + 2.5 + 1.0 + 1.5) * 1, abs=0.01)
    assert ft["compute"] == "A: 350 steps, 11200 clips, 100 s; B: 70 steps, 2240 clips, 97 s"
    assert ft["budget"] == "equal compute (B: 0.20x A's steps, 0.97x its seconds)"
    assert rows.loc["videomae_gt_scratch", "compute"].endswith("B: no pretraining")
    assert rows.loc["videomae_gt_scratch", "budget"] == "A only pretrained"
    assert rows.loc["videomae_gt_mocov3_linprobe", "diff"] == pytest.approx(-9.8)
    # Holm: the smallest p is multiplied by the number of tested rows (4), the largest by 1
    p = rows["p_value"].astype(float)
    assert rows.loc[p.idxmin(), "p_holm"] == pytest.approx(min(1.0, 4 * p.min()), abs=1e-4)
    assert rows.loc[p.idxmax(), "p_holm"] >= p.max() - 1e-4


def test_holm_order_decides_which_borderline_claim_holds():
    """Three claims with raw p 0.012, 0.02, 0.04: Holm gives 0.036, 0.04, 0.04: all hold. With the
    last at 0.03 and the middle at 0.026 instead, 0.036, 0.052, 0.052: only the first holds."""
    def rows(ps):
        return pd.DataFrame({"claim": list(studies.CLAIM_KEYS[:3]), "study": "data_efficiency", "text": "",
                             "target": TARGET, "protocol": "finetune", "a": "x", "b": "y", "paper": "",
                             "n_seeds": 5, "diff": [1.0, 2.0, 3.0], "diff_ci_low": 0.1, "diff_ci_high": 4.0,
                             "p_value": ps, "prob_improvement": 0.9, "seeds": "0,1,2,3,4", "compute": "",
                             "budget": ""})
    assert claims.finalise(rows([0.012, 0.02, 0.04]))["verdict"].tolist() == ["holds"] * 3
    assert claims.finalise(rows([0.012, 0.026, 0.03]))["verdict"].tolist() == ["holds", "inconclusive",
                                                                                "inconclusive"]


def test_selectors_pick_largest_subset_in_domain_source_and_named_settings(tmp_path):
    size, shift, masking, ratio = [], [], [], []
    # one results folder a study: the studies' shared runs (tube 0.75 on the full set) get other numbers here
    roots = {name: tmp_path / name for name in ("size", "shift", "masking", "ratio")}
    for seed in SEEDS:
        for fraction, gain in ((0.25, 0.0), (0.5, 1.0), (1.0, 6.0)):
            size.append(write_eval(roots["size"], "finetune", seed, mae(seed, fraction=fraction),
                                   30.0 + SEED_EFFECT[seed] + gain + 0.3 * seed))
            size.append(write_pretrain(roots["size"], mae(seed, fraction=fraction), int(240 * fraction)))
        for source, gain in ((TARGET, 0.0), ("synthetic-clutter", -8.0)):
            shift.append(write_eval(roots["shift"], "finetune", seed, mae(seed, source=source),
                                    50.0 + gain - 0.4 * seed))
            shift.append(write_pretrain(roots["shift"], mae(seed, source=source), 600 if source != TARGET else 240))
        for kind, gain in (("tube", 0.0), ("random", 0.2 * (-1) ** seed), ("frame", -10.0)):
            masking.append(write_eval(roots["masking"], "finetune", seed, mae(seed, masking=kind), 60.0 + gain + seed))
        for r, gain in ((0.5, -5.0), (0.75, 0.0)):
            ratio.append(write_eval(roots["ratio"], "finetune", seed, mae(seed, ratio=r), 60.0 + gain - seed * 0.7))

    more = claim_rows("data_size", size).set_index("claim").loc["more_data_helps"]
    assert (more["a"], more["b"], more["diff"], more["budget"]) == ("1", "0.25", 6.0, "equal steps")
    domain = claim_rows("domain_shift", shift).set_index("claim").loc["in_domain_gt_out_of_domain"]
    assert (domain["a"], domain["b"], domain["diff"]) == (TARGET, "synthetic-clutter", 8.0)
    assert domain["compute"].startswith("A: 350 steps") and domain["budget"] == "equal steps"
    strategies = claim_rows("masking", masking).set_index("claim")
    assert (strategies.loc["tube_gt_random", "a"], strategies.loc["tube_gt_random", "b"]) == ("tube 0.75",
                                                                                             "random 0.75")
    assert strategies.loc["random_gt_frame", "diff"] == pytest.approx(10.0, abs=0.2)
    ratios = claim_rows("mask_ratio", ratio).set_index("claim")
    assert ratios.loc[["ratio_0.9_ge_0.75", "ratio_0.9_gt_0.5"], "n_seeds"].tolist() == [0, 0]  # 0.9 not run

    every = claims.finalise(pd.concat([claim_rows("data_size", size), claim_rows("domain_shift", shift),
                                       claim_rows("masking", masking), claim_rows("mask_ratio", ratio)]))
    verdicts = every.set_index("claim")["verdict"].to_dict()
    assert verdicts == {"tube_gt_random": "inconclusive", "random_gt_frame": "holds",
                        "ratio_0.9_ge_0.75": "inconclusive", "ratio_0.9_gt_0.5": "inconclusive",
                        "more_data_helps": "holds", "in_domain_gt_out_of_domain": "holds"}
    assert every["claim"].tolist() == [k for k in studies.CLAIM_KEYS if k in verdicts]  # CLAIMS order


def test_vmae_claims_gathers_study_files_and_writes_the_rule_above_the_table(tmp_path):
    out = tmp_path / "results" / "table_data_efficiency.csv"
    assert cli_main(["table", "data_efficiency", *map(str, data_efficiency(tmp_path)), "--out", str(out)]) == 0
    claims_csv = tmp_path / "results" / "table_claims.csv"
    assert cli_main(["claims", str(tables.companion(out, "claims")), "--out", str(claims_csv)]) == 0
    table = pd.read_csv(claims_csv)
    assert table["verdict"].tolist() == ["holds", "holds", "inconclusive", "reversed"]
    md = claims_csv.with_suffix(".md").read_text()
    assert "2 holds, 1 reversed, 1 inconclusive" in md and "Holm-adjusted over the 4 tested rows" in md
    assert "| VideoMAE > scratch (fine-tuned)" in md


def test_claims_files_are_checked(tmp_path):
    bad = tmp_path / "bad_claims.csv"
    bad.write_text("claim,study\nvideomae_gt_scratch,data_efficiency\n")
    with pytest.raises(claims.ClaimsError, match=r"bad_claims.csv: missing columns"):
        claims.read_claims([bad])
    assert cli_main(["claims", str(tmp_path / "absent.csv"), "--out", str(tmp_path / "x.csv")]) == 2
