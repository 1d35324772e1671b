"""Faults and hostile paths in the Snakemake workflow (issue 14), on workflow/config/test.yaml.

Kills: a pretraining and a fine-tuning job SIGKILLed (with Snakemake, the whole process group)
after their first epochs resume on the rerun, the rerun after `snakemake --unlock` ends with the
numbers of an uninterrupted run, a changed config refuses the killed run's state, and a `table`
job killed half-way through writing is redone, its half-written file never used. Paths: the
workflow runs from a checkout whose path holds a space and a quote, with a raw-data folder whose
path holds a space and a `;`; every path reaches its command as one argument.

Snakemake runs as ``python -m snakemake`` so that a test can put a `vmae` of its own first on the
PATH (a console script would let a version manager put its own folder first).
"""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from vmae.train.checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parents[1]
TEST_CONFIG = REPO / "workflow" / "config" / "test.yaml"
PRETRAIN = "results/pretrain/videomae_tiny-clean_f1.0_tube0.75_s0"
FINETUNE = "results/eval/tiny-clean/finetune/scratch_s0"
LOGS = {"pretrain": "results/logs/pretrain/videomae_tiny-clean_f1.0_tube0.75_s0.log",
        "finetune": "results/logs/finetune/tiny-clean/scratch_s0.log"}
PRETRAIN_EPOCHS, FINETUNE_EPOCHS = 8, 6  # a kill after epoch 1 finds them mid-run
TIMEOUT = 1200  # s for one Snakemake run (seconds of work, but the test machine may be busy)

pytestmark = pytest.mark.skipif(importlib.util.find_spec("snakemake") is None, reason="snakemake is not installed")


def snakemake_args(workdir: Path, *args: str, snakefile: Path = REPO / "Snakefile") -> list[str]:
    return [sys.executable, "-m", "snakemake", "--snakefile", str(snakefile), "--directory", str(workdir), *args]


def snakemake(workdir: Path, *args: str, snakefile: Path = REPO / "Snakefile", timeout: int = TIMEOUT,
              **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(snakemake_args(workdir, *args, snakefile=snakefile), capture_output=True, text=True,
                          timeout=timeout, **kwargs)


def output(result: subprocess.CompletedProcess) -> str:
    return result.stdout + result.stderr


def write_config(path: Path, change=None) -> Path:
    config = yaml.safe_load(TEST_CONFIG.read_text())
    if change is not None:
        change(config)
    path.write_text(yaml.safe_dump(config))
    return path


def log_epochs(run: Path) -> list[int]:
    return [json.loads(line)["epoch"] for line in (run / "log.jsonl").read_text().splitlines()]


def metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def longer_training(config: dict) -> None:
    config["recipes"]["videomae"]["epochs"] = PRETRAIN_EPOCHS
    config["recipes"]["finetune"]["epochs"] = FINETUNE_EPOCHS
    # the main table of this config: the scratch fine-tuning only (seed 0)
    config["studies"]["data_efficiency"].update(methods=["scratch"], protocols=["finetune"], seeds=[0])


# --------------------------------------------------------------------------- kills


def kill_after_first_epoch(work: Path, args: list[str], run: Path) -> dict:
    """Start the workflow and SIGKILL it, Snakemake and its jobs together (as a lost node or an OOM
    kill would), once ``run`` has finished an epoch. What the kill left: epoch, files, the lock."""
    proc = subprocess.Popen(snakemake_args(work, *args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        while not (run / "resume.pt").exists():
            assert proc.poll() is None, f"the workflow ended before {run.name} finished an epoch"
            time.sleep(0.05)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return {"epoch": load_checkpoint(run / "resume.pt")["epoch"], "finished": (run / "metrics.json").exists(),
            "locked": any((work / ".snakemake" / "locks").iterdir())}


@pytest.fixture(scope="module")
def killed_and_resumed(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A pretraining and a fine-tuning, each SIGKILLed with Snakemake after an epoch or more (one
    after the other: their speeds under load are unknown), the pretraining then rerun under a
    changed config (refused), and both, after `--unlock`, under the same config (resumed)."""
    tmp = tmp_path_factory.mktemp("killed")
    work, config = tmp / "work", write_config(tmp / "config.yaml", longer_training)
    targets = {"pretrain": f"{PRETRAIN}/metrics.json", "finetune": f"{FINETUNE}/metrics.json"}
    found = {"kills": {}}
    for kind, run in (("pretrain", work / PRETRAIN), ("finetune", work / FINETUNE)):
        found["kills"][kind] = kill_after_first_epoch(work, ["--cores", "2", targets[kind], "--configfile",
                                                             str(config)], run)
        unlock = snakemake(work, "--unlock", "--configfile", str(config))
        assert unlock.returncode == 0, output(unlock)

    changed = write_config(tmp / "changed.yaml", longer_training)
    changed_cfg = yaml.safe_load(changed.read_text())
    changed_cfg["recipes"]["videomae"]["overrides"] = ["optim.base_lr=0.02"]
    changed.write_text(yaml.safe_dump(changed_cfg))
    refused = snakemake(work, "--cores", "2", targets["pretrain"], "--configfile", str(changed), timeout=TIMEOUT)
    found["changed_rc"], found["changed_log"] = refused.returncode, (work / LOGS["pretrain"]).read_text()
    found["after_refusal"] = load_checkpoint(work / PRETRAIN / "resume.pt")["epoch"]

    args = ["--cores", "2", *targets.values(), "--configfile", str(config)]
    rerun = snakemake(work, *args, timeout=TIMEOUT)
    assert rerun.returncode == 0, output(rerun)[-3000:]
    found["logs"] = {kind: (work / log).read_text() for kind, log in LOGS.items()}
    return {"work": work, "config": config, "args": args, **found}


@pytest.mark.slow
def test_killed_training_jobs_resume_after_unlock(killed_and_resumed):
    k = killed_and_resumed
    work = k["work"]
    for kind, run, epochs in (("pretrain", work / PRETRAIN, PRETRAIN_EPOCHS),
                              ("finetune", work / FINETUNE, FINETUNE_EPOCHS)):
        kill = k["kills"][kind]
        assert not kill["finished"], f"{kind} ended before the kill: raise its epochs"
        assert kill["locked"]  # hence the README's `snakemake --unlock` before the rerun
        done = kill["epoch"]
        assert 1 <= done < epochs
        resumed = rf"resumed \S*{re.escape(run.name)}/resume\.pt after epoch {done} "
        assert re.search(resumed, k["logs"][kind]), k["logs"][kind]
        assert log_epochs(run) == list(range(1, epochs + 1))  # one line an epoch, one run
        assert not (run / "resume.pt").exists() and load_checkpoint(run / "checkpoint.pt")["epoch"] == epochs
        assert metrics(run)["epochs"] == epochs


@pytest.mark.slow
def test_changed_config_refuses_the_killed_runs_state(killed_and_resumed):
    k = killed_and_resumed
    assert k["changed_rc"] != 0
    assert re.search(r"resume\.pt was written by a run with a different config \(optim\.base_lr: [^;]*"
                     r"saved, 0\.02 now\)", k["changed_log"]), k["changed_log"]
    assert k["after_refusal"] == k["kills"]["pretrain"]["epoch"]  # the refused state is left as it was


@pytest.mark.slow
def test_resumed_training_equals_an_uninterrupted_run(killed_and_resumed):
    k = killed_and_resumed
    work, runs = k["work"], [k["work"] / PRETRAIN, k["work"] / FINETUNE]
    resumed = [metrics(run) for run in runs]
    resumed_models = [load_checkpoint(run / "checkpoint.pt")["model"] for run in runs]
    predictions = (work / FINETUNE / "predictions.csv").read_text()
    again = snakemake(work, *k["args"], "--forcerun", "pretrain", "finetune", timeout=TIMEOUT)  # afresh
    assert again.returncode == 0, output(again)[-3000:]
    for run, log, before, model in zip(runs, LOGS.values(), resumed, resumed_models):
        assert "resumed" not in (work / log).read_text()  # a finished run leaves no resume.pt: a fresh start
        assert log_epochs(run) == list(range(1, before["epochs"] + 1))
        assert metrics(run)["final_loss"] == before["final_loss"]  # CPU runs are bit-identical
        straight = load_checkpoint(run / "checkpoint.pt")["model"]
        assert all(torch.equal(straight[name], value) for name, value in model.items())
    assert metrics(work / FINETUNE)["top1"] == resumed[1]["top1"]
    assert (work / FINETUNE / "predictions.csv").read_text() == predictions


FAKE_VMAE = """#!/bin/sh
# `vmae` that, for `vmae table`, dies like a killed machine half-way through writing the table.
# Snakemake marks a job's outputs incomplete just after starting it; a real `vmae` takes a second
# or more to start, so like it this one writes only once the marks are there (or after 10 s).
if [ "$1" = table ]; then
  for i in $(seq 100); do [ -n "$(ls -A .snakemake/incomplete 2>/dev/null)" ] && break; sleep 0.1; done
  prev=""
  for arg; do [ "$prev" = --out ] && out="$arg"; prev="$arg"; done
  printf 'target,train_videos,meth' > "$out"
  kill -KILL 0
fi
exec {real} "$@"
"""


@pytest.mark.slow
def test_killed_table_job_is_redone_never_used(killed_and_resumed, tmp_path):
    k = killed_and_resumed
    work, table = k["work"], k["work"] / "results" / "table_data_efficiency.csv"
    fake = tmp_path / "bin" / "vmae"
    fake.parent.mkdir()
    fake.write_text(FAKE_VMAE.format(real=shlex.quote(shutil.which("vmae"))))
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{fake.parent}{os.pathsep}{os.environ['PATH']}"}
    args = ["--cores", "2", "results/table_data_efficiency.csv", "--configfile", str(k["config"])]
    killed = subprocess.run(snakemake_args(work, *args), capture_output=True, text=True, env=env, timeout=TIMEOUT,
                            start_new_session=True)  # its own process group: `kill -KILL 0` ends it only
    assert killed.returncode == -signal.SIGKILL, output(killed)[-3000:]
    assert table.read_text() == "target,train_videos,meth"  # what the kill left behind
    assert snakemake(work, "--unlock", "--configfile", str(k["config"])).returncode == 0
    refused = snakemake(work, *args)  # Snakemake knows the job never finished: it does not use the file
    assert refused.returncode != 0 and "IncompleteFilesException" in output(refused), output(refused)[-3000:]
    assert "results/table_data_efficiency.csv" in output(refused)
    redone = snakemake(work, *args, "--rerun-incomplete", timeout=TIMEOUT)
    assert redone.returncode == 0, output(redone)[-3000:]
    with table.open() as f:
        rows = list(csv.DictReader(f))  # the table of the one run, whole
    assert [(row["method"], row["protocol"]) for row in rows] == [("scratch", "finetune")]
    assert float(rows[0]["top1"]) == pytest.approx(metrics(work / FINETUNE)["top1"])


# --------------------------------------------------------------------------- hostile paths


def hostile_checkout(tmp_path: Path) -> Path:
    """The working tree's files (tracked and new, not ignored) in a folder named with a space and a quote."""
    checkout = tmp_path / "it's a checkout"
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split("\0")
    for name in filter(None, files):
        if (REPO / name).is_file():
            (checkout / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, checkout / name)
    return checkout


def add_manual_dataset(checkout: Path) -> None:
    """tiny-manual: tiny-clean's settings, read from <datasets.raw>/tiny-manual in the `folder` format."""
    specs = checkout / "tests" / "workflow" / "datasets"
    spec = yaml.safe_load((specs / "tiny-clean.yaml").read_text())
    spec.update(name="tiny-manual", description="tiny-clean's videos, placed by hand",
                source={"kind": "manual", "instructions": "copied by the test"}, format="folder")
    (specs / "tiny-manual.yaml").write_text(yaml.safe_dump(spec))


def hostile_config(path: Path, raw: Path) -> Path:
    def change(config):
        config["datasets"]["raw"] = str(raw)
        config["datasets"]["frame_cache"] = True
        config["studies"]["data_efficiency"].update(targets=["tiny-manual"], methods=["videomae"],
                                                    protocols=["finetune", "linprobe"], seeds=[0])

    write_config(path, change)
    return path


def shell_commands(out: str) -> list[str]:
    return [line.split("Shell command: ", 1)[1] for line in out.splitlines()
            if "Shell command: " in line and not line.endswith("None")]


@pytest.mark.slow
def test_dry_run_commands_quote_paths_with_spaces_quotes_and_semicolons(tmp_path):
    checkout = hostile_checkout(tmp_path)
    add_manual_dataset(checkout)
    raw = "/tmp/My Projects/raw; touch PWNED"
    config = hostile_config(tmp_path / "config.yaml", Path(raw))
    result = snakemake(tmp_path / "work dir", "--dry-run", "--printshellcmds", "--cores", "2",
                       "--configfile", str(config), snakefile=checkout / "Snakefile")
    assert result.returncode == 0, output(result)[-3000:]
    commands = shell_commands(output(result))
    assert len(commands) > 20  # the whole test DAG
    prepare = next(c for c in commands if "vmae prepare" in c and "tiny-manual" in c)
    words = shlex.split(prepare)
    assert words[words.index("--raw") + 1] == f"{raw}/tiny-manual"  # one argument
    assert words[words.index("prepare") + 1] == str(checkout / "tests/workflow/datasets/tiny-manual.yaml")
    assert "PWNED" not in prepare.replace(shlex.quote(f"{raw}/tiny-manual"), "")
    for command in commands:  # every path into the checkout arrives whole
        for word in shlex.split(command):
            if "checkout" in word or "it's" in word:
                assert word.startswith(str(checkout) + "/"), (word, command)


@pytest.mark.slow
def test_workflow_runs_from_a_checkout_with_a_space_and_a_quote(tmp_path, tiny_dataset):
    """Every rule (prepare with --raw, cache, subset, show, pretrain, reconstruct, finetune and
    linprobe with --init, table with its figure) for real, from a checkout named `it's a checkout`, with
    datasets.raw `raw data;touch pwned;` (unquoted, that would run `touch pwned`)."""
    checkout = hostile_checkout(tmp_path)
    add_manual_dataset(checkout)
    raw = tmp_path / "raw data;touch pwned;"
    shutil.copytree(tiny_dataset / "videos", raw / "tiny-manual")  # train/<class>/*.avi, val/<class>/*.avi
    config = hostile_config(tmp_path / "config.yaml", raw)
    work, cwd = tmp_path / "work dir", tmp_path / "cwd"
    cwd.mkdir()
    run = "videomae_tiny-manual_f1.0_tube0.75_s0"
    targets = ["results/table_data_efficiency.csv", "results/figures/data_efficiency.png",
               "results/figures/samples/tiny-manual.png", f"results/figures/reconstruct/{run}.png",
               "results/data/tiny-manual/train_frac0.5_s0.csv"]
    dry = snakemake(work, "--dry-run", "--cores", "2", "--configfile", str(config), snakefile=checkout / "Snakefile",
                    cwd=cwd)
    assert dry.returncode == 0, output(dry)[-3000:]
    result = snakemake(work, "--cores", "2", *targets, "--configfile", str(config), snakefile=checkout / "Snakefile",
                       cwd=cwd, timeout=3 * TIMEOUT)
    assert result.returncode == 0, output(result)[-3000:]
    rules = {m for m in re.findall(r"^(?:local)?rule (\w+):", result.stdout + result.stderr, re.MULTILINE)}
    assert rules == {"prepare", "frame_cache", "subset", "show", "pretrain", "reconstruct", "finetune", "linprobe",
                     "table"}
    assert all((work / target).is_file() for target in targets)
    info = json.loads((work / "results/data/tiny-manual/dataset.json").read_text())
    assert str(raw / "tiny-manual") in json.dumps(info)  # --raw arrived whole
    train = (work / "results/data/tiny-manual/train.csv").read_text().splitlines()
    assert len(train) == 21 and train[1].startswith(str(raw / "tiny-manual" / "train"))
    assert metrics(work / "results/eval/tiny-manual/finetune" / run)["init"].endswith(f"{run}/checkpoint.pt")
    assert not list(tmp_path.rglob("pwned")) and not list(tmp_path.rglob("PWNED"))
    assert list(cwd.iterdir()) == []  # nothing written where Snakemake was started
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [checkout.name, raw.name, work.name, cwd.name, "config.yaml"])
    assert sorted(p.name for p in work.iterdir()) == [".snakemake", "results"]
