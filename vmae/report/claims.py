"""`vmae claims STUDY_CLAIMS.csv... --out results/table_claims.csv`: a verdict on each claim of the paper.

``evaluate(study, records)`` turns one study's evaluation records (vmae.report.tables) into one
row per claim of ``vmae.report.studies.CLAIMS`` and per group it applies to (each target, say): the
paired difference A - B over shared seeds with its 95% t-interval, the claim's own test as it is
worded (superiority, non-inferiority, equivalence or trend; vmae.report.stats), the sign-flip
permutation p of the same hypothesis, the seeds A won, the compute each arm got and how the two
budgets compare (``budget``, from FLOPs), and whether the arms meet the claim's premise.

``finalise`` applies the pre-registered family rule (the README's "How a claim gets its verdict"):

1. the gate (``role: gate``, VideoMAE > scratch) is tested first, Holm over its rows at ``ALPHA``;
2. only if every gate row holds are the other claims tested: ``ALPHA`` is split equally over the
   studies (``STUDY_ALPHA``), Holm within each study's rows. A study's table and the all-claims
   table therefore give a claim the same verdict; a study other than data_efficiency cannot see
   the gate, so its own table marks its verdicts conditional on it;
3. controls (``role: control``) are design checks outside the family, each at ``ALPHA``;
4. a row whose arms fail the claim's premise is "not tested: premise" and left out of its family.

Every row carries its minimum detectable effect at its seeds (80% power, at its family level
divided by the family's size). The command gathers the per-study claim files that `vmae table`
writes (``results/table_<study>_claims.csv``): ``results/table_claims.csv`` and ``.md``. A claim
whose arms the config does not run is listed with no seeds.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vmae.errors import UserError
from vmae.report import stats
from vmae.report.studies import (
    CLAIM_KEYS,
    CLAIMS_BY_KEY,
    CONTROL,
    GATE,
    LARGEST,
    MARGIN_REASON,
    NOT_TARGET,
    SCRATCH,
    SMALLEST,
    STUDIES,
    STUDY_NAMES,
    TARGET,
    Claim,
    claims_of,
)

STUDY_ALPHA = stats.ALPHA / len(STUDY_NAMES)  # each study's share once the gate holds
ROW_COLUMNS = ["claim", "role", "study", "text", "target", "protocol", "a", "b", "test", "margin", "paper",
               "n_seeds", "diff", "diff_ci_low", "diff_ci_high", "sd", "wins", "win_ci_low", "win_ci_high",
               "p_value", "sign_flip_p", "side", "seeds", "compute", "budget", "premise"]
NUMERIC_COLUMNS = ["margin", "n_seeds", "diff", "diff_ci_low", "diff_ci_high", "sd", "wins", "win_ci_low",
                   "win_ci_high", "p_value", "sign_flip_p", "side"]
VERDICT_COLUMNS = ["family", "alpha", "p_adjusted", "sign_flip_p_adjusted", "mde", "verdict", "note"]
COLUMNS = ROW_COLUMNS + VERDICT_COLUMNS


class ClaimsError(UserError, ValueError):
    """A claims file is missing, malformed or names an unknown claim."""


# --------------------------------------------------------------------------- selecting arms


def _matches(part: pd.DataFrame, column: str, wanted: Any) -> pd.Series:
    """Rows of ``part`` whose ``column`` fits a selector value (a literal or a studies selector)."""
    values = part[column]
    if wanted == LARGEST:
        return values == values.max()
    if wanted == SMALLEST:
        return values == values.min()
    if wanted == TARGET:
        return values == part["target"]
    if wanted == NOT_TARGET:
        return (values != part["target"]) & (part["method"] != "scratch")
    if wanted == SCRATCH:
        return part["method"] == "scratch"
    if isinstance(wanted, float):
        return np.isclose(values.astype(float), wanted)
    return values == wanted


def select(part: pd.DataFrame, selector: Mapping[str, Any]) -> pd.DataFrame:
    """The rows of one group that an arm's selector picks."""
    keep = pd.Series(True, index=part.index)
    for column, wanted in selector.items():
        keep &= _matches(part, column, wanted)
    return part[keep]


def _by_arm(study: str, records: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """An arm's selected records split by setting (a NOT_TARGET selector may pick several)."""
    labels = records.apply(STUDIES[study].label, axis=1) if len(records) else pd.Series(dtype=str)
    return {label: part for label, part in records.groupby(labels, sort=False)}


def _scores(arm: pd.DataFrame) -> dict[int, float]:
    """seed -> top-1 of one arm's records."""
    return {int(seed): float(top1) for seed, top1 in zip(arm["seed"], arm["top1"])}


# --------------------------------------------------------------------------- compute


def _mean(arm: pd.DataFrame, column: str) -> float:
    return float(arm[column].mean()) if column in arm and len(arm) else math.nan


def _compute(arm: pd.DataFrame) -> str:
    """'350 steps, 11200 clips, 6.6 TFLOP (115 s)' of an arm's pretraining (mean over seeds)."""
    steps = _mean(arm, "pretrain_steps")
    if math.isnan(steps):
        return "no pretraining"
    flops = _mean(arm, "pretrain_flops")
    amount = f"{flops / 1e12:.3g} TFLOP" if not math.isnan(flops) else "FLOPs not recorded"
    return f"{steps:.0f} steps, {_mean(arm, 'pretrain_clips'):.0f} clips, {amount} ({_mean(arm, 'pretrain_s'):.0f} s)"


def budget(a: pd.DataFrame, b: pd.DataFrame) -> str:
    """How the two arms' pretraining compute compares, in units that do not depend on the machine
    (means over seeds): 'equal steps' (within 1 % and the same FLOPs a step), 'equal compute'
    (FLOPs within 10 %), else the ratios of B's steps and FLOPs to A's; 'A only pretrained' /
    'B only pretrained' / 'neither pretrained'. Seconds are shown in ``compute``, never used here."""
    a_steps, b_steps = _mean(a, "pretrain_steps"), _mean(b, "pretrain_steps")
    if math.isnan(a_steps):
        return "neither pretrained" if math.isnan(b_steps) else "B only pretrained"
    if math.isnan(b_steps):
        return "A only pretrained"
    steps_ratio = b_steps / a_steps
    flops_ratio = _mean(b, "pretrain_flops") / _mean(a, "pretrain_flops")
    if math.isnan(flops_ratio):
        return f"B: {steps_ratio:.2f}x A's steps (FLOPs not recorded)"
    if abs(steps_ratio - 1) <= 0.01 and abs(flops_ratio - 1) <= 0.01:
        return "equal steps"
    if abs(flops_ratio - 1) <= 0.10:
        return f"equal compute (B: {steps_ratio:.2f}x A's steps, {flops_ratio:.2f}x its FLOPs)"
    return f"B: {steps_ratio:.2f}x A's steps, {flops_ratio:.2f}x its FLOPs"


# --------------------------------------------------------------------------- rows


def _row(claim: Claim, where: dict[str, Any], a_label: str, b_label: str, d: stats.PairedDifference,
         test: stats.TestResult, compute: str, budget_text: str, premise: str | None) -> dict[str, Any]:
    win_low, win_high = d.win_interval()
    return {
        "claim": claim.key, "role": claim.role, "study": claim.study, "text": claim.text,
        "target": where.get("target"), "protocol": where.get("protocol"), "a": a_label, "b": b_label,
        "test": claim.test, "margin": claim.margin, "paper": claim.paper, "n_seeds": d.n, "diff": d.mean,
        "diff_ci_low": d.low, "diff_ci_high": d.high, "sd": d.sd, "wins": d.wins, "win_ci_low": win_low,
        "win_ci_high": win_high, "p_value": test.p_value, "sign_flip_p": test.sign_flip_p, "side": test.side,
        "seeds": ",".join(map(str, d.seeds)), "compute": compute, "budget": budget_text, "premise": premise or "",
    }


def _pair_rows(claim: Claim, where: dict[str, Any], members: pd.DataFrame) -> list[dict[str, Any]]:
    rows = []
    for a_label, a in _by_arm(claim.study, select(members, claim.a)).items():
        for b_label, b in _by_arm(claim.study, select(members, claim.b)).items():
            if a_label == b_label:
                continue
            d = stats.paired_difference(_scores(a), _scores(b))
            premise = claim.premise.check(a, b) if claim.premise else None
            rows.append(_row(claim, where, a_label, b_label, d, stats.test(d.differences, claim.test, claim.margin),
                             f"A: {_compute(a)}; B: {_compute(b)}", budget(a, b), premise))
    return rows


def trend_slopes(arms: pd.DataFrame) -> dict[int, float]:
    """seed -> least-squares slope of top-1 on log2(pretraining videos) over the seed's arms (seeds
    with fewer than two sizes are left out)."""
    slopes = {}
    for seed, part in arms.groupby("seed"):
        x = np.log2(part["pretrain_videos"].astype(float).to_numpy())
        if len(set(x)) >= 2:
            slopes[int(seed)] = float(np.polyfit(x, part["top1"].astype(float).to_numpy(), 1)[0])
    return slopes


def _trend_rows(claim: Claim, where: dict[str, Any], members: pd.DataFrame) -> list[dict[str, Any]]:
    arms = select(members, claim.a)
    if arms.empty:
        return []
    slopes = trend_slopes(arms)
    d = stats.paired_difference(slopes, dict.fromkeys(slopes, 0.0))
    sizes = sorted(set(arms["pretrain_videos"].astype(int)))
    label = f"{sizes[0]}-{sizes[-1]} videos ({len(sizes)} sizes): slope per doubling"
    premise = claim.premise.check(arms, arms) if claim.premise else None
    by_size = {size: arms[arms["pretrain_videos"] == size] for size in sizes}
    budgets = {size: budget(by_size[sizes[0]], part) for size, part in by_size.items() if size != sizes[0]}
    if set(budgets.values()) <= {"equal steps"}:
        compute, budget_text = f"each size: {_compute(by_size[sizes[0]])}", "equal steps"
    else:
        compute = "; ".join(f"{size} videos: {_compute(part)}" for size, part in by_size.items())
        budget_text = "; ".join(f"{size} vs {sizes[0]} videos: {text}" for size, text in budgets.items())
    return [_row(claim, where, label, "", d, stats.test(d.differences, claim.test, claim.margin),
                 compute, budget_text, premise)]


def _claim_rows(claim: Claim, records: pd.DataFrame) -> list[dict[str, Any]]:
    study = STUDIES[claim.study]
    rows = []
    for group, members in select(records, claim.fixed).groupby(list(study.group), sort=False, dropna=False):
        where = dict(zip(study.group, group))
        rows += (_trend_rows if claim.test == stats.TREND else _pair_rows)(claim, where, members)
    return rows


def evaluate(study: str, records: pd.DataFrame) -> pd.DataFrame:
    """One row per claim of ``study`` and group it applies to (before the family rule); a claim the
    records cannot test (its arms were not run) gets one row with no seeds."""
    rows = []
    for claim in claims_of(study):
        found = _claim_rows(claim, records)
        rows += found or [{"claim": claim.key, "role": claim.role, "study": study, "text": claim.text,
                           "test": claim.test, "margin": claim.margin, "paper": claim.paper, "n_seeds": 0,
                           "wins": 0, "compute": "arms not in this config", "premise": ""}]
    return pd.DataFrame(rows, columns=ROW_COLUMNS)


# --------------------------------------------------------------------------- the family rule


def _family(row: pd.Series) -> str:
    return {GATE: "gate", CONTROL: "control"}.get(row["role"], row["study"])


def _family_alpha(family: str) -> float:
    return stats.ALPHA if family in ("gate", "control") else STUDY_ALPHA


def _adjust(rows: pd.DataFrame, column: str) -> pd.Series:
    """Holm-adjusted ``column`` (a p-value) within each family (controls: each alone, unadjusted)."""
    adjusted = pd.Series(math.nan, index=rows.index)
    tested = rows[rows["premise"].fillna("") == ""]
    for family, part in tested.groupby("family", sort=False):
        values = part[column].astype(float)
        adjusted[part.index] = values if family == "control" else stats.holm(values.to_list())
    return adjusted


def _mde(row: pd.Series, family_size: int) -> float:
    alpha = row["alpha"] / max(family_size, 1)
    return stats.minimum_detectable_effect(float(row["sd"]), int(row["n_seeds"]), alpha)


def gate_state(rows: pd.DataFrame) -> bool | None:
    """True when every gate row holds, False when a gate row was tested and does not, None when no
    gate row is among ``rows`` (a study other than data_efficiency)."""
    gate = rows[(rows["role"] == GATE) & (rows["n_seeds"] > 0)]
    if gate.empty:
        return None
    return bool((gate["verdict"] == stats.HOLDS).all())


def _note(row: pd.Series, gate: bool | None) -> str:
    if row["premise"]:
        return f"premise: {row['premise']}"
    if row["n_seeds"] == 0:
        return "arms not run"
    if row["n_seeds"] < stats.fewest_seeds(row["alpha"]):
        return f"fewer than the {stats.fewest_seeds(row['alpha'])} seeds a verdict needs at alpha {row['alpha']:g}"
    if math.isnan(row["p_value"]):
        return "no spread in the paired differences: the t-test says nothing"
    if row["role"] == CONTROL:
        return "control: a design check outside the family"
    if row["role"] != GATE and gate is None:
        return "conditional on the gate (VideoMAE > scratch), not in this table: results/table_claims.md applies it"
    return ""


def finalise(rows: pd.DataFrame) -> pd.DataFrame:
    """The family rule (module docstring) over ``rows``: each row's family, its level, its adjusted
    p-value, minimum detectable effect, verdict and a note; in the order of ``CLAIMS``."""
    rows = rows.copy()
    rows["premise"] = rows["premise"].fillna("")
    rows["family"] = rows.apply(_family, axis=1)
    rows["alpha"] = rows["family"].map(_family_alpha)
    rows["p_adjusted"] = _adjust(rows, "p_value")
    rows["sign_flip_p_adjusted"] = _adjust(rows, "sign_flip_p")
    sizes = rows[(rows["premise"] == "") & rows["p_value"].notna()].groupby("family").size()
    rows["mde"] = [_mde(row, 1 if row["family"] == "control" else int(sizes.get(row["family"], 1)))
                   for _, row in rows.iterrows()]
    rows["verdict"] = [stats.verdict(r["test"], r["p_adjusted"], r["sign_flip_p_adjusted"], r["side"],
                                     int(r["n_seeds"]), r["alpha"]) for _, r in rows.iterrows()]
    rows.loc[rows["premise"] != "", "verdict"] = stats.NOT_TESTED_PREMISE
    gate = gate_state(rows)
    if gate is False:
        closed = (rows["role"] == "claim") & (rows["premise"] == "")
        rows.loc[closed, "verdict"] = stats.NOT_TESTED_GATE
    rows["note"] = [_note(row, gate) for _, row in rows.iterrows()]
    order = {key: i for i, key in enumerate(CLAIM_KEYS)}
    rows = rows.sort_values("claim", key=lambda c: c.map(order), kind="stable").reset_index(drop=True)
    for column in ("diff", "diff_ci_low", "diff_ci_high", "mde"):
        rows[column] = rows[column].astype(float).round(2)
    for column in ("p_adjusted", "sign_flip_p_adjusted", "win_ci_low", "win_ci_high", "alpha"):
        rows[column] = rows[column].astype(float).round(4)
    # what the all-claims table adjusts again (p) and plans from (sd): 12 significant digits, so
    # re-reading a study's file gives the same adjusted p-values, not ones built from rounded p
    for column in ("p_value", "sign_flip_p", "sd"):
        rows[column] = rows[column].astype(float).map(lambda v: float(f"{v:.12g}"))
    return rows[COLUMNS]


# --------------------------------------------------------------------------- output


def markdown(table: pd.DataFrame) -> str:
    """A table as Markdown, empty cells for missing values."""
    return table.astype(object).where(table.notna(), "").to_markdown(index=False)


def _effect(r: pd.Series) -> str:
    if r["n_seeds"] == 0 or pd.isna(r["diff"]):
        return "not run"
    if pd.isna(r["diff_ci_low"]):
        return f"{r['diff']:+.1f}"
    return f"{r['diff']:+.1f} [{r['diff_ci_low']:+.1f}, {r['diff_ci_high']:+.1f}]"


def _wins(r: pd.Series) -> str:
    if not r["n_seeds"]:
        return ""
    return f"{int(r['wins'])}/{int(r['n_seeds'])} [{r['win_ci_low']:.2f}, {r['win_ci_high']:.2f}]"


def _test(r: pd.Series) -> str:
    claim = CLAIMS_BY_KEY[r["claim"]]
    return f"{claim.test}: {claim.wording}"


def display(rows: pd.DataFrame) -> pd.DataFrame:
    """The claims as a reader wants them: claim, test, paper, our paired difference with its interval,
    the seeds won, the adjusted p and its family, the verdict and what the run could detect."""
    def arms(r: pd.Series) -> str:
        return "" if pd.isna(r["a"]) else (f"{r['a']} - {r['b']}" if r["b"] else r["a"])

    return pd.DataFrame({
        "claim": rows["text"], "target": rows["target"].astype(object).fillna(""),
        "protocol": rows["protocol"].astype(object).fillna(""), "A - B": rows.apply(arms, axis=1),
        "test": rows.apply(_test, axis=1), "paper (A vs B)": rows["paper"],
        "ours: A - B, 95% CI (points)": rows.apply(_effect, axis=1), "seeds": rows["n_seeds"],
        "A won (95% CI)": rows.apply(_wins, axis=1),
        "p (adj.)": rows["p_adjusted"], "sign-flip p (adj.)": rows["sign_flip_p_adjusted"],
        "family (alpha)": [f"{f} ({a:g})" for f, a in zip(rows["family"], rows["alpha"])],
        "verdict": rows["verdict"], "MDE (80%)": rows["mde"], "note": rows["note"].fillna(""),
        "budget": rows["budget"].astype(object).fillna(""), "compute": rows["compute"],
    })


def rule_text(rows: pd.DataFrame) -> str:
    """The verdict rule, written above every claims table."""
    counts = rows["verdict"].value_counts()
    summary = ", ".join(f"{counts[v]} {v}" for v in stats.VERDICTS if counts.get(v, 0))
    return (
        f"{len(rows)} rows: {summary}. Effect: mean paired difference A - B in top-1 points over the seeds both "
        f"arms ran, with its 95% interval ({stats.INTERVAL}). Each claim is tested as it is worded: superiority "
        f"(two-sided paired t-test of 0), non-inferiority (of -margin), equivalence (two one-sided tests) or a "
        f"trend (per-seed slope of top-1 on log2 videos). Margin: {MARGIN_REASON} Family rule, fixed before any "
        f"run: the gate (VideoMAE > scratch) first, Holm at {stats.ALPHA:g}; only if it holds, the other claims, "
        f"{stats.ALPHA:g} split over the {len(STUDY_NAMES)} studies ({STUDY_ALPHA:g} each), Holm within each; "
        f"controls alone at {stats.ALPHA:g}, outside the family; a row whose arms fail the claim's premise is not "
        f"tested. Verdict when the t-test's and the sign-flip test's p-values, each Holm-adjusted in the family, "
        f"are both below its alpha: holds / non-inferior / equivalent, or reversed on the other side; otherwise "
        f"inconclusive, and always with fewer than {stats.MIN_SEEDS} seeds or differences of no spread. Sign-flip "
        f"p: the exact permutation test of the same hypothesis (no normality; it cannot fall below 2/2^n, so a "
        f"verdict at alpha needs 2/2^n < alpha). A won: seeds where A beat B, Clopper-Pearson 95% interval. "
        f"MDE: the smallest true difference the row's test finds with 80% power at its seeds and its level "
        f"(family alpha / family size). Budget: pretraining FLOPs and steps (seconds shown, never used)."
    )


def read_claims(paths: list[str | Path]) -> pd.DataFrame:
    """Concatenate per-study claim files (``vmae table`` output), checking their columns and claims."""
    parts = []
    for path in map(Path, paths):
        try:
            part = pd.read_csv(path, dtype={c: str for c in ("a", "b", "target", "protocol", "premise")},
                               keep_default_na=False, na_values={c: [""] for c in NUMERIC_COLUMNS})
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
            raise ClaimsError(f"{path}: cannot read claims ({err})") from None
        if missing := set(ROW_COLUMNS) - set(part.columns):
            raise ClaimsError(f"{path}: missing columns {sorted(missing)}; expected a `vmae table` *_claims.csv")
        if unknown := set(part["claim"]) - set(CLAIM_KEYS):
            raise ClaimsError(f"{path}: unknown claims {sorted(unknown)}; expected some of {list(CLAIM_KEYS)}")
        parts.append(part[ROW_COLUMNS])
    if not parts:
        raise ClaimsError("no claims files given")
    return pd.concat(parts, ignore_index=True)


def write_claims(rows: pd.DataFrame, out_csv: str | Path) -> Path:
    """``out_csv`` and its Markdown beside it, with the verdict rule written above the table."""
    out_csv = Path(out_csv)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    rows.to_csv(out_csv, index=False)
    md = out_csv.with_suffix(".md")
    md.write_text(f"## The paper's claims\n\n{rule_text(rows)}\n\n{markdown(display(rows))}\n")
    return md


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("claims", nargs="+", help="per-study claim files (results/table_<study>_claims.csv)")
    parser.add_argument("--out", required=True, help="output CSV (the Markdown goes beside it, .md)")


def main(args: argparse.Namespace) -> int:
    rows = finalise(read_claims(args.claims))
    md = write_claims(rows, args.out)
    print(f"{len(rows)} claims -> {args.out}, {md}")
    print(display(rows).to_string(index=False))
    return 0
