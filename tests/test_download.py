"""Downloads against a loopback HTTP server the test starts (Range support, dropped connections),
and the end-to-end download -> verify -> extract -> parse path of a ``kind: download`` dataset."""

from __future__ import annotations

import hashlib
import http.server
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.loopback import Server
from fixtures.specs import user_spec

from vmae.data.download import ChecksumError, DownloadError, RemoteFile, download
from vmae.data.formats import build_split
from vmae.rehearsal.rar4 import write_rar

PAYLOAD = bytes(range(256)) * 40  # 10,240 bytes


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    yield srv
    srv.close()


def _remote(server: Server, name: str, data: bytes, **checks: object) -> RemoteFile:
    server.files[f"/{name}"] = data
    return RemoteFile(f"{server.url}/{name}", name, **checks)


def test_verified_download_then_rerun_makes_no_request(server, tmp_path):
    remote = _remote(server, "a.bin", PAYLOAD, size=len(PAYLOAD), sha256=hashlib.sha256(PAYLOAD).hexdigest())
    path = download(remote, tmp_path, wait_s=0)
    assert path.read_bytes() == PAYLOAD and len(server.requests) == 1
    assert download(remote, tmp_path, wait_s=0) == path and len(server.requests) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [".a.bin.verified", "a.bin"]


def test_wrong_checksum_shows_both_and_keeps_the_file_aside(server, tmp_path):
    wrong = "0" * 64
    actual = hashlib.sha256(PAYLOAD).hexdigest()
    remote = _remote(server, "a.bin", PAYLOAD, sha256=wrong)
    with pytest.raises(ChecksumError, match=f"sha256 {actual}, expected {wrong}; the file is kept as "
                                            f".*a.bin.bad-{actual[:12]} and was not extracted"):
        download(remote, tmp_path, wait_s=0)
    assert (tmp_path / f"a.bin.bad-{actual[:12]}").read_bytes() == PAYLOAD
    assert not (tmp_path / "a.bin").exists() and not (tmp_path / "a.bin.part").exists()


def test_md5_and_size_mismatch(server, tmp_path):
    remote = _remote(server, "b.bin", PAYLOAD, size=99, md5=hashlib.md5(PAYLOAD).hexdigest())
    with pytest.raises(ChecksumError, match=f"size {len(PAYLOAD)} bytes, expected 99"):
        download(remote, tmp_path, wait_s=0)
    ok = _remote(server, "c.bin", PAYLOAD, md5=hashlib.md5(PAYLOAD).hexdigest())
    assert download(ok, tmp_path, wait_s=0).read_bytes() == PAYLOAD


def test_truncated_transfer_resumes_with_range(server, tmp_path):
    remote = _remote(server, "a.bin", PAYLOAD, sha256=hashlib.sha256(PAYLOAD).hexdigest())
    server.drops["/a.bin"] = [3000]
    assert download(remote, tmp_path, wait_s=0).read_bytes() == PAYLOAD
    assert server.requests == [("/a.bin", None), ("/a.bin", "bytes=3000-")]


def test_failing_server_keeps_partial_and_a_rerun_resumes(server, tmp_path):
    remote = _remote(server, "a.bin", PAYLOAD, sha256=hashlib.sha256(PAYLOAD).hexdigest())
    server.drops["/a.bin"] = [1000, 1000]
    with pytest.raises(DownloadError, match=r"2000 bytes kept in .*a\.bin\.part, run again to resume"):
        download(remote, tmp_path, retries=1, wait_s=0)
    assert (tmp_path / "a.bin.part").read_bytes() == PAYLOAD[:2000] and not (tmp_path / "a.bin").exists()
    assert download(remote, tmp_path, wait_s=0).read_bytes() == PAYLOAD
    assert server.requests[-1] == ("/a.bin", "bytes=2000-")


def test_corrupt_present_file_is_set_aside_and_fetched_again(server, tmp_path):
    remote = _remote(server, "a.bin", PAYLOAD, sha256=hashlib.sha256(PAYLOAD).hexdigest())
    (tmp_path / "a.bin").write_bytes(b"not it")
    bad = hashlib.sha256(b"not it").hexdigest()[:12]
    assert download(remote, tmp_path, wait_s=0).read_bytes() == PAYLOAD
    assert (tmp_path / f"a.bin.bad-{bad}").read_bytes() == b"not it"


def test_http_error_names_the_url_without_retrying(server, tmp_path):
    with pytest.raises(DownloadError, match=r"/nothing\.zip: HTTP 404"):
        download(RemoteFile(f"{server.url}/nothing.zip", "nothing.zip", md5="0" * 32), tmp_path, wait_s=0)
    assert len(server.requests) == 1


def _download_spec(tmp_path: Path, server: Server, archives: dict[str, bytes], fmt: str, bad: str = "",
                   provides: dict[str, list[str]] | None = None):
    files = []
    for name, data in archives.items():
        server.files[f"/{name}"] = data
        digest = "f" * 64 if name == bad else hashlib.sha256(data).hexdigest()
        files.append({"url": f"{server.url}/{name}", "filename": name, "size": len(data), "sha256": digest,
                      **({"provides": provides[name]} if provides and name in provides else {})})
    return user_spec(tmp_path, f"tiny-{fmt}", format=fmt, source={"kind": "download", "files": files})


UCF_VIDEOS = {"UCF-101/HandstandPushups/v_HandStandPushups_g01_c01.avi": b"v1",
              "UCF-101/HandstandPushups/v_HandStandPushups_g08_c01.avi": b"v2",
              "UCF-101/Archery/v_Archery_g01_c01.avi": b"v3"}
UCF_LISTS = {"ucfTrainTestlist/classInd.txt": b"1 Archery\r\n2 HandstandPushups\r\n",
             "ucfTrainTestlist/trainlist01.txt": b"HandstandPushups/v_HandStandPushups_g08_c01.avi 2\r\n",
             "ucfTrainTestlist/testlist01.txt":
                 b"Archery/v_Archery_g01_c01.avi\r\nHandstandPushups/v_HandStandPushups_g01_c01.avi\r\n"}


def _ucf_archives(tmp_path: Path) -> dict[str, bytes]:
    """UCF101.rar (the videos) and splits.zip (the lists), in the official layouts."""
    rar = write_rar(tmp_path / "src.rar", UCF_VIDEOS).read_bytes()
    zip_path = tmp_path / "splits.zip"
    with zipfile.ZipFile(zip_path, "w") as zf:
        for name, data in UCF_LISTS.items():
            zf.writestr(name, data)
    return {"UCF101.rar": rar, "splits.zip": zip_path.read_bytes()}


def test_end_to_end_ucf101_style_download(server, tmp_path, rar_reader):
    spec = _download_spec(tmp_path, server, _ucf_archives(tmp_path), "ucf101")
    raw = tmp_path / "raw"
    parsed = build_split(spec, raw, None)
    assert parsed.classes == ["Archery", "HandstandPushups"]
    assert parsed.train == [(str(raw / "UCF101" / "UCF-101/HandstandPushups/v_HandStandPushups_g08_c01.avi"), 1)]
    assert [(Path(p).name, lab) for p, lab in parsed.val] == [("v_Archery_g01_c01.avi", 0),
                                                             ("v_HandStandPushups_g01_c01.avi", 1)]
    assert (raw / "UCF101" / "UCF-101" / "Archery" / "v_Archery_g01_c01.avi").read_bytes() == b"v3"
    requests = len(server.requests)
    assert build_split(spec, raw, None) == parsed and len(server.requests) == requests  # all skipped


@pytest.mark.parametrize(("present", "fetched"), [
    ("videos and lists", []),  # a lab's unpacked copy: nothing is downloaded (no network needed)
    ("videos", ["/splits.zip"]),  # the lists are fetched, never the 6.5 GB video archive
    ("lists", ["/UCF101.rar"]),
    ("nothing", ["/splits.zip", "/UCF101.rar"]),  # the annotations first, then what they still lack
])
def test_an_extracted_copy_is_used_and_only_what_is_missing_is_downloaded(server, tmp_path, present, fetched,
                                                                          request):
    if "/UCF101.rar" in fetched:
        request.getfixturevalue("rar_reader")  # skipped, with the reason, where nothing reads RAR
    spec = _download_spec(tmp_path, server, _ucf_archives(tmp_path), "ucf101",
                          provides={"splits.zip": ["classInd.txt", "trainlist0[123].txt", "testlist0[123].txt"]})
    raw = tmp_path / "raw"
    copied = {**(UCF_VIDEOS if "videos" in present else {}), **(UCF_LISTS if "lists" in present else {})}
    for name, data in copied.items():
        (raw / name).parent.mkdir(parents=True, exist_ok=True)
        (raw / name).write_bytes(data)
    parsed = build_split(spec, raw, None)
    assert [path for path, _ in server.requests] == fetched
    assert parsed.classes == ["Archery", "HandstandPushups"] and parsed.missing == []
    assert [(Path(p).read_bytes(), label) for p, label in parsed.train + parsed.val] == [
        (b"v2", 1), (b"v3", 0), (b"v1", 1)]
    assert build_split(spec, raw, None) == parsed and len(server.requests) == len(fetched)  # nothing again


def test_end_to_end_bad_checksum_extracts_nothing(server, tmp_path):
    zip_path = tmp_path / "splits.zip"
    with zipfile.ZipFile(zip_path, "w") as zf:
        zf.writestr("a/b.txt", "x")
    spec = _download_spec(tmp_path, server, {"splits.zip": zip_path.read_bytes()}, "ucf101", bad="splits.zip")
    with pytest.raises(ChecksumError, match="expected f{64}"):
        build_split(spec, tmp_path / "raw", None)
    assert sorted(p.name for p in (tmp_path / "raw").iterdir())[0].startswith("splits.zip.bad-")
    assert not (tmp_path / "raw" / "splits").exists()


@pytest.mark.parametrize("filename", ["../precious.txt", "/tmp/vmae-abs.bin", ".hidden", "a/b.bin", "link.bin"])
def test_filename_must_stay_inside_the_raw_folder(server, tmp_path, filename):
    """A spec that bypasses the schema still cannot write, move aside or replace files elsewhere."""
    raw = tmp_path / "raw"
    raw.mkdir()
    (tmp_path / "precious.txt").write_text("keep me")
    (raw / "link.bin").symlink_to(tmp_path / "precious.txt")
    remote = RemoteFile(f"{server.url}/x", filename, sha256=hashlib.sha256(PAYLOAD).hexdigest())
    with pytest.raises(DownloadError, match=rf"filename '{filename}': expected a plain file name inside {raw}"):
        download(remote, raw, wait_s=0)
    assert (tmp_path / "precious.txt").read_text() == "keep me" and not Path("/tmp/vmae-abs.bin").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["precious.txt", "raw"] and server.requests == []


def test_a_checksum_is_required_unless_insecure(server, tmp_path):
    remote = _remote(server, "page.html", b"<html>error</html>")
    with pytest.raises(DownloadError, match=r"no sha256 or md5 for page\.html: expected a checksum .*insecure: true"):
        download(remote, tmp_path, wait_s=0)
    assert server.requests == [] and list(tmp_path.iterdir()) == []
    insecure = RemoteFile(remote.url, "page.html", insecure=True)
    assert download(insecure, tmp_path, wait_s=0).read_bytes() == b"<html>error</html>"
    assert RemoteFile.from_dict({"url": remote.url, "filename": "p", "insecure": True}).insecure


def test_https_to_http_redirect_is_refused_by_the_handler():
    import urllib.request

    from vmae.data.download import NoDowngradeRedirects

    handler = NoDowngradeRedirects()
    request = urllib.request.Request("https://example.org/a.zip")
    with pytest.raises(DownloadError, match=r"https://example.org/a.zip: redirected \(HTTP 302\) to "
                                            r"http://example.org/a.zip: expected https throughout"):
        handler.redirect_request(request, None, 302, "Found", {}, "http://example.org/a.zip")
    upgraded = handler.redirect_request(urllib.request.Request("http://example.org/a"), None, 301, "Moved", {},
                                        "https://example.org/a")
    assert upgraded.full_url == "https://example.org/a"


def test_https_download_redirected_to_http_fetches_nothing(server, tmp_path, monkeypatch):
    """End to end through a loopback https server (its certificate made by openssl) that redirects
    to the plain http server."""
    import shutil
    import ssl
    import subprocess
    import urllib.request

    from vmae.data import download as download_module

    if not shutil.which("openssl"):
        pytest.skip("needs the openssl command to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    server.files["/a.bin"] = PAYLOAD
    plain_url = f"{server.url}/a.bin"

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(302)
            self.send_header("Location", plain_url)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    trusting = ssl.create_default_context(cafile=str(cert))
    monkeypatch.setattr(download_module, "OPENER", urllib.request.build_opener(
        download_module.NoDowngradeRedirects, urllib.request.HTTPSHandler(context=trusting)))
    try:
        url = f"https://127.0.0.1:{httpd.server_address[1]}/a.bin"
        remote = RemoteFile(url, "a.bin", sha256=hashlib.sha256(PAYLOAD).hexdigest())
        with pytest.raises(DownloadError, match=rf"{url}: redirected \(HTTP 302\) to {plain_url}: expected https"):
            download(remote, tmp_path, wait_s=0)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert server.requests == [] and not (tmp_path / "a.bin").exists()


# --------------------------------------------------------------------------- file:// (a local mirror)


def _local(tmp_path: Path, data: bytes = PAYLOAD, **checks: object) -> RemoteFile:
    source = tmp_path / "mirror" / "a.bin"
    source.parent.mkdir(exist_ok=True)
    source.write_bytes(data)
    return RemoteFile(source.as_uri(), "a.bin", **checks)


def test_file_url_is_copied_verified_and_not_copied_again(tmp_path):
    remote = _local(tmp_path, sha256=hashlib.sha256(PAYLOAD).hexdigest())
    raw = tmp_path / "raw"
    path = download(remote, raw, wait_s=0)
    assert path.read_bytes() == PAYLOAD and sorted(p.name for p in raw.iterdir()) == [".a.bin.verified", "a.bin"]
    (tmp_path / "mirror" / "a.bin").unlink()  # a verified file is never fetched again
    assert download(remote, raw, wait_s=0) == path


def test_file_url_replaces_a_partial_file_whole_instead_of_resuming_it(tmp_path):
    """No Range for files: a .part left by a killed copy (here: other bytes, as long as the whole
    file) is copied over, not appended to, and the checksum decides."""
    remote = _local(tmp_path, md5=hashlib.md5(PAYLOAD).hexdigest())
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a.bin.part").write_bytes(b"x" * 100)
    assert download(remote, raw, wait_s=0).read_bytes() == PAYLOAD
    (raw / "a.bin").unlink()
    (raw / "a.bin.part").write_bytes(b"y" * len(PAYLOAD))
    assert download(remote, raw, wait_s=0).read_bytes() == PAYLOAD


def test_file_url_with_a_wrong_checksum_is_set_aside(tmp_path):
    remote = _local(tmp_path, sha256="0" * 64)
    with pytest.raises(ChecksumError, match=r"file://.*a.bin: sha256 \w+, expected 0{64}"):
        download(remote, tmp_path / "raw", wait_s=0)
    assert not (tmp_path / "raw" / "a.bin").exists()


@pytest.mark.parametrize(("url", "message"), [
    ("file:///nonexistent/vmae/a.bin", r"^file:///nonexistent/vmae/a.bin: no such file /nonexistent/vmae/a.bin: "
                                       r"expected the mirror's file there"),
    ("file://elsewhere/srv/a.bin", r"^file://elsewhere/srv/a.bin: a file on host 'elsewhere': expected file:///"),
])
def test_file_url_that_cannot_be_read_fails_at_once_in_one_line(tmp_path, url, message):
    with pytest.raises(DownloadError, match=message) as err:
        download(RemoteFile(url, "a.bin", md5="0" * 32), tmp_path, retries=3, wait_s=30)  # no retry: no 30 s wait
    assert "\n" not in str(err.value)
