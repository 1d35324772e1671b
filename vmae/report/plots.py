"""`vmae plot STUDY --table FILE.csv --out FIGURE.png`: the figure of one study's table.

- data_efficiency, masking: grouped bars (mean top-1, whiskers = its 95% t-interval over seeds),
  the paper's numbers as diamonds where the target has a paper counterpart;
- mask_ratio, data_size: curves of top-1 (mean, band = 95% t-interval) against the mask ratio /
  the pretraining fraction, the paper's points as diamonds; mask_ratio marks the paper's best ratio;
- domain_shift: a heatmap of top-1 per pretraining source (rows) and target (columns), each cell
  with its 95% interval.
A row of one seed has no interval and is drawn without a whisker (not a zero-width one). Tables
come from vmae.report.tables (their columns are the contract).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from vmae.errors import UserError  # noqa: E402
from vmae.report.stats import INTERVAL  # noqa: E402
from vmae.report.studies import STUDIES, STUDY_NAMES  # noqa: E402

PAPER_BEST_MASK_RATIO = 0.9  # Figure 3 of the paper
Y_LABEL = f"top-1 accuracy (%), mean and 95% CI over seeds ({INTERVAL})"
METHOD_LABELS = {"scratch": "scratch", "mocov3": "MoCo v3", "videomae": "VideoMAE"}
PROTOCOL_LABELS = {"finetune": "fine-tune", "linprobe": "linear probe"}


class PlotTableError(UserError, ValueError):
    """The study table to plot is missing or has no rows."""


def _panels(n: int, width: float = 5.5, height: float = 4.2):
    fig, axes = plt.subplots(1, n, figsize=(width * n, height), squeeze=False)
    return fig, list(axes[0])


def ci_errors(rows: pd.DataFrame) -> np.ndarray:
    """(2, n) distances from each mean down and up to its 95% interval; NaN (no whisker) for a row
    of one seed."""
    mean = rows["top1"].to_numpy(dtype=float)
    return np.stack([mean - rows["top1_ci_low"].to_numpy(dtype=float),
                     rows["top1_ci_high"].to_numpy(dtype=float) - mean])


def _paper_label(table: pd.DataFrame) -> str:
    names = sorted(table["paper_dataset"].dropna().unique())
    return f"paper ({', '.join(names)})" if names else "paper"


def bar_chart(table: pd.DataFrame, group_col: str, bar_col: str, labels: dict[str, str], title: str):
    """One panel per protocol; groups along x by ``group_col``, one bar per ``bar_col`` value."""
    protocols = list(dict.fromkeys(table["protocol"]))
    fig, axes = _panels(len(protocols))
    bars = list(dict.fromkeys(table[bar_col]))
    width = 0.8 / len(bars)
    colours = plt.get_cmap("tab10")
    for ax, protocol in zip(axes, protocols):
        part = table[table["protocol"] == protocol]
        groups = list(dict.fromkeys(part[group_col]))
        x = np.arange(len(groups))
        for i, bar in enumerate(bars):
            rows = part[part[bar_col] == bar].set_index(group_col).reindex(groups)
            offset = x + (i - (len(bars) - 1) / 2) * width
            ax.bar(offset, rows["top1"], width, yerr=ci_errors(rows), capsize=3,
                   color=colours(i), label=labels.get(bar, bar))
            ax.scatter(offset, rows["paper_top1"], marker="D", color="black", zorder=3, s=25,
                       label=_paper_label(table) if i == 0 and rows["paper_top1"].notna().any() else None)
        ax.set_xticks(x, [str(g) for g in groups])
        ax.set_xlabel(group_col.replace("_", " "))
        ax.set_ylabel(Y_LABEL)
        ax.set_ylim(0, 100)
        ax.set_title(PROTOCOL_LABELS.get(protocol, protocol))
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def curve_chart(table: pd.DataFrame, x_col: str, x_label: str, title: str, best_x: float | None = None):
    """Top-1 (mean and its 95% interval over seeds) against ``x_col``, one line per target and protocol."""
    fig, axes = _panels(1, width=6.5)
    ax = axes[0]
    for (target, protocol), part in table.groupby(["target", "protocol"], sort=False):
        part = part.sort_values(x_col)
        x, y = part[x_col].to_numpy(float), part["top1"].to_numpy(float)
        line = ax.errorbar(x, y, yerr=ci_errors(part), marker="o", capsize=3,
                           label=f"{target}, {PROTOCOL_LABELS.get(protocol, protocol)}")
        ax.fill_between(x, part["top1_ci_low"].to_numpy(float), part["top1_ci_high"].to_numpy(float),
                        alpha=0.15, color=line[0].get_color())
        if part["paper_top1"].notna().any():
            ax.scatter(x, part["paper_top1"], marker="D", color="black", zorder=3, s=30,
                       label=_paper_label(part))
    if best_x is not None:
        ax.axvline(best_x, color="grey", linestyle="--", linewidth=1, label=f"paper's best ratio ({best_x:g})")
    ticks = sorted(table[x_col].unique())
    labels = [f"{t:g}" for t in ticks]
    if "pretrain_videos" in table:  # data size: say how many videos each fraction is
        videos = table.groupby(x_col)["pretrain_videos"].first()
        labels = [f"{t:g}\n({int(videos[t])} videos)" if pd.notna(videos[t]) else f"{t:g}" for t in ticks]
    ax.set_xticks(ticks, labels)
    ax.set_xlabel(x_label)
    ax.set_ylabel(Y_LABEL)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def heatmap(table: pd.DataFrame, title: str):
    """Top-1 per source (rows) x target (columns); one panel per method and protocol."""
    panels = list(table.groupby(["method", "protocol"], sort=False))
    fig, axes = _panels(len(panels), width=5.0, height=4.2)
    for ax, ((method, protocol), part) in zip(axes, panels):
        mean = part.pivot(index="source", columns="target", values="top1")
        low = part.pivot(index="source", columns="target", values="top1_ci_low").reindex_like(mean)
        high = part.pivot(index="source", columns="target", values="top1_ci_high").reindex_like(mean)
        image = ax.imshow(mean.to_numpy(float), cmap="viridis", vmin=0, vmax=100)
        for (i, j), value in np.ndenumerate(mean.to_numpy(float)):
            if np.isnan(value):
                continue
            lo, hi = low.to_numpy(float)[i, j], high.to_numpy(float)[i, j]
            text = f"{value:.1f}" if np.isnan(lo) else f"{value:.1f}\n[{lo:.1f}, {hi:.1f}]"
            ax.text(j, i, text, ha="center", va="center", fontsize=9,
                    color="white" if value < 60 else "black")
        videos = part.drop_duplicates("source").set_index("source")["source_videos"]
        ax.set_yticks(range(len(mean.index)),
                      [f"{s}\n({int(videos[s])} videos)" if pd.notna(videos.get(s)) else s for s in mean.index])
        ax.set_xticks(range(len(mean.columns)), mean.columns)
        ax.set_xlabel("target (fine-tuned and evaluated on)")
        ax.set_ylabel("pretraining source")
        ax.set_title(f"{METHOD_LABELS.get(method, method)}, {PROTOCOL_LABELS.get(protocol, protocol)}")
        fig.colorbar(image, ax=ax, label="top-1 accuracy (%), mean [95% CI] over seeds", shrink=0.8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_study(study: str, table: pd.DataFrame):
    """The figure of a study's table (a matplotlib Figure)."""
    title = STUDIES[study].title
    if study == "data_efficiency":
        return bar_chart(table, "target", "method", METHOD_LABELS, title)
    if study == "masking":
        table = table.assign(strategy=[f"{m} {r:g}" for m, r in zip(table["masking"], table["mask_ratio"])])
        return bar_chart(table, "strategy", "target", {}, title)
    if study == "mask_ratio":
        return curve_chart(table, "mask_ratio", "mask ratio", title, best_x=PAPER_BEST_MASK_RATIO)
    if study == "data_size":
        return curve_chart(table, "fraction", "fraction of the target's training videos used for pretraining", title)
    if study == "domain_shift":
        return heatmap(table, title)
    raise ValueError(f"study {study!r}: expected one of {list(STUDY_NAMES)}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("study", choices=STUDY_NAMES, help="which study's figure")
    parser.add_argument("--table", required=True, help="the study's table (vmae table ... --out FILE.csv)")
    parser.add_argument("--out", required=True, help="output PNG")
    parser.add_argument("--dpi", type=int, default=120)


def read_table(path: str | Path) -> pd.DataFrame:
    """The study table at ``path``; ``PlotTableError`` when it is missing, empty or has no rows."""
    expected = "expected a study table written by `vmae table`"
    if not Path(path).is_file():
        raise PlotTableError(f"{path}: not found: {expected}")
    try:
        table = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise PlotTableError(f"{path}: empty file: {expected}") from None
    if table.empty:
        raise PlotTableError(f"{path}: the table has no rows; nothing to plot")
    return table


def main(args: argparse.Namespace) -> int:
    table = read_table(args.table)
    fig = plot_study(args.study, table)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=args.dpi)
    plt.close(fig)
    print(f"{args.study}: figure -> {out}")
    return 0
