"""`vmae cost`: CPU seconds and wall seconds by kind of job, from Snakemake's benchmark files."""

from __future__ import annotations

from pathlib import Path

import pytest

from vmae.cli import main as vmae
from vmae.report.cost import CostError, cost_by_kind, job_costs

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def bench(root: Path, relative: str, wall: float, cpu: float) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + f"{wall}\t0:00:00\t1\t1\t1\t1\t0\t0\t90\t{cpu}\n")


def test_cost_by_kind_splits_pretraining_by_method_and_sums(tmp_path, capsys):
    bench(tmp_path, "pretrain/videomae_synthetic-clean_f1.0_tube0.9_s0.tsv", 150.0, 140.0)
    bench(tmp_path, "pretrain/videomae_synthetic-clean_f1.0_tube0.9_s1.tsv", 160.0, 150.0)
    bench(tmp_path, "pretrain/mocov3_synthetic-clean_f1.0_s0.tsv", 130.0, 120.0)
    bench(tmp_path, "finetune/synthetic-clean/scratch_s0.tsv", 200.0, 190.0)
    table = cost_by_kind(job_costs(tmp_path)).set_index("kind")
    assert table.loc["pretrain/videomae", ["jobs", "cpu_s", "cpu_s_per_job", "wall_s"]].tolist() == [2, 290.0, 145.0,
                                                                                                   310.0]
    assert table.loc["pretrain/mocov3", "cpu_s"] == 120.0 and table.loc["finetune", "jobs"] == 1
    assert table.loc["total", ["jobs", "cpu_s"]].tolist() == [4, 600.0]
    out = tmp_path / "cost.csv"
    assert vmae(["cost", str(tmp_path), "--out", str(out)]) == 0
    assert out.read_text().startswith("kind,jobs,cpu_s,cpu_s_per_job,wall_s\n") and "pretrain/videomae" in capsys.readouterr().out


def test_a_folder_without_benchmarks_is_one_error(tmp_path):
    with pytest.raises(CostError, match="no benchmark files"):
        job_costs(tmp_path / "absent")
    assert vmae(["cost", str(tmp_path)]) == 2
