"""`vmae power CLAIMS.csv... --out power.csv`: how many paired seeds each claim needs, from a pilot.

Reads the claims files of a pilot run (``results/table_<study>_claims.csv`` or
``results/table_claims.csv`` of a run on validation data with pilot seeds) and plans every tested
row with the rule as it decides (vmae.report.stats: both tests, simulated), at the level the rule
gives the row once every claim it waits on is decided (``planned_level``, vmae.report.claims):

- the planning SD is conservative: the larger of the 80% upper confidence bound of the row's own
  SD (a pilot of 3-4 seeds has 2-3 degrees of freedom) and the SD pooled over the study's rows of
  the same kind (not trends, whose slopes have other units);
- ``seeds_needed``: seeds for 80% power at the claim's smallest effect of interest (its margin;
  non-inferiority and equivalence: equal arms) at the planning SD; ``seeds_at_pilot_sd`` the same
  at the pilot's point SD; ``seeds_at_pilot_effect`` at the pilot's own difference, for reference
  only (an observed effect is not a planning value; a non-inferiority whose pilot difference is
  below -margin is never shown);
- ``null_rate``: how often the rule rejects a true null whose differences have the pilot's shape
  (``rule_power.null_rejection_rate``): near or below the level, the rule keeps its level for that
  shape; well above it, skew breaks it.

Writes the CSV and a Markdown table beside it.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import pandas as pd

from vmae.report import claims, rule_power, stats

COLUMNS = ["claim", "study", "target", "a", "b", "test", "margin", "planned_level", "pilot_seeds", "pilot_diff",
           "pilot_sd", "sd_upper", "pooled_sd", "planning_sd", "seeds_needed", "seeds_at_pilot_sd",
           "seeds_at_pilot_effect", "power_at_seeds_needed", "null_rate"]


def _planned_effect(row: pd.Series) -> float:
    """The effect a claim is planned for: its margin, or equal arms for non-inferiority / equivalence."""
    return 0.0 if row["test"] in (stats.NON_INFERIORITY, stats.EQUIVALENCE) else float(row["margin"])


def _pooled_sd(rows: pd.DataFrame) -> pd.Series:
    """Per row: the SD pooled over its study's tested rows of the same kind of effect (differences
    of top-1, or slopes), weighted by degrees of freedom, and its degrees of freedom."""
    kind = np.where(rows["test"] == stats.TREND, "slope", "top-1")
    df = rows["n_seeds"].astype(float) - 1
    variance = df * rows["sd"].astype(float) ** 2
    groups = [rows["study"], pd.Series(kind, index=rows.index)]
    pooled = np.sqrt(variance.groupby(groups).transform("sum") / df.groupby(groups).transform("sum"))
    return pooled, df.groupby(groups).transform("sum")


def _differences(row: pd.Series) -> list[float]:
    text = row.get("differences", "")
    return [float(v) for v in str(text).split(";")] if isinstance(text, str) and text else []


def plan(rows: pd.DataFrame) -> pd.DataFrame:
    """One planning row per tested row of a pilot (``claims.finalise`` output)."""
    tested = rows[(rows["premise"].fillna("") == "") & rows["sd"].notna() & (rows["sd"] > 0)
                  & (rows["planned_level"] > 0)].copy()
    pooled, pooled_df = _pooled_sd(tested)
    out = []
    for i, row in tested.iterrows():
        level, n, sd = float(row["planned_level"]), int(row["n_seeds"]), float(row["sd"])
        upper = rule_power.sd_upper_bound(sd, n)
        pooled_upper = rule_power.sd_upper_bound(float(pooled[i]), int(pooled_df[i]) + 1)
        planning = max(upper, pooled_upper)
        effect = _planned_effect(row)
        kind, margin = row["test"], float(row["margin"])
        needed = rule_power.seeds_needed(effect, planning, level, kind, margin)
        out.append({
            "claim": row["claim"], "study": row["study"], "target": row["target"], "a": row["a"], "b": row["b"],
            "test": kind, "margin": margin, "planned_level": round(level, 6), "pilot_seeds": n,
            "pilot_diff": row["diff"], "pilot_sd": round(sd, 3), "sd_upper": round(upper, 3),
            "pooled_sd": round(float(pooled[i]), 3), "planning_sd": round(planning, 3), "seeds_needed": needed,
            "seeds_at_pilot_sd": rule_power.seeds_needed(effect, sd, level, kind, margin),
            "seeds_at_pilot_effect": rule_power.seeds_needed(float(row["diff"]), sd, level, kind, margin),
            "power_at_seeds_needed": (round(rule_power.rule_power(effect, planning, int(needed), level, kind, margin), 3)
                                      if needed <= rule_power.SIMULATED_MAX_SEEDS else math.nan),
            "null_rate": round(rule_power.null_rejection_rate(_differences(row), kind, margin, level), 4),
        })
    return pd.DataFrame(out, columns=COLUMNS)


def _count(value: float) -> str:
    if math.isinf(value):
        return "never"
    return f"> {rule_power.MAX_PLANNED_SEEDS}" if value > rule_power.MAX_PLANNED_SEEDS else str(int(value))


def write_plan(table: pd.DataFrame, out_csv: str | Path) -> Path:
    out_csv = Path(out_csv)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out_csv, index=False)
    shown = table.assign(**{c: table[c].map(_count) for c in ("seeds_needed", "seeds_at_pilot_sd",
                                                              "seeds_at_pilot_effect")})
    md = out_csv.with_suffix(".md")
    md.write_text(
        "## Paired seeds for 80% power under the rule, from the pilot's paired differences\n\n"
        f"Simulated with both tests at each row's planned level (every claim it waits on decided; Holm's first "
        f"step over its claim's rows), at the claim's smallest effect of interest (its margin; non-inferiority "
        f"and equivalence: equal arms), from the planning SD: the larger of the {rule_power.PLANNING_CONFIDENCE:.0%} "
        f"upper bound of the row's own SD and the SD pooled over its study. `seeds_at_pilot_sd`: the same at the "
        f"pilot's point SD; `seeds_at_pilot_effect`: at the pilot's own difference, for reference (never: no "
        f"number of seeds shows it). `null_rate`: the rule's rejection rate of a true null with the pilot's "
        f"differences' shape (compare with the planned level).\n\n{claims.markdown(shown)}\n")
    return md


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("claims", nargs="+", help="claims files of a pilot run (results/table_<study>_claims.csv)")
    parser.add_argument("--out", required=True, help="output CSV (the Markdown goes beside it, .md)")


def main(args: argparse.Namespace) -> int:
    table = plan(claims.finalise(claims.read_claims(args.claims)))
    md = write_plan(table, args.out)
    print(f"{len(table)} claim rows -> {args.out}, {md}")
    print(table.to_string(index=False))
    return 0
