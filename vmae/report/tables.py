"""`vmae table STUDY METRICS... --out FILE.csv`: one study's table from its runs' metrics.json.

Inputs are evaluation metrics (``.../eval/<target>/<protocol>/<init>/metrics.json``) and,
optionally, the metrics of the pretraining runs they start from (``.../pretrain/<run>/
metrics.json``, for the pretraining loss, video counts and compute). Run identities come from the
paths (vmae.report.runs); what a study's rows and comparisons are comes from vmae.report.studies.
Writes four files:

- ``FILE.csv``: one row per setting: ``n_seeds``, mean top-1 with its 95% t-interval
  (``top1_ci_low`` / ``top1_ci_high``, vmae.report.stats), std, the take-off rate (``take_off``,
  k/n: the seeds within ``TAKE_OFF_FLOOR`` points of the row's median) and each seed's top-1
  (``top1_by_seed``, ``seed:value;...``), top-5, the pretraining loss and pretext skill (VideoMAE:
  1 - loss / the trivial predictor's, on held-out clips; ``pretext_train_skill`` the same on the
  run's own training videos, so the gap is overfitting), the compute each arm got (mean over
  seeds: pretraining optimiser steps, clips, FLOPs and seconds; evaluation steps, FLOPs and seconds)
  and the paper's number for the same dataset / method / protocol / setting, merged from
  vmae/report/paper.csv through each dataset YAML's ``paper_name`` (synthetic datasets have none);
- ``FILE_comparisons.csv``: every pair of rows that differ only in what the study varies, as the
  paired difference A - B over shared seeds with its 95% t-interval, the two-sided paired t-test's
  p-value (descriptive: no family, no verdict) and the seeds A won (``wins``, k/n);
- ``FILE_claims.csv``: the paper's claims this study tests (vmae.report.claims), under the same
  rule as ``vmae claims`` (the gate and Table 2 are data_efficiency's; other studies take the claims
  they wait on as decided and say so); the masking regime's claims under their own family's rule;
- ``FILE.md``: the three as Markdown.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from vmae.errors import UserError
from vmae.report import claims, runs, stats
from vmae.report.studies import COUNT_COLUMNS, STUDIES, STUDY_NAMES

PAPER_CSV = Path(__file__).with_name("paper.csv")

COMPUTE_COLUMNS = ["pretrain_steps", "pretrain_clips", "pretrain_flops", "pretrain_s", "eval_steps", "eval_flops",
                   "eval_s"]
PRETRAIN_COLUMNS = ["pretrain_loss", "pretext_trivial_loss", "pretext_skill", "pretext_train_skill", "pretrain_videos",
                    "pretrain_steps", "pretrain_clips", "pretrain_flops", "pretrain_s"]
TAKE_OFF_FLOOR = 10.0  # top-1 points below a row's median: a seed further down did not take off (issue 31's
# pilot, fixed before its runs: a fine-tuning that never took off scored 42-46 where its arm's others scored 55-65)
RESULT_COLUMNS = ["n_seeds", "top1", "top1_ci_low", "top1_ci_high", "top1_std", "take_off", "top5", "pretrain_loss",
                  "pretext_skill", "pretext_train_skill", *COMPUTE_COLUMNS, "seeds", "top1_by_seed"]
PAPER_COLUMNS = ["paper_dataset", "paper_top1"]
COMPARISON_COLUMNS = ["a", "b", "n_seeds", "diff", "diff_ci_low", "diff_ci_high", "p_value", "wins", "seeds"]
_ORDER = {"method": list(runs.METHODS), "protocol": list(runs.PROTOCOLS), "masking": list(runs.MASKINGS)}


class TableError(UserError, ValueError):
    """A metrics file or the paper table is missing, malformed or does not fit the study."""


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise TableError(f"{path}: cannot read metrics ({err})") from None


def _field(metrics: dict, key: str, path: Path):
    if key not in metrics:
        raise TableError(f"{path}: no {key!r} in metrics.json (keys: {sorted(metrics)})")
    return metrics[key]


def _steps(metrics: dict, path: Path) -> float:
    """Optimiser steps of a training run: ``steps`` where recorded, else epochs x full batches an
    epoch (the training loader drops each epoch's remainder) from the resolved config."""
    if "steps" in metrics:
        return float(metrics["steps"])
    batch = _field(metrics, "config", path).get("optim", {}).get("batch_size")
    if not batch:
        return math.nan
    return float(_field(metrics, "epochs", path) * (_field(metrics, "train_videos", path) // batch))


def _clips(metrics: dict) -> float:
    """Training clips a run saw: ``clips`` where recorded, else its mean rate x its training time."""
    if "clips" in metrics:
        return float(metrics["clips"])
    rate, wall = metrics.get("clips_per_s"), metrics.get("wall_s")
    return float(round(rate * wall)) if rate is not None and wall is not None else math.nan


def _score(metrics: dict, path: Path) -> float:
    """A run's top-1; a missing or NaN score stops here, naming the file."""
    top1 = float(_field(metrics, "top1", path))
    if math.isnan(top1):
        raise TableError(f"{path}: top1 is NaN (the run left no score); rerun it or remove the file")
    return top1


def _scored_videos(metrics: dict) -> float:
    """How many evaluation videos a run's top-1 counts (its resolution is 100 / that); NaN unrecorded."""
    if "val_videos" not in metrics:
        return math.nan
    return float(metrics["val_videos"] - metrics.get("val_bad_videos", 0))


def load_records(paths: list[str | Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Evaluation records (one per eval metrics.json) and pretraining records, keyed by run.

    Evaluations: target, protocol, seed, method, init, source ("scratch" for no pretraining),
    fraction, masking, mask_ratio, budget_steps (a pretraining's own step budget, None: its recipe's),
    top1, top5, eval_videos (scored), train_videos, eval_steps,
    eval_flops, eval_s.
    Pretraining: init (run name) and ``PRETRAIN_COLUMNS`` (skill and trivial loss: VideoMAE only).
    """
    evals, pretrains = [], []
    for path in map(Path, paths):
        metrics = _read_json(path)
        if "pretrain" in path.parts[-3:-1]:
            run = runs.parse_pretrain_path(path)
            pretext = metrics.get("pretext", {})
            pretrains.append({
                "init": run.name,
                "pretrain_loss": float(_field(metrics, "final_loss", path)),
                "pretext_trivial_loss": float(pretext.get("trivial_loss", math.nan)),
                "pretext_skill": float(pretext.get("skill", math.nan)),
                "pretext_train_skill": float(metrics.get("pretext_train", {}).get("skill", math.nan)),
                "pretrain_videos": int(_field(metrics, "train_videos", path)),
                "pretrain_steps": _steps(metrics, path) if "epochs" in metrics else math.nan,
                "pretrain_clips": _clips(metrics),
                "pretrain_flops": float(metrics.get("train_flops", math.nan)),
                "pretrain_s": float(metrics.get("wall_s", math.nan)),
            })
            continue
        run = runs.parse_eval_path(path)
        init = run.init
        evals.append({
            "target": run.target,
            "protocol": run.protocol,
            "seed": run.seed,
            "method": run.method,
            "init": run.init_name,
            "source": init.source if init else "scratch",
            "fraction": init.fraction if init else None,
            "masking": init.masking if init else None,
            "mask_ratio": init.mask_ratio if init else None,
            "budget_steps": init.steps if init and init.steps is not None else None,  # the run's own budget
            "top1": _score(metrics, path),
            "top5": float(_field(metrics, "top5", path)),
            "eval_videos": _scored_videos(metrics),
            "train_videos": int(_field(metrics, "train_videos", path)),
            "eval_steps": _steps(metrics, path) if "epochs" in metrics else math.nan,  # the probe has none
            "eval_flops": float(metrics.get("train_flops", math.nan)),
            "eval_s": float(metrics.get("wall_s", math.nan)),
        })
    if not evals:
        raise TableError("no evaluation metrics.json among the inputs (expected .../eval/<target>/<protocol>/<init>/metrics.json)")
    return pd.DataFrame(evals), pd.DataFrame(pretrains, columns=["init", *PRETRAIN_COLUMNS])


def study_records(study: str, metrics_paths: list[str | Path]) -> pd.DataFrame:
    """One record per evaluation of ``study`` (one seed of one row), its pretraining merged in."""
    if study not in STUDIES:
        raise TableError(f"study {study!r}: expected one of {list(STUDY_NAMES)}")
    evals, pretrains = load_records(metrics_paths)
    records = evals.merge(pretrains, on="init", how="left")
    records["source_videos"] = records["pretrain_videos"].fillna(0)
    derive = STUDIES[study].derive
    records = derive(records) if derive else records
    keys = list(STUDIES[study].keys)
    if missing := [k for k in keys if records[k].isna().any()]:
        bad = records.loc[records[missing].isna().any(axis=1), "init"].unique()
        raise TableError(f"study {study}: runs {list(bad)} have no {missing} (from-scratch runs belong to "
                         "data_efficiency and domain_shift only)")
    return _sorted(records, keys)


def paper_names(datasets: list[str], specs_dir: str | Path | None) -> dict[str, str | None]:
    """dataset name -> its ``paper_name`` (None where the dataset has no paper counterpart)."""
    from vmae.data.registry import load_spec

    names = {}
    for name in datasets:
        spec = load_spec(Path(specs_dir) / f"{name}.yaml") if specs_dir else load_spec(name)
        names[name] = spec.paper_name
    return names


def _setting(study: str, row: pd.Series, paper_source: str | None) -> str:
    """The `setting` column of paper.csv that this row corresponds to."""
    if study == "mask_ratio":
        return runs.format_number(row["mask_ratio"])
    if study == "masking":
        return f"{row['masking']}{runs.format_number(row['mask_ratio'])}"
    if study == "domain_shift":
        return paper_source or ""
    if study == "data_size":
        return runs.format_number(row["fraction"])
    return ""


def read_paper(path: str | Path = PAPER_CSV) -> pd.DataFrame:
    paper = pd.read_csv(path, dtype=str, keep_default_na=False)
    expected = {"study", "paper_dataset", "method", "protocol", "setting", "top1"}
    if missing := expected - set(paper.columns):
        raise TableError(f"{path}: missing columns {sorted(missing)}; expected {sorted(expected)}")
    paper["top1"] = paper["top1"].astype(float)
    return paper


def take_off(top1: list[float]) -> str:
    """``k/n``: how many of a row's ``n`` seeds scored within ``TAKE_OFF_FLOOR`` points of the row's
    median top-1 (the others failed to take off)."""
    floor = float(np.median(top1)) - TAKE_OFF_FLOOR
    return f"{sum(value >= floor for value in top1)}/{len(top1)}"


def _row_statistics(part: pd.DataFrame) -> pd.Series:
    """The result columns of one row from its seeds' records."""
    top1 = stats.mean_interval(part["top1"].to_list())
    by_seed = part.sort_values("seed")
    values = {"n_seeds": top1.n, "top1": top1.mean, "top1_ci_low": top1.low, "top1_ci_high": top1.high,
              "top1_std": top1.std, "take_off": take_off(part["top1"].to_list()), "top5": part["top5"].mean(), "pretrain_loss": part["pretrain_loss"].mean(),
              "pretext_skill": part["pretext_skill"].mean(), "pretext_train_skill": part["pretext_train_skill"].mean(),
              "seeds": ",".join(str(s) for s in by_seed["seed"]),
              "top1_by_seed": ";".join(f"{s}:{v:g}" for s, v in zip(by_seed["seed"], by_seed["top1"]))}
    values.update({c: part[c].mean() for c in COMPUTE_COLUMNS})
    return pd.Series(values)


def build_table(study: str, records: pd.DataFrame, paper: pd.DataFrame | None = None,
                specs_dir: str | Path | None = None) -> pd.DataFrame:
    """The study's table: one row per setting with its seeds' statistics, the paper's number beside."""
    spec = STUDIES[study]
    keys, counts = list(spec.keys), [c for c in spec.columns if c in COUNT_COLUMNS]
    grouped = records.groupby(keys, sort=False, dropna=False)
    table = grouped.apply(_row_statistics, include_groups=False).reset_index()
    table = table.merge(grouped[counts].first().reset_index(), on=keys) if counts else table

    sources = set(records.loc[records["method"] != "scratch", "source"])
    names = paper_names(sorted(set(records["target"]) | sources), specs_dir)
    table["paper_dataset"] = table["target"].map(names)
    paper = read_paper() if paper is None else paper
    lookup = {
        (r.study, r.paper_dataset, r.method, r.protocol, r.setting): r.top1 for r in paper.itertuples()
    }
    table["paper_top1"] = [
        lookup.get((study, row["paper_dataset"], row["method"], row["protocol"],
                    _setting(study, row, names.get(row.get("source")))))
        for _, row in table.iterrows()
    ]
    table["n_seeds"] = table["n_seeds"].astype(int)
    table = _rounded(_sorted(table, keys), ["top1", "top1_ci_low", "top1_ci_high", "top1_std", "top5"])
    return table[list(spec.columns) + RESULT_COLUMNS + PAPER_COLUMNS]


def build_comparisons(study: str, records: pd.DataFrame) -> pd.DataFrame:
    """Paired differences between every two settings of each group (later minus earlier row)."""
    spec = STUDIES[study]
    rows = []
    for group, part in records.groupby(list(spec.group), sort=False, dropna=False):
        arms = spec.arms(part)
        labels = list(arms)
        for i, b in enumerate(labels):
            for a in labels[i + 1:]:
                d = stats.paired_difference(arms[a], arms[b])
                p = stats.test(d.differences, stats.SUPERIORITY).p_value if d.n else float("nan")
                rows.append({**dict(zip(spec.group, group)), "a": a, "b": b, "n_seeds": d.n, "diff": d.mean,
                             "diff_ci_low": d.low, "diff_ci_high": d.high, "p_value": p,
                             "wins": f"{d.wins}/{d.n}", "seeds": ",".join(map(str, d.seeds))})
    table = pd.DataFrame(rows, columns=list(spec.group) + COMPARISON_COLUMNS)
    return _rounded(table, ["diff", "diff_ci_low", "diff_ci_high"], p_columns=["p_value"])


def _rounded(table: pd.DataFrame, points: list[str], p_columns: tuple[str, ...] | list[str] = ()) -> pd.DataFrame:
    """Accuracy points to 2 decimals, probabilities to 4 (the CSVs' precision)."""
    table = table.copy()
    for column in points:
        table[column] = table[column].astype(float).round(2)
    for column in p_columns:
        table[column] = table[column].astype(float).round(4)
    for column in COMPUTE_COLUMNS:
        if column in table:
            table[column] = table[column].astype(float).round(1)
    for column in ("pretrain_loss", "pretext_skill", "pretext_train_skill"):
        if column in table:
            table[column] = table[column].astype(float).round(4)
    return table


def _sorted(table: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Rows in a reading order: methods scratch -> MoCo v3 -> VideoMAE, protocols, numbers."""
    def order(column: pd.Series) -> pd.Series:
        if column.name in _ORDER:
            return column.map({v: i for i, v in enumerate(_ORDER[column.name])})
        return column

    return table.sort_values(keys, key=order, kind="stable").reset_index(drop=True)


def companion(out_csv: str | Path, kind: str) -> Path:
    """``results/table_X.csv`` -> ``results/table_X_<kind>.csv`` (comparisons, claims)."""
    out_csv = Path(out_csv)
    return out_csv.with_name(f"{out_csv.stem}_{kind}.csv")


def write_study(out_csv: str | Path, title: str, table: pd.DataFrame, comparisons: pd.DataFrame,
                claim_rows: pd.DataFrame) -> Path:
    """FILE.csv, FILE_comparisons.csv, FILE_claims.csv and FILE.md (all three under a title)."""
    out_csv = Path(out_csv)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out_csv, index=False)
    comparisons.to_csv(companion(out_csv, "comparisons"), index=False)
    claim_rows.to_csv(companion(out_csv, "claims"), index=False)
    md = out_csv.with_suffix(".md")
    md.write_text(
        f"## {title}\n\nMean top-1 over seeds with its 95% interval ({stats.INTERVAL}); pretext skill: "
        f"the method's measure against its trivial baseline on held-out clips (VideoMAE: 1 - loss / the trivial "
        f"predictor's), pretext_train_skill the same on the run's own training videos (the gap: overfitting); "
        f"take_off: the seeds within {TAKE_OFF_FLOOR:g} points of the row's median top-1; compute: mean over seeds of optimiser "
        f"steps, clips, FLOPs and seconds.\n\n{claims.markdown(table)}\n\n"
        f"### Comparisons (A - B, paired by seed, 95% interval: {stats.INTERVAL})\n\n{claims.markdown(comparisons)}\n\n"
        f"### {claims.family_of(claim_rows).title}\n\n{claims.rule_text(claim_rows)}\n\n"
        f"{claims.markdown(claims.display(claim_rows))}\n"
    )
    return md


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("study", choices=STUDY_NAMES, help="which study's table")
    parser.add_argument("metrics", nargs="+", help="metrics.json files of the study's evaluations (and pretraining runs)")
    parser.add_argument("--out", required=True,
                        help="output CSV (FILE.md, FILE_comparisons.csv and FILE_claims.csv go beside it)")
    parser.add_argument("--paper", default=str(PAPER_CSV), help="the paper's numbers (default: vmae/report/paper.csv)")
    parser.add_argument("--datasets", default=None,
                        help="folder of dataset YAMLs, for paper_name (default: the registry's datasets/)")


def main(args: argparse.Namespace) -> int:
    records = study_records(args.study, args.metrics)
    table = build_table(args.study, records, read_paper(args.paper), args.datasets)
    comparisons = build_comparisons(args.study, records)
    claim_rows = claims.finalise(claims.evaluate(args.study, records))
    md = write_study(args.out, STUDIES[args.study].title, table, comparisons, claim_rows)
    print(f"{args.study}: {len(table)} rows, {len(comparisons)} comparisons, {len(claim_rows)} claims -> {md}")
    print(table.to_string(index=False))
    print(comparisons.to_string(index=False))
    return 0
