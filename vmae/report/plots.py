"""`vmae plot STUDY --table FILE.csv --out FIGURE.png`: the figure of one study's table.

Every setting (a table row) is drawn the same way: its mean top-1 as a circle with its 95% CI
(Student t) as a whisker, each seed's top-1 (``top1_by_seed``) as a small point beside it, spread
evenly to its right (the same figure every time), and the paper's number, where there is one, as
a black diamond to its left. A row of one seed has no interval and is drawn without a whisker. No
bars: a bar would hide the seeds it summarises.

- data_efficiency, masking, domain_shift: settings grouped along x (by target, masking strategy,
  target), one colour per method / target / pretraining source (the from-scratch control too);
- mask_ratio, data_size: the means joined into a curve against the mask ratio / the pretraining
  videos on a log2 axis; mask_ratio marks the paper's best ratio;
- masking_regime: one curve per masking setting against the pretraining length (the 0.9 arms'
  steps, equal FLOPs for the others) on a log2 axis.
One panel per protocol, sharing the y axis. The layout is constrained and the legend sits below
the panels, so no label is clipped or overlaps another (tests measure every text's extent).
Tables come from vmae.report.tables (their columns are the contract).
"""

from __future__ import annotations

import argparse
import math
import textwrap
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import NullLocator  # noqa: E402

from vmae import methods  # noqa: E402
from vmae.errors import UserError  # noqa: E402
from vmae.report.stats import INTERVAL  # noqa: E402
from vmae.report.studies import STUDIES, STUDY_NAMES  # noqa: E402

PAPER_BEST_MASK_RATIO = 0.9  # Figure 3 of the paper
Y_LABEL = "top-1 accuracy (%)"
MEAN_LABEL = f"mean, 95% CI over seeds ({INTERVAL})"
SEED_LABEL = "one seed"
METHOD_LABELS = {"scratch": "scratch", **methods.labels()}  # the registered methods' (vmae.methods)
PROTOCOL_LABELS = {"finetune": "fine-tune", "linprobe": "linear probe"}
PLOT_COLUMNS = ("protocol", "top1", "top1_ci_low", "top1_ci_high", "top1_by_seed", "paper_dataset", "paper_top1")
PANEL_SIZE = (5.5, 4.2)  # inches, one panel (at least)
SLOT_WIDTH, PANEL_MARGIN = 0.4, 1.0  # inches a grouped chart's panel gives a setting, and its labels
SEED_STEPS = (1.5, 3.0)  # a row's seed points: from 1.5 to 3 steps right of its mean
PAPER_STEP = -1.5  # the paper's number: 1.5 steps left of the mean
LEGEND_WIDTH = 0.95  # the most of the figure's width the legend may take
TITLE_CHARS_PER_INCH = 9  # the suptitle wraps to the figure's width at this many characters an inch
MEAN_STYLE = {"marker": "o", "markersize": 7, "markeredgecolor": "black", "markeredgewidth": 0.6, "linestyle": "none"}
SEED_STYLE = {"s": 14, "alpha": 0.75, "linewidths": 0}  # small points (s: area in pt^2)
PAPER_STYLE = {"marker": "D", "color": "black"}


class PlotTableError(UserError, ValueError):
    """The study table to plot is missing, has no rows or lacks a column the figure needs."""


@dataclass(frozen=True)
class Beside:
    """Positions ``k`` steps beside ``x``: ``x + k step`` on a linear axis, ``x 2^(k step)`` on a log2 one."""

    step: float
    log2: bool = False

    def __call__(self, x: float, k: float | np.ndarray) -> float | np.ndarray:
        return x * 2.0 ** (np.asarray(k) * self.step) if self.log2 else x + np.asarray(k) * self.step


def seed_values(cell) -> list[float]:
    """Each seed's top-1 from a ``top1_by_seed`` cell ("0:45.2;1:47"), in its order; none for an empty cell."""
    if not isinstance(cell, str) or not cell:
        return []
    return [float(pair.split(":", 1)[1]) for pair in cell.split(";")]


def draw_row(ax, x: float, row: pd.Series, colour, beside: Beside) -> None:
    """One table row at ``x``: mean (circle), 95% CI (whisker; none for one seed), each seed's top-1
    (small points to the right) and the paper's number (black diamond to the left)."""
    seeds = seed_values(row["top1_by_seed"])
    if seeds:
        ax.scatter(beside(x, np.linspace(*SEED_STEPS, len(seeds))), seeds, color=colour, zorder=3,
                   gid="seeds", **SEED_STYLE)
    if np.isfinite(row["top1_ci_low"]) and np.isfinite(row["top1_ci_high"]):
        ax.vlines(x, row["top1_ci_low"], row["top1_ci_high"], color=colour, linewidth=1.6, zorder=2, gid="ci")
    ax.plot([x], [row["top1"]], color=colour, zorder=4, gid="mean", **MEAN_STYLE)
    if pd.notna(row["paper_top1"]):
        ax.scatter([beside(x, PAPER_STEP)], [row["paper_top1"]], s=30, zorder=4, gid="paper", **PAPER_STYLE)


def legend_entries(table: pd.DataFrame, colours: dict[str, object]) -> list[tuple[object, str]]:
    """(handle, label) pairs: one per series colour, then what a circle with a whisker, a small point
    and a black diamond stand for."""
    entries = [(Line2D([], [], color=c, **MEAN_STYLE), name) for name, c in colours.items()]
    whisker = Line2D([], [], marker="|", markersize=14, markeredgewidth=1.6, color="dimgrey", linestyle="none")
    seed = Line2D([], [], marker="o", markersize=math.sqrt(SEED_STYLE["s"]), color="dimgrey",
                  alpha=SEED_STYLE["alpha"], linestyle="none")
    entries += [((whisker, Line2D([], [], color="dimgrey", **MEAN_STYLE)), MEAN_LABEL), (seed, SEED_LABEL)]
    papers = sorted(table.loc[table["paper_top1"].notna(), "paper_dataset"].dropna().unique())
    if papers:
        paper = Line2D([], [], markersize=5, linestyle="none", **PAPER_STYLE)
        entries.append((paper, f"paper ({', '.join(papers)})"))
    return entries


def _figure(n_panels: int, title: str, width: float = PANEL_SIZE[0]):
    """A constrained-layout figure of ``n_panels`` side by side (``width`` inches each), sharing y, under
    a wrapped title."""
    height = PANEL_SIZE[1]
    fig, axes = plt.subplots(1, n_panels, figsize=(width * n_panels, height), sharey=True, squeeze=False,
                             layout="constrained")
    fig.suptitle(textwrap.fill(title, int(width * n_panels * TITLE_CHARS_PER_INCH)))
    return fig, list(axes[0])


def _finish(fig, axes, entries: list[tuple[object, str]], legend_title: str) -> None:
    """Shared y label, grids, and one legend below the panels."""
    axes[0].set_ylabel(Y_LABEL)
    for ax in axes:
        ax.grid(axis="y", alpha=0.3)
    _legend_below(fig, entries, legend_title)


def _legend_below(fig, entries: list[tuple[object, str]], title: str) -> None:
    """A legend below the panels in the fewest rows whose width fits the figure, columns balanced."""
    handles, labels = zip(*entries)
    renderer = fig.canvas.get_renderer()
    for rows in range(1, len(entries) + 1):
        legend = fig.legend(handles, labels, loc="outside lower center", ncols=math.ceil(len(entries) / rows),
                            fontsize=9, title=title, title_fontsize=9, frameon=False)
        if legend.get_window_extent(renderer).width <= LEGEND_WIDTH * fig.bbox.width or rows == len(entries):
            return
        legend.remove()


def _colours(values) -> dict[str, object]:
    """A tab10 colour for each distinct value, in order of first appearance."""
    names = list(dict.fromkeys(values))
    palette = plt.get_cmap("tab10").colors
    return {name: palette[i % len(palette)] for i, name in enumerate(names)}


def _panel_title(protocol: str) -> str:
    """'fine-tune' / 'linear probe' for a protocol."""
    return PROTOCOL_LABELS.get(protocol, protocol)


def dot_chart(table: pd.DataFrame, group_col: str, series_col: str, x_label: str, legend_title: str, title: str):
    """One panel per protocol; settings grouped along x by ``group_col``, one colour per ``series_col`` value."""
    protocols = list(dict.fromkeys(table["protocol"]))
    colours = _colours(table[series_col])
    slots = table[group_col].nunique() * len(colours)
    fig, axes = _figure(len(protocols), title, max(PANEL_SIZE[0], PANEL_MARGIN + SLOT_WIDTH * slots))
    width = 0.8 / len(colours)
    beside = Beside(width / 6)
    for ax, protocol in zip(axes, protocols):
        part = table[table["protocol"] == protocol]
        groups = list(dict.fromkeys(part[group_col]))
        for i, (series, colour) in enumerate(colours.items()):
            for _, row in part[part[series_col] == series].iterrows():
                x = groups.index(row[group_col]) + (i - (len(colours) - 1) / 2) * width
                draw_row(ax, x, row, colour, beside)
        ax.set_xticks(range(len(groups)), [str(g) for g in groups])
        ax.set_xlim(-0.5, len(groups) - 0.5)
        ax.set_xlabel(x_label)
        ax.set_title(_panel_title(protocol))
    _finish(fig, axes, legend_entries(table, colours), legend_title)
    return fig


def curve_chart(table: pd.DataFrame, x_col: str, x_label: str, title: str, tick_labels: dict[float, str],
                log2: bool = False, best_x: float | None = None, series_col: str = "target"):
    """Top-1 against ``x_col`` (a log2 axis where ``log2``), one panel per protocol, one curve per
    ``series_col`` value (a target) joining its means; ``best_x`` marks the paper's best setting."""
    protocols = list(dict.fromkeys(table["protocol"]))
    fig, axes = _figure(len(protocols), title)
    colours = _colours(table[series_col])
    positions = table[x_col].to_numpy(float)
    span = np.ptp(np.log2(positions) if log2 else positions) or 1.0
    beside = Beside(span / 60, log2)
    extra = []
    for ax, protocol in zip(axes, protocols):
        for series, part in table[table["protocol"] == protocol].groupby(series_col, sort=False):
            part = part.sort_values(x_col)
            ax.plot(part[x_col].to_numpy(float), part["top1"].to_numpy(float), color=colours[series], linewidth=1.2,
                    zorder=1, gid="curve")
            for _, row in part.iterrows():
                draw_row(ax, float(row[x_col]), row, colours[series], beside)
        if best_x is not None:
            label = f"paper's best ratio ({best_x:g})"
            extra = [(ax.axvline(best_x, color="grey", linestyle="--", linewidth=1, label=label), label)]
        if log2:
            ax.set_xscale("log", base=2)
        ax.set_xticks(list(tick_labels), list(tick_labels.values()))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlabel(x_label)
        ax.set_title(_panel_title(protocol))
    _finish(fig, axes, legend_entries(table, colours) + extra, series_col)
    return fig


def _domain_source(row: pd.Series, several_methods: bool) -> str:
    """A domain-shift row's series: its pretraining source and size (with the method where there are
    several), or the from-scratch control."""
    if row["method"] == "scratch" or row["source"] == "scratch":
        return "none (scratch)"
    method = f"{METHOD_LABELS.get(row['method'], row['method'])} on " if several_methods else ""
    return f"{method}{row['source']} ({int(row['source_videos'])} videos)"


def plot_study(study: str, table: pd.DataFrame):
    """The figure of a study's table (a matplotlib Figure)."""
    title = STUDIES[study].title
    if study in ("data_efficiency", "methods"):
        table = table.assign(series=[METHOD_LABELS.get(m, m) for m in table["method"]])
        return dot_chart(table, "target", "series", "target", "method", title)
    if study == "masking":
        table = table.assign(strategy=[f"{m} {r:g}" for m, r in zip(table["masking"], table["mask_ratio"])])
        return dot_chart(table, "strategy", "target", "masking strategy and ratio", "target", title)
    if study == "domain_shift":
        several = table.loc[table["method"] != "scratch", "method"].nunique() > 1
        table = table.assign(series=[_domain_source(row, several) for _, row in table.iterrows()])
        return dot_chart(table, "target", "series", "target (fine-tuned and evaluated on)", "pretraining source",
                         title)
    if study == "mask_ratio":
        ticks = {r: f"{r:g}" for r in sorted(table["mask_ratio"].unique())}
        return curve_chart(table, "mask_ratio", "mask ratio", title, ticks, best_x=PAPER_BEST_MASK_RATIO)
    if study == "data_size":
        sizes = table.drop_duplicates("pretrain_videos").sort_values("pretrain_videos")
        ticks = {v: f"{int(v)}\n({f:g})" for v, f in zip(sizes["pretrain_videos"], sizes["fraction"])}
        return curve_chart(table, "pretrain_videos", "pretraining videos, log2 scale (fraction of the training set)",
                           title, ticks, log2=True)
    if study == "masking_regime":
        table = table.assign(masking=[f"{m} {r:g}" for m, r in zip(table["masking"], table["mask_ratio"])])
        ticks = {v: f"{int(v)}" for v in sorted(table["length"].unique())}
        return curve_chart(table, "length", "pretraining length: the 0.9 arms' steps (others at equal FLOPs), log2",
                           title, ticks, log2=True, series_col="masking")
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


def check_columns(table: pd.DataFrame, study: str, path: str | Path) -> None:
    """``PlotTableError`` naming the file and the columns a ``study`` figure needs that ``table`` lacks."""
    missing = [c for c in (*STUDIES[study].columns, *PLOT_COLUMNS) if c not in table]
    if missing:
        raise PlotTableError(f"{path}: no column(s) {missing} for the {study} figure; expected a table written by "
                             "`vmae table` (rebuild it)")


def main(args: argparse.Namespace) -> int:
    table = read_table(args.table)
    check_columns(table, args.study, args.table)
    fig = plot_study(args.study, table)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=args.dpi)
    plt.close(fig)
    print(f"{args.study}: figure -> {out}")
    return 0
