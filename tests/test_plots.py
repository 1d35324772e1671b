"""Study figures (vmae.report.plots) from tables with the columns vmae.report.tables writes."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection
from matplotlib.image import imread

from vmae.cli import main as cli_main
from vmae.report import plots


def table(rows: list[dict]) -> pd.DataFrame:
    """A study table: defaults for the result columns, rows override."""
    base = {"top1_ci_low": np.nan, "top1_ci_high": np.nan, "top5": 90.0, "paper_dataset": np.nan,
            "paper_top1": np.nan, "method": "videomae", "protocol": "finetune", "target": "synthetic-clean"}
    return pd.DataFrame([{**base, **row} for row in rows])


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def whisker_spans(ax) -> list[tuple[float, float]]:
    """(low, high) of every vertical error-bar segment drawn on ``ax``."""
    from matplotlib.collections import LineCollection

    segments = [seg for c in ax.collections if isinstance(c, LineCollection) for seg in c.get_segments()]
    return sorted((round(float(s[:, 1].min()), 2), round(float(s[:, 1].max()), 2)) for s in segments if len(s))


def test_data_efficiency_bars_with_confidence_intervals_and_paper_points():
    rows = [
        {"target": target, "method": method, "protocol": protocol, "top1": top1, "top1_ci_low": top1 - 3.0,
         "top1_ci_high": top1 + 5.0,
         "paper_dataset": "UCF101" if target == "ucf-like" else np.nan,
         "paper_top1": {"scratch": 51.4, "mocov3": 81.7, "videomae": 91.3}[method] if target == "ucf-like" else np.nan}
        for target in ("synthetic-clean", "ucf-like")
        for method, top1 in (("scratch", 30.0), ("mocov3", 40.0), ("videomae", 50.0))
        for protocol in ("finetune", "linprobe")
    ]
    fig = plots.plot_study("data_efficiency", table(rows))
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["fine-tune", "linear probe"]
    heights = sorted(round(p.get_height(), 1) for p in axes[0].patches)
    assert heights == [30.0, 30.0, 40.0, 40.0, 50.0, 50.0]  # 2 targets x 3 methods
    scatters = [c for c in axes[0].collections if isinstance(c, PathCollection)]
    paper = np.concatenate([c.get_offsets()[:, 1] for c in scatters])
    assert sorted(v for v in paper if np.isfinite(v)) == [51.4, 81.7, 91.3]
    labels = [t.get_text() for t in axes[0].get_legend().get_texts()]
    assert sorted(labels) == ["MoCo v3", "VideoMAE", "paper (UCF101)", "scratch"]
    assert axes[0].get_ylabel() == "top-1 accuracy (%), mean and 95% CI over seeds (Student t)"
    assert whisker_spans(axes[0]) == [(27.0, 35.0)] * 2 + [(37.0, 45.0)] * 2 + [(47.0, 55.0)] * 2  # asymmetric


def test_a_single_seed_row_has_no_whisker():
    rows = [{"method": "scratch", "top1": 30.0},  # one seed: no interval
            {"method": "videomae", "top1": 50.0, "top1_ci_low": 45.0, "top1_ci_high": 55.0}]
    ax = plots.plot_study("data_efficiency", table(rows)).axes[0]
    assert whisker_spans(ax) == [(45.0, 55.0)]


def test_mask_ratio_curve_marks_the_papers_best_ratio():
    rows = [{"masking": "tube", "mask_ratio": r, "top1": 40 + 10 * r, "top1_ci_low": 39 + 10 * r,
             "top1_ci_high": 41 + 10 * r} for r in (0.95, 0.5, 0.9, 0.75)]
    fig = plots.plot_study("mask_ratio", table(rows))
    ax = fig.axes[0]
    line = ax.lines[0]
    assert line.get_xdata().tolist() == [0.5, 0.75, 0.9, 0.95]  # sorted by ratio
    assert np.allclose(line.get_ydata(), [45.0, 47.5, 49.0, 49.5])
    best = [ln for ln in ax.lines if ln.get_label().startswith("paper's best")]
    assert len(best) == 1 and best[0].get_xdata()[0] == 0.9
    assert ax.get_xlabel() == "mask ratio"


def test_data_size_curve_and_masking_bars():
    rows = [{"fraction": f, "pretrain_videos": int(240 * f), "top1": 30 + 20 * f} for f in (0.25, 0.5, 1.0)]
    ax = plots.plot_study("data_size", table(rows)).axes[0]
    assert ax.lines[0].get_xdata().tolist() == [0.25, 0.5, 1.0]
    rows = [{"masking": m, "mask_ratio": r, "top1": t} for m, r, t in (("tube", 0.9, 50), ("random", 0.9, 45), ("frame", 0.75, 35))]
    ax = plots.plot_study("masking", table(rows)).axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["tube 0.9", "random 0.9", "frame 0.75"]
    assert [p.get_height() for p in ax.patches] == [50, 45, 35]


def test_domain_shift_heatmap_values():
    rows = [
        {"source": "synthetic-clutter", "source_videos": 600, "top1": 62.5, "top1_ci_low": 58.0,
         "top1_ci_high": 67.0},
        {"source": "synthetic-clean", "source_videos": 240, "top1": 55.0},
    ]
    fig = plots.plot_study("domain_shift", table(rows))
    ax = fig.axes[0]
    image = ax.get_images()[0].get_array()
    assert image.shape == (2, 1)
    assert sorted(image.ravel().tolist()) == [55.0, 62.5]
    texts = sorted(t.get_text() for t in ax.texts)
    assert texts == ["55.0", "62.5\n[58.0, 67.0]"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["synthetic-clean\n(240 videos)", "synthetic-clutter\n(600 videos)"]


def test_cli_writes_a_png_of_the_expected_size(tmp_path):
    csv = tmp_path / "table_mask_ratio.csv"
    table([{"masking": "tube", "mask_ratio": r, "top1": 50.0} for r in (0.5, 0.9)]).to_csv(csv, index=False)
    out = tmp_path / "figures" / "mask_ratio.png"
    assert cli_main(["plot", "mask_ratio", "--table", str(csv), "--out", str(out), "--dpi", "50"]) == 0
    assert imread(out).shape[:2] == (round(4.2 * 50), round(6.5 * 50))
