"""The built book (_build/html) in headless Chromium: every page loads, shows no error output, and every image it
shows exists; a screenshot of the main results page is kept under _build/screenshots/.

What a reader sees, on every page (so new pages are covered without naming them):

* **legible figures**: Chromium lays each page out at 1400 px and reports the width at which it shows each figure;
  every figure carries the positions of its text in its PNG (:mod:`adu_book.legibility`, recorded during the very
  draw that made the image), and :func:`adu_book.legibility.problems` must find no text under 9 pt as rendered, no
  two texts overlapping, no text cut by the image or its panel, no text under another panel;
* **comparisons that say against what**: every glued phrase (``_build/jupyter_execute/**/*.glue.json``) passes
  :func:`adu_book.facts.comparison_problems` (a comparator, what is compared, a unit);
* no table cell prints a raw float (``69.960000``); glued numbers are not bold, no bold holds a decimal number, no link has a dash in its address, no fenced block is
  highlighted as Python unless it is code, no page shows an exception name or a home folder;
* the claims ledger and the main results page open with their forest plot, before any table;
* no table is wider than the box that holds it (no sideways scrolling at 1400 px).

Skips when the book has not been built (`jupyter-book build .`) or when no Chromium is installed (Debian:
`apt-get install -y chromium`; .ci/run installs it).
"""

from __future__ import annotations

import ast
import contextlib
import json
import re
import shutil
import subprocess
import tempfile
from html import unescape
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



# --- what a reader sees ----------------------------------------------------------------------------------------------
PROBE = """<script>
window.addEventListener('load', function () {
  var art = document.querySelector('article') || document.querySelector('main') || document.body;
  var out = {images: [], pasted: [], strong: [], order: [], links: []};
  art.querySelectorAll('img').forEach(function (im) {
    var r = im.getBoundingClientRect();
    out.images.push({src: im.getAttribute('src'), natural: im.naturalWidth, shown: r.width,
                     attr: parseFloat(im.getAttribute('width') || '0'), column: art.getBoundingClientRect().width});
  });
  art.querySelectorAll('span.pasted-text').forEach(function (el) {
    out.pasted.push({text: el.textContent, weight: getComputedStyle(el).fontWeight});
  });
  art.querySelectorAll('strong, b').forEach(function (el) { out.strong.push(el.textContent); });
  art.querySelectorAll('img, table').forEach(function (el) {
    out.order.push(el.tagName.toLowerCase() === 'img' ? 'img:' + el.getAttribute('src') : 'table');
  });
  document.querySelectorAll('a[href]').forEach(function (a) { out.links.push(a.getAttribute('href')); });
  out.tables = [];
  art.querySelectorAll('table').forEach(function (tb) {
    // the room a table has: the box that would scroll it sideways, else the window
    var box = tb.parentElement, room = window.innerWidth - tb.getBoundingClientRect().left;
    for (; box && box !== document.body; box = box.parentElement) {
      var o = getComputedStyle(box).overflowX;
      if (o === 'auto' || o === 'scroll' || o === 'hidden') { room = box.clientWidth; break; }
    }
    var th = tb.querySelector('th');
    out.tables.push({width: tb.scrollWidth, room: room, head: th ? th.textContent.trim().slice(0, 40) : ''});
  });
  var pre = document.createElement('pre'); pre.id = '__reader__'; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""
_SEEN: dict[str, dict] = {}


def reader_view(browser: str, page: str) -> dict:
    """The page as Chromium lays it out at 1400 px: each image's natural and shown width, the glued spans' weight,
    the bold texts, images and tables in document order, the links (a copy of the page with a probe script, its
    relative paths kept by a <base>)."""
    if page in _SEEN:
        return _SEEN[page]
    path = landing(HTML / page)
    html = path.read_text(errors="replace")
    html = html.replace("<head>", f'<head><base href="{path.parent.as_uri()}/">', 1).replace("</body>", PROBE + "</body>")
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / path.name
        copy.write_text(html)
        proc = headless(browser, "--virtual-time-budget=10000", "--window-size=1400,2000", "--dump-dom",
                        copy.as_uri())
    m = re.search(r'<pre id="__reader__"[^>]*>(.*?)</pre>', proc.stdout, re.S)
    assert m, f"{page}: the probe did not run ({proc.stderr[-500:]})"
    _SEEN[page] = json.loads(unescape(m.group(1)))
    return _SEEN[page]


def figures_of(view: dict, page: str) -> list[tuple[Path, float]]:
    """(PNG file, width shown in CSS px) of every figure the page shows (images under _images/)."""
    base = landing(HTML / page).parent
    out = []
    for im in view["images"]:
        src = unquote(urlparse(im["src"] or "").path)
        if "_images/" not in src or not src.endswith(".png"):
            continue
        shown = im["shown"] or min(im["attr"] or im["natural"], im["column"])  # a collapsed output: as opened
        out.append(((base / src).resolve(), float(shown)))
    return out


@pytest.mark.parametrize("page", _page_ids() or ["<unbuilt>"])
def test_every_figure_is_legible_at_the_books_width(browser, page):
    from adu_book import legibility

    problems = []
    for png, shown in figures_of(reader_view(browser, page), page):
        record = legibility.read_record(png)
        if record is None:
            problems.append(f"{png.name}: no text record (drawn outside adu_book.notebook_defaults()?)")
            continue
        problems += legibility.problems(record, shown, where=png.name[:12])
    assert not problems, f"{page}: " + "\n".join(problems[:25])


def glued_phrases() -> list[tuple[str, str, str]]:
    """(page, name, text) of every value glued into the built pages' prose."""
    out = []
    for path in sorted((HTML.parent / "jupyter_execute").rglob("*.glue.json")):
        for name, output in json.loads(path.read_text()).items():
            for mime, value in output.get("data", {}).items():
                if mime.endswith("text/plain"):
                    with contextlib.suppress(ValueError, SyntaxError):
                        value = ast.literal_eval(value)
                    if isinstance(value, str) and not value.startswith("<"):
                        out.append((path.stem.removesuffix(".glue"), name, value))
                elif mime.endswith("text/markdown"):
                    out.append((path.stem.removesuffix(".glue"), name, value))
    return out


def test_every_glued_comparison_names_its_comparator_and_unit(browser):
    from adu_book.facts import comparison_problems

    phrases = glued_phrases()
    assert phrases, "no glued phrase found under _build/jupyter_execute"
    bad = [f"{page}/{name}: {'; '.join(comparison_problems(text))}: {text[:160]}"
           for page, name, text in phrases
           for text in [t for t in re.split(r"(?<=[.;])\s+|\n- ", text) if t.strip()] if comparison_problems(text)]
    assert not bad, "\n".join(bad[:25])


@pytest.mark.parametrize("page", _page_ids() or ["<unbuilt>"])
def test_bold_is_for_words_not_for_every_figure(browser, page):
    view = reader_view(browser, page)
    heavy = [p["text"][:60] for p in view["pasted"] if int(p["weight"]) >= 600]
    assert not heavy, f"{page}: glued text drawn in bold: {heavy[:5]}"
    numbers = [t for t in view["strong"] if re.search(r"\d+\.\d+", t)]
    assert not numbers, f"{page}: bold numbers: {numbers[:5]}"


@pytest.mark.parametrize("page", _page_ids() or ["<unbuilt>"])
def test_pages_speak_to_readers(browser, page):
    view = reader_view(browser, page)
    dashed = [h for h in view["links"] if re.search(r"[\u2013\u2014]|%E2%80%9[34]", h, re.I)]
    assert not dashed, f"{page}: links with a dash in their address: {dashed}"
    html = (HTML / page).read_text(errors="replace")
    assert "highlight-default" not in html and "highlight-python" not in html, \
        f"{page}: a block that is not code is highlighted as Python (fence it as text)"
    text = re.sub(r"<[^>]+>", " ", html)
    for internal in ("DataError", "/root/", "/home/", "top10"):
        assert internal not in text, f"{page}: shows {internal!r}"
    raw = re.findall(r"<td[^>]*>\s*(-?\d+\.\d{5,})\s*</td>", html)  # a float as pandas dumps it: 69.960000
    assert not raw, f"{page}: table cells print raw floats {raw[:3]} (show them through adu_book.tables.styled)"
    if not (REPO / "PAPER.md").exists():
        assert "PAPER.md" not in text, f"{page}: cites PAPER.md, which the repository does not have"


@pytest.mark.parametrize("page", _page_ids() or ["<unbuilt>"])
def test_every_table_fits_the_page(browser, page):
    """A reader never scrolls a table sideways at 1400 px: each is at most as wide as the box that holds it."""
    wide = [f"{t['head']!r}: {t['width']} px in {t['room']} px" for t in reader_view(browser, page)["tables"]
            if t["width"] > t["room"] + 1]
    assert not wide, f"{page}: tables wider than the page (fewer or narrower columns, or details below): {wide}"


@pytest.mark.parametrize("page", ["book/ledger.html", "book/main_results.html"])
def test_the_ledger_and_main_results_open_with_the_forest_plot(browser, page):
    from adu_book import legibility

    if page not in _page_ids():
        pytest.skip(f"{page} is not built")
    view = reader_view(browser, page)
    first = next((o for o in view["order"] if o == "table" or "_images/" in o), None)
    assert first and first.startswith("img:"), f"{page}: a table comes before the first figure"
    png = (landing(HTML / page).parent / unquote(urlparse(first[4:]).path)).resolve()
    record = legibility.read_record(png)
    assert record and any("95 % interval" in t["s"] for t in record["texts"]), f"{page}: the first figure is not " \
        "the forest plot"
