"""`vmae claims STUDY_CLAIMS.csv... --out results/table_claims.csv`: a verdict on each claim of the paper.

``evaluate(study, records)`` turns one study's evaluation records (vmae.report.tables) into one
row per claim of ``vmae.report.studies.CLAIMS`` and per group it applies to (each target, say): the
paired difference A - B over shared seeds with its 95% t-interval, the two-sided paired t-test's
p-value, P(A > B), the compute each arm got and how the two budgets compare (``budget``).
``finalise`` Holm-adjusts the p-values over the rows it is given and applies the verdict rule of
vmae.report.stats. The command gathers the
per-study claim files that `vmae table` writes (``results/table_<study>_claims.csv``) and adjusts
over all of them: ``results/table_claims.csv`` and ``.md``. A claim whose arms the config does not
run is listed with no seeds and the verdict "inconclusive".
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
from vmae.report.studies import CLAIM_KEYS, LARGEST, NOT_TARGET, SMALLEST, STUDIES, TARGET, Claim, claims_of

COLUMNS = ["claim", "study", "text", "target", "protocol", "a", "b", "paper", "n_seeds", "diff", "diff_ci_low",
           "diff_ci_high", "p_value", "prob_improvement", "seeds", "compute", "budget", "p_holm", "verdict"]


class ClaimsError(UserError, ValueError):
    """A claims file is missing, malformed or names an unknown claim."""


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
        return values != part["target"]
    if isinstance(wanted, float):
        return np.isclose(values.astype(float), wanted)
    return values == wanted


def select(part: pd.DataFrame, selector: Mapping[str, Any]) -> pd.DataFrame:
    """The rows of one group that an arm's selector picks."""
    keep = pd.Series(True, index=part.index)
    for column, wanted in selector.items():
        keep &= _matches(part, column, wanted)
    return part[keep]


def _compute(arm: pd.DataFrame) -> str:
    """'350 steps, 11200 clips, 115 s' of an arm's pretraining (mean over seeds); scratch: none."""
    steps = arm["pretrain_steps"].mean()
    if math.isnan(steps):
        return "no pretraining"
    return f"{steps:.0f} steps, {arm['pretrain_clips'].mean():.0f} clips, {arm['pretrain_s'].mean():.0f} s"


def budget(a: pd.DataFrame, b: pd.DataFrame) -> str:
    """How the two arms' pretraining compute compares, from what they ran (means over seeds):
    'equal steps' (within 1 %), 'equal compute' (training seconds within 10 %), else both ratios
    B / A; 'A only pretrained' / 'B only pretrained' / 'neither pretrained'."""
    a_steps, b_steps = a["pretrain_steps"].mean(), b["pretrain_steps"].mean()
    if math.isnan(a_steps):
        return "neither pretrained" if math.isnan(b_steps) else "B only pretrained"
    if math.isnan(b_steps):
        return "A only pretrained"
    steps_ratio = b_steps / a_steps
    seconds_ratio = b["pretrain_s"].mean() / a["pretrain_s"].mean()
    if abs(steps_ratio - 1) <= 0.01:
        return "equal steps"
    if abs(seconds_ratio - 1) <= 0.10:
        return f"equal compute (B: {steps_ratio:.2f}x A's steps, {seconds_ratio:.2f}x its seconds)"
    return f"B: {steps_ratio:.2f}x A's steps, {seconds_ratio:.2f}x its seconds"


def _by_arm(study: str, records: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """An arm's selected records split by setting (a NOT_TARGET selector may pick several)."""
    labels = records.apply(STUDIES[study].label, axis=1) if len(records) else pd.Series(dtype=str)
    return {label: part for label, part in records.groupby(labels, sort=False)}


def _scores(arm: pd.DataFrame) -> dict[int, float]:
    """seed -> top-1 of one arm's records."""
    return {int(seed): float(top1) for seed, top1 in zip(arm["seed"], arm["top1"])}


def _claim_rows(claim: Claim, records: pd.DataFrame) -> list[dict[str, Any]]:
    study = STUDIES[claim.study]
    part = select(records, claim.fixed)
    rows = []
    for group, members in part.groupby(list(study.group), sort=False, dropna=False):
        where = dict(zip(study.group, group))
        for a_label, a in _by_arm(claim.study, select(members, claim.a)).items():
            for b_label, b in _by_arm(claim.study, select(members, claim.b)).items():
                if a_label == b_label:
                    continue
                d = stats.paired_difference(_scores(a), _scores(b))
                rows.append({
                    "claim": claim.key, "study": claim.study, "text": claim.text, "target": where.get("target"),
                    "protocol": where.get("protocol"), "a": a_label, "b": b_label, "paper": claim.paper,
                    "n_seeds": d.n, "diff": d.mean, "diff_ci_low": d.low, "diff_ci_high": d.high,
                    "p_value": d.p_value, "prob_improvement": d.prob_improvement,
                    "seeds": ",".join(map(str, d.seeds)), "compute": f"A: {_compute(a)}; B: {_compute(b)}",
                    "budget": budget(a, b),
                })
    return rows


def evaluate(study: str, records: pd.DataFrame) -> pd.DataFrame:
    """One row per claim of ``study`` and group it applies to (before Holm); a claim the records
    cannot test (its arms were not run) gets one row with no seeds."""
    rows = []
    for claim in claims_of(study):
        found = _claim_rows(claim, records)
        rows += found or [{"claim": claim.key, "study": study, "text": claim.text, "paper": claim.paper,
                           "n_seeds": 0, "compute": "arms not in this config"}]
    return pd.DataFrame(rows, columns=COLUMNS[:-2])


def finalise(rows: pd.DataFrame) -> pd.DataFrame:
    """Holm-adjusted p-values over ``rows`` and each row's verdict, in the order of ``CLAIMS``."""
    rows = rows.copy()
    rows["p_holm"] = stats.holm(rows["p_value"].astype(float).to_list())
    rows["verdict"] = [stats.verdict(d, p, int(n)) for d, p, n in
                       zip(rows["diff"].astype(float), rows["p_holm"], rows["n_seeds"])]
    order = {key: i for i, key in enumerate(CLAIM_KEYS)}
    rows = rows.sort_values("claim", key=lambda c: c.map(order), kind="stable").reset_index(drop=True)
    for column in ("diff", "diff_ci_low", "diff_ci_high"):
        rows[column] = rows[column].astype(float).round(2)
    for column in ("p_value", "prob_improvement", "p_holm"):
        rows[column] = rows[column].astype(float).round(4)
    return rows[COLUMNS]


def markdown(table: pd.DataFrame) -> str:
    """A table as Markdown, empty cells for missing values."""
    return table.astype(object).where(table.notna(), "").to_markdown(index=False)


def display(rows: pd.DataFrame) -> pd.DataFrame:
    """The claims as a reader wants them: claim, paper, our paired difference with its interval."""
    def effect(r: pd.Series) -> str:
        if r["n_seeds"] == 0 or pd.isna(r["diff"]):
            return "not run"
        if pd.isna(r["diff_ci_low"]):
            return f"{r['diff']:+.1f}"
        return f"{r['diff']:+.1f} [{r['diff_ci_low']:+.1f}, {r['diff_ci_high']:+.1f}]"

    def arms(r: pd.Series) -> str:
        return "" if pd.isna(r["a"]) else f"{r['a']} - {r['b']}"

    return pd.DataFrame({
        "claim": rows["text"], "target": rows["target"].astype(object).fillna(""),
        "protocol": rows["protocol"].astype(object).fillna(""),
        "A - B": rows.apply(arms, axis=1), "paper (A vs B)": rows["paper"],
        "ours: A - B, 95% CI (points)": rows.apply(effect, axis=1), "seeds": rows["n_seeds"],
        "P(A > B)": rows["prob_improvement"], "p (Holm)": rows["p_holm"], "verdict": rows["verdict"],
        "budget": rows["budget"].astype(object).fillna(""), "compute": rows["compute"],
    })


def read_claims(paths: list[str | Path]) -> pd.DataFrame:
    """Concatenate per-study claim files (``vmae table`` output), checking their columns and claims."""
    parts = []
    for path in map(Path, paths):
        try:
            part = pd.read_csv(path)
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
            raise ClaimsError(f"{path}: cannot read claims ({err})") from None
        if missing := set(COLUMNS[:-2]) - set(part.columns):
            raise ClaimsError(f"{path}: missing columns {sorted(missing)}; expected a `vmae table` *_claims.csv")
        if unknown := set(part["claim"]) - set(CLAIM_KEYS):
            raise ClaimsError(f"{path}: unknown claims {sorted(unknown)}; expected some of {list(CLAIM_KEYS)}")
        parts.append(part[COLUMNS[:-2]])
    if not parts:
        raise ClaimsError("no claims files given")
    return pd.concat(parts, ignore_index=True)


def write_claims(rows: pd.DataFrame, out_csv: str | Path) -> Path:
    """``out_csv`` and its Markdown beside it, with the verdict rule written above the table."""
    out_csv = Path(out_csv)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    rows.to_csv(out_csv, index=False)
    md = out_csv.with_suffix(".md")
    counts = rows["verdict"].value_counts()
    summary = ", ".join(f"{counts.get(v, 0)} {v}" for v in stats.VERDICTS)
    md.write_text(
        "## The paper's claims\n\n"
        f"{len(rows)} rows: {summary}. Effect: mean paired difference A - B in top-1 points over the seeds "
        f"both arms ran, with its 95% interval ({stats.INTERVAL}); P(A > B): probability of improvement over "
        f"seeds (rliable's). Verdict: **holds** if the two-sided paired t-test's p-value, Holm-adjusted over "
        f"the {int(rows['p_value'].notna().sum())} tested rows, is below {stats.ALPHA:g} and A - B > 0; "
        f"**reversed** if below {stats.ALPHA:g} and A - B < 0; **inconclusive** otherwise or with fewer than "
        f"{stats.MIN_SEEDS} paired seeds. Compute: each arm's pretraining (mean over seeds).\n\n"
        f"{markdown(display(rows))}\n"
    )
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

