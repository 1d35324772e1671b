"""Verified, resumable HTTP(S) downloads (stdlib urllib only), and copies of ``file://`` URLs.

``download(RemoteFile(url, filename, size, sha256, md5), raw_dir)`` fetches into
``<raw_dir>/<filename>.part``, resuming with an HTTP ``Range`` request where a partial file exists
(also across runs), retries dropped connections, checks the size and checksum, then renames the file
into place. A complete raw file is never overwritten or deleted:

- a file that already passes its checks is skipped without any request (a ``.<filename>.verified``
  note beside it saves re-hashing gigabytes on every run);
- a file that fails its checks is moved aside to ``<filename>.bad-<checksum prefix>`` and the error
  shows the expected and actual values; nothing is extracted from it.

What a dataset file may ask for is limited: ``filename`` is one plain name that lands inside the raw
folder (no ``/``, no ``..``, no leading ``.``; checked here as well as by the schema), a checksum
(sha256 or md5) is required unless the entry says ``insecure: true``, and a redirect from https to
plain http is refused.

A ``file://`` URL (a local mirror's archive, as the rehearsal's ``results/mirror/sources.yaml``
names) is copied into the ``.part`` file whole, never resumed (there is no Range for a file: a
partial or complete ``.part`` left by a killed run is copied over), and checked like a download.
Which local files a source may name is decided where the source is read: a dataset file may name
none, a ``datasets.sources`` file only files in its own folder (``vmae.data.registry``).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from vmae.atomic import write_text_atomic
from vmae.errors import UserError

CHUNK = 1 << 20
# Failures worth another try with a Range request: dropped connections, timeouts, 5xx answers.
TRANSIENT = (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError)


class DownloadError(UserError, RuntimeError):
    """A download failed (the partial file is kept for the next run to resume)."""


class ChecksumError(DownloadError):
    """A downloaded or present file does not match its declared size or checksum."""


@dataclass(frozen=True)
class RemoteFile:
    """One file of a ``source.kind: download`` dataset (``source.files[i]`` in the dataset YAML)."""

    url: str
    filename: str
    size: int | None = None  # bytes
    sha256: str | None = None
    md5: str | None = None
    insecure: bool = False  # true: no checksum needed, whatever the server sends is kept

    @classmethod
    def from_dict(cls, entry: dict[str, Any]) -> RemoteFile:
        return cls(entry["url"], entry["filename"], entry.get("size"), entry.get("sha256"), entry.get("md5"),
                   bool(entry.get("insecure", False)))

    def checksum(self) -> tuple[str, str] | None:
        """(algorithm, expected hex digest), sha256 preferred; None when none is declared."""
        if self.sha256:
            return "sha256", self.sha256.lower()
        if self.md5:
            return "md5", self.md5.lower()
        return None


def destination(remote: RemoteFile, raw_dir: Path) -> Path:
    """``raw_dir / remote.filename``, or a ``DownloadError`` when the name is not one plain file name
    or would land outside ``raw_dir`` (``../x``, ``/abs``, ``.hidden``, a symlink pointing out)."""
    name = remote.filename
    plain = name and "/" not in name and "\\" not in name and ".." not in name and not name.startswith(".")
    dest = raw_dir / name
    if not plain or not os.path.realpath(dest).startswith(os.path.realpath(raw_dir).rstrip(os.sep) + os.sep):
        raise DownloadError(f"{remote.url}: filename {name!r}: expected a plain file name inside {raw_dir} "
                            "(no '/', no '..', no leading '.')")
    return dest


def require_checksum(remote: RemoteFile) -> None:
    """A ``DownloadError`` unless ``remote`` declares a sha256 / md5 or says ``insecure: true``."""
    if remote.checksum() is None and not remote.insecure:
        raise DownloadError(f"{remote.url}: no sha256 or md5 for {remote.filename}: expected a checksum in the "
                            "dataset file (or `insecure: true` to keep whatever the server sends)")


class NoDowngradeRedirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects like urllib, but never from https to another scheme (http would let anyone
    on the path replace the file)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001 (urllib's signature)
        old, new = urllib.parse.urlsplit(req.full_url).scheme, urllib.parse.urlsplit(newurl).scheme
        if old == "https" and new != "https":
            raise DownloadError(f"{req.full_url}: redirected (HTTP {code}) to {newurl}: expected https "
                                "throughout; a redirect to plain http is refused")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


OPENER = urllib.request.build_opener(NoDowngradeRedirects)


def file_digest(path: Path, algorithm: str) -> str:
    """Hex digest of a file's bytes."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, algorithm).hexdigest()


def mismatch(path: Path, remote: RemoteFile) -> tuple[str, str] | None:
    """None when ``path`` matches the declared size and checksum, else (what differs, actual digest)."""
    checksum = remote.checksum()
    algorithm = checksum[0] if checksum else "sha256"
    size = path.stat().st_size
    if remote.size is not None and size != remote.size:
        return f"size {size} bytes, expected {remote.size}", file_digest(path, algorithm)
    if checksum is None:
        return None
    actual = file_digest(path, algorithm)
    if actual != checksum[1]:
        return f"{algorithm} {actual}, expected {checksum[1]}", actual
    return None


def _note_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.verified")


def _stat_key(path: Path, remote: RemoteFile) -> dict[str, Any]:
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "checksum": remote.checksum()}


def _known_good(path: Path, remote: RemoteFile) -> bool:
    """True when a verified-note matches the file's size, mtime and declared checksum."""
    note = _note_path(path)
    try:
        return json.loads(note.read_text()) == json.loads(json.dumps(_stat_key(path, remote)))
    except (OSError, ValueError):
        return False


def _set_aside(path: Path, digest: str) -> Path:
    """Move a bad file to ``<name>.bad-<digest prefix>`` beside it (never delete)."""
    name = path.name.removesuffix(".part")
    aside = path.with_name(f"{name}.bad-{digest[:12]}")
    os.replace(path, aside)
    return aside


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def local_path(url: str) -> Path:
    """The path of a ``file://`` URL (``file:///a/b`` or ``file://localhost/a/b``); a
    ``DownloadError`` for a file on another host."""
    parts = urllib.parse.urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise DownloadError(f"{url}: a file on host {parts.netloc!r}: expected file:///<absolute path>")
    return Path(urllib.request.url2pathname(parts.path))


def _copy(url: str, part: Path) -> None:
    """Copy the local file of a ``file://`` URL over ``part`` (whole: no resume for files)."""
    source = local_path(url)
    try:
        with open(source, "rb") as src, open(part, "wb") as out:
            shutil.copyfileobj(src, out, CHUNK)
    except IsADirectoryError:
        raise DownloadError(f"{url}: {source} is a folder: expected a file") from None
    except FileNotFoundError:
        raise DownloadError(f"{url}: no such file {source}: expected the mirror's file there "
                            "(rebuild the mirror, or fix the URL)") from None
    except PermissionError as err:
        raise DownloadError(f"{url}: {source} cannot be read ({err.strerror})") from None


def _fetch(url: str, part: Path, timeout: float) -> None:
    """Append the rest of ``url`` to ``part`` (a Range request from its current size); a ``file://``
    URL is copied whole."""
    if urllib.parse.urlsplit(url).scheme == "file":
        _copy(url, part)
        return
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "vmae-download"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        response = OPENER.open(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # nothing left to fetch: the partial file is whole
            return
        raise
    with response:
        if have and getattr(response, "status", None) != 206:
            have = 0  # the server ignored the Range request: start over
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        with open(part, "ab" if have else "wb") as out, tqdm(
            total=total, initial=have, unit="B", unit_scale=True, desc=part.name, disable=None, leave=False
        ) as bar:
            while chunk := response.read1(CHUNK):  # what has arrived, up to CHUNK: the part file grows as data comes
                out.write(chunk)
                bar.update(len(chunk))
    got = part.stat().st_size
    if total is not None and got < total:
        raise http.client.IncompleteRead(b"", total - got)


def download(remote: RemoteFile, raw_dir: str | Path, retries: int = 3, timeout: float = 60.0,
             wait_s: float = 2.0) -> Path:
    """Fetch ``remote`` into ``raw_dir`` (see the module docstring); returns the verified file.

    retries: extra attempts after a dropped or failed transfer, each resuming where the last
    stopped, ``wait_s * 2**attempt`` seconds apart. Raises ``DownloadError`` (partial kept) or
    ``ChecksumError`` (bad file set aside).
    """
    raw_dir = Path(raw_dir)
    dest = destination(remote, raw_dir)
    require_checksum(remote)
    if dest.exists():
        if _known_good(dest, remote):
            return dest
        problem = mismatch(dest, remote)
        if problem is None:
            write_text_atomic(_note_path(dest), json.dumps(_stat_key(dest, remote)))
            return dest
        aside = _set_aside(dest, problem[1])
        _log(f"{dest}: {problem[0]}; moved aside to {aside.name}, downloading again")

    raw_dir.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    for attempt in range(retries + 1):
        try:
            _fetch(remote.url, part, timeout)
            break
        except urllib.error.HTTPError as err:
            if err.code < 500 or attempt == retries:
                raise DownloadError(f"{remote.url}: HTTP {err.code} {err.reason} (for {dest})") from None
        except TRANSIENT as err:
            kept = part.stat().st_size if part.exists() else 0
            if attempt == retries:
                raise DownloadError(f"{remote.url}: {type(err).__name__}: {err}; {kept} bytes kept in {part}, "
                                    "run again to resume") from None
            _log(f"{remote.url}: {type(err).__name__} after {kept} bytes; resuming (attempt {attempt + 2})")
        time.sleep(wait_s * 2**attempt)

    problem = mismatch(part, remote)
    if problem is not None:
        aside = _set_aside(part, problem[1])
        raise ChecksumError(f"{remote.url}: {problem[0]}; the file is kept as {aside} and was not extracted")
    os.replace(part, dest)
    write_text_atomic(_note_path(dest), json.dumps(_stat_key(dest, remote)))
    return dest
