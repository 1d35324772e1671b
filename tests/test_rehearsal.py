"""The paper's path, executed (issue 15): workflow/config/rehearsal.yaml (paper.yaml's datasets,
studies and rules; a tiny model, one epoch) from an empty results/ to every table, against the
package's mirror of the UCF101 / HMDB51 archives (vmae.rehearsal, `vmae mirror`) served on a
loopback HTTP server, and its SSv2 / K400 files placed under results/raw/. Then: a rerun does
nothing; a run killed mid-download and mid-training resumes (no verified archive fetched again, no
epoch lost); an already-extracted copy below --raw is used as it is, with no network. Fast tests:
the config's `extends` and `datasets.sources`, and its plan (the workflow's own mirror job first).
The README's command as written, with the mirror's file:// URLs, runs in CI (.ci/readme_commands.sh).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import yaml
from fixtures.loopback import Server

from vmae.data.registry import DatasetSpecError, load_spec, override_source
from vmae.rehearsal import archives, placed
from vmae.rehearsal.mirror import build_mirror
from vmae.report import studies
from vmae.train.checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "workflow" / "config"
REHEARSAL = CONFIGS / "rehearsal.yaml"
TIMEOUT = 1800  # s for the whole DAG (a few minutes alone; the test machine may be shared)
ARCHIVES = ["UCF101.rar", "UCF101TrainTestSplits-RecognitionTask.zip", "hmdb51_org.rar", "test_train_splits.rar"]
MIRROR_JOBS = {"mirror": 1}  # the rehearsal's own job: vmae mirror (workflow/rules/rehearsal.smk)
UCF_PRETRAIN = "results/pretrain/videomae_ucf101_f1.0_tube0.75_s0"

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="Snakemake shell rules need a POSIX shell")


def env() -> dict[str, str]:
    """The environment of a run: this checkout's vmae first on the import path."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}


def snakemake_args(work: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(work),
            *args]


def snakemake(work: Path, *args: str, timeout: int = TIMEOUT) -> subprocess.CompletedProcess:
    return subprocess.run(snakemake_args(work, *args), capture_output=True, text=True, timeout=timeout, env=env(), check=False)


def job_counts(output: str) -> dict[str, int]:
    block = output.split("Job stats:", 1)[1].split("total", 1)[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", block, re.MULTILINE)}


# --------------------------------------------------------------------------- the config


def paper_plan(work: Path) -> str:
    """The dry run (-n -p) of paper.yaml's whole DAG in ``work``."""
    result = snakemake(work, "-n", "-p", "--cores", "2", "--configfile", str(CONFIGS / "paper.yaml"), timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


def test_rehearsal_extends_paper_yaml_and_plans_the_same_jobs(tmp_path):
    """rehearsal.yaml holds only what differs; its DAG is paper.yaml's job for job, with the tiny
    model, one epoch, the paper's recipe files and the mirror's sources file, plus the job that
    builds that mirror from an empty checkout, which every real dataset's preparation waits for."""
    assert yaml.safe_load(REHEARSAL.read_text())["extends"] == "workflow/config/paper.yaml"
    plans = {"paper": paper_plan(tmp_path)}
    result = snakemake(tmp_path, "-n", "-p", "--cores", "2", "--configfile", str(REHEARSAL), timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    plans["rehearsal"] = result.stdout + result.stderr
    assert job_counts(plans["rehearsal"]) == {**MIRROR_JOBS, **job_counts(plans["paper"])}
    assert job_counts(plans["rehearsal"])["prepare"] == 4
    assert "vmae mirror --out results/mirror --raw results/raw > results/logs/mirror.log" in plans["rehearsal"]
    assert re.search(r"^rule mirror:\n(?:    .*\n)*?    reason: Missing output files: .*results/mirror/sources\.yaml",
                     plans["rehearsal"], re.MULTILINE)
    pretrain = _videomae_pretrain_line(plans["rehearsal"], "ucf101")  # whatever order Snakemake lists jobs in
    assert "--epochs 1 " in pretrain and "videomae_paper.yaml" in pretrain and "model.size=vit_micro" in pretrain
    assert "--epochs 3200" in _videomae_pretrain_line(plans["paper"], "ucf101")
    prepare = re.search(r"vmae prepare \S+/ucf101\.yaml .*$", plans["rehearsal"], re.MULTILINE)[0]
    assert "--raw results/raw/ucf101 --sources results/mirror/sources.yaml " in prepare
    assert "--sources" not in plans["paper"]


def _videomae_pretrain_line(plan: str, dataset: str) -> str:
    """The one VideoMAE pretraining command on ``dataset`` of a dry run's printed commands."""
    lines = [line for line in re.findall(rf"^.*vmae pretrain --data results/data/{dataset} .*$", plan, re.MULTILINE)
             if "--method videomae" in line]
    assert len(lines) == 1, lines
    return lines[0]


def _sources(path: Path, files: list[dict]) -> Path:
    path.write_text(yaml.safe_dump({"ucf101": {"kind": "download", "files": files}}))
    return path


def test_sources_file_replaces_urls_and_checksums_only_of_the_datasets_it_names(tmp_path):
    entry = {"url": "http://127.0.0.1:1/UCF101.rar", "filename": "UCF101.rar", "sha256": "a" * 64}
    path = _sources(tmp_path / "sources.yaml", [entry])
    spec = override_source(load_spec("ucf101"), path)
    assert spec.source == {"kind": "download", "files": [{**entry, "insecure": False, "extract": True}]}
    assert load_spec("ucf101").source["files"][0]["url"].startswith("https://www.crcv.ucf.edu/")  # file unchanged
    assert override_source(load_spec("hmdb51"), path) == load_spec("hmdb51")
    assert override_source(load_spec("ucf101"), None) == load_spec("ucf101")


@pytest.mark.parametrize(("files", "message"), [
    ([{"url": "http://x/a.rar", "filename": "a.rar", "sha256": "nothex"}],
     r"sources.yaml: ucf101: source.files.0.sha256: 'nothex': expected a string matching"),
    ([{"url": "http://x/a.rar", "filename": "../a.rar", "md5": "0" * 32}], r"ucf101: source.files.0.filename"),
    ([{"url": "http://x/a.rar", "filename": "a.rar"}], r"ucf101: source.files.0: .*expected one of: a sha256"),
])
def test_bad_sources_entry_names_the_file_dataset_and_field(tmp_path, files, message):
    with pytest.raises(DatasetSpecError, match=message):
        override_source(load_spec("ucf101"), _sources(tmp_path / "sources.yaml", files))


def test_sources_file_that_is_not_a_mapping_is_refused(tmp_path):
    (tmp_path / "s.yaml").write_text("- ucf101\n")
    with pytest.raises(DatasetSpecError, match=r"s.yaml: list: expected a mapping of dataset name -> source"):
        override_source(load_spec("ucf101"), tmp_path / "s.yaml")


# --------------------------------------------------------------------------- the mirror


def start_mirror(work: Path, rate: float | None = None) -> Server:
    """Everything the workflow's mirror job writes (archives, sources file, SSv2 / K400 under
    work/results/raw/), with the sources file's URLs on a loopback server that serves the archives
    (so the workflow finds its mirror built and does not run that job)."""
    server = Server(rate=rate)
    built = build_mirror(work / "results" / "mirror", work / "results" / "raw", base_url=server.url)
    server.files = {f"/{name}": path.read_bytes() for name, path in built["archives"].items()}
    return server


def fetched(server: Server) -> Counter:
    return Counter(path.lstrip("/") for path, _ in server.requests)


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory: pytest.TempPathFactory, rar_reader: str) -> dict:
    """The whole rehearsal DAG from an empty results/, then the same command again."""
    tmp = tmp_path_factory.mktemp("rehearsal")
    work = tmp / "work"
    paper = job_counts(paper_plan(tmp / "plan"))
    server = start_mirror(work)
    try:
        start = time.perf_counter()
        first = snakemake(work, "--cores", "2", "--configfile", str(REHEARSAL))
        seconds = time.perf_counter() - start
        assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-4000:]
        requests = fetched(server)
        again = snakemake(work, "--cores", "2", "--configfile", str(REHEARSAL))
        print(f"rehearsal: {seconds:.0f} s, {job_counts(first.stdout + first.stderr)}")
        return {"work": work, "first": first.stdout + first.stderr, "again": again, "seconds": seconds,
                "requests": requests, "requests_after_rerun": fetched(server), "paper": paper}
    finally:
        server.close()


@pytest.mark.slow
def test_rehearsal_runs_the_paper_dag_from_download_to_claims(rehearsal):
    work = rehearsal["work"]
    results = work / "results"
    counts = job_counts(rehearsal["first"])
    assert counts["prepare"] == 4 and counts["table"] == 6 and counts["claims"] == 1
    assert counts == rehearsal["paper"]  # paper.yaml's DAG, every job (the mirror was built: no mirror job)
    # each archive fetched once, whole; verified and unpacked where the paper's run puts it
    assert rehearsal["requests"] == Counter(dict.fromkeys(ARCHIVES, 1))
    raw = results / "raw"
    assert (raw / "ucf101" / "UCF101" / "UCF-101" / "HandstandPushups").is_dir()
    assert (raw / "hmdb51" / "hmdb51_org" / "kick_ball" / ".vmae-extracted.json").is_file()  # a RAR in a RAR
    sizes = {}
    for name in ("ucf101", "hmdb51", "ssv2", "k400"):
        data = results / "data" / name
        sizes[name] = (len(pd.read_csv(data / "train.csv")), len(pd.read_csv(data / "val.csv")))
        assert len((data / "classes.txt").read_text().splitlines()) == load_spec(name).num_classes
    assert sizes == dict.fromkeys(("ucf101", "hmdb51", "ssv2", "k400"), (16, 8))
    assert len((results / "data" / "k400" / "missing.txt").read_text().splitlines()) == 396  # as every copy lacks some
    # every table of the paper's studies, with a real number in each row
    for study in studies.DEFAULT_STUDIES:
        table = pd.read_csv(results / f"table_{study}.csv")
        assert len(table) > 0 and table["top1"].between(0, 100).all(), study
    claims = pd.read_csv(results / "table_claims.csv")
    assert set(claims["claim"]) == set(studies.FAMILIES[studies.PAPER].keys)
    assert len(list((results / "figures" / "reconstruct").glob("*.png"))) == 11
    log = json.loads((work / UCF_PRETRAIN / "metrics.json").read_text())
    assert log["config"]["optim"]["micro_batch_size"] == 2 and log["config"]["optim"]["batch_size"] == 4


@pytest.mark.slow
def test_rehearsal_rerun_does_nothing_and_fetches_nothing(rehearsal):
    again = rehearsal["again"]
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Nothing to be done" in again.stdout + again.stderr
    assert rehearsal["requests_after_rerun"] == rehearsal["requests"]


# --------------------------------------------------------------------------- interruptions


def _killed(work: Path, args: list[str], done) -> None:
    """Start the workflow and SIGKILL it with its jobs (a lost node) once ``done()`` holds."""
    proc = subprocess.Popen(snakemake_args(work, *args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, env=env())
    try:
        while not done():
            assert proc.poll() is None, "the workflow ended before the point of the kill"
            time.sleep(0.05)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.mark.slow
def test_killed_mid_download_and_mid_training_resumes(tmp_path, rar_reader):
    """UCF101's video archive, served at 100 kB/s, is killed half-way; the rerun fetches the rest
    with a Range request (the verified split zip is not fetched again). A 3-epoch pretraining is
    killed after its first epoch; the rerun resumes from resume.pt."""
    work = tmp_path / "work"
    server = start_mirror(work, rate=100_000)
    config = yaml.safe_load(REHEARSAL.read_text())
    config["recipes"]["videomae"]["by_dataset"]["ucf101"]["epochs"] = 3
    (tmp_path / "longer.yaml").write_text(yaml.safe_dump(config))
    args = ["--cores", "2", "--rerun-incomplete", f"{UCF_PRETRAIN}/checkpoint.pt", "--configfile",
            str(tmp_path / "longer.yaml")]
    part = work / "results" / "raw" / "ucf101" / "UCF101.rar.part"
    try:
        _killed(work, args, lambda: part.exists() and part.stat().st_size > 100_000)
        kept = part.stat().st_size
        zip_note = work / "results" / "raw" / "ucf101" / ".UCF101TrainTestSplits-RecognitionTask.zip.verified"
        assert zip_note.is_file() and kept < len(server.files["/UCF101.rar"])
        server.rate = None
        assert snakemake(work, "--unlock", "--configfile", str(tmp_path / "longer.yaml")).returncode == 0
        run = work / UCF_PRETRAIN
        _killed(work, args, lambda: (run / "resume.pt").exists())
        epoch = load_checkpoint(run / "resume.pt")["epoch"]
        assert snakemake(work, "--unlock", "--configfile", str(tmp_path / "longer.yaml")).returncode == 0
        rerun = snakemake(work, *args)
        assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    finally:
        server.close()
    ranges = [rng for path, rng in server.requests if path == "/UCF101.rar"]
    assert ranges[0] is None and len(ranges) == 2 and int(ranges[1].removeprefix("bytes=").rstrip("-")) >= kept
    assert fetched(server)["UCF101TrainTestSplits-RecognitionTask.zip"] == 1
    log = (work / "results" / "logs" / "pretrain" / "videomae_ucf101_f1.0_tube0.75_s0.log").read_text()
    assert re.search(rf"^resumed \S*/resume\.pt after epoch {epoch} ", log, re.MULTILINE), log
    lines = [json.loads(line)["epoch"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert lines == [1, 2, 3] and epoch in (1, 2)  # one line an epoch (1-based), none lost or repeated


# --------------------------------------------------------------------------- an extracted copy


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["ucf101", "hmdb51"])
def test_an_extracted_copy_is_prepared_without_any_download(tmp_path, dataset):
    """`vmae prepare` on a lab's unpacked copy (no archives), with the sources pointing at a server
    that records every request: nothing is requested, the manifests equal the mirror's."""
    raw = tmp_path / "raw"
    placed.write_tree(raw, archives.extracted_copy(dataset, tmp_path / "encode"))
    server = Server()
    try:
        entries = {"kind": "download", "files": [
            {**entry, "url": f"{server.url}/{entry['filename']}"} for entry in load_spec(dataset).source["files"]]}
        (tmp_path / "sources.yaml").write_text(yaml.safe_dump({dataset: entries}))
        result = subprocess.run(["vmae", "prepare", dataset, "--raw", str(raw), "--out", str(tmp_path / "out"),
                                 "--sources", str(tmp_path / "sources.yaml")], capture_output=True, text=True,
                                timeout=300, env=env(), check=False)
    finally:
        server.close()
    assert result.returncode == 0, result.stderr[-3000:]
    assert server.requests == []
    assert "nothing downloaded" in result.stderr
    train = pd.read_csv(tmp_path / "out" / "train.csv")
    assert len(train) == 16 and len(pd.read_csv(tmp_path / "out" / "val.csv")) == 8
    assert all(Path(p).is_file() and Path(p).is_relative_to(raw) for p in train["path"])
