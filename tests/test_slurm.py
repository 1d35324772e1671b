"""The SLURM profile on a real (one-node, localhost) SLURM cluster (issue 15): the test workflow's
main table through workflow/profiles/slurm and snakemake-executor-plugin-slurm. Every job must go
through sbatch and reach SLURM with the CPUs, memory, time and partition its rule declared, and the
outputs must equal a local run's. Linux and root only (it installs Debian's slurm-wlm and munge when
missing, writes /etc/slurm/slurm.conf and starts the daemons; tests/fixtures/slurm.py)."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from fixtures.slurm import ClusterError, LocalCluster, install

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "workflow" / "config" / "test.yaml"
TARGET = "results/table_data_efficiency.csv"
TIMEOUT = 1500  # s (a few minutes alone; SLURM starts every job as its own Snakemake)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.slurm,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the test cluster needs Linux (slurm-wlm)"),
    pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                       reason="the test cluster needs root (apt-get, /etc/slurm/slurm.conf, munged)"),
    pytest.mark.skipif(importlib.util.find_spec("snakemake_executor_plugin_slurm") is None,
                       reason="snakemake-executor-plugin-slurm is not installed (pip install -e '.[slurm]')"),
]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}


def snakemake(work: Path, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(work),
               *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, env=env(), cwd=REPO, check=False)


def declared_jobs(output: str) -> dict[str, dict[str, str]]:
    """Snakemake's job blocks: jobid -> {"rule": name, resource: value, ...}."""
    jobs = {}
    for block in re.findall(r"^rule (\w+):\n((?:    .*\n)+)", output, re.MULTILINE):
        fields = dict(re.findall(r"^    (\w+): (.*)$", block[1], re.MULTILINE))
        resources = dict(item.split("=", 1) for item in fields.get("resources", "").split(", ") if "=" in item)
        jobs[fields["jobid"]] = {"rule": block[0], "threads": fields.get("threads", "1"), **resources}
    return jobs


def scontrol(job_id: str) -> dict[str, str]:
    """`scontrol show job -o`: key -> value (finished jobs stay listed for MinJobAge seconds)."""
    line = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True,
                          check=True).stdout
    return dict(re.findall(r"(\w+)=(\S*)", line))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    try:
        install()
        local = LocalCluster(tmp_path_factory.mktemp("slurm-state"))
        local.start()
    except ClusterError as err:
        pytest.skip(f"no test cluster: {err}")
    try:
        yield local
    finally:
        local.stop()


def test_test_workflow_runs_through_sbatch_with_the_declared_resources(cluster, tmp_path):
    # no accounting database on the test cluster, so sacct never reports: the plugin polls squeue
    # (MinJobAge=600 keeps finished jobs in squeue); a real cluster keeps the plugin's default.
    # The plugin deletes a successful job's log unless told to keep it: kept here, to read them.
    # The plugin's first status check waits 40 s after each submission: 1 s on this one-node cluster.
    result = snakemake(tmp_path / "slurm", "--workflow-profile", "workflow/profiles/slurm", "--configfile",
                       str(CONFIG), "--slurm-status-command", "squeue", "--slurm-keep-successful-logs",
                       "--slurm-init-seconds-before-status-checks", "1", "--seconds-between-status-checks", "2",
                       TARGET)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-5000:]
    declared = declared_jobs(out)
    submitted = dict(re.findall(r"^Job (\d+) has been submitted with SLURM jobid (\d+)", out, re.MULTILINE))
    assert len(declared) == 11 and sorted(submitted) == sorted(declared)  # every job went through sbatch
    rules = set()
    for job, slurm_id in submitted.items():
        want, got = declared[job], scontrol(slurm_id)
        rules.add(want["rule"])
        assert got["JobState"] == "COMPLETED", (want, got)
        assert f"rule_{want['rule']}" in got["Comment"], (want, got)
        assert got["NumCPUs"] == want["threads"], (want, got)
        assert got["MinMemoryNode"] == f"{want['mem_mb']}M", (want, got)
        assert got["TimeLimit"] == f"{int(want['runtime']) // 60:02d}:{int(want['runtime']) % 60:02d}:00", (want, got)
        assert got["Partition"] == want["slurm_partition"], (want, got)
        assert "gres/gpu" not in got.get("TresPerNode", "") and want["gpu"] == "0"
        logs = list((tmp_path / "slurm" / ".snakemake" / "slurm_logs").rglob(f"{slurm_id}.log"))
        assert len(logs) == 1 and f"localrule {want['rule']}:" in logs[0].read_text(), slurm_id
    assert rules == {"prepare_synthetic", "frame_cache", "pretrain", "finetune", "linprobe", "table"}, rules
    # training jobs ask for the GPU partition (the profile's placeholder names, both real here)
    assert {d["slurm_partition"] for d in declared.values() if d["rule"] in ("pretrain", "finetune")} == {"gpu"}

    local = snakemake(tmp_path / "local", TARGET, "--cores", "2", "--configfile", str(CONFIG))  # target first:
    # --configfile takes every file name that follows it
    assert local.returncode == 0, (local.stdout + local.stderr)[-3000:]
    timing = ["pretrain_s", "eval_s"]
    tables = [pd.read_csv(tmp_path / where / TARGET).drop(columns=timing) for where in ("slurm", "local")]
    pd.testing.assert_frame_equal(*tables)
    predictions = sorted((tmp_path / "local" / "results" / "eval").rglob("predictions.csv"))
    assert len(predictions) == 6
    for path in predictions:  # equal scores; the video paths differ only by the run's folder
        twin = tmp_path / "slurm" / path.relative_to(tmp_path / "local")
        ours = twin.read_text().replace(str(tmp_path / "slurm"), str(tmp_path / "local"))
        assert ours == path.read_text(), path
