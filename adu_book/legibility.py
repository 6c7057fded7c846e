"""Legible figures: every figure a page shows carries the positions of its text, so that a test can check what a
reader sees in the built book, from the figure's own text extents rather than by eye.

:func:`install` (called by :func:`adu_book.notebook_defaults`, so on every page) makes IPython draw matplotlib
figures through :func:`figure_png`, which

* renders the figure at :data:`RENDER_DPI` (crisp on high-density screens) and asks the page to show it at
  :data:`CSS_DPI` CSS pixels per inch (the PNG's ``width`` metadata, which myst-nb writes into the ``<img>``), so that
  a font of *s* points in the figure is *s* points on the page unless the page shrinks the image to fit its column;
* records, during the very draw that makes the PNG, every text matplotlib draws (its string, font size, the four
  corners of its rotated box in PNG pixels with the origin at the top left, the rectangle it is clipped to, and the
  axes it belongs to) and the box of every axes;
* writes that record into the PNG as a text chunk (key :data:`PNG_KEY`, JSON), so it travels with the image into the
  built book (myst-nb copies the PNG's bytes into ``_build/html/_images/``).

:func:`problems` reads a record with the width at which the page shows the image (measured in Chromium by
``tests/test_book_html.py``) and lists what a reader would trip over: text under :data:`MIN_PT` points as rendered,
two texts that overlap, text cut by the image's edge or by its clip rectangle, text covered by another panel.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["CSS_DPI", "MIN_PT", "PNG_KEY", "RENDER_DPI", "figure_png", "install", "problems", "read_record",
           "record_of"]

RENDER_DPI = 192  # pixels per inch of the PNG (2 × CSS_DPI: sharp on high-density screens)
CSS_DPI = 96  # CSS pixels per inch: the page shows the PNG at RENDER_DPI / CSS_DPI of its pixel width
MIN_PT = 9.0  # the smallest text a reader should have to read, in points as rendered on the page
PNG_KEY = "adu-figure-text"
TOLERANCE_CSS_PX = 0.75  # boxes that meet by less than this (CSS px) do not count as overlapping or cut


# --- recording the text a figure draws --------------------------------------------------------------------------
def _corners(text, renderer) -> list[tuple[float, float]] | None:
    """The four corners of ``text``'s rotated box in display pixels (origin bottom left), or None."""
    try:
        bbox, _info, third = text._get_layout(renderer)  # matplotlib >= 3.9: (corner, (width, height)) unrotated
        (cx, cy), (w, h) = third
        x, y = text.get_transform().transform(text.get_unitless_position())
        angle = math.radians(text.get_rotation())
        c, s = math.cos(angle), math.sin(angle)
        x0, y0 = x + cx, y + cy
        return [(x0 + c * dx - s * dy, y0 + s * dx + c * dy) for dx, dy in ((0, 0), (w, 0), (w, h), (0, h))]
    except Exception:  # another matplotlib: the axis-aligned box (a rotated label is then judged by its hull)
        try:
            b = text.get_window_extent(renderer)
        except Exception:
            return None
        return [(b.x0, b.y0), (b.x1, b.y0), (b.x1, b.y1), (b.x0, b.y1)]


def _root(figure):
    """The top figure of a (sub)figure, on any matplotlib (a SubFigure's ``figure`` is its parent or root)."""
    seen = 0
    while figure is not None and getattr(figure, "figure", figure) is not figure and seen < 10:
        figure, seen = figure.figure, seen + 1
    return figure


class _Recorder:
    """Patches the Agg renderer's ``draw_text`` and ``Figure.draw`` while one figure is saved."""

    def __init__(self, figure) -> None:
        self.figure = figure
        self.texts: list[dict[str, Any]] = []
        self.axes: list[dict[str, Any]] = []
        self.size: tuple[float, float] = (0.0, 0.0)

    def __enter__(self) -> _Recorder:
        from matplotlib.backends.backend_agg import RendererAgg
        from matplotlib.figure import Figure

        self._draw_text, self._figure_draw = RendererAgg.draw_text, Figure.draw
        recorder = self

        def draw_text(renderer, gc, x, y, s, prop, angle, ismath=False, mtext=None):
            if mtext is not None and _root(getattr(mtext, "figure", None)) is recorder.figure:
                recorder._text(renderer, gc, mtext)
            return recorder._draw_text(renderer, gc, x, y, s, prop, angle, ismath=ismath, mtext=mtext)

        def figure_draw(fig, renderer):
            if fig is not recorder.figure:
                return recorder._figure_draw(fig, renderer)
            recorder.texts, recorder.axes = [], []
            out = recorder._figure_draw(fig, renderer)
            recorder.size = (float(renderer.width), float(renderer.height))
            recorder.axes = [{"id": id(ax), "box": list(map(float, ax.bbox.extents)),
                              "opaque": bool(ax.patch.get_visible() and ax.patch.get_facecolor()[3] > 0)}
                             for ax in fig.get_axes() if ax.get_visible()]
            return out

        RendererAgg.draw_text, Figure.draw = draw_text, figure_draw
        return self

    def __exit__(self, *exc: Any) -> None:
        from matplotlib.backends.backend_agg import RendererAgg
        from matplotlib.figure import Figure

        RendererAgg.draw_text, Figure.draw = self._draw_text, self._figure_draw

    def _text(self, renderer, gc, mtext) -> None:
        if any(t["_obj"] is mtext for t in self.texts):  # a multi-line text is drawn line by line: once is enough
            return
        corners = _corners(mtext, renderer)
        if corners is None or not mtext.get_text().strip():
            return
        colour = mtext.get_color()
        try:
            from matplotlib.colors import to_rgba

            alpha = to_rgba(colour)[3] * (1.0 if mtext.get_alpha() is None else mtext.get_alpha())
        except ValueError:
            alpha = 1.0
        if alpha <= 0:
            return
        clip = gc.get_clip_rectangle()
        axes = mtext.axes
        self.texts.append({"_obj": mtext, "s": mtext.get_text(), "pt": float(mtext.get_fontsize()),
                           "corners": [list(map(float, p)) for p in corners],
                           "clip": None if clip is None else list(map(float, clip.extents)),
                           "axes": None if axes is None else id(axes)})


def record_of(figure, dpi: float = RENDER_DPI, **savefig: Any) -> tuple[bytes, dict[str, Any]]:
    """The PNG of ``figure`` (``bbox_inches="tight"`` unless given) and its text record (see the module doc)."""
    kwargs = {"format": "png", "dpi": dpi, "bbox_inches": "tight", "facecolor": "white", **savefig}
    buf = io.BytesIO()
    with _Recorder(figure) as rec:
        figure.savefig(buf, **kwargs)
    width, height = rec.size
    axes_index = {a["id"]: i for i, a in enumerate(rec.axes)}

    def flip(p):  # matplotlib's origin is the bottom left; an image's is the top left
        return [round(p[0], 2), round(height - p[1], 2)]

    texts = []
    for t in rec.texts:
        clip = t["clip"]
        texts.append({"s": t["s"], "pt": t["pt"], "corners": [flip(p) for p in t["corners"]],
                      "clip": None if clip is None else [round(clip[0], 2), round(height - clip[3], 2),
                                                         round(clip[2], 2), round(height - clip[1], 2)],
                      "axes": axes_index.get(t["axes"])})
    axes = [{"box": [round(a["box"][0], 2), round(height - a["box"][3], 2), round(a["box"][2], 2),
                     round(height - a["box"][1], 2)], "opaque": a["opaque"]} for a in rec.axes]
    record = {"dpi": float(dpi), "width": width, "height": height, "texts": texts, "axes": axes}
    return buf.getvalue(), record


def figure_png(figure) -> tuple[bytes, dict[str, Any]] | None:
    """IPython's PNG for ``figure``: rendered at :data:`RENDER_DPI`, shown at :data:`CSS_DPI` per inch, with the
    text record in the PNG (key :data:`PNG_KEY`). Returns ``(png bytes, display metadata)``; None for an empty
    figure (IPython then shows nothing)."""
    if not figure.get_axes() and not figure.texts and not figure.legends:
        return None
    png, record = record_of(figure)
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    with Image.open(io.BytesIO(png)) as img:
        info = PngInfo()
        info.add_text(PNG_KEY, json.dumps(record, ensure_ascii=True, separators=(",", ":")))
        out = io.BytesIO()
        img.save(out, format="png", pnginfo=info)
        width, height = img.size
    scale = CSS_DPI / RENDER_DPI
    return out.getvalue(), {"width": round(width * scale), "height": round(height * scale)}


def install() -> bool:
    """Register :func:`figure_png` as IPython's PNG formatter for matplotlib figures (False outside IPython)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None:
        return False
    import matplotlib.pyplot as plt

    try:  # load the backend now: matplotlib-inline registers its own PNG formatter when it is loaded
        plt._get_backend_mod()
    except Exception:
        plt.close(plt.figure())
    _ensure(shell)
    # matplotlib-inline sets its own formatter after the first cell that imports pyplot has run (and again if its
    # figure formats change): take it back before every cell
    if _before_cell not in shell.events.callbacks.get("pre_run_cell", []):
        shell.events.register("pre_run_cell", _before_cell)
    return True


def _ensure(shell) -> None:
    from matplotlib.figure import Figure

    formatters = shell.display_formatter.formatters
    if formatters["image/png"].type_printers.get(Figure) is not figure_png:
        formatters["image/png"].for_type(Figure, figure_png)
    for other in ("image/svg+xml", "application/pdf", "image/jpeg"):
        formatters[other].type_printers.pop(Figure, None)


def _before_cell(*_args: Any) -> None:
    from IPython import get_ipython

    shell = get_ipython()
    if shell is not None:
        _ensure(shell)


def read_record(png: bytes | str | Any) -> dict[str, Any] | None:
    """The text record of a PNG written by :func:`figure_png` (bytes or a path), or None."""
    from PIL import Image

    src = io.BytesIO(png) if isinstance(png, bytes | bytearray) else png
    with Image.open(src) as img:
        text = getattr(img, "text", {}) or img.info
        raw = text.get(PNG_KEY)
    return json.loads(raw) if raw else None


# --- what a reader would trip over --------------------------------------------------------------------------------
def _axes_of(poly: Sequence[Sequence[float]]) -> list[tuple[float, float]]:
    out = []
    for i in range(len(poly)):
        (x0, y0), (x1, y1) = poly[i], poly[(i + 1) % len(poly)]
        dx, dy = x1 - x0, y1 - y0
        norm = math.hypot(dx, dy)
        if norm > 0:
            out.append((-dy / norm, dx / norm))
    return out


def overlap_depth(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]]) -> float:
    """How deep two convex polygons overlap (separating-axis test): 0 when they do not, else the smallest
    penetration along any edge normal, in the polygons' units."""
    depth = math.inf
    for ax in _axes_of(a) + _axes_of(b):
        pa = [p[0] * ax[0] + p[1] * ax[1] for p in a]
        pb = [p[0] * ax[0] + p[1] * ax[1] for p in b]
        d = min(max(pa), max(pb)) - max(min(pa), min(pb))
        if d <= 0:
            return 0.0
        depth = min(depth, d)
    return 0.0 if depth is math.inf else depth


def _outside(poly: Sequence[Sequence[float]], box: Sequence[float]) -> float:
    """How far the polygon reaches outside the rectangle ``box`` (x0, y0, x1, y1), 0 when inside."""
    x0, y0, x1, y1 = box
    return max(0.0, *(max(x0 - x, x - x1, y0 - y, y - y1) for x, y in poly))


def _rect(box: Sequence[float]) -> list[list[float]]:
    x0, y0, x1, y1 = box
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


def problems(record: Mapping[str, Any], shown_width: float | None = None, min_pt: float = MIN_PT,
             where: str = "") -> list[str]:
    """What a reader would trip over in a figure whose text record is ``record``, shown ``shown_width`` CSS pixels
    wide (None: at the width its metadata asks for, RENDER_DPI / CSS_DPI). One line per problem:

    * a text smaller than ``min_pt`` points as rendered: its font size × the image's pixels per point × the page's
      scale (shown width / pixel width) × 0.75 (points per CSS pixel);
    * two texts whose boxes overlap (rotated boxes, separating-axis test);
    * a text cut by the image's edge, or reaching outside the rectangle it is clipped to;
    * a text covered by another panel (its box reaching into an opaque axes it does not belong to).
    Overlaps and cuts smaller than :data:`TOLERANCE_CSS_PX` as rendered are ignored.
    """
    dpi, width = float(record["dpi"]), float(record["width"])
    scale = (shown_width / width) if shown_width else CSS_DPI / dpi  # CSS px per image px
    tol = TOLERANCE_CSS_PX / scale  # in image px
    texts, axes = record["texts"], record["axes"]
    prefix = f"{where}: " if where else ""
    out = []

    def name(t):
        s = " ".join(t["s"].split())
        return repr(s if len(s) <= 40 else s[:37] + "...")

    for t in texts:
        rendered = t["pt"] * dpi / 72 * scale * 0.75
        if rendered < min_pt - 1e-6:
            out.append(f"{prefix}text {name(t)} renders at {rendered:.1f} pt (< {min_pt:g} pt)")
        if _outside(t["corners"], (0, 0, width, float(record["height"]))) > tol:
            out.append(f"{prefix}text {name(t)} is cut by the image's edge")
        if t.get("clip") and _outside(t["corners"], t["clip"]) > tol:
            out.append(f"{prefix}text {name(t)} is clipped by its panel")
        for i, a in enumerate(axes):
            if i == t.get("axes") or not a.get("opaque"):
                continue
            if t.get("axes") is not None and axes[t["axes"]]["box"] == a["box"]:  # a twin of its own axes
                continue
            if overlap_depth(t["corners"], _rect(a["box"])) > tol:
                out.append(f"{prefix}text {name(t)} is covered by another panel")
                break
    for i, t in enumerate(texts):
        for u in texts[i + 1:]:
            if overlap_depth(t["corners"], u["corners"]) > tol:
                out.append(f"{prefix}texts {name(t)} and {name(u)} overlap")
    return out
