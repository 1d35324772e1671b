"""`vmae cost results/benchmarks [--out cost.csv]`: what each kind of job cost, from Snakemake's
benchmark files.

Every training rule writes ``results/benchmarks/<kind>/...tsv`` (Snakemake's ``benchmark:``): the
job's wall seconds (``s``) and the CPU seconds its processes used (``cpu_time``). Wall seconds
depend on what else the machine ran; CPU seconds much less, so a study's cost is read from them.
Pretraining jobs are split by method (the run name's first word, e.g. ``videomae``). Prints and
writes one row per kind: jobs, CPU-s in all, CPU-s per job (mean), wall seconds in all.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from vmae.errors import UserError

COLUMNS = ["kind", "jobs", "cpu_s", "cpu_s_per_job", "wall_s"]


class CostError(UserError, ValueError):
    """A benchmarks folder is missing or holds no benchmark file."""


def _kind(path: Path, root: Path) -> str:
    """'pretrain/<method>' (e.g. 'pretrain/videomae'), 'finetune', 'linprobe', ... of one benchmark file."""
    kind = path.relative_to(root).parts[0]
    if kind == "pretrain":
        return f"pretrain/{path.stem.split('_', 1)[0]}"
    return kind


def job_costs(root: str | Path) -> pd.DataFrame:
    """One row per benchmark file under ``root``: kind, path, wall s, CPU s."""
    root = Path(root)
    files = sorted(root.rglob("*.tsv")) if root.is_dir() else []
    if not files:
        raise CostError(f"{root}: no benchmark files (*.tsv): expected Snakemake's results/benchmarks")
    rows = []
    for path in files:
        table = pd.read_csv(path, sep="\t")
        if not {"s", "cpu_time"} <= set(table.columns):
            raise CostError(f"{path}: columns {list(table.columns)}: expected Snakemake's benchmark (s, cpu_time)")
        rows.append({"kind": _kind(path, root), "path": str(path), "wall_s": float(table["s"].iloc[-1]),
                     "cpu_s": float(table["cpu_time"].iloc[-1])})
    return pd.DataFrame(rows)


def cost_by_kind(jobs: pd.DataFrame) -> pd.DataFrame:
    """Jobs, CPU seconds (all and per job) and wall seconds of each kind, and a total row."""
    grouped = jobs.groupby("kind", sort=True).agg(jobs=("path", "size"), cpu_s=("cpu_s", "sum"),
                                                    wall_s=("wall_s", "sum")).reset_index()
    total = pd.DataFrame([{"kind": "total", "jobs": int(grouped["jobs"].sum()), "cpu_s": grouped["cpu_s"].sum(),
                           "wall_s": grouped["wall_s"].sum()}])
    table = pd.concat([grouped, total], ignore_index=True)
    table["cpu_s_per_job"] = table["cpu_s"] / table["jobs"]
    return table[COLUMNS].round(1)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("benchmarks", type=Path, help="Snakemake's benchmark folder (results/benchmarks)")
    parser.add_argument("--out", type=Path, help="write the table as CSV too")


def main(args: argparse.Namespace) -> int:
    table = cost_by_kind(job_costs(args.benchmarks))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.out, index=False)
    print(table.to_string(index=False))
    return 0
