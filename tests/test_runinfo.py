"""Provenance of a run (issue 25): the commit and whether the tree had uncommitted changes, and the
versions of the libraries that decide the numbers."""

from __future__ import annotations

import importlib.metadata
import subprocess
from pathlib import Path

import torch

from vmae import runinfo

LIBRARIES = ("torch", "timm", "numpy", "decord", "av", "scikit-learn", "scipy", "statsmodels", "pandas")


def git(folder: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=folder, check=True,
                   capture_output=True)


def test_git_commit_and_dirty_follow_the_tree(tmp_path):
    assert runinfo.git_commit(tmp_path) == "" and runinfo.git_dirty(tmp_path) is None  # no checkout
    git(tmp_path, "init", "-q")
    (tmp_path / "a.py").write_text("x = 1\n")
    git(tmp_path, "add", "a.py")
    git(tmp_path, "commit", "-qm", "a")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True).stdout.strip()
    assert runinfo.git_commit(tmp_path) == head and runinfo.git_dirty(tmp_path) is False
    (tmp_path / "a.py").write_text("x = 2\n")
    assert runinfo.git_dirty(tmp_path) is True
    git(tmp_path, "checkout", "-q", "a.py")
    (tmp_path / "new.py").write_text("")
    assert runinfo.git_dirty(tmp_path) is True  # untracked files count
    assert not (tmp_path / ".git" / "index.lock").exists()


def test_run_metadata_records_versions_commit_and_dirty():
    metadata = runinfo.run_metadata({"a": 1}, 3, torch.device("cpu"))
    assert metadata["git_commit"] == runinfo.git_commit()
    assert metadata["git_dirty"] in (True, False, None) and metadata["git_dirty"] == runinfo.git_dirty()
    versions = metadata["versions"]
    assert set(LIBRARIES) <= versions.keys()
    for name in LIBRARIES[3:]:
        try:
            assert versions[name] == importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            assert versions[name] is None
    assert versions["torch"] == torch.__version__
