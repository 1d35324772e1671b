"""Study figures (vmae.report.plots) from tables with the columns vmae.report.tables writes: every
seed drawn beside its mean and 95% CI, the paper's numbers marked, and no text clipped or overlapping."""

from __future__ import annotations

import itertools

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.image import imread

from vmae.cli import main as cli_main
from vmae.report import plots
from vmae.report.studies import STUDIES

SEEDS = {"scratch": [28.0, 31.5, 30.0, 33.0, 27.5], "mocov3": [40.0, 44.0, 38.5, 41.0, 42.5],
         "videomae": [50.0, 55.5, 52.0, 49.0, 53.5]}


def by_seed(values: list[float]) -> str:
    """A ``top1_by_seed`` cell: "0:v0;1:v1;..."."""
    return ";".join(f"{seed}:{value:g}" for seed, value in enumerate(values))


def table(rows: list[dict]) -> pd.DataFrame:
    """A study table with every column `vmae table` writes that the figures read; rows override."""
    base = {"target": "synthetic-clean", "train_videos": 120, "method": "videomae", "protocol": "finetune",
            "masking": "tube", "mask_ratio": 0.9, "source": "synthetic-clean", "source_videos": 120,
            "fraction": 1.0, "pretrain_videos": 120, "n_seeds": 1, "top1": 50.0, "top1_ci_low": np.nan,
            "top1_ci_high": np.nan, "top1_by_seed": "0:50", "paper_dataset": np.nan, "paper_top1": np.nan}
    return pd.DataFrame([{**base, **row} for row in rows])


def seeded(values: list[float], **row) -> dict:
    """A row of several seeds: their mean, a 95% CI of +-2.5 around it, each seed's top-1."""
    mean = float(np.mean(values))
    return {"n_seeds": len(values), "top1": mean, "top1_ci_low": mean - 2.5, "top1_ci_high": mean + 2.5,
            "top1_by_seed": by_seed(values), **row}


def study_tables(seeds: int) -> dict[str, pd.DataFrame]:
    """A table for each study, shaped as the default config's (``seeds`` seeds a row)."""
    def row(top1: float, **columns) -> dict:
        return seeded([top1 + d for d in np.linspace(-3, 3, seeds)], **columns)

    clean, clutter = "synthetic-clean", "synthetic-clutter"
    return {
        "data_efficiency": table([row(v, method=m, protocol=p) for p in ("finetune", "linprobe")
                                  for m, v in (("scratch", 30), ("mocov3", 42), ("videomae", 55))]),
        "mask_ratio": table([row(40 + 10 * r, mask_ratio=r, paper_dataset="SSv2", paper_top1=66 + 4 * r)
                             for r in (0.5, 0.75, 0.9, 0.95)]),
        "masking": table([row(v, masking=m, mask_ratio=r) for m, r, v in (("tube", 0.9, 50), ("random", 0.9, 45),
                                                                           ("frame", 0.75, 35))]),
        "domain_shift": table([row(v, source=s, target=t, source_videos=n, method="scratch" if s == "scratch" else
                                   "videomae") for t in (clean, clutter)
                               for s, n, v in (("scratch", 0, 20), (clutter, 240, 45), (clean, 120, 55))]),
        "data_size": table([row(30 + 20 * f, fraction=f, pretrain_videos=round(120 * f)) for f in (0.33, 0.67, 1.0)]),
        "methods": table([row(v, method=m) for m, v in (("videomae", 55), ("videomaev2", 53))]),
        "masking_regime": table([row(v + (5 if n == 600 else 0), length=n, masking=m, mask_ratio=r)
                                 for n in (150, 600) for m, r, v in (("tube", 0.9, 40), ("random", 0.9, 45),
                                                                     ("tube", 0.5, 60))]),
    }


def paper_tables() -> dict[str, pd.DataFrame]:
    """Tables shaped as workflow/config/paper.yaml's (four targets, two methods, one seed), paper numbers in."""
    names = {"ucf101": "UCF101", "hmdb51": "HMDB51", "ssv2": "SSv2", "k400": "K400"}
    pairs = (("k400", "ssv2"), ("k400", "ucf101"), ("k400", "hmdb51"), ("ssv2", "ssv2"), ("ssv2", "k400"))
    return {
        "data_efficiency": table([{"target": t, "method": m, "protocol": p, "top1": v, "top1_by_seed": f"0:{v}",
                                   "paper_dataset": names[t], "paper_top1": v + 3} for p in ("finetune", "linprobe")
                                  for t in names for m, v in (("scratch", 30), ("mocov3", 42), ("videomae", 55))]),
        "domain_shift": table([{"source": s, "target": t, "method": m, "source_videos": 240000 if s == "k400" else
                                169000, "top1": 60.0, "top1_by_seed": "0:60", "paper_dataset": names[t],
                                "paper_top1": 65.0} for m in ("videomae", "mocov3") for s, t in pairs]),
        "masking": table([{"target": "ssv2", "masking": m, "mask_ratio": r, "top1": 50.0, "top1_by_seed": "0:50"}
                          for m, r in (("tube", 0.75), ("tube", 0.9), ("random", 0.9), ("frame", 0.875))]),
        "data_size": table([{"target": "ssv2", "fraction": f, "pretrain_videos": round(169000 * f), "top1": 40.0,
                             "top1_by_seed": "0:40"} for f in (0.25, 0.5, 1.0)]),
    }


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def drawn(ax, gid: str) -> list:
    """The artists on ``ax`` with ``gid`` (plots tags seeds, means, whiskers, paper numbers, curves)."""
    return [a for a in [*ax.collections, *ax.lines] if a.get_gid() == gid]


def points(ax, gid: str) -> np.ndarray:
    """(n, 2) x, y of every scatter point tagged ``gid`` on ``ax``."""
    offsets = [c.get_offsets() for c in drawn(ax, gid) if isinstance(c, PathCollection)]
    return np.concatenate(offsets) if offsets else np.empty((0, 2))


def means(ax) -> np.ndarray:
    """(n, 2) x, y of every mean marker on ``ax``."""
    return np.array([(line.get_xdata()[0], line.get_ydata()[0]) for line in drawn(ax, "mean")])


def whisker_spans(ax) -> list[tuple[float, float]]:
    """(low, high) of every CI whisker drawn on ``ax``, sorted."""
    segments = [s for c in drawn(ax, "ci") if isinstance(c, LineCollection) for s in c.get_segments()]
    return sorted((round(float(s[:, 1].min()), 2), round(float(s[:, 1].max()), 2)) for s in segments)


def shown_tick_labels(ax) -> list:
    """The tick labels matplotlib draws: those of ticks inside the view limits."""
    labels = []
    for axis, index in ((ax.xaxis, 0), (ax.yaxis, 1)):
        low, high = sorted(axis.get_view_interval())
        span = (high - low) * 1e-9
        labels += [t for t in axis.get_ticklabels() if low - span <= t.get_position()[index] <= high + span]
    return labels


def text_boxes(fig) -> list[tuple[str, object]]:
    """(name, window extent) of the figure's title, legend, and every panel's area, title, axis labels
    and visible tick labels, as drawn at the saved size."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [("suptitle", fig.get_suptitle() and fig._suptitle.get_window_extent(renderer))]
    boxes += [(f"legend {i}", legend.get_window_extent(renderer)) for i, legend in enumerate(fig.legends)]
    for i, ax in enumerate(fig.axes):
        texts = [ax.title, ax.xaxis.label, ax.yaxis.label, *shown_tick_labels(ax)]
        boxes += [(f"axes {i}: {t.get_text()!r}", t.get_window_extent(renderer)) for t in texts
                  if t.get_visible() and t.get_text()]
        boxes.append((f"axes {i} area", ax.get_window_extent(renderer)))
    return [(name, box) for name, box in boxes if box]


def assert_readable(fig) -> None:
    """No two texts (or a text and a panel) overlap, all lie inside the figure, none is under 8 pt."""
    boxes = text_boxes(fig)
    inside = fig.bbox
    for name, box in boxes:
        assert inside.x0 <= box.x0 and box.x1 <= inside.x1 and inside.y0 <= box.y0 and box.y1 <= inside.y1, name
    for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2):
        assert not box_a.overlaps(box_b), f"{a} overlaps {b}"
    sizes = [t.get_fontsize() for t in fig.findobj(plt.Text) if t.get_visible() and t.get_text()]
    assert min(sizes) >= 8


def test_seed_values_reads_the_table_cell():
    assert plots.seed_values("0:45.2;1:47;3:44.5") == [45.2, 47.0, 44.5]
    assert plots.seed_values(np.nan) == [] and plots.seed_values("") == []


def test_every_seed_is_a_point_beside_its_mean_and_no_bar_hides_it():
    rows = [seeded(values, method=method) for method, values in SEEDS.items()]  # 3 rows x 5 seeds
    ax = plots.plot_study("data_efficiency", table(rows)).axes[0]
    seeds = points(ax, "seeds")
    assert len(seeds) == 15 and not ax.patches  # every seed, and no bars
    centres = means(ax)
    assert np.allclose(centres[:, 1], [np.mean(v) for v in SEEDS.values()])
    for (x, _), values in zip(centres, SEEDS.values()):  # each row's seeds in its own strip, right of its mean
        strip = seeds[(seeds[:, 0] > x) & (seeds[:, 0] <= x + 0.8 / 3 / 2 + 1e-9)]  # within its half slot
        assert strip[:, 1].tolist() == values
        assert len(np.unique(strip[:, 0])) == 5  # spread apart, not stacked
    again = points(plots.plot_study("data_efficiency", table(rows)).axes[0], "seeds")
    assert np.array_equal(seeds, again)  # the spread is the same every time


def test_whiskers_span_each_rows_confidence_interval_and_one_seed_has_none():
    rows = [{"method": "scratch", "top1": 30.0, "top1_by_seed": "0:30"},  # one seed: no interval
            {"method": "mocov3", "top1": 40.0, "top1_ci_low": 37.0, "top1_ci_high": 45.0, "top1_by_seed": "0:38;1:42"},
            {"method": "videomae", "top1": 50.0, "top1_ci_low": 44.0, "top1_ci_high": 53.5,
             "top1_by_seed": "0:47;1:50;2:53"}]
    ax = plots.plot_study("data_efficiency", table(rows)).axes[0]
    assert whisker_spans(ax) == [(37.0, 45.0), (44.0, 53.5)]  # asymmetric, as the table says
    whisker_x = [s[0, 0] for c in drawn(ax, "ci") for s in c.get_segments()]
    assert np.allclose(whisker_x, means(ax)[1:, 0])  # through the mean
    assert len(points(ax, "seeds")) == 6


def test_papers_numbers_are_diamonds_left_of_the_mean_and_labelled():
    rows = [seeded(SEEDS[m], method=m, target=t, paper_dataset="UCF101" if t == "ucf-like" else np.nan,
                   paper_top1={"scratch": 51.4, "mocov3": 81.7, "videomae": 91.3}[m] if t == "ucf-like" else np.nan)
            for t in ("synthetic-clean", "ucf-like") for m in SEEDS]
    fig = plots.plot_study("data_efficiency", table(rows))
    ax = fig.axes[0]
    paper = points(ax, "paper")
    assert sorted(paper[:, 1]) == [51.4, 81.7, 91.3]
    diamond, dot = drawn(ax, "paper")[0].get_paths()[0], drawn(ax, "seeds")[0].get_paths()[0]
    assert not np.array_equal(diamond.vertices, dot.vertices)  # a marker of its own
    ucf = np.sort(means(ax)[means(ax)[:, 0] > 0.5, 0])  # scratch, MoCo v3, VideoMAE around x = 1
    assert np.all((ucf - 0.8 / 3 / 2 < paper[:, 0]) & (paper[:, 0] < ucf))  # each just left of its mean
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["scratch", "MoCo v3", "VideoMAE", plots.MEAN_LABEL, plots.SEED_LABEL, "paper (UCF101)"]
    assert plots.MEAN_LABEL == "mean, 95% CI over seeds (Student t)"
    assert ax.get_ylabel() == "top-1 accuracy (%)" and ax.get_title() == "fine-tune"


def test_mask_ratio_curve_joins_the_means_with_every_seed_and_the_papers_best_ratio():
    rows = [seeded([40 + 10 * r + d for d in (-1, 0, 2)], mask_ratio=r) for r in (0.95, 0.5, 0.9, 0.75)]
    fig = plots.plot_study("mask_ratio", table(rows))
    ax = fig.axes[0]
    (curve,) = drawn(ax, "curve")
    assert curve.get_xdata().tolist() == [0.5, 0.75, 0.9, 0.95]  # sorted by ratio
    assert np.allclose(curve.get_ydata(), [45 + 1 / 3, 47.5 + 1 / 3, 49 + 1 / 3, 49.5 + 1 / 3])
    assert len(points(ax, "seeds")) == 12
    assert whisker_spans(ax)[0] == (round(45 + 1 / 3 - 2.5, 2), round(45 + 1 / 3 + 2.5, 2))
    best = [ln for ln in ax.lines if ln.get_label().startswith("paper's best")]
    assert len(best) == 1 and best[0].get_xdata()[0] == 0.9
    assert "paper's best ratio (0.9)" in [t.get_text() for t in fig.legends[0].get_texts()]
    assert ax.get_xlabel() == "mask ratio"


def test_data_size_is_a_log2_axis_of_pretraining_videos():
    rows = [seeded([30 + 20 * f + d for d in (-2, 0, 2)], fraction=f, pretrain_videos=round(120 * f))
            for f in (1.0, 0.33, 0.67)]
    ax = plots.plot_study("data_size", table(rows)).axes[0]
    assert ax.get_xscale() == "log" and ax.xaxis.get_transform().base == 2
    (curve,) = drawn(ax, "curve")
    assert curve.get_xdata().tolist() == [40, 80, 120]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["40\n(0.33)", "80\n(0.67)", "120\n(1)"]
    seeds = points(ax, "seeds")
    assert len(seeds) == 9 and np.all(seeds[:, 0] > 40)


def test_masking_regime_draws_a_curve_per_setting_against_the_length_on_log2():
    ax = plots.plot_study("masking_regime", study_tables(6)["masking_regime"]).axes[0]
    assert ax.get_xscale() == "log" and ax.xaxis.get_transform().base == 2
    curves = drawn(ax, "curve")
    assert [c.get_xdata().tolist() for c in curves] == [[150, 600]] * 3
    assert [c.get_ydata().tolist() for c in curves] == [[40, 45], [45, 50], [60, 65]]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["150", "600"]
    assert [t.get_text() for t in ax.figure.legends[0].get_texts()][:3] == ["tube 0.9", "random 0.9", "tube 0.5"]


def test_masking_groups_its_strategies():
    rows = [seeded([t - 1, t, t + 1], masking=m, mask_ratio=r) for m, r, t in (("tube", 0.9, 50), ("random", 0.9, 45),
                                                                                ("frame", 0.75, 35))]
    ax = plots.plot_study("masking", table(rows)).axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["tube 0.9", "random 0.9", "frame 0.75"]
    assert means(ax)[:, 1].tolist() == [50, 45, 35] and len(points(ax, "seeds")) == 9


def test_domain_shift_has_a_series_per_source_and_the_scratch_control():
    fig = plots.plot_study("domain_shift", study_tables(3)["domain_shift"])
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["synthetic-clean", "synthetic-clutter"]
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels[:3] == ["none (scratch)", "synthetic-clutter (240 videos)", "synthetic-clean (120 videos)"]
    assert len(means(ax)) == 6 and len(points(ax, "seeds")) == 18
    two_methods = plots.plot_study("domain_shift", paper_tables()["domain_shift"])
    assert [t.get_text() for t in two_methods.legends[0].get_texts()][:2] == [
        "VideoMAE on k400 (240000 videos)", "VideoMAE on ssv2 (169000 videos)"]


@pytest.mark.parametrize("seeds", [1, 5])
@pytest.mark.parametrize("study", list(STUDIES))
def test_no_text_overlaps_or_leaves_the_figure(study, seeds):
    assert_readable(plots.plot_study(study, study_tables(seeds)[study]))


@pytest.mark.parametrize("study", ["data_efficiency", "domain_shift", "masking", "data_size"])
def test_paper_sized_figures_stay_readable(study):
    assert_readable(plots.plot_study(study, paper_tables()[study]))


def test_cli_writes_the_figure(tmp_path):
    csv = tmp_path / "table_data_efficiency.csv"
    study_tables(5)["data_efficiency"].to_csv(csv, index=False)
    out = tmp_path / "figures" / "data_efficiency.png"
    assert cli_main(["plot", "data_efficiency", "--table", str(csv), "--out", str(out), "--dpi", "50"]) == 0
    assert imread(out).shape[:2] == (round(4.2 * 50), round(2 * 5.5 * 50))  # two panels of 5.5 x 4.2 inches


def test_cli_names_the_columns_a_table_lacks(tmp_path, capsys):
    csv = tmp_path / "table_data_efficiency.csv"
    study_tables(5)["data_efficiency"].drop(columns="top1_by_seed").to_csv(csv, index=False)
    assert cli_main(["plot", "data_efficiency", "--table", str(csv), "--out", str(tmp_path / "f.png")]) == 2
    error = capsys.readouterr().err.strip()
    assert error == (f"vmae plot: error: {csv}: no column(s) ['top1_by_seed'] for the data_efficiency figure; "
                     "expected a table written by `vmae table` (rebuild it)")
    assert not (tmp_path / "f.png").exists()
