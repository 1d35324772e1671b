"""`vmae mirror`: build the rehearsal's stand-in data, so that
``snakemake --cores all --configfile workflow/config/rehearsal.yaml`` runs from an empty checkout.

``vmae mirror --out results/mirror --raw results/raw`` (the workflow's rule ``mirror``) writes

- with ``--raw``: ``results/raw/ssv2/`` and ``results/raw/k400/`` as a user places them
  (``vmae.rehearsal.placed``), each with a note ``.vmae-mirror.json``; a raw folder holding anything
  else (a real copy) is refused before anything is written;
- with ``--out``: ``results/mirror/UCF101.rar``, ``UCF101TrainTestSplits-RecognitionTask.zip``,
  ``hmdb51_org.rar`` and ``test_train_splits.rar`` (``vmae.rehearsal.archives``: the official names
  and layouts, a few classes of small real videos), then ``results/mirror/sources.yaml``: the
  ``source`` entries of ``datasets/ucf101.yaml`` and ``hmdb51.yaml`` (same file names,
  ``provides``, checksum algorithm) with the mirror's URLs and checksums, which ``vmae prepare
  --sources`` (the config's ``datasets.sources``) puts in place of the dataset files' own. The URLs
  are ``file://`` URLs of the archives (no server needed; a sources file may only name files in its
  own folder, ``vmae.data.registry.override_source``), or ``--base-url URL/<name>`` where a server
  serves the folder.

The workflow runs both as one job (workflow/rules/rehearsal.smk: outputs the notes, the archives
and the sources file, which every real dataset's preparation takes as input). Every file is written
atomically and the sources file last, so a killed run leaves no sources file to trust; the same
command gives the same bytes.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from vmae.atomic import write_json_atomic, write_text_atomic
from vmae.data.download import file_digest
from vmae.data.registry import load_spec
from vmae.errors import UserError
from vmae.rehearsal import archives, placed
from vmae.rehearsal.layout import MIRRORED, PLACED, PLACED_NOTE, SOURCES
HEADER = ("# Written by `vmae mirror` (vmae.rehearsal.mirror): the rehearsal's stand-in archives, in place of\n"
          "# the source sections of datasets/ucf101.yaml and hmdb51.yaml (`datasets.sources`).\n")


class MirrorError(UserError, ValueError):
    """A bad argument of `vmae mirror` (nothing to write, a base URL that is not http(s))."""


def source_entries(dataset: str, paths: dict[str, Path], base_url: str | None) -> dict[str, Any]:
    """The ``source`` section of ``dataset`` pointing at the mirror: each ``files`` entry of its
    dataset file with the mirror's URL, the archive's checksum in the entry's own algorithm, its size
    where the original gives one, and its ``provides``."""
    files = []
    for entry in load_spec(dataset).source["files"]:
        path = paths[entry["filename"]]
        url = f"{base_url.rstrip('/')}/{entry['filename']}" if base_url else path.resolve().as_uri()
        mirrored: dict[str, Any] = {"url": url, "filename": entry["filename"]}
        if "size" in entry:
            mirrored["size"] = path.stat().st_size
        algorithm = "sha256" if "sha256" in entry else "md5"
        mirrored[algorithm] = file_digest(path, algorithm)
        if "provides" in entry:
            mirrored["provides"] = entry["provides"]
        files.append(mirrored)
    return {"kind": "download", "files": files}


def write_sources(path: Path, paths: dict[str, Path], base_url: str | None = None) -> dict[str, Any]:
    """Write the ``datasets.sources`` file ``path`` for the archives ``paths`` (file name -> path)
    and return its content; ``base_url``: http(s) URLs below it instead of ``file://`` ones."""
    sources = {dataset: source_entries(dataset, paths, base_url) for dataset in MIRRORED}
    write_text_atomic(path, HEADER + yaml.safe_dump(sources, sort_keys=False))
    return sources


def place_all(raw: Path, scratch: Path) -> dict[str, Path]:
    """SSv2 and K400 stand-ins below ``raw/<name>/`` with their notes; returns name -> note. Both
    folders are checked before either is written."""
    members = {name: placed.FILES[name](scratch) for name in PLACED}
    for name in PLACED:
        placed.check_empty(raw / name, name, members[name])
    notes = {}
    for name in PLACED:
        placed.write_tree(raw / name, members[name])
        notes[name] = raw / name / PLACED_NOTE
        write_json_atomic(notes[name], {"written_by": "vmae mirror", "files": sorted(members[name])})
    return notes


def build_mirror(out: str | Path | None, raw: str | Path | None, base_url: str | None = None) -> dict[str, Any]:
    """What `vmae mirror` writes (see the module docstring): the placed files when ``raw`` is given,
    the archives and their sources file when ``out`` is given (the sources file last)."""
    if out is None and raw is None:
        raise MirrorError("nothing to write: expected --out (archives + sources.yaml), --raw (SSv2 / K400 files) "
                          "or both")
    if base_url is not None and not base_url.startswith(("http://", "https://")):
        raise MirrorError(f"--base-url {base_url!r}: expected an http:// or https:// URL")
    built: dict[str, Any] = {"archives": {}, "placed": {}, "sources": None}
    with tempfile.TemporaryDirectory(prefix="vmae-mirror-") as scratch:
        if raw is not None:
            built["placed"] = place_all(Path(raw), Path(scratch))
        if out is not None:
            built["archives"] = archives.build_archives(Path(out), Path(scratch))
    if out is not None:
        built["sources"] = Path(out) / SOURCES
        write_sources(built["sources"], built["archives"], base_url)
    return built


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=None,
                        help="folder of the UCF101 / HMDB51 archives and their sources.yaml (e.g. mirror)")
    parser.add_argument("--raw", type=Path, default=None,
                        help="raw folder: SSv2 / K400 stand-ins go to <raw>/ssv2 and <raw>/k400 (e.g. results/raw)")
    parser.add_argument("--base-url", default=None,
                        help="URLs <base-url>/<archive> in sources.yaml (a server of --out) instead of file:// URLs")


def main(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    built = build_mirror(args.out, args.raw, args.base_url)
    for name, note in built["placed"].items():
        print(f"{note.parent}: {name} stand-in files placed", file=sys.stderr)
    for path in built["archives"].values():
        print(f"{path}: {path.stat().st_size} bytes", file=sys.stderr)
    if built["sources"] is not None:
        print(f"{built['sources']}: the archives' URLs and checksums", file=sys.stderr)
    print(f"mirror written ({time.perf_counter() - start:.1f} s)")
    return 0
