"""The downloader against a local HTTP server on 127.0.0.1: resume, checksums, Drive, offline, safe extraction."""

from __future__ import annotations

import hashlib
import io
import json
import socket
import tarfile
import time
import zipfile

import pytest

from adu_core.data import DataError
from adu_core.data import download as dl
from tests._data_fixtures import ServerThread, make_tar_gz, make_zip

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB, several chunks


@pytest.fixture
def server():
    with ServerThread() as s:
        yield s


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_plain_download_checks_sha256_and_md5(server, tmp_path):
    url = server.add("/f.bin", PAYLOAD)
    out = dl.download_url(url, tmp_path / "f.bin", sha256=sha(PAYLOAD), md5=hashlib.md5(PAYLOAD).hexdigest(),
                          size=len(PAYLOAD), progress=False)
    assert out.read_bytes() == PAYLOAD
    assert not (tmp_path / "f.bin.part").exists()
    n = len(server.log)
    dl.download_url(url, out, sha256=sha(PAYLOAD), progress=False)  # already there and matching: no request
    assert len(server.log) == n


def test_truncated_download_resumes_with_range(server, tmp_path):
    url = server.add("/big.bin", PAYLOAD, cut_after=300_000)
    out = dl.download_url(url, tmp_path / "big.bin", sha256=sha(PAYLOAD), backoff=0, progress=False)
    assert out.read_bytes() == PAYLOAD
    ranges = [r for p, r in server.log if p == "/big.bin"]
    assert ranges[0] is None and ranges[1] == "bytes=300000-"  # the second request continued the .part file


def test_partial_file_from_an_earlier_run_is_resumed(server, tmp_path):
    url = server.add("/big.bin", PAYLOAD)
    (tmp_path / "big.bin.part").write_bytes(PAYLOAD[:123_456])
    dl.download_url(url, tmp_path / "big.bin", sha256=sha(PAYLOAD), progress=False)
    assert server.log[-1][1] == "bytes=123456-"
    assert (tmp_path / "big.bin").read_bytes() == PAYLOAD


def test_server_ignoring_range_restarts_cleanly(server, tmp_path):
    url = server.add("/big.bin", PAYLOAD, ignore_range=True)
    (tmp_path / "big.bin.part").write_bytes(b"garbage" * 10)
    dl.download_url(url, tmp_path / "big.bin", sha256=sha(PAYLOAD), progress=False)
    assert (tmp_path / "big.bin").read_bytes() == PAYLOAD


def test_wrong_checksum_is_a_clear_error_and_leaves_nothing(server, tmp_path):
    url = server.add("/f.bin", PAYLOAD)
    with pytest.raises(dl.ChecksumError, match=r"checksum mismatch for f\.bin.*expected 0{64}"):
        dl.download_url(url, tmp_path / "f.bin", sha256="0" * 64, backoff=0, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # neither f.bin nor f.bin.part
    assert len(server.log) == 1  # a fresh, complete, wrong file is not fetched again


def test_stale_partial_file_gets_one_clean_restart(server, tmp_path):
    url = server.add("/big.bin", PAYLOAD)
    (tmp_path / "big.bin.part").write_bytes(b"\x00" * 1000)  # bytes from some other file
    dl.download_url(url, tmp_path / "big.bin", sha256=sha(PAYLOAD), backoff=0, progress=False)
    assert (tmp_path / "big.bin").read_bytes() == PAYLOAD
    assert [r for _, r in server.log] == ["bytes=1000-", None]


def test_wrong_size_is_a_checksum_error(server, tmp_path):
    url = server.add("/f.bin", PAYLOAD)
    with pytest.raises(dl.ChecksumError, match="size"):
        dl.download_url(url, tmp_path / "f.bin", size=len(PAYLOAD) - 1, backoff=0, progress=False)
    assert not list(tmp_path.iterdir())


def test_http_error_and_html_page_are_reported(server, tmp_path):
    with pytest.raises(dl.DownloadError, match="HTTP 404"):
        dl.download_url(server.url("/missing.zip"), tmp_path / "x.zip", progress=False)
    url = server.add("/login", b"<html>please log in</html>", content_type="text/html")
    with pytest.raises(dl.DownloadError, match="HTML page"):
        dl.download_url(url, tmp_path / "x.zip", progress=False)
    assert not list(tmp_path.iterdir())


def test_offline_is_one_clear_line_without_hanging(tmp_path):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now: connection refused, as on a machine without network
    t0 = time.perf_counter()
    with pytest.raises(dl.DownloadError, match="unreachable.*offline") as err:
        dl.download_url(f"http://127.0.0.1:{port}/x.zip", tmp_path / "x.zip", timeout=2, progress=False)
    assert time.perf_counter() - t0 < 5
    assert "\n" not in str(err.value)


def test_gdrive_virus_scan_form(server, tmp_path, monkeypatch):
    monkeypatch.setattr(dl, "GDRIVE_ENDPOINT", server.url("/uc"))
    server.gdrive["FILEID"] = PAYLOAD
    out = dl.download_url("gdrive:FILEID", tmp_path / "d.zip", sha256=sha(PAYLOAD), progress=False)
    assert out.read_bytes() == PAYLOAD
    assert any(p.startswith("/download?") and "uuid=1234-abcd" in p for p, _ in server.log)


def test_gdrive_cookie_token_scheme(server, tmp_path, monkeypatch):
    monkeypatch.setattr(dl, "GDRIVE_ENDPOINT", server.url("/uc"))
    server.gdrive_cookie["OLDID"] = PAYLOAD
    out = dl.download_url("gdrive:OLDID", tmp_path / "d.zip", sha256=sha(PAYLOAD), progress=False)
    assert out.read_bytes() == PAYLOAD


def test_gdrive_quota_page(server, tmp_path, monkeypatch):
    monkeypatch.setattr(dl, "GDRIVE_ENDPOINT", server.url("/uc"))
    server.gdrive_quota.add("BUSY")
    with pytest.raises(dl.DownloadError, match="quota"):
        dl.download_url("gdrive:BUSY", tmp_path / "d.zip", progress=False)


def test_trust_on_first_use_records_then_enforces(server, tmp_path):
    url = server.add("/a.zip", PAYLOAD)
    res = dl.Resource("a.zip", (url,))
    dl.fetch_resource(res, tmp_path, progress=False)
    table = json.loads((tmp_path / dl.TOFU_FILE).read_text())
    assert table["a.zip"]["sha256"] == sha(PAYLOAD)
    (tmp_path / "a.zip").unlink()
    server.add("/a.zip", PAYLOAD[::-1])  # the server now hands out different bytes
    with pytest.raises(dl.ChecksumError, match="first download"):
        dl.fetch_resource(res, tmp_path, progress=False, backoff=0)
    assert not (tmp_path / "a.zip").exists()


def test_mirrors_are_tried_in_order(server, tmp_path):
    good = server.add("/good.bin", PAYLOAD)
    res = dl.Resource("m.bin", (server.url("/gone.bin"), good), sha256=sha(PAYLOAD), kind="file")
    assert dl.fetch_resource(res, tmp_path, progress=False).read_bytes() == PAYLOAD


# --- extraction -----------------------------------------------------------------------------------------------------

def test_extract_zip_and_tar(tmp_path):
    files = {"top/a.txt": b"a", "top/sub/b.txt": b"b"}
    (tmp_path / "x.zip").write_bytes(make_zip(files))
    (tmp_path / "x.tar.gz").write_bytes(make_tar_gz(files))
    for name in ("x.zip", "x.tar.gz"):
        out = tmp_path / f"out-{name}"
        dl.extract_archive(tmp_path / name, out)
        assert (out / "top/sub/b.txt").read_bytes() == b"b"


def test_corrupt_zip_names_the_archive(tmp_path):
    data = bytearray(make_zip({"a.bin": bytes(range(256)) * 64}))
    data[60:80] = b"\xff" * 20  # damage the compressed bytes: a CRC / inflate error on extraction
    path = tmp_path / "bad.zip"
    path.write_bytes(bytes(data))
    with pytest.raises(dl.ArchiveError, match=r"bad\.zip is corrupt.*rerun"):
        dl.extract_archive(path, tmp_path / "out")


def test_truncated_archive_is_not_taken_for_data(tmp_path):
    path = tmp_path / "cut.zip"
    path.write_bytes(make_zip({"a.txt": b"x" * 1000})[:-30])
    with pytest.raises(dl.ArchiveError, match="neither a zip nor a tar"):
        dl.extract_archive(path, tmp_path / "out")


@pytest.mark.parametrize("name", ["../evil.txt", "/etc/evil.txt", "a/../../evil.txt"])
def test_path_traversal_is_refused(tmp_path, name):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(name, b"evil")
    (tmp_path / "t.zip").write_bytes(buf.getvalue())
    with pytest.raises(dl.ArchiveError, match="unsafe path"):
        dl.extract_archive(tmp_path / "t.zip", tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()


def test_tar_symlink_is_refused(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("link")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tf.addfile(info)
    (tmp_path / "l.tar").write_bytes(buf.getvalue())
    with pytest.raises(dl.ArchiveError, match="link"):
        dl.extract_archive(tmp_path / "l.tar", tmp_path / "out")


def test_errors_are_data_errors():
    assert issubclass(dl.DownloadError, DataError) and issubclass(dl.ArchiveError, DataError)
