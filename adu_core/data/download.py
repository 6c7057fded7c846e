"""A small, dependency-free downloader: resume, checksums, atomic rename, retries, Google Drive, safe extraction.

- HTTP(S) through ``urllib`` with a timeout on every socket operation, so an offline machine fails in seconds
  with one line instead of hanging.
- Bytes go to ``<file>.part``; a rerun resumes it with a ``Range`` request (a server that ignores the range
  restarts it). Only a complete file whose size and checksum match is renamed to its final name, so a wrong
  checksum never leaves a file that looks finished.
- Checksums: sha256 or md5 where the true value is published (see each dataset's resources); otherwise
  trust-on-first-use: the sha256 of the first complete download is recorded in ``<root>/_downloads/checksums.json``
  and every later download of that file must match it.
- Google Drive (where Dassl and DomainBed host Office-Home, PACS and mini-DomainNet's lists): a large file first
  answers with a "can't scan for viruses" page; its form (or the older ``confirm=`` token / ``download_warning``
  cookie) leads to the file. Quota pages become a clear error.
- Extraction of zip and tar archives refuses absolute paths, ``..``, links and devices (path traversal), extracts
  into a staging folder, and reports a corrupt archive with its name and the fix.
"""

from __future__ import annotations

import hashlib
import html
import http.client
import http.cookiejar
import json
import logging
import lzma
import os
import re
import shutil
import socket
import stat
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from tqdm.auto import tqdm

from .base import DataError

if TYPE_CHECKING:
    from .dataset import Dataset
    from .verify import VerifyReport

log = logging.getLogger(__name__)

GDRIVE_ENDPOINT = "https://drive.google.com/uc"  # tests point this at a local imitation
USER_AGENT = "adu-core-downloader/1 (+https://github.com/kodaikawamura/domain-unlearning companion)"
DOWNLOADS = "_downloads"
TOFU_FILE = "checksums.json"
CHUNK = 1 << 20


class DownloadError(DataError):
    """The file could not be fetched (offline, HTTP error, quota page)."""


class ChecksumError(DownloadError):
    """The fetched bytes are not the expected file."""


class ArchiveError(DataError):
    """An archive is corrupt, truncated, or tries to write outside its folder."""


@dataclass(frozen=True)
class Resource:
    """One file a dataset needs.

    ``urls`` are tried in order (mirrors); ``gdrive:<id>`` names a Google Drive file. ``kind="archive"`` is
    extracted into the dataset folder; ``kind="file"`` is copied to ``target`` (relative to the dataset folder).
    ``checksum_source`` says where the sha256/md5 comes from; empty means trust-on-first-use.
    """

    filename: str
    urls: tuple[str, ...]
    sha256: str | None = None
    md5: str | None = None
    size: int | None = None
    kind: str = "archive"
    target: str = ""
    checksum_source: str = ""

    @property
    def verified(self) -> bool:
        return bool(self.sha256 or self.md5)


# --- low-level HTTP -------------------------------------------------------------------------------------------------

class _Incomplete(Exception):
    """The connection ended before the announced length (retry resumes)."""


_RETRYABLE = (_Incomplete, TimeoutError, socket.timeout, ConnectionResetError, ConnectionAbortedError,
              BrokenPipeError, http.client.IncompleteRead, http.client.RemoteDisconnected)


def _opener() -> urllib.request.OpenerDirector:
    # A cookie jar per download: Google Drive's confirm cookie must travel to the second request.
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))


def _unreachable(err: urllib.error.URLError) -> bool:
    reason = getattr(err, "reason", None)
    return isinstance(reason, socket.gaierror | ConnectionRefusedError) or (
        isinstance(reason, OSError) and reason.errno in (101, 113))  # network / host unreachable


def _host(url: str) -> str:
    if url.startswith("gdrive:"):
        url = GDRIVE_ENDPOINT
    return urllib.parse.urlsplit(url).netloc or url


def _human_url(url: str) -> str:
    """What a person can open in a browser (a Drive id becomes its share link)."""
    return f"https://drive.google.com/uc?id={url.split(':', 1)[1]}" if url.startswith("gdrive:") else url


def _fetch_once(opener: urllib.request.OpenerDirector, url: str, part: Path, timeout: float, progress: bool,
                desc: str) -> tuple[str, bool]:
    """Append the rest of ``url`` to ``part`` (Range from its size). Returns (content type, resumed?)."""
    start = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT}
    if start:
        headers["Range"] = f"bytes={start}-"
    try:
        resp = opener.open(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and start:  # nothing left to send: the part is already complete
            return "application/octet-stream", True
        raise
    with resp:
        status = getattr(resp, "status", 200)
        if start and status != 206:  # the server ignored the range: start over
            start = 0
        length = resp.headers.get("Content-Length")
        total = start + int(length) if length and length.isdigit() else None
        mode = "ab" if start else "wb"
        with open(part, mode) as f, tqdm(total=total, initial=start, unit="B", unit_scale=True, desc=desc,
                                         disable=not progress, leave=False) as bar:
            while True:
                block = resp.read(CHUNK)
                if not block:
                    break
                f.write(block)
                bar.update(len(block))
        if total is not None and part.stat().st_size < total:
            raise _Incomplete(f"{part.stat().st_size} of {total} bytes")
        return resp.headers.get_content_type(), start > 0


def _digests(path: Path) -> dict[str, str]:
    sha, md5 = hashlib.sha256(), hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            sha.update(block)
            md5.update(block)
    return {"sha256": sha.hexdigest(), "md5": md5.hexdigest()}


def _check(path: Path, sha256: str | None, md5: str | None, size: int | None) -> str | None:
    """None if the file matches, else what differs."""
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        return f"size {actual_size:,} bytes, expected {size:,}"
    if sha256 or md5:
        d = _digests(path)
        if sha256 and d["sha256"] != sha256.lower():
            return f"sha256 {d['sha256']}, expected {sha256.lower()}"
        if md5 and d["md5"] != md5.lower():
            return f"md5 {d['md5']}, expected {md5.lower()}"
    return None


def download_url(url: str, dest: str | os.PathLike[str], *, sha256: str | None = None, md5: str | None = None,
                 size: int | None = None, timeout: float = 30.0, retries: int = 3, backoff: float = 1.0,
                 progress: bool = True, allow_html: bool = False) -> Path:
    """Fetch ``url`` to ``dest`` with resume, retries and checks; returns ``dest``.

    An existing ``dest`` that matches is kept. ``gdrive:<id>`` URLs go through the Google Drive confirm step.
    Raises :class:`DownloadError` (offline, HTTP errors) or :class:`ChecksumError` (wrong bytes: the partial file is
    deleted, nothing is left at ``dest``).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        if _check(dest, sha256, md5, size) is None:
            return dest
        log.warning("%s exists but does not match its checksum; downloading it again", dest)
        dest.unlink()
    part = dest.with_name(dest.name + ".part")
    opener = _opener()
    restarted = False
    attempt = 0
    while True:
        try:
            real_url = _resolve_gdrive(opener, url, timeout) if url.startswith("gdrive:") else url
            # resumed: the .part now joins bytes of several requests (a stale or foreign start is possible)
            ctype, resumed = _fetch_once(opener, real_url, part, timeout, progress, dest.name)
        except urllib.error.HTTPError as err:
            if err.code in (408, 429) or err.code >= 500:
                problem: BaseException = err
            else:
                raise DownloadError(f"cannot download {dest.name}: HTTP {err.code} {err.reason} from "
                                    f"{_human_url(url)}") from None
        except urllib.error.URLError as err:
            if _unreachable(err):
                raise DownloadError(f"cannot download {dest.name}: {_host(url)} is unreachable ({err.reason}); "
                                    f"are you offline? Fetch {_human_url(url)} by hand into {dest.parent} and "
                                    "rerun") from None
            problem = err
        except _RETRYABLE as err:
            problem = err
        else:
            if ctype == "text/html" and not allow_html:
                part.unlink(missing_ok=True)
                raise DownloadError(f"cannot download {dest.name}: {_human_url(url)} answered with an HTML page "
                                    "instead of the file (moved, login or quota page?); fetch it in a browser and "
                                    f"put it at {dest}")
            mismatch = _check(part, sha256, md5, size)
            if mismatch is None:
                os.replace(part, dest)
                return dest
            too_short = size is not None and part.stat().st_size < size
            if too_short and attempt < retries:
                problem = _Incomplete(mismatch)
            elif resumed and not restarted and attempt < retries:
                # A resumed file can hold stale bytes from an older run: one clean restart before giving up.
                part.unlink()
                restarted = True
                problem = _Incomplete(mismatch)
            else:
                part.unlink(missing_ok=True)
                raise ChecksumError(f"checksum mismatch for {dest.name} from {_human_url(url)}: {mismatch}. The "
                                    "partial file was deleted; rerun to try again. If it repeats, the file on the "
                                    "server changed: report it (do not use the file).")
        attempt += 1
        if attempt > retries:
            raise DownloadError(f"cannot download {dest.name} from {_human_url(url)} after {retries + 1} tries: "
                                f"{problem}. Rerun to resume ({part.name} keeps what arrived)") from None
        log.info("retrying %s after %s (try %d of %d)", url, problem, attempt + 1, retries + 1)
        time.sleep(backoff * 2 ** (attempt - 1))


# --- Google Drive ---------------------------------------------------------------------------------------------------

_QUOTA_PATTERNS = ("quota exceeded", "too many users have viewed or downloaded", "download quota")


def _resolve_gdrive(opener: urllib.request.OpenerDirector, url: str, timeout: float) -> str:
    """The direct URL of a Drive file: the plain link, or the one behind the virus-scan warning page."""
    file_id = url.split(":", 1)[1]
    first = f"{GDRIVE_ENDPOINT}?{urllib.parse.urlencode({'export': 'download', 'id': file_id})}"
    with opener.open(urllib.request.Request(first, headers={"User-Agent": USER_AGENT}), timeout=timeout) as resp:
        if resp.headers.get_content_type() != "text/html":
            return first  # small files come directly; the caller re-requests it with a Range
        page = resp.read(2 << 20).decode("utf-8", "replace")
        base = resp.geturl()
    form = re.search(r'<form[^>]*id="download-form"[^>]*action="([^"]+)"[^>]*>(.*?)</form>', page, re.S | re.I)
    if form:
        action = urllib.parse.urljoin(base, html.unescape(form.group(1)))
        fields = dict(re.findall(r'<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"', form.group(2)))
        return f"{action}?{urllib.parse.urlencode({k: html.unescape(v) for k, v in fields.items()})}"
    found = re.search(r"confirm=([0-9A-Za-z_\-]+)", page)
    token = found.group(1) if found else None
    if token is None:  # the older scheme: the token travels in a cookie
        jar = next((h.cookiejar for h in opener.handlers if isinstance(h, urllib.request.HTTPCookieProcessor)), None)
        token = next((c.value for c in (jar or []) if c.name.startswith("download_warning") and c.value), None)
    if token:
        return f"{first}&confirm={urllib.parse.quote(token)}"
    lowered = page.lower()
    if any(p in lowered for p in _QUOTA_PATTERNS):
        raise DownloadError(f"Google Drive refuses file {file_id} for now (download quota exceeded); try again in "
                            f"24 h, or download https://drive.google.com/uc?id={file_id} in a browser into the "
                            f"_downloads folder and rerun")
    raise DownloadError(f"Google Drive returned a page without a download link for file {file_id} (removed or "
                        f"private?); open https://drive.google.com/uc?id={file_id} in a browser")


# --- extraction -----------------------------------------------------------------------------------------------------

def _safe_member(name: str, archive: Path) -> PurePosixPath:
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts or re.match(r"^[A-Za-z]:", name):
        raise ArchiveError(f"archive {archive.name} holds an unsafe path {name!r} (absolute or '..'); refusing to "
                           "extract it. Delete the archive; it is not the expected file")
    return p


def extract_archive(archive: str | os.PathLike[str], dest: str | os.PathLike[str]) -> None:
    """Extract a zip or tar(.gz/.bz2/.xz) archive into ``dest`` safely; corrupt archives raise :class:`ArchiveError`."""
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    hint = f"Delete {archive} and rerun the download"
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    rel = _safe_member(info.filename, archive)
                    mode = info.external_attr >> 16
                    if stat.S_ISLNK(mode):
                        raise ArchiveError(f"archive {archive.name} holds a symbolic link {info.filename!r}; "
                                           "refusing to extract it")
                    target = dest.joinpath(*rel.parts)
                    if info.is_dir():
                        target.mkdir(parents=True, exist_ok=True)
                        continue
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as src, open(target, "wb") as out:
                        shutil.copyfileobj(src, out, CHUNK)  # a CRC error surfaces here as BadZipFile
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tf:
                members = tf.getmembers()
                for m in members:
                    _safe_member(m.name, archive)
                    if not (m.isfile() or m.isdir()):
                        raise ArchiveError(f"archive {archive.name} holds a link or device {m.name!r}; "
                                           "refusing to extract it")
                tf.extractall(dest, members=members, filter="data")
        else:
            raise ArchiveError(f"{archive} is neither a zip nor a tar archive (truncated or corrupt download). {hint}")
    except ArchiveError:
        raise
    except (zipfile.BadZipFile, tarfile.TarError, zlib.error, lzma.LZMAError, EOFError, OSError,
            ValueError) as err:
        raise ArchiveError(f"archive {archive} is corrupt ({type(err).__name__}: {err}). {hint}") from None


def merge_move(src: Path, dst: Path) -> None:
    """Move the contents of ``src`` into ``dst``, merging folders; files already at ``dst`` are replaced."""
    dst.mkdir(parents=True, exist_ok=True)
    for entry in sorted(src.iterdir()):
        target = dst / entry.name
        if entry.is_dir() and target.is_dir():
            merge_move(entry, target)
            entry.rmdir()
        else:
            if target.is_dir():
                shutil.rmtree(target)
            os.replace(entry, target)


# --- datasets -------------------------------------------------------------------------------------------------------

def _load_tofu(path: Path) -> dict:
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except json.JSONDecodeError:
        raise DataError(f"{path} is not valid JSON; fix or delete it (it records first-download checksums)") from None


def fetch_resource(res: Resource, downloads: Path, *, progress: bool = True, timeout: float = 30.0,
                   retries: int = 3, backoff: float = 1.0) -> Path:
    """Download one resource into ``downloads`` (a file already there is checked, not fetched again).

    Without a published checksum the first download's sha256 is recorded (trust-on-first-use) and later ones must
    match it.
    """
    dest = downloads / res.filename
    tofu_path = downloads / TOFU_FILE
    record = None if res.verified else _load_tofu(tofu_path).get(res.filename)
    sha = res.sha256 or (record or {}).get("sha256")
    errors: list[str] = []
    for url in res.urls:
        try:
            download_url(url, dest, sha256=sha, md5=res.md5, size=res.size, timeout=timeout, retries=retries,
                         backoff=backoff, progress=progress)
            break
        except ChecksumError as err:
            if record is not None:
                raise ChecksumError(f"{err} (the expected sha256 was recorded on the first download, "
                                    f"{record.get('first_seen', '?')}, in {tofu_path}; delete that entry to accept "
                                    "a new file)") from None
            raise
        except DownloadError as err:
            errors.append(str(err))
    else:
        raise DownloadError(errors[0] if len(errors) == 1 else " | ".join(errors))
    if not res.verified and record is None:
        digest = _digests(dest)["sha256"]
        table = _load_tofu(tofu_path)
        table[res.filename] = {"sha256": digest, "size": dest.stat().st_size, "url": url,
                               "first_seen": datetime.now(timezone.utc).strftime("%Y-%m-%d")}
        tofu_path.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
        log.warning("%s has no published checksum: recorded sha256 %s (trust on first use) in %s",
                    res.filename, digest, tofu_path)
    return dest


def download_dataset(ds: Dataset, *, keep_archives: bool = False, progress: bool = True, timeout: float = 30.0,
                     retries: int = 3, backoff: float = 1.0, verify: bool = True) -> VerifyReport | None:
    """Fetch, check, extract and install every resource of ``ds`` under its data root; then verify it.

    Resources already installed (recorded in ``<dataset>/.adu-installed.json``) are skipped, so a rerun after an
    interruption continues where it stopped. A copy that is already complete and verifies (one the user made, e.g.
    Dassl's ``office_home_dg`` or CoOp's ImageNet layout, read in place) is not downloaded again: its report is
    returned with a note. Returns the verification report (None when ``verify=False`` and something was fetched).
    """
    if not ds.on_disk:
        return ds.verify() if verify else None
    if ds.dir.is_dir() and not (ds.data_root / ds.folder / ".adu-installed.json").is_file():
        report = ds.verify()
        if report.ok:
            report.notes.append(f"a complete copy is already at {ds.dir} ({ds.layout}): nothing downloaded")
            return report
        log.info("%s: the copy at %s is incomplete (%d problem(s)); downloading", ds.name, ds.dir,
                 len(report.problems))
    root = ds.data_root
    target = root / ds.folder
    downloads = root / DOWNLOADS
    marker = target / ".adu-installed.json"
    try:
        downloads.mkdir(parents=True, exist_ok=True)
        installed = json.loads(marker.read_text()) if marker.is_file() else {}
    except OSError as err:
        raise DataError(f"cannot write under the data root {root} ({err}); choose a writable one with --data-root "
                        "or ADU_DATA_ROOT") from None
    for res in ds.resources:
        if res.filename in installed:
            continue
        path = fetch_resource(res, downloads, progress=progress, timeout=timeout, retries=retries, backoff=backoff)
        staging = root / f".staging-{ds.name}-{res.filename}"
        shutil.rmtree(staging, ignore_errors=True)
        try:
            if res.kind == "archive":
                try:
                    extract_archive(path, staging)
                except ArchiveError:
                    if not res.verified:  # a bad unverified archive is useless: make the rerun fetch it again
                        path.unlink(missing_ok=True)
                        table = _load_tofu(downloads / TOFU_FILE)
                        if table.pop(res.filename, None) is not None:
                            (downloads / TOFU_FILE).write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
                    raise
            else:
                dest = staging / (res.target or res.filename)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, dest)
            ds.install(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        installed[res.filename] = _digests(path)["sha256"]
        target.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps(installed, indent=1, sort_keys=True) + "\n")
        if not keep_archives and res.kind == "archive":
            path.unlink(missing_ok=True)
    for line in ds.post_download():
        log.info("%s: %s", ds.name, line)
    return ds.verify() if verify else None
