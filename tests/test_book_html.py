"""The built book (_build/html) in headless Chromium: every page loads, shows no error output, and every image it
shows exists; a screenshot of the main results page is kept under _build/screenshots/.

Skips when the book has not been built (`jupyter-book build .`) or when no Chromium is installed (Debian:
`apt-get install -y chromium`; .ci/run installs it).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

REPO = Path(__file__).resolve().parents[1]
HTML = REPO / "_build" / "html"
SHOTS = REPO / "_build" / "screenshots"
# pages whose notebooks draw figures (every page that shows runs): each must show at least one image it made
FIGURE_PAGES = tuple(f"book/{name}.html" for name in (
    "main_results", "ablation", "domain_accuracy", "sensitivity", "shots", "pseudo_labels", "tsne", "attention"))

pytestmark = pytest.mark.slow


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def browser() -> str:
    if not (HTML / "index.html").is_file():
        pytest.skip(f"the book is not built ({HTML} has no index.html): run `jupyter-book build .` first")
    path = chromium()
    if path is None:
        pytest.skip("no Chromium found (apt-get install -y chromium)")
    return path


def headless(browser: str, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    cmd = [browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           "--no-first-run", "--disable-extensions", "--hide-scrollbars", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def pages() -> list[Path]:
    return sorted(p for p in HTML.rglob("*.html") if "_static" not in p.parts and "_sources" not in p.parts)


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.classes: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "img" and a.get("src"):
            self.images.append(a["src"] or "")
        if a.get("class"):
            self.classes.append(a["class"] or "")


def landing(path: Path) -> Path:
    """The file a browser ends on: jupyter-book's index.html only redirects (meta refresh) to the first page, and the
    DOM Chromium dumps is that page's, so its relative image paths resolve from there."""
    m = re.search(r'http-equiv="refresh"\s+content="\d+;\s*url=([^"]+)"', path.read_text(errors="replace"), re.I)
    return (path.parent / unquote(m.group(1))).resolve() if m else path


def _page_ids() -> list[str]:
    return [str(p.relative_to(HTML)) for p in pages()] if HTML.is_dir() else []


def test_book_has_the_pages(browser):
    names = set(_page_ids())
    for page in ("index.html", "book/intro.html", "book/main_results.html", "book/ablation.html",
                 "book/domain_accuracy.html", "book/protocol.html"):
        assert page in names, f"{page} missing from the built book"


@pytest.mark.parametrize("page", _page_ids() or ["<unbuilt>"])
def test_page_loads_without_errors(browser, page):
    path = HTML / page
    proc = headless(browser, "--virtual-time-budget=5000", "--dump-dom", path.as_uri())
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    assert "<body" in dom and len(dom) > 1000, f"{page}: empty document"
    parser = _Collector()
    parser.feed(dom)
    assert not [c for c in parser.classes if "output_error" in c.split() or "traceback" in c.lower()], \
        f"{page} shows error output"
    assert "Traceback (most recent call last)" not in dom, f"{page} shows a traceback"
    for src in parser.images:
        url = urlparse(src)
        if url.scheme == "data":
            continue
        assert url.scheme in ("", "file"), f"{page}: image {src} is not local (the book must work offline)"
        base = landing(path).parent
        target = Path(unquote(url.path)) if url.scheme == "file" else (base / unquote(url.path)).resolve()
        assert target.is_file() and target.stat().st_size > 0, f"{page}: image {src} does not resolve"
    if page in FIGURE_PAGES:
        figures = [s for s in parser.images if "jupyter_execute" in s or re.search(r"_images/.*\.png$", s)]
        assert figures, f"{page} shows no figure"


def test_screenshot_of_main_results(browser):
    from PIL import Image, ImageStat

    SHOTS.mkdir(parents=True, exist_ok=True)
    shot = SHOTS / "main_results.png"
    shot.unlink(missing_ok=True)
    page = HTML / "book" / "main_results.html"
    proc = headless(browser, "--virtual-time-budget=5000", "--window-size=1400,2400", f"--screenshot={shot}",
                    page.as_uri())
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert shot.is_file()
    with Image.open(shot) as img:
        assert img.size == (1400, 2400)
        spread = ImageStat.Stat(img.convert("L")).stddev[0]
    assert spread > 10, "the screenshot is blank"
