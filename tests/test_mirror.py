"""The rehearsal's mirror (vmae.rehearsal, `vmae mirror`, the workflow's rule `mirror`) and who may
name local files: a dataset file never, a `datasets.sources` file only files in its own folder.
Fast tests check the rules and the errors; the slow ones build the whole mirror once and prepare
UCF101 from its file:// URLs."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from fixtures.specs import user_spec

from vmae import cli
from vmae.data.registry import DatasetSpecError, load_spec, override_source
from vmae.rehearsal import placed
from vmae.rehearsal.layout import ARCHIVES, PLACED_NOTE, MirrorConfigError, workflow_outputs
from vmae.rehearsal.rar4 import rar_bytes

REPO = Path(__file__).resolve().parents[1]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}


# --------------------------------------------------------------------------- local files


def test_a_dataset_file_may_not_name_a_local_file(tmp_path):
    source = {"kind": "download", "files": [{"url": "file:///etc/passwd", "filename": "passwd", "insecure": True}]}
    with pytest.raises(DatasetSpecError, match=r"evil.yaml: source.files.0.url: 'file:///etc/passwd': expected an "
                                               r"https:// or http:// URL; a dataset file may not name local files"):
        user_spec(tmp_path, "evil", source=source)


def _sources(folder: Path, url: str) -> Path:
    path = folder / "sources.yaml"
    path.write_text(yaml.safe_dump({"ucf101": {"kind": "download", "files": [
        {"url": url, "filename": "UCF101.rar", "sha256": "a" * 64}]}}))
    return path


@pytest.fixture
def mirror_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "mirror"
    folder.mkdir()
    (folder / "UCF101.rar").write_bytes(b"rar")
    (tmp_path / "secret").write_text("not the mirror's")
    (folder / "link.rar").symlink_to(tmp_path / "secret")
    return folder


@pytest.mark.parametrize("url", ["file://{folder}/UCF101.rar", "file://localhost{folder}/UCF101.rar",
                                 "file://{folder}/sub/../UCF101.rar"])
def test_a_sources_file_may_name_files_in_its_own_folder(mirror_folder, url):
    spec = override_source(load_spec("ucf101"), _sources(mirror_folder, url.format(folder=mirror_folder)))
    assert spec.source["files"][0]["url"] == url.format(folder=mirror_folder)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "file://{folder}/../secret", "file://{folder}/link.rar",
                                 "file://{folder}", "file://elsewhere{folder}/UCF101.rar"])
def test_a_sources_file_may_not_name_files_outside_its_folder(mirror_folder, url):
    url = url.format(folder=mirror_folder)
    with pytest.raises(DatasetSpecError, match=rf"sources.yaml: ucf101: source.files.0.url: '{url}': expected a "
                                               rf"file:// URL of a file in {mirror_folder} \(the sources file's own "
                                               r"folder\), or an http\(s\):// URL$"):
        override_source(load_spec("ucf101"), _sources(mirror_folder, url))


# --------------------------------------------------------------------------- the command and the rule


def test_rar_writer_marks_and_checksums_its_blocks():
    data = rar_bytes({"a/b.txt": b"hello"})
    assert data.startswith(b"Rar!\x1a\x07\x00") and b"a\\b.txt" in data and data.endswith(b"\x7b\x00\x40\x07\x00")


@pytest.mark.parametrize(("argv", "message"), [
    (["mirror"], "vmae mirror: error: nothing to write: expected --out (archives + sources.yaml), --raw"),
    (["mirror", "--out", "m", "--base-url", "ftp://host/m"],
     "vmae mirror: error: --base-url 'ftp://host/m': expected an http:// or https:// URL"),
])
def test_mirror_command_errors_are_one_line(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []  # refused before anything is written


def test_placement_refuses_a_folder_holding_other_files(tmp_path):
    raw = tmp_path / "ssv2"
    (raw / "20bn-something-something-v2").mkdir(parents=True)
    (raw / "20bn-something-something-v2" / "1.webm").write_bytes(b"a real video")
    (raw / ".mine.tmp").write_bytes(b"")  # hidden files (a killed run's temporary files) do not count
    members = {"20bn-something-something-v2/74225.webm": b"stand-in"}
    with pytest.raises(placed.PlacementError, match=rf"{raw}: holds 1 file\(s\) the rehearsal's mirror does not "
                                                    r"write \(first: 20bn-something-something-v2/1.webm\): expected "
                                                    "an empty folder"):
        placed.check_empty(raw, "ssv2", members)
    (raw / "20bn-something-something-v2" / "1.webm").unlink()
    placed.write_tree(raw, members)
    placed.check_empty(raw, "ssv2", members)  # a folder the mirror filled: a rerun may write it again


def test_workflow_outputs_of_the_mirror_rule():
    outputs = workflow_outputs({"sources": "results/mirror/sources.yaml", "raw": "results/raw"})
    assert outputs["folder"] == "results/mirror"
    assert outputs["archives"] == [f"results/mirror/{name}" for name in ARCHIVES]
    assert outputs["placed"] == {"ssv2": f"results/raw/ssv2/{PLACED_NOTE}", "k400": f"results/raw/k400/{PLACED_NOTE}"}
    for sources in (None, "results/mirror/lab.yaml"):
        with pytest.raises(MirrorConfigError, match=rf"datasets.sources: {sources!r}: expected <folder>/sources.yaml"):
            workflow_outputs({"sources": sources, "raw": "results/raw"})


def test_rehearsal_dry_run_plans_the_mirror_first_and_nothing_without_it(tmp_path):
    """From an empty working directory the rehearsal's first job is `vmae mirror`, and the four real
    datasets' preparations read its sources file; with the mirror in place no mirror job is planned,
    and the default study (datasets.mirror false) has no such rule."""
    def plan(*args: str) -> str:
        result = subprocess.run([sys.executable, "-m", "snakemake", "-n", "-p", "--cores", "2", "--snakefile",
                                 str(REPO / "Snakefile"), "--directory", str(tmp_path), *args],
                                capture_output=True, text=True, timeout=300, env=env(), check=False)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        return result.stdout + result.stderr

    rehearsal = ["results/data/ssv2/train.csv", "results/data/ucf101/train.csv", "--configfile",
                 str(REPO / "workflow" / "config" / "rehearsal.yaml")]
    out = plan(*rehearsal)
    assert "vmae mirror --out results/mirror --raw results/raw > results/logs/mirror.log 2>&1" in out
    assert out.count("input: results/mirror/sources.yaml, ") == 2
    for name in [*ARCHIVES, "sources.yaml"]:
        (tmp_path / "results" / "mirror" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "results" / "mirror" / name).write_text("")
    for name in ("ssv2", "k400"):
        (tmp_path / "results" / "raw" / name).mkdir(parents=True)
        (tmp_path / "results" / "raw" / name / PLACED_NOTE).write_text("{}")
    assert "vmae mirror" not in plan(*rehearsal)
    assert "rule mirror" not in plan("results/table_data_efficiency.csv")


# --------------------------------------------------------------------------- the whole mirror


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`vmae mirror --out mirror --raw raw` run twice in one folder (the second as a rerun of the
    workflow's job finds the first one's placed files)."""
    work = tmp_path_factory.mktemp("mirror")
    digests = []
    for _ in range(2):
        result = subprocess.run(["vmae", "mirror", "--out", "mirror", "--raw", "raw"], cwd=work, capture_output=True,
                                text=True, timeout=300, env=env(), check=False)
        assert result.returncode == 0, result.stderr[-3000:]
        digests.append({p.relative_to(work).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                        for p in sorted(work.rglob("*")) if p.is_file()})
    assert digests[0] == digests[1]  # the same bytes every time
    return work


@pytest.mark.slow
def test_mirror_writes_the_official_archives_and_their_sources(built):
    mirror = built / "mirror"
    assert sorted(p.name for p in mirror.iterdir()) == sorted([*ARCHIVES, "sources.yaml"])
    sources = yaml.safe_load((mirror / "sources.yaml").read_text())
    assert list(sources) == ["ucf101", "hmdb51"]
    for dataset, source in sources.items():
        official = load_spec(dataset).source["files"]
        assert [e["filename"] for e in source["files"]] == [e["filename"] for e in official]
        for entry, original in zip(source["files"], official):
            path = mirror / entry["filename"]
            assert entry["url"] == path.resolve().as_uri()
            algorithm = "sha256" if "sha256" in original else "md5"
            assert entry[algorithm] == hashlib.new(algorithm, path.read_bytes()).hexdigest()
            assert entry.get("size", path.stat().st_size) == path.stat().st_size
            assert entry.get("provides") == original.get("provides")
        assert override_source(load_spec(dataset), mirror / "sources.yaml").source["files"][0]["url"].startswith(
            "file://")
    for name in ("ssv2", "k400"):
        note = yaml.safe_load((built / "raw" / name / PLACED_NOTE).read_text())
        assert note["files"] and all((built / "raw" / name / f).is_file() for f in note["files"])


@pytest.mark.slow
def test_ucf101_is_prepared_from_the_mirrors_file_urls(built, rar_reader, tmp_path):
    result = subprocess.run(["vmae", "prepare", "ucf101", "--raw", str(tmp_path / "raw"), "--out",
                             str(tmp_path / "out"), "--sources", str(built / "mirror" / "sources.yaml")],
                            capture_output=True, text=True, timeout=300, env=env(), check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    out = tmp_path / "out"
    assert len(pd.read_csv(out / "train.csv")) == 16 and len(pd.read_csv(out / "val.csv")) == 8
    assert (tmp_path / "raw" / "UCF101" / "UCF-101" / "HandstandPushups").is_dir()
