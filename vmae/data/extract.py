"""Unpack downloaded archives, checked and resumable: zip (zipfile), tar (tarfile), RAR (``unar`` or
``bsdtar`` where one is on PATH, else the system's libarchive through the ``libarchive-c`` binding, a
dependency of this package; ``rar_tool`` says which).

``extract_archive(archive)`` unpacks ``raw/X.rar`` into ``raw/X/`` through a hidden
``raw/.X.partial/`` folder, checks that the number of files unpacked equals the archive's listing,
writes the marker ``.vmae-extracted.json`` and only then renames the folder into place, so a rerun
skips a finished extraction and redoes an interrupted one. Archives inside the archive (HMDB51 ships
one RAR per class inside its RAR) are unpacked the same way, each beside itself. Archives are never
deleted.

Archives come from the internet, so before anything is written the listing is checked: no member
may be absolute or climb out with ``..``, and the count, unpacked size and packing ratio stay within
``MAX_MEMBERS``, ``MAX_UNPACKED_BYTES`` and ``MAX_RATIO``; archives nest at most ``MAX_NESTING`` deep.
tarfile unpacks with its ``data`` filter (no links out, no devices). Every failure (a refused member,
a full disk, a damaged archive) is one ``ExtractError`` naming the archive, and removes the
``.partial`` folder. Two archives that would unpack into one folder (``X.zip`` and ``X.tar``) are
refused.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import shutil
import subprocess
import tarfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from vmae.errors import UserError

MARKER = ".vmae-extracted.json"
SUFFIXES = (".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".tar", ".zip", ".rar")

MAX_MEMBERS = 2_000_000
"""Most files one archive may hold (Kinetics-700's biggest archives hold ~650k videos); more is
taken for an archive bomb."""
MAX_UNPACKED_BYTES = 2 << 40
"""Most bytes one archive may unpack to (2 TiB; the largest video dataset archives are ~0.5 TiB)."""
MAX_RATIO = 200
"""Most unpacked bytes per packed byte (videos hardly compress: UCF101's RAR is ~1.0); checked only
above ``RATIO_FLOOR`` unpacked bytes, as small text archives (annotation lists) compress well."""
RATIO_FLOOR = 1 << 30
"""Unpacked size (1 GiB) below which ``MAX_RATIO`` is not checked."""
MAX_NESTING = 3
"""Most levels of archives inside archives unpacked (HMDB51: 2, a RAR of RARs)."""
DISK_FULL = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)


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


RAR_TOOLS = ("unar", "bsdtar", "libarchive")


def _libarchive_loads() -> bool:
    """True when the ``libarchive`` binding imports, i.e. it found the system's libarchive library."""
    try:
        import libarchive  # noqa: F401  (ctypes binding: fails where libarchive.so is missing)
    except (ImportError, OSError, AttributeError):
        return False
    return True


def rar_tools() -> list[str]:
    """The RAR readers available here, in the order they are preferred (a subset of ``RAR_TOOLS``)."""
    found = []
    if shutil.which("unar") and shutil.which("lsar"):
        found.append("unar")
    if shutil.which("bsdtar"):
        found.append("bsdtar")
    if _libarchive_loads():
        found.append("libarchive")
    return found


def rar_tool() -> str:
    """``unar`` (with its ``lsar``) if on PATH, else ``bsdtar``, else the libarchive binding; else an
    error saying what to install."""
    found = rar_tools()
    if found:
        return found[0]
    raise ExtractError("RAR archives need `unar` or `bsdtar` on PATH, or the libarchive library: install one, "
                       "e.g. `apt-get install unar` or `apt-get install libarchive13` (Debian/Ubuntu), "
                       "`brew install unar` (macOS), `conda install -c conda-forge libarchive`")


def _libarchive_listing(archive: Path) -> list[tuple[str, int | None]]:
    """(name, size) of each regular file of ``archive``, read by libarchive; any other kind of member
    (a link, a device) is refused."""
    import libarchive

    files = []
    try:
        with libarchive.file_reader(str(archive)) as entries:
            for entry in entries:
                if entry.isdir:
                    continue
                if not entry.isfile:
                    raise ExtractError(f"{archive}: member {entry.pathname!r} is not a regular file: expected "
                                       "plain files and folders")
                files.append((entry.pathname, entry.size))
    except libarchive.ArchiveError as err:
        raise ExtractError(f"{archive}: cannot be read ({err}): expected an intact RAR archive") from None
    return files


def _libarchive_unpack(archive: Path, dest: Path) -> None:
    """Write each regular file of ``archive`` below ``dest`` (names already checked by ``check_listing``)."""
    import libarchive

    try:
        with libarchive.file_reader(str(archive)) as entries:
            for entry in entries:
                if not entry.isfile:
                    continue
                target = dest.joinpath(*PurePosixPath(entry.pathname.replace("\\", "/")).parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                with open(target, "wb") as out:
                    for block in entry.get_blocks():
                        out.write(block)
    except libarchive.ArchiveError as err:
        raise ExtractError(f"{archive}: damaged ({err}): expected an intact archive; delete it to download it "
                           "again") from None


def _run(command: list[str]) -> str:
    result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if result.returncode != 0:
        stderr = " ".join(result.stderr.split())[-1000:]  # one line
        raise ExtractError(f"{' '.join(command)}: exit {result.returncode}: {stderr}")
    return result.stdout


def archive_members(archive: Path) -> list[str]:
    """Names of the files (not folders) an archive holds."""
    return [name for name, _ in listing(archive)]


def listing(archive: Path) -> list[tuple[str, int | None]]:
    """(name, unpacked size or None where the tool does not say) of each file an archive holds;
    read once per archive version (cached by path, size and mtime)."""
    stat = archive.stat()
    return _listing(str(archive), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _listing(path: str, size: int, mtime_ns: int) -> list[tuple[str, int | None]]:
    archive = Path(path)
    suffix = archive_suffix(archive)
    try:
        if suffix == ".zip":
            with zipfile.ZipFile(archive) as zf:
                return [(info.filename, info.file_size) for info in zf.infolist() if not info.is_dir()]
        if suffix == ".rar":
            tool = rar_tool()
            if tool == "unar":
                entries = json.loads(_run(["lsar", "-j", str(archive)]))["lsarContents"]
                return [(e["XADFileName"], e.get("XADFileSize")) for e in entries if not e.get("XADIsDirectory")]
            if tool == "libarchive":
                return _libarchive_listing(archive)
            return [(name, None) for name in _run(["bsdtar", "-tf", str(archive)]).splitlines()
                    if not name.endswith("/")]
        if suffix is not None:
            with tarfile.open(archive) as tf:
                return [(member.name, member.size) for member in tf.getmembers() if member.isfile()]
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, ValueError) as err:
        raise ExtractError(f"{archive}: cannot be listed ({type(err).__name__}: {err}): expected an intact "
                           f"{suffix} archive") from None
    raise ExtractError(f"{archive}: not an archive: expected a name ending in one of {list(SUFFIXES)}")


def check_listing(archive: Path, files: list[tuple[str, int | None]]) -> None:
    """Refuse, before anything is written, members that are absolute or climb out with ``..`` and
    archives over ``MAX_MEMBERS`` files, ``MAX_UNPACKED_BYTES`` or ``MAX_RATIO``."""
    for name, _ in files:
        parts = PurePosixPath(name.replace("\\", "/")).parts
        if name.startswith(("/", "\\")) or ".." in parts or (parts and parts[0].endswith(":")):
            raise ExtractError(f"{archive}: member {name!r}: expected a relative path inside the archive")
    if len(files) > MAX_MEMBERS:
        raise ExtractError(f"{archive}: {len(files)} files: expected at most MAX_MEMBERS={MAX_MEMBERS}")
    unpacked = sum(size or 0 for _, size in files)
    if unpacked > MAX_UNPACKED_BYTES:
        raise ExtractError(f"{archive}: unpacks to {unpacked} bytes: expected at most "
                           f"MAX_UNPACKED_BYTES={MAX_UNPACKED_BYTES}")
    ratio = unpacked / max(archive.stat().st_size, 1)
    if unpacked > RATIO_FLOOR and ratio > MAX_RATIO:
        raise ExtractError(f"{archive}: unpacks to {ratio:.0f}x its size: expected at most MAX_RATIO={MAX_RATIO}")


def _unpack(archive: Path, dest: Path) -> None:
    """Unpack ``archive`` into ``dest``; a refused member, a full disk or a damaged archive becomes
    one ``ExtractError`` naming the archive."""
    suffix = archive_suffix(archive)
    try:
        if suffix == ".zip":
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(dest)
        elif suffix == ".rar":
            tool = rar_tool()
            if tool == "unar":
                _run(["unar", "-q", "-f", "-D", "-no-recursion", "-o", str(dest), str(archive)])
            elif tool == "libarchive":
                _libarchive_unpack(archive, dest)
            else:
                _run(["bsdtar", "-xf", str(archive), "-C", str(dest)])
        else:
            if not hasattr(tarfile, "data_filter"):  # Python < 3.10.12 / 3.11.4: no safe extraction
                raise ExtractError(f"{archive}: unpacking tar archives safely needs tarfile's 'data' filter: "
                                   "expected Python >= 3.11.4 (or 3.10.12)")
            with tarfile.open(archive) as tf:
                tf.extractall(dest, filter="data")
    except tarfile.FilterError as err:
        raise ExtractError(f"{archive}: member {err.tarinfo.name!r} refused ({type(err).__name__}: {err}): "
                           "expected plain files and folders that stay inside the archive's folder") from None
    except OSError as err:
        if err.errno in DISK_FULL:
            raise ExtractError(f"{archive}: {os.strerror(err.errno)} while unpacking into {dest.parent}: "
                               "expected room for the unpacked files; free space and run again") from None
        raise
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error) as err:
        raise ExtractError(f"{archive}: damaged ({type(err).__name__}: {err}): expected an intact archive; "
                           "delete it to download it again") from None


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


def _check_destination(archive: Path, dest: Path, default: bool) -> None:
    """Refuse a ``dest`` that another archive unpacks into (``X.zip`` and ``X.tar`` -> ``X/``) or
    that holds something else."""
    if default:
        twins = sorted(p.name for p in archive.parent.iterdir()
                       if p != archive and p.is_file() and archive_suffix(p) and default_dest(p) == dest)
        if twins:
            raise ExtractError(f"{archive}: {twins[0]} beside it would unpack into the same folder {dest}: "
                               "expected archive names that differ beyond the suffix; rename one")
    if dest.exists():
        raise ExtractError(f"{dest}: exists but holds no finished extraction of {archive.name} "
                           f"(no {MARKER}): move it away, then run again")


def extract_archive(archive: str | Path, dest: str | Path | None = None, nested: bool = True,
                    depth: int = 0) -> Path:
    """Unpack ``archive`` into ``dest`` (default: beside it, without the suffix); see the module
    docstring. Returns ``dest``. With ``nested``, archives found inside are unpacked too (``depth``:
    how deep this archive itself is nested)."""
    archive = Path(archive)
    default = dest is None
    dest = default_dest(archive) if dest is None else Path(dest)
    if not is_extracted(archive, dest):
        _check_destination(archive, dest, default)
        members = archive_members(archive)
        check_listing(archive, listing(archive))
        partial = dest.with_name(f".{dest.name}.partial")
        if partial.exists():
            shutil.rmtree(partial)  # an interrupted earlier extraction of ours
        partial.mkdir(parents=True)
        try:
            _unpack(archive, partial)
            found = count_files(partial)
            if found != len(members):
                raise ExtractError(f"{archive}: {found} files unpacked into {partial}, expected {len(members)} "
                                   "(the archive's listing); the archive may be damaged")
            (partial / MARKER).write_text(json.dumps(_marker(archive, found)))
            os.replace(partial, dest)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
    if nested:
        inner = sorted(p for p in dest.rglob("*") if p.is_file() and not p.is_symlink() and archive_suffix(p)
                       and not any(part.startswith(".") for part in p.relative_to(dest).parts))
        if inner and depth + 1 > MAX_NESTING:
            raise ExtractError(f"{inner[0]}: an archive nested {depth + 1} deep: expected at most "
                               f"MAX_NESTING={MAX_NESTING} levels")
        for path in inner:
            extract_archive(path, nested=True, depth=depth + 1)
    return dest
