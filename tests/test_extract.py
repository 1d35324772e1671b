"""Archive extraction: zip / tar / RAR (unar or bsdtar), nested RARs, markers, file-count check."""

from __future__ import annotations

import errno
import io
import os
import re
import shutil
import tarfile
import zipfile
from pathlib import Path

import pytest

from vmae.data import extract
from vmae.data.extract import MARKER, ExtractError, archive_members, extract_archive
from vmae.rehearsal.rar4 import write_rar

MEMBERS = {"UCF-101/Archery/v_Archery_g01_c01.avi": b"a" * 300, "UCF-101/Hand (1)!/x;&[y].avi": b"b" * 70}


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*")
            if p.is_file() and p.name != MARKER}


def test_zip_extracts_beside_archive_with_marker_and_rerun_skips(tmp_path, monkeypatch):
    archive = _zip(tmp_path / "UCF101.zip", MEMBERS)
    dest = extract_archive(archive)
    assert dest == tmp_path / "UCF101" and _files(dest) == MEMBERS
    assert (dest / MARKER).is_file() and archive.is_file()
    monkeypatch.setattr(extract, "_unpack", lambda *a: pytest.fail("a finished extraction must be skipped"))
    assert extract_archive(archive) == dest


def test_interrupted_extraction_is_redone(tmp_path):
    archive = _zip(tmp_path / "data.zip", MEMBERS)
    partial = tmp_path / ".data.partial"
    partial.mkdir()
    (partial / "stale.avi").write_bytes(b"half")
    dest = extract_archive(archive)
    assert _files(dest) == MEMBERS and not partial.exists()


def test_file_count_mismatch_is_an_error_and_nothing_is_moved_into_place(tmp_path, monkeypatch):
    archive = _zip(tmp_path / "data.zip", MEMBERS)
    monkeypatch.setattr(extract, "archive_members", lambda path: [*MEMBERS, "one/more.avi"])
    with pytest.raises(ExtractError, match=r"data\.zip: 2 files unpacked into .*, expected 3"):
        extract_archive(archive)
    assert not (tmp_path / "data").exists()


def test_existing_folder_without_marker_is_left_alone(tmp_path):
    archive = _zip(tmp_path / "data.zip", MEMBERS)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "mine.txt").write_text("user file")
    with pytest.raises(ExtractError, match=r"data: exists but holds no finished extraction of data\.zip"):
        extract_archive(archive)
    assert (tmp_path / "data" / "mine.txt").read_text() == "user file"


def test_tar_gz(tmp_path):
    archive = tmp_path / "shard.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        for name, data in MEMBERS.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    assert _files(extract_archive(archive)) == MEMBERS and (tmp_path / "shard").is_dir()


RAR_SKIP = "not available here (apt-get install unar libarchive-tools; libarchive needs libarchive13)"


@pytest.mark.parametrize("tool", extract.RAR_TOOLS)
def test_rar_with_each_tool(tmp_path, monkeypatch, tool):
    if tool not in extract.rar_tools():
        pytest.skip(f"{tool} {RAR_SKIP}")
    monkeypatch.setattr(extract, "rar_tool", lambda: tool)
    archive = write_rar(tmp_path / "UCF101.rar", MEMBERS)
    assert sorted(archive_members(archive)) == sorted(MEMBERS)
    assert _files(extract_archive(archive)) == MEMBERS


@pytest.mark.parametrize("tool", extract.RAR_TOOLS)
def test_nested_rars_as_hmdb51_ships_them(tmp_path, monkeypatch, tool):
    if tool not in extract.rar_tools():
        pytest.skip(f"{tool} {RAR_SKIP}")
    monkeypatch.setattr(extract, "rar_tool", lambda: tool)
    inner = {cls: {f"{cls}/{cls}_video_{i}.avi": bytes([i]) * 50 for i in range(3)} for cls in ("kick", "kick_ball")}
    packed = {f"{cls}.rar": write_rar(tmp_path / f"{cls}.rar", files).read_bytes() for cls, files in inner.items()}
    outer = write_rar(tmp_path / "hmdb51_org.rar", packed)
    dest = extract_archive(outer)
    videos = {p.name for p in dest.rglob("*.avi")}
    assert videos == {Path(name).name for files in inner.values() for name in files}
    assert (dest / "kick_ball" / "kick_ball" / "kick_ball_video_2.avi").read_bytes() == bytes([2]) * 50
    assert (dest / "kick" / MARKER).is_file() and (dest / "kick.rar").is_file()  # archives are kept
    monkeypatch.setattr(extract, "_unpack", lambda *a: pytest.fail("finished extractions must be skipped"))
    extract_archive(outer)


def test_rar_without_any_tool_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(extract, "_libarchive_loads", lambda: False)
    archive = write_rar(tmp_path / "x.rar", MEMBERS)
    with pytest.raises(ExtractError, match="need `unar` or `bsdtar` on PATH, or the libarchive library.*"
                                           "apt-get install unar"):
        extract_archive(archive)


def test_libarchive_refuses_a_rar_member_that_is_not_a_plain_file(tmp_path, monkeypatch):
    if "libarchive" not in extract.rar_tools():
        pytest.skip(f"libarchive {RAR_SKIP}")
    monkeypatch.setattr(extract, "rar_tool", lambda: "libarchive")
    archive = write_rar(tmp_path / "x.rar", {**MEMBERS, "UCF-101/link": b"/etc/passwd"},
                        unix_modes={"UCF-101/link": 0o120777})
    with pytest.raises(ExtractError, match=r"x\.rar: member 'UCF-101/link' is not a regular file"):
        extract_archive(archive)
    assert not (tmp_path / "x").exists() and not (tmp_path / ".x.partial").exists()


def test_libarchive_names_a_damaged_rar(tmp_path, monkeypatch):
    if "libarchive" not in extract.rar_tools():
        pytest.skip(f"libarchive {RAR_SKIP}")
    monkeypatch.setattr(extract, "rar_tool", lambda: "libarchive")
    archive = write_rar(tmp_path / "x.rar", MEMBERS)
    archive.write_bytes(archive.read_bytes()[:40])  # cut inside the first file header
    with pytest.raises(ExtractError, match=r"x\.rar: (cannot be read|damaged)"):
        extract_archive(archive)


def _tar(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with tarfile.open(path, "w") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tf.addfile(info)
    return path


def _one_line_error(archive: Path, expected: str) -> str:
    with pytest.raises(ExtractError, match=expected) as err:
        extract_archive(archive)
    message = str(err.value)
    assert "\n" not in message and str(archive) in message
    return message


@pytest.mark.parametrize("name", ["../evil.txt", "/abs/evil.txt", "a/../../evil.txt"])
def test_members_that_climb_out_are_refused_before_anything_is_written(tmp_path, name):
    raw = tmp_path / "raw"
    raw.mkdir()
    for archive in (_tar(raw / "t.tar", {"ok.avi": b"x", name: b"evil"}), _zip(raw / "z.zip", {"ok.avi": b"x", name: b"evil"})):
        _one_line_error(archive, rf"member '{re.escape(name)}': expected a relative path inside the archive")
    assert sorted(p.name for p in raw.iterdir()) == ["t.tar", "z.zip"]
    assert not (tmp_path / "evil.txt").exists()


def test_tar_link_out_of_the_folder_is_one_line_error_and_leaves_no_partial(tmp_path):
    archive = _tar(tmp_path / "t.tar", {"ok.avi": b"x"}, links={"passwd.avi": "/etc/passwd"})
    _one_line_error(archive, r"t\.tar: member 'passwd\.avi' refused \(AbsoluteLinkError: .*expected plain files")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.tar"]


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EFBIG])
def test_full_disk_is_one_line_error_and_removes_the_partial_folder(tmp_path, monkeypatch, code):
    archive = _zip(tmp_path / "data.zip", MEMBERS)

    def fill_then_fail(self, path):
        (Path(path) / "big.avi").write_bytes(b"0" * 1000)
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(zipfile.ZipFile, "extractall", fill_then_fail)
    _one_line_error(archive, rf"data\.zip: {os.strerror(code)} while unpacking into {tmp_path}: expected room")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.zip"]


def test_count_mismatch_removes_the_partial_folder(tmp_path, monkeypatch):
    archive = _zip(tmp_path / "data.zip", MEMBERS)
    monkeypatch.setattr(extract, "archive_members", lambda path: [*MEMBERS, "one/more.avi"])
    with pytest.raises(ExtractError):
        extract_archive(archive)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.zip"]


def test_zip_and_tar_of_one_name_do_not_share_a_folder(tmp_path):
    _zip(tmp_path / "X.zip", {"a.avi": b"zip"})
    _tar(tmp_path / "X.tar", {"a.avi": b"tar"})
    for archive, twin in (("X.zip", "X.tar"), ("X.tar", "X.zip")):
        _one_line_error(tmp_path / archive, rf"{archive}: {twin} beside it would unpack into the same folder .*/X: "
                                            "expected archive names that differ beyond the suffix")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["X.tar", "X.zip"]


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        ({"MAX_MEMBERS": 1}, r"big\.zip: 2 files: expected at most MAX_MEMBERS=1$"),
        ({"MAX_UNPACKED_BYTES": 100_000}, r"big\.zip: unpacks to 200000 bytes: expected at most MAX_UNPACKED_BYTES=100000$"),
        ({"RATIO_FLOOR": 0, "MAX_RATIO": 50}, r"big\.zip: unpacks to \d+x its size: expected at most MAX_RATIO=50$"),
    ],
)
def test_archive_limits_name_the_archive_and_the_limit(tmp_path, monkeypatch, limits, expected):
    archive = tmp_path / "big.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.txt", b"0" * 100_000)  # ~1000x compressible
        zf.writestr("b.txt", b"0" * 100_000)
    for name, value in limits.items():
        monkeypatch.setattr(extract, name, value)
    _one_line_error(archive, expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.zip"]


def test_nesting_depth_is_limited(tmp_path, monkeypatch):
    inner = _zip(tmp_path / "inner.zip", {"v.avi": b"v"}).read_bytes()
    (tmp_path / "inner.zip").unlink()
    outer = _zip(tmp_path / "outer.zip", {"inner.zip": inner})
    monkeypatch.setattr(extract, "MAX_NESTING", 0)
    with pytest.raises(ExtractError, match=r"inner\.zip: an archive nested 1 deep: expected at most MAX_NESTING=0"):
        extract_archive(outer)
    monkeypatch.setattr(extract, "MAX_NESTING", 1)
    assert (extract_archive(outer) / "inner" / "v.avi").read_bytes() == b"v"
