"""`vmae power CLAIMS.csv... --out power.csv`: how many paired seeds each claim needs, from a pilot.

Reads the claims files of a pilot run (``results/table_<study>_claims.csv`` or
``results/table_claims.csv`` of a run on validation data with pilot seeds) and, for every tested
row, takes the paired differences' standard deviation as the planning value. The seeds a claim
needs for 80% power (vmae.report.stats.seeds_needed) are computed at its smallest effect of
interest, the margin written down with the claim (vmae.report.studies: 3 points), at the level the
family rule gives the row (its family's alpha divided by the family's size, a Bonferroni bound on
Holm's first step), and never fewer than a verdict needs there (``stats.fewest_seeds``). Beside it:
the seeds needed at the pilot's own observed difference, for reference only (an observed effect is
not a planning value). Writes the CSV and a Markdown table beside it.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import pandas as pd

from vmae.report import claims, stats

COLUMNS = ["claim", "study", "target", "a", "b", "test", "margin", "family", "alpha", "pilot_seeds", "pilot_diff",
           "pilot_sd", "seeds_needed", "seeds_at_pilot_effect"]


def _needed(row: pd.Series, effect: float, alpha: float) -> float:
    """Seeds for 80% power at a true difference ``effect`` under the row's test."""
    if row["test"] in (stats.NON_INFERIORITY, stats.EQUIVALENCE):
        return stats.seeds_needed(effect, row["sd"], alpha, kind=row["test"], margin=row["margin"])
    return stats.seeds_needed(effect, row["sd"], alpha)


def plan(rows: pd.DataFrame) -> pd.DataFrame:
    """One planning row per tested claim row of a pilot (``claims.finalise`` output)."""
    tested = rows[(rows["premise"].fillna("") == "") & rows["sd"].notna()].copy()
    sizes = tested.groupby("family").size()
    out = []
    for _, row in tested.iterrows():
        size = 1 if row["family"] == "control" else int(sizes[row["family"]])
        alpha = float(row["alpha"]) / size
        planned = 0.0 if row["test"] in (stats.NON_INFERIORITY, stats.EQUIVALENCE) else float(row["margin"])
        out.append({
            "claim": row["claim"], "study": row["study"], "target": row["target"], "a": row["a"], "b": row["b"],
            "test": row["test"], "margin": row["margin"], "family": row["family"], "alpha": round(alpha, 5),
            "pilot_seeds": int(row["n_seeds"]), "pilot_diff": row["diff"], "pilot_sd": row["sd"],
            "seeds_needed": _needed(row, planned, alpha),
            "seeds_at_pilot_effect": _needed(row, abs(float(row["diff"])), alpha),
        })
    return pd.DataFrame(out, columns=COLUMNS)


def _count(value: float) -> str:
    return "no number of seeds" if math.isinf(value) else str(int(value))


def write_plan(table: pd.DataFrame, out_csv: str | Path) -> Path:
    out_csv = Path(out_csv)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out_csv, index=False)
    shown = table.assign(seeds_needed=table["seeds_needed"].map(_count),
                         seeds_at_pilot_effect=table["seeds_at_pilot_effect"].map(_count))
    md = out_csv.with_suffix(".md")
    md.write_text(
        "## Paired seeds for 80% power, from the pilot's paired SDs\n\n"
        f"At each claim's smallest effect of interest (its margin; non-inferiority and equivalence: equal arms), "
        f"at the row's level (family alpha / family size), never fewer than a verdict needs "
        f"(the sign-flip p must reach that level). `seeds_at_pilot_effect`: the same at the pilot's own "
        f"difference, for reference.\n\n{claims.markdown(shown)}\n")
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
