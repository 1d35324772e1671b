"""`vmae claims STUDY_CLAIMS.csv... --out results/table_claims.csv`: a verdict on each claim of the paper.

``evaluate(study, records)`` turns one study's evaluation records (vmae.report.tables) into one
row per claim of ``vmae.report.studies.CLAIMS`` and per group it applies to (each target, say): the
paired difference A - B over shared seeds with its 95% t-interval, the claim's own test as it is
worded (superiority, non-inferiority, equivalence, trend or interaction; vmae.report.stats), the sign-flip
permutation p of the same hypothesis, the seeds A won, the compute each arm got and how the two
budgets compare (``budget``, from FLOPs), and whether the arms meet the claim's premise.

``finalise`` applies the pre-registered rule (the README's "How a claim gets its verdict"): the
graphical procedure of ``vmae.report.procedure`` over the graph of the rows' family written in
``vmae.report.studies`` (``FAMILIES``: the paper's claims, ``RULE_INITIAL`` and ``RULE_EDGES``; the
masking regime's own fixed sequence) gives each claim its level; a row is
decided when the rule's p-value (the larger of the t-test's and the sign-flip test's) is below its
level, Holm within the claim's rows. Controls (``role: control``) are design checks outside it, each
at ``ALPHA``. A row whose arms fail the claim's premise is "not tested: premise"; a claim none of
whose rows can be tested is out of the design and passes its share on, except the gate: without its
arms, nothing else is tested.

A study's own table cannot see the claims of the studies before it in the graph: it takes the
claims it waits on as decided and says so in each row's note; the all-claims table
(``results/table_claims.csv``) applies the whole rule. The main job's table holds the gate and
Table 2, into which nothing flows from elsewhere, so its verdicts are the all-claims table's.

Every row carries the level it was tested at, the level its seeds were planned for (every claim it
waits on decided), and its minimum detectable effect under the rule (``rule_power.minimum_detectable_effect``).
The command gathers the per-study claim files that `vmae table` writes
(``results/table_<study>_claims.csv``): ``results/table_claims.csv`` and ``.md``. A claim whose arms
the config does not run is listed with no seeds.
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
from vmae.report import procedure, rule_power, stats
from vmae.report.studies import (
    CLAIM_KEYS,
    CLAIMS_BY_KEY,
    CONTROL,
    FAMILIES,
    LARGEST,
    MARGIN_REASON,
    NOT_TARGET,
    PAPER,
    SCRATCH,
    SMALLEST,
    STUDIES,
    TARGET,
    Claim,
    Family,
    claims_of,
)

ROW_COLUMNS = ["claim", "role", "study", "text", "target", "protocol", "a", "b", "test", "margin", "paper",
               "n_seeds", "diff", "diff_ci_low", "diff_ci_high", "sd", "wins", "win_ci_low", "win_ci_high",
               "p_value", "sign_flip_p", "side", "resolution", "differences", "seeds", "compute", "budget",
               "premise"]
NUMERIC_COLUMNS = ["margin", "n_seeds", "diff", "diff_ci_low", "diff_ci_high", "sd", "wins", "win_ci_low",
                   "win_ci_high", "p_value", "sign_flip_p", "side", "resolution"]
VERDICT_COLUMNS = ["p_rule", "level", "planned_level", "mde", "verdict", "note"]
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


def _top1(arm: pd.DataFrame) -> np.ndarray:
    """The top-1 of an arm's records; a missing score stops here, naming the run."""
    for _, record in arm[arm["top1"].isna()].iterrows():
        raise ClaimsError(f"{record['target']}/{record['protocol']}/{record['init'] or 'scratch'} seed "
                          f"{record['seed']}: top-1 is NaN (the run left no score)")
    return arm["top1"].astype(float).to_numpy()


def _scores(arm: pd.DataFrame) -> dict[int, float]:
    """seed -> top-1 of one arm's records."""
    return {int(seed): float(top1) for seed, top1 in zip(arm["seed"], _top1(arm))}


def resolution(*arms: pd.DataFrame) -> float:
    """The step of top-1 in the arms' evaluations: 100 / the fewest videos any of them scored (one
    video); 0 where the metrics do not say."""
    videos = pd.concat([arm["eval_videos"] for arm in arms if "eval_videos" in arm]).dropna() \
        if any("eval_videos" in arm for arm in arms) else pd.Series(dtype=float)
    return 100.0 / float(videos.min()) if len(videos) and videos.min() > 0 else 0.0


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
         test: stats.TestResult, step: float, compute: str, budget_text: str, premise: str | None) -> dict[str, Any]:
    win_low, win_high = d.win_interval()
    return {
        "claim": claim.key, "role": claim.role, "study": claim.study, "text": claim.text,
        "target": where.get("target"), "protocol": where.get("protocol"), "a": a_label, "b": b_label,
        "test": claim.test, "margin": claim.margin, "paper": claim.paper, "n_seeds": d.n, "diff": d.mean,
        "diff_ci_low": d.low, "diff_ci_high": d.high, "sd": d.sd, "wins": d.wins, "win_ci_low": win_low,
        "win_ci_high": win_high, "p_value": test.p_value, "sign_flip_p": test.sign_flip_p, "side": test.side,
        "resolution": step, "differences": ";".join(f"{v:.12g}" for v in d.differences),
        "seeds": ",".join(map(str, d.seeds)), "compute": compute, "budget": budget_text, "premise": premise or "",
    }


def _pair_rows(claim: Claim, where: dict[str, Any], members: pd.DataFrame) -> list[dict[str, Any]]:
    rows = []
    for a_label, a in _by_arm(claim.study, select(members, claim.a)).items():
        for b_label, b in _by_arm(claim.study, select(members, claim.b)).items():
            if a_label == b_label:
                continue
            step = resolution(a, b)
            d = stats.paired_difference(_scores(a), _scores(b), step)
            premise = claim.premise.check(a, b) if claim.premise else None
            rows.append(_row(claim, where, a_label, b_label, d, stats.test(d.differences, claim.test, claim.margin,
                                                                           step),
                             step, f"A: {_compute(a)}; B: {_compute(b)}", budget(a, b), premise))
    return rows


def trend_slopes(arms: pd.DataFrame) -> dict[int, float]:
    """seed -> least-squares slope of top-1 on log2(pretraining videos) over the seed's arms (seeds
    with fewer than two sizes are left out)."""
    slopes = {}
    for seed, part in arms.groupby("seed"):
        x = np.log2(part["pretrain_videos"].astype(float).to_numpy())
        if len(set(x)) >= 2:
            slopes[int(seed)] = float(np.polyfit(x, _top1(part), 1)[0])
    return slopes


def slope_resolution(sizes: list[int], step: float) -> float:
    """The smallest change of a slope on log2(sizes) that one video's change of top-1 (``step``) at
    one size makes: step x |x_i - mean x| / sum (x - mean x)^2, over the sizes where it is not 0."""
    x = np.log2(np.asarray(sizes, dtype=float))
    lever = np.abs(x - x.mean())
    spread = float(((x - x.mean()) ** 2).sum())
    return step * float(lever[lever > 0].min()) / spread if spread > 0 and step > 0 else 0.0


def _trend_rows(claim: Claim, where: dict[str, Any], members: pd.DataFrame) -> list[dict[str, Any]]:
    arms = select(members, claim.a)
    if arms.empty:
        return []
    slopes = trend_slopes(arms)
    sizes = sorted(set(arms["pretrain_videos"].astype(int)))
    step = slope_resolution(sizes, resolution(arms))
    d = stats.paired_difference(slopes, dict.fromkeys(slopes, 0.0), step)
    label = f"{sizes[0]}-{sizes[-1]} videos ({len(sizes)} sizes): slope per doubling"
    premise = claim.premise.check(arms, arms) if claim.premise else None
    by_size = {size: arms[arms["pretrain_videos"] == size] for size in sizes}
    budgets = {size: budget(by_size[sizes[0]], part) for size, part in by_size.items() if size != sizes[0]}
    if set(budgets.values()) <= {"equal steps"}:
        compute, budget_text = f"each size: {_compute(by_size[sizes[0]])}", "equal steps"
    else:
        compute = "; ".join(f"{size} videos: {_compute(part)}" for size, part in by_size.items())
        budget_text = "; ".join(f"{size} vs {sizes[0]} videos: {text}" for size, text in budgets.items())
    return [_row(claim, where, label, "", d, stats.test(d.differences, claim.test, claim.margin, step), step,
                 compute, budget_text, premise)]


def interaction_differences(a_short: pd.DataFrame, b_short: pd.DataFrame, a_long: pd.DataFrame,
                            b_long: pd.DataFrame) -> tuple[dict[int, float], dict[int, float]]:
    """seed -> A - B at the long level, and seed -> A - B at the short one (each over the seeds
    both of its arms ran); their paired difference is the interaction."""
    short = stats.paired_difference(_scores(a_short), _scores(b_short))
    long = stats.paired_difference(_scores(a_long), _scores(b_long))
    return dict(zip(long.seeds, long.differences)), dict(zip(short.seeds, short.differences))


def _interaction_rows(claim: Claim, where: dict[str, Any], members: pd.DataFrame) -> list[dict[str, Any]]:
    """A - B at the largest ``claim.across`` level minus A - B at the smallest, paired by seed (a
    change of one video in any of the four cells moves it by one step of top-1)."""
    levels = sorted(members[claim.across].unique())
    if len(levels) < 2:
        return []
    ends = {level: members[members[claim.across] == level] for level in (levels[0], levels[-1])}
    arms = {level: (_by_arm(claim.study, select(part, claim.a)), _by_arm(claim.study, select(part, claim.b)))
            for level, part in ends.items()}
    (a_short, b_short), (a_long, b_long) = arms[levels[0]], arms[levels[-1]]
    rows = []
    for a_label in [label for label in a_short if label in a_long]:
        for b_label in [label for label in b_short if label in b_long and label != a_label]:
            cells = {level: (arms[level][0][a_label], arms[level][1][b_label]) for level in ends}
            step = resolution(*cells[levels[0]], *cells[levels[-1]])
            long, short = interaction_differences(*cells[levels[0]], *cells[levels[-1]])
            d = stats.paired_difference(long, short, step)
            compute = "; ".join(f"{claim.across} {level:g}: A: {_compute(a)}; B: {_compute(b)}"
                                for level, (a, b) in cells.items())
            budget_text = "; ".join(f"{claim.across} {level:g}: {budget(a, b)}" for level, (a, b) in cells.items())
            rows.append(_row(claim, where, f"{a_label} - {b_label} at {claim.across} {levels[-1]:g}",
                             f"{a_label} - {b_label} at {claim.across} {levels[0]:g}", d,
                             stats.test(d.differences, claim.test, claim.margin, step), step, compute, budget_text,
                             None))
    return rows


def _claim_rows(claim: Claim, records: pd.DataFrame) -> list[dict[str, Any]]:
    study = STUDIES[claim.study]
    group = [c for c in study.group if c != claim.across]
    rows_of = {stats.TREND: _trend_rows, stats.INTERACTION: _interaction_rows}.get(claim.test, _pair_rows)
    rows = []
    for values, members in select(records, claim.fixed).groupby(group, sort=False, dropna=False):
        rows += rows_of(claim, dict(zip(group, values)), members)
    return rows


def evaluate(study: str, records: pd.DataFrame) -> pd.DataFrame:
    """One row per claim of ``study`` and group it applies to (before the family rule); a claim the
    records cannot test (its arms were not run) gets one row with no seeds."""
    rows = []
    for claim in claims_of(study):
        found = _claim_rows(claim, records)
        rows += found or [{"claim": claim.key, "role": claim.role, "study": study, "text": claim.text,
                           "test": claim.test, "margin": claim.margin, "paper": claim.paper, "n_seeds": 0,
                           "wins": 0, "differences": "", "compute": "arms not in this config", "premise": ""}]
    return pd.DataFrame(rows, columns=ROW_COLUMNS)


# --------------------------------------------------------------------------- the rule


def family_of(rows: pd.DataFrame) -> Family:
    """The one family of ``rows``' claims (the paper's for no rows); a mix is an error: each family
    is decided by its own rule, in its own table."""
    names = {CLAIMS_BY_KEY[key].family for key in rows["claim"]} or {PAPER}
    if len(names) > 1:
        raise ClaimsError(f"claims of the families {sorted(names)} in one table; each family has its own rule and "
                          "table (the masking regime's: results/table_masking_regime_claims.csv)")
    return FAMILIES[names.pop()]


def _graph(family: Family) -> procedure.Graph:
    return procedure.Graph.build(family.keys, family.initial, family.edges)


def _testable(row: pd.Series) -> bool:
    return row["premise"] == "" and row["n_seeds"] > 0


def _row_test(row: pd.Series) -> procedure.RowTest:
    p = max(float(row["p_value"]), float(row["sign_flip_p"]))
    return procedure.RowTest(p, int(row["n_seeds"]) >= stats.MIN_SEEDS and not math.isnan(p))


def _design(rows: pd.DataFrame, family: Family) -> tuple[dict[str, list[int]], set[str], set[str]]:
    """The rule's nodes in ``rows``: claim -> the indices of its testable rows; the claims out of the
    design (none of their rows testable, or not in this table when the gate is); the claims taken
    as decided (a table without the gate: the claims its rows wait on)."""
    rule_rows = rows[rows["role"] != CONTROL]
    nodes = {key: [i for i in part.index if _testable(rows.loc[i])] for key, part in rule_rows.groupby("claim")}
    removed = {key for key, indices in nodes.items() if not indices and key != family.gate}
    assumed: set[str] = set()
    absent = {key for key in family.keys if CLAIMS_BY_KEY[key].role != CONTROL} - set(nodes)
    if family.gate is None or family.gate in nodes:
        removed |= absent  # not in this config: out of the design
    else:
        waits = set().union(*(procedure.ancestors(key, family.edges) for key in nodes)) if nodes else set()
        assumed = absent & waits
    return {k: v for k, v in nodes.items() if k not in removed}, removed, assumed


def _levels(rows: pd.DataFrame, family: Family) -> tuple[pd.Series, pd.Series, pd.Series, set[str], set[str]]:
    """Each row's level and whether it was rejected, under the graph (controls: alone at ALPHA);
    each row's planned level (Bonferroni over its claim's rows at the level of its claim once every
    claim it waits on is decided); the claims decided and those assumed decided."""
    level = pd.Series(0.0, index=rows.index)
    rejected = pd.Series(False, index=rows.index)
    planned = pd.Series(math.nan, index=rows.index)
    nodes, removed, assumed = _design(rows, family)
    result = procedure.run(_graph(family), stats.ALPHA, {key: [_row_test(rows.loc[i]) for i in indices]
                                                    for key, indices in nodes.items()}, removed, assumed)
    for key, indices in nodes.items():
        plan = procedure.planning_level(key, _graph(family), stats.ALPHA, family.edges, removed) / max(len(indices), 1)
        for position, i in enumerate(indices):
            outcome = result.rows.get((key, position), procedure.Outcome(0.0, False))
            level[i], rejected[i], planned[i] = outcome.level, outcome.rejected, plan
    for i in rows.index[(rows["role"] == CONTROL)]:
        if _testable(rows.loc[i]):
            level[i] = planned[i] = stats.ALPHA
            rejected[i] = _row_test(rows.loc[i]).testable and _row_test(rows.loc[i]).p < stats.ALPHA
    return level, rejected, planned, set(result.decided), assumed


def _mde(row: pd.Series) -> float:
    level = row["level"] if row["level"] > 0 else row["planned_level"]
    if math.isnan(level) or not row["n_seeds"]:
        return math.nan
    return rule_power.minimum_detectable_effect(float(row["sd"]), int(row["n_seeds"]), float(level), row["test"],
                                           float(row["margin"]))


def _verdict(row: pd.Series, rejected: bool, gate_decided: bool) -> str:
    if row["premise"]:
        return stats.NOT_TESTED_PREMISE
    if not gate_decided and row["role"] == "claim":
        return stats.NOT_TESTED_GATE
    if row["n_seeds"] == 0:
        return stats.INCONCLUSIVE
    if row["level"] == 0:
        return stats.NOT_REACHED
    return stats.verdict(row["test"], rejected, int(row["side"]))


def _note(row: pd.Series, decided: set[str], assumed: set[str], family: Family) -> str:
    if row["premise"]:
        return f"premise: {row['premise']}"
    if row["n_seeds"] == 0:
        return "arms not run"
    if row["verdict"] == stats.NOT_TESTED_GATE:
        return "the gate (VideoMAE > scratch) was not decided"
    if row["verdict"] == stats.NOT_REACHED:
        waits = sorted(procedure.ancestors(row["claim"], family.edges) - decided - assumed)
        return f"waits on {', '.join(waits)}"
    notes = []
    if row["n_seeds"] < stats.fewest_seeds(row["level"]):
        notes.append(f"fewer than the {stats.fewest_seeds(row['level'])} seeds a verdict needs at level "
                     f"{row['level']:.3g}")
    elif math.isnan(row["p_value"]):
        notes.append("no spread in the paired differences: the t-test says nothing")
    if row["role"] == CONTROL:
        notes.append("control: a design check outside the family, at 0.05")
    waits = procedure.ancestors(row["claim"], family.edges) & assumed
    if waits:
        notes.append(f"conditional: takes {', '.join(sorted(waits))} as decided; results/table_claims.md "
                     "applies the whole rule")
    return "; ".join(notes)


def finalise(rows: pd.DataFrame) -> pd.DataFrame:
    """The rule (module docstring) over ``rows``: each row's rule p-value, the level it was tested at
    and the level it was planned for, its minimum detectable effect, verdict and a note; in the
    order of ``CLAIMS``; all rows of one family (``family_of``)."""
    family = family_of(rows)
    rows = rows.copy().reset_index(drop=True)
    rows["premise"] = rows["premise"].fillna("")
    rows["differences"] = rows["differences"].fillna("") if "differences" in rows else ""
    rows["p_rule"] = rows[["p_value", "sign_flip_p"]].astype(float).max(axis=1, skipna=False)
    rows["level"], rejected, rows["planned_level"], decided, assumed = _levels(rows, family)
    gate_decided = family.gate is None or family.gate in decided or family.gate in assumed
    rows["verdict"] = [_verdict(row, bool(rejected[i]), gate_decided) for i, row in rows.iterrows()]
    rows["mde"] = [_mde(row) for _, row in rows.iterrows()]
    rows["note"] = [_note(row, decided, assumed, family) for _, row in rows.iterrows()]
    order = {key: i for i, key in enumerate(CLAIM_KEYS)}
    rows = rows.sort_values("claim", key=lambda c: c.map(order), kind="stable").reset_index(drop=True)
    for column in ("diff", "diff_ci_low", "diff_ci_high", "mde"):
        rows[column] = rows[column].astype(float).round(2)
    for column in ("win_ci_low", "win_ci_high"):
        rows[column] = rows[column].astype(float).round(4)
    # what the all-claims table tests again (p), plans from (sd) and compares with (levels):
    # 12 significant digits, so re-reading a study's file gives the same verdicts
    for column in ("p_value", "sign_flip_p", "p_rule", "sd", "level", "planned_level", "resolution"):
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


def _p(value: float) -> str:
    return "" if pd.isna(value) else f"{value:.3g}"


def _mde_text(r: pd.Series) -> str:
    """The MDE as its test reads it (vmae.report.rule_power.minimum_detectable_effect)."""
    mde = r["mde"]
    if pd.isna(mde):
        return "equal arms not shown equivalent" if r["test"] == stats.EQUIVALENCE and r["n_seeds"] else ""
    if math.isinf(mde):
        return "none at these seeds"
    return {stats.NON_INFERIORITY: f"A - B >= {mde:+.1f}", stats.EQUIVALENCE: f"|A - B| <= {mde:.1f}",
            stats.TREND: f"slope {mde:.1f}", stats.INTERACTION: f"|change of A - B| {mde:.1f}"
            }.get(r["test"], f"|A - B| {mde:.1f}")


def _test(r: pd.Series) -> str:
    claim = CLAIMS_BY_KEY[r["claim"]]
    return f"{claim.test}: {claim.wording}"


def display(rows: pd.DataFrame) -> pd.DataFrame:
    """The claims as a reader wants them: claim, test, paper, our paired difference with its interval,
    the seeds won, both tests' p-values, the level the rule tested the row at, the verdict and what the
    run could detect."""
    def arms(r: pd.Series) -> str:
        return "" if pd.isna(r["a"]) else (f"{r['a']} - {r['b']}" if r["b"] else r["a"])

    return pd.DataFrame({
        "claim": rows["text"], "target": rows["target"].astype(object).fillna(""),
        "protocol": rows["protocol"].astype(object).fillna(""), "A - B": rows.apply(arms, axis=1),
        "test": rows.apply(_test, axis=1), "paper (A vs B)": rows["paper"],
        "ours: A - B, 95% CI (points)": rows.apply(_effect, axis=1), "seeds": rows["n_seeds"],
        "A won (95% CI)": rows.apply(_wins, axis=1),
        "p (t-test)": rows["p_value"].map(_p), "p (sign-flip)": rows["sign_flip_p"].map(_p),
        "level": rows["level"].map(_p), "planned level": rows["planned_level"].map(_p),
        "verdict": rows["verdict"], "MDE (80%)": rows.apply(_mde_text, axis=1), "note": rows["note"].fillna(""),
        "budget": rows["budget"].astype(object).fillna(""), "compute": rows["compute"],
    })


def rule_text(rows: pd.DataFrame) -> str:
    """The verdict rule, written above every claims table."""
    counts = rows["verdict"].value_counts()
    summary = ", ".join(f"{counts[v]} {v}" for v in stats.VERDICTS if counts.get(v, 0))
    return (
        f"{len(rows)} rows: {summary}. Effect: mean paired difference A - B in top-1 points over the seeds both "
        f"arms ran, with its 95% interval ({stats.INTERVAL}). Each claim is tested as it is worded: superiority "
        f"(two-sided paired t-test of 0), non-inferiority (of -margin), equivalence (two one-sided tests), a "
        f"trend (per-seed slope of top-1 on log2 videos) or an interaction (per-seed A - B at the longest "
        f"length minus A - B at the shortest), and by the sign-flip permutation test of the same "
        f"hypothesis (no normality; exact up to {stats.EXACT_SIGN_FLIP_SEEDS} seeds; it cannot fall below 2/2^n). "
        f"Margin: {MARGIN_REASON} The rule, fixed before any run: a graphical procedure (Bretz et al. 2009) holds "
        f"the family-wise error of every verdict at {stats.ALPHA:g}. {family_of(rows).rule} A row "
        f"is decided when both p-values are below its level (Holm over a claim's rows) with at least "
        f"{stats.MIN_SEEDS} seeds: holds / non-inferior / equivalent, or reversed on the other side; otherwise "
        f"inconclusive, not reached (no level came to it), or not tested (its gate undecided, its premise "
        f"failed). Controls alone at {stats.ALPHA:g}, outside the family. Differences that do not differ by "
        f"one test video have no spread and get no verdict. A won: seeds where A beat B, Clopper-Pearson 95% "
        f"interval. Planned level: the row's level once every claim it waits on is decided. MDE: what the rule "
        f"decides with 80% power at the row's seeds and level (or planned level), simulated with both tests "
        f"(superiority, trend: the smallest true effect; non-inferiority: the smallest true A - B shown "
        f"non-inferior; equivalence: the largest true |A - B| shown equivalent). Budget: pretraining FLOPs and "
        f"steps (seconds shown, never used)."
    )


def read_claims(paths: list[str | Path]) -> pd.DataFrame:
    """Concatenate per-study claim files (``vmae table`` output), checking their columns and claims."""
    parts = []
    for path in map(Path, paths):
        try:
            part = pd.read_csv(path, dtype={c: str for c in ("a", "b", "target", "protocol", "premise", "differences")},
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
