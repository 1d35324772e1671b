"""Unpack downloaded archives, checked and resumable: zip (zipfile), tar (tarfile), RAR (``unar`` or
``bsdtar`` found on PATH; Debian: ``apt-get install unar`` or ``libarchive-tools``).

``extract_archive(archive)`` unpacks ``raw/X.rar`` into ``raw/X/`` through a hidden
``raw/.X.partial/`` folder, checks that the number of files unpacked equals the archive's listing,
writes the marker ``.vmae-extracted.json`` and only then renames the folder into place, so a rerun
skips a finished extraction and redoes an interrupted one. Archives inside the archive (HMDB51 ships
one RAR per class inside its RAR) are unpacked the same way, each beside itself. Archives are never
deleted.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

from vmae.errors import UserError

MARKER = ".vmae-extracted.json"
SUFFIXES = (".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".tar", ".zip", ".rar")


class ExtractError(UserError, RuntimeError):
    """An archive could not be unpacked, or unpacked to the wrong number of files."""


def archive_suffix(path: str | Path) -> str | None:
    """The archive suffix of ``path`` (lower case), or None if it is not an archive."""
    name = Path(path).name.lower()
    return next((s for s in SUFFIXES if name.endswith(s)), None)


def default_dest(archive: Path) -> Path:
    """``raw/X.rar`` -> ``raw/X``."""
    suffix = archive_suffix(archive) or archive.suffix
    return archive.with_name(archive.name[: -len(suffix)])


def rar_tool() -> str:
    """``unar`` (with its ``lsar``) if on PATH, else ``bsdtar``; else an error saying what to install."""
    if shutil.which("unar") and shutil.which("lsar"):
        return "unar"
    if shutil.which("bsdtar"):
        return "bsdtar"
    raise ExtractError("RAR archives need `unar` or `bsdtar` on PATH: install one, e.g. "
                       "`apt-get install unar` or `apt-get install libarchive-tools` (Debian/Ubuntu), "
                       "`brew install unar` (macOS), `conda install -c conda-forge libarchive`")


def _run(command: list[str]) -> str:
    result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if result.returncode != 0:
        raise ExtractError(f"{' '.join(command)}: exit {result.returncode}: {result.stderr.strip()[-2000:]}")
    return result.stdout


def archive_members(archive: Path) -> list[str]:
    """Names of the files (not folders) an archive holds."""
    suffix = archive_suffix(archive)
    if suffix == ".zip":
        with zipfile.ZipFile(archive) as zf:
            return [info.filename for info in zf.infolist() if not info.is_dir()]
    if suffix == ".rar":
        if rar_tool() == "unar":
            listing = json.loads(_run(["lsar", "-j", str(archive)]))
            return [entry["XADFileName"] for entry in listing["lsarContents"] if not entry.get("XADIsDirectory")]
        return [name for name in _run(["bsdtar", "-tf", str(archive)]).splitlines() if not name.endswith("/")]
    if suffix is not None:
        with tarfile.open(archive) as tf:
            return [member.name for member in tf.getmembers() if member.isfile()]
    raise ExtractError(f"{archive}: not an archive: expected a name ending in one of {list(SUFFIXES)}")


def _unpack(archive: Path, dest: Path) -> None:
    suffix = archive_suffix(archive)
    if suffix == ".zip":
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(dest)
    elif suffix == ".rar":
        if rar_tool() == "unar":
            _run(["unar", "-q", "-f", "-D", "-no-recursion", "-o", str(dest), str(archive)])
        else:
            _run(["bsdtar", "-xf", str(archive), "-C", str(dest)])
    else:
        with tarfile.open(archive) as tf:
            tf.extractall(dest, filter="data")


def count_files(folder: Path) -> int:
    """Regular files below ``folder``, the marker excluded."""
    return sum(1 for _, _, files in os.walk(folder) for name in files if name != MARKER)


def _marker(archive: Path, files: int) -> dict[str, object]:
    return {"archive": archive.name, "size": archive.stat().st_size, "files": files}


def is_extracted(archive: Path, dest: Path) -> bool:
    """True when ``dest`` holds a finished extraction of this archive (marker matches its size)."""
    try:
        marker = json.loads((dest / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return marker.get("archive") == archive.name and marker.get("size") == archive.stat().st_size


def extract_archive(archive: str | Path, dest: str | Path | None = None, nested: bool = True) -> Path:
    """Unpack ``archive`` into ``dest`` (default: beside it, without the suffix); see the module
    docstring. Returns ``dest``. With ``nested``, archives found inside are unpacked too."""
    archive = Path(archive)
    dest = Path(dest) if dest is not None else default_dest(archive)
    if not is_extracted(archive, dest):
        if dest.exists():
            raise ExtractError(f"{dest}: exists but holds no finished extraction of {archive.name} "
                               f"(no {MARKER}): move it away, then run again")
        members = archive_members(archive)
        partial = dest.with_name(f".{dest.name}.partial")
        if partial.exists():
            shutil.rmtree(partial)  # an interrupted earlier extraction of ours
        partial.mkdir(parents=True)
        _unpack(archive, partial)
        found = count_files(partial)
        if found != len(members):
            raise ExtractError(f"{archive}: {found} files unpacked into {partial}, expected {len(members)} "
                               "(the archive's listing); the archive may be damaged")
        (partial / MARKER).write_text(json.dumps(_marker(archive, found)))
        os.replace(partial, dest)
    if nested:
        for inner in sorted(p for p in dest.rglob("*") if p.is_file() and archive_suffix(p)
                            and not any(part.startswith(".") for part in p.relative_to(dest).parts)):
            extract_archive(inner, nested=True)
    return dest
