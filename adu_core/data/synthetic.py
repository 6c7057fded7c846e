"""``synthetic``: a multi-domain dataset rendered in-process, so tests and quick examples need no files.

Six shape classes (circle, square, triangle, star, cross, heart) drawn in four visibly different styles:

- ``photo``: smooth colour-gradient background with texture and grain, a shaded object with a soft drop shadow;
- ``sketch``: grey paper, a jittery dark pencil outline drawn twice, hatching inside, no colour;
- ``cartoon``: flat pastel background, flat saturated fill, thick black outline;
- ``painting``: a background of blurred coloured brush strokes, the object filled with strokes of related hues,
  ragged edges and canvas grain.

Every image is a pure function of (seed, domain, class, split, index): the random numbers come from
``numpy.random.default_rng([seed, domain, class, split, index])`` and the drawing is done by PIL, so the same id gives
the same pixels on every call. Colours, position (±12 %), size (28-40 % of the side) and rotation (±20°) vary per
image and are independent of the class, so only the shape tells the class and only the style tells the domain.
Rendering takes about a millisecond per 64 px image.
"""

from __future__ import annotations

import colorsys
import hashlib
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .base import DataError, Sample
from .dataset import Dataset

SHAPES = ("circle", "square", "triangle", "star", "cross", "heart")
STYLES = ("photo", "sketch", "cartoon", "painting")
SPLIT_IDS = {"train": 0, "test": 1}
VERSION = 1  # bump when the drawing changes: it is part of manifest_sha256 and of tensor-cache keys
SS = 2  # supersampling factor: draw at 2x, downsample for anti-aliased edges


def _polygon(kind: str, cx: float, cy: float, r: float, theta: float) -> list[tuple[float, float]]:
    if kind == "circle":
        pts = [(math.cos(t), math.sin(t)) for t in np.linspace(0, 2 * math.pi, 48, endpoint=False)]
    elif kind == "square":
        s = 0.82
        pts = [(-s, -s), (s, -s), (s, s), (-s, s)]
    elif kind == "triangle":
        pts = [(math.cos(a), math.sin(a) + 0.15) for a in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6)]
    elif kind == "star":
        pts = [((1.0 if i % 2 == 0 else 0.42) * math.cos(-math.pi / 2 + i * math.pi / 5),
                (1.0 if i % 2 == 0 else 0.42) * math.sin(-math.pi / 2 + i * math.pi / 5)) for i in range(10)]
    elif kind == "cross":
        a, b = 0.3, 0.95
        pts = [(-a, -b), (a, -b), (a, -a), (b, -a), (b, a), (a, a), (a, b), (-a, b), (-a, a), (-b, a), (-b, -a),
               (-a, -a)]
    elif kind == "heart":
        ts = np.linspace(0, 2 * math.pi, 48, endpoint=False)
        pts = [(16 * math.sin(t) ** 3 / 17, -(13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t)
                                              - math.cos(4 * t)) / 17 - 0.1) for t in ts]
    else:  # pragma: no cover - SHAPES is closed
        raise ValueError(kind)
    c, s = math.cos(theta), math.sin(theta)
    return [(cx + r * (x * c - y * s), cy + r * (x * s + y * c)) for x, y in pts]


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v)) * 255.0


def _mask(size: int, poly: list[tuple[float, float]]) -> np.ndarray:
    im = Image.new("L", (size, size), 0)
    ImageDraw.Draw(im).polygon(poly, fill=255)
    return np.asarray(im, dtype=np.float32) / 255.0


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Low-frequency noise in [-1, 1]: a coarse random grid upsampled bicubically."""
    grid = rng.uniform(0, 255, (cells, cells)).astype(np.uint8)
    up = Image.fromarray(grid, "L").resize((size, size), Image.BICUBIC)
    return np.asarray(up, dtype=np.float32) / 127.5 - 1.0


def _stroke(cx: float, cy: float, length: float, width: float, angle: float) -> list[tuple[float, float]]:
    c, s = math.cos(angle), math.sin(angle)
    pts = []
    for t in np.linspace(0, 2 * math.pi, 12, endpoint=False):
        x, y = length * math.cos(t), width * math.sin(t)
        pts.append((cx + x * c - y * s, cy + x * s + y * c))
    return pts


def _photo(rng: np.random.Generator, n: int, poly: list, mask: np.ndarray) -> np.ndarray:
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32) / n
    phi = rng.uniform(0, 2 * math.pi)
    t = np.clip((xx - 0.5) * math.cos(phi) + (yy - 0.5) * math.sin(phi) + 0.5, 0, 1)[..., None]
    c1 = _hsv(rng.uniform(), rng.uniform(0.15, 0.45), rng.uniform(0.35, 0.75))
    c2 = _hsv(rng.uniform(), rng.uniform(0.15, 0.45), rng.uniform(0.45, 0.9))
    bg = c1 * (1 - t) + c2 * t + 18.0 * _smooth_noise(rng, n, 6)[..., None]
    shadow_im = Image.fromarray((mask * 255).astype(np.uint8), "L")
    off = int(0.05 * n)
    shadow_im = shadow_im.transform(shadow_im.size, Image.AFFINE, (1, 0, -off, 0, 1, -off))
    shadow = np.asarray(shadow_im.filter(ImageFilter.GaussianBlur(0.04 * n)), dtype=np.float32)[..., None] / 255.0
    bg = bg * (1 - 0.45 * shadow)
    base = _hsv(rng.uniform(), rng.uniform(0.55, 0.9), rng.uniform(0.6, 0.95))
    xs, ys = zip(*poly, strict=True)
    hx, hy = (min(xs) + 0.3 * (max(xs) - min(xs))) / n, (min(ys) + 0.3 * (max(ys) - min(ys))) / n
    dist = np.sqrt((xx - hx) ** 2 + (yy - hy) ** 2)[..., None]
    obj = base * np.clip(1.25 - 1.6 * dist, 0.45, 1.25) + 10.0 * _smooth_noise(rng, n, 10)[..., None]
    m = mask[..., None]
    img = bg * (1 - m) + obj * m + rng.normal(0, 5.0, (n, n, 3))
    return img


def _sketch(rng: np.random.Generator, n: int, poly: list, mask: np.ndarray) -> np.ndarray:
    paper = rng.uniform(225, 245)
    canvas = Image.fromarray(np.full((n, n), paper, dtype=np.uint8), "L")
    draw = ImageDraw.Draw(canvas)
    hatch = Image.new("L", (n, n), 0)
    hdraw = ImageDraw.Draw(hatch)
    gap = rng.uniform(0.06, 0.09) * n
    angle = rng.choice([-1.0, 1.0]) * rng.uniform(0.6, 0.95)
    for k in np.arange(-2 * n, 2 * n, gap):
        x0 = k
        hdraw.line([(x0, 0), (x0 + n * math.tan(angle), n)], fill=255, width=max(1, n // 64))
    hatch_arr = np.asarray(hatch, dtype=np.float32) / 255.0 * mask
    arr = np.asarray(canvas, dtype=np.float32) - hatch_arr * rng.uniform(70, 110)
    canvas = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "L")
    draw = ImageDraw.Draw(canvas)
    ink = int(rng.uniform(20, 70))
    for _ in range(2):  # two jittery passes, as a pencil would
        jit = [(x + rng.normal(0, 0.012 * n), y + rng.normal(0, 0.012 * n)) for x, y in poly]
        draw.line([*jit, jit[0]], fill=ink, width=max(2, n // 40), joint="curve")
    grey = np.asarray(canvas, dtype=np.float32) + rng.normal(0, 3.0, (n, n))
    return np.repeat(grey[..., None], 3, axis=2)


def _cartoon(rng: np.random.Generator, n: int, poly: list, mask: np.ndarray) -> np.ndarray:
    bg = tuple(int(v) for v in _hsv(rng.uniform(), rng.uniform(0.15, 0.35), rng.uniform(0.9, 1.0)))
    fill = tuple(int(v) for v in _hsv(rng.uniform(), rng.uniform(0.8, 1.0), rng.uniform(0.85, 1.0)))
    im = Image.new("RGB", (n, n), bg)
    draw = ImageDraw.Draw(im)
    draw.polygon(poly, fill=fill)
    draw.line([*poly, poly[0]], fill=(0, 0, 0), width=max(3, n // 18), joint="curve")
    return np.asarray(im, dtype=np.float32)


def _painting(rng: np.random.Generator, n: int, poly: list, mask: np.ndarray) -> np.ndarray:
    palette = [_hsv(rng.uniform(), rng.uniform(0.3, 0.7), rng.uniform(0.4, 0.9)) for _ in range(3)]
    bg = Image.new("RGB", (n, n), tuple(int(v) for v in palette[0]))
    draw = ImageDraw.Draw(bg, "RGBA")
    for _ in range(28):
        col = palette[rng.integers(3)] + rng.normal(0, 18, 3)
        draw.polygon(_stroke(rng.uniform(0, n), rng.uniform(0, n), rng.uniform(0.12, 0.3) * n,
                             rng.uniform(0.03, 0.07) * n, rng.uniform(0, math.pi)),
                     fill=(*np.clip(col, 0, 255).astype(int).tolist(), 150))
    bg = bg.filter(ImageFilter.GaussianBlur(0.02 * n))
    hue = rng.uniform()
    obj = Image.new("RGB", (n, n), tuple(int(v) for v in _hsv(hue, 0.7, 0.8)))
    odraw = ImageDraw.Draw(obj, "RGBA")
    xs, ys = zip(*poly, strict=True)
    for _ in range(22):
        col = _hsv(hue + rng.normal(0, 0.05), rng.uniform(0.5, 0.95), rng.uniform(0.5, 1.0))
        odraw.polygon(_stroke(rng.uniform(min(xs), max(xs)), rng.uniform(min(ys), max(ys)),
                              rng.uniform(0.06, 0.14) * n, rng.uniform(0.02, 0.04) * n, rng.uniform(0, math.pi)),
                      fill=(*col.astype(int).tolist(), 170))
    ragged = np.asarray(Image.fromarray((mask * 255).astype(np.uint8), "L").filter(
        ImageFilter.GaussianBlur(0.02 * n)), dtype=np.float32) / 255.0
    m = np.clip((ragged + 0.25 * _smooth_noise(rng, n, 16) - 0.5) * 4 + 0.5, 0, 1)[..., None]
    img = np.asarray(bg, dtype=np.float32) * (1 - m) + np.asarray(obj, dtype=np.float32) * m
    return img * (1 + 0.06 * _smooth_noise(rng, n, 24)[..., None])


_RENDER = {"photo": _photo, "sketch": _sketch, "cartoon": _cartoon, "painting": _painting}


class SyntheticDataset(Dataset):
    """Shapes x styles, rendered on demand; ``n_train``/``n_test`` images per class per domain."""

    name = "synthetic"
    folder = ""
    protocol = "synthetic"
    protocol_note = "rendered in process: n_train and n_test images per class and domain"
    on_disk = False
    domains = STYLES
    domain_names = STYLES
    classnames = SHAPES
    homepage = "(generated in-process by adu_core.data.synthetic)"

    def __init__(self, root=None, cache_dir=None, *, n_train: int = 20, n_test: int = 12, image_size: int = 64,
                 seed: int = 0):
        super().__init__(root, cache_dir)
        if n_train < 1 or n_test < 1 or image_size < 16:
            raise ValueError("synthetic needs n_train >= 1, n_test >= 1 and image_size >= 16")
        self.n_train, self.n_test, self.image_size, self.seed = int(n_train), int(n_test), int(image_size), int(seed)
        self.splits_dir = None

    @property
    def dir(self) -> Path:  # no folder: images are rendered
        return Path("<synthetic>")

    def _params(self) -> str:
        return f"v{VERSION}:seed={self.seed}:size={self.image_size}:train={self.n_train}:test={self.n_test}"

    def _load_split(self, split: str) -> list[Sample]:
        n = self.n_train if split == "train" else self.n_test
        return [Sample(f"{dom}/{cls}/{split}/{i:03d}", label, dom)
                for dom in self.domains for label, cls in enumerate(self.classnames) for i in range(n)]

    def _manifest_extra(self) -> bytes:
        return self._params().encode()

    def fingerprint(self, sample: Sample, mode: str = "content") -> str:
        return hashlib.sha256(f"{self._params()}|{sample.path}".encode()).hexdigest()

    def image_path(self, sample: Sample) -> Path:
        raise DataError(f"synthetic images have no file; use open_image() ({sample.path})")

    def open_image(self, sample: Sample) -> Image.Image:
        try:
            dom, cls, split, idx = sample.path.split("/")
            self.domains.index(dom)  # validates the domain part
            c, sp, i = self.classnames.index(cls), SPLIT_IDS[split], int(idx)
        except (ValueError, KeyError):
            raise DataError(f"not a synthetic sample id: {sample.path!r} (expected <domain>/<class>/<split>/<n>)") \
                from None
        if c != sample.label or dom != sample.domain:
            raise DataError(f"synthetic sample {sample.path!r} carries label {sample.label} / domain "
                            f"{sample.domain!r}, but its id says {c} / {dom!r}")
        return self.render(dom, c, sp, i)

    def render(self, domain: str, label: int, split_id: int, index: int) -> Image.Image:
        """One image as RGB PIL, size ``image_size``; a pure function of its arguments and the dataset seed."""
        n = self.image_size * SS
        rng = np.random.default_rng([self.seed, STYLES.index(domain), label, split_id, index])
        cx, cy = (0.5 + rng.uniform(-0.12, 0.12)) * n, (0.5 + rng.uniform(-0.12, 0.12)) * n
        r = rng.uniform(0.28, 0.4) * n
        theta = math.radians(rng.uniform(-20, 20))
        poly = _polygon(self.classnames[label], cx, cy, r, theta)
        arr = _RENDER[domain](rng, n, poly, _mask(n, poly))
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
        return img.resize((self.image_size, self.image_size), Image.BOX)
