"""Training curves (vmae.report.curves) from the log.jsonl beside each run's metrics.json."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
from matplotlib.image import imread

from vmae.cli import main as cli_main
from vmae.report import curves

VIDEOMAE = "videomae_tiny-clean_f1.0_tube0.75"
MOCO = "mocov3_tiny-clean_f1.0"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def write_run(folder: Path, losses: list[float], metrics: dict | None = None, extra: dict | None = None) -> Path:
    """A run folder: metrics.json and a log.jsonl of one line an epoch (``extra``: epoch -> fields)."""
    folder.mkdir(parents=True)
    lines = [{"epoch": e, "step": 2 * e, "loss": loss, "lr": 1e-3, "clips_per_s": 10.0, "wall_s": 1.0,
              "bad_videos": 0, **(extra or {}).get(e, {})} for e, loss in enumerate(losses, 1)]
    (folder / "log.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    (folder / "metrics.json").write_text(json.dumps(metrics or {"epochs": len(losses)}))
    return folder / "metrics.json"


@pytest.fixture()
def study_runs(tmp_path: Path) -> list[Path]:
    """Two VideoMAE seeds, one MoCo v3 run, a fine-tuning of each VideoMAE run (periodic evaluation at
    epoch 2 of 3), a scratch fine-tuning without it, and a linear probe (no log)."""
    results = tmp_path / "results"
    paths = [write_run(results / "pretrain" / f"{VIDEOMAE}_s{seed}", [0.9, 0.7, 0.6]) for seed in (0, 1)]
    paths.append(write_run(results / "pretrain" / f"{MOCO}_s0", [5.0, 4.0]))
    for seed in (0, 1):
        paths.append(write_run(results / "eval" / "tiny-clean" / "finetune" / f"{VIDEOMAE}_s{seed}", [2.3, 2.0, 1.5],
                               {"epochs": 3, "top1": 40.0 + seed}, extra={2: {"val_top1": 30.0 + seed}}))
    paths.append(write_run(results / "eval" / "tiny-clean" / "finetune" / "scratch_s0", [2.3, 2.2, 2.1],
                           {"epochs": 3, "top1": 20.0}))
    linprobe = results / "eval" / "tiny-clean" / "linprobe" / "scratch_s0"
    linprobe.mkdir(parents=True)
    (linprobe / "metrics.json").write_text(json.dumps({"top1": 15.0}))
    return [*paths, linprobe / "metrics.json"]


def test_each_run_gives_its_loss_curve_and_the_evaluations_end_at_the_final_top1(study_runs):
    found = {(c.panel, c.setting, c.seed): c for p in study_runs for c in curves.run_curves(p)}
    assert sorted(found) == sorted([
        ("VideoMAE pretraining", VIDEOMAE, 0), ("VideoMAE pretraining", VIDEOMAE, 1), ("MoCo v3 pretraining", MOCO, 0),
        ("fine-tune on tiny-clean", VIDEOMAE, 0), ("fine-tune on tiny-clean", VIDEOMAE, 1),
        ("fine-tune on tiny-clean", "scratch", 0),
        ("fine-tune on tiny-clean: top-1", VIDEOMAE, 0), ("fine-tune on tiny-clean: top-1", VIDEOMAE, 1)])
    assert found[("MoCo v3 pretraining", MOCO, 0)].values == [5.0, 4.0]
    evaluation = found[("fine-tune on tiny-clean: top-1", VIDEOMAE, 1)]
    assert (evaluation.epochs, evaluation.values, evaluation.y_label) == ([2, 3], [31.0, 41.0], "top-1 on the evaluation set (%)")


def test_figure_has_a_panel_a_kind_one_colour_a_setting_and_a_legend_that_fits(study_runs):
    fig = curves.draw([c for p in study_runs for c in curves.run_curves(p)], "Masking: training curves")
    axes = [ax for ax in fig.axes if ax.axison]
    assert [ax.get_title() for ax in axes] == ["VideoMAE pretraining", "MoCo v3 pretraining", "fine-tune on tiny-clean",
                                               "fine-tune on tiny-clean: top-1"]
    assert [len(ax.lines) for ax in axes] == [2, 1, 3, 2]  # one line a seed
    assert len({ax.lines[0].get_color() for ax in axes[:2]}) == 2  # VideoMAE and MoCo v3 apart
    assert axes[0].lines[0].get_color() == axes[2].lines[0].get_color()  # a fine-tuning takes its init's colour
    legend = fig.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == [VIDEOMAE, MOCO, "scratch"]
    fig.canvas.draw()
    box = legend.get_window_extent()
    assert box.x0 >= 0 and box.x1 <= fig.bbox.width and box.y0 >= 0  # inside the figure


def test_cli_writes_the_png_and_counts_runs_without_a_log(study_runs, tmp_path, capsys):
    out = tmp_path / "figures" / "masking_curves.png"
    assert cli_main(["curves", *map(str, study_runs), "--title", "Masking", "--out", str(out)]) == 0
    assert imread(out).shape[0] > 500
    assert f"Masking: 8 curves of 6 runs (1 without log.jsonl skipped) -> {out}" in capsys.readouterr().out


def test_runs_without_any_log_still_give_a_figure(study_runs, tmp_path):
    out = tmp_path / "none.png"
    assert cli_main(["curves", str(study_runs[-1]), "--out", str(out)]) == 0
    assert out.stat().st_size > 1000


def test_legend_columns_fit_the_width():
    assert curves.legend_columns(["a" * 40], 12.6) == 1
    assert curves.legend_columns(["a" * 40] * 5, 12.6) == 3  # 3.6 in a column
    assert curves.legend_columns(["scratch", "x"], 4.2) == 2
