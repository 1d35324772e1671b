"""`vmae table STUDY METRICS... --out FILE.csv`: one study's table from its runs' metrics.json.

Inputs are evaluation metrics (``.../eval/<target>/<protocol>/<init>/metrics.json``) and,
optionally, the metrics of the pretraining runs they start from (``.../pretrain/<run>/
metrics.json``, for the pretraining loss and video counts). Run identities come from the paths
(vmae.report.runs). Rows are the study's settings; top-1/top-5 are the mean over seeds and
``top1_std`` their standard deviation (ddof=1; empty for one seed). The paper's number for the
same dataset / method / protocol / setting is merged from vmae/report/paper.csv through each
dataset YAML's ``paper_name`` (synthetic datasets have none). Writes FILE.csv and FILE.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from vmae.errors import UserError
from vmae.report import runs

PAPER_CSV = Path(__file__).with_name("paper.csv")

# study -> its leading columns: the keys of a row (its setting) plus video counts, which are
# constant over seeds (the first is kept). Results and the paper's number follow.
STUDY_COLUMNS: dict[str, list[str]] = {
    "data_efficiency": ["target", "train_videos", "method", "protocol"],
    "mask_ratio": ["target", "masking", "mask_ratio", "method", "protocol"],
    "masking": ["target", "masking", "mask_ratio", "method", "protocol"],
    "domain_shift": ["source", "source_videos", "target", "method", "protocol"],
    "data_size": ["target", "fraction", "pretrain_videos", "train_videos", "method", "protocol"],
}
COUNT_COLUMNS = ("train_videos", "source_videos", "pretrain_videos")
STUDY_KEYS = {study: [c for c in cols if c not in COUNT_COLUMNS] for study, cols in STUDY_COLUMNS.items()}
STUDIES = tuple(STUDY_KEYS)
RESULT_COLUMNS = ["top1", "top1_std", "top5", "pretrain_loss", "seeds", "n_runs"]
PAPER_COLUMNS = ["paper_dataset", "paper_top1"]
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


def load_records(paths: list[str | Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Evaluation records (one per eval metrics.json) and pretraining records, keyed by run.

    Evaluations: target, protocol, seed, method, init, source, fraction, masking, mask_ratio,
    top1, top5, train_videos. Pretraining: init (run name), pretrain_loss, pretrain_videos.
    """
    evals, pretrains = [], []
    for path in map(Path, paths):
        metrics = _read_json(path)
        if "pretrain" in path.parts[-3:-1]:
            run = runs.parse_pretrain_path(path)
            pretrains.append({
                "init": run.name,
                "pretrain_loss": float(_field(metrics, "final_loss", path)),
                "pretrain_videos": int(_field(metrics, "train_videos", path)),
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
            "source": init.source if init else None,
            "fraction": init.fraction if init else None,
            "masking": init.masking if init else None,
            "mask_ratio": init.mask_ratio if init else None,
            "top1": float(_field(metrics, "top1", path)),
            "top5": float(_field(metrics, "top5", path)),
            "train_videos": int(_field(metrics, "train_videos", path)),
        })
    if not evals:
        raise TableError("no evaluation metrics.json among the inputs (expected .../eval/<target>/<protocol>/<init>/metrics.json)")
    pretrain_columns = ["init", "pretrain_loss", "pretrain_videos"]
    return pd.DataFrame(evals), pd.DataFrame(pretrains, columns=pretrain_columns)


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


def build_table(
    study: str,
    metrics_paths: list[str | Path],
    paper: pd.DataFrame | None = None,
    specs_dir: str | Path | None = None,
) -> pd.DataFrame:
    """The study's table: one row per setting, mean/std over seeds, the paper's number beside."""
    if study not in STUDY_KEYS:
        raise TableError(f"study {study!r}: expected one of {list(STUDY_KEYS)}")
    evals, pretrains = load_records(metrics_paths)
    records = evals.merge(pretrains, on="init", how="left")
    keys = STUDY_KEYS[study]
    counts = [c for c in STUDY_COLUMNS[study] if c in COUNT_COLUMNS]
    if study == "domain_shift":
        records["source_videos"] = records["pretrain_videos"]
    if missing := [k for k in keys if records[k].isna().any()]:
        bad = records.loc[records[missing].isna().any(axis=1), "init"].unique()
        raise TableError(f"study {study}: runs {list(bad)} have no {missing} (scratch runs belong to data_efficiency only)")

    grouped = records.groupby(keys, sort=False, dropna=False)
    table = grouped.agg(
        top1=("top1", "mean"),
        top1_std=("top1", "std"),  # ddof=1; NaN for a single seed
        top5=("top5", "mean"),
        pretrain_loss=("pretrain_loss", "mean"),
        seeds=("seed", lambda s: ",".join(str(v) for v in sorted(s))),
        n_runs=("seed", "size"),
        **{c: (c, "first") for c in counts},
    ).reset_index()

    names = paper_names(sorted(set(records["target"]) | set(records["source"].dropna())), specs_dir)
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
    table = _sorted(table, keys)
    for column in ("top1", "top1_std", "top5"):
        table[column] = table[column].round(2)
    table["pretrain_loss"] = table["pretrain_loss"].round(4)
    return table[STUDY_COLUMNS[study] + RESULT_COLUMNS + PAPER_COLUMNS]


def _sorted(table: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Rows in a reading order: methods scratch -> MoCo v3 -> VideoMAE, protocols, numbers."""
    def order(column: pd.Series) -> pd.Series:
        if column.name in _ORDER:
            return column.map({v: i for i, v in enumerate(_ORDER[column.name])})
        return column

    return table.sort_values(keys, key=order, kind="stable").reset_index(drop=True)


def write_table(table: pd.DataFrame, out_csv: str | Path, title: str) -> Path:
    """FILE.csv and FILE.md (a Markdown table under a title); returns the Markdown path."""
    out_csv = Path(out_csv)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out_csv, index=False)
    md = out_csv.with_suffix(".md")
    body = table.astype(object).where(table.notna(), "").to_markdown(index=False)
    md.write_text(f"## {title}\n\n{body}\n")
    return md


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("study", choices=STUDIES, help="which study's table")
    parser.add_argument("metrics", nargs="+", help="metrics.json files of the study's evaluations (and pretraining runs)")
    parser.add_argument("--out", required=True, help="output CSV (the Markdown goes beside it, .md)")
    parser.add_argument("--paper", default=str(PAPER_CSV), help="the paper's numbers (default: vmae/report/paper.csv)")
    parser.add_argument("--datasets", default=None,
                        help="folder of dataset YAMLs, for paper_name (default: the registry's datasets/)")


def main(args: argparse.Namespace) -> int:
    table = build_table(args.study, args.metrics, read_paper(args.paper), args.datasets)
    md = write_table(table, args.out, title=args.study.replace("_", " "))
    print(f"{args.study}: {len(table)} rows -> {args.out}, {md}")
    print(table.to_string(index=False))
    return 0
