"""Helpers for the data tests: a local HTTP server on 127.0.0.1 and tiny fake datasets/archives.

The server imitates what the real hosts do: Range requests (206), a connection that dies mid-file, a server that
ignores Range, Google Drive's virus-scan page (form and cookie variants) and its quota page.
"""

from __future__ import annotations

import io
import tarfile
import threading
import urllib.parse
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from PIL import Image


def image_bytes(seed: int = 0, fmt: str = "JPEG", size: int = 8) -> bytes:
    """A tiny valid image whose pixels depend on ``seed`` (distinct bytes per file)."""
    im = Image.new("RGB", (size, size), ((seed * 37) % 256, (seed * 91) % 256, (seed * 13) % 256))
    im.putpixel((seed % size, 0), (255 - (seed % 256), 0, 0))
    buf = io.BytesIO()
    im.save(buf, fmt)
    return buf.getvalue()


def make_zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def make_tar_gz(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@dataclass
class Route:
    data: bytes
    content_type: str = "application/octet-stream"
    cut_after: int | None = None  # first response stops after this many bytes (announcing the full length)
    ignore_range: bool = False
    status: int = 200


@dataclass
class LocalServer:
    routes: dict[str, Route] = field(default_factory=dict)
    gdrive: dict[str, bytes] = field(default_factory=dict)  # file id -> bytes, behind the virus-scan form
    gdrive_cookie: dict[str, bytes] = field(default_factory=dict)  # file id -> bytes, older cookie/confirm scheme
    gdrive_quota: set[str] = field(default_factory=set)
    log: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range header)
    port: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def add(self, path: str, data: bytes, **kw) -> str:
        self.routes[path] = Route(data, **kw)
        return self.url(path)


def _handler(server: LocalServer):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep test output quiet
            pass

        def _send_file(self, data: bytes, route: Route | None = None) -> None:
            rng = self.headers.get("Range")
            start = 0
            if rng and not (route and route.ignore_range):
                start = int(rng.split("=")[1].split("-")[0])
                if start >= len(data):
                    self.send_response(416)
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(route.status if route else 200)
            body = data[start:]
            self.send_header("Content-Type", route.content_type if route else "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if route and route.cut_after is not None:
                self.wfile.write(body[: route.cut_after])
                route.cut_after = None  # only the first response is cut
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

        def _html(self, page: str, cookie: str | None = None) -> None:
            raw = page.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            if cookie:
                self.send_header("Set-Cookie", cookie)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            parsed = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(parsed.query))
            server.log.append((self.path, self.headers.get("Range")))
            if parsed.path == "/uc":
                fid = query.get("id", "")
                if fid in server.gdrive_quota:
                    return self._html("<html><body>Sorry, you can't view or download this file at this time. "
                                      "Too many users have viewed or downloaded this file recently.</body></html>")
                if fid in server.gdrive:
                    return self._html(
                        '<html><body>Google Drive can\'t scan this file for viruses.'
                        '<form id="download-form" action="/download" method="get">'
                        f'<input type="hidden" name="id" value="{fid}">'
                        '<input type="hidden" name="export" value="download">'
                        '<input type="hidden" name="confirm" value="t">'
                        '<input type="hidden" name="uuid" value="1234-abcd">'
                        '<input type="submit" value="Download anyway"></form></body></html>')
                if fid in server.gdrive_cookie:
                    if query.get("confirm") == "TOKEN42" and "download_warning" in self.headers.get("Cookie", ""):
                        return self._send_file(server.gdrive_cookie[fid])
                    return self._html("<html><body>Virus scan warning</body></html>",
                                      cookie=f"download_warning_13058876669334088843_{fid}=TOKEN42; Path=/")
                self.send_error(404)
                return
            if parsed.path == "/download":
                fid = query.get("id", "")
                if fid in server.gdrive and query.get("confirm") == "t" and query.get("uuid") == "1234-abcd":
                    return self._send_file(server.gdrive[fid])
                self.send_error(403)
                return
            route = server.routes.get(parsed.path)
            if route is None:
                self.send_error(404)
                return
            if route.content_type.startswith("text/html"):
                return self._html(route.data.decode())
            self._send_file(route.data, route)

    return Handler


class ServerThread:
    """Context manager: a threaded HTTP server on 127.0.0.1 (an OS-chosen port) serving a :class:`LocalServer`."""

    def __init__(self) -> None:
        self.state = LocalServer()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.state))
        self.httpd.daemon_threads = True
        self.state.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    def __enter__(self) -> LocalServer:
        self.thread.start()
        return self.state

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# --- fake datasets --------------------------------------------------------------------------------------------------

PACS_DOMAINS = ("art_painting", "cartoon", "photo", "sketch")
PACS_CLASSES = ("dog", "elephant", "giraffe", "guitar", "horse", "house", "person")


def fake_pacs_files(per_class: int = 3, images_prefix: str = "") -> dict[str, bytes]:
    """A PACS-shaped tree: ``per_class`` images per class per domain; the last of each class is crossval."""
    files: dict[str, bytes] = {}
    lists: dict[str, list[str]] = {}
    seed = 0
    for dom in PACS_DOMAINS:
        for kind in ("train", "crossval", "test"):
            lists[f"{dom}_{kind}_kfold.txt"] = []
        for label, cls in enumerate(PACS_CLASSES, 1):
            for i in range(per_class):
                ext = "png" if dom == "sketch" else "jpg"
                rel = f"{dom}/{cls}/img_{i:03d}.{ext}"
                files[f"{images_prefix}{rel}"] = image_bytes(seed, "PNG" if ext == "png" else "JPEG")
                seed += 1
                kind = "crossval" if i == per_class - 1 else "train"
                lists[f"{dom}_{kind}_kfold.txt"].append(f"{rel} {label}")
                lists[f"{dom}_test_kfold.txt"].append(f"{rel} {label}")
    for name, lines in lists.items():
        files[f"splits/{name}"] = ("\n".join(lines) + "\n").encode()
    return files


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def fake_pacs_class(per_class: int = 3):
    """A PACS subclass whose expected table fits :func:`fake_pacs_files` and that has no committed splits."""
    from adu_core.data.pacs import PACS

    class FakePACS(PACS):
        expected = {d: (per_class,) * 7 for d in PACS_DOMAINS}
        splits_dir = Path("/nonexistent-adu-splits")

    return FakePACS
