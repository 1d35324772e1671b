"""`vmae curves METRICS.json... --out FIGURE.png`: the training curves of a set of runs (a study's),
read from the ``log.jsonl`` beside each ``metrics.json`` (one line an epoch, vmae.train.loop).

Panels: the pretraining loss of each method (VideoMAE and MoCo v3 losses have different scales),
the loss of each evaluation protocol on each target and, where its log holds periodic evaluations
(``eval_every``), the top-1 on the evaluation set by epoch, ending at the final top-1 of
``metrics.json``. One colour a setting (the run's name without its seed; an evaluation takes its
pretraining run's colour), one line a seed. Runs without a log (linear probes train no loop) are
skipped and counted.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from vmae.report import runs  # noqa: E402
from vmae.report.plots import METHOD_LABELS, PROTOCOL_LABELS  # noqa: E402
from vmae.train.run_files import LOG_NAME  # noqa: E402

MAX_COLUMNS = 3  # panels a row
PANEL_SIZE = (4.2, 3.2)  # inches a panel
LEGEND_CHAR_IN = 0.075  # inches a legend character takes (small font), to size the legend's columns
LEGEND_ROW_IN = 0.25  # inches a legend row takes
MARKERS_UP_TO = 12  # epochs: shorter curves mark their points


@dataclass(frozen=True)
class Curve:
    """One line of one panel."""

    panel: str  # the panel's title
    y_label: str
    setting: str  # its colour and legend entry
    seed: int
    epochs: list[int]
    values: list[float]


def read_log(path: Path) -> list[dict]:
    """The records of a ``log.jsonl``, one an epoch."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def pretrain_curves(folder: Path, records: list[dict]) -> list[Curve]:
    """The loss curve of the pretraining run in ``folder``."""
    run = runs.parse_pretrain_path(folder)
    return [Curve(f"{METHOD_LABELS[run.method]} pretraining", "loss", run.name.removesuffix(f"_s{run.seed}"),
                  run.seed, [r["epoch"] for r in records], [r["loss"] for r in records])]


def eval_curves(folder: Path, records: list[dict], metrics: dict) -> list[Curve]:
    """The loss curve of the evaluation in ``folder`` and, where it evaluated periodically, its top-1
    by epoch ending at the final one (``metrics``)."""
    run = runs.parse_eval_path(folder)
    setting = run.init_name.removesuffix(f"_s{run.seed}")
    where = f"{PROTOCOL_LABELS[run.protocol]} on {run.target}"
    curves = [Curve(where, "loss", setting, run.seed, [r["epoch"] for r in records], [r["loss"] for r in records])]
    val = [(r["epoch"], r["val_top1"]) for r in records if "val_top1" in r]
    if val:
        val.append((metrics["epochs"], metrics["top1"]))
        curves.append(Curve(f"{where}: top-1", "top-1 on the evaluation set (%)", setting, run.seed,
                            [e for e, _ in val], [v for _, v in val]))
    return curves


def run_curves(metrics_path: Path) -> list[Curve]:
    """The curves of the run whose ``metrics.json`` is ``metrics_path`` (none without a log)."""
    folder = metrics_path.parent
    log = folder / LOG_NAME
    if not log.is_file():
        return []
    if folder.parent.name == "pretrain":
        return pretrain_curves(folder, read_log(log))
    return eval_curves(folder, read_log(log), json.loads(metrics_path.read_text()))


def legend_columns(labels: list[str], width_in: float) -> int:
    """As many legend columns as the longest label lets fit across ``width_in``."""
    column_in = LEGEND_CHAR_IN * max(map(len, labels)) + 0.6  # + the line sample and the gap
    return max(1, min(len(labels), int(width_in // column_in)))


def draw(curves: list[Curve], title: str):
    """The figure: one panel per ``Curve.panel`` (in first-appearance order), a shared legend of
    the settings below them."""
    panels = list(dict.fromkeys(c.panel for c in curves))
    settings = list(dict.fromkeys(c.setting for c in curves))
    colours = {s: plt.get_cmap("tab10")(i % 10) for i, s in enumerate(settings)}
    rows = math.ceil(len(panels) / MAX_COLUMNS)
    cols = math.ceil(len(panels) / rows)  # rows as full as they can be: 4 panels are 2 x 2
    width = PANEL_SIZE[0] * cols
    legend_cols = legend_columns(settings, width)
    height = PANEL_SIZE[1] * rows + LEGEND_ROW_IN * (math.ceil(len(settings) / legend_cols) + 1)
    fig, axes = plt.subplots(rows, cols, figsize=(width, height), squeeze=False, layout="constrained")
    for ax, panel in zip(axes.flat, panels):
        for c in (c for c in curves if c.panel == panel):
            ax.plot(c.epochs, c.values, color=colours[c.setting], alpha=0.8, lw=1.2,
                    marker="o" if len(c.epochs) <= MARKERS_UP_TO else None, ms=3)
        ax.set(title=panel, xlabel="epoch", ylabel=next(c.y_label for c in curves if c.panel == panel))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(panels):]:
        ax.set_axis_off()
    handles = [Line2D([], [], color=colours[s], label=s) for s in settings]
    fig.legend(handles=handles, loc="outside lower center", ncols=legend_cols, fontsize="small")
    fig.suptitle(title)
    return fig


def draw_nothing(title: str):
    """The figure of a set of runs none of which has a log (a study of linear probes only, say)."""
    fig, ax = plt.subplots(figsize=PANEL_SIZE, layout="constrained")
    ax.text(0.5, 0.5, "no training logs (log.jsonl)\nbeside these runs", ha="center", va="center")
    ax.set_axis_off()
    fig.suptitle(title)
    return fig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("metrics", nargs="+", type=Path,
                        help="metrics.json of the runs (.../pretrain/<run>/ or .../eval/<target>/<protocol>/<init>/)")
    parser.add_argument("--out", required=True, type=Path, help="output PNG")
    parser.add_argument("--title", default="Training curves", help="the figure's title")
    parser.add_argument("--dpi", type=int, default=120)


def main(args: argparse.Namespace) -> int:
    # pretraining runs first: their panels lead
    paths = sorted(args.metrics, key=lambda p: p.parent.parent.name != "pretrain")
    per_run = [run_curves(p) for p in paths]
    curves = [c for found in per_run for c in found]
    fig = draw(curves, args.title) if curves else draw_nothing(args.title)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=args.dpi)
    plt.close(fig)
    skipped = sum(not found for found in per_run)
    print(f"{args.title}: {len(curves)} curves of {len(paths) - skipped} runs"
          f" ({skipped} without {LOG_NAME} skipped) -> {args.out}")
    return 0
