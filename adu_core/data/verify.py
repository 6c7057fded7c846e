"""Verification reports and the folder-scanning helpers the datasets share.

Verification only reads: it never writes under the data root (the shared PACS copy is read-only).
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from .base import DataError, Sample

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})


@dataclass
class VerifyReport:
    """What ``adu data verify NAME`` prints: per-domain counts, then problems (each names a file or folder)."""

    dataset: str
    folder: Path
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # domain -> {"train": n, "test": n, ...}
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    layout: str = ""  # which on-disk layout was found (read in place), e.g. Dassl's office_home_dg

    @property
    def ok(self) -> bool:
        return not self.problems

    def problem(self, msg: str) -> None:
        self.problems.append(msg)

    def render(self) -> str:
        lines = [f"{self.dataset} at {self.folder}"]
        if self.layout:
            lines.append(f"  layout: {self.layout}")
        if self.counts:
            cols = list(dict.fromkeys(k for row in self.counts.values() for k in row))
            width = max(len(d) for d in self.counts) + 2
            lines.append("  " + "domain".ljust(width) + "".join(c.rjust(10) for c in cols))
            for dom, row in self.counts.items():
                lines.append("  " + dom.ljust(width) + "".join(f"{row.get(c, 0):>10,}" for c in cols))
            totals = {c: sum(row.get(c, 0) for row in self.counts.values()) for c in cols}
            lines.append("  " + "total".ljust(width) + "".join(f"{totals[c]:>10,}" for c in cols))
        lines += [f"  note: {n}" for n in self.notes]
        if self.problems:
            lines.append(f"FAILED: {len(self.problems)} problem(s)")
            lines += [f"  - {p}" for p in self.problems]
        else:
            lines.append("OK")
        return "\n".join(lines)


def list_images(folder: Path) -> list[str]:
    """Image files under ``folder`` (recursive), as sorted POSIX paths relative to it; hidden entries skipped."""
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        rel = Path(dirpath).relative_to(folder)
        for name in filenames:
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES:
                out.append((rel / name).as_posix())
    return sorted(out)


def count_by_class_dir(folder: Path) -> Counter[str]:
    """Images per immediate sub-folder of ``folder`` (``<folder>/<class>/<file>``)."""
    counts: Counter[str] = Counter()
    if not folder.is_dir():
        return counts
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.is_dir() and not entry.name.startswith("."):
            counts[entry.name] = sum(1 for f in os.scandir(entry.path)
                                     if f.is_file() and Path(f.name).suffix.lower() in IMAGE_SUFFIXES)
    return counts


def missing_files(base: Path, samples: Iterable[Sample], resolve=None) -> list[str]:
    resolve = resolve or (lambda s: base / s.path)
    return [s.path for s in samples if not resolve(s).is_file()]


def summarize_paths(paths: Sequence[str], what: str, limit: int = 5) -> str:
    shown = ", ".join(paths[:limit])
    more = f" and {len(paths) - limit} more" if len(paths) > limit else ""
    return f"{len(paths)} {what}: {shown}{more}"


def split_counts(domains: Sequence[str], splits: dict[str, Sequence[Sample]]) -> dict[str, dict[str, int]]:
    table: dict[str, dict[str, int]] = {d: {} for d in domains}
    for split, samples in splits.items():
        c = Counter(s.domain for s in samples)
        for d in domains:
            table[d][split] = c.get(d, 0)
    return table


def decode_check(path: Path) -> str | None:
    """None if ``path`` decodes as an image, else the reason."""
    try:
        with Image.open(path) as im:
            im.load()
    except FileNotFoundError:
        return "missing"
    except Exception as err:  # noqa: BLE001 - PIL raises many types for corrupt files
        return f"{type(err).__name__}: {err}"
    return None


def file_digest(path: Path, algo: str = "sha256", chunk: int = 1 << 20) -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def read_manifest(path: Path) -> dict[str, str]:
    """``sha256sum``-style manifest -> {relative path: sha256} (leading ``./`` dropped)."""
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            digest, name = line.split(None, 1)
            name = name.strip().lstrip("*")
            out[name[2:] if name.startswith("./") else name] = digest
    return out


def require(condition: bool, msg: str) -> None:
    if not condition:
        raise DataError(msg)
